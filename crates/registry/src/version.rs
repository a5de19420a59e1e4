//! Kubernetes release versions as kind tags them: `v1.31.0`, `v1.32.0-alpha.1`,
//! `-beta.N`, `-rc.N`. Ordering is semver precedence, which for these
//! pre-release names is alpha < beta < rc < release.

use std::cmp::Ordering;
use std::fmt;

/// A Kubernetes version, always displayed with its leading `v`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubernetesVersion(semver::Version);

/// Why a string is not a Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a Kubernetes version; expected vMAJOR.MINOR.PATCH with an optional -alpha.N, -beta.N or -rc.N (e.g. v1.31.0, v1.32.0-rc.1)"
)]
pub struct VersionError {
    input: String,
}

impl KubernetesVersion {
    /// Parses `v1.31.0` or `v1.32.0-rc.1`. The leading `v` may be omitted when a
    /// user types a version; tags always carry it.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let err = || VersionError {
            input: input.to_owned(),
        };
        let bare = input.strip_prefix('v').unwrap_or(input);
        // semver accepts build metadata and arbitrary pre-release words; Kubernetes uses neither.
        if bare.contains('+') {
            return Err(err());
        }
        let v = semver::Version::parse(bare).map_err(|_| err())?;
        if !v.pre.is_empty() && !is_kubernetes_prerelease(v.pre.as_str()) {
            return Err(err());
        }
        Ok(KubernetesVersion(v))
    }

    pub fn major(&self) -> u64 {
        self.0.major
    }

    pub fn minor(&self) -> u64 {
        self.0.minor
    }

    pub fn patch(&self) -> u64 {
        self.0.patch
    }

    /// True for alpha, beta and rc versions.
    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }
}

/// `alpha.N`, `beta.N` or `rc.N` with N a number without leading zeros.
fn is_kubernetes_prerelease(pre: &str) -> bool {
    let Some((word, n)) = pre.split_once('.') else {
        return false;
    };
    matches!(word, "alpha" | "beta" | "rc")
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && (n == "0" || !n.starts_with('0'))
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl std::str::FromStr for KubernetesVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KubernetesVersion::parse(s)
    }
}

impl PartialOrd for KubernetesVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KubernetesVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp_precedence(&other.0)
    }
}

/// A tag that is a Kubernetes version: it must start with `v`, as kind's tags do.
fn tag_version(tag: &str) -> Option<KubernetesVersion> {
    if tag.starts_with('v') {
        KubernetesVersion::parse(tag).ok()
    } else {
        None
    }
}

/// Orders tags for people: Kubernetes versions first, ascending by precedence,
/// then every other tag lexically.
pub fn sort_tags(tags: &[String]) -> Vec<String> {
    let mut versions: Vec<(KubernetesVersion, &String)> = Vec::new();
    let mut others: Vec<&String> = Vec::new();
    for tag in tags {
        match tag_version(tag) {
            Some(v) => versions.push((v, tag)),
            None => others.push(tag),
        }
    }
    versions.sort_by(|(a, at), (b, bt)| a.cmp(b).then_with(|| at.cmp(bt)));
    others.sort();
    versions
        .into_iter()
        .map(|(_, t)| t.clone())
        .chain(others.into_iter().cloned())
        .collect()
}

/// The newest tag that is a Kubernetes version without a pre-release.
pub fn latest_release(tags: &[String]) -> Option<&str> {
    tags.iter()
        .filter_map(|t| tag_version(t).map(|v| (v, t)))
        .filter(|(v, _)| !v.is_prerelease())
        .max_by(|(a, at), (b, bt)| a.cmp(b).then_with(|| at.cmp(bt)))
        .map(|(_, t)| t.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sorts_versions_by_precedence_then_others_lexically() {
        let tags = strings(&[
            "latest",
            "v1.31.0",
            "v1.32.0-rc.1",
            "v1.32.0-alpha.10",
            "v1.32.0-alpha.2",
            "v1.32.0-beta.0",
            "v1.32.0",
            "v1.9.11",
            "v1.31.0@sha256",
            "v1.31.0-foo.1",
            "1.30.0",
            "v1.10.0",
        ]);
        assert_eq!(
            sort_tags(&tags),
            strings(&[
                "v1.9.11",
                "v1.10.0",
                "v1.31.0",
                "v1.32.0-alpha.2",
                "v1.32.0-alpha.10",
                "v1.32.0-beta.0",
                "v1.32.0-rc.1",
                "v1.32.0",
                "1.30.0",
                "latest",
                "v1.31.0-foo.1",
                "v1.31.0@sha256",
            ])
        );
    }

    #[test]
    fn latest_skips_prereleases() {
        let tags = strings(&["v1.33.0-rc.0", "v1.32.2", "v1.32.10", "latest", "v1.4.0"]);
        assert_eq!(latest_release(&tags), Some("v1.32.10"));
        assert_eq!(latest_release(&strings(&["v1.33.0-rc.0", "x"])), None);
        assert_eq!(latest_release(&[]), None);
    }

    #[test]
    fn parses_user_versions() {
        for (input, shown) in [
            ("v1.31.0", "v1.31.0"),
            ("1.31.0", "v1.31.0"),
            ("v1.36.0-alpha.3", "v1.36.0-alpha.3"),
            ("v1.36.0-rc.0", "v1.36.0-rc.0"),
        ] {
            assert_eq!(KubernetesVersion::parse(input).unwrap().to_string(), shown);
        }
        for bad in [
            "v1.31",
            "v1.31.0-gamma.1",
            "v1.31.0-rc",
            "v1.31.0-rc.01",
            "v1.31.0+build",
            "v01.31.0",
            "",
            "vv1.31.0",
        ] {
            let err = KubernetesVersion::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("expected vMAJOR.MINOR.PATCH"),
                "{bad}"
            );
        }
    }
}
