//! The read strategy, measured: one file hashed (all four digests, one
//! thread) through `pread` into a reused buffer of several sizes, and through
//! `mmap` (memmap2), best of five each. benches/README.md has the results.
//!
//! cargo run --release -p triage-core --example read_vs_mmap FILE

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use triage_core::{AlgorithmSet, MultiHasher};

fn best_of<F: FnMut()>(mut f: F) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: read_vs_mmap FILE");
        std::process::exit(2);
    };
    let file = File::open(&path).expect("open");
    let len = file.metadata().expect("stat").len();
    let algs = [
        ("all4", AlgorithmSet::all()),
        ("blake3", AlgorithmSet::parse_list("blake3").unwrap()),
    ];
    for (name, set) in algs {
        for buf_kib in [64usize, 256, 1024, 4096] {
            let mut buf = vec![0u8; buf_kib * 1024];
            let t = best_of(|| {
                let mut h = MultiHasher::new(set);
                let mut pos = 0u64;
                loop {
                    let n = file.read_at(&mut buf, pos).expect("read");
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    pos += n as u64;
                }
                std::hint::black_box(h.finalize());
            });
            println!(
                "{name}\tpread {buf_kib} KiB\t{:.3} GB/s",
                len as f64 / t / 1e9
            );
        }
        let t = best_of(|| {
            // SAFETY: a benchmark over a file nobody modifies meanwhile.
            let map = unsafe { memmap2::Mmap::map(&file) }.expect("mmap");
            let mut h = MultiHasher::new(set);
            for chunk in map.chunks(1 << 20) {
                h.update(chunk);
            }
            std::hint::black_box(h.finalize());
        });
        println!("{name}\tmmap\t{:.3} GB/s", len as f64 / t / 1e9);
    }
}
