//! The shell every command runs its programs from.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use xshell::Shell;

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
