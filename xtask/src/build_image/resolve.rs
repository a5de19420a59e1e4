//! build-image's resolve phase: parse, look up (read-only), render; what
//! it decides is a [`Resolved`].

use anyhow::{Context as _, Result, bail};
use node_image::{Arch, BuildProxy};
use registry::{Client, ImageRef, KubernetesVersion};
use xshell::{Shell, cmd};

use super::*;

/// What the resolve phase asks the outside world; a trait so the plan logic
/// can be tested without a registry or an engine.
pub trait Lookup {
    /// The digest of `repo:tag` if it exists.
    fn published_digest(&self, image: &ImageRef) -> Result<Option<String>>;
    /// The inputs-digest label of a local image, if the image exists.
    fn local_inputs_digest(&self, engine: Engine, image: &ImageRef) -> Result<Option<String>>;
    /// The inputs-digest label of an image in its registry, if it exists.
    fn registry_inputs_digest(&self, image: &ImageRef, arch: Arch) -> Result<Option<String>>;
    /// The installed kind's version, e.g. `v0.33.0` (asked only when a node image is built).
    fn kind_version(&self) -> Result<String>;
}

/// The real lookups: registry calls and `ENGINE image inspect`; with `-v`
/// each is shown as it is made.
pub struct LiveLookup<'a> {
    pub sh: &'a Shell,
    pub client: Client,
    pub ui: &'a Ui,
}

impl Lookup for LiveLookup<'_> {
    fn published_digest(&self, image: &ImageRef) -> Result<Option<String>> {
        self.ui
            .detail(&format!("(registry: the digest of {image})"));
        let tag = image.tag.as_deref().unwrap_or("latest");
        match self.client.manifest_digest(&image.repository, tag) {
            Ok(d) => Ok(Some(d.to_string())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn local_inputs_digest(&self, engine: Engine, image: &ImageRef) -> Result<Option<String>> {
        let reference = image.to_string();
        let format = format!(
            "{{{{ index .Config.Labels \"{}\" }}}}",
            node_image::DIGEST_LABEL
        );
        let out = crate::shell::shown(self.ui, || {
            engine.image_inspect(self.sh, &format, &reference)
        })
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .output()
        .with_context(|| format!("cannot run {engine}: is it installed?"))?;
        if !out.status.success() {
            return Ok(None);
        }
        let label = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok((!label.is_empty() && label != "<no value>").then_some(label))
    }

    fn registry_inputs_digest(&self, image: &ImageRef, arch: Arch) -> Result<Option<String>> {
        self.ui.detail(&format!(
            "(registry: the {} label of {image} for linux/{arch})",
            node_image::DIGEST_LABEL
        ));
        let tag = image.tag.as_deref().unwrap_or("latest");
        let labels = self
            .client
            .image_labels(&image.repository, tag, arch.as_str())
            .with_context(|| format!("checking {image} in its registry"))?;
        Ok(labels.and_then(|l| l.get(node_image::DIGEST_LABEL).cloned()))
    }

    fn kind_version(&self) -> Result<String> {
        let out = crate::shell::shown(self.ui, || cmd!(self.sh, "kind version"))
            .quiet()
            .read()
            .context(
            "building a node image needs kind: see https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
        )?;
        Ok(out.split_whitespace().nth(1).unwrap_or_default().to_owned())
    }
}

impl BuildImageArgs {
    /// The resolve phase: parse, look up, render. Read-only.
    pub fn resolve(&self, config: &Config, lookup: &dyn Lookup) -> Result<Resolved> {
        self.resolve_as(config, lookup, false)
    }

    /// The resolve phase of a dry run: a lookup that fails is not an error
    /// but an entry of `unresolved`, and the plan shows what it assumes.
    pub fn resolve_for_dry_run(&self, config: &Config, lookup: &dyn Lookup) -> Result<Resolved> {
        self.resolve_as(config, lookup, true)
    }

    fn resolve_as(&self, config: &Config, lookup: &dyn Lookup, dry_run: bool) -> Result<Resolved> {
        let mut unresolved = Vec::new();
        let kubernetes = crate::inputs::kubernetes_for(
            config,
            self.kubernetes.as_ref(),
            self.node_image.as_ref(),
        );
        let warnings = crate::inputs::skew(
            config,
            ContextChoice {
                kubernetes: self.kubernetes.as_ref(),
                crio: self.crio.as_ref(),
                base_image: self.node_image.as_ref(),
                arch: self.arch.first().copied().unwrap_or(Arch::Amd64),
                source: &self.source,
            },
            crate::inputs::SkewFlags {
                base_image: "--node-image",
                allow: self.allow_skew,
            },
        )?;
        let arches = self.arch.clone();
        let mut unique = arches.clone();
        unique.sort_by_key(|a| a.as_str());
        unique.dedup();
        if unique.len() != arches.len() || arches.is_empty() {
            bail!("--arch: give each architecture once (amd64, arm64)");
        }
        let engine = config.engine;
        let output = engine.output(arches.len(), self.push)?;
        let target = match &self.image {
            Some(r) => parse_target(r, &kubernetes).context("--image")?,
            None => ImageRef {
                repository: config.image_repository.clone(),
                tag: Some(kubernetes.to_string()),
                digest: None,
            },
        };
        let node = self.node_image(
            config,
            &kubernetes,
            &arches,
            lookup,
            dry_run,
            &mut unresolved,
        )?;
        let variants = match &node {
            NodeImage::Given(base) | NodeImage::Published { image: base, .. } => {
                vec![self.variant(config, &kubernetes, base, &arches, "context")?]
            }
            NodeImage::Build { images, .. } if images.len() > 1 => {
                if output == Output::PushedIndex {
                    bail!(
                        "kind builds one node image per architecture, and docker cannot join local images of several architectures into one index without pushing each first; use --engine podman (it takes kind's node images from docker), or build one --arch per run"
                    );
                }
                images
                    .iter()
                    .map(|(arch, base)| {
                        self.variant(
                            config,
                            &kubernetes,
                            base,
                            &[*arch],
                            &format!("context-{arch}"),
                        )
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            NodeImage::Build { images, .. } => {
                vec![self.variant(config, &kubernetes, &images[0].1, &arches, "context")?]
            }
        };
        let stream = variants[0].inputs.stream.clone();
        let digest = variants[0]
            .context
            .inputs_digest()
            .unwrap_or_default()
            .to_owned();
        // Skipping is an optimisation: when the registry cannot be asked, say
        // so and build (the push, not this check, is what must succeed).
        let published = if self.push && !self.rebuild {
            lookup
                .registry_inputs_digest(&target, arches[0])
                .unwrap_or_else(|e| {
                    eprintln!(
                        "   (could not check {target} in its registry, so it will be built: {e:#})"
                    );
                    None
                })
        } else {
            None
        };
        let local = if arches.len() == 1 && !self.rebuild {
            match lookup.local_inputs_digest(engine, &target) {
                Ok(d) => d,
                Err(e) if dry_run => {
                    unresolved.push(format!(
                        "whether {target} is built already ({e:#}): shown as not built; a real run skips the build if it is"
                    ));
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let up_to_date = if published.as_deref() == Some(&digest) {
            UpToDate::InRegistry
        } else if local.as_deref() == Some(&digest) {
            UpToDate::Locally
        } else {
            UpToDate::Nowhere
        };
        let proxy = BuildProxy::new(
            self.http_proxy.as_ref().map(Redacted::expose),
            self.https_proxy.as_ref().map(Redacted::expose),
            self.no_proxy.as_deref(),
        )?;
        Ok(Resolved {
            workdir: PathBuf::from("target/kind-crio/build-image")
                .join(target.tag.clone().unwrap_or_default()),
            kubernetes,
            stream,
            engine,
            output,
            target,
            node,
            variants,
            proxy,
            push: self.push,
            rebuild: self.rebuild,
            up_to_date,
            unresolved,
            warnings,
        })
    }

    /// The context for `arches` on `base`.
    fn variant(
        &self,
        config: &Config,
        kubernetes: &KubernetesVersion,
        base: &ImageRef,
        arches: &[Arch],
        dir_name: &str,
    ) -> Result<Variant> {
        let inputs = crate::inputs::context(
            config,
            ContextChoice {
                kubernetes: Some(kubernetes),
                crio: self.crio.as_ref(),
                base_image: Some(base),
                arch: arches[0],
                source: &self.source,
            },
        )?;
        Ok(Variant {
            arches: arches.to_vec(),
            context: node_image::render(&inputs),
            inputs,
            dir_name: dir_name.to_owned(),
        })
    }

    fn node_image(
        &self,
        config: &Config,
        kubernetes: &KubernetesVersion,
        arches: &[Arch],
        lookup: &dyn Lookup,
        dry_run: bool,
        unresolved: &mut Vec<String>,
    ) -> Result<NodeImage> {
        if let Some(r) = &self.node_image {
            return Ok(NodeImage::Given(r.clone()));
        }
        // kind tags what it builds; with several architectures, one tag each.
        let images = arches
            .iter()
            .map(|arch| {
                let tag = if arches.len() > 1 {
                    format!("{kubernetes}-{arch}")
                } else {
                    kubernetes.to_string()
                };
                ImageRef::parse(&format!("localhost/kind-crio/node:{tag}"))
                    .map(|image| (*arch, image))
                    .context("the local node image name")
            })
            .collect::<Result<Vec<_>>>()?;
        let build = |how| -> Result<NodeImage> {
            let kind = match lookup.kind_version() {
                Ok(kind) => kind,
                Err(e) if dry_run => {
                    unresolved.push(format!(
                        "kind's version ({e:#}): a real run needs kind v{}.{}.0 or newer here",
                        crate::kind::MIN_KIND.0,
                        crate::kind::MIN_KIND.1
                    ));
                    return Ok(NodeImage::Build {
                        how,
                        images,
                        kind: "(not found)".to_owned(),
                    });
                }
                Err(e) => return Err(e),
            };
            let version = crate::kind::parse_version(&kind)
                .with_context(|| format!("cannot read the kind version {kind:?}"))?;
            if version < crate::kind::MIN_KIND {
                bail!(
                    "kind {kind} cannot build node images from release binaries (--type arrived in v0.24.0); upgrade kind"
                );
            }
            Ok(NodeImage::Build { how, images, kind })
        };
        if let Some(how) = self.build_node {
            return build(how);
        }
        // kind supports a node image only with the release that built it:
        // the digest that release names wins over whatever the tag says today.
        let pin = match config.releases.pin(&config.node_repository, kubernetes) {
            Pin::Released { image, kind } => {
                return Ok(NodeImage::Published {
                    image,
                    pin: Pinned::Released { kind },
                });
            }
            Pin::Undigested { kind } => Pinned::TagUndigested { kind },
            Pin::Unnamed { kind } => Pinned::TagUnnamed { kind },
            Pin::OtherRepository => Pinned::Tag,
        };
        let published = ImageRef {
            repository: config.node_repository.clone(),
            tag: Some(kubernetes.to_string()),
            digest: None,
        };
        let found = match lookup.published_digest(&published) {
            Err(e) if dry_run => {
                unresolved.push(format!(
                    "whether {published} is published ({e:#}): shown as published, by tag; a real run pins its digest, or builds it with kind if it is not published"
                ));
                return Ok(NodeImage::Published {
                    image: published,
                    pin: Pinned::Unresolved,
                });
            }
            found => found,
        };
        match found.with_context(|| {
            format!("looking up {published} (or pass --node-image / --build-node)")
        })? {
            Some(digest) => Ok(NodeImage::Published {
                image: ImageRef {
                    digest: Some(digest),
                    ..published
                },
                pin,
            }),
            None => build(BuildNode::Release),
        }
    }
}

/// `--image`: a repository (tagged with the Kubernetes version) or repository:tag.
fn parse_target(s: &str, kubernetes: &KubernetesVersion) -> Result<ImageRef> {
    match ImageRef::parse(s) {
        Ok(r) if r.digest.is_some() => bail!("{s:?}: an image to build takes a tag, not a digest"),
        Ok(r) => Ok(r),
        Err(registry::ImageRefError::Untagged { .. }) => Ok(ImageRef {
            repository: registry::Repository::parse(s)?,
            tag: Some(kubernetes.to_string()),
            digest: None,
        }),
        Err(e) => Err(e.into()),
    }
}
