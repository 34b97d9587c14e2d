//! Audit-log costs, for `benches/audit.sh`.
//!
//! ```text
//! audit_bench overhead ROOT REPS KEY.pem   # scan ROOT with a no-op sink vs the signed log
//! audit_bench gen LOG N KEY.pem            # a signed log of N realistic entries
//! ```
//!
//! `overhead` runs the same scan alternately without a log (entries are
//! dropped) and with the audit log (chained, signed checkpoints every 1,000
//! entries, each synced to disk), REPS times each, and prints the medians
//! and their ratio. `gen` takes the entries of a scan of `fixtures/evidence`
//! (digests, PDQ, hits) and repeats them under new paths, so the log looks
//! like a real one to the verifier.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use triage_core::hashset::Index;
use triage_core::matching::{MatchConfig, Matcher};
use triage_core::path::RawPath;
use triage_core::record::seal::SigningKey;
use triage_core::record::{Checkpoints, Entry, RecordWriter, jsonl};
use triage_core::{ScanConfig, Scanner};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("overhead") if args.len() == 5 => overhead(
            Path::new(&args[2]),
            args[3].parse().expect("REPS"),
            Path::new(&args[4]),
        ),
        Some("gen") if args.len() == 5 => gen_log(
            Path::new(&args[2]),
            args[3].parse().expect("N"),
            Path::new(&args[4]),
        ),
        _ => {
            eprintln!("usage: audit_bench overhead ROOT REPS KEY | gen LOG N KEY");
            std::process::exit(2);
        }
    }
}

fn key(path: &Path) -> SigningKey {
    SigningKey::from_pem(&std::fs::read_to_string(path).expect("key file")).expect("key")
}

/// Threads and readers by detection, as `triage scan` would use.
fn config(root: &Path) -> ScanConfig {
    ScanConfig::new(root)
}

fn overhead(root: &Path, reps: usize, key_path: &Path) {
    let log_path = std::env::temp_dir().join(format!("audit-bench-{}.jsonl", std::process::id()));
    let (mut bare, mut logged) = (Vec::new(), Vec::new());
    let mut entries = 0;
    for _ in 0..reps {
        let t = Instant::now();
        let scanner = Scanner::new(config(root)).expect("root");
        let s = scanner.run(|_e| Ok(())).expect("scan");
        bare.push(t.elapsed().as_secs_f64());
        entries = s.entries();

        let t = Instant::now();
        let scanner = Scanner::new(config(root)).expect("root");
        let mut header = scanner.header();
        let k = key(key_path);
        header.signing_key = Some(k.public());
        header.checkpoints = Checkpoints {
            every_entries: 1000,
            every_secs: 10,
        };
        let mut w = jsonl::Writer::new(File::create(&log_path).expect("log"))
            .with_sync(File::sync_data)
            .with_key(k)
            .with_checkpoints(header.checkpoints);
        w.header(&header).expect("header");
        let s = scanner.run(|e| w.entry(&e)).expect("scan");
        w.summary(&s).expect("footer");
        drop(w);
        logged.push(t.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_file(&log_path);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (b, l) = (median(&mut bare), median(&mut logged));
    println!(
        "entries {entries}  no log {b:.3} s  signed log {l:.3} s  ratio {:.3}  ({:+.1}%)",
        l / b,
        (l / b - 1.0) * 100.0
    );
}

fn gen_log(out: &Path, n: u64, key_path: &Path) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let set = Index::open(&fixtures.join("hashsets/sample-alert.tset")).expect("bundled set");
    let mut cfg = config(&fixtures.join("evidence"));
    cfg.matcher =
        Matcher::new(vec![std::sync::Arc::new(set)], MatchConfig::default()).expect("one set");
    let scanner = Scanner::new(cfg).expect("fixtures");
    let mut header = scanner.header();
    let mut templates: Vec<Entry> = Vec::new();
    let summary = scanner.run(|e| {
        templates.push(e);
        Ok(())
    });
    summary.expect("scan of the fixtures");
    let k = key(key_path);
    header.signing_key = Some(k.public());
    let mut w = jsonl::Writer::new(File::create(out).expect("log"))
        .with_key(k)
        .with_checkpoints(header.checkpoints);
    w.header(&header).expect("header");
    let t = Instant::now();
    let mut s = triage_core::Summary::default();
    for i in 0..n {
        let mut e = templates[(i as usize) % templates.len()].clone();
        e.path = RawPath::from(format!("dir{:04}/{i:08}-{}", i / 1000, e.path).as_str());
        s.count(&e);
        w.entry(&e).expect("entry");
    }
    w.summary(&s).expect("footer");
    drop(w);
    eprintln!(
        "wrote {n} entries in {:.2} s ({:.0} entries/s)",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );
}
