//! `cargo xtask doctor`: the checks of [`crate::preflight`], on the node
//! image build-image makes or on `--image`.

use anyhow::Result;

use crate::config::Engine;
use crate::ui::Ui;

#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Node image to run the capability check in (default: the image build-image makes).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
}

pub fn run(args: &DoctorArgs, engine: Engine, image: &str, ui: &Ui, dry_run: bool) -> Result<()> {
    let image = args.image.as_deref().unwrap_or(image);
    crate::preflight::run(engine, image, ui, dry_run)
}
