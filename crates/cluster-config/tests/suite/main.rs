//! cluster-config's tests, in one binary so they build and link once.
//!
//! - `golden`: generated configs against the files in `tests/golden/`
//!   (update them with `UPDATE_EXPECT=1 cargo test -p cluster-config`).
//! - `fixtures`: configs modelled on kind's own loader tests, valid and invalid.
//! - `crio_ready`: adding the CRI-O patches to users' configs.
//! - `yamllint`: everything we write passes the project's yamllint config.
//! - `roundtrip`: property test, encode then decode is the identity.
//! - `real_kind`: every fixture and golden through real kind, which must
//!   accept or refuse it as we do.

mod crio_ready;
mod fixtures;
mod golden;
mod real_kind;
mod roundtrip;
mod support;
mod yamllint;
