//! The checks `cargo xtask doctor` runs, and `e2e` runs first: are kind,
//! kubectl and the container engine here, in versions that work, and does
//! the engine give privileged containers every capability the kernel has?
//! (Docker before 23.0 does not; podman gives them only the capabilities it
//! holds itself. CRI-O then fails privileged pods such as kube-proxy with
//! `capset: Operation not permitted`; containerd hides the mismatch, CRI-O
//! does not.)

use anyhow::{Context as _, Result, bail};
use xshell::{Shell, cmd};

use crate::engine::Engine;
use crate::kind::{MIN_KIND, parse_kind_version};
use crate::step::Plan;

/// Docker 23.0 matches privileged containers' capabilities to its own (moby #42933).
const MIN_DOCKER: u64 = 23;

/// The major version of `docker version --format {{.Server.Version}}` (`28.2.2`, `20.10.24+dfsg1`).
pub fn parse_docker_major(out: &str) -> Option<u64> {
    out.trim().split('.').next()?.parse().ok()
}

/// Reads `grep CapBnd /proc/self/status; cat /proc/sys/kernel/cap_last_cap`
/// from a privileged container of `engine`: Ok when the bounding set has
/// every capability up to the kernel's last one; otherwise the error says
/// what to change for that engine.
pub fn check_capabilities(out: &str, engine: Engine) -> Result<()> {
    let mut bounding = None;
    let mut last = None;
    for line in out.lines() {
        if let Some(hex) = line.strip_prefix("CapBnd:") {
            bounding = u64::from_str_radix(hex.trim(), 16).ok();
        } else if let Ok(n) = line.trim().parse::<u32>() {
            last = Some(n);
        }
    }
    let (Some(bounding), Some(last)) = (bounding, last) else {
        bail!("could not read the capability sets from:\n{out}");
    };
    let want = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    if bounding & want == want {
        return Ok(());
    }
    let advice = match engine {
        Engine::Docker => {
            "Upgrade Docker to 23.0 or newer (or use a Docker Desktop release with moby PR #42933), \
             which gives privileged containers the capabilities dockerd has"
        }
        // podman's privileged containers get podman's own bounding set
        // (libpod asks containers/common's capabilities.BoundingSet()): a
        // newer podman gives no more than the process that starts it holds.
        Engine::Podman => {
            "podman gives privileged containers only the capabilities it holds itself: \
             run podman where it has them all (as root on the host, not inside a container, \
             a sandbox or a systemd unit that drops capabilities; `grep CapBnd /proc/self/status` \
             in the shell that starts podman shows its set)"
        }
    };
    bail!(
        "privileged {engine} containers get capabilities {bounding:#x} but the kernel has {want:#x} (up to {last}): \
         CRI-O will fail privileged pods (kube-proxy) with `capset: Operation not permitted`. {advice}"
    )
}

/// One check: what it looks at, and the command that asks.
enum Probe {
    Kind,
    Kubectl,
    Engine,
    Privileged,
}

/// The checks in order, each with its name and command: one list for the
/// run and for the dry run's plan.
fn probes<'a>(sh: &'a Shell, engine: Engine, image: &str) -> Vec<(Probe, String, xshell::Cmd<'a>)> {
    let e = engine.to_string();
    let probe = "grep CapBnd /proc/self/status; cat /proc/sys/kernel/cap_last_cap";
    vec![
        (Probe::Kind, "kind".to_owned(), cmd!(sh, "kind version")),
        (
            Probe::Kubectl,
            "kubectl".to_owned(),
            cmd!(sh, "kubectl version --client"),
        ),
        (Probe::Engine, e.clone(), engine.version(sh)),
        (
            Probe::Privileged,
            "privileged capabilities".to_owned(),
            engine.run_privileged_sh(sh, image, probe),
        ),
    ]
}

/// What a check's output says: the detail shown under its status line, or
/// the problem.
fn judge(probe: &Probe, out: Result<String>, engine: Engine, image: &str) -> Result<String> {
    match probe {
        Probe::Kind => {
            let out = out.context(
                "kind is not installed: see https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
            )?;
            let (major, minor) = parse_kind_version(&out)
                .with_context(|| format!("cannot read `kind version`: {out}"))?;
            if (major, minor) < MIN_KIND {
                bail!(
                    "{out}: kind-crio needs kind v{}.{}.0 or newer",
                    MIN_KIND.0,
                    MIN_KIND.1
                );
            }
            Ok(out)
        }
        Probe::Kubectl => {
            let out = out
                .context("kubectl is not installed: see https://kubernetes.io/docs/tasks/tools/")?;
            Ok(out.lines().next().unwrap_or_default().to_owned())
        }
        Probe::Engine => {
            let out = out.with_context(|| {
                format!("{engine} is not installed or its daemon is not running")
            })?;
            // Only a hint: the capability check below is what decides.
            let old = engine == Engine::Docker
                && parse_docker_major(&out).is_some_and(|m| m < MIN_DOCKER);
            Ok(if old {
                format!(
                    "Docker {out} (before 23.0 privileged containers may lack capabilities; the next check decides)"
                )
            } else {
                format!("{engine} {out}")
            })
        }
        Probe::Privileged => {
            let out =
                out.with_context(|| format!("cannot run a privileged container from {image}"))?;
            check_capabilities(&out, engine)?;
            Ok(format!(
                "every capability reaches privileged containers ({image})"
            ))
        }
    }
}

/// Says why docker cannot build the CRI-O context when `docker buildx
/// version` fails, and what to do. The rendered Dockerfile mounts the
/// context into its one RUN step (`RUN --mount=type=bind`), which only
/// BuildKit reads; docker's BuildKit client is the buildx plugin, and
/// without it `docker build` falls back to the legacy builder, which stops
/// midway with "the --mount option requires BuildKit".
pub fn judge_buildx(out: Result<String>) -> Result<String> {
    let out = out.context(
        "`docker buildx version` failed: without the buildx plugin, `docker build` has no BuildKit, which the CRI-O Dockerfile needs \
         (its RUN --mount fails on the legacy builder with \"the --mount option requires BuildKit\"): \
         build with --engine podman, or install the buildx plugin (Debian and Ubuntu: apt-get install \
         docker-buildx; Docker's own packages: docker-buildx-plugin; or its binary as \
         ~/.docker/cli-plugins/docker-buildx)",
    )?;
    Ok(format!(
        "{}: docker builds with BuildKit",
        out.lines().next().unwrap_or_default().trim()
    ))
}

/// Adds the check that docker can build the CRI-O context (BuildKit, by
/// the buildx plugin): for doctor with docker, and first in a build-image
/// plan that builds with docker.
pub fn add_buildx_check<'a>(plan: &mut Plan<'a>, sh: &'a Shell) {
    plan.check(
        "docker buildx (BuildKit)",
        cmd!(sh, "docker buildx version"),
        judge_buildx,
    );
}

/// Adds every check against `image` to `plan`, one step each; with
/// `warn_only`, a problem is only a warning that ends with that reason.
pub fn add_checks<'a>(
    plan: &mut Plan<'a>,
    sh: &'a Shell,
    engine: Engine,
    image: &str,
    warn_only: Option<&str>,
) {
    for (probe, subject, cmd) in probes(sh, engine, image) {
        let image = image.to_owned();
        plan.check(subject, cmd, move |out| judge(&probe, out, engine, &image));
        if let Some(why) = warn_only {
            plan.warn_only(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_missing_names_the_cause_and_the_remedy() {
        let ok = judge_buildx(Ok(
            "github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4\n".into()
        ))
        .unwrap();
        assert_eq!(
            ok,
            "github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4: docker builds with BuildKit"
        );
        let err = format!(
            "{:#}",
            judge_buildx(Err(anyhow::anyhow!(
                "docker: unknown command: docker buildx"
            )))
            .unwrap_err()
        );
        for part in [
            "`docker buildx version` failed: without the buildx plugin",
            "the --mount option requires BuildKit",
            "--engine podman",
            "apt-get install docker-buildx",
            ": docker: unknown command: docker buildx",
        ] {
            assert!(err.contains(part), "{part:?} missing: {err}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_docker_major("20.10.24+dfsg1\n"), Some(20));
        assert_eq!(parse_docker_major("28.2.2"), Some(28));
    }

    #[test]
    fn capability_check_matches_field_notes() {
        for engine in [Engine::Docker, Engine::Podman] {
            // Every capability of a kernel with 41: fine.
            assert!(check_capabilities("CapBnd:\t000001ffffffffff\n40\n", engine).is_ok());
            assert!(check_capabilities("garbage", engine).is_err());
        }
        // Docker < 23: no CAP_PERFMON/CAP_BPF/CAP_CHECKPOINT_RESTORE.
        let docker = check_capabilities("CapBnd:\t0000003fffffffff\n40\n", Engine::Docker)
            .unwrap_err()
            .to_string();
        assert!(
            docker.starts_with("privileged docker containers get capabilities 0x3fffffffff but the kernel has 0x1ffffffffff (up to 40)")
                && docker.contains("capset: Operation not permitted")
                && docker.contains("Upgrade Docker to 23.0"),
            "{docker}"
        );
        // podman, run where CAP_SYS_RESOURCE is missing from its own set (as
        // on a sandboxed machine): no advice to upgrade Docker.
        let podman = check_capabilities("CapBnd:\t000001fffeffffff\n40\n", Engine::Podman)
            .unwrap_err()
            .to_string();
        assert!(
            podman.starts_with("privileged podman containers get capabilities 0x1fffeffffff")
                && podman.contains("capset: Operation not permitted")
                && podman.contains("only the capabilities it holds itself")
                && !podman.contains("Docker"),
            "{podman}"
        );
    }
}
