//! Evidence is never modified, by any command: a snapshot of every entry of
//! a fixture tree (content hash, size, mode, mtime, atime, ctime; the
//! directories included) before and after running each command against it.
//!
//! Fresh files have atime == mtime, so on a `relatime` mount the first
//! plain read would move atime: a missing `O_NOATIME` anywhere shows here.
//! Symlink targets are not read (`--no-link-targets`): `readlink` moves a
//! link's atime on a read-write mount and the kernel has no flag against it
//! (README, docs/scan-schema.md).

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::testenv::*;

type Snapshot = BTreeMap<Vec<u8>, (String, [i64; 8])>;

fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let content = if m.is_file() {
            // Read through O_NOATIME so the snapshot itself changes nothing.
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOATIME)
                .open(&p)
                .unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data).unwrap();
            use sha2::Digest;
            sha2::Sha256::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        } else {
            String::new()
        };
        if m.is_dir() {
            // The listing through an O_NOATIME descriptor: see above.
            for e in read_dir_noatime(&p) {
                stack.push(p.join(std::ffi::OsStr::from_bytes(&e)));
            }
        }
        let t = [
            m.size() as i64,
            m.mode() as i64,
            m.mtime(),
            m.mtime_nsec(),
            m.atime(),
            m.atime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ];
        out.insert(p.as_os_str().as_bytes().to_vec(), (content, t));
    }
    out
}

fn read_dir_noatime(dir: &Path) -> Vec<Vec<u8>> {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: open(2) with a valid C string; fdopendir takes the descriptor,
    // readdir entries are valid until the next call, closedir once.
    unsafe {
        let fd = libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOATIME,
        );
        assert!(fd >= 0, "{}", dir.display());
        let d = libc::fdopendir(fd);
        assert!(!d.is_null());
        let mut names = Vec::new();
        loop {
            let e = libc::readdir(d);
            if e.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*e).d_name.as_ptr()).to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        libc::closedir(d);
        names
    }
}

fn run_ok(args: &[&std::ffi::OsStr], allowed: &[i32]) {
    let mut cmd = triage();
    cmd.args(args);
    let o = run(cmd, Duration::from_secs(300));
    assert!(
        allowed.contains(&code(&o)),
        "{args:?}: exit {}: {}",
        code(&o),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every entry's times set back to 2024, so that `relatime` would update
/// the atime of anything read without `O_NOATIME`.
fn set_times_back(root: &Path) {
    let o = Command::new("find")
        .arg(root)
        .args([
            "-exec",
            "touch",
            "-h",
            "-d",
            "2024-01-02 03:04:05",
            "{}",
            "+",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn no_command_changes_the_evidence() {
    let ev = Evidence::new();
    copy_fixture_evidence(&ev);
    // Fresh copies: atime == mtime, which relatime would update on a read.
    set_times_back(ev.root());
    ev.symlink("link-to-notes", "Documents/notes.txt")
        .fifo("pipe");
    ev.file(
        "lists/known.md5",
        "d41d8cd98f00b204e9800998ecf8427e  empty\n",
    );
    let before = snapshot(ev.root());
    assert!(before.len() > 20);

    let out = |n: &str| ev.out(n).into_os_string();
    let root = ev.root().as_os_str().to_os_string();
    let sets = repo().join("fixtures/hashsets");
    let alert = sets.join("sample-alert.tset").into_os_string();
    let key = out("k");
    run_ok(&["keygen".as_ref(), "-o".as_ref(), key.as_os_str()], &[0]);
    let log = out("scan.jsonl");
    let os = |s: &str| std::ffi::OsString::from(s);
    let scan_args: Vec<std::ffi::OsString> = vec![
        os("scan"),
        root.clone(),
        os("-q"),
        os("--no-case"),
        os("--no-link-targets"),
        os("--dihedral"),
        os("--perceptual"),
        os("pdq,phash,dhash,ahash"),
        os("--hashset"),
        alert.clone(),
        os("--sign-key"),
        key.clone(),
        os("-o"),
        log.clone(),
        os("--csv"),
        out("scan.csv"),
        os("--hashdeep"),
        out("scan.hashdeep"),
    ];
    let refs: Vec<&std::ffi::OsStr> = scan_args.iter().map(|a| a.as_os_str()).collect();
    run_ok(&refs, &[1]);
    let mut public = key.clone();
    public.push(".pub");
    run_ok(
        &[
            "verify".as_ref(),
            log.as_os_str(),
            "--pubkey".as_ref(),
            public.as_os_str(),
            "--evidence".as_ref(),
            root.as_os_str(),
        ],
        &[0],
    );
    for f in ["dfxml", "case", "csv", "matches-csv", "vics", "html"] {
        let o = out(&format!("r.{f}"));
        run_ok(
            &[
                "report".as_ref(),
                log.as_os_str(),
                "--format".as_ref(),
                f.as_ref(),
                "-o".as_ref(),
                o.as_os_str(),
            ],
            &[0],
        );
    }
    let thumbs = out("t.html");
    run_ok(
        &[
            "report".as_ref(),
            log.as_os_str(),
            "--format".as_ref(),
            "html".as_ref(),
            "--thumbnails".as_ref(),
            "--evidence".as_ref(),
            root.as_os_str(),
            "-o".as_ref(),
            thumbs.as_os_str(),
        ],
        &[0],
    );
    // A killed scan's log, cut by hand, resumed against the same evidence.
    let text = std::fs::read_to_string(&log).unwrap();
    let cut = out("cut.jsonl");
    let half: Vec<&str> = text.lines().take(6).collect();
    std::fs::write(&cut, half.join("\n") + "\n").unwrap();
    run_ok(
        &[
            "scan".as_ref(),
            "-q".as_ref(),
            "--resume".as_ref(),
            cut.as_os_str(),
            "--sign-key".as_ref(),
            key.as_os_str(),
        ],
        &[1],
    );
    // hash-image on the evidence's images, and a hash list that sits on the evidence.
    let images = ["DCIM/100PHOTO/shapes.bmp", "DCIM/100PHOTO/gradient.png"]
        .map(|p| ev.path(p.as_bytes()).into_os_string());
    run_ok(
        &[
            "hash-image".as_ref(),
            "--dihedral".as_ref(),
            images[0].as_os_str(),
            images[1].as_os_str(),
        ],
        &[0],
    );
    let list = ev.path(b"lists/known.md5").into_os_string();
    let tset = out("from-evidence.tset");
    run_ok(
        &[
            "hashset".as_ref(),
            "import".as_ref(),
            "-q".as_ref(),
            "--name".as_ref(),
            "l".as_ref(),
            "-o".as_ref(),
            tset.as_os_str(),
            list.as_os_str(),
        ],
        &[0],
    );
    run_ok(
        &["hashset".as_ref(), "info".as_ref(), tset.as_os_str()],
        &[0],
    );
    run_ok(
        &["hashset".as_ref(), "verify".as_ref(), tset.as_os_str()],
        &[0],
    );

    let after = snapshot(ev.root());
    for (path, was) in &before {
        let now = after
            .get(path)
            .unwrap_or_else(|| panic!("{} vanished", String::from_utf8_lossy(path)));
        assert_eq!(now, was, "{} changed", String::from_utf8_lossy(path));
    }
    assert_eq!(
        after.len(),
        before.len(),
        "entries were added to the evidence"
    );
}

/// A disk image is never written and its times do not move: scanned
/// (with thumbnails in the report), verified against its stored MD5, and
/// re-checked with `verify --evidence`, an E01 in two segments keeps its
/// bytes, mode, mtime, atime and ctime.
#[test]
fn no_command_changes_an_image() {
    let shared = repo().join("../shared/evidence-images");
    if !shared.join("ext2.split.E01").exists() {
        skip("../shared/evidence-images is absent (../shared is not checked out)");
        return;
    }
    let ev = Evidence::new();
    for seg in ["ext2.split.E01", "ext2.split.E02"] {
        std::fs::copy(shared.join(seg), ev.root().join(seg)).unwrap();
    }
    set_times_back(ev.root());
    let before = snapshot(ev.root());
    let image = ev.root().join("ext2.split.E01").into_os_string();
    let log = ev.out("img.jsonl").into_os_string();
    let html = ev.out("img.html").into_os_string();
    run_ok(
        &[
            "scan".as_ref(),
            image.as_os_str(),
            "-q".as_ref(),
            "--no-case".as_ref(),
            "-o".as_ref(),
            log.as_os_str(),
        ],
        &[0],
    );
    run_ok(&["verify-image".as_ref(), image.as_os_str()], &[0]);
    run_ok(
        &[
            "verify".as_ref(),
            log.as_os_str(),
            "--evidence".as_ref(),
            image.as_os_str(),
        ],
        &[0],
    );
    run_ok(
        &[
            "report".as_ref(),
            log.as_os_str(),
            "--format".as_ref(),
            "html".as_ref(),
            "--thumbnails".as_ref(),
            "-o".as_ref(),
            html.as_os_str(),
        ],
        &[0],
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(before, snapshot(ev.root()), "the image changed");
}
