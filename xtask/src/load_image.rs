//! `cargo xtask load-image IMAGE... [--name NAME]`: the CRI-O counterpart of
//! `kind load docker-image`, which imports into containerd, where CRI-O
//! cannot see it. Saves each image from the engine once, streams the archive
//! into each node through `ENGINE exec -i`, and imports it into CRI-O's
//! storage with skopeo (which the node image carries for its preload).
//!
//! Why streamed, and why into a file on `/var/tmp`:
//! - kind mounts a tmpfs on the node's `/tmp`, and `docker cp` into a tmpfs
//!   of a running container writes beneath it, invisible inside; `exec -i`
//!   writes through the container's own view.
//! - skopeo reads a non-seekable `docker-archive:/dev/stdin` only from
//!   containers/image 5.24 on (skopeo 1.10); the skopeo 1.9 of Debian
//!   bookworm, the base of kind's node images up to v0.31, re-opens the path
//!   and fails with "invalid tar header". So `dd` writes the stream to
//!   `/var/tmp`, on the node's `/var` volume (disk, not a tmpfs), where newer
//!   skopeo would put its own copy anyway, and skopeo reads that file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use registry::ImageRef;
use xshell::Shell;

use crate::cluster::ClusterName;
use crate::ctx::Ctx;
use crate::engine::Engine;
use crate::step::{Invocation, Plan};
use crate::ui::Ui;

/// Inside the node, where image N's archive lands for the import: on the
/// `/var` volume (kind's `/tmp` is a tmpfs, memory the node may lack).
const NODE_ARCHIVE_DIR: &str = "/var/tmp";
/// CRI-O's store on the node, as CRI-O selects it (overlay on the /var volume).
const NODE_STORE: &str =
    "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]";
/// Where the archives are saved, one per image, relative to the project root.
const ARCHIVE_DIR: &str = "target/kind-crio/load-image";

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Each image is loaded under the name the engine gives it and, for a short name, also under
Docker Hub's, which is what a short name means in the node, as in kind: my-app:dev built by
docker is docker.io/library/my-app:dev; built by podman it is localhost/my-app:dev, and is
loaded as docker.io/library/my-app:dev too. Either way a pod finds it as my-app:dev.

Example:
  docker build -t my-app:dev . && cargo xtask load-image my-app:dev --name kind-crio
then use image my-app:dev with imagePullPolicy: IfNotPresent (or Never).")]
pub struct LoadImageArgs {
    /// Images in the local engine, e.g. my-app:dev (a name, or an image ID).
    #[arg(required = true, value_name = "IMAGE", value_parser = crate::flags::local_image)]
    pub images: Vec<String>,

    /// The kind cluster.
    #[arg(long, default_value = "kind-crio", value_parser = ClusterName::parse)]
    pub name: ClusterName,
}

/// One image to load: the name the engine has it under (what it saves) and
/// the names it gets in each node's CRI-O storage, the engine's first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    pub engine: ImageRef,
    pub node: Vec<ImageRef>,
}

/// Of the names the engine lists for the image the user typed as `typed`,
/// the one to save it under: the same reference once normalised (docker lists
/// `my-app:dev` for docker.io/library/my-app:dev), else the one that ends
/// with what was typed (podman stores `my-app:dev` as localhost/my-app:dev),
/// else the first. Pure.
///
/// In the node it keeps that name, and a short name the engine qualified
/// with another registry (podman's `localhost/`) also gets Docker Hub's
/// name, which is what a pod's `image: my-app:dev` resolves to there: the
/// node's only search registry is docker.io, as in kind's containerd.
/// (`localhost` as a second search registry would make every short name
/// ambiguous, which CRI-O 1.34 and later refuse.)
/// `typed` as the engines read it: no tag means `:latest`.
fn tagged(typed: &str) -> String {
    let last = typed.rsplit('/').next().unwrap_or_default();
    if typed.contains('@') || last.contains(':') {
        typed.to_owned()
    } else {
        format!("{typed}:latest")
    }
}

pub fn pick_name(typed: &str, tags: &[String]) -> Result<Load> {
    let parsed: Vec<ImageRef> = tags
        .iter()
        .filter_map(|t| ImageRef::parse(t).ok())
        .collect();
    let tagged = tagged(typed);
    let wanted = ImageRef::parse(&tagged).ok();
    if let Some(same) = parsed.iter().find(|t| Some(*t) == wanted.as_ref()) {
        return Ok(Load {
            engine: same.clone(),
            node: vec![same.clone()],
        });
    }
    if let Some(qualified) = parsed
        .iter()
        .find(|t| t.to_string().ends_with(&format!("/{tagged}")))
    {
        let mut node = vec![qualified.clone()];
        // Typed without a registry (as a pod would name it; a digest is
        // looked up by digest, not by name): parsing completed it with docker.io.
        let first = typed.split('/').next().unwrap_or_default();
        let registry_typed =
            typed.contains('/') && (first.contains(['.', ':']) || first == "localhost");
        if let Some(hub) = wanted.filter(|_| !registry_typed && !typed.contains('@')) {
            node.push(hub);
        }
        return Ok(Load {
            engine: qualified.clone(),
            node,
        });
    }
    parsed
        .first()
        .map(|t| Load {
            engine: t.clone(),
            node: vec![t.clone()],
        })
        .with_context(|| {
            format!(
                "{typed} has no name in the engine (an untagged image?): tag it, then load the tag"
            )
        })
}

/// The names the engine has for `typed` (`ENGINE image inspect`, shown with `-v`).
fn engine_names(sh: &Shell, ui: &Ui, engine: Engine, typed: &str) -> Result<Vec<String>> {
    let out = crate::shell::shown(ui, || engine.image_inspect(sh, "{{json .RepoTags}}", typed))
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

/// The images' names in the engine and in the nodes, in the order given.
pub fn resolve(sh: &Shell, ui: &Ui, engine: Engine, typed: &[String]) -> Result<Vec<Load>> {
    typed
        .iter()
        .map(|t| pick_name(t, &engine_names(sh, ui, engine, t)?))
        .collect()
}

/// The plan for `nodes` (the cluster's control planes and workers): each
/// image saved to an archive of its own in `dir` (a `save` of several images
/// makes podman tag the first with every name), streamed into each node and
/// imported into CRI-O's storage there under each of its node names (the
/// second import finds every layer stored and extracts nothing). `run` names
/// this run's archives in the nodes, so two runs into one cluster never
/// share one.
pub fn plan<'a>(
    sh: &'a Shell,
    images: &'a [Load],
    nodes: &'a [String],
    engine: Engine,
    dir: &Path,
    run: &str,
) -> Plan<'a> {
    let dir = dir.to_path_buf();
    let archives: Vec<(&Load, PathBuf, String)> = images
        .iter()
        .enumerate()
        .map(|(n, image)| {
            (
                image,
                dir.join(format!("{n}.tar")),
                format!("{NODE_ARCHIVE_DIR}/kind-crio-load-{run}-{n}.tar"),
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
                .map(|(l, _, _)| l.engine.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        archives
            .iter()
            .map(|(l, archive, _)| engine.save(sh, archive, &l.engine.to_string()))
            .collect(),
    );
    for node in nodes {
        let mut cmds = Vec::new();
        for (l, archive, in_node) in &archives {
            // The node's policy admits only the preload's own layout; this
            // archive is the user's, saved from their engine a moment ago,
            // so no signature policy applies.
            let of = format!("of={in_node}");
            let source = format!("docker-archive:{in_node}");
            cmds.push(Invocation::stdin_file(
                engine
                    .exec_stdin(sh, node, "dd")
                    .args([of.as_str(), "bs=1M", "status=none"]),
                archive,
            ));
            for name in &l.node {
                let dest = format!("{NODE_STORE}{name}");
                cmds.push(
                    engine
                        .exec(sh, node, "skopeo")
                        .args(["copy", "--quiet", "--insecure-policy", &source, &dest])
                        .into(),
                );
            }
            cmds.push(engine.exec(sh, node, "rm").args(["-f", in_node]).into());
        }
        plan.invocations(format!("Loading into {node}"), cmds);
    }
    plan.always();
    // After a failure (or Ctrl-C) midway, an archive may be left on a node.
    let in_nodes: Vec<&str> = archives.iter().map(|(_, _, n)| n.as_str()).collect();
    plan.cmds(
        "Removing the archives from the nodes",
        nodes
            .iter()
            .map(|node| {
                engine
                    .exec(sh, node, "rm")
                    .arg("-f")
                    .args(in_nodes.iter().copied())
            })
            .collect(),
    );
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

/// An image as typed, for a dry run whose engine could not say its names.
fn as_typed(typed: &str) -> Result<Load> {
    let image =
        ImageRef::parse(&tagged(typed)).with_context(|| format!("{typed} is not an image name"))?;
    Ok(Load {
        engine: image.clone(),
        node: vec![image],
    })
}

pub fn run(args: &LoadImageArgs, ctx: &Ctx) -> Result<()> {
    let (sh, ui, engine, dry_run) = (&ctx.sh, &ctx.ui, ctx.config.engine, ctx.dry_run());
    // What a dry run could not look up, with what its plan assumes.
    let mut unresolved = Vec::new();
    let images = ctx.ui.step("Resolving the images' names", || {
        if !dry_run {
            return resolve(sh, ui, engine, &args.images);
        }
        args.images
            .iter()
            .map(|t| match engine_names(sh, ui, engine, t).and_then(|tags| pick_name(t, &tags)) {
                Ok(load) => Ok(load),
                Err(err) => {
                    unresolved.push(format!(
                        "{t} in {engine} ({err:#}): shown under the name typed; a real run loads it under the names {engine} gives it"
                    ));
                    as_typed(t)
                }
            })
            .collect()
    })?;
    let name = args.name.as_str();
    let nodes = match crate::cluster::nodes_shown(sh, ui, name, engine) {
        Ok(nodes) if !nodes.is_empty() => nodes,
        found if dry_run => {
            let why = found
                .err()
                .map_or_else(|| "none found".to_owned(), |e| format!("{e:#}"));
            unresolved.push(format!(
                "the nodes of cluster {name} ({why}): shown as its control plane alone; a real run loads into every node"
            ));
            vec![format!("{name}-control-plane")]
        }
        Ok(_) => bail!(
            "cluster {name} has no nodes: create it first (cargo xtask e2e --retain, or kind create cluster)"
        ),
        Err(e) => return Err(e),
    };
    // One directory and one set of node archive names per run.
    let run = std::process::id().to_string();
    let mut plan = plan(
        sh,
        &images,
        &nodes,
        engine,
        &Path::new(ARCHIVE_DIR).join(&run),
        &run,
    );
    plan.unresolved(unresolved);
    ctx.carry_out(plan).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect_file;
    use xshell::cmd;

    fn load(typed: &str, tags: &[&str]) -> Load {
        let tags: Vec<String> = tags.iter().map(|s| (*s).to_owned()).collect();
        pick_name(typed, &tags).unwrap()
    }

    #[test]
    fn plan_loads_every_image_into_every_node() {
        let sh = Shell::new().unwrap();
        let images = vec![
            load("my-app:dev", &["my-app:dev"]),
            load(
                "127.0.0.1:5000/tools/debug:1",
                &["127.0.0.1:5000/tools/debug:1"],
            ),
        ];
        let nodes = vec![
            "kind-crio-control-plane".to_owned(),
            "kind-crio-worker".to_owned(),
        ];
        expect_file!["../tests/golden/load-image.txt"].assert_eq(
            &plan(
                &sh,
                &images,
                &nodes,
                Engine::Docker,
                &Path::new(ARCHIVE_DIR).join("4242"),
                "4242",
            )
            .render(),
        );
    }

    /// podman's name for a short name, then Docker Hub's, from one archive.
    #[test]
    fn plan_gives_a_podman_image_docker_hubs_name_too() {
        let sh = Shell::new().unwrap();
        let images = vec![load("my-app:dev", &["localhost/my-app:dev"])];
        let nodes = vec!["kind-crio-control-plane".to_owned()];
        expect_file!["../tests/golden/load-image-podman.txt"].assert_eq(
            &plan(
                &sh,
                &images,
                &nodes,
                Engine::Podman,
                &Path::new(ARCHIVE_DIR).join("4242"),
                "4242",
            )
            .render(),
        );
    }

    #[test]
    fn names_are_the_engines_and_docker_hubs() {
        let names = |typed: &str, t: &[&str]| {
            let l = load(typed, t);
            let node: Vec<String> = l.node.iter().map(ToString::to_string).collect();
            (l.engine.to_string(), node)
        };
        let one = |n: &str| (n.to_owned(), vec![n.to_owned()]);
        // docker lists familiar names, which are Docker Hub's already.
        assert_eq!(
            names("my-app:dev", &["my-app:dev", "my-app:v2"]),
            one("docker.io/library/my-app:dev")
        );
        assert_eq!(
            names("my-app:v2", &["my-app:dev", "my-app:v2"]),
            one("docker.io/library/my-app:v2")
        );
        assert_eq!(
            names("team/my-app:1", &["team/my-app:1"]),
            one("docker.io/team/my-app:1")
        );
        // podman qualifies short names with localhost/: the node gets that
        // name and the one a pod's short name resolves to.
        let podman =
            |engine: &str, hub: &str| (engine.to_owned(), vec![engine.to_owned(), hub.to_owned()]);
        assert_eq!(
            names("my-app:dev", &["localhost/my-app:dev"]),
            podman("localhost/my-app:dev", "docker.io/library/my-app:dev")
        );
        assert_eq!(
            names("my-app", &["localhost/my-app:latest"]),
            podman("localhost/my-app:latest", "docker.io/library/my-app:latest")
        );
        assert_eq!(
            names("team/my-app:1", &["localhost/team/my-app:1"]),
            podman("localhost/team/my-app:1", "docker.io/team/my-app:1")
        );
        // Typed with a registry: that name only.
        assert_eq!(
            names("localhost/my-app:dev", &["localhost/my-app:dev"]),
            one("localhost/my-app:dev")
        );
        assert_eq!(
            names("127.0.0.1:5000/x:1", &["127.0.0.1:5000/x:1"]),
            one("127.0.0.1:5000/x:1")
        );
        // A name found another way (an image ID): its first name only.
        assert_eq!(
            names("0123abcd", &["quay.io/x/y:1", "quay.io/x/y:2"]),
            one("quay.io/x/y:1")
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
        let ui = &Ui {
            verbose: false,
            tty: false,
            color: false,
        };
        import(sh, "podman", tarball, "my-app:dev");
        let typed = ["my-app:dev".to_owned()];
        let got = &resolve(sh, ui, Engine::Podman, &typed).unwrap()[0];
        assert_eq!(got.engine.to_string(), "localhost/my-app:dev");
        assert_eq!(
            got.node.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["localhost/my-app:dev", "docker.io/library/my-app:dev"]
        );
        let missing = resolve(sh, ui, Engine::Podman, &["not-there:1".to_owned()]).unwrap_err();
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
        let got = resolve(sh, ui, Engine::Docker, std::slice::from_ref(&image));
        let _ = cmd!(sh, "docker rmi {image}").quiet().ignore_stdout().run();
        let got = &got.unwrap()[0];
        assert_eq!(got.engine.to_string(), format!("docker.io/library/{image}"));
        assert_eq!(got.node, std::slice::from_ref(&got.engine));
    }

    /// The whole plan against a Docker container made as kind makes a node
    /// (a tmpfs on /tmp and /run, a volume on /var), with the machine's own
    /// skopeo in it: the image must land in the overlay store on /var, and
    /// no archive may stay behind. (`docker cp` into the tmpfs on /tmp
    /// reaches nothing the container sees; skopeo before 1.10 cannot read a
    /// pipe as `docker-archive:/dev/stdin`.)
    #[test]
    fn loads_into_a_kind_like_docker_node() {
        use crate::test_engines::{docker_answers, host_tools_rootfs, import};
        let test = "loads_into_a_kind_like_docker_node";
        if !testkit::tools_present(test, &["docker", "skopeo", "ldd", "tar"]) {
            return;
        }
        let sh = Shell::new().unwrap();
        if !docker_answers(&sh, test) {
            return;
        }
        let dir = testkit::TempDir::new(test);
        let pid = std::process::id();
        let node_image = format!("kind-crio-test-node:{pid}");
        let app = format!("kind-crio-test-load:{pid}");
        let node = format!("kind-crio-test-load-{pid}-control-plane");
        let rootfs =
            host_tools_rootfs(&sh, dir.path(), &["skopeo", "dd", "rm", "sleep", "ls"], &[]);
        import(&sh, "docker", &rootfs, &node_image);
        import(
            &sh,
            "docker",
            &testkit::tiny_rootfs_tarball(dir.path()),
            &app,
        );
        // Overlay mounts inside the node need CAP_SYS_ADMIN, as kind's
        // privileged nodes have it.
        cmd!(
            sh,
            "docker run -d --name {node} --tmpfs /tmp --tmpfs /run -v /var --cap-add SYS_ADMIN --security-opt apparmor=unconfined {node_image} /bin/sleep 600"
        )
        .quiet()
        .ignore_stdout()
        .run()
        .unwrap();

        let quiet = Ui {
            verbose: false,
            tty: false,
            color: false,
        };
        let images = resolve(&sh, &quiet, Engine::Docker, std::slice::from_ref(&app)).unwrap();
        let nodes = vec![node.clone()];
        let archives = dir.path().join("archives");
        let result =
            plan(&sh, &images, &nodes, Engine::Docker, &archives, "test").execute(&crate::ui::Ui {
                verbose: false,
                tty: false,
                color: false,
            });
        let stored = format!("{NODE_STORE}docker.io/library/{app}");
        let inspect = cmd!(sh, "docker exec {node} skopeo inspect --raw {stored}")
            .quiet()
            .ignore_status()
            .output()
            .unwrap();
        let left = cmd!(sh, "docker exec {node} ls -A /var/tmp")
            .quiet()
            .ignore_status()
            .read()
            .unwrap_or_default();
        let _ = cmd!(sh, "docker rm -f -v {node}")
            .quiet()
            .ignore_stdout()
            .run();
        let _ = cmd!(sh, "docker rmi {app} {node_image}")
            .quiet()
            .ignore_stdout()
            .run();

        result.unwrap();
        assert!(
            inspect.status.success(),
            "the image is not in the node's store: {}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        assert_eq!(left.trim(), "", "archives left in the node's /var/tmp");
        assert!(!archives.exists(), "the host's archives were not removed");
    }
}
