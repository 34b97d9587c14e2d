//! Every input in `fuzz/regressions/<target>/` (each crash or hang a fuzzer
//! found, and hand-made hostile inputs of the same kind) through the same
//! function the fuzz target calls (`triage_core::fuzzing`). Runs in plain
//! `cargo test`, without cargo-fuzz.

use std::path::Path;

#[test]
fn every_regression_input_runs_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut ran = 0;
    for (target, run) in triage_core::fuzzing::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no inputs", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap();
            eprintln!("{target}: {}", f.display());
            run(&data);
            ran += 1;
        }
    }
    assert!(ran >= 20, "only {ran} regression inputs");
}

/// The fixtures themselves go through every target too: the seeds of the
/// fuzz corpora, so a regression on well-formed input shows here first.
#[test]
fn fixtures_run_through_every_target() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut inputs = Vec::new();
    for dir in ["hashsets", "images"] {
        for e in std::fs::read_dir(fixtures.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && std::fs::metadata(&p).unwrap().len() < 256 << 10 {
                inputs.push(std::fs::read(&p).unwrap());
            }
        }
    }
    assert!(inputs.len() > 10);
    for (target, run) in triage_core::fuzzing::TARGETS {
        if target == "hashset_import" {
            // One import per fixture is enough (each writes an index).
            for data in &inputs {
                let mut forced = vec![8u8];
                forced.extend_from_slice(data);
                run(&forced);
            }
        } else {
            for data in &inputs {
                run(data);
            }
        }
    }
}
