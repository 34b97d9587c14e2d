//! `triage scan`: digests, walk rules, evidence protection, formats, exit codes.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use triage_core::record::OutputFormat;
use triage_core::record::jsonl::{Line, Reader};

use crate::testenv::*;

const EMPTY: [&str; 4] = [
    "d41d8cd98f00b204e9800998ecf8427e",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
];
const ALGS: [&str; 4] = ["md5", "sha1", "sha256", "blake3"];

/// The digest `tool` (md5sum, b3sum, ...) prints for `path`.
fn tool_digest(tool: &str, path: &std::path::Path) -> String {
    let out = Command::new(tool).arg(path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn digests(e: &serde_json::Value) -> [String; 4] {
    ALGS.map(|a| e[a].as_str().unwrap_or("").to_string())
}

/// The bundled sample tree against digests recorded by md5sum, sha1sum,
/// sha256sum and b3sum (fixtures/evidence.digests).
#[test]
fn fixture_digests_match_coreutils_and_b3sum() {
    let root = repo().join("fixtures/evidence");
    let o = scan(&root, &["-q"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let got = entries(&o.stdout);
    let table = std::fs::read_to_string(repo().join("fixtures/evidence.digests")).unwrap();
    let mut n = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let e = entry(&got, cols[0]);
        assert_eq!(digests(e).to_vec(), cols[1..5].to_vec(), "{}", cols[0]);
        n += 1;
    }
    assert_eq!(n, got.len(), "every fixture file is in the digest table");
    let hidden = entry(&got, "Windows/System32/checker.dll");
    assert_eq!(hidden["type"], "png");
    assert_eq!(hidden["ext_mismatch"], true);
    assert_eq!(entry(&got, "DCIM/100PHOTO/shapes.bmp")["type"], "bmp");
    assert_eq!(
        entry(&got, "DCIM/100PHOTO/shapes.bmp")["ext_mismatch"],
        false
    );
    assert_eq!(entry(&got, "Documents/empty.dat")["empty"], true);
}

/// If the tools are here, check them live too, on files the scan hashes
/// with the split (two-thread) path: above 4 MiB.
#[test]
fn large_file_digests_match_the_tools() {
    let tools = ["md5sum", "sha1sum", "sha256sum", "b3sum"];
    if !tools.iter().all(|t| have(t)) {
        skip(
            "needs md5sum, sha1sum, sha256sum and b3sum on PATH (apt-get install coreutils b3sum)",
        );
        return;
    }
    let ev = Evidence::new();
    let big: Vec<u8> = (0..(5u32 << 20) + 1)
        .map(|i| (i ^ (i >> 9)) as u8)
        .collect();
    ev.file("big.bin", &big);
    let o = scan(ev.root(), &["-q", "--threads", "2"]);
    assert_eq!(code(&o), 0);
    let e = entries(&o.stdout);
    let e = entry(&e, "big.bin");
    for (alg, tool) in ALGS.iter().zip(tools) {
        let want = tool_digest(tool, &ev.path(b"big.bin"));
        assert_eq!(e[alg].as_str().unwrap(), want, "{tool}");
    }
}

#[test]
fn empty_and_one_byte_files() {
    let ev = Evidence::new();
    ev.file("empty", "").file("one", [0x61u8]);
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0);
    let got = entries(&o.stdout);
    let empty = entry(&got, "empty");
    assert_eq!(digests(empty), EMPTY.map(String::from));
    assert_eq!(empty["empty"], true);
    assert_eq!(empty["type"], "empty");
    let one = entry(&got, "one");
    assert_eq!(one["empty"], false);
    assert_eq!(one["md5"], "0cc175b9c0f1b6a831c399e269772661");
    assert_eq!(one["sha1"], "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8");
    assert_eq!(
        one["sha256"],
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    );
}

/// Files hashed in SIMD lane groups (many files side by side, MD5 in the
/// lanes): every size up to 130 bytes (block and padding edges), sizes at
/// the 256 KiB piece edge, 300 files of random sizes (groups that fill,
/// thin out and refill), big files sharing lanes, a sparse file. Every
/// digest equals coreutils' and b3sum's, and the records are the same with
/// one reader and one thread (big files read alone) as with eight readers.
#[test]
fn lane_groups_equal_coreutils() {
    let tools = [
        ("md5", "md5sum"),
        ("sha1", "sha1sum"),
        ("sha256", "sha256sum"),
        ("blake3", "b3sum"),
    ];
    if tools.iter().any(|(_, t)| !have(t)) {
        skip(
            "needs md5sum, sha1sum, sha256sum and b3sum on PATH (apt-get install coreutils b3sum)",
        );
        return;
    }
    let ev = Evidence::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let piece = 256 * 1024;
    for n in 0..=130 {
        ev.file(format!("edge/{n:03}"), bytes(n));
    }
    for n in [piece - 1, piece, piece + 1, 3 * piece + 17] {
        ev.file(format!("piece/{n}"), bytes(n));
    }
    for i in 0..300 {
        let n = (i * 7919 % 20_011) + 1;
        ev.file(format!("random/{i:03}"), bytes(n));
    }
    for i in 0..10 {
        ev.file(format!("big/{i}"), bytes((1 << 20) + i * 300_007));
    }
    ev.sparse(
        "sparse",
        4 << 20,
        &[
            (0, b"head"),
            ((1 << 20) + 3, b"middle"),
            ((4 << 20) - 1, b"Z"),
        ],
    );
    let run = |args: &[&str]| {
        let mut all = vec!["-q"];
        all.extend_from_slice(args);
        let o = scan(ev.root(), &all);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        entries(&o.stdout)
    };
    let lanes = run(&["--readers", "8"]);
    // The kernel the lanes ran on is in the header; CI machines have AVX2.
    let o = scan(ev.root(), &["-q", "--hash", "md5", "--readers", "8"]);
    let header = &records(&o.stdout)[0];
    let dispatch = header["build"]["dispatch"].to_string();
    assert!(dispatch.contains("md5-lanes:"), "{dispatch}");
    if std::env::var_os("CI").is_some() {
        assert!(dispatch.contains("md5-lanes:avx"), "{dispatch}");
    }
    assert_eq!(lanes.len(), 131 + 4 + 300 + 10 + 1);
    // The oracle: each tool once over every file.
    let paths: Vec<String> = lanes
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    for (alg, tool) in tools {
        let out = Command::new(tool)
            .current_dir(ev.root())
            .args(&paths)
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool}");
        let text = String::from_utf8(out.stdout).unwrap();
        let want: std::collections::HashMap<&str, &str> = text
            .lines()
            .map(|l| {
                let (d, p) = l.split_once("  ").unwrap();
                (p, d)
            })
            .collect();
        for e in &lanes {
            let p = e["path"].as_str().unwrap();
            assert_eq!(e[alg].as_str(), Some(want[p]), "{tool} {p}");
        }
    }
    let alone = run(&["--readers", "1", "--threads", "1"]);
    let key = |v: &[serde_json::Value]| -> Vec<(String, [String; 4])> {
        v.iter()
            .map(|e| (e["path"].as_str().unwrap().to_string(), digests(e)))
            .collect()
    };
    assert_eq!(key(&lanes), key(&alone));
}

/// A 2 GiB + 5 byte sparse file (past the 2^31 offset) with data in a few
/// places: the digests equal md5sum's and b3sum's of the same file.
#[test]
fn multi_gib_sparse_file() {
    if !have("md5sum") || !have("b3sum") {
        skip("needs md5sum and b3sum on PATH (apt-get install coreutils b3sum)");
        return;
    }
    let ev = Evidence::new();
    let size = (2u64 << 30) + 5;
    ev.sparse(
        "disk.img",
        size,
        &[
            (0, b"MBR!"),
            (1 << 30, b"middle"),
            ((2 << 30) - 3, b"across"),
            (size - 1, b"Z"),
        ],
    );
    let blocks = std::fs::metadata(ev.path(b"disk.img")).unwrap().blocks();
    assert!(
        blocks * 512 < 1 << 20,
        "the test file should be sparse here"
    );
    let o = scan(ev.root(), &["-q", "--hash", "md5,blake3"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let e = entries(&o.stdout);
    let e = entry(&e, "disk.img");
    assert_eq!(e["bytes_read"], size);
    for (alg, tool) in [("md5", "md5sum"), ("blake3", "b3sum")] {
        let want = tool_digest(tool, &ev.path(b"disk.img"));
        assert_eq!(e[alg].as_str().unwrap(), want, "{tool}");
    }
}

/// A Latin-1 name is not UTF-8: JSON keeps it as base64, CSV too, hashdeep
/// writes the raw bytes.
#[test]
fn non_utf8_name_survives_every_format() {
    let ev = Evidence::new();
    let name: &[u8] = b"caf\xe9 photo.jpg";
    ev.file(name, "x");
    let o = scan(ev.root(), &["-q"]);
    let e = &entries(&o.stdout)[0];
    assert!(e.get("path").is_none());
    let raw = base64::engine::general_purpose::STANDARD
        .decode(e["path_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, name);

    let o = scan_as(&ev, "csv", &["-q"]);
    let mut rows = csv::Reader::from_reader(&o.stdout[..]);
    let row = rows.records().next().unwrap().unwrap();
    assert_eq!(&row[1], "");
    assert_eq!(&row[2], e["path_b64"].as_str().unwrap());

    let o = scan_as(&ev, "hashdeep", &["-q"]);
    let mut want = ev.root().as_os_str().as_bytes().to_vec();
    want.extend_from_slice(b"/");
    want.extend_from_slice(name);
    want.push(b'\n');
    assert!(o.stdout.windows(want.len()).any(|w| w == want));
}

/// Names with commas, quotes, tabs and a newline stay intact in JSON and CSV.
#[test]
fn awkward_names_in_json_and_csv() {
    let ev = Evidence::new();
    let names = ["a,b.txt", "say \"hi\".txt", "tab\there", "new\nline"];
    for n in names {
        ev.file(n, n);
    }
    let o = scan(ev.root(), &["-q"]);
    let got = entries(&o.stdout);
    for n in names {
        entry(&got, n);
    }
    let o = scan_as(&ev, "csv", &["-q"]);
    let mut rdr = csv::Reader::from_reader(&o.stdout[..]);
    let paths: Vec<String> = rdr.records().map(|r| r.unwrap()[1].to_string()).collect();
    let mut want: Vec<&str> = names.to_vec();
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(paths, want);
}

#[test]
fn fifo_is_skipped_without_blocking() {
    let ev = Evidence::new();
    ev.file("before", "1").fifo("pipe").file("zafter", "2");
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0);
    let got = entries(&o.stdout);
    let p = entry(&got, "pipe");
    assert_eq!(p["record"], "skipped");
    assert_eq!(p["reason"], "fifo");
    assert_eq!(entry(&got, "zafter")["record"], "file");
}

/// Symlinks are recorded with their target and never followed: a link to
/// the parent (a loop) and a link out of the root.
#[test]
fn symlink_loop_and_escape_are_not_followed() {
    let ev = Evidence::new();
    ev.dir("d")
        .file("d/f", "x")
        .symlink("d/up", "..")
        .symlink("out", "/etc");
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0);
    let got = entries(&o.stdout);
    assert_eq!(got.len(), 3, "{got:#?}");
    let up = entry(&got, "d/up");
    assert_eq!(
        (up["reason"].as_str(), up["target"].as_str()),
        (Some("symlink"), Some(".."))
    );
    assert_eq!(entry(&got, "out")["target"], "/etc");
}

/// A bind mount of the root inside itself is a directory loop, detected by
/// (device, inode). Needs mount permission (root in CI).
#[test]
fn bind_mount_loop_is_detected() {
    let ev = Evidence::new();
    ev.file("a", "1").dir("sub/loop");
    let target = ev.path(b"sub/loop");
    let bind = [ev.root().as_os_str(), std::ffi::OsStr::new("--bind")];
    let Some(_guard) = mount(&bind[..], target, "'mount --bind'") else {
        return;
    };
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0);
    let got = entries(&o.stdout);
    let l = entry(&got, "sub/loop");
    assert_eq!(l["reason"], "directory_loop");
    assert_eq!(l["ancestor"], "");
    assert_eq!(got.len(), 2, "{got:#?}");
}

/// With -x, a directory on another file system (a tmpfs mounted inside the
/// tree) is recorded as skipped and not entered; without it, it is walked.
#[test]
fn one_file_system_skips_other_mounts() {
    let ev = Evidence::new();
    ev.file("a", "1").dir("mnt");
    let target = ev.path(b"mnt");
    let tmpfs = ["-t", "tmpfs", "-o", "size=1m", "tmpfs"].map(std::ffi::OsStr::new);
    let Some(_guard) = mount(&tmpfs[..], target, "mounting a tmpfs") else {
        return;
    };
    ev.file("mnt/inside", "2");
    let o = scan(ev.root(), &["-q", "-x"]);
    assert_eq!(code(&o), 0);
    let got = entries(&o.stdout);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(entry(&got, "mnt")["reason"], "other_filesystem");
    let o = scan(ev.root(), &["-q"]);
    let got = entries(&o.stdout);
    assert_eq!(entry(&got, "mnt/inside")["record"], "file");
}

/// A file the scanning user cannot read: a failed record with the OS error,
/// the scan goes on, exit code 3; with a hash-set hit as well, exit code 4.
/// Root ignores permission bits, so as root the scan runs as `nobody`
/// through setpriv.
#[test]
fn unreadable_file_fails_with_the_os_error() {
    use std::os::unix::fs::PermissionsExt;
    // Under /tmp: the checkout may sit below a directory `nobody` cannot enter.
    let ev = Evidence::new_in(&std::env::temp_dir());
    ev.file("a-secret", "s").file("b-open", "o");
    std::fs::set_permissions(ev.path(b"a-secret"), PermissionsExt::from_mode(0o000)).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root && !have("setpriv") {
        skip("running as root without setpriv to drop privileges (apt-get install util-linux)");
        return;
    }
    // A set listing b-open (MD5 of "o"), readable by nobody.
    let list = ev.out("set.md5");
    std::fs::write(&list, "d95679752134a2d9eb61dbd7b91c4bcc  b-open\n").unwrap();
    let set = ev.out("set.tset");
    let mut import = triage();
    import
        .args(["hashset", "import", "-q", "--name", "s", "-o"])
        .arg(&set)
        .arg(&list);
    assert_eq!(code(&run(import, Duration::from_secs(60))), 0);
    std::fs::set_permissions(&set, PermissionsExt::from_mode(0o644)).unwrap();
    let bin = ev.out("triage");
    if is_root {
        // The tree and a copy of the binary must be reachable by nobody.
        for p in [ev.root().parent().unwrap(), ev.root()] {
            std::fs::set_permissions(p, PermissionsExt::from_mode(0o755)).unwrap();
        }
        std::fs::copy(env!("CARGO_BIN_EXE_triage"), &bin).unwrap();
        std::fs::set_permissions(&bin, PermissionsExt::from_mode(0o755)).unwrap();
    }
    let scan_as_user = |extra: &[&std::ffi::OsStr]| {
        let mut cmd;
        if is_root {
            cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&bin);
        } else {
            cmd = triage();
        }
        cmd.arg("scan")
            .arg(ev.root())
            .arg("-q")
            .arg("--no-case")
            .args(extra);
        run(cmd, Duration::from_secs(60))
    };
    let o = scan_as_user(&[]);
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stderr));
    let got = entries(&o.stdout);
    let s = entry(&got, "a-secret");
    assert_eq!(s["record"], "failed");
    assert_eq!(s["stage"], "open");
    assert_eq!(s["errno"], 13);
    assert_eq!(s["bytes_read"], 0);
    assert!(s["error"].as_str().unwrap().contains("Permission denied"));
    assert_eq!(entry(&got, "b-open")["record"], "file");
    let summary = records(&o.stdout).pop().unwrap();
    assert_eq!(summary["failed"]["open"], 1);

    let o = scan_as_user(&["--hashset".as_ref(), set.as_os_str()]);
    assert_eq!(code(&o), 4, "{}", String::from_utf8_lossy(&o.stderr));
    let got = entries(&o.stdout);
    assert_eq!(entry(&got, "b-open")["matches"][0]["set"], "s");
    assert_eq!(entry(&got, "a-secret")["record"], "failed");
}

type Snapshot = BTreeMap<Vec<u8>, [i64; 7]>;

/// Size and all three times to the nanosecond, from `lstat` of known paths
/// only: listing directories here would itself move their atimes.
fn snapshot(paths: &[std::path::PathBuf]) -> Snapshot {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(p).unwrap();
            let key = p.as_os_str().as_bytes().to_vec();
            let t = [
                m.size() as i64,
                m.atime(),
                m.atime_nsec(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            ];
            (key, t)
        })
        .collect()
}

/// After scans in every format, every size, time (atime included) and byte
/// of the evidence is as before; directories included, whose listing uses
/// O_NOATIME too. Symlinks: with --no-link-targets their atimes are kept as
/// well; with targets read, only theirs may move (readlink has no O_NOATIME),
/// which is why the CLI warns on read-write mounts.
#[test]
fn evidence_is_untouched_atimes_included() {
    let ev = Evidence::new();
    let content: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("d{}/f{i}.bin", i % 3), vec![i as u8; i * 1000]))
        .collect();
    for (p, c) in &content {
        ev.file(p, c);
    }
    ev.symlink("link", "d0").fifo("pipe");
    let mut paths: Vec<std::path::PathBuf> =
        content.iter().map(|(p, _)| ev.path(p.as_bytes())).collect();
    paths.extend(["", "d0", "d1", "d2", "pipe"].map(|p| ev.path(p.as_bytes())));
    let link = ev.path(b"link");
    // Fresh files have atime == mtime, so with relatime the first plain read
    // would update atime: the check below catches a missing O_NOATIME.
    let before = snapshot(&paths);
    let link_before = snapshot(std::slice::from_ref(&link));
    let o = scan(ev.root(), &["-q", "--no-link-targets"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        snapshot(std::slice::from_ref(&link)),
        link_before,
        "--no-link-targets"
    );
    for fmt in ["csv", "hashdeep"] {
        let o = scan_as(&ev, fmt, &["-q"]);
        assert_eq!(code(&o), 0);
    }
    assert_eq!(snapshot(&paths), before);
    for (p, c) in &content {
        assert_eq!(&std::fs::read(ev.path(p.as_bytes())).unwrap(), c);
    }
}

/// Two scans of the same tree, one single-threaded and one with many
/// readers, give identical entry records, byte for byte. (With link targets
/// read, a read-write mount would move the link's atime between the scans:
/// see evidence_is_untouched_atimes_included.)
#[test]
fn two_scans_give_identical_records() {
    let ev = Evidence::new();
    for i in 0..300 {
        ev.file(
            format!("dir{}/sub{}/file{i}", i % 7, i % 3),
            format!("content {i}").repeat(i),
        );
    }
    ev.file("huge.bin", vec![7u8; 5 << 20])
        .symlink("l", "dir0")
        .fifo("p");
    let lines = |o: &std::process::Output| -> Vec<String> {
        String::from_utf8(o.stdout.clone())
            .unwrap()
            .lines()
            .filter(|l| !l.contains(r#""record":"header""#) && !l.contains(r#""record":"summary""#))
            .map(unchained)
            .collect()
    };
    let a = scan(
        ev.root(),
        &[
            "-q",
            "--no-link-targets",
            "--threads",
            "1",
            "--readers",
            "1",
        ],
    );
    let b = scan(
        ev.root(),
        &[
            "-q",
            "--no-link-targets",
            "--threads",
            "2",
            "--readers",
            "16",
        ],
    );
    assert_eq!(lines(&a).len(), 303);
    assert_eq!(lines(&a), lines(&b));
    let paths: Vec<Vec<u8>> = entries(&a.stdout)
        .iter()
        .map(|e| e["path"].as_str().unwrap().as_bytes().to_vec())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "records come in byte order of their paths");
}

/// `hashdeep -r -a -k OUT ROOT` accepts our hashdeep output (the issue's
/// exact command, on a tree hashdeep walks as we do), and with `-o f` also
/// on a tree with a symlink (which hashdeep would otherwise follow).
#[test]
fn hashdeep_audit_accepts_our_output() {
    if !have("hashdeep") {
        skip("hashdeep is not installed (apt-get install hashdeep)");
        return;
    }
    let ev = Evidence::new();
    ev.file("a.txt", "abc")
        .file("empty", "")
        .file("sub/dir/b,with,commas.bin", vec![1u8; 70_000]);
    ev.file(b"sub/caf\xe9", "latin-1 name");
    let out = ev.out("scan.hashdeep");
    let log = ev.out("scan.log");
    let (out_s, log_s) = (out.to_str().unwrap(), log.to_str().unwrap());
    let o = scan(ev.root(), &["-q", "--hashdeep", out_s, "-o", log_s]);
    assert_eq!(code(&o), 0);
    let audit = |extra: &[&str]| {
        let mut cmd = Command::new("hashdeep");
        cmd.args(extra)
            .arg("-r")
            .arg("-a")
            .arg("-k")
            .arg(&out)
            .arg(ev.root());
        run(cmd, Duration::from_secs(60))
    };
    let a = audit(&[]);
    assert_eq!(
        String::from_utf8_lossy(&a.stdout).trim(),
        "hashdeep: Audit passed"
    );
    assert_eq!(code(&a), 0);

    ev.symlink("link-to-a", "a.txt");
    let o = scan(
        ev.root(),
        &["-q", "--hashdeep", out_s, "--force", "-o", log_s],
    );
    assert_eq!(code(&o), 0);
    let a = audit(&["-o", "f"]);
    assert_eq!(
        String::from_utf8_lossy(&a.stdout).trim(),
        "hashdeep: Audit passed"
    );
}

/// JSON Lines read back by the library and written again are byte-identical:
/// odd names, skips, and hash-set hits of every kind with their header.
#[test]
fn jsonl_round_trips_through_the_reader() {
    let ev = Evidence::new();
    ev.file("a", "1")
        .file(b"b\xff", "2")
        .fifo("p")
        .symlink("s", "a")
        .file("e", "");
    assert_round_trip(&scan(ev.root(), &["-q"]).stdout);
    let sets = repo().join("fixtures/hashsets");
    let o = scan(
        &repo().join("fixtures/evidence"),
        &[
            "-q",
            "--dihedral",
            "--hashset",
            sets.join("sample-alert.tset").to_str().unwrap(),
            "--hashset",
            sets.join("sample-nsrl.tset").to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1);
    assert_round_trip(&o.stdout);
}

fn assert_round_trip(jsonl: &[u8]) {
    let lines: Vec<Line> = Reader::new(jsonl).collect::<Result<_, _>>().unwrap();
    assert!(matches!(lines.first(), Some(Line::Header(_))));
    assert!(matches!(lines.last(), Some(Line::Summary(_))));
    let Some(Line::Header(h)) = lines.first() else {
        unreachable!()
    };
    let mut again = Vec::new();
    {
        let mut w = OutputFormat::Jsonl.writer(&mut again, &h.root);
        for l in &lines {
            match l {
                Line::Header(h) => w.header(h).unwrap(),
                Line::Entry(e) => w.entry(e).unwrap(),
                Line::Summary(s) => w.summary(s).unwrap(),
                // Timed records: these short scans have none.
                Line::Checkpoint(_) | Line::Resume(_) => panic!("unexpected {l:?}"),
            }
        }
    }
    assert_eq!(
        String::from_utf8(again).unwrap(),
        String::from_utf8(jsonl.to_vec()).unwrap()
    );
}

#[test]
fn exit_codes() {
    let ev = Evidence::new();
    ev.file("a", "1");
    assert_eq!(code(&scan(ev.root(), &["-q"])), 0);
    // Usage errors: nothing read, code 2, a message saying what to do.
    let o = scan(&ev.root().join("missing"), &["-q"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot stat the evidence root"));
    let o = scan(ev.root(), &["--hash", "crc32"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("choose from md5, sha1, sha256, blake3"));
    let o = scan(ev.root(), &["--bogus"]);
    assert_eq!(code(&o), 2);
    let o = scan_as(&ev, "hashdeep", &["--hash", "blake3"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--hash md5,sha1,sha256,blake3"));
    // Two outputs cannot share stdout.
    let o = scan(ev.root(), &["--csv", "-"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("only one output can go to stdout"));
}

#[test]
fn output_is_never_written_into_the_evidence_or_over_a_file() {
    let ev = Evidence::new();
    ev.file("a", "1");
    let inside = ev.path(b"scan.jsonl");
    let o = scan(ev.root(), &["-o", inside.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("inside the evidence root"));
    assert!(!inside.exists());

    let out = ev.out("scan.jsonl");
    std::fs::write(&out, "keep me").unwrap();
    let o = scan(ev.root(), &["-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("use --force"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    let o = scan(ev.root(), &["-q", "--force", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let kinds: Vec<String> = records(&std::fs::read(&out).unwrap())
        .iter()
        .map(|r| r["record"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["header", "file", "summary"]);
}

/// Progress goes to stderr only: with --progress and -o, stdout is empty;
/// without a terminal and without --progress, stderr has only the device and
/// summary lines.
#[test]
fn progress_never_touches_stdout() {
    let ev = Evidence::new();
    ev.file("a", "1");
    let out = ev.out("s.jsonl");
    let o = scan(ev.root(), &["--progress", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(o.stdout.is_empty());
    let o = scan(ev.root(), &[]);
    let err = String::from_utf8(o.stderr).unwrap();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("triage: warning: the evidence is on a read-write mount"))
        .collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].starts_with("triage: ") && lines[0].contains("hashing thread"));
    assert!(lines[1].starts_with("triage: 1 file hashed"));
    assert_eq!(
        lines[2],
        "triage: no hash set given: files were hashed, not matched (add --hashset)"
    );
    assert!(lines[3].starts_with("triage: audit log chain head "));
}

/// SIGINT ends the scan cleanly: exit 130, a summary saying so, and the
/// records written are a complete prefix.
#[test]
fn sigint_stops_cleanly() {
    let ev = Evidence::new();
    ev.file("a", "1");
    ev.sparse("big", 64 << 30, &[(0, b"x")]);
    ev.file("z", "2");
    let mut cmd = triage();
    cmd.arg("scan")
        .arg(ev.root())
        .args(["-q", "--no-case", "--hash", "md5"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 130, "{}", String::from_utf8_lossy(&o.stderr));
    let recs = records(&o.stdout);
    let summary = recs.last().unwrap();
    assert_eq!(summary["record"], "summary");
    assert_eq!(summary["interrupted"], true);
    let paths: Vec<&str> = recs.iter().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(paths, ["a"]);
}

/// A reader that goes away (`triage scan ... | head -1`) ends the scan
/// quietly with exit 0, whether the pipe closes during the entries or at
/// the footer.
#[test]
fn closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let ev = Evidence::new();
    for i in 0..600 {
        ev.file(format!("f{i:04}"), format!("{i}"));
    }
    let mut cmd = triage();
    cmd.arg("scan")
        .arg(ev.root())
        .args(["-q", "--no-case"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains(r#""record":"header""#));
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The progress line fits the terminal, however narrow: drawn under a
/// pseudo-terminal of 40, 70 and 120 columns (util-linux `script`), no
/// frame of it is wider than the terminal, so it never wraps (issue 11,
/// item 16).
#[test]
fn progress_fits_the_terminal_width() {
    if !have("script") {
        skip("script is not installed (apt-get install bsdutils)");
        return;
    }
    let ev = Evidence::new();
    // Hashed as zeros, without I/O: long enough for several frames.
    ev.sparse(
        "a-rather-long-file-name-to-overflow-a-narrow-terminal.bin",
        1 << 30,
        &[(0, b"x")],
    );
    let log = ev.out("p.jsonl");
    for cols in [40, 70, 120] {
        let typescript = ev.out(&format!("typescript-{cols}"));
        let inner = format!(
            "stty rows 24 cols {cols}; {} scan {} --no-case --hash md5 -o {} --force",
            env!("CARGO_BIN_EXE_triage"),
            ev.root().display(),
            log.display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &inner]).arg(&typescript);
        let o = run(cmd, Duration::from_secs(120));
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
        // Frames are separated by CR, LF and the erase-line escape.
        let frames: Vec<&str> = text
            .split(['\r', '\n'])
            .flat_map(|l| l.split("\x1b[2K"))
            .filter(|f| f.contains(" ETA ") || f.contains("entries"))
            .filter(|f| !f.starts_with("triage:") && !f.starts_with("Script "))
            .collect();
        assert!(
            !frames.is_empty(),
            "no progress drawn at {cols} columns: {text:?}"
        );
        for f in &frames {
            assert!(
                f.chars().count() <= cols,
                "{} > {cols}: {f:?}",
                f.chars().count()
            );
        }
    }
}
