//! Reading and writing config files.
//!
//! Reading is strict and in two passes, as kind does it: first only `kind`
//! and `apiVersion` (so a wrong one gets its own message instead of a list of
//! unknown fields), then the whole document with unknown fields as errors,
//! each reported with its field path and line/column.
//!
//! Writing produces what people write by hand: block style, `kind` and
//! `apiVersion` first, sequences indented under their key (as yamllint's
//! default `indent-sequences` wants), 2-space steps, and multi-line strings
//! (patches) as literal `|` blocks.

use std::borrow::Cow;

use serde::Deserialize;
use serde_saphyr::{MessageFormatter, UserMessageFormatter};

use crate::error::Error;
use crate::model::{ApiVersion, Cluster, Kind};

/// Reads a config strictly, without validating it (see [`Cluster::validate`]).
pub fn decode(text: &str) -> Result<Cluster, Error> {
    check_type_meta(text)?;
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, read_options(), |de| {
        serde_path_to_error::deserialize::<_, Cluster>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| Error::Schema {
        // serde_path_to_error says `.` for the root and `?` where it lost track.
        path: if path == "." || path == "?" {
            String::new()
        } else {
            path
        },
        message: render(&e),
    })
}

/// Writes a config as YAML (see the module docs for the style).
pub fn encode(cluster: &Cluster) -> Result<String, Error> {
    let options = serde_saphyr::ser_options! {
        indent_step: 2,
        compact_list_indent: false,
        prefer_block_scalars: true,
        // Never fold long one-line strings (`>`): an image reference or label
        // reads better on one line, and a folded scalar is easy to break when edited.
        folded_wrap_chars: usize::MAX,
    };
    serde_saphyr::to_string_with_options(cluster, options).map_err(|e| Error::Encode(e.to_string()))
}

fn read_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // One-line messages: callers print them in their own frame.
        with_snippet: false,
    }
}

/// A reader's message for a YAML error, ending in its line and column.
pub(crate) fn render(error: &serde_saphyr::Error) -> String {
    error.render_with_formatter(&Messages)
}

/// serde-saphyr's messages for users, with our words where its own talk
/// about its API or Rust types.
struct Messages;

impl MessageFormatter for Messages {
    fn format_message<'a>(&self, error: &'a serde_saphyr::Error) -> Cow<'a, str> {
        match error {
            serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
                Cow::Owned(format!("{key:?} appears twice in the same mapping"))
            }
            serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => {
                Cow::Borrowed("a key appears twice in the same mapping")
            }
            // Every i32 in the model is a port.
            serde_saphyr::Error::InvalidScalar { ty: "i32", .. } => {
                Cow::Borrowed("expected a port number (-1 to 65535)")
            }
            other => UserMessageFormatter.format_message(other),
        }
    }
}

/// `kind` and `apiVersion`, read leniently (other fields are ignored).
#[derive(Deserialize)]
struct TypeMeta {
    kind: Option<String>,
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
}

fn check_type_meta(text: &str) -> Result<(), Error> {
    let meta: Option<TypeMeta> = serde_saphyr::from_str_with_options(text, read_options())
        .map_err(|e| Error::Yaml {
            message: render(&e),
        })?;
    let (kind, api_version) = meta.map_or((None, None), |m| (m.kind, m.api_version));
    if api_version.as_deref() != Some(ApiVersion::VALUE) {
        return Err(Error::ApiVersion { found: api_version });
    }
    if kind.as_deref() != Some(Kind::VALUE) {
        return Err(Error::Kind { found: kind });
    }
    Ok(())
}
