//! Everything we write passes `yamllint --strict` with the project's config:
//! the goldens as committed, and the configs the tests generate now.

use std::path::{Path, PathBuf};
use std::process::Command;

use cluster_config::{encode, generate};

use crate::support::{tests_dir, yaml_files};

/// yamllint from the project's tool venv (`.ci/run` makes it), else from `PATH`.
fn find_yamllint(root: &Path) -> Option<PathBuf> {
    let venv = root.join("target/tools/venv/bin/yamllint");
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("yamllint"))
        .find(|candidate| candidate.is_file())
}

#[test]
fn everything_we_write_passes_yamllint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(yamllint) = find_yamllint(&root) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but yamllint is not installed; `bash .ci/run` installs it");
        }
        eprintln!(
            "SKIPPED everything_we_write_passes_yamllint: yamllint not found (pip install yamllint)"
        );
        return;
    };

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster-config-yamllint");
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    let mut files = Vec::new();
    let generated = crate::golden::cases().into_iter().map(|(file, options)| {
        let yaml = encode(&generate(&options).expect("generate")).expect("encode");
        (file, yaml)
    });
    for (file, yaml) in generated.chain(crate::crio_ready::outputs()) {
        std::fs::write(dir.join(&file), yaml).expect("write");
        files.push(PathBuf::from(file));
    }
    for (file, _) in yaml_files("golden") {
        files.push(tests_dir().join("golden").join(file));
    }

    // The config ignores `target/`, where the scratch files are, matching the
    // paths as given: so run in the scratch directory and name them relative to it.
    let lint = |files: &[PathBuf]| {
        Command::new(&yamllint)
            .current_dir(&dir)
            .arg("--strict")
            .arg("--config-file")
            .arg(root.join(".yamllint.yaml"))
            .args(files)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", yamllint.display()))
    };
    let output = lint(&files);
    assert!(
        output.status.success(),
        "yamllint found problems ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // And it does look at those files: kind's own unindented list style fails.
    let unindented = "unindented-list.yaml";
    std::fs::write(dir.join(unindented), "nodes:\n- role: control-plane\n").expect("write");
    let output = lint(&[PathBuf::from(unindented)]);
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stdout).contains("indentation"),
        "yamllint passed a file it should have failed:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
