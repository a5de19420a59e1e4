//! Faults between the client and a real registry (CNCF distribution), injected
//! by a proxy, end in the right answer or in a clear error within bounded time:
//!
//! - 429 with `Retry-After` in seconds or as an HTTP date, and bursts of 503,
//!   are waited out and retried (the number of attempts is checked);
//! - 5xx forever is `TooManyRetries` after exactly `max_attempts` tries;
//! - 401 without a challenge is `NoChallenge`; a truncated JSON body or a body
//!   shorter than its `Content-Length` is `InvalidBody`; a next-page `Link` to
//!   another host is `CrossHostLink`, one back to a page already read is
//!   `LinkLoop`; a body over `max_body_bytes` (announced or not, fake or a real
//!   10,000-tag answer) is `TooLarge`; a stalled answer is `Timeout`;
//! - redirects of API calls to another host are `Redirect`, on the same host
//!   followed, without end `TooManyRedirects`; a blob may be redirected to
//!   another host, never to plain HTTP;
//! - pages without end stop at the listing's byte or tag cap; slow pages, or
//!   one answer dribbled a byte at a time, at the listing's deadline;
//! - a token lifetime of `u64::MAX` seconds is capped, not a panic;
//! - with proxy variables set (in a child process): loopback is never
//!   proxied, and errors through the proxy name it without its password.

use std::time::{Duration, Instant};

use registry::{Client, CredentialSource, Error, Options, TagList};
use testkit::{
    Auth, Fault, Proxy, REGISTRY_TOOLS, Registry, Rule, TOKEN_TOOLS, TokenServer, tools_present,
};

const REPO: &str = "kindest/node";
const TAGS: &[&str] = &["v1.30.4", "v1.31.0", "v1.32.0-rc.1"];

fn options() -> Options {
    Options {
        credentials: CredentialSource::Anonymous,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        ..Options::default()
    }
}

/// A registry holding `kindest/node` with four tags, and the list it answers.
fn registry(test: &str) -> (Registry, TagList) {
    let registry = Registry::start(test, Auth::None);
    registry.push(REPO, "latest", test);
    let names: Vec<String> = TAGS.iter().map(|t| (*t).to_owned()).collect();
    registry.make_tags(REPO, "latest", &names);
    let list = Client::new(options())
        .list_tags(&registry.repo(REPO))
        .expect("list tags directly");
    assert_eq!(list.tags.len(), 4);
    (registry, list)
}

/// Lists `kindest/node` through `proxy`; returns the answer and how long it took.
fn list_via(proxy: &Proxy, options: Options) -> (Result<TagList, Error>, Duration) {
    let started = Instant::now();
    let result = Client::new(options).list_tags(&proxy.repo(REPO));
    (result, started.elapsed())
}

fn same_tags(got: &TagList, want: &TagList) {
    assert_eq!(got.tags, want.tags);
}

#[test]
fn retry_after_seconds_is_honoured() {
    if !tools_present("retry_after_seconds_is_honoured", REGISTRY_TOOLS) {
        return;
    }
    let (registry, direct) = registry("retry_after_seconds_is_honoured");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::first(2, "/tags/list", Fault::RetryAfterSeconds(1))],
    );
    let (result, took) = list_via(&proxy, options());
    same_tags(&result.expect("listed after two 429s"), &direct);
    assert_eq!(proxy.requests("/tags/list"), 3);
    assert!(took >= Duration::from_millis(1900), "waited only {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn retry_after_http_date_is_honoured() {
    if !tools_present("retry_after_http_date_is_honoured", REGISTRY_TOOLS) {
        return;
    }
    let (registry, direct) = registry("retry_after_http_date_is_honoured");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::first(
            1,
            "/tags/list",
            Fault::RetryAfterDate(Duration::from_secs(2)),
        )],
    );
    let (result, took) = list_via(&proxy, options());
    same_tags(&result.expect("listed after a 429"), &direct);
    assert_eq!(proxy.requests("/tags/list"), 2);
    // The date has whole seconds: two seconds ahead is more than one from now.
    assert!(took >= Duration::from_millis(900), "waited only {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn retry_after_is_capped_by_max_retry_wait() {
    if !tools_present("retry_after_is_capped_by_max_retry_wait", REGISTRY_TOOLS) {
        return;
    }
    let (registry, direct) = registry("retry_after_is_capped_by_max_retry_wait");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::first(1, "/tags/list", Fault::RetryAfterSeconds(3600))],
    );
    let (result, took) = list_via(
        &proxy,
        Options {
            max_retry_wait: Duration::from_millis(200),
            ..options()
        },
    );
    same_tags(&result.expect("listed after a capped wait"), &direct);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn service_unavailable_burst_is_retried() {
    if !tools_present("service_unavailable_burst_is_retried", REGISTRY_TOOLS) {
        return;
    }
    let (registry, direct) = registry("service_unavailable_burst_is_retried");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::first(3, "/tags/list", Fault::Status(503))],
    );
    let (result, took) = list_via(&proxy, options());
    same_tags(&result.expect("listed after three 503s"), &direct);
    assert_eq!(proxy.requests("/tags/list"), 4);
    assert_eq!(proxy.applied(0), 3);
    // Backoff 10 ms, doubled: 10 + 20 + 40 ms.
    assert!(took >= Duration::from_millis(70), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn server_errors_forever_give_too_many_retries() {
    if !tools_present(
        "server_errors_forever_give_too_many_retries",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, _) = registry("server_errors_forever_give_too_many_retries");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/tags/list", Fault::Status(502))],
    );
    let (result, took) = list_via(
        &proxy,
        Options {
            max_attempts: 3,
            ..options()
        },
    );
    match result {
        Err(Error::TooManyRetries { attempts, last, .. }) => {
            assert_eq!(attempts, 3);
            assert!(last.contains("502"), "{last}");
        }
        other => panic!("expected TooManyRetries, got {other:?}"),
    }
    assert_eq!(proxy.requests("/tags/list"), 3);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn unauthorized_without_challenge_is_no_challenge() {
    if !tools_present(
        "unauthorized_without_challenge_is_no_challenge",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, _) = registry("unauthorized_without_challenge_is_no_challenge");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/tags/list", Fault::UnauthorizedNoChallenge)],
    );
    let (result, _) = list_via(&proxy, options());
    let err = result.expect_err("401 without a challenge");
    assert!(matches!(err, Error::NoChallenge { .. }), "{err:?}");
    assert!(err.to_string().contains("WWW-Authenticate"), "{err}");
    assert_eq!(proxy.requests("/tags/list"), 1);

    // On the `/v2/` ping too.
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/v2/", Fault::UnauthorizedNoChallenge).exact()],
    );
    let (result, _) = list_via(&proxy, options());
    match result {
        Err(Error::NoChallenge { url }) => assert!(url.ends_with("/v2/"), "{url}"),
        other => panic!("expected NoChallenge, got {other:?}"),
    }
    assert_eq!(proxy.log(), ["GET /v2/"]);
}

#[test]
fn connections_closed_without_an_answer_are_retried() {
    if !tools_present(
        "connections_closed_without_an_answer_are_retried",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, direct) = registry("connections_closed_without_an_answer_are_retried");
    for fault in [Fault::Close, Fault::Reset] {
        let proxy = Proxy::start(&registry, vec![Rule::first(2, "/tags/list", fault.clone())]);
        let (result, took) = list_via(&proxy, options());
        same_tags(
            &result.unwrap_or_else(|e| panic!("{fault:?}: {e:?}")),
            &direct,
        );
        assert_eq!(proxy.requests("/tags/list"), 3, "{fault:?}");
        assert!(took < Duration::from_secs(5), "{fault:?}: {took:?}");

        let proxy = Proxy::start(&registry, vec![Rule::always("/tags/list", fault.clone())]);
        let (result, _) = list_via(
            &proxy,
            Options {
                max_attempts: 2,
                ..options()
            },
        );
        assert!(
            matches!(result, Err(Error::TooManyRetries { attempts: 2, .. })),
            "{fault:?}: {result:?}"
        );
        assert_eq!(proxy.requests("/tags/list"), 2, "{fault:?}");
    }
}

#[test]
fn nothing_listening_gives_up_after_max_attempts() {
    // No tools: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let repo =
        registry::Repository::parse(&format!("127.0.0.1:{port}/kindest/node")).expect("repository");
    let started = Instant::now();
    let err = Client::new(Options {
        max_attempts: 3,
        ..options()
    })
    .list_tags(&repo)
    .expect_err("nothing listening");
    match &err {
        Error::TooManyRetries { attempts, last, .. } => {
            assert_eq!(*attempts, 3);
            assert!(last.contains("refused"), "{last}");
        }
        other => panic!("expected TooManyRetries, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn digest_without_header_is_the_manifest_sha256() {
    if !tools_present(
        "digest_without_header_is_the_manifest_sha256",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, _) = registry("digest_without_header_is_the_manifest_sha256");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/manifests/",
            Fault::DropHeader("Docker-Content-Digest"),
        )],
    );
    let digest = Client::new(options())
        .manifest_digest(&proxy.repo(REPO), "v1.31.0")
        .expect("digest from the body");
    assert_eq!(digest.as_str(), registry.stored_digest(REPO, "v1.31.0"));
    assert_eq!(
        proxy.log(),
        [
            "GET /v2/",
            "HEAD /v2/kindest/node/manifests/v1.31.0",
            "GET /v2/kindest/node/manifests/v1.31.0"
        ]
    );
}

#[test]
fn truncated_json_is_invalid_body() {
    if !tools_present("truncated_json_is_invalid_body", REGISTRY_TOOLS) {
        return;
    }
    let (registry, _) = registry("truncated_json_is_invalid_body");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/tags/list", Fault::TruncatedBody)],
    );
    let (result, _) = list_via(&proxy, options());
    let err = result.expect_err("truncated JSON");
    match &err {
        Error::InvalidBody { detail, .. } => assert!(detail.contains("ends early"), "{detail}"),
        other => panic!("expected InvalidBody, got {other:?}"),
    }
}

#[test]
fn body_shorter_than_content_length_is_invalid_body() {
    if !tools_present(
        "body_shorter_than_content_length_is_invalid_body",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, _) = registry("body_shorter_than_content_length_is_invalid_body");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/tags/list", Fault::ShortBody)],
    );
    let (result, took) = list_via(&proxy, options());
    let err = result.expect_err("short body");
    match &err {
        Error::InvalidBody { detail, .. } => {
            assert!(detail.contains("could not be read whole"), "{detail}")
        }
        other => panic!("expected InvalidBody, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn link_to_another_host_is_refused() {
    if !tools_present("link_to_another_host_is_refused", REGISTRY_TOOLS) {
        return;
    }
    let (registry, _) = registry("link_to_another_host_is_refused");
    let link = r#"<http://127.0.0.2:{port}/v2/kindest/node/tags/list?last=latest&n=2>; rel="next""#;
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/tags/list", Fault::Link(link.to_owned()))],
    );
    let (result, _) = list_via(&proxy, options());
    match result {
        Err(Error::CrossHostLink { to, .. }) => {
            assert_eq!(to, format!("127.0.0.2:{}", proxy.port()))
        }
        other => panic!("expected CrossHostLink, got {other:?}"),
    }
    assert_eq!(proxy.requests("/tags/list"), 1);
}

#[test]
fn link_loop_is_refused() {
    if !tools_present("link_loop_is_refused", REGISTRY_TOOLS) {
        return;
    }
    let (registry, _) = registry("link_loop_is_refused");
    // Every page names the same next page: the second page points at itself.
    let link = r#"</v2/kindest/node/tags/list?last=latest&n=2>; rel="next""#;
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always("/tags/list", Fault::Link(link.to_owned()))],
    );
    let (result, _) = list_via(&proxy, options());
    assert!(matches!(result, Err(Error::LinkLoop { .. })), "{result:?}");
    assert_eq!(proxy.requests("/tags/list"), 2);

    // A page that names itself.
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/tags/list",
            Fault::Link(r#"<{target}>; rel="next""#.to_owned()),
        )],
    );
    let (result, _) = list_via(&proxy, options());
    assert!(matches!(result, Err(Error::LinkLoop { .. })), "{result:?}");
    assert_eq!(proxy.requests("/tags/list"), 1);
}

#[test]
fn too_many_pages_are_refused() {
    if !tools_present("too_many_pages_are_refused", REGISTRY_TOOLS) {
        return;
    }
    let (registry, direct) = registry("too_many_pages_are_refused");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/tags/list",
            Fault::Paginate { absolute: false },
        )],
    );
    let one_per_page = Options {
        page_size: Some(1),
        max_pages: 3,
        ..options()
    };
    let (result, _) = list_via(&proxy, one_per_page.clone());
    assert!(
        matches!(result, Err(Error::TooManyPages { limit: 3, .. })),
        "{result:?}"
    );
    let (result, _) = list_via(
        &proxy,
        Options {
            max_pages: 4,
            ..one_per_page
        },
    );
    same_tags(&result.expect("four pages of one"), &direct);
}

#[test]
fn oversized_bodies_are_too_large() {
    if !tools_present("oversized_bodies_are_too_large", REGISTRY_TOOLS) {
        return;
    }
    let (registry, _) = registry("oversized_bodies_are_too_large");
    let small = Options {
        max_body_bytes: 1 << 20,
        ..options()
    };
    for fault in [
        Fault::Oversized(40 << 20),
        Fault::OversizedChunked(40 << 20),
    ] {
        let proxy = Proxy::start(&registry, vec![Rule::always("/tags/list", fault.clone())]);
        let (result, took) = list_via(&proxy, small.clone());
        assert!(
            matches!(result, Err(Error::TooLarge { limit, .. }) if limit == 1 << 20),
            "{fault:?}: {result:?}"
        );
        assert!(took < Duration::from_secs(5), "{fault:?}: {took:?}");
    }
}

#[test]
fn real_answer_over_the_limit_is_too_large() {
    if !tools_present("real_answer_over_the_limit_is_too_large", REGISTRY_TOOLS) {
        return;
    }
    let registry = Registry::start("real_answer_over_the_limit_is_too_large", Auth::None);
    registry.push(REPO, "latest", "big");
    let names: Vec<String> = (0..2_000)
        .map(|i| format!("v1.{}.{}-build.{i}", i / 100, i % 100))
        .collect();
    registry.make_tags(REPO, "latest", &names);
    let repo = registry.repo(REPO);
    // About 44 KB of tags, sent by distribution without a Content-Length.
    let raw = testkit::http(registry.addr(), "GET", "/v2/kindest/node/tags/list", &[])
        .expect("GET tags/list");
    assert!(raw.header("content-length").is_none(), "{:?}", raw.headers);
    assert!(raw.body.len() > 32 << 10, "{}", raw.body.len());
    let err = Client::new(Options {
        max_body_bytes: 32 << 10,
        ..options()
    })
    .list_tags(&repo)
    .expect_err("over the limit");
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    let all = Client::new(options())
        .list_tags(&repo)
        .expect("under the default limit");
    assert_eq!(all.tags.len(), 2_001);
}

#[test]
fn stalled_answers_time_out() {
    if !tools_present("stalled_answers_time_out", REGISTRY_TOOLS) {
        return;
    }
    let (registry, _) = registry("stalled_answers_time_out");
    let quick = Options {
        timeout: Duration::from_secs(2),
        ..options()
    };
    for fault in [Fault::Stall, Fault::StallBody] {
        let proxy = Proxy::start(&registry, vec![Rule::always("/tags/list", fault.clone())]);
        let (result, took) = list_via(&proxy, quick.clone());
        match result {
            Err(Error::Timeout { after, .. }) => assert_eq!(after, Duration::from_secs(2)),
            other => panic!("{fault:?}: expected Timeout, got {other:?}"),
        }
        assert!(took >= Duration::from_millis(1900), "{fault:?}: {took:?}");
        assert!(took < Duration::from_secs(10), "{fault:?}: {took:?}");
        assert_eq!(
            proxy.requests("/tags/list"),
            1,
            "{fault:?}: a timeout is not retried"
        );
    }
}

#[test]
fn redirects_of_api_calls_stay_on_the_registry() {
    if !tools_present(
        "redirects_of_api_calls_stay_on_the_registry",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, direct) = registry("redirects_of_api_calls_stay_on_the_registry");
    // To the registry itself, behind the proxy's back: another server.
    let elsewhere = "http://{upstream}{target}";
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/v2/kindest/",
            Fault::Redirect {
                status: 302,
                location: elsewhere.to_owned(),
            },
        )],
    );
    let (result, _) = list_via(&proxy, options());
    let err = result.expect_err("a tag list redirected to another host");
    let upstream = format!("http://{}", registry.addr());
    match &err {
        Error::Redirect { to, .. } => assert_eq!(*to, upstream),
        other => panic!("expected Redirect, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("API calls stay on the registry's host"),
        "{err}"
    );
    let err = Client::new(options())
        .manifest_digest(&proxy.repo(REPO), "v1.31.0")
        .expect_err("a manifest redirected to another host");
    assert!(matches!(err, Error::Redirect { .. }), "{err:?}");

    // On the same host, followed.
    let proxy = Proxy::start(
        &registry,
        vec![Rule::first(
            1,
            "/tags/list",
            Fault::Redirect {
                status: 307,
                location: "{target}".to_owned(),
            },
        )],
    );
    let (result, _) = list_via(&proxy, options());
    same_tags(&result.expect("a same-host redirect followed"), &direct);
    assert_eq!(proxy.requests("/tags/list"), 2);

    // Without end: a bounded number, then a clear error.
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/tags/list",
            Fault::Redirect {
                status: 301,
                location: "{target}".to_owned(),
            },
        )],
    );
    let (result, took) = list_via(&proxy, options());
    assert!(
        matches!(result, Err(Error::TooManyRedirects { limit: 10, .. })),
        "{result:?}"
    );
    assert_eq!(proxy.requests("/tags/list"), 11);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn blob_redirects_may_leave_the_registry_but_not_for_plain_http() {
    if !tools_present(
        "blob_redirects_may_leave_the_registry_but_not_for_plain_http",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, _) = registry("blob_redirects_may_leave_the_registry_but_not_for_plain_http");
    let arch = "amd64";
    let want = Client::new(options())
        .image_labels(&registry.repo(REPO), "v1.31.0", arch)
        .expect("labels directly");
    // To another (loopback) server, as registries send blobs to a CDN.
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/blobs/",
            Fault::Redirect {
                status: 307,
                location: "http://{upstream}{target}".to_owned(),
            },
        )],
    );
    let got = Client::new(options())
        .image_labels(&proxy.repo(REPO), "v1.31.0", arch)
        .expect("labels through a blob redirect");
    assert_eq!(got, want);
    assert_eq!(proxy.requests("/blobs/"), 1);

    // To plain HTTP on a host that is not loopback: refused before connecting.
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/blobs/",
            Fault::Redirect {
                status: 302,
                location: "http://cdn.invalid/blob?signature=s3cret".to_owned(),
            },
        )],
    );
    let err = Client::new(options())
        .image_labels(&proxy.repo(REPO), "v1.31.0", arch)
        .expect_err("a blob redirected to plain HTTP");
    match &err {
        Error::Redirect { to, reason, .. } => {
            assert_eq!(to, "http://cdn.invalid");
            assert!(reason.contains("plain HTTP"), "{reason}");
        }
        other => panic!("expected Redirect, got {other:?}"),
    }
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn endless_pages_stop_at_the_listing_byte_cap() {
    if !tools_present("endless_pages_stop_at_the_listing_byte_cap", REGISTRY_TOOLS) {
        return;
    }
    let (registry, _) = registry("endless_pages_stop_at_the_listing_byte_cap");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/tags/list",
            Fault::EndlessPages {
                page_bytes: 256 << 10,
                delay: Duration::ZERO,
            },
        )],
    );
    let (result, took) = list_via(
        &proxy,
        Options {
            max_body_bytes: 1 << 20,
            max_listing_bytes: 2 << 20,
            ..options()
        },
    );
    let err = result.expect_err("pages without end");
    assert!(
        matches!(err, Error::ListingTooLarge { limit, .. } if limit == 2 << 20),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "listing the tags of {}: the registry sent more than 2097152 bytes of pages in all; refusing to read further",
            proxy.repo(REPO)
        )
    );
    // Each page is a little over 256 KiB: seven fit, the eighth is cut at the cap.
    assert_eq!(proxy.requests("/tags/list"), 8);
    assert!(took < Duration::from_secs(10), "{took:?}");

    // The tag cap ends a listing of many small tags first.
    let (result, _) = list_via(
        &proxy,
        Options {
            max_tags: 50_000,
            ..options()
        },
    );
    let err = result.expect_err("too many tags");
    assert!(
        matches!(err, Error::TooManyTags { limit: 50_000, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than 50000 tags"), "{err}");
}

#[test]
fn slow_endless_pages_stop_at_the_listing_deadline() {
    if !tools_present(
        "slow_endless_pages_stop_at_the_listing_deadline",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, _) = registry("slow_endless_pages_stop_at_the_listing_deadline");
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/tags/list",
            Fault::EndlessPages {
                page_bytes: 100,
                delay: Duration::from_millis(200),
            },
        )],
    );
    let (result, took) = list_via(
        &proxy,
        Options {
            // Without the deadline this would be a TooManyPages after 10 s.
            max_pages: 50,
            listing_deadline: Duration::from_millis(1500),
            ..options()
        },
    );
    let err = result.expect_err("pages without end, slowly");
    assert!(matches!(err, Error::ListingTooLong { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "listing the tags of {}: not done within 1.5s, the limit for a whole listing; the registry is too slow or its pages do not end",
            proxy.repo(REPO)
        )
    );
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn a_dribbling_answer_stops_at_the_listing_deadline() {
    if !tools_present(
        "a_dribbling_answer_stops_at_the_listing_deadline",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, _) = registry("a_dribbling_answer_stops_at_the_listing_deadline");
    // About 100 bytes, one every 50 ms: always sending, done after 5 s,
    // well within the 10 s a single request may take.
    let proxy = Proxy::start(
        &registry,
        vec![Rule::always(
            "/tags/list",
            Fault::Dribble {
                every: Duration::from_millis(50),
            },
        )],
    );
    let (result, took) = list_via(
        &proxy,
        Options {
            listing_deadline: Duration::from_secs(2),
            ..options()
        },
    );
    let err = result.expect_err("a slowloris answer");
    assert!(matches!(err, Error::ListingTooLong { .. }), "{err:?}");
    assert!(err.to_string().contains("not done within 2s"), "{err}");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(proxy.requests("/tags/list"), 1, "a deadline is not retried");
}

#[test]
fn a_token_lifetime_beyond_the_clock_is_capped() {
    if !tools_present("a_token_lifetime_beyond_the_clock_is_capped", TOKEN_TOOLS) {
        return;
    }
    let test = "a_token_lifetime_beyond_the_clock_is_capped";
    let tokens = TokenServer::start(test, Some(("kind", "pw")), true);
    let registry = Registry::start(test, tokens.auth());
    registry.push(REPO, "latest", test);
    tokens.answer_with(serde_json::json!({"expires_in": u64::MAX}));
    tokens.clear_log();
    let client = Client::new(options());
    let repo = registry.repo(REPO);
    let first = client.list_tags(&repo).expect("listed with the token");
    assert_eq!(first.tags, ["latest"]);
    // Kept (for an hour at most), not asked for again.
    assert_eq!(client.list_tags(&repo).expect("listed again"), first);
    assert_eq!(tokens.requests().len(), 1, "{:?}", tokens.requests());
}

/// Set in the child process of the proxy tests: the repository to list.
const PROXY_CHILD_REPO: &str = "REGISTRY_TESTS_PROXY_CHILD_REPO";

/// Only does something in a child process that `list_with_proxy` starts with
/// proxy variables in its environment; a no-op in an ordinary run.
#[test]
fn proxy_child() {
    let Ok(repo) = std::env::var(PROXY_CHILD_REPO) else {
        return;
    };
    let repo = registry::Repository::parse(&repo).expect("repository");
    match Client::new(Options {
        max_attempts: 2,
        ..options()
    })
    .list_tags(&repo)
    {
        Ok(list) => println!("CHILD-TAGS {}", list.tags.len()),
        Err(e) => println!("CHILD-ERROR {e} / {e:?}"),
    }
}

/// Lists `repo` in a child process whose every proxy variable names `proxy`.
fn list_with_proxy(repo: &str, proxy: &str) -> String {
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
    child
        .args(["proxy_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(PROXY_CHILD_REPO, repo)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        child.env(var, proxy);
    }
    let out = child.output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    stdout
        .lines()
        .find_map(|l| l.find("CHILD-").map(|i| l[i..].trim().to_owned()))
        .unwrap_or_else(|| panic!("no CHILD- line in: {stdout}"))
}

#[test]
fn loopback_registries_are_never_proxied() {
    if !tools_present("loopback_registries_are_never_proxied", REGISTRY_TOOLS) {
        return;
    }
    let (registry, _) = registry("loopback_registries_are_never_proxied");
    // A proxy that refuses every tunnel: going through it would fail.
    let proxy = Proxy::start(&registry, Vec::new());
    let proxy_url = format!("http://alice:hunter2@{}", proxy.host());
    for repo in [
        registry.repo(REPO).to_string(),
        format!("localhost:{}/{REPO}", registry.addr().port()),
    ] {
        assert_eq!(list_with_proxy(&repo, &proxy_url), "CHILD-TAGS 4", "{repo}");
    }
    assert_eq!(proxy.log(), Vec::<String>::new());
}

#[test]
fn errors_through_a_proxy_name_it_without_its_password() {
    if !tools_present(
        "errors_through_a_proxy_name_it_without_its_password",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let (registry, _) = registry("errors_through_a_proxy_name_it_without_its_password");
    let proxy = Proxy::start(&registry, Vec::new());
    let remote = format!("registry.invalid/{REPO}");
    let named = format!("http://{}", proxy.host());

    // The proxy answers, and refuses the tunnel.
    let line = list_with_proxy(&remote, &format!("http://alice:hunter2@{}", proxy.host()));
    assert!(line.starts_with("CHILD-ERROR "), "{line}");
    assert!(
        line.contains(&format!("through the proxy {named}")),
        "{line}"
    );
    assert!(line.contains("403"), "{line}");
    assert!(
        !line.contains("alice") && !line.contains("hunter2"),
        "{line}"
    );
    assert_eq!(proxy.log(), ["CONNECT registry.invalid:443"]);

    // Nothing listens where the proxy should be.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let line = list_with_proxy(&remote, &format!("http://alice:hunter2@{dead}"));
    assert!(
        line.contains(&format!("through the proxy http://{dead}")),
        "{line}"
    );
    assert!(line.contains("gave up after 2 attempts"), "{line}");
    assert!(
        !line.contains("alice") && !line.contains("hunter2"),
        "{line}"
    );
    assert!(!line.contains("cannot resolve registry host"), "{line}");
}
