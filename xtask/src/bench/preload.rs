//! `cargo xtask bench preload`: what preloading kind's images into CRI-O
//! costs a node, against containerd's own unpack of the same images on the
//! same host, measured in one run, interleaved, medians:
//!
//! - the anchor: a private containerd with kind's configuration (2.x where
//!   `.ci/sid-tools` installed it, as kind ships it; else Debian's), on a
//!   fresh root each run (the loaded content store hard-linked in, the
//!   metadata copied: no snapshot yet), unpacking every image into its
//!   overlayfs snapshotter as a kind node does at first use, 4 at a time
//!   (`ctr snapshots unpack`, by the digest containerd lists the image under:
//!   ctr has no unpack by name), decompressing with `unpigz` where it is
//!   installed, as on a kind node; then, for each image, a container created
//!   (`ctr containers create`, which prepares a snapshot on the image's
//!   chain) and its snapshot mounted, as the runtime's shim mounts a
//!   container's root;
//! - the boot import (`--preload boot`): the rendered `preload.sh` into a
//!   fresh overlay store, at its default parallelism;
//! - the read-only store (`--preload store`, the default): filled once,
//!   untimed, by the rendered `preload-record.sh` as the build fills it; then
//!   read by podman through the storage configuration the record step wrote,
//!   its own store moved to a fresh empty directory, as CRI-O reads it: until
//!   `podman images` lists every name, and until a container of each image is
//!   created and mounted (`podman create`, `podman mount`), 4 at a time;
//! - each of those on three nodes at once (three containerds, three imports,
//!   three podmans, each with its own directories), the wall time until all
//!   three are done: kind starts a cluster's nodes together on one host.
//!
//! Also shown: decompressing the layers (`gzip -dc`) and reading them as
//! containerd stores them, one after another; and the size the store adds to
//! the node image (its files, and `tar | gzip` of them, as a registry would
//! hold its layer) against the set's own.
//!
//! The images are stand-ins: [`testkit::standin::kind_sized_images`] (kind's
//! set at about its real sizes) or [`testkit::oci::kind_like_set`], built once
//! and cached under `target/testkit`.

use super::{median, ms};
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use testkit::containerd::Containerd;
use testkit::oci::{self, BuiltArchive, ImageSpec};

use crate::ui::Ui;

/// The stand-in images a bench preloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageSet {
    /// kind's ten preloaded images at about their real sizes (about 510 MiB).
    KindSized,
    /// One image of each shape kind leaves in containerd, `--mib` in all.
    Small,
}

impl ImageSet {
    fn name(self) -> &'static str {
        match self {
            ImageSet::KindSized => "kind-sized",
            ImageSet::Small => "small",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct BenchPreloadArgs {
    /// The stand-in images.
    #[arg(long, value_enum, default_value_t = ImageSet::KindSized)]
    pub set: ImageSet,

    /// Layer bytes of the small set, in MiB, before compression [default: 64].
    #[arg(long)]
    pub mib: Option<usize>,

    /// Timed runs of each measurement (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// Images handled at once by containerd and by podman on one node: the most
/// the boot import runs at once (its default is the CPU count, at most 4).
const AT_ONCE: usize = 4;

/// Nodes of the many-nodes variant.
const NODES: usize = 3;

/// Below a containerd root: the content store, and the metadata database.
const CONTENT: &str = "io.containerd.content.v1.content";
const METADATA: &str = "io.containerd.metadata.v1.bolt/meta.db";

/// What the bench runs besides containerd, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("skopeo", "skopeo"),
    ("podman", "podman"),
    ("jq", "jq"),
    ("gzip", "gzip"),
    ("tar", "tar"),
    ("setpriv", "util-linux"),
    ("mount", "mount"),
    ("umount", "mount"),
];

pub fn run(args: &BenchPreloadArgs, ui: &Ui) -> Result<()> {
    let specs = match (args.set, args.mib) {
        (ImageSet::KindSized, Some(_)) => bail!("--mib sizes the small set: add --set small"),
        (ImageSet::KindSized, None) => testkit::standin::kind_sized_images(),
        (ImageSet::Small, mib) => oci::kind_like_set(mib.unwrap_or(64) << 20),
    };
    if args.runs == 0 || args.mib == Some(0) {
        bail!("--runs and --mib must be at least 1");
    }
    let bin = containerd_2();
    check_tools(bin.is_none())?;
    check_root()?;
    let dir = testkit::TempDir::new("bench-preload");
    // Mount points are listed canonical; the scratch root holds `..`.
    let root = std::fs::canonicalize(dir.path()).context("the bench's directory")?;
    let ctx = root.join("context");
    ui.step("Rendering the build context", || {
        node_image::write_context(&node_image::render(&sample_inputs()?), &ctx)
            .context("write the context")
    })?;
    let archives = ui.step(
        &format!("Making the {} stand-in images (cached)", args.set.name()),
        || cached_archives(&specs),
    )?;
    let loaded = root.join("containerd");
    let version = ui.step("Loading them into containerd as kind does", || {
        load(&loaded, bin.as_deref(), &archives)
    })?;
    let layout = root.join("preload");
    ui.step(
        "Recording them for the boot import (--preload boot)",
        || record(&ctx, &loaded, bin.as_deref(), &layout, None),
    )?;
    let store = root.join("store");
    let conf = root.join("storage.conf");
    let stored = root.join("preload-store");
    let log = ui.step("Filling the read-only store (--preload store)", || {
        record(
            &ctx,
            &loaded,
            bin.as_deref(),
            &stored,
            Some((&store, &conf)),
        )
    })?;
    let blobs = loaded.join(CONTENT).join("blobs/sha256");
    let recorded = Recorded::read(&layout, &blobs)?;
    let in_store = std::fs::read_to_string(stored.join("stored.txt")).unwrap_or_default();
    if in_store.lines().count() != recorded.names.len() {
        bail!(
            "the store holds {} of the {} recorded names, so it cannot stand for the set; \
             preload-record.sh said:\n{log}",
            in_store.lines().count(),
            recorded.names.len()
        );
    }
    let bench = Bench {
        root: root.clone(),
        ctx: ctx.clone(),
        layout,
        loaded: loaded.clone(),
        bin,
        conf: std::fs::read_to_string(&conf).context("the storage configuration written")?,
        gzips: gzip_forms(&archives, &blobs)?,
        recorded: &recorded,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
    };
    let sizes = ui.step("Measuring what the store adds to the image", || {
        sizes(&recorded, &loaded, &store)
    })?;
    let measured = ui.step(
        &format!(
            "Timing {} runs each, on 1 node and on {NODES} at once",
            args.runs
        ),
        || bench.measure(args.runs),
    )?;
    let shape = Shape {
        set: args.set.name(),
        images: recorded.images.len(),
        names: recorded.names.len(),
        layers: recorded.layers.len(),
        containerd: version,
        jobs: bench.jobs,
        unpigz: testkit::find_on_path("unpigz").is_some(),
        runs: args.runs,
    };
    print!("{}", report(&shape, &measured, &sizes));
    Ok(())
}

/// containerd 2.x where `.ci/sid-tools` installed it (what kind ships),
/// else None: Debian's, from PATH.
fn containerd_2() -> Option<PathBuf> {
    let dir = testkit::tools::containerd2_bin_dir();
    (dir.join("containerd").is_file() && dir.join("ctr").is_file()).then_some(dir)
}

fn check_tools(containerd_from_path: bool) -> Result<()> {
    let containerd: &[(&str, &str)] = if containerd_from_path {
        &[("containerd", "containerd"), ("ctr", "containerd")]
    } else {
        &[]
    };
    for (tool, package) in containerd.iter().chain(TOOLS) {
        if testkit::find_on_path(tool).is_none() {
            bail!(
                "{tool} not found on PATH: install the Debian package {package} (`bash .ci/run` does)"
            );
        }
    }
    Ok(())
}

/// containerd, the overlay stores and the containers' roots all mount.
fn check_root() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if uid != Some("0") {
        bail!(
            "bench preload runs as root: it mounts overlays, as containerd and CRI-O do on a node"
        );
    }
    Ok(())
}

/// Any valid inputs: the preload files do not depend on them.
fn sample_inputs() -> Result<node_image::Inputs> {
    let kubernetes = registry::KubernetesVersion::parse("v1.34.0").map_err(anyhow::Error::msg)?;
    let stream = node_image::CrioStream::for_kubernetes(&kubernetes);
    Ok(node_image::Inputs {
        source: node_image::CrioSource::Apt {
            repository: stream.apt_repository(),
        },
        stream,
        kubernetes,
        base_image: registry::ImageRef::parse("kindest/node:v1.34.0")
            .map_err(anyhow::Error::msg)?,
        arch: node_image::Arch::Amd64,
        mirrors: vec![],
        preload: node_image::Preload::Store,
    })
}

// ---------------------------------------------------------------------------
// The images

/// Bumped when `testkit::oci` writes other archives for the same specs, so
/// that a cache of the old ones is not used.
const ARCHIVES_VERSION: u32 = 1;

/// The archives of `specs`, built once per set and kept in
/// `target/testkit/bench-preload-archives/KEY` (the kind-sized set takes a
/// minute or so to write). KEY hashes the specs; a Rust release that hashes
/// differently only builds them again.
fn cached_archives(specs: &[ImageSpec]) -> Result<Vec<BuiltArchive>> {
    let mut hasher = DefaultHasher::new();
    (ARCHIVES_VERSION, format!("{specs:?}")).hash(&mut hasher);
    let cache = testkit::scratch_root().join("bench-preload-archives");
    let dir = cache.join(format!("{:016x}", hasher.finish()));
    if let Ok(found) = read_cached(&dir, specs) {
        return Ok(found);
    }
    // Built aside and renamed into place: a cache is never half written.
    let building = cache.join(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let built = specs
        .iter()
        .map(|spec| oci::build_archive(spec, &building).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    prune_layer_roots(&building);
    let rel = |p: &Path| p.strip_prefix(&building).unwrap_or(p).display().to_string();
    let entries: Vec<serde_json::Value> = built
        .iter()
        .map(|a| {
            serde_json::json!({
                "reference": a.spec.reference,
                "archive": rel(&a.archive),
                "manifest_digest": a.manifest_digest,
                "config_digest": a.config_digest,
                "layer_tars": a.layer_tars.iter().map(|p| rel(p)).collect::<Vec<_>>(),
                "layer_gzips": a.layer_gzips.iter().map(|p| rel(p)).collect::<Vec<_>>(),
            })
        })
        .collect();
    std::fs::write(
        building.join("archives.json"),
        serde_json::Value::from(entries).to_string(),
    )
    .context("write archives.json")?;
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::rename(&building, &dir).is_err() {
        // Another bench put the same set there first.
        let _ = std::fs::remove_dir_all(&building);
    }
    read_cached(&dir, specs)
}

/// The files each layer was tarred from: as large as the layers, never read again.
fn prune_layer_roots(building: &Path) {
    let Ok(images) = std::fs::read_dir(building) else {
        return;
    };
    for image in images.flatten() {
        let Ok(layers) = std::fs::read_dir(image.path().join("layers")) else {
            continue;
        };
        for layer in layers.flatten() {
            let _ = std::fs::remove_dir_all(layer.path().join("root"));
        }
    }
}

fn read_cached(dir: &Path, specs: &[ImageSpec]) -> Result<Vec<BuiltArchive>> {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("archives.json")).context("no cached archives")?,
    )
    .context("cached archives.json is not JSON")?;
    let entries = index.as_array().context("archives.json is no list")?;
    if entries.len() != specs.len() {
        bail!("the cache holds another set");
    }
    let path = |v: &serde_json::Value| -> Result<PathBuf> {
        let p = dir.join(v.as_str().context("a path that is no string")?);
        if !p.is_file() {
            bail!("{} is missing from the cache", p.display());
        }
        Ok(p)
    };
    let paths = |v: &serde_json::Value| -> Result<Vec<PathBuf>> {
        v.as_array().context("no paths")?.iter().map(path).collect()
    };
    specs
        .iter()
        .zip(entries)
        .map(|(spec, e)| {
            if e["reference"] != spec.reference.as_str() {
                bail!("the cache holds another set");
            }
            Ok(BuiltArchive {
                spec: spec.clone(),
                archive: path(&e["archive"])?,
                manifest_digest: e["manifest_digest"].as_str().map(str::to_owned),
                config_digest: e["config_digest"]
                    .as_str()
                    .context("no config digest")?
                    .to_owned(),
                layer_tars: paths(&e["layer_tars"])?,
                layer_gzips: paths(&e["layer_gzips"])?,
            })
        })
        .collect()
}

/// Imports the archives into a containerd at `root` as kind does; its version.
fn load(root: &Path, bin: Option<&Path>, archives: &[BuiltArchive]) -> Result<(u32, u32)> {
    let containerd = Containerd::start_with_kind_config(root, bin).map_err(anyhow::Error::msg)?;
    let version = containerd.version();
    for a in archives {
        containerd.import(a).map_err(anyhow::Error::msg)?;
    }
    containerd.stop().map_err(anyhow::Error::msg)?;
    Ok(version)
}

/// The rendered `preload-record.sh --layout-only`: with `store` (the store,
/// the storage configuration to write) `--preload store`, run as a build
/// step runs it (without CAP_SYS_ADMIN); else `--preload boot`. What it said.
fn record(
    ctx: &Path,
    containerd_root: &Path,
    bin: Option<&Path>,
    out: &Path,
    store: Option<(&Path, &Path)>,
) -> Result<String> {
    let mut cmd = if store.is_some() {
        testkit::as_in_a_build_step("bash")
    } else {
        Command::new("bash")
    };
    let mode = if store.is_some() { "store" } else { "boot" };
    cmd.arg(ctx.join("kind-crio/preload-record.sh"))
        .args(["--layout-only", "--preload", mode, "amd64"])
        .env("KIND_CRIO_CONTAINERD_ROOT", containerd_root)
        .env("KIND_CRIO_PRELOAD_DIR", out);
    if let Some(dir) = bin {
        // The script runs containerd and ctr from PATH.
        cmd.env("PATH", testkit::tools::path_with(&[dir]));
    }
    if let Some((store, conf)) = store {
        cmd.env("KIND_CRIO_STORE", store)
            .env("KIND_CRIO_STORAGE_CONF", conf);
    }
    let log = run_ok(&mut cmd, &format!("preload-record.sh --preload {mode}"))?;
    Ok(log)
}

/// The recorded images, as the boot import's layout names them.
#[derive(Debug)]
struct Recorded {
    /// Every name.
    names: Vec<String>,
    /// Each image once: a name of it, and the digest containerd lists it
    /// under (of an image index, the index's).
    images: Vec<(String, String)>,
    /// Each distinct layer blob, and whether it is gzip.
    layers: Vec<(PathBuf, bool)>,
}

impl Recorded {
    fn read(layout: &Path, blobs: &Path) -> Result<Recorded> {
        let blob = |d: &str| blobs.join(d.trim_start_matches("sha256:"));
        let index = read_json(&layout.join("index.json"))?;
        let mut out = Recorded {
            names: Vec::new(),
            images: Vec::new(),
            layers: Vec::new(),
        };
        for e in index["manifests"]
            .as_array()
            .context("index.json has no manifests")?
        {
            let name = e["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .context("an entry without a name")?;
            let digest = e["digest"].as_str().context("an entry without a digest")?;
            let target = e["annotations"]["io.kind-crio.preload.index"]
                .as_str()
                .unwrap_or(digest);
            out.names.push(name.to_owned());
            if out.images.iter().any(|(_, t)| t == target) {
                continue;
            }
            out.images.push((name.to_owned(), target.to_owned()));
            let manifest = read_json(&blob(digest))?;
            for l in manifest["layers"].as_array().context("no layers")? {
                let path = blob(l["digest"].as_str().context("no digest")?);
                let gzip = l["mediaType"].as_str().is_some_and(|t| t.ends_with("gzip"));
                if !out.layers.iter().any(|(p, _)| *p == path) {
                    out.layers.push((path, gzip));
                }
            }
        }
        Ok(out)
    }
}

fn read_json(p: &Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", p.display()))
}

/// The gzip form of each distinct layer (the kube images share their base
/// layers; each archive has its own copy), by the diff IDs of the configs.
fn gzip_forms(archives: &[BuiltArchive], blobs: &Path) -> Result<Vec<(PathBuf, bool)>> {
    let mut by_diff_id = BTreeMap::new();
    for a in archives {
        let config = read_json(&blobs.join(a.config_digest.trim_start_matches("sha256:")))?;
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .context("a config without diff IDs")?;
        for (id, gz) in diff_ids.iter().zip(&a.layer_gzips) {
            by_diff_id
                .entry(id.as_str().unwrap_or_default().to_owned())
                .or_insert_with(|| gz.clone());
        }
    }
    Ok(by_diff_id.into_values().map(|p| (p, true)).collect())
}

// ---------------------------------------------------------------------------
// Nodes

/// A directory made fresh for one node; on drop everything mounted below it
/// is unmounted (an overlay store bind-mounts its home onto itself, the
/// containers' roots are mounted inside) and it is removed, however the
/// measurement ended.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(path: PathBuf) -> Result<Scratch> {
        clear(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Scratch(std::fs::canonicalize(&path).unwrap_or(path)))
    }

    /// A short one in the temp directory: podman wants its run root short.
    fn short() -> Result<Scratch> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Scratch::new(std::env::temp_dir().join(format!("kcb-{}-{n}", std::process::id())))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        clear(&self.0);
    }
}

fn clear(path: &Path) {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        testkit::unmount_below(&canonical);
    }
    let _ = std::fs::remove_dir_all(path);
}

/// What every node of a measurement shares.
#[derive(Debug)]
struct Bench<'a> {
    /// Where the nodes' directories go.
    root: PathBuf,
    ctx: PathBuf,
    /// The layout the boot import reads.
    layout: PathBuf,
    /// The containerd root the images were loaded into.
    loaded: PathBuf,
    bin: Option<PathBuf>,
    /// The storage configuration the record step wrote.
    conf: String,
    /// The gzip form of each distinct layer.
    gzips: Vec<(PathBuf, bool)>,
    recorded: &'a Recorded,
    /// The boot import's parallel imports.
    jobs: usize,
}

/// One node's containerd, on a root of its own.
#[derive(Debug)]
struct AnchorNode<'a> {
    containerd: Option<Containerd>,
    dir: Scratch,
    images: &'a [(String, String)],
}

impl Drop for AnchorNode<'_> {
    fn drop(&mut self) {
        // The containers' roots first: containerd keeps their snapshots.
        testkit::unmount_below(self.dir.path());
        if let Some(c) = self.containerd.take() {
            let _ = c.stop();
        }
    }
}

impl AnchorNode<'_> {
    /// Unpacks every image; then creates a container of each and mounts its
    /// snapshot. When each phase ended.
    fn unpack_and_mount(&self) -> Result<Vec<Instant>> {
        let c = self.containerd.as_ref().context("containerd has stopped")?;
        in_parallel(self.images, AT_ONCE, |_, (name, target)| {
            let mut cmd = c.ctr();
            cmd.args(["snapshots", "unpack", "--snapshotter", "overlayfs", target]);
            run_ok(&mut cmd, &format!("ctr snapshots unpack of {name}")).map(drop)
        })?;
        let unpacked = Instant::now();
        in_parallel(self.images, AT_ONCE, |n, (name, _)| {
            let id = format!("bench-{n}");
            let mut create = c.ctr();
            create.args(["containers", "create", "--snapshotter", "overlayfs"]);
            create.args([name, &id, "/x"]);
            run_ok(&mut create, &format!("ctr containers create of {name}"))?;
            let target = self.dir.path().join(format!("mnt/{n}"));
            let mut mounts = c.ctr();
            mounts.args(["snapshots", "--snapshotter", "overlayfs", "mounts"]);
            mounts.arg(&target).arg(&id);
            let printed = run_ok(&mut mounts, &format!("ctr snapshots mounts of {name}"))?;
            mount_as_printed(&printed)
        })?;
        Ok(vec![unpacked, Instant::now()])
    }
}

/// Runs the `mount -t TYPE SOURCE TARGET -o OPTIONS` lines `ctr snapshots
/// mounts` prints.
fn mount_as_printed(printed: &str) -> Result<()> {
    let mut any = false;
    for line in printed.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"mount") {
            bail!("ctr snapshots mounts printed '{line}', not a mount command");
        }
        run_ok(Command::new("mount").args(&words[1..]), line)?;
        any = true;
    }
    if !any {
        bail!("ctr snapshots mounts printed nothing to mount");
    }
    Ok(())
}

/// One node's boot import: a store and a run root of its own.
#[derive(Debug)]
struct BootNode {
    store: Scratch,
    run: Scratch,
}

/// One node's podman: its own store (empty), run root and state; the
/// read-only store as its additional image store.
#[derive(Debug)]
struct StoreNode<'a> {
    /// Its storage configuration, and its own store.
    dir: Scratch,
    run: Scratch,
    recorded: &'a Recorded,
}

impl StoreNode<'_> {
    fn podman(&self) -> Command {
        let mut cmd = Command::new("podman");
        // Events are podman's own, not CRI-O's: none written.
        cmd.env(
            "CONTAINERS_STORAGE_CONF",
            self.dir.path().join("storage.conf"),
        )
        .arg("--tmpdir")
        .arg(self.run.path().join("libpod"))
        .args(["--events-backend", "none"]);
        cmd
    }

    /// Until `podman images` lists every recorded name.
    fn list(&self) -> Result<Vec<Instant>> {
        let mut cmd = self.podman();
        cmd.args(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        let listed = run_ok(&mut cmd, "podman images")?;
        let done = Instant::now();
        let seen: HashSet<&str> = listed.lines().map(str::trim).collect();
        let missing: Vec<&str> = self
            .recorded
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| !seen.contains(n))
            .collect();
        if !missing.is_empty() {
            bail!(
                "podman images does not list {} through the read-only store; it listed:\n{listed}",
                missing.join(", ")
            );
        }
        Ok(vec![done])
    }

    /// Until a container of each image is created and mounted.
    fn create_and_mount(&self) -> Result<Vec<Instant>> {
        in_parallel(&self.recorded.images, AT_ONCE, |n, (name, _)| {
            let mut create = self.podman();
            create.args(["create", "--pull", "never", "--network", "none", "--name"]);
            create.args([&format!("bench-{n}"), name, "/x"]);
            let id = run_ok(&mut create, &format!("podman create {name}"))?;
            let id = id.lines().last().unwrap_or_default().trim();
            let mut mount = self.podman();
            mount.args(["mount", id]);
            let root = run_ok(&mut mount, &format!("podman mount of {name}"))?;
            if root.trim().is_empty() {
                bail!("podman mount of {name} printed no path");
            }
            Ok(())
        })?;
        Ok(vec![Instant::now()])
    }
}

impl Bench<'_> {
    fn anchor_node(&self, n: usize) -> Result<AnchorNode<'_>> {
        let dir = Scratch::new(self.root.join(format!("node-{n}-containerd")))?;
        let root = dir.path().join("root");
        let metadata = root.join(METADATA);
        if let Some(parent) = metadata.parent() {
            std::fs::create_dir_all(parent).context("create the metadata directory")?;
        }
        // Hard links, not the record step's symlink: kind's configuration
        // leaves containerd's garbage collector on, and it must never remove
        // a loaded blob.
        run_ok(
            Command::new("cp")
                .arg("-al")
                .arg(self.loaded.join(CONTENT))
                .arg(&root),
            "cp -al of the content store",
        )?;
        std::fs::copy(self.loaded.join(METADATA), &metadata).context("copy the metadata")?;
        for i in 0..self.recorded.images.len() {
            std::fs::create_dir_all(dir.path().join(format!("mnt/{i}")))
                .context("create a mount point")?;
        }
        let containerd = Containerd::start_with_kind_config(&root, self.bin.as_deref())
            .map_err(anyhow::Error::msg)?;
        Ok(AnchorNode {
            containerd: Some(containerd),
            dir,
            images: &self.recorded.images,
        })
    }

    fn boot_node(&self, n: usize) -> Result<BootNode> {
        Ok(BootNode {
            store: Scratch::new(self.root.join(format!("node-{n}-boot")))?,
            run: Scratch::short()?,
        })
    }

    /// The rendered `preload.sh` into the node's fresh overlay store.
    fn import(&self, node: &BootNode) -> Result<Vec<Instant>> {
        let files = self.ctx.join("kind-crio/files/opt/kind-crio");
        let out = Command::new("bash")
            .arg(files.join("preload.sh"))
            .env("KIND_CRIO_PRELOAD_LAYOUT", &self.layout)
            .env(
                "KIND_CRIO_PRELOAD_STORAGE",
                format!(
                    "overlay@{}+{}",
                    node.store.path().display(),
                    node.run.path().join("storage").display()
                ),
            )
            .env("KIND_CRIO_PRELOAD_POLICY", files.join("policy.json"))
            .env("KIND_CRIO_PRELOAD_JOBS", self.jobs.to_string())
            .env("KIND_CRIO_PRELOAD_STATUS", node.run.path().join("status"))
            .stdin(Stdio::null())
            .output()
            .context("run preload.sh")?;
        let done = Instant::now();
        let log = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !log.contains(" 0 failed") || log.contains(" 0 imported") {
            bail!(
                "preload.sh did not import every image:\n{log}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(vec![done])
    }

    fn store_node(&self, n: usize) -> Result<StoreNode<'_>> {
        let dir = Scratch::new(self.root.join(format!("node-{n}-podman")))?;
        let run = Scratch::short()?;
        let conf = dir.path().join("storage.conf");
        let moved = testkit::moved_storage_conf(
            &self.conf,
            &dir.path().join("storage"),
            &run.path().join("storage"),
            None,
        );
        std::fs::write(&conf, moved).context("write a node's storage configuration")?;
        Ok(StoreNode {
            dir,
            run,
            recorded: self.recorded,
        })
    }

    /// Every measurement, on 1 node then on [`NODES`] at once, `runs` times
    /// after a warm-up, interleaved so drift hits all alike; medians.
    fn measure(&self, runs: usize) -> Result<Measured> {
        let mut s = Samples::default();
        for i in 0..=runs {
            for (k, nodes) in [1, NODES].into_iter().enumerate() {
                let anchor = at_once(
                    nodes,
                    |n| self.anchor_node(n),
                    |node| node.unpack_and_mount(),
                )?;
                let boot = at_once(nodes, |n| self.boot_node(n), |node| self.import(node))?;
                let listed = at_once(nodes, |n| self.store_node(n), StoreNode::list)?;
                let created = at_once(nodes, |n| self.store_node(n), StoreNode::create_and_mount)?;
                let floors = if k == 0 {
                    Some((floor(&self.gzips)?, floor(&self.recorded.layers)?))
                } else {
                    None
                };
                if i == 0 {
                    continue;
                }
                s.unpack[k].push(anchor[0]);
                s.unpack_mount[k].push(anchor[1]);
                s.boot[k].push(boot[0]);
                s.listed[k].push(listed[0]);
                s.created[k].push(created[0]);
                if let Some((gzip, as_stored)) = floors {
                    s.gzip.push(gzip);
                    s.as_stored.push(as_stored);
                }
            }
        }
        let times = |k: usize, s: &mut Samples| Times {
            unpack: median(&mut s.unpack[k]),
            unpack_mount: median(&mut s.unpack_mount[k]),
            boot: median(&mut s.boot[k]),
            listed: median(&mut s.listed[k]),
            created: median(&mut s.created[k]),
        };
        Ok(Measured {
            nodes: [times(0, &mut s), times(1, &mut s)],
            gzip: median(&mut s.gzip),
            as_stored: median(&mut s.as_stored),
        })
    }
}

/// Each measurement's timed runs: on 1 node, on [`NODES`].
#[derive(Debug, Default)]
struct Samples {
    unpack: [Vec<Duration>; 2],
    unpack_mount: [Vec<Duration>; 2],
    boot: [Vec<Duration>; 2],
    listed: [Vec<Duration>; 2],
    created: [Vec<Duration>; 2],
    gzip: Vec<Duration>,
    as_stored: Vec<Duration>,
}

/// Makes `nodes` nodes ready (untimed), runs `measure` on all of them at
/// once, and gives for each of its phases the wall time from the common
/// start until every node has ended it. The nodes are then torn down and the
/// disks synced (untimed): one measurement's write-back must not land in the
/// next one's time.
fn at_once<N: Sync>(
    nodes: usize,
    prepare: impl Fn(usize) -> Result<N>,
    measure: impl Fn(&N) -> Result<Vec<Instant>> + Sync,
) -> Result<Vec<Duration>> {
    let ready = (0..nodes).map(prepare).collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let ended: Result<Vec<Vec<Instant>>> = std::thread::scope(|s| {
        let running: Vec<_> = ready.iter().map(|n| s.spawn(|| measure(n))).collect();
        running
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|_| Err(anyhow!("a node panicked"))))
            .collect()
    });
    drop(ready);
    let _ = Command::new("sync").status();
    let ended = ended?;
    let phases = ended.first().map_or(0, Vec::len);
    Ok((0..phases)
        .map(|p| {
            let last = ended.iter().map(|e| e[p]).max().unwrap_or(started);
            last - started
        })
        .collect())
}

/// Runs `each` on every item, `jobs` at a time; the first error, once the
/// running ones are done.
fn in_parallel<T: Sync>(
    items: &[T],
    jobs: usize,
    each: impl Fn(usize, &T) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if !failed.lock().is_ok_and(|f| f.is_none()) {
                        break;
                    }
                    if let Err(e) = each(i, item) {
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    match failed.into_inner() {
        Ok(None) => Ok(()),
        Ok(Some(e)) => Err(e),
        Err(_) => Err(anyhow!("a worker panicked")),
    }
}

/// Runs `cmd` to success, stdin closed; its stdout. The error names `what`
/// and holds what it printed.
fn run_ok(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {:?} ({what})", cmd.get_program()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// `gzip -dc LAYER > /dev/null` (`cat` for uncompressed ones), one by one.
fn floor(layers: &[(PathBuf, bool)]) -> Result<Duration> {
    let started = Instant::now();
    for (path, gzip) in layers {
        let mut cmd = if *gzip {
            let mut c = Command::new("gzip");
            c.arg("-dc");
            c
        } else {
            Command::new("cat")
        };
        let status = cmd
            .arg(path)
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("read {}", path.display()))?;
        if !status.success() {
            bail!(
                "{:?} {} failed ({status})",
                cmd.get_program(),
                path.display()
            );
        }
    }
    Ok(started.elapsed())
}

// ---------------------------------------------------------------------------
// Sizes

/// Bytes, in the node image, of the set and of the store.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// The distinct layer blobs as containerd stores them, and `tar | gzip` of them.
    layers: u64,
    layers_gzip: u64,
    /// containerd's whole content store (these images only).
    content: u64,
    /// The read-only store's files, and `tar | gzip` of them.
    store: u64,
    store_gzip: u64,
    /// What compressed: `gzip`, or `pigz` where installed (same format and
    /// level, all of a CPU's cores).
    compressor: &'static str,
}

fn sizes(recorded: &Recorded, loaded: &Path, store: &Path) -> Result<Sizes> {
    let compressor = if testkit::find_on_path("pigz").is_some() {
        "pigz"
    } else {
        "gzip"
    };
    let blobs = loaded.join(CONTENT).join("blobs/sha256");
    let names: Vec<String> = recorded
        .layers
        .iter()
        .filter_map(|(p, _)| Some(p.file_name()?.to_string_lossy().into_owned()))
        .collect();
    Ok(Sizes {
        layers: recorded.layers.iter().map(|(p, _)| file_len(p)).sum(),
        layers_gzip: gzip_size(&blobs, &names, compressor)?,
        content: file_bytes(&loaded.join(CONTENT))?,
        store: file_bytes(store)?,
        store_gzip: gzip_size(store, &[".".to_owned()], compressor)?,
        compressor,
    })
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Bytes of the files below `dir` (and of the links' targets' names), a file
/// with several hard links once, as `du --apparent-size` counts them, less
/// the directories.
fn file_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut left = vec![dir.to_path_buf()];
    while let Some(d) = left.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let entry = entry.with_context(|| format!("read {}", d.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("stat {}", entry.path().display()))?;
            if meta.is_dir() {
                left.push(entry.path());
            } else if meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Bytes of `tar --xattrs --numeric-owner -c ENTRIES` in `dir` compressed by
/// `compressor -c`: what the files weigh in a layer as a registry holds it.
fn gzip_size(dir: &Path, entries: &[String], compressor: &str) -> Result<u64> {
    let mut tar = Command::new("tar")
        .args(["--xattrs", "--numeric-owner", "-C"])
        .arg(dir)
        .arg("-c")
        .args(entries)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run tar")?;
    let stream = tar.stdout.take().context("tar's output")?;
    let mut gzip = Command::new(compressor)
        .arg("-c")
        .stdin(stream)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {compressor}"))?;
    let mut compressed = gzip.stdout.take().context("the compressor's output")?;
    let bytes = std::io::copy(&mut compressed, &mut std::io::sink())
        .with_context(|| format!("read {compressor}'s output"))?;
    let zipped = gzip.wait().context("wait for the compressor")?;
    let tarred = tar.wait_with_output().context("wait for tar")?;
    if !tarred.status.success() || !zipped.success() {
        bail!(
            "tar -C {} -c | {compressor} -c failed ({}, {zipped}): {}",
            dir.display(),
            tarred.status,
            String::from_utf8_lossy(&tarred.stderr)
        );
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// The report

/// What was measured, besides the times.
#[derive(Debug, Clone)]
struct Shape {
    set: &'static str,
    images: usize,
    names: usize,
    layers: usize,
    containerd: (u32, u32),
    /// The boot import's parallel imports.
    jobs: usize,
    /// Whether containerd decompressed with `unpigz` (kind's base image has
    /// pigz, and containerd uses it where it is on PATH).
    unpigz: bool,
    runs: usize,
}

/// Medians on one node, or on [`NODES`] at once (wall time until all are done).
#[derive(Debug, Clone, Copy, Default)]
struct Times {
    unpack: Duration,
    unpack_mount: Duration,
    boot: Duration,
    listed: Duration,
    created: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Measured {
    /// On 1 node, on [`NODES`].
    nodes: [Times; 2],
    gzip: Duration,
    as_stored: Duration,
}

/// One of the [`Times`].
type Pick = fn(&Times) -> Duration;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn verdict(ratio: f64, limit: f64) -> String {
    let met = if ratio <= limit { "met" } else { "NOT met" };
    format!("{met} ({ratio:.2}×)")
}

/// The printed report: the times and their ratios to containerd's, the
/// sizes, the targets. Pure.
fn report(shape: &Shape, m: &Measured, z: &Sizes) -> String {
    let (major, minor) = shape.containerd;
    let [one, many] = m.nodes;
    let mut out = format!(
        "Preloading the {} set: {} images ({} names, {} layers, {:.1} MiB as containerd stores \
         them); medians of {} interleaved runs after a warm-up; ratios to containerd {major}.{minor}'s own\n",
        shape.set,
        shape.images,
        shape.names,
        shape.layers,
        mib(z.layers),
        shape.runs,
    );
    out += &format!(
        "{:58}{:>13}{:7}{:>13}\n",
        "",
        "1 node",
        "",
        format!("{NODES} at once")
    );
    let cell = |d: Duration, to: Option<Duration>| {
        let ratio = to.map_or(String::new(), |a| format!("{:.2}×", ms(d) / ms(a)));
        format!("{:>10.0} ms {ratio:>6}", ms(d))
    };
    let mut row = |label: &str, pick: Pick, to: Option<Pick>| {
        let line = format!(
            "{label:58}{}{}",
            cell(pick(&one), to.map(|t| t(&one))),
            cell(pick(&many), to.map(|t| t(&many)))
        );
        out += line.trim_end();
        out.push('\n');
    };
    let with = if shape.unpigz { "unpigz" } else { "no unpigz" };
    row(
        &format!("containerd: unpack, {AT_ONCE} images at a time ({with})"),
        |t| t.unpack,
        None,
    );
    row(
        "containerd: unpack, then create and mount a container each",
        |t| t.unpack_mount,
        None,
    );
    row(
        &format!(
            "boot import: preload.sh, {} at a time (to unpack)",
            shape.jobs
        ),
        |t| t.boot,
        Some(|t| t.unpack),
    );
    row(
        "store: podman images lists every name (to unpack)",
        |t| t.listed,
        Some(|t| t.unpack),
    );
    row(
        "store: podman create + mount each (to unpack + mount)",
        |t| t.created,
        Some(|t| t.unpack_mount),
    );
    for (label, d) in [
        ("gzip -dc of every layer, serial (to unpack)", m.gzip),
        (
            "the layers as stored, serial: gzip -dc, cat (to unpack)",
            m.as_stored,
        ),
    ] {
        out += &format!("{label:58}{}\n", cell(d, Some(one.unpack)));
    }
    let c = z.compressor;
    let store_ratio = z.store_gzip as f64 / z.layers_gzip as f64;
    out += &format!(
        "size: the set's layers in containerd {:.1} MiB, tar | {c} {:.1} MiB\n\
         size: the read-only store adds {:.1} MiB of files, tar | {c} {:.1} MiB ({store_ratio:.2}× the set's)\n\
         size: dropping containerd's content store would save {:.1} MiB\n",
        mib(z.layers),
        mib(z.layers_gzip),
        mib(z.store),
        mib(z.store_gzip),
        mib(z.content),
    );
    let ratio = |t: &Times, a: Pick, b: Pick| ms(a(t)) / ms(b(t));
    let targets: [(&str, Pick, Pick, f64); 3] = [
        (
            "store listing ≤ 0.1× unpack",
            |t| t.listed,
            |t| t.unpack,
            0.1,
        ),
        (
            "store create + mount ≤ 0.25× unpack + mount",
            |t| t.created,
            |t| t.unpack_mount,
            0.25,
        ),
        ("boot import ≤ 1.2× unpack", |t| t.boot, |t| t.unpack, 1.2),
    ];
    for (what, a, b, limit) in targets {
        out += &format!(
            "target {what}: 1 node {}, {NODES} nodes {}\n",
            verdict(ratio(&one, a, b), limit),
            verdict(ratio(&many, a, b), limit)
        );
    }
    out += &format!(
        "target store tar | {c} ≤ 1.05× the set's: {}\n",
        verdict(store_ratio, 1.05)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_reads_ratios() {
        let d = Duration::from_millis;
        let shape = Shape {
            set: "kind-sized",
            images: 10,
            names: 14,
            layers: 40,
            containerd: (2, 1),
            jobs: 2,
            unpigz: true,
            runs: 3,
        };
        let m = Measured {
            nodes: [
                Times {
                    unpack: d(2000),
                    unpack_mount: d(2400),
                    boot: d(2600),
                    listed: d(150),
                    created: d(480),
                },
                Times {
                    unpack: d(5000),
                    unpack_mount: d(6000),
                    boot: d(5500),
                    listed: d(600),
                    created: d(1800),
                },
            ],
            gzip: d(3000),
            as_stored: d(1000),
        };
        let z = Sizes {
            layers: 500 << 20,
            layers_gzip: 300 << 20,
            content: 501 << 20,
            store: 520 << 20,
            store_gzip: 306 << 20,
            compressor: "gzip",
        };
        let r = report(&shape, &m, &z);
        assert!(
            r.starts_with(
                "Preloading the kind-sized set: 10 images (14 names, 40 layers, 500.0 MiB as \
                 containerd stores them); medians of 3 interleaved runs after a warm-up; ratios \
                 to containerd 2.1's own\n"
            ),
            "{r}"
        );
        let lines = [
            "                                                                 1 node           3 at once",
            "containerd: unpack, 4 images at a time (unpigz)                 2000 ms             5000 ms",
            "containerd: unpack, then create and mount a container each      2400 ms             6000 ms",
            "boot import: preload.sh, 2 at a time (to unpack)                2600 ms  1.30×      5500 ms  1.10×",
            "store: podman images lists every name (to unpack)                150 ms  0.07×       600 ms  0.12×",
            "store: podman create + mount each (to unpack + mount)            480 ms  0.20×      1800 ms  0.30×",
            "gzip -dc of every layer, serial (to unpack)                     3000 ms  1.50×",
            "the layers as stored, serial: gzip -dc, cat (to unpack)         1000 ms  0.50×",
            "size: the set's layers in containerd 500.0 MiB, tar | gzip 300.0 MiB",
            "size: the read-only store adds 520.0 MiB of files, tar | gzip 306.0 MiB (1.02× the set's)",
            "size: dropping containerd's content store would save 501.0 MiB",
            "target store listing ≤ 0.1× unpack: 1 node met (0.07×), 3 nodes NOT met (0.12×)",
            "target store create + mount ≤ 0.25× unpack + mount: 1 node met (0.20×), 3 nodes NOT met (0.30×)",
            "target boot import ≤ 1.2× unpack: 1 node NOT met (1.30×), 3 nodes met (1.10×)",
            "target store tar | gzip ≤ 1.05× the set's: met (1.02×)",
        ];
        let body: Vec<&str> = r.lines().skip(1).collect();
        assert_eq!(body, lines, "{r}");
        assert!(r.ends_with('\n'));
    }
}
