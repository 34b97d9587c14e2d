//! `triage report`: every format written from a verified log, validated
//! with the outside tool where there is one, and read back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use triage_core::report::dfxml;

use crate::testenv::*;

fn report(log: &Path, format: &str, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = triage();
    cmd.arg("report")
        .arg(log)
        .args(["--format", format, "--force", "-o"])
        .arg(out)
        .args(extra);
    run(cmd, Duration::from_secs(120))
}

/// A scan of a copy of the fixture evidence (plus awkward names) against
/// the bundled sets, with a case and a signature: (evidence, log, pubkey).
fn scanned() -> (Evidence, PathBuf, PathBuf) {
    let ev = Evidence::new();
    copy_fixture_evidence(&ev);
    ev.file(b"odd/new\nline, \"quoted\"", "x")
        .file(b"odd/latin-\xe9", "y");
    // A known file inside a zip: a member, matched, in every report.
    let o = Command::new("python3")
        .arg(repo().join("fixtures/archives/make.py"))
        .arg("wrap")
        .arg(ev.path(b"odd/backup.zip"))
        .arg(ev.path(b"Windows/System32/checker.dll"))
        .arg("saved/checker.dll")
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let key = ev.out("lab.key");
    let mut cmd = triage();
    cmd.arg("keygen").arg("-o").arg(&key);
    assert_eq!(code(&run(cmd, Duration::from_secs(30))), 0);
    let log = ev.out("scan.jsonl");
    let sets = repo().join("fixtures/hashsets");
    let o = scan(
        ev.root(),
        &[
            "-q",
            "--case",
            "CASE-2026-0042",
            "--evidence-id",
            "EXH-7",
            "--examiner",
            "A. Santos <asantos@example.invalid>",
            "--sign-key",
            key.to_str().unwrap(),
            "--hashset",
            sets.join("sample-alert.tset").to_str().unwrap(),
            "--hashset",
            sets.join("sample-nsrl.tset").to_str().unwrap(),
            "-o",
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let mut public = key.into_os_string();
    public.push(".pub");
    (ev, log, PathBuf::from(public))
}

/// (path bytes → record) of the log's entries.
fn log_entries(log: &Path) -> BTreeMap<Vec<u8>, serde_json::Value> {
    use base64::Engine as _;
    entries(&std::fs::read(log).unwrap())
        .into_iter()
        .map(|e| {
            let path = match e["path"].as_str() {
                Some(p) => p.as_bytes().to_vec(),
                None => base64::engine::general_purpose::STANDARD
                    .decode(e["path_b64"].as_str().unwrap())
                    .unwrap(),
            };
            (path, e)
        })
        .collect()
}

#[test]
fn every_format_is_written_and_the_log_is_never_changed() {
    let (ev, log, public) = scanned();
    let before = std::fs::read(&log).unwrap();
    let mtime = std::fs::metadata(&log).unwrap().modified().unwrap();
    for f in ["dfxml", "case", "csv", "matches-csv", "vics", "html"] {
        let out = ev.out(&format!("r.{f}"));
        let o = report(&log, f, &out, &["--pubkey", public.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{f}: {}", stderr(&o));
        assert!(std::fs::metadata(&out).unwrap().len() > 100, "{f}");
    }
    assert_eq!(std::fs::read(&log).unwrap(), before);
    assert_eq!(std::fs::metadata(&log).unwrap().modified().unwrap(), mtime);

    // A damaged log gives no report, and the output is not left behind.
    let bad = ev.out("bad.jsonl");
    let mut b = before.clone();
    let at = b.len() / 2;
    b[at] ^= 0x01;
    std::fs::write(&bad, &b).unwrap();
    let out = ev.out("bad.html");
    let o = report(&bad, "html", &out, &[]);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("DOES NOT VERIFY: line "),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    let o = report(&log, "pdf", &out, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("choose from dfxml, case, csv, matches-csv, vics, html"));
}

#[test]
fn dfxml_validates_against_the_schema_and_reads_back() {
    let (ev, log, _) = scanned();
    let out = ev.out("r.dfxml");
    assert_eq!(code(&report(&log, "dfxml", &out, &[])), 0);
    if have("xmllint") {
        let mut cmd = Command::new("xmllint");
        cmd.args(["--noout", "--schema"])
            .arg(repo().join("fixtures/dfxml-schema/dfxml.xsd"))
            .arg(&out);
        let o = run(cmd, Duration::from_secs(60));
        assert_eq!(code(&o), 0, "xmllint: {}", stderr(&o));
    } else {
        skip("xmllint is not installed (apt-get install libxml2-utils): DFXML schema validation");
    }
    let files = dfxml::read(std::io::BufReader::new(std::fs::File::open(&out).unwrap())).unwrap();
    let want = log_entries(&log);
    assert_eq!(files.len(), want.len());
    for f in &files {
        let e = &want[f.filename.as_bytes()];
        assert_eq!(f.size, e["size"].as_u64(), "{:?}", f.filename);
        if e["record"] == "file" {
            for alg in ["md5", "sha1", "sha256", "blake3"] {
                assert_eq!(
                    f.hashes[alg],
                    e[alg].as_str().unwrap(),
                    "{alg} of {:?}",
                    f.filename
                );
            }
        } else {
            assert!(f.hashes.is_empty());
        }
    }
    // The names that are not XML text came back exactly.
    assert!(want.contains_key(&b"odd/latin-\xe9"[..]));
    assert!(
        files
            .iter()
            .any(|f| f.filename.as_bytes() == b"odd/new\nline, \"quoted\"")
    );
    // The sample in ../shared (written by another tool) reads too.
    let sample = repo().join("../shared/examples/sample.dfxml");
    if sample.exists() {
        let f = dfxml::read(std::io::BufReader::new(
            std::fs::File::open(&sample).unwrap(),
        ))
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].filename.to_str(), Some("passwords.txt"));
        assert_eq!(f[0].hashes["md5"], "39cb097008d17660abd0539891a672af");
    } else {
        skip("../shared is absent: the shared DFXML sample");
    }
}

#[test]
fn case_json_ld_validates_and_carries_the_files() {
    let (ev, log, _) = scanned();
    let out = ev.out("r.jsonld");
    assert_eq!(code(&report(&log, "case", &out, &[])), 0);
    if have("case_validate") {
        let mut cmd = Command::new("case_validate");
        cmd.arg(&out);
        let o = run(cmd, Duration::from_secs(300));
        assert_eq!(
            code(&o),
            0,
            "case_validate: {}{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
    } else {
        skip("case_validate is not installed (pip install case-utils): CASE validation");
    }
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let graph = doc["@graph"].as_array().unwrap();
    fn of_kind<'a>(
        graph: &'a [serde_json::Value],
        t: &'a str,
    ) -> impl Iterator<Item = &'a serde_json::Value> {
        graph.iter().filter(move |n| n["@type"] == t)
    }
    let of_type = |t: &'static str| of_kind(graph, t);
    let action = of_type("case-investigation:InvestigativeAction")
        .next()
        .unwrap();
    let person = of_type("uco-identity:Person").next().unwrap();
    assert_eq!(
        person["uco-core:name"],
        "A. Santos <asantos@example.invalid>"
    );
    assert_eq!(action["uco-action:performer"]["@id"], person["@id"]);
    let investigation = of_type("case-investigation:Investigation").next().unwrap();
    assert_eq!(investigation["uco-core:name"], "CASE-2026-0042");
    let want = log_entries(&log);
    let files: Vec<_> = of_type("uco-observable:File")
        .filter(|f| {
            f["triage:blake3"].is_string()
                || f["triage:skipped"].is_string()
                || f["triage:failed"].is_string()
        })
        .collect();
    assert_eq!(files.len(), want.len());
    // Every SHA-256 of the log appears as a UCO hash of some file.
    let mut sha256s: Vec<&str> = files
        .iter()
        .flat_map(|f| f["uco-core:hasFacet"].as_array().unwrap())
        .flat_map(|facet| {
            facet["uco-observable:hash"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .filter(|h| h["uco-types:hashMethod"] == "SHA256")
        .map(|h| h["uco-types:hashValue"]["@value"].as_str().unwrap())
        .collect();
    let mut expect: Vec<&str> = want.values().filter_map(|e| e["sha256"].as_str()).collect();
    sha256s.sort();
    expect.sort();
    assert_eq!(sha256s, expect);
    // The same log gives the same graph (deterministic identifiers).
    let again = ev.out("again.jsonld");
    assert_eq!(code(&report(&log, "case", &again, &[])), 0);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn csv_reports_read_back_to_the_log() {
    let (ev, log, _) = scanned();
    let want = log_entries(&log);
    let out = ev.out("r.csv");
    assert_eq!(code(&report(&log, "csv", &out, &[])), 0);
    let mut rdr = csv::Reader::from_path(&out).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), want.len());
    for r in &rows {
        use base64::Engine as _;
        let path = if r[col("path_b64")].is_empty() {
            r[col("path")].as_bytes().to_vec()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(&r[col("path_b64")])
                .unwrap()
        };
        let e = &want[&path];
        for alg in ["md5", "sha256", "blake3"] {
            assert_eq!(&r[col(alg)], e[alg].as_str().unwrap_or(""), "{alg}");
        }
    }
    // One row per hit.
    let out = ev.out("m.csv");
    assert_eq!(code(&report(&log, "matches-csv", &out, &[])), 0);
    let mut rdr = csv::Reader::from_path(&out).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let hits: usize = want
        .values()
        .map(|e| e["matches"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(rows.len(), hits);
    assert!(rows.iter().any(|r| &r[0] == "Windows/System32/checker.dll"
        && &r[2] == "sample-alert"
        && &r[4] == "md5"
        && &r[9] == "1"
        && &r[10] == "child abuse material (CAM)"));
}

/// The VICS export of the matched media, imported as a hash set, finds
/// exactly the same files again.
#[test]
fn vics_export_round_trips_through_our_importer() {
    let (ev, log, _) = scanned();
    let out = ev.out("matched.json");
    assert_eq!(code(&report(&log, "vics", &out, &[])), 0);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(
        doc["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/US/$metadata#Cases")
    );
    let media = doc["value"][0]["Media"].as_array().unwrap();
    let summary = records(&std::fs::read(&log).unwrap())
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        media.len() as u64,
        summary["files_matched"].as_u64().unwrap()
    );
    let checker = media
        .iter()
        .find(|m| m["RelativeFilePath"] == "Windows/System32/checker.dll")
        .unwrap();
    assert_eq!(checker["Category"], 1);
    assert_eq!(checker["PhotoDNA"].as_str().unwrap().len(), 192);
    assert_eq!(doc["value"][0]["CaseNumber"], "CASE-2026-0042");

    let set = ev.out("back.tset");
    let mut cmd = triage();
    cmd.args(["hashset", "import", "-q", "--name", "back", "-o"])
        .arg(&set)
        .arg(&out);
    let o = run(cmd, Duration::from_secs(60));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = scan(ev.root(), &["-q", "--hashset", set.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let matched = |jsonl: &[u8], set: &str| -> Vec<String> {
        entries(jsonl)
            .iter()
            .filter(|e| {
                e["matches"].as_array().is_some_and(|ms| {
                    ms.iter().any(|m| {
                        (set.is_empty() || m["set"] == set)
                            && m["kind"] == "alert"
                            && m["empty_file_digest"].is_null()
                    })
                })
            })
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    };
    let original = matched(&std::fs::read(&log).unwrap(), "sample-alert");
    assert_eq!(matched(&o.stdout, "back"), original);
    // Categories came back with the projectvic scheme.
    let again = entries(&o.stdout);
    let c = &entry(&again, "Windows/System32/checker.dll")["matches"][0]["category"];
    assert_eq!(
        (c["scheme"].as_str(), c["code"].as_str()),
        (Some("projectvic"), Some("1"))
    );
}

#[test]
fn html_report_is_self_contained_and_thumbnails_are_guarded() {
    let (ev, log, public) = scanned();
    let out = ev.out("r.html");
    let pk = public.to_str().unwrap();
    assert_eq!(code(&report(&log, "html", &out, &["--pubkey", pk])), 0);
    let html = std::fs::read_to_string(&out).unwrap();
    for want in [
        "VERIFIED: every line",
        "CASE-2026-0042",
        "EXH-7",
        "A. Santos &lt;asantos@example.invalid&gt;",
        "Windows/System32/checker.dll",
        "sample-alert",
        "(the key given to the report)",
        "--thumbnails not given",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("data:image"), "no thumbnails unless asked");
    let head = records(&std::fs::read(&log).unwrap()).len();
    assert!(head > 10);

    let out = ev.out("t.html");
    assert_eq!(code(&report(&log, "html", &out, &["--thumbnails"])), 0);
    let html = std::fs::read_to_string(&out).unwrap();
    let thumbs: Vec<&str> = html
        .split("data:image/png;base64,")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    // The matched images of the fixtures: shapes.bmp and checker.dll (a
    // PNG), and checker.dll's copy inside odd/backup.zip, read again from
    // the zip.
    assert_eq!(thumbs.len(), 3, "{html}");
    assert!(html.contains("inside <code>odd/backup.zip</code> (zip member)"));
    use base64::Engine as _;
    for t in &thumbs {
        let png = base64::engine::general_purpose::STANDARD.decode(t).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!(img.color(), image::ColorType::L8, "greyscale in the pixels");
        assert!(img.width() <= 128 && img.height() <= 128);
    }
    assert!(html.contains(".thumb img{filter:blur("));
    // A matched image that changed since the scan is not shown.
    let checker = ev.path(b"Windows/System32/checker.dll");
    let mut bytes = std::fs::read(&checker).unwrap();
    bytes.push(0);
    std::fs::write(&checker, bytes).unwrap();
    assert_eq!(code(&report(&log, "html", &out, &["--thumbnails"])), 0);
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 2);
    assert!(html.contains("no longer has the digests in the log"));
}

/// `report -o` never writes into the evidence: not inside the root the
/// log names, not through a symlink that leads there, not by `..`; exit 2
/// and nothing written (issue 11, item 4).
#[test]
fn reports_are_refused_inside_the_evidence() {
    let (ev, log, _) = scanned();
    let outside = ev.out("links");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(ev.root(), outside.join("to-evidence")).unwrap();
    std::os::unix::fs::symlink(
        ev.root().join("Documents/notes.txt"),
        outside.join("notes-link"),
    )
    .unwrap();
    let before = std::fs::read(ev.root().join("Documents/notes.txt")).unwrap();
    let dotdot = outside
        .join("../")
        .join(ev.root().file_name().unwrap())
        .join("r.html");
    for target in [
        ev.root().join("r.html"),
        ev.root().join("DCIM/r.html"),
        outside.join("to-evidence/r.html"),
        outside.join("notes-link"),
        dotdot,
    ] {
        let o = report(&log, "html", &target, &[]);
        assert_eq!(code(&o), 2, "{target:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("inside the evidence root"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!ev.root().join("r.html").exists());
    assert!(!ev.root().join("DCIM/r.html").exists());
    assert_eq!(
        std::fs::read(ev.root().join("Documents/notes.txt")).unwrap(),
        before
    );
}

/// On a full disk a report, and a scan's `--csv`, fail with exit 5, name
/// the file that failed, and leave nothing partial behind (the target is
/// untouched; no `.partial` remains). A tmpfs of 16 KiB is the full disk;
/// mounting it needs root (issue 11, item 6).
#[test]
fn a_full_disk_leaves_no_partial_report() {
    let (ev, log, _) = scanned();
    let full = ev.out("full");
    std::fs::create_dir_all(&full).unwrap();
    let tmpfs = ["-t", "tmpfs", "-o", "size=16k", "tmpfs"].map(std::ffi::OsStr::new);
    let Some(_guard) = mount(&tmpfs[..], full.clone(), "mounting a tmpfs") else {
        return;
    };
    // Bigger than 16 KiB: the fixture scan's DFXML is about 20 KiB; pad it.
    for i in 0..200 {
        ev.file(
            format!("pad/{i:03}-with-a-long-name-to-fill-the-report"),
            format!("{i}"),
        );
    }
    let big = ev.out("big.jsonl");
    let o = scan(ev.root(), &["-q", "-o", big.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let _ = log;
    let target = full.join("r.dfxml");
    let o = report(&big, "dfxml", &target, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("cannot write the report '{}'", target.display())),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("No space left"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_dir(&full).unwrap().count(),
        0,
        "nothing partial left"
    );

    let csv = full.join("s.csv");
    let o = scan(
        ev.root(),
        &[
            "-q",
            "-o",
            ev.out("s.jsonl").to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("cannot write --csv '{}'", csv.display())),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("scan records"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_dir(&full).unwrap().count(),
        0,
        "nothing partial left"
    );
}

/// Suspect-chosen names that a spreadsheet would run as formulas are
/// neutralised (a leading `'`) in every CSV: `scan --csv`, `report --format
/// csv` and `matches-csv`; the exact name stays in `path_b64` (issue 11,
/// item 5).
#[test]
fn csv_cells_never_start_a_formula() {
    use base64::Engine as _;
    let ev = Evidence::new();
    let names = [
        "=HYPERLINK(\"evil.invalid\",\"click\").jpg",
        "@SUM(1+1)*cmd|calc.jpg",
        "+1.txt",
        "-2.txt",
        "\tTab.txt",
        "\rCR.txt",
        "plain.txt",
    ];
    for n in names {
        ev.file(n, "same content");
    }
    let list = ev.out("list.md5");
    let md5 = {
        let o = Command::new("md5sum")
            .arg(ev.root().join("plain.txt"))
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()[..32].to_string()
    };
    std::fs::write(&list, format!("{md5}\n")).unwrap();
    let set = ev.out("s.tset");
    let mut cmd = triage();
    cmd.args(["hashset", "import", "-q", "--name", "=cmd|calc", "-o"])
        .arg(&set)
        .arg(&list);
    assert_eq!(code(&run(cmd, Duration::from_secs(30))), 0);
    let log = ev.out("s.jsonl");
    let csv_out = ev.out("scan.csv");
    let o = scan(
        ev.root(),
        &[
            "-q",
            "--hashset",
            set.to_str().unwrap(),
            "-o",
            log.to_str().unwrap(),
            "--csv",
            csv_out.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let files_csv = ev.out("files.csv");
    let matches_csv = ev.out("matches.csv");
    assert_eq!(code(&report(&log, "csv", &files_csv, &[])), 0);
    assert_eq!(code(&report(&log, "matches-csv", &matches_csv, &[])), 0);
    for (file, rows_expected) in [(&csv_out, 7), (&files_csv, 7), (&matches_csv, 7)] {
        let mut r = csv::Reader::from_path(file).unwrap();
        let head = r.headers().unwrap().clone();
        let col = |n: &str| head.iter().position(|h| h == n).unwrap();
        let (path, b64) = (col("path"), col("path_b64"));
        let mut rows = 0;
        for rec in r.records() {
            let rec = rec.unwrap();
            rows += 1;
            for cell in rec.iter() {
                assert!(
                    !matches!(
                        cell.as_bytes().first(),
                        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
                    ),
                    "{file:?}: a live formula: {cell:?}"
                );
            }
            let shown = &rec[path];
            if shown == "plain.txt" {
                assert_eq!(&rec[b64], "");
                continue;
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&rec[b64])
                .unwrap();
            let raw = String::from_utf8(raw).unwrap();
            assert!(names.contains(&raw.as_str()), "{raw:?}");
            assert_eq!(shown, format!("'{raw}"));
        }
        assert_eq!(rows, rows_expected, "{file:?}");
    }
}

/// The HTML report names the set and the entry of each hit (its source
/// line), tells exact hits from near ones (distance, PDQ quality, "needs
/// review"), and shows the command line shell-quoted (issue 11, item 7).
#[test]
fn html_hits_name_their_entry_and_say_exact_or_near() {
    let (ev, log, _) = scanned();
    let out = ev.out("hits.html");
    assert_eq!(code(&report(&log, "html", &out, &[])), 0);
    let html = std::fs::read_to_string(&out).unwrap();
    // passwords.txt is line 1 of md5sums.txt: an exact MD5 hit.
    let row = html
        .lines()
        .find(|l| l.contains("Downloads/export/passwords.txt</code>"))
        .unwrap_or_else(|| panic!("no row for passwords.txt: {html}"));
    assert!(
        row.contains("<span class=\"exact\">EXACT</span> md5 digest"),
        "{row}"
    );
    assert!(
        row.contains("set <b>sample-alert</b> (alert), entry fixtures/hashsets/md5sums.txt:1"),
        "{row}"
    );
    // A PDQ hit on the gradient from pdq-series.txt: near, with distance and quality.
    let near = html
        .lines()
        .find(|l| l.contains("NEAR: similar, needs review"))
        .unwrap_or_else(|| panic!("no near hit: {html}"));
    assert!(near.contains("pdq/1 at distance "), "{near}");
    assert!(near.contains(" of 256 bits, PDQ quality "), "{near}");
    assert!(
        near.contains("entry fixtures/hashsets/pdq-series.txt:"),
        "{near}"
    );
    // The examiner's name had spaces and angle brackets: quoted for a shell.
    assert!(
        html.contains("--examiner &apos;A. Santos &lt;asantos@example.invalid&gt;&apos;"),
        "{html}"
    );
}

/// A file with two names in an NTFS image is read once, at its first name
/// in the walk; the other name is recorded as a `hard_link` to it, and the
/// HTML report shows both names beside the match. The image is made with
/// mkntfs and fixtures/disks/ntfs_edit.c (libntfs-3g), as build.sh does.
#[test]
fn a_hard_linked_match_shows_every_name() {
    let path = format!(
        "{}:/sbin:/usr/sbin",
        std::env::var("PATH").unwrap_or_default()
    );
    let tools = Command::new("sh")
        .arg("-c")
        .arg("command -v mkntfs && command -v gcc && pkg-config --exists libntfs-3g")
        .env("PATH", &path)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !tools {
        skip(
            "mkntfs, gcc or libntfs-3g's headers are missing (apt-get install ntfs-3g ntfs-3g-dev pkg-config gcc)",
        );
        return;
    }
    let ev = Evidence::new();
    let img = ev.out("links.img");
    let editor = ev.out("ntfs_edit");
    let sh = |script: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}: {}", stderr(&o));
    };
    sh(&format!(
        "gcc -O1 -o '{}' '{}' $(pkg-config --cflags --libs libntfs-3g)",
        editor.display(),
        repo().join("fixtures/disks/ntfs_edit.c").display()
    ));
    sh(&format!(
        "truncate -s 8M '{0}' && mkntfs -q -F -Q -T -c 4096 '{0}' >/dev/null 2>&1",
        img.display()
    ));
    // passwords.txt is in the sample alert set (md5sums.txt line 1).
    let known = repo().join("fixtures/evidence/Downloads/export/passwords.txt");
    sh(&format!(
        "'{}' '{}' mkdir A write A/passwords.txt '{}' link A/passwords.txt 'B copy.txt'",
        editor.display(),
        img.display(),
        known.display()
    ));
    let log = ev.out("links.jsonl");
    let mut cmd = triage();
    cmd.arg("scan")
        .arg(&img)
        .args(["-q", "--no-case", "--hashset"])
        .arg(repo().join("fixtures/hashsets/sample-alert.tset"))
        .arg("-o")
        .arg(&log);
    let o = run(cmd, Duration::from_secs(120));
    assert_eq!(code(&o), 1, "one match: {}", stderr(&o));
    let all = entries(&std::fs::read(&log).unwrap());
    let first = entry(&all, "A/passwords.txt");
    assert!(first["md5"].is_string(), "{first}");
    assert_eq!(first["nlink"], 2, "{first}");
    let other = entry(&all, "B copy.txt");
    assert_eq!(other["record"], "skipped", "{other}");
    assert_eq!(other["reason"], "hard_link", "{other}");
    assert_eq!(other["first"], "A/passwords.txt", "{other}");
    assert!(other.get("md5").is_none(), "read once: {other}");
    let html = ev.out("links.html");
    assert_eq!(code(&report(&log, "html", &html, &[])), 0);
    let html = std::fs::read_to_string(&html).unwrap();
    let row = html
        .lines()
        .find(|l| l.contains("<code>A/passwords.txt</code>"))
        .unwrap_or_else(|| panic!("no row for the match: {html}"));
    assert!(
        row.contains("also named <code>B copy.txt</code> (hard link)"),
        "{row}"
    );
    assert!(html.contains("1 hard_link"), "the skip is counted: {html}");
}
