//! The few plain HTTP GETs `refresh` makes (GitHub, dl.k8s.io,
//! download.opensuse.org): a timeout on every request, a cap on every body,
//! a bounded number of tries on 429, 5xx and dropped connections, and errors
//! that name the URL and say what to check. Registries go through
//! `registry::Client` instead.

use std::time::Duration;

use anyhow::{Result, bail};
use ureq::http::Response;

/// Bounds on the requests.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// One whole request: connect, send, read the complete answer.
    pub timeout: Duration,
    /// Largest body read.
    pub max_body_bytes: u64,
    /// Tries per request, the first included.
    pub attempts: u32,
    /// Wait after the first failed try; doubled after each further one.
    pub backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            max_body_bytes: 16 << 20,
            attempts: 3,
            backoff: Duration::from_secs(2),
        }
    }
}

pub struct Http {
    agent: ureq::Agent,
    options: HttpOptions,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The hosts a refresh reads, for the advice in network errors.
const NEEDS: &str = "refresh reads api.github.com, raw.githubusercontent.com, dl.k8s.io, download.opensuse.org and Docker Hub";

impl Http {
    pub fn new(options: HttpOptions) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .user_agent(concat!("kind-crio/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Http { agent, options }
    }

    /// The body of `url` as text; `Ok(None)` on 404. `headers` are sent as
    /// given (an `Authorization` value never appears in an error).
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Option<String>> {
        let mut backoff = self.options.backoff;
        let mut last = String::new();
        for attempt in 1..=self.options.attempts.max(1) {
            if attempt > 1 {
                std::thread::sleep(backoff);
                backoff = backoff.saturating_mul(2);
            }
            let mut request = self.agent.get(url);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            let mut response = match request.call() {
                Ok(r) => r,
                Err(e) => {
                    let (message, transient) = describe(url, &e, self.options.timeout);
                    if !transient {
                        bail!("{message}");
                    }
                    last = message;
                    continue;
                }
            };
            let status = response.status().as_u16();
            match status {
                200..=299 => return self.body(url, &mut response).map(Some),
                404 => return Ok(None),
                403 | 429 if rate_limited(&response) => bail!(
                    "GET {url}: GitHub's API rate limit for this address is used up{}; set GITHUB_TOKEN (any token, no scopes needed) or run again later",
                    header(&response, "x-ratelimit-reset")
                        .map(|t| format!(" (it resets at Unix time {t})"))
                        .unwrap_or_default()
                ),
                429 | 500 | 502 | 503 | 504 => {
                    last = format!("GET {url}: HTTP {status}");
                }
                _ => bail!(
                    "GET {url}: HTTP {status}{}",
                    match status {
                        401 | 403 => "; the source refuses anonymous reads or the token given",
                        _ => "",
                    }
                ),
            }
        }
        bail!(
            "{last} (gave up after {} tries); {NEEDS}",
            self.options.attempts.max(1)
        )
    }

    fn body(&self, url: &str, response: &mut Response<ureq::Body>) -> Result<String> {
        let limit = self.options.max_body_bytes;
        let bytes = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => anyhow::anyhow!(
                    "GET {url}: the answer is larger than {limit} bytes; refusing to read it"
                ),
                other => anyhow::anyhow!("GET {url}: the answer could not be read whole: {other}"),
            })?;
        String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("GET {url}: the answer is not UTF-8 text"))
    }
}

fn header<'a>(response: &'a Response<ureq::Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// GitHub says so with `x-ratelimit-remaining: 0` on a 403 or 429.
fn rate_limited(response: &Response<ureq::Body>) -> bool {
    header(response, "x-ratelimit-remaining").is_some_and(|v| v.trim() == "0")
}

/// The message for a failed exchange, and whether another try may help.
fn describe(url: &str, e: &ureq::Error, timeout: Duration) -> (String, bool) {
    // The system resolver's failures reach us as I/O errors, in its words.
    let unresolved = match e {
        ureq::Error::HostNotFound => true,
        ureq::Error::Io(io) => {
            let text = io.to_string().to_ascii_lowercase();
            [
                "lookup address",
                "name or service not known",
                "failed to resolve",
                "no address",
            ]
            .iter()
            .any(|w| text.contains(w))
        }
        _ => false,
    };
    match e {
        _ if unresolved => (
            format!(
                "GET {url}: cannot resolve its host: no network, or DNS or proxy settings (HTTPS_PROXY) keep it out of reach; {NEEDS}"
            ),
            false,
        ),
        ureq::Error::Timeout(_) => (
            format!(
                "GET {url}: no complete answer within {}s",
                timeout.as_secs()
            ),
            true,
        ),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => (
            format!(
                "GET {url}: no complete answer within {}s",
                timeout.as_secs()
            ),
            true,
        ),
        ureq::Error::ConnectionFailed => (
            format!(
                "GET {url}: cannot connect (refused or unreachable); check the network and proxy settings"
            ),
            true,
        ),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            ) =>
        {
            (
                format!(
                    "GET {url}: cannot connect (refused or unreachable: {io}); check the network and proxy settings"
                ),
                true,
            )
        }
        ureq::Error::Io(io) => (
            format!("GET {url}: the connection failed: {io}"),
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ),
        ),
        other => (format!("GET {url}: {other}"), false),
    }
}
