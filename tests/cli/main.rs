//! CLI tests: the real `triage` binary against throw-away evidence trees.
//!
//! One harness (this file) with a module per topic, in the manner of fd's
//! and ripgrep's test suites. Tests that need an outside tool (hashdeep,
//! b3sum, setpriv, mount) print why they skip when it is missing.

mod audit;
mod exits;
mod filesystems;
mod hashsets;
mod images;
mod reports;
mod scan;
mod testenv;
mod untouched;
