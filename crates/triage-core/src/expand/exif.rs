//! EXIF thumbnails: the small JPEG a camera or phone stores in a
//! picture's EXIF block (its second image file directory, IFD1, tags
//! 0x0201/0x0202: offset and length). It survives edits of the main
//! picture and is often left behind when the picture is replaced, so it
//! is a child item of its own (`IMG_1.jpg!exif-thumbnail`), read where it
//! lies, and the scan compares its PDQ with the main picture's.
//!
//! JPEG: the APP1 `Exif` segment among the markers before the scan data
//! (offsets count from the TIFF header inside it, and the thumbnail must
//! lie inside the segment). TIFF: the file's own header and IFD chain.
//! Every offset is checked against the segment or file; a damaged block
//! gives no thumbnail and an error only when it claims one that is not
//! there.

use super::stream::Slice;
use super::{Body, Member, Members, member_meta};
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::read_exact;

/// The name of the child item.
pub(crate) const NAME: &[u8] = b"exif-thumbnail";

/// The thumbnail of a JPEG or TIFF of `size` bytes, if it has one.
pub(crate) fn members<'a>(src: &'a dyn Source, size: u64) -> Result<Members<'a>, String> {
    let mut head = [0u8; 4];
    read_exact(src, &mut head, 0).map_err(|e| format!("reading its start: {e}"))?;
    let found = if head[..2] == [0xFF, 0xD8] {
        jpeg(src, size)?
    } else {
        tiff(src, 0, size)?
    };
    let Some((at, len)) = found else {
        return Ok(Box::new(std::iter::empty()));
    };
    let member = Member {
        name: RawPath::from_bytes(NAME.to_vec()),
        offset: Some(at),
        meta: member_meta(len, libc::S_IFREG | 0o644, 0),
        crc32: None,
        checksums: Vec::new(),
        found: None,
        body: Body::Read {
            src: Box::new(Slice {
                src,
                offset: at,
                len,
            }),
            to_end: false,
            stored: true,
        },
    };
    Ok(Box::new(std::iter::once(Ok(member))))
}

/// The EXIF thumbnail of a JPEG: (offset in the file, length).
fn jpeg(src: &dyn Source, size: u64) -> Result<Option<(u64, u64)>, String> {
    let mut at = 2u64;
    // Markers before the scan data; a few dozen at most in practice.
    for _ in 0..256 {
        let mut m = [0u8; 4];
        if at + 4 > size || read_exact(src, &mut m, at).is_err() {
            return Ok(None);
        }
        if m[0] != 0xFF {
            return Ok(None);
        }
        // Fill bytes, and markers without a length.
        if m[1] == 0xFF {
            at += 1;
            continue;
        }
        if matches!(m[1], 0xD8 | 0x01 | 0xD0..=0xD7) {
            at += 2;
            continue;
        }
        if matches!(m[1], 0xDA | 0xD9) {
            return Ok(None);
        }
        let len = u16::from_be_bytes([m[2], m[3]]) as u64;
        if m[1] == 0xE1 && len >= 8 {
            let mut tag = [0u8; 6];
            if read_exact(src, &mut tag, at + 4).is_ok() && &tag == b"Exif\0\0" {
                // The TIFF block: the segment after its length and tag.
                let base = at + 10;
                let end = (at + 2 + len).min(size);
                return tiff(src, base, end);
            }
        }
        at += 2 + len;
    }
    Ok(None)
}

/// The IFD1 thumbnail of a TIFF block at `base`, ending at `end`:
/// (offset in the file, length).
pub(crate) fn tiff(src: &dyn Source, base: u64, end: u64) -> Result<Option<(u64, u64)>, String> {
    let mut h = [0u8; 8];
    if base + 8 > end || read_exact(src, &mut h, base).is_err() {
        return Ok(None);
    }
    let le = match &h[..4] {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return Ok(None),
    };
    let u16_at = |b: &[u8], i: usize| {
        let v = [b[i], b[i + 1]];
        if le {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    };
    let u32_at = |b: &[u8], i: usize| {
        let v = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    let read_ifd = |off: u64| -> Option<(Vec<u8>, u16)> {
        let mut n = [0u8; 2];
        if base + off + 2 > end || read_exact(src, &mut n, base + off).is_err() {
            return None;
        }
        let count = u16_at(&n, 0);
        let len = 12 * count as u64 + 4;
        if base + off + 2 + len > end {
            return None;
        }
        let mut body = vec![0u8; len as usize];
        read_exact(src, &mut body, base + off + 2).ok()?;
        Some((body, count))
    };
    let Some((ifd0, n0)) = read_ifd(u32_at(&h, 4) as u64) else {
        return Ok(None);
    };
    let next = u32_at(&ifd0, 12 * n0 as usize) as u64;
    if next == 0 {
        return Ok(None);
    }
    let Some((ifd1, n1)) = read_ifd(next) else {
        return Ok(None);
    };
    let (mut offset, mut length) = (None, None);
    for k in 0..n1 as usize {
        let e = &ifd1[12 * k..12 * k + 12];
        let value = match u16_at(e, 2) {
            3 => u16_at(e, 8) as u64,
            4 => u32_at(e, 8) as u64,
            _ => continue,
        };
        match u16_at(e, 0) {
            0x0201 => offset = Some(value),
            0x0202 => length = Some(value),
            _ => {}
        }
    }
    match (offset, length) {
        (Some(o), Some(l)) if l > 0 => {
            if base + o + l > end {
                return Err(format!(
                    "its EXIF thumbnail ({l} bytes at {o} in the EXIF block) reaches past the block"
                ));
            }
            Ok(Some((base + o, l)))
        }
        _ => Ok(None),
    }
}

/// The EXIF thumbnail expander ([`super::Kind::Exif`]).
pub(crate) struct Exif;

impl super::Expander for Exif {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        _path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        let _ = budget;
        members(src, size)
    }
}
