//! Pagination links: the `Link: <url>; rel="next"` header (RFC 8288) that the
//! distribution spec uses for `tags/list`, and the small slice of RFC 3986
//! reference resolution needed to follow it (registries often send a path
//! such as `</v2/a/tags/list?last=x&n=100>`).
//!
//! Written by hand: the `url` crate would resolve references too, but it pulls
//! in an IDNA/Unicode stack larger than this whole client; registry URLs are
//! ASCII, and only the forms below occur.

use std::fmt;

/// An absolute http(s) URL split into the parts resolution needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    scheme: String,
    authority: String,
    /// Path plus query, always starting with `/`.
    path_and_query: String,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL; None for anything else.
    pub fn parse(s: &str) -> Option<Url> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.is_empty()
            || authority.contains('@')
            || !is_clean(authority)
            || !is_clean(tail)
        {
            // Userinfo in a URL would leak credentials into logs; refuse it.
            return None;
        }
        let path_and_query = match tail {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        Some(Url {
            scheme,
            authority: authority.to_ascii_lowercase(),
            path_and_query,
        })
    }

    pub fn new(scheme: &str, authority: &str, path_and_query: &str) -> Url {
        Url {
            scheme: scheme.to_owned(),
            authority: authority.to_ascii_lowercase(),
            path_and_query: path_and_query.to_owned(),
        }
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// `host[:port]` as written.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// `scheme://authority`: what an error may show of a URL whose path or
    /// query could hold a signature.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// Resolves a URI reference against this URL (RFC 3986 §5.2, without
    /// dot-segment removal, which registries never need). None when the
    /// reference is not an http(s) URL or reference.
    pub fn join(&self, reference: &str) -> Option<Url> {
        let reference = reference.trim();
        if reference.is_empty() || !is_clean(reference) {
            return None;
        }
        if reference.contains("://") {
            return Url::parse(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme));
        }
        let reference = reference.split('#').next().unwrap_or("");
        let path_and_query = if reference.starts_with('/') {
            reference.to_owned()
        } else if reference.starts_with('?') {
            let path = self.path_and_query.split('?').next().unwrap_or("/");
            format!("{path}{reference}")
        } else {
            let path = self.path_and_query.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{reference}")
        };
        Some(Url {
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            path_and_query,
        })
    }

    /// True when both URLs talk to the same server (scheme, host and port).
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.authority == other.authority
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme, self.authority, self.path_and_query
        )
    }
}

/// Printable ASCII without spaces: what a URL in a header may contain.
fn is_clean(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

/// Finds the target of the `rel="next"` link in a `Link` header value.
/// Several links may be comma-separated; `rel` may list several relation types.
pub fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        // Parameters run until the next link (the next '<' after a comma).
        let params_end = after.find('<').unwrap_or(after.len());
        let params = &after[..params_end];
        if params.split(';').any(is_rel_next) {
            return Some(target);
        }
        rest = &after[params_end..];
    }
}

fn is_rel_next(param: &str) -> bool {
    let Some((key, value)) = param.split_once('=') else {
        return false;
    };
    if !key.trim().eq_ignore_ascii_case("rel") {
        return false;
    }
    let value = value.trim().trim_end_matches(',').trim().trim_matches('"');
    value
        .split_ascii_whitespace()
        .any(|rel| rel.eq_ignore_ascii_case("next"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:5000/v2/a/b/tags/list?n=2").unwrap()
    }

    #[test]
    fn finds_next_link() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=x&n=100>; rel="next""#),
            Some("/v2/a/tags/list?last=x&n=100")
        );
        assert_eq!(
            next_link(r#"<https://h/p?1>; rel="prev", <https://h/p?3>; rel=next"#),
            Some("https://h/p?3")
        );
        assert_eq!(
            next_link(r#"<https://h/p?3>; title="x"; rel="prev next""#),
            Some("https://h/p?3")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link(r#"</x; rel="next""#), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn resolves_references() {
        let b = base();
        let join = |r: &str| b.join(r).map(|u| u.to_string());
        assert_eq!(
            join("/v2/a/b/tags/list?last=t&n=2").as_deref(),
            Some("http://127.0.0.1:5000/v2/a/b/tags/list?last=t&n=2")
        );
        assert_eq!(
            join("?last=t").as_deref(),
            Some("http://127.0.0.1:5000/v2/a/b/tags/list?last=t")
        );
        assert_eq!(
            join("list?last=t").as_deref(),
            Some("http://127.0.0.1:5000/v2/a/b/tags/list?last=t")
        );
        assert_eq!(
            join("//other:1/v2/x").as_deref(),
            Some("http://other:1/v2/x")
        );
        assert_eq!(
            join("HTTPS://Ghcr.io/v2/x?last=1").as_deref(),
            Some("https://ghcr.io/v2/x?last=1")
        );
        assert_eq!(join("ftp://x/y"), None);
        assert_eq!(join("http://user:pw@h/x"), None);
        assert_eq!(join("/a b"), None);
        assert_eq!(join(""), None);
    }

    #[test]
    fn origin() {
        let b = base();
        assert!(b.same_origin(&b.join("/x").unwrap()));
        assert!(!b.same_origin(&b.join("http://127.0.0.2:5000/x").unwrap()));
        assert!(!b.same_origin(&b.join("https://127.0.0.1:5000/x").unwrap()));
    }
}
