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
