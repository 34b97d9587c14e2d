//! Single-core throughput of each digest implementation `triage` uses, on an
//! in-memory buffer: the compute limit the scan benchmarks are measured
//! against (benches/run.sh). Prints `name GB/s` lines.
//!
//! cargo run --release -p triage-core --example hash_throughput [MiB]

use std::time::Instant;

use triage_core::{Algorithm, AlgorithmSet, MultiHasher};

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(512);
    let data: Vec<u8> = (0..1usize << 20)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8)
        .collect();
    let mut rates = Vec::new();
    for alg in Algorithm::ALL {
        let set = AlgorithmSet::empty().with(alg);
        // Warm up, then time the best of three.
        let mut best = f64::MAX;
        for _ in 0..3 {
            let mut h = MultiHasher::new(set);
            let t = Instant::now();
            for _ in 0..mib {
                h.update(&data);
            }
            std::hint::black_box(h.finalize());
            best = best.min(t.elapsed().as_secs_f64());
        }
        let gbs = (mib << 20) as f64 / best / 1e9;
        rates.push(gbs);
        println!("{} {gbs:.3}", alg.name());
    }
    // The limit for a set on N cores with perfect balance: N / sum(1/rate).
    let limit =
        |algs: &[usize], cores: f64| cores / algs.iter().map(|&i| 1.0 / rates[i]).sum::<f64>();
    println!("limit_md5_sha1_sha256_1core {:.3}", limit(&[0, 1, 2], 1.0));
    println!("limit_md5_sha1_sha256_2core {:.3}", limit(&[0, 1, 2], 2.0));
    println!("limit_all4_1core {:.3}", limit(&[0, 1, 2, 3], 1.0));
    println!("limit_all4_2core {:.3}", limit(&[0, 1, 2, 3], 2.0));
}
