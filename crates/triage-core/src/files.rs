//! The examiner's own inputs (hash lists, audit logs, indexes): opened
//! read-only, and without moving their access times where the kernel
//! permits it, since they may sit on the evidence drive. Evidence itself is
//! opened by [`crate::source`] only.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading with `O_NOATIME` (owner or root), or without
/// it where the kernel refuses the flag (`EPERM`).
pub(crate) fn open_quiet(path: &Path) -> io::Result<File> {
    let open = |flags: i32| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags | libc::O_CLOEXEC)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        r => r,
    }
}
