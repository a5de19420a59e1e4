//! The stand-in kind node image: Debian from `debootstrap` (bookworm, as
//! kind's base image up to v0.31, or trixie, from v0.32), with
//! kind's base image files (containerd and kubelet configuration, units,
//! `/etc/crictl.yaml`), what `kind build node-image` adds (`/kind/version`,
//! `/kind/manifests/*`, kubeadm/kubelet/kubectl under `/usr/bin`) and the
//! image config kind sets (`ENV container=docker`, `STOPSIGNAL SIGRTMIN+3`,
//! the entrypoint). containerd and ctr are real (Debian's, linked where kind
//! installs them, `/usr/local/bin`), with stand-in images preloaded into its
//! `k8s.io` namespace as kind does (see `preloaded.rs`); the other programs
//! are stand-ins.
//!
//! Built once, then reused: the tag ends in a hash of the whole recipe, so a
//! change to any file here builds a new image, and older ones are removed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::{Entry, podman, remove_image, run, stub, write_entries};

/// Tools [`node_base_image`] runs.
pub const NODE_TOOLS: &[&str] = &["debootstrap", "podman", "buildah", "chroot", "flock"];

/// The Debian release kind's base image used up to kind v0.31.
pub const DEBIAN_SUITE: &str = "bookworm";

/// The Debian release kind's base image uses from kind v0.32.
pub const DEBIAN_SUITE_NEXT: &str = "trixie";

/// The Kubernetes version the stand-in node image claims (`/kind/version`,
/// `kubeadm version`).
pub const KIND_NODE_VERSION: &str = "v1.34.0";

/// Where the [`DEBIAN_SUITE`] image goes in the stand-ins' store (another
/// suite's goes to `<this>-<suite>`); the tag is
/// `<KIND_NODE_VERSION>-<recipe hash>`.
pub const NODE_IMAGE_REPOSITORY: &str = "localhost/kind-crio-standin/node";

/// Which containerd the stand-in node carries (and preloads its images with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeContainerd {
    /// The suite's own Debian package (1.6 on bookworm, 1.7 on trixie),
    /// linked into `/usr/local/bin` where kind installs containerd.
    Debian,
    /// containerd 2.x, as kind's base image has shipped since kind v0.27:
    /// the binaries `.ci/sid-tools` installs (Debian sid's build), copied
    /// into `/usr/local/bin`.
    Two,
}

/// Which stand-in images the node preloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeImages {
    /// Every shape kind leaves in containerd, about 48 KiB in all: quick to
    /// build and to import.
    Small,
    /// Shaped like a real node's set: kind's ten images with their names,
    /// alias names, layer counts and sizes (see [`super::kind_sized_images`]).
    KindSized,
}

/// One stand-in node image: the Debian release, its containerd, its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpec {
    pub suite: &'static str,
    pub containerd: NodeContainerd,
    pub images: NodeImages,
}

impl NodeSpec {
    /// The Debian release with its own containerd and the small image set.
    pub fn small(suite: &'static str) -> NodeSpec {
        NodeSpec {
            suite,
            containerd: NodeContainerd::Debian,
            images: NodeImages::Small,
        }
    }

    /// The repository of this stand-in in the stand-ins' store:
    /// [`NODE_IMAGE_REPOSITORY`], then `-SUITE` unless bookworm,
    /// `-containerd2`, `-kind-sized` where they apply.
    pub fn repository(&self) -> String {
        let mut r = NODE_IMAGE_REPOSITORY.to_owned();
        if self.suite != DEBIAN_SUITE {
            r.push('-');
            r.push_str(self.suite);
        }
        if self.containerd == NodeContainerd::Two {
            r.push_str("-containerd2");
        }
        if self.images == NodeImages::KindSized {
            r.push_str("-kind-sized");
        }
        r
    }

    /// Tools building it needs beyond [`NODE_TOOLS`], for
    /// [`crate::tools::require`]: `containerd-2` for [`NodeContainerd::Two`].
    pub fn project_tools(&self) -> &'static [&'static str] {
        match self.containerd {
            NodeContainerd::Two => &["containerd-2"],
            NodeContainerd::Debian => &[],
        }
    }
}

/// Overrides the Debian mirror [`debian_mirror`] finds in apt's sources.
pub const MIRROR_ENV: &str = "KIND_CRIO_DEBIAN_MIRROR";

/// Bump to force a rebuild when something outside [`recipe`] changes how the
/// image is made.
const RECIPE_REVISION: u32 = 4;

/// Packages on top of `--variant=minbase`: what kind's base installs that the
/// stand-ins need (systemd, curl, jq, iptables for the cri-o package's
/// dependency; mount and iproute2, which kind's entrypoint uses), and nothing
/// kind's base lacks (no gnupg). Debian's containerd only where the node
/// carries it ([`NodeContainerd::Debian`]).
const INCLUDE: &[&str] = &[
    "systemd",
    "dbus",
    "apt",
    "ca-certificates",
    "curl",
    "jq",
    "iptables",
    "mount",
    "iproute2",
];

/// What `chroot` runs in the new root: the cleanup and enablement steps of
/// kind's base image Dockerfile, then apt's caches emptied (kind's
/// `clean-install` leaves no lists) and the files debootstrap copied from this
/// machine blanked.
const SETUP_SCRIPT: &str = r#"set -eu
find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
rm -f /lib/systemd/system/multi-user.target.wants/*
rm -f /etc/systemd/system/*.wants/*
rm -f /lib/systemd/system/local-fs.target.wants/*
rm -f /lib/systemd/system/sockets.target.wants/*udev*
rm -f /lib/systemd/system/sockets.target.wants/*initctl*
rm -f /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
for p in containerd ctr containerd-shim-runc-v2; do
    [ -e "/usr/local/bin/$p" ] || ln -sf "../../bin/$p" "/usr/local/bin/$p"
done
systemctl enable kubelet.service
systemctl enable containerd.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt/* /var/log/dpkg.log
: > /etc/hostname
: > /etc/resolv.conf
: > /etc/machine-id
"#;

/// The image config `podman import` gives the image: kind's base image
/// `ENV`/`STOPSIGNAL`/`ENTRYPOINT`, and the empty proxy variables
/// `kind build node-image` commits into every node image (one per `--change`:
/// podman 4.3's `ENV` takes a single pair).
const CHANGES: &[&str] = &[
    "ENV container=docker",
    "ENV HTTP_PROXY=",
    "ENV HTTPS_PROXY=",
    "ENV NO_PROXY=",
    "STOPSIGNAL SIGRTMIN+3",
    r#"ENTRYPOINT ["/usr/local/bin/entrypoint","/sbin/init"]"#,
];

#[derive(Debug)]
struct Recipe {
    revision: u32,
    spec: NodeSpec,
    include: Vec<&'static str>,
    /// `containerd --version` of the binaries copied in ([`NodeContainerd::Two`]).
    containerd_version: String,
    entries: Vec<Entry>,
    setup: &'static str,
    changes: &'static [&'static str],
    preloaded: Vec<crate::oci::ImageSpec>,
}

fn recipe(spec: NodeSpec) -> Result<Recipe, String> {
    let mut include = INCLUDE.to_vec();
    let containerd_version = match spec.containerd {
        NodeContainerd::Debian => {
            include.push("containerd");
            String::new()
        }
        NodeContainerd::Two => {
            let bin = crate::tools::containerd2_bin_dir().join("containerd");
            let out = run(Command::new(&bin).arg("--version"))?;
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    Ok(Recipe {
        revision: RECIPE_REVISION,
        spec,
        include,
        containerd_version,
        entries: kind_files(),
        setup: SETUP_SCRIPT,
        changes: CHANGES,
        preloaded: match spec.images {
            NodeImages::Small => super::preloaded_images(),
            NodeImages::KindSized => super::kind_sized_images(),
        },
    })
}

/// `<KIND_NODE_VERSION>-<first 12 hex digits of the recipe's sha256>`.
fn recipe_tag(recipe: &Recipe) -> String {
    let Recipe {
        revision,
        spec,
        include,
        containerd_version,
        entries,
        setup,
        changes,
        preloaded,
    } = recipe;
    let text = format!(
        "{revision}\n{spec:?}\n{include:?}\n{containerd_version}\n{entries:?}\n{setup}\n{changes:?}\n{preloaded:?}"
    );
    let hash = crate::sha256_hex(text.as_bytes());
    format!("{KIND_NODE_VERSION}-{}", &hash[..12])
}

/// kind's files, modelled on kind's `images/base/files` (same keys and
/// sections, comments trimmed) and on what `kind build node-image` writes.
/// `/etc/crictl.yaml` and `/etc/default/kubelet` have no final newline, as in kind.
fn kind_files() -> Vec<Entry> {
    let v = KIND_NODE_VERSION;
    let version_only = |name: &str, text: &str| stub(name, &["--version", "-v"], text);
    vec![
        Entry::file(
            "etc/crictl.yaml",
            0o644,
            "runtime-endpoint: unix:///run/containerd/containerd.sock",
        ),
        Entry::file(
            "etc/default/kubelet",
            0o644,
            "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service",
        ),
        Entry::file(
            "etc/containerd/config.toml",
            0o644,
            crate::containerd::KIND_BASE_CONFIG,
        ),
        Entry::file(
            "etc/systemd/system/containerd.service",
            0o644,
            CONTAINERD_SERVICE,
        ),
        Entry::file("etc/systemd/system/kubelet.service", 0o644, KUBELET_SERVICE),
        Entry::file(
            "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            0o644,
            KUBELET_KUBEADM_DROPIN,
        ),
        Entry::file(
            "etc/systemd/system/kubelet.service.d/11-kind.conf",
            0o644,
            KUBELET_KIND_DROPIN,
        ),
        Entry::file("etc/systemd/system/kubelet.slice", 0o644, KUBELET_SLICE),
        Entry::file("usr/local/bin/entrypoint", 0o755, ENTRYPOINT),
        Entry::file(
            "kind/bin/create-kubelet-cgroup-v2.sh",
            0o755,
            CREATE_KUBELET_CGROUP_V2,
        ),
        Entry::file(
            "usr/local/sbin/runc",
            0o755,
            stub(
                "runc",
                &["--version", "-v", "version"],
                "runc version 1.3.0\nspec: 1.2.1",
            ),
        ),
        Entry::file(
            "usr/local/bin/crictl",
            0o755,
            stub(
                "crictl",
                &["--version", "-v"],
                &format!("crictl version {v}"),
            ),
        ),
        Entry::file("usr/bin/kubelet", 0o755, kubelet_stub()),
        Entry::file(
            "usr/bin/kubectl",
            0o755,
            stub("kubectl", &["version"], &format!("Client Version: {v}")),
        ),
        Entry::file("usr/bin/kubeadm", 0o755, kubeadm_stub()),
        Entry::file("kind/version", 0o644, v),
        Entry::file("kind/manifests/default-cni.yaml", 0o644, DEFAULT_CNI),
        Entry::file(
            "kind/manifests/default-storage.yaml",
            0o644,
            DEFAULT_STORAGE,
        ),
        Entry::file(
            "opt/cni/bin/host-local",
            0o755,
            version_only("host-local", "CNI host-local plugin v1.7.1"),
        ),
        Entry::file(
            "opt/cni/bin/loopback",
            0o755,
            version_only("loopback", "CNI loopback plugin v1.7.1"),
        ),
        Entry::file(
            "opt/cni/bin/ptp",
            0o755,
            version_only("ptp", "CNI ptp plugin v1.7.1"),
        ),
        Entry::file(
            "opt/cni/bin/portmap",
            0o755,
            version_only("portmap", "CNI portmap plugin v1.7.1"),
        ),
    ]
}

const CONTAINERD_SERVICE: &str = "\
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target
StartLimitIntervalSec=0

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=1
LimitNPROC=infinity
LimitCORE=infinity
LimitNOFILE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
";

const KUBELET_SERVICE: &str = "\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=http://kubernetes.io/docs/
ConditionPathExists=/var/lib/kubelet/config.yaml

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=1s
CPUAccounting=true
MemoryAccounting=true
Slice=kubelet.slice
KillMode=process

[Install]
WantedBy=multi-user.target
";

const KUBELET_KUBEADM_DROPIN: &str = r#"[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"#;

const KUBELET_KIND_DROPIN: &str = r#"[Service]
ExecStartPre=/bin/sh -euc "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then /kind/bin/create-kubelet-cgroup-v2.sh; fi"
ExecStartPre=/bin/sh -euc "if [ ! -f /sys/fs/cgroup/cgroup.controllers ] && [ ! -d /sys/fs/cgroup/systemd/kubelet ]; then mkdir -p /sys/fs/cgroup/systemd/kubelet; fi"
"#;

const KUBELET_SLICE: &str = "\
[Unit]
Description=slice used to run Kubernetes / Kubelet
Before=slices.target

[Slice]
MemoryAccounting=true
CPUAccounting=true
";

/// What of kind's entrypoint a stand-in node needs, in its order and with
/// its log lines: kind's boot gate reads them (on a cgroup v1 host the line
/// `detected cgroup v1` is enough; on cgroup v2 kind waits for systemd's
/// `Reached target ... Multi-User System`). The real one also rewrites
/// cgroup mounts, DNS and iptables for a kubelet; no kubelet runs here.
const ENTRYPOINT: &str = r#"#!/bin/bash
# Stand-in for kind's entrypoint: prepares the container for systemd the way
# kind's does where a stand-in node needs it, logs as it does, then execs its
# arguments (/sbin/init).
set -o errexit -o nounset -o pipefail
info() { echo "INFO: $*" >&2; }
info 'making mounts shared'
mount --make-rshared /
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    info 'detected cgroup v2'
else
    info 'detected cgroup v1'
fi
info 'starting init'
exec "$@"
"#;

/// kind's `/kind/bin/create-kubelet-cgroup-v2.sh`, which kubelet.service runs
/// first on cgroup v2 hosts: the kubelet's cgroups with every controller.
const CREATE_KUBELET_CGROUP_V2: &str = r#"#!/bin/bash
# Stand-in for kind's script of the same name: makes /kubelet and
# /kubelet.slice with every controller of the root enabled.
set -o errexit -o nounset -o pipefail
enable_all() {
    sed -e 's/ / +/g' -e 's/^/+/' <"/sys/fs/cgroup/$1/cgroup.controllers" >"/sys/fs/cgroup/$1/cgroup.subtree_control"
}
enable_all /
for group in kubelet kubelet.slice; do
    mkdir -p "/sys/fs/cgroup/${group}"
    enable_all "/${group}"
done
"#;

const DEFAULT_CNI: &str = "\
# Stand-in for kind's default CNI manifest (kindnet).
apiVersion: v1
kind: ConfigMap
metadata:
  name: kindnet-standin
  namespace: kube-system
data:
  image: docker.io/kindest/kindnetd:v20250512-df8de77b
";

const DEFAULT_STORAGE: &str = "\
# Stand-in for kind's default storage manifest (local-path-provisioner).
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: \"true\"
provisioner: rancher.io/local-path
";

/// The kubelet answers `--version`; started by systemd (kubeadm's
/// `systemctl restart kubelet`) it stays running, as a kubelet does, without
/// doing anything.
fn kubelet_stub() -> String {
    format!(
        r#"#!/bin/sh
# Stand-in for the kubelet: answers version queries; otherwise it stays
# running like a kubelet (no pods: nothing real runs here).
case "${{1:-}}" in
--version|-v) echo "Kubernetes {KIND_NODE_VERSION}"; exit 0 ;;
esac
echo "kubelet: stand-in for tests, running and doing nothing: $*"
exec sleep infinity
"#
    )
}

/// kubeadm answers `version` and `config images list [--kubernetes-version V]`
/// (the question `kind build node-image` asks): the control-plane images at
/// V, and the pause image kubeadm of that minor version wants. `init` and
/// `join` (what kind runs on each node) do what kubeadm's `kubelet-start`
/// phase does (write the kubelet's configuration, `systemctl restart
/// kubelet`, which returns once the kubelet was started), then fail where
/// the real one waits for a control plane that cannot run here.
fn kubeadm_stub() -> String {
    format!(
        r#"#!/bin/sh
# Stand-in for kubeadm: answers `version` and `config images list`.
own={KIND_NODE_VERSION}
case "${{1:-}} ${{2:-}} ${{3:-}}" in
"config images list")
    shift 3
    version=$own
    while [ $# -gt 0 ]; do
        case "$1" in
        --kubernetes-version) version=${{2:-}}; shift 2 || shift ;;
        --kubernetes-version=*) version=${{1#*=}}; shift ;;
        *) shift ;;
        esac
    done
    case "$version" in
    v[0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "kubeadm: invalid Kubernetes version \"$version\"" >&2; exit 1 ;;
    esac
    minor=$(echo "$version" | cut -d. -f2)
    if [ "$minor" -le 30 ]; then pause=3.9
    elif [ "$minor" -le 33 ]; then pause=3.10
    elif [ "$minor" -le 35 ]; then pause=3.10.1
    else pause=3.10.2
    fi
    for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
        echo "registry.k8s.io/$c:$version"
    done
    echo "registry.k8s.io/coredns/coredns:v1.12.1"
    echo "registry.k8s.io/pause:$pause"
    echo "registry.k8s.io/etcd:3.6.4-0"
    exit 0
    ;;
esac
case "${{1:-}}" in
init|join)
    phase=$1
    echo "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\""
    mkdir -p /var/lib/kubelet
    printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n' >/var/lib/kubelet/config.yaml
    echo 'KUBELET_KUBEADM_ARGS=""' >/var/lib/kubelet/kubeadm-flags.env
    echo "[kubelet-start] Starting the kubelet"
    systemctl daemon-reload
    systemctl restart kubelet
    echo "kubeadm: stand-in for tests: the kubelet was started, but no control plane can run here ($phase)" >&2
    exit 1
    ;;
version)
    if [ "${{2:-}}" = "-o" ] && [ "${{3:-}}" = "short" ]; then echo "$own"; else
        echo "kubeadm version: &version.Info{{GitVersion:\"$own\", Platform:\"linux/amd64\"}}"
    fi
    exit 0
    ;;
esac
echo "kubeadm: stand-in for tests, cannot run: $*" >&2
exit 1
"#
    )
}

// ---------------------------------------------------------------------------
// Debian mirror

/// The Debian mirror for [`DEBIAN_SUITE`]: `$KIND_CRIO_DEBIAN_MIRROR` if set,
/// else the first `deb` source for that suite in this machine's apt
/// configuration (`/etc/apt/sources.list`, then `sources.list.d/*.list` and
/// `*.sources` in name order, as apt reads them).
pub fn debian_mirror() -> Result<String, String> {
    if let Ok(m) = std::env::var(MIRROR_ENV)
        && !m.trim().is_empty()
    {
        return Ok(m.trim().to_owned());
    }
    let mut files = Vec::new();
    let main = Path::new("/etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(main) {
        files.push(("sources.list".to_owned(), text));
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.sort();
    for path in names {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if (name.ends_with(".list") || name.ends_with(".sources"))
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            files.push((name, text));
        }
    }
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    mirror_from_sources(&borrowed, DEBIAN_SUITE).ok_or_else(|| {
        format!(
            "no apt source for Debian {DEBIAN_SUITE} in /etc/apt/sources.list or \
             /etc/apt/sources.list.d/: set {MIRROR_ENV} to a Debian mirror URL"
        )
    })
}

/// The first `deb` URI serving `suite` among apt source files, given as
/// (file name, content): one-line `.list` entries
/// (`deb [options] URI suite components`) and deb822 `.sources` stanzas
/// (`Types`, `URIs`, `Suites`, `Enabled`).
pub fn mirror_from_sources(files: &[(&str, &str)], suite: &str) -> Option<String> {
    for (name, text) in files {
        let found = if name.ends_with(".sources") {
            from_deb822(text, suite)
        } else {
            from_one_line(text, suite)
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn from_one_line(text: &str, suite: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            rest = rest.split_once(']').map_or("", |(_, r)| r.trim_start());
        }
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(s)) = (words.next(), words.next())
            && s == suite
        {
            return Some(uri.to_owned());
        }
    }
    None
}

fn from_deb822(text: &str, suite: &str) -> Option<String> {
    let mut stanza: Vec<(String, String)> = Vec::new();
    let mut found = None;
    let mut check = |stanza: &mut Vec<(String, String)>| {
        let get = |k: &str| {
            stanza
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let enabled = !get("Enabled").trim().eq_ignore_ascii_case("no");
        let deb = get("Types").split_whitespace().any(|t| t == "deb");
        let has_suite = get("Suites").split_whitespace().any(|s| s == suite);
        if found.is_none() && enabled && deb && has_suite {
            found = get("URIs").split_whitespace().next().map(str::to_owned);
        }
        stanza.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            check(&mut stanza);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = stanza.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            stanza.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    check(&mut stanza);
    found
}

// ---------------------------------------------------------------------------
// Building and caching

/// The stand-in kind node image in the stand-ins' store
/// (`localhost/kind-crio-standin/node:<version>-<recipe hash>`), built on
/// first use and cached: the first build (debootstrap) takes about a minute,
/// later calls a fraction of a second. Several test threads or processes may
/// call this at once: a lock file under [`crate::scratch_root`] makes one of
/// them build while the others wait, then find the image.
///
/// Use it with [`super::storage_args`] (or [`super::podman`],
/// [`super::buildah`], [`super::bud`]): it is not in the default store.
pub fn node_base_image() -> Result<String, String> {
    node_base_image_on(DEBIAN_SUITE)
}

/// [`node_base_image`] on another Debian release: [`DEBIAN_SUITE`] or
/// [`DEBIAN_SUITE_NEXT`] (from the same mirror).
pub fn node_base_image_on(suite: &'static str) -> Result<String, String> {
    node_image(NodeSpec::small(suite))
}

/// The stand-in node image `spec` describes, built on first use and cached
/// like [`node_base_image`].
pub fn node_image(spec: NodeSpec) -> Result<String, String> {
    let recipe = recipe(spec)?;
    let repository = spec.repository();
    let reference = format!("{repository}:{}", recipe_tag(&recipe));
    if image_exists(&reference) {
        return Ok(reference);
    }
    let cache = crate::scratch_root().join("standin-cache");
    std::fs::create_dir_all(&cache).map_err(|e| format!("create {}: {e}", cache.display()))?;
    // One lock for every suite: builds share the cache directory.
    let _lock = FileLock::acquire(&cache.join("node-image.lock"))?;
    if image_exists(&reference) {
        return Ok(reference);
    }
    let started = Instant::now();
    build(&recipe, &reference, &cache)?;
    let _ = writeln!(
        std::io::stderr(),
        "testkit: built the stand-in node image {reference} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    remove_older_images(&repository, &reference);
    Ok(reference)
}

fn image_exists(reference: &str) -> bool {
    podman()
        .args(["image", "exists", reference])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn build(recipe: &Recipe, reference: &str, cache: &Path) -> Result<(), String> {
    let mirror = debian_mirror()?;
    // Under the lock no other build runs: any root left here is from a
    // build that was killed.
    if let Ok(dir) = std::fs::read_dir(cache) {
        for entry in dir.flatten() {
            if entry.file_name().to_string_lossy().starts_with("rootfs-") {
                remove_rootfs(&entry.path());
            }
        }
    }
    let rootfs = cache.join(format!("rootfs-{}", std::process::id()));
    let result = (|| {
        debootstrap(recipe, &mirror, &rootfs, cache)?;
        write_entries(&rootfs, &recipe.entries)?;
        let containerd_bin = match recipe.spec.containerd {
            NodeContainerd::Debian => rootfs.join("usr/bin"),
            NodeContainerd::Two => {
                let dest = rootfs.join("usr/local/bin");
                for program in ["containerd", "ctr", "containerd-shim-runc-v2"] {
                    let from = crate::tools::containerd2_bin_dir().join(program);
                    std::fs::copy(&from, dest.join(program))
                        .map_err(|e| format!("copy {} into the node: {e}", from.display()))?;
                }
                dest
            }
        };
        run(Command::new("chroot")
            .arg(&rootfs)
            .args(["/bin/sh", "-c", recipe.setup]))?;
        super::preloaded::preload(
            &rootfs,
            &containerd_bin,
            &recipe.preloaded,
            &cache.join("preload-archives"),
        )?;
        import(&rootfs, reference, recipe.changes)?;
        check_imported(reference)
    })();
    remove_rootfs(&rootfs);
    if result.is_err() {
        remove_image(reference);
    }
    result
}

/// `debootstrap --variant=minbase --include=...` of the recipe's suite into
/// `rootfs`, or the same root unpacked from `cache`: node images that differ
/// only in what comes after (kind's files, the image set) share one
/// debootstrap run, which is most of a build's time.
fn debootstrap(recipe: &Recipe, mirror: &str, rootfs: &Path, cache: &Path) -> Result<(), String> {
    let include = format!("--include={}", recipe.include.join(","));
    let key = crate::sha256_hex(format!("{}\n{include}\n{mirror}", recipe.spec.suite).as_bytes());
    let tarball = cache.join(format!(
        "debootstrap-{}-{}.tar",
        recipe.spec.suite,
        &key[..12]
    ));
    if tarball.is_file() {
        std::fs::create_dir_all(rootfs).map_err(|e| format!("create {}: {e}", rootfs.display()))?;
        return run(Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .args(["--numeric-owner", "--xattrs", "-xf"])
            .arg(&tarball))
        .map(|_| ());
    }
    run(Command::new("debootstrap")
        .args(["--variant=minbase", &include, recipe.spec.suite])
        .arg(rootfs)
        .arg(mirror))
    .map_err(|e| {
        let log =
            std::fs::read_to_string(rootfs.join("debootstrap/debootstrap.log")).unwrap_or_default();
        format!("{e}\ndebootstrap.log (end):\n{}", super::tail(&log, 30))
    })?;
    // Written under the build lock, renamed into place only when complete.
    let partial = tarball.with_extension("partial");
    run(Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "--xattrs", "-cf"])
        .arg(&partial)
        .arg("."))?;
    std::fs::rename(&partial, &tarball)
        .map_err(|e| format!("rename {} to {}: {e}", partial.display(), tarball.display()))
}

/// Removes a debootstrap root, first unmounting whatever a killed
/// debootstrap left mounted in it (its `/proc` and `/sys`), so the removal
/// never reaches into a live file system.
fn remove_rootfs(rootfs: &Path) {
    let Ok(canonical) = std::fs::canonicalize(rootfs) else {
        return;
    };
    if crate::unmount_below(&canonical) {
        let _ = std::fs::remove_dir_all(&canonical);
    }
}

/// A bad image must not be cached: the imported file system has to hold what
/// was written (an import fed an empty stream still succeeds).
fn check_imported(reference: &str) -> Result<(), String> {
    let root = super::mount_image(reference)?;
    for path in [
        "kind/version",
        "usr/lib/systemd/systemd",
        "usr/bin/apt-get",
        "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
    ] {
        if !root.join(path).is_file() {
            return Err(format!(
                "the imported image {reference} has no /{path} (in {})",
                root.path().display()
            ));
        }
    }
    Ok(())
}

/// `tar -C ROOTFS -c . | podman import --change ... - REFERENCE`.
fn import(rootfs: &Path, reference: &str, changes: &[&str]) -> Result<(), String> {
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "--xattrs", "-c", "."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let tar_out = tar.stdout.take().ok_or("tar's stdout")?;
    let mut cmd = podman();
    cmd.arg("import");
    for change in changes {
        cmd.args(["--change", change]);
    }
    cmd.args(["-", reference]).stdin(tar_out);
    let imported = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", super::display_command(&cmd)));
    let tar_done = tar
        .wait_with_output()
        .map_err(|e| format!("tar -C {} -c .: {e}", rootfs.display()))?;
    // podman's failure first: tar then only dies of a broken pipe.
    let out = imported?;
    if !out.status.success() {
        return Err(format!(
            "tar -C {} -c . | {} failed ({}):\n{}",
            rootfs.display(),
            super::display_command(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if !tar_done.status.success() {
        return Err(format!(
            "tar -C {} -c . failed ({}):\n{}",
            rootfs.display(),
            tar_done.status,
            String::from_utf8_lossy(&tar_done.stderr)
        ));
    }
    Ok(())
}

/// Removes the images of earlier recipes in `repository` (a few hundred MB
/// each under vfs).
fn remove_older_images(repository: &str, current: &str) {
    let Ok(out) =
        run(podman().args(["images", "--format", "{{.Repository}}:{{.Tag}}", repository]))
    else {
        return;
    };
    for image in String::from_utf8_lossy(&out.stdout).lines() {
        if image.trim() != current && !image.trim().is_empty() {
            remove_image(image.trim());
        }
    }
}

/// An exclusive lock on a file, held by a `flock` child process for as long
/// as this value lives. (`File::lock` needs a newer Rust than the workspace's
/// minimum.) If this process dies, the pipe to the child closes and the lock
/// goes with it: no stale locks.
#[derive(Debug)]
pub(crate) struct FileLock {
    child: Child,
}

impl FileLock {
    pub(crate) fn acquire(path: &Path) -> Result<FileLock, String> {
        let mut child = Command::new("flock")
            .arg("--exclusive")
            .arg(path)
            .args(["sh", "-c", "echo locked; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run flock {}: {e}", path.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("flock's stdout")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("flock {}: {e}", path.display()))?;
        if line.trim() != "locked" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("flock --exclusive {} failed", path.display()));
        }
        Ok(FileLock { child })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_sources_give_the_suite_uri() {
        let list = "# comment\n\
                    deb-src http://src.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n\
                    deb http://other.example/debian bookworm-updates main\n";
        assert_eq!(
            mirror_from_sources(&[("sources.list", list)], "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            mirror_from_sources(&[("sources.list", list)], "trixie"),
            None
        );
    }

    #[test]
    fn deb822_sources_skip_disabled_and_other_suites() {
        let sources = "Types: deb\n\
                       URIs: http://off.example/debian\n\
                       Suites: bookworm\n\
                       Enabled: no\n\
                       \n\
                       Types: deb\n\
                       # http://snapshot.example/archive/debian/20250520T000000Z\n\
                       URIs: http://deb.example/debian\n\
                       Suites: bookworm bookworm-updates\n\
                       Components: main\n\
                       \n\
                       Types: deb\n\
                       URIs: http://deb.example/debian-security\n\
                       Suites: bookworm-security\n";
        assert_eq!(
            mirror_from_sources(&[("debian.sources", sources)], "bookworm").as_deref(),
            Some("http://deb.example/debian")
        );
        assert_eq!(
            mirror_from_sources(&[("debian.sources", sources)], "bookworm-security").as_deref(),
            Some("http://deb.example/debian-security")
        );
    }

    #[test]
    fn first_file_wins() {
        let a = "deb http://a.example/debian bookworm main\n";
        let b = "Types: deb\nURIs: http://b.example/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_from_sources(&[("x.sources", b), ("sources.list", a)], "bookworm").as_deref(),
            Some("http://b.example/debian")
        );
    }

    #[test]
    fn a_left_over_root_is_unmounted_before_removal() {
        let dir = crate::TempDir::new("a_left_over_root_is_unmounted_before_removal");
        let rootfs = dir.path().join("rootfs-1");
        let proc_dir = rootfs.join("proc");
        std::fs::create_dir_all(&proc_dir).expect("create");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "standin-test"])
            .arg(&proc_dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            // Not root: nothing can have been mounted there by debootstrap either.
            return;
        }
        std::fs::write(proc_dir.join("f"), "x").expect("write into the mount");
        let canonical = std::fs::canonicalize(&proc_dir).expect("canonical path");
        let mounted_at = |p: &Path| {
            std::fs::read_to_string("/proc/self/mounts")
                .expect("mounts")
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(&*p.to_string_lossy()))
        };
        assert!(mounted_at(&canonical));
        remove_rootfs(&rootfs);
        assert!(!rootfs.exists());
        assert!(!mounted_at(&canonical));
    }

    #[test]
    fn the_tag_follows_the_recipe() {
        let small = NodeSpec::small(DEBIAN_SUITE);
        let a = recipe(small).expect("recipe");
        let mut b = recipe(small).expect("recipe");
        assert_eq!(recipe_tag(&a), recipe_tag(&b));
        b.entries.push(Entry::dir("extra"));
        assert_ne!(recipe_tag(&a), recipe_tag(&b));
        assert!(recipe_tag(&a).starts_with("v1.34.0-"));
        let next = NodeSpec::small(DEBIAN_SUITE_NEXT);
        assert_ne!(recipe_tag(&a), recipe_tag(&recipe(next).expect("recipe")));
        let sized = NodeSpec {
            images: NodeImages::KindSized,
            ..small
        };
        assert_ne!(recipe_tag(&a), recipe_tag(&recipe(sized).expect("recipe")));
        assert_eq!(small.repository(), NODE_IMAGE_REPOSITORY);
        assert_eq!(next.repository(), "localhost/kind-crio-standin/node-trixie");
        let two = NodeSpec {
            containerd: NodeContainerd::Two,
            images: NodeImages::KindSized,
            ..next
        };
        assert_eq!(
            two.repository(),
            "localhost/kind-crio-standin/node-trixie-containerd2-kind-sized"
        );
    }
}
