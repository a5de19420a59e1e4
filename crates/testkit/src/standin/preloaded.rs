//! The images kind preloads, in the stand-in node: a few small stand-ins of
//! each shape kind leaves in containerd (see [`crate::oci`]), imported into
//! the node's `/var/lib/containerd` by the node's own containerd (Debian's, run
//! from the new root with that root as its root) exactly as kind does, so a
//! build on the stand-in finds what a build on `kindest/node` finds.

use std::path::Path;

use crate::containerd::Containerd;
use crate::oci::{self, ImageSpec};

/// The stand-ins preloaded into the node image: kind's shapes, about 48 KiB
/// of layers in all (the node image stays small).
pub fn preloaded_images() -> Vec<ImageSpec> {
    oci::kind_like_set(48 * 1024)
}

/// Imports [`preloaded_images`] into `rootfs`'s containerd root, with the
/// containerd and ctr installed in `rootfs`; `scratch` holds the archives.
pub(super) fn preload(rootfs: &Path, images: &[ImageSpec], scratch: &Path) -> Result<(), String> {
    let archives = images
        .iter()
        .map(|spec| oci::build_archive(spec, scratch))
        .collect::<Result<Vec<_>, _>>()?;
    let containerd = Containerd::start(
        &rootfs.join("var/lib/containerd"),
        Some(&rootfs.join("usr/bin")),
    )?;
    for archive in &archives {
        containerd.import(archive)?;
    }
    containerd.stop()?;
    let _ = std::fs::remove_dir_all(scratch);
    Ok(())
}
