//! `cargo xtask render` and `codegen` through the real binary: the committed
//! context is what `render` prints for the defaults, written contexts carry a
//! digest that matches their files, and every hostile or malformed input is
//! one clear error, never a rendered file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("KIND_CRIO_CONFIG")
        .env_remove("CI")
        .output()
        .expect("run xtask")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("render-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn default_dockerfile_is_the_committed_one() {
    let out = xtask(&["render", "dockerfile"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let committed = std::fs::read_to_string(project_root().join("images/crio/Dockerfile"))
        .expect("images/crio/Dockerfile is committed");
    assert_eq!(stdout(&out), committed);
}

#[test]
fn written_context_has_matching_digest_and_refuses_to_mix() {
    let dir = scratch("context");
    let out = xtask(&[
        "render",
        "context",
        "--out",
        dir.to_str().expect("utf-8 path"),
        "--kubernetes",
        "v1.31.2",
        "--mirror",
        "registry.k8s.io=mirror.example.com/k8s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ctx = node_image::read_context(&dir).expect("read back");
    let digest = node_image::digest_dir(&dir).expect("digest");
    assert_eq!(ctx.inputs_digest(), Some(digest.as_str()));
    assert!(stderr(&out).contains(&digest), "{}", stderr(&out));
    assert!(ctx.files.contains_key(
        "kind-crio/files/etc/containers/registries.conf.d/99-kind-crio-mirrors.conf"
    ));
    assert!(
        ctx.dockerfile()
            .contains("FROM docker.io/kindest/node:v1.31.2\n")
    );

    // A second render into the same (now non-empty) directory is refused.
    let again = xtask(&[
        "render",
        "context",
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("is not empty"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn local_bundle_is_copied_and_pinned_by_sha256() {
    let dir = scratch("bundle");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let bundle = dir.join("cri-o.amd64.v1.34.0.tar.gz");
    std::fs::write(&bundle, b"not really a tarball").expect("write");
    let out_dir = dir.join("ctx");
    let out = xtask(&[
        "render",
        "context",
        "--out",
        out_dir.to_str().expect("utf-8 path"),
        "--crio-source",
        "bundle",
        "--crio-bundle",
        bundle.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ctx = node_image::read_context(&out_dir).expect("read back");
    assert_eq!(
        ctx.files["kind-crio/cri-o.amd64.v1.34.0.tar.gz"].contents,
        b"not really a tarball"
    );
    let script =
        String::from_utf8_lossy(&ctx.files["kind-crio/install-crio.sh"].contents).into_owned();
    // The script checks the bytes against the sha256 that coreutils computes.
    let actual = {
        use std::io::Write;
        let mut child = Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"not really a tarball")
            .expect("write");
        let out = child.wait_with_output().expect("sha256sum output");
        String::from_utf8_lossy(&out.stdout)
            .split(' ')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(actual.len(), 64);
    assert!(
        script.contains(&format!("echo \"{actual}  ${{bundle}}\"")),
        "{script}"
    );
}

#[test]
fn hostile_and_malformed_inputs_are_one_line_errors() {
    for (args, fragment) in [
        (
            vec!["--crio", "v1.31; rm -rf /"],
            "CRI-O stream \"v1.31; rm -rf /\" is not valid",
        ),
        (
            vec!["--crio-repo", "https://x.example/$(id)/"],
            "repository URL \"https://x.example/$(id)/\" is not a valid URL",
        ),
        (
            vec!["--crio-repo", "https://x.example/no-slash"],
            "ending in /",
        ),
        (
            vec!["--base-image", "kindest/node:v1;id"],
            "tag \"v1;id\" is not valid",
        ),
        (
            vec!["--base-image", "kindest/node"],
            "has neither a tag nor a digest",
        ),
        (
            vec!["--kubernetes", "1.31"],
            "\"1.31\" is not a Kubernetes version",
        ),
        (
            vec!["--arch", "s390x"],
            "architecture \"s390x\" is not supported",
        ),
        (
            vec!["--mirror", "registry.k8s.io=evil.example/$(id)"],
            "registry mirror",
        ),
        (vec!["--crio-source", "bundle"], "has no single bundle"),
        (
            vec![
                "--crio-source",
                "bundle",
                "--crio-bundle",
                "https://x.example/a b.tar.gz",
            ],
            "bundle URL",
        ),
        (
            vec![
                "--crio-source",
                "bundle",
                "--crio-bundle",
                "/nonexistent/cri-o.tar.gz",
            ],
            "cannot read the CRI-O bundle",
        ),
        (
            vec![
                "--crio-source",
                "bundle",
                "--crio-bundle",
                "ftp://x.example/cri-o.tar.gz",
            ],
            "ftp:// is not supported: give an http(s) URL or a local .tar.gz",
        ),
        (
            vec!["--crio-bundle", "https://x.example/b.tar.gz"],
            "--crio-bundle goes with --crio-source bundle",
        ),
    ] {
        let mut full = vec!["render", "dockerfile"];
        full.extend(&args);
        let out = xtask(&full);
        let err = stderr(&out);
        assert!(stdout(&out).is_empty(), "{args:?} rendered something");
        // A value that does not parse is a usage error naming the flag, as
        // clap reports them (exit 2); one that parses but does not fit the
        // rest is our one-line error (exit 1).
        let flag = args.iter().rev().find(|a| a.starts_with("--")).unwrap();
        let usage = format!(
            "error: invalid value '{}' for '{flag} ",
            full.last().unwrap()
        );
        if err.starts_with(&usage) {
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.lines().next().unwrap().contains(fragment),
                "{args:?}: {err}"
            );
        } else {
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(
                err.starts_with("ERROR: ") && err.contains(fragment),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn codegen_check_passes_on_the_committed_tree() {
    let out = xtask(&["codegen", "--check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("generated files are up to date"));
}

fn xtask_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("KIND_CRIO_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run xtask");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("xtask output")
}

#[test]
fn default_kind_config_is_the_committed_one() {
    let out = xtask(&["render", "kind-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let committed = std::fs::read_to_string(project_root().join("configs/kind-crio.yaml"))
        .expect("configs/kind-crio.yaml is committed");
    assert_eq!(stdout(&out), committed);
}

#[test]
fn users_config_is_made_crio_ready_idempotently() {
    let user = "kind: Cluster\n\
                apiVersion: kind.x-k8s.io/v1alpha4\n\
                name: dev\n\
                featureGates:\n  InPlacePodVerticalScaling: true\n\
                nodes:\n\
                - role: control-plane\n  extraPortMappings:\n  - containerPort: 80\n    hostPort: 8080\n\
                - role: worker\n";
    let once = xtask_stdin(
        &[
            "render",
            "kind-config",
            "--from",
            "-",
            "--image",
            "kindnode-crio:v1.34.0",
        ],
        user,
    );
    assert!(once.status.success(), "{}", stderr(&once));
    let yaml = stdout(&once);
    for kept in [
        "name: dev",
        "InPlacePodVerticalScaling: true",
        "hostPort: 8080",
        "image: kindnode-crio:v1.34.0",
    ] {
        assert!(yaml.contains(kept), "{kept} lost:\n{yaml}");
    }
    assert_eq!(
        yaml.matches("criSocket: unix:///var/run/crio/crio.sock")
            .count(),
        3,
        "{yaml}"
    );
    let twice = xtask_stdin(&["render", "kind-config", "--from", "-"], &yaml);
    assert!(twice.status.success(), "{}", stderr(&twice));
    assert_eq!(stdout(&twice), yaml, "running it again changes nothing");
}

#[test]
fn kind_config_errors_are_clear() {
    let conflict = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  kubeadmConfigPatches:\n  - |\n    kind: InitConfiguration\n    nodeRegistration:\n      criSocket: unix:///run/containerd/containerd.sock\n";
    let out = xtask_stdin(&["render", "kind-config", "--from", "-"], conflict);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("ERROR: in stdin: ") && err.contains("containerd.sock"),
        "{err}"
    );

    let bogus = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  imag: x\n";
    let out = xtask_stdin(&["render", "kind-config", "--from", "-"], bogus);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nodes[0].imag"), "{}", stderr(&out));

    let out = xtask(&[
        "render",
        "kind-config",
        "--from",
        "x.yaml",
        "--workers",
        "2",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses --workers with --from"
    );

    let out = xtask(&["render", "kind-config", "--control-planes", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("control-plane"), "{}", stderr(&out));

    let out = xtask(&["render", "kind-config", "--image", "bad image"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: invalid value 'bad image' for '--image <REF>'"),
        "{}",
        stderr(&out)
    );
}
