//! `cargo xtask doctor`: the checks of [`crate::preflight`], on the node
//! image build-image makes or on `--image`; with docker, also that docker
//! can build the CRI-O context (the buildx plugin).

use anyhow::Result;

use crate::ctx::Ctx;
use crate::step::Plan;

#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Node image to run the capability check in (default: the image build-image makes).
    #[arg(long, value_name = "REF", value_parser = crate::flags::image_ref_as_written)]
    pub image: Option<String>,
}

pub fn run(args: &DoctorArgs, ctx: &Ctx) -> Result<()> {
    let config = &ctx.config;
    let image = match &args.image {
        Some(image) => image.clone(),
        None => format!("{}:{}", config.image_repository, config.kubernetes),
    };
    let mut plan = Plan::new();
    crate::preflight::add_checks(&mut plan, &ctx.sh, config.engine, &image, None);
    // What build-image needs of docker; e2e and load-image do not.
    if config.engine == crate::engine::Engine::Docker {
        crate::preflight::add_buildx_check(&mut plan, &ctx.sh);
    }
    ctx.carry_out(plan).map(drop)
}
