//! The shell every command runs its programs from, and how a read-only
//! lookup outside any plan step shows what it runs.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use xshell::{Cmd, Shell};

use crate::ui::Ui;

/// A shell whose current directory is the workspace root, wherever cargo was run from.
pub fn project_shell() -> Result<Shell> {
    let sh = Shell::new().context("cannot create a shell")?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .context("xtask has no parent directory")?;
    // Our own directory too, so printed commands need no `cd`.
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot change to the project root {}", root.display()))?;
    sh.change_dir(root);
    Ok(sh)
}

/// The command `make` builds, for a read-only lookup that runs outside any
/// plan step (build-image's and load-image's resolution): with `-v` it is
/// first shown as a `$ COMMAND` line under the current step, as a plan's
/// steps show theirs. `make` is called twice then: once to print, once to run.
pub fn shown<'a>(ui: &Ui, make: impl Fn() -> Cmd<'a>) -> Cmd<'a> {
    if ui.verbose {
        let line = crate::step::shell_line(&std::process::Command::from(make()), &[]);
        ui.detail(&format!("$ {line}"));
    }
    make()
}
