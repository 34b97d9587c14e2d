//! Criterion benches of the hashing core: each digest alone, all four in one
//! pass, and all four split across two threads. Throughput in bytes/s.
//!
//! cargo bench -p triage-core --bench hashing

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use triage_core::{Algorithm, AlgorithmSet, MultiHasher};

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8)
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash");
    for len in [4 * 1024, 256 * 1024, 4 << 20] {
        let buf = data(len);
        g.throughput(Throughput::Bytes(len as u64));
        for alg in Algorithm::ALL {
            let set = AlgorithmSet::empty().with(alg);
            g.bench_with_input(BenchmarkId::new(alg.name(), len), &buf, |b, buf| {
                b.iter(|| {
                    let mut h = MultiHasher::new(set);
                    h.update(buf);
                    h.finalize()
                })
            });
        }
        g.bench_with_input(BenchmarkId::new("all4", len), &buf, |b, buf| {
            b.iter(|| {
                let mut h = MultiHasher::new(AlgorithmSet::all());
                h.update(buf);
                h.finalize()
            })
        });
        g.bench_with_input(BenchmarkId::new("all4-split", len), &buf, |b, buf| {
            b.iter(|| {
                let mut h = MultiHasher::new(AlgorithmSet::all());
                for chunk in buf.chunks(256 * 1024) {
                    h.update_parallel(chunk);
                }
                h.finalize()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
