//! Windows Explorer thumbnail caches (`thumbcache_*.db`, Vista to 11):
//! each cached thumbnail is a child item named by its entry hash
//! (`thumbcache_256.db!0x1a2b3c4d5e6f7081`), read where it lies. A
//! thumbnail outlives the picture it shows: deleted, moved to removable
//! media, or only ever seen on a network share.
//!
//! The file is a 24-byte header (`CMMM`, format version 20 Vista, 21
//! Windows 7, 30 Windows 8, 31 Windows 8.1, 32 Windows 10 and 11) and
//! entries one after another, each `CMMM`, its size, its hash, the sizes
//! of an identifier, padding and the data (a BMP, JPEG or PNG), and two
//! CRC-64s, of the entry's header and of its data (libyal's
//! "Windows Explorer Thumbnail Cache database format" gives the layout).
//! Both are checked and recorded with the member (`within.checksums`); a
//! member that fails them is still hashed, as read.
//!
//! Entries are followed by their sizes; where that breaks (an entry
//! overwritten in part), the next `CMMM` is searched for, so the remnants
//! of older entries are found too. Entries without data (Windows keeps
//! some as markers) are not members.

use std::collections::HashMap;

use super::stream::Slice;
use super::{Body, Member, Members, member_meta};
use crate::item::Checksum;
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::read_exact;

/// CRC-64 as thumbcache.dll computes it: the reflected form of the
/// polynomial 0x259C84CBA6426349 (reveng's CRC-64/MS), no final XOR; the
/// initial value is the caller's.
fn crc64(mut crc: u64, bytes: &[u8]) -> u64 {
    const TABLE: [u64; 256] = {
        let mut t = [0u64; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u64;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x92C6_4265_D321_39A4
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    for &b in bytes {
        crc = TABLE[((crc ^ b as u64) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

/// The data checksum: Windows samples the data rather than reading it
/// all: up to 1,024 bytes are summed whole (from 0), and of the rest only
/// the first four bytes of each 400 (a second sum from 0); the two are
/// combined by XOR. (Measured against every entry of the Windows Vista
/// to 11 caches dissect.thumbcache ships: 234 of 234 agree.)
fn data_crc(src: &dyn Source, at: u64, len: u64) -> Result<u64, String> {
    let head = len.min(1024) as usize;
    let mut buf = vec![0u8; head];
    read_exact(src, &mut buf, at).map_err(|e| format!("reading its data at {at}: {e}"))?;
    let first = crc64(0, &buf);
    if len <= 1024 {
        return Ok(first);
    }
    let mut second = 0;
    let mut off = 1024;
    while off < len {
        let n = (len - off).min(4) as usize;
        let mut b = [0u8; 4];
        read_exact(src, &mut b[..n], at + off)
            .map_err(|e| format!("reading its data at {}: {e}", at + off))?;
        second = crc64(second, &b[..n]);
        off += 400;
    }
    Ok(first ^ second)
}

/// Where an entry's fields are, by format version.
struct Layout {
    /// Bytes of the fixed part; the header checksum covers all of it but
    /// its last 8 bytes (the checksum itself).
    fixed: usize,
    /// Offset of the identifier size (then padding size, data size).
    sizes: usize,
    /// Offset of the data checksum (then the header checksum).
    crcs: usize,
}

fn layout(version: u32) -> Option<Layout> {
    match version {
        20 => Some(Layout {
            fixed: 56,
            sizes: 24,
            crcs: 40,
        }),
        21 => Some(Layout {
            fixed: 48,
            sizes: 16,
            crcs: 32,
        }),
        30..=32 => Some(Layout {
            fixed: 56,
            sizes: 16,
            crcs: 40,
        }),
        _ => None,
    }
}

/// The thumbnails of a cache file of `size` bytes.
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    max_members: u64,
) -> Result<Members<'a>, String> {
    let mut h = [0u8; 24];
    read_exact(src, &mut h, 0).map_err(|e| format!("reading its header: {e}"))?;
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if &h[..4] != b"CMMM" {
        return Err("not a thumbnail cache (no CMMM signature)".into());
    }
    let version = u32_at(&h, 4);
    let l = layout(version).ok_or_else(|| {
        format!("format version {version} is not one triage reads (20, 21, 30, 31, 32)")
    })?;
    let first = u32_at(&h, 12) as u64;
    let mut at = if first >= 24 && first < size {
        first
    } else {
        24
    };
    let mut out: Vec<Result<Member<'a>, String>> = Vec::new();
    let mut names: HashMap<u64, u32> = HashMap::new();
    let mut head = vec![0u8; l.fixed];
    while at + l.fixed as u64 <= size {
        if read_exact(src, &mut head, at).is_err() {
            break;
        }
        if &head[..4] != b"CMMM" {
            match next_signature(src, at + 1, size)? {
                Some(next) => {
                    at = next;
                    continue;
                }
                None => break,
            }
        }
        let entry_size = u32_at(&head, 4) as u64;
        let hash = u64::from_le_bytes(head[8..16].try_into().unwrap_or([0; 8]));
        let (id_len, pad, data_len) = (
            u32_at(&head, l.sizes) as u64,
            u32_at(&head, l.sizes + 4) as u64,
            u32_at(&head, l.sizes + 8) as u64,
        );
        let stored_data = u64::from_le_bytes(head[l.crcs..l.crcs + 8].try_into().unwrap_or([0; 8]));
        let stored_head =
            u64::from_le_bytes(head[l.crcs + 8..l.crcs + 16].try_into().unwrap_or([0; 8]));
        let data_at = at + l.fixed as u64 + id_len + pad;
        let sound = entry_size >= l.fixed as u64
            && l.fixed as u64 + id_len + pad + data_len <= entry_size
            && at + entry_size <= size;
        if !sound {
            // Damaged or overwritten: what is readable of it is not
            // trusted; the next entry is searched for.
            if data_len > 0 && hash != 0 {
                out.push(Ok(Member {
                    name: name_of(&mut names, hash),
                    offset: Some(at),
                    meta: member_meta(0, libc::S_IFREG | 0o644, 0),
                    crc32: None,
                    checksums: Vec::new(),
                    found: None,
                    body: Body::Failed(format!(
                        "the entry at byte {at} gives sizes that do not fit in it or in the file: not read"
                    )),
                }));
            }
            match next_signature(src, at + 4, size)? {
                Some(next) => {
                    at = next;
                    continue;
                }
                None => break,
            }
        }
        if data_len > 0 {
            if out.len() as u64 >= max_members {
                out.push(Err(format!(
                    "more than {max_members} entries: the limit for one container (--max-members)"
                )));
                break;
            }
            let computed_head = crc64(u64::MAX, &head[..l.fixed - 8]);
            let checksums = match data_crc(src, data_at, data_len) {
                Ok(computed_data) => vec![
                    Checksum {
                        name: "header_crc64".into(),
                        stored: format!("{stored_head:016x}"),
                        computed: format!("{computed_head:016x}"),
                    },
                    Checksum {
                        name: "data_crc64".into(),
                        stored: format!("{stored_data:016x}"),
                        computed: format!("{computed_data:016x}"),
                    },
                ],
                Err(_) => Vec::new(),
            };
            out.push(Ok(Member {
                name: name_of(&mut names, hash),
                offset: Some(data_at),
                meta: member_meta(data_len, libc::S_IFREG | 0o644, 0),
                crc32: None,
                checksums,
                found: None,
                body: Body::Read {
                    src: Box::new(Slice {
                        src,
                        offset: data_at,
                        len: data_len,
                    }),
                    to_end: false,
                    stored: true,
                },
            }));
        }
        at += entry_size;
    }
    Ok(Box::new(out.into_iter()))
}

/// `0x` and the entry hash (the thumbnail cache id Windows Search
/// records as `System_ThumbnailCacheId`); `~2`, `~3`… for a hash seen
/// again (an older copy's remnant).
fn name_of(names: &mut HashMap<u64, u32>, hash: u64) -> RawPath {
    let n = names.entry(hash).or_insert(0);
    *n += 1;
    let name = if *n == 1 {
        format!("0x{hash:016x}")
    } else {
        format!("0x{hash:016x}~{n}")
    };
    RawPath::from_bytes(name.into_bytes())
}

/// An entry found on its own, outside any cache file (carved from free
/// space): where its data is, its hash and its checksums.
pub(crate) struct Loose {
    pub(crate) data_at: u64,
    pub(crate) data_len: u64,
    pub(crate) hash: u64,
    pub(crate) checksums: Vec<Checksum>,
}

/// The entry starting at `at` (its `CMMM`), when one of the layouts reads
/// it whole and its header CRC-64 checks out: an entry alone does not say
/// which Windows wrote it, so the checksum and the sizes fitting pick the
/// layout (Vista's and 8–11's share where the checksum is; where Vista
/// has the file extension, 8–11 have sizes). Entries without data, or
/// larger than `max_len`, are not kept.
pub(crate) fn loose_entry(src: &dyn Source, at: u64, size: u64, max_len: u64) -> Option<Loose> {
    let mut head = [0u8; 56];
    let mut first: Option<Loose> = None;
    for version in [30, 21, 20] {
        let l = layout(version)?;
        if at + l.fixed as u64 > size {
            continue;
        }
        read_exact(src, &mut head[..l.fixed], at).ok()?;
        let u32_at =
            |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]) as u64;
        let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap_or([0; 8]));
        if &head[..4] != b"CMMM" || crc64(u64::MAX, &head[..l.fixed - 8]) != u64_at(l.crcs + 8) {
            continue;
        }
        let len = u32_at(4);
        let (id_len, pad, data_len) = (u32_at(l.sizes), u32_at(l.sizes + 4), u32_at(l.sizes + 8));
        let data_at = at + l.fixed as u64 + id_len + pad;
        if data_len == 0
            || len > max_len
            || l.fixed as u64 + id_len + pad + data_len > len
            || at + len > size
        {
            continue;
        }
        let Ok(computed) = data_crc(src, data_at, data_len) else {
            continue;
        };
        let stored = u64_at(l.crcs);
        let e = Loose {
            data_at,
            data_len,
            hash: u64_at(8),
            checksums: vec![
                Checksum {
                    name: "header_crc64".into(),
                    stored: format!("{:016x}", u64_at(l.crcs + 8)),
                    computed: format!("{:016x}", u64_at(l.crcs + 8)),
                },
                Checksum {
                    name: "data_crc64".into(),
                    stored: format!("{stored:016x}"),
                    computed: format!("{computed:016x}"),
                },
            ],
        };
        // The data's checksum settles a layout the header's fits twice;
        // a damaged thumbnail keeps the first layout that fits.
        if computed == stored {
            return Some(e);
        }
        first.get_or_insert(e);
    }
    first
}

/// The next `CMMM` at or after `from`.
fn next_signature(src: &dyn Source, from: u64, size: u64) -> Result<Option<u64>, String> {
    let mut buf = vec![0u8; 64 << 10];
    let mut at = from;
    while at + 4 <= size {
        let n = ((size - at) as usize).min(buf.len());
        read_exact(src, &mut buf[..n], at).map_err(|e| format!("reading it at {at}: {e}"))?;
        if let Some(i) = buf[..n].windows(4).position(|w| w == b"CMMM") {
            return Ok(Some(at + i as u64));
        }
        if n < 4 {
            break;
        }
        // The last three bytes again: a signature across the boundary.
        at += n as u64 - 3;
    }
    Ok(None)
}

/// The thumbnail cache expander ([`super::Kind::Thumbcache`]).
pub(crate) struct Thumbcache;

impl super::Expander for Thumbcache {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        _path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size, budget.limits.members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_crc64_ms() {
        // reveng's catalogue: CRC-64/MS, check value of "123456789".
        assert_eq!(crc64(u64::MAX, b"123456789"), 0x75D4_B74F_024E_CEEA);
    }
}
