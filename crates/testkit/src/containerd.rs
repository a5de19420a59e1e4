//! A private containerd for tests: its own root (wherever the test wants the
//! content store and metadata), its own state directory and socket, never the
//! machine's `/run/containerd/containerd.sock`. Images go in as kind puts
//! them there: `ctr --namespace k8s.io images import ... -` from a stream,
//! then `ctr images tag` for the names kind adds after loading.
//!
//! [`Containerd::start`] gives a bare configuration;
//! [`Containerd::start_with_kind_config`] adds the plugin sections of kind's
//! base image (`/etc/containerd/config.toml`, version 2 format, which
//! containerd 2.x migrates when it loads it), as kind's build runs it.
//!
//! Stopped with SIGTERM (so its database is closed cleanly) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::oci::BuiltArchive;
use crate::standin::{display_command, run};

/// Tools a [`Containerd`] runs (the Debian package `containerd` ships both).
pub const CONTAINERD_TOOLS: &[&str] = &["containerd", "ctr"];

/// One image as `ctr images ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub reference: String,
    pub media_type: String,
    pub digest: String,
    /// The last column: `KEY=VALUE` pairs joined by commas, or `-`.
    pub labels: String,
}

/// kind's base image configuration (`images/base/files/etc/containerd/config.toml`
/// in kind, as of kind v0.33: the same keys and values, comments trimmed),
/// as the stand-in node carries it.
pub const KIND_BASE_CONFIG: &str = r#"# containerd configuration of kind's base image (stand-in copy)
version = 2

[proxy_plugins]
[proxy_plugins."fuse-overlayfs"]
  type = "snapshot"
  address = "/run/containerd-fuse-overlayfs.sock"

[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = false
"#;

/// The plugin sections of [`KIND_BASE_CONFIG`] for a private instance whose
/// state directory is `state`: the paths kind's file names outside
/// containerd's root point into it instead. The base runtime spec does not
/// exist there, so the CRI plugins do not load (they would also want an NRI
/// socket and a CNI directory outside the instance's own directories). What
/// `ctr` writes into the metadata when it loads images does not depend on them.
fn kind_sections(state: &Path) -> String {
    let state = state.display().to_string();
    let sections = KIND_BASE_CONFIG
        .find("[proxy_plugins]")
        .map_or(KIND_BASE_CONFIG, |at| &KIND_BASE_CONFIG[at..]);
    sections
        .replace(
            "/run/containerd-fuse-overlayfs.sock",
            &format!("{state}/containerd-fuse-overlayfs.sock"),
        )
        .replace(
            "/etc/containerd/cri-base.json",
            &format!("{state}/cri-base.json"),
        )
}

/// The label kind's `LoadCommand` gives every image it loads (kind v0.21+).
pub const PINNED_LABEL: &str = "io.cri-containerd.pinned=pinned";

/// A running containerd; see the module docs.
#[derive(Debug)]
pub struct Containerd {
    child: Option<Child>,
    state: PathBuf,
    address: PathBuf,
    bin_dir: Option<PathBuf>,
    version: (u32, u32),
}

impl Containerd {
    /// Starts `containerd` (from `bin_dir`, else PATH) with its root at
    /// `root`. The state directory (socket, shims' state) is a short path in
    /// the temp directory: a unix socket path may not exceed 107 bytes.
    pub fn start(root: &Path, bin_dir: Option<&Path>) -> Result<Containerd, String> {
        Self::start_with(root, bin_dir, false)
    }

    /// [`Containerd::start`] with the plugin sections of [`KIND_BASE_CONFIG`]
    /// added to the configuration.
    pub fn start_with_kind_config(
        root: &Path,
        bin_dir: Option<&Path>,
    ) -> Result<Containerd, String> {
        Self::start_with(root, bin_dir, true)
    }

    fn start_with(root: &Path, bin_dir: Option<&Path>, kind: bool) -> Result<Containerd, String> {
        let version = version(&tool(bin_dir, "containerd"))?;
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let state =
            std::env::temp_dir().join(format!("kind-crio-containerd-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state)
            .and_then(|()| std::fs::create_dir_all(root))
            .map_err(|e| format!("create {} and {}: {e}", state.display(), root.display()))?;
        let address = state.join("containerd.sock");
        // Everything that would otherwise land outside `root` goes to `state`.
        let config = format!(
            "version = 2\nroot = {root:?}\nstate = {state:?}\n\n[grpc]\n  address = {address:?}\n\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt:?}\n\n{more}",
            root = root.display().to_string(),
            state = state.display().to_string(),
            address = address.display().to_string(),
            opt = state.join("opt").display().to_string(),
            more = if kind {
                kind_sections(&state)
            } else {
                String::new()
            },
        );
        let config_path = state.join("config.toml");
        std::fs::write(&config_path, config)
            .map_err(|e| format!("write {}: {e}", config_path.display()))?;
        let log_path = state.join("containerd.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("create {}: {e}", log_path.display()))?;
        let mut cmd = Command::new(tool(bin_dir, "containerd"));
        cmd.arg("--config").arg(&config_path);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", display_command(&cmd)))?;
        let mut me = Containerd {
            child: Some(child),
            state,
            address,
            bin_dir: bin_dir.map(Path::to_path_buf),
            version,
        };
        let started = Instant::now();
        while !me.address.exists() {
            let exited = me.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > Duration::from_secs(30) {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "{} did not serve {} ({}):\n{log}",
                    display_command(&cmd),
                    me.address.display(),
                    exited.map_or("30 s passed".to_owned(), |s| s.to_string())
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }

    pub fn address(&self) -> &Path {
        &self.address
    }

    /// containerd's (major, minor) version, from `containerd --version`.
    pub fn version(&self) -> (u32, u32) {
        self.version
    }

    /// The directory containerd and ctr run from (None: PATH).
    pub fn bin_dir(&self) -> Option<&Path> {
        self.bin_dir.as_deref()
    }

    /// `ctr --address ADDRESS --namespace k8s.io`, the namespace kind uses.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new(tool(self.bin_dir.as_deref(), "ctr"));
        cmd.arg("--address")
            .arg(&self.address)
            .args(["--namespace", "k8s.io"]);
        cmd
    }

    /// Imports `image` as kind does: the archive on stdin, with the options
    /// of [`crate::oci::ImageSpec::import_args`] and, where ctr has it (1.7
    /// and later) and kind would load the image from an archive, kind's
    /// [`PINNED_LABEL`]; then the tags of
    /// [`crate::oci::ImageSpec::tags_after_import`].
    pub fn import(&self, image: &BuiltArchive) -> Result<(), String> {
        let archive = std::fs::File::open(&image.archive)
            .map_err(|e| format!("open {}: {e}", image.archive.display()))?;
        let mut cmd = self.ctr();
        cmd.args(["images", "import"]);
        if image.spec.pinned_on_import() && self.version >= (1, 7) {
            cmd.arg(format!("--label={PINNED_LABEL}"));
        }
        cmd.args(image.spec.import_args()).arg("-");
        let out = cmd
            .stdin(archive)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", display_command(&cmd)))?;
        if !out.status.success() {
            return Err(format!(
                "{} < {} failed ({}):\n{}{}",
                display_command(&cmd),
                image.archive.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for (from, to) in image.spec.tags_after_import() {
            run(self.ctr().args(["images", "tag", "--force", from, to]))?;
        }
        Ok(())
    }

    /// `ctr images ls`: every name with its target's media type and digest.
    pub fn list(&self) -> Result<Vec<Listed>, String> {
        let out = run(self.ctr().args(["images", "ls"]))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| {
                // REF TYPE DIGEST SIZE PLATFORMS LABELS; SIZE has a space.
                let mut w = l.split_whitespace();
                Some(Listed {
                    reference: w.next()?.to_owned(),
                    media_type: w.next()?.to_owned(),
                    digest: w.next()?.to_owned(),
                    labels: w.next_back()?.to_owned(),
                })
            })
            .collect())
    }

    /// Stops containerd (SIGTERM, then SIGKILL after 10 s) and waits for it.
    pub fn stop(mut self) -> Result<(), String> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return Err("containerd ignored SIGTERM for 10 s and was killed".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.state);
        Ok(())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// (major, minor) of `containerd --version`: `containerd
/// github.com/containerd/containerd/v2 2.1.9+unknown` gives (2, 1).
fn version(containerd: &Path) -> Result<(u32, u32), String> {
    let out = run(Command::new(containerd).arg("--version"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| {
        format!(
            "{} --version printed no version: {text}",
            containerd.display()
        )
    })
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let v = text.split_whitespace().nth(2)?;
    let v = v.strip_prefix('v').unwrap_or(v);
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn tool(bin_dir: Option<&Path>, name: &str) -> PathBuf {
    bin_dir.map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_of_debian_and_upstream_builds() {
        assert_eq!(
            parse_version(
                "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n"
            ),
            Some((1, 6))
        );
        assert_eq!(
            parse_version("containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"),
            Some((2, 1))
        );
        assert_eq!(
            parse_version("containerd github.com/containerd/containerd/v2 v2.3.1 abcdef\n"),
            Some((2, 3))
        );
        assert_eq!(parse_version("containerd\n"), None);
    }
}
