//! Real container engines for the unit tests: podman on a store of the
//! test's own, and the Docker engine where one answers.

use std::path::PathBuf;

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
