//! A stand-in for CRI-O's static bundle, `cri-o.<arch>.<version>.tar.gz`, in
//! the layout the bundles built by cri-o/packaging have had since mid-2024
//! (runtimes and conmon under `/usr/libexec/crio`, `10-crio.conf`, the bridge
//! CNI config shipped `.disabled`, `crio-credential-provider` since late 2025):
//!
//! ```text
//! cri-o/bin/{crio,pinns,conmon,conmonrs,crun,runc,crictl,crio-credential-provider}
//! cri-o/cni-plugins/{bridge,host-local,loopback,portmap,ptp,...,LICENSE,README.md}
//! cri-o/completions/{bash/crio,fish/crio.fish,zsh/_crio}
//! cri-o/contrib/{10-crio-bridge.conflist.disabled,crio.service,policy.json,registries.conf}
//! cri-o/etc/{10-crio.conf,crictl.yaml,crio-umount.conf,crio}
//! cri-o/man/{crio.8,crio.conf.5,crio.conf.d.5}
//! cri-o/{install,Makefile,README.md,LICENSE}
//! ```
//!
//! The `install` script is written here, modelled on upstream's behaviour,
//! including its traps: its first line is `#/usr/bin/env sh` (a comment, not
//! a shebang) and it uses bash's `source` and `[[`, so `bash ./install` works
//! while `sh ./install` (dash on Debian, and `RUN ./install` in a Dockerfile)
//! stops at `source: not found`. It also edits the unpacked bundle's
//! `etc/crio` on Debian and writes a list of what it installed to
//! `~/.crio-install`.
//!
//! The .deb of [`super::CrioAptRepo`] is laid out from the same files, the
//! way cri-o/packaging's spec file maps the bundle onto `/usr`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Entry, run, sha256_file, stub, write_entries};

/// Tools [`crio_bundle`] runs (the `install` script inside also needs bash
/// and coreutils' `install`).
pub const BUNDLE_TOOLS: &[&str] = &["tar", "gzip", "bash"];

/// What `cni-plugins-linux-<arch>-v1.9.1.tgz` unpacks to, as the bundle
/// carries it; `install` copies all of it (README and LICENSE too) to
/// `/opt/cni/bin`.
pub const CNI_PLUGINS: &[&str] = &[
    "LICENSE",
    "README.md",
    "bandwidth",
    "bridge",
    "dhcp",
    "dummy",
    "firewall",
    "host-device",
    "host-local",
    "ipvlan",
    "loopback",
    "macvlan",
    "portmap",
    "ptp",
    "sbr",
    "static",
    "tap",
    "tuning",
    "vlan",
    "vrf",
];

/// Writes `dir/cri-o.<arch>.<version>.tar.gz` and
/// `dir/cri-o.<arch>.<version>.tar.gz.sha256sum` (`<hex>  <file name>`, as
/// `sha256sum` prints it) and returns the tarball's path. `version` is the
/// name upstream gives the archive: a tag like `v1.34.0` (or a commit).
/// Panics with the failing command and its output.
pub fn crio_bundle(dir: &Path, arch: &str, version: &str) -> PathBuf {
    write_bundle(dir, arch, version).unwrap_or_else(|e| panic!("stand-in CRI-O bundle: {e}"))
}

/// The stand-in bundle's file names and checksum, for tests that check both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrioBundle {
    pub tarball: PathBuf,
    pub sha256sum: PathBuf,
    pub sha256: String,
}

impl CrioBundle {
    /// The files [`crio_bundle`] wrote for `tarball`.
    pub fn read(tarball: &Path) -> Result<CrioBundle, String> {
        let mut name = tarball.as_os_str().to_owned();
        name.push(".sha256sum");
        Ok(CrioBundle {
            tarball: tarball.to_owned(),
            sha256sum: PathBuf::from(name),
            sha256: sha256_file(tarball)?,
        })
    }
}

fn write_bundle(dir: &Path, arch: &str, version: &str) -> Result<PathBuf, String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!("cri-o.{arch}.{version}.tar.gz");
    let tarball = dir.join(&name);
    let staging = dir.join(format!(
        ".staging-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        write_entries(&staging.join("cri-o"), &bundle_entries(arch, version))?;
        // Owner root and a fixed date: the same inputs give the same bytes.
        run(Command::new("tar")
            .arg("-C")
            .arg(&staging)
            .args([
                "--sort=name",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--mtime=@0",
                "-cf",
            ])
            .arg(dir.join(format!("{name}.tar")))
            .arg("cri-o"))?;
        run(Command::new("gzip")
            .args(["-n", "-f"])
            .arg(dir.join(format!("{name}.tar"))))?;
        std::fs::rename(dir.join(format!("{name}.tar.gz")), &tarball)
            .map_err(|e| format!("rename to {}: {e}", tarball.display()))?;
        let hex = sha256_file(&tarball)?;
        let sum = dir.join(format!("{name}.sha256sum"));
        std::fs::write(&sum, format!("{hex}  {name}\n"))
            .map_err(|e| format!("write {}: {e}", sum.display()))?;
        Ok(tarball.clone())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// CRI-O's own version for a bundle or package version: `v1.34.0` → `1.34.0`.
pub(crate) fn crio_version(version: &str) -> &str {
    version.strip_prefix('v').unwrap_or(version)
}

/// The stand-in `crio`: answers version queries; run with no arguments, as
/// `crio.service` runs it, it does what a node can see of CRI-O's start: it
/// opens CRI-O's containers-storage (a read through skopeo, where the node
/// has it, takes the store's locks as CRI-O's own start does), tells systemd
/// it is ready, and stays up, serving nothing.
fn crio_stub(crio: &str) -> String {
    format!(
        r#"#!/bin/sh
# Stand-in for crio: answers version queries; as the daemon (no arguments)
# it opens the store, says it is ready and stays up, serving nothing.
case "${{1:-}}" in
--version|-v|version)
    cat <<'EOF'
crio version {crio}
Version:        {crio}
GitTreeState:   clean
Compiler:       gc
Linkmode:       static
EOF
    exit 0
    ;;
"")
    if command -v skopeo >/dev/null 2>&1; then
        skopeo inspect --raw "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]localhost/kind-crio-standin/none:0" >/dev/null 2>&1 || true
    fi
    systemd-notify --ready
    echo "crio: stand-in for tests: ready, serving nothing"
    exec sleep infinity
    ;;
esac
echo "crio: stand-in for tests, cannot run: $*" >&2
exit 1
"#
    )
}

/// The programs a bundle carries, by file name, with their stand-in scripts.
pub(crate) fn programs(version: &str) -> Vec<(&'static str, String)> {
    let crio = crio_version(version);
    vec![
        ("crio", crio_stub(crio)),
        (
            "pinns",
            stub(
                "pinns",
                &["--version", "-v"],
                &format!("pinns version {crio}"),
            ),
        ),
        (
            "conmon",
            stub("conmon", &["--version"], "conmon version 2.2.1"),
        ),
        (
            "conmonrs",
            stub("conmonrs", &["--version", "-v"], "conmonrs 0.8.0"),
        ),
        (
            "crun",
            stub(
                "crun",
                &["--version"],
                "crun version 1.26\nspec: 1.0.0\n+SYSTEMD +SELINUX +APPARMOR +CAP +SECCOMP",
            ),
        ),
        (
            "runc",
            stub(
                "runc",
                &["--version", "-v", "version"],
                "runc version 1.4.2\nspec: 1.2.1",
            ),
        ),
        (
            "crictl",
            stub("crictl", &["--version", "-v"], "crictl version v1.36.0"),
        ),
        (
            "crio-credential-provider",
            stub(
                "crio-credential-provider",
                &["--version", "version"],
                "crio-credential-provider v0.1.2",
            ),
        ),
    ]
}

fn cni_plugin(name: &str) -> (u32, String) {
    match name {
        "LICENSE" => (0o644, "Apache License 2.0 (stand-in text)\n".to_owned()),
        "README.md" => (
            0o644,
            "# CNI plugins (stand-ins)\n\nShell scripts named like the reference plugins.\n"
                .to_owned(),
        ),
        _ => (
            0o755,
            stub(
                name,
                &["--version", "version"],
                &format!(
                    "CNI {name} plugin v1.9.1\n\
                     CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"
                ),
            ),
        ),
    }
}

/// The unit, with the directory of `crio` and the environment file for this
/// install (the bundle: `/usr/local/bin`, `/etc/sysconfig/crio`; the .deb:
/// `/usr/bin`, `/etc/default/crio`).
pub(crate) fn crio_service(bindir: &str, env_file: &str) -> String {
    format!(
        "[Unit]\n\
         Description=Container Runtime Interface for OCI (CRI-O)\n\
         Documentation=https://github.com/cri-o/cri-o\n\
         Wants=network-online.target\n\
         Before=kubelet.service\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=notify\n\
         # Stand-in only: the stand-in crio is a shell script, whose readiness\n\
         # comes from a child process (systemd-notify), not the main one.\n\
         NotifyAccess=all\n\
         EnvironmentFile=-{env_file}\n\
         Environment=GOTRACEBACK=crash\n\
         ExecStart={bindir}/crio \\\n          \
         $CRIO_CONFIG_OPTIONS \\\n          \
         $CRIO_RUNTIME_OPTIONS \\\n          \
         $CRIO_STORAGE_OPTIONS \\\n          \
         $CRIO_NETWORK_OPTIONS \\\n          \
         $CRIO_METRICS_OPTIONS\n\
         ExecReload=/bin/kill -s HUP $MAINPID\n\
         TasksMax=infinity\n\
         LimitNOFILE=1048576\n\
         LimitNPROC=1048576\n\
         LimitCORE=infinity\n\
         OOMScoreAdjust=-999\n\
         TimeoutStartSec=0\n\
         Restart=on-failure\n\
         RestartSec=10\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n\
         Alias=cri-o.service\n"
    )
}

/// `10-crio.conf` as packaged: crun by default, runtimes and conmon under
/// `/usr/libexec/crio`, the signature policy in `/etc/crio`.
pub(crate) const CRIO_DROPIN: &str = r#"# Packaged defaults (stand-in). Later files in crio.conf.d override these.
[crio.image]
signature_policy = "/etc/crio/policy.json"

[crio.runtime]
default_runtime = "crun"

[crio.runtime.runtimes.crun]
runtime_path = "/usr/libexec/crio/crun"
runtime_root = "/run/crun"
monitor_path = "/usr/libexec/crio/conmon"
allowed_annotations = [
    "io.containers.trace-syscall",
]

[crio.runtime.runtimes.runc]
runtime_path = "/usr/libexec/crio/runc"
runtime_root = "/run/runc"
monitor_path = "/usr/libexec/crio/conmon"
"#;

/// CRI-O's `crictl.yaml` (the socket is quoted there, unlike kind's file).
pub(crate) const CRICTL_YAML: &str =
    "runtime-endpoint: \"unix:///var/run/crio/crio.sock\"\ntimeout: 0\ndebug: false\n";

pub(crate) const POLICY_JSON: &str =
    "{ \"default\": [{ \"type\": \"insecureAcceptAnything\" }] }\n";

/// The search registries as the bundles and packages built before October
/// 2025 list them, CRI-O v1.34.0's among them (cri-o/packaging then dropped
/// quay.io): with two candidates for every short name, CRI-O 1.34's
/// enforcing short-name mode refuses `nginx` as ambiguous.
pub(crate) const REGISTRIES_CONF: &str =
    "unqualified-search-registries = [\"docker.io\", \"quay.io\"]\n";

pub(crate) const CRIO_UMOUNT_CONF: &str = "\
# Mount points oci-umount removes from containers (stand-in).
/var/lib/containers/storage/*
/run/containers/storage/*
/var/lib/docker/overlay2/*
";

/// The environment file of `crio.service`; the first line names where it
/// lives, which the install script and the package rewrite on Debian.
pub(crate) const SYSCONFIG_CRIO: &str = "\
# /etc/sysconfig/crio

# use \"--enable-metrics\" and \"--metrics-port value\"
#CRIO_METRICS_OPTIONS=\"--enable-metrics\"

#CRIO_NETWORK_OPTIONS=
#CRIO_STORAGE_OPTIONS=
";

pub(crate) const BRIDGE_CONFLIST: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "crio",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "routes": [{ "dst": "0.0.0.0/0" }, { "dst": "::/0" }],
        "ranges": [[{ "subnet": "10.85.0.0/16" }], [{ "subnet": "1100:200::/24" }]]
      }
    }
  ]
}
"#;

/// Man pages and completions: (path in the bundle, content).
pub(crate) fn docs() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "man/crio.8",
            ".TH CRIO 8 \"stand-in\"\n.SH NAME\ncrio \\- OCI Kubernetes Container Runtime daemon\n",
        ),
        (
            "man/crio.conf.5",
            ".TH CRIO.CONF 5 \"stand-in\"\n.SH NAME\ncrio.conf \\- CRI-O configuration file\n",
        ),
        (
            "man/crio.conf.d.5",
            ".TH CRIO.CONF.D 5 \"stand-in\"\n.SH NAME\ncrio.conf.d \\- CRI-O configuration drop-ins\n",
        ),
        (
            "completions/bash/crio",
            "# bash completion for crio (stand-in)\ncomplete -W 'config version' crio\n",
        ),
        (
            "completions/fish/crio.fish",
            "# fish completion for crio (stand-in)\ncomplete -c crio -a 'config version'\n",
        ),
        (
            "completions/zsh/_crio",
            "#compdef crio\n# zsh completion for crio (stand-in)\n_arguments '1: :(config version)'\n",
        ),
    ]
}

/// Everything under the bundle's top-level `cri-o/` directory.
fn bundle_entries(arch: &str, version: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (name, script) in programs(version) {
        entries.push(Entry::file(&format!("bin/{name}"), 0o755, script));
    }
    for name in CNI_PLUGINS {
        let (mode, content) = cni_plugin(name);
        entries.push(Entry::file(&format!("cni-plugins/{name}"), mode, content));
    }
    for (path, content) in docs() {
        entries.push(Entry::file(path, 0o644, content));
    }
    entries.extend([
        Entry::file(
            "contrib/10-crio-bridge.conflist.disabled",
            0o644,
            BRIDGE_CONFLIST,
        ),
        Entry::file(
            "contrib/crio.service",
            0o644,
            crio_service("/usr/local/bin", "/etc/sysconfig/crio"),
        ),
        Entry::file("contrib/policy.json", 0o644, POLICY_JSON),
        Entry::file("contrib/registries.conf", 0o644, REGISTRIES_CONF),
        Entry::file("etc/10-crio.conf", 0o644, CRIO_DROPIN),
        Entry::file("etc/crictl.yaml", 0o644, CRICTL_YAML),
        Entry::file("etc/crio-umount.conf", 0o644, CRIO_UMOUNT_CONF),
        Entry::file("etc/crio", 0o644, SYSCONFIG_CRIO),
        Entry::file("install", 0o755, install_script(arch)),
        Entry::file("Makefile", 0o644, "all:\n\t./install\n"),
        Entry::file(
            "README.md",
            0o644,
            format!(
                "# CRI-O {} static bundle for {arch} (stand-in for tests)\n\n\
                 Run `bash ./install` as root; `DESTDIR` and `PREFIX` move the target.\n",
                crio_version(version)
            ),
        ),
        Entry::file("LICENSE", 0o644, "Apache License 2.0 (stand-in text)\n"),
    ]);
    entries
}

/// The bundle's `install`, modelled on upstream's behaviour (see the module
/// doc for the bash dependency it keeps on purpose).
fn install_script(arch: &str) -> String {
    r#"#/usr/bin/env sh
# Installs this CRI-O bundle (stand-in for tests; behaves like upstream's).
# Needs bash: it sources /etc/os-release and tests with [[ ]].
set -ex

# Where things go; each can be overridden from the environment.
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
ETCDIR=${ETCDIR:-/etc}
LIBEXECDIR=${LIBEXECDIR:-/usr/libexec}
LIBEXEC_CRIO_DIR=${LIBEXEC_CRIO_DIR:-$LIBEXECDIR/crio}
ETC_CRIO_DIR=${ETC_CRIO_DIR:-$ETCDIR/crio}
CONTAINERS_DIR=${CONTAINERS_DIR:-$ETCDIR/containers}
CONTAINERS_REGISTRIES_CONFD_DIR=${CONTAINERS_REGISTRIES_CONFD_DIR:-$CONTAINERS_DIR/registries.conf.d}
CNIDIR=${CNIDIR:-$ETCDIR/cni/net.d}
OPT_CNI_BIN_DIR=${OPT_CNI_BIN_DIR:-/opt/cni/bin}
BINDIR=${BINDIR:-$PREFIX/bin}
MANDIR=${MANDIR:-$PREFIX/share/man}
OCIDIR=${OCIDIR:-$PREFIX/share/oci-umount/oci-umount.d}
BASHINSTALLDIR=${BASHINSTALLDIR:-$PREFIX/share/bash-completion/completions}
FISHINSTALLDIR=${FISHINSTALLDIR:-$PREFIX/share/fish/completions}
ZSHINSTALLDIR=${ZSHINSTALLDIR:-$PREFIX/share/zsh/site-functions}
ARCH=${ARCH:-__ARCH__}

# Debian keeps service environment files in /etc/default, others in /etc/sysconfig.
if dpkg -l >/dev/null 2>&1; then
    SYSCONFIGDIR=${SYSCONFIGDIR:-$ETCDIR/default}
    sed -i "s;sysconfig/crio;default/crio;g" etc/crio
else
    SYSCONFIGDIR=${SYSCONFIGDIR:-$ETCDIR/sysconfig}
fi

# Units go to /etc/systemd/system on CoreOS-like systems, else under PREFIX.
source /etc/os-release
if [[ "${ID}" == "rhcos" ]] || { [[ "${ID}" == "fedora" ]] && [[ "${VARIANT_ID:-}" == "coreos" ]]; }; then
    SYSTEMDDIR=${SYSTEMDDIR:-/etc/systemd/system}
else
    SYSTEMDDIR=${SYSTEMDDIR:-$PREFIX/lib/systemd/system}
fi

# put MODE DIR FILE...: install files into $DESTDIR/DIR, creating it.
put() {
    mode=$1
    dir=$2
    shift 2
    install -D -m "$mode" -t "$DESTDIR$dir" "$@"
}

install -d -m 755 "$DESTDIR$CNIDIR" "$DESTDIR$LIBEXEC_CRIO_DIR" \
    "$DESTDIR$BASHINSTALLDIR" "$DESTDIR$FISHINSTALLDIR" "$DESTDIR$ZSHINSTALLDIR" \
    "$DESTDIR$CONTAINERS_REGISTRIES_CONFD_DIR"
put 755 "$OPT_CNI_BIN_DIR" cni-plugins/*
put 644 "$CNIDIR" contrib/10-crio-bridge.conflist.disabled
put 755 "$LIBEXEC_CRIO_DIR" bin/conmon bin/conmonrs bin/crun bin/runc bin/crio-credential-provider
put 755 "$BINDIR" bin/crio bin/pinns bin/crictl
put 644 "$ETCDIR" etc/crictl.yaml
put 644 "$OCIDIR" etc/crio-umount.conf
put 644 "$SYSCONFIGDIR" etc/crio
put 644 "$ETC_CRIO_DIR" contrib/policy.json
put 644 "$ETC_CRIO_DIR/crio.conf.d" etc/10-crio.conf
put 644 "$MANDIR/man5" man/crio.conf.5 man/crio.conf.d.5
put 644 "$MANDIR/man8" man/crio.8
put 644 "$BASHINSTALLDIR" completions/bash/crio
put 644 "$FISHINSTALLDIR" completions/fish/crio.fish
put 644 "$ZSHINSTALLDIR" completions/zsh/_crio
put 644 "$SYSTEMDDIR" contrib/crio.service
put 644 "$CONTAINERS_REGISTRIES_CONFD_DIR" contrib/registries.conf

# The drop-in names packaged paths; point them at this install (DESTDIR included).
conf="$DESTDIR$ETC_CRIO_DIR/crio.conf.d/10-crio.conf"
sed -i "s;/usr/bin;$DESTDIR$BINDIR;g" "$conf"
sed -i "s;/usr/libexec;$DESTDIR$LIBEXECDIR;g" "$conf"
sed -i "s;/etc/crio;$DESTDIR$ETC_CRIO_DIR;g" "$conf"

# What was installed, for removing it later.
cat >~/.crio-install <<EOF
$DESTDIR$OPT_CNI_BIN_DIR/*
$DESTDIR$CNIDIR/10-crio-bridge.conflist.disabled
$DESTDIR$LIBEXEC_CRIO_DIR/conmon
$DESTDIR$LIBEXEC_CRIO_DIR/conmonrs
$DESTDIR$LIBEXEC_CRIO_DIR/crun
$DESTDIR$LIBEXEC_CRIO_DIR/runc
$DESTDIR$LIBEXEC_CRIO_DIR/crio-credential-provider
$DESTDIR$BINDIR/crio
$DESTDIR$BINDIR/pinns
$DESTDIR$BINDIR/crictl
$DESTDIR$ETCDIR/crictl.yaml
$DESTDIR$OCIDIR/crio-umount.conf
$DESTDIR$SYSCONFIGDIR/crio
$DESTDIR$ETC_CRIO_DIR/policy.json
$DESTDIR$ETC_CRIO_DIR/crio.conf.d/10-crio.conf
$DESTDIR$MANDIR/man5/crio.conf.5
$DESTDIR$MANDIR/man5/crio.conf.d.5
$DESTDIR$MANDIR/man8/crio.8
$DESTDIR$BASHINSTALLDIR/crio
$DESTDIR$FISHINSTALLDIR/crio.fish
$DESTDIR$ZSHINSTALLDIR/_crio
$DESTDIR$SYSTEMDDIR/crio.service
$DESTDIR$CONTAINERS_REGISTRIES_CONFD_DIR/registries.conf
EOF
"#
    .replace("__ARCH__", arch)
}

/// The .deb's file tree (without `DEBIAN/`), mapped from the bundle's files
/// the way cri-o/packaging's spec does for Debian: programs in `/usr/bin` and
/// `/usr/libexec/crio`, the unit in `/usr/lib/systemd/system` reading
/// `/etc/default/crio`, the registries file as `registries.conf.d/crio.conf`.
pub(crate) fn deb_entries(version: &str) -> Vec<Entry> {
    let mut entries = vec![Entry::dir("var/lib/crio")];
    for (name, script) in programs(version) {
        let path = match name {
            "crio" | "pinns" => format!("usr/bin/{name}"),
            "crictl" => continue,
            _ => format!("usr/libexec/crio/{name}"),
        };
        entries.push(Entry::file(&path, 0o755, script));
    }
    for (path, content) in docs() {
        let target = match path.rsplit_once('/') {
            Some(("completions/bash", f)) => format!("usr/share/bash-completion/completions/{f}"),
            Some(("completions/fish", f)) => format!("usr/share/fish/completions/{f}"),
            Some(("completions/zsh", f)) => format!("usr/share/zsh/site-functions/{f}"),
            Some(("man", f)) => {
                let section = f.rsplit('.').next().unwrap_or("8");
                format!("usr/share/man/man{section}/{f}")
            }
            _ => continue,
        };
        entries.push(Entry::file(&target, 0o644, content));
    }
    entries.extend([
        Entry::file(
            "etc/containers/registries.conf.d/crio.conf",
            0o644,
            REGISTRIES_CONF,
        ),
        Entry::file("etc/crictl.yaml", 0o644, CRICTL_YAML),
        Entry::file("etc/crio/crio.conf.d/10-crio.conf", 0o644, CRIO_DROPIN),
        Entry::file("etc/crio/policy.json", 0o644, POLICY_JSON),
        Entry::file(
            "usr/share/oci-umount/oci-umount.d/crio-umount.conf",
            0o644,
            CRIO_UMOUNT_CONF,
        ),
        Entry::file(
            "etc/cni/net.d/10-crio-bridge.conflist.disabled",
            0o644,
            BRIDGE_CONFLIST,
        ),
        Entry::file(
            "etc/default/crio",
            0o644,
            SYSCONFIG_CRIO.replace("/etc/sysconfig/crio", "/etc/default/crio"),
        ),
        Entry::file(
            "usr/lib/systemd/system/crio.service",
            0o644,
            crio_service("/usr/bin", "/etc/default/crio"),
        ),
    ]);
    entries
}

/// The package's conffiles (`%config(noreplace)` in the spec).
pub(crate) const DEB_CONFFILES: &[&str] = &[
    "/etc/containers/registries.conf.d/crio.conf",
    "/etc/crictl.yaml",
    "/etc/default/crio",
    "/etc/cni/net.d/10-crio-bridge.conflist.disabled",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deb_has_no_file_twice_and_no_crictl() {
        let entries = deb_entries("1.34.0");
        let mut paths: Vec<String> = entries
            .iter()
            .map(|e| match e {
                Entry::File { path, .. } | Entry::Dir { path } => path.clone(),
            })
            .collect();
        let n = paths.len();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), n);
        assert!(
            paths
                .iter()
                .all(|p| !p.contains("crictl") || p == "etc/crictl.yaml")
        );
        assert!(paths.contains(&"usr/share/man/man5/crio.conf.5".to_owned()));
    }
}
