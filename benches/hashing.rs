//! Criterion benches of the hashing core: each digest alone, all four in one
//! pass, and all four split across two threads; multi-buffer MD5 on every
//! kernel against `md-5` one message after another. Throughput in bytes/s.
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

/// Many messages at once (`hash::md5x`), per kernel, against the same
/// messages through `md-5` one after another, on one thread.
fn md5_many(c: &mut Criterion) {
    use md5::Digest as _;
    use triage_core::hash::md5x::{Level, md5_many_with};
    let mut g = c.benchmark_group("md5-many");
    for (count, len) in [(1024, 4 * 1024), (64, 64 * 1024), (4096, 512)] {
        let buf = data(count * len);
        let msgs: Vec<&[u8]> = buf.chunks(len).collect();
        g.throughput(Throughput::Bytes((count * len) as u64));
        let id = format!("{count}x{len}");
        g.bench_with_input(BenchmarkId::new("md-5", &id), &msgs, |b, msgs| {
            b.iter(|| msgs.iter().map(md5::Md5::digest).collect::<Vec<_>>())
        });
        for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
            if !level.supported() {
                continue;
            }
            g.bench_with_input(BenchmarkId::new(level.name(), &id), &msgs, |b, msgs| {
                b.iter(|| md5_many_with(level, msgs))
            });
        }
    }
    g.finish();
}

/// SHA-256 of many messages at once (`hash::sha256x`, AVX-512F 16 lanes)
/// against the same messages through `sha2` one after another (SHA-NI
/// where the CPU has it), on one thread: which one the scan should use.
fn sha256_many(c: &mut Criterion) {
    use sha2::Digest as _;
    use triage_core::hash::lanes::Level;
    use triage_core::hash::sha256x::sha256_many_with;
    let mut g = c.benchmark_group("sha256-many");
    for (count, len) in [(1024, 4 * 1024), (64, 64 * 1024), (4096, 512)] {
        let buf = data(count * len);
        let msgs: Vec<&[u8]> = buf.chunks(len).collect();
        g.throughput(Throughput::Bytes((count * len) as u64));
        let id = format!("{count}x{len}");
        g.bench_with_input(BenchmarkId::new("sha2", &id), &msgs, |b, msgs| {
            b.iter(|| msgs.iter().map(sha2::Sha256::digest).collect::<Vec<_>>())
        });
        if Level::Avx512.supported() {
            g.bench_with_input(BenchmarkId::new("avx512", &id), &msgs, |b, msgs| {
                b.iter(|| sha256_many_with(Level::Avx512, msgs))
            });
        }
    }
    g.finish();
}

/// SHA-1 of many messages at once (`hash::sha1x`, AVX-512F 16 lanes)
/// against the same messages through `sha1` one after another (SHA-NI
/// where the CPU has it), on one thread: which one the scan should use.
fn sha1_many(c: &mut Criterion) {
    use sha1::Digest as _;
    use triage_core::hash::lanes::Level;
    use triage_core::hash::sha1x::sha1_many_with;
    let mut g = c.benchmark_group("sha1-many");
    for (count, len) in [(1024, 4 * 1024), (64, 64 * 1024), (4096, 512)] {
        let buf = data(count * len);
        let msgs: Vec<&[u8]> = buf.chunks(len).collect();
        g.throughput(Throughput::Bytes((count * len) as u64));
        let id = format!("{count}x{len}");
        g.bench_with_input(BenchmarkId::new("sha1", &id), &msgs, |b, msgs| {
            b.iter(|| msgs.iter().map(sha1::Sha1::digest).collect::<Vec<_>>())
        });
        if Level::Avx512.supported() {
            g.bench_with_input(BenchmarkId::new("avx512", &id), &msgs, |b, msgs| {
                b.iter(|| sha1_many_with(Level::Avx512, msgs))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench, md5_many, sha256_many, sha1_many
}
criterion_main!(benches);
