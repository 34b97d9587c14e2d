//! The area-average shrink before the `image_hasher` hashes, fast.
//!
//! `phash/1`, `dhash/1` and `ahash/1` are defined on `image`'s
//! `DynamicImage::thumbnail(256, 256)` of the decoded RGB picture. That
//! implementation visits each output pixel's block through per-pixel
//! accessors and took a third of a pHash scan's time (perf); this one sums
//! each block's rows into column totals once, sequentially, and gives the
//! same bytes: the same block bounds (the same `f32` arithmetic), the same
//! integer sums and rounding. Tested against `image` on awkward sizes.

/// `image`'s `resize_dimensions(width, height, max, max, false)`: the size
/// that fits `max`×`max` keeping the aspect ratio.
fn fit(width: u32, height: u32, max: u32) -> (u32, u32) {
    let ratio = f64::min(
        f64::from(max) / f64::from(width),
        f64::from(max) / f64::from(height),
    );
    let nw = ((f64::from(width) * ratio).round() as u64).max(1);
    let nh = ((f64::from(height) * ratio).round() as u64).max(1);
    (
        nw.min(u32::MAX as u64) as u32,
        nh.min(u32::MAX as u64) as u32,
    )
}

/// The output span `[lo, hi)` of input pixels for output index `i`, as
/// `image`'s `thumbnail` computes it.
fn span(i: u32, ratio: f32, len: u32) -> (u32, u32) {
    let lof = i as f32 * ratio;
    let hif = lof + ratio;
    let lo = (lof.ceil() as u32).min(len - 1);
    let hi = (hif.ceil() as u32).clamp(lo, len);
    (lo, hi)
}

/// `acc[i] += row[i]`: the whole cost of the shrink, so compiled for
/// AVX-512BW and AVX2 too and chosen at run time. 16-bit totals (blocks of
/// at most [`ROWS_16`] rows) take twice the lanes of 32-bit ones.
fn add_row<T: Copy + From<u8> + std::ops::AddAssign>(acc: &mut [T], row: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512BW, checked just above.
            return unsafe { add_row_avx512(acc, row) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { add_row_avx2(acc, row) };
        }
    }
    add_row_body(acc, row);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
fn add_row_avx512<T: Copy + From<u8> + std::ops::AddAssign>(acc: &mut [T], row: &[u8]) {
    add_row_body(acc, row);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_row_avx2<T: Copy + From<u8> + std::ops::AddAssign>(acc: &mut [T], row: &[u8]) {
    add_row_body(acc, row);
}

#[inline(always)]
fn add_row_body<T: Copy + From<u8> + std::ops::AddAssign>(acc: &mut [T], row: &[u8]) {
    for (a, &p) in acc.iter_mut().zip(row) {
        *a += T::from(p);
    }
}

/// Rows a block may span for 16-bit column totals: 257 × 255 = 65,535.
const ROWS_16: u32 = 257;

/// The block's three channel averages, rounded as `image` rounds them,
/// from the column totals of its rows.
#[inline(always)]
fn average<T: Copy + Into<u64>>(acc: &[T], left: u32, right: u32, rows: u32, out: &mut Vec<u8>) {
    // `image` sums in u32; under the decode limits (64 MP) a block holds
    // at most 2^18 pixels, far from overflowing either. One pass over the
    // block's columns for all three channels.
    let n = u64::from((right - left) * rows);
    let mut sum = [0u64; 3];
    for px in acc[left as usize * 3..right as usize * 3].chunks_exact(3) {
        for (s, &v) in sum.iter_mut().zip(px) {
            *s += v.into();
        }
    }
    for s in sum {
        out.push(((s + n / 2) / n).min(255) as u8);
    }
}

/// `DynamicImage::ImageRgb8(..).thumbnail(max, max)` of an RGB8 buffer,
/// byte for byte, for pictures larger than `max` on some side. `None` when
/// the shape would need `image`'s fractional-pixel paths (an output pixel
/// narrower than an input pixel), which a shrink never does.
pub(crate) fn thumbnail_rgb8(
    px: &[u8],
    width: u32,
    height: u32,
    max: u32,
) -> Option<image::RgbImage> {
    if width == 0 || height == 0 || px.len() != width as usize * height as usize * 3 {
        return None;
    }
    let (nw, nh) = fit(width, height, max);
    let x_ratio = width as f32 / nw as f32;
    let y_ratio = height as f32 / nh as f32;
    let cols: Vec<(u32, u32)> = (0..nw).map(|x| span(x, x_ratio, width)).collect();
    if cols.iter().any(|(l, r)| l == r) {
        return None;
    }
    let row_len = width as usize * 3;
    // u32 column totals: a block spans at most ceil(height / nh) + 1 rows,
    // and 255 × 2^24 rows would be needed to overflow (the decode limit is
    // 2^26 pixels in all).
    let mut acc = Vec::new();
    let mut acc16 = Vec::new();
    let mut out = Vec::with_capacity(nw as usize * nh as usize * 3);
    for oy in 0..nh {
        let (bottom, top) = span(oy, y_ratio, height);
        if bottom == top {
            return None;
        }
        let rows = bottom as usize..top as usize;
        let row = |y: usize| &px[y * row_len..(y + 1) * row_len];
        if top - bottom <= ROWS_16 {
            acc16.clear();
            acc16.resize(row_len, 0u16);
            for y in rows {
                add_row(&mut acc16, row(y));
            }
            for &(left, right) in &cols {
                average(&acc16, left, right, top - bottom, &mut out);
            }
        } else {
            acc.clear();
            acc.resize(row_len, 0u32);
            for y in rows {
                add_row(&mut acc, row(y));
            }
            for &(left, right) in &cols {
                average(&acc, left, right, top - bottom, &mut out);
            }
        }
    }
    image::RgbImage::from_raw(nw, nh, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_image_thumbnail_byte_for_byte() {
        let mut seed = 99u32;
        for (w, h) in [
            (300, 200),
            (257, 257),
            (1000, 7),
            (7, 1000),
            (1, 900),
            (513, 300),
            (1024, 769),
            (640, 480),
            (2999, 257),
        ] {
            let px: Vec<u8> = (0..w * h * 3)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 16) as u8
                })
                .collect();
            let img = image::RgbImage::from_raw(w, h, px.clone()).unwrap();
            let want = image::DynamicImage::ImageRgb8(img)
                .thumbnail(256, 256)
                .into_rgb8();
            let got = thumbnail_rgb8(&px, w, h, 256).expect("a shrink");
            assert_eq!(got.dimensions(), want.dimensions(), "{w}x{h}");
            assert!(got == want, "{w}x{h}: pixels differ");
        }
    }

    #[test]
    fn blocks_at_the_16_bit_edge_and_past_it_equal_image() {
        // One output row: 257 input rows a block (16-bit totals, white
        // reaches 65,535 exactly) and 258 (32-bit totals).
        for (w, h) in [(44_100u32, 257u32), (44_100, 258)] {
            for fill in [255u8, 7] {
                let px = vec![fill; (w * h * 3) as usize];
                let img = image::RgbImage::from_raw(w, h, px.clone()).unwrap();
                let want = image::DynamicImage::ImageRgb8(img)
                    .thumbnail(256, 256)
                    .into_rgb8();
                let got = thumbnail_rgb8(&px, w, h, 256).expect("a shrink");
                assert_eq!(got.dimensions(), (256, 1), "{w}x{h}");
                assert!(got == want, "{w}x{h} filled with {fill}: pixels differ");
            }
        }
    }
}
