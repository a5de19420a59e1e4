//! Reading the JSON a registry or token server sends, with errors that never
//! quote what it sent.
//!
//! serde's own messages quote the offending value (`invalid type: string
//! "Basic YWxp…", expected a sequence`), and a server that echoes a request
//! header into a field would get a credential printed that way. So the
//! description is rebuilt from parts that come from this crate's code only:
//! where in the document (field names this client reads, array indices), what
//! kind of failure (serde_json's category), and the type the code expected.

use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_path_to_error::Segment;

/// Field names of the documents this client reads; any other key in an error's
/// path (a label name, a field the client ignores) is data and shown as `?`.
const KNOWN_FIELDS: &[&str] = &[
    "tags",
    "name",
    "token",
    "access_token",
    "expires_in",
    "manifests",
    "config",
    "digest",
    "platform",
    "os",
    "architecture",
    "Labels",
];

/// Parses `body` as `T`; the error says where and why, without a value from the body.
pub(crate) fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = parsed.map_err(|e| describe(&safe_path(e.path()), e.inner(), body.len()))?;
    // Trailing characters after the document.
    de.end().map_err(|e| describe("", &e, body.len()))?;
    Ok(value)
}

/// One line: the place in the document, the kind of failure, the body's size.
fn describe(place: &str, e: &serde_json::Error, len: usize) -> String {
    let at = if place.is_empty() {
        String::new()
    } else {
        format!(" at `{place}`")
    };
    match e.classify() {
        Category::Eof => format!("it ends early, after {len} bytes"),
        Category::Syntax => format!(
            "not valid JSON (line {} column {}) in a {len}-byte body",
            e.line(),
            e.column()
        ),
        Category::Data => format!("{}{at} in a {len}-byte body", data_problem(e)),
        Category::Io => format!("the body could not be read{at}"),
    }
}

/// The path with every key that is not a field name of ours replaced by `?`.
fn safe_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(KNOWN_FIELDS.iter().find(|f| **f == key).unwrap_or(&"?"));
            }
            // Enum variants and wrappers: none of our documents have them.
            _ => {}
        }
    }
    out
}

/// What was wrong with a value, in the code's words only: serde's `missing
/// field <name>` (the name is ours), or the `<what>` of `…, expected <what>`.
/// The text after the *last* `, expected ` comes from a visitor of this
/// crate's types, never from the body: a value quoted before it may contain
/// the same words, but cannot come after it.
fn data_problem(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    if let Some(field) = message.strip_prefix("missing field ") {
        return format!("the field {field} is missing");
    }
    match message.rsplit_once(", expected ") {
        Some((_, what)) => format!("a value of the wrong type or shape (expected {what})"),
        None => "a value this client cannot use".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Page {
        tags: Option<Vec<String>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Labelled {
        #[serde(rename = "Labels")]
        labels: BTreeMap<String, String>,
    }

    fn err<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        json::<T>(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn wrong_type_names_the_place_and_the_expected_type_only() {
        let body = r#"{"tags": "Basic YWxpY2U6aHVudGVyMg=="}"#;
        let e = err::<Page>(body);
        assert_eq!(
            e,
            "a value of the wrong type or shape (expected a sequence) at `tags` in a 38-byte body"
        );
        let e = err::<Page>(r#"{"tags": ["a", 17, "Bearer s3cret"]}"#);
        assert_eq!(
            e,
            "a value of the wrong type or shape (expected a string) at `tags[1]` in a 36-byte body"
        );
    }

    #[test]
    fn a_value_that_mimics_the_message_stays_hidden() {
        let e = err::<Page>(r#"{"tags": "x, expected Basic czNjcmV0"}"#);
        assert!(!e.contains("czNjcmV0"), "{e}");
        assert!(e.contains("expected a sequence"), "{e}");
    }

    #[test]
    fn keys_that_are_data_are_not_shown() {
        let e = err::<Labelled>(r#"{"Labels": {"Basic czNjcmV0": 5}}"#);
        assert!(!e.contains("czNjcmV0"), "{e}");
        assert!(e.contains("at `Labels.?`"), "{e}");
        // A syntax error inside an ignored field named by the server.
        let e = err::<Page>(r#"{"Bearer czNjcmV0": [1, }"#);
        assert!(!e.contains("czNjcmV0"), "{e}");
    }

    #[test]
    fn syntax_eof_and_trailing_data() {
        assert_eq!(
            err::<Page>(r#"{"tags": ["#),
            "it ends early, after 10 bytes"
        );
        assert_eq!(
            err::<Page>("{\"tags\": [] } secret"),
            "not valid JSON (line 1 column 15) in a 20-byte body"
        );
        assert_eq!(
            err::<Page>("<html>"),
            "not valid JSON (line 1 column 1) in a 6-byte body"
        );
    }

    #[test]
    fn missing_field_is_named() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Needs {
            digest: String,
        }
        assert_eq!(
            err::<Needs>("{}"),
            "the field `digest` is missing in a 2-byte body"
        );
    }
}
