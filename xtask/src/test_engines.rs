//! Real container engines for the unit tests: podman on a store of the
//! test's own, and the Docker engine where one answers.

use std::path::{Path, PathBuf};

use testkit::TempDir;
use xshell::{Shell, cmd};

/// podman pointed at a private vfs store, with a one-file root file system
/// tarball at hand for `import`.
pub struct Podman {
    pub sh: Shell,
    pub tarball: PathBuf,
    _dir: TempDir,
}

/// `None` (after saying so) where podman or tar is missing; under CI that
/// fails the test instead.
pub fn podman(test: &str) -> Option<Podman> {
    if !testkit::tools_present(test, &["podman", "tar"]) {
        return None;
    }
    let dir = TempDir::new(test);
    let sh = Shell::new().expect("a shell");
    sh.set_var(
        "CONTAINERS_STORAGE_CONF",
        testkit::private_podman_storage(dir.path()),
    );
    let tarball = testkit::tiny_rootfs_tarball(dir.path());
    Some(Podman {
        sh,
        tarball,
        _dir: dir,
    })
}

/// Imports the tarball as `engine`'s image `name`.
pub fn import(sh: &Shell, engine: &str, tarball: &PathBuf, name: &str) {
    cmd!(sh, "{engine} import {tarball} {name}")
        .quiet()
        .ignore_stdout()
        .run()
        .expect("import the tiny image");
}

/// Whether a Docker engine answers here; if none does, says that `what`
/// was skipped (the podman half of the same test still runs).
pub fn docker_answers(sh: &Shell, what: &str) -> bool {
    let version = "{{.ServerVersion}}";
    let up = cmd!(sh, "docker info --format {version}")
        .quiet()
        .ignore_stderr()
        .ignore_status()
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        eprintln!("SKIPPED {what}: no Docker engine answers here");
    }
    up
}

/// A root file system tarball holding this machine's `tools` (found on
/// PATH) with the libraries they link, and `files` (path, contents): enough
/// of a kind node for the commands a test runs in it with `docker exec`.
pub fn host_tools_rootfs(
    sh: &Shell,
    dir: &Path,
    tools: &[&str],
    files: &[(&str, &str)],
) -> PathBuf {
    let root = dir.join("host-tools-rootfs");
    for sub in ["bin", "tmp", "var/tmp", "run", "etc"] {
        std::fs::create_dir_all(root.join(sub)).expect("create the root file system");
    }
    for tool in tools {
        let path = testkit::find_on_path(tool).unwrap_or_else(|| panic!("{tool} is not on PATH"));
        std::fs::copy(&path, root.join("bin").join(tool)).expect("copy a tool");
        let libs = cmd!(sh, "ldd {path}").quiet().read().expect("ldd");
        for lib in libs.split_whitespace().filter(|w| w.starts_with('/')) {
            let to = root.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().expect("a parent")).expect("create a directory");
            std::fs::copy(lib, &to).expect("copy a library");
        }
    }
    for (path, contents) in files {
        let to = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("create a directory");
        std::fs::write(&to, contents).expect("write a file");
    }
    let tarball = dir.join("host-tools-rootfs.tar");
    cmd!(sh, "tar -C {root} -cf {tarball} .")
        .quiet()
        .run()
        .expect("tar the root file system");
    tarball
}
