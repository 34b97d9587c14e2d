//! FAT12, FAT16 and FAT32, read-only: long names, and deleted entries
//! recovered as The Sleuth Kit recovers them.
//!
//! Layout (Microsoft's "FAT: General Overview of On-Disk Format"): a boot
//! sector with the BIOS parameter block, the allocation tables, the root
//! directory (a fixed region on FAT12/16, a cluster chain on FAT32), then
//! clusters. The FAT type follows from the cluster count alone, as the
//! specification says. A directory is a run of 32-byte entries; a long
//! name is stored in entries before its 8.3 entry, last part first.
//!
//! Deleted files: deleting marks the entry's first byte 0xE5 and frees
//! the file's clusters, so the chain is gone but the first cluster and the
//! size remain. Content is recovered as TSK does: from the first cluster
//! on, the clusters that are free now, in order, until the size is
//! covered. When the first cluster is in use again (by another file), or
//! too few free clusters follow, the content is not recovered (TSK then
//! returns the first cluster's current content; `triage` records the file
//! as not recoverable rather than digest another file's bytes). The
//! deleted name's first character reads `_`, as in TSK.
//!
//! Times: FAT stores local time without a zone; they are recorded as
//! written, labelled UTC. There is no change time: `ctime` repeats the
//! modification time.

use std::io;

use super::{FileSystem, Node, Run, RunFile, Table, Volume, damaged, le16, le32, push_run};
use crate::item::{FileMeta, SkipReason};
use crate::source::tree::Source;
use crate::time::{Timestamp, days_from_civil};

const ATTR_READ_ONLY: u8 = 0x01;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_LFN: u8 = 0x0F;
const DELETED: u8 = 0xE5;
/// Directories longer than this (in bytes) are cut there: 65,536 entries
/// is the most the specification allows.
const MAX_DIR_BYTES: u64 = 65536 * 32;

/// The root directory's address (entries have the byte offset of their
/// 8.3 entry as address; no entry sits at byte 1).
const ROOT: u64 = 1;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Fat12,
    Fat16,
    Fat32,
}

/// A FAT file system.
pub struct Fat {
    vol: Volume,
    kind: Kind,
    cluster: u64,
    /// Byte offset of cluster 2.
    data_at: u64,
    clusters: u64,
    /// The first FAT.
    fat: Table,
    /// FAT12/16: the fixed root directory region.
    root_region: (u64, u64),
    /// FAT32: the root directory's first cluster.
    root_cluster: u64,
}

/// A parsed 8.3 entry.
struct Dirent {
    attr: u8,
    first: u64,
    size: u64,
    deleted: bool,
    raw: [u8; 32],
}

impl Fat {
    /// Whether `vol` starts with a FAT boot sector.
    pub fn detect(vol: &Volume) -> io::Result<bool> {
        if vol.len() < 512 {
            return Ok(false);
        }
        let b = vol.bytes_at(0, 512)?;
        let bps = le16(&b, 11);
        let spc = b[13];
        Ok(matches!(b[0], 0xEB | 0xE9)
            && matches!(bps, 512 | 1024 | 2048 | 4096)
            && spc.is_power_of_two()
            && le16(&b, 14) > 0
            && b[16] > 0
            && &b[3..11] != b"NTFS    "
            && &b[3..11] != b"EXFAT   ")
    }

    /// Reads the boot sector.
    pub fn open(vol: Volume) -> io::Result<Fat> {
        let b = vol.bytes_at(0, 512)?;
        let bps = le16(&b, 11) as u64;
        let spc = b[13] as u64;
        let reserved = le16(&b, 14) as u64;
        let fats = b[16] as u64;
        let root_entries = le16(&b, 17) as u64;
        let total16 = le16(&b, 19) as u64;
        let fat16 = le16(&b, 22) as u64;
        let total32 = le32(&b, 32) as u64;
        let fat_sectors = if fat16 != 0 {
            fat16
        } else {
            le32(&b, 36) as u64
        };
        let total = if total16 != 0 { total16 } else { total32 };
        if bps == 0 || spc == 0 || fat_sectors == 0 || total == 0 {
            return Err(damaged("FAT boot sector with zero sizes"));
        }
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let data_sector = reserved + fats * fat_sectors + root_sectors;
        if data_sector >= total {
            return Err(damaged("FAT boot sector: the tables fill the volume"));
        }
        let clusters = (total - data_sector) / spc;
        // The FAT type follows from the count as the boot sector gives it;
        // clusters past the volume's end (a truncated image, or damage)
        // are not walked.
        let readable = (vol.len() / bps).saturating_sub(data_sector) / spc;
        let kind = if clusters < 4085 {
            Kind::Fat12
        } else if clusters < 65525 {
            Kind::Fat16
        } else {
            Kind::Fat32
        };
        let fat = Table::new(&vol, reserved * bps, fat_sectors * bps, "FAT")?;
        Ok(Fat {
            kind,
            cluster: spc * bps,
            data_at: data_sector * bps,
            clusters: clusters.min(readable),
            fat,
            root_region: ((reserved + fats * fat_sectors) * bps, root_sectors * bps),
            root_cluster: le32(&b, 44) as u64,
            vol,
        })
    }

    fn bytes(&self, at: u64, n: usize) -> io::Result<[u8; 4]> {
        let mut b = [0u8; 4];
        self.fat.read(at, &mut b[..n])?;
        Ok(b)
    }

    /// The FAT entry of cluster `c`.
    fn entry(&self, c: u64) -> io::Result<u64> {
        Ok(match self.kind {
            Kind::Fat12 => {
                let b = self.bytes(c + c / 2, 2)?;
                let v = le16(&b, 0) as u64;
                if c & 1 == 1 { v >> 4 } else { v & 0xFFF }
            }
            Kind::Fat16 => le16(&self.bytes(c * 2, 2)?, 0) as u64,
            Kind::Fat32 => le32(&self.bytes(c * 4, 4)?, 0) as u64 & 0x0FFF_FFFF,
        })
    }

    fn is_eof(&self, v: u64) -> bool {
        v >= match self.kind {
            Kind::Fat12 => 0xFF8,
            Kind::Fat16 => 0xFFF8,
            Kind::Fat32 => 0x0FFF_FFF8,
        }
    }

    fn valid(&self, c: u64) -> bool {
        (2..self.clusters + 2).contains(&c)
    }

    fn cluster_at(&self, c: u64) -> u64 {
        self.data_at + (c - 2) * self.cluster
    }

    /// Runs of the chain from `first`, covering `len` bytes (all of the
    /// chain when `len` is `None`, for directories). A chain that loops,
    /// leaves the volume or ends too soon is damage.
    fn chain(&self, first: u64, len: Option<u64>) -> io::Result<Vec<Run>> {
        let mut runs: Vec<Run> = Vec::new();
        let want = len.map(|l| l.div_ceil(self.cluster));
        let mut c = first;
        let mut n = 0u64;
        // A chain that comes back to a cluster loops (memory: the file's
        // cluster count, which the volume bounds).
        let mut seen = std::collections::HashSet::new();
        loop {
            if want.is_some_and(|w| n >= w) {
                break;
            }
            if self.valid(c) && !seen.insert(c) {
                return Err(damaged(format!(
                    "the FAT chain comes back to cluster {c} after {n} clusters: it loops"
                )));
            }
            if !self.valid(c) {
                if len.is_none() && self.is_eof(c) {
                    break;
                }
                return Err(damaged(format!(
                    "the FAT chain reaches cluster {c:#x} after {n} clusters: it is broken{}",
                    want.map_or(String::new(), |w| format!(" (the file's size needs {w})"))
                )));
            }
            if n > self.clusters {
                return Err(damaged("the FAT chain loops"));
            }
            let phys = self.cluster_at(c);
            push_run(&mut runs, n * self.cluster, phys, self.cluster);
            n += 1;
            let next = self.entry(c)?;
            if self.is_eof(next) {
                if want.is_some_and(|w| n < w) {
                    return Err(damaged(format!(
                        "the FAT chain ends after {n} clusters; the file's size needs {}",
                        want.unwrap_or(0)
                    )));
                }
                break;
            }
            c = next;
            if len.is_none() && n * self.cluster >= MAX_DIR_BYTES {
                break;
            }
        }
        Ok(runs)
    }

    /// TSK's recovery of a deleted file: the free clusters from `first` on.
    /// `None` when the first cluster is in use or too few free ones follow.
    fn recover(&self, first: u64, size: u64) -> io::Result<Option<Vec<Run>>> {
        if size == 0 {
            return Ok(Some(Vec::new()));
        }
        if !self.valid(first) || self.entry(first)? != 0 {
            return Ok(None);
        }
        let mut runs: Vec<Run> = Vec::new();
        let mut covered = 0u64;
        let mut c = first;
        while covered < size {
            if !self.valid(c) {
                return Ok(None);
            }
            if self.entry(c)? == 0 {
                let phys = self.cluster_at(c);
                push_run(&mut runs, covered, phys, self.cluster);
                covered += self.cluster;
            }
            c += 1;
        }
        Ok(Some(runs))
    }

    fn dirent_at(&self, addr: u64) -> io::Result<Dirent> {
        let b = self.vol.bytes_at(addr, 32)?;
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&b);
        Ok(parse(&raw, self.kind == Kind::Fat32))
    }

    fn meta(&self, addr: u64, d: &Dirent) -> FileMeta {
        let r = &d.raw;
        let mode = if d.attr & ATTR_DIRECTORY != 0 {
            libc::S_IFDIR | 0o755
        } else if d.attr & ATTR_READ_ONLY != 0 {
            libc::S_IFREG | 0o444
        } else {
            libc::S_IFREG | 0o644
        };
        let mtime = fat_time(le16(r, 24), le16(r, 22), 0);
        FileMeta {
            size: if d.attr & ATTR_DIRECTORY != 0 {
                0
            } else {
                d.size
            },
            mode,
            dev: 0,
            ino: addr,
            nlink: 1,
            uid: 0,
            gid: 0,
            mtime,
            atime: fat_time(le16(r, 18), 0, 0),
            ctime: mtime,
            btime: Some(fat_time(le16(r, 16), le16(r, 14), r[13])),
            blocks: d.size.div_ceil(self.cluster) * (self.cluster / 512),
        }
    }

    /// A directory's entries as (byte offset in the volume, 32 bytes).
    fn dir_slots(&self, addr: u64, deleted: bool) -> io::Result<Vec<(u64, [u8; 32])>> {
        let runs = if addr == ROOT {
            if self.kind == Kind::Fat32 {
                self.chain(self.root_cluster, None)?
            } else {
                vec![(0, Some(self.root_region.0), self.root_region.1)]
            }
        } else {
            let d = self.dirent_at(addr)?;
            if deleted {
                // A deleted directory: its first cluster, if still free.
                match self.recover(d.first, self.cluster)? {
                    Some(r) => r,
                    None => return Err(damaged("the deleted directory's cluster is in use again")),
                }
            } else {
                self.chain(d.first, None)?
            }
        };
        let mut out = Vec::new();
        for (_, phys, len) in runs {
            let Some(p) = phys else { continue };
            let bytes = self.vol.bytes_at(p, len as usize)?;
            for (k, e) in bytes.chunks_exact(32).enumerate() {
                let mut raw = [0u8; 32];
                raw.copy_from_slice(e);
                out.push((p + k as u64 * 32, raw));
            }
        }
        Ok(out)
    }
}

fn parse(raw: &[u8; 32], fat32: bool) -> Dirent {
    let hi = if fat32 {
        (le16(raw, 20) as u64) << 16
    } else {
        0
    };
    Dirent {
        attr: raw[11],
        first: hi | le16(raw, 26) as u64,
        size: le32(raw, 28) as u64,
        deleted: raw[0] == DELETED,
        raw: *raw,
    }
}

/// A FAT date and time (local, no zone) as a timestamp read as UTC;
/// `tenths`: the 10 ms units (0–199) some fields add. exFAT stores the same
/// encoding.
pub(super) fn fat_time(date: u16, time: u16, tenths: u8) -> Timestamp {
    if date == 0 {
        return Timestamp::new(0, 0);
    }
    let y = 1980 + (date >> 9) as i64;
    let m = ((date >> 5) & 0xF).clamp(1, 12) as u32;
    let d = (date & 0x1F).max(1) as u32;
    let secs = ((time >> 11) as i64) * 3600
        + (((time >> 5) & 0x3F) as i64) * 60
        + ((time & 0x1F) as i64) * 2;
    let extra = tenths.min(199) as i64;
    Timestamp::new(
        days_from_civil(y, m, d) * 86400 + secs + extra / 100,
        (extra % 100) * 10_000_000,
    )
}

/// The 8.3 name as TSK writes it: spaces dropped, a dot before the
/// extension, NT lower-case flags applied, `_` for a deleted first byte,
/// `^` for bytes outside printable ASCII.
fn short_name(r: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    let keep = |b: u8| b != 0 && b != 0xFF && b != 0x20;
    for (i, &b) in r[..8].iter().enumerate() {
        if !keep(b) {
            continue;
        }
        out.push(if i == 0 && b == DELETED {
            b'_'
        } else if i == 0 && b == 0x05 {
            0xE5
        } else if r[12] & 0x08 != 0 && b.is_ascii_uppercase() {
            b + 32
        } else {
            b
        });
    }
    let mut first_ext = true;
    for &b in &r[8..11] {
        if !keep(b) {
            continue;
        }
        if first_ext {
            out.push(b'.');
            first_ext = false;
        }
        out.push(if r[12] & 0x10 != 0 && b.is_ascii_uppercase() {
            b + 32
        } else {
            b
        });
    }
    for b in &mut out {
        if !(0x20..0x7F).contains(b) {
            *b = b'^';
        }
    }
    out
}

impl FileSystem for Fat {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Fat12 => "fat12",
            Kind::Fat16 => "fat16",
            Kind::Fat32 => "fat32",
        }
    }

    fn root(&self) -> u64 {
        ROOT
    }

    fn list(&self, addr: u64, deleted: bool) -> io::Result<Vec<Node>> {
        // A deleted directory's entries are all deleted.
        let dir_deleted = deleted || (addr != ROOT && self.dirent_at(addr)?.deleted);
        let slots = self.dir_slots(addr, dir_deleted)?;
        let mut out = Vec::new();
        // The long name being assembled: (checksum, UTF-16 parts, last first).
        let mut lfn: Option<(u8, Vec<[u16; 13]>)> = None;
        for (at, raw) in slots {
            if raw[0] == 0 {
                lfn = None;
                continue;
            }
            if raw[11] & 0x3F == ATTR_LFN {
                let (seq, sum) = (raw[0], raw[13]);
                let mut part = [0u16; 13];
                for (k, off) in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                    .iter()
                    .enumerate()
                {
                    part[k] = le16(&raw, *off);
                }
                match &mut lfn {
                    Some((s, parts)) if *s == sum && !(seq & 0x40 != 0 && seq != DELETED) => {
                        parts.push(part)
                    }
                    _ => lfn = Some((sum, vec![part])),
                }
                continue;
            }
            let long = lfn.take();
            let d = parse(&raw, self.kind == Kind::Fat32);
            if d.attr & ATTR_VOLUME != 0 {
                // The volume label: not a file (TSK lists it as one).
                continue;
            }
            let name = match long {
                Some((_, parts)) => {
                    let units: Vec<u16> = parts
                        .iter()
                        .rev()
                        .flatten()
                        .copied()
                        .take_while(|&u| u != 0)
                        .filter(|&u| u != 0xFFFF)
                        .collect();
                    String::from_utf16_lossy(&units).into_bytes()
                }
                None => short_name(&raw),
            };
            if name.is_empty() || name == b"." || name == b".." {
                continue;
            }
            let deleted = d.deleted || dir_deleted;
            let mut node = Node {
                name,
                addr: at,
                meta: Some(self.meta(at, &d)),
                deleted,
                skip: None,
                error: None,
                name_times: None,
            };
            // The first cluster is in use again, or too few free ones follow.
            // For a directory: its first cluster, which is all its listing reads.
            let len = if d.attr & ATTR_DIRECTORY != 0 {
                self.cluster
            } else {
                d.size
            };
            if deleted && self.recover(d.first, len)?.is_none() {
                node.skip = Some(SkipReason::NotRecoverable);
            }
            out.push(node);
        }
        Ok(out)
    }

    fn unallocated(&self) -> io::Result<Option<Vec<(u64, u64)>>> {
        // Clusters whose FAT entry is 0.
        super::free_ranges(self.clusters, self.cluster, self.data_at, |k| {
            Ok(self.entry(k + 2)? == 0)
        })
        .map(Some)
    }

    fn open(&self, addr: u64) -> io::Result<(Box<dyn Source + '_>, FileMeta)> {
        let d = self.dirent_at(addr)?;
        if d.attr & (ATTR_DIRECTORY | ATTR_VOLUME) != 0 || d.attr & 0x3F == ATTR_LFN {
            return Err(damaged(format!("the entry at byte {addr} is not a file")));
        }
        let meta = self.meta(addr, &d);
        let runs = if d.size == 0 {
            Vec::new()
        } else if d.deleted {
            self.recover(d.first, d.size)?
                .ok_or_else(|| damaged("the deleted file's clusters are in use again"))?
        } else {
            self.chain(d.first, Some(d.size))?
        };
        Ok((
            Box::new(RunFile {
                vol: &self.vol,
                runs: runs.into(),
                size: d.size,
            }),
            meta,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat_dates_are_civil_dates() {
        // 2021-07-22 14:07:32: date (41<<9 | 7<<5 | 22), time (14<<11 | 7<<5 | 16).
        let t = fat_time(41 << 9 | 7 << 5 | 22, 14 << 11 | 7 << 5 | 16, 0);
        assert_eq!(t.secs, 1_626_962_852);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn short_names_as_tsk_writes_them() {
        let mut r = [0x20u8; 32];
        r[..8].copy_from_slice(b"README  ");
        r[8..11].copy_from_slice(b"TXT");
        r[12] = 0;
        assert_eq!(short_name(&r), b"README.TXT");
        r[12] = 0x18;
        assert_eq!(short_name(&r), b"readme.txt");
        r[0] = DELETED;
        assert_eq!(short_name(&r), b"_eadme.txt");
    }
}
