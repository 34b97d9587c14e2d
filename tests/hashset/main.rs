//! Hash sets through the library: every import format, the index file's
//! guarantees (reproducible, external sort equal to in-memory, damaged
//! files refused), and near matching equal to brute force on Meta's own
//! MIH test hashes.
//!
//! Tests that read `../shared` skip with a printed reason when it is absent.

#[path = "../support/paths.rs"]
mod paths;
#[path = "../support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};

use paths::{repo, shared};
use std::sync::atomic::{AtomicUsize, Ordering};

use triage_core::hash::from_hex;
use triage_core::hashset::import::{Format, ImportOptions, import_files};
use triage_core::hashset::{Index, IndexBuilder, IndexError, KeyAlg, Scheme, SetKind, SetMeta};

/// A fresh directory per test.
fn tmp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "triage-hs-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn import(files: &[PathBuf], opts: &ImportOptions, dir: &Path) -> (Index, SetMeta) {
    let out = dir.join(format!("{}.tset", opts.name));
    let report = import_files(files, opts, &out, &mut |_| {})
        .unwrap_or_else(|e| panic!("import of {files:?} failed: {e}"));
    let index = Index::open(&out).unwrap();
    index.verify().unwrap();
    (index, report.meta)
}

/// Imports `file` expecting a refusal whose message contains `needle`, and
/// checks that no index was left behind.
fn assert_refused(file: &Path, dir: &Path, needle: &str) {
    let out = dir.join("refused.tset");
    let e = import_files(
        &[file.to_path_buf()],
        &ImportOptions::new("refused"),
        &out,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains(needle), "{e}");
    assert!(!out.exists(), "nothing written");
}

fn hex(s: &str) -> Vec<u8> {
    from_hex(s).unwrap()
}

const PASSWORDS_MD5: &str = "39cb097008d17660abd0539891a672af";
const PASSWORDS_SHA1: &str = "677bc4ec72665fabac0bc91cd4e423a535a0cae4";
const PASSWORDS_SHA256: &str = "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252";
const A_FILE_MD5: &str = "85bebf486af24792085f769afa46717d";
const ANOTHER_MD5: &str = "d54ff73404ed6041a3bd66850b061bff";
const ANOTHER_SHA1: &str = "4bdb40dfd6ec75cb730e678b5d7786e30170c5fb";
const ANOTHER_SHA256: &str = "c7fbc0e821c0871805a99584c6a384533909f68a6bbe9a2a687d28d9f3b10c16";

/// Every sample in ../shared/examples/hashsets: the format recognised, the
/// right keys, the metadata carried through.
#[test]
fn shared_samples_import_in_every_format() {
    let Some(dir) = shared("examples/hashsets") else {
        return;
    };
    let t = tmp("shared");
    let one = |file: &str, opts: ImportOptions| import(&[dir.join(file)], &opts, &t);

    let (i, m) = one("md5_list.txt", ImportOptions::new("md5list"));
    assert_eq!(m.sources[0].format, "text");
    assert_eq!(i.meta().key_count(KeyAlg::Md5), 2);
    assert!(i.lookup(KeyAlg::Md5, &hex(PASSWORDS_MD5)).is_some());
    assert!(
        i.lookup(KeyAlg::Md5, &hex(A_FILE_MD5)).is_some(),
        "upper-case hex"
    );

    // Two sha256sum lines and a BSD tag line: 64 hex digits need --algorithm.
    let err = import_files(
        &[dir.join("SHA256SUMS")],
        &ImportOptions::new("x"),
        &t.join("x.tset"),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("--algorithm"), "{err}");
    assert!(!t.join("x.tset").exists());
    let mut o = ImportOptions::new("sums");
    o.algorithm = Some(KeyAlg::Sha256);
    let (i, _) = one("SHA256SUMS", o);
    assert_eq!(i.meta().key_count(KeyAlg::Sha256), 3);
    let e = i.lookup(KeyAlg::Sha256, &hex(ANOTHER_SHA256)).unwrap();
    assert_eq!(e.info, r#"{"name":"a_directory/another_file"}"#);
    assert_eq!(e.locator, 3);

    let (i, m) = one("known.hashdeep", ImportOptions::new("hd"));
    assert_eq!(m.sources[0].format, "hashdeep");
    let e = i.lookup(KeyAlg::Sha256, &hex(PASSWORDS_SHA256)).unwrap();
    assert_eq!(e.info, r#"{"name":"./passwords.txt","size":116}"#);
    assert!(i.lookup(KeyAlg::Md5, &hex(A_FILE_MD5)).is_some());

    let (i, m) = one("NSRLFile.txt", ImportOptions::new("nsrl2"));
    assert_eq!(
        (m.sources[0].format.as_str(), m.kind),
        ("nsrl-v2", SetKind::KnownGood)
    );
    let e = i.lookup(KeyAlg::Sha1, &hex(PASSWORDS_SHA1)).unwrap();
    assert_eq!(
        e.info,
        r#"{"name":"passwords.txt","product_code":100,"size":116}"#
    );
    assert_eq!(e.locator, 2);

    // RDS v3 minimal: built from the SQL sample with the bundled SQLite.
    let db = t.join("rds.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&std::fs::read_to_string(dir.join("rds_v3_minimal_example.sql")).unwrap())
        .unwrap();
    drop(conn);
    let (i, m) = import(std::slice::from_ref(&db), &ImportOptions::new("nsrl3"), &t);
    assert_eq!(m.sources[0].format, "nsrl-v3");
    assert_eq!(
        m.sources[0].declared.as_deref(),
        Some("RDS v3 2099.01.1 modern (minimal shape)")
    );
    assert_eq!(m.kind, SetKind::KnownGood);
    for (alg, h) in [
        (KeyAlg::Sha256, PASSWORDS_SHA256),
        (KeyAlg::Sha1, PASSWORDS_SHA1),
        (KeyAlg::Md5, PASSWORDS_MD5),
    ] {
        let e = i.lookup(alg, &hex(h)).unwrap();
        assert_eq!(
            e.info,
            r#"{"name":"passwords.txt","package_id":100,"size":116}"#
        );
    }

    let (i, m) = one("encase_legacy_example.hash", ImportOptions::new("encase"));
    assert_eq!(m.sources[0].format, "encase");
    assert!(
        m.sources[0]
            .declared
            .as_deref()
            .unwrap()
            .contains("Synthetic known")
    );
    assert_eq!(i.meta().key_count(KeyAlg::Md5), 2);

    for (file, context) in [
        ("vics2_media_hashset.json", "2.0.xml/US/$metadata#Media"),
        ("vics13_media_hashset.json", "1.3.xml#Media"),
        ("vics2_case_export.json", "$metadata#Cases"),
    ] {
        let (i, m) = one(file, ImportOptions::new("vics"));
        assert_eq!(m.sources[0].format, "vics");
        assert!(m.sources[0].declared.as_deref().unwrap().ends_with(context));
        assert_eq!(m.scheme, Some(Scheme::Projectvic));
        let e = i.lookup(KeyAlg::Md5, &hex(ANOTHER_MD5)).unwrap();
        assert_eq!(e.category.map(|c| c.code), Some(1), "{file}");
        assert!(e.info.contains(r#""MediaID":1"#), "{file}: {}", e.info);
    }
    let (i, _) = one("vics2_media_hashset.json", ImportOptions::new("vics"));
    let e = i.lookup(KeyAlg::Sha1, &hex(ANOTHER_SHA1)).unwrap();
    assert!(e.info.contains(r#""PhotoDNA":""#) && e.info.contains(r#""IsDistributed":true"#));
    assert_eq!(
        i.lookup(KeyAlg::Md5, &hex(PASSWORDS_MD5))
            .unwrap()
            .category
            .map(|c| c.code),
        Some(0)
    );
    let (i, _) = one("vics13_media_hashset.json", ImportOptions::new("vics"));
    assert!(
        i.lookup(KeyAlg::Md5, &hex(ANOTHER_MD5))
            .unwrap()
            .info
            .contains(r#""VictimIdentified":false"#)
    );

    let (i, m) = one("pdq_hashes.txt", ImportOptions::new("pdq"));
    assert_eq!(m.keys[0].low_quality, 1, "the quality-0 entry is flagged");
    let q = hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22");
    let hits = i.near(KeyAlg::Pdq, &q, 31);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].1, hits[0].0.info),
        (0, r#"{"meta":"synthetic-0001","quality":100}"#)
    );

    let (i, m) = one("threatexchange_descriptor.json", ImportOptions::new("te"));
    assert_eq!(m.sources[0].format, "threatexchange");
    let hits = i.near(KeyAlg::Pdq, &q, 0);
    assert_eq!(hits.len(), 1);
    assert!(
        hits[0].0.info.contains(r#""id":"3047058800000001""#),
        "{}",
        hits[0].0.info
    );
    assert!(
        hits[0].0.info.contains(r#""tags":["synthetic"]"#),
        "{}",
        hits[0].0.info
    );
}

/// The same inputs give the same index, byte for byte; and an index built
/// through many spilled runs (external sort) equals one sorted in memory.
#[test]
fn imports_are_reproducible_and_external_sort_equals_in_memory() {
    let t = tmp("repro");
    let list = t.join("list.txt");
    let mut text = String::new();
    let mut seed = 7u64;
    for i in 0..30_000u64 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let md5 = format!("{:016x}{:016x}", seed, seed.rotate_left(17) ^ i);
        text.push_str(&format!("{md5}  file-{i}\n"));
        if i % 1000 == 0 {
            text.push_str(&format!("{md5}  duplicate-{i}\n"));
        }
    }
    std::fs::write(&list, &text).unwrap();
    let files = [list];
    let mut small = ImportOptions::new("s");
    small.memory_budget = 64 << 10; // a few thousand keys per run
    let a = t.join("a.tset");
    let b = t.join("b.tset");
    let c = t.join("c.tset");
    import_files(&files, &ImportOptions::new("s"), &a, &mut |_| {}).unwrap();
    import_files(&files, &ImportOptions::new("s"), &b, &mut |_| {}).unwrap();
    let report = import_files(&files, &small, &c, &mut |_| {}).unwrap();
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap(), "same input, same bytes");
    assert_eq!(
        bytes,
        std::fs::read(&c).unwrap(),
        "spilled runs merge to the same index"
    );
    assert_eq!(report.meta.keys[0].keys, 30_000);
    assert_eq!(report.meta.keys[0].duplicates, 30);
    let i = Index::open(&c).unwrap();
    i.verify().unwrap();
    // The first listing of a duplicated key is the one kept.
    let first = text.lines().nth(1).unwrap();
    assert!(first.contains("duplicate-0"));
    let e = i.lookup(KeyAlg::Md5, &hex(&first[..32])).unwrap();
    assert_eq!((e.info, e.locator), (r#"{"name":"file-0"}"#, 1));
    // Every listed key is found; a near miss is not.
    for line in text.lines().step_by(97) {
        assert!(i.lookup(KeyAlg::Md5, &hex(&line[..32])).is_some(), "{line}");
    }
    let mut miss = hex(&text[..32]);
    miss[15] ^= 1;
    assert!(i.lookup(KeyAlg::Md5, &miss).is_none());
    assert!(
        std::fs::read_dir(&t).unwrap().all(|e| {
            let n = e.unwrap().file_name();
            !n.to_string_lossy().starts_with(".triage-import")
        }),
        "temporary runs are removed"
    );
}

/// A damaged index is refused at open (structure) or by verify (content),
/// never a crash and never a silently different set.
#[test]
fn damaged_indexes_fail_cleanly() {
    let t = tmp("damage");
    let list = t.join("l.txt");
    let lines: String = (0..5000u32)
        .map(|i| {
            format!(
                "{:032x},{}\n",
                (i as u128).wrapping_mul(0x9E3779B97F4A7C15F39CC0605CEDC835),
                i
            )
        })
        .collect();
    std::fs::write(&list, lines).unwrap();
    let good = t.join("good.tset");
    import_files(&[list], &ImportOptions::new("d"), &good, &mut |_| {}).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let bad = t.join("bad.tset");

    for cut in [0, 7, 8, 40, 63, 64, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let e = Index::open(&bad).unwrap_err();
        assert!(
            matches!(e, IndexError::NotAnIndex | IndexError::WrongLength { .. }),
            "cut at {cut}: {e:?}"
        );
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"appended");
    std::fs::write(&bad, &longer).unwrap();
    assert!(matches!(
        Index::open(&bad),
        Err(IndexError::WrongLength { .. })
    ));

    let mut v = bytes.clone();
    v[8] = 99;
    std::fs::write(&bad, &v).unwrap();
    assert!(matches!(
        Index::open(&bad),
        Err(IndexError::UnsupportedVersion(99))
    ));

    // Every byte of the section table, flipped: refused or (for fields
    // open does not interpret) caught by verify. Never a panic.
    let table_end = 64 + 32 * u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    for at in 48..table_end {
        let mut v = bytes.clone();
        v[at] ^= 0x5A;
        std::fs::write(&bad, &v).unwrap();
        if let Ok(i) = Index::open(&bad) {
            let _ = i.lookup(KeyAlg::Md5, &[0u8; 16]);
            assert!(i.verify().is_err(), "flip at {at} went unnoticed");
        }
    }
    // Content bytes: opens, lookups stay in bounds, verify names the mismatch.
    for at in [table_end + 10, bytes.len() / 3, bytes.len() - 5] {
        let mut v = bytes.clone();
        v[at] ^= 0xFF;
        std::fs::write(&bad, &v).unwrap();
        if let Ok(i) = Index::open(&bad) {
            for k in 0..50u8 {
                let _ = i.lookup(KeyAlg::Md5, &[k; 16]);
            }
            let e = i.verify().unwrap_err();
            assert!(
                matches!(e, IndexError::ContentMismatch { .. }),
                "flip at {at}: {e:?}"
            );
        }
    }
    std::fs::write(&bad, b"hello, not an index at all\n").unwrap();
    assert!(matches!(Index::open(&bad), Err(IndexError::NotAnIndex)));
}

fn read_pdq_list(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| hex(l.trim()))
        .collect()
}

/// Multi-index search over Meta's haystack answers exactly what a
/// brute-force scan answers, for every needle, at several radii.
#[test]
fn near_matching_equals_brute_force_on_meta_haystack() {
    let Some(dir) = shared("pdq-reference/reg-test-input") else {
        return;
    };
    let haystack = read_pdq_list(&dir.join("haystack.txt"));
    let needles = read_pdq_list(&dir.join("needles.txt"));
    assert_eq!((haystack.len(), needles.len()), (1350, 100));
    let t = tmp("mih");
    // Multi-index tables forced on (the default skips them under 4,096 keys).
    let mut b = IndexBuilder::new(&t, 1 << 20).unwrap().near_index_min(0);
    for (n, h) in haystack.iter().enumerate() {
        let r = b.add_record("", n as u64 + 1, 0, None, 0).unwrap();
        b.add_key(KeyAlg::Pdq, h, r, 0).unwrap();
    }
    let meta = SetMeta {
        name: "haystack".into(),
        kind: SetKind::Alert,
        scheme: None,
        created_by: "test".into(),
        records: 0,
        keys: vec![],
        sources: vec![],
    };
    let out = t.join("haystack.tset");
    b.finish(meta, &out).unwrap();
    let index = Index::open(&out).unwrap();
    index.verify().unwrap();
    let mut total = 0;
    for radius in [0, 16, 31, 32, 63] {
        for q in needles.iter().chain(haystack.iter().step_by(50)) {
            let fast = index.near(KeyAlg::Pdq, q, radius);
            let slow = index.near_brute_force(KeyAlg::Pdq, q, radius);
            assert_eq!(fast, slow, "radius {radius}");
            total += fast.len();
        }
    }
    // Each haystack sample finds itself at least: the comparison is not vacuous.
    assert!(total > 5 * 27, "{total} hits");
}

/// Malformed lines are counted with their line numbers; --strict stops at
/// the first; empty-file digests are kept and flagged; the categories of a
/// VICS UK file need an explicit mapping.
#[test]
fn bad_lines_strict_empty_digests_and_category_maps() {
    let t = tmp("bad");
    let list = t.join("mixed.txt");
    std::fs::write(
        &list,
        format!(
            "# a comment\n{PASSWORDS_MD5}\nnot a hash\n{}\n{A_FILE_MD5}x\nd41d8cd98f00b204e9800998ecf8427e\n{PASSWORDS_MD5}\n",
            &PASSWORDS_MD5[..30]
        ),
    )
    .unwrap();
    let (i, m) = import(
        std::slice::from_ref(&list),
        &ImportOptions::new("mixed"),
        &t,
    );
    let s = &m.sources[0];
    assert_eq!((s.entries, s.rejected), (3, 3));
    let at: Vec<u64> = s.first_rejected.iter().map(|r| r.at).collect();
    assert_eq!(at, [3, 4, 5]);
    assert!(
        s.first_rejected[1].reason.contains("30 hex digits"),
        "{:?}",
        s.first_rejected
    );
    assert_eq!(
        (
            m.keys[0].keys,
            m.keys[0].duplicates,
            m.keys[0].empty_file_digests
        ),
        (2, 1, 1)
    );
    let empty = i
        .lookup(KeyAlg::Md5, &hex("d41d8cd98f00b204e9800998ecf8427e"))
        .unwrap();
    assert!(
        empty
            .flags
            .has(triage_core::hashset::EntryFlags::EMPTY_FILE)
    );

    let mut strict = ImportOptions::new("strict");
    strict.strict = true;
    let out = t.join("strict.tset");
    let e = import_files(&[list], &strict, &out, &mut |_| {}).unwrap_err();
    assert_eq!(e.at.as_deref(), Some("line 3"), "{e}");
    assert!(!out.exists(), "nothing written");
    // JSON counts elements, not lines.
    let vics = repo().join("fixtures/hashsets/vics2-known.json");
    let e = import_files(&[vics], &strict, &out, &mut |_| {}).unwrap_err();
    assert_eq!(e.at.as_deref(), Some("element 6"), "{e}");

    let uk = t.join("uk.json");
    std::fs::write(
        &uk,
        format!(
            r#"{{"@odata.context":"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/UK/$metadata#Media",
            "value":[{{"MediaID":1,"Category":1,"MD5":"{PASSWORDS_MD5}"}},{{"MediaID":2,"Category":9,"MD5":"{A_FILE_MD5}"}}]}}"#
        ),
    )
    .unwrap();
    assert_refused(&uk, &t, "--category-map");
    let mut o = ImportOptions::new("uk");
    o.scheme = Some(Scheme::CaidUk);
    o.category_map = vec![(1, "A".into()), (2, "B".into()), (3, "C".into())];
    let (i, m) = import(&[uk], &o, &t);
    let e = i.lookup(KeyAlg::Md5, &hex(PASSWORDS_MD5)).unwrap();
    assert_eq!(e.category.unwrap().to_string(), "caid-uk A (category A)");
    let e = i.lookup(KeyAlg::Md5, &hex(A_FILE_MD5)).unwrap();
    assert_eq!(e.category, None, "9 is not mapped: kept without a category");
    assert_eq!(m.sources[0].unknown_categories, 1);

    // Truncated JSON is an error, not a shorter set.
    let cut = t.join("cut.json");
    std::fs::write(
        &cut,
        format!(
            r#"{{"odata.metadata":"x 1.3.xml#Media","value":[{{"MD5":"{PASSWORDS_MD5}"}},{{"MD5":"#
        ),
    )
    .unwrap();
    assert_refused(&cut, &t, "truncated");

    // Content, not the name, decides the format.
    let disguised = t.join("hashes.json");
    std::fs::write(&disguised, format!("{PASSWORDS_MD5}  x\n")).unwrap();
    let (_, m) = import(&[disguised], &ImportOptions::new("disguised"), &t);
    assert_eq!(m.sources[0].format, Format::Text.name());
}

/// RDS v3 in its full shape (METADATA table, read directly), and a
/// truncated copy of it refused by the page count in its header.
#[test]
fn nsrl_v3_full_shape_and_truncated_copy() {
    let t = tmp("rds");
    let db = t.join("full.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE METADATA (object_id INTEGER, package_id INTEGER, sha256 VARCHAR, sha1 VARCHAR,
           md5 VARCHAR, crc32 VARCHAR, file_name VARCHAR, extension VARCHAR, bytes INTEGER);
         CREATE TABLE PACKAGE_OBJECT (object_id INTEGER, package_id INTEGER);
         CREATE TABLE VERSION (version VARCHAR, build_set VARCHAR, build_date TIMESTAMP,
           release_date TIMESTAMP, description VARCHAR);
         INSERT INTO VERSION VALUES ('2099.03.1', 'android', '2099-03-01', '2099-03-02', 'synthetic');",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO METADATA VALUES (1, 7, upper(?1), upper(?2), upper(?3), '', 'passwords', 'txt', 116)",
        [PASSWORDS_SHA256, PASSWORDS_SHA1, PASSWORDS_MD5],
    )
    .unwrap();
    // Enough rows that the database spans many pages.
    let mut stmt = conn
        .prepare("INSERT INTO METADATA VALUES (?1, 7, ?2, '', '', '', 'filler', 'bin', 1)")
        .unwrap();
    for i in 2..3000u32 {
        stmt.execute(rusqlite::params![i, format!("{:064x}", i)])
            .unwrap();
    }
    // One damaged row: reported with its row id, the rest imported.
    conn.execute(
        "INSERT INTO METADATA VALUES (3000, 7, 'XYZ', '', '', '', 'bad', '', 0)",
        [],
    )
    .unwrap();
    drop(stmt);
    drop(conn);
    let (i, m) = import(std::slice::from_ref(&db), &ImportOptions::new("full"), &t);
    let s = &m.sources[0];
    assert_eq!(
        s.declared.as_deref(),
        Some("RDS v3 2099.03.1 android (full shape)")
    );
    assert_eq!((s.entries, s.rejected), (2999, 1));
    assert_eq!(s.first_rejected[0].at, 3000);
    let e = i.lookup(KeyAlg::Md5, &hex(PASSWORDS_MD5)).unwrap();
    assert_eq!(
        e.info,
        r#"{"name":"passwords.txt","package_id":7,"size":116}"#
    );
    assert_eq!(i.meta().key_count(KeyAlg::Sha256), 3000 - 1);

    let bytes = std::fs::read(&db).unwrap();
    let cut = t.join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&cut, &t, "truncated");
}

/// Formats checked on any clone (without ../shared): an EnCase `.hash`
/// built byte by byte, a ThreatExchange descriptor page, and a triage scan
/// of the fixture tree turned into a set (the source of pHash sets).
#[test]
fn own_fixtures_for_encase_threatexchange_and_scan_output() {
    let t = tmp("own");
    // EnCase: signature, version 2, count 2 at 0x10, UTF-16LE name at 0x408.
    let mut e = vec![0u8; 0x480];
    e[..8].copy_from_slice(b"HASH\r\n\xff\0");
    e[8] = 2;
    e[0x10] = 2;
    for (i, u) in "Own set".encode_utf16().enumerate() {
        e[0x408 + 2 * i..0x408 + 2 * i + 2].copy_from_slice(&u.to_le_bytes());
    }
    for h in [PASSWORDS_MD5, A_FILE_MD5] {
        e.extend_from_slice(&hex(h));
        e.extend_from_slice(&[0, 0]);
    }
    let encase = t.join("own.hash");
    std::fs::write(&encase, &e).unwrap();
    let (i, m) = import(
        std::slice::from_ref(&encase),
        &ImportOptions::new("encase"),
        &t,
    );
    assert_eq!(m.sources[0].format, "encase");
    assert!(
        m.sources[0]
            .declared
            .as_deref()
            .unwrap()
            .contains("\"Own set\"")
    );
    assert_eq!(i.lookup(KeyAlg::Md5, &hex(A_FILE_MD5)).unwrap().locator, 2);
    // A count past the end of the file: truncated, nothing written.
    e[0x10] = 3;
    std::fs::write(&encase, &e).unwrap();
    assert_refused(&encase, &t, "truncated");

    let te = t.join("te.json");
    let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    std::fs::write(
        &te,
        format!(
            r#"{{"data":[{{"id":"1","raw_indicator":"{pdq}","type":"HASH_PDQ"}},
            {{"id":"2","raw_indicator":"{PASSWORDS_SHA1}","type":"HASH_SHA1"}},
            {{"id":"3","raw_indicator":"abc","type":"HASH_VIDEO_VPDQ"}}],"paging":{{}}}}"#
        ),
    )
    .unwrap();
    let (i, m) = import(std::slice::from_ref(&te), &ImportOptions::new("te"), &t);
    assert_eq!((m.sources[0].entries, m.sources[0].rejected), (2, 1));
    assert!(
        m.sources[0].first_rejected[0]
            .reason
            .contains("HASH_VIDEO_VPDQ")
    );
    assert_eq!(
        i.near(KeyAlg::Pdq, &hex(pdq), 0)[0].0.info,
        r#"{"id":"1","type":"HASH_PDQ"}"#
    );
    assert!(i.lookup(KeyAlg::Sha1, &hex(PASSWORDS_SHA1)).is_some());

    // A scan of fixtures/evidence with pHash, imported as a set.
    let mut config = triage_core::ScanConfig::new(repo().join("fixtures/evidence"));
    config.perceptual.img_hashes = vec![triage_core::perceptual::ImgHashAlg::Phash];
    let scanner = triage_core::Scanner::new(config).unwrap();
    let mut out = Vec::new();
    {
        let mut w = triage_core::record::OutputFormat::Jsonl.writer(&mut out, scanner.root());
        w.header(&scanner.header()).unwrap();
        let summary = scanner.run(|e| w.entry(&e)).unwrap();
        w.summary(&summary).unwrap();
    }
    let scan = t.join("catalogue.jsonl");
    std::fs::write(&scan, &out).unwrap();
    let (i, m) = import(
        std::slice::from_ref(&scan),
        &ImportOptions::new("catalogue"),
        &t,
    );
    assert_eq!(m.sources[0].format, "triage-scan");
    assert_eq!(m.records, 11, "every hashed fixture file");
    assert_eq!(i.meta().key_count(KeyAlg::Pdq), 3);
    assert_eq!(i.meta().key_count(KeyAlg::Phash), 3);
    let e = i.lookup(KeyAlg::Md5, &hex(PASSWORDS_MD5)).unwrap();
    assert_eq!(
        e.info,
        r#"{"path":"Downloads/export/passwords.txt","size":116}"#
    );
    let text = String::from_utf8(out).unwrap();
    let checker = text.lines().find(|l| l.contains("checker.dll")).unwrap();
    let v: serde_json::Value = serde_json::from_str(checker).unwrap();
    let phash = v["perceptual"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["tag"] == "phash/1")
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let hits = i.near(KeyAlg::Phash, &hex(&phash), 0);
    assert_eq!(hits.len(), 1);
    assert!(hits[0].0.info.contains("checker.dll"));
}

/// Damaged lists of every format (bytes flipped, cut, inserted, repeated)
/// end as a set or an error, never a panic; and whatever the import
/// accepts opens and verifies. A cheap stand-in for the fuzzing of issue 6.
#[test]
fn mutated_lists_never_panic() {
    let t = tmp("mutate");
    let fixtures = repo().join("fixtures/hashsets");
    let mut seeds: Vec<(String, Vec<u8>)> = [
        "vics2-known.json",
        "pdq-series.txt",
        "md5sums.txt",
        "NSRLFile.txt",
        "known.hashdeep",
    ]
    .iter()
    .map(|n| (n.to_string(), std::fs::read(fixtures.join(n)).unwrap()))
    .collect();
    let mut encase = vec![0u8; 0x480];
    encase[..8].copy_from_slice(b"HASH\r\n\xff\0");
    encase[0x10] = 1;
    encase.extend_from_slice(&hex(PASSWORDS_MD5));
    encase.extend_from_slice(&[0, 0]);
    seeds.push(("encase".into(), encase));
    let te = format!(
        r#"{{"1":{{"id":"1","raw_indicator":"{PASSWORDS_MD5}","type":"HASH_MD5","tags":{{"data":[{{"text":"x"}}]}}}}}}"#
    );
    seeds.push(("te".into(), te.into_bytes()));
    let db = t.join("seed.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE FILE (sha256, sha1, md5, crc32, file_name, file_size, package_id);
         INSERT INTO FILE VALUES ('', '', '39CB097008D17660ABD0539891A672AF', '', 'p', 1, 2);",
    )
    .unwrap();
    drop(conn);
    seeds.push(("sqlite".into(), std::fs::read(&db).unwrap()));

    let mut state = 0x5EED_u64;
    let mut rnd = move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n.max(1)
    };
    let input = t.join("input");
    let out = t.join("out.tset");
    let mut outcomes = [0usize; 2];
    for (name, seed) in &seeds {
        for _ in 0..150 {
            let mut v = seed.clone();
            for _ in 0..1 + rnd(4) {
                match rnd(5) {
                    0 if !v.is_empty() => {
                        let i = rnd(v.len());
                        v[i] ^= 1 << rnd(8);
                    }
                    1 => v.truncate(rnd(v.len() + 1)),
                    2 => {
                        let i = rnd(v.len() + 1);
                        let junk: Vec<u8> = (0..1 + rnd(16)).map(|_| rnd(256) as u8).collect();
                        v.splice(i..i, junk);
                    }
                    3 if !v.is_empty() => {
                        let (a, b) = (rnd(v.len()), rnd(v.len()));
                        let chunk = v[a.min(b)..a.max(b)].to_vec();
                        let at = rnd(v.len() + 1);
                        v.splice(at..at, chunk);
                    }
                    _ => {
                        let i = rnd(v.len() + 1);
                        let special: &[u8] = [
                            &b","[..],
                            b"\"",
                            b"\n",
                            b"\xff\xfe",
                            b"{",
                            b"]",
                            b"=",
                            b"\\",
                        ][rnd(8)];
                        v.splice(i..i, special.iter().copied());
                    }
                }
            }
            std::fs::write(&input, &v).unwrap();
            let _ = std::fs::remove_file(&out);
            let result = std::panic::catch_unwind(|| {
                import_files(
                    std::slice::from_ref(&input),
                    &ImportOptions::new("m"),
                    &out,
                    &mut |_| {},
                )
                .map(|_| ())
            });
            match result {
                Err(_) => panic!(
                    "{name}: import panicked on {:?}",
                    String::from_utf8_lossy(&v)
                ),
                Ok(Ok(())) => {
                    outcomes[0] += 1;
                    let i = Index::open(&out).expect("an accepted set opens");
                    i.verify().expect("and verifies");
                }
                Ok(Err(_)) => outcomes[1] += 1,
            }
        }
    }
    eprintln!(
        "mutated lists: {} imported, {} refused",
        outcomes[0], outcomes[1]
    );
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}

/// An embedder's scan with a pHash set and the default `ScanConfig` (PDQ
/// only) still computes pHash and finds the match: the scanner adds what
/// its sets need, and verifies them first. Two sets of one name are
/// refused, and so is a damaged one. Through the public API only (issue
/// 11, item 17).
#[test]
fn the_library_scan_computes_what_its_sets_need() {
    use std::sync::Arc;
    use triage_core::matching::{MatchConfig, Matcher, MatcherError};
    use triage_core::perceptual::{ImgHashAlg, Perceptual, PerceptualConfig, perceptual_hashes};
    use triage_core::{Outcome, ScanConfig, ScanError, Scanner};

    let dir = tmp("embed");
    let evidence = dir.join("evidence");
    std::fs::create_dir_all(&evidence).unwrap();
    let image = std::fs::read(repo().join("fixtures/images/shapes-800x600.png")).unwrap();
    std::fs::write(evidence.join("shapes.png"), &image).unwrap();
    let mut only_phash = PerceptualConfig::off();
    only_phash.img_hashes = vec![ImgHashAlg::Phash];
    let phash = perceptual_hashes(&image, &only_phash).unwrap();
    let Some(Perceptual::Img { hash, .. }) = phash.hashes.first() else {
        panic!("no pHash: {phash:?}")
    };
    let list = dir.join("phash.txt");
    std::fs::write(&list, format!("{}\n", triage_core::hash::to_hex(hash))).unwrap();
    let mut opts = ImportOptions::new("phash-set");
    opts.algorithm = Some(KeyAlg::Phash);
    let (_, meta) = import(std::slice::from_ref(&list), &opts, &dir);
    assert_eq!(meta.key_count(KeyAlg::Phash), 1);
    let set_path = dir.join("phash-set.tset");

    let mut config = ScanConfig::new(&evidence);
    assert!(
        config.perceptual.img_hashes.is_empty(),
        "default is PDQ only"
    );
    config.matcher = Matcher::open(&[&set_path], MatchConfig::default()).unwrap();
    let scanner = Scanner::new(config).unwrap();
    assert_eq!(scanner.added_for_hashsets(), ["phash/1"]);
    assert!(scanner.header().perceptual.iter().any(|t| t == "phash/1"));
    assert!(scanner.header().hashsets[0].verified);
    let mut found = Vec::new();
    scanner
        .run(|e| {
            if let Outcome::Hashed(h) = e.outcome {
                found.extend(h.matches);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].alg, found[0].distance), (KeyAlg::Phash, Some(0)));

    // An index opened without verification, then damaged: the scanner
    // verifies it before it reads any evidence.
    let damaged = dir.join("damaged.tset");
    let mut bytes = std::fs::read(&set_path).unwrap();
    let at = bytes
        .windows(hash.len())
        .position(|w| w == &hash[..])
        .unwrap();
    bytes[at] ^= 0x40; // the key itself: open() does not look at it
    std::fs::write(&damaged, &bytes).unwrap();
    let mut config = ScanConfig::new(&evidence);
    let set = Arc::new(Index::open(&damaged).unwrap());
    config.matcher = Matcher::new(vec![set.clone()], MatchConfig::default()).unwrap();
    match Scanner::new(config) {
        Err(ScanError::HashSet(e)) => {
            assert!(e.is_integrity(), "{e}");
            assert!(e.to_string().contains("damaged.tset"), "{e}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a damaged set was accepted"),
    }

    // Two sets of one name, and thresholds out of range.
    drop(set);
    let good = Arc::new(Index::open(&set_path).unwrap());
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other_list = other_dir.join("other.txt");
    std::fs::write(&other_list, "0123456789abcdef\n").unwrap();
    let (other, _) = import(&[other_list], &opts, &other_dir);
    let e = Matcher::new(vec![good.clone(), Arc::new(other)], MatchConfig::default()).unwrap_err();
    assert!(matches!(e, MatcherError::SameName { .. }), "{e}");
    let e = Matcher::new(vec![good.clone(), good], MatchConfig::default()).unwrap_err();
    assert!(matches!(e, MatcherError::Repeated(_)), "{e}");
    for bad in [
        MatchConfig {
            pdq_distance: 129,
            ..MatchConfig::default()
        },
        MatchConfig {
            img_distance: 33,
            ..MatchConfig::default()
        },
    ] {
        assert!(matches!(
            Matcher::new(Vec::new(), bad),
            Err(MatcherError::Threshold(_))
        ));
    }
    let edge = MatchConfig {
        pdq_distance: 128,
        img_distance: 32,
        ..MatchConfig::default()
    };
    assert!(Matcher::new(Vec::new(), edge).is_ok());
}

/// A pseudo-random PDQ hash (xorshift), and one `flips` bits away from `h`.
fn random_pdq(state: &mut u64) -> triage_core::perceptual::pdq::PdqHash {
    let mut w = [0u16; 16];
    for x in &mut w {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *x = *state as u16;
    }
    triage_core::perceptual::pdq::PdqHash(w)
}

fn near_pdq(
    h: triage_core::perceptual::pdq::PdqHash,
    flips: u32,
    state: &mut u64,
) -> triage_core::perceptual::pdq::PdqHash {
    let mut out = h;
    for _ in 0..flips {
        let r = random_pdq(state).0[0] as usize;
        out.0[r % 16] ^= 1 << (r / 16 % 16);
    }
    out
}

/// Video matching through the multi-index tables gives exactly what
/// comparing every frame pair gives: 600 known videos of 12 frames (past
/// the size where the tables are built), queries made of known frames a
/// few to forty bits away, of unrelated frames, and of both.
#[test]
fn video_matching_equals_brute_force() {
    use triage_core::matching::{MatchConfig, Matcher};
    use triage_core::perceptual::video::{VideoFrame, VideoHashes, VideoInfo};
    let dir = tmp("video");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let known: Vec<Vec<triage_core::perceptual::pdq::PdqHash>> = (0..600)
        .map(|_| (0..12).map(|_| random_pdq(&mut state)).collect())
        .collect();
    // HMA's bank shape: name → "hash,quality,timestamp" strings.
    let bank: serde_json::Map<String, serde_json::Value> = known
        .iter()
        .enumerate()
        .map(|(i, frames)| {
            let list: Vec<String> = frames
                .iter()
                .enumerate()
                .map(|(j, h)| format!("{h},{},{}.000", if j == 11 { 30 } else { 90 }, j))
                .collect();
            (format!("video-{i}"), serde_json::json!(list))
        })
        .collect();
    let file = dir.join("bank.json");
    std::fs::write(&file, serde_json::Value::Object(bank).to_string()).unwrap();
    let (index, meta) = import(&[file], &ImportOptions::new("bank"), &dir);
    assert_eq!(meta.records, 600);
    // The frame of quality 30 in each is left out: 11 keys per video.
    assert_eq!(meta.key_count(KeyAlg::Vpdq), 600 * 11);
    let index = std::sync::Arc::new(index);
    let everything = MatchConfig {
        video_known_percent: 0,
        ..MatchConfig::default()
    };
    let matchers = [
        Matcher::new(vec![index.clone()], everything).unwrap(),
        Matcher::new(vec![index.clone()], MatchConfig::default()).unwrap(),
    ];
    let video = |frames: Vec<triage_core::perceptual::pdq::PdqHash>| VideoHashes {
        info: VideoInfo {
            container: String::new(),
            codec: String::new(),
            width: 64,
            height: 64,
            frame_rate: (1, 1),
            duration: None,
        },
        every: 1,
        frames: frames
            .into_iter()
            .enumerate()
            .map(|(i, hash)| VideoFrame {
                frame: i as u64,
                quality: 100,
                hash,
                timestamp: i as f64,
            })
            .collect(),
        pruned: 0,
        truncated: false,
    };
    let mut found = [0usize; 2];
    for q in 0..200u64 {
        let source = &known[(q as usize * 7) % known.len()];
        let frames: Vec<_> = match q % 4 {
            // Every frame of one known video, a few bits off.
            0 => source
                .iter()
                .map(|h| near_pdq(*h, (q % 9) as u32, &mut state))
                .collect(),
            // Half its frames, up to forty bits off.
            1 => source
                .iter()
                .take(6)
                .map(|h| near_pdq(*h, (q % 41) as u32, &mut state))
                .collect(),
            // Unrelated frames.
            2 => (0..10).map(|_| random_pdq(&mut state)).collect(),
            // Frames of two known videos and some unrelated ones.
            _ => source
                .iter()
                .chain(&known[(q as usize * 13) % known.len()][..4])
                .copied()
                .chain((0..5).map(|_| random_pdq(&mut state)))
                .collect(),
        };
        let v = video(frames);
        for (i, m) in matchers.iter().enumerate() {
            let fast = m.match_video(&v);
            assert_eq!(fast, m.match_video_brute_force(&v), "query {q}");
            found[i] += fast.len();
        }
    }
    // Not vacuous: candidates were found, and the default rule kept fewer.
    assert!(
        found[0] > 150 && found[1] > 50 && found[1] < found[0],
        "{found:?}"
    );
}
