//! kind clusters as e2e and load-image see them: a cluster's name, checked
//! once where it enters; whether kind already has a cluster of that name;
//! and a cluster's control-plane and worker node containers.

use std::fmt;

use anyhow::{Context as _, Result, bail};
use xshell::{Shell, cmd};

use crate::engine::Engine;
use crate::ui::Ui;

/// A kind cluster name that is also safe as one directory name: kind's own
/// rule (`^[a-z0-9.-]+$`, `pkg/internal/apis/config/validate.go`), and a
/// letter or digit first. Docker and podman name containers only so (kind
/// names the nodes `NAME-control-plane`, ...), and it keeps `.`, `..` and
/// names that read as options out of paths and command lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn parse(name: &str) -> Result<ClusterName> {
        let Some(first) = name.bytes().next() else {
            bail!("the cluster name is empty; give one such as kind-crio");
        };
        if let Some(bad) = name
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-'))
        {
            bail!(
                "{name:?} is not a kind cluster name: {bad:?} is not allowed; kind allows lower-case letters, digits, '.' and '-' (e.g. kind-crio)"
            );
        }
        if !first.is_ascii_alphanumeric() {
            bail!(
                "{name:?} is not a usable cluster name: it must start with a letter or digit (node containers are named after it, and it names a directory under target/kind-crio/e2e/)"
            );
        }
        Ok(ClusterName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the output of `kind get clusters` (one name a line; nothing, and
/// "No kind clusters found." on stderr, when there are none) lists `name`.
pub fn listed(kind_get_clusters: &str, name: &ClusterName) -> bool {
    kind_get_clusters.lines().any(|l| l.trim() == name.as_str())
}

/// Fails when kind already has a cluster called `name` on `engine`: e2e
/// must never create over, or delete, a cluster it did not make. Read-only.
pub fn ensure_absent(sh: &Shell, name: &ClusterName, engine: Engine) -> Result<()> {
    let provider = engine.to_string();
    let out = cmd!(sh, "kind get clusters")
        .env("KIND_EXPERIMENTAL_PROVIDER", &provider)
        .quiet()
        .ignore_status()
        .output()
        .context("cannot run `kind get clusters`: is kind installed? (cargo xtask doctor)")?;
    if !out.status.success() {
        bail!(
            "`KIND_EXPERIMENTAL_PROVIDER={provider} kind get clusters` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if listed(&String::from_utf8_lossy(&out.stdout), name) {
        bail!(
            "a kind cluster named {name} already exists ({provider}); e2e creates and deletes a cluster of its own: \
             pick another --name, or delete that one first (kind delete cluster --name {name})"
        );
    }
    // kind lists only the engine it is asked about, but every engine's
    // clusters share the kubeconfig: creating NAME writes the context
    // kind-NAME over any other, and deleting it removes that context. A
    // cluster of the same name on the other engine (or a context left behind)
    // is found here. Without kubectl there is nothing to ask; doctor says so.
    let context = format!("kind-{name}");
    if let Ok(out) = cmd!(sh, "kubectl config get-contexts --output name")
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .output()
        && out.status.success()
        && String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == context)
    {
        bail!(
            "the kubeconfig already has a context {context} (a kind cluster {name} on another engine, or a context \
             left behind): e2e would replace it and then delete it; pick another --name, or remove it first \
             (kind delete cluster --name {name} with that engine, or kubectl config delete-context {context})"
        );
    }
    Ok(())
}

/// The cluster's node containers, sorted: its control planes and workers,
/// as kind's own `load` and `export logs` pick them. `kind get nodes` also
/// lists the load balancer kind puts in front of several control planes,
/// which has no CRI-O, no preload and no skopeo.
pub fn nodes(sh: &Shell, name: &str, engine: Engine) -> Result<Vec<String>> {
    list_nodes(sh, None, name, engine)
}

/// As [`nodes`], showing each command with `-v` (a lookup outside any
/// plan step: load-image's resolution).
pub fn nodes_shown(sh: &Shell, ui: &Ui, name: &str, engine: Engine) -> Result<Vec<String>> {
    list_nodes(sh, Some(ui), name, engine)
}

fn list_nodes(sh: &Shell, ui: Option<&Ui>, name: &str, engine: Engine) -> Result<Vec<String>> {
    let cluster = format!("label=io.x-k8s.kind.cluster={name}");
    let names = "{{.Names}}";
    let mut nodes = Vec::new();
    for role in ["control-plane", "worker"] {
        let role = format!("label=io.x-k8s.kind.role={role}");
        // Two label filters: docker and podman both keep what matches both.
        let ps = || engine.ps(sh, &[cluster.clone(), role.clone()], names);
        let ps = match ui {
            Some(ui) => crate::shell::shown(ui, ps),
            None => ps(),
        };
        let out = ps
            .quiet()
            .read()
            .with_context(|| format!("cannot list the nodes of cluster {name} with {engine}"))?;
        nodes.extend(
            out.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    nodes.sort();
    Ok(nodes)
}

/// Where a run claims a cluster name (relative to the project root).
pub const CLAIMS_DIR: &str = "target/kind-crio/claims";

/// This run's claim on the cluster name `name`, held until dropped: two
/// runs of this checkout for one name would both find no such cluster, and
/// the one whose creation failed would then delete the other's. The lock
/// is the kernel's (released when the process ends, however it ends); the
/// empty file stays.
pub fn claim(name: &ClusterName) -> Result<std::fs::File> {
    claim_in(std::path::Path::new(CLAIMS_DIR), name)
}

fn claim_in(dir: &std::path::Path, name: &ClusterName) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.lock", name.as_str()));
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another kind-crio run is using cluster name {name} (it holds {}): wait for it, or pick another --name",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_name_is_claimed_by_one_run_at_a_time() {
        let dir = testkit::TempDir::new("cluster-claims");
        let name = ClusterName::parse("kc-claimed").unwrap();
        let first = claim_in(dir.path(), &name).expect("the first claim");
        let err = format!("{:#}", claim_in(dir.path(), &name).unwrap_err());
        assert!(
            err.contains("another kind-crio run is using cluster name kc-claimed"),
            "{err}"
        );
        let other = ClusterName::parse("kc-other").unwrap();
        claim_in(dir.path(), &other).expect("another name is free");
        drop(first);
        claim_in(dir.path(), &name).expect("free again once the first run is done");
    }

    #[test]
    fn names_follow_kind_and_stay_one_directory() {
        for good in ["kind-crio", "ha", "kc.e2e-1", "1"] {
            assert_eq!(ClusterName::parse(good).unwrap().as_str(), good);
        }
        let err = |name: &str| format!("{:#}", ClusterName::parse(name).unwrap_err());
        assert_eq!(
            err(""),
            "the cluster name is empty; give one such as kind-crio"
        );
        for path_like in ["..", ".", ".hidden", "-x", "--retain"] {
            assert!(
                err(path_like).contains("must start with a letter or digit"),
                "{path_like}: {}",
                err(path_like)
            );
        }
        assert_eq!(
            err("a/b"),
            "\"a/b\" is not a kind cluster name: '/' is not allowed; kind allows lower-case letters, digits, '.' and '-' (e.g. kind-crio)"
        );
        for bad in ["../x", "Bad_Name", "a b", "crio\n", "ä"] {
            assert!(err(bad).contains("is not a kind cluster name"), "{bad}");
        }
    }

    #[test]
    fn kind_get_clusters_output() {
        let name = ClusterName::parse("kind-crio").unwrap();
        assert!(listed("ha\nkind-crio\n", &name));
        assert!(!listed("", &name));
        assert!(!listed("kind-crio-2\nkind\n", &name));
    }

    /// Real containers labelled as kind labels them: two control planes, a
    /// worker, the load balancer, and another cluster's worker.
    const KIND_LIKE: [(&str, &str, &str); 5] = [
        ("kc-test-control-plane", "kc-test", "control-plane"),
        ("kc-test-control-plane2", "kc-test", "control-plane"),
        ("kc-test-worker", "kc-test", "worker"),
        (
            "kc-test-external-load-balancer",
            "kc-test",
            "external-load-balancer",
        ),
        ("kc-other-worker", "kc-other", "worker"),
    ];

    const NODES: [&str; 3] = [
        "kc-test-control-plane",
        "kc-test-control-plane2",
        "kc-test-worker",
    ];

    fn create_kind_like(sh: &Shell, engine: &str, image: &str) {
        for (name, cluster, role) in KIND_LIKE {
            let cluster = format!("io.x-k8s.kind.cluster={cluster}");
            let role = format!("io.x-k8s.kind.role={role}");
            cmd!(
                sh,
                "{engine} create --name {name} --label {cluster} --label {role} {image} /hello"
            )
            .quiet()
            .ignore_stdout()
            .run()
            .unwrap();
        }
    }

    fn remove_kind_like(sh: &Shell, engine: &str) {
        for (name, _, _) in KIND_LIKE {
            let _ = cmd!(sh, "{engine} rm --force {name}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
        }
    }

    /// With podman always, and with docker where an engine answers.
    #[test]
    fn nodes_are_control_planes_and_workers() {
        use crate::test_engines::{docker_answers, import, podman};
        let test = "nodes_are_control_planes_and_workers";
        let Some(podman) = podman(test) else {
            return;
        };
        let sh = &podman.sh;
        for engine in ["podman", "docker"] {
            if engine == "docker" && !docker_answers(sh, &format!("the docker half of {test}")) {
                return;
            }
            let image = format!("localhost/kind-crio-test/node:{}", std::process::id());
            import(sh, engine, &podman.tarball, &image);
            remove_kind_like(sh, engine);
            create_kind_like(sh, engine, &image);
            let found = nodes(sh, "kc-test", engine.parse().unwrap());
            remove_kind_like(sh, engine);
            let _ = cmd!(sh, "{engine} rmi {image}")
                .quiet()
                .ignore_stdout()
                .run();
            assert_eq!(found.unwrap(), NODES, "{engine}");
        }
    }
}
