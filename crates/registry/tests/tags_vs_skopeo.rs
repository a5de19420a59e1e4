//! Against a real registry (CNCF distribution, `docker-registry`), the client
//! reports what `skopeo` reports: `list_tags` gives the same `Repository` and
//! the same `Tags` in the same order as `skopeo list-tags` (empty, small and
//! 10,000-tag repositories, paged and unpaged), `manifest_digest` gives the
//! digest `skopeo inspect` shows, `tag_exists` says yes and no correctly, and a
//! missing repository is `Error::NotFound` where skopeo fails with a 404.

use registry::{Client, CredentialSource, Error, Options, TagList};
use serde_json::{Value, json};
use testkit::{
    Auth, Fault, Proxy, REGISTRY_TOOLS, Registry, Rule, skopeo_digest, skopeo_list_tags,
    tools_present,
};

fn options() -> Options {
    Options {
        credentials: CredentialSource::Anonymous,
        ..Options::default()
    }
}

/// Our answer in `skopeo list-tags`'s JSON shape.
fn as_skopeo(list: &TagList) -> Value {
    json!({"Repository": list.repository, "Tags": list.tags})
}

fn skopeo_tags(reference: &str) -> Value {
    skopeo_list_tags(reference, &[]).unwrap_or_else(|e| panic!("skopeo list-tags {reference}: {e}"))
}

#[test]
fn small_repository_matches_skopeo() {
    if !tools_present("small_repository_matches_skopeo", REGISTRY_TOOLS) {
        return;
    }
    let registry = Registry::start("small_repository_matches_skopeo", Auth::None);
    registry.push("kindest/node", "latest", "small");
    let more: Vec<String> = ["v1.31.0", "v1.32.0-rc.1", "v1.30.4", "1.29"]
        .map(String::from)
        .to_vec();
    registry.make_tags("kindest/node", "latest", &more);
    let repo = registry.repo("kindest/node");

    let ours = Client::new(options()).list_tags(&repo).expect("list tags");
    let theirs = skopeo_tags(&repo.to_string());
    assert_eq!(as_skopeo(&ours), theirs);
    let mut sorted = ours.tags.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["1.29", "latest", "v1.30.4", "v1.31.0", "v1.32.0-rc.1"]
    );

    // Distribution 2.8 ignores `?n=` on tags/list and sends no `Link`: one
    // request, the same answer.
    let paged = Client::new(Options {
        page_size: Some(2),
        ..options()
    })
    .list_tags(&repo)
    .expect("list tags with ?n=2");
    assert_eq!(paged, ours);
}

/// A repository whose only manifest was deleted still exists with no tags:
/// distribution answers `200 {"name":"kindest/node","tags":null}` and skopeo
/// prints `"Tags": []`; we give an empty list too, not an error.
#[test]
fn empty_repository_matches_skopeo() {
    if !tools_present("empty_repository_matches_skopeo", REGISTRY_TOOLS) {
        return;
    }
    let registry = Registry::start("empty_repository_matches_skopeo", Auth::None);
    let digest = registry.push("kindest/node", "v1.31.0", "empty");
    registry.delete_manifest("kindest/node", &digest);
    let repo = registry.repo("kindest/node");

    let raw = testkit::http(registry.addr(), "GET", "/v2/kindest/node/tags/list", &[])
        .expect("GET tags/list");
    assert_eq!(raw.status, 200);
    let raw: Value = serde_json::from_slice(&raw.body).expect("JSON");
    assert_eq!(raw, json!({"name": "kindest/node", "tags": null}));

    let ours = Client::new(options()).list_tags(&repo).expect("list tags");
    assert!(ours.tags.is_empty(), "{ours:?}");
    let theirs = skopeo_tags(&repo.to_string());
    assert_eq!(as_skopeo(&ours), theirs);
    assert_eq!(theirs["Tags"], json!([]));
    assert!(
        !Client::new(options())
            .tag_exists(&repo, "v1.31.0")
            .expect("tag_exists")
    );
}

#[test]
fn ten_thousand_tags_match_skopeo_paged_and_unpaged() {
    if !tools_present(
        "ten_thousand_tags_match_skopeo_paged_and_unpaged",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let registry = Registry::start(
        "ten_thousand_tags_match_skopeo_paged_and_unpaged",
        Auth::None,
    );
    registry.push("kindest/node", "latest", "many");
    let names: Vec<String> = (0..9_999)
        .map(|i| format!("v1.{}.{}", i / 100, i % 100))
        .collect();
    registry.make_tags("kindest/node", "latest", &names);
    let repo = registry.repo("kindest/node");

    let unpaged = Client::new(options()).list_tags(&repo).expect("list tags");
    assert_eq!(unpaged.tags.len(), 10_000);
    assert_eq!(as_skopeo(&unpaged), skopeo_tags(&repo.to_string()));

    // `?n=100` straight to distribution 2.8: ignored, same answer.
    let direct = Client::new(Options {
        page_size: Some(100),
        ..options()
    })
    .list_tags(&repo)
    .expect("list tags with ?n=100");
    assert_eq!(direct, unpaged);

    // Through a proxy that pages the real list as paginating registries do
    // (relative `Link` targets, then absolute ones): 100 pages, same tags in
    // the same order.
    for absolute in [false, true] {
        let proxy = Proxy::start(
            &registry,
            vec![Rule::always("/tags/list", Fault::Paginate { absolute })],
        );
        let via = proxy.repo("kindest/node");
        let paged = Client::new(Options {
            page_size: Some(100),
            ..options()
        })
        .list_tags(&via)
        .expect("list tags page by page");
        assert_eq!(paged.repository, via.to_string());
        assert_eq!(paged.tags, unpaged.tags, "absolute links: {absolute}");
        assert_eq!(
            proxy.requests("/tags/list"),
            100,
            "absolute links: {absolute}"
        );
        let followed = proxy
            .log()
            .iter()
            .filter(|l| l.contains("tags/list?last=") && l.ends_with("&n=100"))
            .count();
        assert_eq!(followed, 99, "absolute links: {absolute}");
    }
}

#[test]
fn missing_repository_is_not_found_like_skopeo() {
    if !tools_present(
        "missing_repository_is_not_found_like_skopeo",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let registry = Registry::start("missing_repository_is_not_found_like_skopeo", Auth::None);
    let repo = registry.repo("no/such");
    let err = Client::new(options())
        .list_tags(&repo)
        .expect_err("no such repository");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such"), "{err}");
    let skopeo = skopeo_list_tags(&repo.to_string(), &[]).expect_err("skopeo fails too");
    assert!(skopeo.contains("404"), "{skopeo}");
}

#[test]
fn manifest_digest_matches_skopeo_inspect() {
    if !tools_present("manifest_digest_matches_skopeo_inspect", REGISTRY_TOOLS) {
        return;
    }
    let registry = Registry::start("manifest_digest_matches_skopeo_inspect", Auth::None);
    let client = Client::new(options());
    let repo = registry.repo("kindest/node");
    let mut seen = Vec::new();
    for (tag, marker) in [("v1.31.0", "one"), ("v1.32.0-rc.1", "two")] {
        let stored = registry.push("kindest/node", tag, marker);
        let ours = client.manifest_digest(&repo, tag).expect("manifest digest");
        let theirs = skopeo_digest(&format!("{repo}:{tag}"), &[]);
        assert_eq!(ours.as_str(), theirs, "{tag}");
        assert_eq!(ours.as_str(), stored, "{tag}");
        seen.push(ours);
    }
    assert_ne!(seen[0], seen[1], "different images have different digests");
}

#[test]
fn tag_exists_answers_yes_and_no() {
    if !tools_present("tag_exists_answers_yes_and_no", REGISTRY_TOOLS) {
        return;
    }
    let registry = Registry::start("tag_exists_answers_yes_and_no", Auth::None);
    registry.push("kindest/node", "v1.31.0", "exists");
    let client = Client::new(options());
    let repo = registry.repo("kindest/node");
    assert!(client.tag_exists(&repo, "v1.31.0").expect("existing tag"));
    assert!(!client.tag_exists(&repo, "v1.99.0").expect("missing tag"));
    assert!(
        !client
            .tag_exists(&registry.repo("no/such"), "v1.31.0")
            .expect("missing repository")
    );
    let err = client
        .manifest_digest(&repo, "v1.99.0")
        .expect_err("missing tag");
    assert!(err.is_not_found(), "{err:?}");
    assert!(matches!(
        client.tag_exists(&repo, "-bad"),
        Err(Error::InvalidTag { .. })
    ));
}

/// A manifest is found by its digest whatever its tags say now: after the
/// tag moves on, the old digest still exists; a digest never pushed, or one
/// asked of a missing repository, does not.
#[test]
fn manifest_exists_by_digest_after_the_tag_moved() {
    if !tools_present(
        "manifest_exists_by_digest_after_the_tag_moved",
        REGISTRY_TOOLS,
    ) {
        return;
    }
    let registry = Registry::start("manifest_exists_by_digest_after_the_tag_moved", Auth::None);
    let first = registry.push("kindest/node", "v1.37.0", "first build");
    let second = registry.push("kindest/node", "v1.37.0", "rebuilt");
    assert_ne!(first, second);
    let client = Client::new(options());
    let repo = registry.repo("kindest/node");
    let digest = |d: &str| registry::Digest::parse(d).expect("a digest");
    assert_eq!(
        client
            .manifest_digest(&repo, "v1.37.0")
            .expect("the tag")
            .as_str(),
        second
    );
    assert!(
        client
            .manifest_exists(&repo, &digest(&first))
            .expect("by digest")
    );
    assert!(
        client
            .manifest_exists(&repo, &digest(&second))
            .expect("by digest")
    );
    let never = format!("sha256:{}", "0".repeat(64));
    assert!(
        !client
            .manifest_exists(&repo, &digest(&never))
            .expect("never pushed")
    );
    assert!(
        !client
            .manifest_exists(&registry.repo("no/such"), &digest(&first))
            .expect("missing repository")
    );
}
