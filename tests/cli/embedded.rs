//! Pictures embedded in other files: a PDF's image objects (and, in
//! their own tests, thumbnail caches), each a child item matched like a
//! file. The containers are written by outside tools (img2pdf); the
//! oracles are the pictures they were made from and poppler's
//! `pdfimages`, an outside reader.

use std::process::Command;

use crate::expand::{jpeg, known_set, make, picture, png, s};
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

/// The real Windows thumbnail caches dissect.thumbcache ships (Vista, 7,
/// 8.1, 10, 11): every entry with data is a member, in the order and
/// with the bytes dissect.thumbcache reads (an outside reader), and every
/// header and data CRC-64 Windows wrote checks out.
#[test]
fn real_thumbnail_caches_agree_with_dissect_thumbcache_and_their_crcs() {
    let Some(dir) = std::env::var_os("TRIAGE_THUMBCACHE_SAMPLES") else {
        crate::skip::skip(
            "TRIAGE_THUMBCACHE_SAMPLES is not set (scripts/test fetches dissect.thumbcache's sample caches)",
        );
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    // dissect.thumbcache's listing: per cache file, each entry with data,
    // its hash (the u64 as Windows and Thumbcache Viewer print it) and the
    // SHA-256 of its data.
    let script = r#"
import hashlib, json, os, sys
from dissect.thumbcache.thumbcache_file import ThumbcacheFile
out = {}
root = sys.argv[1]
for d in sorted(os.listdir(root)):
    for f in sorted(os.listdir(os.path.join(root, d))):
        if not f.startswith("thumbcache_") or f == "thumbcache_idx.db":
            continue
        with open(os.path.join(root, d, f), "rb") as fh:
            tc = ThumbcacheFile(fh)
            got = []
            for e in tc.entries():
                size = e._header.DataSize
                if size == 0:
                    continue
                h = int.from_bytes(bytes.fromhex(e.hash), "little")
                got.append(["0x%016x" % h, hashlib.sha256(e.data[:size]).hexdigest()])
            out[d + "/" + f] = got
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&dir)
        .output()
        .unwrap();
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("No module named 'dissect") {
            crate::skip::skip(
                "dissect.thumbcache is not installed (pip install dissect.thumbcache)",
            );
            return;
        }
        panic!("dissect.thumbcache: {err}");
    }
    let want: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = scan(&dir, &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    let mut total = 0;
    for (file, list) in want.as_object().unwrap() {
        let ours: Vec<&serde_json::Value> = got
            .iter()
            .filter(|e| e["within"]["parent"] == file.as_str())
            .collect();
        let theirs = list.as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{file}: {ours:#?}");
        for (e, t) in ours.iter().zip(theirs) {
            assert_eq!(e["within"]["member"], t[0], "{file}");
            assert_eq!(e["sha256"], t[1], "{file} {}", t[0]);
            assert_eq!(e["within"]["container"], "thumbcache");
            let sums = e["within"]["checksums"].as_array().unwrap();
            assert_eq!(sums.len(), 2, "{e:#}");
            for c in sums {
                assert_eq!(c["stored"], c["computed"], "{file} {}: {c}", t[0]);
            }
            total += 1;
        }
        if !theirs.is_empty() {
            assert_eq!(entry(&got, file)["expanded"], "thumbcache", "{file}");
        }
    }
    assert!(total >= 234, "{total} thumbnails compared");
}

/// A synthetic `thumbcache_256.db` for each entry layout (Vista's 20,
/// Windows 7's 21, Windows 10's 32) holding thumbnails of two known
/// pictures: each is a member matched by PDQ against the set built from
/// the originals; the marker entry without data is no member; an entry
/// whose data was altered after Windows summed it is hashed and recorded
/// with both CRC-64s; an older entry's remnant past the live entries is
/// found by its signature.
#[test]
fn a_thumbnail_caches_entries_are_members_matched_and_crc_checked() {
    let ev = Evidence::new();
    let originals = Evidence::new();
    let (a, b) = (picture(640, 480, 4), picture(480, 640, 8));
    originals.file("a.png", png(&a)).file("b.png", png(&b));
    let set = known_set(&ev, &originals);
    let work = ev.out("work");
    std::fs::create_dir_all(&work).unwrap();
    let thumb = |img: &image::RgbImage, w, h| {
        image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
    };
    std::fs::write(work.join("a.jpg"), jpeg(&thumb(&a, 256, 192))).unwrap();
    std::fs::write(work.join("b.png"), png(&thumb(&b, 192, 256))).unwrap();
    for v in ["20", "21", "32"] {
        ev.dir(&format!("v{v}"));
        make(&[
            "thumbcache",
            s(&ev.path(format!("v{v}/thumbcache_256.db").as_bytes())),
            v,
            s(&work.join("a.jpg")),
            s(&work.join("b.png")),
        ]);
    }
    let o = scan(ev.root(), &["-q", "--hashset", s(&set)]);
    assert_eq!(code(&o), 1, "matches found: {}", stderr(&o));
    let got = entries(&o.stdout);
    for v in ["20", "21", "32"] {
        let db = format!("v{v}/thumbcache_256.db");
        assert_eq!(entry(&got, &db)["type"], "thumbcache");
        assert_eq!(entry(&got, &db)["expanded"], "thumbcache");
        let members: Vec<&serde_json::Value> = got
            .iter()
            .filter(|e| e["within"]["parent"] == db.as_str())
            .collect();
        let names: Vec<&str> = members
            .iter()
            .map(|e| e["within"]["member"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "0x1a2b3c4d00000000",
                "0x1a2b3c4d00000001",
                "0xbad0bad0bad0bad0",
                "0x0ddc0ffee0000001"
            ],
            "v{v}"
        );
        let bytes = std::fs::read(ev.path(db.as_bytes())).unwrap();
        for (m, file) in members.iter().zip(["a.jpg", "b.png", "", "b.png"]) {
            let sums = m["within"]["checksums"].as_array().unwrap();
            if file.is_empty() {
                // Altered: the data CRC Windows stored no longer agrees.
                assert_eq!(sums[0]["stored"], sums[0]["computed"], "{m:#}");
                assert_ne!(sums[1]["stored"], sums[1]["computed"], "{m:#}");
                continue;
            }
            let want = std::fs::read(work.join(file)).unwrap();
            assert_eq!(m["sha256"], sha256_hex(&want), "v{v} {file}");
            let at = m["within"]["offset"].as_u64().unwrap() as usize;
            assert_eq!(&bytes[at..at + want.len()], &want[..]);
            for c in sums {
                assert_eq!(c["stored"], c["computed"], "{m:#}");
            }
            let pdq = m["matches"]
                .as_array()
                .unwrap_or_else(|| panic!("a thumbnail of a known picture matches: {m:#}"));
            assert!(
                pdq.iter()
                    .any(|x| x["alg"] == "pdq/1" && x["distance"].as_u64().unwrap() <= 31),
                "{m:#}"
            );
        }
    }
}

/// A `Thumbs.db` written by libgsf (`gsf createole`, an outside OLE
/// writer) with thumbnails of two known pictures: each thumbnail is a
/// member named by its stream and the catalog's name, with the catalog's
/// time, matched by PDQ against the originals; a stream the catalog does
/// not name is a member by its stream name; a stream whose header claims
/// more than it holds fails alone. A compound file that is no Thumbs.db
/// (a Word document) is not looked inside and says nothing of it.
#[test]
fn a_thumbs_dbs_thumbnails_are_members_with_catalog_names_and_times() {
    if !have("gsf") {
        crate::skip::skip("gsf is not installed (apt-get install libgsf-bin)");
        return;
    }
    let ev = Evidence::new();
    let originals = Evidence::new();
    let (a, b) = (picture(512, 384, 6), picture(384, 512, 12));
    originals.file("a.png", png(&a)).file("b.png", png(&b));
    let set = known_set(&ev, &originals);
    let work = ev.out("work");
    std::fs::create_dir_all(&work).unwrap();
    let thumb = |img: &image::RgbImage, w, h| {
        jpeg(&image::imageops::resize(
            img,
            w,
            h,
            image::imageops::FilterType::Triangle,
        ))
    };
    std::fs::write(work.join("holiday 1.jpg"), thumb(&a, 96, 72)).unwrap();
    std::fs::write(work.join("b.jpg"), thumb(&b, 72, 96)).unwrap();
    ev.dir("pics");
    make(&[
        "thumbsdb",
        s(&ev.path(b"pics/Thumbs.db")),
        s(&work.join("holiday 1.jpg")),
        s(&work.join("b.jpg")),
    ]);
    make(&["cfbdoc", s(&ev.path(b"letter.doc"))]);
    let o = scan(ev.root(), &["-q", "--hashset", s(&set)]);
    assert_eq!(
        code(&o),
        4,
        "matches found, one entry failed: {}",
        stderr(&o)
    );
    let got = entries(&o.stdout);
    let doc = entry(&got, "letter.doc");
    assert_eq!(doc["type"], "cfb");
    assert!(
        doc["expanded"].is_null() && doc["not_expanded"].is_null(),
        "{doc:#}"
    );
    let db = entry(&got, "pics/Thumbs.db");
    assert_eq!(db["expanded"], "thumbsdb");
    let members: Vec<&serde_json::Value> = got
        .iter()
        .filter(|e| e["within"]["parent"] == "pics/Thumbs.db")
        .collect();
    let names: Vec<&str> = members
        .iter()
        .map(|e| e["within"]["member"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1/holiday 1.jpg", "2/b.jpg", "77", "88"]);
    for (m, file) in members.iter().zip(["holiday 1.jpg", "b.jpg"]) {
        let want = std::fs::read(work.join(file)).unwrap();
        assert_eq!(m["sha256"], sha256_hex(&want), "{file}");
        assert_eq!(
            m["mtime"], "2009-03-04T21:36:18.000000000Z",
            "the catalog's time"
        );
        let pdq = m["matches"]
            .as_array()
            .unwrap_or_else(|| panic!("a thumbnail of a known picture matches: {m:#}"));
        assert!(pdq.iter().any(|x| x["alg"] == "pdq/1"), "{m:#}");
    }
    assert_eq!(members[2]["record"], "file");
    assert_eq!(members[3]["record"], "failed");
    assert!(
        members[3]["error"]
            .as_str()
            .unwrap()
            .contains("does not hold a thumbnail"),
        "{:#}",
        members[3]
    );
}

/// A real Windows XP `Thumbs.db` (the sample the thumbsdb crate ships):
/// its twelve thumbnails are members in catalog order, with the bytes
/// olefile (an outside OLE reader) finds in each stream after its header,
/// and the names and times of the catalog.
#[test]
fn a_real_thumbs_db_agrees_with_olefile() {
    let Some(sample) = std::env::var_os("TRIAGE_THUMBSDB_SAMPLE") else {
        crate::skip::skip(
            "TRIAGE_THUMBSDB_SAMPLE is not set (scripts/test fetches the thumbsdb crate's sample)",
        );
        return;
    };
    let script = r#"
import datetime, hashlib, json, struct, sys
import olefile
o = olefile.OleFileIO(sys.argv[1])
c = o.openstream("Catalog").read()
at, out = struct.unpack_from("<H", c, 0)[0], []
while at + 16 <= len(c):
    n, i, ft = struct.unpack_from("<IIQ", c, at)
    name = c[at + 16:at + n].decode("utf-16-le").split("\0")[0]
    s = o.openstream(str(i)[::-1]).read()
    head, _, size = struct.unpack_from("<III", s, 0)
    t = datetime.datetime(1601, 1, 1) + datetime.timedelta(microseconds=ft // 10)
    out.append([str(i)[::-1] + "/" + name, hashlib.sha256(s[head:head + size]).hexdigest(),
                t.strftime("%Y-%m-%dT%H:%M:%S")])
    at += n
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&sample)
        .output()
        .unwrap();
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("No module named 'olefile'") {
            crate::skip::skip("olefile is not installed (pip install olefile)");
            return;
        }
        panic!("olefile: {err}");
    }
    let want: Vec<Vec<String>> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(want.len(), 12);
    let ev = Evidence::new();
    ev.file("Thumbs.db", std::fs::read(&sample).unwrap());
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    let members: Vec<&serde_json::Value> = got
        .iter()
        .filter(|e| e["within"]["parent"] == "Thumbs.db")
        .collect();
    assert_eq!(members.len(), want.len());
    for (m, w) in members.iter().zip(&want) {
        assert_eq!(m["within"]["member"], w[0].as_str());
        assert_eq!(m["sha256"], w[1].as_str(), "{}", w[0]);
        assert!(
            m["mtime"].as_str().unwrap().starts_with(&w[2]),
            "{} {}",
            m["mtime"],
            w[2]
        );
        assert_eq!(m["type"], "jpeg");
    }
}
