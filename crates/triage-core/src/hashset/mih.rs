//! Near matching by Hamming distance: multi-index hashing over 16-bit chunks.
//!
//! Split a `W`-byte hash into `m = W/2` chunks of 16 bits. If two hashes
//! differ in at most `d` bits, some chunk differs in at most `r = d / m` bits
//! (pigeonhole: otherwise every chunk differs in `r + 1` or more, `m(r+1) > d`
//! in total). So for each chunk, look up every 16-bit value within `r` bits
//! of the query's chunk in a table sorted by that chunk, and check each
//! candidate's full distance. For PDQ at `d = 31`: `r = 1`, 17 probes per
//! chunk, 272 in all, against a million-entry brute-force scan.
//!
//! The table per chunk is a counting-sort layout: `65537` offsets, then the
//! entry numbers ordered by chunk value. It is built at import time and
//! stored in the index, so queries need no set-up. An entry close in several
//! chunks is found several times; candidates are deduplicated before their
//! full distance is computed.

/// Number of 16-bit chunk values.
pub(crate) const BUCKETS: usize = 1 << 16;

/// Hamming distance of two equal-length keys.
#[inline]
pub(crate) fn distance(a: &[u8], b: &[u8]) -> u32 {
    if let (Ok(a), Ok(b)) = (<&[u8; 32]>::try_from(a), <&[u8; 32]>::try_from(b)) {
        // PDQ: four 64-bit words, unrolled.
        return (0..4)
            .map(|i| {
                let x = u64::from_le_bytes(a[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
                let y = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
                (x ^ y).count_ones()
            })
            .sum();
    }
    let mut d = 0;
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
        d += (x ^ y).count_ones();
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        d += (x ^ y).count_ones();
    }
    d
}

/// Chunk `c` of `key` (bytes `2c`, `2c+1`, big-endian).
#[inline]
pub(crate) fn chunk(key: &[u8], c: usize) -> u16 {
    u16::from_be_bytes([key[2 * c], key[2 * c + 1]])
}

/// Builds the table of one chunk: `BUCKETS + 1` offsets then `n` entry numbers.
pub(crate) fn build_chunk_table(keys: &[u8], width: usize, c: usize) -> Vec<u32> {
    let n = keys.len() / width;
    let mut table = vec![0u32; BUCKETS + 1 + n];
    let (offsets, postings) = table.split_at_mut(BUCKETS + 1);
    for key in keys.chunks_exact(width) {
        offsets[chunk(key, c) as usize + 1] += 1;
    }
    for v in 0..BUCKETS {
        offsets[v + 1] += offsets[v];
    }
    let mut next: Vec<u32> = offsets[..BUCKETS].to_vec();
    for (i, key) in keys.chunks_exact(width).enumerate() {
        let slot = &mut next[chunk(key, c) as usize];
        postings[*slot as usize] = i as u32;
        *slot += 1;
    }
    table
}

/// Every 16-bit value within `r` bits of `v`, `v` itself first.
fn neighbours(v: u16, r: u32, out: &mut Vec<u16>) {
    out.clear();
    out.push(v);
    fn flip(v: u16, start: u32, left: u32, out: &mut Vec<u16>) {
        for bit in start..16 {
            let w = v ^ (1 << bit);
            out.push(w);
            if left > 1 {
                flip(w, bit + 1, left - 1, out);
            }
        }
    }
    if r > 0 {
        flip(v, 0, r.min(16), out);
    }
}

/// How many values lie within `r` bits of a 16-bit value.
fn ball_size(r: u32) -> u64 {
    let mut total = 0u64;
    let mut binom = 1u64;
    for k in 0..=r.min(16) as u64 {
        total += binom;
        binom = binom * (16 - k) / (k + 1);
    }
    total
}

/// A read-only view of a near-matching section.
pub(crate) struct MihView<'a> {
    /// `n` keys of `width` bytes, sorted (the exact-lookup key table).
    pub keys: &'a [u8],
    pub width: usize,
    /// `width / 2` chunk tables, each `BUCKETS + 1 + n` little-endian u32.
    pub tables: &'a [u8],
}

impl MihView<'_> {
    fn n(&self) -> usize {
        self.keys.len() / self.width
    }

    /// Chunk `c`'s table: offsets, then postings.
    fn table(&self, c: usize) -> (&[u8], &[u8]) {
        let stride = (BUCKETS + 1 + self.n()) * 4;
        let t = self.tables.get(c * stride..(c + 1) * stride).unwrap_or(&[]);
        t.split_at(((BUCKETS + 1) * 4).min(t.len()))
    }

    /// Entries within `max` bits of `query`: (entry number, distance), by
    /// distance then entry number.
    pub fn query(&self, query: &[u8], max: u32) -> Vec<(u32, u32)> {
        let m = self.width / 2;
        let n = self.n();
        let r = max / m as u32;
        // Past a few thousand probes per chunk, reading everything is cheaper
        // (and gives the same answer).
        if ball_size(r) * m as u64 * 4 > n as u64 {
            return brute_force(self.keys, self.width, query, max);
        }
        // Gather every candidate first, then read their keys: the reads are
        // independent, so the CPU overlaps their cache misses. An entry near
        // in several chunks comes up several times; only hits are deduplicated
        // (most candidates are far, and sorting them all cost a quarter of
        // the time).
        let mut candidates: Vec<u32> = Vec::with_capacity(4096);
        let mut probes = Vec::new();
        for c in 0..m {
            let (offsets, postings) = self.table(c);
            neighbours(chunk(query, c), r, &mut probes);
            for &v in &probes {
                let lo = read_u32(offsets, v as usize) as usize;
                let hi = (read_u32(offsets, v as usize + 1) as usize).min(n);
                if let Some(run) = postings.get(lo * 4..hi.max(lo) * 4) {
                    candidates.extend(
                        run.chunks_exact(4)
                            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    );
                }
            }
        }
        const AHEAD: usize = 16;
        let mut out: Vec<(u32, u32)> = Vec::new();
        for (k, &i) in candidates.iter().enumerate() {
            if let Some(&next) = candidates.get(k + AHEAD) {
                prefetch(self.keys, next as usize * self.width);
            }
            let Some(key) = self
                .keys
                .get(i as usize * self.width..(i as usize + 1) * self.width)
            else {
                continue;
            };
            let d = distance(key, query);
            if d <= max {
                out.push((i, d));
            }
        }
        out.sort_unstable_by_key(|&(i, d)| (d, i));
        out.dedup();
        out
    }
}

/// Asks the CPU to start loading `b[at]` into cache: the candidates' keys
/// are scattered over the whole table, one cache miss each, and issuing the
/// loads ahead lets them overlap.
#[inline]
pub(crate) fn prefetch(b: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = b.get(at) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of the x86_64 baseline; a prefetch never
        // faults and `p` points into `b` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (b, at);
}

fn read_u32(b: &[u8], i: usize) -> u32 {
    b.get(i * 4..i * 4 + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Every key within `max` bits of `query`, by reading them all.
pub(crate) fn brute_force(keys: &[u8], width: usize, query: &[u8], max: u32) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = keys
        .chunks_exact(width)
        .enumerate()
        .filter_map(|(i, k)| {
            let d = distance(k, query);
            (d <= max).then_some((i as u32, d))
        })
        .collect();
    out.sort_unstable_by_key(|&(i, d)| (d, i));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> u64 {
        // splitmix64: deterministic test data without a dependency.
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn tables(keys: &[u8], width: usize) -> Vec<u8> {
        (0..width / 2)
            .flat_map(|c| build_chunk_table(keys, width, c))
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    #[test]
    fn neighbour_counts_match_binomials() {
        let mut v = Vec::new();
        for r in 0..4 {
            neighbours(0xA5A5, r, &mut v);
            assert_eq!(v.len() as u64, ball_size(r));
            let mut s = v.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), v.len(), "no value twice at r={r}");
            assert!(v.iter().all(|x| (x ^ 0xA5A5u16).count_ones() <= r));
        }
    }

    /// Multi-index results equal brute force, on random keys and on clusters
    /// of near-duplicates (the case that fills single buckets).
    #[test]
    fn equals_brute_force_random_and_clustered() {
        let mut seed = 42;
        for width in [32usize, 8] {
            let mut keys = Vec::new();
            let n = 20_000;
            let mut centres = Vec::new();
            for i in 0..n {
                let mut k: Vec<u8> = (0..width).map(|_| rng(&mut seed) as u8).collect();
                if i % 4 == 0 {
                    if centres.len() < 50 {
                        centres.push(k.clone());
                    } else {
                        // A near-duplicate of a centre: flip a few bits.
                        k = centres[(rng(&mut seed) % 50) as usize].clone();
                        for _ in 0..(rng(&mut seed) % 40) {
                            let bit = (rng(&mut seed) % (width as u64 * 8)) as usize;
                            k[bit / 8] ^= 1 << (bit % 8);
                        }
                    }
                }
                keys.push(k);
            }
            keys.sort();
            keys.dedup();
            let flat: Vec<u8> = keys.concat();
            let t = tables(&flat, width);
            let view = MihView {
                keys: &flat,
                width,
                tables: &t,
            };
            let mut hits = 0;
            for q in 0..300 {
                let mut query = if q % 2 == 0 {
                    centres[q % centres.len()].clone()
                } else {
                    (0..width).map(|_| rng(&mut seed) as u8).collect()
                };
                for _ in 0..(rng(&mut seed) % 20) {
                    let bit = (rng(&mut seed) % (width as u64 * 8)) as usize;
                    query[bit / 8] ^= 1 << (bit % 8);
                }
                for max in [0, 10, 31, 40] {
                    let max = if width == 8 { max / 3 } else { max };
                    let a = view.query(&query, max);
                    let b = brute_force(&flat, width, &query, max);
                    assert_eq!(a, b, "width {width} max {max}");
                    hits += a.len();
                }
            }
            assert!(hits > 100, "the test must exercise real hits ({hits})");
        }
    }
}
