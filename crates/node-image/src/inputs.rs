//! The typed inputs of a CRI-O build context, each parsed once from user text.
//! Every string that later reaches the Dockerfile or a shell line passes one of
//! these grammars first, so `--crio 'v1.31; rm -rf /'` is an error, never a build.

use std::fmt;

use registry::{ImageRef, KubernetesVersion};

use crate::secret::{Redacted, redact};

/// Why an input was rejected; messages name the input and what would be right.
/// A value that may carry a password (a URL, a mirror, a proxy) is held
/// [`redact`]ed, so no message shows one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(
        "CRI-O stream {0:?} is not valid; use vX.Y (stable, e.g. v1.34), vX.Y.Z (an exact release), main, or prerelease:vX.Y"
    )]
    Stream(String),
    #[error("architecture {0:?} is not supported; use amd64 or arm64")]
    Arch(String),
    #[error(
        "{what} {value:?} is not a valid URL; expected http(s)://HOST[:PORT]/PATH with letters, digits and -._~/:%+@ only{}",
        if *.trailing_slash { ", ending in /" } else { "" }
    )]
    Url {
        what: &'static str,
        value: String,
        trailing_slash: bool,
    },
    #[error(
        "registry mirror {0:?} is not valid; expected REGISTRY=MIRROR, e.g. registry.k8s.io=mirror.example.com/k8s"
    )]
    Mirror(String),
    #[error(
        "registry mirror {value:?} is not valid: drop the scheme {scheme:?}; CRI-O names registries and mirrors as HOST[:PORT][/PATH] (try {suggestion})"
    )]
    MirrorScheme {
        value: String,
        scheme: String,
        suggestion: String,
    },
    #[error("bundle file name {0:?} is not valid; expected a name like cri-o.amd64.v1.34.0.tar.gz")]
    BundleName(String),
    #[error(
        "{what} {value:?} is not valid; expected http(s)://[USER[:PASSWORD]@]HOST[:PORT] for a proxy, or a comma-separated list of hosts, domains or CIDRs for NO_PROXY"
    )]
    Proxy { what: &'static str, value: String },
}

/// A CRI-O release stream and where its packages live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrioStream {
    /// `vX.Y`: the stable repository of that minor.
    Stable { major: u64, minor: u64 },
    /// `vX.Y.Z`: one release, from the stable repository of its minor.
    Exact { major: u64, minor: u64, patch: u64 },
    /// `main`: the prerelease repository built from the main branch.
    Main,
    /// `prerelease:vX.Y`: the prerelease repository of a release branch.
    Prerelease { major: u64, minor: u64 },
}

impl CrioStream {
    pub fn parse(s: &str) -> Result<CrioStream, InputError> {
        let err = || InputError::Stream(s.to_owned());
        if s == "main" {
            return Ok(CrioStream::Main);
        }
        let (pre, version) = match s.strip_prefix("prerelease:") {
            Some(v) => (true, v),
            None => (false, s),
        };
        let parts: Vec<u64> = version
            .strip_prefix('v')
            .ok_or_else(err)?
            .split('.')
            .map(|p| {
                let ok = !p.is_empty()
                    && p.len() <= 4
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p == "0" || !p.starts_with('0'));
                if ok {
                    p.parse().map_err(|_| err())
                } else {
                    Err(err())
                }
            })
            .collect::<Result<_, _>>()?;
        match (pre, parts.as_slice()) {
            (false, [major, minor]) => Ok(CrioStream::Stable {
                major: *major,
                minor: *minor,
            }),
            (false, [major, minor, patch]) => Ok(CrioStream::Exact {
                major: *major,
                minor: *minor,
                patch: *patch,
            }),
            (true, [major, minor]) => Ok(CrioStream::Prerelease {
                major: *major,
                minor: *minor,
            }),
            _ => Err(err()),
        }
    }

    /// The default for a Kubernetes version: its minor, from the stable
    /// repository for releases and from the prerelease one for alpha/beta/rc
    /// (CRI-O publishes a minor's stable stream only with its release).
    pub fn for_kubernetes(k: &KubernetesVersion) -> CrioStream {
        if k.is_prerelease() {
            CrioStream::Prerelease {
                major: k.major(),
                minor: k.minor(),
            }
        } else {
            CrioStream::Stable {
                major: k.major(),
                minor: k.minor(),
            }
        }
    }

    /// The package repository path under `isv:/cri-o:/`.
    fn repository_path(&self) -> String {
        match self {
            CrioStream::Stable { major, minor } | CrioStream::Exact { major, minor, .. } => {
                format!("stable:/v{major}.{minor}")
            }
            CrioStream::Main => "prerelease:/main".to_owned(),
            CrioStream::Prerelease { major, minor } => format!("prerelease:/v{major}.{minor}"),
        }
    }

    /// The upstream apt repository of this stream (a flat repository).
    pub fn apt_repository(&self) -> RepoUrl {
        RepoUrl(format!(
            "https://download.opensuse.org/repositories/isv:/cri-o:/{}/deb/",
            self.repository_path()
        ))
    }

    /// `cri-o=1.34.2*` for an exact release; the newest package otherwise.
    pub fn apt_package(&self) -> String {
        match self {
            CrioStream::Exact {
                major,
                minor,
                patch,
            } => format!("cri-o={major}.{minor}.{patch}*"),
            _ => "cri-o".to_owned(),
        }
    }
}

impl fmt::Display for CrioStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrioStream::Stable { major, minor } => write!(f, "v{major}.{minor}"),
            CrioStream::Exact {
                major,
                minor,
                patch,
            } => write!(f, "v{major}.{minor}.{patch}"),
            CrioStream::Main => f.write_str("main"),
            CrioStream::Prerelease { major, minor } => write!(f, "prerelease:v{major}.{minor}"),
        }
    }
}

/// Node architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Arch, InputError> {
        match s {
            "amd64" => Ok(Arch::Amd64),
            "arm64" => Ok(Arch::Arm64),
            other => Err(InputError::Arch(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the node gets the images kind preloaded into containerd, which CRI-O
/// cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Preload {
    /// Stored at build time in a read-only containers-storage store in the
    /// node image, which CRI-O reads as an additional image store: nothing is
    /// imported at boot. Images the store cannot hold (whiteouts or opaque
    /// directories in a layer) are imported at boot instead.
    #[default]
    Store,
    /// Imported into CRI-O's storage at each node's first boot (a smaller
    /// image; the import runs before the kubelet starts).
    Boot,
    /// Not preloaded: CRI-O pulls every image.
    None,
}

impl Preload {
    pub fn as_str(self) -> &'static str {
        match self {
            Preload::Store => "store",
            Preload::Boot => "boot",
            Preload::None => "none",
        }
    }
}

impl fmt::Display for Preload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An http(s) URL restricted to characters that are inert in a shell word
/// and in a Dockerfile, so it can be written into both without quoting games.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoUrl(String);

impl RepoUrl {
    /// A repository base URL; it must end in `/` (apt joins paths onto it).
    pub fn parse_repository(s: &str) -> Result<RepoUrl, InputError> {
        let err = || InputError::Url {
            what: "repository URL",
            value: redact(s).into_owned(),
            trailing_slash: true,
        };
        if !s.ends_with('/') {
            return Err(err());
        }
        check_url(s).map(RepoUrl).ok_or_else(err)
    }

    /// A file URL (a bundle tarball).
    pub fn parse_file(s: &str) -> Result<RepoUrl, InputError> {
        check_url(s).map(RepoUrl).ok_or_else(|| InputError::Url {
            what: "bundle URL",
            value: redact(s).into_owned(),
            trailing_slash: false,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_url(s: &str) -> Option<String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/')?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/:%+@".contains(&b));
    (host_ok && path_ok && s.len() <= 2048).then(|| s.to_owned())
}

/// Where CRI-O comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrioSource {
    /// The `isv:/cri-o` apt repository of the stream, or a mirror of it.
    Apt { repository: RepoUrl },
    /// An upstream static bundle downloaded at build time and checked
    /// against its published `.sha256sum`.
    BundleUrl { url: RepoUrl },
    /// A bundle tarball copied into the context (air-gapped builds, unreleased
    /// CRI-O builds). Its digest is fixed at render time.
    BundleFile { name: String, bytes: Vec<u8> },
}

impl CrioSource {
    /// The default bundle URL of an exact release:
    /// `https://storage.googleapis.com/cri-o/artifacts/cri-o.<arch>.<version>.tar.gz`.
    pub fn upstream_bundle(stream: &CrioStream, arch: Arch) -> Option<RepoUrl> {
        match stream {
            CrioStream::Exact { .. } => Some(RepoUrl(format!(
                "https://storage.googleapis.com/cri-o/artifacts/cri-o.{arch}.{stream}.tar.gz"
            ))),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            CrioSource::Apt { .. } => "apt",
            CrioSource::BundleUrl { .. } | CrioSource::BundleFile { .. } => "bundle",
        }
    }

    /// Validates a local bundle's file name (it is written into the Dockerfile).
    pub fn bundle_file(name: &str, bytes: Vec<u8>) -> Result<CrioSource, InputError> {
        let ok = name.ends_with(".tar.gz")
            && name.len() <= 200
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._+".contains(&b))
            && !name.starts_with('.');
        if ok {
            Ok(CrioSource::BundleFile {
                name: name.to_owned(),
                bytes,
            })
        } else {
            Err(InputError::BundleName(name.to_owned()))
        }
    }
}

/// One registry mirror for CRI-O (`/etc/containers/registries.conf.d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The registry (or registry/path prefix) images are named by.
    pub prefix: String,
    /// Where to pull them from instead.
    pub location: String,
}

impl Mirror {
    /// Parses `REGISTRY=MIRROR`, both `host[:port][/path]`.
    pub fn parse(s: &str) -> Result<Mirror, InputError> {
        // Each side on its own, so that a password on the mirror's side
        // hides no more than that.
        let err = || {
            InputError::Mirror(match s.split_once('=') {
                Some((prefix, location)) => format!("{}={}", redact(prefix), redact(location)),
                None => redact(s).into_owned(),
            })
        };
        let (prefix, location) = s.split_once('=').ok_or_else(err)?;
        // registries.conf's `location` has no scheme (TLS or not is its own
        // `insecure` setting): a URL is the likeliest slip.
        if let Some(scheme) = [prefix, location]
            .iter()
            .find_map(|side| side.split_once("://").map(|(scheme, _)| scheme))
        {
            // No scheme, and no userinfo either: registries.conf has no
            // place for credentials (they go in an auth file).
            let bare = |side: &str| {
                let host = side.split_once("://").map_or(side, |(_, rest)| rest);
                let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
                host.trim_end_matches('/').to_owned()
            };
            return Err(InputError::MirrorScheme {
                value: format!("{}={}", redact(prefix), redact(location)),
                scheme: format!("{scheme}://"),
                suggestion: format!("{}={}", bare(prefix), bare(location)),
            });
        }
        if !is_registry_location(prefix) || !is_registry_location(location) {
            return Err(err());
        }
        Ok(Mirror {
            prefix: prefix.to_owned(),
            location: location.to_owned(),
        })
    }
}

/// `host[:port][/path...]` with Docker's name grammar for the path.
fn is_registry_location(s: &str) -> bool {
    let (host, path) = match s.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let probe = match path {
        Some(p) => format!("{host}/{p}"),
        None => format!("{host}/x"),
    };
    // A registry host must look like one (a dot, a port, or localhost).
    let hostish = host.contains('.') || host.contains(':') || host == "localhost";
    hostish && registry::Repository::parse(&probe).is_ok_and(|r| r.registry() == host)
}

/// Proxies for the build (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`). They are
/// build arguments, not part of the context: Docker, BuildKit and buildah
/// predefine these arguments and keep them out of the image's history, and a
/// proxy does not change what the image contains, so it stays out of the
/// inputs digest. A proxy URL may hold a password, so it is [`Redacted`]:
/// it reaches the engine through the environment, and shows nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildProxy {
    pub http: Option<Redacted>,
    pub https: Option<Redacted>,
    pub no_proxy: Option<String>,
}

impl BuildProxy {
    /// Validates each value: proxy URLs `http(s)://[user[:password]@]host[:port][/]`,
    /// `NO_PROXY` a comma-separated list of hosts, domains, addresses or CIDRs.
    pub fn new(
        http: Option<&str>,
        https: Option<&str>,
        no_proxy: Option<&str>,
    ) -> Result<BuildProxy, InputError> {
        let url = |what: &'static str, v: Option<&str>| -> Result<Option<Redacted>, InputError> {
            let Some(v) = v else { return Ok(None) };
            let err = || InputError::Proxy {
                what,
                value: redact(v).into_owned(),
            };
            let rest = v
                .strip_prefix("http://")
                .or_else(|| v.strip_prefix("https://"))
                .ok_or_else(err)?;
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let ok = !host.is_empty()
                && !authority.contains('/')
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                && authority
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"\"'`$\\;&|<>(){}".contains(&b));
            if ok {
                Ok(Some(Redacted::new(v)))
            } else {
                Err(err())
            }
        };
        let no_proxy = match no_proxy {
            None => None,
            Some(v) => {
                let ok = !v.is_empty()
                    && v.split(',').all(|h| {
                        !h.is_empty()
                            && h.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b".-_*:/[]".contains(&b))
                    });
                if !ok {
                    // A host list holds no password, unless one was put
                    // there by mistake: shown by the same rule.
                    return Err(InputError::Proxy {
                        what: "NO_PROXY",
                        value: redact(v).into_owned(),
                    });
                }
                Some(v.to_owned())
            }
        };
        Ok(BuildProxy {
            http: url("HTTP_PROXY", http)?,
            https: url("HTTPS_PROXY", https)?,
            no_proxy,
        })
    }

    /// The build's proxy variables, in both spellings tools read (curl and
    /// apt read the lower-case ones, many others the upper-case). The
    /// engine gets each as `--build-arg NAME` without a value, which it reads
    /// from its environment: a value on its command line would show a
    /// password to anyone who lists processes.
    pub fn vars(&self) -> Vec<(String, Redacted)> {
        let no_proxy = self.no_proxy.clone().map(Redacted::new);
        let mut out = Vec::new();
        for (name, value) in [
            ("HTTP_PROXY", &self.http),
            ("HTTPS_PROXY", &self.https),
            ("NO_PROXY", &no_proxy),
        ] {
            if let Some(v) = value {
                out.push((name.to_owned(), v.clone()));
                out.push((name.to_ascii_lowercase(), v.clone()));
            }
        }
        out
    }
}

/// Everything a build context is rendered from.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub kubernetes: KubernetesVersion,
    pub stream: CrioStream,
    pub source: CrioSource,
    /// The kind node image to build `FROM`.
    pub base_image: ImageRef,
    pub arch: Arch,
    pub mirrors: Vec<Mirror>,
    pub preload: Preload,
}

impl Inputs {
    /// kind's kubelet uses the systemd cgroup driver from Kubernetes 1.24 on,
    /// cgroupfs before; CRI-O must match it.
    pub fn cgroup_manager(&self) -> &'static str {
        if (self.kubernetes.major(), self.kubernetes.minor()) >= (1, 24) {
            "systemd"
        } else {
            "cgroupfs"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams() {
        for (s, shown, repo) in [
            ("v1.34", "v1.34", "stable:/v1.34"),
            ("v1.34.2", "v1.34.2", "stable:/v1.34"),
            ("main", "main", "prerelease:/main"),
            ("prerelease:v1.35", "prerelease:v1.35", "prerelease:/v1.35"),
        ] {
            let st = CrioStream::parse(s).unwrap();
            assert_eq!(st.to_string(), shown);
            assert_eq!(
                st.apt_repository().as_str(),
                format!("https://download.opensuse.org/repositories/isv:/cri-o:/{repo}/deb/")
            );
        }
        assert_eq!(
            CrioStream::parse("v1.34.2").unwrap().apt_package(),
            "cri-o=1.34.2*"
        );
        for bad in [
            "v1.31; rm -rf /",
            "1.34",
            "v1",
            "v1.34.0.1",
            "prerelease:main",
            "v01.34",
            "",
            "v1.34-rc.1",
        ] {
            assert_eq!(
                CrioStream::parse(bad).unwrap_err().to_string(),
                format!(
                    "CRI-O stream {bad:?} is not valid; use vX.Y (stable, e.g. v1.34), vX.Y.Z (an exact release), main, or prerelease:vX.Y"
                )
            );
        }
    }

    #[test]
    fn default_stream_follows_kubernetes() {
        let k = |s| KubernetesVersion::parse(s).unwrap();
        assert_eq!(
            CrioStream::for_kubernetes(&k("v1.34.1")).to_string(),
            "v1.34"
        );
        assert_eq!(
            CrioStream::for_kubernetes(&k("v1.36.0-alpha.2")).to_string(),
            "prerelease:v1.36"
        );
    }

    #[test]
    fn urls_are_shell_inert() {
        assert!(
            RepoUrl::parse_repository("http://127.0.0.1:8080/isv:/cri-o:/stable:/v1.34/deb/")
                .is_ok()
        );
        assert!(RepoUrl::parse_repository("https://mirror.example.com/cri-o/").is_ok());
        for bad in [
            "https://x/a",
            "ftp://x/",
            "https://x/$(id)/",
            "https://x/a b/",
            "https://x/`id`/",
            "https://x/a;b/",
            "https:///",
            "https://x/\"/",
        ] {
            assert!(RepoUrl::parse_repository(bad).is_err(), "{bad}");
        }
        assert!(
            RepoUrl::parse_file(
                "https://storage.googleapis.com/cri-o/artifacts/cri-o.amd64.v1.34.0.tar.gz"
            )
            .is_ok()
        );
        // Userinfo is refused, and the refusal hides its password.
        let err = RepoUrl::parse_repository("https://alice:s3cret@mirror.example.com/cri-o/")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "repository URL \"https://alice:***@mirror.example.com/cri-o/\" is not a valid URL"
            ),
            "{err}"
        );
        let err = RepoUrl::parse_file("https://alice:s3cret@mirror.example.com/cri-o.tar.gz")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bundle URL \"https://alice:***@"), "{err}");
    }

    #[test]
    fn mirrors() {
        let m = Mirror::parse("registry.k8s.io=mirror.example.com:5000/k8s").unwrap();
        assert_eq!(
            (m.prefix.as_str(), m.location.as_str()),
            ("registry.k8s.io", "mirror.example.com:5000/k8s")
        );
        assert!(Mirror::parse("docker.io/library=127.0.0.1:5000/hub").is_ok());
        for bad in [
            "registry.k8s.io",
            "a=b",
            "registry.k8s.io=mirror.example.com/\"x",
            "x.io=y.io/a b",
            "=y.io",
        ] {
            assert!(Mirror::parse(bad).is_err(), "{bad}");
        }
        // A mirror written with credentials is refused without showing them.
        for (bad, shown) in [
            (
                "registry.k8s.io=alice:s3cret@mirror.example.com/k8s",
                "registry.k8s.io=alice:***@mirror.example.com/k8s",
            ),
            (
                "alice:s3cret@mirror.example.com",
                "alice:***@mirror.example.com",
            ),
        ] {
            assert_eq!(
                Mirror::parse(bad).unwrap_err().to_string(),
                format!(
                    "registry mirror \"{shown}\" is not valid; expected REGISTRY=MIRROR, e.g. registry.k8s.io=mirror.example.com/k8s"
                )
            );
        }
    }

    /// A mirror URL with a password: the advice to drop the scheme shows
    /// neither the password nor a suggestion that keeps it.
    #[test]
    fn a_mirror_url_with_a_password_is_refused_without_it() {
        let err = Mirror::parse("registry.k8s.io=https://alice:s3cret@mirror.example.com")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "registry mirror \"registry.k8s.io=https://alice:***@mirror.example.com\" is not valid: drop the scheme \"https://\"; CRI-O names registries and mirrors as HOST[:PORT][/PATH] (try registry.k8s.io=mirror.example.com)"
        );
    }

    /// A URL where a registry location goes: the message says to drop the
    /// scheme, and gives the value without it.
    #[test]
    fn a_mirror_with_a_scheme_says_to_drop_it() {
        let err = |s: &str| Mirror::parse(s).unwrap_err().to_string();
        assert_eq!(
            err("registry.k8s.io=https://mirror.example.com"),
            "registry mirror \"registry.k8s.io=https://mirror.example.com\" is not valid: drop the scheme \"https://\"; CRI-O names registries and mirrors as HOST[:PORT][/PATH] (try registry.k8s.io=mirror.example.com)"
        );
        assert!(
            err("https://registry.k8s.io=http://mirror.example.com:5000/k8s/")
                .ends_with("(try registry.k8s.io=mirror.example.com:5000/k8s)")
        );
        let suggested = "registry.k8s.io=mirror.example.com:5000/k8s";
        assert!(Mirror::parse(suggested).is_ok());
        // Other mistakes keep the general message.
        assert!(
            err("a=b")
                .starts_with("registry mirror \"a=b\" is not valid; expected REGISTRY=MIRROR")
        );
    }

    #[test]
    fn proxies_are_validated_and_never_echo_passwords() {
        let p = BuildProxy::new(
            Some("http://proxy.corp.example:3128"),
            Some("http://user:s3cret@proxy.corp.example:3128/"),
            Some("localhost,127.0.0.1,.svc,10.0.0.0/8"),
        )
        .unwrap();
        let vars = p.vars();
        let shown: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(
            shown,
            [
                ("HTTP_PROXY", "http://proxy.corp.example:3128"),
                ("http_proxy", "http://proxy.corp.example:3128"),
                ("HTTPS_PROXY", "http://user:s3cret@proxy.corp.example:3128/"),
                ("https_proxy", "http://user:s3cret@proxy.corp.example:3128/"),
                ("NO_PROXY", "localhost,127.0.0.1,.svc,10.0.0.0/8"),
                ("no_proxy", "localhost,127.0.0.1,.svc,10.0.0.0/8"),
            ]
        );
        // What prints the proxy, its Debug included, shows no password.
        assert_eq!(
            vars[2].1.to_string(),
            "http://user:***@proxy.corp.example:3128/"
        );
        assert!(!format!("{p:?}").contains("s3cret"), "{p:?}");
        assert!(BuildProxy::default().vars().is_empty());
        for bad in [
            "proxy:3128",
            "http://proxy:3128/path",
            "http://a b:1",
            "http://$(id):1",
            "socks5://x:1",
        ] {
            assert!(BuildProxy::new(Some(bad), None, None).is_err(), "{bad}");
        }
        let err = |http, no_proxy| {
            BuildProxy::new(http, Some("http://proxy:1"), no_proxy)
                .unwrap_err()
                .to_string()
        };
        for bad in [
            "http://u:s3cret@bad host:1",
            "u:s3cret@proxy:3128",
            "socks5://u:s3cret@proxy:1080",
            "http://u:s3cret@proxy:3128/path",
        ] {
            let e = err(Some(bad), None);
            assert!(
                e.starts_with("HTTP_PROXY \"") && !e.contains("s3cret"),
                "{e}"
            );
        }
        assert_eq!(
            err(Some("u:s3cret@proxy:3128"), None),
            "HTTP_PROXY \"u:***@proxy:3128\" is not valid; expected http(s)://[USER[:PASSWORD]@]HOST[:PORT] for a proxy, or a comma-separated list of hosts, domains or CIDRs for NO_PROXY"
        );
        let e = err(None, Some("http://u:s3cret@proxy:1"));
        assert!(e.starts_with("NO_PROXY \"") && !e.contains("s3cret"), "{e}");
        assert!(BuildProxy::new(None, None, Some("a,,b")).is_err());
        assert!(BuildProxy::new(None, None, Some("a;b")).is_err());
    }

    #[test]
    fn bundle_names() {
        assert!(CrioSource::bundle_file("cri-o.amd64.v1.34.0.tar.gz", vec![]).is_ok());
        assert!(CrioSource::bundle_file("cri-o.amd64.0123abcd.tar.gz", vec![]).is_ok());
        for bad in [
            "x.tgz",
            "../x.tar.gz",
            "a b.tar.gz",
            ".tar.gz",
            "a;b.tar.gz",
        ] {
            assert!(CrioSource::bundle_file(bad, vec![]).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroup_manager_follows_kind() {
        let base = ImageRef::parse("kindest/node:v1.23.17").unwrap();
        let mk = |v: &str| Inputs {
            kubernetes: KubernetesVersion::parse(v).unwrap(),
            stream: CrioStream::Main,
            source: CrioSource::Apt {
                repository: CrioStream::Main.apt_repository(),
            },
            base_image: base.clone(),
            arch: Arch::Amd64,
            mirrors: vec![],
            preload: Preload::Store,
        };
        assert_eq!(mk("v1.23.17").cgroup_manager(), "cgroupfs");
        assert_eq!(mk("v1.24.0").cgroup_manager(), "systemd");
    }
}
