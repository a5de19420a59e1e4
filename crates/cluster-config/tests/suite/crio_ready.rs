//! `make_crio_ready` on users' configs: what it adds, what it keeps, what it refuses.

use cluster_config::{
    CRIO_SOCKET, Cluster, Error, KubeadmKind, Node, PatchJson6902, Role, crio_patch, decode,
    encode, load, make_crio_ready,
};
use expect_test::expect_file;

use crate::support::yaml_files;

const HEAD: &str = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n";

fn ready(yaml: &str) -> Result<Cluster, Error> {
    make_crio_ready(decode(&format!("{HEAD}{yaml}")).expect("decode"))
}

fn init() -> String {
    crio_patch(KubeadmKind::InitConfiguration)
}

fn join() -> String {
    crio_patch(KubeadmKind::JoinConfiguration)
}

/// The golden file for the CRI-O-ready form of `tests/fixtures/valid/<fixture>`.
fn golden_name(fixture: &str) -> String {
    format!("crio-ready-{fixture}")
}

pub fn golden_names() -> Vec<String> {
    yaml_files("fixtures/valid")
        .into_iter()
        .map(|(file, _)| golden_name(&file))
        .collect()
}

/// Every valid fixture made CRI-O ready, as `tests/golden/crio-ready-*.yaml`.
pub fn outputs() -> Vec<(String, String)> {
    yaml_files("fixtures/valid")
        .into_iter()
        .map(|(file, text)| {
            let cluster = make_crio_ready(load(&text).expect("valid fixture"))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            (golden_name(&file), encode(&cluster).expect("encode"))
        })
        .collect()
}

#[test]
fn valid_fixtures_made_crio_ready_match_the_goldens() {
    for (golden, yaml) in outputs() {
        expect_file![format!("../golden/{golden}")].assert_eq(&yaml);
    }
}

/// Applying it to its own output changes nothing, and the output still validates.
#[test]
fn it_is_idempotent() {
    for (file, text) in yaml_files("fixtures/valid") {
        let once = make_crio_ready(load(&text).expect("fixture")).expect("once");
        let twice = make_crio_ready(once.clone()).expect("twice");
        assert_eq!(twice, once, "{file}");
        once.validate().unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// Everything the user wrote is still there, in the same place: the only
/// change is CRI-O patches appended to nodes' `kubeadmConfigPatches` (and the
/// one default node written out when there were none).
#[test]
fn it_keeps_everything_the_user_wrote() {
    for (file, text) in yaml_files("fixtures/valid") {
        let before = load(&text).expect("fixture");
        let after = make_crio_ready(before.clone()).expect("ready");
        let mut stripped = after.clone();
        let written_nodes = if before.nodes.is_empty() {
            vec![Node::new(Role::ControlPlane)]
        } else {
            before.nodes.clone()
        };
        for (node, original) in stripped.nodes.iter_mut().zip(&written_nodes) {
            let (kept, added) = node
                .kubeadm_config_patches
                .split_at(original.kubeadm_config_patches.len());
            assert_eq!(kept, original.kubeadm_config_patches, "{file}");
            assert!(
                added.iter().all(|p| *p == init() || *p == join()),
                "{file}: added {added:?}"
            );
            node.kubeadm_config_patches = kept.to_vec();
        }
        assert_eq!(stripped.nodes, written_nodes, "{file}");
        stripped.nodes = before.nodes.clone();
        assert_eq!(stripped, before, "{file}");
    }
}

#[test]
fn control_planes_get_init_and_join_workers_join() {
    let cluster =
        ready("nodes:\n  - role: control-plane\n  - role: worker\n  - {}\n").expect("ready");
    let patches: Vec<&Vec<String>> = cluster
        .nodes
        .iter()
        .map(|n| &n.kubeadm_config_patches)
        .collect();
    // A node without a role is a control-plane node.
    assert_eq!(
        patches,
        [&vec![init(), join()], &vec![join()], &vec![init(), join()]]
    );
}

#[test]
fn no_nodes_become_one_explicit_control_plane() {
    let cluster = ready("name: solo\n").expect("ready");
    assert_eq!(
        cluster.nodes,
        [Node {
            role: Some(Role::ControlPlane),
            kubeadm_config_patches: vec![init(), join()],
            ..Node::default()
        }]
    );
    assert_eq!(cluster.name.as_deref(), Some("solo"));
}

#[test]
fn a_cluster_level_patch_covers_every_node() {
    let cluster = ready(
        "kubeadmConfigPatches:
  - |
    kind: JoinConfiguration
    nodeRegistration:
      criSocket: unix:///run/crio/crio.sock
nodes:
  - role: control-plane
  - role: worker
  - role: worker
",
    )
    .expect("ready");
    // JoinConfiguration is covered everywhere; only InitConfiguration was missing.
    assert_eq!(cluster.nodes[0].kubeadm_config_patches, [init()]);
    assert!(cluster.nodes[1].kubeadm_config_patches.is_empty());
    assert!(cluster.nodes[2].kubeadm_config_patches.is_empty());
}

#[test]
fn every_spelling_of_the_crio_socket_counts() {
    for socket in cluster_config::CRIO_SOCKET_SPELLINGS {
        let cluster = ready(&format!(
            "nodes:
  - role: worker
    kubeadmConfigPatches:
      - |
        kind: JoinConfiguration
        nodeRegistration:
          criSocket: {socket}
  - role: control-plane
    kubeadmConfigPatches:
      - |
        kind: InitConfiguration
        nodeRegistration:
          criSocket: \"{socket}\"
        ---
        kind: JoinConfiguration
        nodeRegistration:
          criSocket: {socket}
"
        ))
        .expect("ready");
        assert_eq!(cluster.nodes[0].kubeadm_config_patches.len(), 1, "{socket}");
        assert_eq!(cluster.nodes[1].kubeadm_config_patches.len(), 1, "{socket}");
    }
}

/// A patch limited to one kubeadm API version does not help the other.
#[test]
fn a_versioned_patch_covers_only_its_version() {
    let cluster = ready(
        "nodes:
  - role: worker
    kubeadmConfigPatches:
      - |
        apiVersion: kubeadm.k8s.io/v1beta3
        kind: JoinConfiguration
        nodeRegistration:
          criSocket: unix:///var/run/crio/crio.sock
",
    )
    .expect("ready");
    assert_eq!(cluster.nodes[0].kubeadm_config_patches.len(), 2);
    assert_eq!(cluster.nodes[0].kubeadm_config_patches[1], join());
}

#[test]
fn a_json6902_patch_setting_the_crio_socket_counts() {
    let cluster = ready(
        "nodes:
  - role: worker
    kubeadmConfigPatchesJSON6902:
      - kind: JoinConfiguration
        patch: |
          - op: add
            path: /nodeRegistration
            value: {criSocket: unix:///var/run/crio/crio.sock, taints: []}
",
    )
    .expect("ready");
    assert!(cluster.nodes[0].kubeadm_config_patches.is_empty());
}

fn conflict(yaml: &str) -> (String, String, String) {
    match ready(yaml) {
        Err(Error::CriSocketConflict {
            location,
            field,
            found,
        }) => (location, field, found),
        other => panic!("not a conflict: {other:?}"),
    }
}

#[test]
fn another_socket_is_a_conflict_naming_the_patch() {
    let (location, field, found) = conflict(
        "nodes:
  - role: control-plane
  - role: worker
    kubeadmConfigPatches:
      - |
        kind: ClusterConfiguration
      - |
        kind: JoinConfiguration
        nodeRegistration:
          criSocket: unix:///run/containerd/containerd.sock
",
    );
    assert_eq!(location, "nodes[1].kubeadmConfigPatches[1]");
    assert_eq!(field, "JoinConfiguration nodeRegistration.criSocket");
    assert_eq!(found, "\"unix:///run/containerd/containerd.sock\"");
    let message = ready(
        "kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      criSocket: /run/containerd/containerd.sock
",
    )
    .expect_err("conflict")
    .to_string();
    assert_eq!(
        message,
        format!(
            "kubeadmConfigPatches[0] sets InitConfiguration nodeRegistration.criSocket to \
             \"/run/containerd/containerd.sock\", but a CRI-O node needs {CRIO_SOCKET}; \
             remove that setting or set it to the CRI-O socket"
        )
    );
}

#[test]
fn conflicts_are_found_in_every_kind_of_patch() {
    // A versioned patch still says what its author wants.
    let (location, _, _) = conflict(
        "kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    ---
    apiVersion: kubeadm.k8s.io/v1beta4
    kind: JoinConfiguration
    nodeRegistration:
      criSocket: unix:///run/containerd/containerd.sock
",
    );
    assert_eq!(location, "kubeadmConfigPatches[0] (document 2)");

    // Deleting the socket (merge-patch null) leaves kubeadm guessing.
    let (_, _, found) = conflict(
        "nodes:
  - kubeadmConfigPatches:
      - |
        kind: InitConfiguration
        nodeRegistration:
          criSocket: null
",
    );
    assert_eq!(found, "null (which removes it)");

    let (location, field, found) = conflict(
        "kubeadmConfigPatchesJSON6902:
  - group: kubeadm.k8s.io
    version: v1beta3
    kind: JoinConfiguration
    patch: |
      - op: replace
        path: /nodeRegistration/criSocket
        value: unix:///run/containerd/containerd.sock
",
    );
    assert_eq!(location, "kubeadmConfigPatchesJSON6902[0]");
    assert_eq!(field, "JoinConfiguration nodeRegistration.criSocket");
    assert_eq!(found, "\"unix:///run/containerd/containerd.sock\"");

    let (location, _, found) = conflict(
        "nodes:
  - role: worker
    kubeadmConfigPatchesJSON6902:
      - kind: JoinConfiguration
        patch: |
          - op: remove
            path: /nodeRegistration/criSocket
",
    );
    assert_eq!(location, "nodes[0].kubeadmConfigPatchesJSON6902[0]");
    assert_eq!(found, "nothing (it removes the setting)");

    let (_, field, _) = conflict(
        "kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
",
    );
    assert_eq!(field, "KubeletConfiguration containerRuntimeEndpoint");
}

/// A kubelet pointed at CRI-O is fine, but is no kubeadm criSocket patch.
#[test]
fn a_kubelet_endpoint_for_crio_is_accepted_but_covers_nothing() {
    let cluster = ready(&format!(
        "kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    containerRuntimeEndpoint: {CRIO_SOCKET}
"
    ))
    .expect("ready");
    assert_eq!(cluster.nodes[0].kubeadm_config_patches, [init(), join()]);
}

#[test]
fn an_unreadable_patch_is_an_error_naming_it() {
    let error = ready(
        "nodes:
  - role: worker
  - role: worker
    kubeadmConfigPatches:
      - |
        kind: JoinConfiguration
        nodeRegistration: {criSocket: [
",
    )
    .expect_err("unreadable");
    let Error::Patch { location, message } = &error else {
        panic!("not a patch error: {error:?}");
    };
    assert_eq!(location, "nodes[1].kubeadmConfigPatches[0]");
    assert!(
        message.contains("cannot read it as a kubeadm config merge patch"),
        "{message}"
    );
    assert!(message.contains("line "), "{message}");

    let error = make_crio_ready(Cluster {
        kubeadm_config_patches_json6902: vec![PatchJson6902 {
            kind: "JoinConfiguration".to_owned(),
            patch: "op: add\n".to_owned(),
            ..PatchJson6902::default()
        }],
        ..Cluster::default()
    })
    .expect_err("not a list");
    assert!(
        error
            .to_string()
            .starts_with("kubeadmConfigPatchesJSON6902[0]: a JSON 6902 patch must be a list"),
        "{error}"
    );
}

/// The configs kind loads but cannot create, because it cannot read a
/// kubeadm patch: file in `tests/fixtures/bad-patches/` and the patch.
const BAD_PATCHES: &[(&str, &str)] = &[
    (
        "json6902-not-a-list.yaml",
        "kubeadmConfigPatchesJSON6902[0]",
    ),
    (
        "merge-kind-not-a-string.yaml",
        "kubeadmConfigPatches[0] (document 2)",
    ),
    ("merge-not-a-mapping.yaml", "kubeadmConfigPatches[0]"),
    ("merge-not-yaml.yaml", "nodes[1].kubeadmConfigPatches[0]"),
];

/// They load, as they do in kind, but are refused here before kind would
/// create any node, naming the patch and saying what kind would do.
#[test]
fn configs_with_patches_kind_cannot_read_are_refused() {
    let files = yaml_files("fixtures/bad-patches");
    assert_eq!(
        files
            .iter()
            .map(|(file, _)| file.as_str())
            .collect::<Vec<_>>(),
        BAD_PATCHES
            .iter()
            .map(|(file, _)| *file)
            .collect::<Vec<_>>(),
        "BAD_PATCHES and tests/fixtures/bad-patches differ"
    );
    for ((file, text), (_, patch)) in files.iter().zip(BAD_PATCHES) {
        let cluster = load(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let error = make_crio_ready(cluster).expect_err(file);
        let Error::Patch { location, .. } = &error else {
            panic!("{file}: not a patch error: {error:?}");
        };
        assert_eq!(location, patch, "{file}");
        let message = error.to_string();
        assert!(
            message.contains("kind would create the nodes, then fail on it"),
            "{file}: {message}"
        );
    }
}

/// kind reads patches leniently (go-yaml v2): a key given twice counts
/// with its last value, and a `null` document or JSON 6902 patch is empty.
#[test]
fn patches_are_read_as_kind_reads_them() {
    let cluster = ready(&format!(
        "nodes:
  - role: worker
    kubeadmConfigPatches:
      - |
        kind: JoinConfiguration
        nodeRegistration:
          criSocket: unix:///run/containerd/containerd.sock
        nodeRegistration:
          criSocket: {CRIO_SOCKET}
      - \"null\"
    kubeadmConfigPatchesJSON6902:
      - kind: JoinConfiguration
        patch: \"null\"
"
    ))
    .expect("ready");
    assert_eq!(cluster.nodes[0].kubeadm_config_patches.len(), 2);

    // The other way round, the last value is a conflict.
    let (_, _, found) = conflict(&format!(
        "nodes:
  - role: worker
    kubeadmConfigPatches:
      - |
        kind: JoinConfiguration
        nodeRegistration:
          criSocket: {CRIO_SOCKET}
        nodeRegistration:
          criSocket: unix:///run/containerd/containerd.sock
"
    ));
    assert_eq!(found, "\"unix:///run/containerd/containerd.sock\"");
}

/// Patches for other objects, comments and empty documents are left alone.
#[test]
fn unrelated_patches_are_ignored() {
    let cluster = ready(
        "nodes:
  - role: worker
    kubeadmConfigPatches:
      - |
        # nothing here
      - |
        kind: JoinConfiguration
        discovery:
          timeout: 5m
        ---
      - |
        kind: KubeProxyConfiguration
        mode: ipvs
",
    )
    .expect("ready");
    assert_eq!(cluster.nodes[0].kubeadm_config_patches.len(), 4);
    assert_eq!(cluster.nodes[0].kubeadm_config_patches[3], join());
}
