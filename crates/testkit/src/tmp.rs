//! Temporary directories under `target/testkit` that unmount what is
//! mounted in them and remove themselves.

use super::*;

/// Where test scratch directories go: `target/testkit` of this workspace
/// (on the same disk as the build, not a small tmpfs).
pub fn scratch_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/testkit")
}

/// A fresh directory under [`scratch_root`], removed on
/// drop unless the test is failing (then it is kept for inspection).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(test: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = scratch_root().join(format!("{test}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    /// Unmounts what is mounted inside (an overlay store's own bind mount of
    /// its `overlay` directory outlives the tool that made it), always; then
    /// removes the directory, unless the test failed (it is kept to look at).
    fn drop(&mut self) {
        let clear = std::fs::canonicalize(&self.0).is_ok_and(|d| unmount_below(&d));
        if clear && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Unmounts (lazily, deepest first) every mount point at or below `dir`, a
/// canonical path; whether none is left.
pub fn unmount_below(dir: &Path) -> bool {
    let below = |mounts: &str| -> Vec<String> {
        let mut v: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| Path::new(m).starts_with(dir))
            .map(str::to_owned)
            .collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.len()));
        v
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for mount in below(&mounts) {
        let _ = std::process::Command::new("umount")
            .args(["--lazy", &mount])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    below(&std::fs::read_to_string("/proc/self/mounts").unwrap_or_default()).is_empty()
}

pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// A YAML single-quoted scalar.
pub(crate) fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
