//! Multi-buffer hashing's shared half: many independent messages hashed
//! at once, one per SIMD lane, as ISA-L crypto and minio's md5-simd do.
//! One MD5 or SHA-256 stream is a chain of dependent 32-bit operations and
//! cannot use wide registers; sixteen streams side by side can.
//!
//! This file owns the lanes: which message each holds, the bytes waiting
//! for a whole block, the padding (RFC 1321 §3.1, FIPS 180-4 §5.1.1), and
//! the choice of kernel per step. A [`Kernel`] (`md5x`, `sha256x`) brings
//! the compression function: its SIMD steps over 16 lanes' blocks side by
//! side, and the one-stream function the SIMD steps are checked against
//! and that runs a lane alone.
//!
//! [`Lanes`] streams (pieces of any length per lane, for the scan's lane
//! groups); [`many_with`] hashes whole messages (a batch in memory).
//! Every kernel is checked against its one-stream crate in its own tests
//! (random lengths, block and padding edges, lanes finishing at different
//! steps, pieces of every length, every level forced) and by the
//! `md5_lanes` fuzz target.

/// Lanes of the widest kernel.
pub const MAX_LANES: usize = 16;

/// A kernel: how many messages advance per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// One lane at a time, with the `md-5` crate's block function.
    Scalar,
    /// 8 lanes in 256-bit AVX2 registers.
    Avx2,
    /// 16 lanes in 512-bit AVX-512F registers.
    Avx512,
}

impl Level {
    /// The widest SIMD level this CPU runs (a kernel may have fewer).
    pub fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Level::Avx2;
            }
        }
        Level::Scalar
    }

    /// Whether this CPU runs this kernel.
    pub fn supported(self) -> bool {
        self <= Level::detect()
    }

    /// Messages per step.
    pub fn lanes(self) -> usize {
        match self {
            Level::Scalar => 1,
            Level::Avx2 => 8,
            Level::Avx512 => 16,
        }
    }

    /// Its name in logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

/// The transposed state of every lane: word `w` of lane `i` at
/// `[w][i]`, so one register holds one word of 16 lanes (MD5 uses 4 words,
/// SHA-256 8).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct State(pub [[u32; MAX_LANES]; 8]);

/// A compression function the lanes run.
pub trait Kernel {
    /// Initial state words (unused ones zero).
    const INIT: [u32; 8];
    /// The length in the padding is big-endian (the SHA family) rather
    /// than little-endian (MD5).
    const BIG_ENDIAN: bool;
    /// It has an 8-lane AVX2 step (used when only lanes 0..8 are busy).
    const HAS_AVX2: bool;
    /// Busy lanes from which a SIMD step beats the one-stream function
    /// run lane by lane, on this CPU (measured: benches/README.md).
    fn min_simd_lanes() -> u32;
    /// The digest.
    type Digest: Copy;
    /// The widest level this kernel has that this CPU runs.
    fn detect() -> Level;
    /// The digest from a lane's final state words.
    fn digest(words: &[u32; 8]) -> Self::Digest;
    /// The one-stream function: `blocks` into one lane's state.
    fn compress(words: &mut [u32; 8], blocks: &[[u8; 64]]);
    /// One block of every lane in `mask` with a SIMD `level`; lanes
    /// outside the mask keep their state.
    ///
    /// # Safety
    /// The CPU must run `level` (it is at most [`Kernel::detect`]'s).
    unsafe fn step(level: Level, st: &mut State, blocks: &Blocks, mask: u16);
}

/// Word `j` of every lane's block, big-endian (the SHA family), one
/// 512-bit register per word: the message words of an AVX-512F step.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn be_words_avx512(blocks: &Blocks) -> [std::arch::x86_64::__m512i; 16] {
    use std::arch::x86_64::*;
    let lanes = _mm512_setr_epi32(
        0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
    );
    let base: *const i32 = blocks.0.as_ptr().cast();
    let odd = _mm512_set1_epi32(0xff00_ff00u32 as i32);
    let mut w = [_mm512_setzero_si512(); 16];
    for (j, word) in w.iter_mut().enumerate() {
        let idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(j as i32));
        // SAFETY: the gather reads word j (0..16) of lane i (0..16) at
        // byte 64 i + 4 j < 1024, inside `Blocks`.
        let x = unsafe { _mm512_i32gather_epi32::<4>(idx, base) };
        // Big-endian words: bytes 1 and 3 from a rotation right by 8,
        // bytes 0 and 2 from one left by 8.
        *word = _mm512_ternarylogic_epi32::<0xCA>(
            odd,
            _mm512_ror_epi32::<8>(x),
            _mm512_rol_epi32::<8>(x),
        );
    }
    w
}

/// One step of every lane in `mask` with the one-stream function.
fn step_scalar<K: Kernel>(st: &mut State, blocks: &Blocks, mask: u16) {
    for lane in 0..MAX_LANES {
        if mask & (1 << lane) != 0 {
            let mut words: [u32; 8] = std::array::from_fn(|w| st.0[w][lane]);
            K::compress(&mut words, std::slice::from_ref(&blocks.0[lane]));
            for (w, v) in st.0.iter_mut().zip(words) {
                w[lane] = v;
            }
        }
    }
}

/// The next block of every lane, side by side (lane `i` at `blocks[i]`), so
/// that the AVX kernels gather word `j` of all lanes with one instruction.
#[repr(C, align(64))]
pub struct Blocks(pub [[u8; 64]; MAX_LANES]);

/// Where one lane is in its message.
#[derive(Clone, Copy)]
struct Slot {
    /// A message is in this lane.
    busy: bool,
    /// Its padding is in `carry`: when `carry` empties, the digest is out.
    finishing: bool,
    /// Message bytes taken so far (for the length in the padding).
    len: u64,
    /// Bytes waiting for a whole block: the tail of an input that ended
    /// mid-block (under 64), or that tail with the padding (64 or 128).
    carry: [u8; 128],
    carry_len: u8,
    /// Of `carry`, bytes already compressed.
    carry_off: u8,
}

impl Slot {
    const IDLE: Slot = Slot {
        busy: false,
        finishing: false,
        len: 0,
        carry: [0; 128],
        carry_len: 0,
        carry_off: 0,
    };
}

/// What [`Lanes::run`] stopped for, as lane masks (bit `i` = lane `i`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Lanes whose input is used up: give them more
    /// ([`Lanes::run`] again with a new slice) or end their message
    /// ([`Lanes::finish`]).
    pub dry: u16,
    /// Lanes whose digest is ready ([`Lanes::take`]).
    pub done: u16,
}

impl Events {
    /// Nothing to do: no lane holds a message.
    pub fn is_empty(self) -> bool {
        self.dry == 0 && self.done == 0
    }
}

/// Streaming multi-buffer hashing with kernel `K`: up to [`Lanes::lanes`] messages at once,
/// each fed in pieces of any length, each lane freed when its message ends
/// so the next message can take it.
///
/// The caller drives it: [`start`](Lanes::start) a message in a free
/// lane, call [`run`](Lanes::run) with every lane's next piece (it
/// compresses blocks of every lane side by side and stops as soon as a lane
/// runs dry or finishes), then give dry lanes more input or
/// [`finish`](Lanes::finish) them, and [`take`](Lanes::take) the
/// digests of finished ones.
///
/// ```
/// use triage_core::hash::lanes::Level;
/// use triage_core::hash::md5x::Md5Lanes;
/// let mut lanes = Md5Lanes::new(Level::detect());
/// let (a, b) = (b"ab".as_slice(), b"abc".as_slice());
/// lanes.start(0);
/// lanes.start(1);
/// // Lane 0 gets "a" then "b"; lane 1 gets "abc" at once.
/// let mut inputs = [&a[..1], b];
/// let ev = lanes.run(&mut inputs);
/// assert_eq!(ev.dry, 0b11);
/// inputs = [&a[1..], b""];
/// lanes.finish(1);
/// loop {
///     let ev = lanes.run(&mut inputs);
///     if ev.dry & 1 != 0 { lanes.finish(0); }
///     if ev.done == 0b11 { break; }
/// }
/// assert_eq!(lanes.take(1)[..4], [0x90, 0x01, 0x50, 0x98]); // MD5("abc")
/// assert_eq!(lanes.take(0)[..4], [0x18, 0x7e, 0xf4, 0x43]); // MD5("ab")
/// ```
pub struct Lanes<K: Kernel> {
    kernel: std::marker::PhantomData<K>,
    level: Level,
    st: State,
    blocks: Blocks,
    slots: [Slot; MAX_LANES],
}

impl<K: Kernel> Lanes<K> {
    /// Lanes for the widest kernel up to `level` that the CPU runs.
    pub fn new(level: Level) -> Lanes<K> {
        let level = level.min(K::detect());
        Lanes {
            kernel: std::marker::PhantomData,
            level,
            st: State([[0; MAX_LANES]; 8]),
            blocks: Blocks([[0u8; 64]; MAX_LANES]),
            slots: [Slot::IDLE; MAX_LANES],
        }
    }

    /// The kernel in use.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Messages that can be in flight at once.
    pub fn lanes(&self) -> usize {
        self.level.lanes()
    }

    /// Lanes holding a message.
    pub fn busy(&self) -> u16 {
        (0..self.lanes())
            .filter(|&i| self.slots[i].busy)
            .fold(0, |m, i| m | 1 << i)
    }

    /// Starts a new message in `lane`, dropping whatever it held.
    pub fn start(&mut self, lane: usize) {
        self.slots[lane] = Slot {
            busy: true,
            ..Slot::IDLE
        };
        for (w, init) in self.st.0.iter_mut().zip(K::INIT) {
            w[lane] = init;
        }
    }

    /// Frees `lane` without a digest (its message failed to read).
    pub fn abandon(&mut self, lane: usize) {
        self.slots[lane] = Slot::IDLE;
    }

    /// Ends `lane`'s message: call it when [`Lanes::run`] said the lane
    /// is dry, and pass it an empty input from then on. Its padding goes
    /// through the lanes with the other lanes' blocks; [`Lanes::run`]
    /// then reports it done.
    pub fn finish(&mut self, lane: usize) {
        let s = &mut self.slots[lane];
        if !s.busy || s.finishing {
            return;
        }
        // RFC 1321 §3.1–3.2: 0x80 after the message, zeros up to 56 mod 64,
        // the length in bits as 8 little-endian bytes.
        let tail = s.carry_len as usize;
        let total = if tail < 56 { 64 } else { 128 };
        s.carry[tail] = 0x80;
        s.carry[tail + 1..total - 8].fill(0);
        let bits = s.len.wrapping_mul(8);
        let bits = if K::BIG_ENDIAN {
            bits.to_be_bytes()
        } else {
            bits.to_le_bytes()
        };
        s.carry[total - 8..total].copy_from_slice(&bits);
        s.carry_len = total as u8;
        s.finishing = true;
    }

    /// The digest of `lane`'s finished message; frees the lane. Only
    /// meaningful after [`Lanes::run`] reported it done.
    pub fn take(&mut self, lane: usize) -> K::Digest {
        self.slots[lane] = Slot::IDLE;
        let words: [u32; 8] = std::array::from_fn(|w| self.st.0[w][lane]);
        K::digest(&words)
    }

    /// Compresses the busy lanes' blocks side by side, taking lane `i`'s
    /// bytes from the front of `inputs[i]` (advanced in place), until a
    /// busy lane runs dry (its input used up, a partial block kept) or
    /// finishes. Returns at once with [`Events::is_empty`] when no lane is
    /// busy. `inputs` may be shorter than [`Lanes::lanes`]: missing
    /// lanes have no input.
    pub fn run(&mut self, inputs: &mut [&[u8]]) -> Events {
        let width = self.lanes().min(MAX_LANES);
        self.run_alone(inputs);
        self.run_whole(inputs, width);
        loop {
            let mut mask = 0u16;
            let mut ev = Events::default();
            for i in 0..width {
                let s = &mut self.slots[i];
                if !s.busy {
                    continue;
                }
                let input = inputs.get_mut(i);
                let block = &mut self.blocks.0[i];
                let pending = (s.carry_len - s.carry_off) as usize;
                if s.finishing {
                    if pending == 0 {
                        ev.done |= 1 << i;
                        continue;
                    }
                    let off = s.carry_off as usize;
                    block.copy_from_slice(&s.carry[off..off + 64]);
                    s.carry_off += 64;
                    mask |= 1 << i;
                    continue;
                }
                let Some(input) = input else {
                    ev.dry |= 1 << i;
                    continue;
                };
                if pending == 0 && input.len() >= 64 {
                    block.copy_from_slice(&input[..64]);
                    *input = &input[64..];
                    s.len += 64;
                    mask |= 1 << i;
                } else if pending + input.len() >= 64 {
                    let need = 64 - pending;
                    block[..pending].copy_from_slice(&s.carry[..pending]);
                    block[pending..].copy_from_slice(&input[..need]);
                    *input = &input[need..];
                    s.len += need as u64;
                    s.carry_len = 0;
                    s.carry_off = 0;
                    mask |= 1 << i;
                } else {
                    // Under a block: keep it for the next input or the
                    // padding.
                    s.carry[pending..pending + input.len()].copy_from_slice(input);
                    s.carry_len = (pending + input.len()) as u8;
                    s.carry_off = 0;
                    s.len += input.len() as u64;
                    *input = &[];
                    ev.dry |= 1 << i;
                }
            }
            if mask != 0 {
                self.step(mask);
            }
            if !ev.is_empty() || mask == 0 {
                return ev;
            }
        }
    }

    /// With one lane busy (a big file alone, the end of a group), its whole
    /// blocks go straight from its input through the one-stream function:
    /// a SIMD step would do one lane's work at sixteen's cost. (Only the
    /// number of busy lanes decides it, never the kernel, so lanes of
    /// different kernels fed the same inputs take the same bytes.)
    fn run_alone(&mut self, inputs: &mut [&[u8]]) {
        let busy = self.busy();
        if busy.count_ones() != 1 {
            return;
        }
        let i = busy.trailing_zeros() as usize;
        let s = &mut self.slots[i];
        let Some(input) = inputs.get_mut(i) else {
            return;
        };
        if s.finishing || s.carry_len != s.carry_off || input.len() < 64 {
            return;
        }
        let (blocks, rest) = input.as_chunks::<64>();
        let mut words: [u32; 8] = std::array::from_fn(|w| self.st.0[w][i]);
        K::compress(&mut words, blocks);
        for (w, v) in self.st.0.iter_mut().zip(words) {
            w[i] = v;
        }
        s.len += (blocks.len() * 64) as u64;
        *input = rest;
    }

    /// While every busy lane has whole blocks of input and nothing waiting
    /// (the usual case: pieces of large files), steps them without the
    /// per-lane bookkeeping of the general loop, which would otherwise cost
    /// as much as the step itself.
    fn run_whole(&mut self, inputs: &mut [&[u8]], width: usize) {
        let mut mask = 0u16;
        let mut steps = usize::MAX;
        for i in 0..width {
            let s = &self.slots[i];
            if !s.busy {
                continue;
            }
            let Some(input) = inputs.get(i) else { return };
            if s.finishing || s.carry_len != s.carry_off {
                return;
            }
            steps = steps.min(input.len() / 64);
            mask |= 1 << i;
        }
        if mask == 0 || steps == 0 || steps == usize::MAX {
            return;
        }
        for j in 0..steps {
            for (i, (block, input)) in self.blocks.0.iter_mut().zip(&*inputs).enumerate() {
                if mask & (1 << i) != 0 {
                    block.copy_from_slice(&input[64 * j..64 * j + 64]);
                }
            }
            self.step(mask);
        }
        for (i, (slot, input)) in self.slots.iter_mut().zip(inputs.iter_mut()).enumerate() {
            if mask & (1 << i) != 0 {
                *input = &input[64 * steps..];
                slot.len += (64 * steps) as u64;
            }
        }
    }

    /// One block of every lane in `mask`: the narrowest kernel that covers
    /// the lanes, as a 512-bit step costs the same with 1 lane as with 16.
    fn step(&mut self, mask: u16) {
        let kernel = if mask.count_ones() < K::min_simd_lanes() {
            Level::Scalar
        } else if mask & 0xff00 == 0 && self.level >= Level::Avx2 && K::HAS_AVX2 {
            Level::Avx2
        } else {
            self.level
        };
        match kernel {
            Level::Scalar => step_scalar::<K>(&mut self.st, &self.blocks, mask),
            // SAFETY: `new` caps the level at what `K::detect` found this
            // CPU runs, and Avx2 is chosen only below such a level.
            level => unsafe { K::step(level, &mut self.st, &self.blocks, mask) },
        }
    }
}

/// The digests of whole messages, in order, with kernel `K` up to `level`
/// (a level the CPU cannot run falls back to the widest it can).
pub fn many_with<K: Kernel>(level: Level, messages: &[&[u8]]) -> Vec<K::Digest> {
    let mut lanes = Lanes::<K>::new(level);
    let width = lanes.lanes();
    let mut out: Vec<Option<K::Digest>> = vec![None; messages.len()];
    let mut inputs: [&[u8]; MAX_LANES] = [&[]; MAX_LANES];
    let mut owner = [usize::MAX; MAX_LANES];
    let mut next = 0;
    loop {
        // Free lanes take the next messages, lowest lanes first (so a batch
        // that thins out ends on the narrow kernel).
        for i in 0..width {
            if owner[i] == usize::MAX && next < messages.len() {
                lanes.start(i);
                owner[i] = next;
                inputs[i] = messages[next];
                next += 1;
            }
        }
        let ev = lanes.run(&mut inputs[..width]);
        if ev.is_empty() {
            return out.into_iter().flatten().collect();
        }
        for i in 0..width {
            // A whole message was given at once: dry means its end.
            if ev.dry & (1 << i) != 0 {
                lanes.finish(i);
            }
            if ev.done & (1 << i) != 0 {
                out[owner[i]] = Some(lanes.take(i));
                owner[i] = usize::MAX;
            }
        }
    }
}
