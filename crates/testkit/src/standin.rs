//! Stand-ins for what a real CRI-O node image build needs from the internet,
//! made on this machine from Debian packages so builds can be proven for real
//! without Docker Hub, kind or Kubernetes downloads:
//!
//! - [`node_base_image`]: a Debian bookworm image (debootstrap; or trixie, as
//!   kind's base from v0.32, with [`node_base_image_on`]) laid out like a
//!   kind node image: systemd, a real containerd (Debian's) with kind's files
//!   and images preloaded kind's way ([`preloaded_images`]), stand-in
//!   binaries, `/kind/version`; built once and cached in a containers-storage
//!   store of its own ([`storage_args`]);
//! - [`crio_bundle`]: a `cri-o.<arch>.<version>.tar.gz` with its `.sha256sum`,
//!   in the layout of CRI-O's static bundles, with an `install` script that
//!   behaves like upstream's (bash-isms included);
//! - [`CrioAptRepo`]: a signed flat apt repository holding a `cri-o` .deb laid
//!   out like the real package, served over HTTP on 127.0.0.1.
//!
//! Every program inside is a small shell script that answers `--version` (and,
//! for `kubeadm`, `config images list`) and refuses everything else: nothing
//! here runs containers or clusters.
//!
//! Images are built with `buildah bud --isolation chroot`, no daemon needed.
//! With chroot isolation a `RUN` step shares the host's network namespace, so
//! it reaches servers on the host's 127.0.0.1 (the default OCI isolation gives
//! the step a network namespace of its own, where 127.0.0.1 is the step itself;
//! `--network host` fixes that too). [`bud`] passes both flags.
//!
//! Where this runs inside a container (as on the project's machines),
//! `podman run` fails (runc cannot set the rlimits podman asks for), while
//! `buildah bud` runs `RUN` steps fine: read an image's files with
//! [`mount_image`], run commands in it with a build.

mod apt;
mod bundle;
mod node;
mod preloaded;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub use apt::{APT_REPO_TOOLS, CrioAptRepo, Signing};
pub use bundle::{BUNDLE_TOOLS, CNI_PLUGINS, CrioBundle, crio_bundle};
pub(crate) use node::FileLock;
pub use node::{
    DEBIAN_SUITE, DEBIAN_SUITE_NEXT, KIND_NODE_VERSION, MIRROR_ENV, NODE_IMAGE_REPOSITORY,
    NODE_TOOLS, NodeContainerd, NodeImages, NodeSpec, debian_mirror, mirror_from_sources,
    node_base_image, node_base_image_on, node_image,
};
pub use preloaded::{kind_sized_images, preloaded_images, whiteout_image};

/// Where the stand-ins' containers-storage lives: a store of their own under
/// [`crate::scratch_root`], so the images survive between test runs (until
/// `cargo clean`) and never touch the machine's default store.
pub fn storage_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = crate::scratch_root().join("containers/storage");
        let _ = std::fs::create_dir_all(&root);
        std::fs::canonicalize(&root).unwrap_or(root)
    })
    .clone()
}

/// The run root (locks, mount state) that goes with [`storage_root`]. podman
/// refuses a run root longer than 50 characters, so it cannot sit beside the
/// store: it goes in `/run` (or the temp directory), named after a hash of
/// the store's path so two checkouts never share one.
pub fn storage_runroot() -> PathBuf {
    static RUNROOT: OnceLock<PathBuf> = OnceLock::new();
    RUNROOT
        .get_or_init(|| {
            let hash = crate::sha256_hex(storage_root().as_os_str().as_encoded_bytes());
            let name = format!("kind-crio-standin-{}", &hash[..8]);
            let run = Path::new("/run").join(&name);
            if std::fs::create_dir_all(&run).is_ok() {
                return run;
            }
            std::env::temp_dir().join(name)
        })
        .clone()
}

/// The global options that point `podman` and `buildah` at the stand-ins'
/// store with the `vfs` driver (overlay cannot be used here: the machine's
/// own root may itself be an overlay or a container).
pub fn storage_args() -> Vec<String> {
    vec![
        "--storage-driver".to_owned(),
        "vfs".to_owned(),
        "--root".to_owned(),
        storage_root().display().to_string(),
        "--runroot".to_owned(),
        storage_runroot().display().to_string(),
    ]
}

/// The same store as a skopeo/containers-image transport reference:
/// `containers-storage:[vfs@ROOT+RUNROOT]reference`.
pub fn containers_storage_ref(reference: &str) -> String {
    format!(
        "containers-storage:[vfs@{}+{}]{reference}",
        storage_root().display(),
        storage_runroot().display()
    )
}

/// `podman` with [`storage_args`].
pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(storage_args());
    cmd
}

/// `buildah` with [`storage_args`].
pub fn buildah() -> Command {
    let mut cmd = Command::new("buildah");
    cmd.args(storage_args());
    cmd
}

/// An image built by [`bud`] in the stand-ins' store; removed on drop.
#[derive(Debug)]
pub struct BuiltImage {
    reference: String,
    log: String,
}

impl BuiltImage {
    /// `localhost/<name>:<tag>` as buildah stored it.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// What the build printed (stdout and stderr).
    pub fn log(&self) -> &str {
        &self.log
    }

    /// The image's root file system, read-only by convention (see [`mount_image`]).
    pub fn mount(&self) -> Result<MountedImage, String> {
        mount_image(&self.reference)
    }
}

impl Drop for BuiltImage {
    fn drop(&mut self) {
        remove_image(&self.reference);
    }
}

/// `buildah bud --isolation chroot --network host --force-rm --format docker
/// -t TAG [ARGS] CONTEXT` in the stand-ins' store. `--force-rm` because a
/// failed build otherwise leaves its working container (a full copy of the
/// base image under vfs) behind; `--format docker` because in buildah's
/// default OCI format `SHELL` is ignored (with only a warning), unlike in
/// `docker build` (a later `--format` in `args` wins).
/// On failure the error holds the command and everything it printed.
pub fn bud(context: &Path, tag: &str, args: &[&str]) -> Result<BuiltImage, String> {
    let mut cmd = buildah();
    cmd.args([
        "bud",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--force-rm",
        "--layers=false",
        "--format",
        "docker",
        "-t",
        tag,
    ])
    .args(args)
    .arg(context);
    let out = output(&mut cmd)?;
    let log = combined(&out);
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{log}",
            display_command(&cmd),
            out.status
        ));
    }
    let reference = if tag.contains('/') {
        tag.to_owned()
    } else {
        format!("localhost/{tag}")
    };
    let reference = if reference
        .rsplit('/')
        .next()
        .is_some_and(|n| n.contains(':'))
    {
        reference
    } else {
        format!("{reference}:latest")
    };
    Ok(BuiltImage { reference, log })
}

/// Removes an image from the stand-ins' store, ignoring errors (already gone,
/// or still used by another build's container).
pub fn remove_image(reference: &str) {
    let _ = podman()
        .args(["rmi", "--force", reference])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// An image's root file system from `podman image mount`; unmounted on drop.
/// With the vfs driver this is the top layer's directory, a full copy of the
/// file system: read it, do not write to it (that would change the image).
#[derive(Debug)]
pub struct MountedImage {
    reference: String,
    path: PathBuf,
}

impl MountedImage {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path` inside the image (leading `/` allowed).
    pub fn join(&self, path: &str) -> PathBuf {
        self.path.join(path.trim_start_matches('/'))
    }
}

impl Drop for MountedImage {
    fn drop(&mut self) {
        let _ = podman()
            .args(["image", "unmount", &self.reference])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Mounts `reference` (an image in the stand-ins' store) with `podman image mount`.
pub fn mount_image(reference: &str) -> Result<MountedImage, String> {
    let out = run(podman().args(["image", "mount", reference]))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if path.is_empty() {
        return Err(format!("podman image mount {reference} printed no path"));
    }
    Ok(MountedImage {
        reference: reference.to_owned(),
        path: PathBuf::from(path),
    })
}

// ---------------------------------------------------------------------------
// Commands

/// A command as it could be pasted into a shell: program and arguments, each
/// quoted when needed, and the environment it sets.
pub(crate) fn display_command(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            let _ = write!(
                s,
                "{}={} ",
                k.to_string_lossy(),
                shell_quote(&v.to_string_lossy())
            );
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        s = format!("(cd {} && {s}", shell_quote(&dir.to_string_lossy()));
    }
    s.push_str(&shell_quote(&cmd.get_program().to_string_lossy()));
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&shell_quote(&arg.to_string_lossy()));
    }
    if cmd.get_current_dir().is_some() {
        s.push(')');
    }
    s
}

/// Single-quotes `s` for a POSIX shell unless it is plainly safe.
pub(crate) fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn combined(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// Runs `cmd` (stdin closed) and returns its output whatever its exit status;
/// Err only when it cannot be started.
fn output(cmd: &mut Command) -> Result<Output, String> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", display_command(cmd)))
}

/// Runs `cmd` to success; the error names the command (pasteable) and holds
/// its stderr (and stdout, where tools print their errors there).
pub(crate) fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = output(cmd)?;
    if out.status.success() {
        return Ok(out);
    }
    Err(format!(
        "{} failed ({}):\n{}",
        display_command(cmd),
        out.status,
        tail(&combined(&out), 60)
    ))
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut s = all[start..].join("\n");
    if start > 0 {
        s = format!("[... {start} lines before]\n{s}");
    }
    s
}

// ---------------------------------------------------------------------------
// Files of a stand-in tree

/// One entry of a file tree to write: the recipes are lists of these, so the
/// node image's cache key can be a hash of exactly what gets written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    File {
        path: String,
        mode: u32,
        content: String,
    },
    Dir {
        path: String,
    },
}

impl Entry {
    pub(crate) fn file(path: &str, mode: u32, content: impl Into<String>) -> Entry {
        Entry::File {
            path: path.to_owned(),
            mode,
            content: content.into(),
        }
    }

    pub(crate) fn dir(path: &str) -> Entry {
        Entry::Dir {
            path: path.to_owned(),
        }
    }
}

/// Writes `entries` under `root` (paths are relative to it; a leading `/` is
/// ignored). Existing files and links are replaced.
pub(crate) fn write_entries(root: &Path, entries: &[Entry]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let ctx = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    for entry in entries {
        match entry {
            Entry::File {
                path,
                mode,
                content,
            } => {
                let p = root.join(path.trim_start_matches('/'));
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| ctx("create", parent, e))?;
                }
                let _ = std::fs::remove_file(&p);
                std::fs::write(&p, content).map_err(|e| ctx("write", &p, e))?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
                    .map_err(|e| ctx("chmod", &p, e))?;
            }
            Entry::Dir { path } => {
                let p = root.join(path.trim_start_matches('/'));
                std::fs::create_dir_all(&p).map_err(|e| ctx("create", &p, e))?;
            }
        }
    }
    Ok(())
}

/// A stand-in program: a POSIX shell script that prints `version` (one or
/// more lines) for any of `version_args` as its first argument and refuses
/// everything else, saying it is a stand-in.
pub(crate) fn stub(name: &str, version_args: &[&str], version: &str) -> String {
    let mut s = format!(
        "#!/bin/sh\n\
         # Stand-in for {name}: answers version queries only.\n\
         case \"${{1:-}}\" in\n"
    );
    let _ = writeln!(s, "{})", version_args.join("|"));
    s.push_str("    cat <<'EOF'\n");
    s.push_str(version.trim_end());
    s.push_str("\nEOF\n    exit 0\n    ;;\nesac\n");
    let _ = writeln!(
        s,
        "echo \"{name}: stand-in for tests, cannot run: $*\" >&2\nexit 1"
    );
    s
}

/// `v1.34.0` or `1.34.0` → (1, 34, 0); None unless three dot-separated numbers
/// (a pre-release suffix after the patch number is ignored).
pub(crate) fn parse_version(version: &str) -> Option<(u32, u32, u32)> {
    let v = version.strip_prefix('v').unwrap_or(version);
    let v = v.split(['-', '+']).next()?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, String> {
    let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    Ok(crate::sha256_hex(&data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("a/b-c.d"), "a/b-c.d");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn commands_display_as_pasteable_lines() {
        let mut cmd = Command::new("tar");
        cmd.args(["-C", "a dir", "-c", "."]).env("X", "1 2");
        assert_eq!(display_command(&cmd), "X='1 2' tar -C 'a dir' -c .");
    }

    #[test]
    fn versions_parse_with_or_without_v() {
        assert_eq!(parse_version("v1.34.0"), Some((1, 34, 0)));
        assert_eq!(parse_version("1.34.2"), Some((1, 34, 2)));
        assert_eq!(parse_version("v1.35.0-rc.1"), Some((1, 35, 0)));
        assert_eq!(parse_version("1.34"), None);
        assert_eq!(parse_version("main"), None);
    }

    #[test]
    fn stubs_answer_versions_only() {
        let s = stub("crio", &["--version", "version"], "crio version 1.34.0");
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("--version|version)"));
        assert!(s.contains("crio version 1.34.0\nEOF"));
    }
}
