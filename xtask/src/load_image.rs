//! `cargo xtask load-image IMAGE... [--name NAME]`: the CRI-O counterpart of
//! `kind load docker-image`, which imports into containerd, where CRI-O
//! cannot see it. Saves the images from the engine once, copies the archive
//! into each node, and imports each image into CRI-O's storage with skopeo
//! (which the node image carries for its preload).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use registry::ImageRef;
use xshell::{Shell, cmd};

use crate::config::Engine;
use crate::step::Plan;
use crate::ui::Ui;

/// Inside the node, where the archive lands for the import.
const NODE_ARCHIVE: &str = "/tmp/kind-crio-load.tar";
/// CRI-O's store on the node, as CRI-O selects it (overlay on the /var volume).
const NODE_STORE: &str =
    "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]";

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Example:
  docker build -t my-app:dev . && cargo xtask load-image my-app:dev --name kind-crio
then use image my-app:dev with imagePullPolicy: IfNotPresent (or Never).")]
pub struct LoadImageArgs {
    /// Images in the local engine, e.g. my-app:dev.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,

    /// The kind cluster.
    #[arg(long, default_value = "kind-crio")]
    pub name: String,
}

/// The plan for `nodes` (resolved by the caller with `kind get nodes`).
pub fn plan<'a>(
    sh: &'a Shell,
    images: &'a [ImageRef],
    nodes: &'a [String],
    engine: Engine,
) -> Plan<'a> {
    let archive = PathBuf::from("target/kind-crio/load-image.tar");
    let e = engine.to_string();
    let refs: Vec<String> = images.iter().map(ToString::to_string).collect();
    let mut plan = Plan::new();
    {
        let archive = archive.clone();
        plan.native(
            "Preparing the archive directory",
            format!(
                "mkdir -p {}",
                archive
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            move || {
                if let Some(dir) = archive.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Ok(())
            },
        );
    }
    plan.cmd(format!("Saving {}", refs.join(", ")), {
        let all = &refs;
        cmd!(sh, "{e} save -o {archive} {all...}")
    });
    for node in nodes {
        let mut cmds = vec![cmd!(sh, "{e} cp {archive} {node}:{NODE_ARCHIVE}")];
        // The node's policy admits only the preload's own layout; this archive
        // is the user's, saved from their engine a moment ago, so no signature
        // policy applies.
        for r in &refs {
            let source = format!("docker-archive:{NODE_ARCHIVE}:{r}");
            let dest = format!("{NODE_STORE}{r}");
            cmds.push(cmd!(
                sh,
                "{e} exec {node} skopeo copy --quiet --insecure-policy {source} {dest}"
            ));
        }
        cmds.push(cmd!(sh, "{e} exec {node} rm -f {NODE_ARCHIVE}"));
        plan.cmds(format!("Loading into {node}"), cmds);
    }
    plan.always();
    plan.native(
        "Removing the archive",
        format!("rm -f {}", archive.display()),
        move || match std::fs::remove_file(&archive) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        },
    );
    plan
}

pub fn run(args: &LoadImageArgs, engine: Engine, ui: &Ui, dry_run: bool) -> Result<()> {
    let sh = crate::project_shell()?;
    let images = args
        .images
        .iter()
        .map(|i| ImageRef::parse(i).with_context(|| format!("image {i:?}")))
        .collect::<Result<Vec<_>>>()?;
    let name = args.name.as_str();
    let provider = engine.to_string();
    let nodes = crate::e2e::nodes(&sh, name, &provider)?;
    if nodes.is_empty() {
        bail!(
            "cluster {name} has no nodes: create it first (cargo xtask e2e --retain, or kind create cluster)"
        );
    }
    let plan = plan(&sh, &images, &nodes, engine);
    if dry_run {
        print!("{}", plan.render());
        return Ok(());
    }
    plan.execute(ui)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect_file;

    #[test]
    fn plan_loads_every_image_into_every_node() {
        let sh = Shell::new().unwrap();
        let images = vec![
            ImageRef::parse("my-app:dev").unwrap(),
            ImageRef::parse("127.0.0.1:5000/tools/debug:1").unwrap(),
        ];
        let nodes = vec![
            "kind-crio-control-plane".to_owned(),
            "kind-crio-worker".to_owned(),
        ];
        expect_file!["../tests/golden/load-image.txt"]
            .assert_eq(&plan(&sh, &images, &nodes, Engine::Docker).render());
    }
}
