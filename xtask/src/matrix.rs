//! `cargo xtask matrix`: the GitHub Actions job matrix (Kubernetes × CRI-O)
//! from `configs/releases.toml`: every node image kind's latest release
//! publishes for a minor that is not end of life, and the newest pre-release;
//! or one entry given on the command line (a one-off `workflow_dispatch`).
//! Every value is parsed with the same types the build uses, so nothing
//! unchecked reaches a workflow's shell. `--github-output` also names the
//! kind release the workflow installs.

use anyhow::{Context as _, Result, bail};
use node_image::CrioStream;
use registry::KubernetesVersion;
use serde::Serialize;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// One Kubernetes version instead of the releases file's list.
    #[arg(long, value_name = "V")]
    pub kubernetes: Option<String>,

    /// Its CRI-O stream (default: the one configs/releases.toml pairs with the minor,
    /// else the Kubernetes minor).
    #[arg(long, value_name = "STREAM", requires = "kubernetes")]
    pub crio: Option<String>,

    /// Print `matrix=JSON` and `kind=VERSION` for $GITHUB_OUTPUT instead of the JSON alone.
    #[arg(long)]
    pub github_output: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub kubernetes: String,
    pub crio: String,
}

impl Entry {
    fn new(kubernetes: &KubernetesVersion, crio: &CrioStream) -> Entry {
        Entry {
            kubernetes: kubernetes.to_string(),
            crio: crio.to_string(),
        }
    }
}

/// The matrix entries, validated. Pure.
pub fn entries(args: &MatrixArgs, config: &Config) -> Result<Vec<Entry>> {
    if let Some(k) = args.kubernetes.as_deref().filter(|k| !k.is_empty()) {
        let k = KubernetesVersion::parse(k).context("kubernetes")?;
        let stream = match args.crio.as_deref() {
            Some(s) if !s.is_empty() => CrioStream::parse(s).context("crio")?,
            _ => config.releases.crio_for(&k),
        };
        return Ok(vec![Entry::new(&k, &stream)]);
    }
    let entries: Vec<Entry> = config
        .releases
        .matrix()
        .iter()
        .map(|(k, c)| Entry::new(k, c))
        .collect();
    if entries.is_empty() {
        bail!(
            "{} names no node image of a minor that is not end of life, and no pre-release: nothing to build; run `cargo xtask refresh`",
            crate::releases::RELEASES_PATH
        );
    }
    Ok(entries)
}

/// `{"include":[...]}` as GitHub's `fromJSON` expects; with `github_output`,
/// as `matrix=` and `kind=` lines for `$GITHUB_OUTPUT`.
pub fn render(entries: &[Entry], kind: &str, github_output: bool) -> String {
    let json = serde_json::json!({ "include": entries }).to_string();
    if github_output {
        format!("matrix={json}\nkind={kind}\n")
    } else {
        format!("{json}\n")
    }
}

pub fn run(args: &MatrixArgs, config: &Config) -> Result<()> {
    let entries = entries(args, config)?;
    let kind = config.releases.kind.version.to_string();
    print!("{}", render(&entries, &kind, args.github_output));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::releases::Releases;

    fn args(k: Option<&str>, c: Option<&str>) -> MatrixArgs {
        MatrixArgs {
            kubernetes: k.map(str::to_owned),
            crio: c.map(str::to_owned),
            github_output: true,
        }
    }

    fn fixture() -> Config {
        let releases = Releases::parse(crate::releases::tests::FIXTURE).unwrap();
        Config::load_with(releases, None).unwrap()
    }

    #[test]
    fn the_committed_releases_make_a_matrix_with_the_default() {
        let config = Config::load(None).unwrap();
        let e = entries(&args(None, None), &config).unwrap();
        let default = Entry::new(&config.kubernetes, &config.crio_stream());
        assert!(e.contains(&default), "{e:?} lacks the default {default:?}");
        let out = render(&e, "v0.33.0", true);
        assert!(out.starts_with("matrix={\"include\":[{\"crio\":"), "{out}");
        assert!(out.ends_with("\nkind=v0.33.0\n"), "{out}");
    }

    #[test]
    fn the_matrix_is_what_the_releases_file_says() {
        assert_eq!(
            render(
                &entries(&args(None, None), &fixture()).unwrap(),
                "v0.33.0",
                true
            ),
            "matrix={\"include\":[\
             {\"crio\":\"main\",\"kubernetes\":\"v1.38.0-rc.0\"},\
             {\"crio\":\"v1.37\",\"kubernetes\":\"v1.37.0\"},\
             {\"crio\":\"v1.35\",\"kubernetes\":\"v1.35.8\"}]}\n\
             kind=v0.33.0\n"
        );
    }

    #[test]
    fn one_off_entries_are_parsed_like_the_build_parses_them() {
        let config = fixture();
        let one = |k: &str, c: Option<&str>| {
            render(
                &entries(&args(Some(k), c), &config).unwrap(),
                "v0.33.0",
                false,
            )
        };
        assert_eq!(
            one("v1.36.0-rc.0", None),
            "{\"include\":[{\"crio\":\"prerelease:v1.36\",\"kubernetes\":\"v1.36.0-rc.0\"}]}\n"
        );
        // The releases file's pairing, for its pre-release's minor too.
        assert_eq!(
            one("v1.38.0-beta.0", None),
            "{\"include\":[{\"crio\":\"main\",\"kubernetes\":\"v1.38.0-beta.0\"}]}\n"
        );
        assert_eq!(
            one("v1.37.1", Some("")),
            "{\"include\":[{\"crio\":\"v1.37\",\"kubernetes\":\"v1.37.1\"}]}\n"
        );
        // An empty input (the workflow_dispatch default) means the file.
        assert_eq!(entries(&args(Some(""), None), &config).unwrap().len(), 3);
        let err = format!(
            "{:#}",
            entries(&args(Some("v1.36.0\"; curl evil"), None), &config).unwrap_err()
        );
        assert!(err.contains("not a Kubernetes version"), "{err}");
        let err = format!(
            "{:#}",
            entries(&args(Some("v1.36.0"), Some("$(id)")), &config).unwrap_err()
        );
        assert!(err.contains("not valid"), "{err}");
    }

    #[test]
    fn nothing_to_build_is_an_error() {
        let mut releases = Releases::parse(crate::releases::tests::FIXTURE).unwrap();
        releases.minors.clear();
        releases.prerelease = None;
        let config = Config::load_with(releases, None).unwrap();
        let err = format!("{:#}", entries(&args(None, None), &config).unwrap_err());
        assert!(err.contains("nothing to build"), "{err}");
    }
}
