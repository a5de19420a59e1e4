//! Repository names as users type them (`kindest/node`, `ghcr.io/owner/name`,
//! `127.0.0.1:5000/a/b`), normalised the way Docker does.
//!
//! Grammar from the distribution `reference` package: a name is an optional
//! registry domain followed by `/`-separated path components of lowercase
//! alphanumerics joined by `.`, `_`, `__` or runs of `-`. The first component is
//! a registry only when it contains `.` or `:` or is `localhost`. A bare
//! one-component name lives under `docker.io/library/`.
//!
//! Written by hand: the grammar is small, and the crates that implement Docker
//! references bring regex engines or async OCI clients with them.

use std::fmt;
use std::net::IpAddr;

/// Docker Hub's canonical name, as `skopeo` and `docker` print it.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API actually answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The distribution spec's limit on a whole name.
const MAX_NAME_LEN: usize = 255;

/// A parsed repository: registry host (with port) and path, without tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    registry: String,
    path: String,
}

/// Why a repository name was rejected; each message says what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("repository name is empty; expected e.g. kindest/node or ghcr.io/OWNER/NAME")]
    Empty,
    #[error(
        "{input:?} has a tag or digest ({suffix:?}); give only the repository, e.g. {}",
        suggestion
    )]
    HasTagOrDigest {
        input: String,
        suffix: String,
        suggestion: String,
    },
    #[error("{input:?} has upper-case letters; repository names are lower-case (try {lower:?})")]
    Uppercase { input: String, lower: String },
    #[error(
        "{input:?}: path component {component:?} is not valid; components are lower-case letters and digits, joined by '.', '_', '__' or '-'"
    )]
    InvalidComponent { input: String, component: String },
    #[error("{input:?}: registry host {host:?} is not a valid host[:port]")]
    InvalidHost { input: String, host: String },
    #[error("{input:?} is longer than {MAX_NAME_LEN} characters")]
    TooLong { input: String },
}

impl Repository {
    /// Parses and normalises a repository name. Tags and digests are refused:
    /// callers that list tags or resolve one take the tag separately.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let trimmed = input.strip_prefix("docker://").unwrap_or(input);
        if trimmed.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if let Some((name, suffix)) = split_tag_or_digest(trimmed) {
            return Err(ReferenceError::HasTagOrDigest {
                input: input.to_owned(),
                suffix: suffix.to_owned(),
                suggestion: name.to_ascii_lowercase(),
            });
        }
        let (registry, path) = match trimmed.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (first, rest),
            _ => (DOCKER_HUB, trimmed),
        };
        if !is_valid_host(registry) {
            return Err(ReferenceError::InvalidHost {
                input: input.to_owned(),
                host: registry.to_owned(),
            });
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: input.to_owned(),
                lower: trimmed.to_ascii_lowercase(),
            });
        }
        for component in path.split('/') {
            if !is_valid_component(component) {
                return Err(ReferenceError::InvalidComponent {
                    input: input.to_owned(),
                    component: component.to_owned(),
                });
            }
        }
        // Docker Hub: "index.docker.io" is an old alias, one-component names are official images.
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        let path = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        let repo = Repository {
            registry: registry.to_owned(),
            path,
        };
        if repo.to_string().len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong {
                input: input.to_owned(),
            });
        }
        Ok(repo)
    }

    /// The registry as users name it: `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry: `kindest/node`, `library/alpine`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Host (and port) to open connections to.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// True for `localhost`, `127.0.0.0/8` and `::1`: plain HTTP is used there
    /// without `--insecure`, as Docker and skopeo do for local registries.
    pub fn is_loopback(&self) -> bool {
        host_is_loopback(self.api_host())
    }

    /// The key under which Docker's config and credential helpers store this
    /// registry's credentials (Docker Hub keeps its historical URL).
    pub fn credential_key(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "https://index.docker.io/v1/"
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

impl std::str::FromStr for Repository {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Repository::parse(s)
    }
}

/// An image reference: a repository with a tag, a digest, or both
/// (`kindest/node:v1.34.0`, `ghcr.io/o/n@sha256:…`). Used where an image is
/// pulled or built `FROM`, never for tag listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    pub repository: Repository,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`, validated.
    pub digest: Option<String>,
}

/// Why an image reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error(transparent)]
    Repository(#[from] ReferenceError),
    #[error("{input:?} has neither a tag nor a digest; add one, e.g. {input}:v1.34.0")]
    Untagged { input: String },
    #[error(
        "{input:?}: tag {tag:?} is not valid; tags are 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    )]
    BadTag { input: String, tag: String },
    #[error(
        "{input:?}: digest {digest:?} is not valid; expected sha256: and 64 lower-case hex digits"
    )]
    BadDigest { input: String, digest: String },
    #[error(
        "{input:?}: {component:?} has more than one ':'; a reference is NAME[:TAG][@DIGEST], with one tag after the last '/' (e.g. {suggestion})"
    )]
    ExtraColon {
        input: String,
        component: String,
        suggestion: String,
    },
}

impl ImageRef {
    /// Parses `NAME[:TAG][@DIGEST]`; at least one of tag and digest is required.
    pub fn parse(input: &str) -> Result<ImageRef, ImageRefError> {
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                let hex = d.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(ImageRefError::BadDigest {
                        input: input.to_owned(),
                        digest: d.to_owned(),
                    });
                }
                (r, Some(d.to_owned()))
            }
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let last = &rest[last_slash..];
        // `name:tag:extra`: split at the last ':', the name would keep a tag
        // and be refused as a repository with one; say what is wrong instead.
        if last.matches(':').count() > 1 {
            let mut pieces = last.splitn(3, ':');
            let (base, tag) = (pieces.next().unwrap_or(""), pieces.next().unwrap_or(""));
            return Err(ImageRefError::ExtraColon {
                input: input.to_owned(),
                component: last.to_owned(),
                suggestion: format!("{}{base}:{tag}", &rest[..last_slash]),
            });
        }
        let (name, tag) = match last.rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        // The name first: what is wrong with it matters more than a missing tag.
        let repository = Repository::parse(name).map_err(|e| match e {
            // The suggestion keeps the tag and digest as written.
            ReferenceError::Uppercase { lower, .. } => ReferenceError::Uppercase {
                input: input.to_owned(),
                lower: format!("{lower}{}", &input[name.len()..]),
            },
            other => other,
        })?;
        if let Some(t) = tag
            && !is_valid_tag(t)
        {
            return Err(ImageRefError::BadTag {
                input: input.to_owned(),
                tag: t.to_owned(),
            });
        }
        if tag.is_none() && digest.is_none() {
            return Err(ImageRefError::Untagged {
                input: input.to_owned(),
            });
        }
        Ok(ImageRef {
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-'))
        })
}

/// True when `host` (with optional port) names this machine.
pub fn host_is_loopback(host: &str) -> bool {
    let bare = strip_port(host);
    let bare = bare
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(bare);
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `name:tag` or `name@digest`; a `:` before the last `/` belongs to a port.
fn split_tag_or_digest(s: &str) -> Option<(&str, &str)> {
    if let Some(at) = s.find('@') {
        return Some((&s[..at], &s[at..]));
    }
    let last_slash = s.rfind('/').map_or(0, |i| i + 1);
    s[last_slash..]
        .find(':')
        .map(|colon| (&s[..last_slash + colon], &s[last_slash + colon..]))
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port or [v6]
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, _)) => h,
        None => host,
    }
}

fn is_valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || port.parse::<u16>().is_err())
    {
        return false;
    }
    if name.is_empty() {
        return host.starts_with('[');
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        let got = match Repository::parse(input) {
            Ok(r) => format!("{} (api {}, path {})", r, r.api_host(), r.path()),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "input {input:?}");
    }

    #[test]
    fn normalises_like_docker() {
        check(
            "kindest/node",
            "docker.io/kindest/node (api registry-1.docker.io, path kindest/node)",
        );
        check(
            "alpine",
            "docker.io/library/alpine (api registry-1.docker.io, path library/alpine)",
        );
        check(
            "docker.io/kindest/node",
            "docker.io/kindest/node (api registry-1.docker.io, path kindest/node)",
        );
        check(
            "index.docker.io/kindest/node",
            "docker.io/kindest/node (api registry-1.docker.io, path kindest/node)",
        );
        check(
            "docker://kindest/node",
            "docker.io/kindest/node (api registry-1.docker.io, path kindest/node)",
        );
        check(
            "ghcr.io/owner/kindnode-crio",
            "ghcr.io/owner/kindnode-crio (api ghcr.io, path owner/kindnode-crio)",
        );
        check(
            "127.0.0.1:5000/a/b",
            "127.0.0.1:5000/a/b (api 127.0.0.1:5000, path a/b)",
        );
        check("localhost/a", "localhost/a (api localhost, path a)");
        check("[::1]:5000/a", "[::1]:5000/a (api [::1]:5000, path a)");
        check(
            "my-registry.example.com/a__b/c.d/e-f---g",
            "my-registry.example.com/a__b/c.d/e-f---g (api my-registry.example.com, path a__b/c.d/e-f---g)",
        );
        // Without a dot, colon or "localhost" the first component is a path, as in Docker.
        check(
            "myhost/a",
            "docker.io/myhost/a (api registry-1.docker.io, path myhost/a)",
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        check(
            "",
            "error: repository name is empty; expected e.g. kindest/node or ghcr.io/OWNER/NAME",
        );
        check(
            "kindest/node:v1.31.0",
            "error: \"kindest/node:v1.31.0\" has a tag or digest (\":v1.31.0\"); give only the repository, e.g. kindest/node",
        );
        check(
            "127.0.0.1:5000/a@sha256:abcd",
            "error: \"127.0.0.1:5000/a@sha256:abcd\" has a tag or digest (\"@sha256:abcd\"); give only the repository, e.g. 127.0.0.1:5000/a",
        );
        check(
            "Kindest/Node",
            "error: \"Kindest/Node\" has upper-case letters; repository names are lower-case (try \"kindest/node\")",
        );
        check(
            "kindest//node",
            "error: \"kindest//node\": path component \"\" is not valid; components are lower-case letters and digits, joined by '.', '_', '__' or '-'",
        );
        check(
            "a/-b",
            "error: \"a/-b\": path component \"-b\" is not valid; components are lower-case letters and digits, joined by '.', '_', '__' or '-'",
        );
        check(
            "a/b___c",
            "error: \"a/b___c\": path component \"b___c\" is not valid; components are lower-case letters and digits, joined by '.', '_', '__' or '-'",
        );
        check(
            "host:99999/a",
            "error: \"host:99999/a\": registry host \"host:99999\" is not a valid host[:port]",
        );
        check(
            "bad_host.io/a",
            "error: \"bad_host.io/a\": registry host \"bad_host.io\" is not a valid host[:port]",
        );
        check(
            "a b/c",
            "error: \"a b/c\": path component \"a b\" is not valid; components are lower-case letters and digits, joined by '.', '_', '__' or '-'",
        );
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:80",
        ] {
            assert!(host_is_loopback(host), "{host}");
        }
        for host in ["ghcr.io", "10.0.0.1:5000", "localhost.example.com", "[::2]"] {
            assert!(!host_is_loopback(host), "{host}");
        }
    }

    #[test]
    fn image_refs() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let show = |s: &str| match ImageRef::parse(s) {
            Ok(r) => r.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(
            show("kindest/node:v1.34.0"),
            "docker.io/kindest/node:v1.34.0"
        );
        assert_eq!(
            show(&format!("kindest/node:v1.34.0@{d}")),
            format!("docker.io/kindest/node:v1.34.0@{d}")
        );
        assert_eq!(
            show(&format!("127.0.0.1:5000/a@{d}")),
            format!("127.0.0.1:5000/a@{d}")
        );
        assert_eq!(show("localhost:5000/a:1"), "localhost:5000/a:1");
        assert_eq!(
            show("kindest/node"),
            "error: \"kindest/node\" has neither a tag nor a digest; add one, e.g. kindest/node:v1.34.0"
        );
        assert!(
            show("kindest/node:-x")
                .starts_with("error: \"kindest/node:-x\": tag \"-x\" is not valid")
        );
        assert!(show("kindest/node:a;b").contains("is not valid"));
        assert!(show("kindest/node@sha256:xyz").contains("digest \"sha256:xyz\" is not valid"));
        assert!(show("Kindest/node:v1").contains("upper-case"));
    }

    /// What is wrong with a reference is said before a missing tag, and in
    /// terms of the whole reference.
    #[test]
    fn image_ref_errors_name_the_real_mistake() {
        let show = |s: &str| match ImageRef::parse(s) {
            Ok(r) => r.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(
            show("KINDEST/NODE"),
            "error: \"KINDEST/NODE\" has upper-case letters; repository names are lower-case (try \"kindest/node\")"
        );
        assert_eq!(
            show("KINDEST/NODE:v1.34.0-RC"),
            "error: \"KINDEST/NODE:v1.34.0-RC\" has upper-case letters; repository names are lower-case (try \"kindest/node:v1.34.0-RC\")"
        );
        assert_eq!(
            show("ghcr.io/x/y:tag:extra"),
            "error: \"ghcr.io/x/y:tag:extra\": \"y:tag:extra\" has more than one ':'; a reference is NAME[:TAG][@DIGEST], with one tag after the last '/' (e.g. ghcr.io/x/y:tag)"
        );
        assert!(
            show("localhost:5000:v1").contains("has more than one ':'"),
            "{}",
            show("localhost:5000:v1")
        );
        // A port is no tag: only the last component counts.
        assert_eq!(show("localhost:5000/a:1"), "localhost:5000/a:1");
        assert!(
            show("--volume=/:/host").contains("path component \"--volume=\" is not valid"),
            "{}",
            show("--volume=/:/host")
        );
    }

    #[test]
    fn too_long() {
        let long = format!("ghcr.io/{}", "a".repeat(300));
        assert!(matches!(
            Repository::parse(&long),
            Err(ReferenceError::TooLong { .. })
        ));
    }
}
