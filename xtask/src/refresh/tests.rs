//! `refresh` end to end on fixtures in the sources' formats, served over
//! HTTP on loopback by a small server here, with a real CNCF distribution
//! registry holding the node images; then the faults a network gives.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use expect_test::expect_file;
use testkit::{Auth, REGISTRY_TOOLS, Registry, TempDir, tools_present};

use super::*;
use crate::ctx::{Ctx, Mode};

// ---------------------------------------------------------------------------
// A fixture server

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

fn ok(body: &str) -> Reply {
    Reply {
        status: 200,
        headers: Vec::new(),
        body: body.to_owned(),
        delay: Duration::ZERO,
    }
}

fn status(code: u16) -> Reply {
    Reply {
        status: code,
        ..ok("")
    }
}

/// Answers GETs from a table of path → replies (the first ones once each,
/// the last one from then on); 404 for any other path. Logs every path.
struct Server {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Vec<Reply>>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let routes: Arc<Mutex<HashMap<String, Vec<Reply>>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, l) = (Arc::clone(&routes), Arc::clone(&log));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (r, l) = (Arc::clone(&r), Arc::clone(&l));
                std::thread::spawn(move || {
                    let _ = answer(conn, &r, &l);
                });
            }
        });
        Server { addr, routes, log }
    }

    fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    fn route(&self, path: &str, replies: Vec<Reply>) {
        lock(&self.routes).insert(path.to_owned(), replies);
    }

    fn requests(&self) -> Vec<String> {
        lock(&self.log).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn answer(
    conn: TcpStream,
    routes: &Mutex<HashMap<String, Vec<Reply>>>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    lock(log).push(path.clone());
    let reply = {
        let mut routes = lock(routes);
        match routes.get_mut(&path) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) => list[0].clone(),
            None => status(404),
        }
    };
    std::thread::sleep(reply.delay);
    let mut out = conn;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(reply.body.as_bytes())?;
    out.flush()
}

// ---------------------------------------------------------------------------
// The sources, on the server and the registry

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/refresh")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn today() -> Date {
    Date::parse("2026-12-01").expect("a date")
}

fn ctx(mode: Mode) -> Ctx {
    Ctx {
        sh: xshell::Shell::new().expect("a shell"),
        config: crate::config::Config::load(None).expect("the defaults"),
        ui: crate::ui::Ui {
            verbose: false,
            tty: false,
            color: false,
        },
        mode,
    }
}

/// The plan a dry run prints.
fn rendered(args: &RefreshArgs, sources: &Sources, path: &Path) -> String {
    let http = Http::new(sources.http.clone());
    let client = Client::new(sources.registry.clone());
    let (found, report) = (RefCell::default(), RefCell::default());
    full_plan(
        args,
        sources,
        (&http, &client),
        path,
        today(),
        (&found, &report),
    )
    .render()
}

fn fast() -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_secs(2),
        max_body_bytes: 1 << 20,
        attempts: 2,
        backoff: Duration::from_millis(10),
    }
}

fn sources(server: &Server, node_repository: Repository) -> Sources {
    Sources {
        github_api: server.url("/api"),
        github_raw: server.url("/raw"),
        dl_k8s: server.url("/dl"),
        opensuse: server.url("/opensuse"),
        node_repository,
        github_token: None,
        http: fast(),
        registry: registry::Options {
            credentials: registry::CredentialSource::Anonymous,
            ..registry::Options::default()
        },
    }
}

const CRIO: &str = "/opensuse/repositories/isv:/cri-o:";

fn packages(version: &str) -> String {
    format!(
        "Package: cri-o\nVersion: {version}-1.1\nArchitecture: amd64\nFilename: amd64/cri-o_{version}-1.1_amd64.deb\n"
    )
}

/// The fixture digests and the ones the registry gave the same images.
struct Images {
    /// (fixture digest, pushed digest, name in goldens)
    swaps: Vec<(String, String, String)>,
    /// The digest `v1.36.4`'s tag points to after a rebuild.
    moved: String,
}

impl Images {
    fn apply(&self, text: &str) -> String {
        self.swaps
            .iter()
            .fold(text.to_owned(), |t, (from, to, _)| t.replace(from, to))
    }

    /// Pushed digests shown by name, so goldens do not depend on them.
    fn named(&self, text: &str) -> String {
        let t = self
            .swaps
            .iter()
            .fold(text.to_owned(), |t, (_, to, name)| t.replace(to, name));
        t.replace(&self.moved, "sha256:<v1.36.4 rebuilt>")
    }
}

/// kind's four node images in the registry, v1.36.4's tag moved on since.
fn push_images(registry: &Registry) -> Images {
    let release = fixture("kind-release-latest.json");
    let mut swaps = Vec::new();
    for (version, marker) in [
        ("v1.37.0", "kind v0.33.0 v1.37.0"),
        ("v1.36.4", "kind v0.33.0 v1.36.4"),
        ("v1.35.8", "kind v0.33.0 v1.35.8"),
        ("v1.34.11", "kind v0.33.0 v1.34.11"),
    ] {
        let needle = format!("kindest/node:{version}@");
        let at = release.find(&needle).expect("the fixture names the image") + needle.len();
        let from = release[at..at + 71].to_owned();
        let to = registry.push("kindest/node", version, marker);
        swaps.push((from, to, format!("sha256:<{version}>")));
    }
    let moved = registry.push("kindest/node", "v1.36.4", "a later kind's v1.36.4");
    Images { swaps, moved }
}

/// Every source, as a refresh on 2026-12-01 would find it.
fn serve_sources(server: &Server, images: &Images) {
    server.route(
        "/api/repos/kubernetes-sigs/kind/releases/latest",
        vec![ok(&images.apply(&fixture("kind-release-latest.json")))],
    );
    server.route(
        "/raw/kubernetes-sigs/kind/v0.33.0/pkg/apis/config/defaults/image.go",
        vec![ok(&images.apply(&fixture("kind-image.go")))],
    );
    server.route(
        "/raw/kubernetes-sigs/kind/v0.33.0/pkg/build/nodeimage/defaults.go",
        vec![ok(&fixture("kind-defaults.go"))],
    );
    server.route(
        "/raw/kubernetes/website/main/data/releases/schedule.yaml",
        vec![ok(&fixture("schedule.yaml"))],
    );
    server.route("/dl/release/latest.txt", vec![ok("v1.38.0-rc.0\n")]);
    for (minor, patch) in [
        ("1.37", "v1.37.2"),
        ("1.36", "v1.36.5"),
        ("1.35", "v1.35.9"),
    ] {
        server.route(
            &format!("/dl/release/stable-{minor}.txt"),
            vec![ok(&format!("{patch}\n"))],
        );
    }
    server.route(
        &format!("{CRIO}/stable:/"),
        vec![ok(&fixture("cri-o-stable.html"))],
    );
    server.route(
        &format!("{CRIO}/prerelease:/"),
        vec![ok(&fixture("cri-o-prerelease.html"))],
    );
    server.route(
        &format!("{CRIO}/stable:/v1.37/deb/Packages"),
        vec![ok(&fixture("cri-o-stable-v1.37-Packages"))],
    );
    server.route(
        &format!("{CRIO}/stable:/v1.36/deb/Packages"),
        vec![ok(&packages("1.36.3"))],
    );
    server.route(
        &format!("{CRIO}/stable:/v1.35/deb/Packages"),
        vec![ok(&packages("1.35.6"))],
    );
}

/// A scratch copy of a releases file the sources have moved past.
fn stale_file(dir: &TempDir) -> (PathBuf, String) {
    let path = dir.path().join("releases.toml");
    let text = Releases::parse(crate::releases::tests::FIXTURE)
        .expect("the fixture")
        .render();
    std::fs::write(&path, &text).expect("write the stale file");
    (path, text)
}

fn refresh_args(check: bool) -> RefreshArgs {
    RefreshArgs { check }
}

#[test]
fn refresh_on_fixtures_writes_the_file_and_check_fails_when_behind() {
    let test = "refresh_on_fixtures_writes_the_file_and_check_fails_when_behind";
    if !tools_present(test, REGISTRY_TOOLS) {
        return;
    }
    let registry = Registry::start(test, Auth::None);
    let images = push_images(&registry);
    let server = Server::start();
    serve_sources(&server, &images);
    let sources = sources(&server, registry.repo("kindest/node"));
    let dir = TempDir::new(test);
    let (path, stale) = stale_file(&dir);
    let refresh = |check: bool, on: Date, mode: Mode| {
        run_with(&refresh_args(check), &sources, &path, on, &ctx(mode)).unwrap()
    };

    // A dry run reads nothing and writes nothing.
    let dry = rendered(&refresh_args(false), &sources, &path);
    refresh(false, today(), Mode::DryRun);
    assert!(
        dry.contains(&format!(
            "GET {}/repos/kubernetes-sigs/kind/releases/latest",
            sources.github_api
        )),
        "{dry}"
    );
    assert!(dry.contains("5. Writing configs/releases.toml"), "{dry}");
    assert_eq!(server.requests(), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), stale);

    // --check on the stale file: behind, the difference shown, nothing written.
    let checked = refresh(true, today(), Mode::Run);
    assert!(checked.behind);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), stale);

    // The refresh: the file the sources make, and the difference printed.
    let report = refresh(false, today(), Mode::Run);
    assert!(report.behind);
    assert_eq!(report.diff, checked.diff);
    let written = std::fs::read_to_string(&path).unwrap();
    expect_file!["../../tests/golden/refresh-releases.toml"].assert_eq(&images.named(&written));
    expect_file!["../../tests/golden/refresh-diff.txt"].assert_eq(&images.named(&report.diff));
    // The released digest is kept where the tag moved on, and that is said.
    assert_eq!(
        report
            .notes
            .iter()
            .map(|n| images.named(n))
            .collect::<Vec<_>>(),
        [format!(
            "{}:v1.36.4 now points to sha256:<v1.36.4 rebuilt>, not to the digest kind v0.33.0 released; pinned to the released sha256:<v1.36.4>",
            registry.repo("kindest/node")
        )]
    );
    // What was written reads back as the same releases.
    let read = Releases::parse(&written).unwrap();
    assert_eq!(read.render(), written);
    assert_eq!(
        read.kind.node_repository.to_string(),
        "docker.io/kindest/node"
    );

    // Nothing new: up to date, and --check passes.
    let again = refresh(true, today(), Mode::Run);
    assert!(!again.behind && again.diff.is_empty(), "{}", again.diff);

    // CRI-O branches v1.38: the pre-release moves from main to its stream.
    let mut listing = fixture("cri-o-prerelease.html");
    listing = listing.replace(
        "<tr><td><a href=\"v1.37/\">",
        "<tr><td><a href=\"v1.38/\">v1.38/</a></td><td></td><td></td></tr>\n<tr><td><a href=\"v1.37/\">",
    );
    server.route(&format!("{CRIO}/prerelease:/"), vec![ok(&listing)]);
    server.route(
        &format!("{CRIO}/prerelease:/v1.38/deb/Packages"),
        vec![ok(&packages("1.38.0~rc.0"))],
    );
    let branched = refresh(false, today(), Mode::Run);
    assert_eq!(
        branched
            .diff
            .lines()
            .filter(|l| l.starts_with(['-', '+']) && !l.starts_with("---") && !l.starts_with("+++"))
            .collect::<Vec<_>>(),
        ["-crio = \"main\"", "+crio = \"prerelease:v1.38\""]
    );

    // A month on, v1.35 is past its end of life: out of the file, and so of the matrix.
    let later = Date::parse("2027-03-01").unwrap();
    let report = refresh(false, later, Mode::Run);
    let read = Releases::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        report.diff.contains("-kubernetes = \"v1.35\""),
        "{}",
        report.diff
    );
    let matrix: Vec<String> = read.matrix().iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(matrix, ["v1.38.0-rc.0", "v1.37.0", "v1.36.4"]);
}

#[test]
fn a_digest_the_registry_lacks_is_an_error() {
    let test = "a_digest_the_registry_lacks_is_an_error";
    if !tools_present(test, REGISTRY_TOOLS) {
        return;
    }
    let registry = Registry::start(test, Auth::None);
    let mut images = push_images(&registry);
    // kind's notes name a v1.35.8 digest the registry never had.
    let never = format!("sha256:{}", "0".repeat(64));
    images.swaps[2].1 = never.clone();
    let server = Server::start();
    serve_sources(&server, &images);
    let sources = sources(&server, registry.repo("kindest/node"));
    let dir = TempDir::new(test);
    let (path, stale) = stale_file(&dir);
    let err = format!(
        "{:#}",
        run_with(
            &refresh_args(false),
            &sources,
            &path,
            today(),
            &ctx(Mode::Run)
        )
        .unwrap_err()
    );
    assert!(
        err.starts_with("step \"Checking kind's node images in ")
            && err.contains(&format!(
                "kindest/node:v1.35.8@{never}, but the registry has no such manifest"
            )),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        stale,
        "nothing written"
    );
}

/// Each fault of the first source, and what the error says. No registry
/// needed: the first step fails.
#[test]
fn network_faults_give_clear_errors_and_write_nothing() {
    let server = Server::start();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let repo = Repository::parse("127.0.0.1:1/kindest/node").unwrap();
    let dir = TempDir::new("network_faults_give_clear_errors_and_write_nothing");
    let (path, stale) = stale_file(&dir);
    let release = "/api/repos/kubernetes-sigs/kind/releases/latest";
    let fail = |replies: Vec<Reply>| -> String {
        server.route(release, replies);
        let err = run_with(
            &refresh_args(false),
            &sources(&server, repo.clone()),
            &path,
            today(),
            &ctx(Mode::Run),
        )
        .unwrap_err();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            stale,
            "nothing written"
        );
        format!("{err:#}")
    };
    let url = format!("{}{release}", server.url(""));
    let prefix = format!("step \"Reading kind's latest release\" failed: GET {url}: ");

    assert_eq!(
        fail(vec![status(502)]),
        format!(
            "{prefix}HTTP 502 (gave up after 2 tries); refresh reads api.github.com, raw.githubusercontent.com, dl.k8s.io, download.opensuse.org and Docker Hub"
        )
    );
    let limited = Reply {
        headers: vec![
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), "1796169600".into()),
        ],
        ..status(403)
    };
    assert_eq!(
        fail(vec![limited]),
        format!(
            "{prefix}GitHub's API rate limit for this address is used up (it resets at Unix time 1796169600); set GITHUB_TOKEN (any token, no scopes needed) or run again later"
        )
    );
    assert_eq!(
        fail(vec![status(404)]),
        format!("{prefix}404 Not Found; kind's latest release should be there")
    );
    assert!(
        fail(vec![ok("<html>maintenance</html>")])
            .contains(&format!("in {url}: not a GitHub release"))
    );
    let slow = Reply {
        delay: Duration::from_secs(3),
        ..ok("{}")
    };
    assert!(fail(vec![slow]).starts_with(&format!("{prefix}no complete answer within 2s")));
    assert!(fail(vec![ok(&"x".repeat(2 << 20))]).contains("larger than 1048576 bytes"));
    // A transient failure is tried again: then the next source is asked.
    let err = fail(vec![status(503), ok(&fixture("kind-release-latest.json"))]);
    assert!(err.contains("pkg/apis/config/defaults/image.go: 404 Not Found; kind's default node image should be there"), "{err}");

    // Nothing listening at all.
    let mut s = sources(&server, repo);
    s.github_api = format!("http://127.0.0.1:{closed}");
    let err = format!(
        "{:#}",
        run_with(&refresh_args(true), &s, &path, today(), &ctx(Mode::Run)).unwrap_err()
    );
    assert!(
        err.contains("cannot connect (refused or unreachable"),
        "{err}"
    );
}

/// The token goes to GitHub's API, and nowhere else.
#[test]
fn the_github_token_goes_to_the_api_only() {
    let server = Server::start();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    // A second server that records headers, standing in for the API.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = listener.local_addr().unwrap();
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            lock(&s).push(head);
            let body = fixture("kind-release-latest.json");
            let mut out = conn;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut s = sources(
        &server,
        Repository::parse("127.0.0.1:1/kindest/node").unwrap(),
    );
    s.github_api = format!("http://{api}");
    s.github_token = Some("ghp_secret-for-the-test".to_owned());
    let dir = TempDir::new("the_github_token_goes_to_the_api_only");
    let (path, _) = stale_file(&dir);
    let err = format!(
        "{:#}",
        run_with(&refresh_args(false), &s, &path, today(), &ctx(Mode::Run)).unwrap_err()
    );
    assert!(!err.contains("ghp_secret"), "{err}");
    let heads = lock(&seen).clone();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer ghp_secret-for-the-test"),
        "{}",
        heads[0]
    );
    assert!(
        heads[0].contains("X-GitHub-Api-Version: 2022-11-28")
            || heads[0]
                .to_ascii_lowercase()
                .contains("x-github-api-version: 2022-11-28")
    );
    // The next source (raw.githubusercontent.com, here the fixture server) got no token:
    // the fixture server does not log headers, but it was asked, without one reaching it.
    assert_eq!(
        server.requests(),
        ["/raw/kubernetes-sigs/kind/v0.33.0/pkg/apis/config/defaults/image.go"]
    );
}

// ---------------------------------------------------------------------------
// Pure parts

fn gathered() -> Gathered {
    let release = sources::kind_release(&fixture("kind-release-latest.json")).unwrap();
    let images = sources::release_notes_images(&release.body).unwrap();
    let schedule = sources::schedule(&fixture("schedule.yaml")).unwrap();
    let minors = maintained(&schedule, today())
        .into_iter()
        .map(|s| {
            let patch =
                KubernetesVersion::parse(&format!("v{}.{}.1", s.minor.major, s.minor.minor))
                    .unwrap();
            (s, patch)
        })
        .collect();
    Gathered {
        kind: Some(release),
        default: Some(sources::kind_default_image(&fixture("kind-image.go")).unwrap()),
        base_image: Some(sources::kind_base_image(&fixture("kind-defaults.go")).unwrap()),
        images,
        minors,
        latest: Some(KubernetesVersion::parse("v1.38.0-rc.0").unwrap()),
        crio_stable: BTreeMap::from([
            (
                Minor::parse("v1.37").unwrap(),
                Release::parse("v1.37.0").unwrap(),
            ),
            (
                Minor::parse("v1.36").unwrap(),
                Release::parse("v1.36.3").unwrap(),
            ),
        ]),
        crio_prerelease: BTreeSet::from([Minor::parse("v1.35").unwrap()]),
        notes: Vec::new(),
    }
}

#[test]
fn end_of_life_on_the_day_is_still_maintained() {
    let schedule = sources::schedule(&fixture("schedule.yaml")).unwrap();
    let on = |d: &str| -> Vec<String> {
        maintained(&schedule, Date::parse(d).unwrap())
            .iter()
            .map(|s| s.minor.to_string())
            .collect()
    };
    assert_eq!(on("2026-10-27"), ["v1.37", "v1.36", "v1.35", "v1.34"]);
    assert_eq!(on("2026-10-28"), ["v1.37", "v1.36", "v1.35"]);
    assert_eq!(on("2027-11-01"), Vec::<String>::new());
}

#[test]
fn crio_pairing() {
    let g = gathered();
    let p = |m: &str, pre: bool| {
        let (s, r) = pair(Minor::parse(m).unwrap(), pre, &g);
        format!("{s} {}", r.map(|r| r.to_string()).unwrap_or_default())
    };
    assert_eq!(p("v1.37", false), "v1.37 v1.37.0");
    // No stable stream yet, a prerelease one: that.
    assert_eq!(p("v1.35", false), "prerelease:v1.35 ");
    // Neither: main. A pre-release never takes the stable stream.
    assert_eq!(p("v1.38", false), "main ");
    assert_eq!(p("v1.37", true), "main ");
    assert_eq!(p("v1.35", true), "prerelease:v1.35 ");
}

#[test]
fn assembling_the_file() {
    let r = assemble(&gathered()).unwrap();
    assert_eq!(r.kind.default.to_string(), "v1.37.0");
    assert_eq!(r.node_images.len(), 4);
    assert!(
        r.node_images
            .iter()
            .all(|n| n.digest.is_some() && n.kind.to_string() == "v0.33.0")
    );
    assert_eq!(
        r.prerelease.as_ref().map(|p| p.crio.to_string()).as_deref(),
        Some("main")
    );

    // The default missing from the notes' list is added from kind's sources.
    let mut g = gathered();
    g.images.retain(|(v, _)| v.to_string() != "v1.37.0");
    assert_eq!(assemble(&g).unwrap(), r);

    // A release, not a pre-release, is newest: no pre-release entry.
    let mut g = gathered();
    g.latest = Some(KubernetesVersion::parse("v1.37.1").unwrap());
    assert_eq!(assemble(&g).unwrap().prerelease, None);

    // kind's sources and its notes disagree on the default's digest.
    let mut g = gathered();
    g.default = Some((
        KubernetesVersion::parse("v1.37.0").unwrap(),
        Digest::parse(&format!("sha256:{}", "f".repeat(64))).unwrap(),
    ));
    let err = format!("{:#}", assemble(&g).unwrap_err());
    assert!(
        err.contains("is not the one its release notes name"),
        "{err}"
    );
    assert!(format!("{:#}", assemble(&Gathered::default()).unwrap_err()).contains("was not read"));
}
