//! How far everyday edits move PDQ, and how far apart unrelated images are.
//!
//! For every image in the given directories with PDQ quality ≥ 50: apply
//! each transform, hash the result, and count it matched when the distance
//! to the original is ≤ 31 (Meta's threshold) — once against the original's
//! hash, once against the nearest of its 8 dihedral hashes. Then the
//! distance between every pair of distinct images, for the false-match rate.
//! Prints markdown tables (docs/perceptual.md has a run).
//!
//! cargo run --release -p triage-core --example robustness -- DIR... [--random N]
//!
//! `--random N` measures the false-match rate on N generated images
//! (random shapes on random gradients, seeded) instead of on the DIRs.
//!
//! Transforms: resize to 50% and 25% (triangle filter), JPEG re-encode at
//! quality 90 and 50, greyscale, brightness ×1.2 and ×0.8, a 2% crop (1% off
//! each side), a caption band over the bottom 12% (drawn blocks standing in
//! for text), rotation by 90°, left-right mirror.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, imageops::FilterType};
use triage_core::perceptual::pdq::{Pdq, PdqHash, pdq_rgb8};

const THRESHOLD: u32 = 31;

fn pdq(img: &RgbImage) -> Pdq {
    pdq_rgb8(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
        true,
    )
}

fn jpeg(img: &RgbImage, quality: u8) -> RgbImage {
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .encode_image(img)
        .expect("encode");
    image::load_from_memory_with_format(&buf, ImageFormat::Jpeg)
        .expect("decode")
        .into_rgb8()
}

fn scale(img: &RgbImage, f: f32) -> RgbImage {
    let map = |v: u8| ((v as f32) * f).round().clamp(0.0, 255.0) as u8;
    let mut out = img.clone();
    out.pixels_mut().for_each(|p| *p = Rgb(p.0.map(map)));
    out
}

fn caption(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    let (w, h) = out.dimensions();
    let top = h - h * 12 / 100;
    let glyph = (h / 40).max(2);
    for y in top..h {
        for x in 0..w {
            // A dark band with light blocks in a text-like rhythm.
            let in_glyph = (y - top) / glyph % 2 == 1
                && (x / glyph) % 3 != 2
                && (x / (glyph * 7)) % 5 != 4
                && y < h - glyph;
            let v = if in_glyph { 235 } else { 25 };
            out.put_pixel(x, y, Rgb([v, v, v]));
        }
    }
    out
}

type Transform = (&'static str, fn(&RgbImage) -> RgbImage);

fn transforms() -> Vec<Transform> {
    vec![
        ("resize 50%", |i| {
            image::imageops::resize(i, i.width() / 2, i.height() / 2, FilterType::Triangle)
        }),
        ("resize 25%", |i| {
            image::imageops::resize(
                i,
                (i.width() / 4).max(1),
                (i.height() / 4).max(1),
                FilterType::Triangle,
            )
        }),
        ("JPEG q90", |i| jpeg(i, 90)),
        ("JPEG q50", |i| jpeg(i, 50)),
        ("greyscale", |i| {
            DynamicImage::ImageRgb8(i.clone()).grayscale().into_rgb8()
        }),
        ("brightness +20%", |i| scale(i, 1.2)),
        ("brightness -20%", |i| scale(i, 0.8)),
        ("crop 2%", |i| {
            let (w, h) = i.dimensions();
            let (dx, dy) = (w / 100, h / 100);
            image::imageops::crop_imm(i, dx, dy, w - 2 * dx, h - 2 * dy).to_image()
        }),
        ("caption band", caption),
        ("rotate 90°", |i| image::imageops::rotate90(i)),
        ("mirror", |i| image::imageops::flip_horizontal(i)),
    ]
}

fn images(dirs: &[PathBuf]) -> Vec<(PathBuf, RgbImage)> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "png" || x == "jpg" || x == "jpeg")
            })
            .collect();
        files.sort();
        for f in files {
            if let Ok(img) = image::open(&f) {
                out.push((f, img.into_rgb8()));
            }
        }
    }
    out
}

fn min_dihedral(orig: &Pdq, h: &PdqHash) -> u32 {
    orig.dihedral.as_ref().map_or(256, |d| {
        d.iter().map(|x| x.distance(h)).min().unwrap_or(256)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args
        .iter()
        .position(|a| a == "--random")
        .unwrap_or(args.len());
    let dirs: Vec<PathBuf> = args[..split].iter().map(PathBuf::from).collect();
    let random: usize = args
        .get(split + 1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if dirs.is_empty() {
        eprintln!("usage: robustness DIR... [--random N]");
        std::process::exit(2);
    }

    let set: Vec<(PathBuf, RgbImage, Pdq)> = images(&dirs)
        .into_iter()
        .map(|(p, i)| {
            let h = pdq(&i);
            (p, i, h)
        })
        .filter(|(_, _, h)| h.quality >= 50)
        .collect();
    println!(
        "{} images with PDQ quality >= 50 from {}\n",
        set.len(),
        show(&dirs)
    );
    println!("| transform | matched at <= {THRESHOLD} | with dihedral | mean distance | max |");
    println!("|---|---|---|---|---|");
    for (name, f) in transforms() {
        let (mut plain, mut dih, mut sum, mut max) = (0, 0, 0u64, 0);
        for (_, img, orig) in &set {
            let t = pdq(&f(img));
            let d = orig.hash.distance(&t.hash);
            plain += (d <= THRESHOLD) as usize;
            dih += (min_dihedral(orig, &t.hash) <= THRESHOLD) as usize;
            sum += d as u64;
            max = max.max(d);
        }
        let n = set.len().max(1);
        println!(
            "| {name} | {:.0}% ({plain}/{n}) | {:.0}% ({dih}/{n}) | {:.1} | {max} |",
            100.0 * plain as f64 / n as f64,
            100.0 * dih as f64 / n as f64,
            sum as f64 / n as f64
        );
    }

    let pool: Vec<Pdq> = if random == 0 {
        set.iter().map(|(_, _, h)| h.clone()).collect()
    } else {
        (0..random as u64)
            .map(|k| pdq(&random_image(k)))
            .filter(|h| h.quality >= 50)
            .collect()
    };
    let (mut pairs, mut under, mut under_dih, mut min, mut min_dih) = (0u64, 0u64, 0u64, 256, 256);
    let mut hist = [0u64; 9];
    for i in 0..pool.len() {
        for j in i + 1..pool.len() {
            let d = pool[i].hash.distance(&pool[j].hash);
            let dd = min_dihedral(&pool[i], &pool[j].hash);
            pairs += 1;
            under += (d <= THRESHOLD) as u64;
            under_dih += (dd <= THRESHOLD) as u64;
            min = min.min(d);
            min_dih = min_dih.min(dd);
            hist[(d as usize / 32).min(8)] += 1;
        }
    }
    println!(
        "\nUnrelated images ({} distinct, {pairs} pairs{}): false matches at <= {THRESHOLD}: {under} \
         (with dihedral: {under_dih}); smallest distance {min} (with dihedral {min_dih}).",
        pool.len(),
        if random == 0 {
            String::new()
        } else {
            " generated".to_string()
        }
    );
    let buckets: Vec<String> = hist
        .iter()
        .enumerate()
        .map(|(k, c)| format!("{}-{}: {c}", k * 32, k * 32 + 31))
        .collect();
    println!("Distance histogram: {}", buckets.join(", "));
}

/// A 320×240 picture of random shapes on a random gradient, from a seed.
fn random_image(seed: u64) -> RgbImage {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (w, h) = (320u32, 240u32);
    let c0: [u8; 3] = [next() as u8, next() as u8, next() as u8];
    let c1: [u8; 3] = [next() as u8, next() as u8, next() as u8];
    let angle = (next() % 360) as f32 * std::f32::consts::PI / 180.0;
    let mut img = RgbImage::from_fn(w, h, |px, py| {
        let t = ((px as f32 * angle.cos() + py as f32 * angle.sin()) / 400.0 + 0.5).clamp(0.0, 1.0);
        Rgb(std::array::from_fn(|k| {
            (c0[k] as f32 * (1.0 - t) + c1[k] as f32 * t) as u8
        }))
    });
    for _ in 0..(4 + next() % 8) {
        let (cx, cy) = ((next() % w as u64) as i64, (next() % h as u64) as i64);
        let (rx, ry) = (8 + (next() % 80) as i64, 8 + (next() % 60) as i64);
        let colour = Rgb([next() as u8, next() as u8, next() as u8]);
        let ellipse = next() % 2 == 0;
        for py in (cy - ry).max(0)..(cy + ry).min(h as i64) {
            for px in (cx - rx).max(0)..(cx + rx).min(w as i64) {
                let (dx, dy) = ((px - cx) as f32 / rx as f32, (py - cy) as f32 / ry as f32);
                if !ellipse || dx * dx + dy * dy <= 1.0 {
                    img.put_pixel(px as u32, py as u32, colour);
                }
            }
        }
    }
    img
}

fn show(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| Path::new(d).display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
