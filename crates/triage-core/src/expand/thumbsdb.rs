//! `Thumbs.db`: the thumbnail cache Windows 98 to XP kept in every folder
//! of pictures it showed (and Windows 7 and later still write on network
//! shares). An OLE compound file (read with the `cfb` crate): a `Catalog`
//! stream lists each thumbnail's id, the file's name and its modification
//! time (FILETIME), and each thumbnail is a stream named by its id's
//! decimal digits reversed (id 12 is stream `21`), holding a short header
//! (its size, 12 or 24 bytes, and the data's length) and the picture
//! (JPEG, or PNG in later versions).
//!
//! Each thumbnail stream is a child item named by its stream and the
//! catalog's name for it (`Thumbs.db!21/holiday.jpg`), with the catalog's
//! time as its modification time: the file it showed may be long gone.
//! A stream not in the catalog is named by the stream alone. The
//! thumbnails are read one at a time into memory (each at most
//! [`MAX_STREAM`] bytes).
//!
//! A compound file that is not a thumbnail cache (a Word document, an
//! installer) is not one of these: [`is_thumbs_db`] tells them apart
//! before anything is recorded, by its `Catalog` stream.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use super::{Body, Member, Members, member_meta};
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::MemSource;

/// The largest thumbnail stream read.
const MAX_STREAM: u64 = 64 << 20;
/// The largest catalog read.
const MAX_CATALOG: u64 = 16 << 20;

/// Whether the compound file `src` is a thumbnail cache: it has a
/// `Catalog` stream at its root.
pub(crate) fn is_thumbs_db(src: &dyn Source, size: u64) -> bool {
    let Ok(cf) = open(src, size) else {
        return false;
    };
    cf.is_stream("/Catalog")
}

fn open(src: &dyn Source, size: u64) -> io::Result<cfb::CompoundFile<At<'_>>> {
    cfb::CompoundFile::open(At { src, pos: 0, size })
}

/// The thumbnails of a `Thumbs.db` of `size` bytes.
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    max_members: u64,
) -> Result<Members<'a>, String> {
    let mut cf = open(src, size).map_err(|e| format!("reading it as a compound file: {e}"))?;
    let catalog = catalog(&mut cf)?;
    let mut streams: Vec<String> = cf
        .read_root_storage()
        .filter(|e| e.is_stream() && e.name() != "Catalog")
        .map(|e| e.name().to_string())
        .collect();
    // Catalog order (by id), then any stream it does not name.
    let by_stream: HashMap<String, (u32, String, i64)> = catalog
        .iter()
        .map(|(id, name, t)| (reversed(*id), (*id, name.clone(), *t)))
        .collect();
    streams.sort_by_key(|s| match by_stream.get(s) {
        Some((id, ..)) => (0, *id as u64, s.clone()),
        None => (1, 0, s.clone()),
    });
    if streams.len() as u64 > max_members {
        return Err(format!(
            "{} streams: more than the limit of {max_members} for one container (--max-members)",
            streams.len()
        ));
    }
    let iter = streams.into_iter().map(move |stream| {
        let (name, mtime) = match by_stream.get(&stream) {
            Some((_, file, t)) => (format!("{stream}/{file}"), *t),
            None => (stream.clone(), 0),
        };
        let name = RawPath::from_bytes(name.into_bytes());
        let (body, len) = match thumbnail(&mut cf, &stream) {
            Ok(bytes) => {
                let len = bytes.len() as u64;
                let body = Body::Read {
                    src: Box::new(MemSource(bytes)),
                    to_end: false,
                    stored: false,
                };
                (body, len)
            }
            Err(why) => (Body::Failed(why), 0),
        };
        Ok(Member {
            name,
            offset: None,
            meta: member_meta(len, libc::S_IFREG | 0o644, mtime),
            crc32: None,
            checksums: Vec::new(),
            found: None,
            body,
        })
    });
    Ok(Box::new(iter))
}

/// A thumbnail stream's picture: after its header (its own size first,
/// then a field, then the picture's length).
fn thumbnail(cf: &mut cfb::CompoundFile<At<'_>>, stream: &str) -> Result<Vec<u8>, String> {
    let mut s = cf
        .open_stream(format!("/{stream}"))
        .map_err(|e| format!("opening stream '{stream}': {e}"))?;
    let len = s.len();
    if len > MAX_STREAM {
        return Err(format!(
            "stream '{stream}' is {len} bytes, over the {MAX_STREAM} read for a thumbnail"
        ));
    }
    let mut all = Vec::with_capacity(len as usize);
    s.read_to_end(&mut all)
        .map_err(|e| format!("reading stream '{stream}': {e}"))?;
    let u32_at = |i: usize| {
        all.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (Some(head), Some(data)) = (u32_at(0), u32_at(8)) else {
        return Err(format!(
            "stream '{stream}' is {len} bytes: too short for a thumbnail header"
        ));
    };
    if !matches!(head, 12 | 24) || head + data > all.len() {
        return Err(format!(
            "stream '{stream}' does not hold a thumbnail (a header of {head} bytes and {data} of picture in {len})"
        ));
    }
    all.truncate(head + data);
    all.drain(..head);
    Ok(all)
}

/// The catalog: (id, file name, modification time in Unix seconds).
fn catalog(cf: &mut cfb::CompoundFile<At<'_>>) -> Result<Vec<(u32, String, i64)>, String> {
    let mut s = cf
        .open_stream("/Catalog")
        .map_err(|e| format!("opening its Catalog: {e}"))?;
    if s.len() > MAX_CATALOG {
        return Err(format!("its Catalog is {} bytes: not read", s.len()));
    }
    let mut c = Vec::new();
    s.read_to_end(&mut c)
        .map_err(|e| format!("reading its Catalog: {e}"))?;
    let u16_at = |b: &[u8], i: usize| b.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let head = u16_at(&c, 0).ok_or("its Catalog is empty")? as usize;
    let mut out = Vec::new();
    let mut at = head.max(4);
    while let Some(len) = u32_at(&c, at) {
        let len = len as usize;
        if len < 16 || at + len > c.len() {
            break;
        }
        let e = &c[at..at + len];
        let id = u32_at(e, 4).unwrap_or(0);
        let ft = e.get(8..16).map_or(0, |b| {
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        });
        let units: Vec<u16> = e[16..]
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&units);
        out.push((id, name, filetime_secs(ft)));
        at += len;
    }
    Ok(out)
}

/// A FILETIME (100 ns ticks since 1601) in Unix seconds.
fn filetime_secs(ft: u64) -> i64 {
    (ft / 10_000_000) as i64 - 11_644_473_600
}

/// The stream name of a thumbnail id: its decimal digits reversed.
fn reversed(id: u32) -> String {
    id.to_string().chars().rev().collect()
}

/// A [`Source`] as the `Read + Seek` the `cfb` crate reads.
struct At<'a> {
    src: &'a dyn Source,
    pos: u64,
    size: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size {
            return Ok(0);
        }
        let n = (self.size - self.pos).min(buf.len() as u64) as usize;
        let got = self.src.read_at(&mut buf[..n], self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for At<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// The `Thumbs.db` expander ([`super::Kind::ThumbsDb`]).
pub(crate) struct ThumbsDb;

impl super::Expander for ThumbsDb {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        _path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size, budget.limits.members)
    }

    fn applies(&self, src: &dyn Source, size: u64) -> bool {
        is_thumbs_db(src, size)
    }

    fn random_access(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stream_names_are_ids_reversed_and_filetimes_convert() {
        assert_eq!(super::reversed(12), "21");
        assert_eq!(super::reversed(1), "1");
        assert_eq!(super::reversed(100), "001");
        // 2009-03-05 14:36:18 UTC.
        assert_eq!(super::filetime_secs(128_806_761_780_000_000), 1_236_202_578);
    }
}
