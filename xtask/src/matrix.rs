//! `cargo xtask matrix`: the GitHub Actions job matrix from `configs/matrix.toml`
//! (Kubernetes × CRI-O), or one entry given on the command line (a one-off
//! `workflow_dispatch`). Every value is parsed with the same types the build
//! uses, so nothing unchecked reaches a workflow's shell.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use dockerfile::CrioStream;
use registry::KubernetesVersion;
use serde::{Deserialize, Serialize};

#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// One Kubernetes version instead of the file's list.
    #[arg(long, value_name = "V")]
    pub kubernetes: Option<String>,

    /// Its CRI-O stream (default: the Kubernetes minor).
    #[arg(long, value_name = "STREAM", requires = "kubernetes")]
    pub crio: Option<String>,

    /// Print `matrix=JSON` for $GITHUB_OUTPUT instead of the JSON alone.
    #[arg(long)]
    pub github_output: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    image: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub kubernetes: String,
    pub crio: String,
}

impl Entry {
    fn checked(kubernetes: &str, crio: Option<&str>) -> Result<Entry> {
        let k = KubernetesVersion::parse(kubernetes).context("kubernetes")?;
        let stream = match crio {
            Some(s) if !s.is_empty() => CrioStream::parse(s).context("crio")?,
            _ => CrioStream::for_kubernetes(&k),
        };
        Ok(Entry {
            kubernetes: k.to_string(),
            crio: stream.to_string(),
        })
    }
}

/// The matrix entries, validated. Pure but for reading `path`.
pub fn entries(args: &MatrixArgs, path: &Path) -> Result<Vec<Entry>> {
    if let Some(k) = args.kubernetes.as_deref().filter(|k| !k.is_empty()) {
        return Ok(vec![Entry::checked(k, args.crio.as_deref())?]);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: File = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    if file.image.is_empty() {
        bail!("{} lists no [[image]]", path.display());
    }
    file.image
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Entry::checked(&e.kubernetes, Some(&e.crio))
                .with_context(|| format!("in {}, image {}", path.display(), i + 1))
        })
        .collect()
}

/// `{"include":[...]}` as GitHub's `fromJSON` expects.
pub fn render(entries: &[Entry], github_output: bool) -> String {
    let json = serde_json::json!({ "include": entries }).to_string();
    if github_output {
        format!("matrix={json}\n")
    } else {
        format!("{json}\n")
    }
}

pub fn run(args: &MatrixArgs, root: &Path) -> Result<()> {
    let entries = entries(args, &root.join("configs/matrix.toml"))?;
    print!("{}", render(&entries, args.github_output));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(k: Option<&str>, c: Option<&str>) -> MatrixArgs {
        MatrixArgs {
            kubernetes: k.map(str::to_owned),
            crio: c.map(str::to_owned),
            github_output: true,
        }
    }

    #[test]
    fn committed_matrix_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/matrix.toml");
        let e = entries(&args(None, None), &path).unwrap();
        assert!(!e.is_empty());
        assert!(render(&e, true).starts_with("matrix={\"include\":[{\"crio\":"));
    }

    #[test]
    fn one_off_entries_are_parsed_like_the_build_parses_them() {
        let path = Path::new("unused");
        assert_eq!(
            render(
                &entries(&args(Some("v1.36.0-rc.0"), None), path).unwrap(),
                false
            ),
            "{\"include\":[{\"crio\":\"prerelease:v1.36\",\"kubernetes\":\"v1.36.0-rc.0\"}]}\n"
        );
        // An empty input (the workflow_dispatch default) means the file.
        assert!(entries(&args(Some(""), None), path).is_err());
        let err = format!(
            "{:#}",
            entries(&args(Some("v1.36.0\"; curl evil"), None), path).unwrap_err()
        );
        assert!(err.contains("not a Kubernetes version"), "{err}");
        let err = format!(
            "{:#}",
            entries(&args(Some("v1.36.0"), Some("$(id)")), path).unwrap_err()
        );
        assert!(err.contains("not valid"), "{err}");
    }
}
