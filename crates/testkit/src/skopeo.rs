//! Images and skopeo: a tiny OCI layout pushed with `skopeo copy`, tags made
//! in bulk, and what `skopeo` reports, to compare with.

use super::*;

/// A skopeo command that sees no credentials of the machine's user and fails
/// rather than hanging.
pub fn skopeo_command() -> Command {
    static ISOLATION: OnceLock<PathBuf> = OnceLock::new();
    let dir = ISOLATION.get_or_init(|| {
        // Shared by every run; written whole (rename) so concurrent runs agree.
        let dir = scratch_root().join("skopeo");
        std::fs::create_dir_all(dir.join("docker")).expect("create skopeo's directory");
        for (name, text) in [
            ("auth.json", r#"{"auths":{}}"#),
            (
                "policy.json",
                r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
            ),
        ] {
            let part = dir.join(format!("{name}.{}", std::process::id()));
            std::fs::write(&part, text).expect("write a skopeo file");
            std::fs::rename(&part, dir.join(name)).expect("install a skopeo file");
        }
        dir
    });
    let mut cmd = Command::new("skopeo");
    cmd.env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
        .env("DOCKER_CONFIG", dir.join("docker"))
        .arg("--policy")
        .arg(dir.join("policy.json"))
        .args(["--command-timeout", "60s"]);
    cmd
}

/// What `skopeo list-tags` prints for `reference` (`127.0.0.1:PORT/name`), or
/// its error output when it fails.
pub fn skopeo_list_tags(reference: &str, extra_args: &[&str]) -> Result<Value, String> {
    let out = skopeo_command()
        .args(["list-tags", "--tls-verify=false"])
        .args(extra_args)
        .arg(format!("docker://{reference}"))
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo list-tags");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("skopeo printed no JSON: {e}"))
}

/// The manifest digest `skopeo inspect` reports for `reference` (`host/name:tag`).
pub fn skopeo_digest(reference: &str, extra_args: &[&str]) -> String {
    let out = run(skopeo_command()
        .args(["inspect", "--tls-verify=false"])
        .args(extra_args)
        .arg(format!("docker://{reference}")));
    let v: Value = serde_json::from_slice(&out.stdout).expect("skopeo inspect prints JSON");
    v["Digest"]
        .as_str()
        .expect("skopeo inspect reports a Digest")
        .to_owned()
}

/// A one-layer tar holding `marker.txt`, valid ustar.
pub(crate) fn tar_with(marker: &str) -> Vec<u8> {
    let data = marker.as_bytes();
    let mut h = [0u8; 512];
    let field =
        |h: &mut [u8; 512], at: usize, value: &[u8]| h[at..at + value.len()].copy_from_slice(value);
    field(&mut h, 0, b"marker.txt");
    field(&mut h, 100, b"0000644\0");
    field(&mut h, 108, b"0000000\0");
    field(&mut h, 116, b"0000000\0");
    field(&mut h, 124, format!("{:011o}\0", data.len()).as_bytes());
    field(&mut h, 136, b"00000000000\0");
    field(&mut h, 148, b"        ");
    h[156] = b'0';
    field(&mut h, 257, b"ustar\0");
    field(&mut h, 263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    field(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut tar = h.to_vec();
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// Writes a minimal OCI image layout (one uncompressed layer) tagged `latest`.
pub fn write_oci_layout(dir: &Path, marker: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("create the layout");
    let put = |data: &[u8]| -> (String, usize) {
        let hex = sha256_hex(data);
        std::fs::write(blobs.join(&hex), data).expect("write a blob");
        (format!("sha256:{hex}"), data.len())
    };
    let layer = tar_with(marker);
    let (layer_digest, layer_size) = put(&layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"marker": marker}},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
}

/// A storage configuration the record step wrote (`storage.conf`), with its
/// own store and run root moved to `graphroot` and `runroot`, and its
/// additional image store to `store` where given: what podman or skopeo read
/// on this machine instead of a node's.
pub fn moved_storage_conf(
    written: &str,
    graphroot: &Path,
    runroot: &Path,
    store: Option<&Path>,
) -> String {
    written
        .lines()
        .map(|l| match store {
            _ if l.starts_with("graphroot = ") => {
                format!("graphroot = \"{}\"\n", graphroot.display())
            }
            _ if l.starts_with("runroot = ") => format!("runroot = \"{}\"\n", runroot.display()),
            Some(s) if l.starts_with("additionalimagestores = ") => {
                format!("additionalimagestores = [\"{}\"]\n", s.display())
            }
            _ => format!("{l}\n"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_gets_its_own_store_and_the_read_only_one() {
        let written = "[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/containers/storage\"\n\
                       runroot = \"/run/containers/storage\"\n\n[storage.options]\n\
                       additionalimagestores = [\"/s\"]\n";
        assert_eq!(
            moved_storage_conf(written, Path::new("/n/storage"), Path::new("/t/run"), None),
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"/n/storage\"\nrunroot = \"/t/run\"\n\n\
             [storage.options]\nadditionalimagestores = [\"/s\"]\n"
        );
    }
}
