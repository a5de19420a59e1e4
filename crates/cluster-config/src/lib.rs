//! kind cluster configs (`kind.x-k8s.io/v1alpha4`, `kind: Cluster`) for
//! kind-crio: a typed model, strict reading, kind's validation, the CRI-O
//! patches, and YAML output that reads like a hand-written config.
//!
//! ```
//! use cluster_config::{GenerateOptions, encode, generate};
//!
//! let cluster = generate(&GenerateOptions::default())?;
//! let yaml = encode(&cluster)?;
//! assert!(yaml.starts_with("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"));
//! assert_eq!(cluster_config::load(&yaml)?, cluster);
//! # Ok::<(), cluster_config::Error>(())
//! ```
//!
//! Everything here is pure: no files, no processes. Reading a user's file and
//! writing the result is the caller's job.

mod crio;
mod error;
mod model;
mod validate;
mod yaml;

pub use crio::{
    CRIO_SOCKET, CRIO_SOCKET_SPELLINGS, GenerateOptions, KubeadmKind, crio_patch, generate,
    make_crio_ready,
};
pub use error::{Error, Violation, Violations};
pub use model::{
    ApiVersion, Cluster, IpFamily, Kind, KubeProxyMode, Mount, MountPropagation, Networking, Node,
    PatchJson6902, PortMapping, Protocol, Role,
};
pub use yaml::{decode, encode};

/// Reads a config strictly and validates it: [`decode`], then [`Cluster::validate`].
pub fn load(text: &str) -> Result<Cluster, Error> {
    let cluster = decode(text)?;
    cluster.validate()?;
    Ok(cluster)
}
