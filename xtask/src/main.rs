//! kind-crio's command line: `cargo xtask <command>`.
//!
//! `main` parses flags and builds one [`ctx::Ctx`] (the shell rooted at the
//! workspace, the effective configuration, the UI, run or dry run); each
//! command lives in its own module, takes the context, and hands the
//! `step::Plan` it builds to `Ctx::carry_out`, which prints or executes it.

// First: its `print!` and `eprintln!` replace std's in every module below.
#[macro_use]
mod ui;
#[cfg(feature = "bench")]
mod bench;
#[cfg(not(feature = "bench"))]
mod bench_relay;
mod build_image;
mod ci;
mod cluster;
mod codegen;
mod config;
mod ctx;
mod doctor;
mod e2e;
mod engine;
mod flags;
mod generated;
mod inputs;
mod kind;
mod load_image;
mod matrix;
mod preflight;
mod refresh;
mod release_notes;
mod releases;
mod render;
mod shell;
mod step;
mod tags;
#[cfg(test)]
mod test_engines;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::ctx::{Ctx, Mode};
use crate::ui::Ui;

/// Build kind node images that run CRI-O, and prove them in a cluster.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
#[command(after_help = "\
Configuration: built-in defaults (configs/default.toml), overridden by --config FILE,
overridden by flags. See the effective values with `cargo xtask config`.
Colours follow NO_COLOR; progress spinners appear only on a terminal.")]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Show every command run and its output.
    #[arg(short, long, global = true)]
    verbose: bool,

    /// Print the plan (named steps and the exact commands) instead of running it.
    #[arg(long, global = true)]
    dry_run: bool,

    /// TOML file overriding any of the defaults in configs/default.toml.
    #[arg(long, global = true, value_name = "FILE", env = "KIND_CRIO_CONFIG")]
    config: Option<PathBuf>,

    /// Container engine for every command: docker or podman (default: build.engine).
    #[arg(long, global = true, value_enum, value_name = "ENGINE")]
    engine: Option<engine::Engine>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the tags of an image repository (default kindest/node), like `skopeo list-tags`.
    Tags(tags::TagsArgs),
    /// Build a kind node image that runs CRI-O (node image if needed, CRI-O layer), optionally push it.
    BuildImage(build_image::BuildImageArgs),
    /// Create a kind cluster on a CRI-O node image, prove it healthy and running CRI-O, delete it.
    E2e(e2e::E2eArgs),
    /// Load images from the local engine into a kind cluster's CRI-O nodes.
    LoadImage(load_image::LoadImageArgs),
    /// Check kind, kubectl and the container engine, and privileged-container capabilities.
    Doctor(doctor::DoctorArgs),
    /// Print or write what kind-crio generates: the kind config, the CRI-O build context.
    Render(render::RenderArgs),
    /// Print the effective configuration (defaults + --config file) as TOML.
    Config,
    /// Regenerate the committed generated files (images/crio/); --check to verify them.
    Codegen(codegen::CodegenArgs),
    /// Run every check CI runs: formatting, clippy, tests, linters.
    Ci(ci::CiArgs),
    /// Print the CI job matrix (from configs/releases.toml, or one --kubernetes) as JSON.
    Matrix(matrix::MatrixArgs),
    /// Rewrite configs/releases.toml from kind's, Kubernetes' and CRI-O's releases; --check to verify it.
    Refresh(refresh::RefreshArgs),
    /// The notes of a GitHub release of pushed images, from the records images.yml's jobs write.
    ReleaseNotes(release_notes::ReleaseNotesArgs),
    /// Measure against the tools kind-crio replaces (needs docker-registry and skopeo).
    #[cfg(feature = "bench")]
    Bench(bench::BenchArgs),
    /// Measure against the tools kind-crio replaces: `bench tags`, `bench preload`.
    #[cfg(not(feature = "bench"))]
    Bench(bench_relay::BenchRelayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::from_env(cli.verbose);
    match context(&cli, ui).and_then(|ctx| cli.command.run(&ctx)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            ui::error(&e);
            ExitCode::FAILURE
        }
    }
}

fn context(cli: &Cli, ui: Ui) -> Result<Ctx> {
    let mut config = Config::from_path(cli.config.as_deref())?;
    if let Some(engine) = cli.engine {
        config.engine = engine;
    }
    Ok(Ctx {
        sh: shell::project_shell()?,
        config,
        ui,
        mode: if cli.dry_run { Mode::DryRun } else { Mode::Run },
    })
}

impl Command {
    fn run(&self, ctx: &Ctx) -> Result<()> {
        match self {
            Command::Tags(args) => tags::run(args, ctx),
            Command::BuildImage(args) => build_image::run(args, ctx),
            Command::E2e(args) => e2e::run(args, ctx),
            Command::LoadImage(args) => load_image::run(args, ctx),
            Command::Doctor(args) => doctor::run(args, ctx),
            Command::Render(args) => render::run(args, ctx),
            Command::Codegen(args) => codegen::run(args, ctx),
            Command::Config => {
                print!("{}{}", ctx.config.to_toml(), ctx.config.explain_defaults());
                Ok(())
            }
            Command::Bench(args) => bench_entry(args, ctx),
            Command::Matrix(args) => matrix::run(args, &ctx.config),
            Command::Refresh(args) => refresh::run(args, ctx),
            Command::ReleaseNotes(args) => release_notes::run(args),
            Command::Ci(args) => ci::run(args, ctx),
        }
    }
}

#[cfg(feature = "bench")]
fn bench_entry(args: &bench::BenchArgs, ctx: &Ctx) -> Result<()> {
    bench::run(args, &ctx.ui)
}

#[cfg(not(feature = "bench"))]
fn bench_entry(args: &bench_relay::BenchRelayArgs, ctx: &Ctx) -> Result<()> {
    bench_relay::run(args, ctx)
}
