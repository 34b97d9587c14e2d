//! The files a run writes: one writer at a time, and nothing half-written.
//!
//! Two rules, for every output of every command:
//! - **One writer.** The audit log and every side output are locked
//!   exclusively (`flock`) for the whole run. A second `triage` that would
//!   write the same file refuses at once, naming the process that holds it
//!   ([`OutputError::InUse`]), and touches nothing: two scans into one log
//!   would interleave two hash chains into a log that verifies nowhere.
//! - **All or nothing.** Reports and side outputs (`--csv`, `--hashdeep`)
//!   are written to `TARGET.partial` beside the target and renamed over it
//!   only once complete and synced ([`AtomicFile::commit`]); a failure (a
//!   full disk) removes the partial file, so no truncated report is left
//!   where a reader would take it for a whole one. The audit log is the
//!   exception: it is appended and synced as it goes (a killed scan's log is
//!   a verifiable prefix that `--resume` finishes), and only locked.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why an output cannot be written.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutputError {
    /// The target exists and overwriting was not asked for.
    Exists(PathBuf),
    /// Another process is writing it.
    InUse {
        /// The output.
        path: PathBuf,
        /// The process holding the lock, when the kernel says (`/proc/locks`).
        pid: Option<u32>,
    },
    /// Creating, writing, syncing or renaming failed.
    Io {
        /// The file that failed (the target, or its `.partial`).
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputError::Exists(p) => {
                write!(f, "'{}' exists; use --force to overwrite it", p.display())
            }
            OutputError::InUse { path, pid } => {
                let who = pid.map_or("another process".to_string(), |p| format!("process {p}"));
                write!(
                    f,
                    "'{}' is in use by {who}: another triage is writing it; wait for it to end, or choose another file",
                    path.display()
                )
            }
            OutputError::Io { path, error } => {
                write!(f, "cannot write '{}': {error}", path.display())
            }
        }
    }
}

impl std::error::Error for OutputError {}

impl OutputError {
    fn io(path: &Path, error: io::Error) -> OutputError {
        OutputError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Takes an exclusive lock on `file` (the open file description, so it
/// holds as long as `file` or a duplicate of it is open), or says who holds
/// it. Never waits.
pub fn lock_exclusive(file: &File, path: &Path) -> Result<(), OutputError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(OutputError::InUse {
            path: path.to_path_buf(),
            pid: lock_holder(file),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(OutputError::io(path, e)),
    }
}

/// Opens (creating it if needed) and locks the audit log at `path` for
/// writing, without truncating it: only once the lock is held is it emptied
/// (`overwrite`) or refused as existing. Appending after a verified prefix
/// (`--resume`) opens it with [`open_locked`] instead.
pub fn create_log(path: &Path, overwrite: bool) -> Result<File, OutputError> {
    let existed = path.symlink_metadata().is_ok();
    if existed && !overwrite {
        return Err(OutputError::Exists(path.to_path_buf()));
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| OutputError::io(path, e))?;
    // A character device or FIFO (`-o /dev/null`) is neither locked (many
    // writers share /dev/null) nor cut.
    if file.metadata().is_ok_and(|m| m.is_file()) {
        lock_exclusive(&file, path)?;
        file.set_len(0).map_err(|e| OutputError::io(path, e))?;
    }
    Ok(file)
}

/// Opens an existing file for reading and writing, locked: the log a resume
/// verifies and then appends to through this one descriptor, so that no
/// writer can slip in between the check and the append.
pub fn open_locked(path: &Path) -> Result<File, OutputError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| OutputError::io(path, e))?;
    lock_exclusive(&file, path)?;
    Ok(file)
}

/// A report or side output written to `TARGET.partial` and renamed over
/// `TARGET` by [`AtomicFile::commit`]; dropped uncommitted, it removes the
/// partial file. The partial file is locked while written.
///
/// ```
/// use std::io::Write;
/// use triage_core::record::output::AtomicFile;
/// # let dir = std::env::temp_dir().join(format!("triage-atomic-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let target = dir.join("report.csv");
/// let mut out = AtomicFile::create(&target, false)?;
/// out.write_all(b"path,md5\n")?;
/// assert!(!target.exists()); // nothing at the target until it is whole
/// out.commit()?;
/// assert_eq!(std::fs::read(&target)?, b"path,md5\n");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    target: PathBuf,
    partial: PathBuf,
}

impl AtomicFile {
    /// Starts writing `target`. Refuses when it exists (unless
    /// `overwrite`) or when another process is writing it.
    pub fn create(target: &Path, overwrite: bool) -> Result<AtomicFile, OutputError> {
        if !overwrite && target.symlink_metadata().is_ok() {
            return Err(OutputError::Exists(target.to_path_buf()));
        }
        let partial = partial_path(target);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial)
            .map_err(|e| OutputError::io(&partial, e))?;
        // The lock is on the partial file: a second writer of the same
        // target opens the same partial file and finds it taken.
        lock_exclusive(&file, target)?;
        file.set_len(0).map_err(|e| OutputError::io(&partial, e))?;
        Ok(AtomicFile {
            file: Some(file),
            target: target.to_path_buf(),
            partial,
        })
    }

    /// The file being written to, until commit.
    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    /// The target.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Syncs the partial file and renames it over the target. On error the
    /// partial file is removed and the target is as it was.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let done = file
            .flush()
            .and_then(|()| file.sync_all())
            .map_err(|e| OutputError::io(&self.partial, e))
            .and_then(|()| {
                std::fs::rename(&self.partial, &self.target)
                    .map_err(|e| OutputError::io(&self.target, e))
            });
        if done.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        done
    }

    fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the output is already committed"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// `TARGET.partial`, beside the target.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// The process holding a `flock` on `file`, from `/proc/locks`
/// (`ID: FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE START END`, device in
/// hex). `None` where the kernel does not say.
fn lock_holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let (dev, ino) = (meta.dev(), meta.ino());
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let mut same_inode = Vec::new();
    for line in locks.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // A blocked waiter's line starts with "->"; it holds nothing.
        if f.len() < 6 || f[1] != "FLOCK" || f[0] == "->" {
            continue;
        }
        let mut id = f[5].split(':');
        let (Some(ma), Some(mi), Some(i)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let (Ok(pid), Ok(i)) = (f[4].parse::<u32>(), i.parse::<u64>()) else {
            continue;
        };
        if i != ino {
            continue;
        }
        let same_dev =
            u64::from_str_radix(ma, 16) == Ok(major) && u64::from_str_radix(mi, 16) == Ok(minor);
        if same_dev && pid != std::process::id() {
            return Some(pid);
        }
        same_inode.push(pid);
    }
    // Some file systems report another device in /proc/locks than in stat
    // (overlayfs, btrfs subvolumes): one lock on the inode is still clear.
    match same_inode.as_slice() {
        [pid] if *pid != std::process::id() => Some(*pid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("triage-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_lock_is_refused_and_names_no_one_in_this_process() {
        let d = tmp("lock");
        let p = d.join("log");
        let a = create_log(&p, false).unwrap();
        // A second open file description in this process conflicts too.
        match create_log(&p, true) {
            Err(OutputError::InUse { pid, .. }) => assert_eq!(pid, None),
            other => panic!("{other:?}"),
        }
        drop(a);
        create_log(&p, true).unwrap();
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing() {
        let d = tmp("atomic");
        let t = d.join("r.csv");
        std::fs::write(&t, b"old").unwrap();
        assert!(matches!(
            AtomicFile::create(&t, false),
            Err(OutputError::Exists(_))
        ));
        let mut a = AtomicFile::create(&t, true).unwrap();
        a.write_all(b"new, half").unwrap();
        assert!(matches!(
            AtomicFile::create(&t, true),
            Err(OutputError::InUse { .. })
        ));
        drop(a);
        assert_eq!(std::fs::read(&t).unwrap(), b"old");
        assert!(!d.join("r.csv.partial").exists());
        let mut a = AtomicFile::create(&t, true).unwrap();
        a.write_all(b"new").unwrap();
        a.commit().unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"new");
        assert!(!d.join("r.csv.partial").exists());
    }
}
