//! EWF version 1 (EnCase `.E01`, FTK Imager, ewfacquire), one or more
//! segments, read with our own reader.
//!
//! Why not the `ewf` crate: it reads through `Read + Seek` (one cursor,
//! one thread at a time) with its own chunk cache, while the scan reads
//! many files of one image at once from several threads and needs each
//! damaged chunk reported with its offset; and its repository is archived.
//! This reader is checked against libewf (`pyewf`) in `tests/images`.
//!
//! Layout (libewf's and keramics' format notes): each segment file starts
//! with a 13-byte header (signature, segment number), then a chain of
//! sections, each a 76-byte descriptor (type, offset of the next section,
//! size, Adler-32). `header2`/`header` hold the case metadata
//! (zlib-compressed text), `volume`/`disk` the geometry, `sectors` the
//! chunk data, `table` the offsets of the chunks (the high bit marks a
//! zlib-compressed chunk; an uncompressed one ends with its Adler-32),
//! `hash`/`digest` the MD5/SHA-1 of the media computed at acquisition.
//!
//! Memory: chunk tables are not loaded: each table's place is kept, and a
//! chunk's entry is read when the chunk is. Decompressed chunks are kept
//! in a small sharded cache, so the many small reads of file-system
//! metadata do not inflate a chunk again each time. A read spanning
//! several chunks inflates them in parallel (they are independent).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Cache, Image, ImageError, no_holes};
use crate::source::bytes::{le32, le64};
use crate::source::tree::Source;

/// EWF v1 segment signature.
pub const SIGNATURE: &[u8] = b"EVF\x09\x0d\x0a\xff\x00";
/// EWF v2 (Ex01) segment signature.
pub const SIGNATURE_V2: &[u8] = b"EVF2\x0d\x0a\x81\x00";

const DESCRIPTOR: u64 = 76;
/// Chunks of at most this many bytes: EnCase's largest (32768 sectors of
/// 512 bytes; it offers 64 to 1024). Larger ones are refused, so that the
/// chunk cache stays bounded (16 shards × a chunk, at worst 256 MiB).
pub(super) const MAX_CHUNK: u64 = 32768 * 512;
/// Segments read at most (.E01 … .ZZZ is fewer).
const MAX_SEGMENTS: usize = 20_000;

/// Adler-32 (RFC 1950), as EWF uses for descriptors, tables and chunks.
pub fn adler32(data: &[u8]) -> u32 {
    // SIMD (AVX2/SSSE3, detected at run time) by the crate the `png`
    // decoder already uses; checked against [`adler32_reference`].
    let mut a = simd_adler32::Adler32::new();
    a.write(data);
    a.finish()
}

/// Adler-32 one byte at a time: the reference the fast path is checked
/// against.
#[cfg(test)]
fn adler32_reference(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    // 5552: the most bytes summed before the 32-bit sums can overflow.
    for block in data.chunks(5552) {
        for &x in block {
            a += x as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    b << 16 | a
}

/// One chunk table: where its entries are, and the chunks it covers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Table {
    pub(super) segment: usize,
    pub(super) first_chunk: u64,
    pub(super) count: u64,
    /// File offset of the first entry.
    pub(super) entries_at: u64,
    pub(super) layout: Layout,
}

/// How a table's entries say where a chunk is.
#[derive(Clone, Copy, Debug)]
pub(super) enum Layout {
    /// EWF v1: 4-byte offsets (high bit: compressed); a chunk ends where
    /// the next begins, the last one at its table section's start or end.
    V1 {
        /// Added to every entry's offset (EnCase 6 and later; 0 before).
        base: u64,
        /// Where the table section starts and ends in its file.
        section_start: u64,
        section_end: u64,
    },
    /// EWF v2 (Ex01): 16-byte entries with offset, size and flags
    /// (see [`super::ewf2`]).
    V2,
}

/// The EWF media (v1 or v2): segments, tables and geometry.
pub struct Ewf {
    pub(super) segments: Vec<File>,
    pub(super) tables: Vec<Table>,
    pub(super) chunk_size: u64,
    pub(super) chunks: u64,
    pub(super) size: u64,
    pub(super) cache: Cache,
}

/// The name of the segment after `name` (`x.E01` → `x.E02`, `x.E99` →
/// `x.EAA`, `x.EZZ` → `x.FAA`); case as the first segment's.
fn next_segment(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    let b = ext.as_bytes();
    if b.len() != 3 {
        return None;
    }
    let lower = b[0].is_ascii_lowercase();
    let mut e = ext.to_ascii_uppercase().into_bytes();
    if e[1].is_ascii_digit() && e[2].is_ascii_digit() {
        let n = (e[1] - b'0') * 10 + (e[2] - b'0');
        if n < 99 {
            let n = n + 1;
            e[1] = b'0' + n / 10;
            e[2] = b'0' + n % 10;
        } else {
            e[1] = b'A';
            e[2] = b'A';
        }
    } else if e[2] < b'Z' {
        e[2] += 1;
    } else if e[1] < b'Z' {
        e[1] += 1;
        e[2] = b'A';
    } else if e[0] < b'Z' {
        e[0] += 1;
        e[1] = b'A';
        e[2] = b'A';
    } else {
        return None;
    }
    let mut ext = String::from_utf8(e).ok()?;
    if lower {
        ext = ext.to_ascii_lowercase();
    }
    Some(format!("{stem}.{ext}"))
}

/// What the sections of all segments said.
#[derive(Default)]
struct Parsed {
    tables: Vec<Table>,
    chunk_size: u64,
    chunks: u64,
    size: u64,
    metadata: Vec<(String, String)>,
    digests: Vec<(String, String)>,
    notes: Vec<String>,
    done: bool,
}

/// Opens the EWF image whose first segment is `path` (open as `first`),
/// with every segment after it.
pub fn open(path: &Path, first: File) -> Result<Image, ImageError> {
    let fmt = |p: &Path, m: String| ImageError::Format(p.to_path_buf(), m);
    let mut files = vec![(path.to_path_buf(), first)];
    let mut parsed = Parsed::default();
    let mut next_chunk = 0u64;
    loop {
        let idx = files.len() - 1;
        let (p, f) = &files[idx];
        let number = segment_number(f).map_err(|e| ImageError::Io(p.clone(), e))?;
        if number as usize != idx + 1 {
            return Err(fmt(
                p,
                format!(
                    "segment file number {number} where segment {} was expected: give the first segment (.E01), and keep every segment beside it",
                    idx + 1
                ),
            ));
        }
        let more = sections(idx, f, &mut parsed, &mut next_chunk).map_err(|e| fmt(p, e))?;
        if !more {
            break;
        }
        let next = open_next(p, next_segment, files.len())?;
        files.push(next);
    }
    if parsed.chunk_size == 0 {
        return Err(fmt(
            path,
            "no volume section: the image's geometry is missing".into(),
        ));
    }
    if next_chunk < parsed.chunks {
        parsed.notes.push(format!(
            "the chunk tables list {next_chunk} of the {} chunks the volume section announces: bytes past {} read as an error",
            parsed.chunks,
            next_chunk * parsed.chunk_size
        ));
    }
    if !parsed.done {
        parsed.notes.push(
            "the last segment has no 'done' section: the acquisition may not have finished".into(),
        );
    }
    let (segments, handles) = sizes(files)?;
    let ewf = Ewf {
        segments: handles,
        tables: parsed.tables,
        chunk_size: parsed.chunk_size,
        chunks: next_chunk.min(parsed.chunks),
        size: parsed.size,
        cache: Default::default(),
    };
    Ok(Image {
        format: "ewf",
        size: ewf.size,
        media: Arc::new(ewf),
        segments,
        metadata: parsed.metadata,
        stored_digests: parsed.digests,
        notes: parsed.notes,
    })
}

/// Opens the segment after `p` (of `have` opened so far), named by
/// `next_name`; a missing one is named in the error.
pub(super) fn open_next(
    p: &Path,
    next_name: fn(&str) -> Option<String>,
    have: usize,
) -> Result<(PathBuf, File), ImageError> {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let next = next_name(name)
        .map(|n| p.with_file_name(n))
        .filter(|_| have < MAX_SEGMENTS)
        .ok_or_else(|| {
            ImageError::Format(p.to_path_buf(), "no name for the next segment".into())
        })?;
    let f = super::open_image_file(&next).map_err(|e| {
        ImageError::Io(
            next.clone(),
            io::Error::new(
                e.kind(),
                format!("{e}; segment {} of the image is missing", have + 1),
            ),
        )
    })?;
    Ok((next, f))
}

/// The segments' paths with their sizes, and their handles.
pub(super) type Segments = (Vec<(PathBuf, u64)>, Vec<File>);

/// Splits opened segments into (path, size) and handles.
pub(super) fn sizes(files: Vec<(PathBuf, File)>) -> Result<Segments, ImageError> {
    let mut segments = Vec::with_capacity(files.len());
    let mut handles = Vec::with_capacity(files.len());
    for (p, f) in files {
        let len = f
            .metadata()
            .map_err(|e| ImageError::Io(p.clone(), e))?
            .len();
        segments.push((p, len));
        handles.push(f);
    }
    Ok((segments, handles))
}

fn segment_number(f: &File) -> io::Result<u16> {
    let mut h = [0u8; 13];
    f.read_exact_at(&mut h, 0)?;
    if &h[..8] != SIGNATURE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an EWF segment (no EVF signature)",
        ));
    }
    Ok(u16::from_le_bytes([h[9], h[10]]))
}

/// Reads the section chain of segment `idx`. Returns whether another
/// segment follows (`next`) or the image ends here (`done`).
fn sections(idx: usize, f: &File, p: &mut Parsed, next_chunk: &mut u64) -> Result<bool, String> {
    let file_len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut at = 13u64;
    let mut pending_table_checksum_note = false;
    loop {
        if at + DESCRIPTOR > file_len {
            return Err(format!(
                "segment {} ends inside a section descriptor at byte {at}: the file is truncated",
                idx + 1
            ));
        }
        let mut d = [0u8; 76];
        f.read_exact_at(&mut d, at).map_err(|e| e.to_string())?;
        if adler32(&d[..72]) != le32(&d, 72) {
            return Err(format!(
                "segment {}: the section descriptor at byte {at} fails its checksum: the file is damaged",
                idx + 1
            ));
        }
        let kind_end = d[..16].iter().position(|&b| b == 0).unwrap_or(16);
        let kind = String::from_utf8_lossy(&d[..kind_end]).into_owned();
        let next = le64(&d, 16);
        let size = le64(&d, 24);
        let data_at = at + DESCRIPTOR;
        let data_len = if size >= DESCRIPTOR {
            (size - DESCRIPTOR).min(file_len.saturating_sub(data_at))
        } else {
            next.saturating_sub(data_at)
                .min(file_len.saturating_sub(data_at))
        };
        let read = |n: u64| -> Result<Vec<u8>, String> {
            let n = n.min(data_len).min(64 << 20);
            let mut v = vec![0u8; n as usize];
            f.read_exact_at(&mut v, data_at)
                .map_err(|e| e.to_string())?;
            Ok(v)
        };
        match kind.as_str() {
            "header2" | "header" if p.metadata.is_empty() => {
                let raw = read(data_len)?;
                match inflate(&raw, 16 << 20) {
                    Ok(text) => p.metadata = header_values(&text, kind == "header2"),
                    Err(e) => p.notes.push(format!("the {kind} section cannot be read: {e}")),
                }
            }
            "volume" | "disk" if p.chunk_size == 0 => {
                let v = read(94)?;
                if v.len() < 24 {
                    return Err("the volume section is too short".into());
                }
                let chunks = le32(&v, 4) as u64;
                let spc = le32(&v, 8) as u64;
                let bps = le32(&v, 12) as u64;
                let sectors = le64(&v, 16);
                let chunk = spc * bps;
                if chunk == 0 || chunk > MAX_CHUNK || bps > 4096 {
                    return Err(format!(
                        "the volume section gives {spc} sectors of {bps} bytes per chunk: impossible, or chunks over 16 MiB (EnCase's largest), which are not read"
                    ));
                }
                p.chunk_size = chunk;
                p.chunks = chunks;
                p.size = sectors.saturating_mul(bps);
                if p.size.div_ceil(chunk) > chunks {
                    return Err(format!(
                        "the volume section gives {sectors} sectors but only {chunks} chunks of {chunk} bytes"
                    ));
                }
            }
            "table" => {
                let h = read(24)?;
                if h.len() < 24 {
                    return Err(format!("the table section at byte {at} is too short"));
                }
                let count = le32(&h, 0) as u64;
                let base = le64(&h, 8);
                if adler32(&h[..20]) != le32(&h, 20) {
                    pending_table_checksum_note = true;
                }
                if 24 + count * 4 > data_len {
                    return Err(format!(
                        "the table at byte {at} lists {count} chunks, more than its section holds"
                    ));
                }
                p.tables.push(Table {
                    segment: idx,
                    first_chunk: *next_chunk,
                    count,
                    entries_at: data_at + 24,
                    layout: Layout::V1 {
                        base,
                        section_start: at,
                        section_end: data_at + data_len,
                    },
                });
                *next_chunk += count;
            }
            "hash" => {
                let h = read(16)?;
                if h.len() == 16 && h.iter().any(|&b| b != 0) {
                    set_digest(&mut p.digests, "md5", hex(&h));
                }
            }
            "digest" => {
                let h = read(36)?;
                if h.len() == 36 {
                    if h[..16].iter().any(|&b| b != 0) {
                        set_digest(&mut p.digests, "md5", hex(&h[..16]));
                    }
                    if h[16..36].iter().any(|&b| b != 0) {
                        set_digest(&mut p.digests, "sha1", hex(&h[16..36]));
                    }
                }
            }
            "error2" => p.notes.push(
                "the image records read errors at acquisition (error2 section): those sectors hold what the imager wrote in their place".into(),
            ),
            "done" => {
                p.done = true;
                if pending_table_checksum_note {
                    p.notes.push("a chunk table header fails its checksum".into());
                }
                return Ok(false);
            }
            "next" => return Ok(true),
            _ => {}
        }
        if next <= at {
            // Only 'done' and 'next' may point at themselves.
            return Err(format!(
                "segment {}: section '{kind}' at byte {at} points back to byte {next}: the chain is damaged",
                idx + 1
            ));
        }
        at = next;
    }
}

pub(super) fn set_digest(d: &mut Vec<(String, String)>, alg: &str, value: String) {
    d.retain(|(a, _)| a != alg);
    d.push((alg.to_string(), value));
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// zlib-inflates `raw`, refusing more than `max` bytes out.
pub(super) fn inflate(raw: &[u8], max: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(raw)
        .take(max as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "inflates past its limit",
        ));
    }
    Ok(out)
}

/// The values of the `main` category, named as the log names them.
fn header_values(text: &[u8], utf16: bool) -> Vec<(String, String)> {
    let label = |k: &str| -> Option<&'static str> {
        Some(match k {
            "a" => "description",
            "c" => "case_number",
            "n" => "evidence_number",
            "e" => "examiner",
            "t" => "notes",
            "av" => "acquisition_software_version",
            "ov" => "acquisition_os",
            "m" => "acquisition_date",
            "u" => "system_date",
            "md" => "model",
            "sn" => "serial_number",
            "l" => "device_label",
            _ => return None,
        })
    };
    main_category(text, utf16)
        .into_iter()
        .filter_map(|(k, v)| Some((label(&k)?.to_string(), v)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The (tag, value) pairs of the `main` category of EWF's object text
/// (v1 `header`/`header2`, v2 device information and case data): the
/// line after `main` names the tags, the next holds the values, both
/// tab-separated. UTF-16 text may start with a byte-order mark; v2's
/// escapes (U+0001..U+0003 for line feed, carriage return, tab) are
/// undone in the values.
pub(super) fn main_category(text: &[u8], utf16: bool) -> Vec<(String, String)> {
    let s = if utf16 {
        let start = if text.starts_with(&[0xFF, 0xFE]) {
            2
        } else {
            0
        };
        let units: Vec<u16> = text[start..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(text).into_owned()
    };
    let lines: Vec<&str> = s.lines().map(|l| l.trim_end_matches('\r')).collect();
    let Some(main) = lines.iter().position(|l| *l == "main") else {
        return Vec::new();
    };
    let (Some(names), Some(values)) = (lines.get(main + 1), lines.get(main + 2)) else {
        return Vec::new();
    };
    let unescape = |v: &str| -> String {
        v.chars()
            .map(|c| match c {
                '\u{1}' => '\n',
                '\u{2}' => '\r',
                '\u{3}' => '\t',
                c => c,
            })
            .collect()
    };
    names
        .split('\t')
        .zip(values.split('\t'))
        .map(|(k, v)| (k.to_string(), unescape(v)))
        .collect()
}

impl Ewf {
    fn damaged(&self, chunk: u64, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "EWF chunk {chunk} (media bytes {}..{}) {what}",
                chunk * self.chunk_size,
                ((chunk + 1) * self.chunk_size).min(self.size)
            ),
        )
    }

    /// The bytes of chunk `n`, decompressed and checked.
    fn chunk(&self, n: u64) -> io::Result<Arc<[u8]>> {
        self.cache.get(n, || self.load(n))
    }

    fn load(&self, n: u64) -> io::Result<Vec<u8>> {
        if n >= self.chunks {
            return Err(self.damaged(n, "is not in the image's chunk tables"));
        }
        let t = self.tables[self.tables.partition_point(|t| t.first_chunk <= n) - 1];
        let i = n - t.first_chunk;
        let file = &self.segments[t.segment];
        let want = (self.size - n * self.chunk_size).min(self.chunk_size) as usize;
        let (start, end, stored_as) = match t.layout {
            Layout::V1 {
                base,
                section_start,
                section_end,
            } => {
                let mut e = [0u8; 8];
                let pair = if i + 1 < t.count { 8 } else { 4 };
                file.read_exact_at(&mut e[..pair], t.entries_at + i * 4)?;
                let raw = le32(&e, 0);
                let start = base.saturating_add((raw & 0x7FFF_FFFF) as u64);
                let end = if pair == 8 {
                    base.saturating_add((le32(&e, 4) & 0x7FFF_FFFF) as u64)
                } else if start < section_start {
                    section_start
                } else {
                    section_end
                };
                let stored_as = if raw & 0x8000_0000 != 0 {
                    Stored::Zlib
                } else {
                    Stored::Checksummed
                };
                (start, end, stored_as)
            }
            Layout::V2 => {
                let mut e = [0u8; 16];
                file.read_exact_at(&mut e, t.entries_at + i * 16)?;
                match v2_entry(&e) {
                    V2Entry::Pattern(p) => {
                        return Ok(p.iter().copied().cycle().take(want).collect());
                    }
                    V2Entry::Stored { at, size, stored } => (at, at.saturating_add(size), stored),
                }
            }
        };
        if end <= start || end - start > self.chunk_size + 4096 {
            return Err(self.damaged(n, "has an impossible place in its segment file"));
        }
        let mut stored = vec![0u8; (end - start) as usize];
        let got = read_full(file, &mut stored, start)?;
        stored.truncate(got);
        match stored_as {
            Stored::Zlib => {
                let mut out = Vec::with_capacity(want);
                let mut z = flate2::Decompress::new(true);
                let status = z
                    .decompress_vec(&stored, &mut out, flate2::FlushDecompress::Finish)
                    .map_err(|e| self.damaged(n, &format!("cannot be decompressed ({e})")))?;
                if status != flate2::Status::StreamEnd || out.len() < want {
                    return Err(self.damaged(n, "is truncated or fails its checksum"));
                }
                out.truncate(want);
                Ok(out)
            }
            Stored::Checksummed => {
                if stored.len() < want + 4 {
                    return Err(self.damaged(n, "is shorter than a chunk"));
                }
                let sum = le32(&stored, want);
                stored.truncate(want);
                if adler32(&stored) != sum {
                    return Err(self.damaged(n, "fails its Adler-32 checksum"));
                }
                Ok(stored)
            }
            Stored::Plain => {
                if stored.len() < want {
                    return Err(self.damaged(n, "is shorter than a chunk"));
                }
                stored.truncate(want);
                Ok(stored)
            }
        }
    }
}

// Chunk flags in a sector table entry.
const COMPRESSED: u32 = 0x1;
const CHECKSUMMED: u32 = 0x2;
const PATTERN_FILL: u32 = 0x4;

/// Where an EWF v2 sector table entry says a chunk is.
pub(super) enum V2Entry {
    /// The chunk is this 8-byte pattern repeated.
    Pattern([u8; 8]),
    /// The chunk's bytes are at `at` in the segment file, `size` bytes
    /// (with the Adler-32 when checksummed), stored so.
    Stored { at: u64, size: u64, stored: Stored },
}

/// Decodes a 16-byte EWF v2 sector table entry. A pattern fill counts only with
/// the compressed flag (keramics' reading of EnCase's files; libewf writes
/// them so).
pub(super) fn v2_entry(e: &[u8; 16]) -> V2Entry {
    let flags = le32(e, 12);
    if flags & (COMPRESSED | PATTERN_FILL) == COMPRESSED | PATTERN_FILL {
        let mut p = [0u8; 8];
        p.copy_from_slice(&e[..8]);
        return V2Entry::Pattern(p);
    }
    let stored = if flags & COMPRESSED != 0 {
        Stored::Zlib
    } else if flags & CHECKSUMMED != 0 {
        Stored::Checksummed
    } else {
        Stored::Plain
    };
    V2Entry::Stored {
        at: le64(e, 0),
        size: le32(e, 8) as u64,
        stored,
    }
}

/// How a chunk's bytes are stored in its segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stored {
    /// zlib stream (its own Adler-32 checks it).
    Zlib,
    /// The bytes, then their Adler-32.
    Checksummed,
    /// The bytes alone (EWF v2 without the CHECKSUMED flag).
    Plain,
}

fn read_full(f: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match FileExt::read_at(f, &mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl Source for Ewf {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.size - offset) as usize;
        let buf = &mut buf[..n];
        let first = offset / self.chunk_size;
        let last = (offset + n as u64 - 1) / self.chunk_size;
        let copy = |k: u64, data: &[u8], out: &mut [u8], out_at: u64| {
            let chunk_start = k * self.chunk_size;
            let from = out_at.max(chunk_start) - chunk_start;
            let len = out.len().min(data.len().saturating_sub(from as usize));
            out[..len].copy_from_slice(&data[from as usize..from as usize + len]);
            len
        };
        if last - first < 3 {
            let mut done = 0;
            for k in first..=last {
                let data = self.chunk(k)?;
                let at = offset + done as u64;
                done += copy(k, &data, &mut buf[done..], at);
            }
            return Ok(done);
        }
        // Several chunks: inflate them in parallel, then copy in order.
        // The first error (lowest chunk) is the one reported.
        use rayon::prelude::*;
        let loaded: Vec<io::Result<Vec<u8>>> = (first..=last)
            .into_par_iter()
            .map(|k| self.load(k))
            .collect();
        let mut done = 0;
        for (k, data) in (first..=last).zip(loaded) {
            let data = data?;
            let at = offset + done as u64;
            done += copy(k, &data, &mut buf[done..], at);
        }
        Ok(done)
    }
    no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_fast_path_equals_the_reference() {
        // Lengths around the SIMD widths and the 5552-byte reduction
        // blocks, every byte value, and runs of 0xFF (largest sums).
        let mut data = Vec::new();
        let mut x = 0x9E37_79B9u32;
        for _ in 0..70_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            data.push((x >> 24) as u8);
        }
        for len in (0..200).chain([5551, 5552, 5553, 11104, 32768, 65536, 70_000]) {
            assert_eq!(
                adler32(&data[..len]),
                adler32_reference(&data[..len]),
                "{len}"
            );
            let ones = vec![0xFFu8; len];
            assert_eq!(adler32(&ones), adler32_reference(&ones), "0xFF × {len}");
        }
        for start in 1..64 {
            let d = &data[start..start + 4099];
            assert_eq!(adler32(d), adler32_reference(d), "offset {start}");
        }
    }

    #[test]
    fn adler32_matches_rfc1950_examples() {
        // Wikipedia's (and zlib's) worked example.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
        // Long input: the deferred modulo must not overflow.
        let big = vec![0xFFu8; 1 << 20];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + x as u64) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(adler32(&big), (b << 16 | a) as u32);
    }

    #[test]
    fn segment_names_run_e01_to_zzz() {
        assert_eq!(next_segment("a.E01").as_deref(), Some("a.E02"));
        assert_eq!(next_segment("a.E99").as_deref(), Some("a.EAA"));
        assert_eq!(next_segment("a.EAZ").as_deref(), Some("a.EBA"));
        assert_eq!(next_segment("a.EZZ").as_deref(), Some("a.FAA"));
        assert_eq!(next_segment("a.e09").as_deref(), Some("a.e10"));
        assert_eq!(next_segment("a.ZZZ"), None);
    }

    #[test]
    fn header_values_of_the_main_category() {
        let text = b"1\r\nmain\r\nc\tn\ta\te\tt\tav\tov\tm\tu\tp\r\ncase\tevidence\tdesc\texaminer\tnotes\t20190424\tLinux\t2019 4 24 7 26 39\t2019 4 24 7 26 39\t0\r\n\r\n";
        let v = header_values(text, false);
        assert!(v.contains(&("case_number".into(), "case".into())));
        assert!(v.contains(&("examiner".into(), "examiner".into())));
        assert!(v.contains(&("acquisition_date".into(), "2019 4 24 7 26 39".into())));
    }

    #[test]
    fn entries_decode_their_flags() {
        let mut e = [0u8; 16];
        e[..8].copy_from_slice(b"ABCDEFGH");
        e[8] = 8;
        e[12] = (COMPRESSED | PATTERN_FILL) as u8;
        assert!(matches!(v2_entry(&e), V2Entry::Pattern(p) if &p == b"ABCDEFGH"));
        // A pattern flag without the compressed flag is ignored.
        e[12] = PATTERN_FILL as u8;
        assert!(matches!(
            v2_entry(&e),
            V2Entry::Stored {
                stored: Stored::Plain,
                ..
            }
        ));
        e[12] = CHECKSUMMED as u8;
        assert!(matches!(
            v2_entry(&e),
            V2Entry::Stored {
                size: 8,
                stored: Stored::Checksummed,
                ..
            }
        ));
        e[12] = COMPRESSED as u8;
        assert!(matches!(
            v2_entry(&e),
            V2Entry::Stored {
                stored: Stored::Zlib,
                ..
            }
        ));
    }
}
