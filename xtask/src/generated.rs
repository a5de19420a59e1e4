//! The files kind-crio generates and commits, so people without Rust can use
//! them: `images/crio/` (the CRI-O build context for the defaults) and
//! `configs/kind-crio.yaml` (the kind config for the defaults), rendered from
//! the embedded defaults; and whether the committed ones are stale.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use cluster_config::GenerateOptions;
use node_image::Arch;

use crate::config::Config;
use crate::flags::CrioSourceArgs;
use crate::inputs::{self, ContextChoice};

/// Generated files under one directory (relative to the project root).
pub struct Tree {
    pub root: &'static str,
    pub files: BTreeMap<String, node_image::File>,
    /// The directory holds only generated files: others are stale leftovers.
    pub exclusive: bool,
}

/// Everything codegen owns, rendered from the embedded defaults. Pure.
pub fn generated() -> Result<Vec<Tree>> {
    // Always the embedded defaults: the committed files must not depend on a
    // developer's --config.
    let config = Config::load(None)?;
    let source = CrioSourceArgs::default();
    let ctx = node_image::render(&inputs::context(
        &config,
        ContextChoice {
            kubernetes: None,
            crio: None,
            base_image: None,
            arch: Arch::Amd64,
            source: &source,
        },
    )?);
    let kind_config = inputs::generated_kind_config(&GenerateOptions {
        control_planes: 1,
        workers: 1,
        name: None,
        image: None,
        kube_proxy_mode: None,
    })?;
    let config_file = node_image::File {
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

/// The paths under `dir` that differ from `tree`: changed, missing, extra.
pub fn compare(tree: &Tree, dir: &Path) -> Result<Vec<String>> {
    let on_disk = if dir.exists() {
        node_image::read_context(dir).with_context(|| format!("cannot read {}", dir.display()))?
    } else {
        node_image::Context::default()
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

/// Fails when a committed generated file is stale, naming each.
pub fn check(root: &Path) -> Result<()> {
    let mut stale = Vec::new();
    for tree in &generated()? {
        stale.extend(compare(tree, &root.join(tree.root))?);
    }
    if !stale.is_empty() {
        bail!(
            "generated files are stale: {}\nrun `cargo xtask codegen` and commit the result",
            stale.join(", ")
        );
    }
    eprintln!("generated files are up to date");
    Ok(())
}
