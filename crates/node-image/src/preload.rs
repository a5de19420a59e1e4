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

const RECORD_SCRIPT: &str = include_str!("../context/kind-crio/preload-record.sh");

const BOOT_SCRIPT: &str = include_str!("../context/kind-crio/files/opt/kind-crio/preload.sh");

/// skopeo's trust policy for the import: the recorded layout (transport `oci`)
/// is accepted, anything else refused, so the import can never pull.
const POLICY: &str = include_str!("../context/kind-crio/files/opt/kind-crio/policy.json");

const UNIT: &str =
    include_str!("../context/kind-crio/files/etc/systemd/system/kind-crio-preload.service");

const KUBELET_DROPIN: &str = include_str!(
    "../context/kind-crio/files/etc/systemd/system/kubelet.service.d/30-kind-crio-preload.conf"
);
