//! Preloading, proven with real components only:
//!
//! - a round trip on this machine, with Debian's containerd 1.6 and with
//!   containerd 2.x (kind's base image since v0.27), each a private instance on
//!   kind's containerd configuration: stand-in images go in the way kind loads
//!   them (`ctr images import --all-platforms --no-unpack --digests`, the
//!   pinned label where ctr has it; the kube images' `-amd64` aliases tagged
//!   to the plain names; an OCI manifest, an OCI index and a Docker manifest
//!   list with only amd64's blobs present); the rendered `preload-record.sh`
//!   records them, the rendered `preload.sh` imports them into a
//!   containers-storage store with skopeo, and podman, skopeo and the store's
//!   own records show every image once, under all its names, with
//!   containerd's manifest and config digests, each layer stored once and the
//!   second name of an image given from the stored layers. The status file is
//!   absent while the import runs, then says what happened to each name. A
//!   second run imports nothing; a corrupt layer fails that image alone, with
//!   a message naming it; all exit 0;
//! - the build step inside a real image build (buildah) on the stand-in kind
//!   node image, whose own containerd holds kind's preloaded images, on
//!   Debian bookworm (kind up to v0.31: containerd 1.6, skopeo 1.9) and
//!   trixie (kind from v0.32: containerd 1.7, skopeo 1.18): the layout, the
//!   blobs link, the pins, the enabled unit and the kubelet's drop-in (the
//!   node's own `systemd-analyze verify`), skopeo, and what it all adds to the
//!   image;
//! - that image booted with its own systemd (systemd-nspawn), skopeo slowed
//!   down so the import takes seconds: multi-user.target is not ordered after
//!   the unit, directly or through another unit, and is reached (the console
//!   line kind's boot gate waits for) while the import runs, with CRI-O
//!   already up; the kubelet, started as kubeadm starts it, runs only once the
//!   import is over; every recorded image is in CRI-O's overlay storage once,
//!   with all its names; a second boot on the same /var imports nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use testkit::TempDir;
use testkit::containerd::{CONTAINERD_TOOLS, Containerd, PINNED_LABEL};
use testkit::oci::{self, BuiltArchive};
use testkit::standin;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn shown(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a command printed on stdout, trimmed.
fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `cmd`; panics with the command and its output unless it succeeds.
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", shown(cmd)));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        shown(cmd),
        out.status,
        text(&out)
    );
    out
}

fn json_file(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn sha256_of(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path));
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    format!("sha256:{hex}")
}

fn blob(content: &Path, digest: &str) -> PathBuf {
    content.join("blobs/sha256").join(
        digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("{digest} is not a sha256 digest")),
    )
}

/// The rendered context (as shipped: every case renders the same preload
/// files), written under `dir`.
fn rendered_context(dir: &Path) -> PathBuf {
    let case = common::matrix()
        .into_iter()
        .find(|c| c.name == "k8s-1.34-main")
        .expect("the k8s-1.34-main case");
    let ctx = dir.join("context");
    node_image::write_context(&node_image::render(&case.inputs), &ctx).expect("write the context");
    ctx
}

/// What CRI-O must end up with, read from containerd's own data: for each
/// real reference, the linux/amd64 image manifest's digest and its config's.
fn expected_from_containerd(
    content: &Path,
    listed: &[testkit::containerd::Listed],
) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for l in listed {
        if l.reference.starts_with("sha256:") || l.reference.contains('@') {
            continue;
        }
        let mut manifest = l.digest.clone();
        if INDEX_TYPES.contains(&l.media_type.as_str()) {
            let index = json_file(&blob(content, &l.digest));
            manifest = index["manifests"]
                .as_array()
                .expect("manifests")
                .iter()
                .find(|m| m["platform"]["architecture"] == "amd64")
                .and_then(|m| m["digest"].as_str())
                .expect("an amd64 entry")
                .to_owned();
        }
        let config = json_file(&blob(content, &manifest))["config"]["digest"]
            .as_str()
            .expect("a config digest")
            .to_owned();
        out.insert(l.reference.clone(), (manifest, config));
    }
    out
}

/// A containers-storage store in a test directory (vfs: it works on any
/// file system), its run root short enough for podman (≤ 50 characters).
struct Store {
    root: PathBuf,
    runroot: PathBuf,
}

impl Store {
    fn new(dir: &Path, name: &str) -> Store {
        static N: AtomicUsize = AtomicUsize::new(0);
        let runroot = std::env::temp_dir().join(format!(
            "kc-pl-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&runroot);
        Store {
            root: dir.join(name),
            runroot,
        }
    }

    fn spec(&self) -> String {
        format!("vfs@{}+{}", self.root.display(), self.runroot.display())
    }

    /// name → (manifest digest, image ID) as podman lists them.
    fn images(&self) -> BTreeMap<String, (String, String)> {
        let out = run_ok(
            Command::new("podman")
                .args(["--storage-driver", "vfs", "--root"])
                .arg(&self.root)
                .arg("--runroot")
                .arg(&self.runroot)
                .args([
                    "images",
                    "--digests",
                    "--no-trunc",
                    "--format",
                    "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}",
                ]),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((
                    w.next()?.to_owned(),
                    (w.next()?.to_owned(), w.next()?.to_owned()),
                ))
            })
            .collect()
    }

    /// The manifest skopeo reads back from the store, hashed.
    fn skopeo_manifest_digest(&self, reference: &str) -> String {
        let out = run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            &format!("containers-storage:[{}]{reference}", self.spec()),
        ]));
        let path = self
            .root
            .with_extension(format!("manifest-{}", reference.replace(['/', ':'], "_")));
        std::fs::write(&path, &out.stdout).expect("write the manifest");
        sha256_of(&path)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.runroot);
    }
}

/// Runs the rendered `preload-record.sh` on `containerd_root`, with
/// containerd and ctr from `bin_dir` (else PATH).
/// `--preload boot`: everything left for the boot import.
fn record(ctx: &Path, containerd_root: &Path, out: &Path, bin_dir: Option<&Path>) -> Output {
    record_command(ctx, containerd_root, out, bin_dir)
        .args(["--preload", "boot", "amd64"])
        .output()
        .expect("run preload-record.sh")
}

/// `--preload store`, the store at `store` and named in `storage_conf`;
/// without CAP_SYS_ADMIN, as in a build step (BuildKit's, buildah's).
fn record_store(
    ctx: &Path,
    containerd_root: &Path,
    out: &Path,
    bin_dir: Option<&Path>,
    store: &Path,
    storage_conf: &Path,
) -> Output {
    let mut cmd = record_command(ctx, containerd_root, out, bin_dir);
    let script: Vec<std::ffi::OsString> = cmd.get_args().map(ToOwned::to_owned).collect();
    let mut unprivileged = testkit::as_in_a_build_step("bash");
    unprivileged
        .args(script)
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
    cmd = unprivileged;
    cmd.args(["--preload", "store", "amd64"])
        .env("KIND_CRIO_STORE", store)
        .env("KIND_CRIO_STORAGE_CONF", storage_conf)
        .output()
        .expect("run preload-record.sh")
}

fn record_command(
    ctx: &Path,
    containerd_root: &Path,
    out: &Path,
    bin_dir: Option<&Path>,
) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(ctx.join("kind-crio/preload-record.sh"))
        .arg("--layout-only")
        .env("KIND_CRIO_CONTAINERD_ROOT", containerd_root)
        .env("KIND_CRIO_PRELOAD_DIR", out);
    if let Some(dir) = bin_dir {
        cmd.env("PATH", testkit::tools::path_with(&[dir]));
    }
    cmd
}

/// The rendered `preload.sh` into `store`, with its status file at `status`.
fn import_command(ctx: &Path, layout: &Path, store: &Store, status: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(ctx.join("kind-crio/files/opt/kind-crio/preload.sh"))
        .env("KIND_CRIO_PRELOAD_LAYOUT", layout)
        .env("KIND_CRIO_PRELOAD_STORAGE", store.spec())
        .env(
            "KIND_CRIO_PRELOAD_POLICY",
            ctx.join("kind-crio/files/opt/kind-crio/policy.json"),
        )
        .env("KIND_CRIO_PRELOAD_STATUS", status)
        .env("KIND_CRIO_PRELOAD_JOBS", "2");
    cmd
}

fn import(ctx: &Path, layout: &Path, store: &Store, status: &Path) -> (Output, f64) {
    let started = Instant::now();
    let out = import_command(ctx, layout, store, status)
        .output()
        .expect("run preload.sh");
    (out, started.elapsed().as_secs_f64())
}

fn summary(out: &Output) -> String {
    let log = text(out);
    log.lines()
        .rev()
        .find(|l| l.contains(" images: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{log}"))
        .to_owned()
}

/// The status file's lines, each `OUTCOME REFERENCE DIGEST`, as written.
fn status_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the status file {}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What the status file must say: `outcome(reference)` for every reference.
fn want_status(
    expected: &BTreeMap<String, (String, String)>,
    outcome: impl Fn(&str) -> &'static str,
) -> Vec<String> {
    expected
        .iter()
        .map(|(r, (m, _))| format!("{} {r} {m}", outcome(r)))
        .collect()
}

/// A `skopeo` first on PATH that runs the real one with `--debug`, its
/// stderr appended to `log` (so what skopeo reused shows), after touching
/// `marker` and sleeping `delay` seconds before each copy (so an import can
/// be watched while it runs).
fn debug_skopeo(dir: &Path, log: &Path, marker: &Path, delay: &str) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;
    let real = testkit::find_on_path("skopeo").expect("skopeo");
    let bin = dir.join("debug-skopeo");
    std::fs::create_dir_all(&bin).expect("a bin directory");
    let script = format!(
        "#!/bin/sh\n\
         for a in \"$@\"; do [ \"$a\" = copy ] && touch '{marker}' && sleep {delay}; done\n\
         exec '{real}' --debug \"$@\" 2>>'{log}'\n",
        marker = marker.display(),
        real = real.display(),
        log = log.display(),
    );
    let path = bin.join("skopeo");
    std::fs::write(&path, script).expect("write the skopeo wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    testkit::tools::path_with(&[&bin])
}

/// An image's `names` in containers-storage's `images.json`, sorted.
fn sorted_names(image: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = image["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("a name").to_owned())
        .collect();
    names.sort_unstable();
    names
}

/// containers-storage's own records of `store`: (image ID, sorted names,
/// manifest digest) of each image, and the number of layers.
fn stored_records(store: &Store) -> (Vec<(String, Vec<String>, String)>, usize) {
    let images = json_file(&store.root.join("vfs-images/images.json"));
    let layers = json_file(&store.root.join("vfs-layers/layers.json"));
    let mut records: Vec<(String, Vec<String>, String)> = images
        .as_array()
        .expect("an image list")
        .iter()
        .map(|i| {
            let names = sorted_names(i);
            (
                i["id"].as_str().expect("an ID").to_owned(),
                names,
                i["digest"].as_str().expect("a digest").to_owned(),
            )
        })
        .collect();
    records.sort_unstable();
    (records, layers.as_array().expect("a layer list").len())
}

/// Debian's containerd 1.6, as kind's base image had until kind v0.27.
#[test]
fn containerd_images_round_trip_into_containers_storage() {
    let test = "containerd_images_round_trip_into_containers_storage";
    if !testkit::tools_present(test, CONTAINERD_TOOLS) {
        return;
    }
    round_trip(test, None);
}

/// containerd 2.x, as kind's base image has since kind v0.27, loading with
/// kind's current flags.
#[test]
fn containerd_2_images_round_trip_into_containers_storage() {
    let test = "containerd_2_images_round_trip_into_containers_storage";
    let Some(found) = testkit::tools::require(test, &["containerd-2"]) else {
        return;
    };
    round_trip(test, Some(&found[0]));
}

/// kind's side with the containerd in `bin_dir` (else PATH) and kind's
/// configuration, the rendered record script, the rendered boot import.
fn round_trip(test: &str, bin_dir: Option<&Path>) {
    let tools = ["skopeo", "podman", "jq", "tar", "gzip", "sha256sum"];
    if !testkit::tools_present(test, &tools) {
        return;
    }
    let dir = TempDir::new(test);
    let ctx = rendered_context(dir.path());

    // kind's side: images in containerd's k8s.io namespace, never unpacked.
    let started = Instant::now();
    let kind = load_like_kind(dir.path(), &oci::kind_like_set(512 * 1024), bin_dir);
    let Kind {
        archives,
        root: containerd_root,
        content,
        version,
        listed,
        expected,
    } = kind;
    let mut names: Vec<&str> = archives.iter().flat_map(|a| a.spec.names()).collect();
    names.sort_unstable();
    assert_eq!(
        expected.keys().map(String::as_str).collect::<Vec<_>>(),
        names,
        "containerd {version:?} lists: {listed:?}"
    );
    eprintln!("{test}: containerd {version:?} lists:\n{listed:#?}");
    if version < (2, 0) {
        // containerd 1.x also lists the names the layout must leave out
        // (`--digests`); 2.x, importing through its transfer service, does not.
        assert!(
            listed.iter().any(|l| l.reference.starts_with("import-")),
            "{listed:?}"
        );
    }
    for a in &archives {
        let own = &expected[&a.spec.reference];
        if let Some(m) = &a.manifest_digest {
            assert_eq!(&own.0, m, "{}", a.spec.reference);
        }
        assert_eq!(own.1, a.config_digest, "{}", a.spec.reference);
        for alias in &a.spec.aliases {
            assert_eq!(&expected[alias], own, "{alias} is {}", a.spec.reference);
        }
        if version >= (1, 7) && a.spec.pinned_on_import() {
            // Loaded as kind loads: the names the archive carries are pinned.
            for name in a.spec.archive_names() {
                let l = listed.iter().find(|l| l.reference == name).expect(name);
                assert!(
                    l.labels.split(',').any(|p| p == PINNED_LABEL),
                    "{name}: {l:?}"
                );
            }
        }
    }
    let distinct: BTreeSet<&String> = expected.values().map(|(m, _)| m).collect();
    assert!(distinct.len() < expected.len(), "no aliases: {expected:?}");
    eprintln!(
        "{test}: {} images into containerd in {:.2}s",
        archives.len(),
        started.elapsed().as_secs_f64()
    );

    // Build time: the layout, and containerd's own state left as it was.
    let meta = containerd_root.join("io.containerd.metadata.v1.bolt/meta.db");
    let meta_before = sha256_of(&meta);
    let content_before = tree_listing(&content);
    let layout = dir.path().join("preload");
    let started = Instant::now();
    let out = record(&ctx, &containerd_root, &layout, bin_dir);
    assert!(out.status.success(), "preload-record.sh:\n{}", text(&out));
    eprintln!(
        "{test}: preload-record.sh took {:.2}s:\n{}",
        started.elapsed().as_secs_f64(),
        text(&out)
    );
    assert_eq!(
        sha256_of(&meta),
        meta_before,
        "containerd's metadata changed"
    );
    assert_eq!(
        tree_listing(&content),
        content_before,
        "containerd's content changed"
    );
    assert_eq!(
        std::fs::read_link(layout.join("blobs")).expect("blobs is a link"),
        content.join("blobs")
    );
    assert_eq!(
        std::fs::read_to_string(layout.join("oci-layout")).expect("oci-layout"),
        "{\"imageLayoutVersion\":\"1.0.0\"}\n"
    );
    let index = json_file(&layout.join("index.json"));
    let entries = index["manifests"].as_array().expect("manifests");
    let recorded: BTreeMap<String, String> = entries
        .iter()
        .map(|e| {
            (
                e["annotations"][REF_NAME]
                    .as_str()
                    .expect("a name")
                    .to_owned(),
                e["digest"].as_str().expect("a digest").to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(r, (m, _))| (r.clone(), m.clone()))
        .collect();
    assert_eq!(recorded, want);
    for e in entries {
        // Each entry describes its blob exactly, with its own media type.
        let digest = e["digest"].as_str().expect("a digest");
        let path = blob(&content, digest);
        assert_eq!(sha256_of(&path), digest);
        assert_eq!(
            e["size"].as_u64(),
            Some(std::fs::metadata(&path).expect("the blob").len())
        );
        let manifest = json_file(&path);
        assert_eq!(e["mediaType"], manifest["mediaType"], "{e}");
    }
    let images_txt: Vec<String> = want.iter().map(|(r, d)| format!("{r} {d}")).collect();
    assert_eq!(
        std::fs::read_to_string(layout.join("images.txt")).expect("images.txt"),
        format!("{}\n", images_txt.join("\n"))
    );

    // First boot: every image into containers-storage, as containerd has it,
    // each manifest once. skopeo runs with --debug (its log shows which
    // blobs it reused) and waits a little before each copy, so the status
    // file can be seen absent while the import runs (a stale one is removed).
    let n = expected.len();
    let store = Store::new(dir.path(), "storage");
    let status = dir.path().join("run/kind-crio/preload.status");
    std::fs::create_dir_all(status.parent().expect("a parent")).expect("the status directory");
    std::fs::write(&status, "imported stale sha256:0\n").expect("a stale status file");
    let skopeo_log = dir.path().join("skopeo-debug.log");
    let copying = dir.path().join("copying");
    let started = Instant::now();
    // As many parallel imports as names: only the script's own grouping
    // keeps two names of one manifest from being copied at the same time.
    let child = import_command(&ctx, &layout, &store, &status)
        .env("KIND_CRIO_PRELOAD_JOBS", n.to_string())
        .env(
            "PATH",
            debug_skopeo(dir.path(), &skopeo_log, &copying, "0.3"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run preload.sh");
    while !copying.exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(copying.exists(), "preload.sh never ran skopeo copy");
    assert!(
        !status.exists(),
        "the status file exists while the import runs: {:?}",
        std::fs::read_to_string(&status)
    );
    let out = child.wait_with_output().expect("wait for preload.sh");
    let took = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "preload.sh:\n{}", text(&out));
    assert_eq!(
        summary(&out)
            .split(", in ")
            .next()
            .unwrap_or_default()
            .trim_start_matches("kind-crio-preload: "),
        format!("{n} images: {n} imported, 0 already present, 0 failed"),
        "{}",
        text(&out)
    );
    eprintln!("{test}: first import took {took:.2}s:\n{}", text(&out));
    assert_eq!(
        status_lines(&status),
        want_status(&expected, |_| "imported")
    );
    let left: Vec<_> = std::fs::read_dir(status.parent().expect("a parent"))
        .expect("the status directory")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(left, ["preload.status"], "temporary files left behind");
    let stored = store.images();
    assert_eq!(stored, expected, "podman images --digests");
    for (reference, (manifest, _)) in &expected {
        assert_eq!(
            &store.skopeo_manifest_digest(reference),
            manifest,
            "{reference}"
        );
    }
    // Each manifest stored once, with all its names, and its layers once.
    let (records, layer_count) = stored_records(&store);
    let mut want_records: Vec<(String, Vec<String>, String)> = archives
        .iter()
        .map(|a| {
            let mut names: Vec<String> = a.spec.names().iter().map(|n| (*n).to_owned()).collect();
            names.sort_unstable();
            let id = a.config_digest.trim_start_matches("sha256:").to_owned();
            (id, names, expected[&a.spec.reference].0.clone())
        })
        .collect();
    want_records.sort_unstable();
    assert_eq!(records, want_records, "the store's images.json");
    let layers_in_set: usize = archives.iter().map(|a| a.spec.layer_sizes.len()).sum();
    assert_eq!(layer_count, layers_in_set, "the store's layers.json");
    // The second name of an image was given from the stored layers: skopeo
    // skipped each of them. No layer of an image with one name was skipped,
    // nor any when the store had none of it yet.
    let debug = std::fs::read_to_string(&skopeo_log).expect("skopeo's debug log");
    for a in &archives {
        let manifest = json_file(&blob(&content, &expected[&a.spec.reference].0));
        for layer in manifest["layers"].as_array().expect("layers") {
            let digest = layer["digest"].as_str().expect("a digest");
            let skipped = debug
                .lines()
                .filter(|l| l.contains(&format!("Skipping blob {digest} (already present)")))
                .count();
            assert_eq!(
                skipped,
                a.spec.aliases.len(),
                "{}: layer {digest} skipped {skipped} times:\n{}",
                a.spec.reference,
                text(&out)
            );
        }
    }

    // A restart: nothing imported twice, the store as it was.
    let (out, took) = import(&ctx, &layout, &store, &status);
    assert!(out.status.success(), "preload.sh again:\n{}", text(&out));
    assert!(
        summary(&out).contains(&format!(
            "{n} images: 0 imported, {n} already present, 0 failed"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(store.images(), stored);
    assert_eq!(stored_records(&store), (records, layer_count));
    assert_eq!(status_lines(&status), want_status(&expected, |_| "present"));
    eprintln!("{test}: second run took {took:.2}s");

    // A corrupt layer: that image fails, by name and with skopeo's reason;
    // the others are imported; the exit status is still 0.
    let etcd = "registry.k8s.io/etcd:3.6.4-0";
    let etcd_manifest = json_file(&blob(&content, &expected[etcd].0));
    let layer = etcd_manifest["layers"][1]["digest"]
        .as_str()
        .expect("a layer")
        .to_owned();
    let path = blob(&content, &layer);
    let mut bytes = std::fs::read(&path).expect("read the layer");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).expect("corrupt the layer");
    let fresh = Store::new(dir.path(), "storage-corrupt");
    let (out, _) = import(&ctx, &layout, &fresh, &status);
    let log = text(&out);
    assert!(
        out.status.success(),
        "preload.sh with a corrupt layer:\n{log}"
    );
    assert!(
        summary(&out).contains(&format!(
            "{n} images: {} imported, 0 already present, 1 failed ({etcd}; CRI-O will pull them)",
            n - 1
        )),
        "{log}"
    );
    let failure = log
        .lines()
        .find(|l| l.contains("FAILED"))
        .unwrap_or_else(|| panic!("no failure line:\n{log}"));
    assert!(
        failure.starts_with(&format!(
            "kind-crio-preload: {etcd}: FAILED to import {}: ",
            expected[etcd].0
        )) && failure.contains("level=fatal"),
        "{failure}"
    );
    eprintln!("{test}: the corrupt layer was reported as:\n{failure}");
    assert_eq!(
        status_lines(&status),
        want_status(&expected, |r| if r == etcd { "failed" } else { "imported" })
    );
    let mut others = expected.clone();
    others.remove(etcd);
    assert_eq!(fresh.images(), others);

    // A node image without skopeo: every recorded image failed, said so.
    let bin = dir.path().join("no-skopeo");
    std::fs::create_dir_all(&bin).expect("a bin directory");
    for tool in ["bash", "rm", "mktemp", "mkdir", "sort", "chmod", "mv", "jq"] {
        let real = testkit::find_on_path(tool).expect(tool);
        std::os::unix::fs::symlink(real, bin.join(tool)).expect("link a tool");
    }
    let out = import_command(&ctx, &layout, &fresh, &status)
        .env("PATH", &bin)
        .output()
        .expect("run preload.sh without skopeo");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("skopeo is not installed: nothing imported"),
        "{}",
        text(&out)
    );
    assert_eq!(status_lines(&status), want_status(&expected, |_| "failed"));
}

/// What kind leaves in containerd: the archives, containerd's root and
/// content store, its version and listing, and what CRI-O must end up with.
struct Kind {
    archives: Vec<BuiltArchive>,
    root: PathBuf,
    content: PathBuf,
    version: (u32, u32),
    listed: Vec<testkit::containerd::Listed>,
    expected: BTreeMap<String, (String, String)>,
}

/// `specs` loaded as kind loads them into a private containerd (from
/// `bin_dir`, else PATH) on kind's configuration, under `dir`.
fn load_like_kind(dir: &Path, specs: &[oci::ImageSpec], bin_dir: Option<&Path>) -> Kind {
    let archives: Vec<BuiltArchive> = specs
        .iter()
        .map(|spec| oci::build_archive(spec, &dir.join("archives")).expect("an archive"))
        .collect();
    let root = dir.join("containerd");
    let containerd = Containerd::start_with_kind_config(&root, bin_dir).expect("start containerd");
    let version = containerd.version();
    for archive in &archives {
        containerd.import(archive).expect("ctr images import");
    }
    let listed = containerd.list().expect("ctr images ls");
    containerd.stop().expect("stop containerd");
    let content = root.join("io.containerd.content.v1.content");
    let expected = expected_from_containerd(&content, &listed);
    Kind {
        archives,
        root,
        content,
        version,
        listed,
        expected,
    }
}

/// containerd 2.x, as kind ships it: every image whose layers can be nested
/// in the node image's own layer is stored by the record step in a
/// read-only overlay store, which the storage configuration it writes names
/// as an additional image store; through that configuration podman lists
/// each under its names with containerd's manifest digest, read-only, and a
/// container from each has the image's files. The image with a whiteout is
/// left out by the guard, which says why, and the boot import, which
/// reports the others as stored, imports it alone: its deleted file absent.
#[test]
fn containerd_2_images_into_the_read_only_store() {
    let test = "containerd_2_images_into_the_read_only_store";
    let Some(found) = testkit::tools::require(test, &["containerd-2"]) else {
        return;
    };
    let tools = ["skopeo", "podman", "jq", "tar", "gzip"];
    if !testkit::tools_present(test, &tools) {
        return;
    }
    let dir = TempDir::new(test);
    let ctx = rendered_context(dir.path());
    let whiteout = standin::whiteout_image();
    let mut specs = oci::kind_like_set(512 * 1024);
    specs.push(whiteout.clone());
    let kind = load_like_kind(dir.path(), &specs, Some(&found[0]));

    let layout = dir.path().join("preload");
    let ro = dir.path().join("usr/lib/containers/storage");
    let conf = dir.path().join("etc/containers/storage.conf");
    let out = record_store(&ctx, &kind.root, &layout, Some(&found[0]), &ro, &conf);
    let log = text(&out);
    assert!(out.status.success(), "preload-record.sh:\n{log}");
    eprintln!("{test}: preload-record.sh:\n{log}");

    // The guard: the whiteout image (its one name) is left, and why.
    let left = &whiteout.reference;
    let reason = log
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{left}: ")))
        .unwrap_or_else(|| panic!("no reason given for {left}:\n{log}"));
    assert!(
        reason.contains(": a whiteout ./data/.wh.layer-0.bin in layer sha256:"),
        "{reason}"
    );
    let mut in_store = kind.expected.clone();
    in_store.remove(left);
    let n = kind.expected.len();
    assert!(
        log.contains(&format!(
            "{} of {n} images are in the read-only store {} ({} names it)",
            n - 1,
            ro.display(),
            conf.display()
        )),
        "{log}"
    );
    let stored_txt: Vec<String> = in_store
        .iter()
        .map(|(r, (m, _))| format!("{r} {m}"))
        .collect();
    assert_eq!(
        std::fs::read_to_string(layout.join("stored.txt")).expect("stored.txt"),
        format!("{}\n", stored_txt.join("\n"))
    );
    let index = json_file(&layout.join("index.json"));
    let boot: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|e| e["annotations"][REF_NAME].as_str().expect("a name"))
        .collect();
    assert_eq!(boot, [left.as_str()], "the layout left for the boot import");
    let written = std::fs::read_to_string(&conf).expect("the storage configuration");
    assert!(
        written.contains(&format!("additionalimagestores = [\"{}\"]", ro.display()))
            && written.contains("graphroot = \"/var/lib/containers/storage\""),
        "{written}"
    );
    // Nothing the store could not hold got in, whatever the guard said.
    assert_no_whiteouts_in(&ro);

    let digests: BTreeMap<String, String> = in_store
        .iter()
        .map(|(r, (m, _))| (r.clone(), m.clone()))
        .collect();
    let archives: BTreeMap<String, &BuiltArchive> = kind
        .archives
        .iter()
        .flat_map(|a| a.spec.names().into_iter().map(move |n| (n.to_owned(), a)))
        .collect();
    read_through_the_store(dir.path(), &written, &ro, &digests, &archives);

    // The boot: the rest imported, the stored ones reported as stored.
    let store = Store::new(dir.path(), "storage");
    let status = dir.path().join("run/kind-crio/preload.status");
    let (out, _) = import(&ctx, &layout, &store, &status);
    assert!(out.status.success(), "preload.sh:\n{}", text(&out));
    assert!(
        summary(&out).contains(&format!(
            "{} images in the node image's store; 1 images: 1 imported, 0 already present, 0 failed",
            n - 1
        )),
        "{}",
        text(&out)
    );
    assert_eq!(
        status_lines(&status),
        want_status(&kind.expected, |r| if r == left {
            "imported"
        } else {
            "stored"
        })
    );
    let mut only_left = kind.expected.clone();
    only_left.retain(|r, _| r == left);
    assert_eq!(store.images(), only_left, "the boot import's store");
    let mounted = run_ok(
        Command::new("podman")
            .args(["--storage-driver", "vfs", "--root"])
            .arg(&store.root)
            .arg("--runroot")
            .arg(&store.runroot)
            .args(["image", "mount", left]),
    );
    let root = PathBuf::from(stdout(&mounted));
    assert!(
        root.join("data/layer-1.bin").is_file(),
        "{}",
        root.display()
    );
    assert!(
        !root.join("data/layer-0.bin").exists(),
        "the file the whiteout deletes is back in {}",
        root.display()
    );
}

/// No whiteout of either form (a `c 0 0` device, a `.wh.` file) in a store:
/// nested in the node image's layer, the node's overlay would read it.
fn assert_no_whiteouts_in(store: &Path) {
    let found = run_ok(
        Command::new("find")
            .arg(store)
            .args(["(", "-type", "c", "-o", "-name", ".wh.*", ")", "-print"]),
    );
    assert_eq!(
        stdout(&found),
        "",
        "whiteouts in the store {}",
        store.display()
    );
}

/// Through `conf` (a storage configuration the record step wrote), with its
/// additional image store at `store` and its own store moved into `dir`:
/// podman lists exactly `images` (name → manifest digest), read-only, and a
/// container from each has every layer's file as its layer tar holds it.
fn read_through_the_store(
    dir: &Path,
    conf: &str,
    store: &Path,
    images: &BTreeMap<String, String>,
    archives: &BTreeMap<String, &BuiltArchive>,
) {
    let rw = dir.join("rw");
    let test_conf = dir.join("storage.conf");
    let runroot = std::env::temp_dir().join(format!("kc-ro-{}", std::process::id()));
    let moved = testkit::moved_storage_conf(conf, &rw, &runroot, Some(store));
    std::fs::write(&test_conf, moved).expect("write the test configuration");
    let podman = |args: &[&str]| {
        run_ok(
            Command::new("podman")
                .env("CONTAINERS_STORAGE_CONF", &test_conf)
                .args(args),
        )
    };
    let listed = podman(&[
        "images",
        "--digests",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ReadOnly}}",
    ]);
    let listed: BTreeMap<String, String> = stdout(&listed)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, digest, ro) = (w.next()?, w.next()?, w.next()?);
            Some((name.to_owned(), format!("{digest} {ro}")))
        })
        .collect();
    let want: BTreeMap<String, String> = images
        .iter()
        .map(|(r, m)| (r.clone(), format!("{m} true")))
        .collect();
    assert_eq!(listed, want, "podman images, read-only");
    for reference in images.keys() {
        let a = archives[reference];
        let id = stdout(&podman(&["create", reference, "/x"]));
        let root = PathBuf::from(stdout(&podman(&["mount", &id])));
        for (i, size) in a.spec.layer_sizes.iter().enumerate() {
            let file = root.join(format!("data/layer-{i}.bin"));
            let len = std::fs::metadata(&file)
                .unwrap_or_else(|e| panic!("{reference}: {}: {e}", file.display()))
                .len();
            assert_eq!(len, *size as u64, "{reference}: {}", file.display());
            let from_tar = run_ok(
                Command::new("tar")
                    .arg("-xOf")
                    .arg(&a.layer_tars[i])
                    .arg(format!("./data/layer-{i}.bin")),
            );
            assert!(
                std::fs::read(&file).expect("read a file") == from_tar.stdout,
                "{reference}: {} differs from its layer",
                file.display()
            );
        }
        podman(&["rm", "--force", &id]);
    }
    let _ = std::fs::remove_dir_all(&runroot);
}

/// Every path below `dir` with its size, sorted: what a change would show.
fn tree_listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<(PathBuf, u64)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            let len = e.metadata().map_or(0, |m| m.len());
            (e.into_path(), len)
        })
        .collect();
    out.sort_unstable();
    out
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{path} in the built image: {e}"))
}

/// Installed size (KiB) of each package in an image's dpkg status file.
fn installed_packages(root: &Path) -> BTreeMap<String, u64> {
    let status = read(root, "/var/lib/dpkg/status");
    let mut out = BTreeMap::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
        };
        let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
        if let (Some(p), true) = (field("Package"), installed) {
            let size = field("Installed-Size")
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            out.insert(p, size);
        }
    }
    out
}

fn tree_bytes(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// On Debian bookworm, kind's base image up to v0.31 (containerd 1.6,
/// skopeo 1.9).
#[test]
fn node_image_build_records_kinds_images_for_crio() {
    records_kinds_images_and_imports_them_at_boot(
        "node_image_build_records_kinds_images_for_crio",
        standin::DEBIAN_SUITE,
    );
}

/// On Debian trixie, kind's base image from v0.32 (containerd 1.7,
/// skopeo 1.18, systemd 257).
#[test]
fn node_image_on_trixie_records_kinds_images_for_crio() {
    records_kinds_images_and_imports_them_at_boot(
        "node_image_on_trixie_records_kinds_images_for_crio",
        standin::DEBIAN_SUITE_NEXT,
    );
}

fn records_kinds_images_and_imports_them_at_boot(test: &str, suite: &'static str) {
    let mut tools = standin::NODE_TOOLS.to_vec();
    tools.extend(standin::BUNDLE_TOOLS);
    tools.extend([
        "systemctl",
        "systemd-analyze",
        "sha256sum",
        "systemd-nspawn",
    ]);
    if !testkit::tools_present(test, &tools) {
        return;
    }
    let base = standin::node_base_image_on(suite).expect("the stand-in node image");
    let dir = TempDir::new(test);
    let tarball = standin::crio_bundle(dir.path(), "amd64", "v1.34.0");
    let name = tarball
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let source = node_image::CrioSource::bundle_file(
        &name,
        std::fs::read(&tarball).expect("read the bundle"),
    )
    .expect("a bundle name");
    let kubernetes = registry::KubernetesVersion::parse("v1.34.0").expect("a version");
    let inputs = node_image::Inputs {
        stream: node_image::CrioStream::for_kubernetes(&kubernetes),
        kubernetes,
        source,
        base_image: registry::ImageRef::parse(&base).expect("the stand-in reference"),
        arch: node_image::Arch::Amd64,
        mirrors: vec![],
        preload: node_image::Preload::Store,
    };
    let ctx = node_image::render(&inputs);
    let context = dir.path().join("context");
    node_image::write_context(&ctx, &context).expect("write the context");

    let started = Instant::now();
    let image = standin::bud(
        &context,
        &format!("kind-crio-test/preload-{suite}:v1.34.0"),
        &[],
    )
    .expect("the build");
    eprintln!(
        "{test}: the build took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let root = image.mount().expect("mount the built image");
    let base_root = standin::mount_image(&base).expect("mount the base image");
    let log = image.log();

    // What the base's containerd holds, read from its own content store.
    let content = root.join("/var/lib/containerd/io.containerd.content.v1.content");
    let preloaded = standin::preloaded_images();
    let known: BTreeMap<String, BuiltArchive> = preloaded
        .iter()
        .flat_map(|spec| {
            let a = oci::build_archive(spec, &dir.path().join("archives")).expect("an archive");
            spec.names()
                .into_iter()
                .map(move |n| (n.to_owned(), a.clone()))
        })
        .collect();

    // The layout: every preloaded image recorded, its manifest in the
    // image's own containerd content store, which the blobs link reaches;
    // its index has what the store could not hold (the image with a
    // whiteout), stored.txt the rest.
    let layout = root.join(node_image::PRELOAD_DIR);
    assert_eq!(
        std::fs::read_link(layout.join("blobs")).expect("blobs is a link"),
        Path::new("/var/lib/containerd/io.containerd.content.v1.content/blobs")
    );
    assert!(content.join("blobs/sha256").is_dir());
    let pairs = |file: &str| -> Vec<(String, String)> {
        std::fs::read_to_string(layout.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .lines()
            .map(|l| {
                let (r, d) = l.split_once(' ').unwrap_or_else(|| panic!("{file}: {l:?}"));
                (r.to_owned(), d.to_owned())
            })
            .collect()
    };
    let recorded = pairs("images.txt");
    let mut refs = Vec::new();
    for (reference, digest) in &recorded {
        refs.push(reference.clone());
        let manifest = blob(&content, digest);
        assert_eq!(&sha256_of(&manifest), digest, "{reference}");
        let a = &known[reference];
        if let Some(m) = &a.manifest_digest {
            assert_eq!(digest, m, "{reference}");
        }
        assert_eq!(
            json_file(&manifest)["config"]["digest"],
            a.config_digest.as_str(),
            "{reference}"
        );
    }
    let whiteout = standin::whiteout_image().reference;
    let index = json_file(&layout.join("index.json"));
    let entries = index["manifests"].as_array().expect("manifests");
    let mut imported = Vec::new();
    for e in entries {
        let reference = e["annotations"][REF_NAME].as_str().expect("a name");
        let digest = e["digest"].as_str().expect("a digest");
        imported.push((reference.to_owned(), digest.to_owned()));
        if let Some(i) = e["annotations"]["io.kind-crio.preload.index"].as_str() {
            // The index containerd names the image by, and its amd64 entry.
            let listed = json_file(&blob(&content, i));
            assert!(
                listed["manifests"]
                    .as_array()
                    .expect("manifests")
                    .iter()
                    .any(|m| m["digest"] == digest && m["platform"]["architecture"] == "amd64"),
                "{reference}: {listed}"
            );
        }
    }
    let held: Vec<(String, String)> = recorded
        .iter()
        .filter(|(r, _)| *r != whiteout)
        .cloned()
        .collect();
    assert_eq!(
        imported,
        recorded
            .iter()
            .filter(|(r, _)| *r == whiteout)
            .cloned()
            .collect::<Vec<_>>(),
        "left for the boot import"
    );
    assert_eq!(pairs("stored.txt"), held, "stored.txt");
    let mut want: Vec<String> = preloaded
        .iter()
        .flat_map(|s| s.names())
        .map(str::to_owned)
        .collect();
    want.sort_unstable();
    assert_eq!(refs, want);
    assert!(
        log.contains(&format!(
            "kind-crio: preload: recorded {} images",
            want.len()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "  {whiteout}: a whiteout ./data/.wh.layer-0.bin in layer "
        )),
        "{log}"
    );

    // The read-only store, as the image has it after the build nested it in
    // its own layer: named by the storage configuration, nothing in it the
    // node's overlay would take for its own whiteouts, and every image in it
    // readable through containers-storage, files and all.
    let store = root.join(node_image::PRELOAD_STORE);
    let conf = read(root.path(), "/etc/containers/storage.conf");
    assert!(
        conf.contains(&format!(
            "additionalimagestores = [\"{}\"]",
            node_image::PRELOAD_STORE
        )),
        "{conf}"
    );
    assert_no_whiteouts_in(&store);
    let archives: BTreeMap<String, &BuiltArchive> =
        known.iter().map(|(r, a)| (r.clone(), a)).collect();
    read_through_the_store(
        dir.path(),
        &conf,
        &store,
        &held.iter().cloned().collect(),
        &archives,
    );
    eprintln!(
        "{test}: the store holds {} images in {:.1} MiB",
        held.len(),
        tree_bytes(&store) as f64 / (1024.0 * 1024.0)
    );

    // containerd's own state in the image is the base's, byte for byte.
    let meta = "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db";
    assert_eq!(
        sha256_of(&root.join(meta)),
        sha256_of(&base_root.join(meta))
    );

    // Pinned: the pause image first, then every preloaded image once.
    let dropin = read(root.path(), "/etc/crio/crio.conf.d/99-kind-crio.conf");
    let pins: Vec<&str> = dropin
        .split("pinned_images = [\n")
        .nth(1)
        .and_then(|rest| rest.split("\n]").next())
        .expect("a pinned_images list")
        .lines()
        .map(|l| l.trim().trim_end_matches(',').trim_matches('"'))
        .collect();
    let mut expected_pins = vec!["registry.k8s.io/pause:3.10".to_owned()];
    expected_pins.extend(
        want.iter()
            .filter(|r| r.as_str() != "registry.k8s.io/pause:3.10")
            .cloned(),
    );
    assert_eq!(pins, expected_pins, "{dropin}");

    // The unit: enabled, and valid for systemd in the built root.
    let out = run_ok(
        Command::new("systemctl")
            .arg(format!("--root={}", root.path().display()))
            .args(["is-enabled", node_image::PRELOAD_UNIT]),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "enabled");
    // The node's own systemd checks it (a newer systemd knows keys this
    // machine's does not), in a copy of the root, which the boots below use.
    let node = dir.path().join("booted");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.path().display()))
            .arg(&node),
    );
    for unit in [
        "/etc/systemd/system/kind-crio-preload.service",
        "/etc/systemd/system/kubelet.service",
    ] {
        // The kubelet with its drop-ins, kind-crio's wait among them.
        let out = Command::new("chroot")
            .arg(&node)
            .args(["systemd-analyze", "verify", unit])
            .output()
            .expect("run systemd-analyze in the node");
        assert!(
            out.status.success() && text(&out).trim().is_empty(),
            "systemd-analyze verify {unit}:\n{}",
            text(&out)
        );
    }
    // No ordering that would hold multi-user.target back: no default
    // dependencies, nothing the target waits for ordered after it (it is
    // ordered after CRI-O, not before). Only the kubelet waits for it.
    let unit = read(root.path(), "/etc/systemd/system/kind-crio-preload.service");
    assert!(unit.contains("\nDefaultDependencies=no\n"), "{unit}");
    assert!(
        unit.contains("\nAfter=local-fs.target crio.service\n"),
        "{unit}"
    );
    assert!(!unit.contains("Before=crio.service"), "{unit}");
    let crio_unit = read(root.path(), "/usr/local/lib/systemd/system/crio.service");
    assert!(!crio_unit.contains("kind-crio-preload"), "{crio_unit}");
    let kubelet_wait = read(
        root.path(),
        "/etc/systemd/system/kubelet.service.d/30-kind-crio-preload.conf",
    );
    assert!(
        kubelet_wait.contains(
            "\nExecStartPre=-/bin/sh -c 'systemctl is-failed --quiet kind-crio-preload.service \
             || exec systemctl start kind-crio-preload.service'\n"
        ),
        "{kubelet_wait}"
    );
    let script = root.join("/opt/kind-crio/preload.sh");
    assert!(script.is_file());

    // skopeo installed from Debian, and what it brought.
    assert!(root.join("/usr/bin/skopeo").is_file());
    let before = installed_packages(base_root.path());
    let after = installed_packages(root.path());
    let added: BTreeMap<&String, &u64> = after
        .iter()
        .filter(|(p, _)| !before.contains_key(*p))
        .collect();
    assert!(added.contains_key(&"skopeo".to_owned()), "{added:?}");
    let skopeo_kib: u64 = added.values().copied().sum();

    // The preload's own bytes beyond skopeo, against the whole image.
    let own = tree_bytes(&layout)
        + [
            "/opt/kind-crio/preload.sh",
            "/opt/kind-crio/policy.json",
            "/etc/systemd/system/kind-crio-preload.service",
        ]
        .iter()
        .map(|p| std::fs::metadata(root.join(p)).map_or(0, |m| m.len()))
        .sum::<u64>();
    let image_bytes = tree_bytes(root.path());
    let share = own as f64 / image_bytes as f64;
    eprintln!(
        "{test}: skopeo and its dependencies add {:.1} MiB installed ({}); the preload's \
         own files {own} bytes, {:.4} % of the {:.1} MiB image",
        skopeo_kib as f64 / 1024.0,
        added
            .iter()
            .map(|(p, s)| format!("{p} {s} KiB"))
            .collect::<Vec<_>>()
            .join(", "),
        share * 100.0,
        image_bytes as f64 / (1024.0 * 1024.0)
    );
    assert!(share < 0.01, "{own} of {image_bytes} bytes");

    // Booted: the node's own systemd reaches multi-user.target and starts
    // CRI-O while the import runs; the kubelet, started as kubeadm starts it,
    // waits for the import; every image lands in CRI-O's storage once, with
    // all its names. A second boot on the same /var (as after `docker
    // restart` of a kind node), with the kubelet configured by then, imports
    // nothing and its kubelet still starts after the preload.
    let n = imported.len();
    let stored = held.len();
    let layers: usize = preloaded
        .iter()
        .filter(|s| s.reference == whiteout)
        .map(|s| s.layer_sizes.len())
        .sum();
    let first = boot(
        &node,
        &dir.path().join("boot-1"),
        &recorded,
        &imported,
        layers,
    );
    assert!(
        first.preload_log.contains(&format!(
            "{stored} images in the node image's store; {n} images: {n} imported, 0 already present, 0 failed"
        )),
        "{}",
        first.preload_log
    );
    assert_eq!(
        first.status,
        status_want(&recorded, |r| if r == whiteout {
            "imported"
        } else {
            "stored"
        })
    );
    let took = first.preload_finished - first.preload_started;
    assert!(
        took >= 2_000_000,
        "the import took {took} µs: too short to tell the orders apart\n{}",
        first.preload_log
    );
    // kind's gate: the target is reached while the import still runs.
    assert!(
        first.target_reached < first.preload_finished,
        "multi-user.target reached at {} µs, the preload finished at {} µs (started at {} µs)",
        first.target_reached,
        first.preload_finished,
        first.preload_started
    );
    assert_eq!(first.preload_when_target_reached, "activating");
    // What kind reads: the console shows the line kind's boot gate matches
    // (`Reached target .*Multi-User System.*`) before the preload's end.
    let console = strip_ansi(&first.console);
    let lines: Vec<&str> = console.lines().collect();
    let reached = lines
        .iter()
        .position(|l| l.contains("Reached target ") && l.contains("Multi-User System"));
    let finished = lines
        .iter()
        .position(|l| l.contains("Finished ") && l.contains("kind-crio-preload"));
    assert!(
        matches!((reached, finished), (Some(r), Some(f)) if r < f),
        "the console's lines {reached:?} and {finished:?}:\n{console}"
    );
    // CRI-O is up before the import starts: the two never compete for the
    // store while CRI-O starts.
    assert!(
        first.crio_active <= first.preload_started,
        "CRI-O active at {} µs, the preload started at {} µs",
        first.crio_active,
        first.preload_started
    );
    eprintln!(
        "{test}: the preload ran from {} µs to {} µs; multi-user.target at {} µs, \
         CRI-O active at {} µs, the kubelet's main process at {} µs",
        first.preload_started,
        first.preload_finished,
        first.target_reached,
        first.crio_active,
        first.kubelet_started,
    );
    let second = boot(
        &node,
        &dir.path().join("boot-2"),
        &recorded,
        &imported,
        layers,
    );
    assert!(
        second.preload_log.contains(&format!(
            "{stored} images in the node image's store; {n} images: 0 imported, {n} already present, 0 failed"
        )),
        "{}",
        second.preload_log
    );
    assert_eq!(
        second.status,
        status_want(&recorded, |r| if r == whiteout {
            "present"
        } else {
            "stored"
        })
    );
}

/// The status file a booted node must show: `outcome` for every reference.
fn status_want(
    recorded: &[(String, String)],
    outcome: impl Fn(&str) -> &'static str,
) -> Vec<String> {
    let mut want: Vec<String> = recorded
        .iter()
        .map(|(r, d)| format!("{} {r} {d}", outcome(r)))
        .collect();
    want.sort_unstable_by(|a, b| a.split(' ').nth(1).cmp(&b.split(' ').nth(1)));
    want
}

/// `text` without terminal escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// What the check unit saw in a booted node (times: µs since boot).
struct Booted {
    console: String,
    preload_log: String,
    status: Vec<String>,
    preload_started: u64,
    preload_finished: u64,
    target_reached: u64,
    preload_when_target_reached: String,
    crio_active: u64,
    kubelet_started: u64,
}

/// The check the booted node runs once multi-user.target is reached: what
/// the target is ordered after and the preload's state at that moment; then
/// the kubelet started as kubeadm starts it (its configuration written,
/// `systemctl start`); then the units' times, the preload's journal and status
/// file, whether each recorded image is in CRI-O's storage under its name and
/// manifest digest, and the store's own records; then it powers the node off.
const BOOT_CHECK: &str = r#"#!/bin/bash
out=/kind-crio-check
trap 'systemctl poweroff --no-block' EXIT
systemctl is-active kind-crio-preload.service >"${out}/preload-at-target"
systemctl list-dependencies --plain --no-pager --after multi-user.target >"${out}/after"
systemctl list-dependencies --plain --no-pager --after --all multi-user.target >"${out}/after-all"
mkdir -p /var/lib/kubelet
[[ -f /var/lib/kubelet/config.yaml ]] || echo "kind: KubeletConfiguration" >/var/lib/kubelet/config.yaml
show() {
    systemctl show --property=ActiveState,SubState,Result,ExecMainStatus,ActiveEnterTimestampMonotonic,InactiveExitTimestampMonotonic,ExecMainStartTimestampMonotonic "$1" >"${out}/$1"
}
systemctl start kubelet.service >"${out}/kubelet-start" 2>&1
echo "exit $?" >>"${out}/kubelet-start"
show kubelet.service
# Whatever the kubelet did, the rest is read once the preload is over.
systemctl start kind-crio-preload.service
for unit in kind-crio-preload.service crio.service multi-user.target; do
    show "${unit}"
done
journalctl --boot --output=cat --unit=kind-crio-preload.service >"${out}/preload.log" 2>&1
cp /run/kind-crio/preload.status "${out}/preload.status"
# As CRI-O finds them: through the node's storage configuration, its
# read-only store included.
while read -r ref digest; do
    if err=$(skopeo inspect --raw "containers-storage:${ref}@${digest}" 2>&1 >/dev/null); then
        echo "${ref} ${digest} present"
    else
        echo "${ref} ${digest} missing: ${err}"
    fi
done </opt/kind-crio/preload/images.txt >"${out}/images"
# CRI-O's own store on /var: what the boot import wrote.
cp /var/lib/containers/storage/overlay-images/images.json "${out}/store-images.json"
cp /var/lib/containers/storage/overlay-layers/layers.json "${out}/store-layers.json"
"#;

/// Ordered after multi-user.target (so the target is not ordered after it:
/// systemd adds no default ordering that would make a loop).
const BOOT_CHECK_UNIT: &str = "[Unit]
Description=Test: what the booted node shows of the preload, then power off
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/bin/kind-crio-check.sh
";

/// Test-only changes to the booted copy: skopeo made slower per copy (so the
/// import takes long enough for the orders to show), a CRI-O and a kubelet
/// that start and stay running, and kind's kubelet cgroup script (its
/// ExecStartPre runs it on cgroup v2).
const SLOW_SKOPEO: &str = "#!/bin/sh
# Test only: the real skopeo, two seconds slower per copy.
case \" $* \" in *' copy '*) sleep 2 ;; esac
exec /usr/bin/skopeo \"$@\"
";

const CRIO_STAYS_UP: &str = "[Service]
Type=simple
ExecStart=
ExecStart=/bin/sleep infinity
";

const KUBELET_STAYS_UP: &str = "#!/bin/sh
# Test only: a kubelet that starts and stays running.
exec sleep infinity
";

const KUBELET_CGROUP_SCRIPT: &str = "#!/bin/sh
exit 0
";

/// Boots `node` (a root file system) with systemd-nspawn, the image's own
/// systemd as PID 1, until the check unit powers it off; asserts what every
/// boot must show and returns the rest.
/// `recorded` is every preloaded image, `imported` those the boot import
/// stores on `/var`, with `layers` layers in all.
fn boot(
    node: &Path,
    results: &Path,
    recorded: &[(String, String)],
    imported: &[(String, String)],
    layers: usize,
) -> Booted {
    std::fs::create_dir_all(results).expect("a results directory");
    let write = |path: &str, text: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let p = node.join(path);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("a directory");
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    write("usr/local/bin/kind-crio-check.sh", BOOT_CHECK, 0o755);
    write(
        "etc/systemd/system/kind-crio-check.service",
        BOOT_CHECK_UNIT,
        0o644,
    );
    write("usr/local/bin/skopeo", SLOW_SKOPEO, 0o755);
    write(
        "etc/systemd/system/crio.service.d/99-test.conf",
        CRIO_STAYS_UP,
        0o644,
    );
    write("usr/bin/kubelet", KUBELET_STAYS_UP, 0o755);
    if !node.join("kind/bin/create-kubelet-cgroup-v2.sh").exists() {
        write(
            "kind/bin/create-kubelet-cgroup-v2.sh",
            KUBELET_CGROUP_SCRIPT,
            0o755,
        );
    }
    let wants = node.join("etc/systemd/system/multi-user.target.wants/kind-crio-check.service");
    let _ = std::fs::remove_file(&wants);
    std::os::unix::fs::symlink("/etc/systemd/system/kind-crio-check.service", &wants)
        .expect("enable the check unit");

    // --keep-unit and --register=no: no host systemd or machined is needed.
    static BOOTS: AtomicUsize = AtomicUsize::new(0);
    let machine = format!(
        "kind-crio-test-{}-{}",
        std::process::id(),
        BOOTS.fetch_add(1, Ordering::Relaxed)
    );
    let console = results.join("console.log");
    let mut child = Command::new("systemd-nspawn")
        .args(["--quiet", "--boot", "--register=no", "--keep-unit"])
        .args(["--console=read-only", "--private-network"])
        .arg(format!("--machine={machine}"))
        .arg(format!("--directory={}", node.display()))
        .arg(format!("--bind={}:/kind-crio-check", results.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&console).expect("the console log"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run systemd-nspawn");
    let deadline = Instant::now() + std::time::Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for systemd-nspawn") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // nspawn leaves its propagation directory behind when /run is no tmpfs.
    let _ = std::fs::remove_dir_all(Path::new("/run/systemd/nspawn/propagate").join(&machine));
    let console_text = std::fs::read_to_string(&console).unwrap_or_default();
    let file = |name: &str| {
        std::fs::read_to_string(results.join(name)).unwrap_or_else(|e| {
            panic!("{name} from the booted node: {e} (nspawn {status:?}); console:\n{console_text}")
        })
    };
    let show = |unit: &str| -> BTreeMap<String, String> {
        file(unit)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let time = |props: &BTreeMap<String, String>, key: &str| -> u64 {
        props[key]
            .parse()
            .unwrap_or_else(|e| panic!("{key}: {e}: {props:?}"))
    };
    let preload = show("kind-crio-preload.service");
    let crio = show("crio.service");
    let kubelet = show("kubelet.service");
    let target = show("multi-user.target");
    let preload_log = file("preload.log");
    // The unit ran and succeeded.
    assert_eq!(
        preload["ActiveState"], "active",
        "{preload:?}\n{preload_log}"
    );
    assert_eq!(preload["Result"], "success", "{preload:?}\n{preload_log}");
    let preload_started = time(&preload, "InactiveExitTimestampMonotonic");
    let preload_finished = time(&preload, "ActiveEnterTimestampMonotonic");
    assert!(preload_started > 0 && preload_finished >= preload_started);
    // Nothing multi-user.target waits for is ordered after the preload, not
    // even through another unit; the listing itself has the units it should.
    for listing in ["after", "after-all"] {
        let units = file(listing);
        assert!(
            !units.contains("kind-crio-preload"),
            "multi-user.target is ordered after the preload ({listing}):\n{units}"
        );
        for expected in ["crio.service", "kubelet.service", "basic.target"] {
            assert!(units.contains(expected), "{listing}:\n{units}");
        }
    }
    // The kubelet, started as kubeadm starts it, ran its main process only
    // once the preload had finished.
    assert!(
        file("kubelet-start").ends_with("exit 0\n"),
        "{}",
        file("kubelet-start")
    );
    assert_eq!(kubelet["SubState"], "running", "{kubelet:?}");
    let kubelet_started = time(&kubelet, "ExecMainStartTimestampMonotonic");
    assert!(
        kubelet_started >= preload_finished,
        "the kubelet's main process started at {kubelet_started} µs, the preload finished at \
         {preload_finished} µs"
    );
    assert_eq!(crio["SubState"], "running", "{crio:?}");
    // Every recorded image is in CRI-O's storage, name and digest, in its
    // own store or in the read-only one.
    let images = file("images");
    let mut want: Vec<String> = recorded
        .iter()
        .map(|(r, d)| format!("{r} {d} present"))
        .collect();
    want.sort_unstable();
    let mut got: Vec<String> = images.lines().map(str::to_owned).collect();
    got.sort_unstable();
    assert_eq!(got, want, "{preload_log}");
    // Each imported manifest stored once, under all its names.
    let mut by_digest: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (r, d) in imported {
        by_digest.entry(d.as_str()).or_default().push(r.clone());
    }
    let mut want: Vec<(String, Vec<String>)> = by_digest
        .into_iter()
        .map(|(d, mut names)| {
            names.sort_unstable();
            (d.to_owned(), names)
        })
        .collect();
    want.sort_unstable();
    let stored: serde_json::Value =
        serde_json::from_str(&file("store-images.json")).expect("images.json is JSON");
    let mut got: Vec<(String, Vec<String>)> = stored
        .as_array()
        .expect("an image list")
        .iter()
        .map(|i| {
            let names = sorted_names(i);
            (i["digest"].as_str().expect("a digest").to_owned(), names)
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, want, "the store's images.json");
    let stored_layers: serde_json::Value =
        serde_json::from_str(&file("store-layers.json")).expect("layers.json is JSON");
    assert_eq!(
        stored_layers.as_array().map(Vec::len),
        Some(layers),
        "the store's layers.json"
    );
    let status_file: Vec<String> = file("preload.status").lines().map(str::to_owned).collect();
    Booted {
        console: console_text.clone(),
        preload_log,
        status: status_file,
        preload_started,
        preload_finished,
        target_reached: time(&target, "ActiveEnterTimestampMonotonic"),
        preload_when_target_reached: file("preload-at-target").trim().to_owned(),
        crio_active: time(&crio, "ActiveEnterTimestampMonotonic"),
        kubelet_started,
    }
}
