//! The audit log: case details, tamper evidence, signatures, kill and
//! resume, and `verify --evidence`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::testenv::*;

fn verify(log: &Path, args: &[&str]) -> Output {
    let mut cmd = triage();
    cmd.arg("verify").arg(log).args(args);
    run(cmd, Duration::from_secs(120))
}

/// A key pair under the evidence's output dir: (private, public).
fn keypair(ev: &Evidence, name: &str) -> (PathBuf, PathBuf) {
    let key = ev.out(name);
    let mut cmd = triage();
    cmd.arg("keygen").arg("-o").arg(&key);
    let o = run(cmd, Duration::from_secs(30));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("fingerprint: SHA256:"));
    let mut public = key.clone().into_os_string();
    public.push(".pub");
    (key, PathBuf::from(public))
}

/// `scan -q --sign-key KEY -o LOG EXTRA...` of `ev`.
fn signed_scan(ev: &Evidence, key: &Path, log: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "-q",
        "--sign-key",
        key.to_str().unwrap(),
        "-o",
        log.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    scan(ev.root(), &args)
}

/// A small tree with a few files in subdirectories.
fn small_tree(ev: &Evidence) {
    for i in 0..12 {
        ev.file(
            format!("d{}/f{i}.txt", i % 3),
            format!("file {i}\n").repeat(i + 1),
        );
    }
    ev.file("empty", "").symlink("link", "d0").fifo("pipe");
}

#[test]
fn a_scan_needs_case_and_examiner_and_records_them() {
    let ev = Evidence::new();
    small_tree(&ev);
    let mut cmd = triage();
    cmd.arg("scan").arg(ev.root()).arg("-q");
    let o = run(cmd, Duration::from_secs(60));
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--case ID --examiner NAME"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());
    let o = scan(ev.root(), &["-q", "--case", "0042", "--examiner", " "]);
    assert_eq!(code(&o), 2, "a blank examiner is no examiner");

    let log = ev.out("case.jsonl");
    let o = scan(
        ev.root(),
        &[
            "-q",
            "--case",
            "0042",
            "--evidence-id",
            "EXH-3",
            "--examiner",
            "A. Santos #1187",
            "--agency",
            "PNP ACG",
            "--notes",
            "laptop, seized 2026-11-28",
            "-o",
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let recs = records(&std::fs::read(&log).unwrap());
    let h = &recs[0];
    assert_eq!(h["case"]["case_id"], "0042");
    assert_eq!(h["case"]["evidence_id"], "EXH-3");
    assert_eq!(h["case"]["examiner"], "A. Santos #1187");
    assert_eq!(h["case"]["agency"], "PNP ACG");
    assert_eq!(h["case"]["notes"], "laptop, seized 2026-11-28");
    assert_eq!(h["no_case"], false);
    assert_eq!(h["tool"], "triage");
    assert_eq!(h["host"]["os_sysname"], "Linux");
    assert!(h["build"]["crates"]["blake3"].is_string());
    assert!(h["build"]["target"].as_str().unwrap().contains("linux"));
    assert_eq!(h["run_id"].as_str().unwrap().len(), 36);
    let argv: Vec<&str> = h["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&argv[1..3], ["scan", ev.root().to_str().unwrap()]);
    assert!(argv.contains(&"A. Santos #1187"));
    assert_eq!(h["checkpoints"]["every_entries"], 10_000);
    // Every line is chained: seq counts from 0, prev is the previous line's SHA-256.
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
    }
    let footer = recs.last().unwrap();
    assert_eq!(footer["record"], "summary");
    assert_eq!(footer["entries"], 15);
    assert!(footer["seal"].as_str().unwrap().starts_with("sha256:"));
    let o = verify(&log, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("15 entries"), "{}", stdout(&o));
    assert!(stdout(&o).contains("not signed"));
}

/// Prefix `prev` values are SHA-256 of the previous line as written; an
/// independent check with sha256sum-style hashing, and of the other
/// outputs' digests in the footer.
#[test]
fn chain_and_output_digests_are_checkable_by_anyone() {
    let ev = Evidence::new();
    small_tree(&ev);
    let (log, csv, hd) = (ev.out("a.jsonl"), ev.out("a.csv"), ev.out("a.hashdeep"));
    let o = scan(
        ev.root(),
        &[
            "-q",
            "-o",
            log.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
            "--hashdeep",
            hd.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    let mut prev = "0".repeat(64);
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["prev"], prev.as_str());
        prev = sha256_hex(line.as_bytes());
    }
    let recs = records(text.as_bytes());
    let h = &recs[0];
    assert_eq!(h["outputs"][0]["format"], "csv");
    assert_eq!(h["outputs"][1]["format"], "hashdeep");
    let footer = recs.last().unwrap();
    for (i, file) in [&csv, &hd].into_iter().enumerate() {
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(footer["outputs"][i]["sha256"], sha256_hex(&bytes).as_str());
        assert_eq!(footer["outputs"][i]["bytes"], bytes.len() as u64);
    }
    let o = verify(&log, &[]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains(&format!("chain head {prev}")),
        "{}",
        stdout(&o)
    );
}

/// Every kind of tampering fails verification, naming the line.
#[test]
fn tampering_is_found_and_the_line_named() {
    let ev = Evidence::new();
    small_tree(&ev);
    let (key, public) = keypair(&ev, "lab.key");
    let (_, other_public) = keypair(&ev, "other.key");
    let log = ev.out("signed.jsonl");
    let o = signed_scan(&ev, &key, &log, &["--checkpoint-every", "4"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let n = lines.len();
    assert!(original.contains(r#""record":"checkpoint""#));
    let pk = public.to_str().unwrap();
    let o = verify(&log, &["--pubkey", pk]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("(the given key)"));

    let bad = ev.out("bad.jsonl");
    // Verify a modified log; return the exit code and the line named.
    let check = |text: &str, args: &[&str]| -> (i32, u64, String) {
        std::fs::write(&bad, text).unwrap();
        let mut all = vec!["--pubkey", pk];
        all.extend_from_slice(args);
        let o = verify(&bad, &all);
        let err = stderr(&o);
        let named = err
            .split("line ")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("no line named: {err}"));
        (code(&o), named, err)
    };
    let join = |ls: &[String]| ls.join("\n") + "\n";
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    // One flipped byte in any line (in the middle of it, and in its prev).
    for i in 0..n {
        for at in [lines[i].len() / 2, 20] {
            let mut ls = owned.clone();
            let mut b = ls[i].clone().into_bytes();
            b[at] = if b[at] == b'1' { b'2' } else { b'1' };
            ls[i] = String::from_utf8(b).unwrap();
            let (c, named, err) = check(&join(&ls), &[]);
            assert_eq!(c, 6, "line {}: {err}", i + 1);
            // A changed prev blames the line itself; changed content is
            // caught by the next line's prev (or the line's own seal).
            assert_eq!(named, i as u64 + 1, "byte {at} of line {}: {err}", i + 1);
        }
    }
    // A deleted line, two swapped lines.
    for i in 1..n - 1 {
        let mut ls = owned.clone();
        ls.remove(i);
        let (c, named, err) = check(&join(&ls), &[]);
        assert_eq!(
            (c, named),
            (6, i as u64 + 1),
            "deleted line {}: {err}",
            i + 1
        );
        let mut ls = owned.clone();
        ls.swap(i, i + 1);
        let (c, named, err) = check(&join(&ls), &[]);
        assert_eq!((c, named), (6, i as u64 + 1), "swapped {}: {err}", i + 1);
    }
    // The footer deleted: the log is cut short, which verify reports as
    // incomplete (exit 7), naming where the footer should be.
    let (c, named, err) = check(&join(&owned[..n - 1]), &[]);
    assert_eq!((c, named), (7, n as u64), "{err}");
    assert!(err.contains("ends without a footer"), "{err}");
    // Truncated inside a line.
    let cut = &original[..original.len() - lines[n - 1].len() / 2];
    let (c, named, err) = check(cut, &[]);
    assert_eq!((c, named), (7, n as u64), "{err}");
    assert!(err.contains("incomplete line"), "{err}");
    // A forged line appended after the footer, correctly chained.
    let forged = format!(
        r#"{{"seq":{n},"prev":"{}","record":"skipped","path":"x","reason":"fifo"}}"#,
        sha256_hex(lines[n - 1].as_bytes())
    );
    let (c, named, err) = check(&format!("{original}{forged}\n"), &[]);
    assert_eq!((c, named), (6, n as u64 + 1), "{err}");
    assert!(err.contains("follows the footer"), "{err}");
    // The footer altered: its seal no longer verifies.
    let mut ls = owned.clone();
    ls[n - 1] = ls[n - 1].replace(r#""interrupted":false"#, r#""interrupted":true "#);
    let (c, named, err) = check(&join(&ls), &[]);
    assert_eq!((c, named), (6, n as u64), "{err}");
    assert!(err.contains("signature does not verify"), "{err}");
    // The wrong key: line 1 names the log's key.
    std::fs::write(&bad, &original).unwrap();
    let o = verify(&bad, &["--pubkey", other_public.to_str().unwrap()]);
    assert_eq!(code(&o), 6);
    assert!(
        stderr(&o).contains("line 1: the log is signed with key"),
        "{}",
        stderr(&o)
    );
    // A whole log re-chained without the key (the header's key removed, SHA-256
    // seals recomputed) fails against the given public key.
    let plain = ev.out("plain.jsonl");
    let o = scan(ev.root(), &["-q", "-o", plain.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let o = verify(&plain, &["--pubkey", pk]);
    assert_eq!(code(&o), 6);
    assert!(
        stderr(&o).contains("line 1: the log is not signed"),
        "{}",
        stderr(&o)
    );
    // The original still verifies: nothing above touched it.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), original);
}

/// The signature is plain Ed25519 over the documented message: OpenSSL
/// verifies a checkpoint with the public key file.
#[test]
fn openssl_verifies_a_checkpoint_signature() {
    if !have("openssl") {
        skip("openssl is not installed (apt-get install openssl)");
        return;
    }
    use base64::Engine as _;
    let ev = Evidence::new();
    small_tree(&ev);
    let (key, public) = keypair(&ev, "k");
    let log = ev.out("l.jsonl");
    let o = signed_scan(&ev, &key, &log, &[]);
    assert_eq!(code(&o), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let footer = text.lines().last().unwrap();
    let at = footer.rfind(r#","seal":"ed25519:"#).unwrap();
    let sig = &footer[at + r#","seal":"ed25519:"#.len()..footer.len() - 2];
    let mut message = b"triage-audit-log/1\n".to_vec();
    message.extend_from_slice(&footer.as_bytes()[..at]);
    message.push(b'}');
    let (msg, sigf) = (ev.out("msg"), ev.out("sig"));
    std::fs::write(&msg, &message).unwrap();
    std::fs::write(
        &sigf,
        base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap(),
    )
    .unwrap();
    let openssl = |msg: &Path| {
        let mut cmd = Command::new("openssl");
        cmd.args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(&public)
            .arg("-rawin")
            .arg("-in")
            .arg(msg)
            .arg("-sigfile")
            .arg(&sigf);
        run(cmd, Duration::from_secs(30))
    };
    let o = openssl(&msg);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    message[40] ^= 1;
    std::fs::write(&msg, &message).unwrap();
    assert_ne!(code(&openssl(&msg)), 0);
}

/// Kill the scan with SIGKILL at 20 random moments: each time the log's
/// complete prefix verifies, and `--resume` ends with exactly the records
/// of an uninterrupted scan.
#[test]
fn killed_scans_verify_and_resume_to_the_same_records() {
    let ev = Evidence::new();
    // 190 MiB in 190 files plus the fixture tree with its images and hits.
    for i in 0..190u32 {
        let block: Vec<u8> = (0..4096u32).map(|j| (i * 31 + j) as u8).collect();
        ev.file(format!("bulk/{:02}/{i:03}.bin", i % 7), block.repeat(256));
    }
    copy_tree(&repo().join("fixtures/evidence"), &ev.path(b"fixtures"));
    let sets = repo().join("fixtures/hashsets/sample-alert.tset");
    let (key, public) = keypair(&ev, "k");
    let common = |log: &Path| -> Vec<String> {
        [
            "-q",
            "--hashset",
            sets.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
            "--checkpoint-every",
            "16",
            "--threads",
            "1",
            "-o",
            log.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let full = ev.out("full.jsonl");
    let args = common(&full);
    let t0 = std::time::Instant::now();
    let o = scan(
        ev.root(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // Kill at random moments within the time a whole scan takes here.
    let whole = t0.elapsed();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let want = entry_lines(&full);
    assert_eq!(want.len(), 190 + 11);

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill test seed {seed}");
    let mut killed_mid_way = 0;
    for run_no in 0..20 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = whole.mul_f64(0.03 + 0.9 * ((seed >> 11) as f64 / (1u64 << 53) as f64));
        let log = ev.out(&format!("killed-{run_no}.jsonl"));
        let mut cmd = triage();
        cmd.arg("scan")
            .arg(ev.root())
            .args(common(&log))
            .arg("--no-case")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if !log.exists() {
            // Killed while starting (finding FFmpeg, opening the sets),
            // before the log was created: there is nothing to verify.
            continue;
        }
        let pk = public.to_str().unwrap();
        let o = verify(&log, &["--pubkey", pk]);
        match code(&o) {
            0 => {
                assert!(status.success() || status.code() == Some(1));
                continue; // finished before the kill
            }
            7 => killed_mid_way += 1,
            c => panic!(
                "run {run_no} (kill at {delay:?}): verify exit {c}: {}",
                stderr(&o)
            ),
        }
        let mut cmd = triage();
        cmd.args(["scan", "-q", "--resume"])
            .arg(&log)
            .arg("--sign-key")
            .arg(&key);
        let o = run(cmd, Duration::from_secs(120));
        assert_eq!(code(&o), 1, "resume of run {run_no}: {}", stderr(&o));
        let o = verify(&log, &["--pubkey", pk]);
        assert_eq!(code(&o), 0, "run {run_no}: {}", stderr(&o));
        assert!(stdout(&o).contains("1 resumes"), "{}", stdout(&o));
        let got = entry_lines(&log);
        assert_eq!(got.len(), want.len(), "run {run_no}");
        assert!(
            got == want,
            "run {run_no}: records differ from the uninterrupted scan"
        );
        let recs = records(&std::fs::read(&log).unwrap());
        let full_recs = records(&std::fs::read(&full).unwrap());
        let (a, b) = (recs.last().unwrap(), full_recs.last().unwrap());
        for k in [
            "files_hashed",
            "files_matched",
            "matches",
            "entries",
            "bytes_hashed",
        ] {
            assert_eq!(a[k], b[k], "footer {k}");
        }
    }
    eprintln!("{killed_mid_way} of 20 runs were killed mid-scan");
    assert!(
        killed_mid_way >= 10,
        "the scan finished too fast to test kills"
    );
}

/// Entry records of a log without their chain keys, in log order.
pub(crate) fn entry_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| {
            l.contains(r#""record":"file""#)
                || l.contains(r#""record":"skipped""#)
                || l.contains(r#""record":"failed""#)
        })
        .map(unchained)
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    let o = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn resume_refuses_what_it_cannot_continue() {
    let ev = Evidence::new();
    small_tree(&ev);
    let log = ev.out("done.jsonl");
    assert_eq!(
        code(&scan(ev.root(), &["-q", "-o", log.to_str().unwrap()])),
        0
    );
    let resume = |log: &Path, extra: &[&str]| {
        let mut cmd = triage();
        cmd.args(["scan", "-q", "--resume"]).arg(log).args(extra);
        run(cmd, Duration::from_secs(60))
    };
    let before = std::fs::read(&log).unwrap();
    let o = resume(&log, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("finished scan"), "{}", stderr(&o));
    // A damaged log is not continued (exit 6), and not changed.
    let mut damaged = before.clone();
    damaged[200] ^= 1;
    std::fs::write(&log, &damaged).unwrap();
    let o = resume(&log, &[]);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert_eq!(std::fs::read(&log).unwrap(), damaged);
    // A cut log of a signed scan needs its key.
    let (key, _) = keypair(&ev, "k");
    let signed = ev.out("signed.jsonl");
    let o = signed_scan(&ev, &key, &signed, &[]);
    assert_eq!(code(&o), 0);
    let text = std::fs::read_to_string(&signed).unwrap();
    let cut: Vec<&str> = text.lines().take(5).collect();
    std::fs::write(&signed, cut.join("\n") + "\n").unwrap();
    let o = resume(&signed, &[]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("give it with --sign-key"),
        "{}",
        stderr(&o)
    );
    let o = resume(&signed, &["--sign-key", key.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&verify(&signed, &[])), 0);
    // Scan options cannot be changed on resume.
    let o = resume(&signed, &["--hash", "md5"]);
    assert_eq!(code(&o), 2);
}

/// SIGINT and SIGTERM close the log with a footer that says so; the log
/// verifies as interrupted (exit 7) and `--resume` finishes it.
#[test]
fn interrupted_log_is_closed_and_resumable() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        interrupted_by(signal);
    }
}

fn interrupted_by(signal: i32) {
    let ev = Evidence::new();
    ev.file("a", "1");
    // Hashing 4 GiB takes seconds: time to interrupt, and to resume.
    ev.sparse("big", 4 << 30, &[(0, b"x")]);
    ev.file("z", "2");
    let log = ev.out("int.jsonl");
    let mut cmd = triage();
    cmd.arg("scan")
        .arg(ev.root())
        .args(["-q", "--no-case", "--hash", "md5", "-o"])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 130, "signal {signal}: {}", stderr(&o));
    let v = verify(&log, &[]);
    assert_eq!(code(&v), 7, "{}{}", stdout(&v), stderr(&v));
    assert!(stdout(&v).contains("interrupted"), "{}", stdout(&v));
    let recs = records(&std::fs::read(&log).unwrap());
    assert_eq!(recs.last().unwrap()["interrupted"], true);
    let mut cmd = triage();
    cmd.args(["scan", "-q", "--resume"]).arg(&log);
    let o = run(cmd, Duration::from_secs(300));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&verify(&log, &[])), 0);
    let paths: Vec<String> = entries(&std::fs::read(&log).unwrap())
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["a", "big", "z"]);
}

/// `verify --evidence` reports, in hashdeep's terms, a changed, a moved, a
/// deleted and an added file.
#[test]
fn verify_evidence_finds_changed_moved_missing_and_new_files() {
    let ev = Evidence::new();
    small_tree(&ev);
    let log = ev.out("e.jsonl");
    assert_eq!(
        code(&scan(ev.root(), &["-q", "-o", log.to_str().unwrap()])),
        0
    );
    let root = ev.root().to_str().unwrap();
    let o = verify(&log, &["--evidence", root]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("13 files matched, 0 changed, 0 moved, 0 missing, 0 new"),
        "{}",
        stdout(&o)
    );

    ev.file("d0/f0.txt", "changed");
    std::fs::rename(ev.path(b"d1/f1.txt"), ev.path(b"d2/moved.txt")).unwrap();
    std::fs::remove_file(ev.path(b"d2/f2.txt")).unwrap();
    ev.file("d0/new.txt", "new");
    let o = verify(&log, &["--evidence", root]);
    assert_eq!(code(&o), 6, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("changed: d0/f0.txt\n"), "{out}");
    assert!(out.contains("moved: d1/f1.txt -> d2/moved.txt\n"), "{out}");
    assert!(out.contains("missing: d2/f2.txt\n"), "{out}");
    assert!(out.contains("new: d0/new.txt\n"), "{out}");
    assert!(
        out.contains("10 files matched, 1 changed, 1 moved, 1 missing, 1 new"),
        "{out}"
    );
}

#[test]
fn keygen_never_overwrites() {
    let ev = Evidence::new();
    let (key, public) = keypair(&ev, "k");
    let before = std::fs::read(&key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let mut cmd = triage();
    cmd.arg("keygen").arg("-o").arg(&key);
    let o = run(cmd, Duration::from_secs(30));
    assert_eq!(code(&o), 2);
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // A public key is not a signing key.
    let o = scan(ev.root(), &["-q", "--sign-key", public.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("not an Ed25519 private key"),
        "{}",
        stderr(&o)
    );
}

/// A log sent to a device or a pipe, which cannot be synced, still gets
/// its checkpoints (the sync is what is skipped).
#[test]
fn logs_to_devices_and_pipes_need_no_sync() {
    let ev = Evidence::new();
    small_tree(&ev);
    let o = scan(
        ev.root(),
        &[
            "-q",
            "--force",
            "-o",
            "/dev/null",
            "--checkpoint-every",
            "2",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = scan(ev.root(), &["-q", "--checkpoint-every", "2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let kinds: Vec<String> = records(&o.stdout)
        .iter()
        .map(|r| r["record"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "checkpoint").count(), 7);
}

/// A scan (or `--resume`) of a tree with a 64 GiB sparse file, which is
/// hashed as zeros for minutes: it runs until told to stop.
fn long_scan(args: &[&str]) -> std::process::Child {
    let mut cmd = triage();
    cmd.args(["scan", "-q"]);
    if !args.contains(&"--resume") {
        cmd.args(["--no-case", "--hash", "md5"]);
    }
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

/// Stops `child` with SIGINT and waits for it: exit 130.
fn interrupt(child: std::process::Child) -> Output {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    o
}

/// Waits until `log` has its header (the writer holds the lock by then).
fn wait_for_header(log: &Path) {
    let start = std::time::Instant::now();
    while std::fs::read(log).map_or(true, |b| !b.contains(&b'\n')) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no header in {log:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The audit log has one writer: a second `scan -o same --force`, a second
/// `--resume` of one log, and a `--resume` of a log a scan is still
/// writing each refuse at once with exit 2, name the process that holds
/// the log, and leave it as it was; the log then verifies (issue 11, item 2).
#[test]
fn a_log_has_one_writer() {
    let ev = Evidence::new();
    ev.file("a", "1");
    ev.sparse("big", 64 << 30, &[(0, b"x")]);
    ev.file("z", "2");
    let log = ev.out("one.jsonl");
    let root = ev.root().to_str().unwrap().to_string();
    let log_s = log.to_str().unwrap().to_string();
    let second = |args: &[&str]| {
        let mut cmd = triage();
        cmd.args(args);
        run(cmd, Duration::from_secs(30))
    };
    let refused_by = |o: &Output, pid: u32| {
        assert_eq!(code(o), 2, "{}", stderr(o));
        assert!(
            stderr(o).contains(&format!("is in use by process {pid}")),
            "{}",
            stderr(o)
        );
    };

    // Race 1: two scans into one log.
    let first = long_scan(&[&root, "-o", &log_s, "--force"]);
    wait_for_header(&log);
    let before = std::fs::read(&log).unwrap();
    let o = second(&["scan", &root, "--no-case", "-o", &log_s, "--force"]);
    refused_by(&o, first.id());
    // Race 3: a resume of the log the running scan writes.
    let o = second(&["scan", "--resume", &log_s]);
    refused_by(&o, first.id());
    let now = std::fs::read(&log).unwrap();
    assert!(
        now.starts_with(&before),
        "the refused writers touched the log"
    );
    interrupt(first);
    let v = verify(&log, &[]);
    assert_eq!(code(&v), 7, "interrupted, intact: {}", stderr(&v));

    // Race 2: two resumes of one unfinished log.
    let first = long_scan(&["--resume", &log_s]);
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains(r#""record":"resume""#)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the first resume never began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = second(&["scan", "--resume", &log_s]);
    refused_by(&o, first.id());
    interrupt(first);
    let v = verify(&log, &[]);
    assert_eq!(code(&v), 7, "{}", stderr(&v));

    // Side outputs are locked too.
    let csv = ev.out("one.csv");
    let log2 = ev.out("two.jsonl");
    let first = long_scan(&[
        &root,
        "-o",
        log2.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--force",
    ]);
    wait_for_header(&log2);
    let o = second(&[
        "scan",
        &root,
        "--no-case",
        "-o",
        &ev.out("three.jsonl").to_string_lossy(),
        "--csv",
        csv.to_str().unwrap(),
        "--force",
    ]);
    refused_by(&o, first.id());
    assert!(
        !ev.out("three.jsonl").exists(),
        "refused before the log was made"
    );
    interrupt(first);
}
