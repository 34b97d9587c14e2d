//! Carving pictures from a disk image's unallocated space: an ext4 image
//! (written by mke2fs, an outside writer) whose pictures were deleted by
//! debugfs, acquired as an E01 by Debian's ewfacquire; the oracles are the
//! pictures themselves and PhotoRec, run on the same image in the same
//! test.

use std::collections::BTreeSet;
use std::process::Command;

use crate::expand::{jpeg, known_set, picture, png, s};
use crate::testenv::*;

fn encode(img: &image::RgbImage, f: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, f).unwrap();
    out.into_inner()
}

/// Writes the partition table `script` (sfdisk's input) on the disk
/// image at `raw`.
fn sfdisk(raw: &std::path::Path, script: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(raw)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script).unwrap();
    assert!(child.wait().unwrap().success(), "sfdisk {script:?}");
}

fn run_ok(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Five pictures (JPEG, PNG, GIF, BMP, WebP) deleted from an ext4 volume,
/// the volume acquired as an E01: each comes out of `p…/$Unallocated` (or
/// `$Unallocated`) as a carved member with the original's digests, named
/// by its byte on the medium, and matches the set built from the
/// originals; a picture still in use is not carved; PhotoRec, run on the
/// same volume's free space, recovers no picture triage does not.
#[test]
fn deleted_pictures_are_carved_from_unallocated_space_of_an_e01() {
    for tool in ["mke2fs", "debugfs", "ewfacquire", "photorec"] {
        if !have(tool) {
            crate::skip::skip(&format!(
                "{tool} is not installed (apt-get install e2fsprogs ewf-tools testdisk)"
            ));
            return;
        }
    }
    let ev = Evidence::new();
    let originals = Evidence::new();
    let pics: Vec<(&str, Vec<u8>)> = vec![
        ("gone.jpg", jpeg(&picture(400, 300, 21))),
        ("gone.png", png(&picture(300, 220, 22))),
        (
            "gone.gif",
            encode(&picture(120, 90, 23), image::ImageFormat::Gif),
        ),
        (
            "gone.bmp",
            encode(&picture(90, 60, 24), image::ImageFormat::Bmp),
        ),
        (
            "gone.webp",
            encode(&picture(100, 80, 25), image::ImageFormat::WebP),
        ),
        ("kept.png", png(&picture(200, 150, 26))),
    ];
    let tree = ev.out("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for (name, bytes) in &pics {
        std::fs::write(tree.join(name), bytes).unwrap();
        originals.file(name, bytes.clone());
    }
    let set = known_set(&ev, &originals);
    let raw = ev.out("disk.raw");
    run_ok(
        Command::new("mke2fs")
            .args([
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                "1024",
                "-E",
                "root_owner=0:0",
                "-d",
            ])
            .arg(&tree)
            .arg(&raw)
            .arg("4M"),
    );
    for (name, _) in pics.iter().filter(|(n, _)| n.starts_with("gone")) {
        run_ok(
            Command::new("debugfs")
                .args(["-w", "-R", &format!("rm {name}")])
                .arg(&raw),
        );
    }
    let e01 = ev.out("disk");
    run_ok(
        Command::new("ewfacquire")
            .args(["-u", "-q", "-t"])
            .arg(&e01)
            .args([
                "-f",
                "encase6",
                "-c",
                "deflate:fast",
                "-C",
                "carve-1",
                "-E",
                "ev-1",
                "-e",
                "tester",
            ])
            .arg(&raw),
    );
    let image = ev.out("disk.E01");
    let o = scan(&image, &["-q", "--hashset", s(&set)]);
    assert_eq!(code(&o), 1, "matches found: {}", stderr(&o));
    let got = entries(&o.stdout);
    let free = entry(&got, "$Unallocated");
    assert_eq!(free["expanded"], "carve", "{free:#}");
    assert_eq!(free["location"]["fs"], "unallocated", "{free:#}");
    let carved: Vec<&serde_json::Value> = got
        .iter()
        .filter(|e| e["within"]["parent"] == "$Unallocated")
        .collect();
    let raw_bytes = std::fs::read(&raw).unwrap();
    let mut ours = BTreeSet::new();
    for (name, bytes) in pics.iter().filter(|(n, _)| n.starts_with("gone")) {
        let digest = sha256_hex(bytes);
        let m = carved
            .iter()
            .find(|e| e["sha256"] == digest.as_str())
            .unwrap_or_else(|| panic!("{name} carved: {carved:#?}"));
        assert_eq!(m["within"]["container"], "carve");
        // Named by where it starts on the medium: its bytes are there.
        let member = m["within"]["member"].as_str().unwrap();
        let at = u64::from_str_radix(
            member.split('.').next().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap() as usize;
        assert_eq!(&raw_bytes[at..at + bytes.len()], &bytes[..], "{member}");
        assert!(
            m["matches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["alg"] == "sha256"),
            "{m:#}"
        );
    }
    for m in &carved {
        ours.insert(m["sha256"].as_str().unwrap().to_string());
    }
    let kept = sha256_hex(&pics[5].1);
    assert!(
        !ours.contains(&kept),
        "a picture in use is not in the free space"
    );

    // PhotoRec on the same volume's free space.
    let out = ev.out("photorec");
    std::fs::create_dir_all(&out).unwrap();
    run_ok(
        Command::new("photorec")
            .current_dir(&out)
            .arg("/d")
            .arg(out.join("r"))
            .arg("/cmd")
            .arg(&raw)
            .arg("partition_none,options,keep_corrupted_file_no,fileopt,everything,disable,jpg,enable,png,enable,gif,enable,bmp,enable,riff,enable,freespace,search"),
    );
    let mut theirs = BTreeSet::new();
    for d in std::fs::read_dir(&out).unwrap().flatten() {
        if !d.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            if f.file_name() == "report.xml" {
                continue;
            }
            theirs.insert(sha256_hex(&std::fs::read(f.path()).unwrap()));
        }
    }
    assert!(
        theirs.len() >= 2,
        "PhotoRec recovered {} pictures",
        theirs.len()
    );
    let missed: Vec<&String> = theirs.difference(&ours).collect();
    assert!(
        missed.is_empty(),
        "PhotoRec recovered pictures triage did not carve: {missed:?}"
    );

    // A scan cut among the carved pictures resumes to the same records;
    // verify --evidence carves again and finds them unchanged.
    let full = ev.out("full.jsonl");
    let o = scan(&image, &["-q", "-o", s(&full)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want = crate::audit::entry_lines(&full);
    let text = std::fs::read_to_string(&full).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let first = lines
        .iter()
        .position(|l| l.contains("\"$Unallocated!"))
        .unwrap();
    for keep in [first - 1, first, first + 2, first + 4] {
        let log = ev.out(&format!("cut-{keep}.jsonl"));
        std::fs::write(&log, lines[..keep].concat()).unwrap();
        let mut cmd = triage();
        cmd.args(["scan", "-q", "--resume"]).arg(&log);
        let o = run(cmd, std::time::Duration::from_secs(60));
        assert_eq!(code(&o), 0, "cut at line {keep}: {}", stderr(&o));
        assert_eq!(crate::audit::entry_lines(&log), want, "cut at line {keep}");
    }
    let mut cmd = triage();
    cmd.args(["verify", "--evidence"]).arg(&image).arg(&full);
    let o = run(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

/// Pictures on a disk outside every partition (before the first, written
/// into the gap partitioning tools leave, and after the last): the
/// medium's unpartitioned space is one item, `$Unpartitioned`, of the
/// size sfdisk's table leaves (the outside oracle), carved like a
/// volume's free space; each picture comes out with its own digests,
/// named by its byte on the medium.
#[test]
fn pictures_outside_the_partitions_are_carved() {
    if !have("sfdisk") {
        crate::skip::skip("sfdisk is not installed (apt-get install fdisk)");
        return;
    }
    let ev = Evidence::new();
    let raw = ev.path(b"disk.img");
    let size: u64 = 8 << 20;
    std::fs::write(&raw, vec![0u8; size as usize]).unwrap();
    sfdisk(&raw, b"label: dos\nstart=2048, size=8192, type=83\n");
    let before = jpeg(&picture(200, 150, 41));
    let after = png(&picture(160, 120, 42));
    let (at_before, at_after) = (100 * 512u64, (2048 + 8192 + 64) * 512u64);
    let mut disk = std::fs::read(&raw).unwrap();
    disk[at_before as usize..at_before as usize + before.len()].copy_from_slice(&before);
    disk[at_after as usize..at_after as usize + after.len()].copy_from_slice(&after);
    std::fs::write(&raw, &disk).unwrap();
    let o = Command::new("sfdisk").arg("-J").arg(&raw).output().unwrap();
    let table: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let in_partitions: u64 = table["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["size"].as_u64().unwrap() * 512)
        .sum();

    let o = scan(&raw, &["-q"]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let got = entries(&o.stdout);
    let out = entry(&got, "$Unpartitioned");
    assert_eq!(out["record"], "file", "{out:#}");
    assert_eq!(out["location"]["fs"], "unpartitioned");
    assert_eq!(out["size"], size - in_partitions, "{out:#}");
    assert_eq!(out["expanded"], "carve", "{out:#}");
    assert!(
        out.get("image").is_none(),
        "free space is no picture: {out:#}"
    );
    for (bytes, at, ext) in [(&before, at_before, "jpg"), (&after, at_after, "png")] {
        let name = format!("$Unpartitioned!{at:#x}.{ext}");
        let m = entry(&got, &name);
        assert_eq!(m["sha256"], sha256_hex(bytes), "{m:#}");
        assert_eq!(m["within"]["container"], "carve");
    }
    // The walk ends with it: after the partition's own entries.
    assert_eq!(
        got.iter()
            .rposition(|e| e["within"].is_null())
            .map(|i| &got[i]["path"]),
        Some(&serde_json::json!("$Unpartitioned"))
    );
}

/// The real Windows Vista to 11 thumbnail caches dissect.thumbcache ships,
/// laid one after another in space outside the partitions (as a deleted
/// cache's clusters lie): every entry with data comes out of the carve
/// as `0x…thumbcache-0x<hash>.<ext>`, with the bytes and checksums the
/// thumbcache expander reads from the cache file itself (which agree
/// with dissect.thumbcache: tests/cli/embedded.rs); older entries' remnants
/// the caches' walk steps over come out too.
#[test]
fn thumbnail_cache_entries_are_carved_from_free_space() {
    let Some(dir) = std::env::var_os("TRIAGE_THUMBCACHE_SAMPLES") else {
        crate::skip::skip(
            "TRIAGE_THUMBCACHE_SAMPLES is not set (scripts/test fetches dissect.thumbcache's sample caches)",
        );
        return;
    };
    if !have("sfdisk") {
        crate::skip::skip("sfdisk is not installed (apt-get install fdisk)");
        return;
    }
    let caches = Evidence::new();
    let mut blobs = Vec::new();
    for os in std::fs::read_dir(&dir).unwrap() {
        let os = os.unwrap().path();
        for f in std::fs::read_dir(&os).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_str().unwrap().to_string();
            if !name.starts_with("thumbcache_") || name == "thumbcache_idx.db" {
                continue;
            }
            let bytes = std::fs::read(&f).unwrap();
            if bytes.len() > 24 {
                let rel = format!("{}/{name}", os.file_name().unwrap().to_str().unwrap());
                caches.file(&rel, &bytes);
                blobs.push(bytes);
            }
        }
    }
    blobs.sort();
    assert!(blobs.len() >= 5, "{} caches", blobs.len());
    // What the expander reads from the files: (entry hash, SHA-256, data
    // CRC as stored and computed), every entry with data.
    let o = scan(caches.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut want: Vec<(String, String, serde_json::Value)> = entries(&o.stdout)
        .iter()
        .filter(|e| e["within"]["container"] == "thumbcache" && e["record"] == "file")
        .map(|e| {
            let m = e["within"]["member"].as_str().unwrap();
            let hash = m.split('~').next().unwrap().to_string();
            let sums = e["within"]["checksums"].clone();
            (hash, e["sha256"].as_str().unwrap().to_string(), sums)
        })
        .collect();
    want.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert!(want.len() >= 200, "{} entries", want.len());

    let ev = Evidence::new();
    let raw = ev.path(b"disk.img");
    // 256 KiB of zeros after each: the samples are the first MiB of each
    // cache, so a last thumbnail may be cut short, and a bitmap, carved by
    // its declared size, would run into the next cache.
    let gap = 256 << 10;
    let body: usize = blobs
        .iter()
        .map(|b| b.len().div_ceil(512) * 512 + gap)
        .sum();
    let start = 4 << 20;
    let size = (start + body + (1 << 20)).div_ceil(1 << 20) << 20;
    let mut disk = vec![0u8; size];
    let mut at = start;
    for b in &blobs {
        disk[at..at + b.len()].copy_from_slice(b);
        at += b.len().div_ceil(512) * 512 + gap;
    }
    std::fs::write(&raw, &disk).unwrap();
    sfdisk(&raw, b"label: dos\nstart=2048, size=2048, type=83\n");

    let o = scan(&raw, &["-q"]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let mut got: Vec<(String, String, serde_json::Value)> = entries(&o.stdout)
        .iter()
        .filter(|e| e["within"]["parent"] == "$Unpartitioned")
        .filter_map(|e| {
            let m = e["within"]["member"].as_str().unwrap();
            let (_, rest) = m.split_once(".thumbcache-")?;
            let hash = rest.split('.').next().unwrap().to_string();
            Some((
                hash,
                e["sha256"].as_str().unwrap().to_string(),
                e["within"]["checksums"].clone(),
            ))
        })
        .collect();
    got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut left = got.clone();
    for w in &want {
        let i = left.iter().position(|g| g == w).unwrap_or_else(|| {
            let same: Vec<_> = got.iter().filter(|g| g.0 == w.0).collect();
            panic!("not carved: {w:?}; carved with its hash: {same:?}")
        });
        left.remove(i);
    }
    // Beyond the caches' own listing: remnants of older entries inside
    // the free entries a cache's walk steps over (21 in these samples),
    // each with a header checksum that checks out.
    assert!(
        left.len() < want.len() / 5,
        "{} more: {left:#?}",
        left.len()
    );
    for (hash, _, sums) in &left {
        let head = &sums[0];
        assert_eq!(head["name"], "header_crc64");
        assert_eq!(head["stored"], head["computed"], "{hash}");
    }
}
