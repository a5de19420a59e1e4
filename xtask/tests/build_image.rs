//! `cargo xtask build-image` for real on this machine: podman (daemonless,
//! vfs storage, chroot isolation) builds the CRI-O layer on the stand-in kind
//! node image with a stand-in CRI-O bundle and pushes it to a real CNCF
//! distribution registry on loopback. Then `tags` lists the new tag, a second
//! run skips the build because the registry has the same inputs digest, and a
//! failure injected into the build leaves no tag and no working directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::standin;
use testkit::{Auth, Registry};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("build-image-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// The stand-in node image, a scratch directory, and a `storage.conf` that
/// points podman at the stand-ins' store; None (after a loud skip, or a
/// failure under CI) when the tools are missing.
fn stand_in(test: &str, name: &str) -> Option<(String, PathBuf, PathBuf)> {
    let mut tools = standin::NODE_TOOLS.to_vec();
    tools.extend_from_slice(testkit::REGISTRY_TOOLS);
    if !testkit::tools_present(test, &tools) {
        return None;
    }
    let base = standin::node_base_image().expect("the stand-in node image");
    let dir = scratch(name);
    let storage_conf = dir.join("storage.conf");
    std::fs::write(
        &storage_conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            standin::storage_root().display(),
            standin::storage_runroot().display()
        ),
    )
    .expect("write storage.conf");
    Some((base, dir, storage_conf))
}

/// podman pointed at the stand-ins' store, building without a daemon.
fn xtask(args: &[&str], storage_conf: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("CONTAINERS_STORAGE_CONF", storage_conf)
        .env("BUILDAH_ISOLATION", "chroot")
        .env_remove("KIND_CRIO_CONFIG")
        .output()
        .expect("run xtask")
}

/// The working directories of runs for `tag` still there: each run has
/// its own, `TAG.PID-N`, and removes it.
fn workdirs_left(tag: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kind-crio/build-image");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(tag)?.strip_prefix('.'))
                .is_some_and(|run| run.split('-').all(|n| n.parse::<u64>().is_ok()))
        })
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn build_push_skip_and_fail_cleanly() {
    let Some((base, dir, storage_conf)) = stand_in("build_push_skip_and_fail_cleanly", "push")
    else {
        return;
    };
    let bundle = standin::crio_bundle(&dir, "amd64", "v1.34.0");
    let registry = Registry::start("build-image-push", Auth::None);
    let repo = format!("{}/kind-crio/node-crio", registry.host());
    let tag = "v1.34.0";
    let args = |image: &str, bundle: &Path| -> Vec<String> {
        [
            "build-image",
            "--engine",
            "podman",
            "--kubernetes",
            tag,
            "--node-image",
            &base,
            "--crio-source",
            "bundle",
            "--crio-bundle",
            bundle.to_str().expect("utf-8"),
            "--image",
            image,
            "--push",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |image: &str, bundle: &Path| {
        let a = args(image, bundle);
        xtask(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            &storage_conf,
        )
    };

    // 1. Build and push.
    let first = run(&repo, &bundle);
    let first_text = text(&first);
    assert!(first.status.success(), "{first_text}");
    for step in [
        "✓ Rendering the CRI-O build context",
        "✓ Building",
        "✓ Pushing",
        "✓ Removing the temporary directory",
    ] {
        assert!(first_text.contains(step), "{step} missing:\n{first_text}");
    }
    assert_eq!(
        workdirs_left(tag),
        [] as [PathBuf; 0],
        "the working directory is removed"
    );

    // 2. `tags` sees the new tag, and the pushed image carries the inputs digest.
    let tags = xtask(&["tags", "--json", &repo], &storage_conf);
    assert!(tags.status.success(), "{}", text(&tags));
    let listed: serde_json::Value = serde_json::from_slice(&tags.stdout).expect("JSON");
    assert_eq!(listed["Tags"], serde_json::json!([tag]));
    let client = registry::Client::new(registry::Options::default());
    let pushed_labels = || {
        client
            .image_labels(
                &registry::Repository::parse(&repo).expect("repo"),
                tag,
                "amd64",
            )
            .expect("labels")
            .expect("the pushed image")
    };
    let digest = pushed_labels()
        .get("io.kind-crio.inputs.digest")
        .expect("the inputs digest label")
        .clone();
    assert!(digest.starts_with("sha256:"), "{digest}");

    // 3. The same inputs again: nothing to build or push.
    let second = run(&repo, &bundle);
    let second_text = text(&second);
    assert!(second.status.success(), "{second_text}");
    assert!(
        second_text.contains("is up to date in its registry"),
        "{second_text}"
    );
    assert!(!second_text.contains("Building"), "{second_text}");

    // 3b. --rebuild: built again (no layer cache) and pushed, same inputs digest.
    let mut again = args(&repo, &bundle);
    again.extend(["--rebuild".to_owned(), "--verbose".to_owned()]);
    let rebuilt = xtask(
        &again.iter().map(String::as_str).collect::<Vec<_>>(),
        &storage_conf,
    );
    let rebuilt_text = text(&rebuilt);
    assert!(rebuilt.status.success(), "{rebuilt_text}");
    assert!(rebuilt_text.contains("✓ Building"), "{rebuilt_text}");
    // The RUN step ran again rather than coming from the layer cache.
    assert!(
        rebuilt_text.contains("kind-crio: preload: recorded"),
        "{rebuilt_text}"
    );
    assert!(rebuilt_text.contains("✓ Pushing"), "{rebuilt_text}");
    assert_eq!(
        pushed_labels().get("io.kind-crio.inputs.digest"),
        Some(&digest)
    );

    // 4. A build that fails (a bundle that is not a tarball) pushes no tag
    //    and leaves no working directory.
    let broken = dir.join("cri-o.amd64.v1.34.0-broken.tar.gz");
    std::fs::write(&broken, b"not a tarball").expect("write");
    let broken_repo = format!("{}/kind-crio/broken", registry.host());
    let failed = run(&broken_repo, &broken);
    let failed_text = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{failed_text}");
    assert!(failed_text.contains("✗ Building"), "{failed_text}");
    assert!(failed_text.contains("pushed no tag"), "{failed_text}");
    assert!(!failed_text.contains("Pushing"), "{failed_text}");
    assert_eq!(
        workdirs_left(tag),
        [] as [PathBuf; 0],
        "the working directory is removed after a failure too"
    );
    let none = xtask(&["tags", &broken_repo], &storage_conf);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    assert!(text(&none).contains("not found"), "{}", text(&none));
    let still = xtask(&["tags", &repo], &storage_conf);
    assert_eq!(String::from_utf8_lossy(&still.stdout), format!("{tag}\n"));

    let _ = standin::podman()
        .args(["rmi", "--force", &format!("{repo}:{tag}")])
        .output();
}

/// `--dry-run` resolves for real (read-only): a published node image on a
/// real registry is found and pinned by its digest; a missing one is built.
#[test]
fn dry_run_pins_a_published_node_image_by_digest() {
    if !testkit::tools_present(
        "dry_run_pins_a_published_node_image_by_digest",
        testkit::REGISTRY_TOOLS,
    ) {
        return;
    }
    let registry = Registry::start("build-image-dry-run", Auth::None);
    let digest = registry.push("kindest/node", "v1.34.0", "node");
    let dir = scratch("dry-run");
    let config = dir.join("kind-crio.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nrepository = \"{}/kindest/node\"\n[image]\nrepository = \"{}/kind-crio/node-crio\"\n",
            registry.host(),
            registry.host()
        ),
    )
    .expect("write the config");
    let conf = dir.join("unused-storage.conf");
    let config = config.to_str().expect("utf-8");

    // A registry that is not kind's: the tag's digest is what gets pinned.
    let out = xtask(
        &[
            "--dry-run",
            "--config",
            config,
            "build-image",
            "--kubernetes",
            "v1.34.0",
            "--engine",
            "podman",
        ],
        &conf,
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let node = format!("{}/kindest/node:v1.34.0@{digest}", registry.host());
    assert!(
        t.contains(&format!("on node image {node} (published)")),
        "{t}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("1. Rendering the CRI-O build context\n"),
        "{t}"
    );
    assert!(
        stdout.contains("podman build --format docker --platform linux/amd64 -t "),
        "{t}"
    );
    assert!(!stdout.contains("Pushing"), "{t}");

    // Not published: the plan builds the node image with kind first (kind's
    // version is asked for, so without kind the error says what is missing).
    let out = xtask(
        &[
            "--dry-run",
            "--config",
            config,
            "build-image",
            "--kubernetes",
            "v1.35.0",
        ],
        &conf,
    );
    let t = text(&out);
    if out.status.success() {
        // After the check that docker has BuildKit, which kind's build and ours need.
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(
                "1. Checking docker buildx (BuildKit)\n   $ docker buildx version\n\
                 2. Building node image localhost/kind-crio/node:v1.35.0"
            ),
            "{t}"
        );
    } else {
        assert!(t.contains("building a node image needs kind"), "{t}");
    }
}

/// Ctrl-C during the build: the terminal signals the whole process group, the
/// build stops, the cleanup still runs, and nothing is pushed.
#[test]
fn ctrl_c_during_the_build_cleans_up_and_pushes_nothing() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    let Some((base, dir, storage_conf)) = stand_in(
        "ctrl_c_during_the_build_cleans_up_and_pushes_nothing",
        "ctrl-c",
    ) else {
        return;
    };
    let bundle = standin::crio_bundle(&dir, "amd64", "v1.34.0");
    let registry = Registry::start("build-image-ctrl-c", Auth::None);
    let repo = format!("{}/kind-crio/interrupted", registry.host());
    let tag = "v1.34.0-interrupted";
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "build-image",
            "--engine",
            "podman",
            "--kubernetes",
            "v1.34.0",
            "--node-image",
            &base,
            "--crio-source",
            "bundle",
            "--crio-bundle",
            bundle.to_str().expect("utf-8"),
            "--image",
            &format!("{repo}:{tag}"),
            "--push",
        ])
        .env("CONTAINERS_STORAGE_CONF", &storage_conf)
        .env("BUILDAH_ISOLATION", "chroot")
        .env_remove("KIND_CRIO_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, as a terminal's foreground job has.
        .process_group(0)
        .spawn()
        .expect("start build-image");
    let pgid = child.id();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        seen.push(line.clone());
        if line.contains("• Building") {
            // Let podman get going, then press Ctrl-C.
            std::thread::sleep(std::time::Duration::from_millis(500));
            let status = Command::new("kill")
                .args(["-INT", "--", &format!("-{pgid}")])
                .status()
                .expect("kill");
            assert!(status.success());
            break;
        }
    }
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("wait");
    let all = seen.join("\n");
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(all.contains("✗ Building"), "{all}");
    assert!(all.contains("✓ Removing the temporary directory"), "{all}");
    assert!(
        all.contains("interrupted (Ctrl-C, SIGTERM or SIGHUP)"),
        "{all}"
    );
    assert!(!all.contains("Pushing"), "{all}");
    assert_eq!(
        workdirs_left(tag),
        [] as [PathBuf; 0],
        "the working directory is removed"
    );
    let tags = xtask(&["tags", &repo], &storage_conf);
    assert!(text(&tags).contains("not found"), "{}", text(&tags));
}
