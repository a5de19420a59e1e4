//! What the node's preload did and what was pulled anyway, read from the
//! node's own records. All pure: the texts come from `ENGINE exec` and
//! `kubectl` in `e2e.rs`.
//!
//! - `images.txt` (`REFERENCE DIGEST` a line): what the image recorded at
//!   build time.
//! - `preload.status` (`OUTCOME REFERENCE DIGEST` a line, OUTCOME one of
//!   `stored`, `imported`, `present`, `failed`): what the boot-time import
//!   did with each recorded image, `stored` for those the build put in the
//!   node image's read-only store; written atomically when the import
//!   finishes.
//! - CRI-O's journal: `(*Server).PullImage` in cri-o's `server/image_pull.go`
//!   logs `Pulling image: REF` (`log.Infof(ctx, "Pulling image: %s", image)`,
//!   at the default `log_level` info, unchanged from v1.24 to v1.36) before
//!   every pull the kubelet asks for, in logrus's text form
//!   (`msg="Pulling image: REF"`) or JSON form (`"msg":"Pulling image: REF"`).
//! - The kubelet's events: reason `Pulling`, message `Pulling image "REF"`,
//!   `source.host` the node. The kubelet can record no event before the
//!   API server is up, so the control plane's own early pulls show only in
//!   CRI-O's journal; later pulls show in both.
//!
//! A preload that fails to import an image leaves the kubelet to pull it
//! under the very reference `images.txt` lists, so "every image CRI-O has was
//! recorded" cannot see that; these records can.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{Context as _, Result, bail};
use registry::ImageRef;

/// Where the image records what it preloaded (one `REFERENCE DIGEST` per line).
pub const RECORDED_LIST: &str = "/opt/kind-crio/preload/images.txt";

/// Where the node's boot-time import writes its outcome, once finished.
pub const STATUS_FILE: &str = "/run/kind-crio/preload.status";

/// A reference as the engines read it: `docker.io/library/` for a bare name,
/// `:latest` when neither tag nor digest is given (as the kubelet applies it).
/// A reference that does not parse is kept as written.
pub fn normalize(reference: &str) -> String {
    let parsed = ImageRef::parse(reference).or_else(|e| match e {
        registry::ImageRefError::Untagged { .. } => ImageRef::parse(&format!("{reference}:latest")),
        other => Err(other),
    });
    parsed.map_or_else(|_| reference.to_owned(), |r| r.to_string())
}

/// The images a node's `images.txt` records.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Normalised references, in the file's order.
    references: Vec<String>,
    digests: BTreeSet<String>,
    /// Each normalised reference with the manifest digest recorded for it.
    pairs: Vec<(String, String)>,
}

impl Recorded {
    /// `REFERENCE DIGEST` lines; blank lines are skipped.
    pub fn parse(images_txt: &str) -> Result<Recorded> {
        let mut recorded = Recorded::default();
        for (n, line) in images_txt.lines().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [] => {}
                [reference, digest] if digest.starts_with("sha256:") => {
                    recorded.references.push(normalize(reference));
                    recorded.digests.insert(digest.to_owned());
                    recorded
                        .pairs
                        .push((normalize(reference), digest.to_owned()));
                }
                _ => bail!(
                    "{RECORDED_LIST} line {}: expected `REFERENCE sha256:DIGEST`, found {line:?}",
                    n + 1
                ),
            }
        }
        Ok(recorded)
    }

    /// Adds `other`'s images (for events that name no node of the cluster).
    pub fn extend(&mut self, other: &Recorded) {
        self.references.extend(other.references.iter().cloned());
        self.digests.extend(other.digests.iter().cloned());
        self.pairs.extend(other.pairs.iter().cloned());
    }

    /// Whether `image` (a reference as CRI-O or the kubelet names it) is a
    /// recorded one: the same reference once normalised, or a recorded digest.
    pub fn contains(&self, image: &str) -> bool {
        let digest = image.rsplit_once('@').map(|(_, d)| d);
        digest.is_some_and(|d| self.digests.contains(d))
            || self.references.contains(&normalize(image))
    }
}

/// What the boot-time import did with one recorded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// In the node image's read-only store since the build.
    Stored,
    Imported,
    Present,
    Failed,
}

/// One line of the preload's status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub outcome: Outcome,
    pub reference: String,
    pub digest: String,
}

/// `OUTCOME REFERENCE DIGEST` lines; blank lines are skipped.
pub fn parse_status(text: &str) -> Result<Vec<StatusLine>> {
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (outcome, reference, digest) = match fields[..] {
            [] => continue,
            [o, r, d] => (o, r, d),
            _ => bail!(
                "{STATUS_FILE} line {}: expected `OUTCOME REFERENCE DIGEST`, found {line:?}",
                n + 1
            ),
        };
        let outcome = match outcome {
            "stored" => Outcome::Stored,
            "imported" => Outcome::Imported,
            "present" => Outcome::Present,
            "failed" => Outcome::Failed,
            other => bail!(
                "{STATUS_FILE} line {}: outcome {other:?} is none of stored, imported, present, failed",
                n + 1
            ),
        };
        lines.push(StatusLine {
            outcome,
            reference: reference.to_owned(),
            digest: digest.to_owned(),
        });
    }
    Ok(lines)
}

/// What is wrong with a finished preload: every recorded image must be
/// stored, imported or present, and none may have failed.
pub fn status_problems(recorded: &Recorded, status: &[StatusLine]) -> Vec<String> {
    let mut problems: Vec<String> = status
        .iter()
        .filter(|l| l.outcome == Outcome::Failed)
        .map(|l| format!("{} failed to import", l.reference))
        .collect();
    for reference in &recorded.references {
        let done = status
            .iter()
            .any(|l| l.outcome != Outcome::Failed && normalize(&l.reference) == *reference);
        let failed = status
            .iter()
            .any(|l| l.outcome == Outcome::Failed && normalize(&l.reference) == *reference);
        if !done && !failed {
            problems.push(format!("{reference} has no outcome in {STATUS_FILE}"));
        }
    }
    problems
}

/// `8 in the image's store, 1 imported, 1 failed: registry.k8s.io/etcd:3.6.4-0`:
/// the counts that are not zero, then the images that failed.
pub fn summary(status: &[StatusLine]) -> String {
    let count = |o: Outcome| status.iter().filter(|l| l.outcome == o).count();
    let counts: Vec<String> = [
        (Outcome::Stored, "in the image's store"),
        (Outcome::Imported, "imported"),
        (Outcome::Present, "already present"),
        (Outcome::Failed, "failed"),
    ]
    .into_iter()
    .filter(|(o, _)| count(*o) > 0)
    .map(|(o, word)| format!("{} {word}", count(o)))
    .collect();
    if counts.is_empty() {
        return "no image recorded".to_owned();
    }
    let mut out = counts.join(", ");
    let failed: Vec<&str> = status
        .iter()
        .filter(|l| l.outcome == Outcome::Failed)
        .map(|l| l.reference.as_str())
        .collect();
    if !failed.is_empty() {
        let _ = write!(out, ": {}", failed.join(", "));
    }
    out
}

/// `systemctl show --property=ActiveState,Result` of the preload unit, in
/// words, for a node that has no status file.
pub fn unit_state(show: &str) -> String {
    let get = |key: &str| {
        show.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
            .trim()
    };
    match (get("ActiveState"), get("Result")) {
        ("activating", _) => "the preload is still running".to_owned(),
        ("failed", result) => format!("the preload unit failed ({result})"),
        ("inactive", _) => "the preload never ran (its unit is inactive)".to_owned(),
        ("active", _) => "the preload ran but left no status".to_owned(),
        ("", _) => "systemd could not be asked about the preload".to_owned(),
        (state, _) => format!("the preload unit is {state}"),
    }
}

/// Whether that `systemctl show` says the preload is still running.
pub fn unit_running(show: &str) -> bool {
    show.lines().any(|l| l.trim() == "ActiveState=activating")
}

/// The images CRI-O's journal shows pulls of (`Pulling image: REF`), in order.
pub fn journal_pulls(journal: &str) -> Vec<String> {
    const MARK: &str = "Pulling image: ";
    journal
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find(MARK)? + MARK.len()..];
            // The message ends at the closing quote of logrus's msg="..." or
            // of the JSON string; a bare message ends at the line's end.
            let image = rest.split(['"', '\\', ' ']).next().unwrap_or_default();
            (!image.is_empty()).then(|| image.to_owned())
        })
        .collect()
}

/// A `Pulling` event of the kubelet: which node pulled which image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullEvent {
    pub node: String,
    pub image: String,
}

/// The `Pulling` events in `kubectl get events -A -o json`.
pub fn pulling_events(events_json: &str) -> Result<Vec<PullEvent>> {
    let v: serde_json::Value =
        serde_json::from_str(events_json).context("kubectl get events -o json printed no JSON")?;
    let Some(items) = v["items"].as_array() else {
        bail!("kubectl get events -o json printed no `items` list");
    };
    let mut events = Vec::new();
    for item in items {
        if item["reason"].as_str() != Some("Pulling") {
            continue;
        }
        let message = item["message"].as_str().unwrap_or_default();
        let Some(image) = message
            .strip_prefix("Pulling image \"")
            .and_then(|m| m.strip_suffix('"'))
        else {
            continue;
        };
        let node = [&item["source"]["host"], &item["reportingInstance"]]
            .into_iter()
            .filter_map(|v| v.as_str())
            .find(|s| !s.is_empty())
            .unwrap_or("an unknown node");
        events.push(PullEvent {
            node: node.to_owned(),
            image: image.to_owned(),
        });
    }
    Ok(events)
}

/// Recorded references CRI-O holds with another manifest digest than the one
/// recorded: pulled again, from a registry, under the recorded name. (The
/// kube images' digests, made by containerd from the release tarballs, are
/// never a registry's. An image pulled from the very registry kind fetched it
/// from, such as the pause image, which CRI-O pulls itself and logs only at
/// debug level, comes back with the same digests: that pull shows nowhere.)
pub fn changed_digests(recorded: &Recorded, crictl_json: &str) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for image in crictl_images(crictl_json)? {
        let digests: Vec<&str> = image
            .digests
            .iter()
            .filter_map(|d| d.rsplit_once('@').map(|(_, d)| d))
            .collect();
        for tag in &image.tags {
            let tag = normalize(tag);
            for (reference, digest) in &recorded.pairs {
                if *reference == tag && !digests.contains(&digest.as_str()) {
                    changed.push(format!(
                        "{tag} has digest {}, not the recorded {digest}",
                        if digests.is_empty() {
                            "none".to_owned()
                        } else {
                            digests.join(", ")
                        }
                    ));
                }
            }
        }
    }
    Ok(changed)
}

/// One image of `crictl images -o json`: its names.
struct CrictlImage {
    tags: Vec<String>,
    digests: Vec<String>,
}

fn crictl_images(crictl_json: &str) -> Result<Vec<CrictlImage>> {
    let v: serde_json::Value =
        serde_json::from_str(crictl_json).context("crictl images -o json printed no JSON")?;
    let strings = |field: &serde_json::Value| -> Vec<String> {
        field
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .map(str::to_owned)
            .collect()
    };
    Ok(v["images"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|image| CrictlImage {
            tags: strings(&image["repoTags"]),
            digests: strings(&image["repoDigests"]),
        })
        .collect())
}

/// Images CRI-O has that the preload did not record (by tag or digest).
pub fn unrecorded_images(recorded: &Recorded, crictl_json: &str) -> Result<Vec<String>> {
    Ok(crictl_images(crictl_json)?
        .into_iter()
        .filter(|i| {
            !i.tags
                .iter()
                .chain(&i.digests)
                .any(|n| recorded.contains(n))
        })
        .map(|i| {
            i.tags
                .first()
                .or(i.digests.first())
                .cloned()
                .unwrap_or_else(|| "<unnamed>".to_owned())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// images.txt as preload-record.sh writes it for a kind node (sorted).
    const IMAGES_TXT: &str = "\
docker.io/kindest/kindnetd:v20250512-df8de77b sha256:07655ddf2eebe5d250f7a72c25f638b27126805d61779741b4e62e69ba080558
docker.io/kindest/local-path-provisioner:v20250214-acbabc1a sha256:3a4a8a2a9e0f3e0b1ba8e5d7e4e3fd9f1b4c8b3e7f6a5d4c3b2a1f0e9d8c7b6a
registry.k8s.io/coredns/coredns:v1.12.1 sha256:e8c262566636e6bc340ece6473b0eed193cad045384401529721ddbe6463d31c
registry.k8s.io/etcd:3.6.4-0 sha256:5f1f5298c888daa46c4409ff4cefe5ca9d16e479419f94cdb5f5d5563dac0115
registry.k8s.io/kube-apiserver:v1.34.0 sha256:495d3253a47a9a64a62041d518678c8b101fb628488e729d9f52ddff7cf82a86
registry.k8s.io/pause:3.10.1 sha256:278fb9dbcca9518083ad1e11276933a2e96f23de604a3a08cc3c80002767d24c
";

    const ETCD_DIGEST: &str =
        "sha256:5f1f5298c888daa46c4409ff4cefe5ca9d16e479419f94cdb5f5d5563dac0115";

    fn recorded() -> Recorded {
        Recorded::parse(IMAGES_TXT).unwrap()
    }

    /// A status file for IMAGES_TXT where etcd failed and pause was there.
    fn status_with_etcd_failed() -> String {
        IMAGES_TXT
            .lines()
            .map(|l| {
                let outcome = if l.starts_with("registry.k8s.io/etcd:") {
                    "failed"
                } else if l.starts_with("registry.k8s.io/pause:") {
                    "present"
                } else {
                    "imported"
                };
                format!("{outcome} {l}\n")
            })
            .collect()
    }

    #[test]
    fn references_compare_as_the_engines_read_them() {
        assert_eq!(normalize("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            normalize("kindest/kindnetd:v1"),
            "docker.io/kindest/kindnetd:v1"
        );
        assert_eq!(
            normalize("registry.k8s.io/etcd:3.6.4-0"),
            "registry.k8s.io/etcd:3.6.4-0"
        );
        assert_eq!(normalize("not a reference"), "not a reference");

        let r = recorded();
        assert!(r.contains("registry.k8s.io/etcd:3.6.4-0"));
        assert!(r.contains("kindest/kindnetd:v20250512-df8de77b"));
        assert!(r.contains(&format!("registry.k8s.io/etcd@{ETCD_DIGEST}")));
        assert!(!r.contains("registry.k8s.io/etcd:3.6.5-0"));
        assert!(!r.contains("registry.k8s.io/e2e-test-images/agnhost:2.53"));

        let err = Recorded::parse("registry.k8s.io/pause:3.10\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "/opt/kind-crio/preload/images.txt line 1: expected `REFERENCE sha256:DIGEST`, found \"registry.k8s.io/pause:3.10\""
        );
    }

    #[test]
    fn status_lines_parse_and_refuse_garbage() {
        let status = parse_status(&status_with_etcd_failed()).unwrap();
        assert_eq!(status.len(), 6);
        assert_eq!(
            status[3],
            StatusLine {
                outcome: Outcome::Failed,
                reference: "registry.k8s.io/etcd:3.6.4-0".to_owned(),
                digest: ETCD_DIGEST.to_owned(),
            }
        );
        assert!(parse_status("").unwrap().is_empty());
        let err = parse_status("imported registry.k8s.io/pause:3.10\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "/run/kind-crio/preload.status line 1: expected `OUTCOME REFERENCE DIGEST`"
            ),
            "{err}"
        );
        let err = parse_status("\npulled registry.k8s.io/pause:3.10 sha256:aa\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "/run/kind-crio/preload.status line 2: outcome \"pulled\" is none of stored, imported, present, failed"
        );
    }

    #[test]
    fn a_failed_or_missing_image_is_a_problem() {
        let r = recorded();
        let all_done: String = IMAGES_TXT
            .lines()
            .map(|l| format!("imported {l}\n"))
            .collect();
        assert_eq!(
            status_problems(&r, &parse_status(&all_done).unwrap()),
            Vec::<String>::new()
        );

        let failed = parse_status(&status_with_etcd_failed()).unwrap();
        assert_eq!(
            status_problems(&r, &failed),
            ["registry.k8s.io/etcd:3.6.4-0 failed to import"]
        );

        // A status that lost a line (a recorded image the import never reached).
        let partial: String = all_done
            .lines()
            .filter(|l| !l.contains("/coredns"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            status_problems(&r, &parse_status(&partial).unwrap()),
            [
                "registry.k8s.io/coredns/coredns:v1.12.1 has no outcome in /run/kind-crio/preload.status"
            ]
        );
    }

    #[test]
    fn summaries_name_what_failed() {
        let failed = parse_status(&status_with_etcd_failed()).unwrap();
        assert_eq!(
            summary(&failed),
            "4 imported, 1 already present, 1 failed: registry.k8s.io/etcd:3.6.4-0"
        );
        let ok: String = IMAGES_TXT
            .lines()
            .map(|l| format!("imported {l}\n"))
            .collect();
        assert_eq!(summary(&parse_status(&ok).unwrap()), "6 imported");
        // The read-only store held all but one, which failed at boot.
        let stored: String = IMAGES_TXT
            .lines()
            .map(|l| {
                let outcome = if l.contains("/etcd:") {
                    "failed"
                } else {
                    "stored"
                };
                format!("{outcome} {l}\n")
            })
            .collect();
        let stored = parse_status(&stored).unwrap();
        assert_eq!(
            summary(&stored),
            "5 in the image's store, 1 failed: registry.k8s.io/etcd:3.6.4-0"
        );
        assert_eq!(
            status_problems(&recorded(), &stored),
            ["registry.k8s.io/etcd:3.6.4-0 failed to import"]
        );
        assert_eq!(summary(&[]), "no image recorded");
    }

    /// `journalctl -u crio` as a kind node prints it (short format), with one
    /// line in logrus's JSON form (`--log-format json`) and `-o cat` lines.
    const JOURNAL: &str = r#"Dec 01 10:00:01 kc-control-plane systemd[1]: Starting crio.service - Container Runtime Interface for OCI (CRI-O)...
Dec 01 10:00:01 kc-control-plane crio[212]: time="2026-12-01T10:00:01.512345678Z" level=info msg="Starting CRI-O, version: 1.34.1, git: 98ef7f4f4e8a1cbf4e2a9b7a0e2b2d1b9bb8a5c0(clean)"
Dec 01 10:00:09 kc-control-plane crio[212]: time="2026-12-01T10:00:09.101010101Z" level=info msg="Checking image status: registry.k8s.io/etcd:3.6.4-0" id=7d1c0c2e-5a0e-4e45-9f0c-1f7c2b0e6a11 name=/runtime.v1.ImageService/ImageStatus
Dec 01 10:00:09 kc-control-plane crio[212]: time="2026-12-01T10:00:09.102030405Z" level=info msg="Image registry.k8s.io/etcd:3.6.4-0 not found" id=7d1c0c2e-5a0e-4e45-9f0c-1f7c2b0e6a11 name=/runtime.v1.ImageService/ImageStatus
Dec 01 10:00:09 kc-control-plane crio[212]: time="2026-12-01T10:00:09.203040506Z" level=info msg="Pulling image: registry.k8s.io/etcd:3.6.4-0" id=0b7d2d8e-2f5c-4f4e-8c1a-3b9d4e5f6a7b name=/runtime.v1.ImageService/PullImage
Dec 01 10:00:12 kc-control-plane crio[212]: time="2026-12-01T10:00:12.304050607Z" level=info msg="Pulled image: registry.k8s.io/etcd@sha256:5f1f5298c888daa46c4409ff4cefe5ca9d16e479419f94cdb5f5d5563dac0115" id=0b7d2d8e-2f5c-4f4e-8c1a-3b9d4e5f6a7b name=/runtime.v1.ImageService/PullImage
{"id":"1d2c","level":"info","msg":"Pulling image: docker.io/library/busybox:1.36","name":"/runtime.v1.ImageService/PullImage","time":"2026-12-01T10:01:00Z"}
time="2026-12-01T10:02:00.000000000Z" level=info msg="Pulling image: registry.k8s.io/e2e-test-images/agnhost:2.53" id=aa name=/runtime.v1.ImageService/PullImage
"#;

    #[test]
    fn unit_states_in_words() {
        assert_eq!(
            unit_state("ActiveState=activating\nResult=success\n"),
            "the preload is still running"
        );
        assert_eq!(
            unit_state("ActiveState=failed\nResult=timeout\n"),
            "the preload unit failed (timeout)"
        );
        assert_eq!(
            unit_state("ActiveState=inactive\nResult=success\n"),
            "the preload never ran (its unit is inactive)"
        );
        assert_eq!(
            unit_state(""),
            "systemd could not be asked about the preload"
        );
    }

    #[test]
    fn crio_journal_pulls() {
        assert_eq!(
            journal_pulls(JOURNAL),
            [
                "registry.k8s.io/etcd:3.6.4-0",
                "docker.io/library/busybox:1.36",
                "registry.k8s.io/e2e-test-images/agnhost:2.53"
            ]
        );
        assert!(journal_pulls("-- No entries --\n").is_empty());
        let r = recorded();
        let preloaded: Vec<String> = journal_pulls(JOURNAL)
            .into_iter()
            .filter(|i| r.contains(i))
            .collect();
        assert_eq!(preloaded, ["registry.k8s.io/etcd:3.6.4-0"]);
    }

    /// Trimmed `kubectl get events -A -o json` from a kind cluster: a pull
    /// of a preloaded image on the worker, the smoke image, and events of
    /// other reasons.
    const EVENTS: &str = r#"{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "count": 1,
            "eventTime": null,
            "firstTimestamp": "2026-12-01T10:00:30Z",
            "involvedObject": {
                "apiVersion": "v1",
                "fieldPath": "spec.containers{kindnet-cni}",
                "kind": "Pod",
                "name": "kindnet-x7k2p",
                "namespace": "kube-system",
                "resourceVersion": "512",
                "uid": "3f0b9a8e-6c2d-4e1f-9a7b-5c4d3e2f1a0b"
            },
            "kind": "Event",
            "lastTimestamp": "2026-12-01T10:00:30Z",
            "message": "Pulling image \"docker.io/kindest/kindnetd:v20250512-df8de77b\"",
            "metadata": {
                "name": "kindnet-x7k2p.187c9b2a1d3e4f50",
                "namespace": "kube-system"
            },
            "reason": "Pulling",
            "reportingComponent": "kubelet",
            "reportingInstance": "kc-worker",
            "source": {
                "component": "kubelet",
                "host": "kc-worker"
            },
            "type": "Normal"
        },
        {
            "involvedObject": {"kind": "Pod", "name": "coredns-674b8bbfcf-9xq5z", "namespace": "kube-system"},
            "kind": "Event",
            "message": "Container image \"registry.k8s.io/coredns/coredns:v1.12.1\" already present on machine",
            "reason": "Pulled",
            "source": {"component": "kubelet", "host": "kc-control-plane"},
            "type": "Normal"
        },
        {
            "involvedObject": {"kind": "Pod", "name": "smoke-server", "namespace": "default"},
            "kind": "Event",
            "message": "Pulling image \"registry.k8s.io/e2e-test-images/agnhost:2.53\"",
            "reason": "Pulling",
            "reportingComponent": "kubelet",
            "reportingInstance": "kc-control-plane",
            "source": {},
            "type": "Normal"
        },
        {
            "involvedObject": {"kind": "Node", "name": "kc-worker"},
            "kind": "Event",
            "message": "Node kc-worker status is now: NodeReady",
            "reason": "NodeReady",
            "source": {"component": "kubelet", "host": "kc-worker"},
            "type": "Normal"
        }
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""}
}"#;

    #[test]
    fn kubelet_pulling_events() {
        let events = pulling_events(EVENTS).unwrap();
        assert_eq!(
            events,
            [
                PullEvent {
                    node: "kc-worker".to_owned(),
                    image: "docker.io/kindest/kindnetd:v20250512-df8de77b".to_owned()
                },
                PullEvent {
                    node: "kc-control-plane".to_owned(),
                    image: "registry.k8s.io/e2e-test-images/agnhost:2.53".to_owned()
                }
            ]
        );
        let r = recorded();
        assert!(r.contains(&events[0].image) && !r.contains(&events[1].image));
        assert!(
            pulling_events(r#"{"apiVersion":"v1","items":[],"kind":"List"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(pulling_events("No resources found").is_err());
        assert!(pulling_events("{}").is_err());
    }

    /// The case the checks exist for: etcd failed to import, the kubelet
    /// pulled it under the tag images.txt lists. CRI-O then holds only
    /// recorded names, so the check by names alone passes; the status and
    /// CRI-O's journal do not.
    #[test]
    fn a_failed_import_pulled_under_its_recorded_tag_is_caught() {
        let r = recorded();
        let crictl: String = format!(
            r#"{{"images":[{}]}}"#,
            IMAGES_TXT
                .lines()
                .map(|l| {
                    let (reference, digest) = l.split_once(' ').unwrap();
                    let repo = reference.rsplit_once(':').unwrap().0;
                    format!(r#"{{"repoTags":["{reference}"],"repoDigests":["{repo}@{digest}"]}}"#)
                })
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(
            unrecorded_images(&r, &crictl).unwrap(),
            Vec::<String>::new()
        );
        let status = parse_status(&status_with_etcd_failed()).unwrap();
        assert_eq!(
            status_problems(&r, &status),
            ["registry.k8s.io/etcd:3.6.4-0 failed to import"]
        );
        assert!(
            journal_pulls(JOURNAL)
                .iter()
                .any(|i| i == "registry.k8s.io/etcd:3.6.4-0" && r.contains(i))
        );
    }

    #[test]
    fn unrecorded_images_are_those_crio_has_beyond_the_record() {
        let crictl = r#"{"images":[
            {"repoTags":["registry.k8s.io/pause:3.10.1"],"repoDigests":[]},
            {"repoTags":[],"repoDigests":["registry.k8s.io/etcd@sha256:5f1f5298c888daa46c4409ff4cefe5ca9d16e479419f94cdb5f5d5563dac0115"]},
            {"repoTags":["docker.io/library/busybox:latest"],"repoDigests":["docker.io/library/busybox@sha256:ccc"]}
        ]}"#;
        assert_eq!(
            unrecorded_images(&recorded(), crictl).unwrap(),
            ["docker.io/library/busybox:latest"]
        );
        assert!(unrecorded_images(&recorded(), "not json").is_err());
    }

    #[test]
    fn a_recorded_name_with_another_digest_was_pulled_again() {
        let crictl = format!(
            r#"{{"images":[
            {{"repoTags":["registry.k8s.io/etcd:3.6.4-0"],"repoDigests":["registry.k8s.io/etcd@{ETCD_DIGEST}"]}},
            {{"repoTags":["registry.k8s.io/kube-apiserver:v1.34.0"],"repoDigests":["registry.k8s.io/kube-apiserver@sha256:0123"]}},
            {{"repoTags":["docker.io/library/busybox:latest"],"repoDigests":[]}}
        ]}}"#
        );
        assert_eq!(
            changed_digests(&recorded(), &crictl).unwrap(),
            [
                "registry.k8s.io/kube-apiserver:v1.34.0 has digest sha256:0123, not the recorded \
              sha256:495d3253a47a9a64a62041d518678c8b101fb628488e729d9f52ddff7cf82a86"
            ]
        );
        assert!(changed_digests(&recorded(), "[").is_err());
    }
}
