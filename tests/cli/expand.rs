//! Looking inside files: archive members as child items, matched like
//! files, recorded after their container; hostile archives failing only
//! themselves. The archives are written by Python's standard library
//! (zipfile, tarfile, gzip), an outside writer; the oracle for each
//! member is the bytes it was made from.

use std::path::Path;
use std::process::Command;

use std::time::Duration;

use crate::testenv::*;

/// Runs `fixtures/archives/make.py` (Python's standard library only).
pub(crate) fn make(args: &[&str]) {
    let o = Command::new("python3")
        .arg(repo().join("fixtures/archives/make.py"))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "python: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A picture no other test uses: smooth bands and a few shapes, so PDQ
/// has something to see (`seed` changes it).
pub(crate) fn picture(w: u32, h: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let band = ((fx * 6.0 + fy * 3.0 + seed as f32).sin() * 120.0 + 128.0) as u8;
        let disc = ((fx - 0.3).powi(2) + (fy - 0.6).powi(2) < 0.04) as u8 * 200;
        image::Rgb([
            band,
            disc.max(band / 2),
            ((fx * fy * 255.0) as u8) ^ (seed as u8),
        ])
    })
}

pub(crate) fn png(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The set `known` (alert): a scan of `originals`, imported (written
/// beside `ev`'s tree).
pub(crate) fn known_set(ev: &Evidence, originals: &Evidence) -> std::path::PathBuf {
    let known_log = ev.out("known.jsonl");
    let o = scan(originals.root(), &["-q", "-o", s(&known_log)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let set = ev.out("known.tset");
    let mut cmd = triage();
    cmd.args(["hashset", "import", "-q", "--name", "known", "-o"])
        .arg(&set)
        .arg(&known_log);
    let o = run(cmd, Duration::from_secs(60));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    set
}

/// A zip holding an exact copy (stored) and a resized copy (deflated) of
/// two known pictures: each member is an entry after the zip, with its
/// container, offset and CRC, and matches the set built from the
/// originals (exactly, and by PDQ distance); the next file comes after
/// the zip's members.
#[test]
fn a_zips_members_are_matched_and_recorded_after_it() {
    let ev = Evidence::new();
    let originals = Evidence::new();
    let (a, b) = (picture(320, 240, 1), picture(300, 300, 5));
    originals.file("a.png", png(&a)).file("b.png", png(&b));
    let small = image::imageops::resize(&b, 150, 150, image::imageops::FilterType::Triangle);
    let (a_png, small_png) = (png(&a), png(&small));
    let work = ev.out("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("a.png"), &a_png).unwrap();
    std::fs::write(work.join("small.png"), &small_png).unwrap();
    ev.dir("zz");
    ev.file("zz/after.txt", "after the zip's members");
    make(&["photos", s(&ev.path(b"photos.zip")), s(&work)]);
    let set = known_set(&ev, &originals);

    let o = scan(ev.root(), &["-q", "--hashset", s(&set)]);
    assert_eq!(code(&o), 1, "matches found: {}", stderr(&o));
    let got = entries(&o.stdout);
    let paths: Vec<&str> = got.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "photos.zip",
            "photos.zip!DCIM/a.png",
            "photos.zip!DCIM/b small.png",
            "photos.zip!notes.txt",
            "zz/after.txt"
        ],
        "members right after their container, in its order; no directory entry"
    );
    let zip = entry(&got, "photos.zip");
    assert_eq!(zip["type"], "zip");
    assert_eq!(zip["expanded"], "zip");
    let exact = entry(&got, "photos.zip!DCIM/a.png");
    assert_eq!(exact["sha256"], sha256_hex(&a_png));
    assert_eq!(exact["size"], a_png.len());
    assert_eq!(exact["within"]["parent"], "photos.zip");
    assert_eq!(exact["within"]["member"], "DCIM/a.png");
    assert_eq!(exact["within"]["container"], "zip");
    assert_eq!(exact["within"]["depth"], 1);
    assert_eq!(exact["within"]["crc32"], exact["within"]["crc32_read"]);
    // Stored: its bytes are in the zip at the recorded offset.
    let bytes = std::fs::read(ev.path(b"photos.zip")).unwrap();
    let at = exact["within"]["offset"].as_u64().unwrap() as usize;
    assert_eq!(&bytes[at..at + a_png.len()], &a_png[..]);
    let m = &exact["matches"][0];
    assert_eq!(
        (m["set"].as_str(), m["kind"].as_str()),
        (Some("known"), Some("alert"))
    );
    assert!(
        exact["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["alg"] == "sha256")
    );
    let resized = entry(&got, "photos.zip!DCIM/b small.png");
    assert_eq!(resized["sha256"], sha256_hex(&small_png));
    assert!(resized["within"]["offset"].is_null(), "deflated: no offset");
    let near: Vec<&serde_json::Value> = resized["matches"]
        .as_array()
        .expect("the resized copy matches")
        .iter()
        .filter(|m| m["alg"] == "pdq/1")
        .collect();
    assert!(
        !near.is_empty() && near[0]["distance"].as_u64().unwrap() <= 31,
        "{resized:#}"
    );
    let summary = records(&o.stdout).last().unwrap().clone();
    assert_eq!(summary["files_hashed"], 5);

    // The reports show the nesting; the HTML report finds a member's
    // bytes again, inside its zip, for its thumbnail.
    let log = ev.out("scan.jsonl");
    let o = scan(ev.root(), &["-q", "--hashset", s(&set), "-o", s(&log)]);
    assert_eq!(code(&o), 1);
    let html = ev.out("report.html");
    let mut cmd = triage();
    cmd.arg("report")
        .arg(&log)
        .args(["--format", "html", "--thumbnails", "-o"])
        .arg(&html);
    assert_eq!(code(&run(cmd, Duration::from_secs(60))), 0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("inside <code>photos.zip</code> (zip member)"),
        "{page}"
    );
    assert_eq!(page.matches("data:image/png;base64,").count(), 2, "{page}");
    let csv = ev.out("report.csv");
    let mut cmd = triage();
    cmd.arg("report")
        .arg(&log)
        .args(["--format", "csv", "-o"])
        .arg(&csv);
    assert_eq!(code(&run(cmd, Duration::from_secs(60))), 0);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.contains("photos.zip!DCIM/a.png,") && text.contains(",photos.zip,DCIM/a.png,zip,1,"),
        "{text}"
    );
}

/// Nesting: a zip in a zip in … six deep is looked inside to
/// `--max-depth` (4 by default), the deepest container recorded with why
/// it was not opened; a tar.gz's tar and a zip inside it are opened
/// through the decompressor; `--expand none` opens nothing.
#[test]
fn nesting_stops_at_the_depth_limit_and_streams_are_followed() {
    let ev = Evidence::new();
    make(&[
        "nested",
        s(&ev.path(b"nested.zip")),
        s(&ev.path(b"backup.tgz")),
    ]);
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    let paths: Vec<&str> = got.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "backup.tgz",
            "backup.tgz!backup.tar",
            "backup.tgz!backup.tar!x/../../escape.txt",
            "backup.tgz!backup.tar!/etc/abs.txt",
            "backup.tgz!backup.tar!inner.zip",
            "backup.tgz!backup.tar!inner.zip!in/zip.txt",
            "backup.tgz!backup.tar!hard",
            "backup.tgz!backup.tar!soft",
            "nested.zip",
            "nested.zip!level1.zip",
            "nested.zip!level1.zip!level2.zip",
            "nested.zip!level1.zip!level2.zip!level3.zip",
            "nested.zip!level1.zip!level2.zip!level3.zip!level4.zip",
        ]
    );
    let deepest = entry(
        &got,
        "nested.zip!level1.zip!level2.zip!level3.zip!level4.zip",
    );
    assert_eq!(deepest["within"]["depth"], 4);
    assert!(
        deepest["not_expanded"]["why"]
            .as_str()
            .unwrap()
            .contains("--max-depth"),
        "{deepest:#}"
    );
    let escape = entry(&got, "backup.tgz!backup.tar!x/../../escape.txt");
    assert_eq!(escape["sha256"], sha256_hex(b"up and out"));
    assert_eq!(escape["mtime"], "2023-11-14T22:13:20.000000000Z");
    assert!(!ev.out("escape.txt").exists() && !ev.path(b"../escape.txt").exists());
    let inner = entry(&got, "backup.tgz!backup.tar!inner.zip!in/zip.txt");
    assert_eq!(
        inner["sha256"],
        sha256_hex(b"inside a zip inside a tar inside gzip")
    );
    assert_eq!(inner["within"]["depth"], 3);
    let hard = entry(&got, "backup.tgz!backup.tar!hard");
    assert_eq!(
        (hard["reason"].as_str(), hard["first"].as_str()),
        (Some("hard_link"), Some("backup.tgz!backup.tar!inner.zip"))
    );
    let soft = entry(&got, "backup.tgz!backup.tar!soft");
    assert_eq!(
        (soft["reason"].as_str(), soft["target"].as_str()),
        (Some("symlink"), Some("/etc/passwd"))
    );

    // Deeper on request; nothing with --expand none.
    let o = scan(ev.root(), &["-q", "--max-depth", "8"]);
    assert!(entries(&o.stdout).iter().any(|e| e["path"]
        == "nested.zip!level1.zip!level2.zip!level3.zip!level4.zip!level5.zip!deep.txt"));
    let o = scan(ev.root(), &["-q", "--expand", "none"]);
    let got = entries(&o.stdout);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0]["not_expanded"]["why"]
            .as_str()
            .unwrap()
            .contains("--expand")
    );
    let o = scan(ev.root(), &["-q", "--expand", "rar"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("'rar' is not an expander"),
        "{}",
        stderr(&o)
    );
}

/// Hostile archives fail their members, never the scan: an
/// overlapping-entry zip (the non-recursive bomb), a gzip of zeros past
/// the member limit, a zip cut short, a member whose CRC is wrong (hashed,
/// recorded as not matching), an encrypted member (not guessed), a tar
/// whose last member is truncated.
#[test]
fn hostile_archives_fail_only_themselves() {
    let ev = Evidence::new();
    make(&["hostile", s(ev.root())]);
    let o = scan(ev.root(), &["-q", "--max-member-bytes", "10000000"]);
    assert_eq!(code(&o), 3, "done, some entries failed: {}", stderr(&o));
    let got = entries(&o.stdout);
    let error = |p: &str| {
        entry(&got, p)["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for member in ["bomb.zip!kernel.bin", "bomb.zip!kernel.bix"] {
        assert_eq!(entry(&got, member)["record"], "failed");
        assert!(
            error(member).contains("overlaps member"),
            "{}",
            error(member)
        );
    }
    let zeros = entry(&got, "zeros.gz!zeros");
    assert_eq!(zeros["record"], "failed");
    assert!(
        error("zeros.gz!zeros").contains("limit for one member"),
        "{}",
        error("zeros.gz!zeros")
    );
    assert!(zeros["bytes_read"].as_u64().unwrap() <= 10_000_000);
    let cut = entry(&got, "cut.zip!");
    assert_eq!(cut["record"], "failed");
    assert!(
        error("cut.zip!").contains("no end-of-central-directory"),
        "{}",
        error("cut.zip!")
    );
    let bad = entry(&got, "damaged.zip!stored.txt");
    assert_eq!(bad["record"], "file", "hashed though its CRC fails");
    assert_ne!(bad["within"]["crc32"], bad["within"]["crc32_read"]);
    let mut flipped = b"stored bytes ".repeat(100);
    flipped[0] ^= 0x20;
    assert_eq!(bad["sha256"], sha256_hex(&flipped));
    let good = entry(&got, "damaged.zip!deflated.txt");
    assert_eq!(good["within"]["crc32"], good["within"]["crc32_read"]);
    let secret = entry(&got, "damaged.zip!secret.txt");
    assert_eq!(secret["reason"], "encrypted");
    assert_eq!(secret["size"], 17);
    assert_eq!(
        entry(&got, "cut.tar!whole.txt")["sha256"],
        sha256_hex(&[b'w'; 700])
    );
    // A gzip stream whose trailer does not check out is hashed as it
    // decodes, each stream's trailer recorded beside what was computed
    // (the CRC-32s from Python's zlib.crc32 of the same bytes).
    let gz = entry(&got, "damaged.gz!damaged");
    assert_eq!(gz["record"], "file", "{gz:#}");
    let (one, two) = (b"first stream\n".repeat(50), b"second stream\n".repeat(50));
    assert_eq!(
        gz["sha256"],
        sha256_hex(&[one.clone(), two.clone()].concat())
    );
    let sums = gz["within"]["checksums"].as_array().unwrap();
    let sum = |name: &str| {
        let c = sums
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {gz:#}"));
        (
            c["stored"].as_str().unwrap().to_string(),
            c["computed"].as_str().unwrap().to_string(),
        )
    };
    let crc = |b: &[u8]| format!("{:08x}", crc32fast::hash(b));
    assert_eq!(sum("crc32"), (crc(&one), crc(&one)));
    assert_eq!(
        sum("isize"),
        (format!("{:08x}", one.len()), format!("{:08x}", one.len()))
    );
    let (stored, computed) = sum("crc32.2");
    assert_eq!(computed, crc(&two));
    assert_eq!(
        u32::from_str_radix(&stored, 16).unwrap(),
        crc32fast::hash(&two) ^ 0xFF
    );
    assert_eq!(sum("isize.2").0, sum("isize.2").1);
    assert_eq!(sums.len(), 4);
    assert!(
        error("cut.gz!cut").contains("cut short"),
        "{}",
        error("cut.gz!cut")
    );
    assert!(
        error("cut.tar!cut.bin").contains("truncated"),
        "{}",
        error("cut.tar!cut.bin")
    );
    // A ratio limit, when given, stops it sooner.
    let o = scan(ev.root(), &["-q", "--max-ratio", "100"]);
    let zeros = entries(&o.stdout)
        .into_iter()
        .find(|e| e["path"] == "zeros.gz!zeros")
        .unwrap();
    assert!(
        zeros["error"].as_str().unwrap().contains("--max-ratio"),
        "{zeros:#}"
    );
    // Every walked file is there too, hashed whole.
    for f in [
        "bomb.zip",
        "cut.tar",
        "cut.zip",
        "damaged.zip",
        "zeros.gz",
        "damaged.gz",
        "cut.gz",
    ] {
        assert_eq!(entry(&got, f)["record"], "file", "{f}");
    }
}

/// `verify --evidence` looks inside as the scan did: an unchanged tree
/// with an archive is unchanged; a member changed inside it is found.
#[test]
fn verify_evidence_compares_members_too() {
    let ev = Evidence::new();
    make(&["one", s(&ev.path(b"x.zip")), "first"]);
    let log = ev.out("x.jsonl");
    assert_eq!(code(&scan(ev.root(), &["-q", "-o", s(&log)])), 0);
    let verify = |ev: &Evidence| {
        let mut cmd = triage();
        cmd.args(["verify", "--evidence"]).arg(ev.root()).arg(&log);
        run(cmd, Duration::from_secs(60))
    };
    let o = verify(&ev);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    make(&["one", s(&ev.path(b"x.zip")), "other"]);
    let o = verify(&ev);
    assert_ne!(code(&o), 0);
    assert!(stdout(&o).contains("x.zip!a.txt"), "{}", stdout(&o));
}

/// A scan killed among a zip's members resumes to the same records as an
/// uninterrupted one: the zip is looked inside again and only the members
/// the log lacks are written.
#[test]
fn a_scan_cut_among_members_resumes_to_the_same_records() {
    let ev = Evidence::new();
    make(&[
        "nested",
        s(&ev.path(b"a nested.zip")),
        s(&ev.path(b"b backup.tgz")),
    ]);
    ev.file("c after.txt", "after");
    let full = ev.out("full.jsonl");
    assert_eq!(code(&scan(ev.root(), &["-q", "-o", s(&full)])), 0);
    let want = crate::audit::entry_lines(&full);
    let text = std::fs::read_to_string(&full).unwrap();
    // Cut after each line from the zip's first member on to the tar's.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let first_member = lines
        .iter()
        .position(|l| l.contains("a nested.zip!"))
        .unwrap();
    let mut cuts = 0;
    for keep in first_member..lines.len() - 2 {
        let log = ev.out(&format!("cut-{keep}.jsonl"));
        std::fs::write(&log, lines[..keep].concat()).unwrap();
        let mut cmd = triage();
        cmd.args(["scan", "-q", "--resume"]).arg(&log);
        let o = run(cmd, Duration::from_secs(60));
        assert_eq!(code(&o), 0, "cut at line {keep}: {}", stderr(&o));
        assert_eq!(crate::audit::entry_lines(&log), want, "cut at line {keep}");
        cuts += 1;
    }
    assert!(cuts >= 8, "{cuts} cuts");
}

/// bzip2, xz and zstd streams (a tar inside the zstd one) and zip members
/// compressed with bzip2, LZMA (Python's zipfile), xz and zstd (by hand):
/// each content has the digests of the bytes it was made from.
#[test]
fn every_compression_decodes_to_the_bytes_it_was_made_from() {
    if !have("zstd") {
        crate::skip::skip("the zstd command is not installed (apt-get install zstd)");
        return;
    }
    let ev = Evidence::new();
    let orig = ev.out("orig");
    std::fs::create_dir_all(&orig).unwrap();
    make(&["streams", s(ev.root()), s(&orig)]);
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    for (path, original) in [
        ("a.txt.bz2!a.txt", "a.txt"),
        ("b.log.xz!b.log", "b.log"),
        ("c.tar.zst!c.tar!inside/zstd.txt", "zstd in tar.txt"),
        ("methods.zip!bzip2.txt", "bzip2.txt"),
        ("methods.zip!lzma.txt", "lzma.txt"),
        ("more methods.zip!xz.txt", "xz.txt"),
        ("more methods.zip!zstd.txt", "zstd.txt"),
    ] {
        let want = std::fs::read(orig.join(original)).unwrap();
        let e = entry(&got, path);
        assert_eq!(e["sha256"], sha256_hex(&want), "{path}");
        assert_eq!(e["size"], want.len(), "{path}");
    }
    if have("7z") {
        let want = std::fs::read(orig.join("deflate64.txt")).unwrap();
        let e = entry(&got, "deflate64.zip!deflate64.txt");
        assert_eq!(
            e["sha256"],
            sha256_hex(&want),
            "deflate64 (7z -mm=Deflate64)"
        );
    } else {
        crate::skip::skip("7z is not installed (apt-get install p7zip-full): the deflate64 member");
    }
    for container in ["a.txt.bz2", "b.log.xz", "c.tar.zst"] {
        assert_eq!(
            entry(&got, container)["expanded"],
            entry(&got, container)["type"],
            "{container}"
        );
    }
}

/// An archive given as the evidence (a phone extraction's tar or zip) is
/// scanned without unpacking: its members are entries with their names
/// and times, and the per-file budget (`--max-expand-bytes`) does not cut
/// the evidence itself short.
#[test]
fn an_archive_given_as_the_evidence_is_scanned_without_unpacking() {
    let ev = Evidence::new();
    make(&[
        "nested",
        s(&ev.path(b"nested.zip")),
        s(&ev.path(b"extraction.tgz")),
    ]);
    let o = scan(
        &ev.path(b"extraction.tgz"),
        &["-q", "--max-expand-bytes", "100"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    let member = entry(&got, "extraction.tgz!extraction.tar!inner.zip!in/zip.txt");
    assert_eq!(
        member["sha256"],
        sha256_hex(b"inside a zip inside a tar inside gzip")
    );
    let escape = entry(&got, "extraction.tgz!extraction.tar!x/../../escape.txt");
    assert_eq!(escape["mtime"], "2023-11-14T22:13:20.000000000Z");
    // The same file inside a tree has the per-file budget.
    let o = scan(ev.root(), &["-q", "--max-expand-bytes", "100"]);
    let got = entries(&o.stdout);
    assert!(
        entry(&got, "extraction.tgz!extraction.tar")["error"]
            .as_str()
            .unwrap()
            .contains("--max-expand-bytes"),
        "{got:#?}"
    );
}

pub(crate) fn jpeg(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// An EXIF thumbnail is a member of its picture (`!exif-thumbnail`, read
/// where it lies), hashed and matched like a picture; one whose PDQ is
/// far from its picture's (the picture was replaced or edited) is flagged.
/// exiftool, an outside reader, extracts the same thumbnail bytes.
#[test]
fn exif_thumbnails_are_members_and_a_replaced_picture_is_flagged() {
    let ev = Evidence::new();
    // Another picture: other bands, turned upside down (PDQ sees the
    // difference; two seeds of `picture` alone are near each other).
    let (main, other) = (
        picture(480, 360, 2),
        image::imageops::rotate180(&picture(480, 360, 9)),
    );
    let work = ev.out("work");
    std::fs::create_dir_all(&work).unwrap();
    let thumb = |img: &image::RgbImage| {
        jpeg(&image::imageops::resize(
            img,
            160,
            120,
            image::imageops::FilterType::Triangle,
        ))
    };
    std::fs::write(work.join("main.jpg"), jpeg(&main)).unwrap();
    std::fs::write(work.join("own.jpg"), thumb(&main)).unwrap();
    std::fs::write(work.join("other.jpg"), thumb(&other)).unwrap();
    let w = |n: &str| work.join(n);
    make(&[
        "exif",
        s(&ev.path(b"kept.jpg")),
        s(&w("main.jpg")),
        s(&w("own.jpg")),
    ]);
    make(&[
        "exif",
        s(&ev.path(b"replaced.jpg")),
        s(&w("main.jpg")),
        s(&w("other.jpg")),
    ]);
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    let kept = entry(&got, "kept.jpg!exif-thumbnail");
    let own = std::fs::read(w("own.jpg")).unwrap();
    assert_eq!(kept["sha256"], sha256_hex(&own));
    assert_eq!(kept["type"], "jpeg");
    assert_eq!(kept["within"]["container"], "exif");
    let at = kept["within"]["offset"].as_u64().unwrap() as usize;
    let bytes = std::fs::read(ev.path(b"kept.jpg")).unwrap();
    assert_eq!(&bytes[at..at + own.len()], &own[..]);
    assert_eq!(kept["within"]["pdq_differs"], false, "{kept:#}");
    let replaced = entry(&got, "replaced.jpg!exif-thumbnail");
    assert_eq!(replaced["within"]["pdq_differs"], true, "{replaced:#}");
    assert!(replaced["within"]["pdq_distance"].as_u64().unwrap() > 31);
    assert_eq!(entry(&got, "replaced.jpg")["expanded"], "exif");
    if have("exiftool") {
        let o = Command::new("exiftool")
            .args(["-b", "-ThumbnailImage"])
            .arg(ev.path(b"kept.jpg"))
            .output()
            .unwrap();
        assert_eq!(
            sha256_hex(&o.stdout),
            kept["sha256"].as_str().unwrap(),
            "exiftool's thumbnail"
        );
    } else {
        crate::skip::skip("exiftool is not installed (apt-get install libimage-exiftool-perl)");
    }
}

/// 7z archives written by p7zip with every method it offers, solid and
/// not, headers compressed and plain: each member has the digests of the
/// file `7z x` extracts from the same archive (the outside reader), its
/// stored CRC-32 equal to the one computed. Encryption is recorded, never
/// guessed; PPMd (not decoded here) fails its members naming it; a byte
/// changed in stored data is hashed and shows in its CRC; a cut archive
/// fails its listing.
#[test]
fn seven_zip_members_are_what_7z_extracts() {
    if !have("7z") {
        crate::skip::skip("the 7z command is not installed (apt-get install p7zip-full)");
        return;
    }
    let ev = Evidence::new();
    let src = ev.out("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..12u32 {
        let len = (i as usize * 3_797) % 20_000;
        let bytes: Vec<u8> = if i % 2 == 0 {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        } else {
            format!("text file {i}, ").repeat(len / 14).into_bytes()
        };
        let dir = if i % 3 == 0 {
            src.join("sub")
        } else {
            src.clone()
        };
        std::fs::write(dir.join(format!("f{i}.bin")), bytes).unwrap();
    }
    // An x86-looking file, for the BCJ filters: calls and jumps.
    let x86: Vec<u8> = (0..6_000u32)
        .flat_map(|i| [0xE8, i as u8, (i >> 8) as u8, 0, 0, 0x90, 0xE9, 3, 0, 0, 0])
        .collect();
    std::fs::write(src.join("prog.exe"), x86).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    let seven = |name: &str, args: &[&str]| {
        let o = Command::new("7z")
            .args(["a", "-bd", "-t7z"])
            .args(args)
            .arg(ev.path(name.as_bytes()))
            .arg(".")
            .current_dir(&src)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "7z {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let plain: &[(&str, &[&str])] = &[
        ("lzma2-solid.7z", &[]),
        ("lzma2-files.7z", &["-ms=off"]),
        ("lzma-plain-header.7z", &["-m0=LZMA", "-mhc=off"]),
        ("bzip2.7z", &["-m0=BZip2"]),
        ("deflate.7z", &["-m0=Deflate"]),
        ("deflate64.7z", &["-m0=Deflate64"]),
        ("copy.7z", &["-m0=Copy"]),
        ("bcj.7z", &["-mf=BCJ"]),
        ("bcj2.7z", &["-mf=BCJ2"]),
        ("delta.7z", &["-mf=Delta:4"]),
    ];
    for (name, args) in plain {
        seven(name, args);
    }
    seven("ppmd.7z", &["-m0=PPMd"]);
    seven("secret.7z", &["-pSecret"]);
    seven("hidden.7z", &["-pSecret", "-mhe=on"]);
    // A byte changed inside a stored member; a copy cut in half.
    let copy = std::fs::read(ev.path(b"copy.7z")).unwrap();
    let mut damaged = copy.clone();
    let at = copy.windows(12).position(|w| w == b"text file 1,").unwrap();
    damaged[at] ^= 0x20;
    std::fs::write(ev.path(b"damaged.7z"), &damaged).unwrap();
    std::fs::write(ev.path(b"cut.7z"), &copy[..copy.len() / 2]).unwrap();

    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 3, "done, some entries failed: {}", stderr(&o));
    let got = entries(&o.stdout);
    for (name, _) in plain {
        let out = ev.out(&format!("x-{name}"));
        let x = Command::new("7z")
            .args(["x", "-bd", "-y"])
            .arg(format!("-o{}", out.display()))
            .arg(ev.path(name.as_bytes()))
            .output()
            .unwrap();
        assert!(x.status.success(), "7z x {name}");
        let mut want = Vec::new();
        let mut stack = vec![out.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&out).unwrap().to_str().unwrap().to_string();
                    want.push((
                        format!("{name}!{rel}"),
                        sha256_hex(&std::fs::read(&p).unwrap()),
                    ));
                }
            }
        }
        want.sort();
        let mut have: Vec<(String, String)> = got
            .iter()
            .filter(|e| e["path"].as_str().unwrap().starts_with(&format!("{name}!")))
            .map(|e| {
                assert_eq!(e["record"], "file", "{e:#}");
                if e["size"] != 0 {
                    assert_eq!(e["within"]["crc32"], e["within"]["crc32_read"], "{e:#}");
                }
                assert_eq!(e["within"]["container"], "7z");
                (
                    e["path"].as_str().unwrap().to_string(),
                    e["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        have.sort();
        assert_eq!(have.len(), 14, "{name}: {have:?}");
        assert_eq!(have, want, "{name}");
    }
    let member = |p: &str| entry(&got, p);
    assert_eq!(member("secret.7z!f1.bin")["reason"], "encrypted");
    assert_eq!(
        member("secret.7z!empty")["record"],
        "file",
        "an empty file holds nothing to hide"
    );
    assert!(
        member("hidden.7z!")["error"]
            .as_str()
            .unwrap()
            .contains("encrypted (7z -mhe)"),
        "{:#}",
        member("hidden.7z!")
    );
    assert!(
        member("ppmd.7z!f1.bin")["error"]
            .as_str()
            .unwrap()
            .contains("PPMd"),
        "{:#}",
        member("ppmd.7z!f1.bin")
    );
    let bad = member("damaged.7z!f1.bin");
    assert_eq!(bad["record"], "file", "hashed though its CRC fails");
    assert_ne!(bad["within"]["crc32"], bad["within"]["crc32_read"]);
    let good = member("damaged.7z!f5.bin");
    assert_eq!(good["within"]["crc32"], good["within"]["crc32_read"]);
    assert!(
        member("cut.7z!")["error"]
            .as_str()
            .unwrap()
            .contains("cut short"),
        "{:#}",
        member("cut.7z!")
    );
    // Every archive is there itself, hashed whole.
    for name in ["lzma2-solid.7z", "hidden.7z", "cut.7z", "damaged.7z"] {
        assert_eq!(member(name)["record"], "file", "{name}");
    }
}

/// A gzip file that decompresses to itself (a quine, written by
/// fixtures/archives/quine.py; `gzip -dc` is the oracle that it is one)
/// is looked inside once: its content, with the same digests, is recorded
/// and not looked inside again, saying why; the scan ends cleanly.
#[test]
fn a_gzip_quine_is_looked_inside_once() {
    let ev = Evidence::new();
    let q = ev.path(b"quine.gz");
    let o = Command::new("python3")
        .arg(repo().join("fixtures/archives/quine.py"))
        .arg(&q)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&q).unwrap();
    if have("gzip") {
        let o = Command::new("gzip").arg("-dc").arg(&q).output().unwrap();
        assert!(
            o.status.success(),
            "gzip -dc: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout, bytes, "gzip decompresses it to itself");
    } else {
        crate::skip::skip("gzip is not installed: the quine is not checked by it");
    }
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(entry(&got, "quine.gz")["expanded"], "gzip");
    let inner = &got[1];
    assert!(inner["path"].as_str().unwrap().starts_with("quine.gz!"));
    assert_eq!(inner["sha256"], sha256_hex(&bytes));
    assert_eq!(inner["within"]["depth"], 1);
    let why = inner["not_expanded"]["why"].as_str().unwrap();
    assert!(why.contains("quine"), "{why}");
    assert!(inner.get("expanded").is_none());
}

/// An NTFS volume holding a deleted `a.zip` and the `a.zip` now bearing
/// its name (libntfs-3g through fixtures/disks/ntfs_edit.c), both zips
/// with members of the same names: a scan killed among the second's
/// members resumes to the same records. (Members have no location of
/// their own; resume keys them with their walked item's, so the first
/// zip's members are not taken for the second's.)
#[test]
fn resume_tells_apart_members_of_a_deleted_and_a_live_archive_of_one_path() {
    for tool in ["mkntfs", "gcc", "pkg-config"] {
        if !have(tool) {
            crate::skip::skip(&format!(
                "{tool} is not installed (apt-get install ntfs-3g ntfs-3g-dev pkg-config gcc)"
            ));
            return;
        }
    }
    let ev = Evidence::new();
    let work = Evidence::new();
    let edit = work.path(b"ntfs_edit");
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libntfs-3g"])
        .output()
        .unwrap();
    if !flags.status.success() {
        crate::skip::skip("libntfs-3g is not installed (apt-get install ntfs-3g-dev)");
        return;
    }
    let mut gcc = Command::new("gcc");
    gcc.args(["-O1", "-o"])
        .arg(&edit)
        .arg(repo().join("fixtures/disks/ntfs_edit.c"))
        .args(String::from_utf8(flags.stdout).unwrap().split_whitespace());
    let o = gcc.output().unwrap();
    assert!(
        o.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    make(&[
        "one",
        s(&work.path(b"v1.zip")),
        "the first archive, deleted since",
    ]);
    make(&[
        "one",
        s(&work.path(b"v2.zip")),
        "the second archive, bearing its name now",
    ]);
    let img = ev.path(b"ntfs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let o = Command::new("mkntfs")
        .args(["-q", "-F", "-f"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mkntfs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The second written before the first is deleted: it takes none of
    // the first one's clusters, so both read whole.
    let o = Command::new(&edit)
        .arg(&img)
        .args(["write", "a.zip"])
        .arg(work.path(b"v1.zip"))
        .args(["write", "tmp.zip"])
        .arg(work.path(b"v2.zip"))
        .args(["rm", "a.zip", "link", "tmp.zip", "a.zip", "rm", "tmp.zip"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ntfs_edit: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let full = work.out("full.jsonl");
    let mut cmd = triage();
    cmd.args(["scan", "-q", "--no-case", "-o"])
        .arg(&full)
        .arg(&img);
    assert_eq!(code(&run(cmd, Duration::from_secs(120))), 0);
    let want = crate::audit::entry_lines(&full);
    let members = want
        .iter()
        .filter(|l| l.contains(r#""path":"a.zip!a.txt""#))
        .count();
    assert_eq!(members, 2, "both zips looked inside: {want:#?}");
    let text = std::fs::read_to_string(&full).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Cut right after each line of the family that comes second.
    let second = lines
        .iter()
        .rposition(|l| l.contains(r#""path":"a.zip","#))
        .unwrap();
    for keep in second + 1..=second + 2 {
        let log = work.out(&format!("cut-{keep}.jsonl"));
        std::fs::write(&log, lines[..keep].concat()).unwrap();
        let mut cmd = triage();
        cmd.args(["scan", "-q", "--resume"]).arg(&log);
        let o = run(cmd, Duration::from_secs(120));
        assert_eq!(code(&o), 0, "cut at line {keep}: {}", stderr(&o));
        assert_eq!(crate::audit::entry_lines(&log), want, "cut at line {keep}");
    }
}
