//! The images kind preloads, in the stand-in node: a few small stand-ins of
//! each shape kind leaves in containerd (see [`crate::oci`]), imported into
//! the node's `/var/lib/containerd` by the node's own containerd (Debian's, run
//! from the new root with that root as its root) exactly as kind does, so a
//! build on the stand-in finds what a build on `kindest/node` finds.

use std::path::Path;

use crate::containerd::Containerd;
use crate::oci::{self, ImageSpec, Packaging};

/// The stand-ins preloaded into the node image: kind's shapes, about 48 KiB
/// of layers in all (the node image stays small).
pub fn preloaded_images() -> Vec<ImageSpec> {
    oci::kind_like_set(48 * 1024)
}

/// A stand-in set shaped like the one `kind build node-image` preloads for
/// Kubernetes v1.34 (kind v0.30+): the same ten references, each packaged as
/// kind gets it (the kube images from the release tarballs as Docker
/// archives with uncompressed layers; the others fetched for one platform of
/// a multi-platform index, with gzip layers; the kube images also under
/// their `-amd64` names, as kind keeps them), with about the layer counts and
/// uncompressed sizes of the real images, about 530 MiB in all.
pub fn kind_sized_images() -> Vec<ImageSpec> {
    const MIB: usize = 1024 * 1024;
    let mib =
        |sizes: &[f64]| -> Vec<usize> { sizes.iter().map(|s| (s * MIB as f64) as usize).collect() };
    // The distroless layers every kube image starts from, then go-runner.
    let kube = |binary: &[f64]| {
        let mut layers = vec![0.1, 0.3, 1.2, 0.5, 2.2, 0.1, 1.0];
        layers.extend_from_slice(binary);
        mib(&layers)
    };
    let docker = Packaging::DockerArchive;
    let oci_index = Packaging::AmdOfTwo(oci::Media::Oci);
    let docker_list = Packaging::AmdOfTwo(oci::Media::Docker);
    vec![
        ImageSpec::new(
            "registry.k8s.io/kube-apiserver:v1.34.0",
            docker,
            &kube(&[83.0]),
        )
        .with_aliases(&["registry.k8s.io/kube-apiserver-amd64:v1.34.0"]),
        ImageSpec::new(
            "registry.k8s.io/kube-controller-manager:v1.34.0",
            docker,
            &kube(&[67.0]),
        )
        .with_aliases(&["registry.k8s.io/kube-controller-manager-amd64:v1.34.0"]),
        ImageSpec::new(
            "registry.k8s.io/kube-scheduler:v1.34.0",
            docker,
            &kube(&[48.0]),
        )
        .with_aliases(&["registry.k8s.io/kube-scheduler-amd64:v1.34.0"]),
        ImageSpec::new(
            "registry.k8s.io/kube-proxy:v1.34.0",
            docker,
            &kube(&[24.0, 46.0]),
        )
        .with_aliases(&["registry.k8s.io/kube-proxy-amd64:v1.34.0"]),
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
