//! EWF version 2 (EnCase 7 and later `.Ex01`), one or more segments: the
//! sections are read here; the chunks are read by [`super::ewf::Ewf`]
//! (which decodes the v2 table entries too), the same reader as v1's (cache, parallel inflate, damaged chunks
//! reported with their media offsets).
//!
//! Layout (libewf's EWF2 notes and keramics' `ewf2.md`; checked against
//! libewf's own writer and reader in `tests/images`): a 32-byte file
//! header (signature, version 2.1, compression method, segment number, a
//! GUID shared by every segment of the set), then sections whose 64-byte
//! descriptor comes *after* their data and points back to the previous
//! descriptor, so a segment is read from its end. Device information
//! (sectors, bytes per sector, model, serial) and case data (case and
//! evidence numbers, examiner, notes, acquisition tool and time, sectors
//! per chunk) are compressed UTF-16 object text; a sector table lists
//! 16-byte entries (offset, size, flags: zlib-compressed, followed by an
//! Adler-32, or an 8-byte pattern repeated over the chunk: how EnCase
//! and libewf store zero and other uniform chunks).
//!
//! Not read, refused with what to do: encrypted images (EnCase has not
//! published the scheme) and bzip2-compressed ones (EnCase offers no way
//! to write them; no sample exists to test against). Lx01 (logical
//! evidence files) is another format (`LEF2` signature) and not an image.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::ewf::{Ewf, Layout, MAX_CHUNK, Table, adler32, hex, inflate, set_digest};
use super::{Image, ImageError};
use crate::source::bytes::{le16, le32, le64};

/// The EWF v2 segment signature.
pub const SIGNATURE: &[u8] = super::ewf::SIGNATURE_V2;

const FILE_HEADER: u64 = 32;
const DESCRIPTOR: u64 = 64;
/// Sections read at most in one segment: a hostile chain of tiny
/// sections must not fill memory with descriptors.
const MAX_SECTIONS: usize = 1 << 20;

// Section types.
const DEVICE_INFORMATION: u32 = 0x1;
const CASE_DATA: u32 = 0x2;
const SECTOR_TABLE: u32 = 0x4;
const ERROR_TABLE: u32 = 0x5;
const MD5_HASH: u32 = 0x8;
const SHA1_HASH: u32 = 0x9;
const ENCRYPTION_KEYS: u32 = 0xb;
const NEXT: u32 = 0xd;
const DONE: u32 = 0xf;

/// Section data flag: the data are encrypted.
const ENCRYPTED: u32 = 0x2;

/// The name of the segment after `name`: `x.Ex01` … `x.Ex99`, `x.ExAA` …
/// `x.ExZZ`, `x.EyAA` … `x.EzZZ` (keramics' and libewf's sequence).
fn next_segment(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    let b = ext.as_bytes();
    if b.len() != 4 || !b[1].is_ascii_alphabetic() {
        return None;
    }
    let upper = b[0].is_ascii_uppercase();
    let (mut c1, mut c2, mut c3) = (b[1], b[2].to_ascii_uppercase(), b[3].to_ascii_uppercase());
    if c2.is_ascii_digit() && c3.is_ascii_digit() {
        let n = (c2 - b'0') * 10 + (c3 - b'0') + 1;
        if n <= 99 {
            (c2, c3) = (b'0' + n / 10, b'0' + n % 10);
        } else {
            (c2, c3) = (b'A', b'A');
        }
    } else if c3 < b'Z' {
        c3 += 1;
    } else if c2 < b'Z' {
        (c2, c3) = (c2 + 1, b'A');
    } else if c1.to_ascii_lowercase() < b'z' {
        (c1, c2, c3) = (c1 + 1, b'A', b'A');
    } else {
        return None;
    }
    let case = |c: u8| {
        if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        }
    };
    let ext = [b[0], c1, case(c2), case(c3)];
    Some(format!("{stem}.{}", std::str::from_utf8(&ext).ok()?))
}

/// One section: its type and flags, and where its data are.
#[derive(Clone, Copy, Debug)]
struct Section {
    kind: u32,
    flags: u32,
    /// The descriptor's offset (the data end there).
    at: u64,
    data_at: u64,
    data_len: u64,
}

/// What the segments' sections said.
#[derive(Default)]
struct Parsed {
    tables: Vec<Table>,
    next_chunk: u64,
    sectors: Option<u64>,
    bytes_per_sector: Option<u64>,
    sectors_per_chunk: Option<u64>,
    chunks: Option<u64>,
    metadata: Vec<(String, String)>,
    digests: Vec<(String, String)>,
    notes: Vec<String>,
    table_checksum_failed: bool,
}

/// Opens the Ex01 image whose first segment is `path` (open as `first`),
/// with every segment after it.
pub fn open(path: &Path, first: File) -> Result<Image, ImageError> {
    let mut files = vec![(path.to_path_buf(), first)];
    let mut parsed = Parsed::default();
    let mut set_id = None;
    loop {
        let idx = files.len() - 1;
        let (p, f) = &files[idx];
        let fmt = |m: String| ImageError::Format(p.clone(), m);
        let mut h = [0u8; FILE_HEADER as usize];
        f.read_exact_at(&mut h, 0)
            .map_err(|e| ImageError::Io(p.clone(), e))?;
        if &h[..8] != SIGNATURE {
            return Err(fmt(format!(
                "segment {} is not an EWF version 2 segment (no EVF2 signature)",
                idx + 1
            )));
        }
        if h[8] != 2 {
            return Err(fmt(format!(
                "EWF format version {}.{}: only version 2 is read",
                h[8], h[9]
            )));
        }
        match le16(&h, 10) {
            1 => {}
            2 => {
                return Err(fmt(
                    "bzip2-compressed Ex01: not read by this version of triage; convert it with `ewfexport -f encase6` (libewf)".into(),
                ));
            }
            m => {
                return Err(fmt(format!(
                    "compression method {m} in the file header: not an EWF method (1 zlib, 2 bzip2); the segment is damaged"
                )));
            }
        }
        let number = le32(&h, 12);
        if number as usize != idx + 1 {
            return Err(fmt(format!(
                "segment file number {number} where segment {} was expected: give the first segment (.Ex01), and keep every segment beside it",
                idx + 1
            )));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&h[16..32]);
        match set_id {
            None => set_id = Some(id),
            Some(s) if s != id => {
                return Err(fmt(format!(
                    "segment {} belongs to another image (its set identifier differs from the first segment's): keep each image's segments apart",
                    idx + 1
                )));
            }
            Some(_) => {}
        }
        let more = read_segment(idx, f, &mut parsed).map_err(fmt)?;
        if !more {
            break;
        }
        let next = super::ewf::open_next(p, next_segment, files.len())?;
        files.push(next);
    }
    let fmt = |m: &str| ImageError::Format(path.to_path_buf(), m.to_string());
    let (Some(sectors), Some(spc)) = (parsed.sectors, parsed.sectors_per_chunk) else {
        return Err(fmt(
            "no device information or case data section gives the number of sectors and the chunk size: the image's geometry is missing",
        ));
    };
    let bps = parsed.bytes_per_sector.unwrap_or(512);
    let chunk = spc.saturating_mul(bps);
    if chunk == 0 || chunk > MAX_CHUNK || bps == 0 || bps > 4096 {
        return Err(fmt(&format!(
            "the case data give {spc} sectors of {bps} bytes per chunk: impossible, or chunks over 16 MiB (EnCase's largest), which are not read"
        )));
    }
    let size = sectors.checked_mul(bps).ok_or_else(|| {
        fmt(&format!(
            "{sectors} sectors of {bps} bytes: more than a medium can hold"
        ))
    })?;
    let needed = size.div_ceil(chunk);
    if let Some(c) = parsed.chunks
        && c < needed
    {
        return Err(fmt(&format!(
            "the case data give {c} chunks, fewer than the {needed} that {sectors} sectors need"
        )));
    }
    if parsed.next_chunk < needed {
        parsed.notes.push(format!(
            "the sector tables list {} of the image's {needed} chunks: bytes past {} read as an error",
            parsed.next_chunk,
            parsed.next_chunk * chunk
        ));
    }
    if parsed.table_checksum_failed {
        parsed
            .notes
            .push("a sector table header fails its checksum".into());
    }
    let (segments, handles) = super::ewf::sizes(files)?;
    let ewf = Ewf {
        segments: handles,
        tables: parsed.tables,
        chunk_size: chunk,
        chunks: parsed.next_chunk.min(needed),
        size,
        cache: Default::default(),
    };
    Ok(Image {
        format: "ewf2",
        size,
        media: Arc::new(ewf),
        segments,
        metadata: parsed.metadata,
        stored_digests: parsed.digests,
        notes: parsed.notes,
    })
}

/// The sections of segment `idx`, in file order, found by walking the
/// descriptors back from the end of the file.
fn sections(idx: usize, f: &File) -> Result<Vec<Section>, String> {
    let file_len = f.metadata().map_err(|e| e.to_string())?.len();
    if file_len < FILE_HEADER + DESCRIPTOR {
        return Err(format!(
            "segment {} is {file_len} bytes: too short to hold a section; the file is truncated",
            idx + 1
        ));
    }
    let mut list = Vec::new();
    let mut at = file_len - DESCRIPTOR;
    loop {
        let mut d = [0u8; DESCRIPTOR as usize];
        f.read_exact_at(&mut d, at).map_err(|e| e.to_string())?;
        if adler32(&d[..60]) != le32(&d, 60) {
            return Err(if list.is_empty() {
                format!(
                    "segment {} does not end with a section descriptor (checksum fails at byte {at}): the file is truncated, or the acquisition did not finish",
                    idx + 1
                )
            } else {
                format!(
                    "segment {}: the section descriptor at byte {at} fails its checksum: the file is damaged",
                    idx + 1
                )
            });
        }
        let data_len = le64(&d, 16);
        if data_len > at - FILE_HEADER {
            return Err(format!(
                "segment {}: the section at byte {at} claims {data_len} bytes of data, more than precede it",
                idx + 1
            ));
        }
        list.push(Section {
            kind: le32(&d, 0),
            flags: le32(&d, 4),
            at,
            data_at: at - data_len,
            data_len,
        });
        if list.len() > MAX_SECTIONS {
            return Err(format!(
                "segment {} has more than {MAX_SECTIONS} sections: the chain is damaged",
                idx + 1
            ));
        }
        let prev = le64(&d, 8);
        if prev == 0 {
            break;
        }
        // Each descriptor points strictly backwards, so the walk ends.
        if prev >= at || prev < FILE_HEADER {
            return Err(format!(
                "segment {}: the section at byte {at} points to byte {prev} as the one before it: the chain is damaged",
                idx + 1
            ));
        }
        at = prev;
    }
    list.reverse();
    Ok(list)
}

/// Reads segment `idx`'s sections into `p`. Returns whether another
/// segment follows (`next`) or the image ends here (`done`).
fn read_segment(idx: usize, f: &File, p: &mut Parsed) -> Result<bool, String> {
    let list = sections(idx, f)?;
    let data = |s: &Section, max: u64| -> Result<Vec<u8>, String> {
        let mut v = vec![0u8; s.data_len.min(max) as usize];
        f.read_exact_at(&mut v, s.data_at)
            .map_err(|e| format!("segment {}: section at byte {}: {e}", idx + 1, s.at))?;
        Ok(v)
    };
    let last = list.last().map(|s| s.kind);
    for s in &list {
        if s.flags & ENCRYPTED != 0 || s.kind == ENCRYPTION_KEYS {
            return Err(
                "encrypted Ex01: not read (EnCase has not published its encryption); decrypt it in EnCase and export an unencrypted image".into(),
            );
        }
        match s.kind {
            DEVICE_INFORMATION if p.sectors.is_none() => {
                let text = object_text(&data(s, 1 << 20)?)
                    .map_err(|e| format!("the device information cannot be read: {e}"))?;
                for (k, v) in super::ewf::main_category(&text, true) {
                    match k.as_str() {
                        "ts" => p.sectors = v.trim().parse().ok(),
                        "bp" => p.bytes_per_sector = v.trim().parse().ok(),
                        "md" | "sn" | "lb" if !v.is_empty() => {
                            let name = match k.as_str() {
                                "md" => "model",
                                "sn" => "serial_number",
                                _ => "device_label",
                            };
                            p.metadata.push((name.into(), v));
                        }
                        _ => {}
                    }
                }
            }
            CASE_DATA if p.sectors_per_chunk.is_none() => {
                let text = object_text(&data(s, 1 << 20)?)
                    .map_err(|e| format!("the case data cannot be read: {e}"))?;
                for (k, v) in super::ewf::main_category(&text, true) {
                    let label = match k.as_str() {
                        "sb" => {
                            p.sectors_per_chunk = v.trim().parse().ok();
                            continue;
                        }
                        "tb" => {
                            p.chunks = v.trim().parse().ok();
                            continue;
                        }
                        "nm" => "description",
                        "cn" => "case_number",
                        "en" => "evidence_number",
                        "ex" => "examiner",
                        "nt" => "notes",
                        "av" => "acquisition_software_version",
                        "os" => "acquisition_os",
                        "tt" => "acquisition_date",
                        "at" => "system_date",
                        _ => continue,
                    };
                    if v.is_empty() {
                        continue;
                    }
                    // v2 stores times as seconds since 1970 (UTC).
                    let v = match (label, v.trim().parse::<i64>()) {
                        ("acquisition_date" | "system_date", Ok(secs)) => {
                            crate::time::Timestamp::new(secs, 0).to_string()
                        }
                        _ => v,
                    };
                    p.metadata.push((label.into(), v));
                }
            }
            SECTOR_TABLE => {
                if s.data_len < 36 {
                    return Err(format!(
                        "segment {}: the sector table at byte {} is too short",
                        idx + 1,
                        s.at
                    ));
                }
                let h = data(s, 20)?;
                let first = le64(&h, 0);
                let count = le32(&h, 8) as u64;
                if adler32(&h[..16]) != le32(&h, 16) {
                    p.table_checksum_failed = true;
                }
                if 32 + count * 16 + 4 > s.data_len {
                    return Err(format!(
                        "segment {}: the sector table at byte {} lists {count} chunks, more than its section holds",
                        idx + 1,
                        s.at
                    ));
                }
                if first != p.next_chunk {
                    return Err(format!(
                        "segment {}: the sector table at byte {} starts at chunk {first} where chunk {} was expected: the tables are damaged or the acquisition was restarted",
                        idx + 1,
                        s.at,
                        p.next_chunk
                    ));
                }
                p.tables.push(Table {
                    segment: idx,
                    first_chunk: first,
                    count,
                    entries_at: s.data_at + 32,
                    layout: Layout::V2,
                });
                p.next_chunk += count;
            }
            ERROR_TABLE => {
                let e = data(s, 20 + 12 + 16 * 10)?;
                let count = if e.len() >= 4 { le32(&e, 0) } else { 0 };
                let ranges: Vec<String> = (0..count.min(10) as usize)
                    .filter(|i| 32 + i * 16 + 12 <= e.len())
                    .map(|i| {
                        let start = le64(&e, 32 + i * 16);
                        let n = le32(&e, 32 + i * 16 + 8) as u64;
                        format!("sectors {start}..{}", start.saturating_add(n))
                    })
                    .collect();
                p.notes.push(format!(
                    "the image records {count} read error(s) at acquisition ({}{}): those sectors hold what the imager wrote in their place",
                    ranges.join(", "),
                    if count > 10 { ", …" } else { "" }
                ));
            }
            MD5_HASH | SHA1_HASH => {
                let (alg, name, n) = if s.kind == MD5_HASH {
                    ("md5", "MD5", 16)
                } else {
                    ("sha1", "SHA-1", 20)
                };
                // The digest, then its Adler-32.
                let h = data(s, n as u64 + 4)?;
                if h.len() == n + 4 && h[..n].iter().any(|&b| b != 0) {
                    if adler32(&h[..n]) == le32(&h, n) {
                        set_digest(&mut p.digests, alg, hex(&h[..n]));
                    } else {
                        p.notes
                            .push(format!("the stored {name} fails its checksum: not used"));
                    }
                }
            }
            _ => {}
        }
    }
    match last {
        Some(DONE) => Ok(false),
        Some(NEXT) => Ok(true),
        _ => {
            p.notes.push(format!(
                "segment {} ends without a 'next' or 'done' section: the acquisition may not have finished; no later segment is read",
                idx + 1
            ));
            Ok(false)
        }
    }
}

/// Device information and case data: zlib-compressed UTF-16 text.
fn object_text(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    inflate(raw, 16 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_run_ex01_to_ezzz() {
        assert_eq!(next_segment("a.Ex01").as_deref(), Some("a.Ex02"));
        assert_eq!(next_segment("a.Ex09").as_deref(), Some("a.Ex10"));
        assert_eq!(next_segment("a.Ex99").as_deref(), Some("a.ExAA"));
        assert_eq!(next_segment("a.ExAZ").as_deref(), Some("a.ExBA"));
        assert_eq!(next_segment("a.ExZZ").as_deref(), Some("a.EyAA"));
        assert_eq!(next_segment("a.ezzz"), None);
        assert_eq!(next_segment("a.ex99").as_deref(), Some("a.exaa"));
        assert_eq!(next_segment("a.E01"), None);
    }
}
