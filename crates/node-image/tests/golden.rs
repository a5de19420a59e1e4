//! Golden files of rendered contexts across the matrix in `common`: the diff
//! of a golden file in review is the specification of what the image gets.
//! Update with `UPDATE_EXPECT=1 cargo test -p node-image --test golden`.

mod common;

use expect_test::expect_file;

#[test]
fn rendered_contexts_match_their_golden_files() {
    for case in common::matrix() {
        let ctx = node_image::render(&case.inputs);
        let path = format!("golden/{}.txt", case.name);
        expect_file![path].assert_eq(&common::dump(&ctx));
    }
}

#[test]
fn rendering_is_deterministic_and_digest_tracks_every_input() {
    let cases = common::matrix();
    let mut digests = std::collections::BTreeSet::new();
    for case in &cases {
        let a = node_image::render(&case.inputs);
        let b = node_image::render(&case.inputs);
        assert_eq!(a, b, "{}", case.name);
        let digest = a.inputs_digest().expect("a digest label").to_owned();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        assert!(digests.insert(digest), "{}: digest not unique", case.name);
    }
}

#[test]
fn digest_of_written_context_equals_rendered_digest() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dockerfile-digest");
    for case in common::matrix() {
        let _ = std::fs::remove_dir_all(&dir);
        let ctx = node_image::render(&case.inputs);
        node_image::write_context(&ctx, &dir).expect("write the context");
        let on_disk = node_image::digest_dir(&dir).expect("digest the directory");
        assert_eq!(Some(on_disk.as_str()), ctx.inputs_digest(), "{}", case.name);
        // Any change to any file changes the digest.
        let script = dir.join("kind-crio/configure-node.sh");
        let mut text = std::fs::read_to_string(&script).expect("read");
        text.push_str("# edited\n");
        std::fs::write(&script, text).expect("write");
        assert_ne!(
            node_image::digest_dir(&dir).ok().as_deref(),
            ctx.inputs_digest(),
            "{}",
            case.name
        );
    }
}
