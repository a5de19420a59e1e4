//! Configuration: the embedded `configs/default.toml`, overlaid by a user's
//! `--config FILE` (any subset of the keys), then by command-line flags.
//! Every value is parsed into its type here, once; unknown keys are errors
//! that name the key. What the defaults leave empty (the Kubernetes version,
//! the CRI-O stream) comes from `configs/releases.toml`, never from a version
//! written here.

use std::path::Path;

use anyhow::{Context, Result, bail};
use node_image::CrioStream;
use registry::{KubernetesVersion, Repository};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::releases::Releases;

/// The embedded defaults, the same file users read in the repository.
pub const DEFAULT_TOML: &str = include_str!("../../configs/default.toml");

/// The most of a configuration file read: a few KiB are typical.
pub const CONFIG_FILE_LIMIT: u64 = 1024 * 1024;

/// The effective configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The version in effect: the configured one, else kind's default.
    pub kubernetes: KubernetesVersion,
    /// What the configuration says; None: kind's default (`releases`).
    pub kubernetes_configured: Option<KubernetesVersion>,
    /// None: the stream `releases` pairs with the Kubernetes minor.
    pub crio: Option<CrioStream>,
    pub node_repository: Repository,
    pub image_repository: Repository,
    pub engine: Engine,
    /// What is current (`configs/releases.toml`, embedded).
    pub releases: Releases,
}

/// The file's shape; strings are validated into `Config` afterwards.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    kubernetes: KubernetesSection,
    crio: CrioSection,
    node: RepositorySection,
    image: RepositorySection,
    build: BuildSection,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KubernetesSection {
    version: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CrioSection {
    stream: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RepositorySection {
    repository: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BuildSection {
    engine: String,
}

impl Config {
    /// Defaults overlaid by `user` (its path, for messages, and its text),
    /// with the embedded releases.
    pub fn load(user: Option<(&Path, &str)>) -> Result<Config> {
        Config::load_with(Releases::embedded()?, user)
    }

    /// As `load`, with `releases` in place of the embedded file.
    pub fn load_with(releases: Releases, user: Option<(&Path, &str)>) -> Result<Config> {
        let mut merged: toml::Table = toml::from_str(DEFAULT_TOML)
            .context("the embedded configs/default.toml is not valid TOML")?;
        let source = match user {
            Some((path, text)) => {
                let overlay: toml::Table = toml::from_str(text).with_context(|| {
                    format!(
                        "{} is not valid TOML{}",
                        path.display(),
                        kind_config_hint(path, text).unwrap_or_default()
                    )
                })?;
                merge(&mut merged, overlay, "")
                    .with_context(|| format!("in {}", path.display()))?;
                path.display().to_string()
            }
            None => "the embedded defaults".to_owned(),
        };
        let file: File = toml::Value::Table(merged)
            .try_into()
            .with_context(|| format!("in {source}"))?;
        Config::validate(file, releases).with_context(|| format!("in {source}"))
    }

    /// Reads `path` (if given) and loads.
    pub fn from_path(path: Option<&Path>) -> Result<Config> {
        match path {
            Some(p) => {
                let bytes = read_regular_file(p, CONFIG_FILE_LIMIT, "config file")?;
                let text = String::from_utf8(bytes)
                    .with_context(|| format!("config file {} is not UTF-8 text", p.display()))?;
                Config::load(Some((p, &text)))
            }
            None => Config::load(None),
        }
    }

    fn validate(f: File, releases: Releases) -> Result<Config> {
        let kubernetes_configured = match f.kubernetes.version.as_str() {
            "" => None,
            v => Some(KubernetesVersion::parse(v).context("kubernetes.version")?),
        };
        let kubernetes = kubernetes_configured
            .clone()
            .unwrap_or_else(|| releases.default_kubernetes().clone());
        let crio = match f.crio.stream.as_str() {
            "" => None,
            s => Some(CrioStream::parse(s).context("crio.stream")?),
        };
        let node_repository = Repository::parse(&f.node.repository).context("node.repository")?;
        let image_repository =
            Repository::parse(&f.image.repository).context("image.repository")?;
        let engine = f.build.engine.parse().context("build.engine")?;
        Ok(Config {
            kubernetes,
            kubernetes_configured,
            crio,
            node_repository,
            image_repository,
            engine,
            releases,
        })
    }

    /// The CRI-O stream in effect for the configured Kubernetes version.
    pub fn crio_stream(&self) -> CrioStream {
        self.crio_stream_for(&self.kubernetes)
    }

    /// The CRI-O stream for `k`: the configured one, else the one the
    /// releases pair with its minor (else the Kubernetes minor).
    pub fn crio_stream_for(&self, k: &KubernetesVersion) -> CrioStream {
        self.crio
            .clone()
            .unwrap_or_else(|| self.releases.crio_for(k))
    }

    /// TOML comments saying what the empty keys stand for (the output of
    /// `cargo xtask config` ends with them).
    pub fn explain_defaults(&self) -> String {
        let mut out = String::new();
        if self.kubernetes_configured.is_none() {
            let kind = &self.releases.kind;
            let pinned = match self.releases.pin(&self.node_repository, &self.kubernetes) {
                crate::releases::Pin::Released { image, .. } => format!(", node image {image}"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "# kubernetes.version is empty: {}, the default of kind {} ({}){pinned}\n",
                self.kubernetes,
                kind.version,
                crate::releases::RELEASES_PATH,
            ));
        }
        if self.crio.is_none() {
            out.push_str(&format!(
                "# crio.stream is empty: CRI-O {} ({})\n",
                self.crio_stream(),
                self.releases.crio_reason(&self.kubernetes)
            ));
        }
        out
    }

    /// The effective configuration as TOML, in the layout of the defaults file.
    pub fn to_toml(&self) -> String {
        let file = File {
            kubernetes: KubernetesSection {
                version: self
                    .kubernetes_configured
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            },
            crio: CrioSection {
                stream: self
                    .crio
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            },
            node: RepositorySection {
                repository: self.node_repository.to_string(),
            },
            image: RepositorySection {
                repository: self.image_repository.to_string(),
            },
            build: BuildSection {
                engine: self.engine.to_string(),
            },
        };
        toml::to_string(&file).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// What a `--config` file that is not TOML probably is, when it looks like
/// YAML or a kind cluster config (a kind user's reflex: `--config kind.yaml`),
/// said as the end of the error: which flag takes that file. Pure.
pub fn kind_config_hint(path: &Path, text: &str) -> Option<String> {
    let yaml_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let lines = || {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    };
    let kind = lines().any(|l| {
        l.strip_prefix("kind:")
            .is_some_and(|v| v.trim() == "Cluster")
            || l.strip_prefix("apiVersion:").is_some_and(|v| {
                v.trim()
                    .trim_matches(['"', '\''])
                    .starts_with("kind.x-k8s.io/")
            })
    });
    // YAML's marks: a document start, or `key: value` where TOML has `key = value`.
    let yaml = lines().next().is_some_and(|l| l == "---")
        || lines().any(|l| {
            l.split_once(':').is_some_and(|(key, _)| {
                !key.is_empty() && !key.contains(['=', '"', '[']) && !key.contains(' ')
            })
        });
    let what = if kind {
        "it looks like a kind cluster config"
    } else if yaml_name || yaml {
        "it looks like YAML"
    } else {
        return None;
    };
    Some(format!(
        " ({what}): --config takes kind-crio's own settings, in TOML like configs/default.toml \
         (see `cargo xtask config`); a kind cluster config goes to `cargo xtask e2e --cluster-config FILE` \
         or `cargo xtask render kind-config --from FILE`"
    ))
}

/// Overlays `overlay` onto `base`. Keys that the defaults do not have are
/// refused here, with their full dotted name, before serde sees them.
fn merge(base: &mut toml::Table, overlay: toml::Table, prefix: &str) -> Result<()> {
    for (key, value) in overlay {
        let dotted = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some(slot) = base.get_mut(&key) else {
            let known: Vec<String> = base
                .keys()
                .map(|k| format!("{prefix}{}{k}", if prefix.is_empty() { "" } else { "." }))
                .collect();
            bail!(
                "unknown key `{dotted}`; known keys here: {}",
                known.join(", ")
            );
        };
        match (slot, value) {
            (toml::Value::Table(b), toml::Value::Table(o)) => merge(b, o, &dotted)?,
            (toml::Value::Table(_), other) => {
                bail!("`{dotted}` must be a table, not {}", other.type_str())
            }
            (slot, value) => {
                if slot.type_str() != value.type_str() {
                    bail!(
                        "`{dotted}` must be a {}, not {}",
                        slot.type_str(),
                        value.type_str()
                    );
                }
                *slot = value;
            }
        }
    }
    Ok(())
}

/// Reads the file at `path` whole: what is not a regular file is refused
/// before it is opened (a FIFO would block for ever, `/dev/zero` never ends),
/// and so is more than `limit` bytes. `what` names the file in errors.
pub fn read_regular_file(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let shown = path.display();
    let refuse = |meta: &std::fs::Metadata| -> Result<()> {
        if !meta.is_file() {
            bail!(
                "{what} {shown} is {}, not a regular file: give the path of a file",
                file_kind(&meta.file_type())
            );
        }
        if meta.len() > limit {
            bail!(
                "{what} {shown} is {} bytes, more than the {limit} read of it",
                meta.len()
            );
        }
        Ok(())
    };
    refuse(&std::fs::metadata(path).with_context(|| format!("cannot read {what} {shown}"))?)?;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {what} {shown}"))?;
    // Again on what was opened: the path may name something else by now.
    refuse(
        &file
            .metadata()
            .with_context(|| format!("cannot read {what} {shown}"))?,
    )?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {shown}"))?;
    if bytes.len() as u64 > limit {
        bail!("{what} {shown} grew past {limit} bytes while it was read");
    }
    Ok(bytes)
}

/// What a file type is, for an error that refuses it.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs `f` on a thread of its own and fails the test if it takes more
    /// than a few seconds (reading a FIFO or /dev/zero would never end).
    pub fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("finished within 10 s")
    }

    /// A FIFO named `name` in `dir`, made with mkfifo(1).
    pub fn fifo(dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("run mkfifo");
        assert!(made.success(), "mkfifo {}", path.display());
        path
    }

    /// A kind config (or any YAML) given as --config: the error says what
    /// --config takes and which flag takes a kind config; TOML mistakes are
    /// left as they are.
    #[test]
    fn a_kind_config_as_config_says_which_flag_takes_it() {
        let err = |name: &str, text: &str| {
            format!(
                "{:#}",
                Config::load(Some((Path::new(name), text))).unwrap_err()
            )
        };
        let kind =
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n";
        for name in ["kind.yaml", "cluster.txt"] {
            let e = err(name, kind);
            assert!(
                e.starts_with(&format!(
                    "{name} is not valid TOML (it looks like a kind cluster config): --config takes kind-crio's own settings, in TOML"
                )) && e.contains("`cargo xtask e2e --cluster-config FILE`")
                    && e.contains("`cargo xtask render kind-config --from FILE`"),
                "{e}"
            );
        }
        let apiversion_only = "apiVersion: \"kind.x-k8s.io/v1alpha4\"\n";
        assert!(err("c", apiversion_only).contains("(it looks like a kind cluster config)"));
        assert!(
            err("settings.yml", "[kubernetes\n").contains("(it looks like YAML): --config takes")
        );
        assert!(err("c", "---\nfoo: bar\n").contains("(it looks like YAML)"));
        let toml_slip = err("mine.toml", "[kubernetes]\nversion = v1.34.0\n");
        assert!(
            toml_slip.starts_with("mine.toml is not valid TOML: ")
                && !toml_slip.contains("--cluster-config"),
            "{toml_slip}"
        );
    }

    #[test]
    fn a_config_file_must_be_a_small_regular_file() {
        let from = |p: std::path::PathBuf| {
            bounded(move || format!("{:#}", Config::from_path(Some(&p)).unwrap_err()))
        };
        assert_eq!(
            from("/dev/zero".into()),
            "config file /dev/zero is a character device, not a regular file: give the path of a file"
        );
        let dir = testkit::TempDir::new("config-files");
        let pipe = fifo(dir.path(), "kind-crio.toml");
        assert_eq!(
            from(pipe.clone()),
            format!(
                "config file {} is a FIFO (named pipe), not a regular file: give the path of a file",
                pipe.display()
            )
        );
        assert!(from(dir.path().to_owned()).contains("is a directory, not a regular file"));
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; CONFIG_FILE_LIMIT as usize + 1]).unwrap();
        assert_eq!(
            from(big.clone()),
            format!(
                "config file {} is 1048577 bytes, more than the 1048576 read of it",
                big.display()
            )
        );
        let binary = dir.path().join("binary.toml");
        std::fs::write(&binary, b"\xff").unwrap();
        assert!(from(binary).contains("is not UTF-8 text"));
        let missing = dir.path().join("missing.toml");
        assert!(from(missing).starts_with("cannot read config file "));
        let fine = dir.path().join("fine.toml");
        std::fs::write(&fine, "[build]\nengine = \"podman\"\n").unwrap();
        assert_eq!(
            Config::from_path(Some(&fine)).unwrap().engine,
            Engine::Podman
        );
    }

    fn load(text: &str) -> String {
        match Config::load(Some((Path::new("my.toml"), text))) {
            Ok(c) => c.to_toml(),
            Err(e) => format!("error: {e:#}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_complete() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.node_repository.to_string(), "docker.io/kindest/node");
        // Nothing here names a version: kind's default and its paired stream.
        assert_eq!(c.kubernetes_configured, None);
        assert_eq!(&c.kubernetes, c.releases.default_kubernetes());
        assert_eq!(c.crio_stream(), c.releases.crio_for(&c.kubernetes));
        // Round trip: printing the effective config and loading it changes nothing.
        assert_eq!(load(&c.to_toml()), c.to_toml());
    }

    #[test]
    fn empty_keys_follow_the_releases_file() {
        let releases = Releases::parse(crate::releases::tests::FIXTURE).unwrap();
        let c = Config::load_with(releases.clone(), None).unwrap();
        assert_eq!(c.kubernetes.to_string(), "v1.37.0");
        assert_eq!(c.crio_stream().to_string(), "v1.37");
        assert_eq!(
            c.explain_defaults(),
            "# kubernetes.version is empty: v1.37.0, the default of kind v0.33.0 (configs/releases.toml), \
             node image docker.io/kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5\n\
             # crio.stream is empty: CRI-O v1.37 (paired with Kubernetes v1.37 in configs/releases.toml)\n"
        );
        // A configured version the file pairs, and one it does not.
        let c = Config::load_with(
            releases.clone(),
            Some((
                Path::new("my.toml"),
                "[kubernetes]\nversion = \"v1.38.0-rc.0\"\n",
            )),
        )
        .unwrap();
        assert_eq!(c.crio_stream().to_string(), "main");
        assert_eq!(
            c.explain_defaults(),
            "# crio.stream is empty: CRI-O main (paired with Kubernetes v1.38 in configs/releases.toml)\n"
        );
        let c = Config::load_with(
            releases,
            Some((
                Path::new("my.toml"),
                "[kubernetes]\nversion = \"v1.34.0\"\n",
            )),
        )
        .unwrap();
        assert_eq!(c.crio_stream().to_string(), "v1.34");
        assert!(c.to_toml().contains("version = \"v1.34.0\""));
    }

    #[test]
    fn overlays_a_subset() {
        let out = load("[kubernetes]\nversion = \"v1.32.0-rc.1\"\n[crio]\nstream = \"main\"\n");
        assert!(out.contains("version = \"v1.32.0-rc.1\""), "{out}");
        assert!(out.contains("stream = \"main\""), "{out}");
        assert!(out.contains("engine = \"docker\""), "{out}");
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            load("[kubernets]\nversion = \"v1.31.0\"\n"),
            "error: in my.toml: unknown key `kubernets`; known keys here: build, crio, image, kubernetes, node"
        );
        assert_eq!(
            load("[build]\nengin = \"podman\"\n"),
            "error: in my.toml: unknown key `build.engin`; known keys here: build.engine"
        );
        assert_eq!(
            load("[build]\nengine = 3\n"),
            "error: in my.toml: `build.engine` must be a string, not integer"
        );
        assert_eq!(
            load("build = \"docker\"\n"),
            "error: in my.toml: `build` must be a table, not string"
        );
        assert!(load("[kubernetes]\nversion = \"1.31\"\n").starts_with(
            "error: in my.toml: kubernetes.version: \"1.31\" is not a Kubernetes version"
        ));
        assert_eq!(
            load("[crio]\nstream = \"v1.31; rm -rf /\"\n"),
            "error: in my.toml: crio.stream: CRI-O stream \"v1.31; rm -rf /\" is not valid; use vX.Y (stable, e.g. v1.34), vX.Y.Z (an exact release), main, or prerelease:vX.Y"
        );
        assert_eq!(
            load("[build]\nengine = \"nerdctl\"\n"),
            "error: in my.toml: build.engine: engine \"nerdctl\" is not supported; use \"docker\" or \"podman\""
        );
        assert!(
            load("[image]\nrepository = \"ghcr.io/a/b:tag\"\n")
                .contains("image.repository: \"ghcr.io/a/b:tag\" has a tag or digest")
        );
        assert!(load("not toml [").starts_with("error: my.toml is not valid TOML"));
    }
}
