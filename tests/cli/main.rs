//! CLI tests: the real `triage` binary against throw-away evidence trees.
//!
//! One harness (this file) with a module per topic, in the manner of fd's
//! and ripgrep's test suites. Tests that need an outside tool (hashdeep,
//! b3sum, setpriv, mount) go through `skip`: a failure under CI=true, a
//! printed skip elsewhere.

mod audit;
mod carve;
mod embedded;
mod exits;
mod expand;
mod filesystems;
mod hashsets;
mod images;
mod reports;
mod scan;
#[path = "../support/skip.rs"]
mod skip;
mod testenv;
mod untouched;
mod video;
