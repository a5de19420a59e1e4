//! Real components for kind-crio's integration tests and benchmarks:
//!
//! - [`Registry`]: a real `docker-registry` (CNCF distribution) on 127.0.0.1,
//!   without auth, with htpasswd Basic auth, or with token auth;
//! - images pushed with `skopeo copy` from a tiny OCI layout, and tags made in
//!   bulk by writing them into the registry's storage as a push does;
//! - [`skopeo_list_tags`] and [`skopeo_digest`]: what `skopeo` reports, to compare with;
//! - [`TokenServer`]: a Docker token endpoint issuing RS256 JWTs (signed by
//!   `openssl`) that the registry verifies for real;
//! - [`Proxy`]: an HTTP/1.1 proxy in front of a registry that injects faults;
//! - [`standin`]: a kind node image, a CRI-O bundle and a CRI-O apt repository
//!   made locally, for real image builds without the internet;
//! - [`oci`]: stand-in images packaged as kind loads them into containerd, and
//!   [`containerd`]: a private containerd to load them into.
//!
//! Every test first calls [`tools_present`]: a missing tool fails the test when
//! `CI=true` and skips it loudly otherwise.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod containerd;
pub mod oci;
pub mod privileged;
pub mod standin;
pub mod tool_list;
pub mod tools;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use registry::Repository;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

// ---------------------------------------------------------------------------
// Tools

/// Tools a registry test needs: the registry itself and skopeo to push.
pub const REGISTRY_TOOLS: &[&str] = &["docker-registry", "skopeo"];
/// Plus `htpasswd` for a Basic-auth registry.
pub const HTPASSWD_TOOLS: &[&str] = &["docker-registry", "skopeo", "htpasswd"];
/// Plus `openssl` for the token server's key and signatures.
pub const TOKEN_TOOLS: &[&str] = &["docker-registry", "skopeo", "openssl"];

/// True when every tool is on `PATH`. Otherwise: with `CI=true` this panics
/// (CI must have them); elsewhere it prints a loud SKIPPED line and returns
/// false, and the test returns early.
pub fn tools_present(test: &str, tools: &[&str]) -> bool {
    for tool in tools {
        if find_on_path(tool).is_some() {
            continue;
        }
        // How to get it, from .ci/tools.
        let how = tool_list::tool(tool).map_or_else(
            || format!("{tool} is not in .ci/tools: add it there"),
            |t| t.install(),
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} not found: {how}");
        }
        // Straight to the stderr handle: libtest captures `eprintln!` of
        // passing tests, and a skip must be seen.
        let _ = writeln!(
            io::stderr(),
            "\n==================== SKIPPED {test}: {tool} not found ({how}) ===================="
        );
        return false;
    }
    true
}

/// `program`, run as an image build step runs it: as root without
/// CAP_SYS_ADMIN (BuildKit's and buildah's default), through `setpriv`.
pub fn as_in_a_build_step(program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--bounding-set",
        "-sys_admin",
        "--inh-caps",
        "-sys_admin",
        "--",
        program,
    ]);
    cmd
}

pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// Runs a command to completion; panics with its stderr when it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------------------
// Temporary directories

/// Where test scratch directories go: `target/testkit` of this workspace
/// (on the same disk as the build, not a small tmpfs).
pub fn scratch_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/testkit")
}

/// A fresh directory under [`scratch_root`], removed on
/// drop unless the test is failing (then it is kept for inspection).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(test: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = scratch_root().join(format!("{test}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    /// Unmounts what is mounted inside (an overlay store's own bind mount of
    /// its `overlay` directory outlives the tool that made it), always; then
    /// removes the directory, unless the test failed (it is kept to look at).
    fn drop(&mut self) {
        let clear = std::fs::canonicalize(&self.0).is_ok_and(|d| unmount_below(&d));
        if clear && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Unmounts (lazily, deepest first) every mount point at or below `dir`, a
/// canonical path; whether none is left.
pub fn unmount_below(dir: &Path) -> bool {
    let below = |mounts: &str| -> Vec<String> {
        let mut v: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| Path::new(m).starts_with(dir))
            .map(str::to_owned)
            .collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.len()));
        v
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for mount in below(&mounts) {
        let _ = std::process::Command::new("umount")
            .args(["--lazy", &mount])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    below(&std::fs::read_to_string("/proc/self/mounts").unwrap_or_default()).is_empty()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// A YAML single-quoted scalar.
fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1

/// A complete HTTP response (chunked bodies decoded).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection with `Connection: close`; reads the
/// answer to the end.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
) -> io::Result<HttpResponse> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    let mut has_host = false;
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        has_host |= k.eq_ignore_ascii_case("host");
        let _ = write!(head, "{k}: {v}\r\n");
    }
    if !has_host {
        let _ = write!(head, "Host: {addr}\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)?;
    let end = find(&raw, b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no complete response head"))?;
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[end + 4..];
    resp.body = if method == "HEAD" {
        Vec::new()
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(resp)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad chunked body");
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| bad())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(bad());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A request head as a server reads it.
#[derive(Debug, Clone)]
struct RequestHead {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request head (requests here have no body).
fn read_request_head(conn: &mut TcpStream) -> io::Result<RequestHead> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&raw, b"\r\n\r\n").is_none() {
        let n = conn.read(&mut buf)?;
        if n == 0 || raw.len() > 64 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "no request head",
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parse_request_head(&raw)
}

/// Waits for a whole request head and parses it, leaving it unread.
fn peek_request_head(conn: &mut TcpStream) -> io::Result<RequestHead> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = conn.peek(&mut buf)?;
        if find(&buf[..n], b"\r\n\r\n").is_some() {
            return parse_request_head(&buf[..n]);
        }
        if n == 0 || n == buf.len() || Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "no request head",
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn parse_request_head(raw: &[u8]) -> io::Result<RequestHead> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("").to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(RequestHead {
        method,
        target,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes a whole response; adds `Content-Length` (unless given) and `Connection: close`.
fn write_response(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let mut has_length = false;
    for (k, v) in headers {
        has_length |= k.eq_ignore_ascii_case("content-length");
        let _ = write!(head, "{k}: {v}\r\n");
    }
    if !has_length {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes())?;
    if !head_only {
        conn.write_all(body)?;
    }
    conn.flush()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters of a request target, decoded, in order.
fn query_pairs(target: &str) -> Vec<(String, String)> {
    let Some((_, query)) = target.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Serves connections on `listener` with `handle`, one thread each, until `stop`.
fn serve(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    handle: impl Fn(TcpStream) + Send + Sync + 'static,
) -> JoinHandle<()> {
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let handle = Arc::clone(&handle);
            std::thread::spawn(move || handle(conn));
        }
    })
}

/// Stops a [`serve`] loop: sets the flag, then wakes `accept` with a connection.
fn stop_serving(addr: SocketAddr, stop: &AtomicBool, thread: Option<JoinHandle<()>>) {
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    if let Some(t) = thread {
        let _ = t.join();
    }
}

// ---------------------------------------------------------------------------
// Images and skopeo

/// A skopeo command that sees no credentials of the machine's user and fails
/// rather than hanging.
pub fn skopeo_command() -> Command {
    static ISOLATION: OnceLock<PathBuf> = OnceLock::new();
    let dir = ISOLATION.get_or_init(|| {
        // Shared by every run; written whole (rename) so concurrent runs agree.
        let dir = scratch_root().join("skopeo");
        std::fs::create_dir_all(dir.join("docker")).expect("create skopeo's directory");
        for (name, text) in [
            ("auth.json", r#"{"auths":{}}"#),
            (
                "policy.json",
                r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
            ),
        ] {
            let part = dir.join(format!("{name}.{}", std::process::id()));
            std::fs::write(&part, text).expect("write a skopeo file");
            std::fs::rename(&part, dir.join(name)).expect("install a skopeo file");
        }
        dir
    });
    let mut cmd = Command::new("skopeo");
    cmd.env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
        .env("DOCKER_CONFIG", dir.join("docker"))
        .arg("--policy")
        .arg(dir.join("policy.json"))
        .args(["--command-timeout", "60s"]);
    cmd
}

/// What `skopeo list-tags` prints for `reference` (`127.0.0.1:PORT/name`), or
/// its error output when it fails.
pub fn skopeo_list_tags(reference: &str, extra_args: &[&str]) -> Result<Value, String> {
    let out = skopeo_command()
        .args(["list-tags", "--tls-verify=false"])
        .args(extra_args)
        .arg(format!("docker://{reference}"))
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo list-tags");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("skopeo printed no JSON: {e}"))
}

/// The manifest digest `skopeo inspect` reports for `reference` (`host/name:tag`).
pub fn skopeo_digest(reference: &str, extra_args: &[&str]) -> String {
    let out = run(skopeo_command()
        .args(["inspect", "--tls-verify=false"])
        .args(extra_args)
        .arg(format!("docker://{reference}")));
    let v: Value = serde_json::from_slice(&out.stdout).expect("skopeo inspect prints JSON");
    v["Digest"]
        .as_str()
        .expect("skopeo inspect reports a Digest")
        .to_owned()
}

/// A one-layer tar holding `marker.txt`, valid ustar.
fn tar_with(marker: &str) -> Vec<u8> {
    let data = marker.as_bytes();
    let mut h = [0u8; 512];
    let field =
        |h: &mut [u8; 512], at: usize, value: &[u8]| h[at..at + value.len()].copy_from_slice(value);
    field(&mut h, 0, b"marker.txt");
    field(&mut h, 100, b"0000644\0");
    field(&mut h, 108, b"0000000\0");
    field(&mut h, 116, b"0000000\0");
    field(&mut h, 124, format!("{:011o}\0", data.len()).as_bytes());
    field(&mut h, 136, b"00000000000\0");
    field(&mut h, 148, b"        ");
    h[156] = b'0';
    field(&mut h, 257, b"ustar\0");
    field(&mut h, 263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    field(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut tar = h.to_vec();
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// Writes a minimal OCI image layout (one uncompressed layer) tagged `latest`.
pub fn write_oci_layout(dir: &Path, marker: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("create the layout");
    let put = |data: &[u8]| -> (String, usize) {
        let hex = sha256_hex(data);
        std::fs::write(blobs.join(&hex), data).expect("write a blob");
        (format!("sha256:{hex}"), data.len())
    };
    let layer = tar_with(marker);
    let (layer_digest, layer_size) = put(&layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"marker": marker}},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
}

// ---------------------------------------------------------------------------
// Registry

/// How a [`Registry`] authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// htpasswd file with this one user (bcrypt, as distribution requires).
    Htpasswd {
        user: String,
        password: String,
    },
    /// Docker token auth against a [`TokenServer`]; `push_user` is what skopeo logs in with.
    Token {
        realm: String,
        cert: PathBuf,
        push_user: (String, String),
    },
}

/// A running `docker-registry serve`, killed on drop.
#[derive(Debug)]
pub struct Registry {
    dir: TempDir,
    addr: SocketAddr,
    auth: Auth,
    /// `sh` running the registry; its stdin ties the registry's life to ours.
    child: Child,
    lifeline: Option<ChildStdin>,
    pushes: AtomicUsize,
}

impl Registry {
    pub fn start(test: &str, auth: Auth) -> Registry {
        let dir = TempDir::new(test);
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    yaml_str(&file.to_string_lossy())
                )
            }
            Auth::Token { realm, cert, .. } => format!(
                "auth:\n  token:\n    realm: {}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                yaml_str(realm),
                yaml_str(&cert.to_string_lossy())
            ),
        };
        let mut last_log = String::new();
        // The port is free when picked but may be taken before the registry
        // binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let name = dir.path().file_name().unwrap_or_default().to_string_lossy();
            let instance = format!("{name}-{port}");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let config = dir.path().join("config.yml");
            let log = dir.path().join("registry.log");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: error\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                     maintenance:\n    uploadpurging:\n      enabled: false\n\
                     http:\n  addr: {addr}\n  secret: registry-tests\n  \
                     headers:\n    X-Registry-Tests-Instance: [{instance}]\n\
                     {auth_yaml}",
                    yaml_str(&dir.path().join("storage").to_string_lossy())
                ),
            )
            .expect("write the registry config");
            let log_file = std::fs::File::create(&log).expect("create the registry log");
            // `sh` keeps a copy of our pipe on fd 3 in a background job: when
            // this process dies, even by SIGKILL, the pipe closes and the job
            // stops the registry. `sh` itself exits when the registry does.
            let mut child = Command::new("sh")
                .args([
                    "-c",
                    "exec 3<&0; docker-registry serve \"$1\" </dev/null & pid=$!; \
                     (read -r _ <&3; kill \"$pid\" 2>/dev/null) & wait \"$pid\"",
                    "sh",
                ])
                .arg(&config)
                .stdin(Stdio::piped())
                .stdout(log_file.try_clone().expect("share the registry log"))
                .stderr(log_file)
                .spawn()
                .expect("start docker-registry");
            let lifeline = child.stdin.take();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                // Another test's server may hold the port we picked: only
                // our registry sends our instance header.
                let ours = http(addr, "GET", "/v2/", &[]).is_ok_and(|r| {
                    r.header("x-registry-tests-instance") == Some(instance.as_str())
                });
                if ours {
                    return Registry {
                        dir,
                        addr,
                        auth,
                        child,
                        lifeline,
                        pushes: AtomicUsize::new(0),
                    };
                }
                if Instant::now() > deadline {
                    drop(lifeline);
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry did not answer on {addr} within 10s; its log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(lifeline);
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("docker-registry exited at start three times; its log:\n{last_log}");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `127.0.0.1:PORT/<path>` parsed as the client parses user input.
    pub fn repo(&self, path: &str) -> Repository {
        Repository::parse(&format!("{}/{path}", self.host())).expect("a valid repository")
    }

    /// Where the registry keeps `path`'s manifests and tags.
    fn repo_dir(&self, path: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/repositories")
            .join(path)
    }

    fn tags_dir(&self, path: &str) -> PathBuf {
        self.repo_dir(path).join("_manifests/tags")
    }

    /// skopeo's credential arguments for pushing here.
    fn dest_creds(&self) -> Vec<String> {
        match &self.auth {
            Auth::None => Vec::new(),
            Auth::Htpasswd { user, password } => {
                vec!["--dest-creds".into(), format!("{user}:{password}")]
            }
            Auth::Token { push_user, .. } => {
                vec![
                    "--dest-creds".into(),
                    format!("{}:{}", push_user.0, push_user.1),
                ]
            }
        }
    }

    /// Pushes a one-layer image whose content depends on `marker` to
    /// `path:tag` with `skopeo copy`; returns its manifest digest.
    pub fn push(&self, path: &str, tag: &str, marker: &str) -> String {
        let n = self.pushes.fetch_add(1, Ordering::Relaxed);
        let layout = self.dir.path().join(format!("layout-{n}"));
        write_oci_layout(&layout, marker);
        run(skopeo_command()
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(self.dest_creds())
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{path}:{tag}", self.host())));
        self.stored_digest(path, tag)
    }

    /// The digest the registry's storage records for `path:tag`.
    pub fn stored_digest(&self, path: &str, tag: &str) -> String {
        let link = self.tags_dir(path).join(tag).join("current/link");
        std::fs::read_to_string(&link)
            .unwrap_or_else(|e| panic!("read {}: {e}", link.display()))
            .trim()
            .to_owned()
    }

    /// Adds tags pointing at `from`'s manifest, written straight into the
    /// registry's storage as a push writes them: `tags/<name>/current/link`
    /// holds the digest (tag listing reads the `tags` directory, resolving reads
    /// that link). The per-tag `index/` that only untagging reads is left out:
    /// directory operations are slow on some disks and 10,000 tags add up.
    pub fn make_tags(&self, path: &str, from: &str, names: &[String]) {
        let tags = self.tags_dir(path);
        let digest = self.stored_digest(path, from);
        for name in names {
            let tag = tags.join(name);
            let current = tag.join("current");
            std::fs::create_dir(&tag).expect("create a tag");
            std::fs::create_dir(&current).expect("create a tag");
            std::fs::write(current.join("link"), &digest).expect("write a tag link");
        }
    }

    /// Deletes the manifest `digest` through the registry API (no-auth
    /// registries only); distribution then removes every tag pointing at it.
    pub fn delete_manifest(&self, path: &str, digest: &str) {
        let resp = http(
            self.addr,
            "DELETE",
            &format!("/v2/{path}/manifests/{digest}"),
            &[],
        )
        .expect("DELETE the manifest");
        assert_eq!(resp.status, 202, "DELETE {path}@{digest}: {resp:?}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Token server

/// One request the token server answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `scope` parameters as sent, e.g. `repository:a/b:pull`.
    pub scopes: Vec<String>,
    /// The Basic user name, when credentials were sent.
    pub user: Option<String>,
    pub status: u16,
}

#[derive(Debug)]
struct TokenShared {
    key: PathBuf,
    x5c: String,
    user: Option<(String, String)>,
    anonymous_pull: bool,
    log: Mutex<Vec<TokenRequest>>,
    /// Repository name → how many more tokens grant it no actions at all.
    starve: Mutex<HashMap<String, usize>>,
    stop: Arc<AtomicBool>,
}

/// A Docker token endpoint (`GET /token?service=…&scope=…`) issuing RS256 JWTs
/// that the registry's `auth.token` verifies against the certificate.
#[derive(Debug)]
pub struct TokenServer {
    /// Holds the key and certificate; removed when the server goes.
    _dir: TempDir,
    addr: SocketAddr,
    cert: PathBuf,
    shared: Arc<TokenShared>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// `user`: the one account it knows (Basic); it grants that account every
    /// action asked. `anonymous_pull`: whether requests without credentials
    /// get `pull` (else 401).
    pub fn start(test: &str, user: Option<(&str, &str)>, anonymous_pull: bool) -> TokenServer {
        let dir = TempDir::new(&format!("{test}-token"));
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-days", "1", "-subj", "/CN=token-issuer"]));
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(&cert))
        .stdout;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let addr = listener.local_addr().expect("token server address");
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(TokenShared {
            key,
            x5c: STANDARD.encode(der),
            user: user.map(|(u, p)| (u.to_owned(), p.to_owned())),
            anonymous_pull,
            log: Mutex::new(Vec::new()),
            starve: Mutex::new(HashMap::new()),
            stop: Arc::clone(&stop),
        });
        let s = Arc::clone(&shared);
        let thread = serve(listener, stop, move |mut conn| {
            let _ = answer_token_request(&s, &mut conn);
        });
        TokenServer {
            _dir: dir,
            addr,
            cert,
            shared,
            thread: Some(thread),
        }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The registry configuration that trusts this server.
    pub fn auth(&self) -> Auth {
        Auth::Token {
            realm: self.realm(),
            cert: self.cert.clone(),
            push_user: self
                .shared
                .user
                .clone()
                .expect("pushing to a token registry needs a token server user"),
        }
    }

    /// The next `times` tokens issued for `repo` grant it no actions, so the
    /// registry answers 401 `insufficient_scope` to them.
    pub fn starve(&self, repo: &str, times: usize) {
        lock(&self.shared.starve).insert(repo.to_owned(), times);
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.log).clone()
    }

    /// How many requests asked for exactly this scope.
    pub fn requests_for(&self, scope: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.scopes.iter().any(|s| s == scope))
            .count()
    }

    pub fn clear_log(&self) {
        lock(&self.shared.log).clear();
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        stop_serving(self.addr, &self.shared.stop, self.thread.take());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn answer_token_request(s: &TokenShared, conn: &mut TcpStream) -> io::Result<()> {
    let req = read_request_head(conn)?;
    let query = query_pairs(&req.target);
    let scopes: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned))
        .filter(|v| !v.is_empty())
        .collect();
    let basic = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .map(|raw| String::from_utf8_lossy(&raw).into_owned());
    let (status, user, all_actions) = match (&basic, &s.user) {
        (Some(raw), Some((u, p))) if *raw == format!("{u}:{p}") => (200, Some(u.clone()), true),
        (Some(raw), _) => (401, raw.split(':').next().map(str::to_owned), false),
        (None, _) if s.anonymous_pull => (200, None, false),
        (None, _) => (401, None, false),
    };
    lock(&s.log).push(TokenRequest {
        scopes: scopes.clone(),
        user: user.clone(),
        status,
    });
    let json_headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    if status != 200 {
        let body =
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]});
        return write_response(conn, 401, &json_headers, body.to_string().as_bytes(), false);
    }
    let mut access = Vec::new();
    for scope in &scopes {
        let mut parts = scope.splitn(3, ':');
        let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let starved = {
            let mut starve = lock(&s.starve);
            match starve.get_mut(name) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        let granted: Vec<&str> = actions
            .split(',')
            .filter(|a| !starved && (all_actions || *a == "pull"))
            .collect();
        access.push(json!({"type": kind, "name": name, "actions": granted}));
    }
    let token = sign_jwt(s, user.as_deref().unwrap_or(""), access)?;
    let body = json!({"token": token, "access_token": token, "expires_in": 300});
    write_response(conn, 200, &json_headers, body.to_string().as_bytes(), false)
}

fn sign_jwt(s: &TokenShared, subject: &str, access: Vec<Value>) -> io::Result<String> {
    static JTI: AtomicUsize = AtomicUsize::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [s.x5c]});
    let claims = json!({
        "iss": "test-issuer",
        "sub": subject,
        "aud": "test-registry",
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{}-{}", std::process::id(), JTI.fetch_add(1, Ordering::Relaxed)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&s.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("openssl's stdin")
        .write_all(signing_input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "openssl dgst -sign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(out.stdout)
    ))
}

// ---------------------------------------------------------------------------
// Fault-injecting proxy

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

    fn matches(&self, target: &str) -> bool {
        if self.exact {
            target == self.path
        } else {
            target.contains(&self.path)
        }
    }
}

#[derive(Debug)]
struct ProxyShared {
    upstream: SocketAddr,
    port: u16,
    rules: Vec<Rule>,
    /// Per rule: how many requests it was applied to.
    applied: Mutex<Vec<usize>>,
    /// Every request as `METHOD target`.
    log: Mutex<Vec<String>>,
    stop: Arc<AtomicBool>,
}

/// An HTTP/1.1 proxy in front of a registry: forwards each request over a new
/// connection and applies the first matching [`Rule`] to it.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    thread: Option<JoinHandle<()>>,
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

fn proxy_one(s: &ProxyShared, conn: &mut TcpStream) -> io::Result<()> {
    let req = peek_request_head(conn)?;
    lock(&s.log).push(format!("{} {}", req.method, req.target));
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
    }
}

/// Waits until the proxy stops, or a minute at most.
fn stall(s: &ProxyShared) {
    let until = Instant::now() + Duration::from_secs(60);
    while !s.stop.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `len` bytes of a never-ending tags JSON document.
fn write_filler(conn: &mut TcpStream, len: usize, chunked: bool) -> io::Result<()> {
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

fn forward(s: &ProxyShared, req: &RequestHead, target: &str) -> io::Result<HttpResponse> {
    http(s.upstream, &req.method, target, &req.headers)
}

/// The upstream headers that still hold after the proxy re-frames the body.
fn passable_headers(resp: &HttpResponse) -> Vec<(String, String)> {
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

fn write_forwarded(conn: &mut TcpStream, resp: &HttpResponse, head_only: bool) -> io::Result<()> {
    let mut headers = passable_headers(resp);
    if head_only && let Some(len) = resp.header("content-length") {
        // A HEAD answer announces the length of the GET body it did not send.
        headers.push(("Content-Length".to_owned(), len.to_owned()));
    }
    write_response(conn, resp.status, &headers, &resp.body, head_only)
}

fn paginate(
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
