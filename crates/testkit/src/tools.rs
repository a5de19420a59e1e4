//! The tools `.ci/sid-tools` installs into the project's own tool directory
//! (`target/tools`) from Debian sid, because Debian's stable release lacks
//! them: kind, kubectl, containerd 2.x and Docker's buildx plugin.
//!
//! They are found there first, then on `PATH`. A missing one fails the test
//! when `CI=true` and skips it loudly otherwise, like [`crate::tools_present`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where `.ci/sid-tools` installs: `target/tools` of this workspace.
pub fn tools_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools")
}

/// The directory of a sid tool, by the path `.ci/tools`' list gives it.
fn sid_dir(program: &str, up: usize) -> PathBuf {
    let mut path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(crate::tool_list::sid_path(program));
    for _ in 0..up {
        path.pop();
    }
    canonical(path)
}

/// `target/tools/bin`: kind and kubectl. Put it first in the `PATH` of
/// anything that runs them (another vendor's kubectl may be in /usr/bin).
pub fn bin_dir() -> PathBuf {
    sid_dir("kind", 1)
}

/// `target/tools/containerd-2/bin`: containerd, ctr and the runc shim 2.x,
/// kept out of [`bin_dir`] because other tests use the system's containerd.
pub fn containerd2_bin_dir() -> PathBuf {
    sid_dir("containerd-2", 1)
}

/// `target/tools/docker`: a Docker configuration directory whose
/// `cli-plugins/docker-buildx` gives an engine without the plugin BuildKit
/// (use it as `DOCKER_CONFIG`).
pub fn docker_config_dir() -> PathBuf {
    sid_dir("docker-buildx", 2)
}

fn canonical(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// `name` in [`bin_dir`], else on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let own = bin_dir().join(name);
    if own.is_file() {
        return Some(own);
    }
    crate::find_on_path(name)
}

/// Where each tool comes from, for the skip or failure message.
fn origin(name: &str) -> String {
    crate::tool_list::tool(name).map_or_else(
        || format!("{name} is not in .ci/tools: add it there"),
        |t| t.install(),
    )
}

/// The path of each tool (kind, kubectl; `containerd-2` for the containerd
/// 2.x directory, `docker-buildx` for the plugin), or None after a loud
/// skip; with `CI=true` a missing tool panics instead.
pub fn require(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    let mut found = Vec::new();
    for name in names {
        let path = match *name {
            "containerd-2" => Some(containerd2_bin_dir())
                .filter(|d| d.join("containerd").is_file() && d.join("ctr").is_file()),
            "docker-buildx" => {
                Some(docker_config_dir().join("cli-plugins/docker-buildx")).filter(|p| p.is_file())
            }
            _ => find_tool(name),
        };
        match path {
            Some(p) => found.push(p),
            None => {
                let how = origin(name);
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{name} not found: {how}");
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "\n==================== SKIPPED {test}: {name} not found ({how}) ===================="
                );
                return None;
            }
        }
    }
    Some(found)
}

/// A `PATH` value with `dirs` first, then [`bin_dir`], then this process's `PATH`.
pub fn path_with(dirs: &[&Path]) -> std::ffi::OsString {
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    all.push(bin_dir());
    if let Some(path) = std::env::var_os("PATH") {
        all.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(all).unwrap_or_default()
}
