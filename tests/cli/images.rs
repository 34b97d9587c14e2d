//! Perceptual hashes in `triage scan` and `triage hash-image`.

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
    assert_eq!(kind("d/phone.heic"), "unsupported_format");
    assert_eq!(entry(&got, "d/phone.heic")["type"], "heif");
    assert_eq!(kind("e/bomb.png"), "too_large");
    assert!(entry(&got, "e/bomb.png")["sha256"].is_string());

    let summary = records(&o.stdout).pop().unwrap();
    assert_eq!(summary["images_hashed"], 2);
    assert_eq!(summary["image_errors"]["too_large"], 1);

    // The CSV view carries the same values.
    let o = scan(ev.root(), &["-q", "--format", "csv"]);
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
    assert!(row("d/phone.heic")[col("perceptual_error")].starts_with("unsupported_format: "));
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

    let ev = Evidence::new();
    ev.file("not-an-image.jpg", "hello");
    let mut cmd = triage();
    cmd.arg("hash-image").arg(ev.path(b"not-an-image.jpg"));
    let o = run(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not-an-image.jpg"));
}
