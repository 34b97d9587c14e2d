//! Multi-buffer MD5: the MD5 kernel of the lanes ([`super::lanes`]), 16
//! messages at once with AVX-512F, 8 with AVX2, one with the `md-5`
//! crate's block function (the reference the SIMD steps are checked
//! against). `unsafe` is confined to the two SIMD steps.

use super::lanes::{Blocks, Kernel, Lanes, State};
pub use super::lanes::{Events, Level, MAX_LANES};

/// MD5 (RFC 1321) as a lane kernel.
pub struct Md5;

/// Streaming multi-buffer MD5 (see [`Lanes`]).
pub type Md5Lanes = Lanes<Md5>;

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

impl Kernel for Md5 {
    const INIT: [u32; 8] = [INIT[0], INIT[1], INIT[2], INIT[3], 0, 0, 0, 0];
    const BIG_ENDIAN: bool = false;
    const HAS_AVX2: bool = true;
    type Digest = [u8; 16];

    fn detect() -> Level {
        Level::detect()
    }

    /// One stream ~0.58 GB/s; an 8-lane AVX2 step ~0.37 per lane.
    fn min_simd_lanes() -> u32 {
        2
    }

    fn digest(words: &[u32; 8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    fn compress(words: &mut [u32; 8], blocks: &[[u8; 64]]) {
        let mut s = [words[0], words[1], words[2], words[3]];
        md5::block_api::compress(&mut s, blocks);
        words[..4].copy_from_slice(&s);
    }

    unsafe fn step(level: Level, st: &mut State, blocks: &Blocks, mask: u16) {
        #[cfg(target_arch = "x86_64")]
        match level {
            // SAFETY: the caller guarantees the CPU runs `level`.
            Level::Avx512 => return unsafe { step_avx512(st, blocks, mask) },
            // SAFETY: as above.
            Level::Avx2 => return unsafe { step_avx2(st, blocks, mask) },
            Level::Scalar => {}
        }
        let _ = (level, st, blocks, mask);
        unreachable!("the scalar level runs the one-stream function");
    }
}

/// The 64 steps of MD5 over the state variables `$a..$d` and message
/// words `$w[0..16]`, through a `step!` macro each kernel defines with its
/// own vector operations (`step!(fun, a, b, c, d, word, constant, shift)`:
/// `a = b + rotl(a + fun(b, c, d) + word + constant, shift)`).
macro_rules! md5_steps {
    ($a:ident, $b:ident, $c:ident, $d:ident, $w:ident) => {
        step!(f, $a, $b, $c, $d, $w[0], 0xd76aa478u32, 7);
        step!(f, $d, $a, $b, $c, $w[1], 0xe8c7b756u32, 12);
        step!(f, $c, $d, $a, $b, $w[2], 0x242070dbu32, 17);
        step!(f, $b, $c, $d, $a, $w[3], 0xc1bdceeeu32, 22);
        step!(f, $a, $b, $c, $d, $w[4], 0xf57c0fafu32, 7);
        step!(f, $d, $a, $b, $c, $w[5], 0x4787c62au32, 12);
        step!(f, $c, $d, $a, $b, $w[6], 0xa8304613u32, 17);
        step!(f, $b, $c, $d, $a, $w[7], 0xfd469501u32, 22);
        step!(f, $a, $b, $c, $d, $w[8], 0x698098d8u32, 7);
        step!(f, $d, $a, $b, $c, $w[9], 0x8b44f7afu32, 12);
        step!(f, $c, $d, $a, $b, $w[10], 0xffff5bb1u32, 17);
        step!(f, $b, $c, $d, $a, $w[11], 0x895cd7beu32, 22);
        step!(f, $a, $b, $c, $d, $w[12], 0x6b901122u32, 7);
        step!(f, $d, $a, $b, $c, $w[13], 0xfd987193u32, 12);
        step!(f, $c, $d, $a, $b, $w[14], 0xa679438eu32, 17);
        step!(f, $b, $c, $d, $a, $w[15], 0x49b40821u32, 22);
        step!(g, $a, $b, $c, $d, $w[1], 0xf61e2562u32, 5);
        step!(g, $d, $a, $b, $c, $w[6], 0xc040b340u32, 9);
        step!(g, $c, $d, $a, $b, $w[11], 0x265e5a51u32, 14);
        step!(g, $b, $c, $d, $a, $w[0], 0xe9b6c7aau32, 20);
        step!(g, $a, $b, $c, $d, $w[5], 0xd62f105du32, 5);
        step!(g, $d, $a, $b, $c, $w[10], 0x02441453u32, 9);
        step!(g, $c, $d, $a, $b, $w[15], 0xd8a1e681u32, 14);
        step!(g, $b, $c, $d, $a, $w[4], 0xe7d3fbc8u32, 20);
        step!(g, $a, $b, $c, $d, $w[9], 0x21e1cde6u32, 5);
        step!(g, $d, $a, $b, $c, $w[14], 0xc33707d6u32, 9);
        step!(g, $c, $d, $a, $b, $w[3], 0xf4d50d87u32, 14);
        step!(g, $b, $c, $d, $a, $w[8], 0x455a14edu32, 20);
        step!(g, $a, $b, $c, $d, $w[13], 0xa9e3e905u32, 5);
        step!(g, $d, $a, $b, $c, $w[2], 0xfcefa3f8u32, 9);
        step!(g, $c, $d, $a, $b, $w[7], 0x676f02d9u32, 14);
        step!(g, $b, $c, $d, $a, $w[12], 0x8d2a4c8au32, 20);
        step!(h, $a, $b, $c, $d, $w[5], 0xfffa3942u32, 4);
        step!(h, $d, $a, $b, $c, $w[8], 0x8771f681u32, 11);
        step!(h, $c, $d, $a, $b, $w[11], 0x6d9d6122u32, 16);
        step!(h, $b, $c, $d, $a, $w[14], 0xfde5380cu32, 23);
        step!(h, $a, $b, $c, $d, $w[1], 0xa4beea44u32, 4);
        step!(h, $d, $a, $b, $c, $w[4], 0x4bdecfa9u32, 11);
        step!(h, $c, $d, $a, $b, $w[7], 0xf6bb4b60u32, 16);
        step!(h, $b, $c, $d, $a, $w[10], 0xbebfbc70u32, 23);
        step!(h, $a, $b, $c, $d, $w[13], 0x289b7ec6u32, 4);
        step!(h, $d, $a, $b, $c, $w[0], 0xeaa127fau32, 11);
        step!(h, $c, $d, $a, $b, $w[3], 0xd4ef3085u32, 16);
        step!(h, $b, $c, $d, $a, $w[6], 0x04881d05u32, 23);
        step!(h, $a, $b, $c, $d, $w[9], 0xd9d4d039u32, 4);
        step!(h, $d, $a, $b, $c, $w[12], 0xe6db99e5u32, 11);
        step!(h, $c, $d, $a, $b, $w[15], 0x1fa27cf8u32, 16);
        step!(h, $b, $c, $d, $a, $w[2], 0xc4ac5665u32, 23);
        step!(i, $a, $b, $c, $d, $w[0], 0xf4292244u32, 6);
        step!(i, $d, $a, $b, $c, $w[7], 0x432aff97u32, 10);
        step!(i, $c, $d, $a, $b, $w[14], 0xab9423a7u32, 15);
        step!(i, $b, $c, $d, $a, $w[5], 0xfc93a039u32, 21);
        step!(i, $a, $b, $c, $d, $w[12], 0x655b59c3u32, 6);
        step!(i, $d, $a, $b, $c, $w[3], 0x8f0ccc92u32, 10);
        step!(i, $c, $d, $a, $b, $w[10], 0xffeff47du32, 15);
        step!(i, $b, $c, $d, $a, $w[1], 0x85845dd1u32, 21);
        step!(i, $a, $b, $c, $d, $w[8], 0x6fa87e4fu32, 6);
        step!(i, $d, $a, $b, $c, $w[15], 0xfe2ce6e0u32, 10);
        step!(i, $c, $d, $a, $b, $w[6], 0xa3014314u32, 15);
        step!(i, $b, $c, $d, $a, $w[13], 0x4e0811a1u32, 21);
        step!(i, $a, $b, $c, $d, $w[4], 0xf7537e82u32, 6);
        step!(i, $d, $a, $b, $c, $w[11], 0xbd3af235u32, 10);
        step!(i, $c, $d, $a, $b, $w[2], 0x2ad7d2bbu32, 15);
        step!(i, $b, $c, $d, $a, $w[9], 0xeb86d391u32, 21);
    };
}

/// One step of lanes 0..16 in `mask`: the AVX-512F kernel. Lanes outside
/// the mask are computed on whatever their block holds and then discarded.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn step_avx512(st: &mut State, blocks: &Blocks, mask: u16) {
    use std::arch::x86_64::*;
    // SAFETY (every block below): `State` and `Blocks` are 64-byte aligned
    // and hold 16 u32 per state word and 16 × 64 bytes: each aligned
    // 512-bit load and store stays inside them, and every gather reads
    // word j (0..16) of lane i (0..16) at byte 64 i + 4 j < 1024.
    let (mut a, mut b, mut c, mut d) = unsafe {
        (
            _mm512_load_si512(st.0[0].as_ptr().cast()),
            _mm512_load_si512(st.0[1].as_ptr().cast()),
            _mm512_load_si512(st.0[2].as_ptr().cast()),
            _mm512_load_si512(st.0[3].as_ptr().cast()),
        )
    };
    let (a0, b0, c0, d0) = (a, b, c, d);
    let lanes = _mm512_setr_epi32(
        0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
    );
    let base: *const i32 = blocks.0.as_ptr().cast();
    let mut w = [_mm512_setzero_si512(); 16];
    for (j, word) in w.iter_mut().enumerate() {
        let idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(j as i32));
        *word = unsafe { _mm512_i32gather_epi32::<4>(idx, base) };
    }
    macro_rules! step {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $k:expr, $s:expr) => {
            // Ternary-logic truth tables: f = b ? c : d (0xCA), g = d ? b : c
            // (f with its inputs turned), h = b ^ c ^ d (0x96),
            // i = c ^ (b | !d) (0x39).
            let fun = match stringify!($f) {
                "f" => _mm512_ternarylogic_epi32::<0xCA>($b, $c, $d),
                "g" => _mm512_ternarylogic_epi32::<0xCA>($d, $b, $c),
                "h" => _mm512_ternarylogic_epi32::<0x96>($b, $c, $d),
                _ => _mm512_ternarylogic_epi32::<0x39>($b, $c, $d),
            };
            let sum = _mm512_add_epi32(
                _mm512_add_epi32($a, fun),
                _mm512_add_epi32($x, _mm512_set1_epi32($k as i32)),
            );
            $a = _mm512_add_epi32($b, _mm512_rol_epi32::<$s>(sum));
        };
    }
    md5_steps!(a, b, c, d, w);
    let keep = mask as __mmask16;
    a = _mm512_mask_add_epi32(a0, keep, a, a0);
    b = _mm512_mask_add_epi32(b0, keep, b, b0);
    c = _mm512_mask_add_epi32(c0, keep, c, c0);
    d = _mm512_mask_add_epi32(d0, keep, d, d0);
    unsafe {
        _mm512_store_si512(st.0[0].as_mut_ptr().cast(), a);
        _mm512_store_si512(st.0[1].as_mut_ptr().cast(), b);
        _mm512_store_si512(st.0[2].as_mut_ptr().cast(), c);
        _mm512_store_si512(st.0[3].as_mut_ptr().cast(), d);
    }
}

/// One step of lanes 0..8 in `mask`: the AVX2 kernel (lanes 8..16 unused).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn step_avx2(st: &mut State, blocks: &Blocks, mask: u16) {
    use std::arch::x86_64::*;
    // SAFETY (every block below): `State` and `Blocks` are 64-byte aligned;
    // the 256-bit loads and stores cover lanes 0..8 of each state word,
    // and every gather reads word j (0..16) of lane i (0..8) at byte
    // 64 i + 4 j < 512, inside `Blocks`.
    let (mut a, mut b, mut c, mut d) = unsafe {
        (
            _mm256_load_si256(st.0[0].as_ptr().cast()),
            _mm256_load_si256(st.0[1].as_ptr().cast()),
            _mm256_load_si256(st.0[2].as_ptr().cast()),
            _mm256_load_si256(st.0[3].as_ptr().cast()),
        )
    };
    let (a0, b0, c0, d0) = (a, b, c, d);
    let lanes = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
    let base: *const i32 = blocks.0.as_ptr().cast();
    let mut w = [_mm256_setzero_si256(); 16];
    for (j, word) in w.iter_mut().enumerate() {
        let idx = _mm256_add_epi32(lanes, _mm256_set1_epi32(j as i32));
        *word = unsafe { _mm256_i32gather_epi32::<4>(base, idx) };
    }
    let ones = _mm256_set1_epi32(-1);
    macro_rules! step {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $k:expr, $s:expr) => {
            let fun = match stringify!($f) {
                // (b & c) | (!b & d) = d ^ (b & (c ^ d))
                "f" => _mm256_xor_si256($d, _mm256_and_si256($b, _mm256_xor_si256($c, $d))),
                // (b & d) | (c & !d) = c ^ (d & (b ^ c))
                "g" => _mm256_xor_si256($c, _mm256_and_si256($d, _mm256_xor_si256($b, $c))),
                "h" => _mm256_xor_si256(_mm256_xor_si256($b, $c), $d),
                _ => _mm256_xor_si256($c, _mm256_or_si256($b, _mm256_xor_si256($d, ones))),
            };
            let sum = _mm256_add_epi32(
                _mm256_add_epi32($a, fun),
                _mm256_add_epi32($x, _mm256_set1_epi32($k as i32)),
            );
            let rot = _mm256_or_si256(
                _mm256_slli_epi32::<$s>(sum),
                _mm256_srli_epi32::<{ 32 - $s }>(sum),
            );
            $a = _mm256_add_epi32($b, rot);
        };
    }
    md5_steps!(a, b, c, d, w);
    // Lanes in the mask take the new state, the others keep theirs.
    let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let sel = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(mask as i32), bits), bits);
    a = _mm256_blendv_epi8(a0, _mm256_add_epi32(a, a0), sel);
    b = _mm256_blendv_epi8(b0, _mm256_add_epi32(b, b0), sel);
    c = _mm256_blendv_epi8(c0, _mm256_add_epi32(c, c0), sel);
    d = _mm256_blendv_epi8(d0, _mm256_add_epi32(d, d0), sel);
    unsafe {
        _mm256_store_si256(st.0[0].as_mut_ptr().cast(), a);
        _mm256_store_si256(st.0[1].as_mut_ptr().cast(), b);
        _mm256_store_si256(st.0[2].as_mut_ptr().cast(), c);
        _mm256_store_si256(st.0[3].as_mut_ptr().cast(), d);
    }
}

/// The MD5 of every message, in order, with the widest kernel the CPU
/// runs.
///
/// ```
/// use triage_core::hash::md5x::md5_many;
/// let d = md5_many(&[b"".as_slice(), b"abc".as_slice()]);
/// assert_eq!(d[1][..4], [0x90, 0x01, 0x50, 0x98]); // 900150983cd24fb0…
/// ```
pub fn md5_many(messages: &[&[u8]]) -> Vec<[u8; 16]> {
    md5_many_with(Level::detect(), messages)
}

/// The same with a chosen kernel (tests and benchmarks force each one); a
/// level the CPU cannot run falls back to the widest it can.
pub fn md5_many_with(level: Level, messages: &[&[u8]]) -> Vec<[u8; 16]> {
    super::lanes::many_with::<Md5>(level, messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest as _, Md5};

    fn reference(m: &[u8]) -> [u8; 16] {
        Md5::digest(m).into()
    }

    fn levels() -> Vec<Level> {
        let all = [Level::Scalar, Level::Avx2, Level::Avx512];
        let run: Vec<Level> = all.into_iter().filter(|l| l.supported()).collect();
        // Which kernels this machine checked (the build machines here have
        // AVX-512; one without it checks the others, and says so).
        eprintln!("md5x kernels checked: {run:?}");
        if std::env::var_os("CI").is_some() && cfg!(target_arch = "x86_64") {
            assert!(
                run.contains(&Level::Avx2),
                "CI runs the AVX2 kernel: {run:?}"
            );
        }
        run
    }

    #[test]
    fn rfc1321_vectors() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        let msgs: Vec<&[u8]> = vectors.iter().map(|v| v.0).collect();
        for level in levels() {
            let got = md5_many_with(level, &msgs);
            for (g, (_, want)) in got.iter().zip(vectors) {
                let hex: String = g.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(hex, want, "{level:?}");
            }
        }
    }

    /// A tiny deterministic generator (xorshift), so failures reproduce.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn random_lengths_equal_md5_on_every_level() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..20_000).map(|_| rng(&mut seed) as u8).collect();
        let mut msgs: Vec<&[u8]> = Vec::new();
        for _ in 0..300 {
            let len = (rng(&mut seed) % 10_001) as usize;
            let at = (rng(&mut seed) % (data.len() - len + 1) as u64) as usize;
            msgs.push(&data[at..at + len]);
        }
        let want: Vec<[u8; 16]> = msgs.iter().map(|m| reference(m)).collect();
        for level in levels() {
            assert_eq!(md5_many_with(level, &msgs), want, "{level:?}");
        }
    }

    #[test]
    fn block_boundaries_and_uneven_lanes() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 31 + 7) as u8).collect();
        // Every length around the padding edges (55/56, 63/64/65, 119/120),
        // in one batch, so lanes finish at different steps and refill.
        let mut msgs: Vec<&[u8]> = Vec::new();
        for len in (0..=200).chain([447, 448, 511, 512, 513, 1000, 4095, 4096]) {
            msgs.push(&data[..len]);
        }
        // One long message beside many short ones.
        msgs.insert(3, &data[..4096]);
        let want: Vec<[u8; 16]> = msgs.iter().map(|m| reference(m)).collect();
        for level in levels() {
            assert_eq!(md5_many_with(level, &msgs), want, "{level:?}");
            // Fewer messages than lanes, and exactly one.
            assert_eq!(md5_many_with(level, &msgs[..5]), want[..5], "{level:?}");
            assert_eq!(md5_many_with(level, &msgs[..1]), want[..1], "{level:?}");
        }
        assert!(md5_many(&[]).is_empty());
    }

    /// The streaming path: messages fed in pieces of 0..200 bytes (empty
    /// pieces, pieces ending mid-block and on block edges), lanes dry at
    /// different times and refilled, equal `md-5` on every kernel.
    #[test]
    fn streamed_pieces_equal_md5_on_every_level() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let data: Vec<u8> = (0..30_000).map(|_| rng(&mut seed) as u8).collect();
        let mut msgs: Vec<&[u8]> = Vec::new();
        for _ in 0..120 {
            let len = (rng(&mut seed) % 5_000) as usize;
            let at = (rng(&mut seed) % (data.len() - len + 1) as u64) as usize;
            msgs.push(&data[at..at + len]);
        }
        msgs.push(&data[..0]);
        msgs.push(&data[..25_000]);
        let want: Vec<[u8; 16]> = msgs.iter().map(|m| reference(m)).collect();
        let cuts: Vec<usize> = (0..257).map(|_| (rng(&mut seed) % 200) as usize).collect();
        for level in levels() {
            assert_eq!(
                crate::fuzzing::lanes_streamed::<super::Md5>(level, &msgs, &cuts),
                want,
                "{level:?}"
            );
            // Whole blocks only, and one piece per message.
            assert_eq!(
                crate::fuzzing::lanes_streamed::<super::Md5>(level, &msgs, &[64, 128, 4096]),
                want
            );
            assert_eq!(
                crate::fuzzing::lanes_streamed::<super::Md5>(level, &msgs, &[1 << 20]),
                want
            );
        }
    }
}
