//! `cargo xtask render …`: print or write what kind-crio generates, without
//! building anything: the kind cluster config (`kind-config`) and the CRI-O
//! build context (`dockerfile`, `context`).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::ctx::Ctx;
use crate::flags::{ContextArgs, KindConfigArgs};
use crate::inputs;
use crate::step::Plan;

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
Proxies for the build are build arguments, not part of the context (without a value,
docker and podman read it from the environment, so a password stays off the command line):
  HTTPS_PROXY=http://proxy:3128 docker build --build-arg HTTPS_PROXY ...")]
    Context {
        /// Directory to write into (created if missing; must be empty if it exists).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        args: ContextArgs,
    },
}

pub fn run(args: &RenderArgs, ctx: &Ctx) -> Result<()> {
    let config = &ctx.config;
    match &args.what {
        RenderWhat::KindConfig(a) => {
            let from = a
                .from
                .as_deref()
                .map(inputs::read_kind_config)
                .transpose()?;
            let from = from
                .as_ref()
                .map(|(shown, text)| (shown.as_str(), text.as_str()));
            print!("{}", inputs::kind_config(a, from)?);
            Ok(())
        }
        RenderWhat::Dockerfile(a) => {
            warn_of_skew(config, a)?;
            print!(
                "{}",
                node_image::render(&inputs::context(config, a.into())?).dockerfile()
            );
            Ok(())
        }
        RenderWhat::Context { out, args } => {
            warn_of_skew(config, args)?;
            let context = node_image::render(&inputs::context(config, args.into())?);
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
            let mut plan = Plan::new();
            plan.native(
                format!(
                    "Writing {} files into {} (inputs digest {})",
                    context.files.len(),
                    out.display(),
                    context.inputs_digest().unwrap_or("?")
                ),
                context.files.keys().cloned().collect::<Vec<_>>().join(", "),
                || {
                    node_image::write_context(&context, out)
                        .with_context(|| format!("cannot write the context into {}", out.display()))
                },
            );
            ctx.carry_out(plan).map(drop)
        }
    }
}

/// The version checks of [`inputs::skew`]: an error, or warnings on stderr.
fn warn_of_skew(config: &crate::config::Config, args: &ContextArgs) -> Result<()> {
    let flags = inputs::SkewFlags {
        base_image: "--base-image",
        allow: args.allow_skew,
    };
    for warning in inputs::skew(config, args.into(), flags)? {
        eprintln!("   WARNING: {warning}");
    }
    Ok(())
}
