//! `cargo xtask refresh [--check]`: rewrite `configs/releases.toml` from the
//! public sources, print the difference, and with `--check` fail when the
//! file is behind them. For the weekly workflow and for people; never part of
//! `cargo xtask ci`, which stays offline.
//!
//! Steps, each a named step of a `Plan` (so `--dry-run` shows every URL and
//! fetches nothing):
//! 1. kind's latest release on GitHub: its notes' node images with their
//!    digests, and its default node image and base image (its Go sources at
//!    the release's tag);
//! 2. each of those digests in kindest/node's registry: it must exist; a tag
//!    that points elsewhere now is reported, the release's digest is kept;
//! 3. Kubernetes: the minors of the release schedule not past their end of
//!    life, each one's latest patch, and the newest version overall (a
//!    pre-release during a release cycle);
//! 4. CRI-O: which stable and prerelease streams its package repositories
//!    list, and whether each has a cri-o package (its newest release, for a
//!    stable stream);
//! 5. the file: assembled from all of that (pure), compared, written.

mod diff;
mod http;
pub mod sources;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use node_image::CrioStream;
use registry::{Client, Digest, ImageRef, KubernetesVersion, Repository};

use self::http::{Http, HttpOptions};
use self::sources::{KindRelease, Scheduled};
use crate::ctx::Ctx;
use crate::releases::{
    Date, Kind, Minor, MinorLine, NodeImage, Prerelease, RELEASES_PATH, Release, Releases,
};
use crate::step::Plan;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Reads kind's latest GitHub release (its notes' node images and digests, and its
default node and base images), checks each digest in kindest/node's registry, reads
Kubernetes' release schedule and dl.k8s.io's version markers, and lists CRI-O's
package streams on download.opensuse.org. Prints the difference to the file on stdout.

GITHUB_TOKEN, when set, is sent to api.github.com only (it lifts the rate limit for
anonymous callers; no scopes needed). After a refresh, `cargo xtask codegen` updates
what follows from the defaults (images/crio/).

Examples:
  cargo xtask --dry-run refresh     # every URL it would read; reads and writes nothing
  cargo xtask refresh               # rewrite configs/releases.toml, print the diff
  cargo xtask refresh --check       # fail when configs/releases.toml is behind")]
pub struct RefreshArgs {
    /// Compare instead of writing; fail when configs/releases.toml is behind the sources.
    #[arg(long)]
    pub check: bool,
}

/// Where the sources are. `public()` in use; tests point it at fixtures.
#[derive(Clone)]
pub struct Sources {
    /// `https://api.github.com`
    pub github_api: String,
    /// `https://raw.githubusercontent.com`
    pub github_raw: String,
    /// `https://dl.k8s.io`
    pub dl_k8s: String,
    /// `https://download.opensuse.org`
    pub opensuse: String,
    /// Where the digests kind's notes name are checked: `docker.io/kindest/node`.
    pub node_repository: Repository,
    /// Sent to `github_api` only.
    pub github_token: Option<String>,
    pub http: HttpOptions,
    pub registry: registry::Options,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Sources")
            .field("github_api", &self.github_api)
            .field("github_raw", &self.github_raw)
            .field("dl_k8s", &self.dl_k8s)
            .field("opensuse", &self.opensuse)
            .field("node_repository", &self.node_repository)
            .field("github_token", &self.github_token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl Sources {
    pub fn public() -> Result<Sources> {
        Ok(Sources {
            github_api: "https://api.github.com".to_owned(),
            github_raw: "https://raw.githubusercontent.com".to_owned(),
            dl_k8s: "https://dl.k8s.io".to_owned(),
            opensuse: "https://download.opensuse.org".to_owned(),
            node_repository: Repository::parse("kindest/node")?,
            github_token: std::env::var("GITHUB_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
            http: HttpOptions::default(),
            registry: registry::Options::default(),
        })
    }

    fn release_url(&self) -> String {
        format!(
            "{}/repos/kubernetes-sigs/kind/releases/latest",
            self.github_api
        )
    }

    fn kind_file(&self, tag: &str, path: &str) -> String {
        format!("{}/kubernetes-sigs/kind/{tag}/{path}", self.github_raw)
    }

    fn schedule_url(&self) -> String {
        format!(
            "{}/kubernetes/website/main/data/releases/schedule.yaml",
            self.github_raw
        )
    }

    fn marker_url(&self, name: &str) -> String {
        format!("{}/release/{name}.txt", self.dl_k8s)
    }

    /// `kind` is `stable` or `prerelease`; `stream` empty for the listing.
    fn crio_url(&self, kind: &str, stream: &str) -> String {
        let base = format!("{}/repositories/isv:/cri-o:/{kind}:/", self.opensuse);
        if stream.is_empty() {
            base
        } else {
            format!("{base}{stream}/deb/Packages")
        }
    }
}

const IMAGE_GO: &str = "pkg/apis/config/defaults/image.go";
const DEFAULTS_GO: &str = "pkg/build/nodeimage/defaults.go";

/// What the sources say, in the shape the file needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gathered {
    pub kind: Option<KindRelease>,
    /// kind's default node image.
    pub default: Option<(KubernetesVersion, Digest)>,
    pub base_image: Option<ImageRef>,
    /// The images the release notes list (assemble adds the default if they lack it).
    pub images: Vec<(KubernetesVersion, Digest)>,
    /// Maintained minors with their latest patch, newest first.
    pub minors: Vec<(Scheduled, KubernetesVersion)>,
    /// The newest Kubernetes version overall (dl.k8s.io's latest.txt).
    pub latest: Option<KubernetesVersion>,
    /// Stable streams with a cri-o release, and that release.
    pub crio_stable: BTreeMap<Minor, Release>,
    /// Prerelease streams with a cri-o package.
    pub crio_prerelease: BTreeSet<Minor>,
    /// Things worth knowing that change nothing (a tag that moved on).
    pub notes: Vec<String>,
}

/// The minors that are maintained on `today`: scheduled, and not past their end of life.
pub fn maintained(schedule: &[Scheduled], today: Date) -> Vec<Scheduled> {
    let mut out: Vec<Scheduled> = schedule
        .iter()
        .filter(|s| s.end_of_life.is_none_or(|eol| eol >= today))
        .cloned()
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.minor));
    out
}

/// The CRI-O stream for a minor: its stable stream where CRI-O publishes
/// one (with that stream's newest release), else its prerelease stream,
/// else main. A Kubernetes pre-release takes the prerelease stream or main.
pub fn pair(minor: Minor, prerelease: bool, g: &Gathered) -> (CrioStream, Option<Release>) {
    let Minor { major, minor: m } = minor;
    if !prerelease && let Some(r) = g.crio_stable.get(&minor) {
        return (CrioStream::Stable { major, minor: m }, Some(*r));
    }
    if g.crio_prerelease.contains(&minor) {
        return (CrioStream::Prerelease { major, minor: m }, None);
    }
    (CrioStream::Main, None)
}

/// The file from what the sources said. Pure; validated as a read file is.
pub fn assemble(g: &Gathered) -> Result<Releases> {
    let (Some(kind), Some((default, default_digest)), Some(base_image), Some(latest)) =
        (&g.kind, &g.default, &g.base_image, &g.latest)
    else {
        bail!("a source was not read (kind's release, its defaults, or dl.k8s.io's latest.txt)");
    };
    let mut images = g.images.clone();
    match images.iter().find(|(v, _)| v == default) {
        Some((_, d)) if d != default_digest => bail!(
            "kind {}'s default node image {default}@{default_digest} ({IMAGE_GO}) is not the one its release notes name ({d}); read {} and report it to kind",
            kind.version,
            kind.url
        ),
        Some(_) => {}
        None => images.push((default.clone(), default_digest.clone())),
    }
    let node_images = images
        .iter()
        .map(|(v, d)| NodeImage {
            kubernetes: v.clone(),
            digest: Some(d.clone()),
            kind: kind.version,
        })
        .collect();
    let minors: Vec<MinorLine> = g
        .minors
        .iter()
        .map(|(s, patch)| {
            let (crio, crio_release) = pair(s.minor, false, g);
            MinorLine {
                kubernetes: s.minor,
                latest: patch.clone(),
                end_of_life: s.end_of_life,
                crio,
                crio_release,
            }
        })
        .collect();
    let newest_release = minors.iter().map(|m| &m.latest).max();
    let prerelease =
        (latest.is_prerelease() && newest_release.is_none_or(|r| latest > r)).then(|| Prerelease {
            kubernetes: latest.clone(),
            crio: pair(Minor::of(latest), true, g).0,
        });
    let releases = Releases {
        note: None,
        kind: Kind {
            version: kind.version,
            default: default.clone(),
            base_image: base_image.clone(),
            node_repository: Repository::parse("kindest/node")?,
        },
        node_images,
        minors,
        prerelease,
    };
    // Through the text, so everything a reader of the file checks holds.
    Releases::parse(&releases.render()).context("the file assembled from the sources")
}

/// The steps that read the sources into `found`.
fn plan<'a>(
    sources: &'a Sources,
    http: &'a Http,
    client: &'a Client,
    today: Date,
    found: &'a RefCell<Gathered>,
) -> Plan<'a> {
    let mut plan = Plan::new();
    plan.native(
        "Reading kind's latest release",
        format!(
            "GET {}, then {} and {}",
            sources.release_url(),
            sources.kind_file("TAG", IMAGE_GO),
            sources.kind_file("TAG", DEFAULTS_GO)
        ),
        move || read_kind(sources, http, &mut found.borrow_mut()),
    );
    plan.native(
        format!("Checking kind's node images in {}", sources.node_repository),
        format!(
            "HEAD {} for each image the release names, and by digest where the tag points elsewhere",
            client.url(
                &sources.node_repository,
                &format!("/v2/{}/manifests/TAG", sources.node_repository.path())
            )
        ),
        move || check_images(sources, client, &mut found.borrow_mut()),
    );
    plan.native(
        "Reading Kubernetes' releases",
        format!(
            "GET {}, {} and {} for each maintained minor",
            sources.schedule_url(),
            sources.marker_url("latest"),
            sources.marker_url("stable-X.Y")
        ),
        move || read_kubernetes(sources, http, today, &mut found.borrow_mut()),
    );
    plan.native(
        "Reading CRI-O's package repositories",
        format!(
            "GET {} and {}, then {} of the streams they list for those minors",
            sources.crio_url("stable", ""),
            sources.crio_url("prerelease", ""),
            sources.crio_url("stable", "vX.Y")
        ),
        move || read_crio(sources, http, &mut found.borrow_mut()),
    );
    plan
}

fn get(http: &Http, url: &str, what: &str) -> Result<String> {
    http.get(url, &[])?
        .with_context(|| format!("GET {url}: 404 Not Found; {what} should be there"))
}

fn read_kind(sources: &Sources, http: &Http, g: &mut Gathered) -> Result<()> {
    let url = sources.release_url();
    let auth = sources.github_token.as_ref().map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Accept", "application/vnd.github+json"),
        ("X-GitHub-Api-Version", "2022-11-28"),
    ];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let json = http.get(&url, &headers)?.with_context(|| {
        format!("GET {url}: 404 Not Found; kind's latest release should be there")
    })?;
    let release = sources::kind_release(&json).with_context(|| format!("in {url}"))?;
    let tag = release.version.to_string();
    g.images = sources::release_notes_images(&release.body)
        .with_context(|| format!("in kind {tag}'s release notes ({})", release.url))?;
    let image_go = sources.kind_file(&tag, IMAGE_GO);
    g.default = Some(
        sources::kind_default_image(&get(http, &image_go, "kind's default node image")?)
            .with_context(|| format!("in {image_go}"))?,
    );
    let defaults_go = sources.kind_file(&tag, DEFAULTS_GO);
    g.base_image = Some(
        sources::kind_base_image(&get(http, &defaults_go, "kind's default base image")?)
            .with_context(|| format!("in {defaults_go}"))?,
    );
    g.kind = Some(release);
    Ok(())
}

/// Every digest kind's release names must be in the registry; where the
/// tag points elsewhere now (a later kind rebuilt it), say so and keep the
/// release's digest.
fn check_images(sources: &Sources, client: &Client, g: &mut Gathered) -> Result<()> {
    let repo = &sources.node_repository;
    let mut images = g.images.clone();
    if let Some(d) = &g.default
        && !images.iter().any(|(v, _)| v == &d.0)
    {
        images.push(d.clone());
    }
    let kind = g
        .kind
        .as_ref()
        .map(|k| k.version.to_string())
        .unwrap_or_default();
    for (version, digest) in &images {
        let tag = version.to_string();
        let today = match client.manifest_digest(repo, &tag) {
            Ok(d) => Some(d),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e).with_context(|| format!("looking up {repo}:{tag}")),
        };
        if today.as_ref().map(registry::Digest::as_str) == Some(digest.as_str()) {
            continue;
        }
        let exists = client
            .manifest_exists(repo, digest)
            .with_context(|| format!("looking up {repo}@{digest}"))?;
        if !exists {
            bail!(
                "kind {kind}'s release notes name {repo}:{tag}@{digest}, but the registry has no such manifest; check the notes and report it to kind"
            );
        }
        g.notes.push(match today {
            Some(d) => format!(
                "{repo}:{tag} now points to {d}, not to the digest kind {kind} released; pinned to the released {digest}"
            ),
            None => format!(
                "{repo} has no tag {tag} any more; pinned to the released {digest}, which it still has"
            ),
        });
    }
    Ok(())
}

fn read_kubernetes(sources: &Sources, http: &Http, today: Date, g: &mut Gathered) -> Result<()> {
    let url = sources.schedule_url();
    let schedule = sources::schedule(&get(http, &url, "Kubernetes' release schedule")?)
        .with_context(|| format!("in {url}"))?;
    let url = sources.marker_url("latest");
    g.latest = Some(
        sources::version_marker(&get(http, &url, "the newest Kubernetes version")?, None)
            .with_context(|| format!("in {url}"))?,
    );
    g.minors.clear();
    for s in maintained(&schedule, today) {
        let name = format!("stable-{}.{}", s.minor.major, s.minor.minor);
        let url = sources.marker_url(&name);
        // A minor scheduled before its first release has no marker yet.
        let Some(text) = http.get(&url, &[])? else {
            g.notes.push(format!(
                "Kubernetes {} is on the release schedule but {url} does not exist yet: left out",
                s.minor
            ));
            continue;
        };
        let patch =
            sources::version_marker(&text, Some(s.minor)).with_context(|| format!("in {url}"))?;
        g.minors.push((s, patch));
    }
    if g.minors.is_empty() {
        bail!(
            "Kubernetes' release schedule ({}) names no maintained minor on {today}",
            sources.schedule_url()
        );
    }
    Ok(())
}

fn read_crio(sources: &Sources, http: &Http, g: &mut Gathered) -> Result<()> {
    let listing = |kind: &str| -> Result<BTreeSet<String>> {
        let url = sources.crio_url(kind, "");
        let streams = sources::listed_streams(&get(http, &url, "CRI-O's stream listing")?);
        if streams.is_empty() {
            bail!("GET {url}: the listing links to no stream (vX.Y/); its format changed");
        }
        Ok(streams)
    };
    let stable = listing("stable")?;
    let prerelease = listing("prerelease")?;
    let newest = |kind: &str, minor: Minor| -> Result<Option<sources::CrioPackage>> {
        let url = sources.crio_url(kind, &minor.to_string());
        match http.get(&url, &[])? {
            None => Ok(None),
            Some(text) => sources::newest_crio(&text).with_context(|| format!("in {url}")),
        }
    };
    let pre_minor = g
        .latest
        .as_ref()
        .filter(|v| v.is_prerelease())
        .map(Minor::of);
    g.crio_stable.clear();
    g.crio_prerelease.clear();
    for minor in g.minors.iter().map(|(s, _)| s.minor) {
        if !stable.contains(&minor.to_string()) {
            continue;
        }
        match newest("stable", minor)? {
            Some(p) if !p.prerelease => {
                g.crio_stable.insert(minor, p.release);
            }
            _ => g.notes.push(format!(
                "CRI-O's stable:/{minor} is listed but holds no cri-o release yet"
            )),
        }
    }
    let wanted: BTreeSet<Minor> = g
        .minors
        .iter()
        .map(|(s, _)| s.minor)
        .filter(|m| !g.crio_stable.contains_key(m))
        .chain(pre_minor)
        .collect();
    for minor in wanted {
        if prerelease.contains(&minor.to_string()) && newest("prerelease", minor)?.is_some() {
            g.crio_prerelease.insert(minor);
        }
    }
    Ok(())
}

/// What a refresh found and did.
#[derive(Debug, Default)]
pub struct Report {
    /// `diff -u` from the file to what the sources say; empty when up to date.
    pub diff: String,
    /// The file is behind the sources (and, without `--check`, was rewritten).
    pub behind: bool,
    /// Things worth knowing that change nothing (a tag that moved on).
    pub notes: Vec<String>,
}

/// Compares what the sources say with `path`, and writes it unless `check`.
fn compare(g: &Gathered, path: &Path, check: bool) -> Result<Report> {
    let text = assemble(g)?.render();
    let current = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let diff = diff::unified(
        &current,
        &text,
        RELEASES_PATH,
        &format!("{RELEASES_PATH} (from the sources)"),
    );
    if !check && !diff.is_empty() {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Report {
        behind: !diff.is_empty(),
        diff,
        notes: g.notes.clone(),
    })
}

/// The command on `sources`, with the file at `path`, carried out by `ctx`
/// (a dry run reads nothing and writes nothing, and reports nothing).
pub fn run_with(
    args: &RefreshArgs,
    sources: &Sources,
    path: &Path,
    today: Date,
    ctx: &Ctx,
) -> Result<Report> {
    let http = Http::new(sources.http.clone());
    let client = Client::new(sources.registry.clone());
    let found = RefCell::new(Gathered::default());
    let report = RefCell::new(Report::default());
    let plan = full_plan(
        args,
        sources,
        (&http, &client),
        path,
        today,
        (&found, &report),
    );
    ctx.carry_out(plan)?;
    Ok(report.into_inner())
}

/// Every step: gathering from the sources, then comparing (and writing).
fn full_plan<'a>(
    args: &RefreshArgs,
    sources: &'a Sources,
    (http, client): (&'a Http, &'a Client),
    path: &'a Path,
    today: Date,
    (found, report): (&'a RefCell<Gathered>, &'a RefCell<Report>),
) -> Plan<'a> {
    let mut plan = plan(sources, http, client, today, found);
    let check = args.check;
    plan.native(
        if check {
            format!("Comparing {RELEASES_PATH} with the sources")
        } else {
            format!("Writing {RELEASES_PATH}")
        },
        if check {
            "fail when it differs from what the sources say"
        } else {
            "only if it differs from what the sources say"
        },
        move || {
            *report.borrow_mut() = compare(&found.borrow(), path, check)?;
            Ok(())
        },
    );
    plan
}

pub fn run(args: &RefreshArgs, ctx: &Ctx) -> Result<()> {
    let root: PathBuf = ctx.sh.current_dir();
    let report = run_with(
        args,
        &Sources::public()?,
        &root.join(RELEASES_PATH),
        Date::today(),
        ctx,
    )?;
    if ctx.dry_run() {
        return Ok(());
    }
    for note in &report.notes {
        eprintln!("   note: {note}");
    }
    print!("{}", report.diff);
    match (report.behind, args.check) {
        (false, _) => eprintln!("{RELEASES_PATH} is up to date with the sources"),
        (true, true) => bail!(
            "{RELEASES_PATH} is behind the public sources (the difference is on stdout); run `cargo xtask refresh` and commit the result"
        ),
        (true, false) => eprintln!(
            "wrote {RELEASES_PATH}; next, `cargo xtask codegen` updates what follows from the defaults"
        ),
    }
    Ok(())
}
