//! ZIP archives (PKWARE's APPNOTE), read-only, from the central directory:
//! the end-of-central-directory record (and its ZIP64 form) found in the
//! last 64 KiB, then one central entry per member, each member's data after
//! its local header. Members are given in central-directory order.
//!
//! Read: every member of the methods below, ZIP64 sizes and offsets, archives
//! with bytes before them (self-extracting: offsets are moved by the
//! difference), Unix modes and the extended timestamp (`UT`), else the DOS
//! time as written (no zone: recorded as UTC). Encrypted members (the
//! encryption flag, or WinZip AES) are recorded `encrypted`, never
//! guessed. Directory entries are not items (as a directory walk records
//! none). A member whose data overlaps another's (the non-recursive zip
//! bomb: many entries pointing into one compressed kernel) fails, as does
//! one reaching past the archive.
//!
//! Compression methods read: stored, deflate, deflate64 (9), bzip2 (12),
//! LZMA (14), zstd (93), xz (95), through [`super::codecs`]. Not read yet
//! (the member fails with why): the older methods (shrink, reduce,
//! implode), PPMd; archives spanning several files.

use std::io;

use super::codecs;
use super::stream::{Decoded, Reader, Slice};
use super::{Body, Budget, Member, Members, member_meta};
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::read_exact;

const EOCD: &[u8; 4] = b"PK\x05\x06";
const EOCD64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const EOCD64: &[u8; 4] = b"PK\x06\x06";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";
const LOCAL: &[u8; 4] = b"PK\x03\x04";
/// The end record (22 bytes) and the longest comment after it.
const TAIL: u64 = 22 + 0xFFFF;

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64le(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// One central-directory entry, as far as reading it needs.
struct Central {
    name: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    csize: u64,
    usize: u64,
    local: u64,
    disk: u32,
    mode: u32,
    mtime: i64,
    /// WinZip AES (method 99): encrypted whatever the flag says.
    aes: bool,
}

/// Where the central directory is: (entries, offset, size, base), `base`
/// being bytes before the archive (added to every offset).
fn directory(src: &dyn Source, size: u64) -> Result<(u64, u64, u64, u64), String> {
    let tail_len = size.min(TAIL);
    let mut tail = vec![0u8; tail_len as usize];
    read_exact(src, &mut tail, size - tail_len).map_err(|e| format!("reading its end: {e}"))?;
    let at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| &tail[i..i + 4] == EOCD && i + 22 + u16le(&tail, i + 20) as usize <= tail.len())
        .ok_or("no end-of-central-directory record: not a zip, or truncated")?;
    let eocd = &tail[at..];
    let eocd_pos = size - tail_len + at as u64;
    let (mut entries, mut cd_size, mut cd_offset) = (
        u16le(eocd, 10) as u64,
        u32le(eocd, 12) as u64,
        u32le(eocd, 16) as u64,
    );
    if u16le(eocd, 4) != 0 || u16le(eocd, 6) != 0 {
        return Err("a zip spanning several files (disk numbers set): not read".into());
    }
    // ZIP64: a locator just before the end record points at the 64-bit end.
    let mut end = eocd_pos;
    if at >= 20 && &tail[at - 20..at - 16] == EOCD64_LOCATOR {
        let loc = &tail[at - 20..at];
        let rec_at = u64le(loc, 8);
        let mut rec = [0u8; 56];
        if rec_at + 56 <= eocd_pos
            && read_exact(src, &mut rec, rec_at).is_ok()
            && &rec[..4] == EOCD64
        {
            entries = u64le(&rec, 32);
            cd_size = u64le(&rec, 40);
            cd_offset = u64le(&rec, 48);
            end = rec_at;
        } else if entries == 0xFFFF || cd_offset == 0xFFFF_FFFF {
            return Err("its ZIP64 end record is missing or damaged".into());
        }
    }
    // Bytes before the archive (a self-extractor's program) move every
    // offset by the same amount.
    let base = end
        .checked_sub(cd_size)
        .and_then(|d| d.checked_sub(cd_offset))
        .ok_or_else(|| {
            format!(
                "its central directory ({cd_size} bytes at {cd_offset}) does not end before its end record (at {end})"
            )
        })?;
    Ok((entries, base + cd_offset, cd_size, base))
}

/// The central entry at `at` (its length after it).
fn central(src: &dyn Source, at: u64, end: u64) -> Result<(Central, u64), String> {
    let mut h = [0u8; 46];
    if at + 46 > end {
        return Err(format!(
            "a central-directory entry at {at} runs past the directory"
        ));
    }
    read_exact(src, &mut h, at).map_err(|e| format!("reading the central directory: {e}"))?;
    if &h[..4] != CENTRAL {
        return Err(format!(
            "no central-directory entry where one should be, at {at}"
        ));
    }
    let (n, e, c) = (
        u16le(&h, 28) as u64,
        u16le(&h, 30) as u64,
        u16le(&h, 32) as u64,
    );
    let len = 46 + n + e + c;
    if at + len > end {
        return Err(format!(
            "a central-directory entry at {at} runs past the directory"
        ));
    }
    let mut rest = vec![0u8; (n + e) as usize];
    read_exact(src, &mut rest, at + 46)
        .map_err(|e| format!("reading the central directory: {e}"))?;
    let (name, extra) = rest.split_at(n as usize);
    let mut m = Central {
        name: name.to_vec(),
        flags: u16le(&h, 8),
        method: u16le(&h, 10),
        crc: u32le(&h, 16),
        csize: u32le(&h, 20) as u64,
        usize: u32le(&h, 24) as u64,
        local: u32le(&h, 42) as u64,
        disk: u16le(&h, 34) as u32,
        mode: 0,
        mtime: dos_time(u16le(&h, 14), u16le(&h, 12)),
        aes: false,
    };
    if u16le(&h, 4) >> 8 == 3 {
        // Made on Unix: the mode is the external attributes' high half.
        m.mode = u32le(&h, 38) >> 16;
    }
    let mut x = extra;
    while x.len() >= 4 {
        let (id, len) = (u16le(x, 0), u16le(x, 2) as usize);
        let Some(body) = x.get(4..4 + len) else { break };
        match id {
            0x0001 => {
                // ZIP64: the fields the entry marks 0xFFFFFFFF, in order.
                let mut k = 0;
                let mut next = |v: &mut u64| {
                    if *v == 0xFFFF_FFFF && k + 8 <= body.len() {
                        *v = u64le(body, k);
                        k += 8;
                    }
                };
                next(&mut m.usize);
                next(&mut m.csize);
                next(&mut m.local);
            }
            0x5455 if !body.is_empty() && body[0] & 1 != 0 && body.len() >= 5 => {
                m.mtime = u32le(body, 1) as i64;
            }
            0x9901 => m.aes = true,
            _ => {}
        }
        x = &x[4 + len..];
    }
    Ok((m, len))
}

/// A DOS date and time (local, no zone) as seconds since 1970, read as UTC.
fn dos_time(date: u16, time: u16) -> i64 {
    let (y, mo, d) = (
        1980 + (date >> 9) as i64,
        ((date >> 5) & 15) as i64,
        (date & 31) as i64,
    );
    let (h, mi, s) = (
        (time >> 11) as i64,
        ((time >> 5) & 63) as i64,
        ((time & 31) * 2) as i64,
    );
    if !(1..=12).contains(&mo) || d == 0 {
        return 0;
    }
    crate::time::days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s
}

fn method_name(m: u16) -> &'static str {
    match m {
        1 => "shrunk",
        2..=5 => "reduced",
        6 => "imploded",
        9 => "deflate64",
        12 => "bzip2",
        14 => "LZMA",
        93 => "zstd",
        95 => "xz",
        96 => "JPEG (WinZip)",
        97 => "WavPack",
        98 => "PPMd",
        _ => "unknown",
    }
}

/// The members of a zip of `size` bytes.
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    budget: &'a Budget,
) -> Result<Members<'a>, String> {
    let (entries, cd_at, cd_size, base) = directory(src, size)?;
    let cd_end = cd_at
        .checked_add(cd_size)
        .filter(|&e| e <= size)
        .ok_or("its central directory reaches past the archive")?;
    let limit = budget.limits.members;
    let mut list = Vec::new();
    let mut at = cd_at;
    let mut error = None;
    for _ in 0..entries.min(limit) {
        match central(src, at, cd_end) {
            Ok((m, len)) => {
                at += len;
                list.push(m);
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    if error.is_none() && entries > limit {
        error = Some(format!(
            "it lists {entries} members: the first {limit} are read (--max-members)"
        ));
    }
    // Each member's data, as far as its central entry tells, must not
    // reach into the next member's local header.
    let mut order: Vec<usize> = (0..list.len()).collect();
    order.sort_by_key(|&i| list[i].local);
    let mut overlaps = vec![None; list.len()];
    for w in order.windows(2) {
        let (a, b) = (&list[w[0]], &list[w[1]]);
        if a.local.saturating_add(30).saturating_add(a.csize) > b.local {
            overlaps[w[0]] = Some(w[1]);
            overlaps[w[1]] = Some(w[0]);
        }
    }
    let mut k = 0usize;
    let iter = std::iter::from_fn(move || {
        if k < list.len() {
            let m = &list[k];
            let other = overlaps[k].map(|o| String::from_utf8_lossy(&list[o].name).into_owned());
            k += 1;
            return Some(Ok(member(src, size, base, m, other, budget)));
        }
        error.take().map(Err)
    });
    Ok(Box::new(iter.filter(|m| {
        // Directory entries are not items.
        !matches!(m, Ok(m) if m.name.as_bytes().ends_with(b"/") && m.meta.size == 0)
    })))
}

fn member<'a>(
    src: &'a dyn Source,
    size: u64,
    base: u64,
    m: &Central,
    overlaps: Option<String>,
    budget: &'a Budget,
) -> Member<'a> {
    let mode = if m.mode & libc::S_IFMT != 0 {
        m.mode
    } else {
        libc::S_IFREG | 0o644
    };
    let mut out = Member {
        name: RawPath::from_bytes(m.name.clone()),
        offset: None,
        meta: member_meta(m.usize, mode, m.mtime),
        crc32: Some(m.crc),
        checksums: Vec::new(),
        found: None,
        body: Body::Failed(String::new()),
    };
    let fail = |why: String| Body::Failed(why);
    out.body = if m.flags & 1 != 0 || m.aes || m.method == 99 {
        Body::Skipped(crate::item::SkipReason::Encrypted)
    } else if let Some(other) = overlaps {
        fail(format!(
            "its data overlaps member '{other}' (a zip bomb's trick: many members decompressing one stream): not read"
        ))
    } else if m.disk != 0 {
        fail("on another disk of a spanned archive: not read".into())
    } else if mode & libc::S_IFMT == libc::S_IFLNK {
        Body::Skipped(crate::item::SkipReason::Symlink { target: None })
    } else if mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != libc::S_IFDIR {
        Body::Skipped(
            crate::item::SkipReason::for_kind(crate::item::FileKind::from_mode(mode))
                .unwrap_or(crate::item::SkipReason::UnknownType),
        )
    } else {
        match data_at(src, size, base + m.local, m.csize) {
            Err(e) => fail(e),
            Ok(at) => {
                out.offset = Some(at);
                match m.method {
                    0 if m.csize != m.usize => fail(format!(
                        "stored, but its sizes differ ({} stored, {} declared)",
                        m.csize, m.usize
                    )),
                    0 => Body::Read {
                        src: Box::new(Slice {
                            src,
                            offset: at,
                            len: m.csize,
                        }),
                        to_end: false,
                        stored: true,
                    },
                    8 | 9 | 12 | 14 | 93 | 95 => {
                        let (csize, usize, method) = (m.csize, m.usize, m.method);
                        out.offset = None;
                        let open: super::stream::Open<'a> = Box::new(move || {
                            let r = Reader::new(src, at, csize);
                            Ok(match method {
                                8 => Box::new(flate2::read::DeflateDecoder::new(r)),
                                9 => codecs::deflate64(r),
                                12 => codecs::bzip2(r),
                                14 => codecs::zip_lzma(r, usize)?,
                                93 => codecs::zstd(r),
                                _ => codecs::xz(r),
                            })
                        });
                        Body::Read {
                            src: Box::new(Decoded::new(open, Some(usize), csize, budget)),
                            to_end: false,
                            stored: false,
                        }
                    }
                    other => fail(format!(
                        "compressed with method {other} ({}): not read yet; stored, deflate, deflate64, bzip2, LZMA, zstd and xz are",
                        method_name(other)
                    )),
                }
            }
        }
    };
    out
}

/// Where a member's data starts: after its local header, which must be
/// there, with its data inside the archive.
fn data_at(src: &dyn Source, size: u64, local: u64, csize: u64) -> Result<u64, String> {
    let mut h = [0u8; 30];
    if local.saturating_add(30) > size {
        return Err(format!(
            "its local header (at {local}) is past the archive's end"
        ));
    }
    read_exact(src, &mut h, local)
        .map_err(|e: io::Error| format!("reading its local header: {e}"))?;
    if &h[..4] != LOCAL {
        return Err(format!(
            "no local header at {local}, where its central entry says"
        ));
    }
    let at = local + 30 + u16le(&h, 26) as u64 + u16le(&h, 28) as u64;
    if at.saturating_add(csize) > size {
        return Err(format!(
            "its {csize} bytes at {at} reach past the archive's end ({size}): truncated"
        ));
    }
    Ok(at)
}

/// The zip expander ([`super::Kind::Zip`]).
pub(crate) struct Zip;

impl super::Expander for Zip {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        _path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size, budget)
    }

    fn random_access(&self) -> bool {
        true
    }
}
