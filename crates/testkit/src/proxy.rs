//! [`Proxy`]: an HTTP/1.1 proxy in front of a registry that injects faults.
//! It is no forward proxy: a `CONNECT` (a client that has it as its
//! `HTTPS_PROXY`) is logged and refused with 403.

use super::*;

/// What the proxy does to a request matched by a [`Rule`].
#[derive(Debug, Clone)]
pub enum Fault {
    /// 401 without a `WWW-Authenticate` header.
    UnauthorizedNoChallenge,
    /// 429 with `Retry-After: <seconds>`.
    RetryAfterSeconds(u64),
    /// 429 with `Retry-After: <HTTP date this far ahead>`.
    RetryAfterDate(Duration),
    /// This status with a small JSON error body.
    Status(u16),
    /// The real answer with its body cut in half and a matching `Content-Length`.
    TruncatedBody,
    /// The real answer's full `Content-Length`, half its body, then the connection closes.
    ShortBody,
    /// The real answer with `Link` set to this value; `{port}` is replaced by
    /// the proxy's port and `{target}` by the request target.
    Link(String),
    /// 200 with a `Content-Length` of this many bytes, then that many bytes.
    Oversized(usize),
    /// 200 with a chunked body this long (no length announced up front).
    OversizedChunked(usize),
    /// Reads the request and never answers.
    Stall,
    /// Reads the request and closes the connection without answering.
    Close,
    /// Closes the connection with the request unread, so the peer gets a reset.
    Reset,
    /// The real answer without this header.
    DropHeader(&'static str),
    /// Sends the head and part of the body, then never finishes.
    StallBody,
    /// Serves the registry's real tag list in pages of `n` after `last`, with
    /// `Link: <…?last=…&n=…>; rel="next"` (absolute URLs if `absolute`), as
    /// registries that paginate do (distribution 2.8 itself ignores `n`).
    Paginate { absolute: bool },
    /// This redirect status with `Location` set to this value; `{port}` is
    /// replaced by the proxy's port, `{upstream}` by the registry's address and
    /// `{target}` by the request target.
    Redirect { status: u16, location: String },
    /// A tags page of about `page_bytes` bytes of made-up tags, after `delay`,
    /// with a `Link` to a next page that is new every time: pages without end.
    EndlessPages { page_bytes: usize, delay: Duration },
    /// The real answer's head, then its body one byte every `every` (a
    /// slowloris server: always sending, never done in time).
    Dribble { every: Duration },
    /// 200 with a tags list whose `tags` is the request's `Authorization`
    /// header: a string where a list belongs, as a broken registry might echo it.
    EchoAuthorization,
}

/// Apply `fault` to requests whose target contains `path` (or equals it, if
/// `exact`), for the first `times` of them (None: always).
#[derive(Debug, Clone)]
pub struct Rule {
    pub path: String,
    pub exact: bool,
    pub fault: Fault,
    pub times: Option<usize>,
}

impl Rule {
    pub fn always(path: &str, fault: Fault) -> Rule {
        Rule {
            path: path.to_owned(),
            exact: false,
            fault,
            times: None,
        }
    }

    pub fn first(times: usize, path: &str, fault: Fault) -> Rule {
        Rule {
            times: Some(times),
            ..Rule::always(path, fault)
        }
    }

    /// Match only a request target equal to `path`.
    pub fn exact(self) -> Rule {
        Rule {
            exact: true,
            ..self
        }
    }

    pub(crate) fn matches(&self, target: &str) -> bool {
        if self.exact {
            target == self.path
        } else {
            target.contains(&self.path)
        }
    }
}

#[derive(Debug)]
pub(crate) struct ProxyShared {
    pub(crate) upstream: SocketAddr,
    pub(crate) port: u16,
    pub(crate) rules: Vec<Rule>,
    /// Per rule: how many requests it was applied to.
    pub(crate) applied: Mutex<Vec<usize>>,
    /// Every request as `METHOD target`.
    pub(crate) log: Mutex<Vec<String>>,
    /// Pages [`Fault::EndlessPages`] has served.
    pub(crate) pages: AtomicUsize,
    pub(crate) stop: Arc<AtomicBool>,
}

/// An HTTP/1.1 proxy in front of a registry: forwards each request over a new
/// connection and applies the first matching [`Rule`] to it.
#[derive(Debug)]
pub struct Proxy {
    pub(crate) addr: SocketAddr,
    pub(crate) shared: Arc<ProxyShared>,
    pub(crate) thread: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: &Registry, rules: Vec<Rule>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(ProxyShared {
            upstream: upstream.addr(),
            port: addr.port(),
            applied: Mutex::new(vec![0; rules.len()]),
            rules,
            log: Mutex::new(Vec::new()),
            pages: AtomicUsize::new(0),
            stop: Arc::clone(&stop),
        });
        let s = Arc::clone(&shared);
        let thread = serve(listener, stop, move |mut conn| {
            let _ = proxy_one(&s, &mut conn);
            let _ = conn.shutdown(Shutdown::Both);
        });
        Proxy {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn repo(&self, path: &str) -> Repository {
        Repository::parse(&format!("{}/{path}", self.host())).expect("a valid repository")
    }

    /// How many requests reached the proxy whose target contains `path`.
    pub fn requests(&self, path: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|l| l.contains(path))
            .count()
    }

    /// Every request as `METHOD target`, in order.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// How many requests rule `i` was applied to.
    pub fn applied(&self, i: usize) -> usize {
        lock(&self.shared.applied)[i]
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        stop_serving(self.addr, &self.shared.stop, self.thread.take());
    }
}

pub(crate) fn proxy_one(s: &ProxyShared, conn: &mut TcpStream) -> io::Result<()> {
    let req = peek_request_head(conn)?;
    lock(&s.log).push(format!("{} {}", req.method, req.target));
    if req.method == "CONNECT" {
        read_request_head(conn)?;
        let body = b"the test proxy opens no tunnels";
        return write_response(conn, 403, &[], body, false);
    }
    let fault = {
        let mut applied = lock(&s.applied);
        s.rules
            .iter()
            .enumerate()
            .find(|(i, r)| r.matches(&req.target) && r.times.is_none_or(|t| applied[*i] < t))
            .map(|(i, r)| {
                applied[i] += 1;
                r.fault.clone()
            })
    };
    if let Some(Fault::Reset) = fault {
        // Closing a socket with unread input makes the kernel send a reset.
        return Ok(());
    }
    read_request_head(conn)?;
    let head_only = req.method == "HEAD";
    let json = |v: Value| v.to_string().into_bytes();
    let error_body = |code: &str| {
        json(json!({"errors": [{"code": code, "message": "injected by the test proxy"}]}))
    };
    let ctype = ("Content-Type".to_owned(), "application/json".to_owned());
    let Some(fault) = fault else {
        let resp = forward(s, &req, &req.target)?;
        return write_forwarded(conn, &resp, head_only);
    };
    match fault {
        Fault::UnauthorizedNoChallenge => {
            write_response(conn, 401, &[ctype], &error_body("UNAUTHORIZED"), head_only)
        }
        Fault::RetryAfterSeconds(secs) => write_response(
            conn,
            429,
            &[ctype, ("Retry-After".to_owned(), secs.to_string())],
            &error_body("TOOMANYREQUESTS"),
            head_only,
        ),
        Fault::RetryAfterDate(ahead) => write_response(
            conn,
            429,
            &[
                ctype,
                (
                    "Retry-After".to_owned(),
                    httpdate::fmt_http_date(SystemTime::now() + ahead),
                ),
            ],
            &error_body("TOOMANYREQUESTS"),
            head_only,
        ),
        Fault::Status(status) => write_response(
            conn,
            status,
            &[ctype],
            &error_body("UNAVAILABLE"),
            head_only,
        ),
        Fault::TruncatedBody => {
            let mut resp = forward(s, &req, &req.target)?;
            resp.body.truncate(resp.body.len() / 2);
            write_forwarded(conn, &resp, head_only)
        }
        Fault::ShortBody => {
            let resp = forward(s, &req, &req.target)?;
            let mut headers = passable_headers(&resp);
            headers.push(("Content-Length".to_owned(), resp.body.len().to_string()));
            write_response(
                conn,
                resp.status,
                &headers,
                &resp.body[..resp.body.len() / 2],
                head_only,
            )
        }
        Fault::Link(template) => {
            let mut resp = forward(s, &req, &req.target)?;
            let link = template
                .replace("{port}", &s.port.to_string())
                .replace("{target}", &req.target);
            resp.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("link"));
            resp.headers.push(("Link".to_owned(), link));
            write_forwarded(conn, &resp, head_only)
        }
        Fault::Oversized(len) => {
            let headers = [ctype, ("Content-Length".to_owned(), len.to_string())];
            write_response(conn, 200, &headers, b"", true)?;
            if !head_only {
                write_filler(conn, len, false)?;
            }
            Ok(())
        }
        Fault::OversizedChunked(len) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            conn.write_all(head.as_bytes())?;
            write_filler(conn, len, true)
        }
        Fault::Stall => {
            stall(s);
            Ok(())
        }
        Fault::Close | Fault::Reset => Ok(()),
        Fault::DropHeader(name) => {
            let mut resp = forward(s, &req, &req.target)?;
            resp.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            write_forwarded(conn, &resp, head_only)
        }
        Fault::StallBody => {
            let headers = [ctype, ("Content-Length".to_owned(), "1000".to_owned())];
            write_response(conn, 200, &headers, b"", true)?;
            conn.write_all(br#"{"name":"#)?;
            conn.flush()?;
            stall(s);
            Ok(())
        }
        Fault::Paginate { absolute } => paginate(s, conn, &req, absolute),
        Fault::Redirect { status, location } => {
            let location = location
                .replace("{port}", &s.port.to_string())
                .replace("{upstream}", &s.upstream.to_string())
                .replace("{target}", &req.target);
            write_response(
                conn,
                status,
                &[("Location".to_owned(), location)],
                b"",
                head_only,
            )
        }
        Fault::EndlessPages { page_bytes, delay } => {
            std::thread::sleep(delay);
            let page = s.pages.fetch_add(1, Ordering::SeqCst);
            let path = req.target.split('?').next().unwrap_or("");
            let mut tags = Vec::new();
            let mut len = 0;
            while len < page_bytes {
                let tag = format!("p{page}-{}", tags.len());
                len += tag.len() + 3;
                tags.push(tag);
            }
            let link = format!("<{path}?last=p{page}&n={}>; rel=\"next\"", tags.len());
            let body = json!({"name": "endless", "tags": tags}).to_string();
            write_response(
                conn,
                200,
                &[ctype, ("Link".to_owned(), link)],
                body.as_bytes(),
                head_only,
            )
        }
        Fault::Dribble { every } => {
            let resp = forward(s, &req, &req.target)?;
            let mut headers = passable_headers(&resp);
            headers.push(("Content-Length".to_owned(), resp.body.len().to_string()));
            write_response(conn, resp.status, &headers, b"", true)?;
            for byte in &resp.body {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(every);
                conn.write_all(std::slice::from_ref(byte))?;
                conn.flush()?;
            }
            Ok(())
        }
        Fault::EchoAuthorization => {
            let echoed = req.header("authorization").unwrap_or("").to_owned();
            let body = json!({"name": "echo", "tags": echoed}).to_string();
            write_response(conn, 200, &[ctype], body.as_bytes(), head_only)
        }
    }
}

/// Waits until the proxy stops, or a minute at most.
pub(crate) fn stall(s: &ProxyShared) {
    let until = Instant::now() + Duration::from_secs(60);
    while !s.stop.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `len` bytes of a never-ending tags JSON document.
pub(crate) fn write_filler(conn: &mut TcpStream, len: usize, chunked: bool) -> io::Result<()> {
    let mut piece = Vec::with_capacity(64 * 1024);
    piece.extend_from_slice(br#"{"name":"x","tags":["#);
    while piece.len() < 64 * 1024 - 16 {
        piece.extend_from_slice(br#""v1.2.3-filler","#);
    }
    let mut left = len;
    while left > 0 {
        let n = left.min(piece.len());
        if chunked {
            conn.write_all(format!("{n:x}\r\n").as_bytes())?;
            conn.write_all(&piece[..n])?;
            conn.write_all(b"\r\n")?;
        } else {
            conn.write_all(&piece[..n])?;
        }
        left -= n;
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n")?;
    }
    conn.flush()
}

pub(crate) fn forward(
    s: &ProxyShared,
    req: &RequestHead,
    target: &str,
) -> io::Result<HttpResponse> {
    http(s.upstream, &req.method, target, &req.headers)
}

/// The upstream headers that still hold after the proxy re-frames the body.
pub(crate) fn passable_headers(resp: &HttpResponse) -> Vec<(String, String)> {
    resp.headers
        .iter()
        .filter(|(k, _)| {
            ![
                "content-length",
                "transfer-encoding",
                "connection",
                "keep-alive",
            ]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
        })
        .cloned()
        .collect()
}

pub(crate) fn write_forwarded(
    conn: &mut TcpStream,
    resp: &HttpResponse,
    head_only: bool,
) -> io::Result<()> {
    let mut headers = passable_headers(resp);
    if head_only && let Some(len) = resp.header("content-length") {
        // A HEAD answer announces the length of the GET body it did not send.
        headers.push(("Content-Length".to_owned(), len.to_owned()));
    }
    write_response(conn, resp.status, &headers, &resp.body, head_only)
}

pub(crate) fn paginate(
    s: &ProxyShared,
    conn: &mut TcpStream,
    req: &RequestHead,
    absolute: bool,
) -> io::Result<()> {
    let path = req.target.split('?').next().unwrap_or("").to_owned();
    let query = query_pairs(&req.target);
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let resp = forward(s, req, &path)?;
    if resp.status != 200 || !path.ends_with("/tags/list") {
        return write_forwarded(conn, &resp, req.method == "HEAD");
    }
    let full: Value = serde_json::from_slice(&resp.body).map_err(io::Error::other)?;
    let tags: Vec<String> = full["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let start = match param("last") {
        Some(last) => tags
            .iter()
            .position(|t| *t == last)
            .map_or(tags.len(), |i| i + 1),
        None => 0,
    };
    let n = param("n").and_then(|n| n.parse::<usize>().ok());
    let end = n.map_or(tags.len(), |n| (start + n).min(tags.len()));
    let page = &tags[start..end];
    let mut headers = passable_headers(&resp);
    if let (Some(n), Some(last)) = (n, page.last())
        && end < tags.len()
    {
        let prefix = if absolute {
            format!("http://127.0.0.1:{}", s.port)
        } else {
            String::new()
        };
        headers.push((
            "Link".to_owned(),
            format!("<{prefix}{path}?last={last}&n={n}>; rel=\"next\""),
        ));
    }
    let body = json!({"name": full["name"], "tags": page}).to_string();
    write_response(conn, 200, &headers, body.as_bytes(), req.method == "HEAD")
}

/// A `storage.conf` for podman in `dir`: vfs, its own graph root and run
/// root, so a test's images and containers are its own. Point podman at it
/// with `CONTAINERS_STORAGE_CONF`.
pub fn private_podman_storage(dir: &Path) -> PathBuf {
    let conf = dir.join("storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/storage\"\nrunroot = \"{0}/run\"\n",
            dir.display()
        ),
    )
    .expect("write storage.conf");
    conf
}

/// A root file system tarball of one file, `/hello`, for `podman import` or
/// `docker import`: an image of the engine's own, with no registry.
pub fn tiny_rootfs_tarball(dir: &Path) -> PathBuf {
    let rootfs = dir.join("tiny-rootfs");
    std::fs::create_dir_all(&rootfs).expect("create the root file system");
    std::fs::write(rootfs.join("hello"), "hello\n").expect("write /hello");
    let tarball = dir.join("tiny-rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg("hello")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    tarball
}
