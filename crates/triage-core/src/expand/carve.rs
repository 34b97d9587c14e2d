//! Carving: pictures found by their own structure in a volume's
//! unallocated space (the `$Unallocated` item a disk image's volume gets
//! when carving runs), where a deleted file's content stays after its
//! directory entry is gone. Each is a child item named by where it
//! starts on the medium (`p1/$Unallocated!0x2a4c000.jpg`), its offset in
//! the unallocated space recorded; hashed and matched like any file.
//!
//! Signatures are only where a search starts; a candidate is kept when
//! its structure reads through to its end:
//! - JPEG: markers with their lengths from SOI, a frame header (SOF)
//!   before the first scan, entropy-coded data stepped over to the next
//!   marker (every scan of a progressive JPEG), and the EOI that ends it;
//! - PNG: IHDR first, every chunk's CRC-32 right, IEND last;
//! - GIF: the screen descriptor and colour tables, every extension and
//!   image block with its sub-blocks, at least one image, the trailer;
//! - BMP: a header whose sizes, dimensions and bit depth are a picture's,
//!   and the pixel rows it declares within the size it declares;
//! - WebP: the RIFF size and a `VP8 `/`VP8L`/`VP8X` first chunk within it;
//! - a Windows thumbnail cache entry (`CMMM`, the remnant of a deleted
//!   `thumbcache_*.db`): a layout of Vista, 7 or 8–11 whose header CRC-64
//!   checks out and whose sizes fit; its data (the thumbnail) is the
//!   member, `0x<entry's byte>.thumbcache-0x<entry hash>.jpg`, with both
//!   CRC-64s recorded (`within.checksums`), the hash being the cache id
//!   that leads back to the original's path.
//!
//! A carved picture is stepped over (a JPEG's EXIF thumbnail is its own
//! member, found by the EXIF expander, not carved again). Only contiguous
//! pictures are found: a picture whose clusters were not one after
//! another in the free space comes out cut short (it fails its structure
//! and is not kept) or, for a JPEG, with the data of what lay between.

use super::stream::Slice;
use super::{Body, Member, Members, member_meta};
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::read_exact;

/// The largest picture carved.
const MAX_PICTURE: u64 = 64 << 20;
/// Bytes searched per read.
const WINDOW: usize = 1 << 20;

/// The pictures carved from `src` (`size` bytes of unallocated space).
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    max_members: u64,
) -> Result<Members<'a>, String> {
    Ok(Box::new(Carver {
        src,
        size,
        at: 0,
        buf: Vec::new(),
        base: 0,
        found: 0,
        max_members,
        done: false,
    }))
}

struct Carver<'a> {
    src: &'a dyn Source,
    size: u64,
    /// Where the search goes on.
    at: u64,
    /// The window being searched, from `base`.
    buf: Vec<u8>,
    base: u64,
    found: u64,
    max_members: u64,
    done: bool,
}

impl<'a> Iterator for Carver<'a> {
    type Item = Result<Member<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done && self.at < self.size {
            if self.at < self.base || self.at >= self.base + self.buf.len() as u64 {
                let n = (self.size - self.at).min(WINDOW as u64) as usize;
                self.buf.resize(n, 0);
                if let Err(e) = read_exact(self.src, &mut self.buf, self.at) {
                    self.done = true;
                    return Some(Err(format!("reading it at byte {}: {e}", self.at)));
                }
                self.base = self.at;
            }
            let from = (self.at - self.base) as usize;
            let Some(i) = self.buf[from..].iter().position(|b| FIRST[*b as usize]) else {
                self.at = self.base + self.buf.len() as u64;
                continue;
            };
            let o = self.base + (from + i) as u64;
            self.at = o + 1;
            // Most candidates fail on the bytes already in the window.
            let head = &self.buf[from + i..];
            let found = if head[0] == b'C' {
                if head.len() >= 4 && !head.starts_with(b"CMMM") {
                    continue;
                }
                match super::thumbcache::loose_entry(self.src, o, self.size, MAX_PICTURE) {
                    Some(e) => Found::Entry(e),
                    None => continue,
                }
            } else {
                match picture_at(self.src, o, self.size) {
                    Some((len, ext)) => Found::Picture(len, ext),
                    None => continue,
                }
            };
            if self.found >= self.max_members {
                self.done = true;
                return Some(Err(format!(
                    "more than {} pictures carved: the limit for one container (--max-members)",
                    self.max_members
                )));
            }
            self.found += 1;
            let shown = self.src.medium_offset(o).unwrap_or(o);
            let (name, o, len, checksums, next) = match found {
                Found::Picture(len, ext) => {
                    (format!("0x{shown:x}.{ext}"), o, len, Vec::new(), o + len)
                }
                Found::Entry(e) => {
                    let ext = picture_at(self.src, e.data_at, e.data_at + e.data_len)
                        .map_or("bin", |(_, ext)| ext);
                    let name = format!("0x{shown:x}.thumbcache-0x{:016x}.{ext}", e.hash);
                    // Its data is stepped over when its checksum shows it
                    // whole (its picture is this member, not carved
                    // again); data that fails it may be newer bytes over a
                    // remnant, searched again.
                    let whole = e.checksums.iter().all(|c| c.stored == c.computed);
                    let next = if whole {
                        e.data_at + e.data_len
                    } else {
                        e.data_at + 1
                    };
                    (name, e.data_at, e.data_len, e.checksums, next)
                }
            };
            self.at = next;
            return Some(Ok(Member {
                name: RawPath::from_bytes(name.into_bytes()),
                offset: Some(o),
                meta: member_meta(len, libc::S_IFREG | 0o644, 0),
                crc32: None,
                checksums,
                found: None,
                body: Body::Read {
                    src: Box::new(Slice {
                        src: self.src,
                        offset: o,
                        len,
                    }),
                    to_end: false,
                    stored: true,
                },
            }));
        }
        None
    }
}

/// What was found at a signature.
enum Found {
    /// A picture: its length and name's ending.
    Picture(u64, &'static str),
    /// A thumbnail cache entry (`CMMM`), its header checksum right.
    Entry(super::thumbcache::Loose),
}

/// The bytes a signature can start with.
const FIRST: [bool; 256] = {
    let mut t = [false; 256];
    t[b'C' as usize] = true;
    t[0xFF] = true;
    t[0x89] = true;
    t[b'G' as usize] = true;
    t[b'B' as usize] = true;
    t[b'R' as usize] = true;
    t
};

/// The picture starting at `o`, if one reads through to its end there:
/// (its length, its name's ending).
fn picture_at(src: &dyn Source, o: u64, size: u64) -> Option<(u64, &'static str)> {
    let mut h = [0u8; 40];
    let n = (size - o).min(40) as usize;
    read_exact(src, &mut h[..n], o).ok()?;
    let h = &h[..n];
    let end = size.min(o + MAX_PICTURE);
    if h.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg(src, o, end).map(|l| (l, "jpg"))
    } else if h.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(src, o, end).map(|l| (l, "png"))
    } else if h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a") {
        gif(src, o, end).map(|l| (l, "gif"))
    } else if h.starts_with(b"BM") {
        bmp(h, o, end).map(|l| (l, "bmp"))
    } else if h.starts_with(b"RIFF") && h.get(8..12) == Some(b"WEBP") {
        webp(h, o, end).map(|l| (l, "webp"))
    } else {
        None
    }
}

/// Reads forward through a source a byte at a time, buffered.
struct Cursor<'a> {
    src: &'a dyn Source,
    at: u64,
    end: u64,
    buf: Vec<u8>,
    base: u64,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a dyn Source, at: u64, end: u64) -> Cursor<'a> {
        Cursor {
            src,
            at,
            end,
            buf: Vec::new(),
            base: 0,
        }
    }

    fn byte(&mut self) -> Option<u8> {
        if self.at >= self.end {
            return None;
        }
        if self.at < self.base || self.at >= self.base + self.buf.len() as u64 {
            let n = (self.end - self.at).min(64 << 10) as usize;
            self.buf.resize(n, 0);
            read_exact(self.src, &mut self.buf, self.at).ok()?;
            self.base = self.at;
        }
        let b = self.buf[(self.at - self.base) as usize];
        self.at += 1;
        Some(b)
    }

    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.byte()?;
        }
        Some(out)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let to = self.at.checked_add(n)?;
        (to <= self.end).then(|| self.at = to)
    }
}

/// A JPEG from SOI to EOI.
fn jpeg(src: &dyn Source, o: u64, end: u64) -> Option<u64> {
    let mut c = Cursor::new(src, o + 2, end);
    let mut frame = false;
    loop {
        if c.byte()? != 0xFF {
            return None;
        }
        let mut m = c.byte()?;
        while m == 0xFF {
            m = c.byte()?;
        }
        match m {
            0xD9 => return None,
            0xD8 | 0x00 => return None,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let [a, b] = c.bytes::<2>()?;
        let len = u16::from_be_bytes([a, b]) as u64;
        if len < 2 {
            return None;
        }
        if matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC) {
            frame = true;
        }
        c.skip(len - 2)?;
        if m != 0xDA {
            continue;
        }
        if !frame {
            return None;
        }
        // Entropy-coded data, to the next marker that is not a stuffed
        // byte or a restart.
        loop {
            if c.byte()? != 0xFF {
                continue;
            }
            let mut n = c.byte()?;
            while n == 0xFF {
                n = c.byte()?;
            }
            match n {
                0x00 | 0xD0..=0xD7 => continue,
                0xD9 => return Some(c.at - o),
                _ => {
                    // Another segment (a progressive JPEG's next scan).
                    c.at -= 2;
                    break;
                }
            }
        }
    }
}

/// A PNG from its signature to the end of IEND, every chunk's CRC right.
fn png(src: &dyn Source, o: u64, end: u64) -> Option<u64> {
    let mut c = Cursor::new(src, o + 8, end);
    let mut first = true;
    loop {
        let len = u32::from_be_bytes(c.bytes::<4>()?) as u64;
        if len > 0x7FFF_FFFF {
            return None;
        }
        let kind = c.bytes::<4>()?;
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        if first && (&kind != b"IHDR" || len != 13) {
            return None;
        }
        first = false;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&kind);
        let mut left = len;
        let mut chunk = [0u8; 8192];
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            for b in &mut chunk[..n] {
                *b = c.byte()?;
            }
            crc.update(&chunk[..n]);
            left -= n as u64;
        }
        if u32::from_be_bytes(c.bytes::<4>()?) != crc.finalize() {
            return None;
        }
        if &kind == b"IEND" {
            return Some(c.at - o);
        }
    }
}

/// A GIF from its header to its trailer.
fn gif(src: &dyn Source, o: u64, end: u64) -> Option<u64> {
    let mut c = Cursor::new(src, o + 6, end);
    let lsd = c.bytes::<7>()?;
    if lsd[4] & 0x80 != 0 {
        c.skip(3 << ((lsd[4] & 7) + 1))?;
    }
    let mut images = 0;
    loop {
        match c.byte()? {
            0x3B => return (images > 0).then_some(c.at - o),
            0x21 => {
                c.byte()?;
                sub_blocks(&mut c)?;
            }
            0x2C => {
                let d = c.bytes::<9>()?;
                if d[8] & 0x80 != 0 {
                    c.skip(3 << ((d[8] & 7) + 1))?;
                }
                let min_code = c.byte()?;
                if !(1..=11).contains(&min_code) {
                    return None;
                }
                sub_blocks(&mut c)?;
                images += 1;
            }
            _ => return None,
        }
    }
}

fn sub_blocks(c: &mut Cursor<'_>) -> Option<()> {
    loop {
        let n = c.byte()?;
        if n == 0 {
            return Some(());
        }
        c.skip(n as u64)?;
    }
}

/// A BMP by its headers: the size it declares, when its fields are a
/// picture's.
fn bmp(h: &[u8], o: u64, end: u64) -> Option<u64> {
    if h.len() < 34 {
        return None;
    }
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]) as u64;
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
    let (size, reserved, pixels, dib) = (u32_at(2), u32_at(6), u32_at(10), u32_at(14));
    if reserved != 0 || !matches!(dib, 12 | 40 | 52 | 56 | 64 | 108 | 124) {
        return None;
    }
    if pixels < 14 + dib || pixels >= size || o + size > end {
        return None;
    }
    let (w, h_abs, planes, bpp, compression) = if dib == 12 {
        (u16_at(18), u16_at(20), u16_at(22), u16_at(24), 0)
    } else {
        let h = (u32_at(22) as u32 as i32).unsigned_abs() as u64;
        (u32_at(18), h, u16_at(26), u16_at(28), u32_at(30))
    };
    if !(1..=65_535).contains(&w) || !(1..=65_535).contains(&h_abs) || planes != 1 {
        return None;
    }
    if !matches!(bpp, 1 | 4 | 8 | 16 | 24 | 32) || compression > 6 {
        return None;
    }
    // Uncompressed rows must fit in what it declares.
    if compression == 0 && (w * bpp).div_ceil(32) * 4 * h_abs > size - pixels {
        return None;
    }
    Some(size)
}

/// A WebP by its RIFF size, when its first chunk is a WebP one within it.
fn webp(h: &[u8], o: u64, end: u64) -> Option<u64> {
    if h.len() < 16 {
        return None;
    }
    let riff = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as u64;
    let len = riff + 8;
    if !matches!(&h[12..16], b"VP8 " | b"VP8L" | b"VP8X") || riff < 12 || o + len > end {
        return None;
    }
    Some(len)
}

/// The carving expander ([`super::Kind::Carve`]).
pub(crate) struct Carve;

impl super::Expander for Carve {
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
    use crate::source::tree::MemSource;

    fn carve(bytes: &[u8]) -> Vec<(String, u64, u64)> {
        let src = MemSource(bytes.to_vec());
        members(&src, bytes.len() as u64, 100)
            .unwrap()
            .map(|m| {
                let m = m.unwrap();
                (m.name.to_string(), m.offset.unwrap(), m.meta.size)
            })
            .collect()
    }

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn pictures_written_by_the_image_crate_are_carved_whole_between_noise() {
        let mut disk = vec![0x5Au8; 1000];
        let mut want = Vec::new();
        for (f, ext) in [
            (image::ImageFormat::Jpeg, "jpg"),
            (image::ImageFormat::Png, "png"),
            (image::ImageFormat::Gif, "gif"),
            (image::ImageFormat::Bmp, "bmp"),
            (image::ImageFormat::WebP, "webp"),
        ] {
            let pic = encoded(f);
            want.push((
                format!("0x{:x}.{ext}", disk.len()),
                disk.len() as u64,
                pic.len() as u64,
            ));
            disk.extend_from_slice(&pic);
            // Noise with false starts of every signature.
            disk.extend_from_slice(
                b"\xFF\xD8\xFF\xE0\x00\x02\xFF\xD9 \x89PNG\r\n\x1a\n GIF89a BM RIFF",
            );
            disk.extend(std::iter::repeat_n(0x11, 777));
        }
        assert_eq!(carve(&disk), want);
    }

    #[test]
    fn damaged_pictures_are_not_kept() {
        let png = encoded(image::ImageFormat::Png);
        let mut bad = png.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert!(carve(&bad).is_empty(), "a CRC that fails");
        assert!(carve(&png[..png.len() - 1]).is_empty(), "cut short");
        let jpeg = encoded(image::ImageFormat::Jpeg);
        assert!(carve(&jpeg[..jpeg.len() - 2]).is_empty(), "no EOI");
        assert_eq!(carve(&jpeg).len(), 1);
    }
}
