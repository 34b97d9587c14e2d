//! ISO 9660 (CD/DVD images), read-only, with Joliet and Rock Ridge names.
//!
//! Layout (ECMA-119): 2,048-byte sectors; volume descriptors from sector
//! 16 (the primary one, supplementary ones, a terminator); each points at
//! a root directory record; a directory is a run of variable-length
//! records (extent, size, date, flags, name), never crossing a sector.
//! Names: a Joliet supplementary descriptor (UCS-2 names) is used when the
//! image has one; otherwise Rock Ridge `NM` entries (POSIX names) when the
//! records carry them; otherwise the ISO name without its `;1` version.
//! Files over 4 GiB are several records with one name (multi-extent).
//! There are no deleted files on a pressed or written disc.

use std::io;

use super::{FileSystem, Node, Run, RunFile, Volume, damaged, le16, le32};
use crate::item::FileMeta;
use crate::source::tree::Source;
use crate::time::{Timestamp, days_from_civil};

const SECTOR: u64 = 2048;
/// The root directory's address (records have their byte offset; none is
/// at byte 1).
const ROOT: u64 = 1;
const FLAG_DIR: u8 = 0x02;
const FLAG_MULTI: u8 = 0x80;
/// Directories larger than this are refused (hostile sizes).
const MAX_DIR_BYTES: u64 = 64 << 20;

/// An ISO 9660 file system.
pub struct Iso {
    vol: Volume,
    block: u64,
    /// The root directory record (34 bytes) of the descriptor in use.
    root: Vec<u8>,
    joliet: bool,
    /// Bytes to skip at the start of each record's system use area (SUSP
    /// `SP` entry), when Rock Ridge is in use.
    rock_ridge: Option<usize>,
    notes: Vec<String>,
}

/// A directory record's fields.
struct Record {
    extent: u64,
    size: u64,
    flags: u8,
    time: Timestamp,
    name: Vec<u8>,
    system_use: Vec<u8>,
    len: usize,
}

fn parse(b: &[u8], joliet: bool) -> Option<Record> {
    let len = *b.first()? as usize;
    if len < 34 || len > b.len() {
        return None;
    }
    let name_len = b[32] as usize;
    if 33 + name_len > len {
        return None;
    }
    let raw = &b[33..33 + name_len];
    let su_start = 33 + name_len + (1 - name_len % 2);
    let name = if name_len == 1 && (raw[0] == 0 || raw[0] == 1) {
        // "." and "..".
        Vec::new()
    } else if joliet {
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        strip_version(String::from_utf16_lossy(&units).into_bytes())
    } else {
        strip_version(raw.to_vec())
    };
    // Recording date: years since 1900, month, day, hour, minute, second,
    // offset from GMT in 15-minute steps.
    let d = &b[18..25];
    let time = if d[1] == 0 {
        Timestamp::new(0, 0)
    } else {
        let days = days_from_civil(
            1900 + d[0] as i64,
            d[1].clamp(1, 12) as u32,
            d[2].max(1) as u32,
        );
        let local = days * 86400 + d[3] as i64 * 3600 + d[4] as i64 * 60 + d[5] as i64;
        Timestamp::new(local - (d[6] as i8 as i64) * 15 * 60, 0)
    };
    Some(Record {
        extent: le32(b, 2) as u64,
        size: le32(b, 10) as u64,
        flags: b[25],
        time,
        name,
        system_use: b.get(su_start..len).unwrap_or_default().to_vec(),
        len,
    })
}

/// `NAME.EXT;1` → `NAME.EXT`; a trailing dot of an extensionless name goes too.
fn strip_version(mut n: Vec<u8>) -> Vec<u8> {
    if let Some(p) = n.iter().rposition(|&c| c == b';') {
        n.truncate(p);
    }
    if n.last() == Some(&b'.') {
        n.pop();
    }
    n
}

/// The Rock Ridge name (`NM` entries, concatenated) and mode (`PX`) in a
/// system use area, skipping `skip` bytes first.
fn rock_ridge(su: &[u8], skip: usize) -> (Option<Vec<u8>>, Option<u32>) {
    let mut name: Option<Vec<u8>> = None;
    let mut mode = None;
    let mut at = skip;
    while at + 4 <= su.len() {
        let (sig, len) = (&su[at..at + 2], su[at + 2] as usize);
        if len < 4 || at + len > su.len() {
            break;
        }
        let e = &su[at..at + len];
        match sig {
            // Flags 2 and 4 mark "." and "..": not names.
            b"NM" if len >= 5 && e[4] & 0x06 == 0 => {
                name.get_or_insert_with(Vec::new).extend_from_slice(&e[5..]);
            }
            b"PX" if len >= 12 => mode = Some(le32(e, 4)),
            b"ST" => break,
            _ => {}
        }
        at += len;
    }
    (name, mode)
}

impl Iso {
    /// Whether `vol` holds an ISO 9660 volume descriptor at sector 16.
    pub fn detect(vol: &Volume) -> io::Result<bool> {
        if vol.len() < 17 * SECTOR {
            return Ok(false);
        }
        let d = vol.bytes_at(16 * SECTOR, 7)?;
        Ok(&d[1..6] == b"CD001")
    }

    /// Reads the volume descriptors.
    pub fn open(vol: Volume) -> io::Result<Iso> {
        let mut primary: Option<Vec<u8>> = None;
        let mut joliet: Option<Vec<u8>> = None;
        for s in 16..16 + 64u64 {
            if (s + 1) * SECTOR > vol.len() {
                break;
            }
            let d = vol.bytes_at(s * SECTOR, SECTOR as usize)?;
            if &d[1..6] != b"CD001" {
                break;
            }
            match d[0] {
                1 if primary.is_none() => primary = Some(d),
                // Joliet: escape sequences %/@, %/C or %/E.
                2 if d[88] == b'%' && d[89] == b'/' && matches!(d[90], b'@' | b'C' | b'E') => {
                    joliet = Some(d)
                }
                255 => break,
                _ => {}
            }
        }
        let use_joliet = joliet.is_some();
        let d = joliet
            .or(primary)
            .ok_or_else(|| damaged("ISO 9660 without a primary volume descriptor"))?;
        let block = le16(&d, 128) as u64;
        if !matches!(block, 512 | 1024 | 2048) {
            return Err(damaged(format!("ISO 9660 logical block size {block}")));
        }
        let root = d[156..190].to_vec();
        let mut iso = Iso {
            vol,
            block,
            root,
            joliet: use_joliet,
            rock_ridge: None,
            notes: Vec::new(),
        };
        if !use_joliet {
            // Rock Ridge: the root's "." record starts with a SUSP "SP" entry.
            let r =
                parse(&iso.root, false).ok_or_else(|| damaged("damaged root directory record"))?;
            if let Ok(bytes) = iso.extent_bytes(r.extent, r.size.min(SECTOR))
                && let Some(dot) = parse(&bytes, false)
                && dot.system_use.len() >= 7
                && &dot.system_use[..2] == b"SP"
                && dot.system_use[4..6] == [0xBE, 0xEF]
            {
                iso.rock_ridge = Some(dot.system_use[6] as usize);
            }
        }
        iso.notes.push(format!(
            "iso9660: names from {}",
            if use_joliet {
                "the Joliet descriptor"
            } else if iso.rock_ridge.is_some() {
                "Rock Ridge entries"
            } else {
                "the ISO 9660 records (8.3-style, version suffix dropped)"
            }
        ));
        Ok(iso)
    }

    fn extent_bytes(&self, extent: u64, size: u64) -> io::Result<Vec<u8>> {
        let at = extent
            .checked_mul(self.block)
            .ok_or_else(|| damaged("extent overflows"))?;
        self.vol.bytes_at(at, size as usize)
    }

    fn record_at(&self, addr: u64) -> io::Result<Record> {
        let b = self
            .vol
            .bytes_at(addr, 255.min(self.vol.len().saturating_sub(addr)) as usize)?;
        parse(&b, self.joliet)
            .ok_or_else(|| damaged(format!("damaged directory record at byte {addr}")))
    }

    fn meta(&self, addr: u64, r: &Record, size: u64) -> FileMeta {
        let dir = r.flags & FLAG_DIR != 0;
        let rr_mode = self
            .rock_ridge
            .and_then(|skip| rock_ridge(&r.system_use, skip).1);
        let mode = match rr_mode {
            Some(m) if m & libc::S_IFMT != 0 => m,
            _ if dir => libc::S_IFDIR | 0o555,
            _ => libc::S_IFREG | 0o444,
        };
        FileMeta {
            size: if dir { 0 } else { size },
            mode,
            dev: 0,
            ino: addr,
            nlink: 1,
            uid: 0,
            gid: 0,
            mtime: r.time,
            atime: r.time,
            ctime: r.time,
            btime: None,
            blocks: size.div_ceil(512),
        }
    }

    /// The records of a directory: (byte offset, record), in order.
    fn records(&self, extent: u64, size: u64) -> io::Result<Vec<(u64, Record)>> {
        if size > MAX_DIR_BYTES {
            return Err(damaged(format!("directory of {size} bytes")));
        }
        let start = extent
            .checked_mul(self.block)
            .ok_or_else(|| damaged("extent overflows"))?;
        let bytes = self.vol.bytes_at(start, size as usize)?;
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            if bytes[at] == 0 {
                // Padding to the next sector.
                at = (at / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            match parse(&bytes[at..], self.joliet) {
                Some(r) => {
                    let len = r.len;
                    out.push((start + at as u64, r));
                    at += len;
                }
                None => at = (at / SECTOR as usize + 1) * SECTOR as usize,
            }
        }
        Ok(out)
    }

    fn name_of(&self, r: &Record) -> Vec<u8> {
        match self.rock_ridge {
            Some(skip) => rock_ridge(&r.system_use, skip)
                .0
                .unwrap_or_else(|| r.name.clone()),
            None => r.name.clone(),
        }
    }
}

impl FileSystem for Iso {
    fn name(&self) -> &'static str {
        "iso9660"
    }

    fn root(&self) -> u64 {
        ROOT
    }

    fn list(&self, addr: u64, _deleted: bool) -> io::Result<Vec<Node>> {
        let dir = if addr == ROOT {
            parse(&self.root, self.joliet)
                .ok_or_else(|| damaged("damaged root directory record"))?
        } else {
            self.record_at(addr)?
        };
        if dir.flags & FLAG_DIR == 0 {
            return Err(damaged(format!(
                "the record at byte {addr} is not a directory"
            )));
        }
        let records = self.records(dir.extent, dir.size)?;
        let mut out: Vec<Node> = Vec::new();
        let mut i = 0;
        while i < records.len() {
            let (at, r) = &records[i];
            let name = self.name_of(r);
            // A multi-extent file: its records follow one another; the
            // first one's address stands for all, sizes add up.
            let mut size = r.size;
            let mut j = i;
            while records[j].1.flags & FLAG_MULTI != 0 && j + 1 < records.len() {
                j += 1;
                size = size.saturating_add(records[j].1.size);
            }
            i = j + 1;
            if name.is_empty() {
                continue;
            }
            out.push(Node {
                name,
                addr: *at,
                meta: Some(self.meta(*at, r, size)),
                deleted: false,
                skip: None,
                error: None,
                name_times: None,
            });
        }
        Ok(out)
    }

    fn open(&self, addr: u64) -> io::Result<(Box<dyn Source + '_>, FileMeta)> {
        let first = self.record_at(addr)?;
        if first.flags & FLAG_DIR != 0 {
            return Err(damaged(format!("the record at byte {addr} is a directory")));
        }
        let mut runs: Vec<Run> = Vec::new();
        let mut size = 0u64;
        let mut at = addr;
        let mut r = first;
        let first_meta_record = at;
        // Multi-extent: at most 64 parts (256 GiB), bounding a hostile chain.
        for _ in 0..64 {
            let phys = r
                .extent
                .checked_mul(self.block)
                .ok_or_else(|| damaged("extent overflows"))?;
            if r.size > 0 {
                runs.push((size, Some(phys), r.size));
            }
            size = size.saturating_add(r.size);
            if r.flags & FLAG_MULTI == 0 {
                break;
            }
            at += r.len as u64;
            // Records never cross a sector: a zero length means the next
            // record starts the next sector.
            if self.vol.bytes_at(at, 1)?[0] == 0 {
                at = (at / SECTOR + 1) * SECTOR;
            }
            r = self.record_at(at)?;
        }
        let rec = self.record_at(first_meta_record)?;
        let meta = self.meta(first_meta_record, &rec, size);
        Ok((
            Box::new(RunFile {
                vol: &self.vol,
                runs: runs.into(),
                size,
            }),
            meta,
        ))
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}
