//! A private containerd for tests: its own root (wherever the test wants the
//! content store and metadata), its own state directory and socket, never the
//! machine's `/run/containerd/containerd.sock`. Images go in as kind puts
//! them there: `ctr --namespace k8s.io images import ... -` from a stream.
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
}

/// A running containerd; see the module docs.
#[derive(Debug)]
pub struct Containerd {
    child: Option<Child>,
    state: PathBuf,
    address: PathBuf,
    bin_dir: Option<PathBuf>,
}

impl Containerd {
    /// Starts `containerd` (from `bin_dir`, else PATH) with its root at
    /// `root`. The state directory (socket, shims' state) is a short path in
    /// the temp directory: a unix socket path may not exceed 107 bytes.
    pub fn start(root: &Path, bin_dir: Option<&Path>) -> Result<Containerd, String> {
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
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt:?}\n",
            root = root.display().to_string(),
            state = state.display().to_string(),
            address = address.display().to_string(),
            opt = state.join("opt").display().to_string(),
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

    /// `ctr --address ADDRESS --namespace k8s.io`, the namespace kind uses.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new(tool(self.bin_dir.as_deref(), "ctr"));
        cmd.arg("--address")
            .arg(&self.address)
            .args(["--namespace", "k8s.io"]);
        cmd
    }

    /// Imports `image` as kind does: the archive on stdin, with the options
    /// of [`crate::oci::ImageSpec::import_args`].
    pub fn import(&self, image: &BuiltArchive) -> Result<(), String> {
        let archive = std::fs::File::open(&image.archive)
            .map_err(|e| format!("open {}: {e}", image.archive.display()))?;
        let mut cmd = self.ctr();
        cmd.args(["images", "import"])
            .args(image.spec.import_args())
            .arg("-");
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
        Ok(())
    }

    /// `ctr images ls`: every name with its target's media type and digest.
    pub fn list(&self) -> Result<Vec<Listed>, String> {
        let out = run(self.ctr().args(["images", "ls"]))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some(Listed {
                    reference: w.next()?.to_owned(),
                    media_type: w.next()?.to_owned(),
                    digest: w.next()?.to_owned(),
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

fn tool(bin_dir: Option<&Path>, name: &str) -> PathBuf {
    bin_dir.map_or_else(|| PathBuf::from(name), |d| d.join(name))
}
