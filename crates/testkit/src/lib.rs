//! Real components for kind-crio's integration tests and benchmarks:
//!
//! - [`Registry`]: a real `docker-registry` (CNCF distribution) on 127.0.0.1,
//!   without auth, with htpasswd Basic auth, or with token auth;
//! - images pushed with `skopeo copy` from a tiny OCI layout, and tags made in
//!   bulk by writing them into the registry's storage as a push does;
//! - [`skopeo_list_tags`] and [`skopeo_digest`]: what `skopeo` reports, to compare with;
//! - [`TokenServer`]: a Docker token endpoint issuing RS256 JWTs (signed by
//!   `openssl`) that the registry verifies for real;
//! - [`Proxy`]: an HTTP/1.1 proxy in front of a registry that injects faults;
//! - [`standin`]: a kind node image, a CRI-O bundle and a CRI-O apt repository
//!   made locally, for real image builds without the internet;
//! - [`oci`]: stand-in images packaged as kind loads them into containerd, and
//!   [`containerd`]: a private containerd to load them into.
//!
//! Every test first calls [`tools_present`]: a missing tool fails the test when
//! `CI=true` and skips it loudly otherwise.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod containerd;
pub mod oci;
pub mod privileged;
pub mod standin;
pub mod tool_list;
pub mod tools;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use registry::Repository;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

// One module per component; everything is re-exported here, and each
// module sees the others (and the imports above) through `use super::*`.
mod distribution;
mod http;
mod present;
mod proxy;
mod skopeo;
mod tmp;
mod token;

pub use distribution::*;
pub use http::*;
pub use present::*;
pub use proxy::*;
pub use skopeo::*;
pub use tmp::*;
pub use token::*;
