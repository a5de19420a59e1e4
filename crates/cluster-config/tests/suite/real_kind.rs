//! Every config the tests hold (fixtures and goldens) and the project's
//! `configs/kind-crio.yaml`, read by real kind and by [`cluster_config::load`]:
//! both accept it or both refuse it, and then both name the same problem.
//!
//! kind has no command that only validates, so this runs `kind create
//! cluster --config FILE` and stops it right after validation. Its steps
//! (`pkg/cluster/provider.go` `Create`, `pkg/cluster/internal/create/create.go`
//! `Cluster`) are, in order:
//!
//! 1. read, decode and default the file (`encoding.Load`, in the `--config`
//!    option), before any container engine call;
//! 2. `validateProvider`: `docker info`;
//! 3. `alreadyExists`: `docker ps -a --filter label=...` for the cluster's nodes;
//! 4. `Config.Validate()`, then "Creating cluster";
//! 5. `Provision`: `docker inspect --type=image` for each node image, then
//!    `docker network ls` to set up its network: the first step towards
//!    changing anything.
//!
//! kind runs with a `PATH` that holds only `tests/stand-in-engine.sh` as
//! `docker`, which answers 2, 3 and the image check and refuses everything
//! else. So a config kind accepts gets as far as `network ls`, and one it
//! refuses stops before 2 (read) or before 5 (validation), with kind's own
//! message. No container engine is reached, so nothing can be created and
//! Docker's state does not matter. The environment is cleared
//! (`KIND_CLUSTER_NAME` would rename the cluster), `--retain` skips kind's
//! clean-up after a failure (which lists nodes and edits a kubeconfig), and
//! `HOME` and `--kubeconfig` point into a scratch directory.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cluster_config::{Error, load};

use crate::support::tests_dir;

/// What one program made of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused { message: String, reading: bool },
}

impl Verdict {
    fn accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }
}

/// Every config, with whether kind should accept it (by its directory).
fn configs() -> Vec<(String, PathBuf, bool)> {
    let mut all = Vec::new();
    for (dir, accepted) in [
        ("fixtures/valid", true),
        ("fixtures/bad-patches", true),
        ("fixtures/invalid", false),
        ("golden", true),
    ] {
        for (file, _) in crate::support::yaml_files(dir) {
            all.push((
                format!("{dir}/{file}"),
                tests_dir().join(dir).join(file),
                accepted,
            ));
        }
    }
    let project = tests_dir().join("../../../configs/kind-crio.yaml");
    all.push(("configs/kind-crio.yaml".to_owned(), project, true));
    all
}

/// kind's `--config`, with the stand-in engine, in `scratch`.
fn kind_verdict(kind: &Path, engine_dir: &Path, scratch: &Path, config: &Path) -> Verdict {
    let log = scratch.join("engine-calls");
    std::fs::write(&log, "").expect("reset the engine log");
    let kubeconfig = scratch.join("kubeconfig");
    let output = Command::new(kind)
        .args(["create", "cluster", "--retain", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", engine_dir)
        .env("HOME", scratch)
        .env("KIND_EXPERIMENTAL_PROVIDER", "docker")
        .env("STAND_IN_ENGINE_LOG", &log)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kind.display()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let shown = || format!("{}:\n{stderr}", config.display());
    assert!(
        !output.status.success(),
        "kind succeeded without a container engine: {}",
        shown()
    );
    assert!(!kubeconfig.exists(), "kind wrote a kubeconfig: {}", shown());

    let calls = std::fs::read_to_string(&log).expect("read the engine log");
    let calls: Vec<&str> = calls.lines().collect();
    let verbs: Vec<&str> = calls
        .iter()
        .map(|call| call.split(' ').next().unwrap_or(""))
        .collect();
    let created = stderr.contains("Creating cluster");
    match verbs.as_slice() {
        [] | ["info", "ps"] => {
            let (_, message) = stderr
                .split_once("ERROR: failed to create cluster: ")
                .unwrap_or_else(|| panic!("kind stopped without its error: {}", shown()));
            assert!(!created, "kind went on after refusing: {}", shown());
            Verdict::Refused {
                message: message.trim_end().to_owned(),
                reading: verbs.is_empty(),
            }
        }
        ["info", "ps", images @ .., "network"]
            if !images.is_empty()
                && images.iter().all(|v| *v == "inspect")
                && calls.last().is_some_and(|c| c.starts_with("network ls ")) =>
        {
            assert!(created, "kind did not say it creates: {}", shown());
            Verdict::Accepted
        }
        _ => panic!(
            "kind called the engine in an order this test does not know ({calls:?}): {}",
            shown()
        ),
    }
}

fn our_verdict(text: &str) -> Verdict {
    match load(text) {
        Ok(_) => Verdict::Accepted,
        Err(error) => Verdict::Refused {
            reading: !matches!(error, Error::Invalid(_)),
            message: error.to_string(),
        },
    }
}

/// For each refused fixture, each problem in kind's words and in ours.
const SAME_PROBLEM: &[(&str, &[(&str, &str)])] = &[
    (
        "api-server-port-out-of-range.yaml",
        &[(
            "invalid apiServerPort: invalid port number: -2",
            "networking.apiServerPort: -2 is not a valid port",
        )],
    ),
    (
        "bad-cidr.yaml",
        &[(
            "invalid pod subnet failed to parse cidr value:\"10.244.0.0/33\"",
            "networking.podSubnet: \"10.244.0.0/33\" is not a CIDR",
        )],
    ),
    (
        "bad-indent.yaml",
        &[
            ("field role not found", "unknown field `role`"),
            ("line 10:", "line 10,"),
        ],
    ),
    (
        "bad-listen-address.yaml",
        &[(
            "invalid listen address: localhost",
            "listenAddress: \"localhost\" is not an IP address",
        )],
    ),
    (
        "bad-name.yaml",
        &[(
            "'My_Cluster' is not a valid cluster name",
            "\"My_Cluster\" is not a valid cluster name",
        )],
    ),
    (
        "bad-protocol.yaml",
        &[(
            "Unknown PortMappingProtocol: \"HTTP\"",
            "protocol: unknown variant `http`",
        )],
    ),
    (
        "bad-proxy-mode.yaml",
        &[(
            "invalid kubeProxyMode: userspace",
            "kubeProxyMode: unknown variant `userspace`",
        )],
    ),
    (
        "bad-role.yaml",
        &[(
            "\"master\" is not a valid node role",
            "role: unknown variant `master`",
        )],
    ),
    (
        "bogus-field.yaml",
        &[
            (
                "field nOtAReaLFielD not found",
                "unknown field `nOtAReaLFielD`",
            ),
            ("line 10:", "line 10,"),
        ],
    ),
    (
        "duplicate-key.yaml",
        &[
            (
                "mapping key \"name\" already defined",
                "\"name\" appears twice",
            ),
            ("line 6:", "line 6,"),
        ],
    ),
    (
        "duplicate-port-any-case.yaml",
        &[(
            "already configured: 127.0.0.1:5353/UDP",
            "hostPort 5353/UDP on 127.0.0.1 overlaps",
        )],
    ),
    (
        "duplicate-port-ipv4-mapped.yaml",
        &[(
            "already configured: 127.0.0.1:8080/",
            "hostPort 8080 on ::ffff:127.0.0.1 (the same as 127.0.0.1) overlaps",
        )],
    ),
    (
        "duplicate-port-tcp.yaml",
        &[(
            "already configured: :::8080/TCP",
            "hostPort 8080/TCP on :: (the same as 0.0.0.0) overlaps",
        )],
    ),
    (
        "duplicate-port.yaml",
        &[(
            "already configured: 0.0.0.0:80/",
            "hostPort 80 on 0.0.0.0 overlaps",
        )],
    ),
    (
        "ipv4-mapped-cidr-for-ipv6.yaml",
        &[
            (
                "invalid pod subnet expected IPv6 CIDR",
                "networking.podSubnet: \"::ffff:10.244.0.0/112\" is an IPv4 CIDR",
            ),
            ("for IPv6 family", "ipFamily is ipv6"),
        ],
    ),
    (
        "missing-apiversion.yaml",
        &[("unknown apiVersion:", "apiVersion is missing")],
    ),
    (
        "misspelt-field.yaml",
        &[
            (
                "field imag not found",
                "nodes[1].imag: unknown field `imag`",
            ),
            ("line 6:", "line 6,"),
        ],
    ),
    (
        "no-control-plane.yaml",
        &[(
            "must have at least one control-plane node",
            "kind needs at least one node with `role: control-plane`",
        )],
    ),
    (
        "not-a-mapping.yaml",
        &[(
            "line 1: cannot unmarshal !!seq",
            "expected mapping start at line 1",
        )],
    ),
    ("not-yaml.yaml", &[("yaml: line 4:", "at line 4,")]),
    (
        "port-not-a-number.yaml",
        &[
            (
                "cannot unmarshal !!str `http` into int32",
                "containerPort: expected a port number",
            ),
            ("line 6:", "line 6,"),
        ],
    ),
    (
        "port-out-of-range.yaml",
        &[(
            "invalid hostPort: invalid port number: 70000",
            "hostPort: 70000 is not a valid port",
        )],
    ),
    (
        "several-problems.yaml",
        &[
            (
                "'UPPER' is not a valid cluster name",
                "name: \"UPPER\" is not a valid cluster name",
            ),
            (
                "failed to parse cidr value:\"not-a-cidr\"",
                "networking.podSubnet: \"not-a-cidr\" is not a CIDR",
            ),
            (
                "must have at least one control-plane node",
                "nodes: the only node is a worker",
            ),
        ],
    ),
    (
        "wrong-apiversion.yaml",
        &[(
            "unknown apiVersion: kind.x-k8s.io/v1alpha3",
            "apiVersion \"kind.x-k8s.io/v1alpha3\" is not supported",
        )],
    ),
    (
        "wrong-family-cidr.yaml",
        &[(
            "invalid service subnet expected IPv4 CIDR for IPv4 family",
            "networking.serviceSubnet: \"fd00:10:96::/112\" is an IPv6 CIDR, but ipFamily is ipv4",
        )],
    ),
    (
        "wrong-kind.yaml",
        &[("unknown kind Node", "kind \"Node\" is not supported")],
    ),
];

#[test]
fn real_kind_accepts_and_refuses_what_we_do() {
    let test = "real_kind_accepts_and_refuses_what_we_do";
    let Some(tools) = testkit::tools::require(test, &["kind"]) else {
        return;
    };
    let kind = &tools[0];
    let scratch = testkit::TempDir::new("real-kind");
    let engine_dir = scratch.path().join("engine");
    std::fs::create_dir(&engine_dir).expect("create the engine directory");
    let engine = engine_dir.join("docker");
    std::fs::write(&engine, include_str!("../stand-in-engine.sh")).expect("write the engine");
    std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o755))
        .expect("make the engine executable");

    let mut problems = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for (name, path, should_accept) in configs() {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let kind_says = kind_verdict(kind, &engine_dir, scratch.path(), &path);
        let we_say = our_verdict(&text);
        if kind_says.accepted() {
            accepted += 1;
        } else {
            refused += 1;
        }
        if kind_says.accepted() != should_accept {
            problems.push(format!(
                "{name}: kind {}, but it is filed as {}",
                describe(&kind_says),
                if should_accept { "accepted" } else { "refused" },
            ));
        }
        match (&kind_says, &we_say) {
            (Verdict::Accepted, Verdict::Accepted) => {}
            (
                Verdict::Refused {
                    message: theirs,
                    reading,
                },
                Verdict::Refused { message: ours, .. },
            ) => {
                if *reading && !matches!(we_say, Verdict::Refused { reading: true, .. }) {
                    problems.push(format!(
                        "{name}: kind cannot read it ({theirs}), but we read it and refused it later ({ours})"
                    ));
                }
                problems.extend(same_problem(&name, theirs, ours));
            }
            _ => problems.push(format!(
                "{name}: kind {}, we {}",
                describe(&kind_says),
                describe(&we_say)
            )),
        }
    }
    // The comparison means something only if kind did both.
    assert!(
        accepted >= 20 && refused >= 20,
        "kind accepted {accepted} and refused {refused} configs"
    );
    assert!(
        problems.is_empty(),
        "{} disagreements with kind:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Accepted => "accepted it".to_owned(),
        Verdict::Refused { message, .. } => format!("refused it: {message}"),
    }
}

/// Each problem of `SAME_PROBLEM` named in both messages.
fn same_problem(name: &str, theirs: &str, ours: &str) -> Vec<String> {
    let Some(file) = name.strip_prefix("fixtures/invalid/") else {
        return vec![format!("{name}: refused, but not filed as invalid")];
    };
    let Some((_, pairs)) = SAME_PROBLEM.iter().find(|(f, _)| *f == file) else {
        return vec![format!("{name}: no entry in SAME_PROBLEM")];
    };
    pairs
        .iter()
        .filter(|(kind_words, our_words)| !theirs.contains(kind_words) || !ours.contains(our_words))
        .map(|(kind_words, our_words)| {
            format!(
                "{name}: not the same problem: kind should say {kind_words:?} ({theirs}), we {our_words:?} ({ours})"
            )
        })
        .collect()
}

/// Every entry of `SAME_PROBLEM` is an invalid fixture.
#[test]
fn same_problem_names_only_invalid_fixtures() {
    let files = crate::support::yaml_files("fixtures/invalid");
    for (file, _) in SAME_PROBLEM {
        assert!(
            files.iter().any(|(f, _)| f == file),
            "SAME_PROBLEM names {file}, which is not in tests/fixtures/invalid"
        );
    }
}
