//! build-image's plan: the named steps for a [`Resolved`] build.

use anyhow::{Context as _, Result};
use xshell::{Shell, cmd};

use super::*;

/// The steps for a resolved build. Building it writes nothing: the contexts
/// are written by the plan's own "Rendering" steps.
pub fn plan<'a>(sh: &'a Shell, r: &'a Resolved) -> Plan<'a> {
    let mut plan = Plan::new();
    plan.unresolved(r.unresolved.clone());
    let target = r.target.to_string();

    match r.up_to_date {
        UpToDate::InRegistry => {
            plan.native(
                format!("{target} is up to date in its registry"),
                format!(
                    "inputs digest {} already published; nothing to build or push",
                    r.variants[0].context.inputs_digest().unwrap_or("?")
                ),
                || Ok(()),
            );
            return plan;
        }
        UpToDate::Locally => {}
        UpToDate::Nowhere => {
            // Before anything heavy: docker builds the context with BuildKit
            // only, and kind's `make quick` runs docker buildx whatever builds ours.
            let source_build = matches!(
                r.node,
                NodeImage::Build {
                    how: BuildNode::Source,
                    ..
                }
            );
            if r.engine == Engine::Docker || source_build {
                crate::preflight::add_buildx_check(&mut plan, sh);
            }
            node_steps(sh, r, &mut plan);
            build_steps(sh, r, &mut plan);
        }
    }

    if r.push
        && let Some(push) = r.engine.push(sh, r.output, &tls_flag(r), &target)
    {
        plan.cmd(format!("Pushing {target}"), push);
    }

    if r.up_to_date == UpToDate::Nowhere
        && matches!(
            r.node,
            NodeImage::Build {
                how: BuildNode::Source,
                ..
            }
        )
    {
        // kind's `make quick` makes a docker-container builder current (it
        // always builds with docker buildx, whatever engine builds ours), and
        // that builder cannot see local images: give the default one back.
        plan.always();
        plan.cmd(
            "Restoring the default buildx builder",
            cmd!(sh, "docker buildx use default"),
        );
    }
    plan.always();
    let workdir = r.workdir.clone();
    plan.native(
        "Removing the temporary directory",
        format!("rm -rf {}", workdir.display()),
        move || remove_dir(&workdir),
    );
    plan
}

/// Building the node images with kind (into docker, where kind builds), and
/// handing them to podman when podman builds ours.
fn node_steps<'a>(sh: &'a Shell, r: &'a Resolved, plan: &mut Plan<'a>) {
    let NodeImage::Build { how, images, kind } = &r.node else {
        return;
    };
    let k = r.kubernetes.to_string();
    match how {
        BuildNode::Release => {
            for (arch, image) in images {
                let (arch, node) = (arch.to_string(), image.to_string());
                plan.cmd(
                    format!("Building node image {node} (kind, release binaries)"),
                    cmd!(
                        sh,
                        "kind build node-image --type release --arch {arch} --image {node} {k}"
                    ),
                );
            }
        }
        BuildNode::Source => {
            let kind_dir = r.workdir.join("kind");
            let k8s_dir = r.workdir.join("kubernetes");
            let registry = "localhost/kind-crio";
            plan.cmds(
                "Fetching kind and Kubernetes sources",
                vec![
                    cmd!(sh, "git clone --depth 1 --branch {kind} https://github.com/kubernetes-sigs/kind {kind_dir}"),
                    cmd!(sh, "git clone --depth 1 --branch {k} https://github.com/kubernetes/kubernetes {k8s_dir}"),
                ],
            );
            for (arch, image) in images {
                let (arch, node) = (arch.to_string(), image.to_string());
                // The base is tagged as the node image is (V, or V-ARCH).
                let tag = image.tag.clone().unwrap_or_else(|| k.clone());
                let base = format!("{registry}/base:{tag}");
                // PLATFORMS on the command line wins over `quick`'s own
                // (the host's platform): the base for exactly this --arch.
                plan.cmd(
                    format!("Building kind's base image {base}"),
                    cmd!(
                        sh,
                        "make -C {kind_dir}/images/base quick REGISTRY={registry} TAG={tag} PLATFORMS=linux/{arch}"
                    ),
                );
                plan.cmd(
                    format!("Building node image {node} (kind, from source)"),
                    cmd!(sh, "kind build node-image --type source --arch {arch} --base-image {base} --image {node} {k8s_dir}"),
                );
            }
        }
    }
    if r.engine == Engine::Podman {
        let refs: Vec<String> = images
            .iter()
            .map(|(_, image)| format!("docker-daemon:{image}"))
            .collect();
        plan.cmds(
            "Copying the node images from docker into podman's storage",
            refs.into_iter()
                .map(|from| cmd!(sh, "podman pull {from}"))
                .collect(),
        );
    }
}

/// Removes the list (or image) named `target`, if there is one, so that
/// `podman build --manifest` starts a new list.
pub(super) fn new_manifest_list(sh: &Shell, target: &str) -> Result<()> {
    let exists = |what: &str| -> Result<bool> {
        Ok(cmd!(sh, "podman {what} exists {target}")
            .quiet()
            .ignore_status()
            .ignore_stderr()
            .output()
            .context("cannot run podman: is it installed?")?
            .status
            .success())
    };
    if exists("manifest")? {
        cmd!(sh, "podman manifest rm {target}")
            .quiet()
            .ignore_stdout()
            .run()?;
    } else if exists("image")? {
        cmd!(sh, "podman rmi {target}")
            .quiet()
            .ignore_stdout()
            .run()?;
    }
    Ok(())
}

/// Rendering each variant's context and building it.
fn build_steps<'a>(sh: &'a Shell, r: &'a Resolved, plan: &mut Plan<'a>) {
    let target = r.target.to_string();
    // `--build-arg NAME`, the value in the engine's environment: never on
    // its command line, where `ps` shows it.
    let proxy = r.proxy.vars();
    let mut build_args: Vec<String> = proxy
        .iter()
        .flat_map(|(name, _)| ["--build-arg".to_owned(), name.clone()])
        .collect();
    if r.rebuild {
        build_args.insert(0, "--no-cache".to_owned());
    }
    if r.output == Output::PushedIndex {
        plan.cmd(
            "Preparing a multi-platform builder",
            Engine::prepare_builder(sh),
        );
    }
    if r.output == Output::ManifestList {
        // `podman build --manifest` adds to a list that already exists: start
        // from none, so an earlier run's images are not pushed with this one's.
        let name = target.clone();
        plan.native(
            format!("Starting a new manifest list {target}"),
            format!("podman manifest rm {target} (or podman rmi {target}) if it exists"),
            move || new_manifest_list(sh, &name),
        );
    }
    for variant in &r.variants {
        let dir = r.workdir.join(&variant.dir_name);
        let ctx = &variant.context;
        let write_dir = dir.clone();
        plan.native(
            if r.variants.len() > 1 {
                format!(
                    "Rendering the CRI-O build context for {}",
                    variant.platforms()
                )
            } else {
                "Rendering the CRI-O build context".to_owned()
            },
            format!(
                "write {} files into {} (inputs digest {})",
                ctx.files.len(),
                dir.display(),
                ctx.inputs_digest().unwrap_or("?")
            ),
            move || {
                if write_dir.exists() {
                    std::fs::remove_dir_all(&write_dir)
                        .with_context(|| format!("cannot clear {}", write_dir.display()))?;
                }
                node_image::write_context(ctx, &write_dir)
                    .with_context(|| format!("cannot write {}", write_dir.display()))
            },
        );
        let platforms = variant.platforms();
        let build_args = &build_args;
        let build = r
            .engine
            .build(sh, r.output, &platforms, build_args, &target, &dir);
        plan.invocations(
            format!("Building {target} for {platforms}"),
            vec![Invocation::from(build).secret_env(proxy.clone())],
        );
    }
}

/// Plain HTTP to a loopback registry, as docker does on its own.
fn tls_flag(r: &Resolved) -> Vec<&'static str> {
    if r.target.repository.is_loopback() {
        vec!["--tls-verify=false"]
    } else {
        vec![]
    }
}
