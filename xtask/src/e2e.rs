//! `cargo xtask e2e`: a kind cluster on a CRI-O node image, proven healthy and
//! running CRI-O, then deleted.
//!
//! The steps follow kind's own CI (create, wait for nodes and kube-system,
//! `kind export logs` on failure, delete), plus what only a CRI-O node needs
//! checking: every node's runtime is `cri-o://`, nothing was pulled while the
//! cluster came up (CRI-O's images against the list the image preloaded), and
//! CRI-O's own journal and the preload unit's journal are collected on failure
//! (`kind export logs` collects containerd's).
//!
//! It never touches a cluster it did not create: a cluster of the same name
//! is an error before anything runs, and the failure and clean-up steps run
//! only once this run has started creating its cluster.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use xshell::{Shell, cmd};

use crate::cluster::{ClusterName, nodes};
use crate::config::{Config, Engine};
use crate::step::Plan;
use crate::ui::Ui;

/// Where the image records what it preloaded (one `REFERENCE DIGEST` per line).
pub const PRELOADED_LIST: &str = "/opt/kind-crio/preload/images.txt";

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Steps: check that no kind cluster NAME exists yet, doctor checks, kind create cluster with
CRI-O patches on every node, wait for every node and every kube-system pod to be Ready,
check each node's runtime is cri-o, check nothing was pulled during creation, run a smoke
workload (a pod, a service, a DNS lookup), print the time to ready. On failure: kind export
logs plus each node's CRI-O and preload journals into target/kind-crio/e2e/NAME/logs. The
cluster is deleted at the end unless --retain. A cluster this run did not create is never
touched: an existing NAME is an error.")]
pub struct E2eArgs {
    /// Node image (default: image.repository tagged with kubernetes.version).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,

    /// Cluster name (kind's rule: lower-case letters, digits, '.' and '-'; a letter or digit first).
    #[arg(long, default_value = "kind-crio", value_parser = ClusterName::parse)]
    pub name: ClusterName,

    /// Control-plane nodes.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub control_planes: usize,

    /// Worker nodes.
    #[arg(long, default_value_t = 1, value_name = "M")]
    pub workers: usize,

    /// Keep the cluster (and on failure, everything) for inspection.
    #[arg(long)]
    pub retain: bool,

    /// How long to wait for nodes, and then for kube-system pods, to be Ready.
    #[arg(long, default_value = "300s", value_name = "DURATION")]
    pub wait: String,

    /// Go on when doctor finds problems (printed as warnings): to see how far a
    /// cluster gets where privileged containers lack capabilities.
    #[arg(long)]
    pub ignore_doctor: bool,
}

/// A smoke workload: a server behind a Service, and a Job that reaches it by
/// its DNS name (so scheduling, pod networking, Services and CoreDNS all work).
const SMOKE: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: smoke-server
  labels:
    app: smoke
spec:
  containers:
    - name: server
      image: registry.k8s.io/e2e-test-images/agnhost:2.53
      args: [netexec, --http-port=8080]
      ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: smoke
spec:
  selector:
    app: smoke
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: batch/v1
kind: Job
metadata:
  name: smoke-client
spec:
  backoffLimit: 6
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: client
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: [connect, smoke.default.svc.cluster.local:80, --timeout=5s]
";

/// `300s`, `5m`: what kubectl's --timeout accepts, checked here.
fn check_duration(s: &str) -> Result<()> {
    let digits = s.trim_end_matches(['s', 'm', 'h']);
    let unit_ok = s.len() > digits.len() && s.len() - digits.len() == 1;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !unit_ok {
        bail!("--wait {s:?}: expected a number with s, m or h, e.g. 300s or 5m");
    }
    Ok(())
}

/// The plan; `started` receives the moment creation starts, which is also
/// what makes the failure and clean-up steps run: before it, the cluster
/// called NAME (if any) is not this run's.
pub fn plan<'a>(
    sh: &'a Shell,
    args: &'a E2eArgs,
    image: &'a str,
    engine: Engine,
    started: &'a Cell<Option<Instant>>,
    ui: Ui,
) -> Result<Plan<'a>> {
    check_duration(&args.wait)?;
    let kind_config = crate::render::KindConfigArgs {
        name: Some(args.name.to_string()),
        image: Some(image.to_owned()),
        control_planes: Some(args.control_planes),
        workers: Some(args.workers),
        ..Default::default()
    }
    .render(|_| bail!("e2e generates its kind config"))?;
    let name = args.name.as_str();
    let context = format!("kind-{name}");
    let dir = PathBuf::from("target/kind-crio/e2e").join(name);
    let config_file = dir.join("kind.yaml");
    let smoke_file = dir.join("smoke.yaml");
    let logs = dir.join("logs");
    let wait = args.wait.as_str();
    let provider = match engine {
        Engine::Docker => "docker",
        Engine::Podman => "podman",
    };
    let created = move || started.get().is_some();
    const CREATED: &str = "this run started creating the cluster";

    let mut plan = Plan::new();
    plan.native(
        format!("Checking that no cluster {name} exists"),
        format!("KIND_EXPERIMENTAL_PROVIDER={provider} kind get clusters must not list {name}"),
        move || crate::cluster::ensure_absent(sh, &args.name, engine),
    );
    {
        let what = format!(
            "cargo xtask doctor --image {image}: kind, kubectl, {provider}, privileged capabilities{}",
            if args.ignore_doctor {
                "; problems are only warnings (--ignore-doctor)"
            } else {
                ""
            }
        );
        plan.native("Running doctor", what, move || {
            let doctor = crate::doctor::DoctorArgs {
                image: Some(image.to_owned()),
            };
            match crate::doctor::run(&doctor, engine, image, &ui) {
                Err(e) if args.ignore_doctor => {
                    eprintln!("   WARNING: {e:#}; going on (--ignore-doctor)");
                    Ok(())
                }
                other => other,
            }
        })
        // Doctor draws its own status lines: no spinner over them.
        .show_output();
    }
    {
        let dir = dir.clone();
        let config_file = config_file.clone();
        let smoke_file = smoke_file.clone();
        plan.native(
            "Writing the kind config and smoke workload",
            format!("{} and {}", config_file.display(), smoke_file.display()),
            move || {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                std::fs::write(&config_file, &kind_config)?;
                std::fs::write(&smoke_file, SMOKE)?;
                Ok(())
            },
        );
    }
    plan.cmd(
        format!("Creating cluster {name} ({} control-plane, {} worker)", args.control_planes, args.workers),
        cmd!(sh, "kind create cluster --name {name} --image {image} --config {config_file} --retain --wait 0s")
            .env("KIND_EXPERIMENTAL_PROVIDER", provider),
    )
    // From here on the cluster is this run's: with --retain, kind leaves the
    // nodes of a creation that fails midway.
    .on_start(move || started.set(Some(Instant::now())));
    plan.cmd(
        "Waiting for every node to be Ready",
        cmd!(
            sh,
            "kubectl --context {context} wait --for=condition=Ready nodes --all --timeout={wait}"
        ),
    );
    plan.cmd(
        "Waiting for every kube-system pod to be Ready",
        cmd!(sh, "kubectl --context {context} wait --for=condition=Ready pods --all --namespace kube-system --timeout={wait}"),
    );
    {
        let ready_file = dir.join("ready-seconds");
        plan.native(
            "Cluster ready",
            format!(
                "print the seconds from creation to every node and kube-system pod Ready; write them to {}",
                ready_file.display()
            ),
            move || {
                if let Some(t) = started.get() {
                    let secs = t.elapsed().as_secs_f64();
                    eprintln!("   ready {secs:.1}s after creation started");
                    std::fs::write(&ready_file, format!("{secs:.0}\n"))?;
                }
                Ok(())
            },
        );
    }
    plan.native(
        "Checking every node runs CRI-O",
        format!("kubectl --context {context} get nodes: each containerRuntimeVersion starts with cri-o://"),
        {
            let context = context.clone();
            move || check_runtimes(sh, &context)
        },
    );
    plan.native(
        "Checking nothing was pulled while the cluster came up",
        format!("on each node, every image `crictl images` lists is in {PRELOADED_LIST}"),
        move || check_nothing_pulled(sh, name, provider),
    );
    plan.cmds(
        "Running a smoke workload (pod, service, DNS)",
        vec![
            cmd!(sh, "kubectl --context {context} apply -f {smoke_file}"),
            cmd!(sh, "kubectl --context {context} wait --for=condition=Ready pod/smoke-server --timeout={wait}"),
            cmd!(sh, "kubectl --context {context} wait --for=condition=Complete job/smoke-client --timeout={wait}"),
        ],
    );

    plan.on_failure();
    plan.cmd(
        "Exporting kind's logs",
        cmd!(sh, "kind export logs {logs} --name {name}")
            .env("KIND_EXPERIMENTAL_PROVIDER", provider),
    )
    .only_if(CREATED, created);
    {
        let logs = logs.clone();
        plan.native(
            "Collecting CRI-O and preload journals",
            format!(
                "journalctl -u crio and -u kind-crio-preload of each node into {}",
                logs.display()
            ),
            move || collect_journals(sh, name, provider, &logs),
        )
        .only_if(CREATED, created);
    }
    plan.always();
    if args.retain {
        plan.native(
            format!("Keeping cluster {name}, as --retain asks"),
            format!("delete it with: kind delete cluster --name {name}"),
            || Ok(()),
        )
        .only_if(CREATED, created);
    } else {
        plan.cmd(
            format!("Deleting cluster {name}"),
            cmd!(sh, "kind delete cluster --name {name}")
                .env("KIND_EXPERIMENTAL_PROVIDER", provider),
        )
        .only_if(CREATED, created);
    }
    Ok(plan)
}

/// Every node's `containerRuntimeVersion` must be `cri-o://…`.
fn check_runtimes(sh: &Shell, context: &str) -> Result<()> {
    let path = "{range .items[*]}{.metadata.name} {.status.nodeInfo.containerRuntimeVersion}{\"\\n\"}{end}";
    let jsonpath = format!("jsonpath={path}");
    let out = cmd!(sh, "kubectl --context {context} get nodes -o {jsonpath}")
        .quiet()
        .read()?;
    runtimes_are_crio(&out)
}

/// Parses `NODE RUNTIME` lines; every runtime must be CRI-O.
pub fn runtimes_are_crio(out: &str) -> Result<()> {
    let nodes: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once(' ')).collect();
    if nodes.is_empty() {
        bail!("kubectl listed no nodes");
    }
    let wrong: Vec<String> = nodes
        .iter()
        .filter(|(_, rt)| !rt.starts_with("cri-o://"))
        .map(|(n, rt)| format!("{n} runs {rt}"))
        .collect();
    if wrong.is_empty() {
        eprintln!(
            "   {}",
            nodes
                .iter()
                .map(|(n, rt)| format!("{n}: {rt}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(())
    } else {
        bail!("not every node runs CRI-O: {}", wrong.join(", "))
    }
}

fn check_nothing_pulled(sh: &Shell, name: &str, provider: &str) -> Result<()> {
    let mut problems = Vec::new();
    for node in nodes(sh, name, provider)? {
        let preloaded = cmd!(sh, "{provider} exec {node} cat {PRELOADED_LIST}")
            .quiet()
            .read()
            .with_context(|| {
                format!("{node} has no {PRELOADED_LIST}: was the image built with its preload?")
            })?;
        let images = cmd!(sh, "{provider} exec {node} crictl images -o json")
            .quiet()
            .read()?;
        problems.extend(
            pulled_images(&preloaded, &images)
                .with_context(|| format!("on {node}"))?
                .into_iter()
                .map(|i| format!("{node}: {i}")),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "images were pulled while the cluster came up (not preloaded): {}",
            problems.join(", ")
        )
    }
}

/// Images CRI-O has that the preload list does not name (by tag or digest).
pub fn pulled_images(preloaded: &str, crictl_json: &str) -> Result<Vec<String>> {
    let known: std::collections::BTreeSet<&str> = preloaded
        .lines()
        .flat_map(|l| l.split_whitespace().take(2))
        .collect();
    let v: serde_json::Value =
        serde_json::from_str(crictl_json).context("crictl images -o json")?;
    let mut pulled = Vec::new();
    for image in v["images"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let tags: Vec<&str> = image["repoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        let digests: Vec<&str> = image["repoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        let named = tags.iter().any(|t| known.contains(t))
            || digests
                .iter()
                .any(|d| d.split_once('@').is_some_and(|(_, d)| known.contains(d)));
        if !named {
            pulled.push(
                tags.first()
                    .or(digests.first())
                    .copied()
                    .unwrap_or("<unnamed>")
                    .to_owned(),
            );
        }
    }
    Ok(pulled)
}

fn collect_journals(sh: &Shell, name: &str, provider: &str, logs: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(logs)?;
    for node in nodes(sh, name, provider)? {
        for unit in ["crio", "kind-crio-preload"] {
            let out = cmd!(sh, "{provider} exec {node} journalctl --no-pager -u {unit}")
                .quiet()
                .ignore_status()
                .output()?;
            std::fs::write(logs.join(format!("{node}-{unit}.log")), &out.stdout)?;
        }
    }
    eprintln!("   logs in {}", logs.display());
    Ok(())
}

pub fn run(args: &E2eArgs, config: &Config, ui: &Ui, dry_run: bool) -> Result<()> {
    let sh = crate::project_shell()?;
    let image = match &args.image {
        Some(i) => registry::ImageRef::parse(i).context("--image")?.to_string(),
        None => format!("{}:{}", config.image_repository, config.kubernetes),
    };
    let started = Cell::new(None);
    let plan = plan(&sh, args, &image, config.engine, &started, *ui)?;
    if dry_run {
        print!("{}", plan.render());
        return Ok(());
    }
    plan.execute(ui)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes() {
        assert!(runtimes_are_crio("a cri-o://1.34.0\nb cri-o://1.34.0\n").is_ok());
        let err = runtimes_are_crio("a cri-o://1.34.0\nb containerd://2.1.0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "not every node runs CRI-O: b runs containerd://2.1.0");
        assert!(runtimes_are_crio("").is_err());
    }

    #[test]
    fn pulled_images_are_those_not_preloaded() {
        let preloaded = "registry.k8s.io/pause:3.10 sha256:aaa\nregistry.k8s.io/coredns/coredns:v1.12.0 sha256:bbb\n";
        let crictl = r#"{"images":[
            {"repoTags":["registry.k8s.io/pause:3.10"],"repoDigests":[]},
            {"repoTags":[],"repoDigests":["registry.k8s.io/coredns/coredns@sha256:bbb"]},
            {"repoTags":["docker.io/library/busybox:latest"],"repoDigests":["docker.io/library/busybox@sha256:ccc"]}
        ]}"#;
        assert_eq!(
            pulled_images(preloaded, crictl).unwrap(),
            ["docker.io/library/busybox:latest"]
        );
        assert!(pulled_images(preloaded, "not json").is_err());
    }

    #[test]
    fn durations() {
        assert!(check_duration("300s").is_ok() && check_duration("5m").is_ok());
        for bad in ["", "5", "m", "5ms", "-1s", "1.5m"] {
            assert!(check_duration(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use clap::Parser;
    use expect_test::expect_file;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: E2eArgs,
    }

    const QUIET: Ui = Ui {
        verbose: false,
        tty: false,
        color: false,
    };

    fn dry_run(argv: &[&str], engine: Engine) -> String {
        let cli = Cli::try_parse_from(std::iter::once("e2e").chain(argv.iter().copied())).unwrap();
        let sh = Shell::new().unwrap();
        let started = Cell::new(None);
        let image = "ghcr.io/owner/kindnode-crio:v1.34.0";
        plan(&sh, &cli.args, image, engine, &started, QUIET)
            .unwrap()
            .render()
    }

    #[test]
    fn plans() {
        expect_file!["../tests/golden/e2e-1cp-2w.txt"]
            .assert_eq(&dry_run(&["--workers", "2"], Engine::Docker));
        expect_file!["../tests/golden/e2e-3cp-retain-podman.txt"].assert_eq(&dry_run(
            &[
                "--control-planes",
                "3",
                "--workers",
                "0",
                "--retain",
                "--name",
                "ha",
                "--wait",
                "10m",
                "--ignore-doctor",
            ],
            Engine::Podman,
        ));
    }

    #[test]
    fn bad_input() {
        let cli = Cli::try_parse_from(["e2e", "--wait", "soon"]).unwrap();
        let sh = Shell::new().unwrap();
        let started = Cell::new(None);
        let err = plan(&sh, &cli.args, "x:y", Engine::Docker, &started, QUIET)
            .err()
            .unwrap();
        assert!(err.to_string().contains("--wait \"soon\""));
        for (name, why) in [
            ("Bad_Name", "'B' is not allowed"),
            ("..", "must start with a letter or digit"),
            ("a/b", "'/' is not allowed"),
            ("", "the cluster name is empty"),
        ] {
            let err = Cli::try_parse_from(["e2e", "--name", name])
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(why), "{name}: {err}");
        }
    }
}
