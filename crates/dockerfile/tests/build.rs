//! Real builds of rendered contexts with a real builder (buildah, no daemon),
//! on the stand-in kind node image (Debian with kind's files laid out as in
//! kind's base image), then the built image is inspected: CRI-O installed and
//! enabled, containerd disabled, crictl and the kubelet pointed at CRI-O, the
//! drop-in filled with the pause image kind preloaded, no competing CNI
//! config, no build files left behind, and the labels present.
//!
//! Two CRI-O sources are built for real: a stand-in static bundle with
//! upstream's layout (copied into the context), and a signed flat apt
//! repository served on loopback (`--crio-repo`), so the key handling and the
//! repository line are exercised, not only rendered.
//!
//! Each default sysctl of CRI-O's drop-in is one a pod's network namespace
//! accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

use dockerfile::{Arch, CrioSource, CrioStream, Inputs, Mirror, RepoUrl};
use registry::{ImageRef, KubernetesVersion};
use testkit::standin::{self, CrioAptRepo};

const PAUSE: &str = "registry.k8s.io/pause:3.10";

fn tools(test: &str, extra: &[&str]) -> bool {
    let mut all = standin::NODE_TOOLS.to_vec();
    all.extend_from_slice(extra);
    testkit::tools_present(test, &all)
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dockerfile-build-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

fn inputs(base: &str, kubernetes: &str, source: CrioSource, mirrors: &[&str]) -> Inputs {
    let kubernetes = KubernetesVersion::parse(kubernetes).expect("a version");
    Inputs {
        stream: CrioStream::for_kubernetes(&kubernetes),
        kubernetes,
        source,
        base_image: ImageRef::parse(base).expect("the stand-in reference"),
        arch: Arch::Amd64,
        mirrors: mirrors
            .iter()
            .map(|m| Mirror::parse(m).expect("a mirror"))
            .collect(),
    }
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{path} in the built image: {e}"))
}

fn exists(root: &Path, path: &str) -> bool {
    root.join(path.trim_start_matches('/'))
        .symlink_metadata()
        .is_ok()
}

fn labels(reference: &str) -> serde_json::Value {
    let out = standin::podman()
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .Labels}}",
            reference,
        ])
        .output()
        .expect("podman image inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("labels as JSON")
}

/// What every CRI-O node image must look like, whatever the source.
fn assert_crio_node(root: &Path, ctx: &dockerfile::Context, reference: &str, cgroup_manager: &str) {
    // systemd: crio enabled, containerd not.
    assert!(exists(
        root,
        "/etc/systemd/system/multi-user.target.wants/crio.service"
    ));
    assert!(!exists(
        root,
        "/etc/systemd/system/multi-user.target.wants/containerd.service"
    ));
    // crictl and the kubelet on CRI-O.
    assert_eq!(
        read(root, "/etc/crictl.yaml"),
        "runtime-endpoint: unix:///var/run/crio/crio.sock\nimage-endpoint: unix:///var/run/crio/crio.sock\n"
    );
    assert_eq!(
        read(root, "/etc/default/kubelet"),
        "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/crio.service\n"
    );
    assert!(
        read(
            root,
            "/etc/systemd/system/kubelet.service.d/20-kind-crio.conf"
        )
        .contains("After=crio.service")
    );
    // The drop-in, with the pause image the base's containerd config names.
    let dropin = read(root, "/etc/crio/crio.conf.d/99-kind-crio.conf");
    assert!(
        dropin.contains(&format!("cgroup_manager = \"{cgroup_manager}\"")),
        "{dropin}"
    );
    assert!(
        dropin.contains(&format!("pause_image = \"{PAUSE}\"")),
        "{dropin}"
    );
    // The pause image first; the images kind preloaded follow (tests/preload.rs).
    assert!(
        dropin.contains(&format!("pinned_images = [\n  \"{PAUSE}\",\n")),
        "{dropin}"
    );
    assert!(!dropin.contains("@PAUSE_IMAGE@"), "{dropin}");
    // Pods get the sysctls kind's containerd 2.x gives them.
    assert!(
        dropin.contains(
            "default_sysctls = [\n  \"net.ipv4.ip_unprivileged_port_start=0\",\n  \
             \"net.ipv4.ping_group_range=0 2147483647\",\n]\n"
        ),
        "{dropin}"
    );
    // No CNI config that competes with kindnet.
    let cni: Vec<String> = std::fs::read_dir(root.join("etc/cni/net.d"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        cni.iter()
            .all(|f| !f.contains("bridge") && !f.contains("crio")),
        "{cni:?}"
    );
    // The context was mounted, not copied.
    assert!(!exists(root, "/kind-crio"));
    // Labels, including the inputs digest of exactly this context.
    let l = labels(reference);
    assert_eq!(
        l["io.kind-crio.inputs.digest"],
        ctx.inputs_digest().expect("a digest")
    );
    assert_eq!(l["io.kind-crio.kubernetes.version"], "v1.34.0");
    assert_eq!(l["io.kind-crio.arch"], "amd64");
    assert_eq!(
        l["org.opencontainers.image.source"],
        "https://github.com/kind-crio/kind-crio"
    );
}

#[test]
fn bundle_context_builds_into_a_crio_node() {
    let test = "bundle_context_builds_into_a_crio_node";
    if !tools(test, &[standin::BUNDLE_TOOLS, &["unshare", "sh"]].concat()) {
        return;
    }
    let base = standin::node_base_image().expect("the stand-in node image");
    let dir = scratch("bundle");
    let tarball = standin::crio_bundle(&dir, "amd64", "v1.34.0");
    let name = tarball
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let source = CrioSource::bundle_file(&name, std::fs::read(&tarball).expect("read the bundle"))
        .expect("a valid bundle name");
    let inputs = inputs(
        &base,
        "v1.34.0",
        source,
        &["registry.k8s.io=127.0.0.1:5000/k8s"],
    );
    let ctx = dockerfile::render(&inputs);
    let context = dir.join("context");
    dockerfile::write_context(&ctx, &context).expect("write the context");

    let image = standin::bud(&context, "kind-crio-test/bundle:v1.34.0", &[]).expect("the build");
    let root = image.mount().expect("mount the built image");
    assert_crio_node(root.path(), &ctx, image.reference(), "systemd");
    assert_eq!(
        labels(image.reference())["io.kind-crio.crio.source"],
        "bundle"
    );
    // Installed by the bundle's own install script.
    assert!(exists(root.path(), "/usr/local/bin/crio"));
    assert!(exists(
        root.path(),
        "/usr/local/lib/systemd/system/crio.service"
    ));
    // The tarball itself did not end up in the image.
    assert!(!exists(root.path(), &format!("/kind-crio/{name}")));
    let mirrors = read(
        root.path(),
        "/etc/containers/registries.conf.d/99-kind-crio-mirrors.conf",
    );
    assert!(
        mirrors.contains("prefix = \"registry.k8s.io\"")
            && mirrors.contains("location = \"127.0.0.1:5000/k8s\"")
    );
    assert_sysctls_apply(root.path());
}

#[test]
fn tampered_bundle_fails_the_build() {
    let test = "tampered_bundle_fails_the_build";
    if !tools(test, standin::BUNDLE_TOOLS) {
        return;
    }
    let base = standin::node_base_image().expect("the stand-in node image");
    let dir = scratch("tampered");
    let tarball = standin::crio_bundle(&dir, "amd64", "v1.34.0");
    let source = CrioSource::bundle_file(
        "cri-o.amd64.v1.34.0.tar.gz",
        std::fs::read(&tarball).expect("read"),
    )
    .expect("a valid name");
    let ctx = dockerfile::render(&inputs(&base, "v1.34.0", source, &[]));
    let context = dir.join("context");
    dockerfile::write_context(&ctx, &context).expect("write the context");
    // Swap the tarball after rendering: the recorded sha256 no longer matches.
    std::fs::write(
        context.join("kind-crio/cri-o.amd64.v1.34.0.tar.gz"),
        b"tampered",
    )
    .expect("tamper");
    let err =
        standin::bud(&context, "kind-crio-test/tampered:v1", &[]).expect_err("must not build");
    assert!(
        err.contains("FAILED") || err.contains("did NOT match"),
        "{err}"
    );
}

#[test]
fn apt_context_builds_against_a_signed_repository() {
    let test = "apt_context_builds_against_a_signed_repository";
    if !tools(test, standin::APT_REPO_TOOLS) {
        return;
    }
    let base = standin::node_base_image().expect("the stand-in node image");
    let repo = CrioAptRepo::start(test, "1.34.0");
    let repository = RepoUrl::parse_repository(&repo.url())
        .expect("the stand-in repository URL passes the grammar");
    let inputs = inputs(&base, "v1.34.0", CrioSource::Apt { repository }, &[]);
    let ctx = dockerfile::render(&inputs);
    let dir = scratch("apt");
    dockerfile::write_context(&ctx, &dir).expect("write the context");

    let image = standin::bud(&dir, "kind-crio-test/apt:v1.34.0", &[]).expect("the build");
    let root = image.mount().expect("mount the built image");
    assert_crio_node(root.path(), &ctx, image.reference(), "systemd");
    assert_eq!(labels(image.reference())["io.kind-crio.crio.source"], "apt");
    // The package's files, the key kept armoured, and the repository line.
    assert!(exists(root.path(), "/usr/bin/crio"));
    assert!(
        read(root.path(), "/etc/apt/keyrings/cri-o-apt-keyring.asc")
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    assert_eq!(
        read(root.path(), "/etc/apt/sources.list.d/cri-o.list"),
        format!(
            "deb [signed-by=/etc/apt/keyrings/cri-o-apt-keyring.asc] {} /\n",
            repo.url()
        )
    );
    // apt really went to the repository: the key, the signed index, the package.
    assert!(repo.requests("Release.key") >= 1, "{:?}", repo.log());
    assert!(repo.requests("InRelease") >= 1, "{:?}", repo.log());
    assert_eq!(repo.requests(repo.deb_path()), 1, "{:?}", repo.log());
}

#[test]
fn cgroupfs_for_old_kubernetes_reaches_the_image() {
    let test = "cgroupfs_for_old_kubernetes_reaches_the_image";
    if !tools(test, standin::BUNDLE_TOOLS) {
        return;
    }
    let base = standin::node_base_image().expect("the stand-in node image");
    let dir = scratch("cgroupfs");
    let tarball = standin::crio_bundle(&dir, "amd64", "v1.23.5");
    let name = tarball
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let source =
        CrioSource::bundle_file(&name, std::fs::read(&tarball).expect("read")).expect("a name");
    let ctx = dockerfile::render(&inputs(&base, "v1.23.17", source, &[]));
    let context = dir.join("context");
    dockerfile::write_context(&ctx, &context).expect("write the context");
    let image = standin::bud(&context, "kind-crio-test/cgroupfs:v1.23.17", &[]).expect("the build");
    let root = image.mount().expect("mount");
    let dropin = read(root.path(), "/etc/crio/crio.conf.d/99-kind-crio.conf");
    assert!(
        dropin.contains("cgroup_manager = \"cgroupfs\"")
            && dropin.contains("conmon_cgroup = \"pod\""),
        "{dropin}"
    );
}

/// Each default sysctl of the built drop-in is accepted in a fresh network
/// namespace, as CRI-O's pinns writes it into a pod's.
fn assert_sysctls_apply(root: &Path) {
    let dropin = read(root, "/etc/crio/crio.conf.d/99-kind-crio.conf");
    let list = dropin
        .split("default_sysctls = [\n")
        .nth(1)
        .and_then(|rest| rest.split("\n]").next())
        .expect("a default_sysctls list");
    let sysctls: Vec<(&str, &str)> = list
        .lines()
        .map(|l| l.trim().trim_end_matches(',').trim_matches('"'))
        .map(|s| s.split_once('=').expect("KEY=VALUE"))
        .collect();
    assert_eq!(sysctls.len(), 2, "{dropin}");
    for (key, value) in sysctls {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let out = Command::new("unshare")
            .args([
                "--net",
                "sh",
                "-c",
                "printf '%s\\n' \"$1\" > \"$2\" && cat \"$2\"",
                "sh",
                value,
                &path,
            ])
            .output()
            .expect("run unshare");
        assert!(
            out.status.success(),
            "{key}={value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read_back = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            read_back.split_whitespace().collect::<Vec<_>>(),
            value.split_whitespace().collect::<Vec<_>>(),
            "{key}"
        );
    }
}
