//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};

/// The crate's `tests/` directory.
pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// `(file name, text)` of every `*.yaml` in `tests/<dir>`, sorted by name.
pub fn yaml_files(dir: &str) -> Vec<(String, String)> {
    let dir = tests_dir().join(dir);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// The YAML text as a generic tree, to compare what two files say regardless of layout.
pub fn tree(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

/// `tree` spelt the way kind reads it, which is how we write it: every
/// port mapping's `protocol` in upper case.
pub fn as_kind_reads(mut tree: serde_json::Value) -> serde_json::Value {
    let mappings = tree
        .get_mut("nodes")
        .and_then(serde_json::Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|node| node.get_mut("extraPortMappings")?.as_array_mut())
        .flatten();
    for mapping in mappings {
        if let Some(serde_json::Value::String(protocol)) = mapping.get_mut("protocol") {
            *protocol = protocol.to_uppercase();
        }
    }
    tree
}
