//! The matrix of rendered contexts every test of this crate looks at: each
//! Kubernetes generation kind-crio must handle, each CRI-O source, with and
//! without mirrors, each way of preloading.

#![allow(dead_code)] // each test file uses part of it

use node_image::{Arch, CrioSource, CrioStream, Inputs, Mirror, Preload, RepoUrl};
use registry::{ImageRef, KubernetesVersion};

pub struct Case {
    pub name: &'static str,
    pub inputs: Inputs,
}

fn inputs(k: &str, stream: Option<&str>, source: Source, mirrors: &[&str]) -> Inputs {
    let kubernetes = KubernetesVersion::parse(k).expect("valid version");
    let stream = match stream {
        Some(s) => CrioStream::parse(s).expect("valid stream"),
        None => CrioStream::for_kubernetes(&kubernetes),
    };
    let arch = Arch::Amd64;
    let source = match source {
        Source::Apt => CrioSource::Apt {
            repository: stream.apt_repository(),
        },
        Source::AptMirror(url) => CrioSource::Apt {
            repository: RepoUrl::parse_repository(url).expect("valid repository"),
        },
        Source::BundleUrl => CrioSource::BundleUrl {
            url: CrioSource::upstream_bundle(&stream, arch).expect("an exact stream"),
        },
        Source::BundleFile => CrioSource::bundle_file(
            "cri-o.amd64.v1.34.0.tar.gz",
            b"stand-in bundle bytes".to_vec(),
        )
        .expect("valid name"),
    };
    Inputs {
        base_image: ImageRef::parse(&format!("kindest/node:{kubernetes}")).expect("valid image"),
        kubernetes,
        stream,
        source,
        arch,
        mirrors: mirrors
            .iter()
            .map(|m| Mirror::parse(m).expect("valid mirror"))
            .collect(),
        preload: Preload::Store,
    }
}

fn with_preload(mut inputs: Inputs, preload: Preload) -> Inputs {
    inputs.preload = preload;
    inputs
}

enum Source {
    Apt,
    AptMirror(&'static str),
    BundleUrl,
    BundleFile,
}

pub fn matrix() -> Vec<Case> {
    vec![
        Case {
            name: "k8s-1.23-cgroupfs-bundle-url",
            inputs: inputs("v1.23.17", Some("v1.23.5"), Source::BundleUrl, &[]),
        },
        Case {
            name: "k8s-1.31-stable",
            inputs: inputs("v1.31.0", None, Source::Apt, &[]),
        },
        Case {
            name: "k8s-1.31-stable-preload-boot",
            inputs: with_preload(inputs("v1.31.0", None, Source::Apt, &[]), Preload::Boot),
        },
        Case {
            name: "k8s-1.31-stable-preload-none",
            inputs: with_preload(inputs("v1.31.0", None, Source::Apt, &[]), Preload::None),
        },
        Case {
            name: "k8s-1.34-stable-mirrors",
            inputs: inputs(
                "v1.34.0",
                None,
                Source::Apt,
                &[
                    "registry.k8s.io=mirror.example.com/k8s",
                    "registry.k8s.io=127.0.0.1:5000/k8s",
                    "docker.io=mirror.example.com/hub",
                ],
            ),
        },
        Case {
            name: "k8s-1.34-exact-apt-mirror",
            inputs: inputs(
                "v1.34.1",
                Some("v1.34.2"),
                Source::AptMirror("http://127.0.0.1:8080/cri-o/stable/v1.34/"),
                &[],
            ),
        },
        Case {
            name: "k8s-1.36-alpha-prerelease",
            inputs: inputs("v1.36.0-alpha.2", None, Source::Apt, &[]),
        },
        Case {
            name: "k8s-1.34-main",
            inputs: inputs("v1.34.0", Some("main"), Source::Apt, &[]),
        },
        Case {
            name: "k8s-1.34-bundle-file",
            inputs: inputs("v1.34.0", Some("v1.34.0"), Source::BundleFile, &[]),
        },
    ]
}

/// The whole context as one reviewable text: each file with its mode. A
/// file that is not rendered (the same bytes as under `context/`, which is
/// where it is reviewed) is named, not repeated.
pub fn dump(ctx: &node_image::Context) -> String {
    let mut out = String::new();
    let statics = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("context");
    for (path, file) in &ctx.files {
        let mode = if file.executable { "0755" } else { "0644" };
        if std::fs::read(statics.join(path)).is_ok_and(|c| c == file.contents) {
            out.push_str(&format!("=== {path} ({mode}) = context/{path}\n"));
            continue;
        }
        out.push_str(&format!("=== {path} ({mode})\n"));
        match std::str::from_utf8(&file.contents) {
            Ok(text) if !path.ends_with(".tar.gz") => out.push_str(text),
            _ => out.push_str(&format!("<{} bytes>\n", file.contents.len())),
        }
    }
    out
}
