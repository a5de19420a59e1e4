//! `cargo xtask codegen [--check]`: the generated files committed to the
//! repository, so people without Rust can use them: `images/crio/` (the CRI-O
//! build context for the defaults) and `configs/kind-crio.yaml` (the kind
//! config for the defaults). `--check` fails when any is stale; CI runs it.

use anyhow::{Context as _, Result};

use crate::ctx::Ctx;
use crate::generated::{check, compare, generated};
use crate::step::Plan;

#[derive(Debug, clap::Args)]
pub struct CodegenArgs {
    /// Compare instead of writing; fail when a generated file is stale.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &CodegenArgs, ctx: &Ctx) -> Result<()> {
    let root = ctx.sh.current_dir();
    if args.check {
        return check(&root);
    }
    let trees = generated()?;
    let mut plan = Plan::new();
    for tree in trees {
        let dir = root.join(tree.root);
        let stale = compare(&tree, &dir)?;
        let verb = if tree.exclusive {
            "Replacing"
        } else {
            "Writing"
        };
        plan.native(
            format!("{verb} {} ({} files)", tree.root, tree.files.len()),
            if stale.is_empty() {
                "all up to date".to_owned()
            } else {
                format!("changes {}", stale.join(", "))
            },
            move || {
                if tree.exclusive && dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot clear {}", dir.display()))?;
                }
                let context = node_image::Context { files: tree.files };
                node_image::write_context(&context, &dir)
                    .with_context(|| format!("cannot write {}", dir.display()))
            },
        );
    }
    ctx.carry_out(plan).map(drop)
}
