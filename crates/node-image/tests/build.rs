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
//! In both, short image names resolve as in kind's containerd: under the
//! built image's `/etc/containers`, containers/image resolves `my-app:dev`
//! to `docker.io/library/my-app:dev` alone, in CRI-O's enforcing mode too,
//! without a network and without a prompt, and that name is in a store
//! holding what `load-image my-app:dev` stores for an image built by podman.
//!
//! Each default sysctl of CRI-O's drop-in is one a pod's network namespace
//! accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

use node_image::{Arch, CrioSource, CrioStream, Inputs, Mirror, RepoUrl};
use registry::{ImageRef, KubernetesVersion};
use testkit::oci::{ImageSpec, Packaging};
use testkit::standin::{self, CrioAptRepo};

const PAUSE: &str = "registry.k8s.io/pause:3.10";

/// What the short-name and sysctl checks run, besides podman.
const RESOLVE_TOOLS: &[&str] = &["skopeo", "unshare", "mount", "cp", "sh"];

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
        preload: node_image::Preload::Store,
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
fn assert_crio_node(root: &Path, ctx: &node_image::Context, reference: &str, cgroup_manager: &str) {
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
    // Short names: Docker Hub alone, never a prompt, read after the package's
    // own registries file; no alias file (tried by resolution below).
    let registries = read(root, "/etc/containers/registries.conf.d/zz-kind-crio.conf");
    assert!(
        registries.contains("\nunqualified-search-registries = [\"docker.io\"]\n")
            && registries.contains("\nshort-name-mode = \"disabled\"\n"),
        "{registries}"
    );
    assert!(!exists(
        root,
        "/etc/containers/registries.conf.d/shortnames.conf"
    ));
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
    if !tools(test, &[standin::BUNDLE_TOOLS, RESOLVE_TOOLS].concat()) {
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
    let ctx = node_image::render(&inputs);
    let context = dir.join("context");
    node_image::write_context(&ctx, &context).expect("write the context");

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
    // The bundle's registries file is registries.conf.d/registries.conf.
    assert!(exists(
        root.path(),
        "/etc/containers/registries.conf.d/registries.conf"
    ));
    assert_short_names_as_in_kind(root.path(), &dir.join("resolve"));
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
    let ctx = node_image::render(&inputs(&base, "v1.34.0", source, &[]));
    let context = dir.join("context");
    node_image::write_context(&ctx, &context).expect("write the context");
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

/// A bundle URL is checked against the `.sha256sum` published beside it
/// before anything in it runs: served on loopback with a checksum that does
/// not match, the build fails at the check, having fetched both files.
#[test]
fn bundle_url_with_a_wrong_checksum_fails_the_build() {
    let test = "bundle_url_with_a_wrong_checksum_fails_the_build";
    if !tools(test, &[standin::BUNDLE_TOOLS, &["python3"]].concat()) {
        return;
    }
    let base = standin::node_base_image().expect("the stand-in node image");
    let dir = scratch("bundle-url");
    let served = dir.join("served");
    std::fs::create_dir_all(&served).expect("a directory to serve");
    let tarball = standin::crio_bundle(&dir, "amd64", "v1.34.0");
    let name = tarball
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    std::fs::copy(&tarball, served.join(&name)).expect("serve the bundle");
    std::fs::write(
        served.join(format!("{name}.sha256sum")),
        format!("{}  {name}\n", "0".repeat(64)),
    )
    .expect("serve a wrong checksum");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let log = dir.join("served.log");
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&served)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log"))
        .spawn()
        .expect("start python3 -m http.server");
    // Until it answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let url = RepoUrl::parse_file(&format!("http://127.0.0.1:{port}/{name}")).expect("a URL");
    let ctx = node_image::render(&inputs(
        &base,
        "v1.34.0",
        CrioSource::BundleUrl { url },
        &[],
    ));
    let context = dir.join("context");
    node_image::write_context(&ctx, &context).expect("write the context");
    let built = standin::bud(&context, "kind-crio-test/bundle-url:v1", &[]);
    let _ = server.kill();
    let _ = server.wait();
    let err = built.expect_err("a bundle whose checksum does not match must not build");
    assert!(err.contains("did NOT match"), "{err}");
    let requests = std::fs::read_to_string(&log).unwrap_or_default();
    for path in [format!("GET /{name} "), format!("GET /{name}.sha256sum ")] {
        assert!(
            requests.contains(&path),
            "{path:?} not requested:\n{requests}"
        );
    }
}

#[test]
fn apt_context_builds_against_a_signed_repository() {
    let test = "apt_context_builds_against_a_signed_repository";
    if !tools(test, &[standin::APT_REPO_TOOLS, RESOLVE_TOOLS].concat()) {
        return;
    }
    let base = standin::node_base_image().expect("the stand-in node image");
    let repo = CrioAptRepo::start(test, "1.34.0");
    let repository = RepoUrl::parse_repository(&repo.url())
        .expect("the stand-in repository URL passes the grammar");
    let inputs = inputs(&base, "v1.34.0", CrioSource::Apt { repository }, &[]);
    let ctx = node_image::render(&inputs);
    let dir = scratch("apt");
    node_image::write_context(&ctx, &dir).expect("write the context");

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
    // The package's registries file is registries.conf.d/crio.conf.
    assert!(exists(
        root.path(),
        "/etc/containers/registries.conf.d/crio.conf"
    ));
    assert_short_names_as_in_kind(root.path(), &scratch("apt-resolve"));
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
    let ctx = node_image::render(&inputs(&base, "v1.23.17", source, &[]));
    let context = dir.join("context");
    node_image::write_context(&ctx, &context).expect("write the context");
    let image = standin::bud(&context, "kind-crio-test/cgroupfs:v1.23.17", &[]).expect("the build");
    let root = image.mount().expect("mount");
    let dropin = read(root.path(), "/etc/crio/crio.conf.d/99-kind-crio.conf");
    assert!(
        dropin.contains("cgroup_manager = \"cgroupfs\"")
            && dropin.contains("conmon_cgroup = \"pod\""),
        "{dropin}"
    );
}

/// What `load-image my-app:dev` stores in a node for an image podman built
/// (xtask/src/load_image.rs): podman's own name, then Docker Hub's.
const LOADED_FROM_PODMAN: [&str; 2] = ["localhost/my-app:dev", "docker.io/library/my-app:dev"];

/// kind-crio's registries drop-in in the node.
const DROPIN: &str = "/etc/containers/registries.conf.d/zz-kind-crio.conf";

/// What containers/image's `shortnames.Resolve` made of a short name.
#[derive(Debug)]
struct Resolution {
    /// `Resolving "NAME" using unqualified-search registries (FILE)`, or
    /// `Resolved "NAME" as an alias (FILE)`.
    description: String,
    /// The fully qualified names, in the order they are tried.
    candidates: Vec<String>,
    output: String,
}

/// Resolves `name` as CRI-O would in the built node. CRI-O's image status,
/// container creation and pulls (server/image_status.go,
/// server/container_create.go, server/image_pull.go) take the candidates of
/// containers/image's `shortnames.Resolve` and look each up in their storage
/// by exact name, in order. `podman pull` calls the same function on the
/// same files: it runs with the image's `/etc/containers` mounted over the
/// machine's, in mount and network namespaces of its own, so that nothing
/// else is read (not the machine's files, nor aliases recorded under
/// `/var/cache`) and no registry is reached; the names it tries are the
/// candidates. `crio_mode` adds what CRI-O 1.34 and later add: their own
/// short-name mode (crio.conf's `short_name_mode`), which overrides the
/// files', as a drop-in read last.
fn resolve(etc: &Path, dir: &Path, name: &str, crio_mode: Option<&str>) -> Resolution {
    let mut etc = etc.to_path_buf();
    if let Some(mode) = crio_mode {
        let copy = copy_dir(&etc, dir, "with-mode");
        std::fs::write(
            copy.join("registries.conf.d/zzz-crio-short-name-mode.conf"),
            format!("short-name-mode = \"{mode}\"\n"),
        )
        .expect("write the mode");
        etc = copy;
    }
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("a home without configuration");
    let script = "set -e\n\
                  mount --bind \"$1\" /etc/containers\n\
                  mount -t tmpfs tmpfs /var/cache\n\
                  shift\n\
                  exec podman \"$@\"";
    let out = Command::new("unshare")
        .args(["--mount", "--net", "sh", "-c", script, "sh"])
        .arg(&etc)
        .args(standin::storage_args())
        .args(["pull", name])
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run podman pull");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Never pulled: there is no network here.
    assert!(!out.status.success(), "{name} was pulled:\n{output}");
    let description = output
        .lines()
        .find(|l| l.starts_with("Resolving \"") || l.starts_with("Resolved \""))
        .unwrap_or_default()
        .to_owned();
    let candidates = output
        .lines()
        .filter_map(|l| l.strip_prefix("Trying to pull "))
        .map(|l| l.trim_end_matches("...").to_owned())
        .collect();
    Resolution {
        description,
        candidates,
        output,
    }
}

/// A fresh copy of `src` in `dir`, named `name`.
fn copy_dir(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    let _ = std::fs::remove_dir_all(&copy);
    let out = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(&copy)
        .output()
        .expect("run cp");
    assert!(
        out.status.success(),
        "cp -a {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    copy
}

/// The first of `candidates` stored under that exact name in the store at
/// `store` (containers-storage, vfs), as CRI-O looks them up.
fn first_stored(store: &Path, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .find(|c| {
            Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!(
                    "containers-storage:[vfs@{}+{}]{c}",
                    store.join("root").display(),
                    store.join("run").display()
                ))
                .output()
                .expect("run skopeo inspect")
                .status
                .success()
        })
        .cloned()
}

/// A containers-storage store holding `archive` under `names`, written as
/// load-image writes a node's (`skopeo copy docker-archive:...`).
fn store_with(store: &Path, archive: &Path, names: &[&str]) {
    for name in names {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--insecure-policy"])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!(
                "containers-storage:[vfs@{}+{}]{name}",
                store.join("root").display(),
                store.join("run").display()
            ))
            .output()
            .expect("run skopeo copy");
        assert!(
            out.status.success(),
            "skopeo copy to {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A pod's `image: my-app:dev` finds what `load-image my-app:dev` stored,
/// and short names mean Docker Hub, as in kind's containerd: one candidate,
/// read from kind-crio's drop-in, in CRI-O's enforcing mode as in the
/// tools' mode, no alias in the way.
fn assert_short_names_as_in_kind(root: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("a scratch directory");
    // CRI-O keeps its own default mode ("enforcing" from 1.34), which the
    // resolution below stands in for.
    for entry in std::fs::read_dir(root.join("etc/crio/crio.conf.d")).expect("crio.conf.d") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a drop-in");
        assert!(
            !text.contains("short_name_mode"),
            "{}:\n{text}",
            path.display()
        );
    }
    let etc = root.join("etc/containers");
    let hub = LOADED_FROM_PODMAN[1];
    let mut crio = Vec::new();
    for mode in [None, Some("enforcing")] {
        let r = resolve(&etc, dir, "my-app:dev", mode);
        assert_eq!(
            r.description,
            format!("Resolving \"my-app\" using unqualified-search registries ({DROPIN})"),
            "{mode:?}:\n{}",
            r.output
        );
        assert_eq!(r.candidates, [hub], "{mode:?}:\n{}", r.output);
        crio = r.candidates;
    }
    // Debian's skopeo brings aliases (centos is quay.io/centos/centos
    // there); kind's containerd has none.
    let r = resolve(&etc, dir, "centos:stream9", Some("enforcing"));
    assert_eq!(
        r.candidates,
        ["docker.io/library/centos:stream9"],
        "{}",
        r.output
    );
    assert!(
        r.description.starts_with("Resolving \"centos\""),
        "{}",
        r.output
    );

    // The package's own list (docker.io and quay.io in CRI-O v1.34.0's) is
    // what CRI-O would use without kind-crio's drop-in: refused.
    let without = copy_dir(&etc, dir, "without-drop-in");
    std::fs::remove_file(without.join(DROPIN.trim_start_matches("/etc/containers/")))
        .expect("remove the drop-in from the copy");
    let r = resolve(&without, dir, "my-app:dev", Some("enforcing"));
    assert!(
        r.output
            .contains("short-name resolution enforced but cannot prompt without a TTY"),
        "{}",
        r.output
    );

    // The names load-image stores: the pod's candidate is one of them. With
    // podman's name alone, nothing would be found and the kubelet would pull.
    let archive = testkit::oci::build_archive(
        &ImageSpec::new(LOADED_FROM_PODMAN[0], Packaging::DockerArchive, &[256]),
        &dir.join("archive"),
    )
    .expect("an archive");
    let loaded = dir.join("loaded");
    store_with(&loaded, &archive.archive, &LOADED_FROM_PODMAN);
    assert_eq!(first_stored(&loaded, &crio).as_deref(), Some(hub));
    let podman_only = dir.join("podman-only");
    store_with(&podman_only, &archive.archive, &LOADED_FROM_PODMAN[..1]);
    assert_eq!(first_stored(&podman_only, &crio), None);
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
