//! Walk stage: every entry under the evidence root, once, in a fixed order.
//!
//! Input: a root directory (or a single file). Output: a stream of
//! [`Walked`] entries, each either a regular file for the read stage or an
//! entry already finished here (skipped with a reason, or failed with the OS
//! error). Failures never stop the walk; only an unusable root does, in
//! [`Walker::new`].
//!
//! Rules, each from a way other tools have lost files or hung:
//! - Symbolic links are never followed (their target is recorded); FIFOs,
//!   sockets and device nodes are never opened. Only the root itself is
//!   resolved if it is a link, since the examiner named it.
//! - A directory whose (device, inode) equals one of its ancestors' is a loop
//!   (bind mount, NTFS junction seen through a driver) and is not entered.
//! - With `one_file_system`, directories on another device are not entered.
//! - Order is deterministic: entries come sorted by the raw bytes of their
//!   path relative to the root, with `/` as separator. Each directory is
//!   sorted by name with a `/` appended to sub-directory names, which makes a
//!   depth-first walk produce exactly that global byte order.
//! - Memory is bounded by the listings on the current path (depth × width),
//!   never by the number of files in the tree.
//! - Every system call names one entry relative to its directory's
//!   descriptor (`openat`, `statx`, `readlinkat`; see `sys.rs`), so a
//!   tree deeper than `PATH_MAX` is walked like any other. Only the current
//!   directory and the root are held open: going back up re-opens the
//!   parent through `..`, checked by (device, inode). Regular files whose
//!   full path is too long to open by name are opened here, relative to
//!   their directory, and handed on open ([`Walked::file`]).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::source::dir::sys::{self, EVIDENCE_FLAGS, c_bytes, open_at, stat_at, stat_fd};

use crate::item::{Failure, FailureKind, FileKind, FileMeta, NotRead, SkipReason, Stage};
use crate::path::RawPath;
pub use crate::source::tree::{Next, Walked};

/// Walk settings.
#[derive(Clone, Debug, Default)]
pub struct WalkOptions {
    /// Do not enter directories on a device other than the root's.
    pub one_file_system: bool,
    /// Do not read symlink targets. `readlink` updates the link's own access
    /// time on a read-write mount, and the kernel offers no way around it;
    /// this trades the recorded target for an untouched atime.
    pub no_link_targets: bool,
}

/// Full paths at least this long are opened by the walk, relative to their
/// directory, instead of by name in the read stage (`PATH_MAX` is 4,096).
pub const LONG_PATH: usize = 2048;

struct Frame {
    dir: RawPath,
    id: (u64, u64),
    /// Remaining names, sorted descending so `pop` yields the next one.
    names: Vec<Box<[u8]>>,
    fd: DirFd,
}

/// A frame's directory descriptor: only the top frame's (and the root's)
/// is kept open, so depth costs no descriptors.
enum DirFd {
    Open(OwnedFd),
    /// Closed while a sub-directory is walked; re-opened on the way back.
    Closed,
    /// Could not be re-opened: the remaining names fail with this error.
    Lost(i32),
}

/// A streaming, deterministic, loop-safe walk of an evidence tree.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("triage-walk-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(dir.join("sub")).unwrap();
/// # std::fs::write(dir.join("sub/b"), b"x").unwrap();
/// # std::fs::write(dir.join("a"), b"y").unwrap();
/// use triage_core::walk::{Walker, WalkOptions};
/// let walker = Walker::new(&dir, WalkOptions::default()).unwrap();
/// let paths: Vec<String> = walker.map(|w| w.path.to_string()).collect();
/// assert_eq!(paths, ["a", "sub/b"]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Walker {
    root: PathBuf,
    opts: WalkOptions,
    root_dev: u64,
    stack: Vec<Frame>,
    single: Option<Walked>,
    directories: u64,
}

/// Why a root cannot be walked.
#[derive(Debug)]
pub enum RootError {
    /// `stat` of the root failed.
    Stat(io::Error),
    /// Listing the root directory failed.
    List(io::Error),
    /// The root is neither a directory nor a regular file.
    NotWalkable(FileKind),
    /// The root lies on a pseudo file system (procfs, sysfs, …).
    PseudoFileSystem(&'static str),
    /// The root is a disk image that cannot be read (its message says
    /// why and what to do).
    Image(String),
}

impl std::fmt::Display for RootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootError::Stat(e) => write!(f, "cannot stat the evidence root: {e}"),
            RootError::List(e) => write!(f, "cannot list the evidence root: {e}"),
            RootError::NotWalkable(k) => write!(
                f,
                "the evidence root is a {} object; give a directory or a regular file",
                k.name()
            ),
            RootError::PseudoFileSystem(fs) => write!(
                f,
                "the evidence root is on {fs}, a pseudo file system: its files are the kernel's state, not stored data \
                 (some never end); give a directory of a mounted evidence file system"
            ),
            RootError::Image(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RootError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RootError::Stat(e) | RootError::List(e) => Some(e),
            RootError::NotWalkable(_) | RootError::PseudoFileSystem(_) | RootError::Image(_) => {
                None
            }
        }
    }
}

/// Splits a root into the directory records are relative to and, when the
/// root is a single regular file, that file's name.
pub fn split_root(root: &Path) -> Result<(PathBuf, Option<RawPath>), RootError> {
    let meta = fs::metadata(root).map_err(RootError::Stat)?;
    if meta.is_dir() {
        return Ok((root.to_path_buf(), None));
    }
    if meta.is_file() {
        // A file root named through a symlink: the examiner named it, so
        // resolve it, and record the file under its real name.
        let resolved;
        let root = if fs::symlink_metadata(root)
            .map_err(RootError::Stat)?
            .is_symlink()
        {
            resolved = fs::canonicalize(root).map_err(RootError::Stat)?;
            resolved.as_path()
        } else {
            root
        };
        if let (Some(parent), Some(name)) = (root.parent(), root.file_name()) {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            return Ok((
                parent.to_path_buf(),
                Some(RawPath::from_bytes(name.as_bytes())),
            ));
        }
    }
    use std::os::unix::fs::MetadataExt;
    Err(RootError::NotWalkable(FileKind::from_mode(meta.mode())))
}

impl Walker {
    /// Starts a walk at `root`: a directory, or a regular file (then the walk
    /// yields that one file, relative to its parent).
    pub fn new(root: &Path, opts: WalkOptions) -> Result<Walker, RootError> {
        let (dir, single) = split_root(root)?;
        let meta = fs::metadata(&dir).map_err(RootError::Stat)?;
        // A root on /proc or /sys (or a file in one) is refused: nothing
        // there is stored data, and some files never end.
        if let Ok(c) = c_bytes(dir.as_os_str().as_bytes())
            && let Ok(fd) = open_at(None, &c, libc::O_DIRECTORY)
            && let Some(fs) = sys::pseudo_fs(fd.as_raw_fd())
        {
            return Err(RootError::PseudoFileSystem(fs));
        }
        let fm = FileMeta::from_std(&meta);
        let mut w = Walker {
            root: dir,
            opts,
            root_dev: fm.dev,
            stack: Vec::new(),
            single: None,
            directories: 0,
        };
        match single {
            Some(name) => {
                let full = name.under(&w.root);
                // split_root resolved a symlinked file root, so lstat sees the
                // file itself (unless it changed since).
                w.single = match fs::symlink_metadata(&full) {
                    Ok(m) => Some(w.leaf(name, FileMeta::from_std(&m), None)),
                    Err(e) => Some(failed(name, None, Stage::Stat, &e)),
                };
            }
            None => {
                // The root is opened by name (following a link: the examiner
                // named it); everything under it relative to descriptors.
                let c = c_bytes(w.root.as_os_str().as_bytes()).map_err(RootError::List)?;
                let fd = open_at(None, &c, libc::O_DIRECTORY).map_err(RootError::List)?;
                let (names, err) = list(&fd);
                if let Some(e) = err
                    && names.is_empty()
                {
                    return Err(RootError::List(e));
                }
                w.directories = 1;
                w.stack.push(Frame {
                    dir: RawPath::default(),
                    id: (fm.dev, fm.ino),
                    names,
                    fd: DirFd::Open(fd),
                });
            }
        }
        Ok(w)
    }

    /// The directory that record paths are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directories listed so far (the root included).
    pub fn directories(&self) -> u64 {
        self.directories
    }

    /// What to do with an entry of the directory `dir`; `None` for a
    /// directory that was entered cleanly (directories are not entries of
    /// their own).
    fn classify(
        &mut self,
        path: RawPath,
        meta: FileMeta,
        dir: RawFd,
        name: &CString,
    ) -> Option<Walked> {
        if meta.kind() == FileKind::Directory {
            return self.enter(path, meta, dir, name);
        }
        Some(self.leaf(path, meta, Some((dir, name))))
    }

    /// A non-directory entry. `at` is its directory and name; `None` for a
    /// single-file root, which is opened by name.
    fn leaf(&self, path: RawPath, meta: FileMeta, at: Option<(RawFd, &CString)>) -> Walked {
        let mut file = None;
        let next = match meta.kind() {
            FileKind::Regular => match at {
                Some((dir, name))
                    if self.root.as_os_str().len() + 1 + path.as_bytes().len() >= LONG_PATH =>
                {
                    match open_at(Some(dir), name, EVIDENCE_FLAGS) {
                        Ok(fd) => {
                            file = Some(fs::File::from(fd));
                            Next::Read
                        }
                        Err(e) => {
                            Next::Done(NotRead::Failed(crate::source::dir::open::open_failure(&e)))
                        }
                    }
                }
                _ => Next::Read,
            },
            FileKind::Symlink => {
                let target = match at {
                    _ if self.opts.no_link_targets => None,
                    Some((dir, name)) => sys::read_link_at(dir, name).ok(),
                    None => fs::read_link(path.under(&self.root))
                        .ok()
                        .map(|t| t.as_os_str().as_bytes().to_vec()),
                };
                Next::Done(NotRead::Skipped(SkipReason::Symlink {
                    target: target.map(RawPath::from_bytes),
                }))
            }
            other => Next::Done(NotRead::Skipped(
                SkipReason::for_kind(other).unwrap_or(SkipReason::UnknownType),
            )),
        };
        Walked {
            path,
            meta: Some(meta),
            next,
            file,
            location: None,
        }
    }

    /// Handles a sub-directory: skip it (other device, loop), fail it
    /// (cannot be opened or listed), or push its listing.
    fn enter(
        &mut self,
        path: RawPath,
        meta: FileMeta,
        dir: RawFd,
        name: &CString,
    ) -> Option<Walked> {
        let skip = |reason| {
            Some(Walked {
                path: path.clone(),
                meta: Some(meta.clone()),
                next: Next::Done(NotRead::Skipped(reason)),
                file: None,
                location: None,
            })
        };
        if self.opts.one_file_system && meta.dev != self.root_dev {
            return skip(SkipReason::OtherFileSystem);
        }
        let id = (meta.dev, meta.ino);
        if let Some(anc) = self.stack.iter().find(|f| f.id == id) {
            return skip(SkipReason::DirectoryLoop {
                ancestor: anc.dir.clone(),
            });
        }
        let fd = match open_at(Some(dir), name, libc::O_DIRECTORY | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) => return Some(failed(path, Some(meta), Stage::ReadDir, &e)),
        };
        // Replaced between the stat and the open: what was opened is not
        // what the loop check saw. Record it rather than walk it.
        match stat_fd(&fd) {
            Ok(now) if (now.dev, now.ino) == id => {}
            Ok(now) => {
                return Some(Walked {
                    path,
                    meta: Some(meta),
                    next: Next::Done(NotRead::Failed(Failure {
                        stage: Stage::ReadDir,
                        kind: FailureKind::Replaced { now: now.kind() },
                        bytes_read: 0,
                    })),
                    file: None,
                    location: None,
                });
            }
            Err(e) => return Some(failed(path, Some(meta), Stage::ReadDir, &e)),
        }
        // A mount point: a pseudo file system (/proc, /sys inside an image
        // of a live system's root) is recorded, not entered.
        if self.stack.last().is_some_and(|p| p.id.0 != meta.dev)
            && sys::pseudo_fs(fd.as_raw_fd()).is_some()
        {
            return skip(SkipReason::PseudoFileSystem);
        }
        let (names, err) = list(&fd);
        self.directories += 1;
        // Only the top frame keeps its descriptor (see `DirFd`); the root's
        // stays open as the anchor for re-opening by name.
        if self.stack.len() > 1
            && let Some(parent) = self.stack.last_mut()
        {
            parent.fd = DirFd::Closed;
        }
        self.stack.push(Frame {
            dir: path.clone(),
            id,
            names,
            fd: DirFd::Open(fd),
        });
        err.map(|e| failed(path, Some(meta), Stage::ReadDir, &e))
    }

    /// Leaves the top frame and re-opens its parent's descriptor: through
    /// `..` of the frame left, or, if that is not the parent any more (the
    /// tree was moved), name by name from the root.
    fn pop_frame(&mut self) {
        let Some(done) = self.stack.pop() else { return };
        let Some(parent) = self.stack.last() else {
            return;
        };
        if !matches!(parent.fd, DirFd::Closed) {
            return;
        }
        let want = parent.id;
        let up = match &done.fd {
            DirFd::Open(fd) => open_at(Some(fd.as_raw_fd()), c"..", libc::O_DIRECTORY)
                .ok()
                .filter(|fd| stat_fd(fd).is_ok_and(|m| (m.dev, m.ino) == want)),
            _ => None,
        };
        drop(done);
        let fd = match up {
            Some(fd) => Ok(fd),
            None => self.reopen_from_root(),
        };
        if let Some(parent) = self.stack.last_mut() {
            parent.fd = match fd {
                Ok(fd) => DirFd::Open(fd),
                Err(e) => DirFd::Lost(e.raw_os_error().unwrap_or(libc::EIO)),
            };
        }
    }

    /// Opens the top frame's directory name by name from the root, and
    /// checks it is still the directory that was listed.
    fn reopen_from_root(&self) -> io::Result<OwnedFd> {
        let (Some(root), Some(top)) = (self.stack.first(), self.stack.last()) else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        let DirFd::Open(root_fd) = &root.fd else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        let mut fd: Option<OwnedFd> = None;
        for part in top.dir.as_bytes().split(|&b| b == b'/') {
            let at = fd.as_ref().unwrap_or(root_fd).as_raw_fd();
            fd = Some(open_at(
                Some(at),
                &c_bytes(part)?,
                libc::O_DIRECTORY | libc::O_NOFOLLOW,
            )?);
        }
        let fd = fd.ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        let now = stat_fd(&fd)?;
        if (now.dev, now.ino) != top.id {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        Ok(fd)
    }
}

fn failed(path: RawPath, meta: Option<FileMeta>, stage: Stage, e: &io::Error) -> Walked {
    Walked {
        path,
        meta,
        next: Next::Done(NotRead::Failed(Failure {
            stage,
            kind: FailureKind::Io(e.into()),
            bytes_read: 0,
        })),
        file: None,
        location: None,
    }
}

/// Lists an open directory, sorted so that popping from the end gives
/// global byte order (see the module doc). Returns what could be listed and
/// the first error, if listing stopped early or failed. Directories are
/// opened with `O_NOATIME` (see [`crate::source::dir::sys::open_at`]), so listing does
/// not move their access times.
fn list(dir: &OwnedFd) -> (Vec<Box<[u8]>>, Option<io::Error>) {
    let mut names: Vec<(Box<[u8]>, bool)> = Vec::new();
    let first_err = sys::list_dir(dir, &mut |name, is_dir| names.push((name.into(), is_dir))).err();
    fn key(e: &(Box<[u8]>, bool)) -> impl Iterator<Item = u8> + '_ {
        e.0.iter().copied().chain(e.1.then_some(b'/'))
    }
    names.sort_unstable_by(|a, b| key(b).cmp(key(a)));
    (names.into_iter().map(|(n, _)| n).collect(), first_err)
}

impl crate::source::Walk for Walker {
    fn directories(&self) -> u64 {
        Walker::directories(self)
    }
}

impl Iterator for Walker {
    type Item = Walked;

    fn next(&mut self) -> Option<Walked> {
        if let Some(w) = self.single.take() {
            return Some(w);
        }
        loop {
            let frame = self.stack.last_mut()?;
            let Some(name) = frame.names.pop() else {
                self.pop_frame();
                continue;
            };
            let path = frame.dir.join(&name);
            // Names from readdir never hold a NUL byte.
            let Ok(cname) = CString::new(name) else {
                let e = io::Error::from_raw_os_error(libc::EINVAL);
                return Some(failed(path, None, Stage::Stat, &e));
            };
            let dir = match &frame.fd {
                DirFd::Open(fd) => fd.as_raw_fd(),
                DirFd::Lost(errno) => {
                    let e = io::Error::from_raw_os_error(*errno);
                    return Some(failed(path, None, Stage::Stat, &e));
                }
                DirFd::Closed => {
                    let e = io::Error::from_raw_os_error(libc::EBADF);
                    return Some(failed(path, None, Stage::Stat, &e));
                }
            };
            let w = match stat_at(dir, &cname) {
                Ok(meta) => self.classify(path, meta, dir, &cname),
                Err(e) => Some(failed(path, None, Stage::Stat, &e)),
            };
            if w.is_some() {
                return w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("triage-walk-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    fn walk(root: &Path) -> Vec<(String, String)> {
        Walker::new(root, WalkOptions::default())
            .unwrap()
            .map(|w| {
                let what = match &w.next {
                    Next::Read => "read".to_string(),
                    Next::Done(o) => match o {
                        NotRead::Skipped(r) => r.code().to_string(),
                        NotRead::Failed(f) => f.stage.code().to_string(),
                    },
                };
                (w.path.to_string(), what)
            })
            .collect()
    }

    #[test]
    fn order_is_global_byte_order_of_paths() {
        let t = tmp("order");
        for d in ["a", "a/b", "a-c", "a0"] {
            fs::create_dir_all(t.0.join(d)).unwrap();
        }
        for f in ["a/b/z", "a/x", "a-c/y", "a.txt", "a0/w", "B", "a-"] {
            fs::write(t.0.join(f), f).unwrap();
        }
        let got: Vec<String> = walk(&t.0).into_iter().map(|(p, _)| p).collect();
        let mut want = got.clone();
        want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(got, want);
        assert_eq!(got, ["B", "a-", "a-c/y", "a.txt", "a/b/z", "a/x", "a0/w"]);
    }

    #[test]
    fn symlinks_are_recorded_not_followed() {
        let t = tmp("links");
        fs::create_dir(t.0.join("d")).unwrap();
        fs::write(t.0.join("d/f"), b"x").unwrap();
        std::os::unix::fs::symlink("..", t.0.join("d/up")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.0.join("out")).unwrap();
        let w: Vec<Walked> = Walker::new(&t.0, WalkOptions::default()).unwrap().collect();
        assert_eq!(w.len(), 3);
        match &w[2].next {
            Next::Done(NotRead::Skipped(SkipReason::Symlink { target: Some(t) })) => {
                assert_eq!(t.as_bytes(), b"/etc/passwd")
            }
            other => panic!("{other:?}"),
        }
    }

    /// A directory moved while the walk is inside it: going back up, `..`
    /// is no longer the parent, so the parent is re-opened by name from the
    /// root; if the parent is gone too, its remaining entries are recorded
    /// as failed, not dropped.
    #[test]
    fn parents_are_reopened_when_the_tree_moves_underneath() {
        // a/b/f1 and a/z; the walk stopped inside a/b, which is then moved out.
        let inside_b = |tag| {
            let t = tmp(tag);
            fs::create_dir_all(t.0.join("a/b")).unwrap();
            fs::write(t.0.join("a/b/f1"), b"1").unwrap();
            fs::write(t.0.join("a/z"), b"z").unwrap();
            let mut w = Walker::new(&t.0, WalkOptions::default()).unwrap();
            assert_eq!(w.next().unwrap().path.to_string(), "a/b/f1");
            fs::rename(t.0.join("a/b"), t.0.join("b-moved")).unwrap();
            (t, w)
        };
        let (_t, mut w) = inside_b("moved");
        let z = w.next().unwrap();
        assert_eq!(z.path.to_string(), "a/z");
        assert!(matches!(z.next, Next::Read));
        assert!(w.next().is_none());

        let (t, mut w) = inside_b("gone");
        fs::rename(t.0.join("a"), t.0.join("a-moved")).unwrap();
        let z = w.next().unwrap();
        assert_eq!(z.path.to_string(), "a/z");
        match z.next {
            Next::Done(NotRead::Failed(f)) => {
                assert_eq!(f.stage, Stage::Stat);
                assert!(matches!(f.kind, FailureKind::Io(e) if e.errno == Some(libc::ENOENT)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn single_file_root() {
        let t = tmp("single");
        fs::write(t.0.join("only.bin"), b"x").unwrap();
        let w = Walker::new(&t.0.join("only.bin"), WalkOptions::default()).unwrap();
        assert_eq!(w.root(), t.0.as_path());
        let got: Vec<_> = w.map(|w| w.path).collect();
        assert_eq!(got, [RawPath::from("only.bin")]);
    }

    #[test]
    fn missing_root_is_an_error() {
        let err = Walker::new(Path::new("/nonexistent/triage"), WalkOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("cannot stat the evidence root"));
    }
}
