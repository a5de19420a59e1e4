//! Typed flag values plus the configuration, turned into what the library
//! crates render from: the CRI-O build context's [`Inputs`] and the kind
//! cluster config. Flags arrive already parsed ([`crate::flags`]); nothing
//! here goes back through a string.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use cluster_config::GenerateOptions;
use node_image::{Arch, CrioSource, CrioStream, Inputs};
use registry::{ImageRef, KubernetesVersion};

use crate::config::{CONFIG_FILE_LIMIT, Config, read_regular_file};
use crate::flags::{Bundle, ContextArgs, CrioSourceArgs, KindConfigArgs, SourceKind};
use crate::releases::{Minor, Pin, RELEASES_PATH, Releases};

/// What a build context is made of, as chosen; `None` takes the configuration's.
#[derive(Debug, Clone, Copy)]
pub struct ContextChoice<'a> {
    pub kubernetes: Option<&'a KubernetesVersion>,
    pub crio: Option<&'a CrioStream>,
    pub base_image: Option<&'a ImageRef>,
    pub arch: Arch,
    pub source: &'a CrioSourceArgs,
}

impl<'a> From<&'a ContextArgs> for ContextChoice<'a> {
    fn from(a: &'a ContextArgs) -> ContextChoice<'a> {
        ContextChoice {
            kubernetes: a.kubernetes.as_ref(),
            crio: a.crio.as_ref(),
            base_image: a.base_image.as_ref(),
            arch: a.arch,
            source: &a.source,
        }
    }
}

/// The Kubernetes version a node image's tag names, if its tag is one
/// (`kindest/node:v1.33.4`; not `v1.34.0-amd64` or `latest`).
pub fn tagged_kubernetes(image: &ImageRef) -> Option<KubernetesVersion> {
    KubernetesVersion::parse(image.tag.as_deref()?).ok()
}

/// The Kubernetes version a context is for: the one chosen, else the one
/// the node image's tag names (that is what the image runs), else the
/// configuration's.
pub fn kubernetes_for(
    config: &Config,
    chosen: Option<&KubernetesVersion>,
    base_image: Option<&ImageRef>,
) -> KubernetesVersion {
    chosen
        .cloned()
        .or_else(|| base_image.and_then(tagged_kubernetes))
        .unwrap_or_else(|| config.kubernetes.clone())
}

/// Where the choices being checked for skew came from, for messages.
#[derive(Debug, Clone, Copy)]
pub struct SkewFlags {
    /// The flag that names the node image: `--node-image` or `--base-image`.
    pub base_image: &'static str,
    /// `--allow-skew`: what would be an error is a warning.
    pub allow: bool,
}

/// Checks the versions of a choice against each other and against
/// `configs/releases.toml`: the warnings to show, or the error that says
/// how to fix what cannot work (unless `--allow-skew`). Pure.
///
/// - A node image whose tag is another Kubernetes version than the one
///   chosen would be built on and labelled with the wrong version.
/// - A version the releases file does not know (newer than anything in
///   it, or a patch of a listed minor not yet out) is only a warning:
///   alphas, fresh releases and source builds are legitimate.
/// - CRI-O's minor against the Kubernetes minor: CRI-O's README
///   ("Compatibility matrix: CRI-O ⬄ Kubernetes") says CRI-O follows the
///   Kubernetes release cycle with respect to its minor versions, CRI-O
///   1.x serving Kubernetes 1.x, and follows the Kubernetes n-2 skew
///   policy only for feature deprecation and removal. So: the same minor is
///   fine; one apart is a warning (it may work; nobody tests it); further
///   apart is an error. `main` (and CRI-O's streams paired by the releases
///   file) are not checked: the releases file pairs them on purpose.
pub fn skew(config: &Config, choice: ContextChoice<'_>, flags: SkewFlags) -> Result<Vec<String>> {
    let kubernetes = kubernetes_for(config, choice.kubernetes, choice.base_image);
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if let (Some(chosen), Some(base)) = (choice.kubernetes, choice.base_image)
        && let Some(tagged) = tagged_kubernetes(base)
        && &tagged != chosen
    {
        problems.push(format!(
            "{} {base} is Kubernetes {tagged}, but --kubernetes is {chosen}: the image would be built on {tagged} \
             and tagged and labelled {chosen}; drop --kubernetes (the version then follows the node image's tag), \
             or pass --kubernetes {tagged}",
            flags.base_image
        ));
    }
    if let Some(unknown) = unknown_kubernetes(&config.releases, &kubernetes) {
        warnings.push(unknown);
    }
    let crio = match (choice.crio, &config.crio) {
        (Some(s), _) => Some((s, "--crio")),
        (None, Some(s)) => Some((s, "crio.stream")),
        (None, None) => None,
    };
    if let Some((stream, given_as)) = crio
        && let Some((major, minor)) = stream_minor(stream)
    {
        let apart = (major, minor).max((kubernetes.major(), kubernetes.minor()));
        let below = (major, minor).min((kubernetes.major(), kubernetes.minor()));
        let distance = if apart.0 == below.0 {
            apart.1 - below.1
        } else {
            u64::MAX
        };
        let k_minor = format!("v{}.{}", kubernetes.major(), kubernetes.minor());
        let policy = format!(
            "CRI-O's minor versions follow Kubernetes' (CRI-O {k_minor} is the one for Kubernetes {k_minor})"
        );
        match distance {
            0 => {}
            1 => warnings.push(format!(
                "{given_as} {stream} is one minor from Kubernetes {kubernetes}: {policy}; it may work, but nobody tests it"
            )),
            _ => problems.push(format!(
                "{given_as} {stream} is too far from Kubernetes {kubernetes}: {policy}; pass --crio {k_minor}{}",
                if given_as == "--crio" {
                    ", or drop --crio (the stream then follows the Kubernetes version)"
                } else {
                    " (or set crio.stream to it)"
                }
            )),
        }
    }
    if problems.is_empty() {
        return Ok(warnings);
    }
    if flags.allow {
        warnings.extend(
            problems
                .into_iter()
                .map(|p| format!("{p} (going on: --allow-skew)")),
        );
        return Ok(warnings);
    }
    bail!(
        "{} (or --allow-skew to build it anyway)",
        problems.join("; and ")
    )
}

/// The CRI-O minor a stream installs; none for `main`.
fn stream_minor(stream: &CrioStream) -> Option<(u64, u64)> {
    match *stream {
        CrioStream::Stable { major, minor }
        | CrioStream::Exact { major, minor, .. }
        | CrioStream::Prerelease { major, minor } => Some((major, minor)),
        CrioStream::Main => None,
    }
}

/// Why the releases file does not know `k`, if it does not: newer than
/// every version it names, or a release of a listed minor after its latest.
fn unknown_kubernetes(releases: &Releases, k: &KubernetesVersion) -> Option<String> {
    let newest = releases
        .minors
        .iter()
        .map(|m| &m.latest)
        .chain(releases.node_images.iter().map(|n| &n.kubernetes))
        .chain(releases.prerelease.iter().map(|p| &p.kubernetes))
        .max()?;
    let hint = "fine for an alpha, a fresh release or a source build; otherwise check the version \
                (`cargo xtask refresh` updates the file)";
    if k > newest {
        return Some(format!(
            "Kubernetes {k} is newer than anything {RELEASES_PATH} knows (the newest there is {newest}): {hint}"
        ));
    }
    let minor = releases
        .minors
        .iter()
        .find(|m| m.kubernetes == Minor::of(k))?;
    (!k.is_prerelease() && k > &minor.latest).then(|| {
        format!(
            "Kubernetes {k} is not released as far as {RELEASES_PATH} knows (the latest {} is {}): {hint}",
            minor.kubernetes, minor.latest
        )
    })
}

/// The context's inputs; reads a local bundle file (the only I/O).
pub fn context(config: &Config, choice: ContextChoice<'_>) -> Result<Inputs> {
    let kubernetes = kubernetes_for(config, choice.kubernetes, choice.base_image);
    let stream = choice
        .crio
        .cloned()
        .unwrap_or_else(|| config.crio_stream_for(&kubernetes));
    let base_image = match choice.base_image {
        Some(r) => r.clone(),
        // Pinned to the digest kind released, where the releases file names it.
        None => match config.releases.pin(&config.node_repository, &kubernetes) {
            Pin::Released { image, .. } => image,
            _ => ImageRef {
                repository: config.node_repository.clone(),
                tag: Some(kubernetes.to_string()),
                digest: None,
            },
        },
    };
    let source = choice.source;
    let crio_source = match source.crio_source {
        SourceKind::Apt => {
            if source.crio_bundle.is_some() {
                bail!("--crio-bundle goes with --crio-source bundle");
            }
            let repository = match &source.crio_repo {
                Some(u) => u.clone(),
                None => stream.apt_repository(),
            };
            CrioSource::Apt { repository }
        }
        SourceKind::Bundle => {
            if source.crio_repo.is_some() {
                bail!("--crio-repo goes with --crio-source apt");
            }
            bundle_source(source.crio_bundle.as_ref(), &stream, choice.arch)?
        }
    };
    Ok(Inputs {
        kubernetes,
        stream,
        source: crio_source,
        base_image,
        arch: choice.arch,
        mirrors: source.mirrors.clone(),
        preload: source.preload.into(),
    })
}

/// The most of a local CRI-O bundle read: upstream's are around 100 MB.
const BUNDLE_LIMIT: u64 = 1024 * 1024 * 1024;

fn bundle_source(given: Option<&Bundle>, stream: &CrioStream, arch: Arch) -> Result<CrioSource> {
    match given {
        None => CrioSource::upstream_bundle(stream, arch)
            .map(|url| CrioSource::BundleUrl { url })
            .with_context(|| {
                format!(
                    "CRI-O stream {stream} has no single bundle: give an exact version (--crio vX.Y.Z) or --crio-bundle URL|FILE"
                )
            }),
        Some(Bundle::Url(url)) => Ok(CrioSource::BundleUrl { url: url.clone() }),
        Some(Bundle::File(path)) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| format!("--crio-bundle {} names no file", path.display()))?;
            // Held in memory: the context is a value (path -> bytes) that
            // is rendered, digested and written as a whole.
            let bytes = read_regular_file(path, BUNDLE_LIMIT, "the CRI-O bundle")
                .context("--crio-bundle")?;
            Ok(CrioSource::bundle_file(&name, bytes).context("--crio-bundle")?)
        }
    }
}

/// The header of a generated (not user-supplied) config.
pub const KIND_CONFIG_HEADER: &str = "# kind cluster whose nodes run CRI-O; generated by `cargo xtask render kind-config`.\n\
# Use with a CRI-O node image: kind create cluster --config FILE --image IMAGE\n";

/// A generated kind config whose nodes run CRI-O, as YAML.
pub fn generated_kind_config(options: &GenerateOptions) -> Result<String> {
    Ok(format!(
        "{KIND_CONFIG_HEADER}{}",
        cluster_config::encode(&cluster_config::generate(options)?)?
    ))
}

/// The kind config `render kind-config` prints: generated from the flags,
/// or `from` (its name for messages, and its text) made CRI-O-ready with
/// the flags applied over it.
pub fn kind_config(args: &KindConfigArgs, from: Option<(&str, &str)>) -> Result<String> {
    let Some((shown, text)) = from else {
        return generated_kind_config(&GenerateOptions {
            control_planes: args.control_planes.unwrap_or(1),
            workers: args.workers.unwrap_or(1),
            name: args.name.as_ref().map(ToString::to_string),
            image: args.image.clone(),
            kube_proxy_mode: args.kube_proxy_mode,
        });
    };
    Ok(cluster_config::encode(&crio_ready_kind_config(
        args, shown, text,
    )?)?)
}

/// A user's kind config `text` (`shown` names it in messages) made
/// CRI-O-ready, with the flags applied over it, and validated as kind does.
pub fn crio_ready_kind_config(
    args: &KindConfigArgs,
    shown: &str,
    text: &str,
) -> Result<cluster_config::Cluster> {
    let mut cluster = cluster_config::load(text).with_context(|| format!("in {shown}"))?;
    if let Some(name) = &args.name {
        cluster.name = Some(name.to_string());
    }
    if let Some(image) = &args.image {
        for node in &mut cluster.nodes {
            node.image = Some(image.clone());
        }
    }
    if let Some(mode) = args.kube_proxy_mode {
        cluster
            .networking
            .get_or_insert_with(Default::default)
            .kube_proxy_mode = Some(mode);
    }
    let ready = cluster_config::make_crio_ready(cluster).with_context(|| format!("in {shown}"))?;
    ready.validate().with_context(|| format!("in {shown}"))?;
    Ok(ready)
}

/// Reads a kind config given as `--from`: a file, or stdin for `-`; with
/// the name messages give it.
pub fn read_kind_config(path: &Path) -> Result<(String, String)> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read stdin")?;
        Ok(("stdin".to_owned(), text))
    } else {
        let bytes = read_regular_file(path, CONFIG_FILE_LIMIT, "kind config")?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("kind config {} is not UTF-8 text", path.display()))?;
        Ok((path.display().to_string(), text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{bounded, fifo};

    fn bundle(path: &Path) -> String {
        let path = path.to_path_buf();
        bounded(move || {
            let stream = CrioStream::parse("v1.34.0").expect("a stream");
            match bundle_source(Some(&Bundle::File(path)), &stream, Arch::Amd64) {
                Ok(source) => source.kind().to_owned(),
                Err(e) => format!("{e:#}"),
            }
        })
    }

    #[test]
    fn a_bundle_must_be_a_regular_file() {
        assert_eq!(
            bundle(Path::new("/dev/zero")),
            "--crio-bundle: the CRI-O bundle /dev/zero is a character device, not a regular file: give the path of a file"
        );
        let dir = testkit::TempDir::new("bundle-files");
        let pipe = fifo(dir.path(), "cri-o.amd64.v1.34.0.tar.gz");
        assert!(
            bundle(&pipe)
                .ends_with("is a FIFO (named pipe), not a regular file: give the path of a file"),
            "{}",
            bundle(&pipe)
        );
        let file = dir.path().join("cri-o.amd64.v1.34.1.tar.gz");
        std::fs::write(&file, b"a tarball").expect("write");
        assert_eq!(bundle(&file), "bundle");
    }

    #[test]
    fn a_kind_config_must_be_a_regular_file() {
        let err = bounded(|| {
            format!(
                "{:#}",
                read_kind_config(Path::new("/dev/zero")).unwrap_err()
            )
        });
        assert!(
            err.contains("is a character device, not a regular file"),
            "{err}"
        );
    }
}
