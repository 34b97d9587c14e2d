//! NTFS, read-only: resident and non-resident data, sparse and
//! LZNT1-compressed streams, alternate data streams, attribute lists,
//! hard links, and deleted files whose MFT records survive.
//!
//! Layout (the Linux-NTFS project's documentation, and Carrier's "File
//! System Forensic Analysis"): a boot sector giving the cluster size and
//! where the MFT starts; the MFT, an array of file records (1 KiB,
//! protected by an update sequence array); each record a list of
//! attributes: `$STANDARD_INFORMATION` (times), `$FILE_NAME` (parent
//! reference and name, one per link), `$DATA` (the content: stored in the
//! record, or as runs of clusters), `$ATTRIBUTE_LIST` (where attributes
//! that overflowed into extension records are).
//!
//! Directories are listed the way The Sleuth Kit lists them, from the MFT:
//! one pass over every record (in use or not) maps each `$FILE_NAME` to
//! its parent (record number and sequence number); a directory lists the
//! names whose parent is its record at its sequence number (for a deleted
//! directory, the sequence before it was freed). So the directory indexes
//! themselves are not parsed: a name that survives only in an index's
//! slack, with its record reused, is not listed (TSK cannot pair it with
//! metadata either). DOS 8.3 names are not listed (TSK skips them). Files
//! whose parent no longer exists are listed under `$OrphanFiles/`, as TSK
//! does (its lister does not walk that virtual directory).
//!
//! Alternate data streams are items of their own, `name:stream`. The
//! default stream of a deleted file is read through its surviving runs,
//! as TSK does: clusters since reused make it partial.
//!
//! Memory: 24 bytes per name for the map, built on the first listing.

use std::io;
use std::sync::OnceLock;

use super::{FileSystem, Node, Run, RunFile, Volume, damaged, le16, le32, le64};
use crate::item::{FileMeta, NameTimes, SkipReason};
use crate::source::tree::{MemSource, Source};
use crate::time::Timestamp;

const ROOT: u64 = 5;
/// `$BadClus`.
const BAD_CLUS: u64 = 8;
const ATTR_STANDARD: u32 = 0x10;
const ATTR_LIST: u32 = 0x20;
const ATTR_FILE_NAME: u32 = 0x30;
const ATTR_DATA: u32 = 0x80;
const ATTR_END: u32 = 0xFFFF_FFFF;
const NS_DOS: u8 = 2;
const FLAG_COMPRESSED: u16 = 0x0001;
const FLAG_ENCRYPTED: u16 = 0x4000;
/// Addresses of items: the record number in the low 48 bits; for an
/// alternate data stream, its attribute id + 1 in the high 16.
const RECORD_MASK: u64 = (1 << 48) - 1;
/// The address of `$OrphanFiles` (no record has it).
const ORPHANS: u64 = RECORD_MASK;
/// Records scanned at most (2^32: far beyond any real volume).
const MAX_RECORDS: u64 = 1 << 32;
/// Runs of one attribute at most (a hostile run list must not allocate
/// without end).
const MAX_RUNS: usize = 1 << 22;

/// An NTFS file system.
pub struct Ntfs {
    vol: Volume,
    cluster: u64,
    record_size: u64,
    /// The runs of `$MFT`'s data: where each record is.
    mft: Vec<Run>,
    mft_size: u64,
    clusters: u64,
    /// The name map, built on the first listing.
    names: OnceLock<Result<Vec<NameLink>, String>>,
    notes: Vec<String>,
}

/// (parent record, parent sequence, child record): one name of a file.
type NameLink = (u64, u16, u64);

/// One attribute of a record, as found (possibly in an extension record).
#[derive(Clone, Debug)]
struct Attr {
    kind: u32,
    name: Vec<u16>,
    flags: u16,
    id: u16,
    body: AttrBody,
}

#[derive(Clone, Debug)]
enum AttrBody {
    Resident(Vec<u8>),
    NonResident {
        start_vcn: u64,
        runs: Vec<Run>,
        data_size: u64,
        initialized: u64,
        compression_unit: u16,
    },
}

/// A file record's header fields this reader uses.
struct Record {
    in_use: bool,
    dir: bool,
    seq: u16,
    base: u64,
    attrs: Vec<Attr>,
}

/// FILETIME (100 ns since 1601-01-01) as a timestamp.
fn filetime(v: u64) -> Timestamp {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let secs = (v / 10_000_000) as i64 - EPOCH_DIFF;
    Timestamp::new(secs, ((v % 10_000_000) * 100) as i64)
}

/// Applies the update sequence array: each sector's last two bytes must
/// equal the sequence number, and are replaced by the saved values.
fn fixup(rec: &mut [u8], sector: usize) -> io::Result<()> {
    let off = le16(rec, 4) as usize;
    let count = le16(rec, 6) as usize;
    if count == 0 || off + count * 2 > rec.len() || (count - 1) * sector > rec.len() {
        return Err(damaged("record with an impossible update sequence array"));
    }
    let usn = [rec[off], rec[off + 1]];
    for i in 1..count {
        let end = i * sector;
        if rec[end - 2..end] != usn {
            return Err(damaged(format!(
                "record fails its update sequence check in sector {i}: torn or damaged"
            )));
        }
        rec[end - 2] = rec[off + i * 2];
        rec[end - 1] = rec[off + i * 2 + 1];
    }
    Ok(())
}

/// Parses a run list into runs of bytes (VCN order), starting at `vcn`.
fn runlist(b: &[u8], cluster: u64, vcn: u64, clusters: u64) -> io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut at = 0usize;
    let mut lcn: i64 = 0;
    let mut vcn = vcn;
    while at < b.len() && b[at] != 0 {
        let h = b[at];
        let (len_n, off_n) = ((h & 0xF) as usize, (h >> 4) as usize);
        if len_n == 0 || len_n > 8 || off_n > 8 || at + 1 + len_n + off_n > b.len() {
            return Err(damaged("damaged run list"));
        }
        let mut len = 0u64;
        for k in 0..len_n {
            len |= (b[at + 1 + k] as u64) << (8 * k);
        }
        let phys = if off_n == 0 {
            None
        } else {
            let mut d = 0i64;
            for k in 0..off_n {
                d |= (b[at + 1 + len_n + k] as i64) << (8 * k);
            }
            // Sign-extend.
            let bits = 8 * off_n as u32;
            if bits < 64 {
                d = (d << (64 - bits)) >> (64 - bits);
            }
            lcn = lcn
                .checked_add(d)
                .ok_or_else(|| damaged("run list offset overflows"))?;
            if lcn < 0 || (lcn as u64).saturating_add(len) > clusters {
                return Err(damaged(format!(
                    "a run points at clusters {lcn}..+{len}, outside the volume's {clusters}"
                )));
            }
            Some(lcn as u64 * cluster)
        };
        if runs.len() >= MAX_RUNS {
            return Err(damaged("run list longer than any real file's"));
        }
        let bytes = len
            .checked_mul(cluster)
            .ok_or_else(|| damaged("run length overflows"))?;
        runs.push((
            vcn.checked_mul(cluster)
                .ok_or_else(|| damaged("VCN overflows"))?,
            phys,
            bytes,
        ));
        vcn = vcn.saturating_add(len);
        at += 1 + len_n + off_n;
    }
    Ok(runs)
}

impl Ntfs {
    /// Whether `vol` starts with an NTFS boot sector.
    pub fn detect(vol: &Volume) -> io::Result<bool> {
        if vol.len() < 512 {
            return Ok(false);
        }
        let b = vol.bytes_at(0, 512)?;
        Ok(&b[3..11] == b"NTFS    ")
    }

    /// Reads the boot sector and the `$MFT` record.
    pub fn open(vol: Volume) -> io::Result<Ntfs> {
        let b = vol.bytes_at(0, 512)?;
        let bps = le16(&b, 11) as u64;
        let spc_raw = b[13];
        let spc = if spc_raw > 0x80 {
            1u64 << (256 - spc_raw as u32).min(31)
        } else {
            spc_raw as u64
        };
        if !matches!(bps, 256..=4096) || !bps.is_power_of_two() || spc == 0 {
            return Err(damaged(format!(
                "NTFS boot sector: {bps} bytes per sector, {spc} sectors per cluster"
            )));
        }
        let cluster = bps * spc;
        let rec_raw = b[64] as i8;
        let record_size = if rec_raw < 0 {
            1u64 << (-(rec_raw as i32)).min(20)
        } else {
            rec_raw as u64 * cluster
        };
        if !(256..=65536).contains(&record_size) {
            return Err(damaged(format!("NTFS file records of {record_size} bytes")));
        }
        let clusters = (le64(&b, 40).saturating_mul(bps) / cluster).min(vol.len() / cluster);
        let mft_lcn = le64(&b, 48);
        if mft_lcn >= clusters {
            return Err(damaged("the MFT starts past the end of the volume"));
        }
        let mut fs = Ntfs {
            vol,
            cluster,
            record_size,
            mft: vec![(0, Some(mft_lcn * cluster), record_size * 16)],
            mft_size: record_size * 16,
            clusters,
            names: OnceLock::new(),
            notes: Vec::new(),
        };
        // $MFT's own record gives the real runs.
        let rec = fs.record(0)?;
        let data = fs
            .gather(0, &rec)?
            .into_iter()
            .filter(|a| a.kind == ATTR_DATA && a.name.is_empty())
            .collect::<Vec<_>>();
        let (runs, size) = fs.merge_runs(&data)?;
        if runs.is_empty() || size < record_size {
            return Err(damaged("$MFT has no data runs"));
        }
        fs.mft = runs;
        fs.mft_size = size;
        fs.notes.push(
            "ntfs: directories are listed from the MFT (as The Sleuth Kit does), not from their indexes; names that survive only in index slack are not listed; $LogFile is not replayed".into(),
        );
        Ok(fs)
    }

    fn record_count(&self) -> u64 {
        (self.mft_size / self.record_size).min(MAX_RECORDS)
    }

    /// The raw bytes of record `n`, fixed up.
    fn record_bytes(&self, n: u64) -> io::Result<Vec<u8>> {
        if n >= self.record_count() {
            return Err(damaged(format!(
                "MFT record {n} is past the end of the MFT"
            )));
        }
        let f = RunFile {
            vol: &self.vol,
            runs: std::borrow::Cow::Borrowed(&self.mft),
            size: self.mft_size,
        };
        let mut rec = vec![0u8; self.record_size as usize];
        let mut done = 0;
        while done < rec.len() {
            let k = f.read_at(&mut rec[done..], n * self.record_size + done as u64)?;
            if k == 0 {
                return Err(damaged(format!("MFT record {n} is cut short")));
            }
            done += k;
        }
        if &rec[..4] != b"FILE" {
            return Err(damaged(format!("MFT record {n} has no FILE signature")));
        }
        fixup(&mut rec, 512.min(self.record_size as usize))?;
        Ok(rec)
    }

    fn record(&self, n: u64) -> io::Result<Record> {
        let rec = self.record_bytes(n)?;
        let flags = le16(&rec, 22);
        Ok(Record {
            in_use: flags & 1 != 0,
            dir: flags & 2 != 0,
            seq: le16(&rec, 16),
            base: le64(&rec, 32) & RECORD_MASK,
            attrs: self.attrs(&rec)?,
        })
    }

    /// The attributes stored in one record.
    fn attrs(&self, rec: &[u8]) -> io::Result<Vec<Attr>> {
        let mut out = Vec::new();
        let mut at = le16(rec, 20) as usize;
        let used = (le32(rec, 24) as usize).min(rec.len());
        while at + 16 <= used {
            let kind = le32(rec, at);
            if kind == ATTR_END {
                break;
            }
            let len = le32(rec, at + 4) as usize;
            if len < 16 || at + len > used {
                return Err(damaged("attribute runs past its record"));
            }
            let a = &rec[at..at + len];
            let name_len = a[9] as usize;
            let name_off = le16(a, 10) as usize;
            let name = a
                .get(name_off..name_off + name_len * 2)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let body = if a[8] == 0 {
                let vlen = le32(a, 16) as usize;
                let voff = le16(a, 20) as usize;
                let v = a
                    .get(voff..voff + vlen)
                    .ok_or_else(|| damaged("resident value outside its attribute"))?;
                AttrBody::Resident(v.to_vec())
            } else {
                if len < 64 {
                    return Err(damaged("non-resident attribute header cut short"));
                }
                let start_vcn = le64(a, 16);
                let roff = le16(a, 32) as usize;
                let runs = runlist(
                    a.get(roff..).unwrap_or_default(),
                    self.cluster,
                    start_vcn,
                    self.clusters,
                )?;
                AttrBody::NonResident {
                    start_vcn,
                    runs,
                    data_size: le64(a, 48),
                    initialized: le64(a, 56),
                    compression_unit: le16(a, 34),
                }
            };
            out.push(Attr {
                kind,
                name,
                flags: le16(a, 12),
                id: le16(a, 14),
                body,
            });
            at += len;
        }
        Ok(out)
    }

    /// All attributes of base record `n`: its own, and through its
    /// `$ATTRIBUTE_LIST` those in extension records.
    fn gather(&self, n: u64, rec: &Record) -> io::Result<Vec<Attr>> {
        let Some(list) = rec.attrs.iter().find(|a| a.kind == ATTR_LIST) else {
            return Ok(rec.attrs.clone());
        };
        let bytes = match &list.body {
            AttrBody::Resident(v) => v.clone(),
            AttrBody::NonResident {
                runs, data_size, ..
            } => {
                if *data_size > 16 << 20 {
                    return Err(damaged("attribute list over 16 MiB"));
                }
                let f = RunFile {
                    vol: &self.vol,
                    runs: runs.as_slice().into(),
                    size: *data_size,
                };
                crate::source::tree::read_whole(&f, *data_size)?
            }
        };
        let mut out: Vec<Attr> = rec
            .attrs
            .iter()
            .filter(|a| a.kind != ATTR_LIST)
            .cloned()
            .collect();
        let mut at = 0;
        let mut loaded: Vec<(u64, Vec<Attr>)> = Vec::new();
        while at + 26 <= bytes.len() {
            let kind = le32(&bytes, at);
            let len = le16(&bytes, at + 4) as usize;
            if len < 26 || at + len > bytes.len() {
                break;
            }
            let holder = le64(&bytes, at + 16) & RECORD_MASK;
            let id = le16(&bytes, at + 24);
            at += len;
            if holder == n {
                continue;
            }
            if !loaded.iter().any(|(h, _)| *h == holder) {
                let ext = self.record(holder)?;
                if ext.base != n {
                    return Err(damaged(format!(
                        "record {n}'s attribute list names record {holder}, which belongs to record {}",
                        ext.base
                    )));
                }
                loaded.push((holder, ext.attrs));
            }
            if let Some((_, attrs)) = loaded.iter().find(|(h, _)| *h == holder)
                && let Some(a) = attrs.iter().find(|a| a.kind == kind && a.id == id)
            {
                out.push(a.clone());
            }
        }
        Ok(out)
    }

    /// One stream's runs from its pieces (an attribute split across
    /// records), in VCN order, with its size.
    fn merge_runs(&self, pieces: &[Attr]) -> io::Result<(Vec<Run>, u64)> {
        let mut parts: Vec<&Attr> = pieces.iter().collect();
        parts.sort_by_key(|a| match &a.body {
            AttrBody::NonResident { start_vcn, .. } => *start_vcn,
            AttrBody::Resident(_) => 0,
        });
        let mut runs = Vec::new();
        let mut size = 0;
        for (i, a) in parts.iter().enumerate() {
            if let AttrBody::NonResident {
                runs: r, data_size, ..
            } = &a.body
            {
                runs.extend(r.iter().copied());
                if i == 0 {
                    size = *data_size;
                }
            }
        }
        Ok((runs, size))
    }

    /// The name map, built once.
    fn names(&self) -> io::Result<&[NameLink]> {
        let r = self
            .names
            .get_or_init(|| self.build_names().map_err(|e| e.to_string()));
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(damaged(e.clone())),
        }
    }

    fn build_names(&self) -> io::Result<Vec<NameLink>> {
        let mut out = Vec::new();
        for n in 0..self.record_count() {
            // Damaged or never-used records are simply not in the map.
            let Ok(rec) = self.record(n) else { continue };
            if rec.base != 0 {
                continue;
            }
            let attrs = self.gather(n, &rec).unwrap_or(rec.attrs);
            for a in attrs.iter().filter(|a| a.kind == ATTR_FILE_NAME) {
                if let AttrBody::Resident(v) = &a.body
                    && v.len() >= 66
                    && v[65] != NS_DOS
                {
                    let parent = le64(v, 0);
                    out.push((parent & RECORD_MASK, (parent >> 48) as u16, n));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn meta(&self, n: u64, rec: &Record, attrs: &[Attr], size: u64) -> FileMeta {
        let si = attrs.iter().find_map(|a| match (&a.body, a.kind) {
            (AttrBody::Resident(v), ATTR_STANDARD) if v.len() >= 36 => Some(v.clone()),
            _ => None,
        });
        let t = |at| {
            si.as_ref()
                .map_or(Timestamp::new(0, 0), |v| filetime(le64(v, at)))
        };
        let read_only = si.as_ref().is_some_and(|v| le32(v, 32) & 1 != 0);
        let mode = if rec.dir {
            libc::S_IFDIR | 0o755
        } else if read_only {
            libc::S_IFREG | 0o444
        } else {
            libc::S_IFREG | 0o644
        };
        let links = attrs
            .iter()
            .filter(|a| a.kind == ATTR_FILE_NAME)
            .filter(|a| matches!(&a.body, AttrBody::Resident(v) if v.get(65) != Some(&NS_DOS)))
            .count();
        FileMeta {
            size,
            mode,
            dev: 0,
            ino: n,
            nlink: links.max(1) as u64,
            uid: 0,
            gid: 0,
            mtime: t(8),
            atime: t(24),
            ctime: t(16),
            btime: si.as_ref().map(|v| filetime(le64(v, 0))),
            blocks: size.div_ceil(512),
        }
    }

    /// The data stream `name` (empty: the default) of a record's attributes.
    fn stream<'a>(
        &'a self,
        attrs: &[Attr],
        name: &[u16],
    ) -> io::Result<Option<(Box<dyn Source + 'a>, u64)>> {
        let pieces: Vec<Attr> = attrs
            .iter()
            .filter(|a| a.kind == ATTR_DATA && a.name == name)
            .cloned()
            .collect();
        let Some(first) = pieces.first() else {
            return Ok(None);
        };
        if first.flags & FLAG_ENCRYPTED != 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the file is encrypted with EFS: its content cannot be read without the user's key",
            ));
        }
        match &first.body {
            AttrBody::Resident(v) => {
                let size = v.len() as u64;
                Ok(Some((Box::new(MemSource(v.clone())), size)))
            }
            AttrBody::NonResident {
                initialized,
                compression_unit,
                ..
            } => {
                let (runs, size) = self.merge_runs(&pieces)?;
                let initialized = (*initialized).min(size);
                if first.flags & FLAG_COMPRESSED != 0 && *compression_unit > 0 {
                    let unit = self.cluster << (*compression_unit).min(8);
                    return Ok(Some((
                        Box::new(Compressed {
                            vol: &self.vol,
                            runs,
                            size,
                            unit,
                            cache: Default::default(),
                        }),
                        size,
                    )));
                }
                let f = RunFile {
                    vol: &self.vol,
                    runs: runs.into(),
                    size,
                };
                if initialized < size {
                    return Ok(Some((
                        Box::new(Initialized {
                            inner: f,
                            initialized,
                        }),
                        size,
                    )));
                }
                Ok(Some((Box::new(f), size)))
            }
        }
    }

    /// The names record `child` has under `parent`, and its streams.
    fn nodes_of(
        &self,
        parent: u64,
        child: u64,
        deleted_parent: bool,
        out: &mut Vec<Node>,
    ) -> io::Result<()> {
        let rec = self.record(child)?;
        let attrs = self.gather(child, &rec)?;
        let deleted = !rec.in_use || deleted_parent;
        let default_size = attrs
            .iter()
            .filter(|a| a.kind == ATTR_DATA && a.name.is_empty())
            .map(|a| match &a.body {
                AttrBody::Resident(v) => v.len() as u64,
                AttrBody::NonResident {
                    start_vcn: 0,
                    data_size,
                    ..
                } => *data_size,
                AttrBody::NonResident { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        let size = if rec.dir { 0 } else { default_size };
        let meta = self.meta(child, &rec, &attrs, size);
        for a in attrs.iter().filter(|a| a.kind == ATTR_FILE_NAME) {
            let AttrBody::Resident(v) = &a.body else {
                continue;
            };
            if v.len() < 66 || v[65] == NS_DOS {
                continue;
            }
            let p = le64(v, 0) & RECORD_MASK;
            let ps = (le64(v, 0) >> 48) as u16;
            let matches_parent = if parent == ORPHANS {
                !self.parent_lists(p, ps)?
            } else {
                p == parent
            };
            if !matches_parent {
                continue;
            }
            let len = v[64] as usize;
            let units: Vec<u16> = v
                .get(66..66 + len * 2)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let name = String::from_utf16_lossy(&units).into_bytes();
            if name.is_empty() || name == b"." {
                continue;
            }
            // This name's $FILE_NAME times: recorded where they differ
            // from $STANDARD_INFORMATION's (a sign of time-stamp changes
            // made through the API, which reach only $SI).
            let name_times = NameTimes {
                created: filetime(le64(v, 8)),
                modified: filetime(le64(v, 16)),
                changed: filetime(le64(v, 24)),
                accessed: filetime(le64(v, 32)),
            };
            let same = Some(name_times.created) == meta.btime
                && name_times.modified == meta.mtime
                && name_times.changed == meta.ctime
                && name_times.accessed == meta.atime;
            out.push(Node {
                name: name.clone(),
                addr: child,
                meta: Some(meta.clone()),
                deleted,
                skip: None,
                error: None,
                name_times: (!same).then_some(name_times),
            });
            // Alternate data streams: items of their own.
            {
                for s in attrs
                    .iter()
                    .filter(|a| a.kind == ATTR_DATA && !a.name.is_empty())
                {
                    if let AttrBody::NonResident { start_vcn, .. } = s.body
                        && start_vcn != 0
                    {
                        continue;
                    }
                    let stream = String::from_utf16_lossy(&s.name);
                    let ssize = match &s.body {
                        AttrBody::Resident(v) => v.len() as u64,
                        AttrBody::NonResident { data_size, .. } => *data_size,
                    };
                    let mut m = self.meta(child, &rec, &attrs, ssize);
                    m.mode = libc::S_IFREG | (m.mode & 0o777);
                    let mut n = name.clone();
                    n.push(b':');
                    n.extend_from_slice(stream.as_bytes());
                    // $BadClus:$Bad spans the volume, sparse but for bad
                    // clusters: hashing it would digest the volume's size in zeros.
                    let skip = (child == BAD_CLUS && stream == "$Bad")
                        .then_some(SkipReason::BadClusterMap);
                    out.push(Node {
                        name: n,
                        addr: child | ((s.id as u64 + 1) << 48),
                        meta: Some(m),
                        deleted,
                        skip,
                        error: None,
                        name_times: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether directory record `p` lists the names filed under it at
    /// sequence `s` (see [`FileSystem::list`]); if not, they are orphans.
    fn parent_lists(&self, p: u64, s: u16) -> io::Result<bool> {
        if p >= self.record_count() {
            return Ok(false);
        }
        Ok(self.record(p).is_ok_and(|r| {
            let seq = if r.in_use {
                r.seq
            } else {
                r.seq.saturating_sub(1)
            };
            r.dir && r.base == 0 && seq == s
        }))
    }
}

impl FileSystem for Ntfs {
    fn name(&self) -> &'static str {
        "ntfs"
    }

    fn root(&self) -> u64 {
        ROOT
    }

    fn list(&self, addr: u64, deleted: bool) -> io::Result<Vec<Node>> {
        let names = self.names()?;
        let mut out = Vec::new();
        if addr == ORPHANS {
            // Names whose parent record is not that directory any more.
            let mut last = None;
            for &(p, s, child) in names {
                if Some(child) == last || child == ROOT {
                    continue;
                }
                if !self.parent_lists(p, s)? {
                    last = Some(child);
                    let _ = self.nodes_of(ORPHANS, child, true, &mut out);
                }
            }
            out.dedup_by(|a, b| a.addr == b.addr && a.name == b.name);
            return Ok(out);
        }
        let dir = self.record(addr)?;
        if !dir.dir {
            return Err(damaged(format!("MFT record {addr} is not a directory")));
        }
        // A deleted directory: its children were filed under the sequence
        // number it had before it was freed.
        let seq = if dir.in_use {
            dir.seq
        } else {
            dir.seq.saturating_sub(1)
        };
        let start = names.partition_point(|n| (n.0, n.1) < (addr, seq));
        for &(p, s, child) in &names[start..] {
            if (p, s) != (addr, seq) {
                break;
            }
            if child == addr {
                continue;
            }
            if let Err(e) = self.nodes_of(addr, child, deleted || !dir.in_use, &mut out) {
                out.push(Node {
                    name: format!("$MFT record {child}").into_bytes(),
                    addr: child,
                    meta: None,
                    deleted: true,
                    skip: None,
                    error: Some(e.to_string()),
                    name_times: None,
                });
            }
        }
        if addr == ROOT {
            out.push(Node::orphan_dir(ORPHANS));
        }
        Ok(out)
    }

    fn open(&self, addr: u64) -> io::Result<(Box<dyn Source + '_>, FileMeta)> {
        let n = addr & RECORD_MASK;
        let stream_id = (addr >> 48) as u16;
        let rec = self.record(n)?;
        let attrs = self.gather(n, &rec)?;
        let name: Vec<u16> = if stream_id == 0 {
            Vec::new()
        } else {
            attrs
                .iter()
                .find(|a| a.kind == ATTR_DATA && a.id == stream_id - 1)
                .map(|a| a.name.clone())
                .ok_or_else(|| damaged(format!("record {n} has no stream {}", stream_id - 1)))?
        };
        match self.stream(&attrs, &name)? {
            Some((src, size)) => {
                let meta = self.meta(n, &rec, &attrs, size);
                Ok((src, meta))
            }
            None => {
                // No $DATA at all (some metadata files): an empty file.
                let meta = self.meta(n, &rec, &attrs, 0);
                Ok((Box::new(MemSource(Vec::new())), meta))
            }
        }
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn unallocated(&self) -> io::Result<Option<Vec<(u64, u64)>>> {
        // Clusters clear in $Bitmap (record 6), least significant bit first.
        let (src, _) = self.open(6)?;
        super::Bits::new(&*src, false)
            .free_ranges(self.clusters, self.cluster, 0)
            .map(Some)
    }
}

/// A stream whose bytes past its initialized size read as zeros.
struct Initialized<'a> {
    inner: RunFile<'a>,
    initialized: u64,
}

impl Source for Initialized<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.inner.size {
            return Ok(0);
        }
        if offset >= self.initialized {
            let n = (self.inner.size - offset).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            return Ok(n);
        }
        let n = (self.initialized - offset).min(buf.len() as u64) as usize;
        self.inner.read_at(&mut buf[..n], offset)
    }
    crate::source::image::no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.inner.size)
    }
}

/// An LZNT1-compressed stream: compression units of 16 clusters (as a
/// rule), each stored plainly (all clusters present), compressed (fewer
/// clusters, then a sparse run to the unit's end) or not at all (zeros).
struct Compressed<'a> {
    vol: &'a Volume,
    runs: Vec<Run>,
    size: u64,
    unit: u64,
    cache: crate::source::image::Cache,
}

impl Compressed<'_> {
    fn unit_bytes(&self, u: u64) -> io::Result<Vec<u8>> {
        let start = u * self.unit;
        let end = start + self.unit;
        // The stored bytes of this unit, in order.
        let mut stored = Vec::new();
        let mut present = 0u64;
        for &(lo, phys, len) in &self.runs {
            let (a, b) = (lo.max(start), lo.saturating_add(len).min(end));
            if a >= b {
                continue;
            }
            if let Some(p) = phys {
                let mut v = vec![0u8; (b - a) as usize];
                self.vol.read_exact_at(&mut v, p + (a - lo))?;
                stored.extend_from_slice(&v);
                present += b - a;
            }
        }
        if present == 0 {
            return Ok(vec![0; self.unit as usize]);
        }
        if present >= self.unit {
            return Ok(stored);
        }
        let mut out = lznt1(&stored, self.unit as usize)?;
        out.resize(self.unit as usize, 0);
        Ok(out)
    }
}

impl Source for Compressed<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let u = offset / self.unit;
        let within = (offset % self.unit) as usize;
        let data = self.cache.get(u, || self.unit_bytes(u))?;
        let n = (data.len() - within)
            .min(buf.len())
            .min((self.size - offset) as usize);
        buf[..n].copy_from_slice(&data[within..within + n]);
        Ok(n)
    }
    crate::source::image::no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

/// LZNT1 decompression (MS-XCA §2.5), at most `max` bytes out.
pub fn lznt1(src: &[u8], max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(max);
    let mut at = 0;
    while at + 2 <= src.len() && out.len() < max {
        let h = le16(src, at) as usize;
        if h == 0 {
            break;
        }
        let size = (h & 0x0FFF) + 1;
        let data = src
            .get(at + 2..at + 2 + size)
            .ok_or_else(|| damaged("LZNT1 chunk runs past its data"))?;
        at += 2 + size;
        if h & 0x8000 == 0 {
            // Stored uncompressed (4,096 bytes).
            out.extend_from_slice(data);
            continue;
        }
        let chunk_start = out.len();
        let mut i = 0;
        while i < data.len() {
            let flags = data[i];
            i += 1;
            for bit in 0..8 {
                if i >= data.len() {
                    break;
                }
                if flags & (1 << bit) == 0 {
                    out.push(data[i]);
                    i += 1;
                } else {
                    if i + 2 > data.len() {
                        return Err(damaged("LZNT1 token cut short"));
                    }
                    let token = le16(data, i) as usize;
                    i += 2;
                    let pos = out.len() - chunk_start;
                    if pos == 0 {
                        return Err(damaged("LZNT1 back-reference before any data"));
                    }
                    let mut len_bits = 12;
                    let mut p = pos - 1;
                    while p >= 0x10 {
                        p >>= 1;
                        len_bits -= 1;
                    }
                    let len = (token & ((1 << len_bits) - 1)) + 3;
                    let back = (token >> len_bits) + 1;
                    if back > pos {
                        return Err(damaged("LZNT1 back-reference before the chunk"));
                    }
                    let from = out.len() - back;
                    for k in 0..len {
                        let b = out[from + k];
                        out.push(b);
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_epoch_is_1601() {
        // 1970-01-01 in FILETIME.
        assert_eq!(filetime(116_444_736_000_000_000).secs, 0);
    }

    #[test]
    fn run_lists_decode_signed_offsets_and_sparse_runs() {
        // 0x21: 1-byte length 0x10, 2-byte offset 0x0100 (LCN 256);
        // 0x01: sparse run of 8; 0x11: 0x04 clusters at -0x10 (LCN 240).
        let b = [0x21, 0x10, 0x00, 0x01, 0x01, 0x08, 0x11, 0x04, 0xF0, 0x00];
        let r = runlist(&b, 4096, 0, 1 << 20).unwrap();
        assert_eq!(
            r,
            vec![
                (0, Some(256 * 4096), 16 * 4096),
                (16 * 4096, None, 8 * 4096),
                (24 * 4096, Some(240 * 4096), 4 * 4096)
            ]
        );
        // Outside the volume: damage, not a read of whatever is there.
        assert!(runlist(&b, 4096, 0, 100).is_err());
    }

    #[test]
    fn lznt1_decodes_literals_and_back_references() {
        // "abcabcabcabc": three literals, then a back-reference of length
        // 9 at displacement 3 (pos 3 → 12 length bits: token (2 << 12) | 6).
        let token: u16 = (2 << 12) | 6;
        let body = [
            0b0000_1000,
            b'a',
            b'b',
            b'c',
            token as u8,
            (token >> 8) as u8,
        ];
        let h: u16 = 0x8000 | 0x3000 | (body.len() as u16 - 1);
        let mut src = h.to_le_bytes().to_vec();
        src.extend_from_slice(&body);
        assert_eq!(lznt1(&src, 4096).unwrap(), b"abcabcabcabc");
    }
}
