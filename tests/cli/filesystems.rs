//! Awkward file systems built in the test: paths past PATH_MAX, 10,000
//! nested directories, a directory of 200,000 entries, a 100 GiB sparse
//! file, unreadable directories, sockets and device nodes.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use crate::testenv::*;

/// `mkdir` + `open` one level down, relative to `dir` (never a long path).
fn descend(dir: &OwnedFd, name: &str) -> OwnedFd {
    let c = CString::new(name).unwrap();
    // SAFETY: valid descriptor and C string.
    unsafe {
        assert_eq!(libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755), 0);
        let fd = libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        );
        assert!(fd >= 0);
        OwnedFd::from_raw_fd(fd)
    }
}

fn write_at(dir: &OwnedFd, name: &str, data: &[u8]) {
    let c = CString::new(name).unwrap();
    // SAFETY: valid descriptor and C string; the new fd is owned by File.
    let f = unsafe {
        let fd = libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o644,
        );
        assert!(fd >= 0);
        std::fs::File::from_raw_fd(fd)
    };
    std::io::Write::write_all(&mut &f, data).unwrap();
}

fn open_dir(p: &std::path::Path) -> OwnedFd {
    std::fs::File::open(p).unwrap().into()
}

/// `rm -rf`: walks with descriptors, so deep trees go too.
fn remove(ev: &Evidence) {
    let _ = Command::new("rm").arg("-rf").arg(ev.root()).status();
}

/// 10,000 nested directories (a 20,000-byte path, five times PATH_MAX):
/// every level is walked, files at the middle and the bottom are hashed
/// exactly, nothing overflows a stack.
#[test]
fn ten_thousand_nested_directories() {
    let ev = Evidence::new();
    let mut fd = open_dir(ev.root());
    for level in 1..=10_000 {
        fd = descend(&fd, "d");
        if level == 5_000 {
            write_at(&fd, "middle.txt", b"half way down");
        }
    }
    write_at(&fd, "bottom.txt", b"at the bottom");
    drop(fd);
    ev.file("top.txt", "at the top");
    let log = ev.out("deep.jsonl");
    let o = scan(
        ev.root(),
        &["-q", "-o", log.to_str().unwrap(), "--perceptual", "none"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read(&log).unwrap();
    let got = entries(&text);
    assert_eq!(
        got.len(),
        3,
        "{:?}",
        got.iter().map(|e| &e["record"]).collect::<Vec<_>>()
    );
    let bottom = format!("{}bottom.txt", "d/".repeat(10_000));
    let middle = format!("{}middle.txt", "d/".repeat(5_000));
    let sha = |s: &str| sha256_hex(s.as_bytes());
    assert_eq!(
        entry(&got, &bottom)["sha256"],
        sha("at the bottom").as_str()
    );
    assert_eq!(
        entry(&got, &middle)["sha256"],
        sha("half way down").as_str()
    );
    assert_eq!(entry(&got, "top.txt")["sha256"], sha("at the top").as_str());
    let summary = records(&text).last().unwrap().clone();
    assert_eq!(summary["directories"], 10_001);
    // The log of such a tree verifies, and reports carry the long paths.
    let mut cmd = triage();
    cmd.arg("verify").arg(&log);
    assert_eq!(code(&run(cmd, Duration::from_secs(60))), 0);
    remove(&ev);
}

/// A 4,000-byte relative path (20 levels of 199-byte names): hashed, and
/// kept intact in every output.
#[test]
fn four_thousand_byte_path() {
    let ev = Evidence::new();
    let name = "n".repeat(197);
    let rel: String = (0..20)
        .map(|i| format!("{i:02}{name}/"))
        .collect::<String>()
        + "f.txt";
    assert!(rel.len() >= 4_000 && rel.len() < 4_096, "{}", rel.len());
    let mut fd = open_dir(ev.root());
    for i in 0..20 {
        fd = descend(&fd, &format!("{i:02}{name}"));
    }
    write_at(&fd, "f.txt", b"deep");
    drop(fd);
    let log = ev.out("long.jsonl");
    let csv = ev.out("long.csv");
    let o = scan(
        ev.root(),
        &[
            "-q",
            "-o",
            log.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&std::fs::read(&log).unwrap());
    assert_eq!(entry(&got, &rel)["sha256"], sha256_hex(b"deep").as_str());
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(rows.contains(&rel));
    remove(&ev);
}

/// One directory with 200,000 entries: every one recorded, in order.
#[test]
fn directory_with_200000_entries() {
    let ev = Evidence::new();
    let dir = ev.path(b"big");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..200_000u32 {
        std::fs::File::create(dir.join(format!("{i:06}"))).unwrap();
    }
    let o = scan(
        ev.root(),
        &[
            "-q",
            "--hash",
            "md5",
            "--perceptual",
            "none",
            "--threads",
            "2",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let recs = records(&o.stdout);
    let summary = recs.last().unwrap();
    assert_eq!(summary["files_hashed"], 200_000);
    assert_eq!(summary["empty_files"], 200_000);
    let paths: Vec<&str> = recs.iter().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(paths.len(), 200_000);
    assert_eq!(paths[0], "big/000000");
    assert_eq!(paths[199_999], "big/199999");
    assert!(paths.windows(2).all(|w| w[0] < w[1]));
    remove(&ev);
}

/// A 100 GiB sparse file with one byte of data in the middle: read in
/// seconds (holes are not read, their zeros hashed), BLAKE3 exact.
#[test]
fn hundred_gib_sparse_file() {
    let ev = Evidence::new();
    ev.sparse("sparse.img", 100 << 30, &[(50 << 30, b"x")]);
    let o = scan(
        ev.root(),
        &["-q", "--hash", "blake3", "--perceptual", "none"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    let e = entry(&got, "sparse.img");
    assert_eq!(e["bytes_read"], 100u64 << 30);
    // b3sum 1.5 of the same file (100 GiB, 'x' at 50 GiB), computed once:
    // reading it through b3sum takes far longer than the scan.
    assert_eq!(
        e["blake3"],
        "e036c0372fde7c98ff2437e9e0b2ef103576e0a79014179bcc52e9604655cf79"
    );
}

/// A directory the scanning user cannot read: one failed entry with the
/// OS error, its siblings hashed, exit 3.
#[test]
fn unreadable_directory_as_an_unprivileged_user() {
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root && !have("setpriv") {
        skip("running as root without setpriv (apt-get install util-linux)");
        return;
    }
    let ev = Evidence::new_in(std::path::Path::new("/tmp"));
    ev.file("open/a.txt", "a")
        .file("closed/secret.txt", "s")
        .file("z.txt", "z");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(ev.path(b"closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
    for p in [ev.root().parent().unwrap(), ev.root()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd;
    if is_root {
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_triage"));
    } else {
        cmd = triage();
    }
    cmd.arg("scan").arg(ev.root()).args(["-q", "--no-case"]);
    let o = run(cmd, Duration::from_secs(60));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let got = entries(&o.stdout);
    let closed = entry(&got, "closed");
    assert_eq!(closed["record"], "failed");
    assert_eq!(closed["stage"], "read_dir");
    assert_eq!(closed["errno"], libc::EACCES);
    assert_eq!(entry(&got, "open/a.txt")["record"], "file");
    assert_eq!(entry(&got, "z.txt")["record"], "file");
    std::fs::set_permissions(ev.path(b"closed"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Sockets and device nodes are recorded as skipped and never opened
/// (opening a tape or a serial line could block or rewind it).
#[test]
fn sockets_and_device_nodes_are_skipped() {
    let ev = Evidence::new();
    ev.file("a", "1");
    let _listener = std::os::unix::net::UnixListener::bind(ev.path(b"sock")).unwrap();
    let mut want = vec![("sock", "socket")];
    let node = CString::new(ev.path(b"null-dev").to_str().unwrap()).unwrap();
    // SAFETY: valid C string; mknod of a character device (1,3 = /dev/null).
    let made =
        unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) } == 0;
    if made {
        want.push(("null-dev", "char_device"));
    } else {
        skip("mknod needs root: the device node");
    }
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = entries(&o.stdout);
    for (path, reason) in want {
        let e = entry(&got, path);
        assert_eq!(
            (e["record"].as_str(), e["reason"].as_str()),
            (Some("skipped"), Some(reason))
        );
    }
}

/// `triage scan /proc` used to read `pagemap` forever. A root on a pseudo
/// file system is refused (exit 2, saying which), a file in one too, and a
/// procfs or sysfs mounted inside the evidence is recorded as skipped, not
/// entered (mounting needs root) (issue 11, item 3).
#[test]
fn pseudo_file_systems_are_not_read() {
    for root in ["/proc", "/proc/self/pagemap", "/sys/kernel"] {
        let o = scan(std::path::Path::new(root), &["-q"]);
        assert_eq!(
            code(&o),
            2,
            "{root}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("a pseudo file system"), "{root}: {err}");
        assert!(
            err.contains(if root.starts_with("/proc") {
                "procfs"
            } else {
                "sysfs"
            }),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
    let ev = Evidence::new();
    ev.file("a", "1").dir("proc").dir("sys");
    let proc_fs = ["-t", "proc", "proc"].map(std::ffi::OsStr::new);
    let Some(_p) = mount(&proc_fs[..], ev.path(b"proc"), "mounting procfs") else {
        return;
    };
    let sys_fs = ["-t", "sysfs", "sysfs"].map(std::ffi::OsStr::new);
    let Some(_s) = mount(&sys_fs[..], ev.path(b"sys"), "mounting sysfs") else {
        return;
    };
    let o = scan(ev.root(), &["-q"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let got = entries(&o.stdout);
    assert_eq!(got.len(), 3, "{got:#?}");
    for d in ["proc", "sys"] {
        assert_eq!(entry(&got, d)["record"], "skipped");
        assert_eq!(entry(&got, d)["reason"], "pseudo_filesystem");
    }
}
