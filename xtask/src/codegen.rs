//! `cargo xtask codegen [--check]`: the generated files committed to the
//! repository, so people without Rust can use them: `images/crio/` (the CRI-O
//! build context for the defaults) and `configs/kind-crio.yaml` (the kind
//! config for the defaults). `--check` fails when any is stale; CI runs it.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::generated::{check, compare, generated};

#[derive(Debug, clap::Args)]
pub struct CodegenArgs {
    /// Compare instead of writing; fail when a generated file is stale.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &CodegenArgs, root: &Path, dry_run: bool) -> Result<()> {
    if args.check {
        return check(root);
    }
    let trees = generated()?;
    if dry_run {
        // What would be written, and which files that changes; nothing is.
        for (n, tree) in trees.iter().enumerate() {
            let stale = compare(tree, &root.join(tree.root))?;
            let verb = if tree.exclusive {
                "Replacing"
            } else {
                "Writing"
            };
            println!(
                "{}. {verb} {} ({} files; {})",
                n + 1,
                tree.root,
                tree.files.len(),
                if stale.is_empty() {
                    "all up to date".to_owned()
                } else {
                    format!("changes {}", stale.join(", "))
                }
            );
        }
        return Ok(());
    }
    for tree in &trees {
        let dir = root.join(tree.root);
        if tree.exclusive && dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        let ctx = node_image::Context {
            files: tree.files.clone(),
        };
        node_image::write_context(&ctx, &dir)
            .with_context(|| format!("cannot write {}", dir.display()))?;
        eprintln!("wrote {} ({} files)", tree.root, tree.files.len());
    }
    Ok(())
}
