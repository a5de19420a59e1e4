//! Errors callers branch on. Each names where in the config the problem is
//! (a field path such as `nodes[1].extraPortMappings[0].hostPort`), the value
//! found, and what would be right.

use std::fmt;

use crate::model::ApiVersion;
use crate::model::Kind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not YAML, or not a single YAML mapping.
    #[error("not a valid kind config: {message}")]
    Yaml { message: String },

    #[error(
        "{}; kind-crio reads kind configs with `apiVersion: {}`",
        match .found { Some(v) => format!("apiVersion {v:?} is not supported"), None => "apiVersion is missing".to_owned() },
        ApiVersion::VALUE
    )]
    ApiVersion { found: Option<String> },

    #[error(
        "{} for apiVersion {}; a kind config has `kind: {}`",
        match .found { Some(v) => format!("kind {v:?} is not supported"), None => "kind is missing".to_owned() },
        ApiVersion::VALUE,
        Kind::VALUE
    )]
    Kind { found: Option<String> },

    /// Valid YAML that does not fit the schema: an unknown field, a value of
    /// the wrong type, an unknown enumeration value.
    #[error("{}{message}", if .path.is_empty() { String::new() } else { format!("{}: ", .path) })]
    Schema { path: String, message: String },

    /// The config decodes but kind would refuse it.
    #[error("{0}")]
    Invalid(Violations),

    /// A kubeadm config patch that cannot be read, so whether it sets the CRI
    /// socket cannot be told. kind loads and validates such a config, but
    /// fails on the patch later, once it has created the node containers.
    #[error(
        "{location}: {message}; fix or remove this patch: kind would create the nodes, then fail on it while writing the kubeadm config"
    )]
    Patch { location: String, message: String },

    /// A patch points the node at another container runtime.
    #[error(
        "{location} sets {field} to {found}, but a CRI-O node needs {}; remove that setting or set it to the CRI-O socket",
        crate::crio::CRIO_SOCKET
    )]
    CriSocketConflict {
        /// Which patch, e.g. `nodes[1].kubeadmConfigPatches[0]`.
        location: String,
        /// What it sets, e.g. `JoinConfiguration nodeRegistration.criSocket`.
        field: String,
        /// The value it sets, quoted, or a description such as `nothing (removes it)`.
        found: String,
    },

    /// The serializer refused the model (not expected for these types).
    #[error("cannot write the kind config as YAML: {0}")]
    Encode(String),
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field path, e.g. `networking.podSubnet`.
    pub path: String,
    /// The bad value and what would be right.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem validation found, in document order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// True when some violation is at `path` exactly.
    pub fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|v| v.path == path)
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid kind config: {one}"),
            all => {
                write!(f, "invalid kind config, {} problems:", all.len())?;
                for v in all {
                    write!(f, "\n  {v}")?;
                }
                Ok(())
            }
        }
    }
}
