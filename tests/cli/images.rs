//! Perceptual hashes in `triage scan` and `triage hash-image`.

use std::time::Duration;

use crate::testenv::*;

/// The reference PDQ of a fixture image, from fixtures/images/expected.tsv.
fn expected(name: &str) -> (String, u64) {
    let tsv = std::fs::read_to_string(repo().join("fixtures/images/expected.tsv")).unwrap();
    let line = tsv
        .lines()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .unwrap();
    let c: Vec<&str> = line.split('\t').collect();
    (c[1].to_string(), c[2].parse().unwrap())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("fixtures/images").join(name)).unwrap()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid PNG header claiming `w`×`h` RGB pixels, then one tiny IDAT.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let chunk = |tag: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = tag.to_vec();
        body.extend_from_slice(data);
        c.extend_from_slice(&body);
        c.extend_from_slice(&crc32(&body).to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", b""));
    png
}

/// Every image gets PDQ equal to the reference's (disguised ones too);
/// formats without a decoder, damaged and oversized images get an error on
/// their record and keep their exact digests; nothing stops the scan.
#[test]
fn scan_records_pdq_and_image_errors() {
    let ev = Evidence::new();
    ev.file("a/shapes.png", fixture("shapes-800x600.png"));
    ev.file("b/system.dll", fixture("text-400x120.png"));
    let mut truncated = fixture("noise-257x129.png");
    truncated.truncate(truncated.len() / 2);
    ev.file("c/truncated.png", truncated);
    ev.file(
        "d/phone.heic",
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic and then nothing decodable",
    );
    ev.file("e/bomb.png", png_header(100_000, 100_000));
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let got = entries(&o.stdout);

    for (path, name) in [
        ("a/shapes.png", "shapes-800x600.png"),
        ("b/system.dll", "text-400x120.png"),
    ] {
        let e = entry(&got, path);
        let p = &e["perceptual"][0];
        let (hash, quality) = expected(name);
        assert_eq!(p["tag"], "pdq/1");
        assert_eq!(p["hash"], hash.as_str(), "{path}");
        assert_eq!(p["quality"], quality, "{path}");
        assert!(e.get("perceptual_error").is_none());
    }
    assert_eq!(entry(&got, "b/system.dll")["ext_mismatch"], true);

    let kind = |p: &str| {
        entry(&got, p)["perceptual_error"]["kind"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(kind("c/truncated.png"), "corrupt");
    // libheif (heif-convert) finds it damaged; without it, no decoder.
    let heif = if have("heif-convert") {
        "corrupt"
    } else {
        "unsupported_format"
    };
    assert_eq!(kind("d/phone.heic"), heif);
    assert_eq!(entry(&got, "d/phone.heic")["type"], "heif");
    assert_eq!(kind("e/bomb.png"), "too_large");
    assert!(entry(&got, "e/bomb.png")["sha256"].is_string());

    let summary = records(&o.stdout).pop().unwrap();
    assert_eq!(summary["images_hashed"], 2);
    assert_eq!(summary["image_errors"]["too_large"], 1);

    // The CSV view carries the same values.
    let o = scan_as(&ev, "csv", &["-q"]);
    let mut rdr = csv::Reader::from_reader(&o.stdout[..]);
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let row = |path: &str| {
        rows.iter()
            .find(|r| &r[col("path")] == path)
            .unwrap()
            .clone()
    };
    let (hash, quality) = expected("shapes-800x600.png");
    assert_eq!(
        &row("a/shapes.png")[col("perceptual")],
        format!("pdq/1:{hash}:{quality}")
    );
    assert!(row("d/phone.heic")[col("perceptual_error")].starts_with(&format!("{heif}: ")));
}

#[test]
fn perceptual_can_be_turned_off_and_dihedral_on() {
    let ev = Evidence::new();
    ev.file("x.png", fixture("radial-1023x767.png"));
    let o = scan(ev.root(), &["-q", "--perceptual", "none"]);
    assert!(entries(&o.stdout)[0].get("perceptual").is_none());
    let header = &records(&o.stdout)[0];
    assert_eq!(header["perceptual"], serde_json::json!([]));

    let o = scan(ev.root(), &["-q", "--dihedral"]);
    let e = &entries(&o.stdout)[0];
    let tsv = std::fs::read_to_string(repo().join("fixtures/images/expected.tsv")).unwrap();
    let line = tsv
        .lines()
        .find(|l| l.starts_with("radial-1023x767.png\t"))
        .unwrap();
    let want: Vec<&str> = line.split('\t').skip(3).collect();
    let got: Vec<&str> = e["perceptual"][0]["dihedral"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(got, want);

    let o = scan(ev.root(), &["-q", "--perceptual", "pdq,phash,dhash,ahash"]);
    let all = entries(&o.stdout);
    let tags: Vec<&str> = all[0]["perceptual"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["pdq/1", "phash/1", "dhash/1", "ahash/1"]);

    let o = scan(ev.root(), &["-q", "--perceptual", "photodna"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("choose from pdq, phash, dhash, ahash"));
}

#[test]
fn hash_image_prints_hash_quality_tag_path() {
    let dir = repo().join("fixtures/images");
    let mut cmd = triage();
    cmd.arg("hash-image")
        .arg(dir.join("shapes-333x517.png"))
        .arg(dir.join("tiny-5x5.png"));
    let o = run(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&o), 0);
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let (h, q) = expected("shapes-333x517.png");
    assert!(
        lines[0].starts_with(&format!("{h} {q} pdq/1 ")),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("shapes-333x517.png"));
    let (h, q) = expected("tiny-5x5.png");
    assert!(lines[1].starts_with(&format!("{h} {q} pdq/1 ")));

    // A symlink named on the command line is followed (the user named it).
    let ev = Evidence::new();
    ev.symlink("link.png", dir.join("shapes-333x517.png").to_str().unwrap());
    let mut cmd = triage();
    cmd.arg("hash-image").arg(ev.path(b"link.png"));
    let o = run(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let (h, _) = expected("shapes-333x517.png");
    assert!(String::from_utf8(o.stdout).unwrap().starts_with(&h));

    ev.file("not-an-image.jpg", "hello");
    let mut cmd = triage();
    cmd.arg("hash-image").arg(ev.path(b"not-an-image.jpg"));
    let o = run(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not-an-image.jpg"));
}

/// Peak RSS of the largest child process this test process has waited for.
/// A GIF whose screen and frame claim `side` × `side` pixels in a few
/// dozen bytes: the shape of GIF decompression bombs.
fn gif_bomb(side: u16) -> Vec<u8> {
    let [lo, hi] = side.to_le_bytes();
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&[lo, hi, lo, hi, 0x80, 0, 0]); // screen, 2-colour table
    g.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    g.extend_from_slice(&[0x2c, 0, 0, 0, 0, lo, hi, lo, hi, 0]); // frame
    g.extend_from_slice(&[2, 4, 0x84, 0x8f, 0xa9, 0xcb, 0]); // LZW data
    g.push(0x3b);
    g
}

/// Hostile images: a 100,000 × 100,000 PNG header, GIF bombs (headers
/// claiming 4 and 0.1 gigapixels, and a real LZW expansion of 6 megapixels
/// from a few KB) and a truncated JPEG each end as a per-file result, and
/// the scan's peak RSS stays under 512 MB (getrusage on the child).
#[test]
fn hostile_images_fail_cleanly_in_bounded_memory() {
    let ev = Evidence::new();
    ev.file("png-bomb.png", png_header(100_000, 100_000));
    ev.file("gif-bomb.gif", gif_bomb(65_535));
    // 100 megapixels: each side within limits, the area not.
    ev.file("gif-100mp.gif", gif_bomb(10_000));
    // A real LZW expansion within the limits: a 3000 × 2000 single-colour
    // GIF from a standard encoder is a few KB for 6 megapixels.
    let flat = image::RgbaImage::from_pixel(3000, 2000, image::Rgba([40, 90, 200, 255]));
    let mut lzw = Vec::new();
    image::codecs::gif::GifEncoder::new(&mut lzw)
        .encode_frame(image::Frame::new(flat))
        .unwrap();
    assert!(lzw.len() < 24 << 10, "{} bytes", lzw.len());
    ev.file("lzw-6mp.gif", &lzw);
    let img = image::load_from_memory(&fixture("shapes-800x600.png")).unwrap();
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    jpeg.truncate(jpeg.len() * 2 / 5);
    ev.file("truncated.jpg", &jpeg);
    let mut cmd = triage();
    cmd.arg("scan")
        .arg(ev.root())
        .args(["-q", "--no-case", "--threads", "2"]);
    let (o, peak) = run_measured(cmd, Duration::from_secs(120));
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let got = entries(&o.stdout);
    let kind = |p: &str| {
        entry(&got, p)["perceptual_error"]["kind"]
            .as_str()
            .map(String::from)
    };
    assert_eq!(kind("png-bomb.png").as_deref(), Some("too_large"));
    assert_eq!(kind("gif-bomb.gif").as_deref(), Some("too_large"));
    assert_eq!(kind("gif-100mp.gif").as_deref(), Some("too_large"));
    // Expanded over 250-fold, decoded completely: a flat picture, so its
    // PDQ quality is 0 (never near-matched).
    let lzw_entry = entry(&got, "lzw-6mp.gif");
    assert_eq!(lzw_entry["image"]["width"], 3000, "{lzw_entry:#}");
    assert_eq!(lzw_entry["image"]["height"], 2000);
    assert_eq!(lzw_entry["image"]["truncated"], false);
    assert_eq!(lzw_entry["perceptual"][0]["quality"], 0);
    // A truncated JPEG is either decoded as far as it goes or refused as
    // damaged; both are recorded, and its digests are kept.
    let t = entry(&got, "truncated.jpg");
    assert!(t["md5"].is_string());
    assert!(
        t["perceptual"].is_array() || kind("truncated.jpg").as_deref() == Some("corrupt"),
        "{t:#}"
    );
    assert!(peak < 512 << 20, "peak RSS {} MiB", peak >> 20);
    eprintln!(
        "hostile images: peak RSS {} MiB; truncated JPEG: {}",
        peak >> 20,
        t.get("perceptual_error")
            .map_or("decoded".to_string(), |e| e.to_string())
    );
}

/// A JPEG of `img` with an EXIF block whose orientation tag is `orientation`.
fn jpeg_with_orientation(img: &image::DynamicImage, orientation: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    tiff.extend_from_slice(&(orientation as u32).to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The record notes the EXIF orientation and the stored size; the hash is
/// of the stored pixels either way, so both files hash alike.
#[test]
fn exif_orientation_is_recorded_not_applied() {
    let img = image::load_from_memory(&fixture("shapes-333x517.png")).unwrap();
    let ev = Evidence::new();
    ev.file("rotated.jpg", jpeg_with_orientation(&img, 6));
    let mut plain = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut plain),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    ev.file("plain.jpg", plain);
    let o = scan(ev.root(), &["-q"]);
    let got = entries(&o.stdout);
    let r = entry(&got, "rotated.jpg");
    assert_eq!(r["image"]["exif_orientation"], 6);
    assert_eq!(
        (r["image"]["width"].as_u64(), r["image"]["height"].as_u64()),
        (Some(333), Some(517))
    );
    assert_eq!(r["image"]["truncated"], false);
    let p = entry(&got, "plain.jpg");
    assert!(p["image"].get("exif_orientation").is_none());
    assert_eq!(r["perceptual"][0]["hash"], p["perceptual"][0]["hash"]);
}

/// An animated GIF: the first frame is the image's hash; with --all-frames
/// each later frame with a new picture gets its own PDQ with its index, and
/// a repeated frame does not.
#[test]
fn all_frames_hashes_distinct_frames_of_animations() {
    use image::codecs::gif::GifEncoder;
    let frame = |name: &str| {
        let img = image::load_from_memory(&fixture(name))
            .unwrap()
            .resize_exact(120, 90, image::imageops::FilterType::Triangle);
        image::Frame::new(img.into_rgba8())
    };
    let mut gif = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut gif);
        let frames = [
            frame("shapes-800x600.png"),
            frame("radial-1023x767.png"),
            frame("shapes-800x600.png"),
        ];
        enc.encode_frames(frames).unwrap();
    }
    let ev = Evidence::new();
    ev.file("anim.gif", &gif);
    let pdqs = |args: &[&str]| -> Vec<serde_json::Value> {
        let o = scan(ev.root(), args);
        assert_eq!(code(&o), 0);
        entries(&o.stdout)[0]["perceptual"]
            .as_array()
            .unwrap()
            .clone()
    };
    let first_only = pdqs(&["-q"]);
    assert_eq!(first_only.len(), 1);
    assert!(first_only[0].get("frame").is_none());
    let all = pdqs(&["-q", "--all-frames"]);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0]["hash"], first_only[0]["hash"]);
    assert_eq!(all[1]["frame"], 1);
    assert_ne!(all[1]["hash"], all[0]["hash"]);
}

/// --fast-decode decodes large JPEGs at reduced scale, says so on the
/// record, and stays near the full decode's PDQ; small JPEGs are untouched.
#[test]
fn fast_decode_is_recorded_and_close() {
    let big = image::load_from_memory(&fixture("shapes-800x600.png"))
        .unwrap()
        .resize_exact(2000, 1500, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    big.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let ev = Evidence::new();
    ev.file("big.jpg", &jpeg);
    ev.file("small.jpg", {
        let mut v = Vec::new();
        let small = image::load_from_memory(&fixture("text-400x120.png")).unwrap();
        small
            .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Jpeg)
            .unwrap();
        v
    });
    let full = entries(&scan(ev.root(), &["-q"]).stdout);
    let fast = entries(&scan(ev.root(), &["-q", "--fast-decode"]).stdout);
    let f = entry(&fast, "big.jpg");
    assert_eq!(f["image"]["decoded_scale"], 2, "{f:#}");
    assert_eq!(f["image"]["width"], 1000);
    assert!(
        entry(&full, "big.jpg")["image"]
            .get("decoded_scale")
            .is_none()
    );
    let hash = |e: &serde_json::Value| -> triage_core::perceptual::pdq::PdqHash {
        e["perceptual"][0]["hash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let d = hash(f).distance(&hash(entry(&full, "big.jpg")));
    assert!(d <= 16, "{d} bits");
    assert!(
        entry(&fast, "small.jpg")["image"]
            .get("decoded_scale")
            .is_none()
    );
    assert_eq!(
        hash(entry(&fast, "small.jpg")),
        hash(entry(&full, "small.jpg"))
    );
}

/// The PDQ of a pdq/1 entry, and the distance between two hex hashes.
fn pdq_hex(e: &serde_json::Value) -> String {
    e["perceptual"]
        .as_array()
        .unwrap_or_else(|| panic!("no perceptual hashes: {e:#}"))
        .iter()
        .find(|p| p["tag"] == "pdq/1")
        .unwrap_or_else(|| panic!("no PDQ: {e:#}"))["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

fn hamming(a: &str, b: &str) -> u32 {
    let bytes = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    bytes(a)
        .iter()
        .zip(bytes(b))
        .map(|(x, y)| (x ^ y).count_ones())
        .sum()
}

/// Pillow + pillow-heif's pixels of each (HEIF file, PNG to write): the
/// reference decoder. False (the check skipped, saying why) when
/// pillow-heif is not installed.
fn pillow_heif_pixels(pairs: &[(std::path::PathBuf, std::path::PathBuf)]) -> bool {
    let script = r#"
import sys
import pillow_heif
from PIL import Image
pillow_heif.register_heif_opener()
for src, dst in zip(sys.argv[1::2], sys.argv[2::2]):
    Image.open(src).convert("RGB").save(dst)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(script);
    for (src, dst) in pairs {
        cmd.arg(src).arg(dst);
    }
    let o = cmd.output().unwrap();
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("No module named") {
            crate::skip::skip("pillow-heif is not installed (pip install pillow pillow-heif)");
            return false;
        }
        panic!("pillow-heif: {err}");
    }
    true
}

/// HEIC (heif-enc) and AVIF (avifenc) pictures, written by Debian's
/// encoders from a known PNG, are decoded (libheif in a worker, named
/// with its version in the header) and PDQ-hashed: each hash is within a
/// few bits of the PDQ of the pixels Pillow + pillow-heif decode from the
/// same file (the reference the issue names; its libheif is a newer
/// release), and matches the set built from the PNG. A HEIC cut short
/// fails its decoding with libheif's reason, nothing else.
#[test]
fn heic_and_avif_photos_are_decoded_and_agree_with_pillow_heif() {
    for tool in ["heif-enc", "avifenc", "heif-convert"] {
        if !have(tool) {
            crate::skip::skip(&format!(
                "{tool} is not installed (apt-get install libheif-examples libavif-bin)"
            ));
            return;
        }
    }
    let ev = Evidence::new();
    let originals = Evidence::new();
    let photo = crate::expand::picture(640, 480, 31);
    originals.file("photo.png", crate::expand::png(&photo));
    let set = crate::expand::known_set(&ev, &originals);
    let src = originals.path(b"photo.png");
    let o = std::process::Command::new("heif-enc")
        .args(["-q", "90", "-o"])
        .arg(ev.path(b"IMG_0001.HEIC"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "heif-enc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = std::process::Command::new("avifenc")
        .args(["--min", "8", "--max", "24"])
        .arg(&src)
        .arg(ev.path(b"photo.avif"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "avifenc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let heic = std::fs::read(ev.path(b"IMG_0001.HEIC")).unwrap();
    ev.file("cut.heic", &heic[..heic.len() / 2]);

    // The reference: Pillow + pillow-heif's pixels of each file, as PNGs
    // triage hashes (its PDQ is bit-exact with Meta's: tests/pdq).
    let refs = Evidence::new();
    if !pillow_heif_pixels(&[
        (ev.path(b"IMG_0001.HEIC"), refs.path(b"heic.png")),
        (ev.path(b"photo.avif"), refs.path(b"avif.png")),
    ]) {
        return;
    }
    let o = scan(refs.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let reference = entries(&o.stdout);

    let o = scan(ev.root(), &["-q", "--hashset", crate::expand::s(&set)]);
    assert_eq!(code(&o), 1, "matches found: {}", stderr(&o));
    let header = &records(&o.stdout)[0];
    let features = header["build"]["features"].as_array().unwrap();
    assert!(
        features.iter().any(|f| f
            .as_str()
            .unwrap()
            .starts_with("decode:heif (heif-convert, libheif ")),
        "{features:?}"
    );
    let got = entries(&o.stdout);
    for (name, r) in [("IMG_0001.HEIC", "heic.png"), ("photo.avif", "avif.png")] {
        let e = entry(&got, name);
        assert_eq!(e["image"]["width"], 640, "{e:#}");
        assert_eq!(e["image"]["height"], 480, "{e:#}");
        let d = hamming(&pdq_hex(e), &pdq_hex(entry(&reference, r)));
        assert!(d <= 8, "{name}: {d} bits from pillow-heif's pixels");
        let m = e["matches"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} matches: {e:#}"));
        assert!(m.iter().any(|x| x["alg"] == "pdq/1"), "{e:#}");
    }
    assert_eq!(entry(&got, "IMG_0001.HEIC")["type"], "heif");
    assert_eq!(entry(&got, "photo.avif")["type"], "avif");
    let cut = entry(&got, "cut.heic");
    assert_eq!(cut["record"], "file", "its digests stand: {cut:#}");
    let err = cut["perceptual_error"].to_string();
    assert!(err.contains("libheif"), "{cut:#}");
}

/// A HEIC whose picture is a 2x2 grid of tiles (how phones store large
/// photos; fixtures/heif/grid.py puts four heif-enc pictures together, as
/// heif-enc 1.15 writes no grids) is decoded whole: the size of the grid,
/// a PDQ within a few bits of the one of Pillow + pillow-heif's pixels of
/// the same file, and a match with the set built from the picture the
/// tiles were cut from.
#[test]
fn a_heic_grid_of_tiles_decodes_whole() {
    for tool in ["heif-enc", "heif-convert"] {
        if !have(tool) {
            crate::skip::skip(&format!(
                "{tool} is not installed (apt-get install libheif-examples)"
            ));
            return;
        }
    }
    let ev = Evidence::new();
    let work = Evidence::new();
    let originals = Evidence::new();
    let photo = crate::expand::picture(640, 480, 53);
    originals.file("photo.png", crate::expand::png(&photo));
    let set = crate::expand::known_set(&ev, &originals);
    let mut tiles = Vec::new();
    for (i, (x, y)) in [(0, 0), (320, 0), (0, 240), (320, 240)]
        .into_iter()
        .enumerate()
    {
        let q = image::imageops::crop_imm(&photo, x, y, 320, 240).to_image();
        let png = work.path(format!("q{i}.png").as_bytes());
        std::fs::write(&png, crate::expand::png(&q)).unwrap();
        let heic = work.path(format!("q{i}.heic").as_bytes());
        let o = std::process::Command::new("heif-enc")
            .args(["-q", "90", "-o"])
            .arg(&heic)
            .arg(&png)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "heif-enc: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        tiles.push(heic);
    }
    let o = std::process::Command::new("python3")
        .arg(repo().join("fixtures/heif/grid.py"))
        .arg(ev.path(b"IMG_0003.HEIC"))
        .args(&tiles)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "grid.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let refs = Evidence::new();
    if !pillow_heif_pixels(&[(ev.path(b"IMG_0003.HEIC"), refs.path(b"grid.png"))]) {
        return;
    }
    let o = scan(refs.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let reference = entries(&o.stdout);
    let r = entry(&reference, "grid.png");
    assert_eq!(
        r["image"]["width"], 640,
        "pillow-heif puts the grid together: {r:#}"
    );

    let o = scan(ev.root(), &["-q", "--hashset", crate::expand::s(&set)]);
    assert_eq!(code(&o), 1, "matches found: {}", stderr(&o));
    let got = entries(&o.stdout);
    let e = entry(&got, "IMG_0003.HEIC");
    assert_eq!(e["image"]["width"], 640, "{e:#}");
    assert_eq!(e["image"]["height"], 480, "{e:#}");
    let d = hamming(&pdq_hex(e), &pdq_hex(r));
    assert!(d <= 8, "{d} bits from pillow-heif's pixels");
    let m = e["matches"]
        .as_array()
        .unwrap_or_else(|| panic!("matches: {e:#}"));
    assert!(m.iter().any(|x| x["alg"] == "pdq/1"), "{e:#}");
}

/// A phone's HEIC holds a thumbnail item and an EXIF block with its own
/// thumbnail: both come out as child items. heif-enc (`-t`) writes the
/// thumbnail item of the picture it encodes, and keeps the EXIF of the
/// JPEG it is given, whose thumbnail exiftool put there. The thumbnail
/// item decodes to the size libheif's heif-info reports, near the photo
/// in PDQ (not flagged as differing); the EXIF thumbnail has the bytes
/// exiftool extracts from the HEIC. The same for an AVIF (AV1 items).
#[test]
fn heic_and_avif_thumbnails_are_child_items() {
    for tool in ["heif-enc", "heif-info", "heif-convert", "exiftool"] {
        if !have(tool) {
            crate::skip::skip(&format!(
                "{tool} is not installed (apt-get install libheif-examples libimage-exiftool-perl)"
            ));
            return;
        }
    }
    let ev = Evidence::new();
    let work = Evidence::new();
    let photo = crate::expand::picture(640, 480, 47);
    let small = image::imageops::resize(&photo, 160, 120, image::imageops::FilterType::Triangle);
    let jpeg = |img: &image::RgbImage| {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(img)
            .unwrap();
        out
    };
    work.file("photo.jpg", jpeg(&photo));
    work.file("thumb.jpg", jpeg(&small));
    let ok = |o: std::process::Output, what: &str| {
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    ok(
        std::process::Command::new("exiftool")
            .args(["-q", "-overwrite_original", "-Make=TestCam"])
            .arg(format!(
                "-ThumbnailImage<={}",
                work.path(b"thumb.jpg").display()
            ))
            .arg(work.path(b"photo.jpg"))
            .output()
            .unwrap(),
        "exiftool",
    );
    for (name, args) in [
        ("IMG_0002.HEIC", &["-t", "200"][..]),
        ("photo.avif", &["-A", "-t", "96"][..]),
    ] {
        ok(
            std::process::Command::new("heif-enc")
                .args(["-q", "80"])
                .args(args)
                .arg("-o")
                .arg(ev.path(name.as_bytes()))
                .arg(work.path(b"photo.jpg"))
                .output()
                .unwrap(),
            "heif-enc",
        );
    }
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    for name in ["IMG_0002.HEIC", "photo.avif"] {
        assert_eq!(entry(&got, name)["expanded"], "heif");
        let info = String::from_utf8(ok(
            std::process::Command::new("heif-info")
                .arg(ev.path(name.as_bytes()))
                .output()
                .unwrap(),
            "heif-info",
        ))
        .unwrap();
        let dims = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("thumbnail: "))
            .unwrap_or_else(|| panic!("heif-info lists no thumbnail: {info}"));
        let (w, h) = dims.split_once('x').unwrap();
        let t = entry(&got, &format!("{name}!thumbnail"));
        assert_eq!(t["record"], "file", "{t:#}");
        assert_eq!(t["image"]["width"].to_string(), w, "{t:#}");
        assert_eq!(t["image"]["height"].to_string(), h, "{t:#}");
        assert_eq!(t["within"]["container"], "heif");
        assert_eq!(t["within"]["pdq_differs"], false, "{t:#}");
        assert!(pdq_hex(t).len() == 64, "{t:#}");
        let x = entry(&got, &format!("{name}!exif-thumbnail"));
        let want = ok(
            std::process::Command::new("exiftool")
                .args(["-b", "-ThumbnailImage"])
                .arg(ev.path(name.as_bytes()))
                .output()
                .unwrap(),
            "exiftool -b",
        );
        assert!(
            !want.is_empty(),
            "exiftool finds the EXIF thumbnail in {name}"
        );
        assert_eq!(x["sha256"], sha256_hex(&want), "{x:#}");
        assert_eq!(x["within"]["pdq_differs"], false, "{x:#}");
        let heic = std::fs::read(ev.path(name.as_bytes())).unwrap();
        let at = x["within"]["offset"].as_u64().unwrap() as usize;
        assert_eq!(&heic[at..at + want.len()], &want[..], "read where it lies");
    }
}

/// Pictures decode while the next file is read: with one file read at a
/// time (`--readers 1`, what a spinning disk gets) and two threads, a
/// scan of many pictures ends, every picture PDQ-hashed. (Giving the
/// reader's place back and taking it again once hung such a scan.)
#[test]
fn one_reader_at_a_time_still_decodes_pictures_in_parallel_and_ends() {
    let ev = Evidence::new();
    for i in 0..60u32 {
        ev.file(
            format!("p/{i:03}.png"),
            crate::expand::png(&crate::expand::picture(160, 120, i)),
        );
    }
    let mut cmd = triage();
    cmd.args([
        "scan",
        "-q",
        "--no-case",
        "--readers",
        "1",
        "--threads",
        "2",
    ])
    .arg(ev.root());
    let o = run(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    assert_eq!(got.len(), 60);
    assert!(
        got.iter().all(|e| e["perceptual"][0]["tag"] == "pdq/1"),
        "{got:#?}"
    );
}
