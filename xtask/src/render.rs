//! `cargo xtask render …`: print or write what kind-crio generates, without
//! building anything: the kind cluster config (`kind-config`) and the CRI-O
//! build context (`dockerfile`, `context`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use dockerfile::{Arch, CrioSource, CrioStream, Inputs, Mirror, Preload, RepoUrl};
use registry::{ImageRef, KubernetesVersion};

use crate::config::Config;
use crate::releases::Pin;

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(subcommand)]
    pub what: RenderWhat,
}

#[derive(Debug, clap::Subcommand)]
pub enum RenderWhat {
    /// Print a kind cluster config whose nodes use CRI-O (or make yours CRI-O-ready).
    #[command(after_help = "\
Every node gets kubeadm patches that set nodeRegistration.criSocket to CRI-O's socket
(InitConfiguration and JoinConfiguration on control-plane nodes, JoinConfiguration on
workers), without apiVersion so they match kubeadm v1beta3 and v1beta4.

Examples:
  cargo xtask render kind-config --workers 2 > kind-crio.yaml
  cargo xtask render kind-config --from my-kind.yaml      # keeps everything you wrote
  kind create cluster --config kind-crio.yaml --image ghcr.io/OWNER/kindnode-crio:v1.34.0")]
    KindConfig(KindConfigArgs),
    /// Print the Dockerfile that turns a kind node image into a CRI-O node image.
    Dockerfile(ContextArgs),
    /// Write the whole build context (Dockerfile, node files, scripts) into a directory.
    #[command(after_help = "\
The directory can be built without kind-crio:
  cargo xtask render context --out ctx && docker build -t kindnode-crio ctx
Proxies for the build are build arguments, not part of the context:
  docker build --build-arg HTTPS_PROXY=http://proxy:3128 ...")]
    Context {
        /// Directory to write into (created if missing; must be empty if it exists).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        args: ContextArgs,
    },
}

/// What a CRI-O build context is rendered from; unset values come from the configuration.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ContextArgs {
    /// Kubernetes version of the node image (default: kubernetes.version).
    #[arg(long, value_name = "V")]
    pub kubernetes: Option<String>,

    /// CRI-O stream: vX.Y, vX.Y.Z, main or prerelease:vX.Y (default: crio.stream,
    /// else the one configs/releases.toml pairs with the minor, else the minor).
    #[arg(long, value_name = "STREAM")]
    pub crio: Option<String>,

    /// The kind node image to build FROM (default: node.repository:KUBERNETES, pinned
    /// to the digest kind released where configs/releases.toml names it).
    #[arg(long, value_name = "REF")]
    pub base_image: Option<String>,

    /// Node architecture.
    #[arg(long, value_name = "ARCH", default_value = "amd64")]
    pub arch: String,

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
    #[arg(long, value_name = "URL")]
    pub crio_repo: Option<String>,

    /// The bundle for --crio-source bundle: an http(s) URL (checked against URL.sha256sum)
    /// or a local .tar.gz copied into the context. Default: the upstream bundle of an exact
    /// --crio vX.Y.Z.
    #[arg(long, value_name = "URL|FILE")]
    pub crio_bundle: Option<String>,

    /// Registry mirror for CRI-O, REGISTRY=MIRROR (repeatable),
    /// e.g. registry.k8s.io=mirror.example.com/k8s.
    #[arg(long = "mirror", value_name = "REGISTRY=MIRROR")]
    pub mirrors: Vec<String>,

    /// How the images kind preloaded reach CRI-O: store (in a read-only store built into
    /// the image: nothing imported at boot), boot (imported at each node's first boot: a
    /// smaller image), none (CRI-O pulls them).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = PreloadKind::Store)]
    pub preload: PreloadKind,
}

/// `--preload`: [`dockerfile::Preload`], as a flag value.
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
    /// Cluster name (kind's `name:`; lower-case letters, digits, '.' and '-').
    #[arg(long)]
    pub name: Option<String>,

    /// Node image for every node.
    #[arg(long, value_name = "REF")]
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

/// The header of a generated (not user-supplied) config.
pub const KIND_CONFIG_HEADER: &str = "# kind cluster whose nodes run CRI-O; generated by `cargo xtask render kind-config`.\n\
# Use with a CRI-O node image: kind create cluster --config FILE --image IMAGE\n";

impl KindConfigArgs {
    /// The config as YAML: generated, or the user's made CRI-O-ready.
    pub fn render(&self, read_from: impl FnOnce(&Path) -> Result<String>) -> Result<String> {
        if let Some(image) = &self.image {
            ImageRef::parse(image).context("--image")?;
        }
        let cluster = match &self.from {
            None => cluster_config::generate(&cluster_config::GenerateOptions {
                control_planes: self.control_planes.unwrap_or(1),
                workers: self.workers.unwrap_or(1),
                name: self.name.clone(),
                image: self.image.clone(),
                kube_proxy_mode: self.kube_proxy_mode,
            })?,
            Some(path) => {
                let text = read_from(path)?;
                let shown = if path == Path::new("-") {
                    "stdin".to_owned()
                } else {
                    path.display().to_string()
                };
                let mut cluster =
                    cluster_config::load(&text).with_context(|| format!("in {shown}"))?;
                if let Some(name) = &self.name {
                    cluster.name = Some(name.clone());
                }
                if let Some(image) = &self.image {
                    for node in &mut cluster.nodes {
                        node.image = Some(image.clone());
                    }
                }
                if let Some(mode) = self.kube_proxy_mode {
                    cluster
                        .networking
                        .get_or_insert_with(Default::default)
                        .kube_proxy_mode = Some(mode);
                }
                let ready = cluster_config::make_crio_ready(cluster)
                    .with_context(|| format!("in {shown}"))?;
                ready.validate().with_context(|| format!("in {shown}"))?;
                return Ok(cluster_config::encode(&ready)?);
            }
        };
        Ok(format!(
            "{KIND_CONFIG_HEADER}{}",
            cluster_config::encode(&cluster)?
        ))
    }
}

/// Reads `--from`: a file, or stdin for `-`.
fn read_config_source(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read stdin")?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    #[default]
    Apt,
    Bundle,
}

impl ContextArgs {
    /// Parses every value into its type; reads a local bundle file (the only I/O).
    pub fn inputs(&self, config: &Config) -> Result<Inputs> {
        let kubernetes = match &self.kubernetes {
            Some(v) => KubernetesVersion::parse(v).context("--kubernetes")?,
            None => config.kubernetes.clone(),
        };
        let stream = match &self.crio {
            Some(s) => CrioStream::parse(s).context("--crio")?,
            None => config.crio_stream_for(&kubernetes),
        };
        let base_image = match &self.base_image {
            Some(r) => ImageRef::parse(r).context("--base-image")?,
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
        let arch = Arch::parse(&self.arch).context("--arch")?;
        let source = match self.source.crio_source {
            SourceKind::Apt => {
                if self.source.crio_bundle.is_some() {
                    bail!("--crio-bundle goes with --crio-source bundle");
                }
                let repository = match &self.source.crio_repo {
                    Some(u) => RepoUrl::parse_repository(u).context("--crio-repo")?,
                    None => stream.apt_repository(),
                };
                CrioSource::Apt { repository }
            }
            SourceKind::Bundle => {
                if self.source.crio_repo.is_some() {
                    bail!("--crio-repo goes with --crio-source apt");
                }
                bundle_source(self.source.crio_bundle.as_deref(), &stream, arch)?
            }
        };
        let mirrors = self
            .source
            .mirrors
            .iter()
            .map(|m| Mirror::parse(m).context("--mirror"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Inputs {
            kubernetes,
            stream,
            source,
            base_image,
            arch,
            mirrors,
            preload: self.source.preload.into(),
        })
    }
}

fn bundle_source(given: Option<&str>, stream: &CrioStream, arch: Arch) -> Result<CrioSource> {
    match given {
        None => CrioSource::upstream_bundle(stream, arch)
            .map(|url| CrioSource::BundleUrl { url })
            .with_context(|| {
                format!(
                    "CRI-O stream {stream} has no single bundle: give an exact version (--crio vX.Y.Z) or --crio-bundle URL|FILE"
                )
            }),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(CrioSource::BundleUrl {
            url: RepoUrl::parse_file(u).context("--crio-bundle")?,
        }),
        Some(file) => {
            let path = Path::new(file);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| format!("--crio-bundle {file:?} names no file"))?;
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the CRI-O bundle {}", path.display()))?;
            Ok(CrioSource::bundle_file(&name, bytes).context("--crio-bundle")?)
        }
    }
}

pub fn run(args: &RenderArgs, config: &Config, dry_run: bool) -> Result<()> {
    match &args.what {
        RenderWhat::KindConfig(a) => {
            print!("{}", a.render(read_config_source)?);
            Ok(())
        }
        RenderWhat::Dockerfile(a) => {
            let ctx = dockerfile::render(&a.inputs(config)?);
            print!("{}", ctx.dockerfile());
            Ok(())
        }
        RenderWhat::Context { out, args } => {
            let ctx = dockerfile::render(&args.inputs(config)?);
            if out.exists()
                && std::fs::read_dir(out)
                    .with_context(|| format!("cannot read {}", out.display()))?
                    .next()
                    .is_some()
            {
                bail!(
                    "{} is not empty; give a new or empty directory so no stale file ends up in the build",
                    out.display()
                );
            }
            if dry_run {
                // What would be written; nothing is.
                println!(
                    "1. Writing {} files into {} (inputs digest {})",
                    ctx.files.len(),
                    out.display(),
                    ctx.inputs_digest().unwrap_or("?")
                );
                for path in ctx.files.keys() {
                    println!("   {path}");
                }
                return Ok(());
            }
            dockerfile::write_context(&ctx, out)
                .with_context(|| format!("cannot write the context into {}", out.display()))?;
            eprintln!(
                "wrote {} files into {} (inputs digest {})",
                ctx.files.len(),
                out.display(),
                ctx.inputs_digest().unwrap_or("?")
            );
            Ok(())
        }
    }
}
