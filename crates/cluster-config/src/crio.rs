//! Making kind's nodes talk to CRI-O instead of containerd.
//!
//! kind's kubeadm config hard-codes containerd's socket in
//! `nodeRegistration.criSocket` of `InitConfiguration` (read by the first
//! control-plane node) and `JoinConfiguration` (read by every other node).
//! A merge patch without `apiVersion` matches every kubeadm API version
//! (v1beta3 and v1beta4 alike), so one small patch per object suffices:
//! control-plane nodes get both, workers the `JoinConfiguration` one.
//!
//! [`make_crio_ready`] adds those patches to a user's config where no patch
//! already sets the CRI-O socket, and refuses patches that point kubeadm or
//! the kubelet at another runtime. Patches are read the way kind reads them:
//! a merge patch may hold several YAML documents, each matched by `kind`
//! (and by `apiVersion`, when it has one); cluster-level patches apply to
//! every node, before the node's own.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::error::Error;
use crate::model::{Cluster, KubeProxyMode, Networking, Node, PatchJson6902, Role};

/// The socket CRI-O listens on by default.
pub const CRIO_SOCKET: &str = "unix:///var/run/crio/crio.sock";

/// Values that already mean CRI-O's socket: in a kind node `/var/run` links to
/// `/run`, and kubeadm adds the `unix://` scheme to a bare path.
pub const CRIO_SOCKET_SPELLINGS: [&str; 4] = [
    CRIO_SOCKET,
    "unix:///run/crio/crio.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
];

/// The kubeadm config objects that carry `nodeRegistration.criSocket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KubeadmKind {
    /// Read by `kubeadm init` on the first control-plane node.
    InitConfiguration,
    /// Read by `kubeadm join` on every other node.
    JoinConfiguration,
}

impl KubeadmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KubeadmKind::InitConfiguration => "InitConfiguration",
            KubeadmKind::JoinConfiguration => "JoinConfiguration",
        }
    }

    /// The objects a node of `role` needs patched: any control-plane node may
    /// be the one that runs `kubeadm init`, the others join.
    pub fn needed_by(role: Role) -> &'static [KubeadmKind] {
        match role {
            Role::ControlPlane => &[
                KubeadmKind::InitConfiguration,
                KubeadmKind::JoinConfiguration,
            ],
            Role::Worker => &[KubeadmKind::JoinConfiguration],
        }
    }

    fn from_kind(kind: &str) -> Option<KubeadmKind> {
        match kind {
            "InitConfiguration" => Some(KubeadmKind::InitConfiguration),
            "JoinConfiguration" => Some(KubeadmKind::JoinConfiguration),
            _ => None,
        }
    }
}

impl fmt::Display for KubeadmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The merge patch that points `kind`'s `nodeRegistration.criSocket` at CRI-O.
/// It has no `apiVersion`, so it applies to kubeadm v1beta3 and v1beta4 alike.
pub fn crio_patch(kind: KubeadmKind) -> String {
    format!("kind: {kind}\nnodeRegistration:\n  criSocket: {CRIO_SOCKET}\n")
}

/// What [`generate`] builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// At least 1; more than one puts a load balancer in front of them.
    pub control_planes: usize,
    pub workers: usize,
    /// The cluster name (`name:`), if any.
    pub name: Option<String>,
    /// Set as every node's `image`.
    pub image: Option<String>,
    pub kube_proxy_mode: Option<KubeProxyMode>,
}

impl Default for GenerateOptions {
    /// One control-plane node and one worker, nothing else set.
    fn default() -> Self {
        GenerateOptions {
            control_planes: 1,
            workers: 1,
            name: None,
            image: None,
            kube_proxy_mode: None,
        }
    }
}

/// A config for a CRI-O cluster: the nodes asked for, each with its CRI-O patches.
/// Fails (with [`Error::Invalid`]) when kind would refuse the result, e.g. for
/// zero control-plane nodes or a bad name.
pub fn generate(options: &GenerateOptions) -> Result<Cluster, Error> {
    let roles = std::iter::repeat_n(Role::ControlPlane, options.control_planes)
        .chain(std::iter::repeat_n(Role::Worker, options.workers));
    let nodes = roles
        .map(|role| Node {
            role: Some(role),
            image: options.image.clone(),
            kubeadm_config_patches: KubeadmKind::needed_by(role)
                .iter()
                .map(|kind| crio_patch(*kind))
                .collect(),
            ..Node::default()
        })
        .collect();
    let cluster = Cluster {
        name: options.name.clone(),
        nodes,
        networking: options.kube_proxy_mode.map(|mode| Networking {
            kube_proxy_mode: Some(mode),
            ..Networking::default()
        }),
        ..Cluster::default()
    };
    cluster.validate()?;
    Ok(cluster)
}

/// `cluster` with the CRI-O patches added where no patch sets the CRI-O socket
/// yet; every field and patch already there is kept as it is. Applying it to
/// its own result changes nothing.
///
/// - A config without nodes (kind's default: one control-plane node) gets that
///   node written out, `role: control-plane` and nothing else, to carry the patches.
/// - A patch without `apiVersion` (merge patch) or `group`/`version` (JSON 6902)
///   that sets the CRI-O socket covers its object: at cluster level for every
///   node, at node level for that node. One limited to an API version covers
///   only that version, so the version-independent patch is still added.
/// - A patch that sets `nodeRegistration.criSocket` (or the kubelet's
///   `containerRuntimeEndpoint`) to anything else, removes it, or copies it from
///   elsewhere is a conflict: [`Error::CriSocketConflict`] names the patch.
/// - A patch that cannot be read is [`Error::Patch`], whatever object it is
///   for: kind's validation does not look at patches, but when it writes the
///   kubeadm config (after creating the nodes) it reads every one and fails
///   on the first it cannot read.
///
/// The config is not validated; call [`Cluster::validate`] for that.
pub fn make_crio_ready(mut cluster: Cluster) -> Result<Cluster, Error> {
    let covered_everywhere = covered_by(
        &cluster.kubeadm_config_patches,
        &cluster.kubeadm_config_patches_json6902,
        "",
    )?;
    if cluster.nodes.is_empty() {
        cluster.nodes.push(Node::new(Role::ControlPlane));
    }
    for (i, node) in cluster.nodes.iter_mut().enumerate() {
        let covered_here = covered_by(
            &node.kubeadm_config_patches,
            &node.kubeadm_config_patches_json6902,
            &format!("nodes[{i}]."),
        )?;
        for kind in KubeadmKind::needed_by(node.effective_role()) {
            if !covered_everywhere.contains(kind) && !covered_here.contains(kind) {
                node.kubeadm_config_patches.push(crio_patch(*kind));
            }
        }
    }
    Ok(cluster)
}

/// The objects these patches point at CRI-O for every kubeadm version;
/// an error for any patch that points them elsewhere or cannot be read.
fn covered_by(
    merge: &[String],
    json6902: &[PatchJson6902],
    prefix: &str,
) -> Result<BTreeSet<KubeadmKind>, Error> {
    let mut covered = BTreeSet::new();
    for (j, patch) in merge.iter().enumerate() {
        let documents = split_documents(patch);
        let several = documents.len() > 1;
        for (d, document) in documents.into_iter().enumerate() {
            let location = if several {
                format!("{prefix}kubeadmConfigPatches[{j}] (document {})", d + 1)
            } else {
                format!("{prefix}kubeadmConfigPatches[{j}]")
            };
            let Some(value) = read_yaml(document, &location, "a kubeadm config merge patch")?
            else {
                continue;
            };
            inspect_merge_patch(&value, &location, &mut covered)?;
        }
    }
    for (j, patch) in json6902.iter().enumerate() {
        let location = format!("{prefix}kubeadmConfigPatchesJSON6902[{j}]");
        inspect_json6902_patch(patch, &location, &mut covered)?;
    }
    Ok(covered)
}

/// Splits a patch into YAML documents as kind does: at every line that starts with `---`.
fn split_documents(patch: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in patch.split_inclusive('\n') {
        if line.starts_with("---") {
            documents.push(&patch[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&patch[start..]);
    documents
}

/// `None` for a document with nothing in it (only blank lines and comments).
fn read_yaml(text: &str, location: &str, what: &str) -> Result<Option<Value>, Error> {
    let blank = text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    });
    if blank {
        return Ok(None);
    }
    // kind reads patches with sigs.k8s.io/yaml (go-yaml v2, not strict),
    // where a key given twice is no error: the last value counts.
    let options = serde_saphyr::options! {
        with_snippet: false,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
    };
    serde_saphyr::from_str_with_options::<Value>(text, options)
        .map(Some)
        .map_err(|e| Error::Patch {
            location: location.to_owned(),
            message: format!("cannot read it as {what}: {}", crate::yaml::render(&e)),
        })
}

/// What a patch does to one setting the runtime depends on.
enum Setting<'a> {
    Sets(&'a Value),
    Removes,
    CopiesFrom(&'a str),
}

/// Records coverage, or fails on a conflict, for one setting found in a patch.
fn judge(
    setting: Setting<'_>,
    target: Target,
    versioned: bool,
    location: &str,
    covered: &mut BTreeSet<KubeadmKind>,
) -> Result<(), Error> {
    let found = match setting {
        Setting::Sets(Value::String(s)) if CRIO_SOCKET_SPELLINGS.contains(&s.as_str()) => {
            if let (Target::CriSocket(kind), false) = (target, versioned) {
                covered.insert(kind);
            }
            return Ok(());
        }
        Setting::Sets(Value::Null) => "null (which removes it)".to_owned(),
        Setting::Sets(Value::String(s)) => format!("{s:?}"),
        Setting::Sets(other) => other.to_string(),
        Setting::Removes => "nothing (it removes the setting)".to_owned(),
        Setting::CopiesFrom(from) => format!("the value at {from:?}"),
    };
    Err(Error::CriSocketConflict {
        location: location.to_owned(),
        field: target.to_string(),
        found,
    })
}

/// A setting that decides which runtime a node talks to.
#[derive(Debug, Clone, Copy)]
enum Target {
    CriSocket(KubeadmKind),
    /// `KubeletConfiguration.containerRuntimeEndpoint`, which newer kubelets
    /// read instead of the `--container-runtime-endpoint` flag kubeadm derives
    /// from the criSocket. kind never sets it; a patch that does must agree.
    KubeletEndpoint,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::CriSocket(kind) => write!(f, "{kind} nodeRegistration.criSocket"),
            Target::KubeletEndpoint => f.write_str("KubeletConfiguration containerRuntimeEndpoint"),
        }
    }
}

fn target_of(kind: &str) -> Option<Target> {
    match kind {
        "KubeletConfiguration" => Some(Target::KubeletEndpoint),
        other => KubeadmKind::from_kind(other).map(Target::CriSocket),
    }
}

fn inspect_merge_patch(
    value: &Value,
    location: &str,
    covered: &mut BTreeSet<KubeadmKind>,
) -> Result<(), Error> {
    let document = match value {
        Value::Object(document) => document,
        // Read by kind as a patch for no object at all.
        Value::Null => return Ok(()),
        _ => return Err(Error::Patch {
            location: location.to_owned(),
            message: "a kubeadm config merge patch must be a YAML mapping with a `kind` (e.g. `kind: JoinConfiguration`)".to_owned(),
        }),
    };
    // kind reads these two into Go strings first, which fails for anything else.
    for field in ["kind", "apiVersion"] {
        if let Some(found) = document
            .get(field)
            .filter(|v| !v.is_string() && !v.is_null())
        {
            return Err(Error::Patch {
                location: location.to_owned(),
                message: format!(
                    "`{field}` of a kubeadm config merge patch must be a string, not {found}"
                ),
            });
        }
    }
    let Some(target) = document
        .get("kind")
        .and_then(Value::as_str)
        .and_then(target_of)
    else {
        return Ok(());
    };
    let versioned = document.get("apiVersion").is_some_and(|v| !v.is_null());
    let setting = match target {
        Target::CriSocket(_) => match document.get("nodeRegistration") {
            None => None,
            Some(Value::Object(registration)) => registration.get("criSocket").map(Setting::Sets),
            // `nodeRegistration: null` deletes the whole object, socket included.
            Some(other) => Some(Setting::Sets(other)),
        },
        Target::KubeletEndpoint => document.get("containerRuntimeEndpoint").map(Setting::Sets),
    };
    match setting {
        Some(setting) => judge(setting, target, versioned, location, covered),
        None => Ok(()),
    }
}

fn inspect_json6902_patch(
    patch: &PatchJson6902,
    location: &str,
    covered: &mut BTreeSet<KubeadmKind>,
) -> Result<(), Error> {
    // kind reads every JSON 6902 patch, for whatever object, as a list of
    // mappings before it applies any; only then do `op` and `path` matter.
    let Some(operations) = read_yaml(&patch.patch, location, "a JSON 6902 patch")? else {
        return Ok(());
    };
    let shape_error = || Error::Patch {
        location: location.to_owned(),
        message: "a JSON 6902 patch must be a list of operations, each with `op` and `path`"
            .to_owned(),
    };
    let operations = match &operations {
        Value::Array(operations) => operations,
        // kind reads `null` as no operations.
        Value::Null => return Ok(()),
        _ => return Err(shape_error()),
    };
    if !operations.iter().all(Value::is_object) {
        return Err(shape_error());
    }
    let Some(target) = target_of(&patch.kind) else {
        return Ok(());
    };
    let versioned = patch.api_version().is_some();
    let (parent, leaf) = match target {
        Target::CriSocket(_) => ("/nodeRegistration", "/nodeRegistration/criSocket"),
        Target::KubeletEndpoint => ("", "/containerRuntimeEndpoint"),
    };
    for operation in operations {
        let op = operation.get("op").and_then(Value::as_str);
        let path = operation.get("path").and_then(Value::as_str);
        let (Some(op), Some(path)) = (op, path) else {
            return Err(shape_error());
        };
        let from = operation.get("from").and_then(Value::as_str);
        let touches_path = path == leaf || (!parent.is_empty() && path == parent);
        let touches_from = from.is_some_and(|f| f == leaf || (!parent.is_empty() && f == parent));
        let setting = match op {
            "add" | "replace" if touches_path => {
                let value = operation.get("value").unwrap_or(&Value::Null);
                if path == leaf {
                    Some(Setting::Sets(value))
                } else {
                    // The whole parent object is replaced: what does it say about the socket?
                    match value.get("criSocket") {
                        Some(socket) => Some(Setting::Sets(socket)),
                        None => Some(Setting::Removes),
                    }
                }
            }
            "remove" if touches_path => Some(Setting::Removes),
            "move" if touches_from => Some(Setting::Removes),
            "move" | "copy" if touches_path => Some(Setting::CopiesFrom(from.unwrap_or(""))),
            _ => None,
        };
        if let Some(setting) = setting {
            judge(setting, target, versioned, location, covered)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_separator_lines() {
        assert_eq!(split_documents("a: 1\n"), vec!["a: 1\n"]);
        assert_eq!(
            split_documents("a: 1\n---\nb: 2\n"),
            vec!["a: 1\n", "b: 2\n"]
        );
        assert_eq!(split_documents("---\nb: 2"), vec!["", "b: 2"]);
        // Only at the start of a line.
        assert_eq!(split_documents("a: x---y\n"), vec!["a: x---y\n"]);
    }

    #[test]
    fn the_patch_reads_like_the_manual_recipe() {
        assert_eq!(
            crio_patch(KubeadmKind::JoinConfiguration),
            "kind: JoinConfiguration\nnodeRegistration:\n  criSocket: unix:///var/run/crio/crio.sock\n"
        );
    }
}
