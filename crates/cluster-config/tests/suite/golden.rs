//! Generated configs, compared with the files in `tests/golden/`.

use cluster_config::{GenerateOptions, KubeProxyMode, encode, generate};
use expect_test::expect_file;

use crate::support::yaml_files;

const IMAGE: &str = "ghcr.io/kind-crio/kindnode-crio:v1.34.0";

/// Every generated golden: file name and the options that make it.
pub fn cases() -> Vec<(String, GenerateOptions)> {
    let mut cases = Vec::new();
    for (control_planes, workers) in [(1, 0), (1, 1), (3, 2)] {
        for image in [None, Some(IMAGE)] {
            let name = format!(
                "generate-{control_planes}cp-{workers}w{}.yaml",
                if image.is_some() { "-image" } else { "" }
            );
            cases.push((
                name,
                GenerateOptions {
                    control_planes,
                    workers,
                    image: image.map(str::to_owned),
                    ..GenerateOptions::default()
                },
            ));
        }
    }
    for mode in KubeProxyMode::ALL {
        cases.push((
            format!("generate-proxy-{mode}.yaml"),
            GenerateOptions {
                name: Some("crio".to_owned()),
                image: Some(IMAGE.to_owned()),
                kube_proxy_mode: Some(*mode),
                ..GenerateOptions::default()
            },
        ));
    }
    cases
}

#[test]
fn generated_configs_match_the_goldens() {
    for (file, options) in cases() {
        let cluster = generate(&options).unwrap_or_else(|e| panic!("{file}: {e}"));
        let yaml = encode(&cluster).expect("encode");
        expect_file![format!("../golden/{file}")].assert_eq(&yaml);
    }
}

/// A golden nobody generates any more would be reviewed as if it mattered.
#[test]
fn every_golden_has_a_case() {
    let generated: Vec<String> = cases().into_iter().map(|(file, _)| file).collect();
    let crio_ready: Vec<String> = crate::crio_ready::golden_names();
    for (file, _) in yaml_files("golden") {
        assert!(
            generated.contains(&file) || crio_ready.contains(&file),
            "tests/golden/{file} is produced by no test; delete it"
        );
    }
}
