//! The few system calls the walk and read stages make relative to a
//! directory descriptor (`openat`, `statx`, `readlinkat`), so that no path
//! handed to the kernel is ever longer than one name: evidence trees can be
//! deeper than `PATH_MAX` (4,096 bytes) allows a full path to be.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::item::FileMeta;
use crate::time::Timestamp;

/// Flags every open of evidence uses: never follow a final symlink, never
/// block (FIFOs, devices), never become a controlling terminal.
pub(crate) const EVIDENCE_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;

/// A name or path for a system call.
pub(crate) fn c_bytes(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `openat(dir, name, flags | O_CLOEXEC)` read-only, with `O_NOATIME` when
/// the kernel permits it (owner or root) and without it otherwise.
/// `dir = None` means the working directory (for absolute or plain paths).
pub(crate) fn open_at(dir: Option<RawFd>, name: &CStr, flags: i32) -> io::Result<OwnedFd> {
    let dirfd = dir.unwrap_or(libc::AT_FDCWD);
    let flags = flags | libc::O_RDONLY | libc::O_CLOEXEC;
    // SAFETY: openat with a valid descriptor (or AT_FDCWD) and a valid C string.
    let mut fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags | libc::O_NOATIME) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        // SAFETY: as above.
        fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(root, rel, …)` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`:
/// no component of `rel` may be a symlink or lead out of `root`, so a
/// directory swapped for a link after the walk (to `/dev`, say) cannot
/// make the read stage open anything outside the evidence. `Unsupported`
/// when the kernel has no `openat2` (before 5.6): the caller then opens by
/// path and relies on the (device, inode) check.
pub(crate) fn open_beneath(root: RawFd, rel: &CStr, flags: i32) -> io::Result<OwnedFd> {
    let attempt = |flags: i32| {
        // SAFETY: open_how is plain integers; zero is a valid value of each.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_RDONLY | libc::O_CLOEXEC) as u64;
        how.resolve =
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: openat2 with a valid descriptor, C string and open_how of
        // the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                rel.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            // SAFETY: openat2 returned a new descriptor that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
        }
    };
    match attempt(flags | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => attempt(flags),
        r => r,
    }
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::E2BIG) => io::Error::new(io::ErrorKind::Unsupported, e),
        _ => e,
    })
}

/// `statx` of `name` in `dir` without following a final symlink; with an
/// empty name, of `dir` itself.
pub(crate) fn stat_at(dir: RawFd, name: &CStr) -> io::Result<FileMeta> {
    let mut flags = libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT;
    if name.is_empty() {
        flags |= libc::AT_EMPTY_PATH;
    }
    // SAFETY: a zeroed statx is a valid output buffer.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    // SAFETY: valid descriptor, C string and output buffer.
    let r = unsafe { libc::statx(dir, name.as_ptr(), flags, mask, &mut st) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let ts = |t: libc::statx_timestamp| Timestamp::new(t.tv_sec, t.tv_nsec as i64);
    Ok(FileMeta {
        size: st.stx_size,
        mode: u32::from(st.stx_mode),
        // As std computes it, so values compare with `FileMeta::from_std`.
        dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
        nlink: u64::from(st.stx_nlink),
        uid: st.stx_uid,
        gid: st.stx_gid,
        mtime: ts(st.stx_mtime),
        atime: ts(st.stx_atime),
        ctime: ts(st.stx_ctime),
        btime: (st.stx_mask & libc::STATX_BTIME != 0).then(|| ts(st.stx_btime)),
        blocks: st.stx_blocks,
    })
}

/// The pseudo file system `fd` lies on, by `fstatfs` magic, or `None` for a
/// file system that stores data. Their files are the kernel's state, not
/// evidence, and some never end (`/proc/self/pagemap`). devtmpfs shares
/// tmpfs's magic and cannot be told apart; it holds device nodes, which
/// are never opened anyway.
pub(crate) fn pseudo_fs(fd: RawFd) -> Option<&'static str> {
    // SAFETY: a zeroed statfs is a valid output buffer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and output buffer.
    if unsafe { libc::fstatfs(fd, &mut st) } != 0 {
        return None;
    }
    pseudo_fs_name(st.f_type as i64)
}

/// The name of a pseudo file system's magic number (linux/magic.h).
pub(crate) fn pseudo_fs_name(magic: i64) -> Option<&'static str> {
    Some(match magic as u32 {
        0x9fa0 => "procfs",
        0x6265_6572 => "sysfs",
        0x6462_6720 => "debugfs",
        0x7472_6163 => "tracefs",
        0x1cd1 => "devpts",
        0x0027_e0eb => "cgroup",
        0x6367_7270 => "cgroup2",
        0x7363_6673 => "securityfs",
        0xf97c_ff8c => "selinuxfs",
        0x4249_4e4d => "binfmt_misc",
        0xcafe_4a11 => "bpf",
        0x6165_676c => "pstore",
        0xde5e_81e4 => "efivarfs",
        0x6265_6570 => "configfs",
        0x6573_5543 => "fusectl",
        0x6e73_6673 => "nsfs",
        0x1980_0202 => "mqueue",
        _ => return None,
    })
}

/// `fstat` of an open descriptor.
pub(crate) fn stat_fd(fd: &OwnedFd) -> io::Result<FileMeta> {
    stat_at(fd.as_raw_fd(), c"")
}

/// `readlinkat`: the target of the symlink `name` in `dir`, as stored.
pub(crate) fn read_link_at(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid descriptor, C string, and a buffer of buf.len() bytes.
        let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        // The target may have been cut to fit: try again with more room.
        if buf.len() >= 1 << 20 {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        buf.resize(buf.len() * 4, 0);
    }
}

/// Calls `f(name, is_dir)` for every entry of the open directory `dir`
/// but `.` and `..`; stops at the first error, after the entries read
/// before it. `dir` itself stays open (a duplicate is read).
pub(crate) fn list_dir(dir: &OwnedFd, f: &mut dyn FnMut(&[u8], bool)) -> io::Result<()> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid descriptor.
    let dup = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: dup is a valid directory descriptor; on success the DIR owns it.
    let d = unsafe { libc::fdopendir(dup) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so we still own dup.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    struct Dir(*mut libc::DIR);
    impl Drop for Dir {
        fn drop(&mut self) {
            // SAFETY: the DIR came from fdopendir and is closed once.
            unsafe { libc::closedir(self.0) };
        }
    }
    let d = Dir(d);
    // The duplicate shares the file offset: start from the beginning.
    // SAFETY: d.0 is a valid open DIR.
    unsafe { libc::rewinddir(d.0) };
    loop {
        // readdir signals errors only through errno, so clear it first.
        // SAFETY: errno location is thread-local and always valid.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: d.0 is a valid open DIR used by this thread only.
        let ent = unsafe { libc::readdir(d.0) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(0) | None => Ok(()),
                Some(_) => Err(e),
            };
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
        let (name, d_type) = unsafe { (CStr::from_ptr((*ent).d_name.as_ptr()), (*ent).d_type) };
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let is_dir = match d_type {
            libc::DT_DIR => true,
            // Some filesystems (older XFS, some FUSE) do not fill d_type.
            libc::DT_UNKNOWN => stat_at(dir.as_raw_fd(), name)
                .is_ok_and(|m| m.kind() == crate::item::FileKind::Directory),
            _ => false,
        };
        f(bytes, is_dir);
    }
}
