//! Authentication against real registries (CNCF distribution, `docker-registry`):
//!
//! - htpasswd Basic auth: the right credentials list the tags `skopeo --creds`
//!   lists; wrong ones are `Unauthorized { used_credentials: true }`, none are
//!   `Unauthorized { used_credentials: false }`, and no message shows the password;
//! - Docker token auth with real RS256 JWTs the registry verifies: anonymous
//!   pull tokens work; a token is fetched once per scope and reused; a token
//!   lacking access (`insufficient_scope`) is asked for again, once; a token
//!   server refusing the credentials is a clear `Unauthorized` naming it;
//! - `CredentialSource::Config` reads a Docker `config.json` (`DOCKER_CONFIG`),
//!   checked in a child process so this process's environment is never changed;
//!   a credential helper that fails or answers garbage with the secret in its
//!   output is an error without it, and one that has nothing stored is anonymous;
//! - a registry or token server that echoes the `Authorization` header into a
//!   mistyped JSON field gets an error naming the field, not quoting the value.

use std::process::Command;

use base64::Engine as _;
use registry::{Client, Credential, CredentialSource, Error, Options};
use serde_json::json;
use testkit::{
    Auth, Fault, HTPASSWD_TOOLS, Proxy, Registry, Rule, TOKEN_TOOLS, TempDir, TokenServer,
    skopeo_list_tags, tools_present,
};

const USER: &str = "kind";
const PASSWORD: &str = "s3cret-Pa55word";

fn with(credentials: CredentialSource) -> Options {
    Options {
        credentials,
        backoff: std::time::Duration::from_millis(10),
        ..Options::default()
    }
}

fn fixed(user: &str, password: &str) -> CredentialSource {
    CredentialSource::Fixed(Credential::Basic {
        username: user.to_owned(),
        password: password.to_owned(),
    })
}

fn htpasswd_registry(test: &str) -> Registry {
    let registry = Registry::start(
        test,
        Auth::Htpasswd {
            user: USER.to_owned(),
            password: PASSWORD.to_owned(),
        },
    );
    registry.push("private/node", "v1.31.0", "basic");
    registry.make_tags("private/node", "v1.31.0", &["v1.32.0".to_owned()]);
    registry
}

/// The error's message and debug form, neither of which may hold a secret.
fn assert_no_secret(err: &Error, secret: &str) {
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(secret), "the password leaked: {shown}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{secret}"));
    assert!(
        !shown.contains(&encoded),
        "the Basic header leaked: {shown}"
    );
}

#[test]
fn htpasswd_right_credentials_list_tags_like_skopeo() {
    if !tools_present(
        "htpasswd_right_credentials_list_tags_like_skopeo",
        HTPASSWD_TOOLS,
    ) {
        return;
    }
    let registry = htpasswd_registry("htpasswd_right_credentials_list_tags_like_skopeo");
    let repo = registry.repo("private/node");
    let ours = Client::new(with(fixed(USER, PASSWORD)))
        .list_tags(&repo)
        .expect("list tags with credentials");
    let creds = format!("{USER}:{PASSWORD}");
    let theirs =
        skopeo_list_tags(&repo.to_string(), &["--creds", &creds]).expect("skopeo list-tags");
    assert_eq!(
        json!({"Repository": ours.repository, "Tags": ours.tags}),
        theirs
    );
    assert_eq!(ours.tags.len(), 2);
    let client = Client::new(with(fixed(USER, PASSWORD)));
    assert!(client.tag_exists(&repo, "v1.31.0").expect("tag_exists"));
    assert!(!client.tag_exists(&repo, "v9.9.9").expect("tag_exists"));
}

#[test]
fn htpasswd_wrong_credentials_are_unauthorized() {
    if !tools_present(
        "htpasswd_wrong_credentials_are_unauthorized",
        HTPASSWD_TOOLS,
    ) {
        return;
    }
    let registry = htpasswd_registry("htpasswd_wrong_credentials_are_unauthorized");
    let repo = registry.repo("private/node");
    let wrong = "not-the-Pa55word";
    let err = Client::new(with(fixed(USER, wrong)))
        .list_tags(&repo)
        .expect_err("wrong password");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                used_credentials: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("with the credentials"), "{err}");
    assert_no_secret(&err, wrong);
    let err = Client::new(with(fixed(USER, wrong)))
        .manifest_digest(&repo, "v1.31.0")
        .expect_err("wrong password");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                used_credentials: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_no_secret(&err, wrong);
    // skopeo agrees that these credentials are refused.
    let creds = format!("{USER}:{wrong}");
    let skopeo =
        skopeo_list_tags(&repo.to_string(), &["--creds", &creds]).expect_err("skopeo refused");
    assert!(
        skopeo.contains("401") || skopeo.to_lowercase().contains("unauthorized"),
        "{skopeo}"
    );
}

#[test]
fn htpasswd_without_credentials_is_unauthorized() {
    if !tools_present(
        "htpasswd_without_credentials_is_unauthorized",
        HTPASSWD_TOOLS,
    ) {
        return;
    }
    let registry = htpasswd_registry("htpasswd_without_credentials_is_unauthorized");
    let repo = registry.repo("private/node");
    let client = Client::new(with(CredentialSource::Anonymous));
    let err = client.list_tags(&repo).expect_err("no credentials");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                used_credentials: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("without credentials"), "{err}");
    // Not a "does not exist": a missing tag behind auth is still a 401.
    let err = client
        .tag_exists(&repo, "v1.31.0")
        .expect_err("no credentials");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                used_credentials: false,
                ..
            }
        ),
        "{err:?}"
    );
}

fn token_setup(test: &str, anonymous_pull: bool) -> (TokenServer, Registry) {
    let tokens = TokenServer::start(test, Some((USER, PASSWORD)), anonymous_pull);
    let registry = Registry::start(test, tokens.auth());
    registry.push("team/node", "v1.31.0", "token");
    registry.make_tags(
        "team/node",
        "v1.31.0",
        &["v1.32.0-rc.1".to_owned(), "latest".to_owned()],
    );
    tokens.clear_log();
    (tokens, registry)
}

const PULL: &str = "repository:team/node:pull";

#[test]
fn token_anonymous_pull_lists_tags_like_skopeo() {
    if !tools_present("token_anonymous_pull_lists_tags_like_skopeo", TOKEN_TOOLS) {
        return;
    }
    let (tokens, registry) = token_setup("token_anonymous_pull_lists_tags_like_skopeo", true);
    let repo = registry.repo("team/node");
    let client = Client::new(with(CredentialSource::Anonymous));
    let ours = client.list_tags(&repo).expect("anonymous token");
    let theirs = skopeo_list_tags(&repo.to_string(), &[]).expect("skopeo list-tags");
    assert_eq!(
        json!({"Repository": ours.repository, "Tags": ours.tags}),
        theirs
    );
    assert_eq!(ours.tags.len(), 3);
    let ours_first = &tokens.requests()[0];
    assert_eq!(ours_first.scopes, [PULL]);
    assert_eq!(ours_first.user, None);
    assert_eq!(
        client
            .manifest_digest(&repo, "v1.31.0")
            .expect("digest")
            .as_str(),
        registry.stored_digest("team/node", "v1.31.0")
    );
}

#[test]
fn token_is_cached_per_scope() {
    if !tools_present("token_is_cached_per_scope", TOKEN_TOOLS) {
        return;
    }
    let (tokens, registry) = token_setup("token_is_cached_per_scope", false);
    let repo = registry.repo("team/node");
    let client = Client::new(with(fixed(USER, PASSWORD)));
    let first = client.list_tags(&repo).expect("first listing");
    let second = client.list_tags(&repo).expect("second listing");
    assert_eq!(first, second);
    assert!(client.tag_exists(&repo, "latest").expect("tag_exists"));
    assert_eq!(tokens.requests_for(PULL), 1, "{:?}", tokens.requests());
    assert_eq!(tokens.requests()[0].user.as_deref(), Some(USER));
    // A new client has no cache: it asks again.
    Client::new(with(fixed(USER, PASSWORD)))
        .list_tags(&repo)
        .expect("third listing");
    assert_eq!(tokens.requests_for(PULL), 2);
}

#[test]
fn token_insufficient_scope_is_requested_again() {
    if !tools_present("token_insufficient_scope_is_requested_again", TOKEN_TOOLS) {
        return;
    }
    let (tokens, registry) = token_setup("token_insufficient_scope_is_requested_again", false);
    let repo = registry.repo("team/node");

    // What the registry says to a valid token without access to the repository.
    tokens.starve("team/node", 1);
    let client = Client::new(with(fixed(USER, PASSWORD)));
    let listed = client
        .list_tags(&repo)
        .expect("listing after a second token");
    assert_eq!(listed.tags.len(), 3);
    assert_eq!(tokens.requests_for(PULL), 2, "{:?}", tokens.requests());

    // Raw check of the registry's answer to such a token.
    tokens.starve("team/node", 1);
    let token = raw_token(&tokens);
    let resp = testkit::http(
        registry.addr(),
        "GET",
        "/v2/team/node/tags/list",
        &[("Authorization".to_owned(), format!("Bearer {token}"))],
    )
    .expect("GET tags/list");
    assert_eq!(resp.status, 401);
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );

    // A server that never grants access: asked twice, then a clear 401.
    tokens.clear_log();
    tokens.starve("team/node", usize::MAX);
    let err = Client::new(with(fixed(USER, PASSWORD)))
        .list_tags(&repo)
        .expect_err("never granted");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                used_credentials: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(tokens.requests_for(PULL), 2, "{:?}", tokens.requests());
}

/// A pull token for `team/node` fetched the way the registry's challenge says.
fn raw_token(tokens: &TokenServer) -> String {
    let realm = tokens.realm();
    let addr: std::net::SocketAddr = realm
        .trim_start_matches("http://")
        .trim_end_matches("/token")
        .parse()
        .expect("realm address");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let resp = testkit::http(
        addr,
        "GET",
        "/token?service=test-registry&scope=repository%3Ateam%2Fnode%3Apull",
        &[("Authorization".to_owned(), format!("Basic {basic}"))],
    )
    .expect("GET a token");
    assert_eq!(resp.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("token JSON");
    v["token"].as_str().expect("a token").to_owned()
}

#[test]
fn token_server_refusing_credentials_is_a_clear_error() {
    if !tools_present(
        "token_server_refusing_credentials_is_a_clear_error",
        TOKEN_TOOLS,
    ) {
        return;
    }
    let (tokens, registry) =
        token_setup("token_server_refusing_credentials_is_a_clear_error", false);
    let repo = registry.repo("team/node");
    let wrong = "wrong-Pa55word";
    let err = Client::new(with(fixed(USER, wrong)))
        .list_tags(&repo)
        .expect_err("refused");
    match &err {
        Error::Unauthorized {
            url,
            used_credentials,
        } => {
            assert_eq!(url, &tokens.realm());
            assert!(used_credentials);
        }
        other => panic!("expected Unauthorized from the token endpoint, got {other:?}"),
    }
    assert!(err.to_string().contains(&tokens.realm()), "{err}");
    assert_no_secret(&err, wrong);
    // Anonymous, where the server wants credentials: the same, without credentials.
    let err = Client::new(with(CredentialSource::Anonymous))
        .list_tags(&repo)
        .expect_err("anonymous refused");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                used_credentials: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(tokens.requests().iter().all(|r| r.status == 401));
}

#[test]
fn token_with_credentials_lists_tags_like_skopeo() {
    if !tools_present("token_with_credentials_lists_tags_like_skopeo", TOKEN_TOOLS) {
        return;
    }
    let (_tokens, registry) = token_setup("token_with_credentials_lists_tags_like_skopeo", false);
    let repo = registry.repo("team/node");
    let ours = Client::new(with(fixed(USER, PASSWORD)))
        .list_tags(&repo)
        .expect("list tags");
    let creds = format!("{USER}:{PASSWORD}");
    let theirs =
        skopeo_list_tags(&repo.to_string(), &["--creds", &creds]).expect("skopeo list-tags");
    assert_eq!(
        json!({"Repository": ours.repository, "Tags": ours.tags}),
        theirs
    );
}

/// Some registries answer `/v2/` without auth and challenge only on the
/// repository: the client starts anonymously, then answers that challenge.
#[test]
fn token_challenge_on_the_repository_only() {
    if !tools_present("token_challenge_on_the_repository_only", TOKEN_TOOLS) {
        return;
    }
    let (tokens, registry) = token_setup("token_challenge_on_the_repository_only", false);
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/v2/", Fault::Status(200)).exact()],
    );
    let repo = proxy.repo("team/node");
    let client = Client::new(with(fixed(USER, PASSWORD)));
    let listed = client.list_tags(&repo).expect("list tags");
    assert_eq!(listed.tags.len(), 3);
    assert!(client.tag_exists(&repo, "latest").expect("tag_exists"));
    assert_eq!(tokens.requests_for(PULL), 1, "{:?}", tokens.requests());
    assert_eq!(proxy.requests("/tags/list"), 2, "{:?}", proxy.log());
}

/// Set in the child process of `config_file_credentials`: the repository to list.
const CHILD_REPO: &str = "REGISTRY_TESTS_CONFIG_CHILD_REPO";

/// Only does something in the child process that `config_file_credentials`
/// starts with its own environment; a no-op in an ordinary run.
#[test]
fn config_file_credentials_child() {
    let Ok(repo) = std::env::var(CHILD_REPO) else {
        return;
    };
    let repo = registry::Repository::parse(&repo).expect("repository");
    match Client::new(with(CredentialSource::Config)).list_tags(&repo) {
        Ok(list) => println!("CHILD-TAGS {}", list.tags.len()),
        Err(Error::Unauthorized {
            used_credentials, ..
        }) => {
            println!("CHILD-UNAUTHORIZED used_credentials={used_credentials}");
        }
        Err(e) => println!("CHILD-ERROR {e} / {e:?}"),
    }
}

/// Lists `repo` in a child process whose Docker config is `config` (None: no file).
fn list_in_child(test: &str, repo: &str, config: Option<serde_json::Value>) -> String {
    list_in_child_with(test, repo, config, &[]).line
}

/// What a child process printed: its `CHILD-` line, and everything (stdout and stderr).
struct ChildOutput {
    line: String,
    all: String,
}

/// [`list_in_child`] with more environment variables.
fn list_in_child_with(
    test: &str,
    repo: &str,
    config: Option<serde_json::Value>,
    env: &[(&str, String)],
) -> ChildOutput {
    let home = TempDir::new(test);
    let docker = home.path().join("docker");
    std::fs::create_dir_all(&docker).expect("docker config dir");
    if let Some(config) = config {
        std::fs::write(docker.join("config.json"), config.to_string()).expect("config.json");
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "config_file_credentials_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_REPO, repo)
        .env("DOCKER_CONFIG", &docker)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .env("REGISTRY_AUTH_FILE", home.path().join("no-auth.json"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed: {all}");
    // The test harness may print its own text before ours on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("CHILD-").map(|i| l[i..].trim().to_owned()))
        .unwrap_or_else(|| panic!("no CHILD- line in: {stdout}"));
    ChildOutput { line, all }
}

#[test]
fn config_file_credentials() {
    if !tools_present("config_file_credentials", HTPASSWD_TOOLS) {
        return;
    }
    let registry = htpasswd_registry("config_file_credentials");
    let repo = registry.repo("private/node").to_string();
    let auth_for = |password: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        json!({"auths": {registry.host(): {"auth": auth}}})
    };
    assert_eq!(
        list_in_child(
            "config_file_credentials-right",
            &repo,
            Some(auth_for(PASSWORD))
        ),
        "CHILD-TAGS 2"
    );
    assert_eq!(
        list_in_child(
            "config_file_credentials-wrong",
            &repo,
            Some(auth_for("nope"))
        ),
        "CHILD-UNAUTHORIZED used_credentials=true"
    );
    assert_eq!(
        list_in_child("config_file_credentials-none", &repo, None),
        "CHILD-UNAUTHORIZED used_credentials=false"
    );
}

#[test]
fn an_echoed_authorization_header_is_not_quoted_in_json_errors() {
    if !tools_present(
        "an_echoed_authorization_header_is_not_quoted_in_json_errors",
        TOKEN_TOOLS,
    ) || !tools_present(
        "an_echoed_authorization_header_is_not_quoted_in_json_errors",
        HTPASSWD_TOOLS,
    ) {
        return;
    }
    // A registry that answers with the Basic header where the tag list belongs.
    let registry = htpasswd_registry("an_echoed_authorization_header_is_not_quoted_in_json_errors");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/tags/list", Fault::EchoAuthorization)],
    );
    let err = Client::new(with(fixed(USER, PASSWORD)))
        .list_tags(&proxy.repo("private/node"))
        .expect_err("tags is a string");
    match &err {
        Error::InvalidBody { detail, .. } => assert!(
            detail
                .starts_with("a value of the wrong type or shape (expected a sequence) at `tags`"),
            "{detail}"
        ),
        other => panic!("expected InvalidBody, got {other:?}"),
    }
    assert_no_secret(&err, PASSWORD);

    // A token server that puts it into `expires_in`, which is a number.
    let (tokens, registry) = token_setup(
        "an_echoed_authorization_header_is_not_quoted_in_json_errors-token",
        false,
    );
    tokens.answer_with(json!({"expires_in": "{authorization}"}));
    let err = Client::new(with(fixed(USER, PASSWORD)))
        .list_tags(&registry.repo("team/node"))
        .expect_err("expires_in is a string");
    match &err {
        Error::Token { detail, .. } => assert!(
            detail.contains("(expected u64) at `expires_in`"),
            "{detail}"
        ),
        other => panic!("expected Token, got {other:?}"),
    }
    assert_no_secret(&err, PASSWORD);
}

/// A `docker-credential-NAME` program in a new directory, for `PATH`.
fn credential_helper(home: &TempDir, name: &str, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let helper = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&helper, format!("#!/bin/sh\ncat >/dev/null\n{script}\n")).expect("helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

#[test]
fn credential_helper_output_never_reaches_an_error() {
    if !tools_present(
        "credential_helper_output_never_reaches_an_error",
        HTPASSWD_TOOLS,
    ) {
        return;
    }
    let registry = htpasswd_registry("credential_helper_output_never_reaches_an_error");
    let repo = registry.repo("private/node").to_string();
    let secret = "helper-S3cret-9f2c";
    let cases = [
        // Fails, with the secret on both of its outputs.
        (
            "fails",
            format!(
                "echo '{{\"ServerURL\":\"x\",\"Username\":\"kind\",\"Secret\":\"{secret}\"}}'\n\
                 echo 'error: {secret}' >&2\nexit 1"
            ),
            "credential helper docker-credential-fails failed",
        ),
        // Succeeds with something that is not its JSON, the secret in it.
        (
            "garbage",
            format!("echo '{{\"Username\": 7, \"Secret\": \"{secret}\"}}'"),
            "answered with something other than its JSON",
        ),
    ];
    for (name, script, want) in cases {
        let home = TempDir::new(&format!("credential_helper_output-{name}"));
        let bin = credential_helper(&home, name, &script);
        let out = list_in_child_with(
            &format!("credential_helper_output-{name}"),
            &repo,
            Some(json!({"credsStore": name})),
            &[("PATH", path_with(&bin))],
        );
        assert!(out.line.starts_with("CHILD-ERROR"), "{name}: {}", out.line);
        assert!(out.line.contains(want), "{name}: {}", out.line);
        assert!(
            !out.all.contains(secret),
            "{name}: the secret leaked: {}",
            out.all
        );
    }

    // "Nothing stored for this registry", as docker's helpers say it: anonymous.
    let home = TempDir::new("credential_helper_output-none");
    let bin = credential_helper(
        &home,
        "none",
        "echo 'credentials not found in native keychain'\nexit 1",
    );
    let out = list_in_child_with(
        "credential_helper_output-none",
        &repo,
        Some(json!({"credsStore": "none"})),
        &[("PATH", path_with(&bin))],
    );
    assert_eq!(out.line, "CHILD-UNAUTHORIZED used_credentials=false");
}

/// `dir` first, then this process's `PATH`.
fn path_with(dir: &std::path::Path) -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", dir.display())
}
