//! Configs modelled on kind's loader tests (`pkg/internal/apis/config/encoding/testdata`).
//!
//! Valid ones load, and survive being written and read again with nothing
//! lost; so do those in `bad-patches/`, which kind loads too (it fails on
//! their patches only when it creates the cluster); invalid ones fail with a
//! message that names the problem.

use cluster_config::{Error, decode, encode, load};

use crate::support::{as_kind_reads, tree, yaml_files};

/// Including those whose patches kind cannot read: it loads them all the same.
#[test]
fn valid_configs_load_and_round_trip_losslessly() {
    let files = yaml_files("fixtures/valid");
    assert!(files.len() >= 10, "fixtures missing: {files:?}");
    for (file, text) in files.into_iter().chain(yaml_files("fixtures/bad-patches")) {
        let cluster = load(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let written = encode(&cluster).unwrap_or_else(|e| panic!("{file}: {e}"));
        // What the user wrote, field by field, is what we write, spelt as kind reads it.
        assert_eq!(
            tree(&written),
            as_kind_reads(tree(&text)),
            "{file}: writing it changed what it says:\n{written}"
        );
        // And we read our own output back as the same model, and write it the same way.
        let again = decode(&written).unwrap_or_else(|e| panic!("{file}: {e}\n{written}"));
        assert_eq!(again, cluster, "{file}");
        assert_eq!(encode(&again).expect("encode"), written, "{file}");
    }
}

/// File name and fragments its error message must contain.
const INVALID: &[(&str, &[&str])] = &[
    (
        "bogus-field.yaml",
        &[
            "nodes[1].extraPortMappings[0].nOtAReaLFielD",
            "unknown field `nOtAReaLFielD`",
            "expected one of containerPort, hostPort, listenAddress, protocol",
            "line 10",
        ],
    ),
    (
        "misspelt-field.yaml",
        &[
            "nodes[1].imag: unknown field `imag`",
            "image",
            "line 6, column 5",
        ],
    ),
    (
        // kind's "bad indentation" case: a node indented into the port mappings.
        "bad-indent.yaml",
        &["nodes[1].extraPortMappings[1].role: unknown field `role`"],
    ),
    (
        "wrong-apiversion.yaml",
        &[
            "apiVersion \"kind.x-k8s.io/v1alpha3\" is not supported",
            "apiVersion: kind.x-k8s.io/v1alpha4",
        ],
    ),
    (
        "missing-apiversion.yaml",
        &[
            "apiVersion is missing",
            "apiVersion: kind.x-k8s.io/v1alpha4",
        ],
    ),
    (
        "wrong-kind.yaml",
        &["kind \"Node\" is not supported", "kind: Cluster"],
    ),
    ("not-yaml.yaml", &["not a valid kind config", "line 4"]),
    (
        "not-a-mapping.yaml",
        &["not a valid kind config", "expected mapping", "line 1"],
    ),
    (
        "duplicate-key.yaml",
        &[
            "not a valid kind config",
            "\"name\" appears twice",
            "line 6",
        ],
    ),
    (
        "no-control-plane.yaml",
        &["nodes: all 2 nodes are workers", "role: control-plane"],
    ),
    (
        "bad-role.yaml",
        &[
            "nodes[0].role: unknown variant `master`",
            "control-plane, worker",
        ],
    ),
    (
        "bad-name.yaml",
        &[
            "name: \"My_Cluster\" is not a valid cluster name",
            "^[a-z0-9.-]+$",
        ],
    ),
    (
        "bad-cidr.yaml",
        &[
            "networking.podSubnet: \"10.244.0.0/33\" is not a CIDR",
            "at most 32",
        ],
    ),
    (
        "wrong-family-cidr.yaml",
        &[
            "networking.serviceSubnet: \"fd00:10:96::/112\" is an IPv6 CIDR",
            "ipv4 (the default)",
        ],
    ),
    (
        "bad-proxy-mode.yaml",
        &[
            "networking.kubeProxyMode: unknown variant `userspace`",
            "iptables, ipvs, nftables, none",
        ],
    ),
    (
        "port-out-of-range.yaml",
        &[
            "nodes[0].extraPortMappings[0].hostPort: 70000 is not a valid port",
            "1-65535",
        ],
    ),
    (
        "api-server-port-out-of-range.yaml",
        &["networking.apiServerPort: -2 is not a valid port", "-1"],
    ),
    (
        "port-not-a-number.yaml",
        &[
            "nodes[0].extraPortMappings[0].containerPort: expected a port number",
            "line 6",
        ],
    ),
    (
        "duplicate-port.yaml",
        &[
            "nodes[0].extraPortMappings[1]: hostPort 80 on 0.0.0.0 overlaps extraPortMappings[0] (80 on 127.0.0.1)",
        ],
    ),
    (
        "bad-protocol.yaml",
        &[
            "nodes[0].extraPortMappings[0].protocol: unknown variant `http`",
            "TCP, UDP, SCTP",
            "line 7, column 19",
        ],
    ),
    (
        "duplicate-port-tcp.yaml",
        &[
            "nodes[0].extraPortMappings[1]: hostPort 8080/TCP on :: (the same as 0.0.0.0) overlaps extraPortMappings[0] (8080/TCP on 0.0.0.0)",
        ],
    ),
    (
        "duplicate-port-any-case.yaml",
        &[
            "nodes[0].extraPortMappings[1]: hostPort 5353/UDP on 127.0.0.1 overlaps extraPortMappings[0] (5353/UDP on 0.0.0.0)",
        ],
    ),
    (
        "duplicate-port-ipv4-mapped.yaml",
        &[
            "nodes[0].extraPortMappings[1]: hostPort 8080 on ::ffff:127.0.0.1 (the same as 127.0.0.1) overlaps extraPortMappings[0] (8080 on 127.0.0.1)",
        ],
    ),
    (
        "ipv4-mapped-cidr-for-ipv6.yaml",
        &[
            "networking.podSubnet: \"::ffff:10.244.0.0/112\" is an IPv4 CIDR",
            "prefix of 96 or more",
            "ipFamily is ipv6",
        ],
    ),
    (
        "bad-listen-address.yaml",
        &["nodes[0].extraPortMappings[0].listenAddress: \"localhost\" is not an IP address"],
    ),
    (
        "several-problems.yaml",
        &[
            "3 problems",
            "\n  name: \"UPPER\"",
            "\n  networking.podSubnet: \"not-a-cidr\"",
            "\n  nodes: the only node is a worker",
        ],
    ),
];

#[test]
fn invalid_configs_fail_naming_the_problem() {
    let files = yaml_files("fixtures/invalid");
    for (file, text) in &files {
        let Some((_, fragments)) = INVALID.iter().find(|(name, _)| name == file) else {
            panic!("tests/fixtures/invalid/{file} has no entry in INVALID");
        };
        let error = match load(text) {
            Ok(cluster) => panic!("{file} loaded: {cluster:?}"),
            Err(e) => e.to_string(),
        };
        for fragment in *fragments {
            assert!(
                error.contains(fragment),
                "{file}: the error does not mention {fragment:?}:\n{error}"
            );
        }
    }
    for (name, _) in INVALID {
        assert!(
            files.iter().any(|(file, _)| file == name),
            "INVALID names {name}, which is not in tests/fixtures/invalid"
        );
    }
}

/// Callers branch on the kind of failure, not on message text.
#[test]
fn errors_have_the_right_variant() {
    let read = |file: &str| {
        let (_, text) = yaml_files("fixtures/invalid")
            .into_iter()
            .find(|(name, _)| name == file)
            .expect("fixture");
        load(&text).expect_err(file)
    };
    assert!(matches!(read("not-yaml.yaml"), Error::Yaml { .. }));
    assert!(
        matches!(read("wrong-apiversion.yaml"), Error::ApiVersion { found: Some(v) } if v == "kind.x-k8s.io/v1alpha3")
    );
    assert!(matches!(
        read("missing-apiversion.yaml"),
        Error::ApiVersion { found: None }
    ));
    assert!(matches!(read("wrong-kind.yaml"), Error::Kind { found: Some(k) } if k == "Node"));
    assert!(
        matches!(read("bogus-field.yaml"), Error::Schema { path, .. } if path == "nodes[1].extraPortMappings[0].nOtAReaLFielD")
    );
    match read("several-problems.yaml") {
        Error::Invalid(violations) => {
            assert!(violations.has_path("name"));
            assert!(violations.has_path("networking.podSubnet"));
            assert!(violations.has_path("nodes"));
            assert_eq!(violations.0.len(), 3);
        }
        other => panic!("not Invalid: {other:?}"),
    }
}

#[test]
fn empty_input_is_a_missing_api_version() {
    for text in ["", "# only a comment\n", "---\n"] {
        assert_eq!(
            load(text),
            Err(Error::ApiVersion { found: None }),
            "{text:?}"
        );
    }
}

/// Go's YAML decoder reads a key without a value as an empty list or map;
/// writing drops it, as kind's `omitempty` does.
#[test]
fn null_collections_read_as_empty() {
    let cluster = load(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\nfeatureGates:\nkubeadmConfigPatches:\nnetworking:\n",
    )
    .expect("load");
    assert_eq!(cluster, cluster_config::Cluster::default());
    assert_eq!(
        encode(&cluster).expect("encode"),
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
    );
}

/// `dnsSearch: []` (no search domains) differs from no `dnsSearch` (the host's).
#[test]
fn an_empty_dns_search_is_kept() {
    let cluster =
        load("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  dnsSearch: []\n")
            .expect("load");
    let networking = cluster.networking.as_ref().expect("networking");
    assert_eq!(networking.dns_search, Some(Vec::new()));
    assert!(encode(&cluster).expect("encode").contains("dnsSearch: []"));
}
