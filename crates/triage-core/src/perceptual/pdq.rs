//! PDQ (Meta's perceptual hash), written from its published description and
//! checked bit for bit against the reference C++ core.
//!
//! Input: 8-bit RGB pixels (or luma). Output: a 256-bit [`PdqHash`], a
//! quality 0–100, and on request the 8 dihedral hashes (rotations and
//! mirrors). Never fails: images under 5 pixels in either direction hash to
//! all zeros with quality 0, as in the reference.
//!
//! Tag [`PDQ_TAG`] (`pdq/1`) pins exactly this computation:
//! - luma `Y = 0.299 R + 0.587 G + 0.114 B` in f64, rounded to f32 (what
//!   the PyPI `pdqhash` bindings, and so python-threatexchange, feed the C++
//!   core; computing it in f32 differs by an ulp in ~31% of pixels and can
//!   flip a bit or two);
//! - full-resolution input, no pre-resize (the C++ command-line hasher's
//!   512×512 squash gives hashes 2–8 bits away);
//! - two passes of the Jarosz box filter with window ceil(L/128), decimation
//!   to 64×64, quality from the 64×64 gradients, a 16×64 DCT applied on both
//!   sides, and a threshold at the lower median.
//!
//! All arithmetic is f32 in the reference's order; Rust never contracts to
//! FMA, so the results are the same on every platform. [`mod@reference`] is the
//! slow, literal form kept as the oracle for faster paths.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

/// Version tag of this PDQ computation, written beside every PDQ hash.
pub const PDQ_TAG: &str = "pdq/1";

/// A 256-bit PDQ hash. Bit `k = 16·i + j` is bit `j` of word `i`, where `i`
/// is the vertical and `j` the horizontal DCT frequency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PdqHash(pub [u16; 16]);

impl PdqHash {
    /// Hamming distance: the number of differing bits (0–256).
    pub fn distance(&self, other: &PdqHash) -> u32 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// Number of set bits (128 for a normal image).
    pub fn norm(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// The 32 bytes of the big-endian hex form.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (k, w) in self.0.iter().rev().enumerate() {
            out[2 * k..2 * k + 2].copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

impl fmt::Display for PdqHash {
    /// 64 lower-case hex digits, word 15 first: ThreatExchange's text form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in self.0.iter().rev() {
            write!(f, "{w:04x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({self})")
    }
}

/// Text that is not a 64-digit hex PDQ hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPdqHash(pub String);

impl fmt::Display for BadPdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not a PDQ hash (64 hex digits)", self.0)
    }
}

impl std::error::Error for BadPdqHash {}

impl FromStr for PdqHash {
    type Err = BadPdqHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.len() != 64 || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(BadPdqHash(s.to_string()));
        }
        let mut w = [0u16; 16];
        for (k, chunk) in t.as_bytes().chunks(4).enumerate() {
            let text = std::str::from_utf8(chunk).map_err(|_| BadPdqHash(s.to_string()))?;
            w[15 - k] = u16::from_str_radix(text, 16).map_err(|_| BadPdqHash(s.to_string()))?;
        }
        Ok(PdqHash(w))
    }
}

/// The 8 dihedral transforms, in the reference's output order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dihedral {
    /// The image as stored.
    Original,
    /// Rotated 90° counter-clockwise.
    Rotate90,
    /// Rotated 180°.
    Rotate180,
    /// Rotated 90° clockwise.
    Rotate270,
    /// Mirrored top to bottom.
    FlipX,
    /// Mirrored left to right.
    FlipY,
    /// Transposed about the main diagonal.
    FlipPlus1,
    /// Transposed about the anti-diagonal.
    FlipMinus1,
}

impl Dihedral {
    /// All eight, in output order.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// The reference's name (`orig`, `rot90`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Dihedral::Original => "orig",
            Dihedral::Rotate90 => "rot90",
            Dihedral::Rotate180 => "rot180",
            Dihedral::Rotate270 => "rot270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flipplus1",
            Dihedral::FlipMinus1 => "flipminus1",
        }
    }
}

/// A PDQ result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdq {
    /// The hash of the image as stored.
    pub hash: PdqHash,
    /// 0–100; below 50 the hash carries too little structure to match on.
    pub quality: u8,
    /// The hashes of the 8 dihedral transforms (index 0 equals `hash`), if asked for.
    pub dihedral: Option<[PdqHash; 8]>,
}

/// PDQ of 8-bit RGB pixels (`rgb.len() == 3 · width · height`, row-major).
///
/// ```
/// use triage_core::perceptual::pdq::pdq_rgb8;
/// // A 64×64 horizontal gradient.
/// let rgb: Vec<u8> = (0..64 * 64).flat_map(|i| [(i % 64 * 4) as u8; 3]).collect();
/// let pdq = pdq_rgb8(&rgb, 64, 64, true);
/// assert_eq!(pdq.hash.norm(), 128);
/// assert_eq!(pdq.dihedral.unwrap()[0], pdq.hash);
/// ```
pub fn pdq_rgb8(rgb: &[u8], width: usize, height: usize, dihedral: bool) -> Pdq {
    pdq_rgb8_with(rgb, width, height, dihedral, luma_row)
}

/// PDQ of RGB pixels with luma made by `luma`, row by row as the filter
/// asks for it: no luma plane, so memory beyond the pixels is a few rows.
#[inline(always)]
fn pdq_rgb8_with(
    rgb: &[u8],
    width: usize,
    height: usize,
    dihedral: bool,
    luma: impl Fn(&[u8], &mut [f32]),
) -> Pdq {
    assert_eq!(
        rgb.len(),
        3 * width * height,
        "pixel buffer does not match its dimensions"
    );
    finish(width, height, dihedral, |line, r| {
        luma(&rgb[3 * r * width..3 * (r + 1) * width], line)
    })
}

/// PDQ of 8-bit RGB pixels as Meta's vPDQ hashes a video frame: the
/// same PDQ, but luma computed in f32 throughout (its C++
/// `fillFloatLumaFromRGB`: `0.299f·R + 0.587f·G + 0.114f·B`, each product
/// and sum rounded to f32, left to right), where [`pdq_rgb8`] follows the
/// image bindings' f64 luma. The two differ by an ulp in some pixels, which
/// on a near-flat frame can move the quality by one or flip a bit.
///
/// ```
/// use triage_core::perceptual::pdq::{pdq_rgb8, pdq_rgb8_f32_luma};
/// // A 64×64 grey horizontal gradient. On grey pixels f64 luma is exact
/// // and f32 luma is an ulp off here and there; with nothing but one
/// // gradient, those ulps decide the weak DCT terms' bits.
/// let rgb: Vec<u8> = (0..64 * 64).flat_map(|i| [(i % 64 * 4) as u8; 3]).collect();
/// let frame = pdq_rgb8_f32_luma(&rgb, 64, 64);
/// assert_ne!(frame.hash, pdq_rgb8(&rgb, 64, 64, false).hash);
/// assert_eq!(frame.hash.norm(), 128);
/// ```
pub fn pdq_rgb8_f32_luma(rgb: &[u8], width: usize, height: usize) -> Pdq {
    pdq_rgb8_with(rgb, width, height, false, luma_row_f32)
}

#[inline(always)]
fn luma_row_f32(rgb: &[u8], out: &mut [f32]) {
    for (y, p) in out.iter_mut().zip(rgb.chunks_exact(3)) {
        // Rust never fuses these into FMA: the same roundings as the C++.
        *y = 0.299f32 * p[0] as f32 + 0.587f32 * p[1] as f32 + 0.114f32 * p[2] as f32;
    }
}

/// Luma as [`PDQ_TAG`] defines it: f64 weighted sum rounded to f32.
pub fn luma_from_rgb8(rgb: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; rgb.len() / 3];
    luma_row(rgb, &mut out);
    out
}

#[inline(always)]
fn luma_row(rgb: &[u8], out: &mut [f32]) {
    for (y, p) in out.iter_mut().zip(rgb.chunks_exact(3)) {
        *y = (p[0] as f64 * 0.299 + p[1] as f64 * 0.587 + p[2] as f64 * 0.114) as f32;
    }
}

/// PDQ of a luma plane (`luma.len() == width · height`, row-major). Takes
/// the buffer by value: the filter works in place.
pub fn pdq_luma(mut luma: Vec<f32>, width: usize, height: usize, dihedral: bool) -> Pdq {
    pdq_in_place(&mut luma, width, height, dihedral)
}

/// PDQ of a luma plane.
fn pdq_in_place(luma: &mut [f32], width: usize, height: usize, dihedral: bool) -> Pdq {
    assert_eq!(
        luma.len(),
        width * height,
        "luma buffer does not match its dimensions"
    );
    finish(width, height, dihedral, |line, r| {
        line.copy_from_slice(&luma[r * width..(r + 1) * width])
    })
}

/// Filter, quality, DCT and threshold over luma rows produced on demand by
/// `row(line, r)`.
fn finish(width: usize, height: usize, dihedral: bool, row: impl FnMut(&mut [f32], usize)) -> Pdq {
    if width < 5 || height < 5 {
        return Pdq {
            hash: PdqHash::default(),
            quality: 0,
            dihedral: dihedral.then_some([PdqHash::default(); 8]),
        };
    }
    let a = downsample_64(width, height, row);
    let quality = quality(&a);
    let b = dct_16(&a);
    let hash = threshold(&b);
    let dihedral = dihedral.then(|| {
        let mut out = [hash; 8];
        for (k, t) in Dihedral::ALL.iter().enumerate().skip(1) {
            out[k] = threshold(&transform(&b, *t));
        }
        out
    });
    Pdq {
        hash,
        quality,
        dihedral,
    }
}

/// Window of the Jarosz filter along a dimension of `len` samples.
fn window(len: usize) -> usize {
    len.div_ceil(128)
}

/// One running-sum box filter over `len` samples at `stride` (see the
/// module doc); `input` and `output` must not overlap.
fn box_1d(input: &[f32], output: &mut [f32], len: usize, stride: usize, w: usize) {
    let half = (w + 2) / 2;
    let (mut li, mut ri, mut oi) = (0, 0, 0);
    let mut sum = 0.0f32;
    let mut count = 0usize;
    for _ in 0..half - 1 {
        sum += input[ri];
        count += 1;
        ri += stride;
    }
    for _ in 0..w - half + 1 {
        sum += input[ri];
        count += 1;
        output[oi] = sum / count as f32;
        ri += stride;
        oi += stride;
    }
    for _ in 0..len - w {
        sum += input[ri];
        sum -= input[li];
        output[oi] = sum / count as f32;
        li += stride;
        ri += stride;
        oi += stride;
    }
    for _ in 0..half - 1 {
        sum -= input[li];
        count -= 1;
        output[oi] = sum / count as f32;
        li += stride;
        oi += stride;
    }
}

/// Two rounds of (rows, then columns), then decimation to 64×64, streamed:
/// rows flow through the four passes as they are produced, each column pass
/// keeping only the `w + 1` rows its window spans, and only the 64 sampled
/// rows of the last pass are kept. Every row and column sees exactly the
/// operations of the full-plane form ([`mod@reference`]) in the same order, so
/// the result is identical; the working set is a few rows instead of two
/// full f32 planes (8 bytes a pixel), which made the filter memory-bound.
fn downsample_64(
    width: usize,
    height: usize,
    row: impl FnMut(&mut [f32], usize),
) -> Box<[[f32; 64]; 64]> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { downsample_64_avx2(width, height, row) };
    }
    downsample_64_body(width, height, row)
}

/// The same code compiled for AVX2 (twice the f32/f64 lanes of the SSE2
/// baseline). FMA is not enabled and Rust never contracts, so every
/// operation, and so the hash, is bit-identical to the baseline's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn downsample_64_avx2(
    width: usize,
    height: usize,
    row: impl FnMut(&mut [f32], usize),
) -> Box<[[f32; 64]; 64]> {
    downsample_64_body(width, height, row)
}

#[inline(always)]
fn downsample_64_body(
    width: usize,
    height: usize,
    mut row: impl FnMut(&mut [f32], usize),
) -> Box<[[f32; 64]; 64]> {
    let (wx, wy) = (window(width), window(height));
    let mut rows1 = RowBlock::new(width, wx);
    let mut tail = Round2 {
        width,
        height,
        cols1: ColumnStream::new(width, height, wy),
        rows2: RowBlock::new(width, wx),
        last: LastPass {
            width,
            height,
            cols2: ColumnStream::new(width, height, wy),
            a: Box::new([[0f32; 64]; 64]),
            sample_cols: std::array::from_fn(|j| (2 * j + 1) * width / 128),
        },
    };
    let mut line = vec![0f32; width];
    for r in 0..height {
        row(&mut line, r);
        if let Some(block) = rows1.push(&line) {
            tail.feed(block);
        }
    }
    tail.feed(rows1.flush());
    tail.last.a
}

/// Everything after round 1's row pass: its column pass, round 2, and the
/// sampling. A struct with an always-inlined method, not a closure: a
/// closure is compiled on its own, without the caller's AVX2 (perf showed
/// round 2 running as SSE2 code, a quarter of all the time).
struct Round2 {
    width: usize,
    height: usize,
    cols1: ColumnStream,
    rows2: RowBlock,
    last: LastPass,
}

/// Round 2's column pass and the sampling of its output rows.
struct LastPass {
    width: usize,
    height: usize,
    cols2: ColumnStream,
    a: Box<[[f32; 64]; 64]>,
    sample_cols: [usize; 64],
}

impl Round2 {
    /// Takes a batch of round-1 row-pass output rows.
    #[inline(always)]
    fn feed(&mut self, block: &[f32]) {
        let width = self.width;
        for t1 in block.chunks_exact(width) {
            let (_, p1) = self.cols1.push(t1);
            for p1_row in p1.chunks_exact(width) {
                if let Some(block2) = self.rows2.push(p1_row) {
                    self.last.feed(block2);
                }
            }
        }
        // The last round-1 output row has arrived: flush round 2's rows.
        if self.cols1.emitted == self.height {
            self.last.feed(self.rows2.flush());
        }
    }
}

impl LastPass {
    /// Takes a batch of round 2's row-pass output.
    #[inline(always)]
    fn feed(&mut self, block2: &[f32]) {
        for t2 in block2.chunks_exact(self.width) {
            let (first2, p2) = self.cols2.push(t2);
            for (k, line) in p2.chunks_exact(self.width).enumerate() {
                sample(
                    &mut self.a,
                    &self.sample_cols,
                    self.height,
                    first2 + k,
                    line,
                );
            }
        }
    }
}

/// Keeps output row `oi` of the last pass if it is one of the 64 sampled.
#[inline(always)]
fn sample(a: &mut [[f32; 64]; 64], cols: &[usize; 64], height: usize, oi: usize, line: &[f32]) {
    for (i, out_row) in a.iter_mut().enumerate() {
        if (2 * i + 1) * height / 128 == oi {
            for (v, &c) in out_row.iter_mut().zip(cols) {
                *v = line[c];
            }
        }
    }
}

/// Collects rows and runs the row pass on eight at a time, stored
/// interleaved (`[column][row]`): each row's running sum is a chain of
/// dependent additions, so one row alone waits on latency, while eight side
/// by side are one vector operation on contiguous memory. Each row still sees
/// exactly the operations of [`box_1d`] in the same order.
struct RowBlock {
    width: usize,
    w: usize,
    input: Vec<f32>,
    filtered: Vec<f32>,
    output: Vec<f32>,
    rows: usize,
}

const LANES: usize = 8;

impl RowBlock {
    fn new(width: usize, w: usize) -> Self {
        RowBlock {
            width,
            w,
            input: vec![0f32; LANES * width],
            filtered: vec![0f32; LANES * width],
            output: vec![0f32; LANES * width],
            rows: 0,
        }
    }

    /// Adds a row; returns the filtered block when eight are collected.
    #[inline(always)]
    fn push(&mut self, line: &[f32]) -> Option<&[f32]> {
        let lane = self.rows;
        for (c, x) in line.iter().enumerate() {
            self.input[c * LANES + lane] = *x;
        }
        self.rows += 1;
        (self.rows == LANES).then(|| self.flush())
    }

    /// Filters and returns the rows collected so far, row-major. Lanes past
    /// the last row hold stale values; they are filtered and dropped.
    #[inline(always)]
    fn flush(&mut self) -> &[f32] {
        let (n, width) = (self.rows, self.width);
        filter_lanes(&self.input, &mut self.filtered, width, self.w);
        for (c, lanes) in self.filtered.chunks_exact(LANES).enumerate() {
            for (lane, v) in lanes[..n].iter().enumerate() {
                self.output[lane * width + c] = *v;
            }
        }
        self.rows = 0;
        &self.output[..n * width]
    }
}

/// [`box_1d`] over eight interleaved rows at once.
#[inline(always)]
fn filter_lanes(input: &[f32], output: &mut [f32], width: usize, w: usize) {
    let half = (w + 2) / 2;
    let col = |c: usize| &input[c * LANES..(c + 1) * LANES];
    let mut sum = [0f32; LANES];
    let mut count = 0usize;
    let (mut li, mut ri, mut oi) = (0, 0, 0);
    let mut emit = |sum: &[f32; LANES], count: usize, oi: usize| {
        let c = count as f32;
        for (o, s) in output[oi * LANES..(oi + 1) * LANES].iter_mut().zip(sum) {
            *o = s / c;
        }
    };
    for _ in 0..half - 1 {
        sum.iter_mut().zip(col(ri)).for_each(|(s, x)| *s += x);
        count += 1;
        ri += 1;
    }
    for _ in 0..w - half + 1 {
        sum.iter_mut().zip(col(ri)).for_each(|(s, x)| *s += x);
        count += 1;
        emit(&sum, count, oi);
        ri += 1;
        oi += 1;
    }
    for _ in 0..width - w {
        for ((s, x), y) in sum.iter_mut().zip(col(ri)).zip(col(li)) {
            *s += x;
            *s -= y;
        }
        emit(&sum, count, oi);
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..half - 1 {
        sum.iter_mut().zip(col(li)).for_each(|(s, y)| *s -= y);
        count -= 1;
        emit(&sum, count, oi);
        li += 1;
        oi += 1;
    }
}

/// The column pass fed one row at a time: running sums per column, and a
/// ring of the last `w + 1` input rows for the ones leaving the window.
struct ColumnStream {
    width: usize,
    height: usize,
    w: usize,
    half: usize,
    ring: Vec<f32>,
    sum: Vec<f32>,
    out: Vec<f32>,
    count: usize,
    received: usize,
    emitted: usize,
}

impl ColumnStream {
    fn new(width: usize, height: usize, w: usize) -> Self {
        ColumnStream {
            width,
            height,
            w,
            half: (w + 2) / 2,
            ring: vec![0f32; (w + 1) * width],
            sum: vec![0f32; width],
            out: Vec::with_capacity(width * ((w + 2) / 2 + 1)),
            count: 0,
            received: 0,
            emitted: 0,
        }
    }

    fn slot(&self, r: usize) -> std::ops::Range<usize> {
        let s = r % (self.w + 1);
        s * self.width..(s + 1) * self.width
    }

    /// Feeds input row `received`; returns the index of the first output
    /// row completed by it and those rows (none, one, or at the last input
    /// also the tail), concatenated.
    #[inline(always)]
    fn push(&mut self, line: &[f32]) -> (usize, &[f32]) {
        let first = self.emitted;
        self.out.clear();
        let ri = self.received;
        let slot = self.slot(ri);
        self.ring[slot].copy_from_slice(line);
        if ri < self.half - 1 {
            self.sum.iter_mut().zip(line).for_each(|(s, x)| *s += x);
            self.count += 1;
        } else if ri < self.w {
            self.sum.iter_mut().zip(line).for_each(|(s, x)| *s += x);
            self.count += 1;
            self.emit();
        } else {
            let old = &self.ring[self.slot(ri - self.w)];
            for ((s, x), y) in self.sum.iter_mut().zip(line).zip(old) {
                *s += x;
                *s -= y;
            }
            self.emit();
        }
        self.received += 1;
        if self.received == self.height {
            for li in self.height - self.w..self.height - self.w + self.half - 1 {
                let old = &self.ring[self.slot(li)];
                self.sum.iter_mut().zip(old).for_each(|(s, y)| *s -= y);
                self.count -= 1;
                self.emit();
            }
        }
        (first, &self.out)
    }

    #[inline(always)]
    fn emit(&mut self) {
        let c = self.count as f32;
        self.out.extend(self.sum.iter().map(|s| s / c));
        self.emitted += 1;
    }
}

/// Gradient-based quality of the 64×64 image, 0–100.
fn quality(a: &[[f32; 64]; 64]) -> u8 {
    let mut sum: i64 = 0;
    let step = |u: f32, v: f32| ((((u - v) * 100.0) / 255.0) as i32).unsigned_abs() as i64;
    for (upper, lower) in a.iter().zip(&a[1..]) {
        for (u, v) in upper.iter().zip(lower) {
            sum += step(*u, *v);
        }
    }
    for row in a {
        for j in 0..63 {
            sum += step(row[j], row[j + 1]);
        }
    }
    (sum / 90).min(100) as u8
}

/// The 16×64 DCT matrix, frequencies 1..16 (the DC row skipped).
static DCT: LazyLock<Box<[[f32; 64]; 16]>> = LazyLock::new(|| {
    let scale = (2.0f64 / 64.0).sqrt() as f32;
    let mut d = Box::new([[0f32; 64]; 16]);
    for (i, row) in d.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let arg = std::f64::consts::PI / 2.0 / 64.0 * (i + 1) as f64 * (2 * j + 1) as f64;
            *v = (scale as f64 * arg.cos()) as f32;
        }
    }
    d
});

/// B = D · A · Dᵀ, each entry a sequential f32 sum in index order.
// Index loops mirror the matrix formulas; the summation order is the contract.
#[allow(clippy::needless_range_loop)]
fn dct_16(a: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    let d = &**DCT;
    let mut t = [[0f32; 64]; 16];
    for i in 0..16 {
        for j in 0..64 {
            let mut s = 0f32;
            for k in 0..64 {
                s += d[i][k] * a[k][j];
            }
            t[i][j] = s;
        }
    }
    let mut b = [[0f32; 16]; 16];
    for i in 0..16 {
        for j in 0..16 {
            let mut s = 0f32;
            for k in 0..64 {
                s += t[i][k] * d[j][k];
            }
            b[i][j] = s;
        }
    }
    b
}

/// Bits set where B exceeds its lower median (the 128th smallest value).
fn threshold(b: &[[f32; 16]; 16]) -> PdqHash {
    let mut v: Vec<f32> = b.iter().flatten().copied().collect();
    v.sort_unstable_by(f32::total_cmp);
    let median = v[127];
    let mut w = [0u16; 16];
    for (i, row) in b.iter().enumerate() {
        for (j, x) in row.iter().enumerate() {
            if *x > median {
                w[i] |= 1 << j;
            }
        }
    }
    PdqHash(w)
}

/// B′ for a dihedral transform: sign flips of odd-frequency (even-index)
/// rows/columns and transposition, no pixels touched.
fn transform(b: &[[f32; 16]; 16], t: Dihedral) -> [[f32; 16]; 16] {
    let mut out = [[0f32; 16]; 16];
    for i in 0..16 {
        for j in 0..16 {
            let x = b[i][j];
            let (even_i, even_j, odd_sum) = (i % 2 == 0, j % 2 == 0, (i + j) % 2 == 1);
            match t {
                Dihedral::Original => out[i][j] = x,
                Dihedral::Rotate90 => out[j][i] = if even_j { -x } else { x },
                Dihedral::Rotate180 => out[i][j] = if odd_sum { -x } else { x },
                Dihedral::Rotate270 => out[j][i] = if even_i { -x } else { x },
                Dihedral::FlipX => out[i][j] = if even_i { -x } else { x },
                Dihedral::FlipY => out[i][j] = if even_j { -x } else { x },
                Dihedral::FlipPlus1 => out[j][i] = x,
                Dihedral::FlipMinus1 => out[j][i] = if odd_sum { -x } else { x },
            }
        }
    }
    out
}

/// The literal, slow form of the pipeline, kept as the oracle that the
/// optimised column pass must match exactly.
pub mod reference {
    use super::*;

    /// Jarosz filter exactly as the reference loops it: every pass strided.
    pub fn downsample_64(luma: &mut [f32], width: usize, height: usize) -> Box<[[f32; 64]; 64]> {
        let (wx, wy) = (window(width), window(height));
        let mut tmp = vec![0f32; luma.len()];
        for _ in 0..2 {
            for r in 0..height {
                let s = r * width;
                box_1d(&luma[s..s + width], &mut tmp[s..s + width], width, 1, wx);
            }
            for c in 0..width {
                box_1d(&tmp[c..], &mut luma[c..], height, width, wy);
            }
        }
        let mut a = Box::new([[0f32; 64]; 64]);
        for (i, out_row) in a.iter_mut().enumerate() {
            let r = (((i as f64 + 0.5) * height as f64) / 64.0) as usize;
            for (j, v) in out_row.iter_mut().enumerate() {
                let c = (((j as f64 + 0.5) * width as f64) / 64.0) as usize;
                *v = luma[r * width + c];
            }
        }
        a
    }

    /// PDQ hash and quality through [`downsample_64`].
    pub fn pdq_luma(mut luma: Vec<f32>, width: usize, height: usize) -> (PdqHash, u8) {
        if width < 5 || height < 5 {
            return (PdqHash::default(), 0);
        }
        let a = downsample_64(&mut luma, width, height);
        (threshold(&dct_16(&a)), quality(&a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random pixels (xorshift), for shapes the
    /// fixtures do not cover.
    fn noise(w: usize, h: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..w * h * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn fast_column_pass_equals_the_literal_reference() {
        for (w, h) in [
            (5, 5),
            (64, 64),
            (65, 63),
            (127, 129),
            (300, 200),
            (1001, 257),
            (129, 700),
        ] {
            let rgb = noise(w, h, (w * 7919 + h) as u64);
            let luma = luma_from_rgb8(&rgb);
            let fast = pdq_luma(luma.clone(), w, h, false);
            let from_rgb = pdq_rgb8(&rgb, w, h, false);
            let (hash, quality) = reference::pdq_luma(luma, w, h);
            assert_eq!((fast.hash, fast.quality), (hash, quality), "{w}x{h}");
            assert_eq!(
                (from_rgb.hash, from_rgb.quality),
                (hash, quality),
                "{w}x{h} from RGB"
            );
        }
    }

    #[test]
    fn tiny_images_hash_to_zero() {
        let p = pdq_rgb8(&noise(4, 100, 1), 4, 100, true);
        assert_eq!((p.hash, p.quality), (PdqHash::default(), 0));
    }

    #[test]
    fn hex_round_trip_and_distance() {
        let s = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let h: PdqHash = s.parse().unwrap();
        assert_eq!(h.to_string(), s);
        assert_eq!(h.0[15], 0xf8f8);
        assert_eq!(h.distance(&h), 0);
        let mut other = h;
        other.0[0] ^= 0b101;
        assert_eq!(h.distance(&other), 2);
        assert!("xyz".parse::<PdqHash>().is_err());
        assert_eq!(&h.to_bytes()[..2], &[0xf8, 0xf8]);
    }

    /// The dihedral hashes describe the transformed pixels: rotating a
    /// 64×64 image (no filtering, no resampling) and hashing it gives the
    /// corresponding dihedral hash, up to float summation order near the
    /// median. Exactness is checked against the reference in tests/pdq.
    #[test]
    fn dihedral_hashes_match_transformed_pixels() {
        let n = 64;
        let px = |x: usize, y: usize| -> [u8; 3] {
            let v = ((x * 3 + y * 5) % 256) as u8
                ^ if (x / 9 + y / 13).is_multiple_of(2) {
                    0
                } else {
                    0x5a
                };
            [v, v / 2, 255 - v]
        };
        let render = |at: &dyn Fn(usize, usize) -> [u8; 3]| -> Vec<u8> {
            (0..n)
                .flat_map(|y| (0..n).flat_map(move |x| at(x, y)))
                .collect()
        };
        let p = pdq_rgb8(&render(&px), n, n, true);
        assert_eq!(p.hash.norm(), 128);
        let d = p.dihedral.unwrap();
        assert_eq!(d[0], p.hash);
        // Rotate 90° counter-clockwise: new(x, y) = old(n-1-y, x); then
        // mirror left to right.
        let r = pdq_rgb8(&render(&|x, y| px(n - 1 - y, x)), n, n, false);
        assert!(
            r.hash.distance(&d[1]) <= 4,
            "rot90: {} bits",
            r.hash.distance(&d[1])
        );
        let f = pdq_rgb8(&render(&|x, y| px(n - 1 - x, y)), n, n, false);
        assert!(
            f.hash.distance(&d[5]) <= 4,
            "flipy: {} bits",
            f.hash.distance(&d[5])
        );
        assert!(f.hash.distance(&p.hash) > 32);
    }
}
