//! Preloading: the images kind preloaded into containerd, in CRI-O's storage
//! when the node boots, without storing any image twice.
//!
//! kind imports its images into containerd's content store at node-image build
//! time (`ctr images import --no-unpack`, `ctr content fetch`): they are blobs
//! under `/var/lib/containerd/io.containerd.content.v1.content/blobs`, and
//! their names live only in containerd's metadata database. A CRI-O node would
//! pull every one of them. So:
//!
//! - at build time `kind-crio/preload-record.sh` starts kind's containerd
//!   briefly on a private root (content linked, metadata copied: the image's
//!   containerd state is not touched), lists the `k8s.io` namespace, and writes
//!   `/opt/kind-crio/preload`: an OCI image layout whose `blobs` is a symlink
//!   to containerd's, an `index.json` naming each image (of an image index, the
//!   `linux/$TARGETARCH` manifest present), and `images.txt` (`REF DIGEST`
//!   lines, the digests CRI-O will report). It pins the images in the
//!   `99-kind-crio.conf` drop-in, installs Debian's `skopeo` (without the
//!   short-name aliases its dependency `golang-github-containers-common`
//!   ships: CRI-O would follow them where kind's containerd means Docker Hub)
//!   and enables `kind-crio-preload.service`;
//! - at boot that oneshot unit runs `/opt/kind-crio/preload.sh`: `skopeo
//!   copy` of each manifest missing from CRI-O's storage on the `/var` volume
//!   (overlay there, as CRI-O chooses), in parallel, once per manifest digest
//!   (the other names, such as kind's `-amd64` aliases of the kube images, are
//!   added afterwards from the stored layers), reporting each failure, always
//!   exiting 0, and leaving `/run/kind-crio/preload.status` when done;
//! - the unit does not hold the boot back: it has no default dependencies,
//!   so `multi-user.target`, which kind waits for (30 s at most, on a node's
//!   first boot), is not ordered after it. It is ordered after CRI-O, so the
//!   import never competes with CRI-O's own start for the store (CRI-O opens
//!   it, and may check or repair it, before it is ready), and CRI-O sees
//!   each image once it is stored (containers-storage is shared between
//!   processes). The kubelet alone waits for it, through its drop-in's
//!   `ExecStartPre` (`systemctl start kind-crio-preload.service`, unless it
//!   already failed: a failed preload is not run again at every kubelet
//!   start): an ordering (`After=`) would hold `multi-user.target` back,
//!   since the target is ordered after the kubelet and systemd keeps
//!   orderings even for a unit whose condition skips it (kind's kubelet
//!   starts only once kubeadm has written its configuration). On a node's
//!   later boots the kubelet starts at boot, and the target waits for the
//!   preload's presence checks; kind has no boot gate then.
//!
//! With [`Preload::Store`] (the default) most of that import happens at build
//! time instead: the same import, run by `preload-record.sh` in the build,
//! fills a read-only containers-storage store at [`PRELOAD_STORE`], outside
//! `/var` (kind gives each node an anonymous `/var` volume, and Docker copies
//! the image's `/var` into it at every node's creation), and
//! `/etc/containers/storage.conf` names it as an additional image store, which
//! CRI-O, skopeo and podman read beside their own. The boot import is left
//! with the images whose layers hold a whiteout or an opaque directory: nested
//! in the node image's own layer, those would be read by the node's own
//! overlay file system (or dropped by the builder), not kept as data. The
//! layout's `stored.txt` says what the store holds; the status file reports
//! those images as `stored`.
//!
//! [`Preload::Boot`] keeps every image on the boot import (a smaller node
//! image); [`Preload::None`] leaves preloading out, and CRI-O pulls.

use crate::inputs::{Arch, Preload};

/// Where the build writes the recorded layout in the node image.
pub const PRELOAD_DIR: &str = "/opt/kind-crio/preload";

/// The unit that imports the recorded images at boot.
pub const PRELOAD_UNIT: &str = "kind-crio-preload.service";

/// What the boot import leaves when it is done (absent while it runs): one
/// `OUTCOME REFERENCE DIGEST` line per recorded reference, OUTCOME one of
/// `stored` (in the read-only store), `imported`, `present`, `failed`.
pub const PRELOAD_STATUS: &str = "/run/kind-crio/preload.status";

/// The read-only store the build fills with [`Preload::Store`].
pub const PRELOAD_STORE: &str = "/usr/lib/containers/storage";

/// The files preloading adds to the context: (path, contents, executable).
/// Everything under `kind-crio/files/` is copied to `/` by `configure-node.sh`.
pub(crate) fn files(preload: Preload) -> &'static [(&'static str, &'static str, bool)] {
    match preload {
        Preload::None => &[],
        Preload::Store | Preload::Boot => &FILES,
    }
}

const FILES: [(&str, &str, bool); 5] = [
    ("kind-crio/preload-record.sh", RECORD_SCRIPT, true),
    (
        "kind-crio/files/opt/kind-crio/preload.sh",
        BOOT_SCRIPT,
        true,
    ),
    ("kind-crio/files/opt/kind-crio/policy.json", POLICY, false),
    (
        "kind-crio/files/etc/systemd/system/kind-crio-preload.service",
        UNIT,
        false,
    ),
    (
        "kind-crio/files/etc/systemd/system/kubelet.service.d/30-kind-crio-preload.conf",
        KUBELET_DROPIN,
        false,
    ),
];

/// The Dockerfile's `ARG` line, with the comment that says why it has no default.
pub(crate) const DOCKERFILE_ARG: &str = "\
# BuildKit and buildah set TARGETARCH from the build's platform; a default here
# would replace theirs, so other builders get the rendered architecture below.
ARG TARGETARCH
";

/// The command the `RUN` step ends with (after `configure-node.sh`, which
/// writes the drop-in and the unit this script completes), if any.
pub(crate) fn run_command(arch: Arch, preload: Preload) -> Option<String> {
    match preload {
        Preload::None => None,
        Preload::Store | Preload::Boot => Some(format!(
            "/kind-crio/preload-record.sh --preload {preload} \"${{TARGETARCH:-{arch}}}\""
        )),
    }
}

const RECORD_SCRIPT: &str = r##"#!/usr/bin/env bash
# Generated by kind-crio; runs once, inside the image build.
set -o errexit -o nounset -o pipefail
# Records the images kind preloaded into containerd as an OCI image layout
# whose blobs are containerd's own (a symlink: nothing is stored twice), for
# kind-crio-preload.service to import into CRI-O's storage when the node
# boots; pins them in CRI-O; installs skopeo, which does the import (without
# the short-name aliases its Debian dependencies bring).
#
# With --preload store (the default), every image whose layers can be nested
# in the node image's own layer is also stored, here and now, in a read-only
# containers-storage store outside /var (kind gives /var a volume, which
# Docker fills from the image at every node's creation), and storage.conf
# names it as an additional image store: CRI-O finds those images at boot
# with nothing imported. Only the rest is left for the boot import.
#
# Usage: preload-record.sh [--layout-only] [--preload store|boot] ARCH
#   ARCH           the image's architecture (amd64 or arm64): of an image
#                  index, the linux/ARCH manifest is recorded
#   --preload      store (default): the read-only store, and the boot import
#                  for what it cannot hold; boot: the boot import for all
#   --layout-only  write the layout (and the store) only: no pins, no skopeo
#                  installed, no unit enabled
# Environment (the defaults are the node's):
#   KIND_CRIO_CONTAINERD_ROOT  containerd's root          (/var/lib/containerd)
#   KIND_CRIO_PRELOAD_DIR      where the layout goes      (/opt/kind-crio/preload)
#   KIND_CRIO_CRIO_DROPIN      the drop-in with the pins  (/etc/crio/crio.conf.d/99-kind-crio.conf)
#   KIND_CRIO_STORE            the read-only store        (/usr/lib/containers/storage)
#   KIND_CRIO_STORAGE_CONF     the storage configuration  (/etc/containers/storage.conf)
#                              that names it

layout_only=false
mode=store
while [[ "${1:-}" == --* ]]; do
    case "$1" in
    --layout-only) layout_only=true ;;
    --preload)
        mode="${2:-}"
        shift
        ;;
    *) break ;;
    esac
    shift
done
readonly layout_only mode
readonly arch="${1:-}"
readonly containerd_root="${KIND_CRIO_CONTAINERD_ROOT:-/var/lib/containerd}"
readonly out="${KIND_CRIO_PRELOAD_DIR:-/opt/kind-crio/preload}"
readonly dropin="${KIND_CRIO_CRIO_DROPIN:-/etc/crio/crio.conf.d/99-kind-crio.conf}"
readonly content="${containerd_root}/io.containerd.content.v1.content"
readonly metadata="${containerd_root}/io.containerd.metadata.v1.bolt/meta.db"
readonly store="${KIND_CRIO_STORE:-/usr/lib/containers/storage}"
readonly storage_conf="${KIND_CRIO_STORAGE_CONF:-/etc/containers/storage.conf}"
readonly ref_name="org.opencontainers.image.ref.name"
# The boot import and its trust policy, beside this script in the context:
# the store is filled by the same import, run here.
self=$(readlink -f "${BASH_SOURCE[0]}")
here="${self%/*}"
readonly importer="${here}/files/opt/kind-crio/preload.sh"
readonly policy="${here}/files/opt/kind-crio/policy.json"

die() {
    echo "kind-crio: preload: $*" >&2
    exit 1
}

if [[ ! "${arch}" =~ ^(amd64|arm64)$ || ! "${mode}" =~ ^(store|boot)$ ]]; then
    die "usage: preload-record.sh [--layout-only] [--preload store|boot] ARCH, with ARCH amd64 or arm64 (got '${arch}', --preload '${mode}')"
fi
if [[ "${layout_only}" == true && "${mode}" == store &&
    ( -z "${KIND_CRIO_STORE:-}" || -z "${KIND_CRIO_STORAGE_CONF:-}" ) ]]; then
    # Off the node, never the machine's own storage configuration.
    die "--layout-only --preload store needs KIND_CRIO_STORE and KIND_CRIO_STORAGE_CONF"
fi
if [[ ! -f "${metadata}" ]]; then
    die "no containerd metadata at ${metadata}: kind preloads its images into containerd; is the base image a kind node image?"
fi

work=$(mktemp -d)
containerd_pid=""
cleanup() {
    if [[ -n "${containerd_pid}" ]]; then
        kill "${containerd_pid}" 2>/dev/null || true
        wait "${containerd_pid}" 2>/dev/null || true
    fi
    rm -rf "${work}"
}
trap cleanup EXIT

# kind's own containerd, started briefly on a private root: the content store
# is linked in, the metadata database copied, so nothing of the image's
# containerd state changes (no garbage collection, no schema migration). Only
# what reading the k8s.io namespace needs is loaded: no CRI, no snapshotter
# that mounts, no NRI; the IDs cover containerd 1.6, 1.7 and 2.x (an ID a
# version does not have is ignored).
mkdir -p "${work}/root/io.containerd.metadata.v1.bolt" "${work}/state"
ln -s "${content}" "${work}/root/io.containerd.content.v1.content"
cp "${metadata}" "${work}/root/io.containerd.metadata.v1.bolt/meta.db"
readonly socket="${work}/state/containerd.sock"
cat >"${work}/config.toml" <<CONFIG
version = 2
root = "${work}/root"
state = "${work}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.sandbox.controller.v1.shim",
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "${socket}"

[plugins."io.containerd.gc.v1.scheduler"]
  startup_delay = "24h"
  deletion_threshold = 0
  mutation_threshold = 1000000
CONFIG
containerd --config "${work}/config.toml" >"${work}/containerd.log" 2>&1 &
containerd_pid=$!
for _ in {1..300}; do
    [[ -S "${socket}" ]] && break
    if ! kill -0 "${containerd_pid}" 2>/dev/null; then
        cat "${work}/containerd.log" >&2
        die "containerd --config ${work}/config.toml exited before serving (its log is above)"
    fi
    sleep 0.1
done
if [[ ! -S "${socket}" ]]; then
    tail -n 30 "${work}/containerd.log" >&2
    die "containerd did not serve ${socket} within 30 s (the end of its log is above)"
fi
if ! ctr --address "${socket}" --timeout 60s --namespace k8s.io images ls >"${work}/images.ls" 2>"${work}/ctr.err"; then
    cat "${work}/ctr.err" >&2
    die "ctr --namespace k8s.io images ls failed (its output is above)"
fi
kill "${containerd_pid}"
wait "${containerd_pid}" || true
containerd_pid=""

blob() {
    local digest="$1"
    if [[ ! "${digest}" =~ ^sha256:[0-9a-f]{64}$ ]]; then
        die "${digest} is not a sha256 digest"
    fi
    echo "${content}/blobs/sha256/${digest#sha256:}"
}

# Columns: REF TYPE DIGEST SIZE PLATFORMS LABELS (containerd 1.6 to 2.x; SIZE
# is two words, LABELS has kind's io.cri-containerd.pinned=pinned). Besides the
# real references, containerd lists the image IDs (sha256:...) and, for
# `import --digests` in 1.x (2.x imports through its transfer service and adds
# none), import-DATE@sha256:... names: only NAME:TAG references are recorded.
tail -n +2 "${work}/images.ls" >"${work}/images"
: >"${work}/entries.json"
: >"${work}/images.txt"
while read -r ref media_type digest _; do
    if [[ "${ref}" == sha256:* || "${ref}" == *@* ]]; then
        continue
    fi
    if [[ ! "${ref}" =~ ^[A-Za-z0-9][A-Za-z0-9._/:-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
        die "containerd lists '${ref}', which is not an image reference"
    fi
    top=$(blob "${digest}")
    [[ -f "${top}" ]] || die "${ref}: ${digest} is not in containerd's content store"
    index_digest=""
    case "${media_type}" in
    application/vnd.oci.image.index.v1+json | application/vnd.docker.distribution.manifest.list.v2+json)
        # kind fetched one platform of a multi-platform image: record the
        # linux/ARCH manifest that is actually here.
        index_digest="${digest}"
        jq -r --arg arch "${arch}" '.manifests[]
            | select(.platform.os == "linux" and .platform.architecture == $arch)
            | "\(.mediaType) \(.digest) \(.size)"' "${top}" >"${work}/candidates"
        chosen=""
        while read -r m_type m_digest m_size; do
            candidate=$(blob "${m_digest}")
            if [[ -f "${candidate}" ]]; then
                chosen="${m_type} ${m_digest} ${m_size}"
                break
            fi
        done <"${work}/candidates"
        if [[ -z "${chosen}" ]]; then
            platforms=$(jq -r '[.manifests[] | "\(.platform.os)/\(.platform.architecture)"] | join(", ")' "${top}")
            die "${ref}: its image index ${digest} has no linux/${arch} manifest in containerd's content store (the index lists ${platforms})"
        fi
        read -r media_type digest size <<<"${chosen}"
        ;;
    application/vnd.oci.image.manifest.v1+json | application/vnd.docker.distribution.manifest.v2+json)
        size=$(stat -c %s "${top}")
        ;;
    *)
        die "${ref}: manifest type ${media_type} cannot be imported into CRI-O's storage"
        ;;
    esac
    manifest=$(blob "${digest}")
    actual_size=$(stat -c %s "${manifest}")
    if [[ "${actual_size}" != "${size}" ]]; then
        die "${ref}: ${digest} in containerd's content store is ${actual_size} bytes long, not ${size}"
    fi
    # Every blob the import will read must be here now, not found missing at boot.
    jq -r '.config.digest, .layers[].digest' "${manifest}" >"${work}/needed"
    while read -r needed; do
        path=$(blob "${needed}")
        [[ -f "${path}" ]] || die "${ref}: ${needed} (of manifest ${digest}) is not in containerd's content store"
    done <"${work}/needed"
    jq -n -c --arg type "${media_type}" --arg digest "${digest}" --argjson size "${size}" \
        --arg ref "${ref}" --arg index "${index_digest}" --arg key "${ref_name}" \
        '{mediaType: $type, digest: $digest, size: $size, annotations: ({($key): $ref}
          + if $index == "" then {} else {"io.kind-crio.preload.index": $index} end)}' \
        >>"${work}/entries.json"
    echo "${ref} ${digest}" >>"${work}/images.txt"
done <"${work}/images"

if [[ ! -s "${work}/images.txt" ]]; then
    die "containerd has no image in its k8s.io namespace: kind preloads the control plane's images there; is the base image a kind node image?"
fi

rm -rf "${out}"
mkdir -p "${out}"
echo '{"imageLayoutVersion":"1.0.0"}' >"${out}/oci-layout"
ln -s "${content}/blobs" "${out}/blobs"
jq -s --arg key "${ref_name}" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: sort_by(.annotations[$key])}' "${work}/entries.json" >"${work}/index.json"
sort "${work}/images.txt" >"${out}/images.txt"
count=$(wc -l <"${out}/images.txt")
echo "kind-crio: preload: recorded ${count} images in ${out}:"
cat "${out}/images.txt"

if [[ "${layout_only}" == false ]]; then
    # Pin every recorded image (the kubelet's image garbage collection skips
    # pinned images), in the drop-in configure-node.sh wrote, where the pause
    # image is pinned already: a second file would replace that list, not
    # extend it.
    cut -d ' ' -f 1 "${out}/images.txt" >"${work}/pins"
    awk -v pins="${work}/pins" '
        BEGIN { while ((getline line < pins) > 0) wanted[++n] = line }
        /^pinned_images = \[$/ { inside = 1; found = 1; print; next }
        inside && /^\]$/ {
            for (i = 1; i <= n; i++) if (!(wanted[i] in seen)) printf "  \"%s\",\n", wanted[i]
            inside = 0
        }
        inside { v = $0; gsub(/^[ \t]*"|",?[ \t]*$/, "", v); seen[v] = 1 }
        { print }
        END { if (!found) exit 1 }
    ' "${dropin}" >"${work}/dropin" || die "no 'pinned_images = [' list in ${dropin}"
    cat "${work}/dropin" >"${dropin}"

    # skopeo fills the store now and imports the rest at boot. Of its
    # dependencies' alternatives (gnupg | gpg, container-network-stack) the
    # smallest are named: apt would pick gnupg and containernetworking-plugins,
    # 50 MB more that skopeo never runs. The node's CRI-O may have written
    # files of /etc/containers: keep them.
    if ! command -v skopeo >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confold skopeo gpg netavark
        apt-get clean
        rm -rf /var/lib/apt/lists/*
    fi
    # Debian's golang-github-containers-common, which skopeo depends on, ships
    # short-name aliases (centos is quay.io/centos/centos, podman is
    # quay.io/podman/stable, ...) that CRI-O follows before its search
    # registries. kind's containerd has none: there every short name is Docker
    # Hub's, and so it is here.
    rm -f /etc/containers/registries.conf.d/shortnames.conf
fi

# Why a layer cannot be nested in the node image's own layer, or nothing.
# Inside that layer a whiteout (an OCI `.wh.` entry, stored as a `c 0 0`
# device or as a `.wh.` file) or an opaque directory (a `.wh..wh..opq` entry,
# stored as an overlay xattr or file) is read by the node's own overlay
# file system, or dropped by the builder, instead of being kept as the
# store's data: deleted files come back, or the build fails. tar lists
# each distinct layer once; any entry naming `.wh.` counts, so nothing of
# the kind can slip through, at the cost of an image now and then imported
# at boot that the store could have held.
layer_problem() {
    local digest="$1" verdict path why
    verdict="${work}/verdicts/${digest#sha256:}"
    if [[ ! -f "${verdict}" ]]; then
        mkdir -p "${work}/verdicts"
        path=$(blob "${digest}")
        if ! LC_ALL=C tar --numeric-owner -tvf "${path}" >"${work}/listing" 2>"${work}/tar.err"; then
            why=$(head -c 200 "${work}/tar.err")
            echo "layer ${digest} cannot be listed by tar (${why//$'\n'/ })" >"${verdict}"
        else
            # Columns: MODE OWNER SIZE|MAJOR,MINOR DATE TIME NAME [-> TARGET]
            awk -v layer="${digest}" '
                function name(line) {
                    # No {5}: mawk, the default awk of Debian, has no intervals.
                    sub(/^[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +/, "", line)
                    sub(/ (->|link to) .*$/, "", line)
                    return line
                }
                found { next }
                /^c/ && $3 == "0,0" { printf "a whiteout device %s in layer %s\n", name($0), layer; found = 1; next }
                index($0, ".wh.") {
                    n = name($0)
                    if (n ~ /(^|\/)\.wh\.\.wh\.\.opq$/) {
                        sub(/\.wh\.\.wh\.\.opq$/, "", n)
                        printf "an opaque directory %s in layer %s\n", (n == "" ? "/" : n), layer
                    } else {
                        printf "a whiteout %s in layer %s\n", n, layer
                    }
                    found = 1
                }
            ' "${work}/listing" >"${verdict}"
        fi
    fi
    cat "${verdict}"
}

: >"${work}/stored"
if [[ "${mode}" == store ]]; then
    # Which images the store can hold: every layer of theirs nests.
    jq -r '.manifests[].digest' "${work}/index.json" | sort -u >"${work}/digests"
    : >"${work}/store-digests"
    : >"${work}/left"
    while read -r digest; do
        problem=""
        manifest=$(blob "${digest}")
        jq -r '.layers[].digest' "${manifest}" >"${work}/layers"
        while read -r layer; do
            problem=$(layer_problem "${layer}")
            [[ -n "${problem}" ]] && break
        done <"${work}/layers"
        if [[ -z "${problem}" ]]; then
            echo "${digest}" >>"${work}/store-digests"
        else
            jq -r --arg d "${digest}" --arg key "${ref_name}" --arg why "${problem}" \
                '.manifests[] | select(.digest == $d) | "\(.annotations[$key]): \($why)"' \
                "${work}/index.json" >>"${work}/left"
        fi
    done <"${work}/digests"

    rm -rf "${store}"
    if [[ -s "${work}/store-digests" ]]; then
        # The boot import, run now into the store: the same skopeo copies,
        # each manifest once, its other names from the stored layers.
        mkdir -p "${work}/store-layout" "${store}"
        cp "${out}/oci-layout" "${work}/store-layout/oci-layout"
        ln -s "${content}/blobs" "${work}/store-layout/blobs"
        jq --rawfile keep "${work}/store-digests" \
            '.manifests |= map(select(.digest as $d | any($keep | split("\n")[]; . == $d)))' \
            "${work}/index.json" >"${work}/store-layout/index.json"
        # A build step has no CAP_SYS_ADMIN (BuildKit, buildah): skopeo, run
        # as root without it, re-runs itself in a user namespace, which a
        # chrooted process may not create (the two variables say that is
        # done), and the overlay driver bind-mounts its directory onto itself
        # (skip_mount_home) and test-mounts an overlay before it starts (a
        # mount program it then never runs). Storing layers needs none of
        # that: they are unpacked into their directories, never mounted.
        _CONTAINERS_USERNS_CONFIGURED=1 _CONTAINERS_ROOTLESS_UID=1 \
            KIND_CRIO_PRELOAD_LAYOUT="${work}/store-layout" \
            KIND_CRIO_PRELOAD_STORAGE="overlay@${store}+${work}/store-run:overlay.skip_mount_home=true,overlay.mount_program=/bin/true" \
            KIND_CRIO_PRELOAD_POLICY="${policy}" \
            KIND_CRIO_PRELOAD_STATUS="${work}/store.status" \
            bash "${importer}" | sed 's/^kind-crio-preload: /kind-crio: preload: store: /'
        [[ -f "${work}/store.status" ]] || die "filling the store ${store} left no status (its output is above)"
        while read -r outcome ref digest; do
            if [[ "${outcome}" == imported ]]; then
                echo "${ref} ${digest}" >>"${work}/stored"
            else
                echo "${ref}: its import into the store failed (above)" >>"${work}/left"
            fi
        done <"${work}/store.status"
        # A last check of what was stored, whatever the layers said.
        leak=$(find "${store}/overlay" -mindepth 3 -path "${store}/overlay/*/diff/*" \
            \( -type c -o -name '.wh.*' \) -print -quit 2>/dev/null || true)
        if [[ -n "${leak}" ]]; then
            echo "kind-crio: preload: ${leak} in the store would be read as a whiteout of the node image's own layer: no store, every image is imported at boot"
            rm -rf "${store}"
            sed 's/ .*$/: the store was dropped/' "${work}/stored" >>"${work}/left"
            : >"${work}/stored"
        fi
        rm -rf "${work}/store-run" "${store}/tmp" "${store}/mounts"
        # Read as a native overlay store on the node, as it would have been
        # written with CAP_SYS_ADMIN.
        if [[ -f "${store}/overlay/.has-mount-program" ]]; then
            printf false >"${store}/overlay/.has-mount-program"
        fi
        if [[ ! -s "${work}/stored" ]]; then
            rm -rf "${store}"
        fi
    fi
fi

# The layout keeps for the boot import only what the store does not hold;
# stored.txt says what it holds (REF DIGEST lines, as images.txt).
sort "${work}/stored" >"${out}/stored.txt"
jq --rawfile stored "${out}/stored.txt" --arg key "${ref_name}" '
    ($stored | split("\n") | map(select(. != "") | split(" ")[0])) as $held
    | .manifests |= map(select(.annotations[$key] as $r | any($held[]; . == $r) | not))' \
    "${work}/index.json" >"${out}/index.json"
stored_count=$(wc -l <"${out}/stored.txt")
left_count=$(jq '.manifests | length' "${out}/index.json")

if ((stored_count > 0)); then
    # Name the store in the storage configuration CRI-O, skopeo and podman
    # read: CRI-O takes its storage options from it unless crio.conf sets
    # its own (kind-crio's drop-in does not).
    mkdir -p "${storage_conf%/*}"
    if [[ ! -f "${storage_conf}" ]]; then
        cat >"${storage_conf}" <<CONF
# Written by kind-crio. CRI-O's own store is on the node's /var volume; the
# images kind preloaded are in a read-only store in the node image, built
# with it, which CRI-O reads beside its own ("additional image store").
[storage]
driver = "overlay"
graphroot = "/var/lib/containers/storage"
runroot = "/run/containers/storage"

[storage.options]
additionalimagestores = ["${store}"]
CONF
    elif grep -q '^[[:space:]]*additionalimagestores' "${storage_conf}"; then
        die "${storage_conf} lists additional image stores already; add ${store} to them, or build with --preload boot"
    elif grep -q '^\[storage\.options\]' "${storage_conf}"; then
        sed -i "/^\[storage\.options\]/a additionalimagestores = [\"${store}\"]" "${storage_conf}"
    else
        printf '\n[storage.options]\nadditionalimagestores = ["%s"]\n' "${store}" >>"${storage_conf}"
    fi
    echo "kind-crio: preload: ${stored_count} of ${count} images are in the read-only store ${store} (${storage_conf} names it)"
fi
if [[ "${mode}" == store && -s "${work}/left" ]]; then
    echo "kind-crio: preload: left for the boot import (${left_count}), which the store cannot hold:"
    sort -u "${work}/left" | sed 's/^/  /'
fi

if [[ "${layout_only}" == false ]]; then
    systemctl enable kind-crio-preload.service
fi
"##;

const BOOT_SCRIPT: &str = r##"#!/usr/bin/env bash
# Generated by kind-crio; kind-crio-preload.service runs it at every boot of
# the node, while CRI-O starts.
#
# Imports the images kind preloaded into containerd (recorded at build time in
# an OCI image layout that shares containerd's blobs) into CRI-O's storage on
# the node's /var volume, so CRI-O has them instead of pulling them; CRI-O
# sees each one as soon as it is stored. Each manifest is imported once: the
# other names of the same image (kind keeps the -amd64 names of the kube
# images beside the plain ones) are added once it is stored, by a copy that
# finds every layer there and extracts nothing. An image already there under
# its name with the recorded digest is skipped, so a restart imports nothing
# twice. It never holds the node back: an image that fails is reported with
# skopeo's message, the others are imported, and the exit status is 0
# whatever happened.
#
# The images the build stored in the node image's read-only store (CRI-O's
# additional image store), listed in the layout's stored.txt, are not in its
# index.json: nothing is imported for them.
#
# When it is done it writes the status file (absent while it runs; written to
# a temporary file, then renamed): one line per recorded reference,
# "OUTCOME REFERENCE DIGEST", OUTCOME one of stored (in the read-only store),
# imported, present, failed.
#
# Environment (the defaults are the node's):
#   KIND_CRIO_PRELOAD_LAYOUT   the recorded layout      (/opt/kind-crio/preload)
#   KIND_CRIO_PRELOAD_STORAGE  CRI-O's store, [DRIVER@ROOT+RUNROOT] of skopeo's
#                              containers-storage: transport
#                              (overlay@/var/lib/containers/storage+/run/containers/storage)
#   KIND_CRIO_PRELOAD_POLICY   skopeo's trust policy    (/opt/kind-crio/policy.json)
#   KIND_CRIO_PRELOAD_JOBS     parallel imports         (the CPU count, at most 4)
#   KIND_CRIO_PRELOAD_STATUS   the status file          (/run/kind-crio/preload.status)
set -o nounset -o pipefail

readonly layout="${KIND_CRIO_PRELOAD_LAYOUT:-/opt/kind-crio/preload}"
readonly storage="${KIND_CRIO_PRELOAD_STORAGE:-overlay@/var/lib/containers/storage+/run/containers/storage}"
readonly policy="${KIND_CRIO_PRELOAD_POLICY:-/opt/kind-crio/policy.json}"
readonly status_file="${KIND_CRIO_PRELOAD_STATUS:-/run/kind-crio/preload.status}"
readonly ref_name="org.opencontainers.image.ref.name"

log() {
    echo "kind-crio-preload: $*"
}

now_ms() {
    local us="${EPOCHREALTIME/./}"
    echo $((us / 1000))
}

# One image: --one FRESH DIR imports the manifest that DIR describes (its
# digest in DIR/digest, its names in DIR/refs, one a line, a layout index
# holding just its entry in DIR/index.json) and writes "OUTCOME REF" lines
# to DIR/status. The first missing name gets the full copy; the other names,
# after it, a copy that reuses the stored layers. With FRESH=true the store
# holds no image yet, so the presence checks (a skopeo start-up each) are
# left out.
import_one() {
    local fresh="$1" dir="$2"
    local digest ref stored="" failed="" reason="" started took out
    read -r digest <"${dir}/digest"
    # skopeo picks an image from a layout by name only when its index entry
    # has an OCI media type; kind's own images are Docker schema 2. A layout
    # holding just this entry (same blobs) is read whatever the type.
    cp "${layout}/oci-layout" "${dir}/oci-layout"
    ln -s "${layout}/blobs" "${dir}/blobs"
    : >"${dir}/status"
    while read -r ref; do
        # Present already, under this name and with this manifest digest?
        if [[ "${fresh}" == false ]] &&
            skopeo inspect --raw "containers-storage:[${storage}]${ref}@${digest}" >/dev/null 2>&1; then
            log "${ref}: already in CRI-O's storage (${digest})"
            echo "present ${ref}" >>"${dir}/status"
            stored="${stored:-${ref}}"
            continue
        fi
        if [[ -n "${failed}" ]]; then
            log "${ref}: FAILED to import ${digest}: not tried, the same image failed as ${failed}"
            echo "failed ${ref}" >>"${dir}/status"
            continue
        fi
        started=$(now_ms)
        if out=$(skopeo --policy "${policy}" copy --quiet --preserve-digests \
            "oci:${dir}" "containers-storage:[${storage}]${ref}" 2>&1); then
            took=$(($(now_ms) - started))
            if [[ -z "${stored}" ]]; then
                log "${ref}: imported ${digest} in ${took} ms"
                stored="${ref}"
            else
                log "${ref}: imported ${digest} in ${took} ms (the layers stored for ${stored})"
            fi
            echo "imported ${ref}" >>"${dir}/status"
        else
            reason="${out//$'\n'/ }"
            log "${ref}: FAILED to import ${digest}: ${reason}"
            echo "failed ${ref}" >>"${dir}/status"
            failed="${ref}"
        fi
    done <"${dir}/refs"
}

if [[ "${1:-}" == "--one" ]]; then
    import_one "$2" "$3"
    exit 0
fi

# The status file says the import is over: never a stale one while it runs.
rm -f "${status_file}"
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
: >"${work}/status"

# Writes the status file from ${work}/status, sorted by reference: a
# temporary file in the same directory, renamed into place.
write_status() {
    local tmp
    if mkdir -p "${status_file%/*}" &&
        tmp=$(mktemp "${status_file}.XXXXXX") &&
        LC_ALL=C sort -k 2,2 "${work}/status" >"${tmp}" &&
        chmod 0644 "${tmp}" &&
        mv -f "${tmp}" "${status_file}"; then
        return 0
    fi
    log "cannot write ${status_file}"
}

# What the read-only store holds, by stored.txt: "stored REF DIGEST" lines.
declare -A held=()
if [[ -f "${layout}/stored.txt" ]]; then
    while read -r ref digest; do
        held["${ref}"]="${digest}"
        echo "stored ${ref} ${digest}" >>"${work}/status"
    done <"${layout}/stored.txt"
fi

# Nothing imported: every recorded reference the store does not hold failed,
# by images.txt (which needs no jq to read).
none_imported() {
    local ref digest
    if [[ -f "${layout}/images.txt" ]]; then
        while read -r ref digest; do
            if [[ -z "${held["${ref}"]:-}" ]]; then
                echo "failed ${ref} ${digest}"
            fi
        done <"${layout}/images.txt" >>"${work}/status"
    fi
    write_status
}

for tool in jq skopeo; do
    if ! command -v "${tool}" >/dev/null; then
        log "${tool} is not installed: nothing imported, CRI-O will pull every image"
        none_imported
        exit 0
    fi
done
if [[ ! -f "${layout}/index.json" ]]; then
    log "no ${layout}/index.json: nothing to import"
    write_status
    exit 0
fi

jobs="${KIND_CRIO_PRELOAD_JOBS:-}"
if [[ ! "${jobs}" =~ ^[1-9][0-9]*$ ]]; then
    jobs=$(nproc 2>/dev/null || echo 1)
    if ((jobs > 4)); then
        jobs=4
    fi
fi

started=$(now_ms)

# One jq for the whole index: a directory per manifest digest with its names
# (in the index's order), its digest and a one-entry layout index, so an
# import starts no jq of its own.
if ! jq -r --arg key "${ref_name}" '.manifests | group_by(.digest)[]
    | [.[0].digest, ([.[].annotations[$key]] | join(" ")),
       ({schemaVersion: 2, manifests: [.[0]]} | tojson)]
    | @tsv' "${layout}/index.json" >"${work}/entries"; then
    log "${layout}/index.json is not readable JSON: nothing imported, CRI-O will pull every image"
    none_imported
    exit 0
fi
groups=0
while IFS=$'\t' read -r digest refs index; do
    dir="${work}/${groups}"
    mkdir "${dir}"
    read -r -a names <<<"${refs}"
    printf '%s\n' "${names[@]}" >"${dir}/refs"
    echo "${digest}" >"${dir}/digest"
    echo "${index}" >"${dir}/index.json"
    groups=$((groups + 1))
done <"${work}/entries"

# containers-storage keeps its image list in ROOT/DRIVER-images/images.json;
# before the first image is stored there is none, and no image to skip.
driver="${storage%%@*}"
root="${storage#*@}"
root="${root%%+*}"
fresh=false
if [[ ! -e "${root}/${driver}-images/images.json" ]]; then
    fresh=true
fi

self=$(readlink -f "${BASH_SOURCE[0]}")
if ((groups > 0)); then
    seq 0 $((groups - 1)) | xargs -P "${jobs}" -I '{}' bash "${self}" --one "${fresh}" "${work}/{}"
fi

count=0 imported=0 present=0 failed=0 failures=""
for ((n = 0; n < groups; n++)); do
    dir="${work}/${n}"
    read -r digest <"${dir}/digest"
    declare -A outcome=()
    if [[ -f "${dir}/status" ]]; then
        while read -r result ref; do
            outcome["${ref}"]="${result}"
        done <"${dir}/status"
    fi
    while read -r ref; do
        result="${outcome["${ref}"]:-failed}"
        count=$((count + 1))
        case "${result}" in
        imported) imported=$((imported + 1)) ;;
        present) present=$((present + 1)) ;;
        *)
            result=failed
            failed=$((failed + 1))
            failures="${failures} ${ref}"
            ;;
        esac
        echo "${result} ${ref} ${digest}" >>"${work}/status"
    done <"${dir}/refs"
    unset outcome
done
write_status
took=$(($(now_ms) - started))
summary="${count} images: ${imported} imported, ${present} already present, ${failed} failed"
if ((${#held[@]} > 0)); then
    summary="${#held[@]} images in the node image's store; ${summary}"
fi
if ((failed > 0)); then
    summary="${summary} (${failures# }; CRI-O will pull them)"
fi
log "${summary}, in ${took} ms with ${jobs} parallel imports"
exit 0
"##;

/// skopeo's trust policy for the import: the recorded layout (transport `oci`)
/// is accepted, anything else refused, so the import can never pull.
const POLICY: &str = r#"{
  "default": [{"type": "reject"}],
  "transports": {
    "oci": {"": [{"type": "insecureAcceptAnything"}]}
  }
}
"#;

const UNIT: &str = "\
# Written by kind-crio: imports the images kind preloaded into containerd into
# CRI-O's storage at boot, without holding the boot back. Without default
# dependencies multi-user.target, which kind waits for (30 s at most on a
# node's first boot), is not ordered after it. It starts once CRI-O is up, so
# the import never competes with CRI-O's own start for the store (CRI-O opens
# it, and may check or repair it, before it tells systemd it is ready), and
# CRI-O sees each image once it is stored. The orderings it does need are
# written out. The kubelet waits for it (kubelet.service.d/30-kind-crio-preload.conf);
# on a node's later boots, where the kubelet starts at boot, multi-user.target
# therefore waits for this unit's presence checks (kind has no boot gate
# then). If it fails or times out, CRI-O pulls what is missing.
[Unit]
Description=Import the images kind preloaded into CRI-O's storage
Documentation=https://github.com/kind-crio/kind-crio
DefaultDependencies=no
After=local-fs.target crio.service
Conflicts=shutdown.target
Before=shutdown.target
ConditionPathExists=/opt/kind-crio/preload/index.json

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/opt/kind-crio/preload.sh
# A oneshot has no start timeout by default: never keep the kubelet waiting
# for ever.
TimeoutStartSec=10min

[Install]
WantedBy=multi-user.target
";

const KUBELET_DROPIN: &str = "\
# Written by kind-crio: the kubelet starts only once the images kind preloaded
# are in CRI-O's storage. It waits here, when it starts (kubeadm starts it after
# boot), not through an ordering, which would hold back multi-user.target. A
# preload that failed (timed out) is not started again at every kubelet start:
# CRI-O pulls what is missing.
[Service]
ExecStartPre=-/bin/sh -c 'systemctl is-failed --quiet kind-crio-preload.service || exec systemctl start kind-crio-preload.service'
# The wait counts against the start timeout: longer than the preload's own.
TimeoutStartSec=11min
";
