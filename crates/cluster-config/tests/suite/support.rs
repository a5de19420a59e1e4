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

/// `tree` spelt the way kind reads it, which is how we write it: every port
/// mapping's `protocol` in upper case, and no enumeration that is an empty
/// string (kind reads that as unset).
pub fn as_kind_reads(mut tree: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;

    fn items<'a>(parent: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
        parent
            .get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
    }
    fn drop_if_empty(object: &mut Value, key: &str) {
        if object.get(key).is_some_and(|v| v == "") {
            object.as_object_mut().map(|o| o.remove(key));
        }
    }

    if let Some(networking) = tree.get_mut("networking") {
        drop_if_empty(networking, "ipFamily");
        drop_if_empty(networking, "kubeProxyMode");
    }
    for node in items(&mut tree, "nodes") {
        drop_if_empty(node, "role");
        for mount in items(node, "extraMounts") {
            drop_if_empty(mount, "propagation");
        }
        for mapping in items(node, "extraPortMappings") {
            drop_if_empty(mapping, "protocol");
            if let Some(Value::String(protocol)) = mapping.get_mut("protocol") {
                *protocol = protocol.to_uppercase();
            }
        }
    }
    tree
}
