//! A blocking registry client for the few calls kind-crio needs: list tags,
//! resolve a tag to its manifest digest, ask whether a tag exists.
//!
//! Protocol (OCI distribution spec, Docker token auth):
//! 1. `GET /v2/` once per registry to learn its auth scheme from the 401 challenge.
//! 2. Bearer: fetch a token for `repository:<name>:pull` from the challenge's realm
//!    (anonymously, with Basic credentials, or with a refresh token), cache it per
//!    scope until it expires; ask again once on `insufficient_scope`.
//!    Basic: send the credentials on every request.
//! 3. Follow `Link: <…>; rel="next"` pages, same server only, with caps on the
//!    pages, the bytes and the tags of a whole listing, and a deadline for it.
//!
//! Transient failures (429 honouring `Retry-After`, 5xx, connection resets) are
//! retried with a bounded number of attempts; every request has a timeout and
//! every body a size cap. Redirects are followed by `redirect`'s rules, not
//! ureq's. A proxy from the environment (`HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY`, minus `NO_PROXY`) is used for every host but loopback, which Go's
//! tools (docker, skopeo) never proxy either; errors through it name it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use ureq::http::{Response, StatusCode};

use crate::challenge::{self, Challenge};
use crate::credentials::{Credential, CredentialSource};
use crate::decode;
use crate::error::{Error, Result};
use crate::link::{self, Url};
use crate::redirect::{self, Reach, Refusal};
use crate::reference::{Repository, host_is_loopback};

/// Redirects followed for one request, as Go's HTTP client allows ten.
const MAX_REDIRECTS: usize = 10;

/// Longest a token is kept, whatever lifetime its server claims.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Media types a manifest request accepts: OCI index, Docker manifest list,
/// OCI manifest, Docker manifest v2 (multi-arch first, as `docker` asks).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Tuning knobs. `Options::default()` is what the command line uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// Allow plain HTTP to a registry that is not on loopback.
    pub insecure: bool,
    /// Bound on one whole request: connect, send, and read the complete answer.
    pub timeout: Duration,
    /// Largest response body read (tags pages, tokens, manifests).
    pub max_body_bytes: u64,
    /// Largest number of tag pages followed.
    pub max_pages: usize,
    /// Largest number of bytes read for one tag listing, all its pages together.
    pub max_listing_bytes: u64,
    /// Largest number of tags one listing keeps (a parsed tag takes more memory
    /// than its bytes on the wire: this bounds what the byte cap does not).
    pub max_tags: usize,
    /// Bound on one whole tag listing: every page, retry and wait in it.
    pub listing_deadline: Duration,
    /// Tries per request, the first included, on 429, 5xx and connection resets.
    pub max_attempts: u32,
    /// Longest single wait between tries (a larger `Retry-After` is cut to this).
    pub max_retry_wait: Duration,
    /// First backoff after a 5xx or reset; doubled on every further try.
    pub backoff: Duration,
    /// Ask for pages of this many tags (`?n=`). None: let the registry choose,
    /// as `skopeo` does (Docker Hub then sends everything at once).
    pub page_size: Option<u32>,
    pub credentials: CredentialSource,
    pub user_agent: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure: false,
            timeout: Duration::from_secs(30),
            max_body_bytes: 32 << 20,
            max_pages: 1_000,
            max_listing_bytes: 64 << 20,
            max_tags: 500_000,
            listing_deadline: Duration::from_secs(300),
            max_attempts: 5,
            max_retry_wait: Duration::from_secs(60),
            backoff: Duration::from_millis(250),
            page_size: None,
            credentials: CredentialSource::Config,
            user_agent: concat!("kind-crio/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// `GET /v2/<name>/tags/list` as `skopeo list-tags` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagList {
    /// The normalised repository, e.g. `docker.io/kindest/node`.
    pub repository: String,
    /// Tags in registry order, all pages concatenated.
    pub tags: Vec<String>,
}

/// A content digest such as `sha256:…` (validated: algorithm and lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Option<Digest> {
        let (algo, hex) = s.split_once(':')?;
        let len = match algo {
            "sha256" => 64,
            "sha512" => 128,
            _ => return None,
        };
        let ok = hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Digest(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a registry asked for at `/v2/`.
#[derive(Debug, Clone)]
enum Scheme {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Per registry authority.
    schemes: HashMap<String, Scheme>,
    /// Per (realm, service, scope).
    tokens: HashMap<(String, String, String), Token>,
    /// Per registry authority; looked up once, on first need.
    credentials: HashMap<String, Option<Credential>>,
}

/// A registry client. Cheap to share by reference; internally synchronised.
pub struct Client {
    /// Through the environment's proxy, if there is one.
    agent: ureq::Agent,
    /// Never through a proxy: for loopback.
    direct: ureq::Agent,
    proxy: Option<EnvProxy>,
    options: Options,
    state: Mutex<State>,
}

/// The proxy the environment names, and how errors name it.
struct EnvProxy {
    proxy: ureq::Proxy,
    /// `scheme://host:port`, without the user name and password.
    name: String,
}

/// The end of a whole tag listing, and what it is for the error message.
struct Deadline {
    at: Instant,
    limit: Duration,
    repository: String,
}

impl Deadline {
    fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    fn error(&self) -> Error {
        Error::ListingTooLong {
            repository: self.repository.clone(),
            limit: self.limit,
        }
    }
}

/// One try of one request, as [`Client::retrying`] hands it out.
struct Attempt<'a> {
    url: &'a Url,
    agent: &'a ureq::Agent,
    /// This request's bound: the options' timeout, or less before a deadline.
    timeout: Duration,
    /// False once a redirect left the first host: send no credentials there.
    first_host: bool,
    /// True after the first redirect.
    redirected: bool,
}

impl Attempt<'_> {
    fn get(&self) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .get(self.url.to_string())
            .config()
            .timeout_global(Some(self.timeout))
            .build()
    }

    fn head(&self) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .head(self.url.to_string())
            .config()
            .timeout_global(Some(self.timeout))
            .build()
    }

    fn post(&self) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .post(self.url.to_string())
            .config()
            .timeout_global(Some(self.timeout))
            .build()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

enum Method {
    Get,
    Head,
}

impl Client {
    pub fn new(options: Options) -> Client {
        let proxy = ureq::Proxy::try_from_env();
        let agent_via = |proxy: Option<ureq::Proxy>| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(options.timeout))
                .user_agent(options.user_agent.as_str())
                .proxy(proxy)
                // `request` follows redirects by `redirect`'s rules.
                .max_redirects(0)
                .build()
                .new_agent()
        };
        Client {
            agent: agent_via(proxy.clone()),
            direct: agent_via(None),
            proxy: proxy.map(|proxy| EnvProxy {
                name: proxy_name(&proxy),
                proxy,
            }),
            options,
            state: Mutex::new(State::default()),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Every tag of `repo`, in registry order, following pagination.
    pub fn list_tags(&self, repo: &Repository) -> Result<TagList> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let o = &self.options;
        let deadline = Deadline {
            at: Instant::now() + o.listing_deadline,
            limit: o.listing_deadline,
            repository: repo.to_string(),
        };
        let deadline = Some(&deadline);
        let first_path = match self.options.page_size {
            Some(n) => format!("/v2/{}/tags/list?n={n}", repo.path()),
            None => format!("/v2/{}/tags/list", repo.path()),
        };
        let mut url = self.url(repo, &first_path);
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        let mut bytes_read = 0u64;
        for _ in 0..o.max_pages {
            if !seen.insert(url.to_string()) {
                return Err(Error::LinkLoop {
                    url: url.to_string(),
                });
            }
            let mut resp =
                self.send(repo, Method::Get, &url, Some("application/json"), deadline)?;
            self.expect_success(&resp, &url, || format!("repository {repo}"), repo)?;
            let next = resp
                .headers()
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(link::next_link)
                .map(str::to_owned);
            let left = o.max_listing_bytes.saturating_sub(bytes_read);
            let body = match self.read_body(&mut resp, &url, left.min(o.max_body_bytes), deadline) {
                Err(Error::TooLarge { .. }) if left < o.max_body_bytes => {
                    Err(Error::ListingTooLarge {
                        repository: repo.to_string(),
                        limit: o.max_listing_bytes,
                    })
                }
                other => other,
            }?;
            bytes_read += body.len() as u64;
            let page: Page = decode::json(&body).map_err(|detail| Error::InvalidBody {
                url: url.to_string(),
                detail,
            })?;
            let page = page.tags.unwrap_or_default();
            if page.len() > o.max_tags - tags.len() {
                return Err(Error::TooManyTags {
                    repository: repo.to_string(),
                    limit: o.max_tags,
                });
            }
            tags.extend(page);
            let Some(next) = next else {
                return Ok(TagList {
                    repository: repo.to_string(),
                    tags,
                });
            };
            let next_url = url.join(&next).ok_or_else(|| Error::BadLink {
                from: url.to_string(),
                link: next.clone(),
            })?;
            if !url.same_origin(&next_url) {
                return Err(Error::CrossHostLink {
                    from: url.to_string(),
                    to: next_url.authority().to_owned(),
                });
            }
            url = next_url;
        }
        Err(Error::TooManyPages {
            url: url.to_string(),
            limit: o.max_pages,
        })
    }

    /// The manifest digest `tag` points to: `Docker-Content-Digest` of a HEAD,
    /// else the sha256 of the manifest body.
    pub fn manifest_digest(&self, repo: &Repository, tag: &str) -> Result<Digest> {
        check_tag(tag, repo)?;
        let url = self.url(repo, &format!("/v2/{}/manifests/{tag}", repo.path()));
        let what = || format!("tag {repo}:{tag}");
        let resp = self.send(repo, Method::Head, &url, Some(MANIFEST_ACCEPT), None)?;
        self.expect_success(&resp, &url, what, repo)?;
        if let Some(d) = header(&resp, "docker-content-digest") {
            return Digest::parse(d.trim()).ok_or_else(|| Error::BadDigest {
                url: url.to_string(),
                digest: d.to_owned(),
            });
        }
        let mut resp = self.send(repo, Method::Get, &url, Some(MANIFEST_ACCEPT), None)?;
        self.expect_success(&resp, &url, what, repo)?;
        let body = self.read_body(&mut resp, &url, self.options.max_body_bytes, None)?;
        let hex: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Digest(format!("sha256:{hex}")))
    }

    /// The image config's labels of `repo:tag` for `linux/<arch>`: through an
    /// index to the platform's manifest, then its config blob. `Ok(None)` when
    /// the tag does not exist (or the index has no such platform).
    pub fn image_labels(
        &self,
        repo: &Repository,
        tag: &str,
        arch: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>> {
        #[derive(Deserialize)]
        struct Descriptor {
            digest: String,
            #[serde(default)]
            platform: Option<Platform>,
        }
        #[derive(Deserialize)]
        struct Platform {
            os: String,
            architecture: String,
        }
        #[derive(Deserialize)]
        struct Manifest {
            #[serde(default)]
            manifests: Option<Vec<Descriptor>>,
            #[serde(default)]
            config: Option<Descriptor>,
        }
        #[derive(Deserialize)]
        struct ImageConfig {
            #[serde(default)]
            config: Option<Inner>,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(default, rename = "Labels")]
            labels: Option<std::collections::BTreeMap<String, String>>,
        }
        check_tag(tag, repo)?;
        let mut reference = tag.to_owned();
        // An index leads to one more manifest; a manifest to its config.
        for _ in 0..2 {
            let url = self.url(repo, &format!("/v2/{}/manifests/{reference}", repo.path()));
            let mut resp = self.send(repo, Method::Get, &url, Some(MANIFEST_ACCEPT), None)?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            self.expect_success(&resp, &url, || format!("tag {repo}:{tag}"), repo)?;
            let body = self.read_body(&mut resp, &url, self.options.max_body_bytes, None)?;
            let manifest: Manifest = decode::json(&body).map_err(|detail| Error::InvalidBody {
                url: url.to_string(),
                detail,
            })?;
            if let Some(list) = manifest.manifests {
                let Some(d) = list.into_iter().find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                }) else {
                    return Ok(None);
                };
                reference = checked_digest(&d.digest, &url)?;
                continue;
            }
            let Some(config) = manifest.config else {
                return Err(Error::InvalidBody {
                    url: url.to_string(),
                    detail: "a manifest without a config".to_owned(),
                });
            };
            let digest = checked_digest(&config.digest, &url)?;
            let url = self.url(repo, &format!("/v2/{}/blobs/{digest}", repo.path()));
            // A blob may be redirected to another host (a CDN): its digest vouches for it.
            let mut resp = self.send(repo, Method::Get, &url, None, None)?;
            self.expect_success(&resp, &url, || format!("config of {repo}:{tag}"), repo)?;
            let body = self.read_body(&mut resp, &url, self.options.max_body_bytes, None)?;
            if !content_matches(&digest, &body) {
                return Err(Error::DigestMismatch {
                    url: url.to_string(),
                    digest,
                });
            }
            let config: ImageConfig = decode::json(&body).map_err(|detail| Error::InvalidBody {
                url: url.to_string(),
                detail,
            })?;
            return Ok(Some(
                config.config.and_then(|c| c.labels).unwrap_or_default(),
            ));
        }
        Err(Error::InvalidBody {
            url: self
                .url(repo, &format!("/v2/{}/manifests/{tag}", repo.path()))
                .to_string(),
            detail: "an index that points to another index".to_owned(),
        })
    }

    /// Whether `repo` holds the manifest `digest` (a `HEAD` by digest, so
    /// whatever its tags say now). A missing repository is `Ok(false)` too.
    pub fn manifest_exists(&self, repo: &Repository, digest: &Digest) -> Result<bool> {
        let url = self.url(repo, &format!("/v2/{}/manifests/{digest}", repo.path()));
        let resp = self.send(repo, Method::Head, &url, Some(MANIFEST_ACCEPT), None)?;
        match self.expect_success(&resp, &url, || format!("manifest {repo}@{digest}"), repo) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `repo:tag` exists. A missing repository is `Ok(false)` too.
    pub fn tag_exists(&self, repo: &Repository, tag: &str) -> Result<bool> {
        match self.manifest_digest(repo, tag) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The URL of `path_and_query` on `repo`'s registry: plain HTTP on
    /// loopback or with `insecure`, HTTPS elsewhere. Pure.
    pub fn url(&self, repo: &Repository, path_and_query: &str) -> Url {
        let plain = repo.is_loopback() || self.options.insecure;
        Url::new(
            if plain { "http" } else { "https" },
            repo.api_host(),
            path_and_query,
        )
    }

    fn scope(repo: &Repository) -> String {
        format!("repository:{}:pull", repo.path())
    }

    /// Sends one request with authentication, answering one auth challenge.
    fn send(
        &self,
        repo: &Repository,
        method: Method,
        url: &Url,
        accept: Option<&str>,
        deadline: Option<&Deadline>,
    ) -> Result<Response<ureq::Body>> {
        let scheme = self.scheme(url, deadline)?;
        let mut scope = Self::scope(repo);
        let mut auth = self.authorization(repo, &scheme, &scope, false, deadline)?;
        let mut retried_auth = false;
        loop {
            let resp = self.request(&method, url, accept, auth.as_deref(), deadline)?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried_auth {
                return Ok(resp);
            }
            // A 401 with a token we already had: the token expired, was
            // revoked, or lacks scope. Ask once more with the scope the
            // registry names (it may be wider than ours).
            retried_auth = true;
            let challenges = challenge::parse(header(&resp, "www-authenticate").unwrap_or(""));
            let Some(ch) = preferred(&challenges) else {
                return Err(Error::NoChallenge {
                    url: url.to_string(),
                });
            };
            let scheme = scheme_from(ch);
            if let Some(s) = ch
                .param("scope")
                .filter(|_| ch.param("error") == Some("insufficient_scope"))
            {
                scope = s.to_owned();
            }
            self.lock()
                .schemes
                .insert(url.authority().to_owned(), scheme.clone());
            auth = self.authorization(repo, &scheme, &scope, true, deadline)?;
            if auth.is_none() {
                return Ok(resp);
            }
        }
    }

    /// The registry's scheme, from cache or from a `/v2/` ping.
    fn scheme(&self, url: &Url, deadline: Option<&Deadline>) -> Result<Scheme> {
        if let Some(s) = self.lock().schemes.get(url.authority()) {
            return Ok(s.clone());
        }
        let ping = Url::new(url.scheme(), url.authority(), "/v2/");
        let mut resp = self.request(&Method::Get, &ping, None, None, deadline)?;
        // Read the (small) body so the connection goes back to the pool and
        // the next request reuses it instead of opening another.
        let _ = resp.body_mut().with_config().limit(64 << 10).read_to_vec();
        let scheme = match resp.status().as_u16() {
            401 => {
                let challenges = challenge::parse(header(&resp, "www-authenticate").unwrap_or(""));
                match preferred(&challenges) {
                    Some(ch) => scheme_from(ch),
                    None => {
                        return Err(Error::NoChallenge {
                            url: ping.to_string(),
                        });
                    }
                }
            }
            // Some registries answer /v2/ with 404 or 200; go on anonymously and
            // let the real request's challenge, if any, decide.
            _ => Scheme::Anonymous,
        };
        self.lock()
            .schemes
            .insert(url.authority().to_owned(), scheme.clone());
        Ok(scheme)
    }

    /// The `Authorization` header value for `scheme`, fetching a token if needed.
    fn authorization(
        &self,
        repo: &Repository,
        scheme: &Scheme,
        scope: &str,
        refresh: bool,
        deadline: Option<&Deadline>,
    ) -> Result<Option<String>> {
        match scheme {
            Scheme::Anonymous => Ok(None),
            Scheme::Basic => Ok(self.credential(repo)?.and_then(|c| match c {
                Credential::Basic { username, password } => Some(basic(&username, &password)),
                Credential::IdentityToken(_) => None,
            })),
            Scheme::Bearer { realm, service } => {
                let key = (
                    realm.clone(),
                    service.clone().unwrap_or_default(),
                    scope.to_owned(),
                );
                if !refresh
                    && let Some(t) = self.lock().tokens.get(&key)
                    && t.expires > Instant::now()
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let token = self.fetch_token(repo, realm, service.as_deref(), scope, deadline)?;
                let value = format!("Bearer {}", token.value);
                self.lock().tokens.insert(key, token);
                Ok(Some(value))
            }
        }
    }

    fn credential(&self, repo: &Repository) -> Result<Option<Credential>> {
        if let Some(c) = self.lock().credentials.get(repo.registry()) {
            return Ok(c.clone());
        }
        let c = self
            .options
            .credentials
            .lookup(repo)
            .map_err(|detail| Error::Credentials {
                registry: repo.registry().to_owned(),
                detail,
            })?;
        self.lock()
            .credentials
            .insert(repo.registry().to_owned(), c.clone());
        Ok(c)
    }

    /// Docker token auth: GET the realm (or POST a refresh token, OAuth2 style).
    fn fetch_token(
        &self,
        repo: &Repository,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        deadline: Option<&Deadline>,
    ) -> Result<Token> {
        #[derive(Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let realm_url = Url::parse(realm).ok_or_else(|| Error::Token {
            realm: realm.to_owned(),
            detail: "the registry's challenge names a realm that is not an http(s) URL".to_owned(),
        })?;
        let token_err = |detail: String| Error::Token {
            realm: realm.to_owned(),
            detail,
        };
        if realm_url.scheme() == "http"
            && !redirect::plain_http_allowed(&realm_url, self.options.insecure)
        {
            return Err(token_err(
                "the registry's challenge names a plain-HTTP realm; refusing to ask for a token \
                 over plain HTTP unless plain HTTP is allowed (--insecure)"
                    .to_owned(),
            ));
        }
        let credential = self.credential(repo)?;
        let started = Instant::now();
        let mut resp = match &credential {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", "kind-crio"),
                    ("refresh_token", refresh.as_str()),
                    ("scope", scope),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                // The realm's own redirects stay on its host (`redirect`).
                self.follow(&realm_url, Reach::SameHost, deadline, |a| {
                    a.post().send_form(form.iter().copied())
                })?
            }
            _ => {
                let mut query = vec![("scope", scope)];
                if let Some(s) = service {
                    query.push(("service", s));
                }
                let auth = match &credential {
                    Some(Credential::Basic { username, password }) => {
                        Some(basic(username, password))
                    }
                    _ => None,
                };
                self.follow(&realm_url, Reach::SameHost, deadline, |a| {
                    let mut req = a.get();
                    if !a.redirected {
                        // A redirect's `Location` carries its own query.
                        req = req.query_pairs(query.iter().copied());
                    }
                    if let Some(h) = auth.as_ref().filter(|_| a.first_host) {
                        req = req.header("Authorization", h);
                    }
                    req.call()
                })?
            }
        };
        let used_credentials = credential.is_some();
        match resp.status().as_u16() {
            200 => {}
            401 => {
                return Err(Error::Unauthorized {
                    url: realm.to_owned(),
                    used_credentials,
                });
            }
            403 => {
                return Err(Error::Forbidden {
                    url: realm.to_owned(),
                    used_credentials,
                });
            }
            s => return Err(token_err(format!("unexpected HTTP {s}"))),
        }
        let body = self.read_body(&mut resp, &realm_url, self.options.max_body_bytes, deadline)?;
        let parsed: TokenResponse = decode::json(&body)
            .map_err(|detail| token_err(format!("not a token response ({detail})")))?;
        let value = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| token_err("the answer holds no usable token".to_owned()))?;
        Ok(Token {
            value,
            expires: token_expiry(started, parsed.expires_in),
        })
    }

    /// One HTTP exchange with retries and redirects, without authentication
    /// logic. `authorization` goes only to `url`'s own host.
    fn request(
        &self,
        method: &Method,
        url: &Url,
        accept: Option<&str>,
        authorization: Option<&str>,
        deadline: Option<&Deadline>,
    ) -> Result<Response<ureq::Body>> {
        self.follow(url, redirect::reach(url), deadline, |a| {
            let mut req = match method {
                Method::Get => a.get(),
                Method::Head => a.head(),
            };
            if let Some(v) = accept {
                req = req.header("Accept", v);
            }
            if let Some(v) = authorization.filter(|_| a.first_host) {
                req = req.header("Authorization", v);
            }
            req.call()
        })
    }

    /// Sends `attempt` to `url`, then to where each redirect leads while
    /// [`redirect::next`] allows it, up to [`MAX_REDIRECTS`].
    fn follow(
        &self,
        url: &Url,
        reach: Reach,
        deadline: Option<&Deadline>,
        mut attempt: impl FnMut(&Attempt<'_>) -> std::result::Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let mut target = url.clone();
        for hop in 0..=MAX_REDIRECTS {
            let first_host = target.authority() == url.authority();
            let resp = self.retrying(&target, deadline, |agent, timeout| {
                attempt(&Attempt {
                    url: &target,
                    agent,
                    timeout,
                    first_host,
                    redirected: hop > 0,
                })
            })?;
            let status = resp.status().as_u16();
            if !redirect::is_redirect(status) {
                return Ok(resp);
            }
            let location = header(&resp, "location").unwrap_or("");
            target = redirect::next(&target, location, reach, self.options.insecure).map_err(
                |refusal| {
                    let (to, reason) = match refusal {
                        Refusal::BadLocation => (
                            "an invalid location".to_owned(),
                            "it is not an http(s) URL".to_owned(),
                        ),
                        Refusal::OtherHost(to) => (
                            to.origin(),
                            "API calls stay on the registry's host; only blob downloads may move"
                                .to_owned(),
                        ),
                        Refusal::PlainHttp(to) => (
                            to.origin(),
                            "plain HTTP is allowed only on loopback or with --insecure".to_owned(),
                        ),
                    };
                    Error::Redirect {
                        from: target.to_string(),
                        to,
                        reason,
                    }
                },
            )?;
        }
        Err(Error::TooManyRedirects {
            url: url.to_string(),
            limit: MAX_REDIRECTS,
        })
    }

    /// The agent for `url` (direct for loopback), and the proxy's name when
    /// the request goes through one.
    fn route(&self, url: &Url) -> (&ureq::Agent, Option<&str>) {
        let Some(p) = &self.proxy else {
            return (&self.direct, None);
        };
        if host_is_loopback(url.authority()) {
            return (&self.direct, None);
        }
        let exempt = url
            .to_string()
            .parse::<ureq::http::Uri>()
            .is_ok_and(|uri| p.proxy.is_no_proxy(&uri));
        if exempt {
            (&self.agent, None)
        } else {
            (&self.agent, Some(&p.name))
        }
    }

    /// Runs `attempt` until it gives an answer worth returning: retries
    /// 429 (waiting `Retry-After`), 5xx and connection resets, with a bound,
    /// and never past `deadline`.
    fn retrying(
        &self,
        url: &Url,
        deadline: Option<&Deadline>,
        mut attempt: impl FnMut(
            &ureq::Agent,
            Duration,
        ) -> std::result::Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let max = self.options.max_attempts.max(1);
        let mut backoff = self.options.backoff;
        let mut last = String::new();
        let (agent, _) = self.route(url);
        for n in 1..=max {
            let timeout = match deadline {
                Some(d) if d.passed() => return Err(d.error()),
                Some(d) => self.options.timeout.min(d.at - Instant::now()),
                None => self.options.timeout,
            };
            let wait = match attempt(agent, timeout) {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retryable = status == 429 || matches!(status, 500 | 502 | 503 | 504);
                    if !retryable {
                        return Ok(resp);
                    }
                    last = format!("HTTP {status}");
                    let asked = (status == 429)
                        .then(|| header(&resp, "retry-after").and_then(parse_retry_after))
                        .flatten();
                    asked.unwrap_or(backoff)
                }
                Err(e) => {
                    let transient = is_transient(&e);
                    match self.transport_error(url, e, deadline) {
                        Error::Connect { detail, .. } if transient => {
                            last = detail;
                            backoff
                        }
                        Error::Proxy { detail, proxy, .. } if transient => {
                            last = format!("through the proxy {proxy}: {detail}");
                            backoff
                        }
                        err => return Err(err),
                    }
                }
            };
            if n == max {
                break;
            }
            let mut wait = wait.min(self.options.max_retry_wait);
            if let Some(d) = deadline {
                wait = wait.min(d.at.saturating_duration_since(Instant::now()));
            }
            std::thread::sleep(wait);
            backoff = backoff.saturating_mul(2);
        }
        Err(Error::TooManyRetries {
            url: url.to_string(),
            attempts: max,
            last,
        })
    }

    fn transport_error(&self, url: &Url, e: ureq::Error, deadline: Option<&Deadline>) -> Error {
        let timed_out = matches!(&e, ureq::Error::Timeout(_))
            || matches!(&e, ureq::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut);
        if let Some(d) = deadline.filter(|d| d.passed()) {
            // Whatever failed, it failed because the listing's time was up.
            return d.error();
        }
        let after = self.options.timeout;
        let url_s = url.to_string();
        match (self.route(url).1, e) {
            (Some(proxy), e) => Error::Proxy {
                url: url_s,
                proxy: proxy.to_owned(),
                detail: match e {
                    ureq::Error::HostNotFound => {
                        "the proxy's host name does not resolve".to_owned()
                    }
                    _ if timed_out => {
                        format!("no complete answer within {}s", after.as_secs_f32())
                    }
                    other => describe_transport(&other),
                },
            },
            (None, ureq::Error::HostNotFound) => Error::UnknownHost {
                host: url.authority().to_owned(),
            },
            (None, _) if timed_out => Error::Timeout { url: url_s, after },
            (None, other) => Error::Connect {
                url: url_s,
                detail: describe_transport(&other),
            },
        }
    }

    /// The body, at most `limit` bytes of it.
    fn read_body(
        &self,
        resp: &mut Response<ureq::Body>,
        url: &Url,
        limit: u64,
        deadline: Option<&Deadline>,
    ) -> Result<Vec<u8>> {
        if let Some(len) = header(resp, "content-length").and_then(|v| v.trim().parse::<u64>().ok())
            && len > limit
        {
            return Err(Error::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        resp.body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::TooLarge {
                    url: url.to_string(),
                    limit,
                },
                other => match self.transport_error(url, other, deadline) {
                    Error::Connect { detail, .. } => Error::InvalidBody {
                        url: url.to_string(),
                        detail: format!("the body could not be read whole: {detail}"),
                    },
                    e => e,
                },
            })
    }

    /// Turns error statuses into errors that say which and why.
    fn expect_success(
        &self,
        resp: &Response<ureq::Body>,
        url: &Url,
        what: impl FnOnce() -> String,
        repo: &Repository,
    ) -> Result<()> {
        let status = resp.status().as_u16();
        let used_credentials = || {
            self.lock()
                .credentials
                .get(repo.registry())
                .is_some_and(Option::is_some)
        };
        match status {
            200..=299 => Ok(()),
            401 => Err(Error::Unauthorized {
                url: url.to_string(),
                used_credentials: used_credentials(),
            }),
            403 => Err(Error::Forbidden {
                url: url.to_string(),
                used_credentials: used_credentials(),
            }),
            404 => Err(Error::NotFound {
                what: what(),
                url: url.to_string(),
                used_credentials: used_credentials(),
            }),
            s => Err(Error::Status {
                url: url.to_string(),
                status: s,
                detail: String::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain caches: a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn checked_digest(d: &str, url: &Url) -> Result<String> {
    Digest::parse(d)
        .map(|d| d.0)
        .ok_or_else(|| Error::BadDigest {
            url: url.to_string(),
            digest: d.to_owned(),
        })
}

/// Bearer wins over Basic when a registry offers both.
fn preferred(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.scheme == "bearer")
        .or_else(|| challenges.iter().find(|c| c.scheme == "basic"))
}

fn scheme_from(ch: &Challenge) -> Scheme {
    match (ch.scheme.as_str(), ch.param("realm")) {
        ("bearer", Some(realm)) => Scheme::Bearer {
            realm: realm.to_owned(),
            service: ch.param("service").map(str::to_owned),
        },
        _ => Scheme::Basic,
    }
}

fn basic(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn header<'a>(resp: &'a Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn check_tag(tag: &str, repo: &Repository) -> Result<()> {
    if crate::reference::is_valid_tag(tag) {
        Ok(())
    } else {
        Err(Error::InvalidTag {
            reference: format!("{repo}:{tag}"),
        })
    }
}

fn describe_transport(e: &ureq::Error) -> String {
    match e {
        ureq::Error::ConnectionFailed => "connection refused or unreachable".to_owned(),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Connection-level failures worth another try. The I/O error kind decides
/// where there is one: ureq words a connection closed before the answer as
/// "Peer disconnected" (kind `UnexpectedEof`), which no message check catches.
fn is_transient(e: &ureq::Error) -> bool {
    if let ureq::Error::Io(io) = e
        && matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionRefused
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::NotConnected
        )
    {
        return true;
    }
    let d = describe_transport(e).to_ascii_lowercase();
    [
        "reset",
        "broken pipe",
        "refused",
        "unreachable",
        "unexpected eof",
        "aborted",
    ]
    .iter()
    .any(|w| d.contains(w))
}

/// When a token fetched at `fetched` stops being used: after its lifetime (the
/// spec's 60 s when none is given), kept between 10 s and [`MAX_TOKEN_LIFETIME`],
/// less 5 s for clock and transit. Checked: a lifetime a server makes up
/// (`u64::MAX` seconds) must not overflow the clock.
fn token_expiry(fetched: Instant, expires_in: Option<u64>) -> Instant {
    let secs = expires_in
        .unwrap_or(60)
        .clamp(10, MAX_TOKEN_LIFETIME.as_secs());
    fetched
        .checked_add(Duration::from_secs(secs - 5))
        .unwrap_or(fetched)
}

/// Whether `body` is the content `digest` (a checked `sha256:`/`sha512:` digest) names.
fn content_matches(digest: &str, body: &[u8]) -> bool {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match digest.split_once(':') {
        Some(("sha256", want)) => hex(&Sha256::digest(body)) == want,
        Some(("sha512", want)) => hex(&sha2::Sha512::digest(body)) == want,
        _ => false,
    }
}

/// `scheme://host:port` of a proxy: what errors show of it (never its userinfo).
fn proxy_name(p: &ureq::Proxy) -> String {
    let scheme = match p.protocol() {
        ureq::ProxyProtocol::Http => "http",
        ureq::ProxyProtocol::Https => "https",
        ureq::ProxyProtocol::Socks4 => "socks4",
        ureq::ProxyProtocol::Socks4A => "socks4a",
        ureq::ProxyProtocol::Socks5 => "socks5",
        ureq::ProxyProtocol::Socks5h => "socks5h",
        _ => "proxy",
    };
    format!("{scheme}://{}:{}", p.host(), p.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(100));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&future).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        assert!(Digest::parse(&format!("sha256:{hex}")).is_some());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert!(Digest::parse("sha256:abc").is_none());
        assert!(Digest::parse(&format!("md5:{hex}")).is_none());
    }

    #[test]
    fn token_lifetimes_cannot_overflow() {
        let now = Instant::now();
        for huge in [u64::MAX, u64::MAX / 2, 1 << 40] {
            assert_eq!(
                token_expiry(now, Some(huge)),
                now + MAX_TOKEN_LIFETIME - Duration::from_secs(5)
            );
        }
        assert_eq!(token_expiry(now, None), now + Duration::from_secs(55));
        assert_eq!(token_expiry(now, Some(0)), now + Duration::from_secs(5));
        assert_eq!(token_expiry(now, Some(300)), now + Duration::from_secs(295));
    }

    #[test]
    fn blob_content_against_its_digest() {
        let sha256 = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert!(content_matches(sha256, b"hello"));
        assert!(!content_matches(sha256, b"hello!"));
        assert!(!content_matches(
            "md5:5d41402abc4b2a76b9719d911017c592",
            b"hello"
        ));
    }

    #[test]
    fn proxy_names_hide_userinfo() {
        let p = ureq::Proxy::new("http://alice:hunter2@proxy.example:3128").expect("proxy");
        assert_eq!(proxy_name(&p), "http://proxy.example:3128");
        let p = ureq::Proxy::new("proxy.example").expect("proxy");
        assert_eq!(proxy_name(&p), "http://proxy.example:80");
    }

    #[test]
    fn basic_header() {
        assert_eq!(basic("user", "pass"), "Basic dXNlcjpwYXNz");
    }
}
