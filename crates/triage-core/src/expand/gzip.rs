//! gzip streams (RFC 1952): the content is one member, named by the
//! header's file name when it has one, else by the container's name less
//! its `.gz` (`.tgz` → `.tar`). Concatenated streams (`cat a.gz b.gz`)
//! are one content, as `gunzip` gives it. Each stream's CRC-32 and length
//! are checked by the decoder: a mismatch fails the content, with the
//! bytes read until then (the digests of a content that does not check
//! out are not recorded).

use super::stream::{Decoded, Reader};
use super::{Body, Budget, Member, Members, member_meta};
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::read_exact;

/// The members of a gzip stream of `size` bytes inside `parent` (its path).
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    parent: &RawPath,
    budget: &'a Budget,
) -> Result<Members<'a>, String> {
    let mut head = [0u8; 10];
    read_exact(src, &mut head, 0).map_err(|e| format!("reading its header: {e}"))?;
    if head[..3] != [0x1f, 0x8b, 8] {
        return Err("not a deflate gzip stream".into());
    }
    let flags = head[3];
    let mtime = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as i64;
    let mut at = 10u64;
    if flags & 4 != 0 {
        let mut x = [0u8; 2];
        read_exact(src, &mut x, at).map_err(|e| format!("reading its header: {e}"))?;
        at += 2 + u16::from_le_bytes(x) as u64;
    }
    let mut name = None;
    if flags & 8 != 0 {
        // The original name, NUL-terminated (at most 1 KiB kept).
        let mut n = Vec::new();
        let mut b = [0u8; 1];
        while n.len() < 1024 {
            read_exact(src, &mut b, at + n.len() as u64)
                .map_err(|e| format!("reading its header's name: {e}"))?;
            if b[0] == 0 {
                break;
            }
            n.push(b[0]);
        }
        // A name is a name, not a path: its last part only.
        let base = n.rsplit(|&c| c == b'/').next().unwrap_or(&[]).to_vec();
        name = (!base.is_empty()).then_some(base);
    }
    let name = name.unwrap_or_else(|| super::single::content_name(parent, super::Kind::Gzip));
    let budget_ref = budget;
    let member = Member {
        name: RawPath::from_bytes(name),
        offset: None,
        // The size is known once read; the last stream's trailer gives it
        // modulo 2^32, a hint only (used to size buffers, never trusted).
        meta: member_meta(
            isize_hint(src, size).min(budget.limits.member_bytes),
            libc::S_IFREG | 0o644,
            mtime,
        ),
        crc32: None,
        checksums: Vec::new(),
        body: Body::Read {
            src: Box::new(Decoded::new(
                Box::new(move || {
                    Ok(Box::new(flate2::read::MultiGzDecoder::new(Reader::new(
                        src, 0, size,
                    ))))
                }),
                None,
                size,
                budget_ref,
            )),
            to_end: true,
            stored: false,
        },
    };
    Ok(Box::new(std::iter::once(Ok(member))))
}

/// The last four bytes: the last stream's length modulo 2^32.
fn isize_hint(src: &dyn Source, size: u64) -> u64 {
    let mut t = [0u8; 4];
    if size < 18 || read_exact(src, &mut t, size - 4).is_err() {
        return 0;
    }
    u32::from_le_bytes(t) as u64
}

/// The gzip expander ([`super::Kind::Gzip`]).
pub(crate) struct Gzip;

impl super::Expander for Gzip {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size, path, budget)
    }
}
