//! The stand-ins are real and laid out like what they stand for:
//!
//! - the node base image is a real Debian root (debootstrap) in
//!   containers-storage with kind's files, image config and enabled units;
//!   `buildah bud` builds on it without a daemon, and the manual recipe's
//!   steps (`sed` on `/etc/crictl.yaml`, `systemctl disable containerd`) work
//!   in it; it is built once and found again, also by racing callers;
//! - the CRI-O bundle has upstream's file list, a matching `.sha256sum`, and
//!   an `install` that puts upstream's 74 paths where upstream does, needs
//!   bash as upstream's does, and installs in the node image;
//! - the apt repository is a signed flat repository a real `apt-get` inside a
//!   build on the node image accepts (key as ASCII-armored `.asc`, no gpg in
//!   the image) and installs `cri-o` from; signed by another key, apt refuses
//!   it; and a plain `apt-get install -y cri-o` on a kind image stops at dpkg's
//!   conffile question about kind's `/etc/crictl.yaml`.

use std::process::Command;
use std::time::Instant;

use testkit::standin::{
    self, APT_REPO_TOOLS, BUNDLE_TOOLS, CNI_PLUGINS, CrioAptRepo, CrioBundle, KIND_NODE_VERSION,
    NODE_IMAGE_REPOSITORY, NODE_TOOLS, Signing,
};
use testkit::{TempDir, http, tools_present};

const CRIO_VERSION: &str = "v1.34.0";

/// The node image, or None when the test is skipped (tools missing, not CI).
fn node_image(test: &str, more_tools: &[&str]) -> Option<String> {
    let tools: Vec<&str> = NODE_TOOLS.iter().chain(more_tools).copied().collect();
    if !tools_present(test, &tools) {
        return None;
    }
    let started = Instant::now();
    let image = standin::node_base_image().unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{test}: node_base_image() took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    Some(image)
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a symbolic link is there (without following it: links in an
/// image point to absolute paths inside the image, not on this machine).
fn is_link(path: &std::path::Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

fn write_context(dir: &std::path::Path, dockerfile: &str) {
    std::fs::create_dir_all(dir).expect("create the build context");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write the Dockerfile");
}

// ---------------------------------------------------------------------------
// Node base image

#[test]
fn node_image_has_kinds_files_config_and_units() {
    let test = "node_image_has_kinds_files_config_and_units";
    let Some(image) = node_image(test, &["systemctl", "skopeo"]) else {
        return;
    };
    assert!(image.starts_with(&format!("{NODE_IMAGE_REPOSITORY}:{KIND_NODE_VERSION}-")));

    // skopeo reads the same store through the transport reference given out.
    let inspected = sh(testkit::skopeo_command()
        .arg("inspect")
        .arg(standin::containers_storage_ref(&image)));
    let inspected: serde_json::Value = serde_json::from_str(&inspected).expect("JSON");
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(1));

    let inspect = sh(standin::podman().args(["image", "inspect", &image]));
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("podman inspect prints JSON");
    let config = &v[0]["Config"];
    let env: Vec<&str> = config["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(env.contains(&"container=docker"), "{env:?}");
    assert!(env.contains(&"HTTP_PROXY="), "{env:?}");
    assert_eq!(config["StopSignal"], "37", "SIGRTMIN+3 on Linux");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/entrypoint", "/sbin/init"])
    );

    let root = standin::mount_image(&image).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        read(&root.join("/etc/crictl.yaml")),
        "runtime-endpoint: unix:///run/containerd/containerd.sock"
    );
    assert_eq!(
        read(&root.join("/etc/default/kubelet")),
        "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service"
    );
    let containerd: toml::Table = read(&root.join("/etc/containerd/config.toml"))
        .parse()
        .expect("containerd's config is TOML");
    let cri = &containerd["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(
        cri["sandbox_image"].as_str(),
        Some("registry.k8s.io/pause:3.10")
    );
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(true)
    );
    assert_eq!(read(&root.join("/kind/version")), KIND_NODE_VERSION);
    for manifest in ["default-cni.yaml", "default-storage.yaml"] {
        assert!(root.join(&format!("/kind/manifests/{manifest}")).is_file());
    }
    for program in [
        "/usr/local/bin/entrypoint",
        "/usr/local/bin/containerd",
        "/usr/local/bin/ctr",
        "/usr/local/bin/crictl",
        "/usr/local/sbin/runc",
        "/usr/bin/kubelet",
        "/usr/bin/kubeadm",
        "/usr/bin/kubectl",
        "/opt/cni/bin/host-local",
        "/opt/cni/bin/loopback",
        "/opt/cni/bin/ptp",
        "/opt/cni/bin/portmap",
        "/usr/lib/systemd/systemd",
        "/usr/bin/curl",
        "/usr/bin/jq",
        "/usr/sbin/iptables",
        "/usr/bin/apt-get",
    ] {
        assert!(is_executable(&root.join(program)), "{program} missing");
    }
    assert!(
        !root.join("/usr/bin/gpg").exists(),
        "kind's base has no gpg"
    );
    assert_eq!(
        std::fs::read_link(root.join("/sbin/init"))
            .expect("/sbin/init is a link")
            .to_string_lossy(),
        "/usr/lib/systemd/systemd"
    );
    assert!(
        read(&root.join("/etc/systemd/system/containerd.service"))
            .contains("ExecStart=/usr/local/bin/containerd")
    );
    assert!(
        read(&root.join("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"))
            .contains("EnvironmentFile=-/etc/default/kubelet")
    );
    // Nothing from this machine leaks into the image.
    assert_eq!(read(&root.join("/etc/resolv.conf")), "");
    assert_eq!(read(&root.join("/etc/hostname")), "");
    let lists = std::fs::read_dir(root.join("/var/lib/apt/lists"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(
        lists, 0,
        "apt lists are emptied as kind's clean-install does"
    );

    let is_enabled = |unit: &str| {
        let out = Command::new("systemctl")
            .arg(format!("--root={}", root.path().display()))
            .args(["is-enabled", unit])
            .output()
            .expect("run systemctl --root");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(is_enabled("containerd.service"), "enabled");
    assert_eq!(is_enabled("kubelet.service"), "enabled");
    assert_eq!(is_enabled("systemd-binfmt.service"), "masked");
}

#[test]
fn node_image_kubeadm_lists_images_like_kubeadm() {
    let test = "node_image_kubeadm_lists_images_like_kubeadm";
    let Some(image) = node_image(test, &[]) else {
        return;
    };
    let root = standin::mount_image(&image).unwrap_or_else(|e| panic!("{e}"));
    let kubeadm = root.join("/usr/bin/kubeadm");
    let list = |args: &[&str]| {
        sh(Command::new("sh")
            .arg(&kubeadm)
            .args(["config", "images", "list"])
            .args(args))
    };
    assert_eq!(
        list(&["--kubernetes-version", "v1.34.0"]),
        "registry.k8s.io/kube-apiserver:v1.34.0\n\
         registry.k8s.io/kube-controller-manager:v1.34.0\n\
         registry.k8s.io/kube-scheduler:v1.34.0\n\
         registry.k8s.io/kube-proxy:v1.34.0\n\
         registry.k8s.io/coredns/coredns:v1.12.1\n\
         registry.k8s.io/pause:3.10.1\n\
         registry.k8s.io/etcd:3.6.4-0\n"
    );
    assert_eq!(
        list(&[]),
        list(&["--kubernetes-version", KIND_NODE_VERSION])
    );
    assert!(list(&["--kubernetes-version=v1.30.4"]).contains("registry.k8s.io/pause:3.9\n"));
    assert!(list(&["--kubernetes-version", "v1.32.1"]).contains("registry.k8s.io/pause:3.10\n"));
    assert!(list(&["--kubernetes-version", "v1.36.0"]).contains("registry.k8s.io/pause:3.10.2\n"));
    let bad = Command::new("sh")
        .arg(&kubeadm)
        .args(["config", "images", "list", "--kubernetes-version", "latest"])
        .output()
        .expect("run kubeadm");
    assert!(!bad.status.success());
    assert_eq!(
        sh(Command::new("sh")
            .arg(&kubeadm)
            .args(["version", "-o", "short"])),
        format!("{KIND_NODE_VERSION}\n")
    );
    let refused = Command::new("sh")
        .arg(&kubeadm)
        .arg("init")
        .output()
        .expect("run kubeadm");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stand-in"));
}

#[test]
fn node_image_takes_the_manual_recipe_in_a_daemonless_build() {
    let test = "node_image_takes_the_manual_recipe_in_a_daemonless_build";
    let Some(image) = node_image(test, &[]) else {
        return;
    };
    let dir = TempDir::new(test);
    write_context(
        dir.path(),
        &format!(
            "FROM {image}\n\
             SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n\
             RUN echo \"$BASH_VERSION\" > /shell\n\
             RUN sed -i 's/containerd/crio/g' /etc/crictl.yaml \
                 && systemctl disable containerd \
                 && kubeadm config images list --kubernetes-version $(cat /kind/version) > /kubeadm-images \
                 && echo \"container=$container\" > /env\n"
        ),
    );
    let started = Instant::now();
    let built = standin::bud(dir.path(), &format!("{test}:{}", std::process::id()), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{test}: bud took {:.2}s", started.elapsed().as_secs_f64());
    let root = built.mount().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        read(&root.join("/etc/crictl.yaml")),
        "runtime-endpoint: unix:///run/crio/crio.sock"
    );
    assert!(!is_link(&root.join(
        "/etc/systemd/system/multi-user.target.wants/containerd.service"
    )));
    assert!(is_link(&root.join(
        "/etc/systemd/system/multi-user.target.wants/kubelet.service"
    )));
    assert_eq!(read(&root.join("/kubeadm-images")).lines().count(), 7);
    assert_eq!(read(&root.join("/env")), "container=docker\n");
    assert!(
        read(&root.join("/shell")).starts_with('5'),
        "SHELL is honoured"
    );
}

#[test]
fn node_image_is_built_once_and_found_by_racing_callers() {
    let test = "node_image_is_built_once_and_found_by_racing_callers";
    let Some(first) = node_image(test, &[]) else {
        return;
    };
    let started = Instant::now();
    let refs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(standin::node_base_image)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("no panic")
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    });
    let cached = started.elapsed();
    eprintln!(
        "{test}: three cached calls took {:.2}s",
        cached.as_secs_f64()
    );
    assert!(refs.iter().all(|r| *r == first), "{refs:?} vs {first}");
    assert!(cached.as_secs() < 20, "a cached image is found quickly");
    let listed = sh(standin::podman().args([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        NODE_IMAGE_REPOSITORY,
    ]));
    assert_eq!(listed.trim(), first, "exactly one stand-in node image");
}

// ---------------------------------------------------------------------------
// CRI-O bundle

fn expected_bundle_files() -> Vec<String> {
    let mut files: Vec<String> = [
        "bin/crio",
        "bin/pinns",
        "bin/conmon",
        "bin/conmonrs",
        "bin/crun",
        "bin/runc",
        "bin/crictl",
        "bin/crio-credential-provider",
        "completions/bash/crio",
        "completions/fish/crio.fish",
        "completions/zsh/_crio",
        "contrib/10-crio-bridge.conflist.disabled",
        "contrib/crio.service",
        "contrib/policy.json",
        "contrib/registries.conf",
        "etc/10-crio.conf",
        "etc/crictl.yaml",
        "etc/crio-umount.conf",
        "etc/crio",
        "man/crio.8",
        "man/crio.conf.5",
        "man/crio.conf.d.5",
        "install",
        "Makefile",
        "README.md",
        "LICENSE",
    ]
    .iter()
    .map(|f| format!("cri-o/{f}"))
    .collect();
    files.extend(CNI_PLUGINS.iter().map(|p| format!("cri-o/cni-plugins/{p}")));
    files.sort();
    files
}

#[test]
fn crio_bundle_has_upstreams_layout_and_checksum() {
    let test = "crio_bundle_has_upstreams_layout_and_checksum";
    if !tools_present(test, &[BUNDLE_TOOLS, &["sha256sum"]].concat()) {
        return;
    }
    let dir = TempDir::new(test);
    let started = Instant::now();
    let tarball = standin::crio_bundle(dir.path(), "amd64", CRIO_VERSION);
    eprintln!(
        "{test}: crio_bundle took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(tarball, dir.path().join("cri-o.amd64.v1.34.0.tar.gz"));
    let bundle = CrioBundle::read(&tarball).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        read(&bundle.sha256sum),
        format!("{}  cri-o.amd64.v1.34.0.tar.gz\n", bundle.sha256)
    );
    // sha256sum itself agrees (it reads the file names from the .sha256sum).
    sh(Command::new("sha256sum")
        .args([
            "--check",
            "--strict",
            "cri-o.amd64.v1.34.0.tar.gz.sha256sum",
        ])
        .current_dir(dir.path()));

    let listing = sh(Command::new("tar").arg("-tzvf").arg(&tarball));
    let mut files: Vec<String> = listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect();
    files.sort();
    assert_eq!(files, expected_bundle_files());
    assert!(
        listing.lines().all(|l| l.contains(" 0/0 ")),
        "owned by root:\n{listing}"
    );

    sh(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .current_dir(dir.path()));
    let cri_o = dir.path().join("cri-o");
    assert_eq!(
        sh(Command::new(cri_o.join("bin/crio")).arg("--version"))
            .lines()
            .next(),
        Some("crio version 1.34.0")
    );
    assert!(sh(Command::new(cri_o.join("bin/crun")).arg("--version")).starts_with("crun version"));
    let unit = read(&cri_o.join("contrib/crio.service"));
    assert!(unit.contains("Type=notify"), "{unit}");
    assert!(unit.contains("ExecStart=/usr/local/bin/crio"), "{unit}");
    assert!(read(&cri_o.join("etc/10-crio.conf")).contains("default_runtime = \"crun\""));
    let install = read(&cri_o.join("install"));
    assert!(
        install.starts_with("#/usr/bin/env sh\n"),
        "as upstream: no real shebang"
    );
    // Same inputs, same bytes.
    let again = TempDir::new(test);
    let tarball2 = standin::crio_bundle(again.path(), "amd64", CRIO_VERSION);
    assert_eq!(
        CrioBundle::read(&tarball2).expect("read").sha256,
        bundle.sha256
    );
    let arm = standin::crio_bundle(again.path(), "arm64", CRIO_VERSION);
    assert!(arm.ends_with("cri-o.arm64.v1.34.0.tar.gz"));
}

#[test]
fn crio_bundle_install_puts_files_where_upstream_does() {
    let test = "crio_bundle_install_puts_files_where_upstream_does";
    if !tools_present(test, &[BUNDLE_TOOLS, &["dpkg", "find"]].concat()) {
        return;
    }
    let dir = TempDir::new(test);
    let tarball = standin::crio_bundle(dir.path(), "amd64", CRIO_VERSION);
    sh(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .current_dir(dir.path()));
    let cri_o = dir.path().join("cri-o");
    let dest = dir.path().join("dest");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("create HOME");

    // Like upstream's, the script needs bash: under dash it stops at `source`.
    let sh_is_dash = std::fs::canonicalize("/bin/sh").is_ok_and(|p| p.ends_with("dash"));
    if sh_is_dash {
        let out = Command::new("sh")
            .arg("./install")
            .current_dir(&cri_o)
            .env("DESTDIR", dir.path().join("dash-dest"))
            .env("HOME", &home)
            .output()
            .expect("run sh ./install");
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("source: not found"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    sh(Command::new("bash")
        .arg("./install")
        .current_dir(&cri_o)
        .env("DESTDIR", &dest)
        .env("HOME", &home));
    // Upstream's own bundle test expects 74 entries under DESTDIR (on a
    // system with dpkg, so /etc/default/crio) with this set of CNI plugins.
    let count = sh(Command::new("find").arg(&dest)).lines().count();
    assert_eq!(count, 74);
    for (path, executable) in [
        ("usr/local/bin/crio", true),
        ("usr/local/bin/pinns", true),
        ("usr/local/bin/crictl", true),
        ("usr/libexec/crio/conmon", true),
        ("usr/libexec/crio/conmonrs", true),
        ("usr/libexec/crio/crun", true),
        ("usr/libexec/crio/runc", true),
        ("usr/libexec/crio/crio-credential-provider", true),
        ("opt/cni/bin/bridge", true),
        ("opt/cni/bin/host-local", true),
        ("opt/cni/bin/loopback", true),
        ("opt/cni/bin/portmap", true),
        ("opt/cni/bin/ptp", true),
        ("opt/cni/bin/README.md", true),
        ("etc/cni/net.d/10-crio-bridge.conflist.disabled", false),
        ("etc/crictl.yaml", false),
        ("etc/crio/policy.json", false),
        ("etc/crio/crio.conf.d/10-crio.conf", false),
        ("etc/default/crio", false),
        ("etc/containers/registries.conf.d/registries.conf", false),
        ("usr/local/lib/systemd/system/crio.service", false),
        (
            "usr/local/share/oci-umount/oci-umount.d/crio-umount.conf",
            false,
        ),
        ("usr/local/share/man/man8/crio.8", false),
        ("usr/local/share/bash-completion/completions/crio", false),
    ] {
        let p = dest.join(path);
        assert!(p.is_file(), "{path} not installed");
        assert_eq!(is_executable(&p), executable, "{path} mode");
    }
    assert_eq!(
        read(&dest.join("etc/crictl.yaml")),
        "runtime-endpoint: \"unix:///var/run/crio/crio.sock\"\ntimeout: 0\ndebug: false\n"
    );
    assert!(read(&dest.join("etc/default/crio")).starts_with("# /etc/default/crio\n"));
    // As upstream: the drop-in's paths get DESTDIR prepended.
    let conf = read(&dest.join("etc/crio/crio.conf.d/10-crio.conf"));
    assert!(
        conf.contains(&format!(
            "runtime_path = \"{}/usr/libexec/crio/crun\"",
            dest.display()
        )),
        "{conf}"
    );
    let manifest = read(&home.join(".crio-install"));
    assert_eq!(manifest.lines().count(), 23);
    assert!(manifest.contains(&format!("{}/usr/local/bin/crio\n", dest.display())));
}

#[test]
fn crio_bundle_installs_in_the_node_image() {
    let test = "crio_bundle_installs_in_the_node_image";
    let Some(image) = node_image(test, BUNDLE_TOOLS) else {
        return;
    };
    let dir = TempDir::new(test);
    let tarball = standin::crio_bundle(dir.path(), "amd64", CRIO_VERSION);
    let name = tarball
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    write_context(
        dir.path(),
        &format!(
            "FROM {image}\n\
             COPY {name} {name}.sha256sum /tmp/\n\
             RUN cd /tmp && sha256sum -c {name}.sha256sum && tar -xzf {name} \
                 && cd cri-o && bash ./install && rm -rf /tmp/cri-o*\n\
             RUN crio --version \
                 && systemctl disable containerd && systemctl enable crio\n"
        ),
    );
    let started = Instant::now();
    let built = standin::bud(dir.path(), &format!("{test}:{}", std::process::id()), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{test}: bud took {:.2}s", started.elapsed().as_secs_f64());
    assert!(
        built.log().contains("crio version 1.34.0"),
        "{}",
        built.log()
    );
    let root = built.mount().unwrap_or_else(|e| panic!("{e}"));
    assert!(is_executable(&root.join("/usr/local/bin/crio")));
    assert!(is_executable(&root.join("/usr/libexec/crio/crun")));
    assert!(is_link(&root.join(
        "/etc/systemd/system/multi-user.target.wants/crio.service"
    )));
    assert!(!is_link(&root.join(
        "/etc/systemd/system/multi-user.target.wants/containerd.service"
    )));
    // The bundle's crictl.yaml replaced kind's.
    assert!(read(&root.join("/etc/crictl.yaml")).contains("crio.sock"));
    assert!(root.join("/root/.crio-install").is_file());
    assert!(root.join("/etc/default/crio").is_file());
}

// ---------------------------------------------------------------------------
// CRI-O apt repository

#[test]
fn apt_repo_is_a_signed_flat_repository() {
    let test = "apt_repo_is_a_signed_flat_repository";
    if !tools_present(test, &[APT_REPO_TOOLS, &["gpgv"]].concat()) {
        return;
    }
    let started = Instant::now();
    let repo = CrioAptRepo::start(test, "1.34.0");
    eprintln!("{test}: start took {:.2}s", started.elapsed().as_secs_f64());
    assert!(
        repo.url()
            .ends_with("/repositories/isv:/cri-o:/stable:/v1.34/deb/"),
        "{}",
        repo.url()
    );
    assert_eq!(repo.package_version(), "1.34.0-1.1");
    assert_eq!(repo.deb_path(), "amd64/cri-o_1.34.0-1.1_amd64.deb");
    let path = repo.url().replacen(&repo.origin(), "", 1);

    let get = |method: &str, name: &str| {
        http(repo.addr(), method, &format!("{path}{name}"), &[]).expect("HTTP request")
    };
    for name in [
        "InRelease",
        "Release",
        "Release.gpg",
        "Release.key",
        "Packages",
        "Packages.gz",
        repo.deb_path(),
    ] {
        let resp = get("GET", name);
        assert_eq!(resp.status, 200, "GET {name}");
        assert_eq!(
            resp.header("content-length"),
            Some(resp.body.len().to_string().as_str())
        );
    }
    let head = get("HEAD", "InRelease");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_ne!(head.header("content-length"), Some("0"));
    assert_eq!(get("GET", "nothing-here").status, 404);
    assert_eq!(get("GET", "../deb/Release").status, 404);
    assert_eq!(
        http(repo.addr(), "GET", "/elsewhere/Release", &[])
            .expect("GET")
            .status,
        404
    );
    assert_eq!(repo.requests("InRelease"), 2);
    assert!(repo.log().contains(&format!("HEAD {path}InRelease 200")));

    let key = get("GET", "Release.key").body;
    assert!(String::from_utf8_lossy(&key).starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let packages = String::from_utf8_lossy(&get("GET", "Packages").body).into_owned();
    for field in [
        "Package: cri-o\n",
        "Version: 1.34.0-1.1\n",
        "Architecture: amd64\n",
        "Depends: iptables\n",
        "Filename: amd64/cri-o_1.34.0-1.1_amd64.deb\n",
    ] {
        assert!(packages.contains(field), "{field} in\n{packages}");
    }
    let release = read(&repo.dir().join("Release"));
    assert!(
        release.contains("Label: isv:cri-o:stable:v1.34\n"),
        "{release}"
    );
    assert!(release.contains(" Packages.gz\n"), "{release}");

    // The served key verifies the served signatures.
    let work = TempDir::new(test);
    let keyring = work.path().join("keyring.gpg");
    sh(Command::new("gpg")
        .args(["--batch", "--yes", "--dearmor", "--output"])
        .arg(&keyring)
        .arg(repo.dir().join("Release.key")));
    sh(Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(repo.dir().join("InRelease")));
    sh(Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(repo.dir().join("Release.gpg"))
        .arg(repo.dir().join("Release")));

    let deb = repo.dir().join(repo.deb_path());
    let contents = sh(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/crio",
        "./usr/bin/pinns",
        "./usr/libexec/crio/conmon",
        "./usr/libexec/crio/conmonrs",
        "./usr/libexec/crio/crun",
        "./usr/libexec/crio/runc",
        "./usr/lib/systemd/system/crio.service",
        "./etc/crio/crio.conf.d/10-crio.conf",
        "./etc/crio/policy.json",
        "./etc/crictl.yaml",
        "./etc/containers/registries.conf.d/crio.conf",
        "./etc/cni/net.d/10-crio-bridge.conflist.disabled",
        "./etc/default/crio",
        "./var/lib/crio/",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} in\n{contents}"
        );
    }
    assert!(contents.lines().all(|l| l.contains(" root/root ")));
}

/// The build that installs CRI-O as its package's instructions say, with
/// the key kept ASCII-armored (`.asc`): kind's image has no gpg to dearmor it.
/// `install_options` go to `apt-get install`.
fn apt_install_context(dir: &std::path::Path, image: &str, install_options: &str) {
    write_context(
        dir,
        &format!(
            "FROM {image}\n\
             ARG CRIO_REPO\n\
             RUN mkdir -p /etc/apt/keyrings \
                 && curl -fsSL \"$CRIO_REPO/Release.key\" -o /etc/apt/keyrings/cri-o-apt-keyring.asc \
                 && echo \"deb [signed-by=/etc/apt/keyrings/cri-o-apt-keyring.asc] $CRIO_REPO /\" \
                    > /etc/apt/sources.list.d/cri-o.list \
                 && apt-get update \
                 && DEBIAN_FRONTEND=noninteractive apt-get install -y {install_options} cri-o \
                 && crio --version\n"
        ),
    );
}

/// Builds `dir` with `CRIO_REPO` set to the repository's URL.
fn bud_with_repo(
    test: &str,
    dir: &std::path::Path,
    repo: &CrioAptRepo,
) -> Result<standin::BuiltImage, String> {
    let started = Instant::now();
    let result = standin::bud(
        dir,
        &format!("{test}:{}", std::process::id()),
        &["--build-arg", &format!("CRIO_REPO={}", repo.url())],
    );
    eprintln!("{test}: bud took {:.2}s", started.elapsed().as_secs_f64());
    result
}

#[test]
fn apt_get_installs_crio_from_the_repo_in_a_build() {
    let test = "apt_get_installs_crio_from_the_repo_in_a_build";
    let Some(image) = node_image(test, APT_REPO_TOOLS) else {
        return;
    };
    let repo = CrioAptRepo::start(test, "1.34.0");
    let dir = TempDir::new(test);
    // The package's /etc/crictl.yaml replaces kind's (see the conffile test).
    apt_install_context(dir.path(), &image, "-o Dpkg::Options::=--force-confnew");
    let built = bud_with_repo(test, dir.path(), &repo)
        .unwrap_or_else(|e| panic!("{e}\nrepository log: {:#?}", repo.log()));
    assert!(
        built.log().contains("crio version 1.34.0"),
        "{}",
        built.log()
    );
    // kubernetes-cni is only recommended, and missing as in the real repository.
    assert!(
        built
            .log()
            .contains("Recommended packages:\n  kubernetes-cni")
    );
    assert!(repo.requests("Release.key") >= 1, "{:#?}", repo.log());
    assert!(repo.requests("InRelease") >= 1, "{:#?}", repo.log());
    assert_eq!(
        repo.requests("cri-o_1.34.0-1.1_amd64.deb"),
        1,
        "{:#?}",
        repo.log()
    );
    let root = built.mount().unwrap_or_else(|e| panic!("{e}"));
    assert!(is_executable(&root.join("/usr/bin/crio")));
    assert!(is_executable(&root.join("/usr/libexec/crio/crun")));
    assert!(root.join("/usr/lib/systemd/system/crio.service").is_file());
    assert!(read(&root.join("/etc/crictl.yaml")).contains("/var/run/crio/crio.sock"));
    let status = read(&root.join("/var/lib/dpkg/status"));
    assert!(
        status.contains("Package: cri-o\nStatus: install ok installed\n"),
        "cri-o is installed"
    );
}

/// kind's `/etc/crictl.yaml` is not owned by any package, and the cri-o
/// package ships `/etc/crictl.yaml` as a conffile (`%config(noreplace)` in
/// cri-o/packaging's spec): dpkg then asks what to do, and without a terminal
/// the install fails. A build must pass `--force-confnew`/`--force-confold`
/// or remove kind's file first.
#[test]
fn apt_get_install_stops_at_kinds_crictl_yaml() {
    let test = "apt_get_install_stops_at_kinds_crictl_yaml";
    let Some(image) = node_image(test, APT_REPO_TOOLS) else {
        return;
    };
    let repo = CrioAptRepo::start(test, "1.34.0");
    let dir = TempDir::new(test);
    apt_install_context(dir.path(), &image, "");
    let err = bud_with_repo(test, dir.path(), &repo)
        .expect_err("dpkg cannot ask about /etc/crictl.yaml without a terminal");
    assert!(
        err.contains("Configuration file '/etc/crictl.yaml'"),
        "{err}"
    );
    assert!(
        err.contains("end of file on stdin at conffile prompt"),
        "{err}"
    );
    assert_eq!(repo.requests("cri-o_1.34.0-1.1_amd64.deb"), 1);
}

#[test]
fn apt_get_refuses_a_repo_signed_by_another_key() {
    let test = "apt_get_refuses_a_repo_signed_by_another_key";
    let Some(image) = node_image(test, APT_REPO_TOOLS) else {
        return;
    };
    let repo = CrioAptRepo::start_with(test, "1.34.0", Signing::OtherKey);
    let dir = TempDir::new(test);
    apt_install_context(dir.path(), &image, "");
    let err = bud_with_repo(test, dir.path(), &repo)
        .expect_err("apt-get must refuse a repository signed by a key it was not given");
    assert!(err.contains("NO_PUBKEY"), "{err}");
    assert!(err.contains("is not signed"), "{err}");
    assert!(repo.requests("InRelease") >= 1, "{:#?}", repo.log());
    assert_eq!(repo.requests(".deb"), 0, "{:#?}", repo.log());
}
