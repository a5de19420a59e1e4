//! End-to-end tests of the command line: the real `xtask` binary runs as a
//! child process, against a real local registry (CNCF distribution, started by
//! `testkit`) whenever the network is involved.
//!
//! Every run gets an environment of its own: an empty Docker config, no podman
//! auth file, no `KIND_CRIO_CONFIG`, `NO_COLOR`, `CI` or `RUST_BACKTRACE`, so
//! nothing of the machine's user leaks in and a panic would show its
//! `RUST_BACKTRACE` hint. The tests check what a user sees: stdout holds only
//! data, stderr the status lines and one `ERROR: ...` line, exit codes are 0, 1
//! (our errors) or 2 (clap's usage errors), and nothing ever panics.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};
use testkit::{Auth, HTPASSWD_TOOLS, REGISTRY_TOOLS, Registry, TempDir, tools_present};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// The repository the tag tests list, and its tags in the order they are made.
const REPO: &str = "kindest/node";
const TAGS: [&str; 7] = [
    "v1.31.0",
    "v1.32.0-rc.1",
    "v1.32.0-alpha.2",
    "v1.32.0",
    "v1.9.3",
    "latest",
    "foo",
];
/// `tags` without flags: Kubernetes versions in release order, then the rest lexically.
const SORTED: &str = "v1.9.3\nv1.31.0\nv1.32.0-alpha.2\nv1.32.0-rc.1\nv1.32.0\nfoo\nlatest\n";

const USER: &str = "kind";
const PASSWORD: &str = "s3cret-Pa55word";

// ---------------------------------------------------------------------------
// Running the binary

/// What one run of the binary left behind.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {:?}\n--- stdout ---\n{}--- stderr ---\n{}---",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Asserts exit code 0 and an untouched stderr (no panic); returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success:\n{self}");
        self.assert_no_panic();
        &self.stdout
    }

    /// Asserts exit code 1, nothing on stdout, and that stderr ends with exactly
    /// one `ERROR: ` line; returns that line without its prefix.
    fn error(&self) -> &str {
        assert_eq!(self.code, Some(1), "expected a failure:\n{self}");
        self.assert_no_panic();
        assert_eq!(self.stdout, "", "a failure printed data:\n{self}");
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect();
        assert_eq!(errors.len(), 1, "expected one ERROR line:\n{self}");
        let last = self.stderr.lines().last().unwrap_or_default();
        assert!(
            self.stderr.ends_with('\n') && last == errors[0],
            "the ERROR line must be the last line:\n{self}"
        );
        last.strip_prefix("ERROR: ")
            .unwrap_or_else(|| panic!("the error line must start with `ERROR: `:\n{self}"))
    }

    fn assert_no_panic(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(
                !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
                "the binary panicked:\n{self}"
            );
        }
    }
}

/// A scratch home for runs of the binary: an empty Docker config directory,
/// a podman auth file path that does not exist, and nothing else.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new(test: &str) -> Sandbox {
        let dir = TempDir::new(&format!("xtask-cli-{test}"));
        for sub in ["docker", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create a sandbox directory");
        }
        Sandbox { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where `DOCKER_CONFIG` points: put a `config.json` here to log in.
    fn docker_config(&self) -> PathBuf {
        self.path().join("docker")
    }

    /// Writes `text` to a file in the sandbox and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write a sandbox file");
        path
    }

    /// `program` with the sandbox's environment (not yet run).
    fn program(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path())
            .env("HOME", self.path())
            .env("DOCKER_CONFIG", self.docker_config())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env("REGISTRY_AUTH_FILE", self.path().join("no-auth.json"))
            // A colour-capable terminal type: only a real terminal and
            // NO_COLOR should decide about escapes.
            .env("TERM", "xterm-256color")
            .env_remove("KIND_CRIO_CONFIG")
            .env_remove("NO_COLOR")
            .env_remove("CI")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null());
        cmd
    }

    /// The binary with `args` and the sandbox's environment (not yet run).
    fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = self.program(XTASK);
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.xtask(args))
    }
}

fn run(mut cmd: Command) -> Run {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// A loopback port where nothing listens (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// A registry holding [`REPO`] with every tag of [`TAGS`].
fn tagged_registry(test: &str) -> Registry {
    let registry = Registry::start(test, Auth::None);
    registry.push(REPO, TAGS[0], test);
    let more: Vec<String> = TAGS[1..].iter().map(|t| t.to_string()).collect();
    registry.make_tags(REPO, TAGS[0], &more);
    registry
}

/// Raw stdout of `skopeo list-tags --tls-verify=false docker://<reference>`,
/// run as testkit runs skopeo (no credentials of the machine's user, a timeout).
fn skopeo_list_tags_stdout(reference: &str) -> String {
    let mut cmd = testkit::skopeo_command();
    cmd.args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .stdin(Stdio::null());
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "skopeo list-tags {reference}:\n{out}");
    out.stdout
}

/// The status lines of one successful step, as they look off a terminal.
fn assert_step_succeeded(run: &Run, step: &str) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "expected a start and an end line:\n{run}");
    assert_eq!(lines[0], format!(" • {step} ..."), "{run}");
    assert!(
        lines[1].starts_with(&format!(" ✓ {step} (")) && lines[1].ends_with("s)"),
        "{run}"
    );
}

/// stdout is data only: no status line ever reaches it.
fn assert_no_status_lines(run: &Run) {
    for mark in ["•", "✓", "✗", "ERROR"] {
        assert!(!run.stdout.contains(mark), "{mark:?} on stdout:\n{run}");
    }
}

// ---------------------------------------------------------------------------
// tags against a real registry

/// `tags --json` prints exactly what `skopeo list-tags` prints, byte for byte;
/// the status line goes to stderr only.
#[test]
fn tags_json_is_byte_identical_to_skopeo() {
    let test = "tags_json_is_byte_identical_to_skopeo";
    if !tools_present(test, REGISTRY_TOOLS) {
        return;
    }
    let registry = tagged_registry(test);
    let sandbox = Sandbox::new(test);
    let repo = registry.repo(REPO).to_string();

    let ours = sandbox.run(&["tags", "--json", &repo]);
    let theirs = skopeo_list_tags_stdout(&repo);
    assert_eq!(ours.ok(), theirs, "\n{ours}");
    assert_step_succeeded(&ours, &format!("Listing tags of {repo}"));
    assert_no_status_lines(&ours);

    // Sanity: that common output really holds every tag (in the registry's
    // order, which is its storage's directory order, not sorted).
    let parsed: Value = serde_json::from_str(&theirs).expect("skopeo prints JSON");
    assert_eq!(parsed["Repository"], json!(repo));
    let mut listed: Vec<&str> = parsed["Tags"]
        .as_array()
        .expect("a Tags array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    listed.sort_unstable();
    let mut made = TAGS.to_vec();
    made.sort_unstable();
    assert_eq!(listed, made);

    // A skopeo-style `docker://` reference names the same repository.
    let prefixed = sandbox.run(&["tags", "--json", &format!("docker://{repo}")]);
    assert_eq!(prefixed.ok(), theirs);
}

/// Plain `tags` sorts for people, `--latest` picks the newest release, and a
/// repository without releases or without existence fails in one clear line.
#[test]
fn tags_sorted_latest_and_missing_repository() {
    let test = "tags_sorted_latest_and_missing_repository";
    if !tools_present(test, REGISTRY_TOOLS) {
        return;
    }
    let registry = tagged_registry(test);
    registry.push("other/image", "latest", test);
    let sandbox = Sandbox::new(test);
    let repo = registry.repo(REPO).to_string();

    let plain = sandbox.run(&["tags", &repo]);
    assert_eq!(plain.ok(), SORTED);
    assert_step_succeeded(&plain, &format!("Listing tags of {repo}"));
    assert_no_status_lines(&plain);

    let latest = sandbox.run(&["tags", "--latest", &repo]);
    assert_eq!(latest.ok(), "v1.32.0\n");
    assert_no_status_lines(&latest);

    let other = registry.repo("other/image").to_string();
    let none = sandbox.run(&["tags", "--latest", &other]);
    assert_eq!(
        none.error(),
        format!(
            "{other} has no tag that is a released Kubernetes version (vX.Y.Z); run without --latest to see its 1 tags"
        )
    );

    let missing = registry.repo("kindest/nope").to_string();
    let gone = sandbox.run(&["tags", &missing]);
    let msg = gone.error();
    assert!(
        msg.starts_with(&format!("step \"Listing tags of {missing}\" failed: ")),
        "{gone}"
    );
    assert!(
        msg.contains(&format!(
            "repository {missing} not found (404 from http://{}/v2/kindest/nope/tags/list)",
            registry.host()
        )),
        "{gone}"
    );
    assert!(
        gone.stderr.starts_with(&format!(
            " • Listing tags of {missing} ...\n ✗ Listing tags of {missing} ("
        )),
        "{gone}"
    );
}

// ---------------------------------------------------------------------------
// Credentials

fn htpasswd_registry(test: &str) -> Registry {
    let registry = Registry::start(
        test,
        Auth::Htpasswd {
            user: USER.to_owned(),
            password: PASSWORD.to_owned(),
        },
    );
    registry.push("private/node", "v1.31.0", test);
    registry.make_tags("private/node", "v1.31.0", &["v1.32.0".to_owned()]);
    registry
}

/// `auths` for `host` in the shape both `docker login` and `podman login` write.
fn auths(host: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    json!({"auths": {host: {"auth": auth}}}).to_string()
}

/// Neither output of `run` shows `password` or the Basic value made from it.
fn assert_no_secret(run: &Run, password: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(password), "the password leaked:\n{run}");
        assert!(!text.contains(&encoded), "the Basic value leaked:\n{run}");
    }
}

/// Docker's `config.json` (`DOCKER_CONFIG`): right credentials list the tags,
/// wrong ones are a 401 "with the credentials found" that shows no secret, none
/// at all a 401 "without credentials".
#[test]
fn docker_config_credentials() {
    let test = "docker_config_credentials";
    if !tools_present(test, HTPASSWD_TOOLS) {
        return;
    }
    let registry = htpasswd_registry(test);
    let repo = registry.repo("private/node").to_string();
    let url = format!("http://{}/v2/private/node/tags/list", registry.host());

    let right = Sandbox::new(&format!("{test}-right"));
    std::fs::write(
        right.docker_config().join("config.json"),
        auths(&registry.host(), USER, PASSWORD),
    )
    .expect("write config.json");
    let listed = right.run(&["tags", &repo]);
    assert_eq!(listed.ok(), "v1.31.0\nv1.32.0\n");
    assert_no_secret(&listed, PASSWORD);

    let wrong_password = "not-the-Pa55word";
    let wrong = Sandbox::new(&format!("{test}-wrong"));
    std::fs::write(
        wrong.docker_config().join("config.json"),
        auths(&registry.host(), USER, wrong_password),
    )
    .expect("write config.json");
    let refused = wrong.run(&["tags", &repo]);
    let msg = refused.error();
    assert!(
        msg.ends_with(&format!(
            "{url}: 401 Unauthorized with the credentials found for this registry; check them (docker login / podman login)"
        )),
        "{refused}"
    );
    assert_no_secret(&refused, wrong_password);

    let anonymous = Sandbox::new(&format!("{test}-none"));
    let refused = anonymous.run(&["tags", &repo]);
    assert!(
        refused
            .error()
            .ends_with(&format!("{url}: 401 Unauthorized without credentials; log in first (docker login / podman login) or check the repository name")),
        "{refused}"
    );
}

/// podman's auth file (`REGISTRY_AUTH_FILE`) is used when Docker's config has
/// nothing for the registry; Docker's config comes first when it has.
#[test]
fn podman_auth_file_credentials() {
    let test = "podman_auth_file_credentials";
    if !tools_present(test, HTPASSWD_TOOLS) {
        return;
    }
    let registry = htpasswd_registry(test);
    let repo = registry.repo("private/node").to_string();
    let sandbox = Sandbox::new(test);
    let auth_file = sandbox.file("auth.json", &auths(&registry.host(), USER, PASSWORD));
    let with_auth_file = |sandbox: &Sandbox| {
        let mut cmd = sandbox.xtask(&["tags", &repo]);
        cmd.env("REGISTRY_AUTH_FILE", &auth_file);
        run(cmd)
    };

    // No Docker config at all.
    let listed = with_auth_file(&sandbox);
    assert_eq!(listed.ok(), "v1.31.0\nv1.32.0\n");

    // A Docker config that knows other registries only.
    let config = sandbox.docker_config().join("config.json");
    std::fs::write(&config, auths("registry.example:5000", USER, "other")).expect("config.json");
    assert_eq!(with_auth_file(&sandbox).ok(), "v1.31.0\nv1.32.0\n");

    // A Docker config with (wrong) credentials for this registry wins.
    std::fs::write(&config, auths(&registry.host(), USER, "docker-Pa55word")).expect("config.json");
    let refused = with_auth_file(&sandbox);
    assert!(
        refused
            .error()
            .contains("401 Unauthorized with the credentials found"),
        "{refused}"
    );
    assert_no_secret(&refused, "docker-Pa55word");
}

// ---------------------------------------------------------------------------
// Errors

/// Mistakes a user makes before any request: one `ERROR:` line, exit code 1.
#[test]
fn usage_errors_are_one_clear_line() {
    let sandbox = Sandbox::new("usage_errors_are_one_clear_line");
    let one_line = |args: &[&str], expected: &str| {
        let run = sandbox.run(args);
        let msg = run.error().to_owned();
        assert_eq!(run.stderr.lines().count(), 1, "{run}");
        assert!(
            msg.contains(expected),
            "{args:?}: {expected:?} not in:\n{run}"
        );
        msg
    };

    let msg = one_line(
        &["tags", "kindest/node:v1.31.0"],
        "give only the repository, e.g. kindest/node",
    );
    assert!(
        msg.contains(r#""kindest/node:v1.31.0" has a tag or digest"#),
        "{msg}"
    );
    one_line(
        &["tags", "kindest/node@sha256:0123"],
        "give only the repository",
    );
    one_line(
        &["tags", "Kindest/Node"],
        r#"has upper-case letters; repository names are lower-case (try "kindest/node")"#,
    );
    one_line(&["tags", "kindest//node"], "is not valid");
    one_line(&["tags", ""], "repository name is empty");

    let unknown = sandbox.file("unknown-key.toml", "[build]\nengin = \"podman\"\n");
    let unknown = unknown.to_str().expect("UTF-8 path");
    one_line(
        &["--config", unknown, "config"],
        "unknown key `build.engin`; known keys here: build.engine",
    );
    // The configuration is read before any command, even a dry run.
    one_line(
        &["--config", unknown, "--dry-run", "tags"],
        "unknown key `build.engin`",
    );

    let absent = sandbox.path().join("absent.toml");
    let absent = absent.to_str().expect("UTF-8 path");
    one_line(
        &["--config", absent, "config"],
        &format!("cannot read config file {absent}"),
    );

    let bad_value = sandbox.file("bad-value.toml", "[kubernetes]\nversion = \"1.31\"\n");
    one_line(
        &[
            "--config",
            bad_value.to_str().expect("UTF-8 path"),
            "config",
        ],
        "kubernetes.version: \"1.31\" is not a Kubernetes version",
    );
}

/// Clap's own usage errors keep clap's convention: exit code 2, usage on stderr.
#[test]
fn clap_usage_errors_exit_2() {
    let sandbox = Sandbox::new("clap_usage_errors_exit_2");
    for (args, expected) in [
        (
            &["tags", "--json", "--latest"][..],
            "the argument '--json' cannot be used with '--latest'",
        ),
        (&[][..], "Usage:"),
        (&["frobnicate"][..], "unrecognized subcommand 'frobnicate'"),
        (&["tags", "a/b", "c/d"][..], "unexpected argument 'c/d'"),
    ] {
        let run = sandbox.run(args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{run}");
        run.assert_no_panic();
        assert_eq!(run.stdout, "", "{args:?}:\n{run}");
        assert!(run.stderr.contains(expected), "{args:?}:\n{run}");
    }
}

/// A proxy's password reaches the build in the engine's environment and
/// shows nowhere: not in the dry run's plan, not in `-v`'s lines or the
/// error of a failed build, not on the engine's command line (which `ps`
/// shows anyone). The engine is a stand-in `docker` that records its
/// arguments and environment, then fails as a build can.
#[test]
fn a_proxy_password_reaches_the_build_and_shows_nowhere() {
    let sandbox = Sandbox::new("a_proxy_password_reaches_the_build_and_shows_nowhere");
    let bin = sandbox.path().join("bin");
    std::fs::create_dir_all(&bin).expect("a bin directory");
    let argv = sandbox.path().join("argv");
    let env = sandbox.path().join("env");
    let docker = bin.join("docker");
    std::fs::write(
        &docker,
        format!(
            "#!/bin/sh\n# `docker image inspect`: nothing is built yet.\n[ \"$1\" = image ] && exit 1\n\
             # BuildKit is here.\n[ \"$1\" = buildx ] && echo 'github.com/docker/buildx v0.29.1' && exit 0\n\
             printf '%s\\n' \"$@\" >'{}'\nenv >'{}'\necho 'failed to solve: the stand-in fails' >&2\nexit 1\n",
            argv.display(),
            env.display()
        ),
    )
    .expect("a stand-in docker");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");
    let proxy = format!("http://alice:{PASSWORD}@proxy.example:3128");
    let shown = "'http://alice:***@proxy.example:3128'";
    let build_image = |global: &str| {
        let mut cmd = sandbox.xtask(&[
            global,
            "build-image",
            "--node-image",
            "kindest/node:v1.34.0",
            "--image",
            "localhost/kind-crio-test/node:proxy-password",
            "--http-proxy",
            &proxy,
            "--https-proxy",
            &proxy,
            "--no-proxy",
            "localhost,.svc",
        ]);
        cmd.env("PATH", &path);
        run(cmd)
    };

    let dry = build_image("--dry-run");
    let plan = dry.ok();
    assert_no_secret(&dry, PASSWORD);
    for shown in [
        format!("HTTP_PROXY={shown} http_proxy={shown} HTTPS_PROXY={shown} https_proxy={shown}"),
        " docker build --platform linux/amd64 --build-arg HTTP_PROXY --build-arg http_proxy --build-arg HTTPS_PROXY --build-arg https_proxy --build-arg NO_PROXY --build-arg no_proxy -t ".to_owned(),
    ] {
        assert!(plan.contains(&shown), "{shown:?} missing:\n{dry}");
    }
    assert!(!argv.exists(), "the dry run built:\n{dry}");

    let failed = build_image("-v");
    assert_eq!(failed.code, Some(1), "{failed}");
    failed.assert_no_panic();
    assert_no_secret(&failed, PASSWORD);
    // The error names the command as the plan does, and gives its output.
    let error = &failed.stderr[failed.stderr.find("ERROR: ").expect("an error")..];
    assert!(
        error.contains("command failed (exit status: 1):")
            && error.contains(&format!("HTTPS_PROXY={shown} https_proxy={shown}"))
            && error.contains("│ failed to solve: the stand-in fails"),
        "{failed}"
    );
    // `-v` showed the command as the plan does.
    assert!(
        failed.stderr.contains(&format!(
            "$ DOCKER_BUILDKIT=1 HTTP_PROXY={shown} http_proxy={shown}"
        )),
        "{failed}"
    );
    let argv = std::fs::read_to_string(&argv).expect("the engine ran");
    assert!(!argv.contains(PASSWORD), "the password is in argv:\n{argv}");
    let args: Vec<&str> = argv.lines().collect();
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        assert!(
            args.windows(2).any(|w| w == ["--build-arg", name]),
            "no --build-arg {name}:\n{argv}"
        );
    }
    let env = std::fs::read_to_string(&env).expect("the engine's environment");
    for var in [
        format!("HTTP_PROXY={proxy}"),
        format!("http_proxy={proxy}"),
        format!("HTTPS_PROXY={proxy}"),
        format!("https_proxy={proxy}"),
        "NO_PROXY=localhost,.svc".to_owned(),
        "no_proxy=localhost,.svc".to_owned(),
    ] {
        assert!(
            env.lines().any(|l| l == var),
            "{var} is not in the engine's environment"
        );
    }
}

/// A value refused for its form is named in the error without its
/// password: a proxy (our error), a mirror, a CRI-O repository or bundle
/// URL (clap's usage error, which quotes the value, and ours inside it).
#[test]
fn a_refused_value_shows_no_password() {
    let sandbox = Sandbox::new("a_refused_value_shows_no_password");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--https-proxy", "alice:s3cret@proxy:3128"],
            1,
            "HTTPS_PROXY \"alice:***@proxy:3128\" is not valid",
        ),
        (
            &["--http-proxy", "http://alice:s3cret@bad host:3128"],
            1,
            "HTTP_PROXY \"http://alice:***@bad host:3128\" is not valid",
        ),
        (
            &[
                "--mirror",
                "registry.k8s.io=alice:s3cret@mirror.example.com/k8s",
            ],
            2,
            "invalid value 'registry.k8s.io=alice:***@mirror.example.com/k8s' for '--mirror <REGISTRY=MIRROR>': registry mirror \"registry.k8s.io=alice:***@mirror.example.com/k8s\" is not valid",
        ),
        (
            &[
                "--crio-repo",
                "https://alice:s3cret@mirror.example.com/cri-o/",
            ],
            2,
            "invalid value 'https://alice:***@mirror.example.com/cri-o/' for '--crio-repo <URL>': repository URL \"https://alice:***@mirror.example.com/cri-o/\" is not a valid URL",
        ),
        (
            &[
                "--crio-source",
                "bundle",
                "--crio-bundle",
                "https://alice:s3cret@mirror.example.com/cri-o.amd64.v1.34.0.tar.gz",
            ],
            2,
            "invalid value 'https://alice:***@mirror.example.com/cri-o.amd64.v1.34.0.tar.gz' for '--crio-bundle <URL|FILE>'",
        ),
    ];
    for (args, code, expected) in cases {
        let run = sandbox.run(&[&["--dry-run", "build-image"][..], args].concat());
        assert_eq!(run.code, Some(*code), "{args:?}:\n{run}");
        run.assert_no_panic();
        assert!(
            !run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"),
            "{args:?}: the password shows:\n{run}"
        );
        assert!(
            run.stderr.contains(expected),
            "{args:?}: {expected:?} not in:\n{run}"
        );
    }
}

/// Nothing listens: connection refused is retried a few times, then one clear
/// error line names the URL and the cause.
#[test]
fn unreachable_registry_fails_clearly() {
    let sandbox = Sandbox::new("unreachable_registry_fails_clearly");
    let port = closed_port();
    let repo = format!("127.0.0.1:{port}/a/b");
    let started = std::time::Instant::now();
    let run = sandbox.run(&["tags", &repo]);
    let msg = run.error();
    assert!(
        msg.starts_with(&format!(
            "step \"Listing tags of {repo}\" failed: http://127.0.0.1:{port}/v2/: gave up after 5 attempts; the last one failed with: "
        )),
        "{run}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{run}");
    assert!(
        run.stderr.contains(&format!(" ✗ Listing tags of {repo} (")),
        "{run}"
    );
    // Bounded retries: seconds, not the 30 s request timeout.
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Dry runs

/// `--dry-run tags` prints the plan on stdout and sends nothing: a listening
/// socket it names receives no connection.
#[test]
fn dry_run_tags_prints_the_plan_and_sends_nothing() {
    let sandbox = Sandbox::new("dry_run_tags_prints_the_plan_and_sends_nothing");

    let default = sandbox.run(&["--dry-run", "tags"]);
    assert_eq!(
        default.ok(),
        "1. Listing tags of docker.io/kindest/node\n   (GET https://registry-1.docker.io/v2/kindest/node/tags/list, following rel=\"next\" pages)\n"
    );
    assert_eq!(default.stderr, "", "{default}");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let repo = format!("127.0.0.1:{port}/kindest/node");
    let plan = format!(
        "1. Listing tags of {repo}\n   (GET http://127.0.0.1:{port}/v2/kindest/node/tags/list, following rel=\"next\" pages)\n"
    );
    // Global flags go before or after the subcommand.
    for args in [
        &["--dry-run", "tags", "--json", &repo][..],
        &["tags", "--latest", &repo, "--dry-run"][..],
    ] {
        let run = sandbox.run(args);
        assert_eq!(run.ok(), plan, "{args:?}");
        assert_eq!(run.stderr, "", "{run}");
    }
    // The repository from a --config file is the default one.
    let config = sandbox.file("node.toml", &format!("[node]\nrepository = \"{repo}\"\n"));
    let run = sandbox.run(&[
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--dry-run",
        "tags",
    ]);
    assert_eq!(run.ok(), plan);
    listener.set_nonblocking(true).expect("non-blocking");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a dry run connected to the registry: {other:?}"),
    }

    // And a port where nothing listens does not matter either.
    let closed = format!("127.0.0.1:{}/a/b", closed_port());
    let run = sandbox.run(&["--dry-run", "tags", &closed]);
    assert!(
        run.ok()
            .starts_with(&format!("1. Listing tags of {closed}\n")),
        "{run}"
    );
}

/// `--dry-run refresh` names every source it would read and reads none
/// (this machine may have no network at all: the plan is the same), and
/// writes nothing.
#[test]
fn dry_run_refresh_names_its_sources_and_touches_nothing() {
    let sandbox = Sandbox::new("dry_run_refresh_names_its_sources_and_touches_nothing");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/releases.toml");
    let before = std::fs::read(&file).expect("configs/releases.toml");
    for (args, last) in [
        (
            &["--dry-run", "refresh"][..],
            "5. Writing configs/releases.toml\n   (only if it differs from what the sources say)\n",
        ),
        (
            &["refresh", "--check", "--dry-run"][..],
            "5. Comparing configs/releases.toml with the sources\n   (fail when it differs from what the sources say)\n",
        ),
    ] {
        let run = sandbox.run(args);
        let plan = run.ok();
        assert_no_status_lines(&run);
        assert_eq!(numbered_steps(plan).len(), 5, "{run}");
        for source in [
            "GET https://api.github.com/repos/kubernetes-sigs/kind/releases/latest, then https://raw.githubusercontent.com/kubernetes-sigs/kind/TAG/pkg/apis/config/defaults/image.go",
            "HEAD https://registry-1.docker.io/v2/kindest/node/manifests/TAG",
            "https://raw.githubusercontent.com/kubernetes/website/main/data/releases/schedule.yaml, https://dl.k8s.io/release/latest.txt",
            "GET https://download.opensuse.org/repositories/isv:/cri-o:/stable:/ and https://download.opensuse.org/repositories/isv:/cri-o:/prerelease:/",
        ] {
            assert!(plan.contains(source), "{source} missing:\n{run}");
        }
        assert!(plan.ends_with(last), "{run}");
    }
    assert_eq!(std::fs::read(&file).expect("configs/releases.toml"), before);
}

/// Without flags, `config`, `matrix` and a dry-run `build-image` all show
/// kind's default from configs/releases.toml, the CRI-O stream it pairs with
/// that minor, and (where the file has it) the digest kind released.
#[test]
fn no_flags_follow_the_releases_file() {
    let sandbox = Sandbox::new("no_flags_follow_the_releases_file");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/releases.toml");
    let releases: toml::Table =
        toml::from_str(&std::fs::read_to_string(&file).expect("configs/releases.toml"))
            .expect("TOML");
    let text = |v: &toml::Value| v.as_str().expect("a string").to_owned();
    let kind = text(&releases["kind"]["version"]);
    let default = text(&releases["kind"]["default"]);
    let minor = default.rsplit_once('.').expect("vX.Y.Z").0.to_owned();
    let crio = releases["minor"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["kubernetes"].as_str() == Some(&minor)))
        .map(|m| text(&m["crio"]))
        .expect("the default's minor is paired");
    let digest = releases["node_image"]
        .as_array()
        .and_then(|n| {
            n.iter()
                .find(|n| n["kubernetes"].as_str() == Some(&default))
        })
        .and_then(|n| n.get("digest").map(text));

    let config = sandbox.run(&["config"]);
    let out = config.ok();
    assert!(
        out.contains(&format!(
            "# kubernetes.version is empty: {default}, the default of kind {kind} (configs/releases.toml)"
        )) && out.contains(&format!("# crio.stream is empty: CRI-O {crio} (paired with Kubernetes {minor} in configs/releases.toml)")),
        "{config}"
    );
    if let Some(d) = &digest {
        assert!(
            out.contains(&format!("node image docker.io/kindest/node:{default}@{d}")),
            "{config}"
        );
    }

    let matrix = sandbox.run(&["matrix", "--github-output"]);
    let out = matrix.ok();
    let json: Value = serde_json::from_str(
        out.lines()
            .next()
            .and_then(|l| l.strip_prefix("matrix="))
            .expect("matrix=JSON"),
    )
    .expect("JSON");
    assert!(
        json["include"]
            .as_array()
            .expect("include")
            .contains(&json!({"kubernetes": default, "crio": crio})),
        "{matrix}"
    );
    assert_eq!(
        out.lines().nth(1),
        Some(format!("kind={kind}").as_str()),
        "{matrix}"
    );

    // build-image asks the engine whether the image exists already.
    if !tools_present("no_flags_follow_the_releases_file", &["docker"]) {
        return;
    }
    let build = sandbox.run(&["--dry-run", "build-image"]);
    let plan = build.ok();
    let on = match &digest {
        Some(d) => format!(
            "on node image docker.io/kindest/node:{default}@{d} (published by kind {kind}: the digest its release names"
        ),
        None => format!("with CRI-O {crio} on node image docker.io/kindest/node:{default}@"),
    };
    assert!(
        build
            .stderr
            .contains(&format!("for Kubernetes {default} with CRI-O {crio} "))
            && build.stderr.contains(&on),
        "{build}"
    );
    // The run's own working directory: TAG.PID-N.
    let workdir = plan
        .split(&format!("build-image/{default}."))
        .nth(1)
        .and_then(|rest| rest.split_once("/context"))
        .map(|(run, _)| run);
    assert!(
        workdir.is_some_and(|run| run.split('-').all(|n| n.parse::<u32>().is_ok())),
        "{build}"
    );
}

/// The numbered steps of a plan, checking they count 1, 2, 3, ...
fn numbered_steps(plan: &str) -> Vec<&str> {
    let steps: Vec<&str> = plan.lines().filter(|l| !l.starts_with(' ')).collect();
    for (i, step) in steps.iter().enumerate() {
        assert!(
            step.starts_with(&format!("{}. ", i + 1)),
            "step {} is {step:?} in:\n{plan}",
            i + 1
        );
    }
    steps
}

/// `--dry-run ci` prints its steps and commands without running any (a real
/// `ci` would run `cargo test` inside `cargo test`).
#[test]
fn dry_run_ci_prints_numbered_steps() {
    let sandbox = Sandbox::new("dry_run_ci_prints_numbered_steps");
    let lint = sandbox.run(&["--dry-run", "ci", "--lint-only"]);
    let plan = lint.ok();
    assert!(
        plan.starts_with(
            "1. Checking formatting\n   $ cargo fmt --all --check\n\
             2. Checking generated files\n   (cargo xtask codegen --check)\n\
             3. Linting Rust (clippy, warnings denied)\n   $ cargo clippy --workspace --all-targets --locked -- -D warnings\n"
        ),
        "{lint}"
    );
    assert!(!plan.contains("cargo test"), "{lint}");
    assert!(numbered_steps(plan).len() >= 2);
    assert_no_status_lines(&lint);

    let full = sandbox.run(&["ci", "--dry-run"]);
    let plan = full.ok();
    assert!(
        plan.contains(
            "4. Running tests\n   $ cargo test --workspace --locked\n\
             5. Testing the benchmarks' code\n   $ cargo test --locked --package xtask --features bench --target-dir target/bench --bin xtask bench::\n"
        ),
        "{full}"
    );
    assert_eq!(
        numbered_steps(plan).len(),
        numbered_steps(lint.ok()).len() + 2,
        "{full}"
    );
}

// ---------------------------------------------------------------------------
// e2e against real kind and Docker

/// kind (from `target/tools/bin` or PATH) and a Docker engine that answers,
/// or None after a loud skip.
fn kind_and_docker(test: &str) -> Option<PathBuf> {
    let kind = testkit::tools::require(test, &["kind"])?.remove(0);
    if !tools_present(test, &["docker", "tar"]) {
        return None;
    }
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !answers {
        eprintln!("SKIPPED {test}: no Docker engine answers here");
        return None;
    }
    Some(kind.parent().expect("kind's directory").to_path_buf())
}

/// The binary with kind's directory first in PATH and no kubeconfig of the
/// machine's user (kind writes to the sandbox's ~/.kube/config).
fn xtask_with_kind(sandbox: &Sandbox, kind_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = sandbox.xtask(args);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![kind_dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).expect("a PATH"))
        .env_remove("KUBECONFIG");
    cmd
}

fn docker(args: &[&str]) -> Run {
    let mut cmd = Command::new("docker");
    cmd.args(args).stdin(Stdio::null());
    run(cmd)
}

/// e2e's own directory for a cluster, under the project's target/.
fn e2e_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/kind-crio/e2e")
        .join(name)
}

/// A cluster of the same name that e2e did not create: kind lists it, so e2e
/// stops at its first step, and neither creates nor deletes anything (the
/// node container is still there afterwards).
#[test]
fn e2e_leaves_an_existing_cluster_alone() {
    let test = "e2e_leaves_an_existing_cluster_alone";
    let Some(kind_dir) = kind_and_docker(test) else {
        return;
    };
    let sandbox = Sandbox::new(test);
    let pid = std::process::id();
    let name = format!("kc-e2e-exists-{pid}");
    let node = format!("{name}-control-plane");
    let image = format!("kind-crio-test-exists:{pid}");
    let tarball = testkit::tiny_rootfs_tarball(sandbox.path());
    let imported = docker(&["import", tarball.to_str().expect("UTF-8 path"), &image]);
    assert_eq!(imported.code, Some(0), "{imported}");
    // Labelled as kind labels a node: `kind get clusters` lists it.
    let cluster_label = format!("io.x-k8s.kind.cluster={name}");
    let created = docker(&[
        "create",
        "--name",
        &node,
        "--label",
        &cluster_label,
        "--label",
        "io.x-k8s.kind.role=control-plane",
        &image,
        "/hello",
    ]);
    assert_eq!(created.code, Some(0), "{created}");

    let e2e = run(xtask_with_kind(
        &sandbox,
        &kind_dir,
        &["e2e", "--name", &name, "--ignore-doctor", "--wait", "10s"],
    ));
    let still_there = docker(&["inspect", "--format", "{{.Name}}", &node]);
    let _ = docker(&["rm", "--force", "--volumes", &node]);
    let _ = docker(&["rmi", &image]);

    assert_eq!(still_there.code, Some(0), "e2e removed the node:\n{e2e}");
    let msg = e2e.error();
    assert_eq!(
        msg,
        format!(
            "step \"Checking that no cluster {name} exists\" failed: a kind cluster named {name} already exists (docker); \
             e2e creates and deletes a cluster of its own: pick another --name, or delete that one first (kind delete cluster --name {name})"
        ),
        "{e2e}"
    );
    assert!(
        e2e.stderr.contains(&format!(
            " - Deleting cluster {name} (skipped: only if this run started creating the cluster)"
        )),
        "{e2e}"
    );
    for never in [
        "Checking kind",
        "Writing the kind config",
        "Creating cluster",
        "Reporting each node's preload outcome",
        "Exporting kind's logs",
    ] {
        assert!(
            !e2e.stderr.contains(&format!(" • {never}")),
            "{never:?} ran:\n{e2e}"
        );
    }
    assert!(!e2e_dir(&name).exists(), "e2e wrote its files:\n{e2e}");
}

/// A `kind-NAME` context in the kubeconfig (a cluster of that name on the
/// other engine, which `kind get clusters` does not list, or a context left
/// behind): creating NAME would overwrite it and deleting NAME would remove
/// it, so e2e refuses before anything runs and leaves the kubeconfig as it was.
#[test]
fn e2e_leaves_another_engines_context_alone() {
    let test = "e2e_leaves_another_engines_context_alone";
    let Some(kind_dir) = kind_and_docker(test) else {
        return;
    };
    if testkit::tools::require(test, &["kubectl"]).is_none() {
        return;
    }
    let sandbox = Sandbox::new(test);
    let name = format!("kc-e2e-context-{}", std::process::id());
    let kubeconfig = sandbox.file(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: kind-{name}\n  cluster:\n    server: https://127.0.0.1:6443\n\
             users:\n- name: kind-{name}\n  user: {{}}\n\
             contexts:\n- name: kind-{name}\n  context:\n    cluster: kind-{name}\n    user: kind-{name}\n\
             current-context: kind-{name}\n"
        ),
    );
    let before = std::fs::read(&kubeconfig).expect("read the kubeconfig");
    let mut cmd = xtask_with_kind(
        &sandbox,
        &kind_dir,
        &["e2e", "--name", &name, "--ignore-doctor", "--wait", "10s"],
    );
    cmd.env("KUBECONFIG", &kubeconfig);
    let e2e = run(cmd);
    assert!(
        e2e.error().starts_with(&format!(
            "step \"Checking that no cluster {name} exists\" failed: the kubeconfig already has a context kind-{name}"
        )),
        "{e2e}"
    );
    for never in ["Checking kind", "Creating cluster", "Deleting cluster"] {
        assert!(
            !e2e.stderr.contains(&format!(" • {never}")),
            "{never:?} ran:\n{e2e}"
        );
    }
    assert_eq!(
        std::fs::read(&kubeconfig).expect("read the kubeconfig"),
        before,
        "the kubeconfig changed"
    );
}

/// Doctor fails here for a node image that does not exist (it cannot run
/// the capability probe): e2e stops there, deleting nothing; with
/// --ignore-doctor it warns and goes on to create the cluster, whose failure
/// runs the failure path (which never fails) and then the deletion, since
/// this run started the creation.
#[test]
fn e2e_ignore_doctor_goes_on_and_cleans_up_what_it_started() {
    let test = "e2e_ignore_doctor_goes_on_and_cleans_up_what_it_started";
    let Some(kind_dir) = kind_and_docker(test) else {
        return;
    };
    let sandbox = Sandbox::new(test);
    let pid = std::process::id();
    let name = format!("kc-e2e-doctor-{pid}");
    let image = format!("localhost/kind-crio-test-absent:{pid}");
    let args = ["e2e", "--name", &name, "--image", &image, "--wait", "10s"];

    let stopped = run(xtask_with_kind(&sandbox, &kind_dir, &args));
    assert!(
        stopped
            .error()
            .starts_with("checks found problems: privileged capabilities"),
        "{stopped}"
    );
    assert!(
        stopped.stderr.contains(&format!(
            " - Deleting cluster {name} (skipped: only if this run started creating the cluster)"
        )),
        "{stopped}"
    );
    assert!(!stopped.stderr.contains("Creating cluster"), "{stopped}");

    let mut ignoring = args.to_vec();
    ignoring.push("--ignore-doctor");
    let went_on = run(xtask_with_kind(&sandbox, &kind_dir, &ignoring));
    let _ = std::fs::remove_dir_all(e2e_dir(&name));
    // Not `error()`: the error, and the failing log export, quote kind's
    // own "ERROR:" lines.
    assert_eq!(went_on.code, Some(1), "{went_on}");
    went_on.assert_no_panic();
    assert_eq!(went_on.stdout, "", "{went_on}");
    assert!(
        went_on.stderr.contains(&format!(
            "\nERROR: step \"Creating cluster {name} (1 control-plane, 1 worker)\" failed: command failed"
        )),
        "{went_on}"
    );
    let stderr = &went_on.stderr;
    for expected in [
        " ✗ Checking privileged capabilities (",
        "   WARNING: privileged capabilities: cannot run a privileged container from ",
        "; going on (--ignore-doctor)\n",
        " ✓ Checking kind (",
        &format!(" ✗ Creating cluster {name} ("),
        &format!("   no node of cluster {name} to report on\n"),
        " ✓ Reporting each node's preload outcome (",
        &format!(" ✓ Deleting cluster {name} ("),
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{went_on}");
    }
    // kind left nothing behind.
    let left = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={name}"),
    ]);
    assert_eq!(left.stdout, "", "{left}");
}

/// Names that are not kind's, or would leave target/kind-crio/e2e/, are
/// usage errors of e2e and load-image alike, before anything runs.
#[test]
fn cluster_names_are_checked_first() {
    let sandbox = Sandbox::new("cluster_names_are_checked_first");
    for (name, why) in [
        ("..", "must start with a letter or digit"),
        ("a/b", "'/' is not allowed"),
        ("", "the cluster name is empty"),
        ("Kind", "'K' is not allowed"),
    ] {
        // Every command that takes a --name.
        for args in [
            &["--dry-run", "e2e", "--name", name][..],
            &["--dry-run", "load-image", "my-app:dev", "--name", name][..],
            &["render", "kind-config", "--name", name][..],
        ] {
            let run = sandbox.run(args);
            assert_eq!(run.code, Some(2), "{args:?}:\n{run}");
            run.assert_no_panic();
            assert_eq!(run.stdout, "", "{run}");
            assert!(
                run.stderr
                    .contains(&format!("invalid value '{name}' for '--name <NAME>': "))
                    && run.stderr.contains(why),
                "{args:?}:\n{run}"
            );
        }
    }
}

/// A directory of stand-in `docker`, `podman`, `kind` and `kubectl` that
/// log each call to `log` and fail, and the PATH that puts it first.
fn logging_stand_ins(sandbox: &Sandbox, log: &Path) -> std::ffi::OsString {
    let bin = sandbox.path().join("bin");
    std::fs::create_dir_all(&bin).expect("a bin directory");
    for program in ["docker", "podman", "kind", "kubectl"] {
        let path = bin.join(program);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{program} $*\" >>'{}'\necho '{program}: not here' >&2\nexit 1\n",
                log.display()
            ),
        )
        .expect("a stand-in program");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH")
}

/// Image values are parsed as clap reads them: one that reads as an option,
/// or is no reference, is a usage error naming the flag, and no program runs
/// (no dry run here: what is refused must never reach docker).
#[test]
fn image_values_are_parsed_at_the_edge() {
    let sandbox = Sandbox::new("image_values_are_parsed_at_the_edge");
    let log = sandbox.path().join("ran");
    let path = logging_stand_ins(&sandbox, &log);
    let cases: &[(&[&str], &str)] = &[
        (
            &["doctor", "--image=--volume=/:/host"],
            "invalid value '--volume=/:/host' for '--image <REF>': \"--volume=/:/host\" starts with '-', which no image reference does",
        ),
        (
            &["e2e", "--image=--volume=/:/host"],
            "invalid value '--volume=/:/host' for '--image <REF>': \"--volume=/:/host\" starts with '-'",
        ),
        (
            &["e2e", "--image", "ghcr.io/x/y:tag:extra"],
            "\"y:tag:extra\" has more than one ':'",
        ),
        (
            &["doctor", "--image", "kindest/node"],
            "has neither a tag nor a digest",
        ),
        (
            &["load-image", "--", "--volume=/:/host"],
            "\"--volume=/:/host\" starts with '-', which no image name or ID does",
        ),
        (&["load-image", "my app:dev"], "not an image name or ID"),
        (
            &["build-image", "--node-image", "KINDEST/NODE"],
            "\"KINDEST/NODE\" has upper-case letters; repository names are lower-case (try \"kindest/node\")",
        ),
        (
            &[
                "build-image",
                "--mirror",
                "registry.k8s.io=https://mirror.example.com",
            ],
            "drop the scheme \"https://\"; CRI-O names registries and mirrors as HOST[:PORT][/PATH] (try registry.k8s.io=mirror.example.com)",
        ),
    ];
    for (args, expected) in cases {
        let mut cmd = sandbox.xtask(args);
        cmd.env("PATH", &path);
        let run = run(cmd);
        assert_eq!(run.code, Some(2), "{args:?}:\n{run}");
        run.assert_no_panic();
        assert!(
            run.stderr.contains(expected),
            "{args:?}: {expected:?} not in:\n{run}"
        );
        assert!(!run.stderr.contains("KINDEST/NODE:v1.34.0"), "{run}");
    }
    assert!(
        !log.exists(),
        "a refused value ran {:?}",
        std::fs::read_to_string(&log)
    );
}

/// `-v` shows the commands resolution runs before any plan step: the
/// engine's and kind's, and which registry lookups are made; without `-v`
/// none of them.
#[test]
fn verbose_shows_the_commands_of_resolution() {
    let sandbox = Sandbox::new("verbose_shows_the_commands_of_resolution");
    let log = sandbox.path().join("ran");
    let path = logging_stand_ins(&sandbox, &log);
    let proxy = format!("http://127.0.0.1:{}", closed_port());
    let stderr = |args: &[&str]| {
        let mut cmd = sandbox.xtask(args);
        cmd.env("PATH", &path)
            .env("HTTPS_PROXY", &proxy)
            .env("HTTP_PROXY", &proxy)
            .env_remove("NO_PROXY");
        let run = run(cmd);
        run.ok();
        run.stderr
    };
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--dry-run", "build-image", "--build-node", "release"],
            &[
                "\n   $ kind version\n",
                "\n   $ docker image inspect --format '{{ index .Config.Labels \"io.kind-crio.inputs.digest\" }}' ghcr.io/kind-crio/kindnode-crio:",
            ],
        ),
        (
            &["--dry-run", "build-image", "--kubernetes", "v1.36.99"],
            &["\n   (registry: the digest of docker.io/kindest/node:v1.36.99)\n"],
        ),
        (
            &["--dry-run", "load-image", "my-app:dev", "--name", "kc"],
            &[
                "\n   $ docker image inspect --format '{{json .RepoTags}}' my-app:dev\n",
                "\n   $ docker ps --all --filter 'label=io.x-k8s.kind.cluster=kc' --filter 'label=io.x-k8s.kind.role=control-plane' --format '{{.Names}}'\n",
            ],
        ),
    ];
    for (args, lines) in cases {
        let verbose = stderr(&[&["-v"][..], args].concat());
        let quiet = stderr(args);
        for line in *lines {
            assert!(
                verbose.contains(line),
                "{args:?}: {line:?} not in:\n{verbose}"
            );
            assert!(
                !quiet.contains(line.trim()),
                "{args:?} without -v:\n{quiet}"
            );
        }
    }
}

/// `--config` takes kind-crio's settings; a kind user's reflex of giving it
/// a kind config is told which flag takes that.
#[test]
fn a_kind_config_as_config_names_the_flag_meant() {
    let sandbox = Sandbox::new("a_kind_config_as_config_names_the_flag_meant");
    let kind = sandbox.file(
        "kind.yaml",
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n",
    );
    let run = sandbox.run(&[
        "--config",
        kind.to_str().expect("utf-8"),
        "--dry-run",
        "e2e",
    ]);
    // The ERROR line, then TOML's own report of where it stopped.
    assert_eq!(run.code, Some(1), "{run}");
    run.assert_no_panic();
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("ERROR: ")
            && first.contains("kind.yaml is not valid TOML (it looks like a kind cluster config): --config takes kind-crio's own settings")
            && first.contains("`cargo xtask e2e --cluster-config FILE`"),
        "{run}"
    );
}

// ---------------------------------------------------------------------------
// Readers that go away

/// The write end of a pipe whose reader is gone: every write fails with EPIPE.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer
}

/// Runs `cmd` to its end; its exit code and what it wrote to the streams
/// that were left piped.
fn finish(mut cmd: Command) -> Run {
    let out = cmd
        .spawn()
        .and_then(|child| child.wait_with_output())
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `cargo xtask ... 2>&1 | head -3`: a reader that went away costs the rest
/// of the output, never a panic, and the run ends with its own status.
#[test]
fn a_closed_stdout_or_stderr_ends_the_output_not_the_run() {
    let sandbox = Sandbox::new("closed_pipes");
    // No stderr: the status lines are lost, the plan is still printed.
    let mut cmd = sandbox.xtask(&["--dry-run", "build-image"]);
    cmd.stdout(Stdio::piped()).stderr(closed_pipe());
    let run = finish(cmd);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .starts_with("1. Checking docker buildx (BuildKit)\n"),
        "{run}"
    );

    // No stderr for the ERROR line of a failure: still exit code 1.
    let mut cmd = sandbox.xtask(&["--config", "missing.toml", "config"]);
    cmd.stdout(Stdio::piped()).stderr(closed_pipe());
    let run = finish(cmd);
    assert_eq!(run.code, Some(1), "{run}");

    // No stdout: the data is dropped quietly.
    for args in [&["config"][..], &["--dry-run", "build-image"]] {
        let mut cmd = sandbox.xtask(args);
        cmd.stdout(closed_pipe()).stderr(Stdio::piped());
        let run = finish(cmd);
        assert_eq!(run.code, Some(0), "{args:?}: {run}");
        run.assert_no_panic();
        assert!(!run.stderr.contains("ERROR"), "{args:?}: {run}");
    }
}

// ---------------------------------------------------------------------------
// Help and version

#[test]
fn help_and_version() {
    let sandbox = Sandbox::new("help_and_version");
    let help = |args: &[&str], expected: &[&str]| {
        let run = sandbox.run(args);
        let out = run.ok();
        assert_eq!(run.stderr, "", "{run}");
        for e in expected {
            assert!(out.contains(e), "{args:?}: {e:?} not in:\n{out}");
        }
    };
    help(
        &["--help"],
        &[
            "Build kind node images that run CRI-O",
            "Commands:",
            "  tags ",
            "  config ",
            "  refresh ",
            "  ci ",
            "--dry-run",
            "--config <FILE>",
            "[env: KIND_CRIO_CONFIG=]",
            "overridden by --config FILE",
            "Colours follow NO_COLOR",
        ],
    );
    help(
        &["tags", "--help"],
        &[
            "like `skopeo list-tags`",
            "[REPOSITORY]",
            "--json",
            "--latest",
            "--insecure",
            "Examples:",
            "cargo xtask tags --latest",
            "same JSON as `skopeo list-tags docker://kindest/node`",
            "Credentials come from docker login / podman login",
            "podman's auth.json",
        ],
    );
    help(&["help", "tags"], &["Examples:", "skopeo list-tags"]);
    help(
        &["ci", "--help"],
        &[
            "--lint-only",
            "Runs, in order: rustfmt, the generated-files check, clippy",
            "fail the run when CI=true",
            "bash .ci/run",
        ],
    );
    help(&["config", "--help"], &["effective configuration"]);
    help(
        &["refresh", "--help"],
        &[
            "--check",
            "kind's latest GitHub release",
            "GITHUB_TOKEN, when set, is sent to api.github.com only",
            "cargo xtask --dry-run refresh",
        ],
    );
    help(
        &["e2e", "--help"],
        &[
            "--ignore-doctor",
            "Go on when doctor finds problems (printed as warnings)",
            "an existing NAME is an error",
        ],
    );

    for args in [&["--version"][..], &["-V"][..]] {
        let run = sandbox.run(args);
        assert_eq!(
            run.ok(),
            format!("cargo xtask {}\n", env!("CARGO_PKG_VERSION")),
            "{run}"
        );
    }
}

// ---------------------------------------------------------------------------
// Configuration

/// `config` prints TOML that, loaded back with `--config`, prints the same.
#[test]
fn config_round_trips() {
    let sandbox = Sandbox::new("config_round_trips");
    let defaults = sandbox.run(&["config"]);
    let printed = defaults.ok();
    assert_eq!(defaults.stderr, "", "{defaults}");
    let table: toml::Table = toml::from_str(printed).expect("config prints TOML");
    let keys: Vec<&String> = table.keys().collect();
    assert_eq!(keys, ["build", "crio", "image", "kubernetes", "node"]);
    assert_eq!(
        table["node"]["repository"].as_str(),
        Some("docker.io/kindest/node")
    );

    let file = sandbox.file("printed.toml", printed);
    let again = sandbox.run(&["--config", file.to_str().expect("UTF-8 path"), "config"]);
    assert_eq!(again.ok(), printed);

    // An overlay changes only what it names, and round-trips too.
    let overlay = sandbox.file(
        "overlay.toml",
        "[kubernetes]\nversion = \"v1.32.0-rc.1\"\n[crio]\nstream = \"main\"\n",
    );
    let changed = sandbox.run(&["--config", overlay.to_str().expect("UTF-8 path"), "config"]);
    let changed_text = changed.ok();
    let changed_table: toml::Table = toml::from_str(changed_text).expect("TOML");
    assert_eq!(
        changed_table["kubernetes"]["version"].as_str(),
        Some("v1.32.0-rc.1")
    );
    assert_eq!(changed_table["crio"]["stream"].as_str(), Some("main"));
    assert_eq!(changed_table["build"], table["build"]);
    assert_eq!(changed_table["image"], table["image"]);
    let file = sandbox.file("changed.toml", changed_text);
    let again = sandbox.run(&["--config", file.to_str().expect("UTF-8 path"), "config"]);
    assert_eq!(again.ok(), changed_text);
}

/// `KIND_CRIO_CONFIG` works like `--config`, and the flag wins over it.
#[test]
fn config_env_var_works_like_the_flag() {
    let sandbox = Sandbox::new("config_env_var_works_like_the_flag");
    let overlay = sandbox.file("overlay.toml", "[build]\nengine = \"podman\"\n");
    let with_env = |path: &Path, args: &[&str]| {
        let mut cmd = sandbox.xtask(args);
        cmd.env("KIND_CRIO_CONFIG", path);
        run(cmd)
    };

    let by_flag = sandbox.run(&["--config", overlay.to_str().expect("UTF-8 path"), "config"]);
    let by_env = with_env(&overlay, &["config"]);
    assert_eq!(by_env.ok(), by_flag.ok());
    assert!(by_env.ok().contains("engine = \"podman\""), "{by_env}");
    assert_ne!(by_env.ok(), sandbox.run(&["config"]).ok());

    let unknown = sandbox.file("unknown.toml", "[kubernets]\nversion = \"v1.31.0\"\n");
    let refused = with_env(&unknown, &["config"]);
    assert_eq!(
        refused.error(),
        format!(
            "in {}: unknown key `kubernets`; known keys here: build, crio, image, kubernetes, node",
            unknown.display()
        )
    );

    let absent = sandbox.path().join("absent.toml");
    let flag_wins = with_env(
        &absent,
        &["--config", overlay.to_str().expect("UTF-8 path"), "config"],
    );
    assert_eq!(flag_wins.ok(), by_flag.ok());
}

// ---------------------------------------------------------------------------
// Colours and terminals

/// Off a terminal (CI logs, pipes) stderr holds no escape sequences, with or
/// without `NO_COLOR`, for success and failure alike.
#[test]
fn no_escape_sequences_off_a_terminal() {
    let test = "no_escape_sequences_off_a_terminal";
    if !tools_present(test, REGISTRY_TOOLS) {
        return;
    }
    let registry = tagged_registry(test);
    let sandbox = Sandbox::new(test);
    let repo = registry.repo(REPO).to_string();
    let missing = registry.repo("kindest/nope").to_string();
    for no_color in [None, Some("1")] {
        for (repo, code) in [(&repo, 0), (&missing, 1)] {
            let mut cmd = sandbox.xtask(&["tags", repo]);
            if let Some(v) = no_color {
                cmd.env("NO_COLOR", v);
            }
            let run = run(cmd);
            assert_eq!(run.code, Some(code), "{run}");
            run.assert_no_panic();
            assert!(
                run.stderr.contains(" ✓ ") || run.stderr.contains(" ✗ "),
                "{run}"
            );
            assert!(!run.stderr.contains('\x1b'), "escape on stderr:\n{run:?}");
            assert!(!run.stdout.contains('\x1b'), "escape on stdout:\n{run:?}");
        }
    }
}

/// On a terminal (a pty from `script`) the mark is coloured, unless `NO_COLOR`
/// is set; `TERM=dumb` gets no escape sequences at all. This is what makes the
/// off-terminal test above meaningful.
#[test]
fn terminal_colour_follows_no_color() {
    let test = "terminal_colour_follows_no_color";
    let mut tools = REGISTRY_TOOLS.to_vec();
    tools.push("script");
    if !tools_present(test, &tools) {
        return;
    }
    let registry = tagged_registry(test);
    let sandbox = Sandbox::new(test);
    let repo = registry.repo(REPO).to_string();
    let on_a_pty = |env: &[(&str, &str)]| {
        let mut cmd = sandbox.program("script");
        // `script` runs the command through a shell; both paths are plain.
        cmd.args([
            "-q",
            "-e",
            "-c",
            &format!("'{XTASK}' tags '{repo}'"),
            "/dev/null",
        ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let run = run(cmd);
        assert_eq!(run.code, Some(0), "{run:?}");
        run.assert_no_panic();
        // The pty turns `\n` into `\r\n`.
        assert!(run.stdout.replace("\r\n", "\n").contains(SORTED), "{run:?}");
        run.stdout
    };

    let coloured = on_a_pty(&[]);
    assert!(
        coloured.contains(&format!("\x1b[32m✓\x1b[0m Listing tags of {repo} (")),
        "{coloured:?}"
    );
    let plain = on_a_pty(&[("NO_COLOR", "1")]);
    assert!(
        plain.contains(&format!(" ✓ Listing tags of {repo} (")),
        "{plain:?}"
    );
    assert!(
        !plain.contains("\x1b[3"),
        "colour despite NO_COLOR: {plain:?}"
    );
    let dumb = on_a_pty(&[("TERM", "dumb")]);
    assert!(
        !dumb.contains('\x1b'),
        "escapes on a dumb terminal: {dumb:?}"
    );
    assert!(
        dumb.contains(&format!(" ✓ Listing tags of {repo} (")),
        "{dumb:?}"
    );
}

/// `--dry-run codegen`, `--dry-run render context` and `--dry-run doctor`
/// print what they would do, exit 0, write nothing and run nothing: every
/// program doctor asks is a stand-in here that leaves a mark if it runs.
#[test]
fn dry_run_codegen_render_and_doctor_write_and_run_nothing() {
    let sandbox = Sandbox::new("dry_run_codegen_render_and_doctor_write_and_run_nothing");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated = ["images/crio/Dockerfile", "configs/kind-crio.yaml"];
    let mtimes = || -> Vec<std::time::SystemTime> {
        generated
            .iter()
            .map(|p| {
                std::fs::metadata(root.join(p))
                    .and_then(|m| m.modified())
                    .unwrap_or_else(|e| panic!("{p}: {e}"))
            })
            .collect()
    };
    let before = mtimes();
    let run = sandbox.run(&["--dry-run", "codegen"]);
    let plan = run.ok();
    assert!(
        plan.starts_with("1. Replacing images/crio (") && plan.contains("\n2. Writing configs ("),
        "{run}"
    );
    assert_eq!(mtimes(), before, "--dry-run codegen wrote files");

    let out = sandbox.path().join("context");
    let run = sandbox.run(&[
        "--dry-run",
        "render",
        "context",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let plan = run.ok();
    assert!(
        plan.starts_with("1. Writing ") && plan.contains("\n   (Dockerfile, "),
        "{run}"
    );
    assert!(
        !out.exists(),
        "--dry-run render context wrote {}",
        out.display()
    );

    let bin = sandbox.path().join("bin");
    std::fs::create_dir_all(&bin).expect("a bin directory");
    let mark = sandbox.path().join("ran");
    for program in ["kind", "kubectl", "docker", "podman"] {
        let path = bin.join(program);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho {program} >>'{}'\n", mark.display()),
        )
        .expect("a stand-in program");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut cmd = sandbox.xtask(&["--dry-run", "doctor", "--image", "kindest/node:v1.34.0"]);
    cmd.env("PATH", &bin);
    let run = self::run(cmd);
    let plan = run.ok();
    for line in [
        "1. Checking kind\n   $ kind version\n",
        "2. Checking kubectl\n   $ kubectl version --client\n",
        "$ docker run --rm --privileged --entrypoint sh kindest/node:v1.34.0 -c ",
    ] {
        assert!(plan.contains(line), "{line:?} missing:\n{run}");
    }
    assert!(
        !mark.exists(),
        "--dry-run doctor ran {:?}",
        std::fs::read_to_string(&mark)
    );
}

/// The binary users run links none of the test kit: it is no normal
/// dependency of xtask (only of the `bench` feature and of the tests), and
/// the built binary has none of its symbols.
#[test]
fn the_binary_links_no_test_kit() {
    let tree = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--package",
            "xtask",
            "--edges",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree");
    let tree_text = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.status.success() && tree_text.starts_with("xtask "),
        "cargo tree: {}",
        String::from_utf8_lossy(&tree.stderr)
    );
    assert!(
        !tree_text.lines().any(|l| l.starts_with("testkit ")),
        "xtask depends on testkit:\n{tree_text}"
    );
    if cfg!(feature = "bench") {
        // Built with the benchmarks, this binary has the test kit on purpose.
        return;
    }
    if !tools_present("the_binary_links_no_test_kit", &["nm"]) {
        return;
    }
    let nm = Command::new("nm")
        .args(["--demangle", XTASK])
        .output()
        .expect("nm");
    assert!(nm.status.success(), "nm {XTASK}");
    let symbols = String::from_utf8_lossy(&nm.stdout);
    let found: Vec<&str> = symbols
        .lines()
        .filter(|l| l.contains("testkit::"))
        .take(5)
        .collect();
    assert!(found.is_empty(), "testkit symbols in {XTASK}: {found:?}");
}

/// Compares a command's dry-run plan, with this machine's paths and ports
/// already replaced by names, with its golden `tests/golden/dry-run/NAME.txt`
/// (`UPDATE_EXPECT=1` rewrites it); the process number too.
fn golden_dry_run(name: &str, plan: &str) {
    let mut text = plan.to_owned();
    // load-image names its archives after the process.
    let pid = run_pid(&text);
    if let Some(pid) = pid {
        text = text.replace(&pid, "$PID");
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/dry-run")
        .join(format!("{name}.txt"));
    expect_test::expect_file![golden].assert_eq(&text);
}

/// The process number the plan names its files after: load-image's
/// archives (`kind-crio-load-PID-0.tar`), build-image's working directory
/// (`build-image/TAG.PID-0`).
fn run_pid(text: &str) -> Option<String> {
    let digits = |from: &str| -> Option<String> {
        let d: String = from.chars().take_while(char::is_ascii_digit).collect();
        (!d.is_empty()).then_some(d)
    };
    if let Some(at) = text.find("kind-crio-load-") {
        return digits(&text[at + "kind-crio-load-".len()..]);
    }
    let at = text.find("kind-crio/build-image/")? + "kind-crio/build-image/".len();
    let segment = &text[at..text[at..].find('/').map_or(text.len(), |e| at + e)];
    digits(&segment[segment.rfind('.')? + 1..])
}

/// `--dry-run` of every command on a machine with no network (a proxy that
/// refuses), and engines, kind, kubectl and skopeo that fail: each prints
/// its plan and exits 0, nothing of the project changes, and the only
/// programs started are read-only lookups.
#[test]
fn dry_run_of_every_command_works_offline_and_runs_nothing() {
    let sandbox = Sandbox::new("dry_run_of_every_command_works_offline_and_runs_nothing");
    let bin = sandbox.path().join("bin");
    std::fs::create_dir_all(&bin).expect("a bin directory");
    let log = sandbox.path().join("ran");
    for program in [
        "docker", "podman", "kind", "kubectl", "skopeo", "buildah", "ctr",
    ] {
        let path = bin.join(program);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{program} $*\" >>'{}'\necho '{program}: not here' >&2\nexit 1\n",
                log.display()
            ),
        )
        .expect("a stand-in program");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = || {
        let out = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all"])
            .current_dir(&root)
            .output()
            .expect("git status");
        // UPDATE_EXPECT=1 rewrites the goldens, nothing else.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.ends_with(".txt") || !l.contains("tests/golden/dry-run/"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    let before = status();
    let out = sandbox.path().join("context");
    let out = out.to_str().expect("utf-8");
    // Each with the name of its golden.
    let commands: &[(&str, &[&str])] = &[
        ("tags", &["tags"]),
        ("build-image", &["build-image", "--kubernetes", "v1.36.99"]),
        (
            "build-image-kind-release-podman",
            &[
                "build-image",
                "--build-node",
                "release",
                "--engine",
                "podman",
            ],
        ),
        ("e2e", &["e2e", "--workers", "1"]),
        ("load-image", &["load-image", "my-app:dev", "--name", "kc"]),
        ("doctor", &["doctor"]),
        ("render-context", &["render", "context", "--out", out]),
        ("codegen", &["codegen"]),
        ("refresh", &["refresh"]),
        ("ci", &["ci", "--lint-only"]),
        ("bench", &["bench", "preload"]),
    ];
    let proxy = format!("http://127.0.0.1:{}", closed_port());
    for (name, args) in commands {
        let mut cmd = sandbox.xtask(&[&["--dry-run"][..], args].concat());
        cmd.env("PATH", &path)
            .env("HTTPS_PROXY", &proxy)
            .env("HTTP_PROXY", &proxy)
            .env_remove("NO_PROXY");
        let run = run(cmd);
        let plan = run.ok();
        assert!(plan.starts_with("1. "), "{args:?} printed no plan:\n{run}");
        let mut text = plan.replace(&proxy, "http://127.0.0.1:$PORT");
        for (path, name) in [(sandbox.path(), "$SANDBOX"), (root.as_path(), "$ROOT")] {
            // As given, and as the kernel names it.
            let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
            for path in [path, canonical.as_path()] {
                text = text.replace(path.to_str().expect("utf-8"), name);
            }
        }
        // The environment ci gives actionlint is this machine's PATH.
        if let Some(at) = text.find(" PATH=") {
            let end = text[at + 1..].find(' ').map_or(text.len(), |e| at + 1 + e);
            text.replace_range(at..end, " PATH=$PATH");
        }
        if *name == "ci" && run.stderr.contains("!!! SKIPPED") {
            // Its plan leaves out the checks whose tools this machine lacks.
            eprintln!("SKIPPED: the golden of `ci --lint-only`'s plan: tools missing");
        } else {
            golden_dry_run(name, &text);
        }
    }
    assert_eq!(status(), before, "a dry run changed the project");
    assert!(!Path::new(out).exists(), "render context wrote {out}");
    // Read-only lookups only: an image's names, a cluster's nodes.
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    for line in ran.lines() {
        let read_only = [
            "docker image inspect ",
            "podman image inspect ",
            "docker ps ",
            "podman ps ",
        ]
        .iter()
        .any(|p| line.starts_with(p))
            || line == "kind version";
        assert!(read_only, "a dry run ran `{line}`:\n{ran}");
    }
}
