//! A stand-in for CRI-O's apt repository: a *flat* repository as published
//! at `.../repositories/isv:/cri-o:/stable:/vX.Y/deb/`, used as
//! `deb [signed-by=KEYRING] URL /`, with `Release.key` beside `InRelease`.
//! It holds one `cri-o` .deb laid out like the real package, is signed with a
//! throwaway key, and is served over HTTP/1.1 on 127.0.0.1 by a thread here.

use std::collections::HashMap;
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::bundle::{DEB_CONFFILES, crio_version, deb_entries};
use super::{Entry, parse_version, run, write_entries};
use crate::TempDir;

/// Tools [`CrioAptRepo::start`] runs.
pub const APT_REPO_TOOLS: &[&str] = &["dpkg-deb", "apt-ftparchive", "gpg", "gpgconf", "gzip"];

/// How the repository's metadata is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// `InRelease` and `Release.gpg` signed by the key served as `Release.key`.
    Good,
    /// Signed by another key than the one served as `Release.key`, as after a
    /// key rotation the client has not followed: apt must refuse the repository.
    OtherKey,
}

/// A running stand-in CRI-O apt repository. Stops serving on drop.
#[derive(Debug)]
pub struct CrioAptRepo {
    dir: TempDir,
    addr: SocketAddr,
    prefix: String,
    deb: String,
    package_version: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    prefix: String,
    /// Every request as (method, path after the prefix, status).
    log: Mutex<Vec<(String, String, u16)>>,
    stop: Arc<AtomicBool>,
}

impl CrioAptRepo {
    /// A repository for CRI-O `version` (`1.34.0` or `v1.34.0`) on the
    /// stream `v<major>.<minor>`, holding `cri-o_<version>-1.1_amd64.deb`,
    /// signed by the key it serves. Panics with the failing command and its
    /// output.
    pub fn start(test: &str, version: &str) -> CrioAptRepo {
        CrioAptRepo::start_with(test, version, Signing::Good)
    }

    pub fn start_with(test: &str, version: &str, signing: Signing) -> CrioAptRepo {
        CrioAptRepo::try_start(test, version, signing)
            .unwrap_or_else(|e| panic!("stand-in CRI-O apt repository: {e}"))
    }

    fn try_start(test: &str, version: &str, signing: Signing) -> Result<CrioAptRepo, String> {
        let (major, minor, _) = parse_version(version)
            .ok_or_else(|| format!("{version:?} is not a version like 1.34.0"))?;
        let dir = TempDir::new(test);
        let repo = dir.path().join("deb");
        let package_version = format!("{}-1.1", crio_version(version));
        let stream = format!("v{major}.{minor}");
        let deb = build_deb(dir.path(), &repo, &package_version)?;
        write_indexes(&repo, &stream)?;
        sign(&repo, signing)?;

        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("local address: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let prefix = format!("/repositories/isv:/cri-o:/stable:/{stream}/deb/");
        let shared = Arc::new(Shared {
            root: repo,
            prefix: prefix.clone(),
            log: Mutex::new(Vec::new()),
            stop: Arc::clone(&stop),
        });
        let s = Arc::clone(&shared);
        let thread = crate::serve(listener, stop, move |conn| {
            let _ = serve_connection(&s, conn);
        });
        Ok(CrioAptRepo {
            dir,
            addr,
            prefix,
            deb,
            package_version,
            shared,
            thread: Some(thread),
        })
    }

    /// The repository's URL, shaped like the real one:
    /// `http://127.0.0.1:PORT/repositories/isv:/cri-o:/stable:/vX.Y/deb/`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.prefix)
    }

    /// `http://127.0.0.1:PORT`: the part of [`Self::url`] that stands for
    /// `https://download.opensuse.org`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The package's Debian version, e.g. `1.34.0-1.1`.
    pub fn package_version(&self) -> &str {
        &self.package_version
    }

    /// The .deb's path inside the repository, e.g. `amd64/cri-o_1.34.0-1.1_amd64.deb`.
    pub fn deb_path(&self) -> &str {
        &self.deb
    }

    /// The served directory (`Release`, `InRelease`, `Packages`, ...).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("deb")
    }

    /// How many requests (any method, any status) asked for a path ending
    /// in `name`, e.g. `InRelease` or the .deb's file name.
    pub fn requests(&self, name: &str) -> usize {
        crate::lock(&self.shared.log)
            .iter()
            .filter(|(_, path, _)| path.ends_with(name))
            .count()
    }

    /// Every request as `METHOD /path STATUS`, in order.
    pub fn log(&self) -> Vec<String> {
        crate::lock(&self.shared.log)
            .iter()
            .map(|(m, p, s)| format!("{m} {p} {s}"))
            .collect()
    }
}

impl Drop for CrioAptRepo {
    fn drop(&mut self) {
        crate::stop_serving(self.addr, &self.shared.stop, self.thread.take());
    }
}

// ---------------------------------------------------------------------------
// The package and the repository files

/// Builds the .deb into `repo/amd64/` (where the real repository keeps its
/// packages); returns its path relative to `repo`.
fn build_deb(work: &Path, repo: &Path, package_version: &str) -> Result<String, String> {
    let root = work.join("pkgroot");
    let mut entries = deb_entries(package_version);
    entries.push(Entry::file(
        "DEBIAN/control",
        0o644,
        control(package_version),
    ));
    let conffiles: String = DEB_CONFFILES.iter().map(|c| format!("{c}\n")).collect();
    entries.push(Entry::file("DEBIAN/conffiles", 0o644, conffiles));
    write_entries(&root, &entries)?;
    let name = format!("amd64/cri-o_{package_version}_amd64.deb");
    let out = repo.join(&name);
    std::fs::create_dir_all(repo.join("amd64")).map_err(|e| format!("create {repo:?}: {e}"))?;
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&root)
        .arg(&out))?;
    let _ = std::fs::remove_dir_all(&root);
    Ok(name)
}

/// The control file: the real package's name, section and dependencies
/// (`iptables`, which kind's base image has; `kubernetes-cni` only
/// recommended, and absent from this repository as from the real one).
fn control(package_version: &str) -> String {
    format!(
        "Package: cri-o\n\
         Version: {package_version}\n\
         Architecture: amd64\n\
         Maintainer: Kubernetes Authors <dev@kubernetes.io>\n\
         Depends: iptables\n\
         Recommends: kubernetes-cni\n\
         Section: admin\n\
         Priority: optional\n\
         Homepage: https://kubernetes.io\n\
         Description: Open Container Initiative-based implementation of Kubernetes Container Runtime Interface\n \
         Stand-in package for tests: its programs only answer version queries.\n"
    )
}

/// `Packages`, `Packages.gz` and `Release` with `apt-ftparchive`, labelled
/// like the real repository's.
fn write_indexes(repo: &Path, stream: &str) -> Result<(), String> {
    let packages = run(Command::new("apt-ftparchive")
        .args(["packages", "amd64"])
        .current_dir(repo))?
    .stdout;
    std::fs::write(repo.join("Packages"), &packages).map_err(|e| format!("write Packages: {e}"))?;
    run(Command::new("gzip")
        .args(["-9", "-n", "-k", "-f", "Packages"])
        .current_dir(repo))?;
    let project = format!("isv:cri-o:stable:{stream}");
    let release = run(Command::new("apt-ftparchive")
        .arg("-o")
        .arg(format!(
            "APT::FTPArchive::Release::Origin=obs://build.opensuse.org/{project}/deb"
        ))
        .arg("-o")
        .arg(format!("APT::FTPArchive::Release::Label={project}"))
        .args(["-o", "APT::FTPArchive::Release::Architectures=amd64 all"])
        .args(["release", "."])
        .current_dir(repo))?
    .stdout;
    std::fs::write(repo.join("Release"), release).map_err(|e| format!("write Release: {e}"))
}

/// Signs `Release` into `InRelease` (clear-signed) and `Release.gpg`
/// (detached, armored) and exports `Release.key` (armored), each with a
/// throwaway key in a throwaway GNUPGHOME.
fn sign(repo: &Path, signing: Signing) -> Result<(), String> {
    let served = GpgHome::new()?;
    let key = served.generate("cri-o stand-in repository <standin@invalid>")?;
    let exported = run(served.gpg().args(["--armor", "--export", &key]))?.stdout;
    std::fs::write(repo.join("Release.key"), exported)
        .map_err(|e| format!("write Release.key: {e}"))?;
    let other;
    let (home, signer) = match signing {
        Signing::Good => (&served, key),
        Signing::OtherKey => {
            other = GpgHome::new()?;
            let k = other.generate("another stand-in key <other@invalid>")?;
            (&other, k)
        }
    };
    let release = repo.join("Release");
    run(home
        .gpg()
        .args(["--local-user", &signer, "--clearsign", "--output"])
        .arg(repo.join("InRelease"))
        .arg(&release))?;
    run(home
        .gpg()
        .args([
            "--local-user",
            &signer,
            "--armor",
            "--detach-sign",
            "--output",
        ])
        .arg(repo.join("Release.gpg"))
        .arg(&release))?;
    Ok(())
}

/// A GNUPGHOME in the system temp directory (gpg-agent's socket path must stay
/// short); its agent is stopped and the directory removed on drop.
#[derive(Debug)]
struct GpgHome(PathBuf);

impl GpgHome {
    fn new() -> Result<GpgHome, String> {
        use std::os::unix::fs::PermissionsExt as _;
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kc-gpg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        Ok(GpgHome(dir))
    }

    fn gpg(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", &self.0)
            .args(["--batch", "--yes", "--no-tty", "--quiet"]);
        cmd
    }

    /// A new ed25519 signing key without passphrase; returns its fingerprint.
    fn generate(&self, uid: &str) -> Result<String, String> {
        run(self.gpg().args([
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "1d",
        ]))?;
        let listing = run(self
            .gpg()
            .args(["--with-colons", "--list-secret-keys", uid]))?
        .stdout;
        String::from_utf8_lossy(&listing)
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|f| !f.is_empty()))
            .map(str::to_owned)
            .ok_or_else(|| format!("gpg listed no fingerprint for {uid}"))
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.0)
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// HTTP

/// Answers GET and HEAD requests on one connection, keeping it open between
/// requests unless the client asks to close (apt pipelines its requests).
fn serve_connection(s: &Shared, conn: TcpStream) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let mut words = request_line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let close = headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let path = decode_path(target.split('?').next().unwrap_or(""));
        let (status, body, ctype) = answer(s, method, &path);
        crate::lock(&s.log).push((method.to_owned(), path, status));
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            _ => "Method Not Allowed",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\n\
             Content-Type: {ctype}\r\n\
             Content-Length: {}\r\n\
             Connection: {}\r\n\r\n",
            body.len(),
            if close { "close" } else { "keep-alive" }
        );
        conn.write_all(head.as_bytes())?;
        if method != "HEAD" {
            conn.write_all(&body)?;
        }
        conn.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// (status, body, content type) for a request.
fn answer(s: &Shared, method: &str, path: &str) -> (u16, Vec<u8>, &'static str) {
    if method != "GET" && method != "HEAD" {
        return (405, Vec::new(), "text/plain");
    }
    let Some(rel) = path.strip_prefix(&s.prefix) else {
        return (404, b"not found\n".to_vec(), "text/plain");
    };
    // Empty and `.` segments are skipped, as web servers do (`URL` ends in
    // `/`, so `$URL/Release.key` has `//`); `..` is refused.
    let segments: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if segments.is_empty() || segments.contains(&"..") {
        return (404, b"not found\n".to_vec(), "text/plain");
    }
    let rel = segments.join("/");
    match std::fs::read(s.root.join(&rel)) {
        Ok(body) => {
            let ctype = if rel.ends_with(".deb") {
                "application/vnd.debian.binary-package"
            } else if rel.ends_with(".gz") {
                "application/gzip"
            } else {
                "text/plain"
            };
            (200, body, ctype)
        }
        Err(_) => (404, b"not found\n".to_vec(), "text/plain"),
    }
}

/// Percent-decodes a URL path (`+` stays a plus, unlike in a query).
fn decode_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_percent_but_keep_plus() {
        assert_eq!(decode_path("/isv%3A/cri-o%3A/a+b"), "/isv:/cri-o:/a+b");
        assert_eq!(decode_path("/bad%zz%4"), "/bad%zz%4");
    }
}
