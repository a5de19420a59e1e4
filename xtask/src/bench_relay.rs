//! `cargo xtask bench ...` in the binary users run, which links none of the
//! test kit: the benchmarks need its real components (a registry, containerd,
//! stand-in images), so they live behind the `bench` feature. This builds
//! that feature in a target directory of its own (so neither build replaces
//! the other's binary) and runs it with the same arguments, its output and
//! exit status passed through.

use std::process::{Command, ExitStatus};

use anyhow::{Context as _, Result, bail};
use xshell::cmd;

use crate::ctx::Ctx;
use crate::step::Plan;

/// Where the benchmarks' build goes, relative to the project root.
const TARGET_DIR: &str = "target/bench";

#[derive(Debug, clap::Args)]
#[command(
    disable_help_flag = true,
    after_help = "\
The benchmarks are built on first use (the `bench` feature, in target/bench):
  cargo xtask bench tags [--sizes 2000,20000] [--runs 15]
  cargo xtask bench preload [--set kind-sized|small] [--runs 3]
  cargo xtask bench --help      # the benchmarks' own help"
)]
pub struct BenchRelayArgs {
    /// What to measure, and its flags (see `cargo xtask bench --help`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "WHAT [FLAGS]"
    )]
    pub args: Vec<String>,
}

pub fn run(args: &BenchRelayArgs, ctx: &Ctx) -> Result<()> {
    let mut relayed: Vec<String> = Vec::new();
    if ctx.ui.verbose {
        relayed.push("-v".to_owned());
    }
    relayed.push("bench".to_owned());
    relayed.extend(args.args.iter().cloned());
    let sh = &ctx.sh;
    let command = Command::from(cmd!(
        sh,
        "cargo run --quiet --locked --package xtask --features bench --target-dir {TARGET_DIR} -- {relayed...}"
    ));
    let line = crate::step::shell_line(&command, &[]);
    let mut plan = Plan::new();
    plan.native(
        "Building the benchmarks and running them",
        format!("$ {line}; its report on stdout, its progress on stderr"),
        move || {
            let mut command = command;
            // Inherited streams: the report on stdout, progress on stderr, as
            // the benchmark prints them.
            let status = command
                .status()
                .context("cannot run cargo to build the benchmarks")?;
            check(status)
        },
    )
    // The benchmark draws its own status lines.
    .show_output();
    ctx.carry_out(plan).map(drop)
}

/// The relayed run's status as ours.
fn check(status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("the benchmark failed ({status})")
    }
}
