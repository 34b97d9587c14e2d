//! Multi-buffer SHA-256: the SHA-256 kernel of the lanes
//! ([`super::lanes`]), 16 messages at once with AVX-512F. Measured on the
//! development machine (benches/README.md): 16 lanes run ~3× the SHA-NI
//! one-stream function, so the scan's lane groups use it where AVX-512F
//! is present; elsewhere SHA-256 stays one stream per file (the `sha2`
//! crate, SHA-NI where the CPU has it), which is also the reference the
//! SIMD step is checked against. `unsafe` is confined to the SIMD step.

use super::lanes::{Blocks, Kernel, Lanes, Level, State};

/// SHA-256 (FIPS 180-4) as a lane kernel.
pub struct Sha256;

/// Streaming multi-buffer SHA-256 (see [`Lanes`]).
pub type Sha256Lanes = Lanes<Sha256>;

/// FIPS 180-4 §4.2.2.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

impl Kernel for Sha256 {
    /// FIPS 180-4 §5.3.3.
    const INIT: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    const BIG_ENDIAN: bool = true;
    const HAS_AVX2: bool = false;
    type Digest = [u8; 32];

    fn detect() -> Level {
        match Level::detect() {
            Level::Avx512 => Level::Avx512,
            _ => Level::Scalar,
        }
    }

    /// With SHA-NI one stream runs ~1.65 GB/s and a 16-lane step ~2.4 in
    /// all (~0.15 per lane); without it one stream is ~0.4 GB/s and the
    /// lanes win from two busy ones.
    fn min_simd_lanes() -> u32 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("sha") {
            return 11;
        }
        2
    }

    fn digest(words: &[u32; 8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    fn compress(words: &mut [u32; 8], blocks: &[[u8; 64]]) {
        sha2::block_api::compress256(words, blocks);
    }

    unsafe fn step(level: Level, st: &mut State, blocks: &Blocks, mask: u16) {
        #[cfg(target_arch = "x86_64")]
        if level == Level::Avx512 {
            // SAFETY: the caller guarantees the CPU runs `level`.
            return unsafe { step_avx512(st, blocks, mask) };
        }
        let _ = (level, st, blocks, mask);
        unreachable!("SHA-256 lanes run AVX-512 or the one-stream function");
    }
}

/// One block of lanes 0..16 in `mask`: the AVX-512F step. Lanes outside the
/// mask are computed on whatever their block holds and then discarded.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn step_avx512(st: &mut State, blocks: &Blocks, mask: u16) {
    use std::arch::x86_64::*;
    let mut s = [_mm512_setzero_si512(); 8];
    for (v, w) in s.iter_mut().zip(&st.0) {
        // SAFETY: `State` is 64-byte aligned and each word row holds 16
        // u32: one aligned 512-bit load.
        *v = unsafe { _mm512_load_si512(w.as_ptr().cast()) };
    }
    // SAFETY: the caller's guarantee (AVX-512F) is this function's.
    let mut w = unsafe { super::lanes::be_words_avx512(blocks) };
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = s;
    // One round (FIPS 180-4 §6.2.2 step 3): the names rotate from round to
    // round instead of the values. Ternary-logic tables: 0x96 = x ^ y ^ z,
    // 0xCA = x ? y : z (Ch), 0xE8 = majority (Maj).
    macro_rules! round {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $w:expr, $k:expr) => {
            let s1 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<6>($e),
                _mm512_ror_epi32::<11>($e),
                _mm512_ror_epi32::<25>($e),
            );
            let ch = _mm512_ternarylogic_epi32::<0xCA>($e, $f, $g);
            let t1 = _mm512_add_epi32(
                _mm512_add_epi32($h, s1),
                _mm512_add_epi32(ch, _mm512_add_epi32($w, _mm512_set1_epi32($k as i32))),
            );
            let s0 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<2>($a),
                _mm512_ror_epi32::<13>($a),
                _mm512_ror_epi32::<22>($a),
            );
            let maj = _mm512_ternarylogic_epi32::<0xE8>($a, $b, $c);
            $d = _mm512_add_epi32($d, t1);
            $h = _mm512_add_epi32(t1, _mm512_add_epi32(s0, maj));
        };
    }
    // The message schedule (§6.2.2 step 1) in a ring of 16 words:
    // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
    macro_rules! sched {
        ($w:ident, $i:expr, $i1:expr, $i9:expr, $i14:expr) => {
            let x = $w[$i1];
            let s0 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<7>(x),
                _mm512_ror_epi32::<18>(x),
                _mm512_srli_epi32::<3>(x),
            );
            let y = $w[$i14];
            let s1 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<17>(y),
                _mm512_ror_epi32::<19>(y),
                _mm512_srli_epi32::<10>(y),
            );
            $w[$i] = _mm512_add_epi32(_mm512_add_epi32($w[$i], s0), _mm512_add_epi32($w[$i9], s1));
        };
    }
    // The 64 rounds, unrolled (generated: round t uses the names rotated
    // by t mod 8, and from t = 16 on schedules W[t] into slot t mod 16).
    round!(a, b, c, d, e, f, g, h, w[0], K[0]);
    round!(h, a, b, c, d, e, f, g, w[1], K[1]);
    round!(g, h, a, b, c, d, e, f, w[2], K[2]);
    round!(f, g, h, a, b, c, d, e, w[3], K[3]);
    round!(e, f, g, h, a, b, c, d, w[4], K[4]);
    round!(d, e, f, g, h, a, b, c, w[5], K[5]);
    round!(c, d, e, f, g, h, a, b, w[6], K[6]);
    round!(b, c, d, e, f, g, h, a, w[7], K[7]);
    round!(a, b, c, d, e, f, g, h, w[8], K[8]);
    round!(h, a, b, c, d, e, f, g, w[9], K[9]);
    round!(g, h, a, b, c, d, e, f, w[10], K[10]);
    round!(f, g, h, a, b, c, d, e, w[11], K[11]);
    round!(e, f, g, h, a, b, c, d, w[12], K[12]);
    round!(d, e, f, g, h, a, b, c, w[13], K[13]);
    round!(c, d, e, f, g, h, a, b, w[14], K[14]);
    round!(b, c, d, e, f, g, h, a, w[15], K[15]);
    sched!(w, 0, 1, 9, 14);
    round!(a, b, c, d, e, f, g, h, w[0], K[16]);
    sched!(w, 1, 2, 10, 15);
    round!(h, a, b, c, d, e, f, g, w[1], K[17]);
    sched!(w, 2, 3, 11, 0);
    round!(g, h, a, b, c, d, e, f, w[2], K[18]);
    sched!(w, 3, 4, 12, 1);
    round!(f, g, h, a, b, c, d, e, w[3], K[19]);
    sched!(w, 4, 5, 13, 2);
    round!(e, f, g, h, a, b, c, d, w[4], K[20]);
    sched!(w, 5, 6, 14, 3);
    round!(d, e, f, g, h, a, b, c, w[5], K[21]);
    sched!(w, 6, 7, 15, 4);
    round!(c, d, e, f, g, h, a, b, w[6], K[22]);
    sched!(w, 7, 8, 0, 5);
    round!(b, c, d, e, f, g, h, a, w[7], K[23]);
    sched!(w, 8, 9, 1, 6);
    round!(a, b, c, d, e, f, g, h, w[8], K[24]);
    sched!(w, 9, 10, 2, 7);
    round!(h, a, b, c, d, e, f, g, w[9], K[25]);
    sched!(w, 10, 11, 3, 8);
    round!(g, h, a, b, c, d, e, f, w[10], K[26]);
    sched!(w, 11, 12, 4, 9);
    round!(f, g, h, a, b, c, d, e, w[11], K[27]);
    sched!(w, 12, 13, 5, 10);
    round!(e, f, g, h, a, b, c, d, w[12], K[28]);
    sched!(w, 13, 14, 6, 11);
    round!(d, e, f, g, h, a, b, c, w[13], K[29]);
    sched!(w, 14, 15, 7, 12);
    round!(c, d, e, f, g, h, a, b, w[14], K[30]);
    sched!(w, 15, 0, 8, 13);
    round!(b, c, d, e, f, g, h, a, w[15], K[31]);
    sched!(w, 0, 1, 9, 14);
    round!(a, b, c, d, e, f, g, h, w[0], K[32]);
    sched!(w, 1, 2, 10, 15);
    round!(h, a, b, c, d, e, f, g, w[1], K[33]);
    sched!(w, 2, 3, 11, 0);
    round!(g, h, a, b, c, d, e, f, w[2], K[34]);
    sched!(w, 3, 4, 12, 1);
    round!(f, g, h, a, b, c, d, e, w[3], K[35]);
    sched!(w, 4, 5, 13, 2);
    round!(e, f, g, h, a, b, c, d, w[4], K[36]);
    sched!(w, 5, 6, 14, 3);
    round!(d, e, f, g, h, a, b, c, w[5], K[37]);
    sched!(w, 6, 7, 15, 4);
    round!(c, d, e, f, g, h, a, b, w[6], K[38]);
    sched!(w, 7, 8, 0, 5);
    round!(b, c, d, e, f, g, h, a, w[7], K[39]);
    sched!(w, 8, 9, 1, 6);
    round!(a, b, c, d, e, f, g, h, w[8], K[40]);
    sched!(w, 9, 10, 2, 7);
    round!(h, a, b, c, d, e, f, g, w[9], K[41]);
    sched!(w, 10, 11, 3, 8);
    round!(g, h, a, b, c, d, e, f, w[10], K[42]);
    sched!(w, 11, 12, 4, 9);
    round!(f, g, h, a, b, c, d, e, w[11], K[43]);
    sched!(w, 12, 13, 5, 10);
    round!(e, f, g, h, a, b, c, d, w[12], K[44]);
    sched!(w, 13, 14, 6, 11);
    round!(d, e, f, g, h, a, b, c, w[13], K[45]);
    sched!(w, 14, 15, 7, 12);
    round!(c, d, e, f, g, h, a, b, w[14], K[46]);
    sched!(w, 15, 0, 8, 13);
    round!(b, c, d, e, f, g, h, a, w[15], K[47]);
    sched!(w, 0, 1, 9, 14);
    round!(a, b, c, d, e, f, g, h, w[0], K[48]);
    sched!(w, 1, 2, 10, 15);
    round!(h, a, b, c, d, e, f, g, w[1], K[49]);
    sched!(w, 2, 3, 11, 0);
    round!(g, h, a, b, c, d, e, f, w[2], K[50]);
    sched!(w, 3, 4, 12, 1);
    round!(f, g, h, a, b, c, d, e, w[3], K[51]);
    sched!(w, 4, 5, 13, 2);
    round!(e, f, g, h, a, b, c, d, w[4], K[52]);
    sched!(w, 5, 6, 14, 3);
    round!(d, e, f, g, h, a, b, c, w[5], K[53]);
    sched!(w, 6, 7, 15, 4);
    round!(c, d, e, f, g, h, a, b, w[6], K[54]);
    sched!(w, 7, 8, 0, 5);
    round!(b, c, d, e, f, g, h, a, w[7], K[55]);
    sched!(w, 8, 9, 1, 6);
    round!(a, b, c, d, e, f, g, h, w[8], K[56]);
    sched!(w, 9, 10, 2, 7);
    round!(h, a, b, c, d, e, f, g, w[9], K[57]);
    sched!(w, 10, 11, 3, 8);
    round!(g, h, a, b, c, d, e, f, w[10], K[58]);
    sched!(w, 11, 12, 4, 9);
    round!(f, g, h, a, b, c, d, e, w[11], K[59]);
    sched!(w, 12, 13, 5, 10);
    round!(e, f, g, h, a, b, c, d, w[12], K[60]);
    sched!(w, 13, 14, 6, 11);
    round!(d, e, f, g, h, a, b, c, w[13], K[61]);
    sched!(w, 14, 15, 7, 12);
    round!(c, d, e, f, g, h, a, b, w[14], K[62]);
    sched!(w, 15, 0, 8, 13);
    round!(b, c, d, e, f, g, h, a, w[15], K[63]);
    let keep = mask as __mmask16;
    for (v, n) in s.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *v = _mm512_mask_add_epi32(*v, keep, *v, n);
    }
    for (v, w) in s.iter().zip(st.0.iter_mut()) {
        // SAFETY: as for the loads.
        unsafe { _mm512_store_si512(w.as_mut_ptr().cast(), *v) };
    }
}

/// The SHA-256 of every message, in order, with lanes up to `level` (the
/// one-stream function where the CPU has no AVX-512F).
///
/// ```
/// use triage_core::hash::lanes::Level;
/// use triage_core::hash::sha256x::sha256_many_with;
/// let d = sha256_many_with(Level::detect(), &[b"abc".as_slice()]);
/// assert_eq!(d[0][..4], [0xba, 0x78, 0x16, 0xbf]); // ba7816bf…
/// ```
pub fn sha256_many_with(level: Level, messages: &[&[u8]]) -> Vec<[u8; 32]> {
    super::lanes::many_with::<Sha256>(level, messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn levels() -> Vec<Level> {
        let run: Vec<Level> = [Level::Scalar, Level::Avx512]
            .into_iter()
            .filter(|&l| l <= Sha256::detect())
            .collect();
        eprintln!("sha256x kernels checked: {run:?}");
        run
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// FIPS 180-2 appendix B vectors, then random lengths 0..10,000 and
    /// every length around the padding edges, whole and in pieces.
    #[test]
    fn equals_sha2_on_every_level() {
        let want_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let two = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        let want_two = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
        let mut seed = 0x0123_4567_89AB_CDEFu64;
        let data: Vec<u8> = (0..30_000).map(|_| rng(&mut seed) as u8).collect();
        let mut msgs: Vec<&[u8]> = vec![b"abc", two];
        for len in (0..=200).chain([447, 448, 511, 512, 513, 4095, 4096]) {
            msgs.push(&data[..len]);
        }
        for _ in 0..200 {
            let len = (rng(&mut seed) % 10_001) as usize;
            let at = (rng(&mut seed) % (data.len() - len + 1) as u64) as usize;
            msgs.push(&data[at..at + len]);
        }
        let want: Vec<[u8; 32]> = msgs
            .iter()
            .map(|m| sha2::Sha256::digest(m).into())
            .collect();
        let hex = |d: &[u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(&want[0]), want_abc);
        assert_eq!(hex(&want[1]), want_two);
        let cuts: Vec<usize> = (0..257).map(|_| (rng(&mut seed) % 200) as usize).collect();
        for level in levels() {
            assert_eq!(sha256_many_with(level, &msgs), want, "{level:?}");
            assert_eq!(sha256_many_with(level, &msgs[..1]), want[..1], "{level:?}");
            assert_eq!(
                crate::fuzzing::lanes_streamed::<Sha256>(level, &msgs, &cuts),
                want,
                "{level:?} streamed"
            );
        }
    }
}
