//! Exit codes: one rule for every command (2 usage or a missing or wrong
//! input, 5 an I/O failure, 6 an altered or damaged input), each code each
//! command documents reproduced here, and each command's `--help` listing
//! exactly the codes it returns. Codes that need a special setup are shown
//! by the test named beside them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::testenv::*;

/// `triage ARGS`, stdout captured.
fn t(args: &[&str]) -> Output {
    let mut cmd = triage();
    cmd.args(args);
    run(cmd, Duration::from_secs(120))
}

/// `triage ARGS` with stdout on /dev/full: every write to it fails (ENOSPC).
fn to_full_disk(args: &[&str]) -> Output {
    let mut cmd = triage();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "{args:?} hung");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn expect(o: &Output, want: i32, needle: &str) {
    assert_eq!(code(o), want, "stderr: {}", err(o));
    assert!(
        err(o).contains(needle) || String::from_utf8_lossy(&o.stdout).contains(needle),
        "{needle:?} not said: {}",
        err(o)
    );
    if code(o) == 2 || code(o) == 5 || code(o) == 6 {
        // One error style: our prefix, never clap's bare "error:" or a panic.
        assert!(!err(o).contains("panicked"), "{}", err(o));
        assert!(
            err(o)
                .lines()
                .any(|l| l.starts_with("triage: error: ") || l.starts_with("triage: ")),
            "{}",
            err(o)
        );
    }
}

struct Logs {
    ev: Evidence,
    complete: PathBuf,
    incomplete: PathBuf,
    altered: PathBuf,
    garbage: PathBuf,
}

fn logs() -> Logs {
    let ev = Evidence::new();
    ev.file("a.txt", "a").file("b.txt", "b");
    let complete = ev.out("complete.jsonl");
    let o = scan(ev.root(), &["-q", "-o", complete.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let text = std::fs::read_to_string(&complete).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // No footer: the log of a killed scan.
    let incomplete = ev.out("incomplete.jsonl");
    std::fs::write(&incomplete, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let altered = ev.out("altered.jsonl");
    std::fs::write(&altered, text.replacen("a.txt", "A.txt", 1)).unwrap();
    let garbage = ev.out("garbage.bin");
    std::fs::write(&garbage, b"\x00\x01 random bytes, not a log\n").unwrap();
    Logs {
        ev,
        complete,
        incomplete,
        altered,
        garbage,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn scan_codes() {
    let ev = Evidence::new();
    ev.file("a", "1");
    let root = s(ev.root());
    expect(&t(&["scan", root, "--no-case", "-q"]), 0, "");
    // 1, 6: hashsets::a_scan_verifies_every_set_it_uses; 3, 4:
    // scan::unreadable_file_fails_with_the_os_error; 130: scan::sigint_stops_cleanly.
    expect(
        &t(&["scan", root, "--bogus"]),
        2,
        "unexpected argument '--bogus'",
    );
    expect(
        &t(&["scan", "/nonexistent-root", "--no-case"]),
        2,
        "No such file",
    );
    expect(&t(&["scan", root]), 2, "needs the case and the examiner");
    let sig = ev.out("no.key");
    expect(
        &t(&["scan", root, "--no-case", "--sign-key", s(&sig)]),
        2,
        "does not exist",
    );
    expect(
        &t(&["scan", root, "--no-case", "--pdq-distance", "300"]),
        2,
        "beyond 128",
    );
    expect(
        &t(&["scan", root, "--no-case", "--img-distance", "33"]),
        2,
        "beyond 32",
    );
    expect(
        &t(&["scan", root, "--no-case", "--pdq-min-quality", "101"]),
        2,
        "beyond 100",
    );
    let warn = t(&["scan", root, "--no-case", "--pdq-distance", "64"]);
    expect(&warn, 0, "warning: --pdq-distance 64 is above 63");
    expect(
        &t(&["scan", root, "--no-case", "-o", "/dev/full", "--force"]),
        5,
        "No space left on device",
    );
}

#[test]
fn verify_and_report_codes() {
    let l = logs();
    expect(&t(&["verify", s(&l.complete)]), 0, "complete");
    expect(&t(&["verify", "/nonexistent.jsonl"]), 2, "does not exist");
    expect(
        &t(&["verify", s(&l.garbage)]),
        2,
        "is not a triage audit log",
    );
    expect(&t(&["verify", s(l.ev.root())]), 2, "is a directory");
    expect(
        &to_full_disk(&["verify", s(&l.complete)]),
        5,
        "No space left",
    );
    expect(&t(&["verify", s(&l.altered)]), 6, "DOES NOT VERIFY");
    expect(&t(&["verify", s(&l.incomplete)]), 7, "INCOMPLETE");

    let out = l.ev.out("r.csv");
    let report = |log: &Path| {
        t(&[
            "report",
            s(log),
            "--format",
            "csv",
            "-o",
            s(&out),
            "--force",
        ])
    };
    expect(&report(&l.complete), 0, "");
    expect(
        &report(Path::new("/nonexistent.jsonl")),
        2,
        "does not exist",
    );
    expect(&report(&l.garbage), 2, "is not a triage audit log");
    expect(
        &t(&["report", s(&l.complete), "--format", "pdf"]),
        2,
        "unknown report format",
    );
    expect(
        &to_full_disk(&["report", s(&l.complete), "--format", "csv"]),
        5,
        "No space left",
    );
    expect(&report(&l.altered), 6, "DOES NOT VERIFY");
    expect(&report(&l.incomplete), 7, "did not finish");
}

#[test]
fn keygen_and_hash_image_codes() {
    let ev = Evidence::new();
    let key = ev.out("k");
    expect(&t(&["keygen", "-o", s(&key)]), 0, "fingerprint");
    expect(
        &t(&["keygen", "-o", s(&key)]),
        2,
        "keys are never overwritten",
    );
    expect(
        &t(&["keygen", "-o", s(&ev.out("no/such/dir/k"))]),
        2,
        "its directory does not exist",
    );
    // 5: a full disk, with a tmpfs of one page filled first (root only).
    let full = ev.out("full");
    std::fs::create_dir_all(&full).unwrap();
    let tmpfs = ["-t", "tmpfs", "-o", "size=4k", "tmpfs"].map(std::ffi::OsStr::new);
    if let Some(_g) = mount(&tmpfs[..], full.clone(), "mounting a tmpfs") {
        let _ = std::fs::write(full.join("filler"), vec![0u8; 4096]);
        let o = t(&["keygen", "-o", s(&full.join("k"))]);
        expect(&o, 5, "No space left");
        assert!(!full.join("k").exists(), "no half-written key");
    }

    let img = repo().join("fixtures/images/shapes-800x600.png");
    expect(&t(&["hash-image", s(&img)]), 0, "pdq/1");
    expect(
        &t(&["hash-image", s(&img), "--perceptual", "md5"]),
        2,
        "unknown perceptual hash",
    );
    ev.file("not-an-image.jpg", "text");
    expect(
        &t(&["hash-image", s(&ev.path(b"not-an-image.jpg"))]),
        3,
        "not-an-image.jpg",
    );
    expect(&to_full_disk(&["hash-image", s(&img)]), 5, "No space left");
}

#[test]
fn hashset_codes() {
    let ev = Evidence::new();
    let list = ev.out("l.txt");
    std::fs::write(&list, "39cb097008d17660abd0539891a672af\n").unwrap();
    let set = ev.out("l.tset");
    let import = |extra: &[&str]| {
        let mut a = vec!["hashset", "import", "--name", "l", "--force", "-o", s(&set)];
        a.extend_from_slice(extra);
        t(&a)
    };
    expect(&import(&[s(&list)]), 0, "1 entries");
    expect(&import(&["/nonexistent.txt"]), 2, "does not exist");
    let sha = ev.out("sha.txt");
    std::fs::write(
        &sha,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
    )
    .unwrap();
    expect(&import(&[s(&sha)]), 2, "--algorithm");
    // Random bytes forced to a binary format: said to be not that format.
    let random = ev.out("random.bin");
    std::fs::write(&random, [0x5au8; 3000]).unwrap();
    expect(
        &import(&[s(&random), "--format", "encase"]),
        2,
        "not an EnCase .hash file",
    );
    let mixed = ev.out("mixed.txt");
    std::fs::write(&mixed, "39cb097008d17660abd0539891a672af\nnonsense\n").unwrap();
    expect(&import(&[s(&mixed)]), 3, "rejected at 2");
    let empty = ev.out("empty.txt");
    std::fs::write(&empty, "# nothing\n").unwrap();
    expect(
        &import(&[s(&empty), "--format", "text"]),
        5,
        "no entries to import",
    );
    expect(&import(&[s(&list)]), 0, "");

    let truncated = ev.out("t.tset");
    let bytes = std::fs::read(&set).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 8]).unwrap();
    let not_a_set = ev.out("n.tset");
    std::fs::write(&not_a_set, "hello").unwrap();

    expect(&t(&["hashset", "info", s(&set)]), 0, "name     l");
    expect(
        &t(&["hashset", "info", "/nonexistent.tset"]),
        2,
        "does not exist",
    );
    expect(
        &t(&["hashset", "info", s(&not_a_set)]),
        2,
        "not a triage hash-set index",
    );
    expect(
        &to_full_disk(&["hashset", "info", s(&set)]),
        5,
        "No space left",
    );
    expect(&t(&["hashset", "info", s(&truncated)]), 6, "truncated");

    expect(&t(&["hashset", "verify", s(&set)]), 0, "OK");
    expect(
        &t(&["hashset", "verify", "/nonexistent.tset"]),
        2,
        "does not exist",
    );
    expect(
        &t(&["hashset", "verify", s(&not_a_set)]),
        2,
        "not a triage hash-set index",
    );
    expect(
        &to_full_disk(&["hashset", "verify", s(&set)]),
        5,
        "No space left",
    );
    expect(&t(&["hashset", "verify", s(&truncated)]), 6, "FAILED");

    let md5 = "39cb097008d17660abd0539891a672af";
    expect(
        &t(&[
            "hashset",
            "lookup",
            s(&set),
            "00000000000000000000000000000000",
        ]),
        0,
        "",
    );
    expect(&t(&["hashset", "lookup", s(&set), md5]), 1, md5);
    expect(
        &t(&["hashset", "lookup", s(&set), "xyz"]),
        2,
        "not a hexadecimal hash",
    );
    expect(
        &t(&["hashset", "lookup", s(&set), md5, "--distance", "200"]),
        2,
        "beyond 128",
    );
    expect(
        &to_full_disk(&["hashset", "lookup", s(&set), md5]),
        5,
        "No space left",
    );
    expect(
        &t(&["hashset", "lookup", s(&truncated), md5]),
        6,
        "truncated",
    );
}

/// `verify-image`: 0 when the medium has its stored MD5, 2 for a file
/// that is no image, 6 for a damaged chunk (named).
#[test]
fn verify_image_codes() {
    let shared = repo().join("../shared/evidence-images/ext2.E01");
    if !shared.exists() {
        skip("../shared/evidence-images is absent (../shared is not checked out)");
        return;
    }
    let ev = Evidence::new();
    let img = ev.out("ext2.E01");
    std::fs::copy(&shared, &img).unwrap();
    expect(&t(&["verify-image", s(&img)]), 0, "");
    ev.file("notes.txt", "not an image");
    expect(
        &t(&["verify-image", s(&ev.path(b"notes.txt"))]),
        2,
        "not a disk image",
    );
    // One byte inside the compressed chunk data (past the headers).
    let mut bytes = std::fs::read(&img).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xFF;
    std::fs::write(&img, &bytes).unwrap();
    let o = t(&["verify-image", s(&img)]);
    expect(&o, 6, "not what was acquired");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("EWF chunk"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Each command's `--help` lists exactly the codes it returns (the ones
/// reproduced above), and no other command's.
#[test]
fn help_lists_each_commands_own_codes() {
    let want: &[(&[&str], &[u8])] = &[
        (&["scan"], &[0, 1, 2, 3, 4, 5, 6, 130]),
        (&["verify"], &[0, 2, 5, 6, 7]),
        (&["verify-image"], &[0, 2, 6]),
        (&["report"], &[0, 2, 5, 6, 7]),
        (&["keygen"], &[0, 2, 5]),
        (&["hash-image"], &[0, 2, 3, 5]),
        (&["hashset", "import"], &[0, 2, 3, 5]),
        (&["hashset", "info"], &[0, 2, 5, 6]),
        (&["hashset", "verify"], &[0, 2, 5, 6]),
        (&["hashset", "lookup"], &[0, 1, 2, 5, 6]),
    ];
    for (cmd, codes) in want {
        let mut args = cmd.to_vec();
        args.push("--help");
        let o = t(&args);
        assert_eq!(code(&o), 0);
        let help = String::from_utf8(o.stdout).unwrap();
        let section = help
            .split("Exit status:")
            .nth(1)
            .unwrap_or_else(|| panic!("{cmd:?}: no exit section: {help}"));
        let listed: Vec<u8> = section
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        assert_eq!(&listed, codes, "{cmd:?}: {section}");
    }
    let top = String::from_utf8(t(&["--help"]).stdout).unwrap();
    assert!(top.contains("each command's --help lists its own"), "{top}");
    let v = String::from_utf8(t(&["--version"]).stdout).unwrap();
    assert!(v.starts_with("triage 0.1.0 (git "), "{v}");
    assert!(v.contains("decodes ") && v.contains("png"), "{v}");
}

/// Ensure the command used by `to_full_disk` really fails writes.
#[test]
fn dev_full_is_full() {
    let o = Command::new("sh")
        .arg("-c")
        .arg("echo x > /dev/full")
        .output()
        .unwrap();
    assert!(!o.status.success());
}
