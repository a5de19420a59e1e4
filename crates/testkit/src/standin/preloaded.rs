//! The images kind preloads, in the stand-in node: a few small stand-ins of
//! each shape kind leaves in containerd (see [`crate::oci`]), imported into
//! the node's `/var/lib/containerd` by the node's own containerd (Debian's, run
//! from the new root with that root as its root) exactly as kind does, so a
//! build on the stand-in finds what a build on `kindest/node` finds.

use std::path::Path;

use crate::containerd::Containerd;
use crate::oci::{self, ImageSpec, Packaging};

/// The stand-ins preloaded into the node image: kind's shapes, about 48 KiB
/// of layers in all (the node image stays small), and one image whose upper
/// layer deletes a file of the layer below (a whiteout), which a read-only
/// store nested in the node image's layer cannot hold.
pub fn preloaded_images() -> Vec<ImageSpec> {
    let mut set = oci::kind_like_set(48 * 1024);
    set.push(whiteout_image());
    set
}

/// An image of kind's whose second layer deletes the first layer's
/// `data/layer-0.bin`.
pub fn whiteout_image() -> ImageSpec {
    ImageSpec::new(
        "docker.io/kindest/local-path-helper:v20241212-8ac705d0",
        Packaging::AmdOfTwo(oci::Media::Oci),
        &[4096, 2048],
    )
    .with_whiteout()
}

/// A stand-in set shaped like the one `kind build node-image` preloads for
/// Kubernetes v1.34 (kind v0.30+): the same ten references, each packaged as
/// kind gets it (the kube images from the release tarballs as Docker
/// archives with uncompressed layers; the others fetched for one platform of
/// a multi-platform index, with gzip layers; the kube images also under
/// their `-amd64` names, as kind keeps them, and on the same base layers),
/// with about the layer counts and uncompressed sizes of the real images,
/// about 510 MiB of unique layers in all.
pub fn kind_sized_images() -> Vec<ImageSpec> {
    const MIB: usize = 1024 * 1024;
    let mib =
        |sizes: &[f64]| -> Vec<usize> { sizes.iter().map(|s| (s * MIB as f64) as usize).collect() };
    // A kube image: the distroless layers every kube image starts from (the
    // same layers in each), go-runner, then its own; and its -amd64 alias.
    let docker = Packaging::DockerArchive;
    let kube = |name: &str, own: &[f64]| {
        let mut layers = vec![0.1, 0.3, 1.2, 0.5, 2.2, 0.1, 1.0];
        let shared = layers.len();
        layers.extend_from_slice(own);
        ImageSpec::new(
            &format!("registry.k8s.io/{name}:v1.34.0"),
            docker,
            &mib(&layers),
        )
        .with_aliases(&[&format!("registry.k8s.io/{name}-amd64:v1.34.0")])
        .on_base("registry.k8s.io/kube-base", shared)
    };
    let oci_index = Packaging::AmdOfTwo(oci::Media::Oci);
    let docker_list = Packaging::AmdOfTwo(oci::Media::Docker);
    vec![
        kube("kube-apiserver", &[83.0]),
        kube("kube-controller-manager", &[67.0]),
        kube("kube-scheduler", &[48.0]),
        kube("kube-proxy", &[24.0, 46.0]),
        ImageSpec::new(
            "registry.k8s.io/etcd:3.6.4-0",
            docker_list,
            &mib(&[0.8, 1.0, 2.0, 20.0, 36.0]),
        ),
        ImageSpec::new(
            "registry.k8s.io/coredns/coredns:v1.12.1",
            docker_list,
            &mib(&[0.3, 1.0, 2.0, 70.0]),
        ),
        ImageSpec::new("registry.k8s.io/pause:3.10", oci_index, &mib(&[0.7])),
        ImageSpec::new(
            "docker.io/kindest/kindnetd:v20250512-df8de77b",
            oci_index,
            &mib(&[2.0, 4.0, 38.0]),
        ),
        ImageSpec::new(
            "docker.io/kindest/local-path-provisioner:v20250214-acbabc1a",
            oci_index,
            &mib(&[3.0, 55.0]),
        ),
        ImageSpec::new(
            "docker.io/kindest/local-path-helper:v20241212-8ac705d0",
            oci_index,
            &mib(&[3.2]),
        ),
    ]
}

/// Imports `images` into `rootfs`'s containerd root with the containerd
/// and ctr installed in `rootfs` (in `bin`); `scratch` holds the archives.
pub(super) fn preload(
    rootfs: &Path,
    bin: &Path,
    images: &[ImageSpec],
    scratch: &Path,
) -> Result<(), String> {
    let archives = images
        .iter()
        .map(|spec| oci::build_archive(spec, scratch))
        .collect::<Result<Vec<_>, _>>()?;
    let containerd = Containerd::start(&rootfs.join("var/lib/containerd"), Some(bin))?;
    for archive in &archives {
        containerd.import(archive)?;
    }
    containerd.stop()?;
    let _ = std::fs::remove_dir_all(scratch);
    Ok(())
}
