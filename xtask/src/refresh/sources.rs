//! Pure parsers for what `refresh` reads, one per source and format. None
//! does I/O; each error says what was expected, so a change of format
//! upstream shows up as a clear failure of the weekly run, not as a wrong
//! file.
//!
//! - kind's latest release: GitHub's REST API (`GET /repos/{owner}/{repo}/releases/latest`,
//!   JSON with `tag_name`, `html_url`, `draft`, `prerelease`, `body`); the body is the
//!   Markdown of the release notes, whose "Images ... built for this release" list names
//!   each node image as `` `kindest/node:vX.Y.Z@sha256:<hex>` ``.
//! - kind's defaults at that release: Go sources, `const Image = "..."`
//!   (`pkg/apis/config/defaults/image.go`) and `const DefaultBaseImage = "..."`
//!   (`pkg/build/nodeimage/defaults.go`).
//! - Kubernetes' release schedule: kubernetes/website's `data/releases/schedule.yaml`
//!   (written by kubernetes/release's schedule-builder: `schedules[].release`,
//!   `schedules[].endOfLifeDate`).
//! - Kubernetes' version markers: `dl.k8s.io/release/latest.txt`, `stable-X.Y.txt`
//!   (one version per file).
//! - CRI-O's package repositories: the directory listings of
//!   `download.opensuse.org/repositories/isv:/cri-o:/stable:/` and `.../prerelease:/`
//!   (HTML, one link per stream, `vX.Y/`), and each stream's flat apt index
//!   `deb/Packages` (Debian control stanzas, `Package: cri-o`, `Version: 1.37.0-1.1`).

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail};
use registry::{Digest, ImageRef, KubernetesVersion};
use serde::Deserialize;

use crate::releases::{Date, Minor, Release};

/// kind's latest release, as GitHub's API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRelease {
    pub version: Release,
    /// The release's page, for messages.
    pub url: String,
    /// The release notes (Markdown).
    pub body: String,
}

/// `GET /repos/kubernetes-sigs/kind/releases/latest`.
pub fn kind_release(json: &str) -> Result<KindRelease> {
    #[derive(Deserialize)]
    struct Api {
        tag_name: String,
        #[serde(default)]
        html_url: String,
        #[serde(default)]
        draft: bool,
        #[serde(default)]
        prerelease: bool,
        #[serde(default)]
        body: Option<String>,
    }
    let api: Api =
        serde_json::from_str(json).context("not a GitHub release (JSON with tag_name and body)")?;
    if api.draft || api.prerelease {
        bail!(
            "{} is a draft or pre-release, not kind's latest release",
            api.tag_name
        );
    }
    let version = Release::parse(&api.tag_name).context("tag_name")?;
    Ok(KindRelease {
        version,
        url: api.html_url,
        body: api.body.unwrap_or_default(),
    })
}

/// A node image reference `kindest/node:vX.Y.Z@sha256:…` as kind writes them.
fn node_image(reference: &str) -> Result<(KubernetesVersion, Digest)> {
    let image = ImageRef::parse(reference).with_context(|| format!("{reference:?}"))?;
    if image.repository.to_string() != "docker.io/kindest/node" {
        bail!("{reference:?} is not a kindest/node image");
    }
    let (Some(tag), Some(digest)) = (image.tag.as_deref(), image.digest.as_deref()) else {
        bail!("{reference:?} lacks its tag or its digest");
    };
    let version = KubernetesVersion::parse(tag).with_context(|| format!("{reference:?}"))?;
    let digest =
        Digest::parse(digest).with_context(|| format!("{reference:?}: not a sha256 digest"))?;
    Ok((version, digest))
}

/// Every `kindest/node:…@sha256:…` written between backquotes on `line`.
fn images_on(line: &str) -> Vec<&str> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|s| s.starts_with("kindest/node:") && s.contains("@sha256:"))
        .collect()
}

/// The node images the release notes list under each "... built for this
/// release:" line (kind's notes have said "Images pre-built for this
/// release", "Images built for this release" and "Additional images built
/// for this release"). Only those lists count: notes also mention other
/// images (an earlier default, a workaround). Lines end in `\r\n` in the API.
pub fn release_notes_images(body: &str) -> Result<Vec<(KubernetesVersion, Digest)>> {
    let mut images: Vec<(KubernetesVersion, Digest)> = Vec::new();
    let mut in_list = false;
    let mut lists = 0;
    for raw in body.lines() {
        let line = raw.trim();
        if line.to_ascii_lowercase().contains("built for this release") {
            in_list = true;
            lists += 1;
            continue;
        }
        if !in_list {
            continue;
        }
        let item = line
            .strip_prefix("- ")
            .or_else(|| line.strip_prefix("* "))
            .or_else(|| line.strip_prefix("+ "));
        match item {
            // Blank lines between the heading and its list, or inside it.
            None if line.is_empty() => continue,
            None => in_list = false,
            Some(item) => {
                for reference in images_on(item) {
                    let (version, digest) = node_image(reference)
                        .context("in the release notes' list of node images")?;
                    match images.iter().find(|(v, _)| v == &version) {
                        Some((_, d)) if d != &digest => bail!(
                            "the release notes name two digests for kindest/node:{version}: {d} and {digest}"
                        ),
                        Some(_) => {}
                        None => images.push((version, digest)),
                    }
                }
            }
        }
    }
    if lists == 0 {
        bail!(
            "the release notes have no \"Images built for this release\" list; their format changed: read them and adapt this parser"
        );
    }
    if images.is_empty() {
        bail!(
            "the release notes' \"built for this release\" list names no kindest/node image with a digest"
        );
    }
    Ok(images)
}

/// The string value of `name` in Go source: `const NAME = "…"` or, inside a
/// `const (…)` block, `NAME = "…"`.
pub fn go_string_const(source: &str, name: &str) -> Result<String> {
    for line in source.lines() {
        let line = line.trim();
        let line = line.strip_prefix("const ").unwrap_or(line);
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim();
        let Some(inner) = value.strip_prefix('"') else {
            bail!("{name} is not a plain string constant: {value}");
        };
        let Some(end) = inner.find('"') else {
            bail!("{name}'s string does not end on its line");
        };
        let s = &inner[..end];
        if s.contains('\\') {
            bail!("{name}'s string has escapes, which an image reference never has: {s:?}");
        }
        return Ok(s.to_owned());
    }
    bail!("no `const {name} = \"…\"` in the file: its format changed")
}

/// kind's default node image, from `pkg/apis/config/defaults/image.go`.
pub fn kind_default_image(go: &str) -> Result<(KubernetesVersion, Digest)> {
    node_image(&go_string_const(go, "Image")?)
}

/// kind's default base image, from `pkg/build/nodeimage/defaults.go`.
pub fn kind_base_image(go: &str) -> Result<ImageRef> {
    let s = go_string_const(go, "DefaultBaseImage")?;
    ImageRef::parse(&s).with_context(|| format!("DefaultBaseImage {s:?}"))
}

/// A minor of Kubernetes' release schedule and its end of life, if announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub minor: Minor,
    pub end_of_life: Option<Date>,
}

/// kubernetes/website's `data/releases/schedule.yaml`: the minors that
/// still have a schedule, that is, that are maintained.
pub fn schedule(yaml: &str) -> Result<Vec<Scheduled>> {
    #[derive(Deserialize)]
    struct File {
        schedules: Vec<Entry>,
    }
    /// Strings: the YAML reader keeps a plain scalar's text, so an older
    /// file's unquoted `release: 1.30` stays "1.30", not the number 1.3.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        release: String,
        #[serde(default)]
        end_of_life_date: Option<String>,
    }
    let file: File = serde_saphyr::from_str(yaml)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("not the release schedule expected (a `schedules:` list)")?;
    let mut out: Vec<Scheduled> = Vec::new();
    for entry in &file.schedules {
        let release = &entry.release;
        let minor =
            Minor::parse(release).with_context(|| format!("schedules: release {release:?}"))?;
        let end_of_life = entry
            .end_of_life_date
            .as_deref()
            .map(Date::parse)
            .transpose()
            .with_context(|| format!("schedules: release {release}: endOfLifeDate"))?;
        if out.iter().any(|s| s.minor == minor) {
            bail!("schedules: release {release} is listed twice");
        }
        out.push(Scheduled { minor, end_of_life });
    }
    if out.is_empty() {
        bail!("the release schedule lists no release");
    }
    Ok(out)
}

/// A `dl.k8s.io/release/*.txt` marker: one version. With `minor`, the
/// version must be a release of it (what `stable-X.Y.txt` holds).
pub fn version_marker(text: &str, minor: Option<Minor>) -> Result<KubernetesVersion> {
    let line = text.trim();
    if line.contains(char::is_whitespace) {
        bail!("more than one version in the marker: {line:?}");
    }
    let v = KubernetesVersion::parse(line)?;
    if let Some(m) = minor
        && (Minor::of(&v) != m || v.is_prerelease())
    {
        bail!("{v} is not a release of {m}");
    }
    Ok(v)
}

/// The streams an HTML directory listing links to: `vX.Y` (and `main`).
/// Links may be relative (`v1.37/`, `./v1.37/`) or absolute paths.
pub fn listed_streams(html: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for part in html.split("href=").skip(1) {
        let Some(quote) = part.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let Some(end) = part[1..].find(quote) else {
            continue;
        };
        let target = &part[1..1 + end];
        // Only directories: a stream is a directory of the listing.
        let Some(dir) = target.strip_suffix('/') else {
            continue;
        };
        let name = dir.rsplit('/').next().unwrap_or(dir);
        if name == "main" || Minor::parse(name).is_ok_and(|_| name.starts_with('v')) {
            out.insert(name.to_owned());
        }
    }
    out
}

/// A `cri-o` package version in a `Packages` index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CrioPackage {
    pub release: Release,
    /// An upstream version with `~` (a pre-release: `1.38.0~rc.0`), which
    /// sorts before the release in Debian's order.
    pub prerelease: bool,
}

/// The newest `cri-o` in a flat repository's `Packages` index, if any; its
/// `Version` is `[epoch:]upstream-revision`, e.g. `1.37.0-1.1`.
pub fn newest_crio(packages: &str) -> Result<Option<CrioPackage>> {
    let mut newest: Option<CrioPackage> = None;
    for stanza in packages.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        if field("Package") != Some("cri-o") {
            continue;
        }
        let Some(version) = field("Version") else {
            bail!("a cri-o stanza without a Version field");
        };
        let upstream = version.split_once(':').map_or(version, |(_, v)| v);
        let upstream = upstream.rsplit_once('-').map_or(upstream, |(u, _)| u);
        let (core, prerelease) = match upstream.split_once('~') {
            Some((core, _)) => (core, true),
            None => (upstream, false),
        };
        let core = core.split('+').next().unwrap_or(core);
        let release = Release::parse(&format!("v{core}"))
            .with_context(|| format!("cri-o Version {version:?}"))?;
        let found = CrioPackage {
            release,
            prerelease,
        };
        // A release outranks its own pre-releases: (release, false) > (release, true).
        let rank = |p: &CrioPackage| (p.release, !p.prerelease);
        if newest.as_ref().is_none_or(|n| rank(&found) > rank(n)) {
            newest = Some(found);
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/refresh")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn shown(images: &[(KubernetesVersion, Digest)]) -> Vec<String> {
        images.iter().map(|(v, d)| format!("{v}@{d}")).collect()
    }

    #[test]
    fn kinds_release_and_its_node_images() {
        let release = kind_release(&fixture("kind-release-latest.json")).unwrap();
        assert_eq!(release.version.to_string(), "v0.33.0");
        assert_eq!(
            release.url,
            "https://github.com/kubernetes-sigs/kind/releases/tag/v0.33.0"
        );
        let images = release_notes_images(&release.body).unwrap();
        // The list only: the earlier default the notes mention is not kind v0.33.0's.
        assert_eq!(
            shown(&images),
            [
                "v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
                "v1.36.4@sha256:3636363636363636363636363636363636363636363636363636363636363604",
                "v1.35.8@sha256:3535353535353535353535353535353535353535353535353535353535353508",
                "v1.34.11@sha256:3434343434343434343434343434343434343434343434343434343434343411",
            ]
        );
    }

    #[test]
    fn older_release_note_layouts() {
        // kind v0.12-v0.20: "1.23: `…`" items, "Additional images built for
        // this release" as a second list, `*` bullets; LF line ends.
        let body = "New Node images have been built for kind v0.20.0, please use these exact images:\n\n\
            Images built for this release:\n\
            - 1.27: `kindest/node:v1.27.3@sha256:3966ac761ae0136263ffdb6cfd4db23ef8a83cba8a463690e98317add2c9ba72`\n\
            * 1.26: `kindest/node:v1.26.6@sha256:6e2d8b28a5b601defe327b98bd1c2d1930b49e5d8c512e1895099e4504007adb`\n\
            \n\
            Additional images built for this release:\n\
            - 1.28: `kindest/node:v1.28.0@sha256:b7a4cad12c197af3ba43202d3efe03246b3f0793f162afb40a33c923952d5b31`\n\
            \n\
            NOTE: You *must* use the @sha256 digest, for example `kindest/node:v1.27.3@sha256:3966ac761ae0136263ffdb6cfd4db23ef8a83cba8a463690e98317add2c9ba72`.\n";
        let images = release_notes_images(body).unwrap();
        let versions: Vec<String> = images.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(versions, ["v1.27.3", "v1.26.6", "v1.28.0"]);
    }

    #[test]
    fn release_notes_that_cannot_be_read_say_why() {
        let err = |body: &str| format!("{:#}", release_notes_images(body).unwrap_err());
        assert!(
            err("# Breaking changes\r\n\r\nnothing about images\r\n")
                .contains("no \"Images built for this release\" list")
        );
        assert!(
            err("Images built for this release:\r\n\r\nSee also the docs\r\n")
                .contains("names no kindest/node image")
        );
        let d = |c: char| std::iter::repeat_n(c, 64).collect::<String>();
        let twice = format!(
            "Images built for this release:\n- `kindest/node:v1.37.0@sha256:{}`\n- `kindest/node:v1.37.0@sha256:{}`\n",
            d('a'),
            d('b')
        );
        assert!(err(&twice).contains("two digests for kindest/node:v1.37.0"));
        let short = "Images built for this release:\n- `kindest/node:v1.37.0@sha256:abc`\n";
        assert!(
            err(short).contains("kindest/node:v1.37.0@sha256:abc"),
            "{}",
            err(short)
        );
        let other = format!(
            "Images built for this release:\n- `kindest/base:v1.37.0@sha256:{}`\n- `kindest/node:latest@sha256:{}`\n",
            d('a'),
            d('a')
        );
        assert!(
            err(&other).contains("not a Kubernetes version"),
            "{}",
            err(&other)
        );
        assert!(
            kind_release("{\"tag_name\": \"v0.34.0-alpha\", \"prerelease\": true}")
                .is_err_and(|e| e.to_string().contains("pre-release"))
        );
        assert!(
            kind_release("<html>rate limited</html>")
                .is_err_and(|e| e.to_string().contains("not a GitHub release"))
        );
        assert!(
            kind_release("{\"tag_name\": \"main\"}")
                .is_err_and(|e| format!("{e:#}").contains("tag_name"))
        );
    }

    #[test]
    fn kinds_defaults_from_its_go_sources() {
        let (version, digest) = kind_default_image(&fixture("kind-image.go")).unwrap();
        assert_eq!(version.to_string(), "v1.37.0");
        assert_eq!(
            digest.as_str(),
            "sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
        );
        assert_eq!(
            kind_base_image(&fixture("kind-defaults.go"))
                .unwrap()
                .to_string(),
            "docker.io/kindest/base:v20260820-69b56db7"
        );
        // Inside a const block, and what is not a string.
        assert_eq!(
            go_string_const("const (\n\tImage = \"kindest/node:v1\"\n)\n", "Image").unwrap(),
            "kindest/node:v1"
        );
        assert!(go_string_const("const ImageX = \"a\"\n", "Image").is_err());
        assert!(
            go_string_const("const Image = image()\n", "Image")
                .is_err_and(|e| e.to_string().contains("not a plain string"))
        );
        assert!(
            go_string_const("package defaults\n", "Image")
                .is_err_and(|e| e.to_string().contains("no `const Image"))
        );
        assert!(
            kind_default_image("const Image = \"kindest/node:v1.37.0\"\n")
                .is_err_and(|e| e.to_string().contains("lacks its tag or its digest"))
        );
    }

    #[test]
    fn the_release_schedule() {
        let s = schedule(&fixture("schedule.yaml")).unwrap();
        let shown: Vec<String> = s
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e.minor,
                    e.end_of_life.map(|d| d.to_string()).unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "v1.37 2027-10-28",
                "v1.36 2027-06-28",
                "v1.35 2027-02-28",
                "v1.34 2026-10-27"
            ]
        );
        // The older layout: unquoted numbers and dates.
        let old =
            schedule("schedules:\n- release: 1.27\n  endOfLifeDate: 2024-06-28\n- release: 1.30\n")
                .unwrap();
        assert_eq!(old[0].minor.to_string(), "v1.27");
        assert_eq!(
            old[0].end_of_life.map(|d| d.to_string()).as_deref(),
            Some("2024-06-28")
        );
        // Read as text, not as the number 1.3.
        assert_eq!(old[1].minor.to_string(), "v1.30");
        assert!(schedule("schedules: []\n").is_err_and(|e| e.to_string().contains("no release")));
        assert!(
            schedule("<html/>").is_err_and(|e| e.to_string().contains("not the release schedule"))
        );
        assert!(
            schedule("schedules:\n- release: \"1.37\"\n  endOfLifeDate: soon\n")
                .is_err_and(|e| format!("{e:#}").contains("endOfLifeDate"))
        );
    }

    #[test]
    fn version_markers() {
        assert_eq!(
            version_marker("v1.38.0-rc.0\n", None).unwrap().to_string(),
            "v1.38.0-rc.0"
        );
        let m = Minor::parse("v1.37").unwrap();
        assert_eq!(
            version_marker("v1.37.3", Some(m)).unwrap().to_string(),
            "v1.37.3"
        );
        assert!(
            version_marker("v1.36.4\n", Some(m))
                .is_err_and(|e| e.to_string().contains("not a release of v1.37"))
        );
        assert!(version_marker("v1.37.0-rc.1", Some(m)).is_err());
        assert!(version_marker("<!DOCTYPE html>\n<html>", None).is_err());
        assert!(version_marker("", None).is_err());
    }

    #[test]
    fn crio_streams_from_the_directory_listings() {
        let stable = listed_streams(&fixture("cri-o-stable.html"));
        assert_eq!(
            stable.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "v1.28", "v1.29", "v1.30", "v1.31", "v1.32", "v1.33", "v1.34", "v1.35", "v1.36",
                "v1.37"
            ]
        );
        let pre = listed_streams(&fixture("cri-o-prerelease.html"));
        assert_eq!(
            pre.iter().map(String::as_str).collect::<Vec<_>>(),
            ["main", "v1.37"]
        );
        // Other link forms; files and parent links are not streams.
        let html = "<a href='./v1.38/'>x</a> <a href=\"/repositories/isv:/cri-o:/stable:/v1.39/\">\
                    <a href=\"../\">up</a> <a href=\"v1.40.tar\">f</a> <a href=\"1.41/\">n</a>";
        assert_eq!(
            listed_streams(html).into_iter().collect::<Vec<_>>(),
            ["v1.38", "v1.39"]
        );
    }

    #[test]
    fn the_newest_crio_of_a_packages_index() {
        let newest = newest_crio(&fixture("cri-o-stable-v1.37-Packages"))
            .unwrap()
            .unwrap();
        assert_eq!(newest.release.to_string(), "v1.37.10");
        assert!(!newest.prerelease);
        let pre = "Package: cri-o\nVersion: 1.38.0~rc.0-1.1\n\nPackage: cri-o\nVersion: 1.38.0~beta.0+git1-1.1\n";
        let p = newest_crio(pre).unwrap().unwrap();
        assert_eq!(
            (p.release.to_string(), p.prerelease),
            ("v1.38.0".to_owned(), true)
        );
        let both =
            "Package: cri-o\nVersion: 1.38.0~rc.0-1.1\n\nPackage: cri-o\nVersion: 1:1.38.0-1.1\n";
        assert!(!newest_crio(both).unwrap().unwrap().prerelease);
        assert_eq!(
            newest_crio("Package: conmon\nVersion: 2.1.0-1\n").unwrap(),
            None
        );
        assert_eq!(newest_crio("").unwrap(), None);
        assert!(newest_crio("Package: cri-o\nArchitecture: amd64\n").is_err());
        assert!(newest_crio("Package: cri-o\nVersion: next\n").is_err());
    }
}
