//! File systems inside a disk image: list directories, deleted entries
//! included, and read files at offsets.
//!
//! Input: a volume (a partition, or the whole image), as a [`Source`].
//! Output: a [`FileSystem`]: directory listings of [`Node`]s and, for each
//! regular file, a [`Source`] of its bytes. One reader per file system,
//! each in its own file (`ext.rs`, …); [`probe`] tries them in turn on a
//! volume's first bytes.
//!
//! Every reader treats the image as hostile: sizes, block numbers and
//! chains come from untrusted bytes, so each is checked against the
//! volume's size before use, every loop is bounded, and a damaged
//! structure fails the item (or the directory) it belongs to, never the
//! scan.

use std::io;
use std::sync::Arc;

use crate::item::{FileKind, FileMeta, SkipReason};
use crate::source::tree::Source;

pub(crate) use crate::source::bytes::{le16, le32, le64};

pub mod exfat;
pub mod ext;
pub mod fat;
pub mod hfsplus;
pub mod iso9660;
mod lzvn;
pub mod ntfs;

/// A volume: the bytes of one partition (or of a whole image), read at
/// offsets relative to its start.
#[derive(Clone)]
pub struct Volume {
    src: Arc<dyn Source>,
    offset: u64,
    len: u64,
}

impl Volume {
    /// The `len` bytes of `src` from `offset`.
    pub fn new(src: Arc<dyn Source>, offset: u64, len: u64) -> Volume {
        Volume { src, offset, len }
    }

    /// Where it starts in the image.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Exactly `buf.len()` bytes at `pos`; an error past the volume's end
    /// (a structure pointing outside the volume is damage, not zeros).
    pub fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let end = pos.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a structure points at bytes {pos}..+{} outside the volume of {} bytes",
                    buf.len(),
                    self.len
                ),
            ));
        }
        crate::source::tree::read_exact(&*self.src, buf, self.offset + pos).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the image ends before byte {}",
                        self.offset + pos + buf.len() as u64
                    ),
                )
            } else {
                e
            }
        })
    }

    /// `n` bytes at `pos`, as a new buffer (`n` is bounded by the caller).
    pub fn bytes_at(&self, pos: u64, n: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        self.read_exact_at(&mut v, pos)?;
        Ok(v)
    }
}

/// An on-disk table of a volume (a FAT, an allocation bitmap): held in
/// memory when it is small enough, read where needed when it is not, so a
/// huge (or hostile) table costs reads, not memory.
pub(crate) struct Table {
    vol: Volume,
    at: u64,
    len: u64,
    held: Option<Vec<u8>>,
}

impl Table {
    /// Tables larger than this are read entry by entry instead of held.
    const MAX_HELD: u64 = 64 << 20;

    /// The `len` bytes at `at` of `vol`; an error when they lie outside it.
    pub(crate) fn new(vol: &Volume, at: u64, len: u64, what: &str) -> io::Result<Table> {
        if at.checked_add(len).is_none_or(|end| end > vol.len()) {
            return Err(damaged(format!(
                "the {what} lies past the end of the volume"
            )));
        }
        let held = if len <= Self::MAX_HELD {
            Some(vol.bytes_at(at, len as usize)?)
        } else {
            None
        };
        Ok(Table {
            vol: vol.clone(),
            at,
            len,
            held,
        })
    }

    /// `buf.len()` bytes from `pos` within the table.
    pub(crate) fn read(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        if pos
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(damaged("an entry past the end of its table"));
        }
        match &self.held {
            Some(t) => {
                buf.copy_from_slice(&t[pos as usize..pos as usize + buf.len()]);
                Ok(())
            }
            None => self.vol.read_exact_at(buf, self.at + pos),
        }
    }
}

/// One name in a directory listing.
#[derive(Clone, Debug)]
pub struct Node {
    /// The name's bytes, as stored (UTF-8 for ext; converted from UTF-16
    /// for FAT long names and NTFS).
    pub name: Vec<u8>,
    /// The file system's address of the item (inode number, MFT record).
    pub addr: u64,
    /// Its metadata, when it could be read.
    pub meta: Option<FileMeta>,
    /// The name was found in a directory's free space (a deleted entry).
    pub deleted: bool,
    /// Why the item is not read although it is a file: its name survives
    /// but its content does not ([`SkipReason::NotRecoverable`]), or it is
    /// a stream not worth reading ([`SkipReason::BadClusterMap`]).
    pub skip: Option<SkipReason>,
    /// Why its metadata could not be read (a damaged inode or record).
    pub error: Option<String>,
    /// NTFS: the times of this name's `$FILE_NAME` attribute, when they
    /// differ from the record's `$STANDARD_INFORMATION` times (in `meta`).
    pub name_times: Option<crate::item::NameTimes>,
}

impl Node {
    /// The kind, from the metadata (unknown without it).
    pub fn kind(&self) -> FileKind {
        self.meta.as_ref().map_or(FileKind::Unknown, FileMeta::kind)
    }

    /// The virtual `$OrphanFiles` directory at `addr` (an address no record
    /// has), where a reader lists files whose names or parents are gone, as
    /// The Sleuth Kit does.
    pub(crate) fn orphan_dir(addr: u64) -> Node {
        let zero = crate::time::Timestamp::new(0, 0);
        Node {
            name: b"$OrphanFiles".to_vec(),
            addr,
            meta: Some(FileMeta {
                size: 0,
                mode: libc::S_IFDIR | 0o555,
                dev: 0,
                ino: addr,
                nlink: 1,
                uid: 0,
                gid: 0,
                mtime: zero,
                atime: zero,
                ctime: zero,
                btime: None,
                blocks: 0,
            }),
            deleted: false,
            skip: None,
            error: None,
            name_times: None,
        }
    }
}

/// A file system, read-only.
pub trait FileSystem: Send + Sync {
    /// Its name in records: `ext2`, `ext4`, `fat16`, … (one of
    /// [`crate::item::FS_NAMES`]).
    fn name(&self) -> &'static str;
    /// The root directory's address.
    fn root(&self) -> u64;
    /// The names in directory `addr`, deleted ones included, `.` and `..`
    /// left out, in the order they are stored. `deleted`: the directory
    /// was reached through a deleted name (its content is what is left).
    fn list(&self, addr: u64, deleted: bool) -> io::Result<Vec<Node>>;
    /// The bytes of the regular file at `addr` (a node's address from
    /// [`FileSystem::list`]), as its metadata says, with that metadata.
    fn open(&self, addr: u64) -> io::Result<(Box<dyn Source + '_>, FileMeta)>;
    /// The target of the symbolic link at `addr`, as stored (never
    /// followed); `None` when the file system has none or it is unreadable.
    fn link_target(&self, _addr: u64) -> Option<Vec<u8>> {
        None
    }
    /// What this reader does not read on this volume (a journal not
    /// replayed, a feature it skips), for the log.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// The volume's unallocated space, by the file system's own
    /// allocation map: (byte offset in the volume, length), in order and
    /// merged; `None` where this reader does not compute it.
    fn unallocated(&self) -> io::Result<Option<Vec<(u64, u64)>>> {
        Ok(None)
    }
}

/// Appends `len` bytes at volume byte `phys` (logical offset `logical`)
/// to `runs`, extending the last run when they follow it on disk.
pub(crate) fn push_run(runs: &mut Vec<Run>, logical: u64, phys: u64, len: u64) {
    match runs.last_mut() {
        Some(r) if r.1.is_some_and(|p| p + r.2 == phys) => r.2 += len,
        _ => runs.push((logical, Some(phys), len)),
    }
}

/// Appends the free range `at..+len` to `out`, merged with the last one
/// when it follows it.
fn push_free(out: &mut Vec<(u64, u64)>, at: u64, len: u64) {
    match out.last_mut() {
        Some(r) if r.0 + r.1 == at => r.1 += len,
        _ => out.push((at, len)),
    }
}

/// Free runs from an allocation map of `units` units of `unit` bytes each,
/// the first at byte `base` of the volume: `free(k)` says whether unit `k`
/// is free. Adjacent free units merge into one range.
pub(crate) fn free_ranges(
    units: u64,
    unit: u64,
    base: u64,
    mut free: impl FnMut(u64) -> io::Result<bool>,
) -> io::Result<Vec<(u64, u64)>> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for k in 0..units {
        if free(k)? {
            push_free(&mut out, base + k * unit, unit);
        }
    }
    Ok(out)
}

/// Bit `k` of an allocation bitmap read through `src` in chunks:
/// least-significant bit first (FAT-family and NTFS bitmaps) or most
/// significant first (HFS+). Keeps the last chunk read.
pub(crate) struct Bits<'a> {
    src: &'a dyn Source,
    msb_first: bool,
    chunk: Vec<u8>,
    at: u64,
}

impl<'a> Bits<'a> {
    const CHUNK: usize = 1 << 20;

    pub(crate) fn new(src: &'a dyn Source, msb_first: bool) -> Bits<'a> {
        Bits {
            src,
            msb_first,
            chunk: Vec::new(),
            at: u64::MAX,
        }
    }

    /// Free runs of a map of `units` bits (a clear bit is a free unit of
    /// `unit` bytes, the first at byte `base`): [`free_ranges`] with a
    /// byte at a time where all eight units are in use, or all free.
    pub(crate) fn free_ranges(
        &mut self,
        units: u64,
        unit: u64,
        base: u64,
    ) -> io::Result<Vec<(u64, u64)>> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut add = |k: u64, n: u64| push_free(&mut out, base + k * unit, n * unit);
        let mut k = 0;
        while k < units {
            if k % 8 == 0 && k + 8 <= units {
                match self.byte(k / 8)? {
                    Some(0xFF) => {
                        k += 8;
                        continue;
                    }
                    Some(0) => {
                        add(k, 8);
                        k += 8;
                        continue;
                    }
                    _ => {}
                }
            }
            if !self.set(k)? {
                add(k, 1);
            }
            k += 1;
        }
        Ok(out)
    }

    /// Byte `i` of the map, `None` past its end.
    fn byte(&mut self, i: u64) -> io::Result<Option<u8>> {
        let start = i / Self::CHUNK as u64 * Self::CHUNK as u64;
        if start != self.at {
            self.chunk.resize(Self::CHUNK, 0);
            let mut got = 0;
            while got < Self::CHUNK {
                let n = self
                    .src
                    .read_at(&mut self.chunk[got..], start + got as u64)?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            self.chunk.truncate(got);
            self.at = start;
        }
        Ok(self.chunk.get((i - start) as usize).copied())
    }

    /// Whether bit `k` is set; bits past the map's end read as set (in use).
    pub(crate) fn set(&mut self, k: u64) -> io::Result<bool> {
        let Some(b) = self.byte(k / 8)? else {
            return Ok(true);
        };
        let bit = if self.msb_first { 7 - k % 8 } else { k % 8 };
        Ok(b >> bit & 1 == 1)
    }
}

/// The file system on `vol`, if one of the readers recognises it: `Ok(None)`
/// when none does, an error when one does but cannot read it.
pub fn probe(vol: Volume) -> io::Result<Option<Box<dyn FileSystem>>> {
    if ext::Ext::detect(&vol)? {
        return Ok(Some(Box::new(ext::Ext::open(vol)?)));
    }
    if iso9660::Iso::detect(&vol)? {
        return Ok(Some(Box::new(iso9660::Iso::open(vol)?)));
    }
    if hfsplus::HfsPlus::detect(&vol)? {
        return Ok(Some(Box::new(hfsplus::HfsPlus::open(vol)?)));
    }
    if ntfs::Ntfs::detect(&vol)? {
        return Ok(Some(Box::new(ntfs::Ntfs::open(vol)?)));
    }
    if exfat::Exfat::detect(&vol)? {
        return Ok(Some(Box::new(exfat::Exfat::open(vol)?)));
    }
    if fat::Fat::detect(&vol)? {
        return Ok(Some(Box::new(fat::Fat::open(vol)?)));
    }
    Ok(None)
}

/// `InvalidData` with `msg`: what every reader returns for damage.
pub(crate) fn damaged(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One run of a file: (logical byte offset, volume byte offset or `None`
/// for a hole, length).
pub(crate) type Run = (u64, Option<u64>, u64);

/// A file's bytes as runs of the volume: what most readers give.
/// `runs`: (logical byte offset, volume byte offset or `None` for a hole,
/// length), sorted and not overlapping; reads past `size` return 0.
pub(crate) struct RunFile<'a> {
    pub(crate) vol: &'a Volume,
    /// Owned for a file opened once; borrowed for one read many times
    /// (NTFS reads every MFT record through `$MFT`'s runs).
    pub(crate) runs: std::borrow::Cow<'a, [Run]>,
    pub(crate) size: u64,
}

impl Source for RunFile<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.size - offset) as usize;
        let buf = &mut buf[..want];
        // The run holding `offset`: the last starting at or before it.
        let i = self.runs.partition_point(|r| r.0 <= offset);
        let run = i.checked_sub(1).map(|i| self.runs[i]);
        match run {
            Some((start, phys, len)) if offset < start.saturating_add(len) => {
                let n = (start.saturating_add(len) - offset).min(want as u64) as usize;
                match phys {
                    Some(p) => self
                        .vol
                        .read_exact_at(&mut buf[..n], p + (offset - start))?,
                    None => buf[..n].fill(0),
                }
                Ok(n)
            }
            // Not covered by any run: a hole up to the next run (or the end).
            _ => {
                let next = self.runs.get(i).map_or(self.size, |r| r.0);
                let n = (next.min(self.size) - offset).min(want as u64) as usize;
                buf[..n].fill(0);
                Ok(n)
            }
        }
    }

    fn next_data(&self, _offset: u64) -> io::Result<Option<u64>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn next_hole(&self, _offset: u64) -> io::Result<u64> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tree::MemSource;

    /// The byte-at-a-time paths of [`Bits::free_ranges`] against
    /// [`free_ranges`] bit by bit, on maps of runs, noise and odd lengths,
    /// in both bit orders.
    #[test]
    fn bitmap_fast_paths_equal_the_bit_by_bit_reference() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for case in 0..200 {
            let len = (next() % 300) as usize;
            let map: Vec<u8> = (0..len)
                .map(|i| match (case + i / 7) % 4 {
                    0 => 0x00,
                    1 => 0xFF,
                    _ => next() as u8,
                })
                .collect();
            let units = (len as u64 * 8).saturating_sub(next() % 9);
            for msb in [false, true] {
                let src = MemSource(map.clone());
                let fast = Bits::new(&src, msb).free_ranges(units, 4096, 512).unwrap();
                let mut slow_bits = Bits::new(&src, msb);
                let slow = free_ranges(units, 4096, 512, |k| Ok(!slow_bits.set(k)?)).unwrap();
                assert_eq!(fast, slow, "case {case}, msb {msb}");
            }
        }
    }
}
