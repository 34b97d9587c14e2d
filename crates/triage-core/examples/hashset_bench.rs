//! Hash-set benchmark helper for benches/hashset.sh.
//!
//! ```text
//! hashset_bench gen DIR       # md5-10m.txt, md5-100k.txt, pdq-1m.txt, pdq-queries.txt
//! hashset_bench measure DIR   # needs DIR/{md5-10m,md5-100k,pdq-1m}.tset (made by the CLI)
//! ```
//!
//! `measure` prints `key value` lines: open time of the small and large
//! index (median of many opens), exact lookups per second on one core (half
//! hits, half misses), and 10,000 PDQ queries at distance <= 31 by
//! multi-index hashing and by brute force, after checking both give the same
//! hits. It writes the hits to DIR/triage-pdq-hits.txt for the faiss
//! comparison.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use triage_core::hashset::{Index, KeyAlg};

/// splitmix64: fixed data for every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn hash256(&mut self) -> [u64; 4] {
        [self.next(), self.next(), self.next(), self.next()]
    }

    /// `h` with `bits` random bits flipped.
    fn perturb(&mut self, mut h: [u64; 4], bits: u32) -> [u64; 4] {
        for _ in 0..bits {
            let b = self.next() % 256;
            h[(b / 64) as usize] ^= 1 << (b % 64);
        }
        h
    }
}

fn hex256(h: [u64; 4]) -> String {
    format!("{:016x}{:016x}{:016x}{:016x}", h[0], h[1], h[2], h[3])
}

fn generate(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng(2026);
    for (name, n) in [("md5-10m.txt", 10_000_000u64), ("md5-100k.txt", 100_000)] {
        let mut out = BufWriter::new(std::fs::File::create(dir.join(name))?);
        for _ in 0..n {
            writeln!(out, "{:016x}{:016x}", rng.next(), rng.next())?;
        }
        out.flush()?;
    }
    // 1M PDQ hashes: 990,000 random and 10,000 planted near-duplicates
    // (2-24 bits from an earlier entry), as lists of re-encoded copies look.
    let mut pdq = Vec::with_capacity(1_000_000);
    for i in 0..1_000_000usize {
        if i % 100 == 99 {
            let src = pdq[(rng.next() % i as u64) as usize];
            let bits = 2 + (rng.next() % 23) as u32;
            pdq.push(rng.perturb(src, bits));
        } else {
            pdq.push(rng.hash256());
        }
    }
    let mut out = BufWriter::new(std::fs::File::create(dir.join("pdq-1m.txt"))?);
    for (i, h) in pdq.iter().enumerate() {
        writeln!(out, "{},100,id-{i}", hex256(*h))?;
    }
    out.flush()?;
    // 10,000 queries: half near a set entry (0-40 bits away: some inside
    // the threshold, some outside), half unrelated.
    let mut out = BufWriter::new(std::fs::File::create(dir.join("pdq-queries.txt"))?);
    for i in 0..10_000 {
        let q = if i % 2 == 0 {
            let src = pdq[(rng.next() % pdq.len() as u64) as usize];
            let bits = (rng.next() % 41) as u32;
            rng.perturb(src, bits)
        } else {
            rng.hash256()
        };
        writeln!(out, "{}", hex256(q))?;
    }
    out.flush()
}

/// One query's hits: (record, distance).
type Hits = Vec<(u32, u32)>;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn open_time(path: &Path) -> f64 {
    let mut times = Vec::new();
    for _ in 0..201 {
        let t = Instant::now();
        let i = Index::open(path).expect("open");
        std::hint::black_box(&i);
        times.push(t.elapsed().as_secs_f64());
    }
    median(times)
}

fn read_hex_lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(|l| triage_core::hash::from_hex(&l[..64]).expect("hex"))
        .collect()
}

fn measure(dir: &Path) {
    let small = dir.join("md5-100k.tset");
    let large = dir.join("md5-10m.tset");
    let (ts, tl) = (open_time(&small), open_time(&large));
    println!("open_100k_us {:.1}", ts * 1e6);
    println!("open_10m_us {:.1}", tl * 1e6);
    println!("open_ratio {:.2}", tl / ts);

    let index = Index::open(&large).expect("open");
    // Half the queries are listed keys, half are not.
    let text = std::fs::read_to_string(dir.join("md5-10m.txt")).expect("read");
    let mut rng = Rng(7);
    let lines: Vec<&str> = text.lines().collect();
    let n = 2_000_000;
    let queries: Vec<[u8; 16]> = (0..n)
        .map(|i| {
            let mut k = [0u8; 16];
            if i % 2 == 0 {
                let l = lines[(rng.next() % lines.len() as u64) as usize];
                k.copy_from_slice(&triage_core::hash::from_hex(l).expect("hex"));
            } else {
                k[..8].copy_from_slice(&rng.next().to_le_bytes());
                k[8..].copy_from_slice(&rng.next().to_le_bytes());
            }
            k
        })
        .collect();
    drop(lines);
    drop(text);
    // Touch the index once so page faults are not in the timing.
    for q in queries.iter().take(200_000) {
        std::hint::black_box(index.lookup(KeyAlg::Md5, q));
    }
    let rate = |qs: &mut dyn Iterator<Item = &[u8; 16]>| {
        let t = Instant::now();
        let (mut found, mut n) = (0usize, 0usize);
        for q in qs {
            found += index.lookup(KeyAlg::Md5, q).is_some() as usize;
            n += 1;
        }
        (n as f64 / t.elapsed().as_secs_f64(), found, n)
    };
    let (mixed, found, total) = rate(&mut queries.iter());
    assert_eq!(found, total / 2, "every listed key found, no unlisted one");
    println!("lookups_per_sec_1core {mixed:.0}");
    let (hits, found, total) = rate(&mut queries.iter().step_by(2));
    assert_eq!(found, total);
    println!("lookups_hit_per_sec_1core {hits:.0}");
    let (misses, found, _) = rate(&mut queries.iter().skip(1).step_by(2));
    assert_eq!(found, 0);
    println!("lookups_miss_per_sec_1core {misses:.0}");

    let pdq = Index::open(&dir.join("pdq-1m.tset")).expect("open");
    let queries = read_hex_lines(&dir.join("pdq-queries.txt"));
    for q in queries.iter().take(100) {
        std::hint::black_box(pdq.near(KeyAlg::Pdq, q, 31));
    }
    // Each query's hits as (record, distance), and the seconds it all took.
    let timed = |search: &dyn Fn(&[u8]) -> Hits| {
        let t = Instant::now();
        let hits: Vec<Hits> = queries.iter().map(|q| search(q)).collect();
        (hits, t.elapsed().as_secs_f64())
    };
    let records = |v: Vec<(triage_core::hashset::SetEntry<'_>, u32)>| {
        v.into_iter().map(|(e, d)| (e.record, d)).collect()
    };
    let (fast, t_mih) = timed(&|q| records(pdq.near(KeyAlg::Pdq, q, 31)));
    let (slow, t_brute) = timed(&|q| records(pdq.near_brute_force(KeyAlg::Pdq, q, 31)));
    assert_eq!(fast, slow, "multi-index hashing must equal brute force");
    let hits: usize = fast.iter().map(Vec::len).sum();
    println!("pdq_queries {}", queries.len());
    println!("pdq_hits {hits}");
    println!("pdq_mih_s {t_mih:.4}");
    println!("pdq_brute_s {t_brute:.4}");
    println!("pdq_mih_vs_brute {:.1}", t_brute / t_mih);
    // Hits as (query, record) for the faiss comparison: records are
    // import order, i.e. line numbers - 1 of pdq-1m.txt.
    let mut out =
        BufWriter::new(std::fs::File::create(dir.join("triage-pdq-hits.txt")).expect("create"));
    for (qi, hs) in fast.iter().enumerate() {
        for (r, d) in hs {
            writeln!(out, "{qi} {r} {d}").expect("write");
        }
    }
    out.flush().expect("flush");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("gen"), Some(dir)) => generate(Path::new(dir)).expect("generate"),
        (Some("measure"), Some(dir)) => measure(Path::new(dir)),
        _ => {
            eprintln!("usage: hashset_bench gen DIR | measure DIR");
            std::process::exit(2);
        }
    }
}
