//! `configs/releases.toml`: what is current, in one typed place. kind's
//! latest release and the node images it publishes (each with the digest the
//! release names, when known), the Kubernetes minors that are not end of
//! life with the CRI-O stream paired with each, and the newest Kubernetes
//! pre-release. The defaults, build-image's node-image pin, the CI matrix and
//! the kind the images workflow installs all come from here; `cargo xtask
//! refresh` rewrites it from the public sources.
//!
//! The file is canonical: `render(parse(text)) == text` for the committed
//! file, so a refresh that finds nothing new changes nothing, byte for byte.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use node_image::CrioStream;
use registry::{Digest, ImageRef, KubernetesVersion, Repository};
use serde::Deserialize;

/// The committed file, embedded in the binary as the defaults are.
pub const RELEASES_TOML: &str = include_str!("../../configs/releases.toml");

/// Where the file lives, relative to the project root.
pub const RELEASES_PATH: &str = "configs/releases.toml";

/// `vMAJOR.MINOR.PATCH` without a pre-release: a kind or CRI-O release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Release {
    pub fn parse(s: &str) -> Result<Release> {
        let parts = numbers(s.strip_prefix('v').unwrap_or(""), 3)
            .with_context(|| format!("{s:?} is not a release version like v0.33.0"))?;
        Ok(Release {
            major: parts[0],
            minor: parts[1],
            patch: parts[2],
        })
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A Kubernetes minor, `v1.37`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor {
    pub major: u64,
    pub minor: u64,
}

impl Minor {
    pub fn parse(s: &str) -> Result<Minor> {
        let parts = numbers(s.strip_prefix('v').unwrap_or(s), 2)
            .with_context(|| format!("{s:?} is not a Kubernetes minor like v1.37"))?;
        Ok(Minor {
            major: parts[0],
            minor: parts[1],
        })
    }

    pub fn of(k: &KubernetesVersion) -> Minor {
        Minor {
            major: k.major(),
            minor: k.minor(),
        }
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

/// `n` dot-separated decimal numbers without leading zeros (and not absurdly long).
fn numbers(s: &str, n: usize) -> Option<Vec<u64>> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != n {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            let ok = !p.is_empty()
                && p.len() <= 6
                && p.bytes().all(|b| b.is_ascii_digit())
                && (*p == "0" || !p.starts_with('0'));
            ok.then(|| p.parse().ok()).flatten()
        })
        .collect()
}

/// A calendar date, `YYYY-MM-DD` (the form Kubernetes' release schedule uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    pub fn parse(s: &str) -> Result<Date> {
        let err = || anyhow::anyhow!("{s:?} is not a date like 2027-02-28");
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32> {
            let part = &s[r];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(err());
        }
        Ok(Date { year, month, day })
    }

    /// Today in UTC, from the system clock.
    pub fn today() -> Date {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Date::from_days(secs / 86_400)
    }

    /// The date `days` days after 1970-01-01 (Howard Hinnant's civil_from_days).
    pub fn from_days(days: u64) -> Date {
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + u64::from(month <= 2)) as u32;
        Date { year, month, day }
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// kind's latest release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    pub version: Release,
    /// The Kubernetes version of its default node image.
    pub default: KubernetesVersion,
    /// Its default base image for `kind build node-image`.
    pub base_image: ImageRef,
    /// Where its node images are published (`docker.io/kindest/node`).
    pub node_repository: Repository,
}

/// One node image kind's release publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    pub kubernetes: KubernetesVersion,
    /// The digest kind's release names; None while it is not known.
    pub digest: Option<Digest>,
    /// The kind release that built it.
    pub kind: Release,
}

/// A Kubernetes minor that is not end of life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinorLine {
    pub kubernetes: Minor,
    /// Its latest patch release.
    pub latest: KubernetesVersion,
    /// When announced.
    pub end_of_life: Option<Date>,
    /// The CRI-O stream paired with it.
    pub crio: CrioStream,
    /// The newest CRI-O release of that stream, for a stable stream.
    pub crio_release: Option<Release>,
}

/// The newest Kubernetes pre-release and the CRI-O stream paired with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerelease {
    pub kubernetes: KubernetesVersion,
    pub crio: CrioStream,
}

/// The whole file, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Releases {
    /// Free text for readers (what was assumed, and why); `refresh` writes none.
    pub note: Option<String>,
    pub kind: Kind,
    /// Newest first.
    pub node_images: Vec<NodeImage>,
    /// Newest first.
    pub minors: Vec<MinorLine>,
    pub prerelease: Option<Prerelease>,
}

/// How build-image may pin a published node image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// kind's release names this digest: pin it, nothing to look up.
    Released { image: ImageRef, kind: Release },
    /// kind's release publishes the version, but its digest is not known here.
    Undigested { kind: Release },
    /// kind's release does not name this version.
    Unnamed { kind: Release },
    /// Not kind's repository: the file says nothing about it.
    OtherRepository,
}

/// The file's shape; every string is validated into `Releases` afterwards.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    note: Option<String>,
    kind: KindFile,
    node_image: Vec<NodeImageFile>,
    #[serde(default)]
    minor: Vec<MinorFile>,
    prerelease: Option<PrereleaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KindFile {
    version: String,
    default: String,
    base_image: String,
    node_repository: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeImageFile {
    kubernetes: String,
    digest: Option<String>,
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MinorFile {
    kubernetes: String,
    latest: String,
    end_of_life: Option<String>,
    crio: String,
    crio_release: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrereleaseFile {
    kubernetes: String,
    crio: String,
}

impl Releases {
    /// The embedded file.
    pub fn embedded() -> Result<Releases> {
        Releases::parse(RELEASES_TOML)
            .with_context(|| format!("the embedded {RELEASES_PATH} is not valid"))
    }

    /// Parses and validates; errors name the entry and the field.
    pub fn parse(text: &str) -> Result<Releases> {
        let file: File = toml::from_str(text).context("not the TOML expected")?;
        let k = &file.kind;
        let kind = Kind {
            version: Release::parse(&k.version).context("kind.version")?,
            default: KubernetesVersion::parse(&k.default).context("kind.default")?,
            base_image: ImageRef::parse(&k.base_image).context("kind.base_image")?,
            node_repository: Repository::parse(&k.node_repository)
                .context("kind.node_repository")?,
        };
        let node_images = file
            .node_image
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let at = || format!("node_image {} ({})", i + 1, n.kubernetes);
                let kubernetes = KubernetesVersion::parse(&n.kubernetes).with_context(at)?;
                if kubernetes.is_prerelease() {
                    bail!("{}: kind publishes no pre-release node images", at());
                }
                let digest = match n.digest.as_deref() {
                    None => None,
                    Some(d) => Some(Digest::parse(d).with_context(|| {
                        format!(
                            "{}: digest {d:?} is not sha256:<64 hex digits>; leave it out when it is not known",
                            at()
                        )
                    })?),
                };
                let kind = Release::parse(&n.kind).with_context(|| format!("{}: kind", at()))?;
                Ok(NodeImage {
                    kubernetes,
                    digest,
                    kind,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let minors = file
            .minor
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let at = || format!("minor {} ({})", i + 1, m.kubernetes);
                let kubernetes = Minor::parse(&m.kubernetes).with_context(at)?;
                let latest = KubernetesVersion::parse(&m.latest)
                    .with_context(|| format!("{}: latest", at()))?;
                if Minor::of(&latest) != kubernetes || latest.is_prerelease() {
                    bail!("{}: latest {latest} is not a release of {kubernetes}", at());
                }
                let end_of_life = m
                    .end_of_life
                    .as_deref()
                    .map(Date::parse)
                    .transpose()
                    .with_context(|| format!("{}: end_of_life", at()))?;
                let crio = CrioStream::parse(&m.crio).with_context(|| format!("{}: crio", at()))?;
                let crio_release = m
                    .crio_release
                    .as_deref()
                    .map(Release::parse)
                    .transpose()
                    .with_context(|| format!("{}: crio_release", at()))?;
                Ok(MinorLine {
                    kubernetes,
                    latest,
                    end_of_life,
                    crio,
                    crio_release,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let prerelease = file
            .prerelease
            .as_ref()
            .map(|p| -> Result<Prerelease> {
                let kubernetes =
                    KubernetesVersion::parse(&p.kubernetes).context("prerelease.kubernetes")?;
                if !kubernetes.is_prerelease() {
                    bail!(
                        "prerelease.kubernetes: {kubernetes} is a release, not an alpha, beta or rc"
                    );
                }
                let crio = CrioStream::parse(&p.crio).context("prerelease.crio")?;
                Ok(Prerelease { kubernetes, crio })
            })
            .transpose()?;
        let releases = Releases {
            note: file
                .note
                .map(|n| n.trim_end().to_owned())
                .filter(|n| !n.trim().is_empty()),
            kind,
            node_images,
            minors,
            prerelease,
        };
        releases.check()?;
        Ok(releases)
    }

    /// What must hold across entries.
    fn check(&self) -> Result<()> {
        let mut seen = BTreeSet::new();
        for n in &self.node_images {
            if !seen.insert(n.kubernetes.clone()) {
                bail!("node_image {} is listed twice", n.kubernetes);
            }
        }
        if !seen.contains(&self.kind.default) {
            bail!(
                "kind.default {} is not among the node images; list it as a [[node_image]]",
                self.kind.default
            );
        }
        let mut minors = BTreeSet::new();
        for m in &self.minors {
            if !minors.insert(m.kubernetes) {
                bail!("minor {} is listed twice", m.kubernetes);
            }
        }
        if let Some(p) = &self.prerelease
            && let Some(m) = self.minors.iter().find(|m| m.latest > p.kubernetes)
        {
            bail!(
                "prerelease {} is older than {}'s release {}: it is no longer the newest",
                p.kubernetes,
                m.kubernetes,
                m.latest
            );
        }
        Ok(())
    }

    /// The same data in canonical order: newest first.
    pub fn sorted(mut self) -> Releases {
        self.node_images
            .sort_by(|a, b| b.kubernetes.cmp(&a.kubernetes));
        self.minors.sort_by_key(|m| std::cmp::Reverse(m.kubernetes));
        self
    }

    /// The default Kubernetes version: kind's default node image.
    pub fn default_kubernetes(&self) -> &KubernetesVersion {
        &self.kind.default
    }

    pub fn node_image(&self, k: &KubernetesVersion) -> Option<&NodeImage> {
        self.node_images.iter().find(|n| &n.kubernetes == k)
    }

    /// How to pin `repository:k`.
    pub fn pin(&self, repository: &Repository, k: &KubernetesVersion) -> Pin {
        if repository != &self.kind.node_repository {
            return Pin::OtherRepository;
        }
        match self.node_image(k) {
            Some(NodeImage {
                digest: Some(d),
                kind,
                ..
            }) => Pin::Released {
                image: ImageRef {
                    repository: repository.clone(),
                    tag: Some(k.to_string()),
                    digest: Some(d.to_string()),
                },
                kind: *kind,
            },
            Some(n) => Pin::Undigested { kind: n.kind },
            None => Pin::Unnamed {
                kind: self.kind.version,
            },
        }
    }

    /// The CRI-O stream for `k`: the pre-release's for its minor's
    /// pre-releases, the paired stream of a listed minor for its releases,
    /// else the Kubernetes minor (its prerelease stream for an alpha, beta or rc).
    pub fn crio_for(&self, k: &KubernetesVersion) -> CrioStream {
        if k.is_prerelease()
            && let Some(p) = &self.prerelease
            && Minor::of(&p.kubernetes) == Minor::of(k)
        {
            return p.crio.clone();
        }
        if !k.is_prerelease()
            && let Some(m) = self.minors.iter().find(|m| m.kubernetes == Minor::of(k))
        {
            return m.crio.clone();
        }
        CrioStream::for_kubernetes(k)
    }

    /// Where the CRI-O stream for `k` comes from, for people.
    pub fn crio_reason(&self, k: &KubernetesVersion) -> String {
        let paired = (k.is_prerelease()
            && self
                .prerelease
                .as_ref()
                .is_some_and(|p| Minor::of(&p.kubernetes) == Minor::of(k)))
            || (!k.is_prerelease() && self.minors.iter().any(|m| m.kubernetes == Minor::of(k)));
        if paired {
            format!("paired with Kubernetes {} in {RELEASES_PATH}", Minor::of(k))
        } else {
            "the Kubernetes minor".to_owned()
        }
    }

    /// What CI builds: the newest pre-release, then every node image kind's
    /// release publishes for a minor that is not end of life; newest first.
    pub fn matrix(&self) -> Vec<(KubernetesVersion, CrioStream)> {
        let mut out = Vec::new();
        if let Some(p) = &self.prerelease {
            out.push((p.kubernetes.clone(), p.crio.clone()));
        }
        let mut images: Vec<&NodeImage> = self
            .node_images
            .iter()
            .filter(|n| {
                self.minors
                    .iter()
                    .any(|m| m.kubernetes == Minor::of(&n.kubernetes))
            })
            .collect();
        images.sort_by(|a, b| b.kubernetes.cmp(&a.kubernetes));
        out.extend(
            images
                .into_iter()
                .map(|n| (n.kubernetes.clone(), self.crio_for(&n.kubernetes))),
        );
        out
    }

    /// The file's text, canonical: comments, order and quoting fixed.
    pub fn render(&self) -> String {
        let r = self.clone().sorted();
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = String::from(HEADER);
        if let Some(note) = &r.note {
            out.push_str(
                "\n# Why the values are what they are (refresh writes none: the sources say).\n",
            );
            out.push_str("note = \"\"\"\n");
            // A literal multi-line basic string: escape what TOML would read.
            let escaped = note
                .trim_end()
                .replace('\\', "\\\\")
                .replace("\"\"\"", "\\\"\\\"\\\"");
            out.push_str(&escaped);
            out.push_str("\n\"\"\"\n");
        }
        out.push_str(&format!(
            "\n[kind]\n\
             # kind's latest release (github.com/kubernetes-sigs/kind/releases).\n\
             version = {}\n\
             # Its default node image (pkg/apis/config/defaults/image.go at the release):\n\
             # the default Kubernetes version of kind-crio too.\n\
             default = {}\n\
             # Its default base image for `kind build node-image` (pkg/build/nodeimage/defaults.go).\n\
             base_image = {}\n\
             # Where its node images are published.\n\
             node_repository = {}\n",
            q(&r.kind.version.to_string()),
            q(&r.kind.default.to_string()),
            q(&r.kind.base_image.to_string()),
            q(&r.kind.node_repository.to_string()),
        ));
        out.push_str(NODE_IMAGES_COMMENT);
        for n in &r.node_images {
            out.push_str(&format!(
                "\n[[node_image]]\nkubernetes = {}\n",
                q(&n.kubernetes.to_string())
            ));
            if let Some(d) = &n.digest {
                out.push_str(&format!("digest = {}\n", q(d.as_str())));
            }
            out.push_str(&format!("kind = {}\n", q(&n.kind.to_string())));
        }
        if !r.minors.is_empty() {
            out.push_str(MINORS_COMMENT);
        }
        for m in &r.minors {
            out.push_str(&format!(
                "\n[[minor]]\nkubernetes = {}\nlatest = {}\n",
                q(&m.kubernetes.to_string()),
                q(&m.latest.to_string())
            ));
            if let Some(d) = m.end_of_life {
                out.push_str(&format!("end_of_life = {}\n", q(&d.to_string())));
            }
            out.push_str(&format!("crio = {}\n", q(&m.crio.to_string())));
            if let Some(c) = m.crio_release {
                out.push_str(&format!("crio_release = {}\n", q(&c.to_string())));
            }
        }
        if let Some(p) = &r.prerelease {
            out.push_str(&format!(
                "{PRERELEASE_COMMENT}[prerelease]\nkubernetes = {}\ncrio = {}\n",
                q(&p.kubernetes.to_string()),
                q(&p.crio.to_string())
            ));
        }
        out
    }
}

const HEADER: &str = "\
# What is current, in one place: kind's latest release and the node images it
# publishes, the Kubernetes minors that are not end of life with the CRI-O
# stream paired with each, and the newest Kubernetes pre-release. The default
# Kubernetes version (configs/default.toml), build-image's node-image pin, the
# CI matrix (`cargo xtask matrix`) and the kind the images workflow installs
# all come from here.
#
# Written by `cargo xtask refresh` from the public sources, weekly by
# .github/workflows/refresh.yml, which opens a pull request when anything
# changed; `cargo xtask refresh --check` fails when this file is behind.
";

const NODE_IMAGES_COMMENT: &str = "
# The node images kind's release notes name, newest first. build-image pins
# `digest`, the one kind released (kind supports a node image only with the
# release that built it). An image without `digest` is one whose digest is not
# known here yet: build-image then pins what the tag points to today, says that
# this is not a digest kind released, and the next refresh fills it in.
";

const MINORS_COMMENT: &str = "
# Kubernetes minors that are not end of life (kubernetes.io's release
# schedule), newest first: the latest patch (dl.k8s.io/release/stable-X.Y.txt),
# the end of life when announced, and the CRI-O stream paired with the minor:
# vX.Y where CRI-O publishes it (isv:/cri-o:/stable:/vX.Y), else its prerelease
# stream, else main. The CI matrix is every node image above whose minor is
# listed here, and the pre-release below.
";

const PRERELEASE_COMMENT: &str = "
# The newest Kubernetes pre-release (dl.k8s.io/release/latest.txt), built with
# `kind build node-image --type release`, and its CRI-O stream:
# prerelease:vX.Y once CRI-O has branched (isv:/cri-o:/prerelease:/vX.Y), main before.
";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const FIXTURE: &str = r#"
[kind]
version = "v0.33.0"
default = "v1.37.0"
base_image = "docker.io/kindest/base:v20260820-69b56db7"
node_repository = "docker.io/kindest/node"

[[node_image]]
kubernetes = "v1.35.8"
kind = "v0.33.0"

[[node_image]]
kubernetes = "v1.37.0"
digest = "sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
kind = "v0.33.0"

[[node_image]]
kubernetes = "v1.34.11"
kind = "v0.33.0"

[[minor]]
kubernetes = "v1.35"
latest = "v1.35.9"
end_of_life = "2027-02-28"
crio = "v1.35"
crio_release = "v1.35.6"

[[minor]]
kubernetes = "v1.37"
latest = "v1.37.1"
crio = "v1.37"

[prerelease]
kubernetes = "v1.38.0-rc.0"
crio = "main"
"#;

    fn v(s: &str) -> KubernetesVersion {
        KubernetesVersion::parse(s).unwrap()
    }

    fn err(text: &str) -> String {
        format!("{:#}", Releases::parse(text).unwrap_err())
    }

    #[test]
    fn the_committed_file_is_valid_and_canonical() {
        let r = Releases::embedded().unwrap();
        assert_eq!(
            r.render(),
            RELEASES_TOML,
            "run `cargo xtask refresh` or fix the hand edit"
        );
        assert!(r.node_image(r.default_kubernetes()).is_some());
        // Every matrix entry is a Kubernetes version with a CRI-O stream.
        assert!(!r.matrix().is_empty());
    }

    #[test]
    fn renders_what_it_parses() {
        let r = Releases::parse(FIXTURE).unwrap();
        let text = r.render();
        let again = Releases::parse(&text).unwrap();
        assert_eq!(again, r.clone().sorted());
        assert_eq!(again.render(), text);
        // Newest first, whatever order the input had.
        let order: Vec<String> = again
            .node_images
            .iter()
            .map(|n| n.kubernetes.to_string())
            .collect();
        assert_eq!(order, ["v1.37.0", "v1.35.8", "v1.34.11"]);
        // A note survives the round trip, quotes and backslashes included.
        let noted = Releases {
            note: Some("assumed \"\"\" main, C:\\ path\nsecond line".to_owned()),
            ..r
        };
        assert_eq!(Releases::parse(&noted.render()).unwrap().note, noted.note);
    }

    #[test]
    fn pins_what_kind_released_and_says_what_it_does_not_know() {
        let r = Releases::parse(FIXTURE).unwrap();
        let kindest = Repository::parse("kindest/node").unwrap();
        assert_eq!(
            r.pin(&kindest, &v("v1.37.0")),
            Pin::Released {
                image: ImageRef::parse("docker.io/kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5").unwrap(),
                kind: Release::parse("v0.33.0").unwrap(),
            }
        );
        let kind = Release::parse("v0.33.0").unwrap();
        assert_eq!(r.pin(&kindest, &v("v1.35.8")), Pin::Undigested { kind });
        assert_eq!(r.pin(&kindest, &v("v1.35.0")), Pin::Unnamed { kind });
        let other = Repository::parse("127.0.0.1:5000/kindest/node").unwrap();
        assert_eq!(r.pin(&other, &v("v1.37.0")), Pin::OtherRepository);
    }

    #[test]
    fn crio_streams_follow_the_pairing() {
        let r = Releases::parse(FIXTURE).unwrap();
        let stream = |k: &str| r.crio_for(&v(k)).to_string();
        assert_eq!(stream("v1.37.0"), "v1.37");
        assert_eq!(stream("v1.35.2"), "v1.35");
        // The pre-release's minor: its stream, for every alpha, beta or rc of it.
        assert_eq!(stream("v1.38.0-rc.0"), "main");
        assert_eq!(stream("v1.38.0-beta.0"), "main");
        // Minors the file does not pair: the Kubernetes minor.
        assert_eq!(stream("v1.34.11"), "v1.34");
        assert_eq!(stream("v1.36.0-rc.0"), "prerelease:v1.36");
        assert_eq!(stream("v1.39.0-alpha.1"), "prerelease:v1.39");
        assert_eq!(
            r.crio_reason(&v("v1.37.0")),
            "paired with Kubernetes v1.37 in configs/releases.toml"
        );
        assert_eq!(r.crio_reason(&v("v1.34.0")), "the Kubernetes minor");
    }

    #[test]
    fn the_matrix_is_kinds_images_of_supported_minors_and_the_prerelease() {
        let r = Releases::parse(FIXTURE).unwrap();
        let m: Vec<String> = r.matrix().iter().map(|(k, c)| format!("{k} {c}")).collect();
        // v1.34.11 is published but its minor is not listed: end of life.
        assert_eq!(m, ["v1.38.0-rc.0 main", "v1.37.0 v1.37", "v1.35.8 v1.35"]);
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let swap = |from: &str, to: &str| FIXTURE.replacen(from, to, 1);
        assert!(
            err(&swap("digest = \"sha256:a1ed", "digest = \"sha256:zz"))
                .starts_with("node_image 2 (v1.37.0): digest \"sha256:zz")
        );
        assert!(
            err(&swap(
                "kubernetes = \"v1.35.8\"",
                "kubernetes = \"v1.37.0\""
            ))
            .contains("node_image v1.37.0 is listed twice")
        );
        assert!(
            err(&swap("default = \"v1.37.0\"", "default = \"v1.36.0\""))
                .contains("kind.default v1.36.0 is not among the node images")
        );
        assert!(
            err(&swap("latest = \"v1.35.9\"", "latest = \"v1.36.1\""))
                .contains("minor 1 (v1.35): latest v1.36.1 is not a release of v1.35")
        );
        assert!(
            err(&swap(
                "end_of_life = \"2027-02-28\"",
                "end_of_life = \"2027-02-30\""
            ))
            .contains("minor 1 (v1.35): end_of_life: \"2027-02-30\" is not a date")
        );
        assert!(err(&swap("crio = \"main\"", "crio = \"latest\"")).contains("prerelease.crio"));
        assert!(err(&swap("v1.38.0-rc.0", "v1.38.0")).contains("is a release, not an alpha"));
        assert!(
            err(&swap("v1.38.0-rc.0", "v1.37.0-rc.0"))
                .contains("prerelease v1.37.0-rc.0 is older than v1.37's release v1.37.1")
        );
        assert!(
            err(&swap(
                "kubernetes = \"v1.34.11\"",
                "kubernetes = \"v1.39.0-rc.1\""
            ))
            .contains("kind publishes no pre-release node images")
        );
        assert!(
            err(&swap("[kind]", "[kind]\nversoin = \"x\"")).contains("unknown field `versoin`")
        );
        assert!(
            err(&swap("version = \"v0.33.0\"", "version = \"0.33\""))
                .contains("kind.version: \"0.33\" is not a release version")
        );
    }

    #[test]
    fn dates() {
        assert_eq!(Date::parse("2027-02-28").unwrap().to_string(), "2027-02-28");
        assert!(Date::parse("2028-02-29").is_ok());
        for bad in [
            "2027-02-29",
            "2027-13-01",
            "2027-1-01",
            "27-02-28",
            "2027-02-28T00",
            "",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days(20_788).to_string(), "2026-12-01");
        assert_eq!(Date::from_days(11_016).to_string(), "2000-02-29");
        assert!(Date::parse("2026-10-27").unwrap() < Date::parse("2026-12-01").unwrap());
    }
}
