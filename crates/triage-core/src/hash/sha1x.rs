//! Multi-buffer SHA-1: the SHA-1 kernel of the lanes ([`super::lanes`]),
//! 16 messages at once with AVX-512F. Whether it beats the one-stream
//! function (the `sha1` crate, SHA-NI where the CPU has it, and the
//! reference the SIMD step is checked against) is measured in
//! benches/README.md; [`Kernel::min_simd_lanes`] says from how many busy
//! lanes it does on this CPU. `unsafe` is confined to the SIMD step.

use super::lanes::{Blocks, Kernel, Lanes, Level, State};

/// SHA-1 (FIPS 180-4) as a lane kernel.
pub struct Sha1;

/// Streaming multi-buffer SHA-1 (see [`Lanes`]).
pub type Sha1Lanes = Lanes<Sha1>;

impl Kernel for Sha1 {
    /// FIPS 180-4 §5.3.1.
    const INIT: [u32; 8] = [
        0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0, 0, 0, 0,
    ];
    const BIG_ENDIAN: bool = true;
    const HAS_AVX2: bool = false;
    type Digest = [u8; 20];

    fn detect() -> Level {
        match Level::detect() {
            Level::Avx512 => Level::Avx512,
            _ => Level::Scalar,
        }
    }

    /// With SHA-NI one stream runs ~1.7 GiB/s; 16 lanes ~3.2 in all
    /// through the lanes (benches/README.md), ~0.2 per lane.
    fn min_simd_lanes() -> u32 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("sha") {
            return 9;
        }
        2
    }

    fn digest(words: &[u32; 8]) -> [u8; 20] {
        let mut out = [0u8; 20];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    fn compress(words: &mut [u32; 8], blocks: &[[u8; 64]]) {
        let mut s = [words[0], words[1], words[2], words[3], words[4]];
        sha1::block_api::compress(&mut s, blocks);
        words[..5].copy_from_slice(&s);
    }

    unsafe fn step(level: Level, st: &mut State, blocks: &Blocks, mask: u16) {
        #[cfg(target_arch = "x86_64")]
        if level == Level::Avx512 {
            // SAFETY: the caller guarantees the CPU runs `level`.
            return unsafe { step_avx512(st, blocks, mask) };
        }
        let _ = (level, st, blocks, mask);
        unreachable!("SHA-1 lanes run AVX-512 or the one-stream function");
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
    let mut s = [_mm512_setzero_si512(); 5];
    for (v, w) in s.iter_mut().zip(&st.0) {
        // SAFETY: `State` is 64-byte aligned and each word row holds 16
        // u32: one aligned 512-bit load.
        *v = unsafe { _mm512_load_si512(w.as_ptr().cast()) };
    }
    // SAFETY: the caller's guarantee (AVX-512F) is this function's.
    let mut w = unsafe { super::lanes::be_words_avx512(blocks) };
    let [mut a, mut b, mut c, mut d, mut e] = s;
    // One round (FIPS 180-4 §6.1.2 step 3) with the names rotating instead
    // of the values: e += rol5(a) + f(b, c, d) + K + W; b = rol30(b).
    // Ternary-logic tables: 0xCA = b ? c : d (Ch), 0x96 = parity, 0xE8 =
    // majority (Maj).
    macro_rules! round {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $w:expr, $k:expr) => {
            let f = match stringify!($f) {
                "ch" => _mm512_ternarylogic_epi32::<0xCA>($b, $c, $d),
                "maj" => _mm512_ternarylogic_epi32::<0xE8>($b, $c, $d),
                _ => _mm512_ternarylogic_epi32::<0x96>($b, $c, $d),
            };
            $e = _mm512_add_epi32(
                _mm512_add_epi32($e, _mm512_rol_epi32::<5>($a)),
                _mm512_add_epi32(f, _mm512_add_epi32($w, _mm512_set1_epi32($k as i32))),
            );
            $b = _mm512_rol_epi32::<30>($b);
        };
    }
    // The schedule (§6.1.2 step 1) in a ring of 16 words:
    // W[t] = rol1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16]).
    macro_rules! sched {
        ($w:ident, $i:expr, $i13:expr, $i8:expr, $i2:expr) => {
            let x = _mm512_ternarylogic_epi32::<0x96>($w[$i13], $w[$i8], $w[$i2]);
            $w[$i] = _mm512_rol_epi32::<1>(_mm512_xor_si512(x, $w[$i]));
        };
    }
    // The 80 rounds, unrolled (generated: round t uses the names rotated
    // by t mod 5, and from t = 16 on schedules W[t] into slot t mod 16).
    round!(ch, a, b, c, d, e, w[0], 0x5a827999u32);
    round!(ch, e, a, b, c, d, w[1], 0x5a827999u32);
    round!(ch, d, e, a, b, c, w[2], 0x5a827999u32);
    round!(ch, c, d, e, a, b, w[3], 0x5a827999u32);
    round!(ch, b, c, d, e, a, w[4], 0x5a827999u32);
    round!(ch, a, b, c, d, e, w[5], 0x5a827999u32);
    round!(ch, e, a, b, c, d, w[6], 0x5a827999u32);
    round!(ch, d, e, a, b, c, w[7], 0x5a827999u32);
    round!(ch, c, d, e, a, b, w[8], 0x5a827999u32);
    round!(ch, b, c, d, e, a, w[9], 0x5a827999u32);
    round!(ch, a, b, c, d, e, w[10], 0x5a827999u32);
    round!(ch, e, a, b, c, d, w[11], 0x5a827999u32);
    round!(ch, d, e, a, b, c, w[12], 0x5a827999u32);
    round!(ch, c, d, e, a, b, w[13], 0x5a827999u32);
    round!(ch, b, c, d, e, a, w[14], 0x5a827999u32);
    round!(ch, a, b, c, d, e, w[15], 0x5a827999u32);
    sched!(w, 0, 13, 8, 2);
    round!(ch, e, a, b, c, d, w[0], 0x5a827999u32);
    sched!(w, 1, 14, 9, 3);
    round!(ch, d, e, a, b, c, w[1], 0x5a827999u32);
    sched!(w, 2, 15, 10, 4);
    round!(ch, c, d, e, a, b, w[2], 0x5a827999u32);
    sched!(w, 3, 0, 11, 5);
    round!(ch, b, c, d, e, a, w[3], 0x5a827999u32);
    sched!(w, 4, 1, 12, 6);
    round!(par, a, b, c, d, e, w[4], 0x6ed9eba1u32);
    sched!(w, 5, 2, 13, 7);
    round!(par, e, a, b, c, d, w[5], 0x6ed9eba1u32);
    sched!(w, 6, 3, 14, 8);
    round!(par, d, e, a, b, c, w[6], 0x6ed9eba1u32);
    sched!(w, 7, 4, 15, 9);
    round!(par, c, d, e, a, b, w[7], 0x6ed9eba1u32);
    sched!(w, 8, 5, 0, 10);
    round!(par, b, c, d, e, a, w[8], 0x6ed9eba1u32);
    sched!(w, 9, 6, 1, 11);
    round!(par, a, b, c, d, e, w[9], 0x6ed9eba1u32);
    sched!(w, 10, 7, 2, 12);
    round!(par, e, a, b, c, d, w[10], 0x6ed9eba1u32);
    sched!(w, 11, 8, 3, 13);
    round!(par, d, e, a, b, c, w[11], 0x6ed9eba1u32);
    sched!(w, 12, 9, 4, 14);
    round!(par, c, d, e, a, b, w[12], 0x6ed9eba1u32);
    sched!(w, 13, 10, 5, 15);
    round!(par, b, c, d, e, a, w[13], 0x6ed9eba1u32);
    sched!(w, 14, 11, 6, 0);
    round!(par, a, b, c, d, e, w[14], 0x6ed9eba1u32);
    sched!(w, 15, 12, 7, 1);
    round!(par, e, a, b, c, d, w[15], 0x6ed9eba1u32);
    sched!(w, 0, 13, 8, 2);
    round!(par, d, e, a, b, c, w[0], 0x6ed9eba1u32);
    sched!(w, 1, 14, 9, 3);
    round!(par, c, d, e, a, b, w[1], 0x6ed9eba1u32);
    sched!(w, 2, 15, 10, 4);
    round!(par, b, c, d, e, a, w[2], 0x6ed9eba1u32);
    sched!(w, 3, 0, 11, 5);
    round!(par, a, b, c, d, e, w[3], 0x6ed9eba1u32);
    sched!(w, 4, 1, 12, 6);
    round!(par, e, a, b, c, d, w[4], 0x6ed9eba1u32);
    sched!(w, 5, 2, 13, 7);
    round!(par, d, e, a, b, c, w[5], 0x6ed9eba1u32);
    sched!(w, 6, 3, 14, 8);
    round!(par, c, d, e, a, b, w[6], 0x6ed9eba1u32);
    sched!(w, 7, 4, 15, 9);
    round!(par, b, c, d, e, a, w[7], 0x6ed9eba1u32);
    sched!(w, 8, 5, 0, 10);
    round!(maj, a, b, c, d, e, w[8], 0x8f1bbcdcu32);
    sched!(w, 9, 6, 1, 11);
    round!(maj, e, a, b, c, d, w[9], 0x8f1bbcdcu32);
    sched!(w, 10, 7, 2, 12);
    round!(maj, d, e, a, b, c, w[10], 0x8f1bbcdcu32);
    sched!(w, 11, 8, 3, 13);
    round!(maj, c, d, e, a, b, w[11], 0x8f1bbcdcu32);
    sched!(w, 12, 9, 4, 14);
    round!(maj, b, c, d, e, a, w[12], 0x8f1bbcdcu32);
    sched!(w, 13, 10, 5, 15);
    round!(maj, a, b, c, d, e, w[13], 0x8f1bbcdcu32);
    sched!(w, 14, 11, 6, 0);
    round!(maj, e, a, b, c, d, w[14], 0x8f1bbcdcu32);
    sched!(w, 15, 12, 7, 1);
    round!(maj, d, e, a, b, c, w[15], 0x8f1bbcdcu32);
    sched!(w, 0, 13, 8, 2);
    round!(maj, c, d, e, a, b, w[0], 0x8f1bbcdcu32);
    sched!(w, 1, 14, 9, 3);
    round!(maj, b, c, d, e, a, w[1], 0x8f1bbcdcu32);
    sched!(w, 2, 15, 10, 4);
    round!(maj, a, b, c, d, e, w[2], 0x8f1bbcdcu32);
    sched!(w, 3, 0, 11, 5);
    round!(maj, e, a, b, c, d, w[3], 0x8f1bbcdcu32);
    sched!(w, 4, 1, 12, 6);
    round!(maj, d, e, a, b, c, w[4], 0x8f1bbcdcu32);
    sched!(w, 5, 2, 13, 7);
    round!(maj, c, d, e, a, b, w[5], 0x8f1bbcdcu32);
    sched!(w, 6, 3, 14, 8);
    round!(maj, b, c, d, e, a, w[6], 0x8f1bbcdcu32);
    sched!(w, 7, 4, 15, 9);
    round!(maj, a, b, c, d, e, w[7], 0x8f1bbcdcu32);
    sched!(w, 8, 5, 0, 10);
    round!(maj, e, a, b, c, d, w[8], 0x8f1bbcdcu32);
    sched!(w, 9, 6, 1, 11);
    round!(maj, d, e, a, b, c, w[9], 0x8f1bbcdcu32);
    sched!(w, 10, 7, 2, 12);
    round!(maj, c, d, e, a, b, w[10], 0x8f1bbcdcu32);
    sched!(w, 11, 8, 3, 13);
    round!(maj, b, c, d, e, a, w[11], 0x8f1bbcdcu32);
    sched!(w, 12, 9, 4, 14);
    round!(par, a, b, c, d, e, w[12], 0xca62c1d6u32);
    sched!(w, 13, 10, 5, 15);
    round!(par, e, a, b, c, d, w[13], 0xca62c1d6u32);
    sched!(w, 14, 11, 6, 0);
    round!(par, d, e, a, b, c, w[14], 0xca62c1d6u32);
    sched!(w, 15, 12, 7, 1);
    round!(par, c, d, e, a, b, w[15], 0xca62c1d6u32);
    sched!(w, 0, 13, 8, 2);
    round!(par, b, c, d, e, a, w[0], 0xca62c1d6u32);
    sched!(w, 1, 14, 9, 3);
    round!(par, a, b, c, d, e, w[1], 0xca62c1d6u32);
    sched!(w, 2, 15, 10, 4);
    round!(par, e, a, b, c, d, w[2], 0xca62c1d6u32);
    sched!(w, 3, 0, 11, 5);
    round!(par, d, e, a, b, c, w[3], 0xca62c1d6u32);
    sched!(w, 4, 1, 12, 6);
    round!(par, c, d, e, a, b, w[4], 0xca62c1d6u32);
    sched!(w, 5, 2, 13, 7);
    round!(par, b, c, d, e, a, w[5], 0xca62c1d6u32);
    sched!(w, 6, 3, 14, 8);
    round!(par, a, b, c, d, e, w[6], 0xca62c1d6u32);
    sched!(w, 7, 4, 15, 9);
    round!(par, e, a, b, c, d, w[7], 0xca62c1d6u32);
    sched!(w, 8, 5, 0, 10);
    round!(par, d, e, a, b, c, w[8], 0xca62c1d6u32);
    sched!(w, 9, 6, 1, 11);
    round!(par, c, d, e, a, b, w[9], 0xca62c1d6u32);
    sched!(w, 10, 7, 2, 12);
    round!(par, b, c, d, e, a, w[10], 0xca62c1d6u32);
    sched!(w, 11, 8, 3, 13);
    round!(par, a, b, c, d, e, w[11], 0xca62c1d6u32);
    sched!(w, 12, 9, 4, 14);
    round!(par, e, a, b, c, d, w[12], 0xca62c1d6u32);
    sched!(w, 13, 10, 5, 15);
    round!(par, d, e, a, b, c, w[13], 0xca62c1d6u32);
    sched!(w, 14, 11, 6, 0);
    round!(par, c, d, e, a, b, w[14], 0xca62c1d6u32);
    sched!(w, 15, 12, 7, 1);
    round!(par, b, c, d, e, a, w[15], 0xca62c1d6u32);
    let keep = mask as __mmask16;
    for (v, n) in s.iter_mut().zip([a, b, c, d, e]) {
        *v = _mm512_mask_add_epi32(*v, keep, *v, n);
    }
    for (v, w) in s.iter().zip(st.0.iter_mut()) {
        // SAFETY: as for the loads.
        unsafe { _mm512_store_si512(w.as_mut_ptr().cast(), *v) };
    }
}

/// The SHA-1 of every message, in order, with lanes up to `level` (the
/// one-stream function where the CPU has no AVX-512F).
///
/// ```
/// use triage_core::hash::lanes::Level;
/// use triage_core::hash::sha1x::sha1_many_with;
/// let d = sha1_many_with(Level::detect(), &[b"abc".as_slice()]);
/// assert_eq!(d[0][..4], [0xa9, 0x99, 0x3e, 0x36]); // a9993e36…
/// ```
pub fn sha1_many_with(level: Level, messages: &[&[u8]]) -> Vec<[u8; 20]> {
    super::lanes::many_with::<Sha1>(level, messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::Digest as _;

    fn levels() -> Vec<Level> {
        let run: Vec<Level> = [Level::Scalar, Level::Avx512]
            .into_iter()
            .filter(|&l| l <= Sha1::detect())
            .collect();
        eprintln!("sha1x kernels checked: {run:?}");
        run
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// FIPS 180-2 appendix A vectors, then random lengths 0..10,000 and
    /// every length around the padding edges, whole and in pieces.
    #[test]
    fn equals_sha1_on_every_level() {
        let two = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        let mut seed = 0x0F1E_2D3C_4B5A_6978u64;
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
        let want: Vec<[u8; 20]> = msgs.iter().map(|m| sha1::Sha1::digest(m).into()).collect();
        let hex = |d: &[u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(&want[0]), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(&want[1]), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        let cuts: Vec<usize> = (0..257).map(|_| (rng(&mut seed) % 200) as usize).collect();
        for level in levels() {
            assert_eq!(sha1_many_with(level, &msgs), want, "{level:?}");
            assert_eq!(sha1_many_with(level, &msgs[..1]), want[..1], "{level:?}");
            assert_eq!(
                crate::fuzzing::lanes_streamed::<Sha1>(level, &msgs, &cuts),
                want,
                "{level:?} streamed"
            );
        }
    }
}
