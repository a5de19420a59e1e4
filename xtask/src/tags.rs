//! `cargo xtask tags`: which tags a repository has, like `skopeo list-tags`,
//! with Kubernetes versions sorted for people.
//!
//! Only tags of the distribution spec's grammar (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`)
//! are printed: a registry's answer is not trusted to be one, and a "tag" with a
//! newline or an escape sequence would reach a terminal or a `tags | grep -qx`
//! in a script. The others are named on stderr, escaped.

use std::cell::RefCell;

use anyhow::{Result, bail};
use registry::{Client, Options, Repository, TagList};

use crate::ctx::{Ctx, Done};
use crate::step::Plan;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  cargo xtask tags                          # kindest/node versions, oldest first
  cargo xtask tags --latest                 # newest released kindest/node version
  cargo xtask tags ghcr.io/OWNER/kindnode-crio
  cargo xtask tags --json kindest/node      # same JSON as `skopeo list-tags docker://kindest/node`
  cargo xtask tags 127.0.0.1:5000/a/b       # loopback registries use plain HTTP

Credentials come from docker login / podman login (Docker's config.json and its
credential helpers, then podman's auth.json); public repositories need none.")]
pub struct TagsArgs {
    /// Repository to list, e.g. kindest/node, docker.io/kindest/node, ghcr.io/OWNER/NAME,
    /// 127.0.0.1:5000/a/b (no tag or digest). Default: `node.repository` from the configuration.
    pub repository: Option<String>,

    /// Print `{"Repository": ..., "Tags": [...]}` exactly as `skopeo list-tags` does
    /// (tags in registry order).
    #[arg(long, conflicts_with = "latest")]
    pub json: bool,

    /// Print only the newest Kubernetes version without a pre-release (alpha, beta, rc).
    #[arg(long)]
    pub latest: bool,

    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    pub insecure: bool,
}

/// The tags that may be printed, and the others, in registry order. Pure.
pub fn split_valid(list: TagList) -> (TagList, Vec<String>) {
    let (valid, invalid) = list
        .tags
        .into_iter()
        .partition(|t| registry::reference::is_valid_tag(t));
    let list = TagList {
        repository: list.repository,
        tags: valid,
    };
    (list, invalid)
}

/// The warning for a tag that is not one: escaped (every byte outside
/// printable ASCII as `\u{..}` or `\n`) and cut, so it shows, never acts.
pub fn invalid_tag_warning(repository: &str, tag: &str) -> String {
    const SHOWN: usize = 80;
    let mut escaped: String = tag
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_default)
        .collect();
    if tag.chars().count() > SHOWN {
        escaped.push_str("...");
    }
    format!(
        "warning: {repository}: skipping \"{escaped}\": not a valid tag (1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-')"
    )
}

/// What the command prints on stdout, computed purely from the tag list.
pub fn render(list: &TagList, args: &TagsArgs) -> Result<String> {
    if args.json {
        return Ok(skopeo_json(list));
    }
    if args.latest {
        return match registry::latest_release(&list.tags) {
            Some(tag) => Ok(format!("{tag}\n")),
            None => bail!(
                "{} has no tag that is a released Kubernetes version (vX.Y.Z); run without --latest to see its {} tags",
                list.repository,
                list.tags.len()
            ),
        };
    }
    let mut out = String::new();
    for tag in registry::sort_tags(&list.tags) {
        out.push_str(&tag);
        out.push('\n');
    }
    Ok(out)
}

/// `skopeo list-tags` output: Go's `json.MarshalIndent(v, "", "    ")` plus a newline.
/// Tags and repository names cannot contain the characters Go escapes (`<>&`),
/// so serde_json's output is byte-identical.
pub fn skopeo_json(list: &TagList) -> String {
    #[derive(serde::Serialize)]
    struct Skopeo<'a> {
        #[serde(rename = "Repository")]
        repository: &'a str,
        #[serde(rename = "Tags")]
        tags: &'a [String],
    }
    let value = Skopeo {
        repository: &list.repository,
        tags: &list.tags,
    };
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serializing strings into a Vec cannot fail.
    let _ = serde::Serialize::serialize(&value, &mut ser);
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.push('\n');
    s
}

pub fn run(args: &TagsArgs, ctx: &Ctx) -> Result<()> {
    let repo = match &args.repository {
        Some(r) => Repository::parse(r)?,
        None => ctx.config.node_repository.clone(),
    };
    let client = Client::new(Options {
        insecure: args.insecure,
        ..Options::default()
    });
    let listed: RefCell<Option<TagList>> = RefCell::new(None);
    let mut plan = Plan::new();
    plan.native(
        format!("Listing tags of {repo}"),
        format!(
            "GET {}, following rel=\"next\" pages",
            client.url(&repo, &format!("/v2/{}/tags/list", repo.path()))
        ),
        || {
            *listed.borrow_mut() = Some(client.list_tags(&repo)?);
            Ok(())
        },
    );
    if ctx.carry_out(plan)? == Done::Shown {
        return Ok(());
    }
    let Some(list) = listed.into_inner() else {
        bail!("listing tags of {repo} produced no result");
    };
    let (list, invalid) = split_valid(list);
    for tag in &invalid {
        eprintln!("{}", invalid_tag_warning(&list.repository, tag));
    }
    print!("{}", render(&list, args)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: bool, latest: bool) -> TagsArgs {
        TagsArgs {
            repository: None,
            json,
            latest,
            insecure: false,
        }
    }

    fn list(tags: &[&str]) -> TagList {
        TagList {
            repository: "docker.io/kindest/node".into(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn plain_sorted() {
        let l = list(&["latest", "v1.32.0", "v1.32.0-rc.1", "v1.9.0"]);
        assert_eq!(
            render(&l, &args(false, false)).unwrap(),
            "v1.9.0\nv1.32.0-rc.1\nv1.32.0\nlatest\n"
        );
    }

    #[test]
    fn latest_release_only() {
        let l = list(&["v1.33.0-alpha.1", "v1.32.3", "latest"]);
        assert_eq!(render(&l, &args(false, true)).unwrap(), "v1.32.3\n");
        let err = render(&list(&["latest"]), &args(false, true))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "docker.io/kindest/node has no tag that is a released Kubernetes version (vX.Y.Z); run without --latest to see its 1 tags"
        );
    }

    #[test]
    fn invalid_tags_are_skipped_and_shown_escaped() {
        let raw = list(&[
            "v1.32.0",
            "fake\nv9.9.9",
            "\u{1b}[2Jclear",
            ".hidden",
            "-flag",
            "",
            &"a".repeat(129),
            "v1.31.0",
            "latest",
        ]);
        let (valid, invalid) = split_valid(raw);
        assert_eq!(valid.tags, ["v1.32.0", "v1.31.0", "latest"]);
        assert_eq!(invalid.len(), 6);
        assert_eq!(
            render(&valid, &args(false, false)).unwrap(),
            "v1.31.0\nv1.32.0\nlatest\n"
        );
        let shown: Vec<String> = invalid
            .iter()
            .map(|t| invalid_tag_warning("docker.io/kindest/node", t))
            .collect();
        assert_eq!(
            shown[0],
            "warning: docker.io/kindest/node: skipping \"fake\\nv9.9.9\": not a valid tag (1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-')"
        );
        assert!(shown[1].contains("\"\\u{1b}[2Jclear\""), "{}", shown[1]);
        assert!(
            shown[5].contains(&format!("\"{}...\"", "a".repeat(80))),
            "{}",
            shown[5]
        );
        for line in &shown {
            assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)), "{line:?}");
        }
        // Bidirectional overrides and other non-ASCII are escaped too.
        assert!(invalid_tag_warning("r", "a\u{202e}b").contains("a\\u{202e}b"));
    }

    #[test]
    fn json_like_skopeo() {
        let l = list(&["v1.32.0", "latest"]);
        assert_eq!(
            render(&l, &args(true, false)).unwrap(),
            "{\n    \"Repository\": \"docker.io/kindest/node\",\n    \"Tags\": [\n        \"v1.32.0\",\n        \"latest\"\n    ]\n}\n"
        );
        assert_eq!(
            skopeo_json(&list(&[])),
            "{\n    \"Repository\": \"docker.io/kindest/node\",\n    \"Tags\": []\n}\n"
        );
    }
}
