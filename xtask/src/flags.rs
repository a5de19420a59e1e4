//! Flag groups more than one command takes, each value parsed into its type
//! as clap reads it (a bad value is a usage error naming the flag, before
//! anything runs). What they turn into, with the configuration, is
//! [`crate::inputs`]'s work.

use std::path::{Path, PathBuf};

use node_image::{Arch, CrioStream, Mirror, Preload, Redacted, RepoUrl};
use registry::{ImageRef, KubernetesVersion};

use crate::cluster::ClusterName;

/// What a CRI-O build context is rendered from; unset values come from the configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ContextArgs {
    /// Kubernetes version of the node image (default: kubernetes.version).
    #[arg(long, value_name = "V", value_parser = kubernetes_version)]
    pub kubernetes: Option<KubernetesVersion>,

    /// CRI-O stream: vX.Y, vX.Y.Z, main or prerelease:vX.Y (default: crio.stream,
    /// else the one configs/releases.toml pairs with the minor, else the minor).
    #[arg(long, value_name = "STREAM", value_parser = crio_stream)]
    pub crio: Option<CrioStream>,

    /// The kind node image to build FROM (default: node.repository:KUBERNETES, pinned
    /// to the digest kind released where configs/releases.toml names it).
    #[arg(long, value_name = "REF", value_parser = image_ref)]
    pub base_image: Option<ImageRef>,

    /// Node architecture.
    #[arg(long, value_name = "ARCH", default_value = "amd64", value_parser = arch)]
    pub arch: Arch,

    /// Go on when the versions do not match (the node image's tag against --kubernetes,
    /// the CRI-O minor two or more from the Kubernetes minor), with a warning.
    #[arg(long)]
    pub allow_skew: bool,

    #[command(flatten)]
    pub source: CrioSourceArgs,
}

/// Where CRI-O comes from and which mirrors it uses: shared by `render` and `build-image`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CrioSourceArgs {
    /// Where CRI-O comes from: its apt repository, or a static bundle.
    #[arg(long, value_enum, default_value_t = SourceKind::Apt)]
    pub crio_source: SourceKind,

    /// A mirror of the CRI-O apt repository to use instead of the upstream one
    /// (a URL ending in /, laid out like .../isv:/cri-o:/stable:/vX.Y/deb/).
    #[arg(long, value_name = "URL", value_parser = HidePassword(repo_url))]
    pub crio_repo: Option<RepoUrl>,

    /// The bundle for --crio-source bundle: an http(s) URL (checked against URL.sha256sum)
    /// or a local .tar.gz copied into the context. Default: the upstream bundle of an exact
    /// --crio vX.Y.Z.
    #[arg(long, value_name = "URL|FILE", value_parser = HidePassword(bundle))]
    pub crio_bundle: Option<Bundle>,

    /// Registry mirror for CRI-O, REGISTRY=MIRROR (repeatable),
    /// e.g. registry.k8s.io=mirror.example.com/k8s.
    #[arg(long = "mirror", value_name = "REGISTRY=MIRROR", value_parser = HidePassword(mirror))]
    pub mirrors: Vec<Mirror>,

    /// How the images kind preloaded reach CRI-O: store (in a read-only store built into
    /// the image: nothing imported at boot), boot (imported at each node's first boot: a
    /// smaller image), none (CRI-O pulls them).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = PreloadKind::Store)]
    pub preload: PreloadKind,
}

/// `--preload`: [`node_image::Preload`], as a flag value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PreloadKind {
    #[default]
    Store,
    Boot,
    None,
}

impl From<PreloadKind> for Preload {
    fn from(k: PreloadKind) -> Preload {
        match k {
            PreloadKind::Store => Preload::Store,
            PreloadKind::Boot => Preload::Boot,
            PreloadKind::None => Preload::None,
        }
    }
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct KindConfigArgs {
    /// Cluster name (kind's `name:`; lower-case letters, digits, '.' and '-'; a letter or digit first).
    #[arg(long, value_parser = ClusterName::parse)]
    pub name: Option<ClusterName>,

    /// Node image for every node (kept as written).
    #[arg(long, value_name = "REF", value_parser = image_ref_as_written)]
    pub image: Option<String>,

    /// Control-plane nodes to generate (not with --from).
    #[arg(long, value_name = "N", conflicts_with = "from")]
    pub control_planes: Option<usize>,

    /// Worker nodes to generate (not with --from).
    #[arg(long, value_name = "M", conflicts_with = "from")]
    pub workers: Option<usize>,

    /// kube-proxy mode: iptables, ipvs, nftables or none.
    #[arg(long, value_name = "MODE")]
    pub kube_proxy_mode: Option<cluster_config::KubeProxyMode>,

    /// Your kind config (a file, or - for stdin) to make CRI-O-ready: every field and
    /// patch you wrote is kept, CRI-O patches are added where missing.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    #[default]
    Apt,
    Bundle,
}

/// `--crio-bundle`: where the static bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bundle {
    /// Downloaded in the build and checked against `URL.sha256sum`.
    Url(RepoUrl),
    /// A local `.tar.gz`, copied into the context.
    File(PathBuf),
}

// The value parsers: each wraps the type's own parser so that clap reports
// a bad value as a usage error naming the flag.

pub fn kubernetes_version(s: &str) -> Result<KubernetesVersion, String> {
    KubernetesVersion::parse(s).map_err(|e| e.to_string())
}

pub fn crio_stream(s: &str) -> Result<CrioStream, String> {
    CrioStream::parse(s).map_err(|e| e.to_string())
}

pub fn image_ref(s: &str) -> Result<ImageRef, String> {
    not_an_option(s, "image reference")?;
    ImageRef::parse(s).map_err(|e| e.to_string())
}

/// A value that starts with `-` would reach a command line as an option
/// (`--image=--volume=/:/host` as `docker run --volume=/:/host`): no image
/// name or ID does, so it is refused before anything else is said about it.
fn not_an_option(s: &str, what: &str) -> Result<(), String> {
    if s.starts_with('-') {
        return Err(format!(
            "{s:?} starts with '-', which no {what} does (an option given as a value?)"
        ));
    }
    Ok(())
}

/// An image as a container engine names a local one: a reference (the tag
/// may be left out: `:latest`, as the engines read it) or an image ID (hex,
/// or `sha256:` and hex). Kept as written: the engine resolves it its way.
pub fn local_image(s: &str) -> Result<String, String> {
    not_an_option(s, "image name or ID")?;
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    let id = !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if id {
        return Ok(s.to_owned());
    }
    let last = s.rsplit('/').next().unwrap_or_default();
    let tagged = if s.contains('@') || last.contains(':') {
        s.to_owned()
    } else {
        format!("{s}:latest")
    };
    ImageRef::parse(&tagged)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not an image name or ID: {e}"))
}

/// An image reference, checked but kept as the user wrote it (a kind config
/// names images the way its author does).
pub fn image_ref_as_written(s: &str) -> Result<String, String> {
    image_ref(s).map(|_| s.to_owned())
}

pub fn arch(s: &str) -> Result<Arch, String> {
    Arch::parse(s).map_err(|e| e.to_string())
}

pub fn repo_url(s: &str) -> Result<RepoUrl, String> {
    RepoUrl::parse_repository(s).map_err(|e| e.to_string())
}

pub fn mirror(s: &str) -> Result<Mirror, String> {
    Mirror::parse(s).map_err(|e| e.to_string())
}

/// An http(s) URL, or a local file; another scheme is a mistake, not a file name.
pub fn bundle(s: &str) -> Result<Bundle, String> {
    if s.starts_with("http://") || s.starts_with("https://") {
        return RepoUrl::parse_file(s)
            .map(Bundle::Url)
            .map_err(|e| e.to_string());
    }
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "{scheme}:// is not supported: give an http(s) URL or a local .tar.gz"
        ));
    }
    let path = Path::new(s);
    if path.file_name().is_none() {
        return Err(format!("{s:?} names no file"));
    }
    Ok(Bundle::File(path.to_path_buf()))
}

/// A value that may hold a password (a proxy URL), kept [`Redacted`]: it is
/// validated where it is used (`node_image::BuildProxy`).
pub fn redacted(s: &str) -> Result<Redacted, String> {
    Ok(Redacted::new(s))
}

/// `parser`, with the value clap quotes in its error (`invalid value '...'
/// for '--mirror ...'`, the value as given) shown through
/// [`node_image::redact`]: a URL written with a password is refused without
/// showing it. The parsers' own messages redact theirs.
#[derive(Clone)]
pub struct HidePassword<P>(pub P);

impl<P> std::fmt::Debug for HidePassword<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HidePassword(..)")
    }
}

impl<P: clap::builder::TypedValueParser> clap::builder::TypedValueParser for HidePassword<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<P::Value, clap::Error> {
        use clap::error::{ContextKind, ContextValue};
        self.0.parse_ref(cmd, arg, value).map_err(|mut e| {
            if let Some(ContextValue::String(given)) = e.get(ContextKind::InvalidValue) {
                let shown = node_image::redact(given).into_owned();
                e.insert(ContextKind::InvalidValue, ContextValue::String(shown));
            }
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_images_are_names_or_ids_never_options() {
        for good in [
            "my-app:dev",
            "my-app",
            "localhost/my-app:dev",
            "127.0.0.1:5000/tools/debug:1",
            "0123abcd",
            "sha256:0123abcd",
            "ghcr.io/o/n@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
        ] {
            assert_eq!(local_image(good).as_deref(), Ok(good));
        }
        for (bad, why) in [
            ("-v", "starts with '-', which no image name or ID does"),
            ("--volume=/:/host", "starts with '-'"),
            ("my app", "not an image name or ID"),
            ("My-App:dev", "upper-case"),
            ("", "not an image name or ID"),
        ] {
            let err = local_image(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let err = image_ref("--volume=/:/host").unwrap_err();
        assert_eq!(
            err,
            "\"--volume=/:/host\" starts with '-', which no image reference does (an option given as a value?)"
        );
    }
}
