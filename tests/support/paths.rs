//! Where the tests of `triage-core` find the repository and `../shared`.

use std::path::{Path, PathBuf};

use crate::skip::skip;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/REL`, or `None` after [`skip`] when it is absent (a fresh
/// user clone has no `../shared`; under `CI=true` that fails the test).
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = repo().join("../shared").join(rel);
    if p.exists() {
        Some(p)
    } else {
        skip(&format!(
            "{} is absent (../shared is not checked out)",
            p.display()
        ));
        None
    }
}
