//! Errors callers branch on. Every message is one line that says what failed,
//! against what, and what to do; none ever contains a credential or token.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),

    #[error(
        "cannot resolve registry host {host:?}: check the name, or your DNS and proxy settings"
    )]
    UnknownHost { host: String },

    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },

    #[error("{url}: no complete answer within {}s (the registry or network stalled)", .after.as_secs_f32())]
    Timeout { url: String, after: Duration },

    #[error(
        "{url}: 401 Unauthorized {}",
        if *.used_credentials { "with the credentials found for this registry; check them (docker login / podman login)" }
        else { "without credentials; log in first (docker login / podman login) or check the repository name" }
    )]
    Unauthorized { url: String, used_credentials: bool },

    #[error(
        "{url}: 401 Unauthorized without a WWW-Authenticate challenge, so there is no way to authenticate; is this a registry's /v2/ API?"
    )]
    NoChallenge { url: String },

    #[error(
        "{url}: 403 Forbidden {}",
        if *.used_credentials { "with the credentials found for this registry: they lack pull access" }
        else { "without credentials: the repository is private or the registry refuses anonymous pulls" }
    )]
    Forbidden { url: String, used_credentials: bool },

    #[error("{what} not found (404 from {url}){}", if *.used_credentials { "" } else { "; a private repository also looks like this without credentials" })]
    NotFound {
        what: String,
        url: String,
        used_credentials: bool,
    },

    #[error("{url}: unexpected HTTP {status}{}", if .detail.is_empty() { String::new() } else { format!(": {}", .detail) })]
    Status {
        url: String,
        status: u16,
        detail: String,
    },

    #[error("{url}: gave up after {attempts} attempts; the last one failed with: {last}")]
    TooManyRetries {
        url: String,
        attempts: u32,
        last: String,
    },

    #[error("{url}: response is not the JSON expected ({detail})")]
    InvalidBody { url: String, detail: String },

    #[error("{url}: response is larger than the {limit}-byte limit; refusing to read it")]
    TooLarge { url: String, limit: u64 },

    #[error("{from}: the next page link points to another server ({to}); refusing to follow it")]
    CrossHostLink { from: String, to: String },

    // The link is the server's text: not quoted, since a server may echo
    // what it was sent (an Authorization header) into any field.
    #[error(
        "{from}: the next page link ({} bytes, not shown) is not a valid http(s) URL reference",
        link.len()
    )]
    BadLink { from: String, link: String },

    #[error("{url}: the registry's page links loop back to a page already read")]
    LinkLoop { url: String },

    #[error("{url}: more than {limit} pages of results; refusing to read further")]
    TooManyPages { url: String, limit: usize },

    #[error(
        "listing the tags of {repository}: the registry sent more than {limit} bytes of pages in all; refusing to read further"
    )]
    ListingTooLarge { repository: String, limit: u64 },

    #[error("listing the tags of {repository}: more than {limit} tags; refusing to read further")]
    TooManyTags { repository: String, limit: usize },

    #[error(
        "listing the tags of {repository}: not done within {}s, the limit for a whole listing; the registry is too slow or its pages do not end",
        .limit.as_secs_f32()
    )]
    ListingTooLong { repository: String, limit: Duration },

    #[error("{from}: refusing the redirect to {to}: {reason}")]
    Redirect {
        from: String,
        /// Scheme and host only: a redirect's query may hold a signature.
        to: String,
        reason: String,
    },

    #[error("{url}: more than {limit} redirects; refusing to follow further")]
    TooManyRedirects { url: String, limit: usize },

    #[error(
        "{url}: through the proxy {proxy} (from HTTPS_PROXY, HTTP_PROXY or ALL_PROXY): {detail}; check the proxy, or name the registry in NO_PROXY"
    )]
    Proxy {
        url: String,
        /// Scheme, host and port only, never the proxy's user name or password.
        proxy: String,
        detail: String,
    },

    #[error("{url}: the content does not match its digest {digest}")]
    DigestMismatch { url: String, digest: String },

    #[error("token endpoint {realm}: {detail}")]
    Token { realm: String, detail: String },

    #[error("credentials for {registry}: {detail}")]
    Credentials { registry: String, detail: String },

    #[error(
        "{reference:?}: not a valid tag; tags are 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    )]
    InvalidTag { reference: String },

    // Not quoted, as for `BadLink`.
    #[error(
        "{url}: the registry sent an invalid digest ({} bytes, not shown; expected sha256: and 64 hex digits)",
        digest.len()
    )]
    BadDigest { url: String, digest: String },
}

impl Error {
    /// True when the registry said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A header value the server sent is never part of the message: a
    /// server may echo the Authorization header into it.
    #[test]
    fn header_values_from_the_server_are_not_quoted() {
        let echoed = "Basic YWxpY2U6aHVudGVyMg==";
        for e in [
            Error::BadLink {
                from: "http://r/v2/x/tags/list".into(),
                link: echoed.into(),
            },
            Error::BadDigest {
                url: "http://r/v2/x/manifests/t".into(),
                digest: echoed.into(),
            },
        ] {
            let shown = e.to_string();
            assert!(!shown.contains("YWxp"), "{shown}");
            assert!(shown.contains("26 bytes, not shown"), "{shown}");
        }
    }
}
