//! `cargo xtask bench tags`: how long listing tags takes with our binary and
//! with `skopeo list-tags`, measured in the same run against the same local
//! CNCF distribution registry, runs interleaved so drift hits both alike.
//!
//! Also timed: one bare HTTP GET of the same tag list ("registry alone"), the
//! floor both clients share, so the ratio can be read as server time plus
//! client time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testkit::{Auth, Registry};

use crate::ui::Ui;

mod preload;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// Time `cargo xtask tags --json` against `skopeo list-tags` on a local registry.
    #[command(after_help = "\
Needs docker-registry and skopeo (Debian packages). Prints, per repository size, the
median wall time of each client, the ratio ours/skopeo, and the time of one bare HTTP
GET of the same list (the registry's own share, which no client can go below).")]
    Tags(BenchTagsArgs),
    /// Time preloading kind's images into CRI-O against containerd's own unpack of them.
    #[command(after_help = "\
Needs root and containerd, skopeo, podman and jq (Debian packages; containerd 2.x from
target/tools where .ci/sid-tools installed it, and pigz for unpigz, as kind's node has).
Loads stand-in images (--set kind-sized: kind's set at about its real sizes; --set small
--mib N) into a private containerd as kind does, then times, interleaved, on 1 node and on
3 at once: containerd unpacking them and creating and mounting a container of each (the
anchor); the boot import (the rendered preload.sh); and the read-only store the rendered
preload-record.sh fills, read by podman beside a fresh store (podman images; podman create
+ mount). Prints medians, the ratios to containerd's, the size the store adds to the node
image, and whether each target is met.")]
    Preload(preload::BenchPreloadArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchTagsArgs {
    /// Repository sizes (tag counts) to measure.
    #[arg(long, value_delimiter = ',', default_value = "2000,20000")]
    pub sizes: Vec<usize>,

    /// Timed runs of each client per size (after two warm-up runs).
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
}

/// Medians for one repository size.
#[derive(Debug, Clone, Copy)]
struct Row {
    tags: usize,
    ours: Duration,
    skopeo: Duration,
    floor: Duration,
}

pub fn run(args: &BenchArgs, ui: &Ui) -> Result<()> {
    match &args.what {
        BenchWhat::Tags(a) => tags(a, ui),
        BenchWhat::Preload(a) => preload::run(a, ui),
    }
}

fn tags(args: &BenchTagsArgs, ui: &Ui) -> Result<()> {
    for tool in ["docker-registry", "skopeo"] {
        if testkit::find_on_path(tool).is_none() {
            bail!(
                "{tool} not found on PATH; install the Debian package of that name (`bash .ci/run` does)"
            );
        }
    }
    if args.runs == 0 || args.sizes.contains(&0) {
        bail!("--runs and every --sizes value must be at least 1");
    }
    let ours = std::env::current_exe().context("cannot find our own binary")?;
    let registry = ui.step("Starting a local registry", || {
        Ok(Registry::start("bench-tags", Auth::None))
    })?;
    let mut rows = Vec::new();
    for &n in &args.sizes {
        let path = format!("bench/n{n}");
        ui.step(&format!("Creating {n} tags"), || {
            registry.push(&path, "v1.0.0", &path);
            let names: Vec<String> = (1..n).map(tag_name).collect();
            registry.make_tags(&path, "v1.0.0", &names);
            Ok(())
        })?;
        let row = ui.step(&format!("Timing {n} tags, {} runs each", args.runs), || {
            measure(&registry, &path, n, &ours, args.runs)
        })?;
        rows.push(row);
    }
    print!("{}", report(&rows, args.runs));
    Ok(())
}

/// Distinct names in kind's style, so sorting work is realistic.
fn tag_name(i: usize) -> String {
    format!("v1.{}.{}", i / 100, i % 100)
}

fn measure(registry: &Registry, path: &str, n: usize, ours: &Path, runs: usize) -> Result<Row> {
    let repo = format!("{}/{path}", registry.host());
    let ours_cmd = || {
        let mut c = Command::new(ours);
        c.args(["tags", "--json", &repo]);
        c
    };
    let skopeo_cmd = || {
        let mut c = testkit::skopeo_command();
        c.args([
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{repo}"),
        ]);
        c
    };
    let target = format!("/v2/{path}/tags/list");
    let floor = || -> Result<Duration> {
        let started = Instant::now();
        let resp = testkit::http(registry.addr(), "GET", &target, &[])
            .context("bare GET of the tag list")?;
        let took = started.elapsed();
        if resp.status != 200 {
            bail!("bare GET of {target}: HTTP {}", resp.status);
        }
        Ok(took)
    };
    // Both clients must see the same n tags before anything is timed.
    let check = |mut c: Command, who: &str| -> Result<()> {
        let out = c.output().with_context(|| format!("running {who}"))?;
        if !out.status.success() {
            bail!(
                "{who} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("{who} printed no JSON"))?;
        let got = v["Tags"].as_array().map_or(0, Vec::len);
        if got != n {
            bail!("{who} listed {got} tags, expected {n}");
        }
        Ok(())
    };
    check(ours_cmd(), "kind-crio")?;
    check(skopeo_cmd(), "skopeo")?;
    let (mut a, mut b, mut f) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 2 {
        let ta = time(ours_cmd())?;
        let tb = time(skopeo_cmd())?;
        let tf = floor()?;
        if i >= 2 {
            a.push(ta);
            b.push(tb);
            f.push(tf);
        }
    }
    Ok(Row {
        tags: n,
        ours: median(&mut a),
        skopeo: median(&mut b),
        floor: median(&mut f),
    })
}

fn time(mut c: Command) -> Result<Duration> {
    let started = Instant::now();
    let status = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {:?}", c.get_program()))?;
    let took = started.elapsed();
    if !status.success() {
        bail!("{:?} failed ({status}) during timing", c.get_program());
    }
    Ok(took)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The printed report: a table, growth, and the target verdicts. Pure.
fn report(rows: &[Row], runs: usize) -> String {
    let mut out = format!(
        "Listing tags from a local CNCF distribution registry; medians of {runs} interleaved runs\n\
         {:>8}  {:>12}  {:>12}  {:>14}  {:>16}\n",
        "tags", "kind-crio", "skopeo", "ratio (≤0.50)", "registry alone"
    );
    for r in rows {
        let ratio = ms(r.ours) / ms(r.skopeo);
        out += &format!(
            "{:>8}  {:>9.1} ms  {:>9.1} ms  {:>13.2}×  {:>13.1} ms\n",
            r.tags,
            ms(r.ours),
            ms(r.skopeo),
            ratio,
            ms(r.floor)
        );
    }
    for r in rows {
        let client = |d: Duration| (ms(d) - ms(r.floor)).max(0.0);
        out += &format!(
            "{} tags: time above the registry's own: kind-crio {:.1} ms, skopeo {:.1} ms ({:.2}×)\n",
            r.tags,
            client(r.ours),
            client(r.skopeo),
            client(r.ours) / client(r.skopeo).max(f64::EPSILON)
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.tags > first.tags
    {
        let size = last.tags as f64 / first.tags as f64;
        out += &format!(
            "growth {} → {} tags (×{size:.0} tags): kind-crio ×{:.1}, skopeo ×{:.1}, registry alone ×{:.1}\n",
            first.tags,
            last.tags,
            ms(last.ours) / ms(first.ours),
            ms(last.skopeo) / ms(first.skopeo),
            ms(last.floor) / ms(first.floor),
        );
    }
    let verdicts: Vec<String> = rows
        .iter()
        .map(|r| {
            let ok = ms(r.ours) <= 0.5 * ms(r.skopeo);
            format!("{} tags {}", r.tags, if ok { "met" } else { "NOT met" })
        })
        .collect();
    out += &format!("target kind-crio ≤ 0.5× skopeo: {}\n", verdicts.join(", "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        let d = Duration::from_millis;
        assert_eq!(median(&mut [d(5), d(1), d(3)]), d(3));
        assert_eq!(
            median(&mut [d(4), d(1), d(3), d(2)]),
            Duration::from_micros(2500)
        );
    }

    #[test]
    fn report_reads_ratios_and_growth() {
        let d = Duration::from_millis;
        let rows = [
            Row {
                tags: 2000,
                ours: d(4),
                skopeo: d(16),
                floor: d(2),
            },
            Row {
                tags: 20000,
                ours: d(22),
                skopeo: d(36),
                floor: d(20),
            },
        ];
        let r = report(&rows, 15);
        assert!(
            r.contains("    2000        4.0 ms       16.0 ms           0.25×            2.0 ms"),
            "{r}"
        );
        assert!(r.contains("20000 tags: time above the registry's own: kind-crio 2.0 ms, skopeo 16.0 ms (0.12×)"), "{r}");
        assert!(r.contains("growth 2000 → 20000 tags (×10 tags): kind-crio ×5.5, skopeo ×2.2, registry alone ×10.0"), "{r}");
        assert!(
            r.ends_with("target kind-crio ≤ 0.5× skopeo: 2000 tags met, 20000 tags NOT met\n"),
            "{r}"
        );
    }
}
