//! The vocabulary every stage shares: what kind of object an item is, its
//! metadata, and why it was skipped or failed.
//!
//! It sits at the bottom of the pipeline: the walk and the reader produce
//! these, the scan and the audit log record them, verification and the
//! reports read them back, and nothing here imports a later stage. The
//! record of a whole entry (an item and what became of it, with its digests
//! and matches) is `record::Entry`.

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use crate::path::RawPath;
use crate::time::Timestamp;

/// What kind of filesystem object an entry is, from its `lstat` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link (never followed).
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A block device node.
    BlockDevice,
    /// A character device node.
    CharDevice,
    /// Anything else the filesystem reports.
    Unknown,
}

impl FileKind {
    /// From the `st_mode` file-type bits.
    pub fn from_mode(mode: u32) -> Self {
        match mode & libc::S_IFMT {
            libc::S_IFREG => FileKind::Regular,
            libc::S_IFDIR => FileKind::Directory,
            libc::S_IFLNK => FileKind::Symlink,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            libc::S_IFBLK => FileKind::BlockDevice,
            libc::S_IFCHR => FileKind::CharDevice,
            _ => FileKind::Unknown,
        }
    }

    /// The name used in records.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Regular => "regular",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
            FileKind::BlockDevice => "block_device",
            FileKind::CharDevice => "char_device",
            FileKind::Unknown => "unknown",
        }
    }
}

/// Metadata of an entry as `statx` reported it when the entry was walked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// Mode bits including the file type (`st_mode`).
    pub mode: u32,
    /// Device the entry lives on (`st_dev`).
    pub dev: u64,
    /// Inode number (`st_ino`).
    pub ino: u64,
    /// Hard-link count.
    pub nlink: u64,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Last modification.
    pub mtime: Timestamp,
    /// Last access (as recorded on the evidence; `triage` does not change it).
    pub atime: Timestamp,
    /// Last status change.
    pub ctime: Timestamp,
    /// Creation ("birth") time, when the filesystem records it.
    pub btime: Option<Timestamp>,
    /// 512-byte blocks allocated; fewer than the size needs means holes.
    pub blocks: u64,
}

impl FileMeta {
    /// From a `std` metadata value (which Linux fills from `statx`).
    pub fn from_std(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileMeta {
            size: m.size(),
            mode: m.mode(),
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            mtime: Timestamp::new(m.mtime(), m.mtime_nsec()),
            atime: Timestamp::new(m.atime(), m.atime_nsec()),
            ctime: Timestamp::new(m.ctime(), m.ctime_nsec()),
            btime: m.created().ok().map(Timestamp::from),
            blocks: m.blocks(),
        }
    }

    /// The file type from the mode bits.
    pub fn kind(&self) -> FileKind {
        FileKind::from_mode(self.mode)
    }
}

/// Where an item inside a disk image is: the partition, the file system,
/// the record in it, and whether the file is allocated or deleted.
/// Directory trees have none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The partition, when the image has a partition table.
    pub partition: Option<Partition>,
    /// The file system: `ext2`, `ext3`, `ext4`, `fat12`, `fat16`, `fat32`,
    /// `exfat`, `ntfs`, `hfsplus`, `hfsx`, `iso9660`.
    pub fs: &'static str,
    /// Byte offset of the file system in the image.
    pub fs_offset: u64,
    /// The item's address in its file system: inode number (ext), MFT
    /// record (NTFS), byte offset of its directory entry (FAT), catalog
    /// node ID (HFS+).
    pub addr: u64,
    /// Allocated, or deleted and recovered.
    pub state: Allocation,
    /// NTFS: this name's `$FILE_NAME` times, when they differ from the
    /// entry's (`$STANDARD_INFORMATION`) times.
    pub name_times: Option<NameTimes>,
}

impl Location {
    /// Whether it is free space made one item to carve (a volume's
    /// unallocated space, the medium's unpartitioned space): no file, so
    /// never a picture itself, always carved.
    pub fn is_free_space(&self) -> bool {
        matches!(self.fs, "unallocated" | "unpartitioned")
    }
}

/// Where a child item was found: inside another item (an archive's
/// member, a compressed stream's content). Its entry comes right after
/// its parent's (and its siblings' and their children's) in the log; its
/// path is the parent's, `!`, and the member's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Within {
    /// The path of the item holding it (an earlier entry of the log).
    pub parent: RawPath,
    /// Its name inside the parent, as the container stores it (a member
    /// path such as `DCIM/a.jpg`, `../etc/x` or `/abs`: recorded, never
    /// used as a path on disk); empty for the parent's own listing.
    pub member: RawPath,
    /// What found it: `zip`, `tar`, `gzip`.
    pub container: &'static str,
    /// Where its bytes start in the parent (a stored member's data, a
    /// tar member's data), when they lie there as they are.
    pub offset: Option<u64>,
    /// 1 inside a walked item, 2 inside that, and so on.
    pub depth: u32,
    /// The CRC-32 the container stores for it, when it stores one.
    pub crc32: Option<Crc32>,
    /// For a picture inside a picture (an EXIF thumbnail): the PDQ
    /// distance between the two, when both have one. Over the scan's PDQ
    /// match distance, the thumbnail shows something else than the
    /// picture: an edited or replaced picture.
    pub pdq_distance: Option<u32>,
    /// Whether `pdq_distance` is over the scan's PDQ match distance.
    pub pdq_differs: Option<bool>,
    /// Other checksums the container stores for it (a thumbcache
    /// entry's CRC-64s), each with what triage computed.
    pub checksums: Vec<Checksum>,
}

/// A checksum a container stores for a member, and what the same
/// computation over the member's bytes gave: they differ for a damaged
/// or altered member (whose digests are still of the bytes read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// What it is checksum of, and how (`header_crc64`, `data_crc64`).
    pub name: String,
    /// As stored, in hex.
    pub stored: String,
    /// As computed, in hex.
    pub computed: String,
}

/// The containers child items are found in, by the name the log uses.
pub const CONTAINERS: [&str; 13] = [
    "zip",
    "tar",
    "gzip",
    "bzip2",
    "xz",
    "zstd",
    "exif",
    "pdf",
    "thumbcache",
    "thumbsdb",
    "carve",
    "7z",
    "heif",
];

/// The static name of a container the log names.
pub fn container_name(name: &str) -> Option<&'static str> {
    CONTAINERS.iter().copied().find(|c| *c == name)
}

/// A stored CRC-32 and what the bytes read gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crc32 {
    /// As the container stores it.
    pub stored: u32,
    /// Of the bytes read (`None` when they were not read to the end).
    pub computed: Option<u32>,
}

/// Whether a hashed item was looked inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expansion {
    /// Its child items follow it in the log (`container`: `zip`, …).
    Expanded {
        /// What looked inside.
        container: &'static str,
    },
    /// It holds child items that were not looked for, and why (the depth
    /// limit, the expander not chosen, the same bytes as an item it is
    /// inside).
    NotExpanded {
        /// What would have looked inside.
        container: &'static str,
        /// Why not.
        why: String,
    },
}

/// The four times an NTFS `$FILE_NAME` attribute keeps for one name of a
/// file (set when the name was made or last renamed, and harder to change
/// with tools than `$STANDARD_INFORMATION`'s): recorded when they differ
/// from the entry's own times, which come from `$STANDARD_INFORMATION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameTimes {
    /// Created.
    pub created: Timestamp,
    /// Content modified.
    pub modified: Timestamp,
    /// Record changed.
    pub changed: Timestamp,
    /// Accessed.
    pub accessed: Timestamp,
}

/// Every value [`Location::fs`] takes.
/// `unrecognised`: a volume no reader recognises, hashed as a whole;
/// `unallocated`: a volume's unallocated space, as one item to carve;
/// `unpartitioned`: the medium's bytes outside every partition (the
/// partition table's gaps), as one item to carve.
pub const FS_NAMES: &[&str] = &[
    "ext2",
    "ext3",
    "ext4",
    "fat12",
    "fat16",
    "fat32",
    "exfat",
    "ntfs",
    "hfsplus",
    "hfsx",
    "iso9660",
    "unrecognised",
    "unallocated",
    "unpartitioned",
];

/// Whether triage recovers deleted files on file system `fs` (one of
/// [`FS_NAMES`]): ext, FAT, exFAT and NTFS; not HFS+ (whose catalog
/// keeps no deleted records to read) or ISO 9660 (written once).
///
/// ```
/// assert!(triage_core::item::recovers_deleted("ntfs"));
/// assert!(!triage_core::item::recovers_deleted("hfsplus"));
/// ```
pub fn recovers_deleted(fs: &str) -> bool {
    matches!(
        fs,
        "ext2" | "ext3" | "ext4" | "fat12" | "fat16" | "fat32" | "exfat" | "ntfs"
    )
}

/// Every value [`Partition::scheme`] takes.
pub const PARTITION_SCHEMES: &[&str] = &["mbr", "gpt", "apm"];

/// A partition of a disk image, as its table describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, in table order (MBR: 1-4 primary, 5 on logical).
    pub index: u32,
    /// `mbr`, `gpt` or `apm` (Apple Partition Map).
    pub scheme: &'static str,
    /// The type: an MBR type byte as `0x83`, a GPT type GUID.
    pub type_id: String,
    /// Byte offset in the image.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

/// Whether a file in an image is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// In use: its name and content are the file system's.
    Allocated,
    /// Deleted: its name and content were recovered from what the file
    /// system left behind, and may be partial (clusters or blocks since
    /// reused by other files).
    Deleted,
}

impl Allocation {
    /// The name used in records.
    pub fn name(self) -> &'static str {
        match self {
            Allocation::Allocated => "allocated",
            Allocation::Deleted => "deleted",
        }
    }
}

/// What a disk image is, as the log's header records it: the container,
/// the files it was read from, what the acquisition stored, the partition
/// table and what was found on each volume, and what is not read.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageInfo {
    /// The container: `raw`, `split-raw`, `ewf`, `qcow2`, `vhd`, `vhdx`, `vmdk`.
    pub format: String,
    /// The medium's size in bytes.
    pub size: u64,
    /// The image's files, in order, with their sizes.
    pub segments: Vec<SegmentInfo>,
    /// Acquisition metadata stored in the container (EWF: case number,
    /// examiner, evidence number, notes, dates, tool).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Digests of the medium stored at acquisition (EWF: `md5`, `sha1`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stored_digests: std::collections::BTreeMap<String, String>,
    /// `mbr`, `gpt`, `apm`, or `none` (a bare file system).
    pub partition_table: String,
    /// Every volume, in table order.
    pub volumes: Vec<VolumeInfo>,
    /// Byte ranges of the medium outside every partition.
    #[serde(default)]
    pub gaps: Vec<ByteRange>,
    /// What is not read or checked in this image, from every layer.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One file of a disk image.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentInfo {
    /// Its path, as opened (lossy for a non-UTF-8 path).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The SHA-256 of one file of a disk image, read in full beside the scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentDigest {
    /// Its path, as opened (lossy for a non-UTF-8 path).
    pub path: String,
    /// Bytes read.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of them; absent when it could not be read
    /// in full (see `error`) or the scan was interrupted first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A disk image's medium checked against the digests stored in it at
/// acquisition, beside a scan (`scan --verify-image`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaCheck {
    /// Digests of the medium computed now (`md5`, `sha1`), lower-case hex.
    pub computed: BTreeMap<String, String>,
    /// Digests stored at acquisition.
    #[serde(default)]
    pub stored: BTreeMap<String, String>,
    /// Per digest: `matched`, `mismatched` or `absent` (none stored).
    pub verdicts: BTreeMap<String, String>,
    /// Ranges that could not be read (counted as zeros), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadableRange>,
}

/// Bytes of a medium that could not be read, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnreadableRange {
    /// Byte offset on the medium.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// Why (the container's error: a chunk failing its checksum, …).
    pub error: String,
}

impl MediaCheck {
    /// Every stored digest matched and every byte was read.
    pub fn intact(&self) -> bool {
        self.unreadable.is_empty() && self.verdicts.values().all(|v| v != "mismatched")
    }
}

/// One volume of a disk image and what is on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeInfo {
    /// The partition's index in its table; `None` for a medium without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// The partition's type (MBR byte as `0x83`, GPT type GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_id: Option<String>,
    /// Byte offset on the medium.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// The file system read on it (one of [`FS_NAMES`]); `None` when no
    /// reader recognised one (the volume is then one item, hashed whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<String>,
    /// Why a recognised file system could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The file system's unallocated space by its allocation map, for
    /// carving; absent where the reader does not compute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unallocated: Option<Unallocated>,
}

/// Unallocated space of a file system: what its allocation map says is
/// free (deleted files' content may be there).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unallocated {
    /// Bytes in all.
    pub bytes: u64,
    /// The free runs, as byte ranges on the medium, in order, merged.
    pub ranges: Vec<ByteRange>,
    /// Why the map could not be read (then `bytes` and `ranges` are empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A run of bytes on the medium.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ByteRange {
    /// Byte offset.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

/// Why an entry was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A symbolic link: never followed, its target is recorded.
    Symlink {
        /// The link's target as stored, if `readlink` succeeded.
        target: Option<RawPath>,
    },
    /// A named pipe: opening it could block forever.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A block device node.
    BlockDevice,
    /// A character device node.
    CharDevice,
    /// A file type the OS does not name.
    UnknownType,
    /// A directory that is its own ancestor (bind mount, loop; in a disk
    /// image, a damaged entry naming an ancestor's record); not entered
    /// again.
    DirectoryLoop {
        /// The ancestor with the same (device, inode).
        ancestor: RawPath,
    },
    /// A directory on another file system, with `--one-file-system`.
    OtherFileSystem,
    /// A directory on a pseudo file system (procfs, sysfs, debugfs,
    /// cgroup…): kernel state, not stored data; not entered.
    PseudoFileSystem,
    /// A deleted file in a disk image whose content cannot be recovered:
    /// its inode (or MFT record, or first cluster) belongs to another file
    /// now, or was never kept.
    NotRecoverable,
    /// NTFS's bad-cluster map (`$BadClus:$Bad`): a sparse stream as large
    /// as the volume, empty but for clusters the disk reported bad.
    BadClusterMap,
    /// In a disk image: another name (hard link) of a file already read
    /// at `first`, earlier in the walk (the same MFT record, inode or
    /// catalog node), or of a directory already walked there (an HFS+
    /// directory hard link, or a damaged or deleted entry naming a live
    /// directory). A file is read and a directory walked once, whatever
    /// its number of names; every name is recorded.
    HardLink {
        /// The name it was read at.
        first: RawPath,
    },
    /// An archive member stored encrypted: its bytes are not read (never
    /// guessed at); its name, sizes and times are recorded.
    Encrypted,
}

impl SkipReason {
    /// The stable code used in records.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Symlink { .. } => "symlink",
            SkipReason::Fifo => "fifo",
            SkipReason::Socket => "socket",
            SkipReason::BlockDevice => "block_device",
            SkipReason::CharDevice => "char_device",
            SkipReason::UnknownType => "unknown_type",
            SkipReason::DirectoryLoop { .. } => "directory_loop",
            SkipReason::OtherFileSystem => "other_filesystem",
            SkipReason::PseudoFileSystem => "pseudo_filesystem",
            SkipReason::NotRecoverable => "not_recoverable",
            SkipReason::BadClusterMap => "bad_cluster_map",
            SkipReason::HardLink { .. } => "hard_link",
            SkipReason::Encrypted => "encrypted",
        }
    }

    /// Parses [`SkipReason::code`]; the payload fields come separately.
    pub(crate) fn from_code(code: &str) -> Option<SkipReason> {
        Some(match code {
            "symlink" => SkipReason::Symlink { target: None },
            "fifo" => SkipReason::Fifo,
            "socket" => SkipReason::Socket,
            "block_device" => SkipReason::BlockDevice,
            "char_device" => SkipReason::CharDevice,
            "unknown_type" => SkipReason::UnknownType,
            "directory_loop" => SkipReason::DirectoryLoop {
                ancestor: RawPath::default(),
            },
            "other_filesystem" => SkipReason::OtherFileSystem,
            "pseudo_filesystem" => SkipReason::PseudoFileSystem,
            "not_recoverable" => SkipReason::NotRecoverable,
            "bad_cluster_map" => SkipReason::BadClusterMap,
            "hard_link" => SkipReason::HardLink {
                first: RawPath::default(),
            },
            "encrypted" => SkipReason::Encrypted,
            _ => return None,
        })
    }

    /// The skip reason for a non-regular, non-directory file kind.
    pub fn for_kind(kind: FileKind) -> Option<SkipReason> {
        Some(match kind {
            FileKind::Fifo => SkipReason::Fifo,
            FileKind::Socket => SkipReason::Socket,
            FileKind::BlockDevice => SkipReason::BlockDevice,
            FileKind::CharDevice => SkipReason::CharDevice,
            FileKind::Unknown => SkipReason::UnknownType,
            FileKind::Symlink => SkipReason::Symlink { target: None },
            FileKind::Regular | FileKind::Directory => return None,
        })
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Symlink { target: Some(t) } => write!(f, "symlink to {t} (not followed)"),
            SkipReason::Symlink { target: None } => f.write_str("symlink (not followed)"),
            SkipReason::Fifo => f.write_str("named pipe (not opened)"),
            SkipReason::Socket => f.write_str("socket (not opened)"),
            SkipReason::BlockDevice => f.write_str("block device (not opened)"),
            SkipReason::CharDevice => f.write_str("character device (not opened)"),
            SkipReason::UnknownType => f.write_str("unknown file type (not opened)"),
            SkipReason::DirectoryLoop { ancestor } if ancestor.as_bytes().is_empty() => {
                f.write_str("directory loop: the same directory (device and inode, or record in an image) as the evidence root")
            }
            SkipReason::DirectoryLoop { ancestor } => {
                write!(
                    f,
                    "directory loop: the same directory (device and inode, or record in an image) as '{ancestor}'"
                )
            }
            SkipReason::OtherFileSystem => {
                f.write_str("on another file system (--one-file-system)")
            }
            SkipReason::PseudoFileSystem => f.write_str(
                "a pseudo file system (procfs, sysfs, debugfs, cgroup…): kernel state, not stored data; not entered",
            ),
            SkipReason::NotRecoverable => f.write_str(
                "deleted, and its content cannot be recovered: its clusters, inode or record belong to another file now",
            ),
            SkipReason::BadClusterMap => f.write_str(
                "NTFS bad-cluster map: as large as the volume and empty but for clusters the disk reported bad; not hashed",
            ),
            SkipReason::HardLink { first } => write!(
                f,
                "another name of what was read at '{first}' (a hard link: the same record); not read twice"
            ),
            SkipReason::Encrypted => {
                f.write_str("an encrypted archive member: not decrypted, not guessed at")
            }
        }
    }
}

/// The pipeline stage at which an entry failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// `lstat` of the entry.
    Stat,
    /// Listing a directory.
    ReadDir,
    /// Opening the file.
    Open,
    /// Reading the file's bytes.
    Read,
}

impl Stage {
    /// The stable code used in records.
    pub fn code(self) -> &'static str {
        match self {
            Stage::Stat => "stat",
            Stage::ReadDir => "read_dir",
            Stage::Open => "open",
            Stage::Read => "read",
        }
    }

    pub(crate) fn from_code(s: &str) -> Option<Stage> {
        Some(match s {
            "stat" => Stage::Stat,
            "read_dir" => Stage::ReadDir,
            "open" => Stage::Open,
            "read" => Stage::Read,
            _ => return None,
        })
    }
}

/// Why and where an entry failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Where it failed.
    pub stage: Stage,
    /// What went wrong.
    pub kind: FailureKind,
    /// Bytes successfully read before the failure.
    pub bytes_read: u64,
}

/// The cause of a [`Failure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The OS returned an error.
    Io(OsError),
    /// The size changed while it was read (a live system, a fragile mount).
    ChangedDuringRead {
        /// `st_size` when opened.
        size_at_open: u64,
        /// `st_size` after the read ended.
        size_after: u64,
    },
    /// Between the walk and the open, the path came to name a different
    /// object (another inode or a non-regular file).
    Replaced {
        /// What the path named at open time.
        now: FileKind,
    },
    /// A bug in `triage` (a panic) while processing this entry; the scan went
    /// on. The message should be reported to the developers.
    Internal {
        /// The panic message.
        message: String,
    },
}

impl FailureKind {
    /// The stable code used in records.
    pub fn code(&self) -> &'static str {
        match self {
            FailureKind::Io(_) => "io",
            FailureKind::ChangedDuringRead { .. } => "changed_during_read",
            FailureKind::Replaced { .. } => "replaced",
            FailureKind::Internal { .. } => "internal",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Io(e) => e.fmt(f),
            FailureKind::ChangedDuringRead {
                size_at_open,
                size_after,
            } if size_after == size_at_open => write!(
                f,
                "the file has more bytes than its size at open ({size_at_open}) says, which is unchanged: \
                 it was rewritten while read, or is not a stored file (a kernel or device file); \
                 only {size_at_open} bytes were read"
            ),
            FailureKind::ChangedDuringRead {
                size_at_open,
                size_after,
            } => write!(
                f,
                "file changed while it was read (size {size_at_open} at open, {size_after} after); \
                 scan it again once it is still"
            ),
            FailureKind::Replaced { now } => write!(
                f,
                "path was replaced between listing and opening (now a {} object)",
                now.name()
            ),
            FailureKind::Internal { message } => {
                write!(f, "internal error in triage (please report): {message}")
            }
        }
    }
}

/// An operating-system error, kept as data so records can be compared and stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsError {
    /// `errno`, when the error came from the OS.
    pub errno: Option<i32>,
    /// The OS's message, e.g. `Permission denied (os error 13)`.
    pub message: String,
}

impl From<&io::Error> for OsError {
    fn from(e: &io::Error) -> Self {
        OsError {
            errno: e.raw_os_error(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What became of an item that was not read: the walk's verdict, before
/// the scan turns it into a record (`record::Outcome`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRead {
    /// Deliberately not read.
    Skipped(SkipReason),
    /// Could not be walked or opened.
    Failed(Failure),
}

/// The text of a caught panic: a decoder's or a file's panic becomes that
/// item's failure (`internal`), never the scan's.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}
