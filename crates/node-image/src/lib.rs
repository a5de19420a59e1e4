//! The build context that turns a kind node image into a CRI-O node image:
//! a Dockerfile plus the files and scripts it installs, rendered as a pure
//! function of typed [`Inputs`].
//!
//! What the context does to the node, and why (each for a reason recorded in
//! the project's field notes on kind and CRI-O):
//! - installs CRI-O from its current `isv:/cri-o` apt repository (signing key
//!   fetched ASCII-armoured, since kind's base image has no gpg), or from an
//!   upstream static bundle checked against its sha256;
//! - a `99-kind-crio.conf` drop-in: the cgroup manager kind's kubelet uses for
//!   the Kubernetes version, `conmon_cgroup = "pod"`, the pause image kind
//!   preloaded (read from containerd's `sandbox_image` at build time) pinned,
//!   AppArmor unconfined;
//! - `/etc/crictl.yaml` on CRI-O's socket, the kubelet's `--runtime-cgroups` on
//!   `crio.service` and ordered after it;
//! - no CNI config that competes with kindnet's `10-kindnet.conflist`;
//! - containerd disabled, crio enabled; registry mirrors when asked;
//! - the images kind preloaded into containerd stored in a read-only
//!   containers-storage store in the image, CRI-O's additional image store,
//!   or recorded (no data copied) and imported into CRI-O's storage at first
//!   boot (see `preload`).
//!
//! Everything runs in one `RUN` with the context bind-mounted, so the image
//! gains one layer and keeps no scripts or tarballs.

mod inputs;
mod preload;
mod render;
mod secret;

pub use inputs::{
    Arch, BuildProxy, CrioSource, CrioStream, InputError, Inputs, Mirror, Preload, RepoUrl,
};
pub use preload::{PRELOAD_DIR, PRELOAD_STATUS, PRELOAD_STORE, PRELOAD_UNIT};
pub use render::{Context, DIGEST_LABEL, File, digest_dir, read_context, render, write_context};
pub use secret::{Redacted, redact};
