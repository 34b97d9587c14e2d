//! `triage hashset` and `triage scan --hashset`: the bundled sets, the
//! shared samples against the fixture tree, hashdeep as an oracle, exit codes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::testenv::*;

fn in_repo(args: &[&str]) -> std::process::Output {
    let mut cmd = triage();
    cmd.current_dir(repo()).args(args);
    if args.first() == Some(&"scan") {
        cmd.arg("--no-case");
    }
    run(cmd, Duration::from_secs(120))
}

/// Every hit of a scan as one comparable line:
/// `path set alg [distance] [transform] [category] [empty]`.
fn hits(stdout: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries(stdout) {
        for m in e["matches"].as_array().into_iter().flatten() {
            let mut line = format!(
                "{} {} {}",
                e["path"].as_str().unwrap(),
                m["set"].as_str().unwrap(),
                m["alg"].as_str().unwrap()
            );
            if let Some(d) = m["distance"].as_u64() {
                line.push_str(&format!(" d={d}"));
            }
            if let Some(t) = m["transform"].as_str() {
                line.push_str(&format!(" {t}"));
            }
            if let Some(c) = m["category"]["code"].as_str() {
                line.push_str(&format!(" cat={c}"));
            }
            if m["empty_file_digest"] == true {
                line.push_str(" empty");
            }
            out.push(line);
        }
    }
    out
}

/// The committed sample indexes are exactly what importing their lists
/// gives now: the format and the import are reproducible byte for byte.
#[test]
fn bundled_indexes_equal_a_fresh_import() {
    let ev = Evidence::new();
    let alert = ev.out("sample-alert.tset");
    let nsrl = ev.out("sample-nsrl.tset");
    let o = in_repo(&[
        "hashset",
        "import",
        "fixtures/hashsets/vics2-known.json",
        "fixtures/hashsets/pdq-series.txt",
        "fixtures/hashsets/md5sums.txt",
        "--name",
        "sample-alert",
        "-o",
        alert.to_str().unwrap(),
    ]);
    // The VICS list has one malformed MD5 on purpose: reported, exit 3.
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(r#"rejected at 6: md5: not hexadecimal: "NOT-A-HASH""#),
        "{}",
        stderr(&o)
    );
    let o = in_repo(&[
        "hashset",
        "import",
        "fixtures/hashsets/NSRLFile.txt",
        "--name",
        "sample-nsrl",
        "-o",
        nsrl.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for (fresh, committed) in [(&alert, "sample-alert.tset"), (&nsrl, "sample-nsrl.tset")] {
        let committed = repo().join("fixtures/hashsets").join(committed);
        assert!(
            std::fs::read(fresh).unwrap() == std::fs::read(&committed).unwrap(),
            "{} differs from a fresh import: regenerate it (fixtures/README.md)",
            committed.display()
        );
    }
}

/// The README's main job: the fixture tree against the bundled sets. Every
/// hit, exactly: exact digests with their categories, PDQ near-duplicates
/// with their distances (and a rotated copy only with --dihedral), the
/// empty-file digest flagged, known-good hits beside alert ones.
#[test]
fn scan_of_the_fixtures_finds_exactly_the_listed_files() {
    let sets = [
        "--hashset",
        "fixtures/hashsets/sample-alert.tset",
        "--hashset",
        "fixtures/hashsets/sample-nsrl.tset",
    ];
    let mut args = vec!["scan", "fixtures/evidence", "-q"];
    args.extend(sets);
    let o = in_repo(&args);
    assert_eq!(code(&o), 1, "matches found: exit 1; {}", stderr(&o));
    let expected = [
        "DCIM/100PHOTO/shapes.bmp sample-alert pdq/1 d=5",
        "Documents/empty.dat sample-alert md5 cat=1 empty",
        "Documents/ghi chú/tài liệu.txt sample-alert md5 cat=2",
        "Documents/notes.txt sample-nsrl md5",
        "Documents/notes.txt sample-nsrl sha1",
        "Downloads/export/a_directory/a_file sample-alert md5",
        "Downloads/export/a_directory/a_file sample-nsrl md5",
        "Downloads/export/a_directory/a_file sample-nsrl sha1",
        "Downloads/export/a_directory/another_file sample-alert sha1 cat=3",
        "Downloads/export/passwords.txt sample-alert md5",
        "Downloads/pattern.bin sample-nsrl md5",
        "Downloads/pattern.bin sample-nsrl sha1",
        "Windows/System32/checker.dll sample-alert md5 cat=1",
        "Windows/System32/checker.dll sample-alert sha1 cat=1",
    ];
    assert_eq!(hits(&o.stdout), expected);
    let got = entries(&o.stdout);
    let low = entry(&got, "DCIM/100PHOTO/gradient.png");
    assert_eq!(
        low["near_skipped"],
        "PDQ quality 33 is under 50: not near-matched"
    );
    let checker = &entry(&got, "Windows/System32/checker.dll")["matches"][0];
    assert_eq!(checker["category"]["label"], "child abuse material (CAM)");
    assert_eq!(checker["source"], "fixtures/hashsets/vics2-known.json");
    assert_eq!(checker["at"], 1);
    assert_eq!(checker["entry"]["MediaID"], 101);
    assert_eq!(checker["entry"]["PhotoDNA"].as_str().unwrap().len(), 192);
    let all = records(&o.stdout);
    let header = &all[0];
    assert_eq!(header["hashsets"][0]["set"]["name"], "sample-alert");
    assert_eq!(header["hashsets"][0]["blake3"].as_str().unwrap().len(), 64);
    assert_eq!(header["hashsets"][1]["set"]["kind"], "known-good");
    assert_eq!(header["matching"]["pdq_distance"], 31);
    let summary = all.last().unwrap();
    assert_eq!(summary["files_matched"], 6);
    assert_eq!(summary["files_known"], 2);
    assert_eq!(summary["empty_digest_hits"], 1);
    assert_eq!(summary["near_skipped"], 1);
    assert_eq!(
        summary["matches"]["sample-alert"]["projectvic 1 (child abuse material (CAM))"],
        1
    );
    assert_eq!(summary["matches"]["sample-alert"]["uncategorised"], 3);
    let by_cat = &summary["files_by_category"];
    assert_eq!(by_cat["projectvic 1 (child abuse material (CAM))"], 1);
    assert_eq!(by_cat["projectvic 3 (CGI / animation)"], 1);
    assert_eq!(by_cat["uncategorised"], 3);

    // The rotated copy in the list is found only over the dihedral hashes,
    // and a looser threshold is a user's choice, recorded in the header.
    let mut args = vec![
        "scan",
        "fixtures/evidence",
        "-q",
        "--dihedral",
        "--pdq-distance",
        "4",
    ];
    args.extend(sets);
    let o = in_repo(&args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let shapes: Vec<String> = hits(&o.stdout)
        .into_iter()
        .filter(|h| h.contains("shapes"))
        .collect();
    assert_eq!(
        shapes,
        ["DCIM/100PHOTO/shapes.bmp sample-alert pdq/1 d=3 rot90"]
    );
    assert_eq!(records(&o.stdout)[0]["matching"]["pdq_distance"], 4);

    // CSV carries the hits too.
    let ev = Evidence::new();
    let log = ev.out("scan.log");
    let mut args = vec!["scan", "fixtures/evidence", "-q", "--csv", "-", "-o"];
    args.push(log.to_str().unwrap());
    args.extend(sets);
    let o = in_repo(&args);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.lines().next().unwrap().ends_with(
        ",matches,parent,member,container,depth,expanded,video,video_frames,video_error"
    ));
    assert!(
        text.contains("sample-alert:md5:projectvic 1;sample-alert:sha1:projectvic 1"),
        "{text}"
    );
    assert!(
        text.contains("sample-alert:md5:projectvic 1:empty-file-digest"),
        "{text}"
    );
}

/// The samples in ../shared/examples/hashsets, imported by the CLI, hit the
/// dfVFS files in the fixture tree and nothing else.
#[test]
fn shared_samples_hit_the_dfvfs_files() {
    let dir = repo().join("../shared/examples/hashsets");
    if !dir.exists() {
        skip(&format!("{} is absent", dir.display()));
        return;
    }
    let ev = Evidence::new();
    let pw = "Downloads/export/passwords.txt";
    let a = "Downloads/export/a_directory/a_file";
    let another = "Downloads/export/a_directory/another_file";
    let cases: [(&str, &[&str], &[&str], i32); 9] = [
        ("md5_list.txt", &[], &[pw, a], 1),
        (
            "SHA256SUMS",
            &["--algorithm", "sha256"],
            &[pw, a, another],
            1,
        ),
        ("known.hashdeep", &[], &[pw, a], 1),
        ("NSRLFile.txt", &[], &[pw, a], 0), // known-good: reported, not a find
        ("encase_legacy_example.hash", &[], &[pw, a], 1),
        ("vics2_media_hashset.json", &[], &[pw, another], 1),
        ("vics13_media_hashset.json", &[], &[another], 1),
        ("vics2_case_export.json", &[], &[another], 1),
        ("threatexchange_descriptor.json", &[], &[], 0),
    ];
    for (file, extra, want, exit) in cases {
        let set = ev.out(&format!("{file}.tset"));
        let mut cmd = triage();
        cmd.args(["hashset", "import", "-q", "--name", file, "-o"])
            .arg(&set)
            .arg(dir.join(file))
            .args(extra);
        let o = run(cmd, Duration::from_secs(60));
        assert_eq!(code(&o), 0, "{file}: {}", stderr(&o));
        let o = scan(
            &repo().join("fixtures/evidence"),
            &["-q", "--hashset", set.to_str().unwrap()],
        );
        assert_eq!(code(&o), exit, "{file}: {}", stderr(&o));
        let paths: BTreeSet<String> = hits(&o.stdout)
            .iter()
            .map(|h| h.split(' ').next().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(paths, want, "{file}");
    }
}

/// A hashdeep known-file list, imported, matches exactly the files
/// `hashdeep -m` matches on the same tree.
#[test]
fn hashdeep_list_matches_what_hashdeep_m_matches() {
    if !have("hashdeep") {
        skip("hashdeep is not installed (apt-get install hashdeep)");
        return;
    }
    let root = repo().join("fixtures/evidence").canonicalize().unwrap();
    let list = repo().join("fixtures/hashsets/known.hashdeep");
    let out = Command::new("hashdeep")
        .arg("-m")
        .arg("-k")
        .arg(&list)
        .arg("-r")
        .arg(&root)
        .output()
        .unwrap();
    let theirs: BTreeSet<PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| Path::new(l).strip_prefix(&root).unwrap().to_path_buf())
        .collect();
    assert_eq!(theirs.len(), 4, "the oracle found the listed files");
    let ev = Evidence::new();
    let set = ev.out("known.tset");
    let mut cmd = triage();
    cmd.args(["hashset", "import", "-q", "--name", "known", "-o"])
        .arg(&set)
        .arg(&list);
    assert_eq!(code(&run(cmd, Duration::from_secs(60))), 0);
    let o = scan(&root, &["-q", "--hashset", set.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let ours: BTreeSet<PathBuf> = entries(&o.stdout)
        .iter()
        .filter(|e| e["matches"].is_array())
        .map(|e| PathBuf::from(e["path"].as_str().unwrap()))
        .collect();
    assert_eq!(ours, theirs);
}

/// info, verify (exit 6 on a changed byte), lookup (exit 1 when found),
/// and import errors that say what to do.
#[test]
fn info_verify_lookup_and_import_errors() {
    let ev = Evidence::new();
    let set = ev.out("s.tset");
    std::fs::copy(repo().join("fixtures/hashsets/sample-alert.tset"), &set).unwrap();
    let mut cmd = triage();
    cmd.args(["hashset", "info"]).arg(&set);
    let o = run(cmd, Duration::from_secs(30));
    assert_eq!(code(&o), 0);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("scheme   projectvic"), "{text}");
    assert!(text.contains("keys     pdq/1    3"), "{text}");
    assert!(text.contains("sha256 "), "{text}");

    let verify = |p: &Path| {
        let mut cmd = triage();
        cmd.args(["hashset", "verify"]).arg(p);
        run(cmd, Duration::from_secs(30))
    };
    assert_eq!(code(&verify(&set)), 0);
    let mut bytes = std::fs::read(&set).unwrap();
    // One letter of an entry's PhotoDNA text: nothing open() looks at.
    let at = bytes.windows(8).position(|w| w == b"AAAAAAAA").unwrap();
    bytes[at] = b'B';
    std::fs::write(&set, &bytes).unwrap();
    let o = verify(&set);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(stderr(&o).contains("altered or damaged"), "{}", stderr(&o));
    std::fs::write(&set, &bytes[..bytes.len() - 10]).unwrap();
    let o = verify(&set);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
    let o = scan(ev.root(), &["--hashset", set.to_str().unwrap()]);
    assert_eq!(
        code(&o),
        6,
        "a truncated set stops the scan before it starts: {}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "nothing scanned");

    let lookup = |h: &str| {
        let mut cmd = triage();
        cmd.args(["hashset", "lookup"])
            .arg(repo().join("fixtures/hashsets/sample-alert.tset"))
            .arg(h);
        run(cmd, Duration::from_secs(30))
    };
    let o = lookup("39CB097008D17660ABD0539891A672AF");
    assert_eq!(code(&o), 1);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(r#"md5sums.txt:1 {"name":"passwords.txt"}"#)
    );
    assert_eq!(code(&lookup("00000000000000000000000000000000")), 0);

    let list = ev.out("bad.txt");
    std::fs::write(&list, "39cb097008d17660abd0539891a672af\nnonsense\n").unwrap();
    let mut cmd = triage();
    cmd.args(["hashset", "import", "--name", "bad", "-o"])
        .arg(ev.out("bad.tset"))
        .arg(&list);
    let o = run(cmd, Duration::from_secs(30));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rejected at 2: not a hash line"),
        "{}",
        stderr(&o)
    );
    let mut cmd = triage();
    cmd.args([
        "hashset", "import", "--strict", "--name", "bad", "--force", "-o",
    ])
    .arg(ev.out("bad.tset"))
    .arg(&list);
    let o = run(cmd, Duration::from_secs(30));
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("line 2: not a hash line"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("nothing was written"), "{}", stderr(&o));

    let alert = repo().join("fixtures/hashsets/sample-alert.tset");
    let alert = alert.to_str().unwrap();
    let o = scan(ev.root(), &["--hashset", alert, "--hashset", alert]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("given twice"), "{}", stderr(&o));
    let o = scan(ev.root(), &["--hashset", "/nonexistent.tset"]);
    assert_eq!(
        code(&o),
        2,
        "a missing input is a usage error: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    let o = scan(ev.root(), &["--hashset", list.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("triage hashset import"),
        "{}",
        stderr(&o)
    );
}

/// One bit of one key flipped in an index, where `open` looks at nothing:
/// the scan reads the whole index first, refuses it (exit 6, nothing
/// scanned, the file named), and an intact index is recorded with the
/// BLAKE3 the scan computed, marked verified (issue 11, item 1).
#[test]
fn a_scan_verifies_every_set_it_uses() {
    let ev = Evidence::new();
    copy_fixture_evidence(&ev);
    let good = repo().join("fixtures/hashsets/sample-alert.tset");
    let bad = ev.out("damaged.tset");
    let mut bytes = std::fs::read(&good).unwrap();
    let key = [
        0x39, 0xcb, 0x09, 0x70, 0x08, 0xd1, 0x76, 0x60, 0xab, 0xd0, 0x53, 0x98, 0x91, 0xa6, 0x72,
        0xaf,
    ];
    let at = bytes.windows(16).position(|w| w == key).unwrap();
    bytes[at + 15] ^= 1;
    std::fs::write(&bad, &bytes).unwrap();

    let o = scan(ev.root(), &["--hashset", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "nothing may be scanned with a damaged set"
    );
    let err = stderr(&o);
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    assert!(err.contains("altered or damaged"), "{err}");
    assert!(err.contains("nothing was scanned"), "{err}");

    let o = scan(ev.root(), &["--hashset", good.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let header = &records(&o.stdout)[0];
    let recorded = &header["hashsets"][0];
    assert_eq!(recorded["verified"], true);
    // The index's BLAKE3 covers everything after its 48-byte prefix
    // (docs/hashsets.md, the index format): computed here by the blake3 crate itself.
    let computed = blake3::hash(&std::fs::read(&good).unwrap()[48..]);
    assert_eq!(recorded["blake3"], computed.to_hex().as_str());
    assert!(
        stderr(&o).contains("hash set 'sample-alert' (alert, 10 entries, verified, blake3"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("files matched against 1 set ("),
        "{}",
        stderr(&o)
    );
}

/// `triage hashset import FILES... --name N -o OUT [ARGS]`.
fn import_cli(files: &[&Path], out: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = triage();
    cmd.args(["hashset", "import", "--name", "n", "-o"])
        .arg(out)
        .args(files)
        .args(args);
    run(cmd, Duration::from_secs(120))
}

/// `hashset info --json`'s key counts: alg → keys.
fn key_counts(set: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut cmd = triage();
    cmd.args(["hashset", "info", "--json"]).arg(set);
    let o = run(cmd, Duration::from_secs(30));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    meta["set"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["alg"].as_str().unwrap().to_string(),
                k["keys"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `hash-image` output imports as a PDQ (or pHash) list with no options,
/// with and without --dihedral, and a scan against it finds the images
/// (issue 11, item 8).
#[test]
fn hash_image_output_imports_as_a_list() {
    let ev = Evidence::new();
    let images = repo().join("fixtures/images");
    let pics = [
        "noise-257x129.png",
        "shapes-800x600.png",
        "radial-1023x767.png",
    ];
    for p in pics {
        std::fs::copy(images.join(p), ev.root().join(p)).unwrap();
    }
    for extra in [
        &[][..],
        &["--dihedral"][..],
        &["--perceptual", "pdq,phash"][..],
    ] {
        let mut cmd = triage();
        cmd.arg("hash-image").args(extra);
        for p in pics {
            cmd.arg(ev.root().join(p));
        }
        let o = run(cmd, Duration::from_secs(60));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let list = ev.out("p.txt");
        std::fs::write(&list, &o.stdout).unwrap();
        let set = ev.out("p.tset");
        let o = import_cli(&[&list], &set, &["--force"]);
        assert_eq!(code(&o), 0, "{extra:?}: {}", stderr(&o));
        let counts = key_counts(&set);
        assert_eq!(counts.get("pdq/1"), Some(&3), "{extra:?} {counts:?}");
        if extra.contains(&"pdq,phash") {
            assert_eq!(counts.get("phash/1"), Some(&3), "{counts:?}");
        }
        let o = scan(ev.root(), &["-q", "--hashset", set.to_str().unwrap()]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let h = hits(&o.stdout);
        for p in pics {
            assert!(
                h.iter().any(|l| l.starts_with(&format!("{p} n pdq/1 d=0"))),
                "{h:?}"
            );
        }
    }
}

/// `--algorithm` decides only the 64-hex (and 16-hex) lines: MD5 and SHA-1
/// lines in the same list are imported as what their length says (issue
/// 11, item 9).
#[test]
fn algorithm_decides_only_ambiguous_lengths() {
    let ev = Evidence::new();
    let list = ev.out("mixed.txt");
    std::fs::write(
        &list,
        "39cb097008d17660abd0539891a672af\n\
         a9993e364706816aba3e25717850c26c9cd0d89d\n\
         ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
    )
    .unwrap();
    let set = ev.out("m.tset");
    let o = import_cli(&[&list], &set, &["--algorithm", "sha256"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let counts = key_counts(&set);
    for alg in ["md5", "sha1", "sha256"] {
        assert_eq!(counts.get(alg), Some(&1), "{alg}: {counts:?}");
    }
    let o = import_cli(&[&list], &set, &["--algorithm", "blake3", "--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(key_counts(&set).get("blake3"), Some(&1));
    // Without --algorithm the 64-hex line is ambiguous: asked for, exit 2.
    let o = import_cli(&[&list], &set, &["--force"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("say which with --algorithm"),
        "{}",
        stderr(&o)
    );
}

/// Windows encodings: a UTF-8 BOM, and UTF-16 LE and BE with a BOM and
/// CRLF, in a text list and a hashdeep file: every hash imported, and the
/// source's SHA-256 is of the file's own bytes (issue 11, item 10).
#[test]
fn byte_order_marks_and_utf16_lists_import() {
    let ev = Evidence::new();
    let text = "39cb097008d17660abd0539891a672af  passwords.txt\r\n\
                85bebf486af24792085f769afa46717d  tài liệu.txt\r\n";
    let hashdeep = "%%%% HASHDEEP-1.0\r\n%%%% size,md5,filename\r\n\
                    ## comment\r\n\
                    9,39cb097008d17660abd0539891a672af,/e/passwords.txt\r\n\
                    3,85bebf486af24792085f769afa46717d,/e/tài liệu.txt\r\n";
    for (name, body) in [("list", text), ("hd", hashdeep)] {
        let utf16 = |le: bool| {
            let mut b = if le {
                vec![0xFF, 0xFE]
            } else {
                vec![0xFE, 0xFF]
            };
            for u in body.encode_utf16() {
                b.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
            }
            b
        };
        let mut bom8 = b"\xEF\xBB\xBF".to_vec();
        bom8.extend_from_slice(body.as_bytes());
        for (enc, bytes) in [
            ("utf8-bom", bom8),
            ("utf16le", utf16(true)),
            ("utf16be", utf16(false)),
        ] {
            let list = ev.out(&format!("{name}-{enc}.txt"));
            std::fs::write(&list, &bytes).unwrap();
            let set = ev.out(&format!("{name}-{enc}.tset"));
            let o = import_cli(&[&list], &set, &[]);
            assert_eq!(code(&o), 0, "{name} {enc}: {}", stderr(&o));
            assert_eq!(key_counts(&set).get("md5"), Some(&2), "{name} {enc}");
            let mut cmd = triage();
            cmd.args(["hashset", "info", "--json"]).arg(&set);
            let meta: serde_json::Value =
                serde_json::from_slice(&run(cmd, Duration::from_secs(30)).stdout).unwrap();
            assert_eq!(
                meta["set"]["sources"][0]["sha256"],
                sha256_hex(&bytes),
                "{name} {enc}"
            );
            let mut cmd = triage();
            cmd.args(["hashset", "lookup"])
                .arg(&set)
                .arg("85bebf486af24792085f769afa46717d");
            let o = run(cmd, Duration::from_secs(30));
            assert_eq!(code(&o), 1);
            assert!(
                String::from_utf8_lossy(&o.stdout).contains("tài liệu.txt"),
                "{name} {enc}"
            );
        }
    }
}

/// A set with no entries is refused (exit 5, nothing written) unless
/// `--allow-empty`; a scan names each set with its entry count and ends
/// with the match count even when nothing matched (issue 11, item 11).
#[test]
fn empty_sets_are_refused_unless_asked_for() {
    let ev = Evidence::new();
    ev.file("a", "1");
    let header_only = ev.out("h.hashdeep");
    std::fs::write(&header_only, "%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n").unwrap();
    let garbage = ev.out("g.bin");
    let mut rng = 0x2545f4914f6cdd1du64;
    let bytes: Vec<u8> = (0..200_000)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        })
        .collect();
    std::fs::write(&garbage, bytes).unwrap();
    let set = ev.out("e.tset");
    let o = import_cli(&[&header_only], &set, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no entries to import: the lists hold no hash"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--allow-empty"), "{}", stderr(&o));
    assert!(!set.exists());
    let o = import_cli(&[&garbage], &set, &["--format", "text"]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("were rejected (the first: line 1:"),
        "{}",
        stderr(&o)
    );
    assert!(!set.exists(), "no .tset from garbage");
    let o = import_cli(&[&header_only], &set, &["--allow-empty"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = scan(ev.root(), &["--hashset", set.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hash set 'n' (alert, 0 entries, verified"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("triage: 0 files matched against 1 set (0 entries)"),
        "{}",
        stderr(&o)
    );
}

/// A list with one 100 MB line: the line is rejected by number, the rest
/// imported, and memory does not follow the line (issue 11, item 12).
#[test]
fn a_huge_line_is_rejected_in_bounded_memory() {
    use std::io::Write as _;
    let ev = Evidence::new();
    let list = ev.out("huge.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&list).unwrap());
    writeln!(f, "39cb097008d17660abd0539891a672af  first").unwrap();
    let chunk = vec![b'f'; 1 << 20];
    for _ in 0..100 {
        f.write_all(&chunk).unwrap();
    }
    writeln!(f).unwrap();
    writeln!(f, "85bebf486af24792085f769afa46717d  third").unwrap();
    drop(f);
    let set = ev.out("huge.tset");
    let mut cmd = triage();
    cmd.args(["hashset", "import", "--name", "n", "--memory", "16", "-o"])
        .arg(&set)
        .arg(&list);
    let (o, peak) = run_measured(cmd, Duration::from_secs(120));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rejected at 2: longer than 65536 bytes: not read"),
        "{}",
        stderr(&o)
    );
    assert_eq!(key_counts(&set).get("md5"), Some(&2));
    assert!(
        peak < 60 << 20,
        "peak RSS {} MiB for a 100 MiB line",
        peak >> 20
    );
    eprintln!("import of a 100 MiB line: peak RSS {} MiB", peak >> 20);
}
