//! Opening evidence in a mounted tree without changing it.
//!
//! Input: a path the walk found to be a regular file, with the (device,
//! inode) seen then. Output: the file, open read-only, with its metadata at
//! open; or a [`Failure`] naming why it could not be opened.
//!
//! How the evidence is protected:
//! - `open` is read-only with `O_NOFOLLOW` (a file swapped for a symlink is
//!   not followed), `O_NONBLOCK` (a file swapped for a FIFO does not block
//!   the open) and `O_NOATIME` (the access time stays as found; the kernel
//!   allows it only to the owner or root, so without permission it is
//!   dropped, silently, as reading is still correct).
//! - Items are opened beneath the root's descriptor (`openat2` with
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), never out of it.
//! - After opening, `fstat` must show a regular file with the inode the walk
//!   saw; anything else is recorded as replaced, and not read.
//!
//! The bytes are then read by [`crate::read`], through [`Source`], which a
//! [`File`] implements with `pread` and `SEEK_DATA`/`SEEK_HOLE`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::item::{Failure, FailureKind, FileKind, FileMeta, Stage};
use crate::source::tree::Source;

/// Opens `path` for reading evidence (see the module doc for the flags), and
/// checks that it is a regular file with identity `expect` = (device, inode)
/// when given. Returns the file and its metadata at open time.
pub fn open_evidence(path: &Path, expect: Option<(u64, u64)>) -> Result<(File, FileMeta), Failure> {
    let c = crate::source::dir::sys::c_bytes(path.as_os_str().as_bytes())
        .map_err(|e| open_failure(&e))?;
    let fd = crate::source::dir::sys::open_at(None, &c, crate::source::dir::sys::EVIDENCE_FLAGS)
        .map_err(|e| open_failure(&e))?;
    check_opened(File::from(fd), expect)
}

/// Opens `rel` under the evidence root held open as `root` (see
/// `sys.rs`): no component may be a symlink or lead out of the root.
/// Falls back to [`open_evidence`] of `root_path/rel` on kernels without
/// `openat2`, or when no root descriptor could be had.
pub fn open_beneath(
    root: Option<&std::os::fd::OwnedFd>,
    root_path: &Path,
    rel: &crate::path::RawPath,
    expect: Option<(u64, u64)>,
) -> Result<(File, FileMeta), Failure> {
    use std::os::fd::AsRawFd;
    if let Some(root) = root
        && !rel.as_bytes().is_empty()
    {
        let c = crate::source::dir::sys::c_bytes(rel.as_bytes()).map_err(|e| open_failure(&e))?;
        match crate::source::dir::sys::open_beneath(
            root.as_raw_fd(),
            &c,
            crate::source::dir::sys::EVIDENCE_FLAGS,
        ) {
            Ok(fd) => return check_opened(File::from(fd), expect),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
            Err(e) => return Err(open_failure(&e)),
        }
    }
    open_evidence(&rel.under(root_path), expect)
}

/// The root directory of an evidence tree, held open for [`open_beneath`];
/// `None` if it cannot be opened (then files are opened by path).
pub fn open_root(root: &Path) -> Option<std::os::fd::OwnedFd> {
    let c = crate::source::dir::sys::c_bytes(root.as_os_str().as_bytes()).ok()?;
    crate::source::dir::sys::open_at(None, &c, libc::O_DIRECTORY).ok()
}

/// A mounted evidence tree to open items from: its root's path and, held
/// open, its descriptor. Every later stage that reads an item's bytes (the
/// scan's jobs, the HTML report's thumbnails) opens it through this, by its
/// path relative to the root, never by an OS path of its own.
///
/// ```
/// use triage_core::source::dir::open::DirTree;
/// # let dir = std::env::temp_dir().join(format!("triage-dirtree-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.txt"), b"abc").unwrap();
/// let tree = DirTree::open(&dir);
/// let (_file, meta) = tree.open_item(&triage_core::RawPath::from_path("a.txt".as_ref()), None).unwrap();
/// assert_eq!(meta.size, 3);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct DirTree {
    root: std::path::PathBuf,
    fd: Option<std::os::fd::OwnedFd>,
}

impl DirTree {
    /// Holds `root` open (when it can be opened: otherwise items are opened
    /// by path, with the (device, inode) check).
    pub fn open(root: &Path) -> DirTree {
        DirTree {
            root: root.to_path_buf(),
            fd: open_root(root),
        }
    }

    /// The root's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the item at `rel` read-only beneath the root (no symlink, no
    /// `..` out of it), checks it is a regular file with identity `expect` =
    /// (device, inode) when given, and returns it with its metadata.
    pub fn open_item(
        &self,
        rel: &crate::path::RawPath,
        expect: Option<(u64, u64)>,
    ) -> Result<(File, FileMeta), Failure> {
        open_beneath(self.fd.as_ref(), &self.root, rel, expect)
    }
}

/// The failure record of an open that failed.
pub fn open_failure(e: &io::Error) -> Failure {
    let kind = if e.raw_os_error() == Some(libc::ELOOP) {
        // O_NOFOLLOW on a symlink: the regular file seen by the walk has
        // been replaced by a link since.
        FailureKind::Replaced {
            now: FileKind::Symlink,
        }
    } else {
        FailureKind::Io(e.into())
    };
    Failure {
        stage: Stage::Open,
        kind,
        bytes_read: 0,
    }
}

/// Checks an opened file (by [`open_evidence`], or by the walk relative to
/// its directory) is the regular file the walk saw (`expect`: its device
/// and inode), and returns it with its metadata at open time.
pub fn check_opened(file: File, expect: Option<(u64, u64)>) -> Result<(File, FileMeta), Failure> {
    let meta = file
        .metadata()
        .map(|m| FileMeta::from_std(&m))
        .map_err(|e| Failure {
            stage: Stage::Open,
            kind: FailureKind::Io((&e).into()),
            bytes_read: 0,
        })?;
    let replaced = meta.kind() != FileKind::Regular
        || expect.is_some_and(|(dev, ino)| (meta.dev, meta.ino) != (dev, ino));
    if replaced {
        return Err(Failure {
            stage: Stage::Open,
            kind: FailureKind::Replaced { now: meta.kind() },
            bytes_read: 0,
        });
    }
    // Sequential hint: doubles read-ahead, which helps spinning disks on
    // large files (small ones are read in one call anyway). Advice only.
    if meta.size > 1 << 20 {
        // SAFETY: plain syscall on a valid open descriptor.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
    }
    Ok((file, meta))
}

impl Source for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<u64>> {
        match seek(self, offset, libc::SEEK_DATA) {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                Err(io::Error::new(io::ErrorKind::Unsupported, e))
            }
            r => r.map(Some),
        }
    }

    fn next_hole(&self, offset: u64) -> io::Result<u64> {
        seek(self, offset, libc::SEEK_HOLE)
    }

    fn size_now(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn will_need(&self, offset: u64, len: u64) {
        let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return;
        };
        // SAFETY: plain syscall on a valid open descriptor. Advice only:
        // the result does not matter.
        unsafe { libc::posix_fadvise(self.as_raw_fd(), off, len, libc::POSIX_FADV_WILLNEED) };
    }
}

fn seek(f: &File, offset: u64, whence: libc::c_int) -> io::Result<u64> {
    let off = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: lseek on a valid descriptor; we use pread elsewhere, so moving
    // the file position (shared by every user of the descriptor) affects
    // nothing, and lseek returns its result atomically.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u64)
    }
}
