//! 7z archives, read by our own header parser (laid out in 7-Zip's
//! `7zFormat.txt`) over the decoders `codecs.rs` already bounds, plus
//! lzma-rust2's LZMA2, BCJ (x86, ARM, ARM64, ARM Thumb, PowerPC, SPARC,
//! IA-64, RISC-V), BCJ2 and Delta filters.
//!
//! Why not a crate: `sevenz-rust2` sizes its buffers from the header's
//! counts before checking them (a few bytes declaring a billion files
//! allocate them), so a hostile archive could exhaust memory. Here every
//! count is bounded by the bytes that must hold it, the header by
//! [`MAX_HEADER`], the members by `--max-members`.
//!
//! A 7z holds *folders* (7-Zip's word; "blocks"): one chain of coders
//! over packed streams, whose output is the concatenated content of one
//! or more files (a solid block). Every member of a folder is a window of
//! one shared decoder ([`Decoded::shared`]), so a solid block's members,
//! read in order, are decompressed once. Each member's CRC-32 (the
//! header's) is recorded beside the one computed. An encrypted folder's
//! members are recorded `encrypted`; an encrypted header (`7z -mhe`),
//! which hides the names too, fails the listing saying so; a method not
//! decoded here (PPMd, zstd and others of 7-Zip forks) fails its members
//! naming it. Directory and anti (deletion marker) entries are not items.

use std::io::{self, Read};
use std::sync::Arc;

use super::codecs::{self, Decoder, MAX_WINDOW};
use super::stream::{Decoded, Reader, Slice};
use super::{Body, Budget, Member, Members, damaged, member_meta};
use crate::item::SkipReason;
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::read_exact;

/// The signature every 7z starts with.
const SIGNATURE: &[u8; 6] = b"7z\xBC\xAF\x27\x1C";

/// The largest header read (after decoding, for an encoded one): 7-Zip's
/// header for a million files is some tens of MiB.
const MAX_HEADER: u64 = 64 << 20;

/// Coders one folder may chain (7-Zip writes at most four: BCJ2 and the
/// three LZMA streams feeding it).
const MAX_CODERS: usize = 8;

/// A coder of a folder: its method and properties, and its inputs (every
/// 7-Zip decoder has one output).
#[derive(Clone, Debug)]
struct Coder {
    id: Vec<u8>,
    ins: usize,
    props: Vec<u8>,
}

/// A folder: its coders, which coder input reads which coder's output
/// (`binds`: input index, output index = coder index), which inputs read
/// packed streams (in the order of the folder's packed streams), and each
/// coder's output size.
#[derive(Clone, Debug)]
struct Folder {
    coders: Vec<Coder>,
    binds: Vec<(usize, usize)>,
    packed: Vec<usize>,
    sizes: Vec<u64>,
    crc: Option<u32>,
    /// The coder whose output is the folder's content.
    main: usize,
    /// Where its packed streams lie in the file, and their sizes.
    packs: Vec<(u64, u64)>,
}

impl Folder {
    fn size(&self) -> u64 {
        self.sizes[self.main]
    }
}

/// A file's data: a window of a folder's output.
#[derive(Clone, Copy, Debug)]
struct Sub {
    folder: usize,
    offset: u64,
    size: u64,
    crc: Option<u32>,
}

/// What the header says of one file.
#[derive(Debug, Default, Clone)]
struct File {
    name: Vec<u8>,
    has_stream: bool,
    /// Empty-stream entries: a file (not a directory) of no bytes.
    empty_file: bool,
    anti: bool,
    mtime: Option<u64>,
    attrib: Option<u32>,
}

/// A header's streams: where the packed bytes lie, the folders over
/// them, and the files' windows of those folders.
#[derive(Debug, Default)]
struct Streams {
    pack_pos: u64,
    pack_sizes: Vec<u64>,
    folders: Vec<Folder>,
    subs: Vec<Sub>,
}

/// Reads the header's bytes in order, every count checked against the
/// bytes left.
struct Cursor<'h> {
    b: &'h [u8],
    at: usize,
}

fn bad(what: impl Into<String>) -> String {
    format!("its header is damaged: {}", what.into())
}

impl<'h> Cursor<'h> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }
    fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.at).ok_or_else(|| bad("it ends early"))?;
        self.at += 1;
        Ok(v)
    }
    fn take(&mut self, n: u64) -> Result<&'h [u8], String> {
        if n > self.left() as u64 {
            return Err(bad(format!("a field of {n} bytes runs past its end")));
        }
        let s = &self.b[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// 7z's variable-length number: the first byte's leading one bits
    /// count the little-endian bytes that follow; its other bits are the
    /// value's top.
    fn num(&mut self) -> Result<u64, String> {
        let first = self.byte()?;
        let extra = first.leading_ones() as usize;
        let mut v = 0u64;
        for i in 0..extra {
            v |= (self.byte()? as u64) << (8 * i);
        }
        if extra < 8 {
            let high = (first as u64) & ((1u64 << (7 - extra)) - 1);
            v |= high << (8 * extra);
        }
        Ok(v)
    }
    /// A count of things that take at least `each` bytes (or bits, with
    /// `each` 0: an eighth of a byte) still to come.
    fn count(&mut self, what: &str, each: usize) -> Result<usize, String> {
        let n = self.num()?;
        let room = match self.left().checked_div(each) {
            Some(r) => r as u64,
            None => self.left() as u64 * 8,
        };
        if n > room {
            return Err(bad(format!(
                "it counts {n} {what}, more than its remaining {} bytes can hold",
                self.left()
            )));
        }
        Ok(n as usize)
    }
    /// `n` bits, the first in the first byte's top bit.
    fn bits(&mut self, n: usize) -> Result<Bits<'h>, String> {
        Ok(Bits {
            b: Some(self.take(n.div_ceil(8) as u64)?),
            n,
        })
    }
    /// A byte saying all `n` are defined, or the bits saying which are.
    fn defined(&mut self, n: usize) -> Result<Bits<'h>, String> {
        if self.byte()? != 0 {
            Ok(Bits { b: None, n })
        } else {
            self.bits(n)
        }
    }
    fn expect(&mut self, id: u8, what: &str) -> Result<(), String> {
        let got = self.byte()?;
        if got != id {
            return Err(bad(format!(
                "expected {what} (0x{id:02x}), found 0x{got:02x}"
            )));
        }
        Ok(())
    }
}

/// A bit field of the header, read where it lies (never expanded: its
/// length is the header's to choose). `b: None`: all set.
#[derive(Clone, Copy)]
struct Bits<'h> {
    b: Option<&'h [u8]>,
    n: usize,
}

impl Bits<'_> {
    fn get(&self, i: usize) -> bool {
        i < self.n && self.b.is_none_or(|b| b[i / 8] & (0x80 >> (i % 8)) != 0)
    }
    fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.n).map(|i| self.get(i))
    }
    fn ones(&self) -> usize {
        match self.b {
            None => self.n,
            Some(_) => self.iter().filter(|&b| b).count(),
        }
    }
}

/// The property identifiers of `7zFormat.txt`.
mod id {
    pub const END: u8 = 0x00;
    pub const HEADER: u8 = 0x01;
    pub const ARCHIVE_PROPERTIES: u8 = 0x02;
    pub const ADDITIONAL_STREAMS: u8 = 0x03;
    pub const MAIN_STREAMS: u8 = 0x04;
    pub const FILES: u8 = 0x05;
    pub const PACK_INFO: u8 = 0x06;
    pub const UNPACK_INFO: u8 = 0x07;
    pub const SUBSTREAMS: u8 = 0x08;
    pub const SIZE: u8 = 0x09;
    pub const CRC: u8 = 0x0A;
    pub const FOLDER: u8 = 0x0B;
    pub const UNPACK_SIZE: u8 = 0x0C;
    pub const NUM_UNPACK_STREAM: u8 = 0x0D;
    pub const EMPTY_STREAM: u8 = 0x0E;
    pub const EMPTY_FILE: u8 = 0x0F;
    pub const ANTI: u8 = 0x10;
    pub const NAME: u8 = 0x11;
    pub const MTIME: u8 = 0x14;
    pub const ATTRIBUTES: u8 = 0x15;
    pub const ENCODED_HEADER: u8 = 0x17;
}

/// CRC-32 digests of `n` things, those the header defines; the first
/// `keep` kept.
fn digests(c: &mut Cursor<'_>, n: usize, keep: usize) -> Result<Vec<Option<u32>>, String> {
    let defined = c.defined(n)?;
    let mut out = Vec::with_capacity(n.min(keep));
    for d in defined.iter() {
        let v = if d { Some(c.u32()?) } else { None };
        if out.len() < keep {
            out.push(v);
        }
    }
    Ok(out)
}

fn pack_info(c: &mut Cursor<'_>, s: &mut Streams, keep: usize) -> Result<(), String> {
    s.pack_pos = c.num()?;
    let n = c.count("packed streams", 1)?;
    if n > 4 * keep + 4 {
        return Err(too_many(n, "packed streams", keep));
    }
    s.pack_sizes = vec![0; n];
    loop {
        match c.byte()? {
            id::END => return Ok(()),
            id::SIZE => {
                for v in s.pack_sizes.iter_mut() {
                    *v = c.num()?;
                }
            }
            id::CRC => {
                digests(c, n, 0)?;
            }
            other => return Err(bad(format!("unknown pack property 0x{other:02x}"))),
        }
    }
}

fn folder(c: &mut Cursor<'_>) -> Result<Folder, String> {
    let n = c.count("coders", 2)?;
    if n == 0 || n > MAX_CODERS {
        return Err(bad(format!("a folder of {n} coders")));
    }
    let mut coders = Vec::with_capacity(n);
    for _ in 0..n {
        let flags = c.byte()?;
        if flags & 0x80 != 0 {
            return Err(bad(
                "a coder with alternative methods (never written by 7-Zip)",
            ));
        }
        let id = c.take((flags & 0x0F) as u64)?.to_vec();
        let (ins, outs) = if flags & 0x10 != 0 {
            (c.num()?, c.num()?)
        } else {
            (1, 1)
        };
        if outs != 1 || ins == 0 || ins > 4 {
            return Err(bad(format!("a coder of {ins} inputs and {outs} outputs")));
        }
        let props = if flags & 0x20 != 0 {
            let len = c.num()?;
            c.take(len)?.to_vec()
        } else {
            Vec::new()
        };
        coders.push(Coder {
            id,
            ins: ins as usize,
            props,
        });
    }
    let ins: usize = coders.iter().map(|c| c.ins).sum();
    let mut binds = Vec::with_capacity(n - 1);
    for _ in 0..n - 1 {
        let (i, o) = (c.num()?, c.num()?);
        if i >= ins as u64
            || o >= n as u64
            || binds
                .iter()
                .any(|&(bi, bo)| bi == i as usize || bo == o as usize)
        {
            return Err(bad(
                "a folder binds its coders' streams out of range or twice",
            ));
        }
        binds.push((i as usize, o as usize));
    }
    let packed_n = ins - binds.len();
    let packed = if packed_n == 1 {
        let free = (0..ins).find(|i| binds.iter().all(|&(b, _)| b != *i));
        vec![free.ok_or_else(|| bad("a folder with no input left for its packed stream"))?]
    } else {
        let mut p = Vec::with_capacity(packed_n);
        for _ in 0..packed_n {
            let i = c.num()?;
            if i >= ins as u64 || binds.iter().any(|&(b, _)| b as u64 == i) {
                return Err(bad("a folder's packed stream feeds a bound input"));
            }
            p.push(i as usize);
        }
        p
    };
    // The content is the output no coder reads.
    let main = (0..n)
        .find(|o| binds.iter().all(|&(_, b)| b != *o))
        .ok_or_else(|| bad("a folder whose every output is bound"))?;
    Ok(Folder {
        coders,
        binds,
        packed,
        sizes: Vec::new(),
        crc: None,
        main,
        packs: Vec::new(),
    })
}

/// More of something than the members limit lets the header describe.
fn too_many(n: usize, what: &str, keep: usize) -> String {
    format!(
        "it lists {n} {what}, more than the {keep} members one container may have (--max-members)"
    )
}

fn unpack_info(c: &mut Cursor<'_>, s: &mut Streams, keep: usize) -> Result<(), String> {
    c.expect(id::FOLDER, "the folder list")?;
    let n = c.count("folders", 2)?;
    if n > keep.max(1) {
        return Err(too_many(n, "folders", keep));
    }
    if c.byte()? != 0 {
        return Err(bad(
            "folders kept outside the header (never written by 7-Zip)",
        ));
    }
    s.folders = (0..n).map(|_| folder(c)).collect::<Result<_, _>>()?;
    c.expect(id::UNPACK_SIZE, "the folders' sizes")?;
    for f in s.folders.iter_mut() {
        f.sizes = (0..f.coders.len())
            .map(|_| c.num())
            .collect::<Result<_, _>>()?;
    }
    loop {
        match c.byte()? {
            id::END => return Ok(()),
            id::CRC => {
                for (f, d) in s.folders.iter_mut().zip(digests(c, n, n)?) {
                    f.crc = d;
                }
            }
            other => return Err(bad(format!("unknown folder property 0x{other:02x}"))),
        }
    }
}

fn substreams(c: &mut Cursor<'_>, s: &mut Streams, keep: usize) -> Result<(), String> {
    let mut counts = vec![1u64; s.folders.len()];
    let mut id = c.byte()?;
    if id == id::NUM_UNPACK_STREAM {
        for n in counts.iter_mut() {
            *n = c.num()?;
        }
        id = c.byte()?;
    }
    // Each folder's files: sizes for all but its last (the rest of the
    // folder), one byte at least each, so the bytes bound them. Only the
    // first `keep` files are kept.
    let have_sizes = id == id::SIZE;
    s.subs.clear();
    let mut total = 0u64;
    for (fi, (f, &n)) in s.folders.iter().zip(&counts).enumerate() {
        if n == 0 {
            continue;
        }
        if n > 1 && !have_sizes {
            return Err(bad("a folder of several files without their sizes"));
        }
        if n - 1 > c.left() as u64 {
            return Err(bad(format!(
                "a folder of {n} files, more than its header can size"
            )));
        }
        let mut offset = 0u64;
        for k in 0..n {
            let size = if k + 1 < n {
                c.num()?
            } else {
                f.size()
                    .checked_sub(offset)
                    .ok_or_else(|| bad("a folder's files are larger than the folder"))?
            };
            if s.subs.len() < keep {
                s.subs.push(Sub {
                    folder: fi,
                    offset,
                    size,
                    crc: None,
                });
            }
            offset = offset
                .checked_add(size)
                .ok_or_else(|| bad("file sizes overflow"))?;
        }
        total += n;
    }
    if have_sizes {
        id = c.byte()?;
    }
    // Files whose CRC is not the folder's (a folder of one file with a
    // CRC gives it) have theirs here, in order.
    let own = |fi: usize| counts[fi] == 1 && s.folders[fi].crc.is_some();
    let unknown = total as usize - (0..s.folders.len()).filter(|&fi| own(fi)).count();
    let mut crcs: Vec<Option<u32>> = Vec::new();
    loop {
        match id {
            id::END => break,
            id::CRC => crcs = digests(c, unknown, keep)?,
            other => return Err(bad(format!("unknown substream property 0x{other:02x}"))),
        }
        id = c.byte()?;
    }
    let mut crcs = crcs.into_iter();
    for sub in s.subs.iter_mut() {
        sub.crc = if own(sub.folder) {
            s.folders[sub.folder].crc
        } else {
            crcs.next().flatten()
        };
    }
    Ok(())
}

/// A `StreamsInfo` block, its folders placed in the file (`size` bytes).
fn streams(c: &mut Cursor<'_>, size: u64, keep: usize) -> Result<Streams, String> {
    let mut s = Streams::default();
    let mut seen_subs = false;
    loop {
        match c.byte()? {
            id::END => break,
            id::PACK_INFO => pack_info(c, &mut s, keep)?,
            id::UNPACK_INFO => unpack_info(c, &mut s, keep)?,
            id::SUBSTREAMS => {
                substreams(c, &mut s, keep)?;
                seen_subs = true;
            }
            other => return Err(bad(format!("unknown streams property 0x{other:02x}"))),
        }
    }
    if !seen_subs {
        s.subs = s
            .folders
            .iter()
            .enumerate()
            .take(keep)
            .map(|(i, f)| Sub {
                folder: i,
                offset: 0,
                size: f.size(),
                crc: f.crc,
            })
            .collect();
    }
    // Place each folder's packed streams, in order, after the signature
    // header; they must lie inside the file.
    let mut at = 32u64
        .checked_add(s.pack_pos)
        .ok_or_else(|| bad("its packed data's position overflows"))?;
    let mut next = 0usize;
    for f in s.folders.iter_mut() {
        for _ in 0..f.packed.len() {
            let len = *s
                .pack_sizes
                .get(next)
                .ok_or_else(|| bad("its folders read more packed streams than it lists"))?;
            let end = at.checked_add(len).filter(|&e| e <= size).ok_or_else(|| {
                bad(format!(
                    "a packed stream at byte {at} of {len} bytes runs past the file's end ({size})"
                ))
            })?;
            f.packs.push((at, len));
            at = end;
            next += 1;
        }
    }
    Ok(s)
}

/// Names: UTF-16LE, each ended by a NUL, as bytes of (generalized)
/// UTF-8: an unpaired surrogate is kept as its three-byte form, so no
/// name is changed or merged with another.
/// The first `keep` are kept; all `n` must be there.
fn names(b: &[u8], n: usize, keep: usize) -> Result<Vec<Vec<u8>>, String> {
    let units = b.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]]));
    let mut out = Vec::with_capacity(n.min(keep).min(b.len() / 2));
    let mut seen = 0usize;
    let mut cur: Vec<u16> = Vec::new();
    for u in units {
        if u != 0 {
            if seen < keep {
                cur.push(u);
            }
            continue;
        }
        seen += 1;
        if seen > keep {
            continue;
        }
        let mut name = Vec::with_capacity(cur.len());
        for r in char::decode_utf16(cur.drain(..)) {
            let cp = match r {
                Ok(ch) => ch as u32,
                Err(e) => e.unpaired_surrogate() as u32,
            };
            push_code_point(&mut name, cp);
        }
        out.push(name);
    }
    if seen != n || !cur.is_empty() || !b.len().is_multiple_of(2) {
        return Err(bad(format!("{seen} names for {n} files")));
    }
    Ok(out)
}

fn push_code_point(out: &mut Vec<u8>, cp: u32) {
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => out.extend([0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend([
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => out.extend([
            0xF0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3F) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
    }
}

/// The files' properties (`FilesInfo`), the first `keep` kept.
fn files(c: &mut Cursor<'_>, keep: usize) -> Result<(Vec<File>, usize), String> {
    let n = c.count("files", 0)?;
    let mut files = vec![File::default(); n.min(keep)];
    for f in files.iter_mut() {
        f.has_stream = true;
    }
    // The empty-stream files among those kept, by their rank among all
    // empty-stream files (what the empty-file and anti fields index).
    let mut empties: Vec<usize> = Vec::new();
    let mut empty_count = 0usize;
    loop {
        let t = c.byte()?;
        if t == id::END {
            break;
        }
        let len = c.num()?;
        let data = c.take(len)?;
        let mut p = Cursor { b: data, at: 0 };
        match t {
            id::EMPTY_STREAM => {
                let bits = p.bits(n)?;
                empty_count = bits.ones();
                empties = (0..files.len()).filter(|&i| bits.get(i)).collect();
                for (i, f) in files.iter_mut().enumerate() {
                    f.has_stream = !bits.get(i);
                }
            }
            id::EMPTY_FILE | id::ANTI => {
                let bits = p.bits(empty_count)?;
                for (&i, b) in empties.iter().zip(bits.iter()) {
                    if let Some(f) = files.get_mut(i) {
                        if t == id::EMPTY_FILE {
                            f.empty_file = b;
                        } else {
                            f.anti = b;
                        }
                    }
                }
            }
            id::NAME => {
                if p.byte()? != 0 {
                    return Err(bad(
                        "names kept outside the header (never written by 7-Zip)",
                    ));
                }
                let all = names(&data[1..], n, keep)?;
                for (f, name) in files.iter_mut().zip(all) {
                    f.name = name;
                }
            }
            id::MTIME | id::ATTRIBUTES => {
                let defined = p.defined(n)?;
                if p.byte()? != 0 {
                    return Err(bad("times or attributes kept outside the header"));
                }
                for (i, d) in defined.iter().enumerate() {
                    if !d {
                        continue;
                    }
                    let v = if t == id::MTIME {
                        p.u64()?
                    } else {
                        p.u32()? as u64
                    };
                    if let Some(f) = files.get_mut(i) {
                        if t == id::MTIME {
                            f.mtime = Some(v);
                        } else {
                            f.attrib = Some(v as u32);
                        }
                    }
                }
            }
            // Creation and access times, start positions, padding: not
            // part of what a member records.
            _ => {}
        }
    }
    Ok((files, n))
}

/// The listing: the files and the streams their data is in.
struct Listing {
    files: Vec<File>,
    /// Files the header lists (more than `files` holds past the limit).
    listed: usize,
    streams: Streams,
}

fn header(c: &mut Cursor<'_>, size: u64, keep: usize) -> Result<Listing, String> {
    let mut streams_info = Streams::default();
    let mut files_info = (Vec::new(), 0);
    loop {
        match c.byte()? {
            id::END => break,
            id::ARCHIVE_PROPERTIES => loop {
                if c.byte()? == 0 {
                    break;
                }
                let len = c.num()?;
                c.take(len)?;
            },
            id::ADDITIONAL_STREAMS => {
                streams(c, size, keep)?;
            }
            id::MAIN_STREAMS => streams_info = streams(c, size, keep)?,
            id::FILES => files_info = files(c, keep)?,
            other => return Err(bad(format!("unknown header property 0x{other:02x}"))),
        }
    }
    Ok(Listing {
        files: files_info.0,
        listed: files_info.1,
        streams: streams_info,
    })
}

/// The first of a folder's methods that triage does not decode
/// ([`Method::Encrypted`] or [`Method::Unknown`]), if any.
fn unreadable(f: &Folder) -> Option<Method> {
    f.coders
        .iter()
        .map(|c| method(&c.id))
        .find(|m| !matches!(m, Method::Decoded(_)))
}

/// What a member of a folder with an undecoded method records.
fn not_read(m: Method) -> Body<'static> {
    match m {
        Method::Encrypted => Body::Skipped(SkipReason::Encrypted),
        Method::Unknown(name) => Body::Failed(format!(
            "compressed with {name}, which triage does not decode"
        )),
        Method::Decoded(name) => Body::Failed(format!("{name}: decoded, yet not read")),
    }
}

enum Method {
    Decoded(&'static str),
    Encrypted,
    Unknown(String),
}

/// A coder's method, by its identifier (7-Zip's `Methods.txt`).
fn method(id: &[u8]) -> Method {
    Method::Decoded(match id {
        [0x00] => "copy",
        [0x21] => "LZMA2",
        [3, 1, 1] => "LZMA",
        [3] => "delta",
        [3, 3, 1, 3] => "BCJ",
        [3, 3, 1, 0x1B] => "BCJ2",
        [3, 3, 2, 5] => "PPC",
        [3, 3, 4, 1] => "IA64",
        [3, 3, 5, 1] => "ARM",
        [3, 3, 7, 1] => "ARMT",
        [3, 3, 8, 5] => "SPARC",
        [0x0A] => "ARM64",
        [0x0B] => "RISCV",
        [4, 1, 8] => "deflate",
        [4, 1, 9] => "deflate64",
        [4, 2, 2] => "bzip2",
        [6, 0xF1, 7, 1] => return Method::Encrypted,
        [3, 4, 1] => return Method::Unknown("PPMd".into()),
        other => {
            let hex: String = other.iter().map(|b| format!("{b:02x}")).collect();
            return Method::Unknown(format!("the 7z method {hex}"));
        }
    })
}

/// The LZMA2 dictionary a property byte gives.
fn lzma2_dict(props: &[u8]) -> io::Result<u32> {
    let b = *props
        .first()
        .ok_or_else(|| damaged("its LZMA2 coder has no dictionary property"))? as u32;
    if b > 40 {
        return Err(damaged(format!(
            "its LZMA2 dictionary property {b} is invalid"
        )));
    }
    let dict = if b == 40 {
        u32::MAX
    } else {
        (2 | (b & 1)) << (b / 2 + 11)
    };
    Ok(dict)
}

fn window_checked(dict: u32, what: &str) -> io::Result<u32> {
    if dict as u64 > MAX_WINDOW {
        return Err(damaged(format!(
            "its {what} dictionary of {dict} bytes is over the {MAX_WINDOW}-byte limit"
        )));
    }
    Ok(dict)
}

/// The decoder giving coder `coder`'s output, its inputs opened first
/// (packed streams of `src`, or other coders' outputs).
fn open_coder<'a>(
    src: &'a dyn Source,
    f: &Folder,
    coder: usize,
    depth: usize,
) -> io::Result<Decoder<'a>> {
    if depth > f.coders.len() {
        return Err(damaged("its folder's coders read each other in a loop"));
    }
    let c = &f.coders[coder];
    let first: usize = f.coders[..coder].iter().map(|c| c.ins).sum();
    let mut inputs: Vec<Decoder<'a>> = Vec::with_capacity(c.ins);
    for i in first..first + c.ins {
        if let Some(&(_, out)) = f.binds.iter().find(|(b, _)| *b == i) {
            inputs.push(open_coder(src, f, out, depth + 1)?);
        } else if let Some(k) = f.packed.iter().position(|&p| p == i) {
            let (at, len) = f.packs[k];
            inputs.push(Box::new(Reader::new(src, at, len)));
        } else {
            return Err(damaged(
                "a coder's input is neither packed nor another coder's",
            ));
        }
    }
    let size = f.sizes[coder];
    let name = match method(&c.id) {
        Method::Decoded(n) => n,
        _ => return Err(damaged("a method it cannot decode")),
    };
    if name == "BCJ2" {
        if inputs.len() != 4 {
            return Err(damaged("its BCJ2 coder does not have four inputs"));
        }
        return Ok(Box::new(lzma_rust2::filter::bcj2::Bcj2Reader::new(
            inputs, size,
        )));
    }
    let Some(input) = inputs.pop().filter(|_| inputs.is_empty()) else {
        return Err(damaged(format!("its {name} coder has more than one input")));
    };
    use lzma_rust2::filter::bcj::BcjReader;
    Ok(match name {
        "copy" => input,
        "LZMA2" => {
            let dict = window_checked(lzma2_dict(&c.props)?, "LZMA2")?;
            Box::new(lzma_rust2::Lzma2Reader::new(input, dict, None))
        }
        "LZMA" => {
            if c.props.len() < 5 {
                return Err(damaged("its LZMA coder's properties are short"));
            }
            let p = &c.props;
            let dict = window_checked(u32::from_le_bytes([p[1], p[2], p[3], p[4]]), "LZMA")?;
            Box::new(
                lzma_rust2::LzmaReader::new_with_props(input, size, p[0], dict, None)
                    .map_err(|e| damaged(format!("its LZMA properties: {e}")))?,
            )
        }
        "delta" => {
            let d = c.props.first().map_or(1, |&b| b as usize + 1);
            Box::new(lzma_rust2::filter::delta::DeltaReader::new(input, d))
        }
        "BCJ" => Box::new(BcjReader::new_x86(input, 0)),
        "PPC" => Box::new(BcjReader::new_ppc(input, 0)),
        "IA64" => Box::new(BcjReader::new_ia64(input, 0)),
        "ARM" => Box::new(BcjReader::new_arm(input, 0)),
        "ARMT" => Box::new(BcjReader::new_arm_thumb(input, 0)),
        "SPARC" => Box::new(BcjReader::new_sparc(input, 0)),
        "ARM64" => Box::new(BcjReader::new_arm64(input, 0)),
        "RISCV" => Box::new(BcjReader::new_riscv(input, 0)),
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(input)),
        "deflate64" => codecs::deflate64(input),
        "bzip2" => codecs::bzip2(input),
        _ => return Err(damaged(format!("no decoder for {name}"))),
    })
}

/// Reads the signature header and the (decoded) header.
fn listing(src: &dyn Source, size: u64, keep: usize) -> Result<Listing, String> {
    let mut sig = [0u8; 32];
    read_exact(src, &mut sig, 0).map_err(|e| format!("reading its signature header: {e}"))?;
    if &sig[..6] != SIGNATURE {
        return Err("not a 7z archive".into());
    }
    if sig[6] != 0 {
        return Err(format!(
            "7z format version {}.{}, not one triage reads",
            sig[6], sig[7]
        ));
    }
    let le = |r: std::ops::Range<usize>| {
        let mut a = [0u8; 8];
        a[..r.len()].copy_from_slice(&sig[r]);
        u64::from_le_bytes(a)
    };
    if crc32fast::hash(&sig[12..32]) as u64 != le(8..12) {
        return Err(bad("its start header's CRC-32 does not check out"));
    }
    let (off, len, crc) = (le(12..20), le(20..28), le(28..32) as u32);
    if len == 0 {
        return Ok(Listing {
            files: Vec::new(),
            listed: 0,
            streams: Streams::default(),
        });
    }
    let at = 32u64
        .checked_add(off)
        .filter(|a| a.checked_add(len).is_some_and(|e| e <= size));
    let Some(at) = at else {
        return Err(format!(
            "its header ({len} bytes at {off} past the signature) lies outside the file ({size} bytes): cut short?"
        ));
    };
    if len > MAX_HEADER {
        return Err(format!(
            "its header of {len} bytes is over the {MAX_HEADER}-byte limit"
        ));
    }
    let mut buf = vec![0u8; len as usize];
    read_exact(src, &mut buf, at).map_err(|e| format!("reading its header: {e}"))?;
    if crc32fast::hash(&buf) != crc {
        return Err(bad("its CRC-32 does not check out"));
    }
    // An encoded header is the output of a folder of its own (7-Zip
    // compresses its headers); it may in principle nest.
    for _ in 0..4 {
        let mut c = Cursor { b: &buf, at: 0 };
        match c.byte()? {
            id::HEADER => return header(&mut c, size, keep),
            id::ENCODED_HEADER => {
                let s = streams(&mut c, size, keep)?;
                let f = s
                    .folders
                    .first()
                    .ok_or_else(|| bad("an encoded header without a folder"))?;
                match unreadable(f) {
                    Some(Method::Encrypted) => return Err("its header is encrypted (7z -mhe): neither names nor contents can be read without the password".into()),
                    Some(Method::Unknown(name)) => {
                        return Err(format!("its header is compressed with {name}, which triage does not decode"));
                    }
                    _ => {}
                }
                if f.size() > MAX_HEADER {
                    return Err(format!(
                        "its encoded header decodes to {} bytes, over the {MAX_HEADER}-byte limit",
                        f.size()
                    ));
                }
                let mut out = Vec::with_capacity(f.size() as usize);
                open_coder(src, f, f.main, 0)
                    .and_then(|d| d.take(f.size()).read_to_end(&mut out))
                    .map_err(|e| bad(format!("decoding it: {e}")))?;
                if out.len() as u64 != f.size() || f.crc.is_some_and(|c| c != crc32fast::hash(&out))
                {
                    return Err(bad(
                        "its encoded header does not decode to what it declares",
                    ));
                }
                buf = out;
            }
            other => return Err(bad(format!("it starts with 0x{other:02x}"))),
        }
    }
    Err(bad("encoded headers nest too deep"))
}

/// A member's bytes: a window of its folder's shared decoder.
struct Window<'a> {
    folder: Arc<Decoded<'a>>,
    start: u64,
    len: u64,
}

impl Source for Window<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = (self.len - offset).min(buf.len() as u64) as usize;
        let got = self.folder.read_at(&mut buf[..n], self.start + offset)?;
        if got == 0 {
            return Err(damaged(format!(
                "its folder ends after {} of its {} bytes",
                offset, self.len
            )));
        }
        Ok(got)
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<u64>> {
        Ok((offset < self.len).then_some(offset))
    }
    fn next_hole(&self, _offset: u64) -> io::Result<u64> {
        Ok(self.len)
    }
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.len)
    }
}

/// FILETIME (100 ns since 1601) to Unix seconds.
fn unix_secs(ft: u64) -> i64 {
    (ft / 10_000_000) as i64 - 11_644_473_600
}

/// The members of a 7z archive of `size` bytes.
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    budget: &'a Budget,
) -> Result<Members<'a>, String> {
    let keep = budget.limits.members.min(usize::MAX as u64) as usize;
    let Listing {
        files,
        listed,
        streams,
    } = listing(src, size, keep)?;
    let streams = Arc::new(streams);
    let mut shared: Vec<Option<Arc<Decoded<'a>>>> = vec![None; streams.folders.len()];
    let mut subs = streams.subs.iter();
    let mut out: Vec<Result<Member<'a>, String>> = Vec::new();
    for f in files {
        let dir = f.attrib.is_some_and(|a| a & 0x10 != 0) || (!f.has_stream && !f.empty_file);
        let unix = f.attrib.filter(|a| a & 0x8000 != 0).map(|a| a >> 16);
        let sub = if f.has_stream {
            match subs.next() {
                Some(s) => Some(*s),
                None => {
                    out.push(Err(bad(
                        "it lists more files with data than its folders hold",
                    )));
                    break;
                }
            }
        } else {
            None
        };
        if f.anti || (dir && sub.is_none()) {
            // Deletion markers and directories are not items.
            continue;
        }
        let mode = match unix {
            Some(m) if m & libc::S_IFMT != 0 => m,
            _ => libc::S_IFREG | 0o644,
        };
        let mtime = f.mtime.map_or(0, unix_secs);
        let name = RawPath::from_bytes(f.name);
        let Some(sub) = sub else {
            out.push(Ok(Member {
                name,
                offset: None,
                meta: member_meta(0, mode, mtime),
                crc32: None,
                checksums: Vec::new(),
                found: None,
                body: Body::Read {
                    src: Box::new(Slice {
                        src,
                        offset: 0,
                        len: 0,
                    }),
                    to_end: false,
                    stored: true,
                },
            }));
            continue;
        };
        let folder = &streams.folders[sub.folder];
        let copy = folder.coders.len() == 1 && folder.coders[0].id == [0];
        let body = if mode & libc::S_IFMT == libc::S_IFLNK {
            Body::Skipped(SkipReason::Symlink { target: None })
        } else if let Some(m) = unreadable(folder) {
            not_read(m)
        } else if sub.size > budget.limits.member_bytes {
            Body::Failed(format!(
                "it declares {} bytes, over the limit for one member (--max-member-bytes {})",
                sub.size, budget.limits.member_bytes
            ))
        } else if copy {
            Body::Read {
                src: Box::new(Slice {
                    src,
                    offset: folder.packs[0].0 + sub.offset,
                    len: sub.size.min(folder.packs[0].1.saturating_sub(sub.offset)),
                }),
                to_end: false,
                stored: true,
            }
        } else {
            let dec = shared[sub.folder].get_or_insert_with(|| {
                let st = streams.clone();
                let i = sub.folder;
                let f = &streams.folders[i];
                let packed: u64 = f.packs.iter().map(|p| p.1).sum();
                Arc::new(Decoded::shared(
                    Box::new(move || {
                        let f = &st.folders[i];
                        open_coder(src, f, f.main, 0)
                    }),
                    f.size(),
                    packed,
                    budget,
                ))
            });
            Body::Read {
                src: Box::new(Window {
                    folder: dec.clone(),
                    start: sub.offset,
                    len: sub.size,
                }),
                to_end: false,
                stored: false,
            }
        };
        out.push(Ok(Member {
            name,
            offset: copy.then(|| folder.packs[0].0 + sub.offset),
            meta: member_meta(sub.size, mode, mtime),
            crc32: sub.crc,
            checksums: Vec::new(),
            found: None,
            body,
        }));
    }
    if listed > keep {
        out.push(Err(format!(
            "it lists {listed} files: only the first {keep} are read (the limit for one container, --max-members)"
        )));
    }
    Ok(Box::new(out.into_iter()))
}

/// The 7z expander ([`super::Kind::SevenZip`]).
pub(crate) struct SevenZip;

impl super::Expander for SevenZip {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        _path: &RawPath,
        budget: &'a Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size, budget)
    }

    fn random_access(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn numbers_read_as_7zformat_lays_them_out() {
        let read = |b: &[u8]| Cursor { b, at: 0 }.num().unwrap();
        assert_eq!(read(&[0x7F]), 0x7F);
        assert_eq!(read(&[0x80, 0xFF]), 0xFF);
        assert_eq!(read(&[0xBF, 0xFF]), 0x3FFF);
        assert_eq!(read(&[0xC0, 0x00, 0x40]), 0x4000);
        assert_eq!(read(&[0xE1, 0x02, 0x03, 0x04]), 0x01_04_03_02);
        assert_eq!(read(&[0xFF, 1, 2, 3, 4, 5, 6, 7, 8]), 0x0807_0605_0403_0201);
    }

    #[test]
    fn a_count_larger_than_its_bytes_is_refused_before_anything_is_sized() {
        // A billion files declared in a five-byte header.
        let b = [0xE0, 0x00, 0xCA, 0x9A, 0x3B];
        let err = super::files(&mut Cursor { b: &b, at: 0 }, 100).unwrap_err();
        assert!(err.contains("more than its remaining"), "{err}");
        let err = super::folder(&mut Cursor { b: &b, at: 0 }).unwrap_err();
        assert!(err.contains("coders"), "{err}");
    }

    #[test]
    fn names_keep_unpaired_surrogates() {
        // "a", then a lone high surrogate.
        let b = [b'a', 0, 0, 0, 0x00, 0xD8, 0, 0];
        let n = super::names(&b, 2, 10).unwrap();
        assert_eq!(n, [b"a".to_vec(), vec![0xED, 0xA0, 0x80]]);
        assert_eq!(super::names(&b, 2, 1).unwrap(), [b"a".to_vec()]);
        assert!(super::names(&b, 3, 10).is_err());
    }
}
