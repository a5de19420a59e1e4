//! The kind tier: kind-crio's own commands against real kind (Debian sid's
//! 0.33), on Docker and on podman, with node images that `cargo xtask
//! build-image` builds itself from stand-in kind node images.
//!
//! What is real: kind, kubectl, the engines (Docker with BuildKit through the
//! buildx plugin; podman), systemd booting in every node under kind's run
//! flags, containerd (Debian's 1.6 on bookworm, 2.x on trixie as kind ships
//! it) holding a stand-in image set shaped like kind's (ten images, alias
//! names, about 530 MiB), the preload storing them at build time in the node
//! image's read-only store (Docker, the default `--preload store`) or
//! recording them there and importing them with skopeo at boot (podman,
//! `--preload boot`). What is not: kubeadm, the kubelet and
//! CRI-O's binary are stand-ins (Kubernetes and CRI-O cannot be had here),
//! so every cluster fails at kind's "Starting control-plane" step, after
//! kubeadm's kubelet-start phase. Up to there, and on e2e's failure path,
//! everything is what a user's machine does.
//!
//! Each test builds, then:
//! 1. `e2e --retain` (1 control plane + 2 workers): kind provisions and
//!    configures the nodes, fails at the control plane; e2e exports logs and
//!    keeps the cluster. On every node the preload must not have held back
//!    `multi-user.target` (kind waits only 30 s for it), the kubelet must
//!    have started only after the images were in CRI-O's storage, and
//!    containers-storage, reading the node's storage configuration as CRI-O
//!    does, has every image under its name and digest (with the store, none
//!    imported at boot, and an image's layer read back from the store as it
//!    was built).
//! 2. `e2e` with the same name again: refused before anything runs, and the
//!    user's cluster is still there.
//! 3. `load-image` into the retained nodes.
//! 4. `e2e` without `--retain` on an image built (with the store, on either
//!    engine: the full-size set through each engine's builder) from a base
//!    with one preloaded image broken, which the build leaves to the boot
//!    import, which fails: the failure path reports the failed import,
//!    collects the journals and deletes the cluster, and no node container
//!    is left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use testkit::privileged::Privileged;
use testkit::standin::{self, NodeContainerd, NodeImages, NodeSpec};

/// One cluster at a time: three nodes importing 530 MiB each already fill
/// two CPUs, and the timing checks must not measure another test's load.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

const KUBERNETES: &str = "v1.34.0";
/// How many seconds after systemd started `multi-user.target` may be reached:
/// kind gives a node 30 s in all, from `docker run`.
const MULTI_USER_WITHIN_SECS: f64 = 10.0;

#[test]
fn docker_trixie_containerd2_cluster() {
    let node = NodeSpec {
        suite: standin::DEBIAN_SUITE_NEXT,
        containerd: NodeContainerd::Two,
        images: NodeImages::KindSized,
    };
    tier(
        "docker_trixie_containerd2_cluster",
        "docker",
        node,
        Preload::Store,
    );
}

#[test]
fn podman_bookworm_cluster() {
    let node = NodeSpec {
        suite: standin::DEBIAN_SUITE,
        containerd: NodeContainerd::Debian,
        images: NodeImages::KindSized,
    };
    tier("podman_bookworm_cluster", "podman", node, Preload::Boot);
}

/// `build-image --preload`: each engine's test builds one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preload {
    Store,
    Boot,
}

impl Preload {
    fn flag(self) -> &'static str {
        match self {
            Preload::Store => "store",
            Preload::Boot => "boot",
        }
    }
}

/// How the test runs an engine, kind and `cargo xtask`: the environment they
/// share.
struct Env {
    engine: &'static str,
    vars: Vec<(String, String)>,
    dir: PathBuf,
}

impl Env {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)))
            .env_remove("KIND_CRIO_CONFIG")
            .stdin(Stdio::null());
        cmd
    }

    fn engine(&self, args: &[&str]) -> Output {
        self.command(self.engine)
            .args(args)
            .output()
            .expect("run the engine")
    }

    fn engine_ok(&self, args: &[&str]) -> String {
        let out = self.engine(args);
        assert!(
            out.status.success(),
            "{} {args:?}:\n{}",
            self.engine,
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn xtask(&self, args: &[&str]) -> Output {
        let out = self
            .command(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .output()
            .expect("run xtask");
        eprintln!("--- cargo xtask {}\n{}", args.join(" "), text(&out));
        out
    }

    fn in_node(&self, node: &str, args: &[&str]) -> String {
        let mut all = vec!["exec", node];
        all.extend_from_slice(args);
        self.engine_ok(&all)
    }

    /// Every volume the engine has.
    fn volumes(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .engine_ok(&["volume", "ls", "--quiet"])
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// The cluster's node containers (all of them, whatever their role).
    fn cluster_containers(&self, name: &str) -> Vec<String> {
        let filter = format!("label=io.x-k8s.kind.cluster={name}");
        let mut names: Vec<String> = self
            .engine_ok(&["ps", "--all", "--filter", &filter, "--format", "{{.Names}}"])
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
}

fn text(o: &Output) -> String {
    format!(
        "--- status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn tier(test: &str, engine: &'static str, node: NodeSpec, preload: Preload) {
    let mut project = vec!["kind", "kubectl"];
    project.extend_from_slice(node.project_tools());
    if engine == "docker" {
        project.push("docker-buildx");
    }
    let mut system = standin::NODE_TOOLS.to_vec();
    system.extend_from_slice(&["skopeo", engine, "python3", "runc"]);
    if testkit::tools::require(test, &project).is_none() || !testkit::tools_present(test, &system) {
        return;
    }
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let _modules = testkit::privileged::HostModules::hold();
    let base = standin::node_image(node).unwrap_or_else(|e| panic!("{e}"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kind-{engine}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");

    let mut env = Env {
        engine,
        vars: vec![("BUILDAH_ISOLATION".into(), "chroot".into())],
        dir: dir.clone(),
    };
    if engine == "docker" {
        // The buildx plugin: BuildKit for a Docker engine without it.
        let config = testkit::tools::docker_config_dir();
        env.vars
            .push(("DOCKER_CONFIG".into(), config.display().to_string()));
    } else {
        let conf = podman_storage(&dir);
        env.vars
            .push(("CONTAINERS_STORAGE_CONF".into(), conf.display().to_string()));
    }
    let config = dir.join("kind-crio.toml");
    std::fs::write(&config, format!("[build]\nengine = \"{engine}\"\n")).expect("config");

    // The stand-in node image, in the engine's own store.
    let node_image = format!(
        "localhost/kind-crio-test/{}:{KUBERNETES}",
        node.repository().rsplit('/').next().unwrap_or("node")
    );
    let dest = match engine {
        "docker" => format!("docker-daemon:{node_image}"),
        _ => format!("containers-storage:{node_image}"),
    };
    let copied = env
        .command("skopeo")
        .args([
            "copy",
            "--quiet",
            &standin::containers_storage_ref(&base),
            &dest,
        ])
        .output()
        .expect("skopeo");
    assert!(copied.status.success(), "{}", text(&copied));

    let privileged = {
        let vars: Vec<(&str, PathBuf)> = env
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), PathBuf::from(v)))
            .collect();
        let borrowed: Vec<(&str, &Path)> = vars.iter().map(|(k, v)| (*k, v.as_path())).collect();
        Privileged::setup(engine, &node_image, &borrowed).unwrap_or_else(|e| panic!("{e}"))
    };
    let shim: Vec<&Path> = privileged.shim_dir().into_iter().collect();
    env.vars.push((
        "PATH".into(),
        testkit::tools::path_with(&shim)
            .to_string_lossy()
            .into_owned(),
    ));

    // kind makes a network named kind on its first cluster and keeps it:
    // removed again at the end unless it was there before.
    let network_before = env.engine(&["network", "inspect", "kind"]).status.success();
    let cluster = format!("kc-tier-{engine}");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        prove(&env, &config, &node_image, &cluster, preload);
    }));
    // Whatever happened: no cluster, no images of this test left behind.
    let _ = env
        .command("kind")
        .args(["delete", "cluster", "--name", &cluster])
        .env("KIND_EXPERIMENTAL_PROVIDER", engine)
        .output();
    for image in [
        node_image.as_str(),
        "localhost/kind-crio-test/crio-node:v1.34.0",
        "localhost/kind-crio-test/crio-node-broken:v1.34.0",
        "localhost/kind-crio-test/node-broken:v1.34.0",
        "localhost/kc-tier-app:dev",
        "kc-tier-app:dev",
    ] {
        let _ = env.engine(&["rmi", "--force", image]);
    }
    if !network_before {
        let _ = env.engine(&["network", "rm", "kind"]);
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A podman store of the tier's own (overlay: node containers start without
/// copying the image), so nothing of the machine's default store changes.
fn podman_storage(dir: &Path) -> PathBuf {
    let root = testkit::scratch_root().join("kind-tier-podman");
    std::fs::create_dir_all(&root).expect("podman root");
    let root = std::fs::canonicalize(&root).expect("canonical");
    // podman refuses a run root longer than 50 characters: a short name in
    // /run, one per store.
    let hash = &sha256(root.as_os_str().as_encoded_bytes())[..8];
    let conf = dir.join("storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"/run/kind-crio-tier-{hash}\"\n",
            root.display()
        ),
    )
    .expect("storage.conf");
    conf
}

fn prove(env: &Env, config: &Path, node_image: &str, cluster: &str, preload: Preload) {
    let config = config.to_str().expect("utf-8");
    let bundle = standin::crio_bundle(&env.dir, "amd64", KUBERNETES);
    let build = |node_image: &str, image: &str, preload: Preload| {
        let built = env.xtask(&[
            "--config",
            config,
            "build-image",
            "--kubernetes",
            KUBERNETES,
            "--node-image",
            node_image,
            "--crio-source",
            "bundle",
            "--crio-bundle",
            bundle.to_str().expect("utf-8"),
            "--preload",
            preload.flag(),
            "--image",
            image,
        ]);
        assert!(built.status.success(), "build-image:\n{}", text(&built));
        format!("{image}:{KUBERNETES}")
    };
    let image = build(node_image, "localhost/kind-crio-test/crio-node", preload);

    // 1. A 1+2 cluster, kept.
    let e2e = |image: &str, retain: bool| {
        let mut args = vec![
            "-v",
            "--config",
            config,
            "e2e",
            "--image",
            image,
            "--name",
            cluster,
            "--workers",
            "2",
            "--wait",
            "180s",
            "--ignore-doctor",
        ];
        if retain {
            args.push("--retain");
        }
        env.xtask(&args)
    };
    let started = Instant::now();
    let first = e2e(&image, true);
    let out = text(&first);
    assert!(
        !first.status.success(),
        "the control plane cannot start here:\n{out}"
    );
    // kind's export ends in an error about `crictl images` (the stand-in
    // CRI-O does not serve), after writing every log it collects: e2e goes on.
    for line in [
        "✓ Preparing nodes",
        "✓ Writing configuration",
        "✗ Starting control-plane",
        "Exporting kind's logs",
        "✓ Collecting CRI-O and preload journals",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    let nodes = env.cluster_containers(cluster);
    assert_eq!(
        nodes,
        [
            format!("{cluster}-control-plane"),
            format!("{cluster}-worker"),
            format!("{cluster}-worker2")
        ],
        "--retain keeps every node"
    );
    eprintln!(
        "cluster up to the control-plane step in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for node in &nodes {
        check_boot(env, node, node.ends_with("control-plane"), preload);
    }
    let logs = project_root()
        .join("target/kind-crio/e2e")
        .join(cluster)
        .join("logs");
    check_logs(&logs, &nodes);

    // 2. The same name again: refused before anything runs.
    let again = e2e(&image, false);
    let again_text = text(&again);
    assert!(!again.status.success(), "{again_text}");
    assert!(again_text.contains("already exists"), "{again_text}");
    for step in ["Creating cluster", "Deleting cluster", "Checking kind"] {
        for mark in ["•", "✓", "✗"] {
            let line = format!("{mark} {step}");
            assert!(!again_text.contains(&line), "{line:?} ran:\n{again_text}");
        }
    }
    assert_eq!(
        env.cluster_containers(cluster).len(),
        3,
        "the existing cluster is untouched"
    );

    // 3. load-image into the retained nodes.
    load_image(env, config, cluster, &nodes);
    let deleted = env
        .command("kind")
        .args(["delete", "cluster", "--name", cluster])
        .env("KIND_EXPERIMENTAL_PROVIDER", env.engine)
        .output()
        .expect("kind delete");
    assert!(deleted.status.success(), "{}", text(&deleted));

    // 4. One preloaded image broken: reported; the cluster goes, logs stay.
    // Broken in the base and built with the store (on either engine): the
    // build leaves it to the boot import, which fails.
    let base = break_one_image(
        env,
        node_image,
        "localhost/kind-crio-test/node-broken:v1.34.0",
    );
    let broken = build(
        &base,
        "localhost/kind-crio-test/crio-node-broken",
        Preload::Store,
    );
    let _ = std::fs::remove_dir_all(&logs);
    let volumes_before = env.volumes();
    let last = e2e(&broken, false);
    let last_text = text(&last);
    assert!(!last.status.success(), "{last_text}");
    for node in &nodes {
        let report = last_text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{node}: ")))
            .unwrap_or_else(|| panic!("no preload report for {node}:\n{last_text}"));
        assert!(
            report.contains(" failed: ")
                && report.contains("registry.k8s.io/kube-apiserver:v1.34.0"),
            "{node}'s report names the image that failed: {report}"
        );
    }
    assert!(last_text.contains("✓ Deleting cluster"), "{last_text}");
    assert!(
        env.cluster_containers(cluster).is_empty(),
        "no node container is left"
    );
    assert_eq!(env.volumes(), volumes_before, "no node volume is left");
    check_logs(&logs, &nodes);
}

/// `systemctl show -p P1 -p P2 ... UNIT` in the node, as numbers.
fn monotonic<const N: usize>(
    env: &Env,
    node: &str,
    unit: Option<&str>,
    props: [&str; N],
) -> [f64; N] {
    let mut args = vec!["systemctl", "show"];
    for p in props {
        args.push("-p");
        args.push(p);
    }
    if let Some(u) = unit {
        args.push(u);
    }
    let out = env.in_node(node, &args);
    props.map(|p| {
        let value = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{p}=")))
            .unwrap_or_else(|| panic!("{node}: no {p} in {out}"));
        value
            .trim()
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{node}: {p}={value}: {e}"))
            / 1e6
    })
}

/// The preload finished; `multi-user.target` did not wait for it; the kubelet
/// (control plane only: kind stops before the workers join) waited.
fn check_boot(env: &Env, node: &str, control_plane: bool, preload: Preload) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let state = env.in_node(
            node,
            &[
                "systemctl",
                "show",
                "-p",
                "ActiveState",
                "--value",
                "kind-crio-preload.service",
            ],
        );
        if state.trim() == "active" {
            break;
        }
        assert!(state.trim() != "failed", "{node}: the preload unit failed");
        assert!(
            Instant::now() < deadline,
            "{node}: the preload is still {state} after 300 s"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let after = env.in_node(
        node,
        &[
            "systemctl",
            "list-dependencies",
            "--after",
            "--all",
            "--plain",
            "multi-user.target",
        ],
    );
    assert!(
        !after.contains("kind-crio-preload"),
        "{node}: multi-user.target is ordered after the preload:\n{after}"
    );
    let [systemd] = monotonic(env, node, None, ["UserspaceTimestampMonotonic"]);
    let [multi_user] = monotonic(
        env,
        node,
        Some("multi-user.target"),
        ["ActiveEnterTimestampMonotonic"],
    );
    let [preload_start, preload_end] = monotonic(
        env,
        node,
        Some("kind-crio-preload.service"),
        [
            "InactiveExitTimestampMonotonic",
            "ActiveEnterTimestampMonotonic",
        ],
    );
    eprintln!(
        "{node}: multi-user.target {:.1}s after systemd started; the preload ran from {:.1}s to {:.1}s",
        multi_user - systemd,
        preload_start - systemd,
        preload_end - systemd
    );
    // When kubeadm asks for the kubelet while the boot still runs (on a
    // cgroup v1 host kind's gate passes on the entrypoint's line, so kind may
    // run kubeadm within a second), multi-user.target, which systemd orders
    // after the kubelet, waits for the kubelet's start and so for the import:
    // as it should, and harmless, since kind's gate has passed by then. The
    // boot alone is what kind's gate sees on cgroup v2 hosts, where kind runs
    // kubeadm only after the target: it is timed where kubeadm came later,
    // and always on the workers (kind stops before they join).
    let [kubelet_asked, kubelet_started] = monotonic(
        env,
        node,
        Some("kubelet.service"),
        [
            "InactiveExitTimestampMonotonic",
            "ExecMainStartTimestampMonotonic",
        ],
    );
    let kubeadm_during_boot = kubelet_asked > 0.0 && kubelet_asked < multi_user;
    assert!(
        control_plane || !kubeadm_during_boot,
        "{node}: a worker's kubelet was started while kind stops before workers join"
    );
    if kubeadm_during_boot {
        eprintln!(
            "{node}: kubeadm asked for the kubelet {:.1}s after systemd started, before multi-user.target: \
             the target then waits for the kubelet, and the boot is timed on the workers",
            kubelet_asked - systemd
        );
    } else {
        assert!(
            multi_user - systemd < MULTI_USER_WITHIN_SECS,
            "{node}: multi-user.target was reached {:.1}s after systemd started",
            multi_user - systemd
        );
        if preload == Preload::Boot {
            assert!(
                multi_user < preload_end,
                "{node}: the import ended before multi-user.target: too short to tell whether it held the target back"
            );
        }
    }
    // CRI-O is up before the import starts: they never compete for the store
    // while CRI-O starts.
    let [crio] = monotonic(
        env,
        node,
        Some("crio.service"),
        ["ActiveEnterTimestampMonotonic"],
    );
    assert!(
        crio > 0.0,
        "{node}: the (stand-in) CRI-O never became ready"
    );
    assert!(
        crio <= preload_start,
        "{node}: the preload started {:.1}s before CRI-O was ready",
        crio - preload_start
    );
    if control_plane {
        // kubeadm's kubelet-start phase asked for the kubelet while the
        // import ran; its main process started only once the import was over.
        assert!(
            kubelet_started > 0.0,
            "{node}: kubeadm's kubelet-start phase started no kubelet"
        );
        eprintln!(
            "{node}: kubeadm started the kubelet {:.1}s after systemd; its main process ran from {:.1}s",
            kubelet_asked - systemd,
            kubelet_started - systemd
        );
        if kubelet_asked >= preload_end {
            // A machine that imports faster than kind reaches kubeadm: the
            // order below then holds whether or not the kubelet waits. The
            // booted-node test (crates/node-image/tests/preload.rs) slows the
            // import to show the wait on every machine.
            eprintln!(
                "NOTE {node}: kubeadm asked for the kubelet after the import had ended: \
                 this run cannot tell whether the kubelet waits"
            );
        }
        assert!(
            kubelet_started >= preload_end,
            "{node}: the kubelet started {:.1}s before the preload finished",
            preload_end - kubelet_started
        );
    }
    let status = env.in_node(node, &["cat", "/run/kind-crio/preload.status"]);
    let recorded = env.in_node(node, &["cat", "/opt/kind-crio/preload/images.txt"]);
    // With the store, nothing is imported at boot: the set has no whiteout.
    let wanted: &[&str] = match preload {
        Preload::Store => &["stored"],
        Preload::Boot => &["imported", "present"],
    };
    let mut done = 0;
    for line in status.lines().filter(|l| !l.trim().is_empty()) {
        let outcome = line.split_whitespace().next().unwrap_or_default();
        assert!(wanted.contains(&outcome), "{node}: {line}");
        done += 1;
    }
    assert_eq!(
        done,
        recorded.lines().count(),
        "{node}: status:\n{status}\nrecorded:\n{recorded}"
    );
    for line in recorded.lines() {
        let mut words = line.split_whitespace();
        let (Some(reference), Some(digest)) = (words.next(), words.next()) else {
            panic!("{node}: images.txt line {line:?}")
        };
        // Through the node's storage configuration, as CRI-O reads it.
        let stored = format!("containers-storage:{reference}");
        let raw = env.in_node(node, &["skopeo", "inspect", "--raw", &stored]);
        let actual = format!("sha256:{}", sha256(raw.as_bytes()));
        assert_eq!(actual, digest, "{node}: {reference} in CRI-O's storage");
    }
    // An image's layers, read back through containers-storage (from the
    // read-only store, with the store), are the ones built: each equals its
    // diff ID.
    let read_back = env.in_node(node, &["bash", "-c", READ_BACK]);
    assert!(
        read_back.trim_end().ends_with("layers as built"),
        "{node}: {read_back}"
    );
}

/// Copies kind's pause image out of containers-storage, uncompressed, and
/// compares each layer's digest with the config's diff IDs.
const READ_BACK: &str = r#"set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "${out}"' EXIT
skopeo --insecure-policy copy --quiet containers-storage:registry.k8s.io/pause:3.10 "dir:${out}"
config=$(jq -r '.config.digest' "${out}/manifest.json")
layers=$(jq -r '[.layers[].digest] | join(" ")' "${out}/manifest.json")
diff_ids=$(jq -r '.rootfs.diff_ids | join(" ")' "${out}/${config#sha256:}")
if [[ "${layers}" != "${diff_ids}" ]]; then
    echo "layers ${layers}, diff IDs ${diff_ids}"
    exit 1
fi
echo "$(jq '.layers | length' "${out}/manifest.json") layers as built"
"#;

fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// kind's export, plus the CRI-O and preload journals of every node.
fn check_logs(logs: &Path, nodes: &[String]) {
    assert!(
        logs.join("kind-version.txt").is_file(),
        "kind export logs wrote {}",
        logs.display()
    );
    for node in nodes {
        assert!(
            logs.join(node).join("journal.log").is_file(),
            "{node}'s journal in {}",
            logs.display()
        );
        for unit in ["crio", "kind-crio-preload"] {
            let file = logs.join(format!("{node}-{unit}.log"));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(!text.trim().is_empty(), "{} is empty", file.display());
        }
    }
}

/// A one-file image in the engine, loaded into every node's CRI-O storage.
fn load_image(env: &Env, config: &str, cluster: &str, nodes: &[String]) {
    let tarball = env.dir.join("app.tar");
    let root = env.dir.join("app");
    std::fs::create_dir_all(&root).expect("app root");
    std::fs::write(root.join("hello"), "hello\n").expect("app file");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg("hello")
        .status()
        .expect("tar");
    assert!(tar.success());
    env.engine_ok(&[
        "import",
        tarball.to_str().expect("utf-8"),
        "kc-tier-app:dev",
    ]);
    let loaded = env.xtask(&[
        "--config",
        config,
        "load-image",
        "kc-tier-app:dev",
        "--name",
        cluster,
    ]);
    assert!(loaded.status.success(), "load-image:\n{}", text(&loaded));
    // The engine's name, and Docker Hub's, which a pod's `kc-tier-app:dev`
    // resolves to.
    let names: &[&str] = match env.engine {
        "docker" => &["docker.io/library/kc-tier-app:dev"],
        _ => &[
            "localhost/kc-tier-app:dev",
            "docker.io/library/kc-tier-app:dev",
        ],
    };
    for node in nodes {
        for name in names {
            let stored = format!("containers-storage:{name}");
            let out = env.in_node(node, &["skopeo", "inspect", "--config", &stored]);
            assert!(out.contains("\"rootfs\""), "{node}: {name}:\n{out}");
        }
    }
}

/// `image` (a kind node image) as `broken`, with its largest preloaded blob
/// (a layer of kube-apiserver) overwritten in the middle: same size, wrong
/// digest.
fn break_one_image(env: &Env, image: &str, broken: &str) -> String {
    let context = env.dir.join("broken");
    std::fs::create_dir_all(&context).expect("context");
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {image}\n\
             RUN blob=$(ls -S /var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/* | head -n 1) \\\n \
             && printf broken | dd of=\"$blob\" bs=1 seek=4096 conv=notrunc\n"
        ),
    )
    .expect("Dockerfile");
    env.engine_ok(&["build", "-t", broken, context.to_str().expect("utf-8")]);
    broken.to_owned()
}
