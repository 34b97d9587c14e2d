//! Pictures embedded in other files: a PDF's image objects (and, in
//! their own tests, thumbnail caches), each a child item matched like a
//! file. The containers are written by outside tools (img2pdf); the
//! oracles are the pictures they were made from and poppler's
//! `pdfimages`, an outside reader.

use std::process::Command;

use crate::expand::{jpeg, known_set, picture, png, s};
use crate::testenv::*;

/// A PDF made by img2pdf from a JPEG (stored as it is: DCTDecode) and
/// two PNGs (their pixels Flate-compressed with PNG predictors, RGB and
/// gray): the JPEG comes out with its own digests, the same bytes
/// `pdfimages -j` extracts; the PNGs' pixels come out as BMPs whose PDQ
/// is the originals' (distance 0); all three match the set built from
/// the originals.
#[test]
fn a_pdfs_pictures_are_members_matched_by_digest_and_by_pdq() {
    if !have("img2pdf") {
        crate::skip::skip("img2pdf is not installed (apt-get install img2pdf)");
        return;
    }
    let ev = Evidence::new();
    let originals = Evidence::new();
    let (a, b) = (picture(320, 240, 3), picture(200, 260, 7));
    let gray = image::DynamicImage::ImageRgb8(picture(180, 120, 11)).to_luma8();
    let mut gray_png = std::io::Cursor::new(Vec::new());
    gray.write_to(&mut gray_png, image::ImageFormat::Png)
        .unwrap();
    let (a_jpg, b_png, c_png) = (jpeg(&a), png(&b), gray_png.into_inner());
    originals
        .file("a.jpg", a_jpg.clone())
        .file("b.png", b_png.clone())
        .file("c.png", c_png.clone());
    let set = known_set(&ev, &originals);
    let o = Command::new("img2pdf")
        .arg(originals.path(b"a.jpg"))
        .arg(originals.path(b"b.png"))
        .arg(originals.path(b"c.png"))
        .arg("-o")
        .arg(ev.path(b"doc.pdf"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "img2pdf: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let o = scan(ev.root(), &["-q", "--hashset", s(&set)]);
    assert_eq!(code(&o), 1, "matches found: {}", stderr(&o));
    let got = entries(&o.stdout);
    let doc = entry(&got, "doc.pdf");
    assert_eq!(doc["type"], "pdf");
    assert_eq!(doc["expanded"], "pdf");
    let members: Vec<&serde_json::Value> = got
        .iter()
        .filter(|e| e["within"]["parent"] == "doc.pdf")
        .collect();
    let names: Vec<&str> = members
        .iter()
        .map(|e| e["within"]["member"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[0].ends_with(".jpg") && names[1].ends_with(".bmp") && names[2].ends_with(".bmp"));
    let jpg = members[0];
    assert_eq!(
        jpg["sha256"],
        sha256_hex(&a_jpg),
        "the JPEG as it was put in"
    );
    assert_eq!(jpg["type"], "jpeg");
    let bytes = std::fs::read(ev.path(b"doc.pdf")).unwrap();
    let at = jpg["within"]["offset"].as_u64().unwrap() as usize;
    assert_eq!(&bytes[at..at + a_jpg.len()], &a_jpg[..]);
    assert!(
        jpg["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["alg"] == "sha256")
    );
    for bmp in &members[1..] {
        assert_eq!(bmp["type"], "bmp", "{bmp:#}");
        let pdq: Vec<&serde_json::Value> = bmp["matches"]
            .as_array()
            .unwrap_or_else(|| panic!("the pixels match: {bmp:#}"))
            .iter()
            .filter(|m| m["alg"] == "pdq/1")
            .collect();
        assert_eq!(pdq[0]["distance"], 0, "the same pixels: {bmp:#}");
    }

    // poppler's reading: the same pictures, in the same order, and the
    // same JPEG bytes.
    if !have("pdfimages") {
        crate::skip::skip("pdfimages is not installed (apt-get install poppler-utils)");
        return;
    }
    let o = Command::new("pdfimages")
        .arg("-list")
        .arg(ev.path(b"doc.pdf"))
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    let kinds: Vec<&str> = list
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(kinds, ["image", "image", "image"], "{list}");
    let encs: Vec<&str> = list
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(8))
        .collect();
    assert_eq!(encs, ["jpeg", "image", "image"], "{list}");
    let prefix = ev.out("img");
    let o = Command::new("pdfimages")
        .arg("-j")
        .arg(ev.path(b"doc.pdf"))
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(o.status.success());
    let first = std::fs::read(format!("{}-000.jpg", prefix.display())).unwrap();
    assert_eq!(jpg["sha256"], sha256_hex(&first), "pdfimages -j's JPEG");
}
