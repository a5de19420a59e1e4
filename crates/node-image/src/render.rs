//! Rendering: [`Inputs`] → [`Context`] (file path → contents), and the
//! inputs digest that lets later steps skip a build whose inputs are unchanged.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::inputs::{CrioSource, Inputs};
use crate::preload;

/// The label that carries the inputs digest; always the Dockerfile's last line.
pub const DIGEST_LABEL: &str = "io.kind-crio.inputs.digest";

/// Where the project lives, for the image's source label.
const SOURCE: &str = "https://github.com/kind-crio/kind-crio";

/// One file of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// A rendered build context: relative path → file. `Dockerfile` is at the root;
/// everything the build uses is under `kind-crio/`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub files: BTreeMap<String, File>,
}

impl Context {
    fn add(&mut self, path: &str, contents: impl Into<Vec<u8>>, executable: bool) {
        self.files.insert(
            path.to_owned(),
            File {
                contents: contents.into(),
                executable,
            },
        );
    }

    pub fn dockerfile(&self) -> &str {
        self.files
            .get("Dockerfile")
            .and_then(|f| std::str::from_utf8(&f.contents).ok())
            .unwrap_or("")
    }

    /// The digest recorded in the Dockerfile's last line.
    pub fn inputs_digest(&self) -> Option<&str> {
        self.dockerfile()
            .lines()
            .last()
            .and_then(|l| l.strip_prefix(&format!("LABEL {DIGEST_LABEL}=\"")))
            .and_then(|l| l.strip_suffix('"'))
    }
}

/// Renders the context for `inputs`. Pure: the same inputs give the same bytes.
pub fn render(inputs: &Inputs) -> Context {
    let mut ctx = Context::default();
    ctx.add("kind-crio/install-crio.sh", install_script(inputs), true);
    ctx.add("kind-crio/configure-node.sh", CONFIGURE_SCRIPT, true);
    ctx.add(
        "kind-crio/files/etc/crio/crio.conf.d/99-kind-crio.conf",
        crio_dropin(inputs),
        false,
    );
    ctx.add("kind-crio/files/etc/crictl.yaml", CRICTL_YAML, false);
    ctx.add(
        "kind-crio/files/etc/default/kubelet",
        KUBELET_DEFAULTS,
        false,
    );
    ctx.add(
        "kind-crio/files/etc/systemd/system/kubelet.service.d/20-kind-crio.conf",
        KUBELET_DROPIN,
        false,
    );
    ctx.add(
        "kind-crio/files/etc/containers/registries.conf.d/zz-kind-crio.conf",
        SHORT_NAMES_CONF,
        false,
    );
    if !inputs.mirrors.is_empty() {
        ctx.add(
            "kind-crio/files/etc/containers/registries.conf.d/99-kind-crio-mirrors.conf",
            mirrors_conf(inputs),
            false,
        );
    }
    if let CrioSource::BundleFile { name, bytes } = &inputs.source {
        ctx.add(&format!("kind-crio/{name}"), bytes.clone(), false);
    }
    for (path, contents, executable) in preload::files(inputs.preload) {
        ctx.add(path, *contents, *executable);
    }
    // The mounted files' own digest goes into the RUN line: buildah's layer
    // cache keys a RUN by its text and ignores a bind mount's content, so a
    // changed script or bundle would otherwise reuse a stale layer.
    let files_digest = digest_files(ctx.files.iter().map(|(p, f)| (p.as_str(), f)));
    let body = dockerfile_body(inputs, &files_digest);
    ctx.add("Dockerfile", body.clone(), false);
    let digest = digest_files(ctx.files.iter().map(|(p, f)| (p.as_str(), f)));
    ctx.add(
        "Dockerfile",
        format!("{body}LABEL {DIGEST_LABEL}=\"{digest}\"\n"),
        false,
    );
    ctx
}

/// sha256 over every file (sorted by path: path, executable bit, length,
/// contents), with the Dockerfile's digest line left out.
fn digest_files<'a>(files: impl Iterator<Item = (&'a str, &'a File)>) -> String {
    let mut h = Sha256::new();
    let mut sorted: Vec<_> = files.collect();
    sorted.sort_by_key(|(p, _)| *p);
    for (path, file) in sorted {
        let contents: &[u8] = if path == "Dockerfile" {
            strip_digest_line(&file.contents)
        } else {
            &file.contents
        };
        h.update(path.as_bytes());
        h.update([0, u8::from(file.executable)]);
        h.update((contents.len() as u64).to_le_bytes());
        h.update(contents);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn strip_digest_line(dockerfile: &[u8]) -> &[u8] {
    let marker = format!("LABEL {DIGEST_LABEL}=");
    let text = dockerfile;
    // The digest line is the last line; find the start of it.
    let trimmed = text.strip_suffix(b"\n").unwrap_or(text);
    let start = trimmed
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if trimmed[start..].starts_with(marker.as_bytes()) {
        &text[..start]
    } else {
        text
    }
}

/// Reads a context written on disk (for example the committed `images/crio/`).
pub fn read_context(dir: &Path) -> io::Result<Context> {
    let mut ctx = Context::default();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(io::Error::other)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .map_err(io::Error::other)?
            .to_string_lossy()
            .replace('\\', "/");
        let contents = std::fs::read(entry.path())?;
        let executable = is_executable(&entry.metadata().map_err(io::Error::other)?);
        ctx.add(&rel, contents, executable);
    }
    Ok(ctx)
}

/// The inputs digest of a context written on disk, computed exactly as
/// [`render`] computes it.
pub fn digest_dir(dir: &Path) -> io::Result<String> {
    let ctx = read_context(dir)?;
    Ok(digest_files(ctx.files.iter().map(|(p, f)| (p.as_str(), f))))
}

#[cfg(unix)]
fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// Writes `ctx` into `dir` (created if missing). Files that are not part of
/// the context are left alone; callers wanting an exact copy start empty.
pub fn write_context(ctx: &Context, dir: &Path) -> io::Result<()> {
    for (rel, file) in &ctx.files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.contents)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if file.executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

fn source_description(inputs: &Inputs) -> String {
    match &inputs.source {
        CrioSource::Apt { repository } => format!("apt repository {repository}"),
        CrioSource::BundleUrl { url } => format!("static bundle {url}"),
        CrioSource::BundleFile { name, .. } => format!("static bundle {name} (in this context)"),
    }
}

fn dockerfile_body(inputs: &Inputs, files_digest: &str) -> String {
    let mut d = String::new();
    let _ = write!(
        d,
        "# kind node image running CRI-O instead of containerd.\n\
         # Generated by `cargo xtask render context`; change the generator, not this file.\n\
         # Kubernetes {k}, CRI-O {stream} from the {source}.\n\
         # Build: docker build -t IMAGE .   (BuildKit, the default since Docker 23; or podman/buildah)\n\
         \n\
         FROM {base}\n\
         \n\
         {arg}\
         \n\
         SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n\
         \n\
         # One layer: the context is mounted, not copied, so no script or tarball stays in the image.\n\
         # KIND_CRIO_FILES is the digest of the mounted files, so that builders whose layer cache\n\
         # ignores a bind mount's content (buildah, podman) rebuild when they change.\n\
         RUN --mount=type=bind,source=kind-crio,target=/kind-crio \\\n    \
             KIND_CRIO_FILES={files_digest} /kind-crio/install-crio.sh \\\n    \
             && /kind-crio/configure-node.sh{preload}\n\
         \n\
         LABEL org.opencontainers.image.title=\"kind node with CRI-O\" \\\n      \
               org.opencontainers.image.source=\"{SOURCE}\" \\\n      \
               org.opencontainers.image.base.name=\"{base}\" \\\n      \
               org.opencontainers.image.version=\"{k}\" \\\n      \
               io.kind-crio.kubernetes.version=\"{k}\" \\\n      \
               io.kind-crio.crio.stream=\"{stream}\" \\\n      \
               io.kind-crio.crio.source=\"{kind}\" \\\n      \
               io.kind-crio.preload=\"{preload_mode}\" \\\n      \
               io.kind-crio.arch=\"${{TARGETARCH:-{arch}}}\"\n",
        k = inputs.kubernetes,
        stream = inputs.stream,
        source = source_description(inputs),
        base = inputs.base_image,
        arch = inputs.arch,
        kind = inputs.source.kind(),
        arg = preload::DOCKERFILE_ARG,
        preload = preload::run_command(inputs.arch, inputs.preload)
            .map(|c| format!(" \\\n    && {c}"))
            .unwrap_or_default(),
        preload_mode = inputs.preload,
    );
    d
}

const SCRIPT_HEADER: &str = "#!/usr/bin/env bash\n\
# Generated by kind-crio; runs once, inside the image build.\n\
set -o errexit -o nounset -o pipefail\n";

fn install_script(inputs: &Inputs) -> String {
    let mut s = String::from(SCRIPT_HEADER);
    match &inputs.source {
        CrioSource::Apt { repository } => {
            let _ = write!(
                s,
                "# Installs CRI-O {stream} from its apt repository.\n\
                 \n\
                 readonly repo=\"{repository}\"\n\
                 # kind's base image has curl but no gpg: apt reads an ASCII-armoured key\n\
                 # directly when its file name ends in .asc.\n\
                 readonly keyring=/etc/apt/keyrings/cri-o-apt-keyring.asc\n\
                 \n\
                 install -d -m 0755 /etc/apt/keyrings\n\
                 curl -fsSL --retry 5 --retry-connrefused \"${{repo}}Release.key\" -o \"${{keyring}}\"\n\
                 echo \"deb [signed-by=${{keyring}}] ${{repo}} /\" >/etc/apt/sources.list.d/cri-o.list\n\
                 apt-get update -q\n\
                 # kind's image already has /etc/crictl.yaml, a conffile of the package:\n\
                 # take the package's copy instead of stopping at dpkg's prompt (the\n\
                 # node's own crictl.yaml is written afterwards by configure-node.sh).\n\
                 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \\\n\
                 \x20   -o Dpkg::Options::=--force-confnew '{package}'\n\
                 apt-get clean\n\
                 rm -rf /var/lib/apt/lists/*\n",
                stream = inputs.stream,
                package = inputs.stream.apt_package(),
            );
        }
        CrioSource::BundleUrl { url } => {
            let _ = write!(
                s,
                "# Installs CRI-O from an upstream static bundle, checked against its\n\
                 # published sha256 before anything in it runs.\n\
                 \n\
                 readonly url=\"{url}\"\n\
                 tmp=$(mktemp -d)\n\
                 curl -fsSL --retry 5 --retry-connrefused \"${{url}}\" -o \"${{tmp}}/bundle.tar.gz\"\n\
                 curl -fsSL --retry 5 --retry-connrefused \"${{url}}.sha256sum\" -o \"${{tmp}}/bundle.sha256sum\"\n\
                 expected=$(cut -d ' ' -f 1 \"${{tmp}}/bundle.sha256sum\")\n\
                 if [[ ! \"${{expected}}\" =~ ^[0-9a-f]{{64}}$ ]]; then\n\
                 \x20   echo \"kind-crio: ${{url}}.sha256sum holds no sha256\" >&2\n\
                 \x20   exit 1\n\
                 fi\n\
                 echo \"${{expected}}  ${{tmp}}/bundle.tar.gz\" | sha256sum --check --strict --quiet -\n\
                 {install}\
                 rm -rf \"${{tmp}}\"\n",
                install = bundle_install("\"${tmp}/bundle.tar.gz\""),
            );
        }
        CrioSource::BundleFile { name, bytes } => {
            let hex: String = Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let _ = write!(
                s,
                "# Installs CRI-O from the static bundle {name} in this context, checked\n\
                 # against the sha256 recorded when the context was rendered.\n\
                 \n\
                 readonly bundle=/kind-crio/{name}\n\
                 echo \"{hex}  ${{bundle}}\" | sha256sum --check --strict --quiet -\n\
                 tmp=$(mktemp -d)\n\
                 {install}\
                 rm -rf \"${{tmp}}\"\n",
                install = bundle_install("\"${bundle}\""),
            );
        }
    }
    s
}

/// Unpacks a bundle into `$tmp` and runs its own install script (PREFIX
/// /usr/local, as upstream documents), keeping kind's runc.
fn bundle_install(tarball: &str) -> String {
    format!(
        "tar -xzf {tarball} -C \"${{tmp}}\"\n\
         (cd \"${{tmp}}/cri-o\" && bash ./install)\n"
    )
}

const CONFIGURE_SCRIPT: &str = include_str!("../context/kind-crio/configure-node.sh");

fn crio_dropin(inputs: &Inputs) -> String {
    let manager = inputs.cgroup_manager();
    format!(
        "# Written by kind-crio: what CRI-O needs inside a kind node. Drop-ins apply\n\
         # in lexical order and the last wins, so this one overrides the package's.\n\
         [crio.runtime]\n\
         # The cgroup driver kind gives the kubelet for Kubernetes {k}.\n\
         cgroup_manager = \"{manager}\"\n\
         # conmon in the pod's cgroup: valid with either manager, required with cgroupfs.\n\
         conmon_cgroup = \"pod\"\n\
         # A kind node cannot load AppArmor profiles, and CRI-O stops if it tries.\n\
         apparmor_profile = \"unconfined\"\n\
         # As kind's containerd 2.x sets for every pod not on the host network (its\n\
         # CRI's enable_unprivileged_ports and enable_unprivileged_icmp, on by\n\
         # default): unprivileged processes may bind low ports, and ping without\n\
         # CAP_NET_RAW. CRI-O leaves these out for pods on the host network too, but\n\
         # not, as containerd does, when it runs in a user namespace (rootless kind),\n\
         # where the kernel refuses a group range the namespace does not map.\n\
         default_sysctls = [\n  \"net.ipv4.ip_unprivileged_port_start=0\",\n  \"net.ipv4.ping_group_range=0 2147483647\",\n]\n\
         \n\
         [crio.image]\n\
         # The pause image kind preloaded (containerd's sandbox_image), set at build time.\n\
         pause_image = \"@PAUSE_IMAGE@\"\n\
         # Kept out of the kubelet's image garbage collection; with preloading,\n\
         # preload-record.sh adds every image kind preloaded at build time.\n\
         pinned_images = [\n  \"@PAUSE_IMAGE@\",\n]\n",
        k = inputs.kubernetes,
    )
}

const CRICTL_YAML: &str = include_str!("../context/kind-crio/files/etc/crictl.yaml");

const KUBELET_DEFAULTS: &str = include_str!("../context/kind-crio/files/etc/default/kubelet");

const KUBELET_DROPIN: &str = include_str!(
    "../context/kind-crio/files/etc/systemd/system/kubelet.service.d/20-kind-crio.conf"
);

/// How CRI-O (and podman, skopeo, buildah in the node) complete a short name.
/// CRI-O's image status, container creation and pulls take the candidates of
/// containers/image's `shortnames.Resolve` (an alias, else one name per
/// search registry), in order, and use the first that is stored. One search
/// registry gives one candidate, which every short-name mode accepts without
/// a prompt; `disabled` is the mode that never prompts, never refuses a list
/// and never records an alias, as containerd, which has no list, never does.
const SHORT_NAMES_CONF: &str =
    include_str!("../context/kind-crio/files/etc/containers/registries.conf.d/zz-kind-crio.conf");

fn mirrors_conf(inputs: &Inputs) -> String {
    let mut s =
        String::from("# Written by kind-crio: pull these registries' images from mirrors first.\n");
    // One [[registry]] per prefix (containers/image refuses duplicates), its
    // mirrors in the order given: they are tried in that order.
    let mut prefixes: Vec<&str> = Vec::new();
    for m in &inputs.mirrors {
        if !prefixes.contains(&m.prefix.as_str()) {
            prefixes.push(&m.prefix);
        }
    }
    for p in prefixes {
        let _ = write!(s, "\n[[registry]]\nprefix = \"{p}\"\nlocation = \"{p}\"\n");
        for m in inputs.mirrors.iter().filter(|m| m.prefix == p) {
            let _ = write!(s, "\n[[registry.mirror]]\nlocation = \"{}\"\n", m.location);
        }
    }
    s
}
