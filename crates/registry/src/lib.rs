//! Talking to OCI registries for kind-crio: which tags a repository has
//! (`skopeo list-tags`), which digest a tag points to, whether a tag exists.
//!
//! Pure parsers (`reference`, `challenge`, `link`, `version`) are separate from
//! the one module that does I/O (`client`), so they can be tested and fuzzed
//! without a network.

pub mod challenge;
pub mod client;
pub mod credentials;
mod decode;
mod error;
pub mod link;
pub mod redirect;
pub mod reference;
pub mod version;

pub use client::{Client, Digest, MANIFEST_ACCEPT, Options, TagList};
pub use credentials::{Credential, CredentialSource};
pub use error::{Error, Result};
pub use reference::{ImageRef, ImageRefError, ReferenceError, Repository};
pub use version::{KubernetesVersion, VersionError, latest_release, sort_tags};
