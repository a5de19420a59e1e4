//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1) as registries send them:
//! `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"`
//! or `Basic realm="Registry Realm"`. One header may carry several challenges.
//!
//! Written by hand: no small, maintained crate parses auth-params into a map,
//! and the grammar (tokens, quoted strings with `\` escapes, commas) is short.

use std::collections::BTreeMap;

/// One challenge: its scheme (lower-cased) and its parameters (keys lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses every challenge in a header value. Malformed parts end the parse:
/// what was read before them is kept, so a registry's odd trailing syntax does
/// not hide a usable challenge. Never panics.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_separators();
        let Some(scheme) = p.token() else { break };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            p.skip_ws();
            let save = p.i;
            let Some(key) = p.token() else { break };
            p.skip_ws();
            if !p.eat(b'=') {
                // A bare token after params is the next challenge's scheme
                // (or a token68 credential, which registries never send).
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                match p.quoted() {
                    Some(v) => v,
                    None => {
                        out.push(challenge);
                        return out;
                    }
                }
            } else {
                match p.token() {
                    Some(v) => v.to_owned(),
                    None => String::new(),
                }
            };
            challenge.params.insert(key.to_ascii_lowercase(), value);
            p.skip_ws();
            if !p.eat(b',') {
                break;
            }
        }
        out.push(challenge);
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// RFC 9110 token characters.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while let Some(b) = self.peek() {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            None
        } else {
            std::str::from_utf8(&self.s[start..self.i]).ok()
        }
    }

    /// A quoted string with backslash escapes; None when unterminated.
    fn quoted(&mut self) -> Option<String> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(header: &str) -> String {
        parse(header)
            .iter()
            .map(|c| {
                let params: Vec<String> =
                    c.params.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                format!("{}[{}]", c.scheme, params.join(" "))
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn registry_challenges() {
        assert_eq!(
            show(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:kindest/node:pull""#
            ),
            r#"bearer[realm="https://auth.docker.io/token" scope="repository:kindest/node:pull" service="registry.docker.io"]"#
        );
        assert_eq!(
            show(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull",error="insufficient_scope""#
            ),
            r#"bearer[error="insufficient_scope" realm="https://ghcr.io/token" scope="repository:user/image:pull" service="ghcr.io"]"#
        );
        assert_eq!(
            show(r#"Basic realm="basic-realm""#),
            r#"basic[realm="basic-realm"]"#
        );
        assert_eq!(
            show(r#"basic REALM=registry , charset="UTF-8""#),
            r#"basic[charset="UTF-8" realm="registry"]"#
        );
    }

    #[test]
    fn several_challenges_and_escapes() {
        assert_eq!(
            show(r#"Basic realm="a\"b", Bearer realm="https://t/token", service=s"#),
            r#"basic[realm="a\"b"] | bearer[realm="https://t/token" service="s"]"#
        );
        assert_eq!(show("Bearer"), "bearer[]");
    }

    #[test]
    fn malformed_input_keeps_what_was_read() {
        assert_eq!(show(""), "");
        assert_eq!(show("   ,, "), "");
        assert_eq!(show(r#"Bearer realm="unterminated"#), "bearer[]");
        assert_eq!(show(r#"Bearer realm="x", ==="#), r#"bearer[realm="x"]"#);
        assert_eq!(show("Bearer realm=\"é\""), "bearer[realm=\"é\"]");
    }
}
