//! `cargo xtask codegen [--check]`: the generated files committed to the
//! repository, so people without Rust can use them: `images/crio/` (the CRI-O
//! build context for the defaults) and `configs/kind-crio.yaml` (the kind
//! config for the defaults). `--check` fails when any is stale; CI runs it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::config::Config;
use crate::render::{ContextArgs, KindConfigArgs};

#[derive(Debug, clap::Args)]
pub struct CodegenArgs {
    /// Compare instead of writing; fail when a generated file is stale.
    #[arg(long)]
    pub check: bool,
}

/// Generated files under one directory (relative to the project root).
struct Tree {
    root: &'static str,
    files: BTreeMap<String, dockerfile::File>,
    /// The directory holds only generated files: others are stale leftovers.
    exclusive: bool,
}

/// Everything codegen owns, rendered from the embedded defaults. Pure.
fn generated() -> Result<Vec<Tree>> {
    // Always the embedded defaults: the committed files must not depend on a
    // developer's --config.
    let config = Config::load(None)?;
    let args = ContextArgs {
        arch: "amd64".to_owned(),
        ..ContextArgs::default()
    };
    let ctx = dockerfile::render(&args.inputs(&config)?);
    // Codegen renders from defaults only; it never reads a user's config.
    let kind_config =
        KindConfigArgs::default().render(|_| bail!("codegen does not read kind configs"))?;
    let config_file = dockerfile::File {
        contents: kind_config.into_bytes(),
        executable: false,
    };
    Ok(vec![
        Tree {
            root: "images/crio",
            files: ctx.files,
            exclusive: true,
        },
        Tree {
            root: "configs",
            files: BTreeMap::from([("kind-crio.yaml".to_owned(), config_file)]),
            exclusive: false,
        },
    ])
}

pub fn run(args: &CodegenArgs, root: &Path, dry_run: bool) -> Result<()> {
    let trees = generated()?;
    if args.check {
        let mut stale = Vec::new();
        for tree in &trees {
            stale.extend(compare(tree, &root.join(tree.root))?);
        }
        if !stale.is_empty() {
            bail!(
                "generated files are stale: {}\nrun `cargo xtask codegen` and commit the result",
                stale.join(", ")
            );
        }
        eprintln!("generated files are up to date");
        return Ok(());
    }
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
        let ctx = dockerfile::Context {
            files: tree.files.clone(),
        };
        dockerfile::write_context(&ctx, &dir)
            .with_context(|| format!("cannot write {}", dir.display()))?;
        eprintln!("wrote {} ({} files)", tree.root, tree.files.len());
    }
    Ok(())
}

/// The paths under `dir` that differ from `tree`: changed, missing, extra.
fn compare(tree: &Tree, dir: &Path) -> Result<Vec<String>> {
    let on_disk = if dir.exists() {
        dockerfile::read_context(dir).with_context(|| format!("cannot read {}", dir.display()))?
    } else {
        dockerfile::Context::default()
    };
    let mut stale = Vec::new();
    for (rel, want) in &tree.files {
        if on_disk.files.get(rel) != Some(want) {
            stale.push(format!("{}/{rel}", tree.root));
        }
    }
    for rel in on_disk.files.keys() {
        if tree.exclusive && !tree.files.contains_key(rel) {
            stale.push(format!("{}/{rel} (not generated)", tree.root));
        }
    }
    Ok(stale)
}
