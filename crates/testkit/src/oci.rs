//! Stand-in container images, written byte by byte and packaged the two ways
//! kind's preloaded images reach containerd:
//!
//! - a Docker archive (`docker save` format, uncompressed layers), as the
//!   Kubernetes release tarball ships kube-apiserver & co and kind imports
//!   them: containerd turns each into a Docker schema 2 manifest;
//! - an OCI archive holding one image manifest, or an image index (OCI, or a
//!   Docker manifest list) with `linux/amd64` and `linux/arm64` entries of
//!   which only amd64's blobs are present: what `ctr content fetch
//!   --platform linux/amd64` leaves for the images kind pulls (pause, etcd,
//!   coredns, kindnetd).
//!
//! Each layer holds one file of deterministic pseudo-random bytes drawn from
//! 16 symbols: gzip gets it to a bit over half its size, so decompressing is
//! real work, unlike all-zero or incompressible data. Tars are made with GNU
//! tar and `gzip -n`, with fixed owners and times: the same spec always gives
//! the same digests.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::sha256_hex;
use crate::standin::{run, sha256_file};

/// Media types of the two families containerd and CRI-O both handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Oci,
    Docker,
}

impl Media {
    fn index(self) -> &'static str {
        match self {
            Media::Oci => "application/vnd.oci.image.index.v1+json",
            Media::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
        }
    }

    fn manifest(self) -> &'static str {
        match self {
            Media::Oci => "application/vnd.oci.image.manifest.v1+json",
            Media::Docker => "application/vnd.docker.distribution.manifest.v2+json",
        }
    }

    fn config(self) -> &'static str {
        match self {
            Media::Oci => "application/vnd.oci.image.config.v1+json",
            Media::Docker => "application/vnd.docker.container.image.v1+json",
        }
    }

    fn gzip_layer(self) -> &'static str {
        match self {
            Media::Oci => "application/vnd.oci.image.layer.v1.tar+gzip",
            Media::Docker => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    }
}

/// How an image is packaged for `ctr images import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packaging {
    /// `docker save` format, uncompressed layers (kind's built images).
    DockerArchive,
    /// An OCI archive with one image manifest, gzip layers.
    Manifest(Media),
    /// An OCI archive with an index of linux/amd64 and linux/arm64 where only
    /// amd64's manifest, config and layers are present.
    AmdOfTwo(Media),
}

/// One stand-in image: its full reference, the other names it has in
/// containerd, how it is packaged, and the size in bytes of the single file
/// in each layer (one layer per entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub reference: String,
    /// More names of the same image (same manifest). Kubernetes' release
    /// tarballs name the kube images `registry.k8s.io/kube-apiserver-amd64:TAG`
    /// only; `kind build node-image` loads them under that name and then tags
    /// the name without the `-ARCH` suffix, keeping both. Here the Docker
    /// archive's `RepoTags` holds the aliases, when there are any, and
    /// [`ImageSpec::tags_after_import`] gives the reference.
    pub aliases: Vec<String>,
    pub packaging: Packaging,
    pub layer_sizes: Vec<usize>,
    /// The first N layers hold the same bytes as those of every other image
    /// with the same key (images built on one base share its layers, as the
    /// kube images share distroless's): `(key, N)`.
    pub base: Option<(String, usize)>,
    /// The last layer deletes the first layer's file (an OCI whiteout,
    /// `data/.wh.layer-0.bin`), as an image built with `RUN rm` has.
    pub whiteout: bool,
}

impl ImageSpec {
    pub fn new(reference: &str, packaging: Packaging, layer_sizes: &[usize]) -> ImageSpec {
        ImageSpec {
            reference: reference.to_owned(),
            aliases: Vec::new(),
            packaging,
            layer_sizes: layer_sizes.to_vec(),
            base: None,
            whiteout: false,
        }
    }

    /// The same image with its first `layers` layers shared with every image
    /// on the base `key` (their sizes must agree too, for the layers to be
    /// the same).
    #[must_use]
    pub fn on_base(mut self, key: &str, layers: usize) -> ImageSpec {
        self.base = Some((key.to_owned(), layers.min(self.layer_sizes.len())));
        self
    }

    /// The same image with its last layer deleting the first layer's file
    /// (`data/layer-0.bin`); it needs two layers at least.
    #[must_use]
    pub fn with_whiteout(mut self) -> ImageSpec {
        assert!(
            self.layer_sizes.len() >= 2,
            "a whiteout needs a layer below it"
        );
        self.whiteout = true;
        self
    }

    /// The same image with these aliases.
    #[must_use]
    pub fn with_aliases(mut self, aliases: &[&str]) -> ImageSpec {
        self.aliases = aliases.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Every name the image has in containerd once loaded: the reference,
    /// then the aliases.
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(self.reference.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .collect()
    }

    /// The names the archive itself carries: a Docker archive's `RepoTags`
    /// (its aliases if it has any, as a release tarball has them), an OCI
    /// archive's `org.opencontainers.image.ref.name` (the reference).
    pub fn archive_names(&self) -> Vec<&str> {
        match self.packaging {
            Packaging::DockerArchive if !self.aliases.is_empty() => {
                self.aliases.iter().map(String::as_str).collect()
            }
            _ => vec![self.reference.as_str()],
        }
    }

    /// `ctr images tag --force FROM TO` pairs that give the image the names
    /// its archive lacks, as kind's build tags the `-ARCH` names of the kube
    /// images to the plain ones (FROM: the archive's first name).
    pub fn tags_after_import(&self) -> Vec<(&str, &str)> {
        let carried = self.archive_names();
        let from = carried[0];
        self.names()
            .into_iter()
            .filter(|n| !carried.contains(n))
            .map(|n| (from, n))
            .collect()
    }

    /// The `ctr images import` options kind's way of loading this image
    /// amounts to: `--all-platforms --no-unpack --digests` for its archives
    /// (kind's `LoadCommand`, which adds `--label=io.cri-containerd.pinned=pinned`
    /// where ctr has `--label`: see [`ImageSpec::pinned_on_import`]); for a
    /// fetched multi-platform image, the one platform kind asks for.
    pub fn import_args(&self) -> Vec<&'static str> {
        match self.packaging {
            Packaging::AmdOfTwo(_) => vec!["--platform", "linux/amd64", "--no-unpack", "--digests"],
            _ => vec!["--all-platforms", "--no-unpack", "--digests"],
        }
    }

    /// Whether kind loads this image with its `LoadCommand` (an archive),
    /// which pins it (`--label=io.cri-containerd.pinned=pinned`, since kind
    /// v0.21), rather than fetching it (no label).
    pub fn pinned_on_import(&self) -> bool {
        !matches!(self.packaging, Packaging::AmdOfTwo(_))
    }
}

/// What was written for one image.
#[derive(Debug, Clone)]
pub struct BuiltArchive {
    pub spec: ImageSpec,
    /// The tar to feed `ctr images import`.
    pub archive: PathBuf,
    /// The linux/amd64 image manifest's digest, where it is fixed before the
    /// import (for a Docker archive containerd writes the manifest: None).
    pub manifest_digest: Option<String>,
    /// The config's digest: the image ID in containers-storage.
    pub config_digest: String,
    /// Uncompressed layer tars, in order.
    pub layer_tars: Vec<PathBuf>,
    /// The same layers gzip-compressed (made for Docker archives too).
    pub layer_gzips: Vec<PathBuf>,
}

/// The stand-in set of kind's preloaded images: one of each shape kind leaves
/// in containerd (two kube images from release tarballs, each with its
/// `-amd64` alias), `total` layer bytes (before compression) spread over
/// several layers each.
pub fn kind_like_set(total: usize) -> Vec<ImageSpec> {
    let part = |percent: usize| (total * percent / 100).max(64);
    vec![
        ImageSpec::new(
            "registry.k8s.io/kube-apiserver:v1.34.0",
            Packaging::DockerArchive,
            &[part(5), part(10), part(15)],
        )
        .with_aliases(&["registry.k8s.io/kube-apiserver-amd64:v1.34.0"]),
        ImageSpec::new(
            "registry.k8s.io/kube-scheduler:v1.34.0",
            Packaging::DockerArchive,
            &[part(5), part(5)],
        )
        .with_aliases(&["registry.k8s.io/kube-scheduler-amd64:v1.34.0"]),
        ImageSpec::new(
            "registry.k8s.io/pause:3.10",
            Packaging::AmdOfTwo(Media::Oci),
            &[part(1)],
        ),
        ImageSpec::new(
            "registry.k8s.io/etcd:3.6.4-0",
            Packaging::AmdOfTwo(Media::Docker),
            &[part(4), part(20), part(10)],
        ),
        ImageSpec::new(
            "docker.io/kindest/kindnetd:v20250512-df8de77b",
            Packaging::Manifest(Media::Oci),
            &[part(10), part(15)],
        ),
    ]
}

struct Layer {
    tar: PathBuf,
    gz: PathBuf,
    diff_id: String,
    gz_digest: String,
    gz_size: u64,
}

/// Writes `spec` under `dir` (in a directory of its own) and returns the
/// archive and what is known of its digests.
pub fn build_archive(spec: &ImageSpec, dir: &Path) -> Result<BuiltArchive, String> {
    let name: String = spec
        .reference
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let work = dir.join(&name);
    let _ = std::fs::remove_dir_all(&work);
    let seed_of = |key: &str| {
        u64::from_str_radix(&sha256_hex(key.as_bytes())[..16], 16).map_err(|e| format!("seed: {e}"))
    };
    let own = seed_of(&spec.reference)?;
    let (base, shared) = match &spec.base {
        Some((key, n)) => (seed_of(key)?, *n),
        None => (own, 0),
    };
    let seeds: Vec<u64> = (0..spec.layer_sizes.len())
        .map(|i| if i < shared { base } else { own })
        .collect();
    let layers = make_layers(
        &work.join("layers"),
        &seeds,
        &spec.layer_sizes,
        spec.whiteout,
    )?;
    match spec.packaging {
        Packaging::DockerArchive => docker_archive(spec, &work, &layers),
        Packaging::Manifest(media) => oci_archive(spec, &work, media, &layers, false),
        Packaging::AmdOfTwo(media) => oci_archive(spec, &work, media, &layers, true),
    }
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))
}

fn write(path: &Path, data: &[u8]) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("write {}: {e}", path.display()))
}

/// `tar` with everything that varies between machines fixed.
fn tar_dir(root: &Path, out: &Path) -> Result<(), String> {
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "--format=gnu",
            "-C",
        ])
        .arg(root)
        .arg("-cf")
        .arg(out)
        .arg("."))
    .map(|_| ())
}

/// Pseudo-random bytes from 16 symbols (xorshift64*), `size` of them.
fn fill(seed: u64, size: usize, out: &mut impl std::io::Write) -> std::io::Result<()> {
    const SYMBOLS: &[u8; 16] = b"0123456789abcdef";
    let mut x = seed | 1;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut left = size;
    while left > 0 {
        buf.clear();
        while buf.len() < (1 << 16) && buf.len() < left {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            for i in 0..16 {
                buf.push(SYMBOLS[((r >> (i * 4)) & 0xf) as usize]);
            }
        }
        buf.truncate(left.min(buf.len()));
        out.write_all(&buf)?;
        left -= buf.len();
    }
    Ok(())
}

/// Layer `i` holds `sizes[i]` bytes drawn from `seeds[i]` (offset by `i`);
/// with `whiteout`, the last one also deletes layer 0's file.
fn make_layers(
    dir: &Path,
    seeds: &[u64],
    sizes: &[usize],
    whiteout: bool,
) -> Result<Vec<Layer>, String> {
    let mut layers = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let root = dir.join(format!("{i}/root"));
        mkdir(&root.join("data"))?;
        if whiteout && i + 1 == sizes.len() {
            write(&root.join("data/.wh.layer-0.bin"), b"")?;
        }
        let file = root.join(format!("data/layer-{i}.bin"));
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&file).map_err(|e| format!("create {}: {e}", file.display()))?,
        );
        fill(seeds[i].wrapping_add(i as u64 * 0x9E37_79B9), size, &mut f)
            .and_then(|()| f.flush())
            .map_err(|e| format!("write {}: {e}", file.display()))?;
        drop(f);
        let tar = dir.join(format!("{i}/layer.tar"));
        tar_dir(&root, &tar)?;
        run(Command::new("gzip").args(["-n", "-k", "-f"]).arg(&tar))?;
        let gz = dir.join(format!("{i}/layer.tar.gz"));
        let gz_size = std::fs::metadata(&gz)
            .map_err(|e| format!("{}: {e}", gz.display()))?
            .len();
        layers.push(Layer {
            diff_id: format!("sha256:{}", sha256_file(&tar)?),
            gz_digest: format!("sha256:{}", sha256_file(&gz)?),
            tar,
            gz,
            gz_size,
        });
    }
    Ok(layers)
}

fn config(spec: &ImageSpec, arch: &str, layers: &[Layer]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .map(|_| json!({"created": "1970-01-01T00:00:00Z", "created_by": "kind-crio stand-in"}))
        .collect();
    json!({
        "architecture": arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": {"io.kind-crio.standin": spec.reference},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })
    .to_string()
    .into_bytes()
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

fn oci_archive(
    spec: &ImageSpec,
    work: &Path,
    media: Media,
    layers: &[Layer],
    two_platforms: bool,
) -> Result<BuiltArchive, String> {
    let layout = work.join("layout");
    let blobs = layout.join("blobs/sha256");
    mkdir(&blobs)?;
    let put = |data: &[u8]| -> Result<String, String> {
        let digest = digest_of(data);
        write(&blobs.join(&digest["sha256:".len()..]), data)?;
        Ok(digest)
    };
    for layer in layers {
        let dest = blobs.join(&layer.gz_digest["sha256:".len()..]);
        std::fs::copy(&layer.gz, &dest).map_err(|e| format!("copy to {}: {e}", dest.display()))?;
    }
    let manifest_for = |config: &[u8]| {
        json!({
            "schemaVersion": 2,
            "mediaType": media.manifest(),
            "config": {"mediaType": media.config(), "digest": digest_of(config), "size": config.len()},
            "layers": layers.iter().map(|l| json!({
                "mediaType": media.gzip_layer(), "digest": l.gz_digest, "size": l.gz_size,
            })).collect::<Vec<_>>(),
        })
        .to_string()
        .into_bytes()
    };
    let amd_config = config(spec, "amd64", layers);
    let config_digest = put(&amd_config)?;
    let amd_manifest = manifest_for(&amd_config);
    let manifest_digest = put(&amd_manifest)?;
    let top = if two_platforms {
        // arm64's config and manifest are described, never written: a
        // single-platform fetch leaves exactly that.
        let arm_manifest = manifest_for(&config(spec, "arm64", layers));
        let entry = |m: &[u8], arch: &str| {
            json!({"mediaType": media.manifest(), "digest": digest_of(m), "size": m.len(),
                   "platform": {"architecture": arch, "os": "linux"}})
        };
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media.index(),
            "manifests": [entry(&amd_manifest, "amd64"), entry(&arm_manifest, "arm64")],
        })
        .to_string()
        .into_bytes();
        json!({"mediaType": media.index(), "digest": put(&index)?, "size": index.len()})
    } else {
        json!({"mediaType": media.manifest(), "digest": manifest_digest, "size": amd_manifest.len()})
    };
    let mut top = top;
    top["annotations"] = json!({"org.opencontainers.image.ref.name": spec.reference});
    write(
        &layout.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [top]})
            .to_string()
            .as_bytes(),
    )?;
    write(
        &layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let archive = work.join("image.oci.tar");
    tar_dir(&layout, &archive)?;
    Ok(BuiltArchive {
        spec: spec.clone(),
        archive,
        manifest_digest: Some(manifest_digest),
        config_digest,
        layer_tars: layers.iter().map(|l| l.tar.clone()).collect(),
        layer_gzips: layers.iter().map(|l| l.gz.clone()).collect(),
    })
}

fn docker_archive(spec: &ImageSpec, work: &Path, layers: &[Layer]) -> Result<BuiltArchive, String> {
    let staging = work.join("docker");
    mkdir(&staging)?;
    let config = config(spec, "amd64", layers);
    let config_digest = digest_of(&config);
    let config_name = format!("{}.json", &config_digest["sha256:".len()..]);
    write(&staging.join(&config_name), &config)?;
    let mut names = Vec::new();
    for layer in layers {
        let name = format!("{}/layer.tar", &layer.diff_id["sha256:".len()..]);
        let dest = staging.join(&name);
        mkdir(dest.parent().unwrap_or(&staging))?;
        std::fs::copy(&layer.tar, &dest).map_err(|e| format!("copy to {}: {e}", dest.display()))?;
        names.push(name);
    }
    let manifest =
        json!([{"Config": config_name, "RepoTags": spec.archive_names(), "Layers": names}]);
    write(
        &staging.join("manifest.json"),
        manifest.to_string().as_bytes(),
    )?;
    let archive = work.join("image.docker.tar");
    tar_dir(&staging, &archive)?;
    Ok(BuiltArchive {
        spec: spec.clone(),
        archive,
        manifest_digest: None,
        config_digest,
        layer_tars: layers.iter().map(|l| l.tar.clone()).collect(),
        layer_gzips: layers.iter().map(|l| l.gz.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_carried_as_a_release_tarball_carries_them() {
        let plain = ImageSpec::new(
            "registry.k8s.io/pause:3.10",
            Packaging::DockerArchive,
            &[64],
        );
        assert_eq!(plain.names(), ["registry.k8s.io/pause:3.10"]);
        assert_eq!(plain.archive_names(), plain.names());
        assert!(plain.tags_after_import().is_empty());

        let kube = ImageSpec::new(
            "registry.k8s.io/kube-proxy:v1.34.0",
            Packaging::DockerArchive,
            &[64],
        )
        .with_aliases(&["registry.k8s.io/kube-proxy-amd64:v1.34.0"]);
        assert_eq!(
            kube.names(),
            [
                "registry.k8s.io/kube-proxy:v1.34.0",
                "registry.k8s.io/kube-proxy-amd64:v1.34.0"
            ]
        );
        assert_eq!(
            kube.archive_names(),
            ["registry.k8s.io/kube-proxy-amd64:v1.34.0"]
        );
        assert_eq!(
            kube.tags_after_import(),
            [(
                "registry.k8s.io/kube-proxy-amd64:v1.34.0",
                "registry.k8s.io/kube-proxy:v1.34.0"
            )]
        );

        // The archive's manifest.json names the image by its aliases.
        let dir = crate::TempDir::new("aliases_are_carried_as_a_release_tarball_carries_them");
        let built = build_archive(&kube, dir.path()).expect("an archive");
        let out = run(Command::new("tar")
            .arg("-xOf")
            .arg(&built.archive)
            .arg("./manifest.json"))
        .expect("read manifest.json");
        let manifest: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("manifest.json is JSON");
        assert_eq!(
            manifest[0]["RepoTags"],
            json!(["registry.k8s.io/kube-proxy-amd64:v1.34.0"])
        );

        // An OCI archive keeps its reference; aliases are tags from it.
        let oci = ImageSpec::new("docker.io/x/y:1", Packaging::Manifest(Media::Oci), &[64])
            .with_aliases(&["docker.io/x/y:latest"]);
        assert_eq!(oci.archive_names(), ["docker.io/x/y:1"]);
        assert_eq!(
            oci.tags_after_import(),
            [("docker.io/x/y:1", "docker.io/x/y:latest")]
        );
    }

    #[test]
    fn the_kind_like_set_has_each_shape_and_kube_aliases() {
        let set = kind_like_set(1 << 20);
        let aliased: Vec<&str> = set
            .iter()
            .filter(|s| !s.aliases.is_empty())
            .map(|s| s.reference.as_str())
            .collect();
        assert_eq!(
            aliased,
            [
                "registry.k8s.io/kube-apiserver:v1.34.0",
                "registry.k8s.io/kube-scheduler:v1.34.0"
            ]
        );
        for s in &set {
            for a in &s.aliases {
                assert_eq!(a.replace("-amd64:", ":"), s.reference);
            }
        }
        let total: usize = set.iter().flat_map(|s| &s.layer_sizes).sum();
        assert!(total.abs_diff(1 << 20) < 1024, "{total}");
    }

    #[test]
    fn fill_is_deterministic_and_uses_sixteen_symbols() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        fill(7, 100_000, &mut a).expect("fill");
        fill(7, 100_000, &mut b).expect("fill");
        assert_eq!(a, b);
        assert_eq!(a.len(), 100_000);
        let mut seen = [false; 256];
        for &x in &a {
            seen[usize::from(x)] = true;
        }
        assert_eq!(seen.iter().filter(|s| **s).count(), 16);
        let mut c = Vec::new();
        fill(8, 100_000, &mut c).expect("fill");
        assert_ne!(a, c);
    }
}
