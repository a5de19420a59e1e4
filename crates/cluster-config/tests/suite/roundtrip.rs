//! Property: for any model, writing it and reading it back gives the same
//! model, and writing that gives the same text. Strings are drawn both from
//! everything Unicode allows and from YAML's troublemakers (`yes`, `1.0`,
//! `- x`, `# y`, `: `, leading spaces, trailing blank lines), so the quoting
//! and block-scalar choices of the writer are what is under test.

use std::collections::BTreeMap;

use cluster_config::{
    Cluster, IpFamily, KubeProxyMode, Mount, MountPropagation, Networking, Node, PatchJson6902,
    PortMapping, Protocol, Role, decode, encode,
};
use proptest::collection::{btree_map, vec};
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

/// One-line strings that YAML might read as something else.
fn tricky_word() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "yes",
            "No",
            "on",
            "off",
            "y",
            "~",
            "null",
            "true",
            "1",
            "0x1F",
            "0755",
            "1.0",
            "1e3",
            ".inf",
            "-.nan",
            "1:20",
            "2024-01-02",
            "- a",
            "? b",
            ": c",
            "#x",
            "a #b",
            "a: b",
            "[x]",
            "{y}",
            "&anchor",
            "*alias",
            "!tag",
            "|",
            ">",
            "'",
            "\"",
            "@",
            "`",
            "%",
            "<<",
            "---",
            "...",
            " lead",
            "trail ",
            "tab\there",
            "127.0.0.1",
            "::1",
            "unix:///var/run/crio/crio.sock",
            "ünïcødé",
            "😀",
        ])
        .prop_map(str::to_owned),
        proptest::string::string_regex(r"[a-zA-Z0-9 :#\-_./'\x22!&*?|>%@`{}\[\],]{0,16}")
            .expect("valid regex"),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![3 => tricky_word(), 1 => any::<String>()]
}

/// Multi-line strings: kubeadm patches and whatever else people paste into them.
fn multiline() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        proptest::string::string_regex(r"( {0,4})[a-zA-Z0-9 :#\-_./'\x22|>{}\[\]]{0,30}( ?)")
            .expect("valid regex"),
        tricky_word(),
    ];
    (vec(line, 1..6), 0..3usize).prop_map(|(lines, trailing)| {
        let mut s = lines.join("\n");
        s.push_str(&"\n".repeat(trailing));
        s
    })
}

fn patch_text() -> impl Strategy<Value = String> {
    prop_oneof![3 => multiline(), 1 => text()]
}

fn json6902() -> impl Strategy<Value = PatchJson6902> {
    (text(), text(), text(), patch_text()).prop_map(|(group, version, kind, patch)| PatchJson6902 {
        group,
        version,
        kind,
        patch,
    })
}

fn mount() -> impl Strategy<Value = Mount> {
    (
        of(text()),
        of(text()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(select(MountPropagation::ALL)),
    )
        .prop_map(
            |(container_path, host_path, read_only, selinux_relabel, propagation)| Mount {
                container_path,
                host_path,
                read_only,
                selinux_relabel,
                propagation,
            },
        )
}

fn port_mapping() -> impl Strategy<Value = PortMapping> {
    (
        of(any::<i32>()),
        of(-1..=65535i32),
        of(text()),
        of(select(Protocol::ALL)),
    )
        .prop_map(
            |(container_port, host_port, listen_address, protocol)| PortMapping {
                container_port,
                host_port,
                listen_address,
                protocol,
            },
        )
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..3)
}

fn node() -> impl Strategy<Value = Node> {
    (
        of(select(Role::ALL)),
        of(text()),
        labels(),
        vec(mount(), 0..3),
        vec(port_mapping(), 0..3),
        vec(patch_text(), 0..3),
        vec(json6902(), 0..2),
    )
        .prop_map(
            |(
                role,
                image,
                labels,
                extra_mounts,
                extra_port_mappings,
                kubeadm_config_patches,
                kubeadm_config_patches_json6902,
            )| Node {
                role,
                image,
                labels,
                extra_mounts,
                extra_port_mappings,
                kubeadm_config_patches,
                kubeadm_config_patches_json6902,
            },
        )
}

fn networking() -> impl Strategy<Value = Networking> {
    (
        of(select(IpFamily::ALL)),
        of(any::<i32>()),
        of(text()),
        of(text()),
        of(text()),
        of(any::<bool>()),
        of(select(KubeProxyMode::ALL)),
        of(vec(text(), 0..3)),
    )
        .prop_map(
            |(
                ip_family,
                api_server_port,
                api_server_address,
                pod_subnet,
                service_subnet,
                disable_default_cni,
                kube_proxy_mode,
                dns_search,
            )| Networking {
                ip_family,
                api_server_port,
                api_server_address,
                pod_subnet,
                service_subnet,
                disable_default_cni,
                kube_proxy_mode,
                dns_search,
            },
        )
}

fn cluster() -> impl Strategy<Value = Cluster> {
    (
        of(text()),
        vec(node(), 0..4),
        of(networking()),
        btree_map(text(), any::<bool>(), 0..3),
        labels(),
        vec(patch_text(), 0..3),
        vec(json6902(), 0..2),
        vec(patch_text(), 0..2),
        vec(patch_text(), 0..2),
    )
        .prop_map(
            |(
                name,
                nodes,
                networking,
                feature_gates,
                runtime_config,
                kubeadm_config_patches,
                kubeadm_config_patches_json6902,
                containerd_config_patches,
                containerd_config_patches_json6902,
            )| Cluster {
                name,
                nodes,
                networking,
                feature_gates,
                runtime_config,
                kubeadm_config_patches,
                kubeadm_config_patches_json6902,
                containerd_config_patches,
                containerd_config_patches_json6902,
                ..Cluster::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_the_identity(cluster in cluster()) {
        let yaml = encode(&cluster).expect("encode");
        let back = decode(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(&back, &cluster, "{}", yaml);
        prop_assert_eq!(encode(&back).expect("encode"), yaml);
    }

    /// Multi-line strings come out as literal blocks whenever YAML allows it,
    /// which is what keeps patches readable.
    #[test]
    fn patches_are_literal_blocks(lines in vec("[a-z]{1,8}(: [a-z0-9]{1,8})?", 2..5)) {
        let patch = format!("{}\n", lines.join("\n"));
        let cluster = Cluster {
            kubeadm_config_patches: vec![patch.clone()],
            ..Cluster::default()
        };
        let yaml = encode(&cluster).expect("encode");
        let indented: String = patch.lines().map(|l| format!("    {l}\n")).collect();
        prop_assert!(yaml.contains(&format!("kubeadmConfigPatches:\n  - |\n{indented}")), "{}", yaml);
    }
}
