//! `cargo xtask release-notes RECORD.json...`: the notes of a GitHub release
//! of the images one run of `images.yml` pushed, and the `images.json` beside
//! them. Each image job records what it pushed (tag, the digest its registry
//! serves, the Kubernetes, CRI-O and kind versions, the node image it is
//! built on); this reads those records, checks every field against the
//! grammar it must have (they came from a job's shell, and go into Markdown
//! and a shell snippet), and renders the notes. Pure but for reading the
//! records and writing the JSON.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use registry::{ImageRef, KubernetesVersion};
use serde::{Deserialize, Serialize};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Used by .github/workflows/images.yml after a push from the default branch: the
notes go to stdout (Markdown), the records sorted newest Kubernetes first to --json.")]
pub struct ReleaseNotesArgs {
    /// The records the image jobs wrote, one JSON object each.
    #[arg(required = true, value_name = "RECORD.json")]
    pub records: Vec<PathBuf>,

    /// The commit the images were built from.
    #[arg(long, value_name = "SHA")]
    pub commit: String,

    /// Where to write every record, checked and sorted, as one JSON array.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// What an image job records of one image it pushed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// `REPOSITORY:TAG` as pushed.
    pub image: String,
    /// The digest the registry serves for it.
    pub digest: String,
    pub kubernetes: String,
    /// The CRI-O version the image runs (`crio --version`).
    pub crio: String,
    /// The CRI-O stream it was built from.
    pub crio_stream: String,
    /// The kind release that built and tested it.
    pub kind: String,
    /// The node image it is built on.
    pub base: String,
}

fn plain(what: &str, value: &str, allowed: impl Fn(char) -> bool) -> Result<()> {
    if value.is_empty() || !value.chars().all(allowed) {
        bail!("{what} {value:?} is not plain: refusing it in release notes");
    }
    Ok(())
}

impl Record {
    /// Every field in the grammar it must have.
    fn check(&self) -> Result<()> {
        let tagged = ImageRef::parse(&self.image)
            .ok()
            .is_some_and(|i| i.tag.is_some() && i.digest.is_none());
        if !tagged {
            bail!("image {:?}: expected REPOSITORY:TAG", self.image);
        }
        let hex = self.digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            bail!(
                "digest {:?}: expected sha256: and 64 hex digits",
                self.digest
            );
        }
        KubernetesVersion::parse(&self.kubernetes).context("kubernetes")?;
        let version = |c: char| c.is_ascii_alphanumeric() || ".+-_~".contains(c);
        plain("crio", &self.crio, version)?;
        node_image::CrioStream::parse(&self.crio_stream).context("crio_stream")?;
        plain("kind", &self.kind, version)?;
        if !self.kind.starts_with('v') {
            bail!("kind {:?}: expected a release such as v0.33.0", self.kind);
        }
        ImageRef::parse(&self.base).context("base")?;
        Ok(())
    }
}

/// The records checked, newest Kubernetes first.
pub fn checked(mut records: Vec<(String, Record)>) -> Result<Vec<Record>> {
    for (from, record) in &records {
        record.check().with_context(|| format!("in {from}"))?;
    }
    let version = |r: &Record| KubernetesVersion::parse(&r.kubernetes).ok();
    records.sort_by_key(|(_, r)| std::cmp::Reverse(version(r)));
    Ok(records.into_iter().map(|(_, r)| r).collect())
}

/// The release's notes, in Markdown. Pure.
pub fn render(records: &[Record], commit: &str) -> String {
    let mut out = format!(
        "CRI-O node images for kind, built from {commit} and tested in a kind cluster.\n\n\
         | image | Kubernetes | CRI-O | kind | built on | digest |\n\
         |---|---|---|---|---|---|\n"
    );
    for r in records {
        out.push_str(&format!(
            "| {} | {} | {} (stream {}) | {} | {} | `{}` |\n",
            r.image, r.kubernetes, r.crio, r.crio_stream, r.kind, r.base, r.digest
        ));
    }
    out.push_str(
        "\nUse an image pinned by its digest, with the kind config attached here (it points\n\
         kubeadm at CRI-O's socket) and the kind version it was tested with:\n\n```sh\n",
    );
    for r in records {
        out.push_str(&format!(
            "kind create cluster --config kind-crio.yaml --image {}@{}\n",
            r.image, r.digest
        ));
    }
    out.push_str("```\n");
    out
}

pub fn run(args: &ReleaseNotesArgs) -> Result<()> {
    let mut records = Vec::new();
    for path in &args.records {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let record: Record = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an image record", path.display()))?;
        records.push((path.display().to_string(), record));
    }
    if !args.commit.bytes().all(|b| b.is_ascii_hexdigit()) || args.commit.is_empty() {
        bail!("--commit {:?}: expected a commit's hex digits", args.commit);
    }
    let records = checked(records)?;
    if let Some(json) = &args.json {
        let mut text = serde_json::to_string_pretty(&records)?;
        text.push('\n');
        std::fs::write(json, text).with_context(|| format!("cannot write {}", json.display()))?;
    }
    print!("{}", render(&records, &args.commit));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect_file;

    fn record(kubernetes: &str, digest_char: char) -> Record {
        Record {
            image: format!("ghcr.io/kind-crio/kindnode-crio:{kubernetes}"),
            digest: format!("sha256:{}", digest_char.to_string().repeat(64)),
            kubernetes: kubernetes.to_owned(),
            crio: "1.37.0".to_owned(),
            crio_stream: "v1.37".to_owned(),
            kind: "v0.33.0".to_owned(),
            base: format!("docker.io/kindest/node:{kubernetes}"),
        }
    }

    #[test]
    fn notes_list_every_image_newest_first_pinned_by_digest() {
        let records = checked(vec![
            ("a.json".to_owned(), record("v1.36.4", 'a')),
            ("b.json".to_owned(), record("v1.38.0-rc.0", 'b')),
            ("c.json".to_owned(), record("v1.37.0", 'c')),
        ])
        .unwrap();
        expect_file!["../tests/golden/release-notes.md"].assert_eq(&render(
            &records,
            "0123456789abcdef0123456789abcdef01234567",
        ));
    }

    #[test]
    fn fields_that_are_not_plain_are_refused() {
        let bad = |f: &dyn Fn(&mut Record)| {
            let mut r = record("v1.37.0", 'a');
            f(&mut r);
            format!("{:#}", checked(vec![("r.json".to_owned(), r)]).unwrap_err())
        };
        assert!(bad(&|r| r.digest = "sha256:abc".into()).contains("64 hex digits"));
        assert!(bad(&|r| r.crio = "1.37 | `rm -rf`".into()).contains("not plain"));
        assert!(bad(&|r| r.kind = "0.33.0".into()).contains("v0.33.0"));
        assert!(bad(&|r| r.image = "ghcr.io/x/y".into()).contains("REPOSITORY:TAG"));
        assert!(bad(&|r| r.kubernetes = "latest".into()).starts_with("in r.json: kubernetes"));
        assert!(bad(&|r| r.crio_stream = "v1.37; x".into()).contains("crio_stream"));
        assert!(checked(vec![("r.json".to_owned(), record("v1.37.0", 'a'))]).is_ok());
    }
}
