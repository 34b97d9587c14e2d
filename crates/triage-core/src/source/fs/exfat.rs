//! exFAT, read-only: entry sets with their checksums, contiguous and
//! FAT-chained data, the allocation bitmap, and deleted entry sets
//! recovered as The Sleuth Kit recovers them.
//!
//! Layout (Microsoft's "exFAT file system specification", 2019): a boot
//! sector giving the sector and cluster sizes, the FAT and the cluster
//! heap; the root directory is a FAT chain. A directory is a run of
//! 32-byte entries; a file is an entry set: a File entry (0x85: attributes,
//! times), a Stream Extension (0xC0: first cluster, lengths, and whether
//! the data is one contiguous run with no FAT chain) and File Name entries
//! (0xC1, 15 UTF-16 units each), guarded by a checksum over the set. The
//! allocation bitmap, not the FAT, says which clusters are in use; the FAT
//! only chains clusters of files that need it.
//!
//! Deleted files: deleting clears the in-use bit of each entry of the set
//! (0x85 → 0x05, 0xC0 → 0x40, 0xC1 → 0x41) and frees the clusters in the
//! bitmap; names, sizes and first clusters stay. Content is recovered as
//! TSK does for FAT: from the first cluster on, the clusters free now, in
//! order, until the size is covered; a contiguous (no-FAT-chain) file is
//! its run, recovered only when every cluster of it is free now. A deleted
//! file whose first cluster (or, contiguous, any cluster) is in use again
//! is recorded as not recoverable (TSK returns the other file's bytes).
//!
//! The allocation bitmap and the up-case table are recorded as files
//! `$ALLOC_BITMAP` and `$UPCASE_TABLE` at the root, as TSK lists them; the
//! volume label is not a file. Times are stored as local time with an
//! optional offset from UTC: with the offset they are recorded in UTC,
//! without it as written. exFAT has no change time: `ctime` repeats the
//! modification time.

use std::io;

use super::{FileSystem, Node, Run, RunFile, Table, Volume, damaged, le16, le32, le64, push_run};
use crate::item::{FileMeta, SkipReason};
use crate::source::tree::Source;
use crate::time::Timestamp;

/// The root directory's address (entry sets have the byte offset of their
/// File entry; none sits at byte 1).
const ROOT: u64 = 1;
/// A directory holds at most 256 MiB of entries (the specification's
/// limit); longer ones are cut there.
const MAX_DIR_BYTES: u64 = 256 << 20;
const ATTR_READ_ONLY: u16 = 0x01;
const ATTR_DIRECTORY: u16 = 0x10;
const IN_USE: u8 = 0x80;
const TYPE_BITMAP: u8 = 0x81;
const TYPE_UPCASE: u8 = 0x82;
const TYPE_FILE: u8 = 0x85;
const TYPE_STREAM: u8 = 0xC0;
const TYPE_NAME: u8 = 0xC1;
/// Stream Extension flag: the data is one contiguous run, no FAT chain.
const NO_FAT_CHAIN: u8 = 0x02;

/// An exFAT file system.
pub struct Exfat {
    vol: Volume,
    cluster: u64,
    /// Byte offset of cluster 2.
    heap_at: u64,
    clusters: u64,
    /// The active FAT.
    fat: Table,
    /// The active allocation bitmap.
    bitmap: Table,
    root_cluster: u64,
    notes: Vec<String>,
}

/// An entry set as read: the File entry's fields, the stream's, the name.
struct Set {
    attrs: u16,
    /// The raw File entry (times are decoded from it on demand).
    file: [u8; 32],
    flags: u8,
    valid: u64,
    first: u64,
    len: u64,
    name: Vec<u8>,
    deleted: bool,
}

impl Set {
    fn is_dir(&self) -> bool {
        self.attrs & ATTR_DIRECTORY != 0
    }

    fn contiguous(&self) -> bool {
        self.flags & NO_FAT_CHAIN != 0
    }
}

impl Exfat {
    /// Whether `vol` starts with an exFAT boot sector.
    pub fn detect(vol: &Volume) -> io::Result<bool> {
        if vol.len() < 512 {
            return Ok(false);
        }
        let b = vol.bytes_at(0, 512)?;
        Ok(&b[3..11] == b"EXFAT   " && b[510] == 0x55 && b[511] == 0xAA)
    }

    /// Reads the boot sector, then the root's allocation bitmap entry.
    pub fn open(vol: Volume) -> io::Result<Exfat> {
        let b = vol.bytes_at(0, 512)?;
        let (sector_shift, cluster_shift) = (b[108] as u32, b[109] as u32);
        if !(9..=12).contains(&sector_shift) || sector_shift + cluster_shift > 25 {
            return Err(damaged(format!(
                "exFAT boot sector: sectors of 2^{sector_shift} bytes, clusters of 2^{cluster_shift} sectors"
            )));
        }
        let sector = 1u64 << sector_shift;
        let cluster = sector << cluster_shift;
        let fat_at = le32(&b, 80) as u64 * sector;
        let fat_len = le32(&b, 84) as u64 * sector;
        let heap_at = le32(&b, 88) as u64 * sector;
        let clusters = le32(&b, 92) as u64;
        let root_cluster = le32(&b, 96) as u64;
        let flags = le16(&b, 106);
        let fats = b[110] as u64;
        if fat_len == 0 || clusters == 0 || !(1..=2).contains(&fats) {
            return Err(damaged("exFAT boot sector with zero sizes"));
        }
        if heap_at
            .checked_add(clusters.saturating_mul(cluster))
            .is_none_or(|end| end > vol.len())
        {
            return Err(damaged(format!(
                "the exFAT cluster heap ({clusters} clusters of {cluster} bytes) lies past the end of the volume"
            )));
        }
        // TexFAT volumes keep two FATs and two bitmaps; bit 0 of the volume
        // flags says which one is in use.
        let active = if fats == 2 { (flags & 1) as u64 } else { 0 };
        let fat = Table::new(&vol, fat_at + active * fat_len, fat_len, "FAT")?;
        let mut notes = Vec::new();
        if flags & 0x02 != 0 {
            notes.push("exFAT: the volume is marked dirty (it was not unmounted cleanly)".into());
        }
        if !boot_checksum_ok(&vol, sector)? {
            notes.push("exFAT: the boot region's checksum does not match".into());
        }
        // A placeholder bitmap until the root is read: the root's chain
        // needs only the FAT.
        let mut fs = Exfat {
            bitmap: Table::new(&vol, 0, 0, "allocation bitmap")?,
            vol,
            cluster,
            heap_at,
            clusters,
            fat,
            root_cluster,
            notes,
        };
        let (at, len) = fs
            .root_entries()?
            .into_iter()
            .find(|(_, e)| e[0] == TYPE_BITMAP && (e[1] & 1) as u64 == active)
            .map(|(_, e)| (le32(&e, 20) as u64, le64(&e, 24)))
            .ok_or_else(|| damaged("the exFAT root directory has no allocation bitmap entry"))?;
        if !fs.valid(at) || len < clusters.div_ceil(8) {
            return Err(damaged(format!(
                "the exFAT allocation bitmap (cluster {at}, {len} bytes) lies outside the cluster heap or is too short for its {clusters} clusters"
            )));
        }
        fs.bitmap = Table::new(
            &fs.vol,
            fs.cluster_at(at),
            clusters.div_ceil(8),
            "allocation bitmap",
        )?;
        Ok(fs)
    }

    fn valid(&self, c: u64) -> bool {
        (2..self.clusters + 2).contains(&c)
    }

    fn cluster_at(&self, c: u64) -> u64 {
        self.heap_at + (c - 2) * self.cluster
    }

    /// The FAT entry of cluster `c`.
    fn next(&self, c: u64) -> io::Result<u64> {
        let mut b = [0u8; 4];
        self.fat.read(c * 4, &mut b)?;
        Ok(u32::from_le_bytes(b) as u64)
    }

    /// Whether cluster `c` is in use, by the allocation bitmap.
    fn in_use(&self, c: u64) -> io::Result<bool> {
        let k = c - 2;
        let mut b = [0u8; 1];
        self.bitmap.read(k / 8, &mut b)?;
        Ok(b[0] >> (k % 8) & 1 == 1)
    }

    /// Runs of the FAT chain from `first`, covering `len` bytes (all of the
    /// chain when `None`, for the root). A chain that loops, leaves the
    /// heap or ends too soon is damage.
    fn chain(&self, first: u64, len: Option<u64>) -> io::Result<Vec<Run>> {
        let want = len.map(|l| l.div_ceil(self.cluster));
        let mut runs: Vec<Run> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let (mut c, mut n) = (first, 0u64);
        while want.is_none_or(|w| n < w) {
            if !self.valid(c) {
                if len.is_none() && c >= 0xFFFF_FFF8 {
                    break;
                }
                return Err(damaged(format!(
                    "the exFAT FAT chain reaches cluster {c:#x} after {n} clusters: it is broken{}",
                    want.map_or(String::new(), |w| format!(" (the file's size needs {w})"))
                )));
            }
            if !seen.insert(c) {
                return Err(damaged(format!(
                    "the exFAT FAT chain comes back to cluster {c} after {n} clusters: it loops"
                )));
            }
            push_run(
                &mut runs,
                n * self.cluster,
                self.cluster_at(c),
                self.cluster,
            );
            n += 1;
            if len.is_none() && n * self.cluster >= MAX_DIR_BYTES {
                break;
            }
            c = self.next(c)?;
        }
        Ok(runs)
    }

    /// The one run of a contiguous file; an error when it leaves the heap.
    fn contiguous(&self, first: u64, len: u64) -> io::Result<Vec<Run>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let n = len.div_ceil(self.cluster);
        if !self.valid(first) || first.checked_add(n - 1).is_none_or(|l| !self.valid(l)) {
            return Err(damaged(format!(
                "the exFAT data run (cluster {first}, {n} clusters) lies outside the cluster heap"
            )));
        }
        Ok(vec![(0, Some(self.cluster_at(first)), n * self.cluster)])
    }

    /// A deleted file's clusters, or `None` when they cannot be recovered:
    /// contiguous, its run when all of it is free; chained, the free
    /// clusters from the first on (TSK's rule), the first one free.
    fn recover(&self, s: &Set, len: u64) -> io::Result<Option<Vec<Run>>> {
        if len == 0 {
            return Ok(Some(Vec::new()));
        }
        // More clusters than the volume has: a damaged length.
        if !self.valid(s.first)
            || len.div_ceil(self.cluster) > self.clusters
            || self.in_use(s.first)?
        {
            return Ok(None);
        }
        if s.contiguous() {
            let Ok(runs) = self.contiguous(s.first, len) else {
                return Ok(None);
            };
            for c in s.first..s.first + len.div_ceil(self.cluster) {
                if self.in_use(c)? {
                    return Ok(None);
                }
            }
            return Ok(Some(runs));
        }
        let mut runs: Vec<Run> = Vec::new();
        let (mut c, mut covered) = (s.first, 0u64);
        while covered < len {
            if !self.valid(c) {
                return Ok(None);
            }
            if !self.in_use(c)? {
                push_run(&mut runs, covered, self.cluster_at(c), self.cluster);
                covered += self.cluster;
            }
            c += 1;
        }
        Ok(Some(runs))
    }

    /// The clusters holding the first `len` bytes of an entry set's data
    /// (allocated or recovered).
    fn runs(&self, s: &Set, len: u64) -> io::Result<Option<Vec<Run>>> {
        if s.deleted {
            self.recover(s, len)
        } else if len == 0 {
            Ok(Some(Vec::new()))
        } else if s.contiguous() {
            self.contiguous(s.first, len).map(Some)
        } else {
            self.chain(s.first, Some(len)).map(Some)
        }
    }

    /// The root directory's entries, as (byte offset, 32 bytes).
    fn root_entries(&self) -> io::Result<Vec<(u64, [u8; 32])>> {
        let runs = self.chain(self.root_cluster, None)?;
        self.slots(&runs)
    }

    fn slots(&self, runs: &[Run]) -> io::Result<Vec<(u64, [u8; 32])>> {
        let mut out = Vec::new();
        for &(_, phys, len) in runs {
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

    fn entry(&self, at: u64) -> io::Result<[u8; 32]> {
        let mut raw = [0u8; 32];
        self.vol.read_exact_at(&mut raw, at)?;
        Ok(raw)
    }

    /// The entry set whose File entry is at byte `at`. Its secondary
    /// entries follow it, except where the set crosses into the next
    /// cluster of a FAT-chained directory: both continuations are tried
    /// and the one whose checksum matches is taken (a deleted set's
    /// checksum is over its entries as they were in use).
    fn set_at(&self, at: u64) -> io::Result<Set> {
        let primary = self.entry(at)?;
        if primary[0] & !IN_USE != TYPE_FILE & !IN_USE {
            return Err(damaged(format!("no exFAT file entry at byte {at}")));
        }
        let count = primary[1] as usize;
        if !(2..=18).contains(&count) {
            return Err(damaged(format!(
                "the exFAT file entry at byte {at} has {count} secondary entries"
            )));
        }
        let deleted = primary[0] & IN_USE == 0;
        let mut tried = Vec::new();
        for follow_fat in [false, true] {
            let mut entries = vec![primary];
            let mut pos = at;
            let mut ok = true;
            for _ in 0..count {
                pos = match self.after(pos, follow_fat)? {
                    Some(p) => p,
                    None => {
                        ok = false;
                        break;
                    }
                };
                entries.push(self.entry(pos)?);
            }
            if ok && set_checksum(&entries) == le16(&primary, 2) {
                return self.parse_set(&entries, deleted, at);
            }
            tried.push(entries);
        }
        // No continuation matches the checksum: a damaged or (deleted)
        // partly overwritten set; take the one whose entries are typed
        // right, if any, and say nothing more precise than the types.
        if deleted
            && let Some(entries) = tried.into_iter().find(|e| {
                e.len() == count + 1
                    && e[1][0] & !IN_USE == TYPE_STREAM & !IN_USE
                    && e[2..].iter().all(|x| x[0] & !IN_USE == TYPE_NAME & !IN_USE)
            })
        {
            return self.parse_set(&entries, deleted, at);
        }
        Err(damaged(format!(
            "the exFAT entry set at byte {at} fails its checksum"
        )))
    }

    /// The entry after the one at `pos`: the next 32 bytes, or, at the end
    /// of a cluster with `follow_fat`, the first entry of the cluster the
    /// FAT gives (`None` when it gives none).
    fn after(&self, pos: u64, follow_fat: bool) -> io::Result<Option<u64>> {
        let next = pos + 32;
        let in_heap = pos >= self.heap_at;
        if !follow_fat || !in_heap || !(next - self.heap_at).is_multiple_of(self.cluster) {
            return Ok(Some(next));
        }
        let c = (pos - self.heap_at) / self.cluster + 2;
        let n = if self.valid(c) { self.next(c)? } else { 0 };
        Ok(self.valid(n).then(|| self.cluster_at(n)))
    }

    fn parse_set(&self, e: &[[u8; 32]], deleted: bool, at: u64) -> io::Result<Set> {
        let stream = &e[1];
        if stream[0] & !IN_USE != TYPE_STREAM & !IN_USE {
            return Err(damaged(format!(
                "the exFAT entry set at byte {at} has no stream extension"
            )));
        }
        let name_len = stream[3] as usize;
        let mut units = Vec::with_capacity(name_len);
        for n in &e[2..] {
            if n[0] & !IN_USE != TYPE_NAME & !IN_USE {
                break;
            }
            units.extend((0..15).map(|k| le16(n, 2 + 2 * k)));
        }
        units.truncate(name_len);
        let len = le64(stream, 24);
        Ok(Set {
            attrs: le16(&e[0], 4),
            file: e[0],
            flags: stream[1],
            valid: le64(stream, 8).min(len),
            first: le32(stream, 20) as u64,
            len,
            name: String::from_utf16_lossy(&units).into_bytes(),
            deleted,
        })
    }

    fn meta(&self, at: u64, s: &Set) -> FileMeta {
        let f = &s.file;
        let mode = if s.is_dir() {
            libc::S_IFDIR | 0o755
        } else if s.attrs & ATTR_READ_ONLY != 0 {
            libc::S_IFREG | 0o444
        } else {
            libc::S_IFREG | 0o644
        };
        let mtime = exfat_time(le32(f, 12), f[21], f[23]);
        FileMeta {
            size: if s.is_dir() { 0 } else { s.len },
            mode,
            dev: 0,
            ino: at,
            nlink: 1,
            uid: 0,
            gid: 0,
            mtime,
            atime: exfat_time(le32(f, 16), 0, f[24]),
            ctime: mtime,
            btime: Some(exfat_time(le32(f, 8), f[20], f[22])),
            blocks: s.len.div_ceil(self.cluster) * (self.cluster / 512),
        }
    }

    /// The bitmap or up-case table entry `raw`, as a pseudo-file.
    fn special(raw: &[u8; 32]) -> Set {
        let name: &[u8] = if raw[0] == TYPE_BITMAP {
            b"$ALLOC_BITMAP"
        } else {
            b"$UPCASE_TABLE"
        };
        let len = le64(raw, 24);
        let mut file = [0u8; 32];
        file[0] = TYPE_FILE;
        Set {
            attrs: 0,
            file,
            flags: NO_FAT_CHAIN,
            valid: len,
            first: le32(raw, 20) as u64,
            len,
            name: name.to_vec(),
            deleted: false,
        }
    }

    /// The set at `at`: a file's entry set, or the bitmap or up-case table.
    fn any_set(&self, at: u64) -> io::Result<Set> {
        let raw = self.entry(at)?;
        if matches!(raw[0], TYPE_BITMAP | TYPE_UPCASE) {
            return Ok(Self::special(&raw));
        }
        self.set_at(at)
    }
}

/// The checksum of an entry set, over its entries as they are in use
/// (deleting clears each entry's in-use bit, not the checksum), skipping
/// the checksum field itself (bytes 2 and 3 of the File entry).
fn set_checksum(entries: &[[u8; 32]]) -> u16 {
    let mut c: u16 = 0;
    for (k, e) in entries.iter().enumerate() {
        for (i, &b) in e.iter().enumerate() {
            if k == 0 && (i == 2 || i == 3) {
                continue;
            }
            let b = if i == 0 { b | IN_USE } else { b };
            c = c.rotate_right(1).wrapping_add(b as u16);
        }
    }
    c
}

/// Whether the boot region's checksum sector (sector 11) matches sectors
/// 0–10, without the volume flags and the percentage in use.
fn boot_checksum_ok(vol: &Volume, sector: u64) -> io::Result<bool> {
    if vol.len() < 12 * sector {
        return Ok(false);
    }
    let region = vol.bytes_at(0, 12 * sector as usize)?;
    let mut c: u32 = 0;
    for (i, &b) in region[..11 * sector as usize].iter().enumerate() {
        if matches!(i, 106 | 107 | 112) {
            continue;
        }
        c = c.rotate_right(1).wrapping_add(b as u32);
    }
    Ok(region[11 * sector as usize..]
        .chunks_exact(4)
        .all(|w| le32(w, 0) == c))
}

/// An exFAT timestamp: DOS date and time (local), 10 ms units, and the
/// offset from UTC in quarter hours when bit 7 of `offset` is set.
fn exfat_time(stamp: u32, tens_ms: u8, offset: u8) -> Timestamp {
    let local = super::fat::fat_time((stamp >> 16) as u16, stamp as u16, tens_ms);
    if stamp >> 16 == 0 {
        return local;
    }
    // Bits 0–6: a signed count of 15-minute steps east of UTC.
    let east = if offset & 0x80 != 0 {
        (((offset << 1) as i8) >> 1) as i64 * 15 * 60
    } else {
        0
    };
    Timestamp::new(local.secs - east, local.nanos as i64)
}

impl FileSystem for Exfat {
    fn name(&self) -> &'static str {
        "exfat"
    }

    fn root(&self) -> u64 {
        ROOT
    }

    fn list(&self, addr: u64, deleted: bool) -> io::Result<Vec<Node>> {
        let (slots, dir_deleted) = if addr == ROOT {
            (self.root_entries()?, false)
        } else {
            let s = self.set_at(addr)?;
            if !s.is_dir() {
                return Err(damaged(format!(
                    "the entry at byte {addr} is not a directory"
                )));
            }
            let dir_deleted = deleted || s.deleted;
            let len = s.len.min(MAX_DIR_BYTES);
            let runs = if dir_deleted {
                self.recover(&Set { deleted: true, ..s }, len)?
                    .ok_or_else(|| damaged("the deleted directory's clusters are in use again"))?
            } else {
                self.runs(&s, len)?.unwrap_or_default()
            };
            (self.slots(&runs)?, dir_deleted)
        };
        let mut out = Vec::new();
        let mut k = 0;
        while k < slots.len() {
            let (at, raw) = slots[k];
            k += 1;
            let set = match raw[0] {
                TYPE_BITMAP | TYPE_UPCASE if addr == ROOT => Self::special(&raw),
                t if t & !IN_USE == TYPE_FILE & !IN_USE => match self.set_at(at) {
                    Ok(s) => {
                        k += raw[1] as usize;
                        s
                    }
                    Err(e) if t & IN_USE != 0 => {
                        out.push(Node {
                            name: format!("(entry set at byte {at})").into_bytes(),
                            addr: at,
                            meta: None,
                            deleted: false,
                            skip: None,
                            error: Some(e.to_string()),
                            name_times: None,
                        });
                        continue;
                    }
                    // A deleted set that no longer reads: nothing left of it.
                    Err(_) => continue,
                },
                // Labels, GUIDs, TexFAT padding, vendor entries, stray
                // secondaries of sets overwritten in part, unused slots.
                _ => continue,
            };
            if set.name.is_empty() {
                continue;
            }
            let deleted = set.deleted || dir_deleted;
            let mut node = Node {
                name: set.name.clone(),
                addr: at,
                meta: Some(self.meta(at, &set)),
                deleted,
                skip: None,
                error: None,
                name_times: None,
            };
            // Its clusters (a directory's too) are in use again.
            let len = if set.is_dir() {
                set.len.min(MAX_DIR_BYTES)
            } else {
                set.len
            };
            let recovered = Set {
                deleted: true,
                ..set
            };
            if deleted && self.recover(&recovered, len)?.is_none() {
                node.skip = Some(SkipReason::NotRecoverable);
            }
            out.push(node);
        }
        Ok(out)
    }

    fn open(&self, addr: u64) -> io::Result<(Box<dyn Source + '_>, FileMeta)> {
        let s = self.any_set(addr)?;
        if s.is_dir() {
            return Err(damaged(format!("the entry at byte {addr} is a directory")));
        }
        let meta = self.meta(addr, &s);
        // The clusters must hold the whole data length (a length the
        // allocation cannot hold is damage, not zeros to hash) ...
        let mut runs = self
            .runs(&s, s.len)?
            .ok_or_else(|| damaged("the deleted file's clusters are in use again"))?;
        // ... but past the valid data length the file reads as zeros: the
        // runs stop there and RunFile fills the rest.
        runs.retain(|r| r.0 < s.valid);
        if let Some(last) = runs.last_mut() {
            let end = last.0 + last.2;
            if end > s.valid {
                last.2 -= end - s.valid;
            }
        }
        Ok((
            Box::new(RunFile {
                vol: &self.vol,
                runs: runs.into(),
                size: s.len,
            }),
            meta,
        ))
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn unallocated(&self) -> io::Result<Option<Vec<(u64, u64)>>> {
        // Clusters clear in the allocation bitmap.
        super::free_ranges(self.clusters, self.cluster, self.heap_at, |k| {
            Ok(!self.in_use(k + 2)?)
        })
        .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_moved_to_utc_by_their_offset() {
        // 2023-11-15 05:13:20 local at UTC+07:00 (28 quarter hours).
        let date = ((2023 - 1980) << 9 | 11 << 5 | 15) as u32;
        let time = (5 << 11 | 13 << 5 | 10) as u32;
        let t = exfat_time(date << 16 | time, 0, 0x80 | 28);
        assert_eq!(t.secs, 1_700_000_000);
        // West of UTC: -05:00 is -20 quarter hours (0x6C in 7 bits); the
        // same local time is 12 hours later in UTC than at +07:00.
        let t = exfat_time(date << 16 | time, 150, 0x80 | (-20i8 as u8 & 0x7F));
        assert_eq!(t.secs, 1_700_000_000 + 12 * 3600 + 1);
        assert_eq!(t.nanos, 500_000_000);
        // No offset recorded: as written.
        assert_eq!(
            exfat_time(date << 16 | time, 0, 0).secs,
            1_700_000_000 + 7 * 3600
        );
    }

    #[test]
    fn the_set_checksum_ignores_its_own_field_and_in_use_bits() {
        let mut e = [[0u8; 32]; 3];
        e[0][0] = TYPE_FILE;
        e[0][1] = 2;
        e[1][0] = TYPE_STREAM;
        e[2][0] = TYPE_NAME;
        e[2][2] = b'a';
        let c = set_checksum(&e);
        e[0][2] = 0xAB;
        e[0][3] = 0xCD;
        assert_eq!(set_checksum(&e), c);
        for x in &mut e {
            x[0] &= !IN_USE;
        }
        assert_eq!(set_checksum(&e), c);
        e[2][3] = 1;
        assert_ne!(set_checksum(&e), c);
    }
}
