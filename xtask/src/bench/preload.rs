//! `cargo xtask bench preload`: how long the first-boot import of kind's
//! preloaded images into CRI-O's storage takes, against plain decompression
//! of the same layers (`gzip -dc > /dev/null` of each layer's gzip form, one
//! after another), measured in the same run, interleaved, medians. Also shown:
//! reading the layers as containerd stores them (kind keeps its own images'
//! layers uncompressed: `cat` for those, `gzip -dc` for the rest), and bare
//! `skopeo copy` of each image, one after another, with nothing around it:
//! what the import costs before any of the script's own work.
//!
//! The images are the stand-in set of every shape kind leaves in containerd
//! (`testkit::oci::kind_like_set`), loaded into a private containerd as kind
//! loads them, recorded by the rendered `preload-record.sh`, imported by the
//! rendered `preload.sh` into a fresh store each run: overlay where this
//! machine supports it (as on a kind node's `/var` volume), vfs otherwise.

use super::{median, ms};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testkit::containerd::{CONTAINERD_TOOLS, Containerd};
use testkit::oci;

use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct BenchPreloadArgs {
    /// Layer bytes of the whole stand-in set, in MiB, before compression.
    #[arg(long, default_value_t = 64)]
    pub mib: usize,

    /// Timed runs of each measurement (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

/// Medians of one bench.
#[derive(Debug, Clone, Copy)]
struct Row {
    import: Duration,
    import_serial: Duration,
    skopeo: Duration,
    gzip: Duration,
    as_stored: Duration,
    jobs: usize,
}

pub fn run(args: &BenchPreloadArgs, ui: &Ui) -> Result<()> {
    for tool in CONTAINERD_TOOLS
        .iter()
        .chain(&["skopeo", "jq", "gzip", "tar"])
    {
        if testkit::find_on_path(tool).is_none() {
            bail!(
                "{tool} not found on PATH; install the Debian packages containerd, skopeo, jq (`bash .ci/run` does)"
            );
        }
    }
    if args.runs == 0 || args.mib == 0 {
        bail!("--runs and --mib must be at least 1");
    }
    let dir = testkit::TempDir::new("bench-preload");
    let ctx = dir.path().join("context");
    ui.step("Rendering the build context", || {
        dockerfile::write_context(&dockerfile::render(&sample_inputs()?), &ctx)
            .context("write the context")
    })?;
    let archives = ui.step(
        &format!("Making {} MiB of stand-in images", args.mib),
        || {
            oci::kind_like_set(args.mib << 20)
                .iter()
                .map(|spec| {
                    oci::build_archive(spec, &dir.path().join("archives"))
                        .map_err(anyhow::Error::msg)
                })
                .collect::<Result<Vec<_>>>()
        },
    )?;
    let containerd_root = dir.path().join("containerd");
    ui.step("Loading them into containerd as kind does", || {
        let c = Containerd::start(&containerd_root, None).map_err(anyhow::Error::msg)?;
        for a in &archives {
            c.import(a).map_err(anyhow::Error::msg)?;
        }
        c.stop().map_err(anyhow::Error::msg)
    })?;
    let layout = dir.path().join("preload");
    ui.step("Recording them (preload-record.sh)", || {
        let out = Command::new("bash")
            .arg(ctx.join("kind-crio/preload-record.sh"))
            .args(["--layout-only", "amd64"])
            .env("KIND_CRIO_CONTAINERD_ROOT", &containerd_root)
            .env("KIND_CRIO_PRELOAD_DIR", &layout)
            .output()
            .context("run preload-record.sh")?;
        if !out.status.success() {
            bail!(
                "preload-record.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    })?;
    let content = containerd_root.join("io.containerd.content.v1.content/blobs/sha256");
    let layers = stored_layers(&layout, &content)?;
    let driver = ui.step("Checking whether overlay storage works here", || {
        let probe = import(&ctx, &layout, &dir.path().join("probe"), "overlay", 1);
        remove_store(&dir.path().join("probe"));
        Ok(if probe.is_ok() { "overlay" } else { "vfs" })
    })?;
    let singles = one_entry_layouts(&layout, &dir.path().join("singles"))?;
    let policy = ctx.join("kind-crio/files/opt/kind-crio/policy.json");
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let row = ui.step(
        &format!("Timing {} runs each ({driver} storage)", args.runs),
        || {
            let gzips: Vec<(PathBuf, bool)> = archives
                .iter()
                .flat_map(|a| a.layer_gzips.iter().map(|p| (p.clone(), true)))
                .collect();
            let (mut a, mut b, mut g, mut f, mut k) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for i in 0..=args.runs {
                let store = dir.path().join(format!("store-{i}"));
                let ta = import(&ctx, &layout, &store, driver, jobs)?;
                let tb = import(&ctx, &layout, &store, driver, 1)?;
                let tg = floor(&gzips)?;
                let tf = floor(&layers)?;
                let tk = bare_skopeo(&singles, &policy, &store, driver)?;
                if i > 0 {
                    a.push(ta);
                    b.push(tb);
                    g.push(tg);
                    f.push(tf);
                    k.push(tk);
                }
            }
            Ok(Row {
                import: median(&mut a),
                import_serial: median(&mut b),
                skopeo: median(&mut k),
                gzip: median(&mut g),
                as_stored: median(&mut f),
                jobs,
            })
        },
    )?;
    let compressed: u64 = layers.iter().map(|(p, _)| file_len(p)).sum();
    print!(
        "{}",
        report(
            row,
            args.runs,
            archives.len(),
            layers.len(),
            compressed,
            driver
        )
    );
    Ok(())
}

/// Any valid inputs: the preload files do not depend on them.
fn sample_inputs() -> Result<dockerfile::Inputs> {
    let kubernetes = registry::KubernetesVersion::parse("v1.34.0").map_err(anyhow::Error::msg)?;
    let stream = dockerfile::CrioStream::for_kubernetes(&kubernetes);
    Ok(dockerfile::Inputs {
        source: dockerfile::CrioSource::Apt {
            repository: stream.apt_repository(),
        },
        stream,
        kubernetes,
        base_image: registry::ImageRef::parse("kindest/node:v1.34.0")
            .map_err(anyhow::Error::msg)?,
        arch: dockerfile::Arch::Amd64,
        mirrors: vec![],
        preload: dockerfile::Preload::Store,
    })
}

/// Every layer blob the recorded manifests name, and whether it is gzip.
fn stored_layers(layout: &Path, content: &Path) -> Result<Vec<(PathBuf, bool)>> {
    let read = |p: &Path| -> Result<serde_json::Value> {
        let bytes = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", p.display()))
    };
    let blob = |d: &str| content.join(d.trim_start_matches("sha256:"));
    let mut out = Vec::new();
    let index = read(&layout.join("index.json"))?;
    for e in index["manifests"]
        .as_array()
        .context("index.json has no manifests")?
    {
        let manifest = read(&blob(e["digest"].as_str().context("no digest")?))?;
        for l in manifest["layers"].as_array().context("no layers")? {
            let gzip = l["mediaType"].as_str().is_some_and(|t| t.ends_with("gzip"));
            out.push((blob(l["digest"].as_str().context("no digest")?), gzip));
        }
    }
    Ok(out)
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Removes a store. The overlay driver leaves its home (`STORE/overlay`)
/// bind-mounted on itself after skopeo exits: unmount what is below first.
fn remove_store(store: &Path) {
    // Mount points are listed canonical; test directories may hold `..`.
    let canonical = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
    let store = canonical.as_path();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut below: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| Path::new(m).starts_with(store))
        .collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in below {
        let _ = Command::new("umount").arg(m).status();
    }
    let _ = std::fs::remove_dir_all(store);
}

/// One run of the rendered `preload.sh` into a fresh store; its wall time.
/// The store is removed again afterwards.
fn import(ctx: &Path, layout: &Path, store: &Path, driver: &str, jobs: usize) -> Result<Duration> {
    let runroot = std::env::temp_dir().join(format!("kc-bench-{}", std::process::id()));
    remove_store(store);
    let _ = std::fs::remove_dir_all(&runroot);
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(ctx.join("kind-crio/files/opt/kind-crio/preload.sh"))
        .env("KIND_CRIO_PRELOAD_LAYOUT", layout)
        .env(
            "KIND_CRIO_PRELOAD_STORAGE",
            format!("{driver}@{}+{}", store.display(), runroot.display()),
        )
        .env(
            "KIND_CRIO_PRELOAD_POLICY",
            ctx.join("kind-crio/files/opt/kind-crio/policy.json"),
        )
        .env("KIND_CRIO_PRELOAD_JOBS", jobs.to_string())
        .output()
        .context("run preload.sh")?;
    let took = started.elapsed();
    remove_store(store);
    let _ = std::fs::remove_dir_all(&runroot);
    let log = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !log.contains(" 0 failed") || log.contains(" 0 imported") {
        bail!("preload.sh ({driver}) did not import every image:\n{log}");
    }
    Ok(took)
}

/// A layout of one entry (the same blobs) per image of `layout`, as the
/// boot script makes them, with the image's name: `(directory, name)`.
fn one_entry_layouts(layout: &Path, dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let bytes = std::fs::read(layout.join("index.json")).context("read the recorded index")?;
    let index: serde_json::Value =
        serde_json::from_slice(&bytes).context("the recorded index is not JSON")?;
    let mut out = Vec::new();
    for (n, entry) in index["manifests"]
        .as_array()
        .context("index.json has no manifests")?
        .iter()
        .enumerate()
    {
        let name = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .context("an entry without a name")?
            .to_owned();
        let single = dir.join(n.to_string());
        std::fs::create_dir_all(&single).context("create a one-entry layout")?;
        std::fs::copy(layout.join("oci-layout"), single.join("oci-layout"))
            .context("copy oci-layout")?;
        std::os::unix::fs::symlink(
            std::fs::read_link(layout.join("blobs")).context("the layout's blobs link")?,
            single.join("blobs"),
        )
        .context("link the blobs")?;
        let one = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
        std::fs::write(single.join("index.json"), one.to_string()).context("write index.json")?;
        out.push((single, name));
    }
    Ok(out)
}

/// `skopeo copy` of each image into a fresh store, one after another, and
/// nothing else; the store is removed again afterwards.
fn bare_skopeo(
    singles: &[(PathBuf, String)],
    policy: &Path,
    store: &Path,
    driver: &str,
) -> Result<Duration> {
    let runroot = std::env::temp_dir().join(format!("kc-bench-bare-{}", std::process::id()));
    remove_store(store);
    let _ = std::fs::remove_dir_all(&runroot);
    let started = Instant::now();
    for (dir, name) in singles {
        let out = Command::new("skopeo")
            .arg("--policy")
            .arg(policy)
            .args(["copy", "--quiet", "--preserve-digests"])
            .arg(format!("oci:{}", dir.display()))
            .arg(format!(
                "containers-storage:[{driver}@{}+{}]{name}",
                store.display(),
                runroot.display()
            ))
            .output()
            .context("run skopeo")?;
        if !out.status.success() {
            bail!(
                "skopeo copy of {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let took = started.elapsed();
    remove_store(store);
    let _ = std::fs::remove_dir_all(&runroot);
    Ok(took)
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

/// The printed report. Pure.
fn report(r: Row, runs: usize, images: usize, layers: usize, bytes: u64, driver: &str) -> String {
    let ratio = ms(r.import) / ms(r.gzip);
    let serial = ms(r.import_serial) / ms(r.gzip);
    let skopeo = ms(r.skopeo) / ms(r.gzip);
    format!(
        "Importing {images} images ({layers} layers, {:.1} MiB as containerd stores them) into \
         {driver} containers-storage; medians of {runs} interleaved runs; ratios to gzip -dc\n\
         {:>44}  {:>7.0} ms\n\
         {:>44}  {:>7.0} ms  {:>5.2}×\n\
         {:>44}  {:>7.0} ms  {skopeo:>5.2}×\n\
         {:>44}  {:>7.0} ms  {serial:>5.2}×\n\
         {:>44}  {:>7.0} ms  {ratio:>5.2}×\n\
         target import ≤ 1.5× decompression: {}\n",
        bytes as f64 / f64::from(1 << 20),
        "gzip -dc of every layer, serial",
        ms(r.gzip),
        "reading the layers as stored (gzip -dc, cat)",
        ms(r.as_stored),
        ms(r.as_stored) / ms(r.gzip),
        "skopeo copy alone, 1 at a time",
        ms(r.skopeo),
        "import, 1 at a time",
        ms(r.import_serial),
        format!("import, {} in parallel (the default)", r.jobs),
        ms(r.import),
        if ratio <= 1.5 { "met" } else { "NOT met" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_reads_ratios() {
        let d = Duration::from_millis;
        let r = report(
            Row {
                import: d(1200),
                import_serial: d(2000),
                skopeo: d(1800),
                gzip: d(1000),
                as_stored: d(500),
                jobs: 2,
            },
            5,
            4,
            9,
            48 << 20,
            "overlay",
        );
        assert!(r.starts_with("Importing 4 images (9 layers, 48.0 MiB as containerd stores them) into overlay containers-storage; medians of 5 interleaved runs; ratios to gzip -dc\n"), "{r}");
        assert!(
            r.contains("reading the layers as stored (gzip -dc, cat)      500 ms   0.50×"),
            "{r}"
        );
        assert!(
            r.contains("skopeo copy alone, 1 at a time     1800 ms   1.80×"),
            "{r}"
        );
        assert!(r.contains("import, 1 at a time     2000 ms   2.00×"), "{r}");
        assert!(
            r.contains("import, 2 in parallel (the default)     1200 ms   1.20×"),
            "{r}"
        );
        assert!(
            r.ends_with("target import ≤ 1.5× decompression: met\n"),
            "{r}"
        );
    }
}
