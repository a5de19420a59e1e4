//! `cargo xtask build-image`: from a Kubernetes version to a CRI-O kind node
//! image, optionally pushed.
//!
//! Two phases. *Resolve* (read-only, also done by `--dry-run`): which node
//! image to build on (given; published `kindest/node:V` pinned to the digest
//! kind's release names in `configs/releases.toml`, else to the digest its tag
//! points to today, saying so; or one to build with kind), the rendered
//! context and its inputs digest, and
//! whether an image with that digest already exists locally or in the target
//! registry. *Plan*: the named steps and exact commands that follow from it.
//! The push is the last main step, so a failure anywhere leaves no new tag;
//! the temporary directory is removed whatever happens, Ctrl-C included.
//! That directory is the run's own (`TAG.PID-N`): two runs for one tag build
//! each from its own context, and each removes only its own directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use node_image::{Arch, BuildProxy, CrioStream, Redacted};
use registry::{Client, ImageRef, KubernetesVersion, Options};

use crate::config::Config;
use crate::ctx::Ctx;
use crate::engine::{Engine, Output};
use crate::flags::{self, CrioSourceArgs};
use crate::inputs::ContextChoice;
use crate::releases::{Pin, RELEASES_PATH, Release};
use crate::step::{Invocation, Plan};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The node image comes from, in order: --node-image; else kindest/node:KUBERNETES if
published, pinned to the digest kind's release names (configs/releases.toml), or,
for a version that file gives no digest for, to the digest the tag points to today
(said so: not a digest kind released); else it is built with kind: `kind build node-image
--type release` (published releases, alpha and rc included; no checkout, minutes),
or with --build-node source the original recipe (kind's base image with `make quick`,
a kubernetes checkout at the version, `kind build node-image --base-image`).

An image whose io.kind-crio.inputs.digest label equals the rendered context's is not
built again (checked locally, and in the target registry with --push).

Several --arch make one multi-arch index. A published or given node image is one
multi-platform base: one context, built for every platform. Node images kind builds are
one per architecture (localhost/kind-crio/node:V-ARCH): podman copies them from docker,
builds a context on each and joins them in one manifest list, so that needs --engine
podman. Architectures other than the host's run under QEMU (binfmt handlers installed).

Examples:
  cargo xtask build-image                                  # the defaults, local image only
  cargo xtask build-image --kubernetes v1.36.0-rc.0 --push --image ghcr.io/OWNER/kindnode-crio
  cargo xtask build-image --dry-run --arch amd64 arm64 --push")]
pub struct BuildImageArgs {
    /// Kubernetes version (default: kubernetes.version).
    #[arg(long, value_name = "V", value_parser = flags::kubernetes_version)]
    pub kubernetes: Option<KubernetesVersion>,

    /// CRI-O stream: vX.Y, vX.Y.Z, main or prerelease:vX.Y (default: crio.stream, else
    /// the Kubernetes minor).
    #[arg(long, value_name = "STREAM", value_parser = flags::crio_stream)]
    pub crio: Option<CrioStream>,

    /// Image to build: REPOSITORY or REPOSITORY:TAG (default: image.repository, tagged
    /// with the Kubernetes version).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,

    /// Push the image (one multi-arch index with several --arch).
    #[arg(long)]
    pub push: bool,

    /// Build even when an image with the same inputs digest exists, and without the
    /// engine's layer cache: picks up a newer CRI-O of the same stream (the inputs name
    /// the stream, not the patch release apt or the bundle URL resolves to).
    #[arg(long)]
    pub rebuild: bool,

    /// Build on this kind node image instead of looking one up.
    #[arg(long, value_name = "REF", conflicts_with = "build_node", value_parser = flags::image_ref)]
    pub node_image: Option<ImageRef>,

    /// Go on when the versions do not match (--node-image's tag against --kubernetes,
    /// the CRI-O minor two or more from the Kubernetes minor), with a warning.
    #[arg(long)]
    pub allow_skew: bool,

    /// Build the node image with kind even if kindest/node has the version.
    #[arg(long, value_enum, value_name = "release|source")]
    pub build_node: Option<BuildNode>,

    /// Architectures: amd64, arm64, or both.
    #[arg(long, value_name = "ARCH", num_args = 1.., default_value = "amd64", value_parser = flags::arch)]
    pub arch: Vec<Arch>,

    #[command(flatten)]
    pub source: CrioSourceArgs,

    /// HTTP proxy for the build (a build argument; not stored in the image). A password
    /// in it is passed in the engine's environment and shown nowhere.
    #[arg(long, value_name = "URL", value_parser = flags::redacted)]
    pub http_proxy: Option<Redacted>,

    /// HTTPS proxy for the build.
    #[arg(long, value_name = "URL", value_parser = flags::redacted)]
    pub https_proxy: Option<Redacted>,

    /// Hosts the build reaches without the proxy.
    #[arg(long, value_name = "LIST")]
    pub no_proxy: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuildNode {
    /// `kind build node-image --type release V`: Kubernetes' published binaries.
    Release,
    /// kind's base image and a kubernetes checkout at the version, built from source.
    Source,
}

/// Where the node image comes from, as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeImage {
    /// `--node-image`.
    Given(ImageRef),
    /// `kindest/node:V@sha256:…`, and where its digest comes from.
    Published { image: ImageRef, pin: Pinned },
    /// Built locally with kind (`kind` is its version, whose sources a
    /// `source` build uses): one image per architecture, as kind builds them.
    Build {
        how: BuildNode,
        images: Vec<(Arch, ImageRef)>,
        kind: String,
    },
}

/// Where a published node image's digest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    /// The digest kind's release names (`configs/releases.toml`).
    Released { kind: Release },
    /// The digest the tag points to today: the releases file lists the
    /// version for `kind` without its digest.
    TagUndigested { kind: Release },
    /// The digest the tag points to today: the releases file does not name
    /// the version among `kind`'s node images.
    TagUnnamed { kind: Release },
    /// The digest the tag points to today, in a repository that is not kind's.
    Tag,
    /// Not looked up (a dry run that could not ask the registry): by tag.
    Unresolved,
}

/// One build of the engine: a rendered context and the platforms built from
/// it. A published or given node image is one multi-platform base, so one
/// context serves every architecture; node images kind builds are one per
/// architecture, so each gets its own context (its own `FROM`).
#[derive(Debug, Clone)]
pub struct Variant {
    pub arches: Vec<Arch>,
    pub inputs: node_image::Inputs,
    pub context: node_image::Context,
    /// The context's directory in the work directory: `context`, or
    /// `context-ARCH` when there is one per architecture.
    pub dir_name: String,
}

impl Variant {
    fn platforms(&self) -> String {
        platforms(&self.arches)
    }
}

fn platforms(arches: &[Arch]) -> String {
    arches
        .iter()
        .map(|a| format!("linux/{a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Everything decided before any command runs.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub kubernetes: KubernetesVersion,
    pub stream: CrioStream,
    pub engine: Engine,
    /// What the build makes for these platforms with this engine.
    pub output: Output,
    pub target: ImageRef,
    pub node: NodeImage,
    /// At least one; the first holds the first --arch.
    pub variants: Vec<Variant>,
    pub proxy: BuildProxy,
    pub push: bool,
    /// No up-to-date checks and no layer cache.
    pub rebuild: bool,
    /// Where the context (and any checkout) goes, relative to the project
    /// root: the tag's name under `target/kind-crio/build-image` as
    /// resolved; `run` makes it the run's own with [`claim_workdir`].
    pub workdir: PathBuf,
    pub up_to_date: UpToDate,
    /// What a dry run could not look up (no network, no kind, no engine),
    /// each with what the plan assumes and what a real run would decide.
    pub unresolved: Vec<String>,
    /// Versions that may not go together (see [`crate::inputs::skew`]).
    pub warnings: Vec<String>,
}

/// What already has the image with these inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpToDate {
    Nowhere,
    Locally,
    /// In the target registry (and so nothing to build or push).
    InRegistry,
}

// The resolve phase (read-only lookups) and the plan live in their own files.
mod plan;
mod resolve;

use plan::plan;
use resolve::LiveLookup;
#[cfg(test)]
use resolve::Lookup;

/// `TAG_DIR.PID-N`: a name no other live run of build-image has (the pid)
/// and no other plan of this one (`n`).
fn run_workdir(tag_dir: &Path, pid: u32, n: usize) -> PathBuf {
    let mut name = tag_dir.as_os_str().to_owned();
    name.push(format!(".{pid}-{n}"));
    PathBuf::from(name)
}

/// Creates a working directory of this run's own next to where `tag_dir`
/// would be, and returns it. Created, not just named: a directory left by a
/// run that was killed, or by a process of the same pid in another pid
/// namespace, is never shared, since `create_dir` fails on what exists.
/// (A dozen lines, not the tempfile crate: the plan, not a destructor,
/// removes the directory, so that a dry run can print that step.)
pub fn claim_workdir(tag_dir: &Path) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    if let Some(parent) = tag_dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    loop {
        let dir = run_workdir(
            tag_dir,
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
        );
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
}

/// A one-line summary of the resolve phase, printed before the plan.
pub fn summary(r: &Resolved) -> String {
    let node = match &r.node {
        NodeImage::Given(i) => format!("node image {i} (given)"),
        NodeImage::Published { image, pin } => {
            let today = "the digest its tag points to today, not one kind released";
            match pin {
                Pinned::Released { kind } => format!(
                    "node image {image} (published by kind {kind}: the digest its release names, from {RELEASES_PATH})"
                ),
                Pinned::TagUndigested { kind } => format!(
                    "node image {image} (published; {today}: {RELEASES_PATH} lists {} of kind {kind} without its digest until `cargo xtask refresh` fills it in)",
                    r.kubernetes
                ),
                Pinned::TagUnnamed { kind } => format!(
                    "node image {image} (published; {today}: {RELEASES_PATH} names no {} node image of kind {kind})",
                    r.kubernetes
                ),
                Pinned::Tag => format!("node image {image} (published)"),
                Pinned::Unresolved => {
                    format!("node image {image} (not looked up: see the plan's end)")
                }
            }
        }
        NodeImage::Build { how, images, kind } => {
            let names = images
                .iter()
                .map(|(_, i)| i.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let from = match how {
                BuildNode::Release => "release binaries",
                BuildNode::Source => "source",
            };
            let noun = if images.len() > 1 {
                "node images"
            } else {
                "node image"
            };
            format!("{noun} {names} (to build with kind {kind} from {from})")
        }
    };
    let state = match r.up_to_date {
        UpToDate::Nowhere => "",
        UpToDate::Locally => "; already built locally with these inputs",
        UpToDate::InRegistry => "; already in its registry with these inputs",
    };
    format!(
        "{} for Kubernetes {} with CRI-O {} on {node}{state}",
        r.target, r.kubernetes, r.stream
    )
}

pub fn run(args: &BuildImageArgs, ctx: &Ctx) -> Result<()> {
    let client = Client::new(Options::default());
    let lookup = LiveLookup {
        sh: &ctx.sh,
        client,
        ui: &ctx.ui,
    };
    let mut resolved = ctx.ui.step("Resolving inputs", || {
        if ctx.dry_run() {
            args.resolve_for_dry_run(&ctx.config, &lookup)
        } else {
            args.resolve(&ctx.config, &lookup)
        }
    })?;
    // A run's own working directory (the plan removes it; an image already
    // in its registry needs none). A dry run creates nothing: it shows the
    // kind of name a run uses.
    resolved.workdir = if ctx.dry_run() {
        run_workdir(&resolved.workdir, std::process::id(), 0)
    } else if resolved.up_to_date == UpToDate::InRegistry {
        resolved.workdir
    } else {
        claim_workdir(&resolved.workdir)?
    };
    eprintln!("   {}", summary(&resolved));
    for warning in &resolved.warnings {
        eprintln!("   WARNING: {warning}");
    }
    ctx.carry_out(plan(&ctx.sh, &resolved)).map(drop).map_err(|e| {
        e.context(
            "build-image did not finish and pushed no tag; fix the cause and rerun the same command (-v shows every command's output)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::bail;
    use clap::Parser;
    use expect_test::expect_file;
    use xshell::{Shell, cmd};

    /// A registry and engine that answer from fixed data.
    struct Fake {
        published: Option<&'static str>,
        local: Option<String>,
        registry: Option<String>,
    }

    impl Lookup for Fake {
        fn published_digest(&self, _: &ImageRef) -> Result<Option<String>> {
            Ok(self.published.map(str::to_owned))
        }
        fn local_inputs_digest(&self, _: Engine, _: &ImageRef) -> Result<Option<String>> {
            Ok(self.local.clone())
        }
        fn registry_inputs_digest(&self, _: &ImageRef, _: Arch) -> Result<Option<String>> {
            Ok(self.registry.clone())
        }
        fn kind_version(&self) -> Result<String> {
            Ok("v0.33.0".to_owned())
        }
    }

    /// build-image's flags, and the global --engine.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BuildImageArgs,
        #[arg(long, value_enum)]
        engine: Option<Engine>,
    }

    const DIGEST: &str = "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

    fn resolve(argv: &[&str], fake: &Fake) -> Result<Resolved> {
        resolve_with(&Config::load(None)?, argv, fake)
    }

    fn resolve_with(config: &Config, argv: &[&str], fake: &dyn Lookup) -> Result<Resolved> {
        let cli = Cli::try_parse_from(std::iter::once("build-image").chain(argv.iter().copied()))?;
        let mut config = config.clone();
        if let Some(engine) = cli.engine {
            config.engine = engine;
        }
        cli.args.resolve(&config, fake)
    }

    /// The releases of the tests, which do not change when the committed file does.
    fn fixture_config() -> Config {
        let releases =
            crate::releases::Releases::parse(crate::releases::tests::FIXTURE).expect("the fixture");
        Config::load_with(releases, None).expect("the defaults")
    }

    fn dry_run(argv: &[&str], fake: &Fake) -> String {
        dry_run_with(&Config::load(None).expect("the defaults"), argv, fake)
    }

    fn dry_run_with(config: &Config, argv: &[&str], fake: &Fake) -> String {
        let sh = Shell::new().expect("a shell");
        match resolve_with(config, argv, fake) {
            Ok(r) => format!("# {}\n{}", summary(&r), plan(&sh, &r).render()),
            Err(e) => format!("error: {e:#}\n"),
        }
    }

    fn nowhere(published: Option<&'static str>) -> Fake {
        Fake {
            published,
            local: None,
            registry: None,
        }
    }

    /// No network, no kind, no engine: every lookup fails.
    struct Offline;

    impl Lookup for Offline {
        fn published_digest(&self, _: &ImageRef) -> Result<Option<String>> {
            bail!("no network")
        }
        fn local_inputs_digest(&self, _: Engine, _: &ImageRef) -> Result<Option<String>> {
            bail!("no engine")
        }
        fn registry_inputs_digest(&self, _: &ImageRef, _: Arch) -> Result<Option<String>> {
            bail!("no network")
        }
        fn kind_version(&self) -> Result<String> {
            bail!("no kind")
        }
    }

    /// A dry run shows what it could not look up instead of failing; a real
    /// run still fails on the same lookups.
    #[test]
    fn a_dry_run_shows_what_it_cannot_look_up() {
        let config = fixture_config();
        let parse = |argv: &[&str]| {
            Cli::try_parse_from(std::iter::once("build-image").chain(argv.iter().copied()))
                .expect("valid flags")
                .args
        };
        // A version the releases file has no digest for: the registry is asked.
        let args = parse(&["--kubernetes", "v1.36.99"]);
        let r = args
            .resolve_for_dry_run(&config, &Offline)
            .expect("a dry run resolves");
        assert!(matches!(
            &r.node,
            NodeImage::Published { pin: Pinned::Unresolved, image } if image.digest.is_none()
        ));
        assert_eq!(r.unresolved.len(), 2, "{:?}", r.unresolved);
        assert!(r.unresolved[0].starts_with(
            "whether docker.io/kindest/node:v1.36.99 is published (no network): shown as published, by tag"
        ));
        assert!(
            r.unresolved[1].starts_with("whether ghcr.io/"),
            "{:?}",
            r.unresolved
        );
        let mut shown = Plan::new();
        shown.unresolved(r.unresolved.clone());
        assert!(
            shown
                .render()
                .starts_with("Not looked up (a real run does first):\n  - ")
        );
        let err = args
            .resolve(&config, &Offline)
            .expect_err("a real run fails");
        assert!(format!("{err:#}").contains("no network"), "{err:#}");

        // A node image kind must build, without kind.
        let args = parse(&["--kubernetes", "v1.36.0-alpha.2", "--build-node", "release"]);
        let r = args
            .resolve_for_dry_run(&config, &Offline)
            .expect("a dry run resolves");
        assert!(matches!(&r.node, NodeImage::Build { kind, .. } if kind == "(not found)"));
        assert!(
            r.unresolved[0].starts_with("kind's version (no kind): a real run needs kind v0.24.0")
        );
        assert!(args.resolve(&config, &Offline).is_err());
        assert_eq!(Plan::new().unresolved(Vec::new()).render(), "");
    }

    #[test]
    fn plans() {
        let cases: &[(&str, &[&str], Fake)] = &[
            ("published-node", &[], nowhere(Some(DIGEST))),
            (
                "published-node-push-podman",
                &[
                    "--push",
                    "--engine",
                    "podman",
                    "--image",
                    "127.0.0.1:5000/kc",
                ],
                nowhere(Some(DIGEST)),
            ),
            (
                "build-node-release",
                &["--kubernetes", "v1.36.0-alpha.2"],
                nowhere(None),
            ),
            (
                "build-node-source",
                &[
                    "--build-node",
                    "source",
                    "--push",
                    "--image",
                    "ghcr.io/owner/kindnode-crio",
                ],
                nowhere(Some(DIGEST)),
            ),
            (
                "multi-arch-push-docker",
                &[
                    "--arch",
                    "amd64",
                    "arm64",
                    "--push",
                    "--image",
                    "ghcr.io/owner/kindnode-crio",
                ],
                nowhere(Some(DIGEST)),
            ),
            (
                "multi-arch-push-podman",
                &[
                    "--arch",
                    "amd64",
                    "arm64",
                    "--push",
                    "--engine",
                    "podman",
                    "--image",
                    "ghcr.io/owner/kindnode-crio:v1.34.0-crio",
                ],
                nowhere(Some(DIGEST)),
            ),
            (
                "build-node-release-podman",
                &["--engine", "podman", "--build-node", "release"],
                nowhere(Some(DIGEST)),
            ),
            (
                "multi-arch-build-node-release-push-podman",
                &[
                    "--kubernetes",
                    "v1.36.0-alpha.2",
                    "--arch",
                    "amd64",
                    "arm64",
                    "--push",
                    "--engine",
                    "podman",
                    "--image",
                    "ghcr.io/owner/kindnode-crio",
                ],
                nowhere(None),
            ),
            (
                "multi-arch-build-node-source-push-podman",
                &[
                    "--build-node",
                    "source",
                    "--arch",
                    "amd64",
                    "arm64",
                    "--push",
                    "--engine",
                    "podman",
                    "--image",
                    "ghcr.io/owner/kindnode-crio",
                ],
                nowhere(Some(DIGEST)),
            ),
            (
                "proxy-and-bundle",
                &[
                    "--crio",
                    "v1.34.2",
                    // Three minors from the default Kubernetes: not what this case is about.
                    "--allow-skew",
                    "--crio-source",
                    "bundle",
                    "--https-proxy",
                    "http://alice:s3cret@proxy.example:3128",
                    "--no-proxy",
                    "localhost,.svc",
                ],
                nowhere(Some(DIGEST)),
            ),
        ];
        for (name, argv, fake) in cases {
            let shown = dry_run(argv, fake);
            assert!(
                !shown.contains("s3cret"),
                "{name}: a password shows:\n{shown}"
            );
            expect_file![format!("../tests/golden/build-image-{name}.txt")].assert_eq(&shown);
        }
        // What the releases file does not pin: the tag's digest today, said so.
        let fixture = fixture_config();
        let cases: &[(&str, &[&str])] = &[
            ("tag-digest-not-yet-known", &["--kubernetes", "v1.35.8"]),
            ("tag-digest-not-released", &["--kubernetes", "v1.34.0"]),
        ];
        for (name, argv) in cases {
            expect_file![format!("../tests/golden/build-image-{name}.txt")]
                .assert_eq(&dry_run_with(&fixture, argv, &nowhere(Some(DIGEST))));
        }
    }

    /// A digest the releases file names is pinned without asking the
    /// registry; a digest it does not know is asked for, and the summary
    /// says it is not one kind released.
    #[test]
    fn pins_the_digest_kind_released() {
        /// Fails the test if the registry is asked.
        struct NoRegistry;
        impl Lookup for NoRegistry {
            fn published_digest(&self, image: &ImageRef) -> Result<Option<String>> {
                bail!("asked the registry for {image}")
            }
            fn local_inputs_digest(&self, _: Engine, _: &ImageRef) -> Result<Option<String>> {
                Ok(None)
            }
            fn registry_inputs_digest(&self, _: &ImageRef, _: Arch) -> Result<Option<String>> {
                Ok(None)
            }
            fn kind_version(&self) -> Result<String> {
                Ok("v0.33.0".to_owned())
            }
        }
        let config = fixture_config();
        let r = resolve_with(&config, &[], &NoRegistry).unwrap();
        let released = "docker.io/kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5";
        assert_eq!(
            summary(&r),
            format!(
                "ghcr.io/kind-crio/kindnode-crio:v1.37.0 for Kubernetes v1.37.0 with CRI-O v1.37 on node image {released} (published by kind v0.33.0: the digest its release names, from configs/releases.toml)"
            )
        );
        // The committed file's default is pinned the same way.
        let config = Config::load(None).unwrap();
        if let crate::releases::Pin::Released { image, .. } = config
            .releases
            .pin(&config.node_repository, &config.kubernetes)
        {
            let r = resolve(&[], &nowhere(None)).unwrap();
            assert_eq!(
                r.node,
                NodeImage::Published {
                    image,
                    pin: Pinned::Released {
                        kind: config.releases.kind.version
                    }
                }
            );
        }
        // Not pinned by the file: asked, and the error says what was looked up.
        let err = format!(
            "{:#}",
            resolve_with(&fixture_config(), &["--kubernetes", "v1.35.8"], &NoRegistry).unwrap_err()
        );
        assert!(
            err.contains("looking up docker.io/kindest/node:v1.35.8")
                && err.contains("asked the registry"),
            "{err}"
        );
    }

    #[test]
    fn skips_what_is_already_built() {
        let fresh = resolve(&[], &nowhere(Some(DIGEST))).unwrap();
        let digest = fresh.variants[0]
            .context
            .inputs_digest()
            .unwrap()
            .to_owned();
        let sh = Shell::new().unwrap();

        let local = Fake {
            published: Some(DIGEST),
            local: Some(digest.clone()),
            registry: None,
        };
        let r = resolve(&[], &local).unwrap();
        assert_eq!(r.up_to_date, UpToDate::Locally);
        let p = plan(&sh, &r).render();
        assert!(
            !p.contains("docker build") && !p.contains("Rendering"),
            "{p}"
        );
        // Built locally on a node image kind would build: kind is not run.
        let build = ["--build-node", "release"];
        let built = Fake {
            local: resolve(&build, &nowhere(Some(DIGEST))).unwrap().variants[0]
                .context
                .inputs_digest()
                .map(str::to_owned),
            ..nowhere(Some(DIGEST))
        };
        let r = resolve(&build, &built).unwrap();
        assert_eq!(r.up_to_date, UpToDate::Locally);
        let p = plan(&sh, &r).render();
        assert!(!p.contains("kind build"), "{p}");
        // Locally built and --push: only the push remains.
        let r = resolve(&["--push"], &local).unwrap();
        let p = plan(&sh, &r).render();
        let target = format!("ghcr.io/kind-crio/kindnode-crio:{}", r.kubernetes);
        assert!(p.starts_with(&format!("1. Pushing {target}\n")), "{p}");

        let published = Fake {
            published: Some(DIGEST),
            local: None,
            registry: Some(digest.clone()),
        };
        let r = resolve(&["--push"], &published).unwrap();
        assert_eq!(r.up_to_date, UpToDate::InRegistry);
        assert!(
            plan(&sh, &r)
                .render()
                .starts_with(&format!("1. {target} is up to date in its registry"))
        );

        // --rebuild: built again, without the layer cache, whatever exists.
        let everywhere = Fake {
            published: Some(DIGEST),
            local: Some(digest.clone()),
            registry: Some(digest.clone()),
        };
        let r = resolve(&["--push", "--rebuild"], &everywhere).unwrap();
        assert_eq!(r.up_to_date, UpToDate::Nowhere);
        let p = plan(&sh, &r).render();
        assert!(
            p.contains("$ DOCKER_BUILDKIT=1 docker build --platform linux/amd64 --no-cache -t"),
            "{p}"
        );
        assert!(p.contains("$ docker push"), "{p}");

        // Another digest anywhere means a build.
        let stale = Fake {
            published: Some(DIGEST),
            local: Some("sha256:other".into()),
            registry: Some("sha256:other".into()),
        };
        assert_eq!(
            resolve(&["--push"], &stale).unwrap().up_to_date,
            UpToDate::Nowhere
        );
    }

    /// The script run for real against podman: an old list, a plain image
    /// under the name, and nothing at all.
    #[test]
    fn a_new_manifest_list_replaces_what_had_the_name() {
        let Some(podman) =
            crate::test_engines::podman("a_new_manifest_list_replaces_what_had_the_name")
        else {
            return;
        };
        let sh = &podman.sh;
        let name = "localhost/kind-crio-test/list:v1";
        let exists = |what: &str| {
            cmd!(sh, "podman {what} exists {name}")
                .quiet()
                .ignore_status()
                .ignore_stderr()
                .output()
                .unwrap()
                .status
                .success()
        };
        let run = || plan::new_manifest_list(sh, name).unwrap();

        cmd!(sh, "podman manifest create {name}")
            .quiet()
            .ignore_stdout()
            .run()
            .unwrap();
        assert!(exists("manifest"));
        run();
        assert!(!exists("manifest") && !exists("image"));

        crate::test_engines::import(sh, "podman", &podman.tarball, name);
        assert!(exists("image") && !exists("manifest"));
        run();
        assert!(!exists("image"));

        run();
        assert!(!exists("manifest") && !exists("image"));
    }

    /// Two runs for one tag at once, each with other inputs: each builds
    /// from its own context, and neither removes the other's. The engine is
    /// a stand-in `docker` that reads the context's inputs digest after a
    /// while, as a build reads its context.
    #[test]
    fn two_runs_for_one_tag_each_build_their_own_context() {
        let dir = testkit::TempDir::new("build-image-two-runs");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let docker = bin.join("docker");
        std::fs::write(
            &docker,
            "#!/bin/sh\n# docker buildx version: the preflight.\n\
             [ \"$1\" = buildx ] && exit 0\n\
             # docker build ... DIR: the last argument is the context.\n\
             for context; do :; done\n\
             sleep 0.5\n\
             tail -n 1 \"$context/Dockerfile\" > \"$SEEN\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let runs: Vec<(Resolved, PathBuf)> = ["v1.36", "v1.37"]
            .iter()
            .map(|crio| {
                let argv = ["--image", "ghcr.io/o/n:shared", "--crio", crio];
                let mut r = resolve(&argv, &nowhere(Some(DIGEST))).unwrap();
                assert_eq!(r.workdir, Path::new("target/kind-crio/build-image/shared"));
                // As `run` does, under the test's directory.
                r.workdir = claim_workdir(&dir.path().join("shared")).unwrap();
                (r, dir.path().join(format!("seen-{crio}")))
            })
            .collect();
        assert_ne!(runs[0].0.workdir, runs[1].0.workdir);
        let quiet = crate::ui::Ui {
            verbose: false,
            tty: false,
            color: false,
        };
        std::thread::scope(|scope| {
            for (r, seen) in &runs {
                let path = &path;
                scope.spawn(move || {
                    let sh = Shell::new().unwrap();
                    sh.set_var("PATH", path);
                    sh.set_var("SEEN", seen);
                    plan(&sh, r).execute(&quiet).unwrap();
                });
            }
        });
        for (r, seen) in &runs {
            let digest = r.variants[0].context.inputs_digest().unwrap();
            let built = std::fs::read_to_string(seen).unwrap();
            assert_eq!(
                built,
                format!("LABEL {}=\"{digest}\"\n", node_image::DIGEST_LABEL)
            );
            assert!(!r.workdir.exists(), "{} is left", r.workdir.display());
        }
        assert_ne!(
            runs[0].0.variants[0].context.inputs_digest(),
            runs[1].0.variants[0].context.inputs_digest()
        );
    }

    #[test]
    fn a_working_directory_is_claimed_once() {
        let dir = testkit::TempDir::new("build-image-claim");
        let tag_dir = dir.path().join("v1.37.0");
        let pid = std::process::id();
        // One that a killed run left, with the pid and number this one would take.
        std::fs::create_dir_all(run_workdir(&tag_dir, pid, 0)).unwrap();
        let claimed: Vec<PathBuf> = (0..3).map(|_| claim_workdir(&tag_dir).unwrap()).collect();
        for c in &claimed {
            assert!(c.is_dir());
            assert!(c != &run_workdir(&tag_dir, pid, 0));
            let name = c.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with(&format!("v1.37.0.{pid}-")), "{name}");
        }
        assert!(claimed[0] != claimed[1] && claimed[1] != claimed[2]);
        assert!(!tag_dir.exists());
    }

    /// The node image's tag, the Kubernetes version and the CRI-O minor
    /// are checked against each other, and the version against the releases.
    #[test]
    fn versions_that_do_not_go_together() {
        let config = fixture_config();
        let f = nowhere(Some(DIGEST));
        let resolve = |argv: &[&str]| resolve_with(&config, argv, &f);
        let err = |argv: &[&str]| format!("{:#}", resolve(argv).unwrap_err());

        let skewed = [
            "--kubernetes",
            "v1.34.0",
            "--node-image",
            "kindest/node:v1.33.4",
        ];
        assert_eq!(
            err(&skewed),
            "--node-image docker.io/kindest/node:v1.33.4 is Kubernetes v1.33.4, but --kubernetes is v1.34.0: \
             the image would be built on v1.33.4 and tagged and labelled v1.34.0; drop --kubernetes (the version \
             then follows the node image's tag), or pass --kubernetes v1.33.4 (or --allow-skew to build it anyway)"
        );
        let allowed = resolve(&[&skewed[..], &["--allow-skew"]].concat()).unwrap();
        assert_eq!(allowed.kubernetes.to_string(), "v1.34.0");
        assert!(
            allowed.warnings[0].ends_with("(going on: --allow-skew)"),
            "{:?}",
            allowed.warnings
        );
        // Without --kubernetes, the version is the node image's.
        let follows = resolve(&["--node-image", "kindest/node:v1.33.4"]).unwrap();
        assert_eq!(follows.kubernetes.to_string(), "v1.33.4");
        assert_eq!(follows.target.tag.as_deref(), Some("v1.33.4"));
        assert_eq!(follows.stream.to_string(), "v1.33");
        assert!(follows.warnings.is_empty(), "{:?}", follows.warnings);
        // A tag that is no Kubernetes version says nothing.
        let custom = resolve(&[
            "--kubernetes",
            "v1.35.8",
            "--node-image",
            "ghcr.io/o/node:dev",
        ])
        .unwrap();
        assert!(custom.warnings.is_empty(), "{:?}", custom.warnings);

        // Unknown to the releases file: a warning, never an error.
        let future = resolve(&["--kubernetes", "v9.99.0"]).unwrap();
        assert_eq!(
            future.warnings,
            [
                "Kubernetes v9.99.0 is newer than anything configs/releases.toml knows (the newest there is \
              v1.38.0-rc.0): fine for an alpha, a fresh release or a source build; otherwise check the version \
              (`cargo xtask refresh` updates the file)"
            ]
        );
        let unreleased = resolve(&["--kubernetes", "v1.37.5"]).unwrap();
        assert!(
            unreleased.warnings[0].starts_with(
                "Kubernetes v1.37.5 is not released as far as configs/releases.toml knows (the latest v1.37 is v1.37.1)"
            ),
            "{:?}",
            unreleased.warnings
        );
        for known in ["v1.37.1", "v1.34.0", "v1.38.0-rc.0", "v1.36.0-alpha.2"] {
            let r = resolve(&["--kubernetes", known]).unwrap();
            assert!(r.warnings.is_empty(), "{known}: {:?}", r.warnings);
        }

        // CRI-O's minor against Kubernetes': the same, one apart, further.
        let crio = |stream: &str| resolve(&["--kubernetes", "v1.34.0", "--crio", stream]);
        assert!(crio("v1.34").unwrap().warnings.is_empty());
        assert!(crio("v1.34.2").unwrap().warnings.is_empty());
        assert!(crio("main").unwrap().warnings.is_empty());
        let near = crio("v1.33").unwrap().warnings;
        assert_eq!(
            near,
            [
                "--crio v1.33 is one minor from Kubernetes v1.34.0: CRI-O's minor versions follow Kubernetes' \
              (CRI-O v1.34 is the one for Kubernetes v1.34); it may work, but nobody tests it"
            ]
        );
        assert_eq!(crio("prerelease:v1.35").unwrap().warnings.len(), 1);
        let far = format!("{:#}", crio("v1.20").unwrap_err());
        assert_eq!(
            far,
            "--crio v1.20 is too far from Kubernetes v1.34.0: CRI-O's minor versions follow Kubernetes' \
             (CRI-O v1.34 is the one for Kubernetes v1.34); pass --crio v1.34, or drop --crio (the stream then \
             follows the Kubernetes version) (or --allow-skew to build it anyway)"
        );
        assert!(err(&["--kubernetes", "v1.34.0", "--crio", "v1.36"]).contains("too far"));
        let allowed =
            resolve(&["--kubernetes", "v1.34.0", "--crio", "v1.20", "--allow-skew"]).unwrap();
        assert_eq!(allowed.stream.to_string(), "v1.20");
        assert_eq!(allowed.warnings.len(), 1);
    }

    #[test]
    fn refuses_what_cannot_work() {
        let f = nowhere(None);
        let err = |argv: &[&str]| format!("{:#}", resolve(argv, &f).unwrap_err());
        // A version no registry has and no releases file pins: kind builds it.
        let unpublished = [
            "--kubernetes",
            "v1.36.0-alpha.2",
            "--arch",
            "amd64",
            "arm64",
            "--push",
        ];
        assert!(err(&unpublished).contains("kind builds one node image per architecture"));
        assert!(err(&unpublished).contains("use --engine podman"));
        assert!(
            err(&[
                "--arch",
                "amd64",
                "arm64",
                "--node-image",
                "kindest/node:v1.34.0"
            ])
            .contains("docker keeps one platform")
        );
        assert!(err(&["--arch", "amd64", "amd64"]).contains("give each architecture once"));
        // Not only neighbours: the same architecture anywhere in the list.
        assert!(
            err(&["--arch", "amd64", "arm64", "amd64", "--push"])
                .contains("give each architecture once")
        );
        assert!(err(&["--image", "ghcr.io/o/n@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"]).contains("takes a tag, not a digest"));
        for bad in ["http://u:s3cret@bad host:1", "u:s3cret@proxy:3128"] {
            assert!(err(&["--https-proxy", bad]).contains("HTTPS_PROXY"));
            assert!(!err(&["--https-proxy", bad]).contains("s3cret"));
            assert!(!err(&["--http-proxy", bad]).contains("s3cret"));
        }
        assert!(err(&["--crio", "v1.31; rm -rf /"]).contains("not valid"));
    }
}
