//! `cargo xtask e2e`: a kind cluster on a CRI-O node image, proven healthy and
//! running CRI-O, then deleted.
//!
//! The steps follow kind's own CI (create, wait for nodes and kube-system,
//! `kind export logs` on failure, delete), plus what only a CRI-O node needs
//! checking: every node's runtime is `cri-o://`; the preload imported every
//! image the node image recorded, and nothing preloaded was pulled anyway
//! (CRI-O's journal, the kubelet's events, CRI-O's images against the
//! record; see `e2e/preload.rs`); and on failure, each node's preload outcome,
//! CRI-O's journal and the preload unit's journal (`kind export logs`
//! collects containerd's).
//!
//! It never touches a cluster it did not create: a cluster of the same name
//! is an error before anything runs, and the failure and clean-up steps run
//! only once this run has started creating its cluster.

mod preload;

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use xshell::{Shell, cmd};

use crate::cluster::{ClusterName, nodes};
use crate::ctx::{Ctx, Mode};
use crate::engine::Engine;
use crate::step::Plan;
use preload::{RECORDED_LIST, Recorded, STATUS_FILE};

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Steps: check that no kind cluster NAME exists yet, doctor checks, kind create cluster with
CRI-O patches on every node, wait for every node and every kube-system pod to be Ready,
check each node's runtime is cri-o, check the preload imported every recorded image
(waiting up to --wait for its status), check nothing preloaded was pulled (CRI-O's journal,
the kubelet's events, CRI-O's images), run a smoke workload (a pod, a service, a DNS
lookup), print the time to ready. On failure: each node's preload outcome, kind export
logs, and each node's CRI-O and preload journals into target/kind-crio/e2e/NAME/logs. The
cluster is deleted at the end unless --retain. A cluster this run did not create is never
touched: an existing NAME is an error.")]
pub struct E2eArgs {
    /// Node image (default: image.repository tagged with kubernetes.version).
    #[arg(long, value_name = "REF", value_parser = crate::flags::image_ref)]
    pub image: Option<registry::ImageRef>,

    /// Cluster name (kind's rule: lower-case letters, digits, '.' and '-'; a letter or digit first).
    #[arg(long, default_value = "kind-crio", value_parser = ClusterName::parse)]
    pub name: ClusterName,

    /// Control-plane nodes (not with --cluster-config).
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        conflicts_with = "cluster_config"
    )]
    pub control_planes: usize,

    /// Worker nodes (not with --cluster-config).
    #[arg(
        long,
        default_value_t = 1,
        value_name = "M",
        conflicts_with = "cluster_config"
    )]
    pub workers: usize,

    /// Your kind cluster config (a file, or - for stdin), made CRI-O-ready as `render
    /// kind-config --from` does (every field and patch kept, CRI-O patches added where
    /// missing), with --name and --image applied over it.
    #[arg(long, value_name = "FILE")]
    pub cluster_config: Option<PathBuf>,

    /// Keep the cluster (and on failure, everything) for inspection.
    #[arg(long)]
    pub retain: bool,

    /// How long to wait for nodes, then for kube-system pods, to be Ready, and
    /// for the preload to finish.
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
fn parse_duration(s: &str) -> Result<Duration> {
    let digits = s.trim_end_matches(['s', 'm', 'h']);
    let unit = &s[digits.len()..];
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 0,
    };
    let n: Option<u64> = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten();
    match (n, seconds_per) {
        (Some(n), 1..) => Ok(Duration::from_secs(n.saturating_mul(seconds_per))),
        _ => bail!("--wait {s:?}: expected a number with s, m or h, e.g. 300s or 5m"),
    }
}

/// The kind config to create the cluster with, and its control-plane and
/// worker counts: generated from the flags, or `from` (`--cluster-config`:
/// its name for messages, and its text) made CRI-O-ready, with the
/// cluster's name and node image applied over it.
fn kind_config(
    args: &E2eArgs,
    image: &str,
    from: Option<(&str, &str)>,
) -> Result<(String, usize, usize)> {
    let Some((shown, text)) = from else {
        let config = crate::inputs::generated_kind_config(&cluster_config::GenerateOptions {
            control_planes: args.control_planes,
            workers: args.workers,
            name: Some(args.name.to_string()),
            image: Some(image.to_owned()),
            kube_proxy_mode: None,
        })?;
        return Ok((config, args.control_planes, args.workers));
    };
    let over = crate::flags::KindConfigArgs {
        name: Some(args.name.clone()),
        image: Some(image.to_owned()),
        ..Default::default()
    };
    let cluster =
        crate::inputs::crio_ready_kind_config(&over, shown, text).context("--cluster-config")?;
    let workers = cluster
        .nodes
        .iter()
        .filter(|n| n.effective_role() == cluster_config::Role::Worker)
        .count();
    // kind makes one control plane of a config without nodes.
    let control_planes = (cluster.nodes.len() - workers).max(1);
    Ok((cluster_config::encode(&cluster)?, control_planes, workers))
}

/// The plan; `started` receives the moment creation starts, which is also
/// what makes the failure and clean-up steps run: before it, the cluster
/// called NAME (if any) is not this run's. `cluster_config` is
/// `--cluster-config`'s name and text.
pub fn plan<'a>(
    sh: &'a Shell,
    args: &'a E2eArgs,
    image: &'a str,
    engine: Engine,
    cluster_config: Option<(&str, &str)>,
    started: &'a Cell<Option<Instant>>,
) -> Result<Plan<'a>> {
    let wait_for = parse_duration(&args.wait)?;
    let (kind_config, control_planes, workers) = kind_config(args, image, cluster_config)?;
    let name = args.name.as_str();
    let context = format!("kind-{name}");
    let dir = PathBuf::from("target/kind-crio/e2e").join(name);
    let config_file = dir.join("kind.yaml");
    let smoke_file = dir.join("smoke.yaml");
    let logs = dir.join("logs");
    let wait = args.wait.as_str();
    let provider = engine.program();
    let created = move || started.get().is_some();
    const CREATED: &str = "this run started creating the cluster";

    let mut plan = Plan::new();
    plan.native(
        format!("Checking that no cluster {name} exists"),
        format!(
            "KIND_EXPERIMENTAL_PROVIDER={provider} kind get clusters must not list {name}, \
             and kubectl config get-contexts must not list kind-{name}"
        ),
        move || crate::cluster::ensure_absent(sh, &args.name, engine),
    );
    // doctor's checks (`cargo xtask doctor --image IMAGE`): a problem stops
    // the run before the cluster is created, unless --ignore-doctor.
    crate::preflight::add_checks(
        &mut plan,
        sh,
        engine,
        image,
        args.ignore_doctor.then_some("--ignore-doctor"),
    );
    {
        let dir = dir.clone();
        let config_file = config_file.clone();
        let smoke_file = smoke_file.clone();
        let logs = logs.clone();
        plan.native(
            "Writing the kind config and smoke workload",
            format!(
                "{} and {}; an earlier run's {} removed",
                config_file.display(),
                smoke_file.display(),
                logs.display()
            ),
            move || {
                // Logs of an earlier run must not pass for this one's.
                match std::fs::remove_dir_all(&logs) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("cannot remove {}", logs.display()));
                    }
                    _ => {}
                }
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                std::fs::write(&config_file, &kind_config)?;
                std::fs::write(&smoke_file, SMOKE)?;
                Ok(())
            },
        );
    }
    plan.cmd(
        format!("Creating cluster {name} ({control_planes} control-plane, {workers} worker)"),
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
        "Checking the preload imported every recorded image",
        format!(
            "on each node, wait up to {wait} for {STATUS_FILE}; every image of {RECORDED_LIST} must be imported or present, none failed"
        ),
        move || check_preload_status(sh, name, engine, wait_for),
    );
    {
        let context = context.clone();
        plan.native(
            "Checking no preloaded image was pulled",
            format!(
                "on each node, journalctl -u crio has no \"Pulling image: REF\" and kubectl --context {context} get events -A has no Pulling event for a REF of {RECORDED_LIST}"
            ),
            move || check_no_preloaded_pull(sh, name, engine, &context),
        );
    }
    plan.native(
        "Checking nothing was pulled while the cluster came up",
        format!("on each node, every image `crictl images` lists is in {RECORDED_LIST}, and every recorded name has its recorded digest"),
        move || check_nothing_pulled(sh, name, engine),
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
    plan.native(
        "Reporting each node's preload outcome",
        format!(
            "print what {STATUS_FILE} of each node says was imported and what failed, waiting up to {wait} \
             for a preload still running; never fails"
        ),
        move || {
            for line in preload_report(sh, name, engine, wait_for) {
                eprintln!("   {line}");
            }
            Ok(())
        },
    )
    .only_if(CREATED, created);
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
            move || collect_journals(sh, name, engine, &logs),
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

/// The control-plane and worker nodes; none is an error (the cluster is gone).
fn cluster_nodes(sh: &Shell, name: &str, engine: Engine) -> Result<Vec<String>> {
    let found = nodes(sh, name, engine)?;
    if found.is_empty() {
        bail!("{engine} lists no control-plane or worker node of cluster {name}");
    }
    Ok(found)
}

/// `ENGINE exec NODE cat FILE`: Ok(None) when the file does not exist.
fn read_node_file(sh: &Shell, engine: Engine, node: &str, file: &str) -> Result<Option<String>> {
    let out = engine
        .exec(sh, node, "cat")
        .arg(file)
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("cannot run {engine} exec"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else if stderr.contains(file) && stderr.contains("No such file") {
        Ok(None)
    } else {
        bail!(
            "`{engine} exec {node} cat {file}` failed ({}): {}",
            out.status,
            stderr.trim()
        )
    }
}

/// What `node`'s image recorded in its preload list.
fn recorded(sh: &Shell, engine: Engine, node: &str) -> Result<Recorded> {
    let text = read_node_file(sh, engine, node, RECORDED_LIST)?.with_context(|| {
        format!("{node} has no {RECORDED_LIST}: was the image built with its preload?")
    })?;
    Recorded::parse(&text).with_context(|| format!("on {node}"))
}

/// The preload's status on `node`, waiting for the import to finish (the
/// file appears, whole, when it does) until `deadline`.
fn wait_for_status(sh: &Shell, engine: Engine, node: &str, deadline: Instant) -> Result<String> {
    loop {
        if let Some(text) = read_node_file(sh, engine, node, STATUS_FILE)? {
            return Ok(text);
        }
        if Instant::now() >= deadline {
            bail!(
                "{node} has no {STATUS_FILE} yet: its preload has not finished, or never ran; \
                 see `{engine} exec {node} journalctl -u kind-crio-preload`, or give it longer with --wait"
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn check_preload_status(sh: &Shell, name: &str, engine: Engine, wait_for: Duration) -> Result<()> {
    let deadline = Instant::now() + wait_for;
    let mut problems = Vec::new();
    for node in cluster_nodes(sh, name, engine)? {
        let recorded = recorded(sh, engine, &node)?;
        let status = preload::parse_status(&wait_for_status(sh, engine, &node, deadline)?)
            .with_context(|| format!("on {node}"))?;
        eprintln!("   {node}: {}", preload::summary(&status));
        problems.extend(
            preload::status_problems(&recorded, &status)
                .into_iter()
                .map(|p| format!("{node}: {p}")),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "the preload did not import every recorded image (the kubelet pulls what is missing): {}",
            problems.join(", ")
        )
    }
}

fn check_no_preloaded_pull(sh: &Shell, name: &str, engine: Engine, context: &str) -> Result<()> {
    let mut problems = Vec::new();
    let mut all = Recorded::default();
    let mut by_node = Vec::new();
    for node in cluster_nodes(sh, name, engine)? {
        let recorded = recorded(sh, engine, &node)?;
        let journal = engine
            .exec(sh, &node, "journalctl")
            .args(["--no-pager", "-o", "cat", "-u", "crio"])
            .quiet()
            .read()
            .with_context(|| format!("cannot read CRI-O's journal on {node}"))?;
        problems.extend(
            preload::journal_pulls(&journal)
                .into_iter()
                .filter(|i| recorded.contains(i))
                .map(|i| format!("{node}: {i} (CRI-O's journal)")),
        );
        all.extend(&recorded);
        by_node.push((node, recorded));
    }
    let events = cmd!(
        sh,
        "kubectl --context {context} get events --all-namespaces --field-selector reason=Pulling -o json"
    )
    .quiet()
    .read()
    .context("cannot list the cluster's events")?;
    for event in preload::pulling_events(&events)? {
        // The node's own record where the event names one of the nodes.
        let recorded = by_node
            .iter()
            .find(|(n, _)| *n == event.node)
            .map_or(&all, |(_, r)| r);
        if recorded.contains(&event.image) {
            problems.push(format!("{}: {} (kubelet event)", event.node, event.image));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "preloaded images were pulled (the preload missed them): {}",
            problems.join(", ")
        )
    }
}

fn check_nothing_pulled(sh: &Shell, name: &str, engine: Engine) -> Result<()> {
    let mut problems = Vec::new();
    for node in cluster_nodes(sh, name, engine)? {
        let recorded = recorded(sh, engine, &node)?;
        let images = engine
            .exec(sh, &node, "crictl")
            .args(["images", "-o", "json"])
            .quiet()
            .read()?;
        problems.extend(
            preload::unrecorded_images(&recorded, &images)
                .with_context(|| format!("on {node}"))?
                .into_iter()
                .map(|i| format!("{node}: {i} (not preloaded)")),
        );
        problems.extend(
            preload::changed_digests(&recorded, &images)
                .with_context(|| format!("on {node}"))?
                .into_iter()
                .map(|i| format!("{node}: {i}")),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "images were pulled while the cluster came up: {}",
            problems.join(", ")
        )
    }
}

/// One line per node with the preload's outcome, for the failure path:
/// often the reason a cluster did not come up. Never fails: what cannot be
/// read becomes the line.
/// Each node's preload outcome, in a line. A preload still running is waited
/// for until `wait_for` has passed (all nodes together): when the cluster
/// failed, its outcome is what tells the user why.
fn preload_report(sh: &Shell, name: &str, engine: Engine, wait_for: Duration) -> Vec<String> {
    let nodes = match nodes(sh, name, engine) {
        Ok(nodes) if nodes.is_empty() => {
            return vec![format!("no node of cluster {name} to report on")];
        }
        Ok(nodes) => nodes,
        Err(e) => return vec![format!("{e:#}")],
    };
    let deadline = Instant::now() + wait_for;
    nodes
        .into_iter()
        .map(|node| {
            let line = loop {
                // systemd first, the file second: the script writes the file
                // before it exits, so a unit that was no longer running when
                // asked has left it by the time it is read.
                let (state, running) = preload_unit_state(sh, engine, &node);
                match read_node_file(sh, engine, &node, STATUS_FILE) {
                    Ok(Some(text)) => {
                        break match preload::parse_status(&text) {
                            Ok(status) => preload::summary(&status),
                            Err(e) => format!("{e:#}"),
                        };
                    }
                    Ok(None) if running && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_secs(2));
                    }
                    Ok(None) => {
                        break format!(
                            "no {STATUS_FILE}: {state} (see the kind-crio-preload journal)"
                        );
                    }
                    Err(e) => break format!("{e:#}"),
                }
            };
            format!("{node}: {line}")
        })
        .collect()
}

/// What systemd says of the preload unit on `node`, in words, and whether
/// it is still running.
fn preload_unit_state(sh: &Shell, engine: Engine, node: &str) -> (String, bool) {
    let unit = node_image::PRELOAD_UNIT;
    let out = engine
        .exec(sh, node, "systemctl")
        .args(["show", "--property=ActiveState,Result", unit])
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    (preload::unit_state(&out), preload::unit_running(&out))
}

fn collect_journals(sh: &Shell, name: &str, engine: Engine, logs: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(logs)?;
    for node in nodes(sh, name, engine)? {
        for unit in ["crio", "kind-crio-preload"] {
            let out = engine
                .exec(sh, &node, "journalctl")
                .args(["--no-pager", "-u", unit])
                .quiet()
                .ignore_status()
                .output()?;
            std::fs::write(logs.join(format!("{node}-{unit}.log")), &out.stdout)?;
        }
    }
    eprintln!("   logs in {}", logs.display());
    Ok(())
}

pub fn run(args: &E2eArgs, ctx: &Ctx) -> Result<()> {
    let config = &ctx.config;
    let image = match &args.image {
        Some(i) => i.to_string(),
        None => format!("{}:{}", config.image_repository, config.kubernetes),
    };
    // Held to the end; a dry run writes nothing, so claims nothing.
    let _claim = match ctx.mode {
        Mode::Run => Some(crate::cluster::claim(&args.name)?),
        Mode::DryRun => None,
    };
    let from = args
        .cluster_config
        .as_deref()
        .map(crate::inputs::read_kind_config)
        .transpose()
        .context("--cluster-config")?;
    let from = from
        .as_ref()
        .map(|(shown, text)| (shown.as_str(), text.as_str()));
    let started = Cell::new(None);
    let plan = plan(&ctx.sh, args, &image, config.engine, from, &started)?;
    ctx.carry_out(plan).map(drop)
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

    /// The preload's status on real (Docker) containers made as kind makes
    /// nodes, with a tmpfs on /run: the check waits for the file, then
    /// finds the image that failed; the failure-path report sums each
    /// node up; a node without a status is an error once --wait is over.
    #[test]
    fn preload_status_on_kind_like_nodes() {
        use crate::test_engines::{docker_answers, host_tools_rootfs, import};
        let test = "preload_status_on_kind_like_nodes";
        if !testkit::tools_present(test, &["docker", "ldd", "tar"]) {
            return;
        }
        let sh = Shell::new().unwrap();
        if !docker_answers(&sh, test) {
            return;
        }
        let dir = testkit::TempDir::new(test);
        let pid = std::process::id();
        let cluster = format!("kc-e2e-status-{pid}");
        let image = format!("kind-crio-test-status:{pid}");
        let images_txt = "registry.k8s.io/etcd:3.6.4-0 sha256:5f1f5298c888daa46c4409ff4cefe5ca9d16e479419f94cdb5f5d5563dac0115\n\
                          registry.k8s.io/pause:3.10.1 sha256:278fb9dbcca9518083ad1e11276933a2e96f23de604a3a08cc3c80002767d24c\n";
        let rootfs = host_tools_rootfs(
            &sh,
            dir.path(),
            &["cat", "dd", "mkdir", "rm", "sleep"],
            &[(RECORDED_LIST, images_txt)],
        );
        import(&sh, "docker", &rootfs, &image);
        let nodes = [
            format!("{cluster}-control-plane"),
            format!("{cluster}-worker"),
        ];
        for (node, role) in nodes.iter().zip(["control-plane", "worker"]) {
            let cluster_label = format!("io.x-k8s.kind.cluster={cluster}");
            let role_label = format!("io.x-k8s.kind.role={role}");
            cmd!(
                sh,
                "docker run -d --name {node} --label {cluster_label} --label {role_label} --tmpfs /run {image} /bin/sleep 600"
            )
            .quiet()
            .ignore_stdout()
            .run()
            .unwrap();
        }
        // As the boot script does: the whole file at once, on the tmpfs.
        // (Plain std::process: the Shell stays on this thread.)
        let write_status = |node: &str, text: &str| {
            let file = dir.path().join(format!("{node}.status"));
            std::fs::write(&file, text).unwrap();
            let docker = |args: &[&str], stdin: std::process::Stdio| {
                std::process::Command::new("docker")
                    .args(args)
                    .stdin(stdin)
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let of = format!("of={STATUS_FILE}");
            assert!(
                docker(
                    &["exec", node, "mkdir", "-p", "/run/kind-crio"],
                    std::process::Stdio::null()
                ) && docker(
                    &["exec", "-i", node, "dd", &of, "status=none"],
                    std::fs::File::open(&file).unwrap().into()
                ),
                "write {STATUS_FILE} on {node}"
            );
        };

        let before = preload_report(&sh, &cluster, Engine::Docker, Duration::from_secs(1));
        // The control plane finishes at once; the worker's import takes 3 s
        // more, with etcd failing.
        write_status(
            &nodes[0],
            &images_txt
                .lines()
                .map(|l| format!("imported {l}\n"))
                .collect::<String>(),
        );
        let started = Instant::now();
        let checked = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_secs(3));
                let (etcd, pause) = images_txt.split_once('\n').unwrap();
                write_status(&nodes[1], &format!("failed {etcd}\npresent {pause}"));
            });
            check_preload_status(&sh, &cluster, Engine::Docker, Duration::from_secs(60))
        });
        let waited = started.elapsed();
        let after = preload_report(&sh, &cluster, Engine::Docker, Duration::from_secs(1));
        let gone = format!("kc-e2e-none-{pid}");
        let no_nodes = preload_report(&sh, &gone, Engine::Docker, Duration::from_secs(1));
        let first = &nodes[0];
        let _ = cmd!(sh, "docker exec {first} rm -f {STATUS_FILE}")
            .quiet()
            .run();
        let timed_out = check_preload_status(&sh, &cluster, Engine::Docker, Duration::from_secs(1));
        for node in &nodes {
            let _ = cmd!(sh, "docker rm -f {node}")
                .quiet()
                .ignore_stdout()
                .run();
        }
        let _ = cmd!(sh, "docker rmi {image}").quiet().ignore_stdout().run();

        // These stand-ins have no systemd to ask about the unit.
        let no_status = format!(
            "no {STATUS_FILE}: systemd could not be asked about the preload (see the kind-crio-preload journal)"
        );
        assert_eq!(
            before,
            [
                format!("{}: {no_status}", nodes[0]),
                format!("{}: {no_status}", nodes[1])
            ]
        );
        let err = format!("{:#}", checked.unwrap_err());
        assert_eq!(
            err,
            format!(
                "the preload did not import every recorded image (the kubelet pulls what is missing): {}: registry.k8s.io/etcd:3.6.4-0 failed to import",
                nodes[1]
            )
        );
        assert!(waited >= Duration::from_secs(3), "did not wait: {waited:?}");
        assert_eq!(
            after,
            [
                format!("{}: 2 imported", nodes[0]),
                format!(
                    "{}: 1 already present, 1 failed: registry.k8s.io/etcd:3.6.4-0",
                    nodes[1]
                )
            ]
        );
        assert_eq!(
            no_nodes,
            [format!("no node of cluster {gone} to report on")]
        );
        let err = format!("{:#}", timed_out.unwrap_err());
        assert!(
            err.starts_with(&format!("{} has no {STATUS_FILE} yet", nodes[0])),
            "{err}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "5", "m", "5ms", "-1s", "1.5m", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
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

    fn dry_run(argv: &[&str], engine: Engine) -> String {
        let cli = Cli::try_parse_from(std::iter::once("e2e").chain(argv.iter().copied())).unwrap();
        let sh = Shell::new().unwrap();
        let started = Cell::new(None);
        let image = "ghcr.io/owner/kindnode-crio:v1.34.0";
        plan(&sh, &cli.args, image, engine, None, &started)
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

    /// A kind user's own cluster config: kept, made CRI-O-ready, with e2e's
    /// name and image over it; the plan counts its nodes.
    #[test]
    fn a_users_cluster_config() {
        let mine = "\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: theirs
networking:
  podSubnet: 10.250.0.0/16
nodes:
  - role: control-plane
    image: kindest/node:v1.34.0
    extraPortMappings:
      - containerPort: 30080
        hostPort: 8080
  - role: worker
  - role: worker
    labels:
      tier: db
";
        let cli =
            Cli::try_parse_from(["e2e", "--name", "kc", "--cluster-config", "mine.yaml"]).unwrap();
        let image = "ghcr.io/owner/kindnode-crio:v1.34.0";
        let (config, control_planes, workers) =
            kind_config(&cli.args, image, Some(("mine.yaml", mine))).unwrap();
        assert_eq!((control_planes, workers), (1, 2));
        let cluster = cluster_config::load(&config).unwrap();
        assert_eq!(cluster.name.as_deref(), Some("kc"));
        assert_eq!(cluster.nodes.len(), 3);
        for node in &cluster.nodes {
            assert_eq!(node.image.as_deref(), Some(image));
        }
        for kept in ["podSubnet: 10.250.0.0/16", "hostPort: 8080", "tier: db"] {
            assert!(config.contains(kept), "{kept} lost:\n{config}");
        }
        assert!(
            config.contains("unix:///var/run/crio/crio.sock"),
            "{config}"
        );
        let sh = Shell::new().unwrap();
        let started = Cell::new(None);
        let shown = plan(
            &sh,
            &cli.args,
            image,
            Engine::Docker,
            Some(("mine.yaml", mine)),
            &started,
        )
        .unwrap()
        .render();
        assert!(
            shown.contains("Creating cluster kc (1 control-plane, 2 worker)\n"),
            "{shown}"
        );
        // What kind would refuse is refused before anything runs.
        let no_control_plane =
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: worker\n";
        let err = format!(
            "{:#}",
            kind_config(&cli.args, image, Some(("mine.yaml", no_control_plane))).unwrap_err()
        );
        assert!(err.starts_with("--cluster-config: in mine.yaml: "), "{err}");
        // Its nodes are the config's, not the flags'.
        let err = Cli::try_parse_from(["e2e", "--cluster-config", "mine.yaml", "--workers", "2"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cannot be used with"), "{err}");
    }

    /// Real kind reads the config e2e makes of a user's, as far as kind
    /// goes without changing anything (the cluster-config crate's stand-in
    /// engine answers its read-only calls and refuses the first other one,
    /// `network ls`): kind decodes and validates it, and says it creates.
    #[test]
    fn real_kind_accepts_the_config_made_of_a_users() {
        let test = "real_kind_accepts_the_config_made_of_a_users";
        let Some(tools) = testkit::tools::require(test, &["kind"]) else {
            return;
        };
        let mine = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  kubeProxyMode: nftables\nnodes:\n  - role: control-plane\n  - role: worker\n    labels:\n      tier: db\n";
        let cli = Cli::try_parse_from([
            "e2e",
            "--name",
            "kc-e2e-real",
            "--cluster-config",
            "mine.yaml",
        ])
        .unwrap();
        let (config, _, _) = kind_config(
            &cli.args,
            "ghcr.io/owner/kindnode-crio:v1.34.0",
            Some(("mine.yaml", mine)),
        )
        .unwrap();
        let dir = testkit::TempDir::new(test);
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let engine = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/cluster-config/tests/stand-in-engine.sh");
        std::fs::copy(&engine, bin.join("docker")).unwrap();
        let file = dir.path().join("kind.yaml");
        std::fs::write(&file, &config).unwrap();
        let log = dir.path().join("engine-calls");
        std::fs::write(&log, "").unwrap();
        let out = std::process::Command::new(&tools[0])
            .args(["create", "cluster", "--retain", "--kubeconfig"])
            .arg(dir.path().join("kubeconfig"))
            .arg("--config")
            .arg(&file)
            .env_clear()
            .env("PATH", &bin)
            .env("HOME", dir.path())
            .env("KIND_EXPERIMENTAL_PROVIDER", "docker")
            .env("STAND_IN_ENGINE_LOG", &log)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let calls = std::fs::read_to_string(&log).unwrap();
        assert!(
            stderr.contains("Creating cluster \"kc-e2e-real\"")
                && calls
                    .lines()
                    .last()
                    .is_some_and(|c| c.starts_with("network ls")),
            "kind refused the config:\n{config}\n{stderr}\n{calls}"
        );
    }

    #[test]
    fn bad_input() {
        let cli = Cli::try_parse_from(["e2e", "--wait", "soon"]).unwrap();
        let sh = Shell::new().unwrap();
        let started = Cell::new(None);
        let err = plan(&sh, &cli.args, "x:y", Engine::Docker, None, &started)
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
