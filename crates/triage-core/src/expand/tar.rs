//! TAR archives (POSIX ustar and pax, GNU), read forward: a 512-byte
//! header (its checksum checked), then the member's data padded to 512
//! bytes, to two zero blocks or the end. Read forward only, so a tar
//! inside a gzip stream is listed and read in one pass of the decoder.
//!
//! Names: ustar's prefix and name, a pax `path` record or a GNU long name
//! (`L`), recorded as stored (`../x` and `/abs` included: never used as
//! paths). Times, modes, owners from the header (pax `mtime` and `size`
//! records too). Hard links (`1`) are recorded as `hard_link` to the name
//! they repeat, symbolic links with their target, device nodes and FIFOs
//! skipped by kind; directories are not items. GNU sparse members (`S`)
//! fail with why (not read yet).

use super::stream::Slice;
use super::{Body, Budget, Member, Members, member_meta};
use crate::item::{FileKind, SkipReason};
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::read_exact;

const BLOCK: u64 = 512;
/// A pax or GNU long-name record read at most (a name or a few times).
const MAX_META: u64 = 1 << 20;

/// An octal field (NUL- or space-terminated), or GNU's base-256 form
/// (high bit of the first byte set).
fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = (field[0] & 0x7F) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

fn cstr(field: &[u8]) -> &[u8] {
    let n = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..n]
}

/// Whether a header's checksum (the sum of its bytes, the checksum field
/// read as spaces) is right, unsigned or signed.
fn checksum_ok(h: &[u8; 512]) -> bool {
    let Some(want) = number(&h[148..156]) else {
        return false;
    };
    let (mut u, mut s) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        u += b as u64;
        s += b as i8 as i64;
    }
    want == u || want as i64 == s
}

/// What pax or GNU records say of the next member.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<i64>,
}

struct Walk<'a> {
    src: &'a dyn Source,
    size: u64,
    at: u64,
    count: u64,
    budget: &'a Budget,
    done: bool,
}

impl<'a> Walk<'a> {
    /// A record's bytes (pax or GNU long name), bounded.
    fn record(&self, at: u64, len: u64) -> Result<Vec<u8>, String> {
        if len > MAX_META || at.saturating_add(len) > self.size {
            return Err(format!(
                "an extended header of {len} bytes at {at} is too long or truncated"
            ));
        }
        let mut v = vec![0u8; len as usize];
        read_exact(self.src, &mut v, at)
            .map_err(|e| format!("reading an extended header at {at}: {e}"))?;
        Ok(v)
    }

    fn next_member(&mut self) -> Result<Option<Member<'a>>, String> {
        let mut pending = Pending::default();
        loop {
            let mut h = [0u8; 512];
            if self.at >= self.size {
                // Past it: the last member was cut short (its entry says so).
                return Ok(None);
            }
            if self.at + BLOCK > self.size {
                return Err(format!(
                    "truncated: {} bytes after the last member, less than a header",
                    self.size - self.at
                ));
            }
            match read_exact(self.src, &mut h, self.at) {
                Ok(()) => {}
                // A tar inside a stream: its end is where the stream ends.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(format!("reading the header at {}: {e}", self.at)),
            }
            if h.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            if !checksum_ok(&h) {
                return Err(format!(
                    "the header at {} fails its checksum: damaged, or not a tar from here on",
                    self.at
                ));
            }
            let header_at = self.at;
            let mut size = number(&h[124..136])
                .ok_or_else(|| format!("the header at {header_at} has no size"))?;
            if let Some(s) = pending.size {
                size = s;
            }
            let data_at = header_at + BLOCK;
            let next = data_at
                .checked_add(size.div_ceil(BLOCK) * BLOCK)
                .ok_or_else(|| format!("the header at {header_at} claims {size} bytes"))?;
            let flag = h[156];
            match flag {
                b'x' | b'g' | b'L' | b'K' => {
                    let body = self.record(data_at, size)?;
                    self.at = next;
                    match flag {
                        b'x' => pax(&body, &mut pending),
                        b'L' => pending.path = Some(cstr(&body).to_vec()),
                        b'K' => pending.link = Some(cstr(&body).to_vec()),
                        // Global records: not per member; nothing here needs them.
                        _ => {}
                    }
                    continue;
                }
                _ => {}
            }
            self.at = next;
            let ustar = &h[257..262] == b"ustar";
            let name = pending.path.take().unwrap_or_else(|| {
                let mut n = Vec::new();
                if ustar && h[263..265] == *b"00" && h[345] != 0 {
                    n.extend_from_slice(cstr(&h[345..500]));
                    n.push(b'/');
                }
                n.extend_from_slice(cstr(&h[0..100]));
                n
            });
            let link = pending
                .link
                .take()
                .unwrap_or_else(|| cstr(&h[157..257]).to_vec());
            let mtime = pending
                .mtime
                .take()
                .unwrap_or_else(|| number(&h[136..148]).unwrap_or(0) as i64);
            let perm = number(&h[100..108]).unwrap_or(0) as u32 & 0o7777;
            let kind = match flag {
                b'0' | 0 | b'7' => libc::S_IFREG,
                b'1' => libc::S_IFREG,
                b'2' => libc::S_IFLNK,
                b'3' => libc::S_IFCHR,
                b'4' => libc::S_IFBLK,
                b'5' => libc::S_IFDIR,
                b'6' => libc::S_IFIFO,
                _ => libc::S_IFREG,
            };
            if flag == b'5' || (flag == 0 && name.ends_with(b"/")) {
                // Directories are not items.
                continue;
            }
            self.count += 1;
            if self.count > self.budget.limits.members {
                return Err(format!(
                    "it holds more than {} members: the rest are not read (--max-members)",
                    self.budget.limits.members
                ));
            }
            let mut meta = member_meta(
                if flag == b'1' || flag == b'2' {
                    0
                } else {
                    size
                },
                kind | perm,
                mtime,
            );
            meta.uid = number(&h[108..116]).unwrap_or(0) as u32;
            meta.gid = number(&h[116..124]).unwrap_or(0) as u32;
            let body = match flag {
                b'1' => Body::Skipped(SkipReason::HardLink {
                    first: RawPath::from_bytes(link),
                }),
                b'2' => Body::Skipped(SkipReason::Symlink {
                    target: Some(RawPath::from_bytes(link)),
                }),
                b'3' | b'4' | b'6' => Body::Skipped(
                    SkipReason::for_kind(FileKind::from_mode(kind))
                        .unwrap_or(SkipReason::UnknownType),
                ),
                b'S' => Body::Failed("a GNU sparse member: not read yet".into()),
                b'0' | 0 | b'7' => {
                    if data_at.saturating_add(size) > self.size {
                        Body::Failed(format!(
                            "its {size} bytes at {data_at} reach past the archive's end ({}): truncated",
                            self.size
                        ))
                    } else {
                        Body::Read {
                            src: Box::new(Slice {
                                src: self.src,
                                offset: data_at,
                                len: size,
                            }),
                            to_end: false,
                            stored: true,
                        }
                    }
                }
                other => Body::Failed(format!("a member of type '{}': not read", other as char)),
            };
            return Ok(Some(Member {
                name: RawPath::from_bytes(name),
                offset: Some(data_at),
                meta,
                crc32: None,
                checksums: Vec::new(),
                found: None,
                body,
            }));
        }
    }
}

/// A pax extended header's records (`LEN key=value\n`) into `p`.
fn pax(body: &[u8], p: &mut Pending) {
    let mut rest = body;
    while let Some(sp) = rest.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            let (k, v) = (&rec[..eq], &rec[eq + 1..]);
            match k {
                b"path" => p.path = Some(v.to_vec()),
                b"linkpath" => p.link = Some(v.to_vec()),
                b"size" => p.size = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()),
                b"mtime" => {
                    p.mtime = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.split('.').next())
                        .and_then(|s| s.parse().ok())
                }
                _ => {}
            }
        }
        rest = &rest[len..];
    }
}

/// The members of a tar of `size` bytes.
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    budget: &'a Budget,
) -> Result<Members<'a>, String> {
    let mut w = Walk {
        src,
        size,
        at: 0,
        count: 0,
        budget,
        done: false,
    };
    Ok(Box::new(std::iter::from_fn(move || {
        if w.done {
            return None;
        }
        match w.next_member() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                w.done = true;
                None
            }
            Err(e) => {
                w.done = true;
                Some(Err(e))
            }
        }
    })))
}

/// The tar expander ([`super::Kind::Tar`]).
pub(crate) struct Tar;

impl super::Expander for Tar {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        _path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size, budget)
    }
}

#[cfg(test)]
mod tests {
    use super::{Pending, number, pax};

    #[test]
    fn numbers_are_octal_or_base_256() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"  1750 \0"), Some(0o1750));
        assert_eq!(number(b"\0\0\0\0"), Some(0));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(number(b"9\0"), None);
    }

    #[test]
    fn pax_records_set_the_next_member() {
        let mut p = Pending::default();
        pax(
            b"29 path=a very long/name.jpg\n22 mtime=1700000000.5\n",
            &mut p,
        );
        assert_eq!(p.path.as_deref(), Some(&b"a very long/name.jpg"[..]));
        assert_eq!(p.mtime, Some(1_700_000_000));
    }
}
