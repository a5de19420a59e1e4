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

/// Inside the node, where image N's archive lands for the import.
const NODE_ARCHIVE_DIR: &str = "/tmp";
/// CRI-O's store on the node, as CRI-O selects it (overlay on the /var volume).
const NODE_STORE: &str =
    "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]";
/// Where the archives are saved, one per image, relative to the project root.
const ARCHIVE_DIR: &str = "target/kind-crio/load-image";

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Each image is loaded under the name the engine gives it: my-app:dev built by docker is
docker.io/library/my-app:dev, which CRI-O finds for my-app:dev; built by podman it is
localhost/my-app:dev, the name to use in the pod.

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

/// Of the names the engine lists for the image the user typed as `typed`,
/// the one to load it under: the same reference once normalised (docker lists
/// `my-app:dev` for docker.io/library/my-app:dev), else the one that ends
/// with what was typed (podman stores `my-app:dev` as localhost/my-app:dev),
/// else the first. Pure.
pub fn pick_name(typed: &str, tags: &[String]) -> Result<ImageRef> {
    let parsed: Vec<ImageRef> = tags
        .iter()
        .filter_map(|t| ImageRef::parse(t).ok())
        .collect();
    // As the engines read it: no tag means :latest.
    let last = typed.rsplit('/').next().unwrap_or_default();
    let tagged = if typed.contains('@') || last.contains(':') {
        typed.to_owned()
    } else {
        format!("{typed}:latest")
    };
    let wanted = ImageRef::parse(&tagged).ok();
    parsed
        .iter()
        .find(|t| Some(*t) == wanted.as_ref())
        .or_else(|| {
            parsed
                .iter()
                .find(|t| t.to_string().ends_with(&format!("/{tagged}")))
        })
        .or_else(|| parsed.first())
        .cloned()
        .with_context(|| {
            format!(
                "{typed} has no name in the engine (an untagged image?): tag it, then load the tag"
            )
        })
}

/// The names the engine has for `typed` (`ENGINE image inspect`).
fn engine_names(sh: &Shell, engine: &str, typed: &str) -> Result<Vec<String>> {
    let format = "{{json .RepoTags}}";
    let out = cmd!(sh, "{engine} image inspect --format {format} {typed}")
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("cannot run {engine}: is it installed?"))?;
    if !out.status.success() {
        bail!(
            "{engine} has no image {typed}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let tags: Option<Vec<String>> = serde_json::from_str(text.trim())
        .with_context(|| format!("{engine} image inspect printed {text:?}"))?;
    Ok(tags.unwrap_or_default())
}

/// The images' names as the engine has them, in the order given.
pub fn resolve(sh: &Shell, engine: Engine, typed: &[String]) -> Result<Vec<ImageRef>> {
    let e = engine.to_string();
    typed
        .iter()
        .map(|t| pick_name(t, &engine_names(sh, &e, t)?))
        .collect()
}

/// The plan for `nodes` (the cluster's control planes and workers): each
/// image saved to an archive of its own (a `save` of several images makes
/// podman tag the first with every name), copied into each node and
/// imported into CRI-O's storage there.
pub fn plan<'a>(
    sh: &'a Shell,
    images: &'a [ImageRef],
    nodes: &'a [String],
    engine: Engine,
) -> Plan<'a> {
    let dir = PathBuf::from(ARCHIVE_DIR);
    let e = engine.to_string();
    let archives: Vec<(String, PathBuf, String)> = images
        .iter()
        .enumerate()
        .map(|(n, image)| {
            (
                image.to_string(),
                dir.join(format!("{n}.tar")),
                format!("{NODE_ARCHIVE_DIR}/kind-crio-load-{n}.tar"),
            )
        })
        .collect();
    let mut plan = Plan::new();
    {
        let dir = dir.clone();
        plan.native(
            "Preparing the archive directory",
            format!("mkdir -p {}", dir.display()),
            move || Ok(std::fs::create_dir_all(&dir)?),
        );
    }
    plan.cmds(
        format!(
            "Saving {}",
            archives
                .iter()
                .map(|(r, _, _)| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        archives
            .iter()
            .map(|(image, archive, _)| cmd!(sh, "{e} save -o {archive} {image}"))
            .collect(),
    );
    for node in nodes {
        let mut cmds = Vec::new();
        for (image, archive, in_node) in &archives {
            // The node's policy admits only the preload's own layout; this
            // archive is the user's, saved from their engine a moment ago,
            // so no signature policy applies.
            let source = format!("docker-archive:{in_node}");
            let dest = format!("{NODE_STORE}{image}");
            cmds.push(cmd!(sh, "{e} cp {archive} {node}:{in_node}"));
            cmds.push(cmd!(
                sh,
                "{e} exec {node} skopeo copy --quiet --insecure-policy {source} {dest}"
            ));
            cmds.push(cmd!(sh, "{e} exec {node} rm -f {in_node}"));
        }
        plan.cmds(format!("Loading into {node}"), cmds);
    }
    plan.always();
    plan.native(
        "Removing the archives",
        format!("rm -rf {}", dir.display()),
        move || match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        },
    );
    plan
}

pub fn run(args: &LoadImageArgs, engine: Engine, ui: &Ui, dry_run: bool) -> Result<()> {
    let sh = crate::project_shell()?;
    let images = ui.step("Resolving the images' names", || {
        resolve(&sh, engine, &args.images)
    })?;
    let name = args.name.as_str();
    let nodes = crate::e2e::nodes(&sh, name, &engine.to_string())?;
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

    #[test]
    fn names_are_the_engines() {
        let tags = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let name = |typed: &str, t: &[&str]| pick_name(typed, &tags(t)).unwrap().to_string();
        // docker lists familiar names.
        assert_eq!(
            name("my-app:dev", &["my-app:dev", "my-app:v2"]),
            "docker.io/library/my-app:dev"
        );
        assert_eq!(
            name("my-app:v2", &["my-app:dev", "my-app:v2"]),
            "docker.io/library/my-app:v2"
        );
        // podman qualifies short names with localhost/.
        assert_eq!(
            name("my-app:dev", &["localhost/my-app:dev"]),
            "localhost/my-app:dev"
        );
        assert_eq!(
            name("my-app", &["localhost/my-app:latest"]),
            "localhost/my-app:latest"
        );
        // A name found another way (an image ID): its first name.
        assert_eq!(
            name("0123abcd", &["quay.io/x/y:1", "quay.io/x/y:2"]),
            "quay.io/x/y:1"
        );
        let err = pick_name("0123abcd", &[]).unwrap_err().to_string();
        assert!(err.contains("untagged"), "{err}");
    }

    /// The names real engines give: podman always, docker where one answers.
    #[test]
    fn resolves_names_with_real_engines() {
        use crate::test_engines::{docker_answers, import, podman};
        let test = "resolves_names_with_real_engines";
        let Some(podman) = podman(test) else {
            return;
        };
        let (sh, tarball) = (&podman.sh, &podman.tarball);
        import(sh, "podman", tarball, "my-app:dev");
        let typed = ["my-app:dev".to_owned()];
        assert_eq!(
            resolve(sh, Engine::Podman, &typed).unwrap()[0].to_string(),
            "localhost/my-app:dev"
        );
        let missing = resolve(sh, Engine::Podman, &["not-there:1".to_owned()]).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("podman has no image not-there:1"),
            "{missing:#}"
        );

        if !docker_answers(sh, &format!("the docker half of {test}")) {
            return;
        }
        let image = format!("kind-crio-test-app:{}", std::process::id());
        import(sh, "docker", tarball, &image);
        let got = resolve(sh, Engine::Docker, std::slice::from_ref(&image));
        let _ = cmd!(sh, "docker rmi {image}").quiet().ignore_stdout().run();
        assert_eq!(
            got.unwrap()[0].to_string(),
            format!("docker.io/library/{image}")
        );
    }
}
