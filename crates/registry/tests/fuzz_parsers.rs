//! Property-based fuzzing of every parser that reads registry or user input:
//! repository references, `WWW-Authenticate` challenges, `Link` headers and URL
//! resolution, Kubernetes versions, `Retry-After`. Inputs are both arbitrary
//! strings and strings built from each grammar's own alphabet (so the parsers'
//! interesting paths are reached, not only their first rejection).
//!
//! Properties: no panic on any input; what parses is consistent (a parsed
//! repository re-parses to itself, a version displays and re-parses equal,
//! resolution never changes origin unless the reference names one).

use proptest::prelude::*;
use registry::link::{Url, next_link};
use registry::{KubernetesVersion, Repository, challenge, client::parse_retry_after, sort_tags};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    }
}

/// Strings over the characters that matter to references.
fn reference_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"(docker://)?[a-zA-Z0-9._:/@\-\[\]]{0,40}")
        .expect("valid regex")
}

fn header_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"[A-Za-z=",; <>/:?.&\\\-_]{0,80}"#).expect("valid regex")
}

fn version_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        r"v?[0-9]{1,3}(\.[0-9]{0,3}){0,3}(-(alpha|beta|rc|foo)?\.?[0-9]{0,2})?(\+x)?",
    )
    .expect("valid regex")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn references_never_panic_and_reparse(s in prop_oneof![any::<String>(), reference_like()]) {
        if let Ok(repo) = Repository::parse(&s) {
            let again = Repository::parse(&repo.to_string()).expect("a normalised name parses");
            prop_assert_eq!(&again, &repo);
            prop_assert!(!repo.path().is_empty());
            prop_assert!(repo.to_string().len() <= 255);
        }
    }

    #[test]
    fn challenges_never_panic(s in prop_oneof![any::<String>(), header_like()]) {
        for ch in challenge::parse(&s) {
            prop_assert!(!ch.scheme.is_empty());
            prop_assert_eq!(ch.scheme.to_ascii_lowercase(), ch.scheme.clone());
        }
    }

    #[test]
    fn links_never_panic(s in prop_oneof![any::<String>(), header_like()]) {
        let base = Url::parse("https://registry.example:5000/v2/a/tags/list?n=10").expect("valid base");
        if let Some(target) = next_link(&s) {
            prop_assert!(s.contains(target));
            if let Some(url) = base.join(target) {
                let named_origin = target.contains("://") || target.starts_with("//");
                if !named_origin {
                    prop_assert!(base.same_origin(&url));
                }
                prop_assert!(url.path_and_query().starts_with('/'));
            }
        }
    }

    #[test]
    fn urls_never_panic(s in prop_oneof![any::<String>(), header_like()]) {
        let base = Url::parse("http://127.0.0.1/v2/x/tags/list").expect("valid base");
        let _ = Url::parse(&s);
        let _ = base.join(&s);
    }

    #[test]
    fn versions_never_panic_and_round_trip(s in prop_oneof![any::<String>(), version_like()]) {
        if let Ok(v) = KubernetesVersion::parse(&s) {
            let shown = v.to_string();
            prop_assert!(shown.starts_with('v'));
            prop_assert_eq!(KubernetesVersion::parse(&shown).expect("display re-parses"), v);
        }
    }

    #[test]
    fn sorting_keeps_every_tag(tags in proptest::collection::vec(prop_oneof![any::<String>(), version_like()], 0..30)) {
        let mut sorted = sort_tags(&tags);
        let mut original = tags.clone();
        sorted.sort();
        original.sort();
        prop_assert_eq!(sorted, original);
    }

    #[test]
    fn retry_after_never_panics(s in prop_oneof![any::<String>(), "[0-9]{0,25}", header_like()]) {
        let _ = parse_retry_after(&s);
    }
}
