//! Faults injected into a real scan (`ScanConfig::faults`): EIO at an
//! offset, short reads and EINTR, a file that shrinks or grows mid-read, a
//! file deleted between walk and open, and a path replaced by a symlink, a
//! FIFO or another file between walk and open (TOCTOU). Each must end as
//! one record that says what happened (with the OS error and the bytes
//! read), and the scan must go on to hash every other file correctly.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use triage_core::hash::{AlgorithmSet, hash_bytes};
use triage_core::read::Source;
use triage_core::record::{Entry, FailureKind, FileKind, Outcome, Stage};
use triage_core::scan::Faults;
use triage_core::{RawPath, ScanConfig, Scanner, Summary};

/// A throw-away evidence tree.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("faults-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Tree(dir)
    }

    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Scans `tree` with `faults`; the entries by path and the summary.
fn scan(tree: &Tree, faults: Faults) -> (BTreeMap<String, Entry>, Summary) {
    scan_with(tree, faults, None)
}

/// The same with `readers` files read at once: 8 puts files over 256 KiB
/// in SIMD lane groups too (read side by side), while one reader (the
/// detected default on a spinning disk) reads them one at a time.
fn scan_with(
    tree: &Tree,
    faults: Faults,
    readers: Option<usize>,
) -> (BTreeMap<String, Entry>, Summary) {
    let config = ScanConfig {
        threads: Some(2),
        readers,
        faults,
        ..ScanConfig::new(&tree.0)
    };
    let mut entries = BTreeMap::new();
    let summary = Scanner::new(config)
        .unwrap()
        .run(|e| {
            entries.insert(e.path.to_str().unwrap().to_string(), e);
            Ok(())
        })
        .unwrap();
    (entries, summary)
}

/// The untouched files hash to their true digests.
fn assert_hashed(entries: &BTreeMap<String, Entry>, name: &str, data: &[u8]) {
    match &entries[name].outcome {
        Outcome::Hashed(h) => {
            assert_eq!(h.digests, hash_bytes(AlgorithmSet::all(), data), "{name}");
            assert_eq!(h.bytes_read, data.len() as u64);
        }
        other => panic!("{name}: {other:?}"),
    }
}

/// A source that misbehaves as told, over the real file.
struct Faulty {
    file: File,
    /// Fail with this errno at or after this offset.
    eio_at: Option<u64>,
    /// Return at most this many bytes per read.
    short: Option<usize>,
    /// Return EINTR on every other call.
    eintr: bool,
    calls: std::sync::atomic::AtomicU64,
    /// After the first read, run this (e.g. truncate or extend the file).
    after_first: std::sync::Mutex<Option<Box<dyn FnMut() + Send>>>,
}

impl Faulty {
    fn over(file: File) -> Faulty {
        Faulty {
            file,
            eio_at: None,
            short: None,
            eintr: false,
            calls: Default::default(),
            after_first: Default::default(),
        }
    }
}

impl Source for Faulty {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let calls = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if self.eintr && calls.is_multiple_of(2) {
            return Err(io::Error::from_raw_os_error(libc::EINTR));
        }
        if self.eio_at.is_some_and(|at| offset >= at) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let len = self.short.map_or(buf.len(), |s| s.min(buf.len()));
        let n = FileExt::read_at(&self.file, &mut buf[..len], offset)?;
        if n > 0
            && let Some(mut f) = self.after_first.lock().unwrap().take()
        {
            f();
        }
        Ok(n)
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<u64>> {
        Source::next_data(&self.file, offset)
    }

    fn next_hole(&self, offset: u64) -> io::Result<u64> {
        Source::next_hole(&self.file, offset)
    }

    fn size_now(&self) -> io::Result<u64> {
        Source::size_now(&self.file)
    }
}

/// Wrap only the file named `name` with `make`.
fn wrap_one(name: &'static str, make: impl Fn(File) -> Faulty + Send + Sync + 'static) -> Faults {
    Faults {
        source: Some(Arc::new(move |path: &RawPath, file: File| {
            if path.to_str() == Some(name) {
                Box::new(make(file)) as Box<dyn Source>
            } else {
                Box::new(file)
            }
        })),
        ..Faults::default()
    }
}

fn failure(entries: &BTreeMap<String, Entry>, name: &str) -> (Stage, FailureKind, u64) {
    match &entries[name].outcome {
        Outcome::Failed(f) => (f.stage, f.kind.clone(), f.bytes_read),
        other => panic!("{name} should have failed: {other:?}"),
    }
}

#[test]
fn eio_at_an_offset_is_recorded_with_the_bytes_read() {
    // Alone, then in lane groups.
    for readers in [None, Some(8)] {
        let t = Tree::new(&format!("eio-{}", readers.unwrap_or(0)));
        let big = pattern(3 << 20, 1);
        let other = pattern(5000, 2);
        t.file("bad-sector.bin", &big);
        t.file("other.bin", &other);
        let (entries, summary) = scan_with(
            &t,
            wrap_one("bad-sector.bin", |f| Faulty {
                eio_at: Some(1 << 20),
                ..Faulty::over(f)
            }),
            readers,
        );
        let (stage, kind, bytes) = failure(&entries, "bad-sector.bin");
        assert_eq!(stage, Stage::Read);
        match kind {
            FailureKind::Io(e) => assert_eq!(e.errno, Some(libc::EIO)),
            k => panic!("{k:?}"),
        }
        assert_eq!(bytes, 1 << 20, "everything before the bad sector was read");
        assert_hashed(&entries, "other.bin", &other);
        assert_eq!(summary.failed_total(), 1);
        assert_eq!(summary.files_hashed, 1);
    }
}

/// A reader that panics (a bug in a file system reader, say) fails that
/// one file as an internal error, alone or in a lane group with others,
/// and every other file of the group is hashed.
#[test]
fn a_panicking_reader_fails_its_file_only() {
    struct Panics;
    impl Source for Panics {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            if offset >= 300_000 {
                panic!("reader bug at {offset}");
            }
            let n = buf.len().min(300_000 - offset as usize);
            buf[..n].fill(7);
            Ok(n)
        }
        fn next_data(&self, _: u64) -> io::Result<Option<u64>> {
            Err(io::ErrorKind::Unsupported.into())
        }
        fn next_hole(&self, _: u64) -> io::Result<u64> {
            Err(io::ErrorKind::Unsupported.into())
        }
        fn size_now(&self) -> io::Result<u64> {
            Ok(1 << 20)
        }
    }
    for readers in [None, Some(8)] {
        let t = Tree::new(&format!("panics-{}", readers.unwrap_or(0)));
        let data: Vec<Vec<u8>> = (0..40)
            .map(|i| pattern(1000 * i + 700_000 * (i % 3), i as u8))
            .collect();
        for (i, d) in data.iter().enumerate() {
            t.file(&format!("f{i:02}"), d);
        }
        t.file("bug.bin", &pattern(1 << 20, 9));
        let faults = Faults {
            source: Some(Arc::new(move |path: &RawPath, file: File| {
                if path.to_str() == Some("bug.bin") {
                    Box::new(Panics) as Box<dyn Source>
                } else {
                    Box::new(file)
                }
            })),
            ..Faults::default()
        };
        let (entries, summary) = scan_with(&t, faults, readers);
        let (_, kind, _) = failure(&entries, "bug.bin");
        match kind {
            FailureKind::Internal { message } => {
                assert!(message.contains("reader bug at 300000"), "{message}")
            }
            k => panic!("{k:?}"),
        }
        for (i, d) in data.iter().enumerate() {
            assert_hashed(&entries, &format!("f{i:02}"), d);
        }
        assert_eq!(summary.failed_total(), 1);
    }
}

#[test]
fn short_reads_and_eintr_lose_nothing() {
    // Alone, then in lane groups.
    for readers in [None, Some(8)] {
        let t = Tree::new(&format!("short-{}", readers.unwrap_or(0)));
        let data = pattern(3_000_001, 3);
        t.file("slow-fuse.bin", &data);
        let (entries, summary) = scan_with(
            &t,
            wrap_one("slow-fuse.bin", |f| Faulty {
                short: Some(65_537),
                eintr: true,
                ..Faulty::over(f)
            }),
            readers,
        );
        assert_hashed(&entries, "slow-fuse.bin", &data);
        assert_eq!(summary.failed_total(), 0);
    }
}

#[test]
fn a_file_that_shrinks_or_grows_mid_read_is_a_failure() {
    // Alone, then in lane groups.
    for readers in [None, Some(8)] {
        let t = Tree::new(&format!("size-{}", readers.unwrap_or(0)));
        let shrink = t.file("shrinks.bin", &pattern(3 << 20, 4));
        let grow = t.file("grows.bin", &pattern(3 << 20, 5));
        let fine = pattern(1000, 6);
        t.file("fine.bin", &fine);
        let faults = Faults {
            source: Some(Arc::new(move |path: &RawPath, file: File| {
                let target = match path.to_str() {
                    Some("shrinks.bin") => Some((shrink.clone(), 1u64 << 20)),
                    Some("grows.bin") => Some((grow.clone(), 5u64 << 20)),
                    _ => None,
                };
                match target {
                    Some((p, len)) => Box::new(Faulty {
                        after_first: std::sync::Mutex::new(Some(Box::new(move || {
                            let f = OpenOptions::new().write(true).open(&p).unwrap();
                            f.set_len(len).unwrap();
                        }))),
                        ..Faulty::over(file)
                    }) as Box<dyn Source>,
                    None => Box::new(file),
                }
            })),
            ..Faults::default()
        };
        let (entries, summary) = scan_with(&t, faults, readers);
        for (name, after) in [("shrinks.bin", 1u64 << 20), ("grows.bin", 5 << 20)] {
            let (stage, kind, _) = failure(&entries, name);
            assert_eq!(stage, Stage::Read, "{name}");
            assert_eq!(
                kind,
                FailureKind::ChangedDuringRead {
                    size_at_open: 3 << 20,
                    size_after: after
                },
                "{name}"
            );
        }
        assert_hashed(&entries, "fine.bin", &fine);
        assert_eq!(summary.failed_total(), 2);
    }
}

/// A file with no end (like `/proc/self/pagemap`: its size says 0, or
/// anything, and reads never stop) and a file that grows while read are
/// read only to the size seen at open, probed for one byte more, and
/// recorded as changed; the scan ends (issue 11, item 3).
#[test]
fn reads_stop_at_the_size_seen_at_open() {
    struct Endless {
        size: u64,
        read: Arc<std::sync::atomic::AtomicU64>,
    }
    impl Source for Endless {
        fn read_at(&self, buf: &mut [u8], _offset: u64) -> std::io::Result<usize> {
            buf.fill(0xa5);
            self.read
                .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(buf.len())
        }
        fn next_data(&self, offset: u64) -> std::io::Result<Option<u64>> {
            Ok(Some(offset))
        }
        fn next_hole(&self, _offset: u64) -> std::io::Result<u64> {
            Ok(self.size)
        }
        fn size_now(&self) -> std::io::Result<u64> {
            Ok(self.size)
        }
    }
    let t = Tree::new("endless");
    t.file("zero-size", b"");
    t.file("some-size", &pattern(3 << 20, 8));
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = read.clone();
    let faults = Faults {
        source: Some(Arc::new(move |path: &RawPath, _file: File| {
            let size = if path.to_str() == Some("zero-size") {
                0
            } else {
                3 << 20
            };
            Box::new(Endless {
                size,
                read: counter.clone(),
            }) as Box<dyn Source>
        })),
        ..Faults::default()
    };
    let (entries, summary) = scan(&t, faults);
    for (name, size) in [("zero-size", 0u64), ("some-size", 3 << 20)] {
        let (stage, kind, bytes) = failure(&entries, name);
        assert_eq!(stage, Stage::Read);
        assert_eq!(
            kind,
            FailureKind::ChangedDuringRead {
                size_at_open: size,
                size_after: size
            }
        );
        assert_eq!(bytes, size, "{name}: read exactly the size at open");
        assert!(
            kind.to_string()
                .contains("more bytes than its size at open"),
            "{kind}"
        );
    }
    // The two sizes plus a one-byte probe each, and nothing more.
    assert_eq!(
        read.load(std::sync::atomic::Ordering::Relaxed),
        (3 << 20) + 2
    );
    assert_eq!(summary.failed_total(), 2);
}

/// Between the walk and the open: deleted, replaced by a symlink (to a file
/// outside the evidence, which must not be read), by a FIFO (which must
/// not block), and by another regular file.
#[test]
fn toctou_replacements_are_caught_at_open() {
    let t = Tree::new("toctou");
    for n in ["deleted", "to-symlink", "to-fifo", "to-other-file"] {
        t.file(n, b"original");
    }
    let kept = pattern(777, 7);
    t.file("kept", &kept);
    fs::create_dir(t.0.join("sub")).unwrap();
    t.file("sub/inner", b"inside the evidence");
    let outside = t.0.with_extension("outside");
    fs::write(&outside, b"never to be read").unwrap();
    // A directory outside the evidence holding a file of the same name.
    let outside_dir = t.0.with_extension("outside-dir");
    fs::create_dir_all(&outside_dir).unwrap();
    fs::write(outside_dir.join("inner"), b"outside the evidence").unwrap();
    let outside_hook = outside.clone();
    let outside_dir_hook = outside_dir.clone();
    let faults = Faults {
        before_open: Some(Arc::new(move |path: &Path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            match name {
                "deleted" => fs::remove_file(path).unwrap(),
                "to-symlink" => {
                    fs::remove_file(path).unwrap();
                    std::os::unix::fs::symlink(&outside_hook, path).unwrap();
                }
                "to-fifo" => {
                    fs::remove_file(path).unwrap();
                    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
                    // SAFETY: valid C string.
                    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
                }
                // An intermediate directory swapped for a link out of the
                // evidence: the open must not pass through it.
                "inner" => {
                    let sub = path.parent().unwrap();
                    fs::rename(sub, sub.with_extension("moved")).unwrap();
                    std::os::unix::fs::symlink(&outside_dir_hook, sub).unwrap();
                }
                "to-other-file" => {
                    let tmp = path.with_extension("new");
                    fs::write(&tmp, b"a different file").unwrap();
                    fs::rename(&tmp, path).unwrap();
                }
                _ => {}
            }
        })),
        ..Faults::default()
    };
    let (entries, summary) = scan(&t, faults);
    let (stage, kind, bytes) = failure(&entries, "deleted");
    assert_eq!((stage, bytes), (Stage::Open, 0));
    assert!(matches!(kind, FailureKind::Io(e) if e.errno == Some(libc::ENOENT)));
    for (name, now) in [
        ("to-symlink", FileKind::Symlink),
        ("to-fifo", FileKind::Fifo),
        ("to-other-file", FileKind::Regular),
    ] {
        let (stage, kind, bytes) = failure(&entries, name);
        assert_eq!(
            (stage, kind, bytes),
            (Stage::Open, FailureKind::Replaced { now }, 0),
            "{name}"
        );
    }
    // openat2 refuses the link in the path (ELOOP: recorded as replaced by
    // a symlink); kernels without openat2 open by path and the inode check
    // refuses the other file. Either way nothing outside is read.
    let (stage, kind, bytes) = failure(&entries, "sub/inner");
    assert_eq!((stage, bytes), (Stage::Open, 0));
    let now = if has_openat2() {
        FileKind::Symlink
    } else {
        FileKind::Regular
    };
    assert_eq!(kind, FailureKind::Replaced { now });
    assert_hashed(&entries, "kept", &kept);
    assert_eq!(summary.failed_total(), 5);
    assert_eq!(summary.files_hashed, 1);
    let _ = fs::remove_file(outside);
    let _ = fs::remove_dir_all(outside_dir);
}

/// Whether the kernel has openat2 (Linux 5.6+): ENOSYS says no.
fn has_openat2() -> bool {
    // SAFETY: an openat2 call with a zeroed open_how on ".", closed at once.
    unsafe {
        let how: libc::open_how = std::mem::zeroed();
        let fd = libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c".".as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        );
        if fd >= 0 {
            libc::close(fd as i32);
            return true;
        }
        io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
    }
}
