//! PDQ conformance against Meta's reference outputs.
//!
//! `../shared/pdq-reference/expected.tsv` holds, for Meta's own test images,
//! the hash, quality and 8 dihedral hashes computed by the reference C++ core
//! (PyPI `pdqhash`) on Pillow-decoded pixels. PNG decoding is lossless and
//! identical across decoders, so PNGs must match bit for bit. JPEG decoders
//! differ by a few sample values (libjpeg-turbo vs zune-jpeg), so JPEGs must
//! be within 6 bits, and the test reports how many match exactly.
//! Skips, saying why, when `../shared` is absent (a fresh user clone).

#[path = "../support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};

use skip::skip;

use triage_core::perceptual::decode::{DecodeLimits, decode_rgb8};
use triage_core::perceptual::pdq::{PdqHash, pdq_rgb8};

struct Row {
    path: String,
    hash: PdqHash,
    quality: u8,
    dihedral: Vec<PdqHash>,
}

fn rows(file: &Path) -> Vec<Row> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                path: c[0].to_string(),
                hash: c[1].parse().unwrap(),
                quality: c[2].parse().unwrap(),
                dihedral: c[3..11].iter().map(|h| h.parse().unwrap()).collect(),
            }
        })
        .collect()
}

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pdq-reference");
    p.join("expected.tsv").exists().then_some(p)
}

fn compute(dir: &Path, row: &Row) -> triage_core::perceptual::pdq::Pdq {
    let bytes = std::fs::read(dir.join(&row.path)).unwrap();
    let img = decode_rgb8(&bytes, DecodeLimits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", row.path));
    pdq_rgb8(&img.pixels, img.width, img.height, true)
}

fn assert_exact(dir: &Path, row: &Row) {
    let got = compute(dir, row);
    assert_eq!(got.hash, row.hash, "{}", row.path);
    assert_eq!(got.quality, row.quality, "{}", row.path);
    assert_eq!(got.dihedral.unwrap().to_vec(), row.dihedral, "{}", row.path);
}

/// Our synthetic PNGs (every PNG colour mode, sizes around the filter's
/// breakpoints, the degenerate sizes) against values from the reference,
/// made by fixtures/images/make_images.py: bit-exact, on any clone.
#[test]
fn matches_the_reference_on_synthetic_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/images");
    let rows = rows(&dir.join("expected.tsv"));
    assert!(rows.len() >= 17);
    assert!(rows.iter().any(|r| r.path == "ycck-400x300.jpg"));
    for row in &rows {
        if row.path.ends_with(".png") {
            assert_exact(&dir, row);
        } else {
            // CMYK, YCCK and greyscale JPEGs: decoders differ by a few samples.
            let got = compute(&dir, row);
            let d = got.hash.distance(&row.hash);
            assert!(d <= 6, "{}: {d} bits from the reference", row.path);
            assert!(got.quality.abs_diff(row.quality) <= 2, "{}", row.path);
        }
    }
}

/// A 16-bit PNG holding the 8-bit grey fixture's values times 257 decodes
/// to exactly those 8-bit values, so its PDQ is the 8-bit file's, bit for
/// bit. (Pillow clips 16-bit values in convert('RGB'), so it cannot be the
/// reference for this one.)
#[test]
fn sixteen_bit_png_scales_to_the_same_pixels() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/images");
    let row = |name: &str| Row {
        path: name.to_string(),
        hash: PdqHash::default(),
        quality: 0,
        dihedral: Vec::new(),
    };
    let a = compute(&dir, &row("grey16-300x200.png"));
    let b = compute(&dir, &row("grey-L-300x200.png"));
    assert_eq!(a, b);
    assert_eq!(a.quality, 100);
}

#[test]
fn matches_the_reference_on_metas_test_images() {
    let Some(dir) = shared() else {
        skip("../shared/pdq-reference is absent (it ships beside the repository, not in it)");
        return;
    };
    let (mut png, mut jpeg_exact, mut jpeg, mut worst, mut worst_dih) = (0, 0, 0, 0, 0);
    for row in rows(&dir.join("expected.tsv")) {
        let bytes = std::fs::read(dir.join(&row.path)).unwrap();
        let img = decode_rgb8(&bytes, DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", row.path));
        let got = pdq_rgb8(&img.pixels, img.width, img.height, true);
        let dih = got.dihedral.unwrap();
        if row.path.ends_with(".png") {
            assert_eq!(got.hash, row.hash, "{}", row.path);
            assert_eq!(got.quality, row.quality, "{}", row.path);
            assert_eq!(dih.to_vec(), row.dihedral, "{}", row.path);
            png += 1;
        } else {
            let d = got.hash.distance(&row.hash);
            let dd = dih
                .iter()
                .zip(&row.dihedral)
                .map(|(a, b)| a.distance(b))
                .max()
                .unwrap();
            // The bound for the hash; for the dihedral hashes, Meta's
            // conformance rule for a different decoder (within 10 bits).
            assert!(d <= 6, "{}: {d} bits", row.path);
            assert!(dd <= 10, "{}: dihedral up to {dd} bits", row.path);
            worst_dih = worst_dih.max(dd);
            assert!(
                got.quality.abs_diff(row.quality) <= 2,
                "{}: quality {} vs {}",
                row.path,
                got.quality,
                row.quality
            );
            worst = worst.max(d);
            jpeg += 1;
            jpeg_exact += (d == 0) as usize;
        }
    }
    eprintln!(
        "PDQ reference: {png} PNG bit-exact (hash, quality, 8 dihedral); \
         {jpeg_exact}/{jpeg} JPEG hashes exact, worst {worst} bits, dihedral worst {worst_dih} bits"
    );
    assert!(png >= 2 && jpeg >= 20);
}

/// pHash/dHash/aHash are pinned by their tags (image_hasher 3.x, 8×8,
/// Lanczos3, LSB first). Their values on the fixtures are checked in, so a
/// dependency update that moves them fails here instead of silently
/// changing what `phash/1` means.
#[test]
fn image_hasher_hashes_are_pinned() {
    use triage_core::perceptual::{ImgHashAlg, Perceptual, PerceptualConfig, perceptual_hashes};
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let list = std::fs::read_to_string(repo.join("fixtures/images/img_hashes.txt")).unwrap();
    let config = PerceptualConfig {
        pdq: false,
        img_hashes: ImgHashAlg::ALL.to_vec(),
        ..PerceptualConfig::default()
    };
    let mut checked = 0;
    for line in list.lines() {
        let c: Vec<&str> = line.split(' ').collect();
        let (hex, tag, path) = (c[0], c[2], c[3]);
        let bytes = std::fs::read(repo.join(path)).unwrap();
        let got = perceptual_hashes(&bytes, &config).unwrap();
        let p = got.hashes.iter().find(|p| p.tag() == tag).unwrap();
        let Perceptual::Img { hash, .. } = p else {
            unreachable!()
        };
        assert_eq!(
            triage_core::hash::to_hex(hash),
            hex,
            "{tag} of {path} moved; if intended, give it a new tag, then regenerate with: \
             triage hash-image --perceptual phash,dhash,ahash fixtures/images/*.png > fixtures/images/img_hashes.txt"
        );
        checked += 1;
    }
    assert!(checked >= 15 * 3, "{checked} hashes checked");
}
