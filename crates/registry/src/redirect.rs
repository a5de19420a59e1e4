//! Which HTTP redirects the client follows, decided here, purely.
//!
//! ureq would follow any redirect (to any host, from https to plain http),
//! which undoes two rules the client keeps everywhere else: a registry's
//! next-page `Link` must stay on the registry, and plain HTTP is used only on
//! loopback or when asked for (`insecure`). So ureq's following is off and
//! each answer's `Location` passes [`next`] first.
//!
//! What may move to another host: only blob downloads. Registries send those
//! to a CDN or to pre-signed storage URLs (Docker Hub, GHCR, distribution on
//! S3); the content is addressed by its digest, which the client checks, and
//! no `Authorization` goes along. The API calls (the `/v2/` ping, tag lists,
//! manifests) answer from the registry itself, so a redirect of one to another
//! host is refused, as a cross-host `Link` is. A token realm is another host
//! by design, but its own redirects stay on the realm's host.

use crate::link::Url;
use crate::reference::host_is_loopback;

/// How far a redirect may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Only to the host the request went to (API calls, token realms).
    SameHost,
    /// To any host (blob downloads, checked against their digest).
    AnyHost,
}

/// How far a redirect of a request to the registry's API at `url` may go:
/// anywhere for a blob (`/v2/<name>/blobs/<digest>`), else the same host.
pub fn reach(url: &Url) -> Reach {
    let path = url.path_and_query().split('?').next().unwrap_or("");
    let mut segments = path.rsplit('/');
    let _digest = segments.next();
    if segments.next() == Some("blobs") {
        Reach::AnyHost
    } else {
        Reach::SameHost
    }
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `Location` is not an http(s) URL or reference.
    BadLocation,
    /// To another host, for a request that must stay on its host.
    OtherHost(Url),
    /// To plain HTTP where only HTTPS is allowed.
    PlainHttp(Url),
}

/// Statuses that redirect (RFC 9110 §15.4, without 300 and 304).
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Where a redirect from `from` to `location` leads, if it may be followed.
pub fn next(from: &Url, location: &str, reach: Reach, insecure: bool) -> Result<Url, Refusal> {
    let to = from.join(location).ok_or(Refusal::BadLocation)?;
    if reach == Reach::SameHost && to.authority() != from.authority() {
        return Err(Refusal::OtherHost(to));
    }
    // From HTTPS down to plain HTTP only when asked for, even to loopback.
    let plain_ok = insecure || (from.scheme() == "http" && plain_http_allowed(&to, false));
    if to.scheme() == "http" && !plain_ok {
        return Err(Refusal::PlainHttp(to));
    }
    Ok(to)
}

/// Plain HTTP is for loopback, or for anything when `insecure` is set.
pub fn plain_http_allowed(url: &Url, insecure: bool) -> bool {
    insecure || host_is_loopback(url.authority())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect(s)
    }

    #[test]
    fn same_host_redirects_are_followed() {
        let from = url("https://r.example/v2/a/tags/list");
        assert_eq!(
            next(&from, "/v2/a/tags/list?n=10", Reach::SameHost, false),
            Ok(url("https://r.example/v2/a/tags/list?n=10"))
        );
        assert_eq!(
            next(&from, "https://R.example/v2/b", Reach::SameHost, false),
            Ok(url("https://r.example/v2/b"))
        );
    }

    #[test]
    fn other_hosts_only_for_blobs() {
        let from = url("https://r.example/v2/a/manifests/v1");
        let cdn = "https://cdn.example/blob?sig=abc";
        assert_eq!(
            next(&from, cdn, Reach::SameHost, false),
            Err(Refusal::OtherHost(url(cdn)))
        );
        assert_eq!(next(&from, cdn, Reach::AnyHost, false), Ok(url(cdn)));
        // Another port is another server.
        assert!(matches!(
            next(&from, "https://r.example:8443/v2/", Reach::SameHost, false),
            Err(Refusal::OtherHost(_))
        ));
    }

    #[test]
    fn never_down_to_plain_http_unless_insecure() {
        let from = url("https://r.example/v2/a/tags/list");
        let plain = "http://r.example/v2/a/tags/list";
        for reach in [Reach::SameHost, Reach::AnyHost] {
            assert_eq!(
                next(&from, plain, reach, false),
                Err(Refusal::PlainHttp(url(plain)))
            );
            assert_eq!(next(&from, plain, reach, true), Ok(url(plain)));
        }
        // A blob on plain HTTP elsewhere, even from a plain-HTTP loopback registry.
        let local = url("http://127.0.0.1:5000/v2/a/blobs/sha256:x");
        assert!(matches!(
            next(&local, "http://cdn.example/x", Reach::AnyHost, false),
            Err(Refusal::PlainHttp(_))
        ));
        assert!(next(&local, "/v2/a/blobs/other", Reach::SameHost, false).is_ok());
        // Up to HTTPS is always fine.
        assert!(next(&local, "https://cdn.example/x", Reach::AnyHost, false).is_ok());
    }

    #[test]
    fn bad_locations() {
        let from = url("https://r.example/v2/");
        for bad in [
            "",
            "ftp://r.example/x",
            "https://user:pw@r.example/",
            "\u{1b}[2J",
        ] {
            assert_eq!(
                next(&from, bad, Reach::AnyHost, true),
                Err(Refusal::BadLocation),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_blobs_reach_other_hosts() {
        let reach_of = |path: &str| reach(&Url::new("https", "r.example", path));
        assert_eq!(reach_of("/v2/a/blobs/sha256:ab"), Reach::AnyHost);
        assert_eq!(reach_of("/v2/a/b/blobs/sha256:ab?x=1"), Reach::AnyHost);
        for api in [
            "/v2/",
            "/v2/blobs/tags/list",
            "/v2/a/blobs/tags/list?n=1",
            "/v2/blobs/manifests/v1",
            "/v2/a/manifests/sha256:ab",
        ] {
            assert_eq!(reach_of(api), Reach::SameHost, "{api}");
        }
    }

    #[test]
    fn statuses() {
        for s in [301, 302, 303, 307, 308] {
            assert!(is_redirect(s));
        }
        for s in [200, 300, 304, 404] {
            assert!(!is_redirect(s));
        }
    }
}
