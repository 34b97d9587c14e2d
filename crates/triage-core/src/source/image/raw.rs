//! Raw images (`dd`), in one file or split into segments named in
//! sequence: `.000 .001 …`, `.001 .002 …`, `.aa .ab …`.
//!
//! A raw image has no header of its own: it is recognised by what a disk
//! or a volume starts with (an MBR or GPT, a FAT/NTFS/exFAT boot sector,
//! an ext or HFS+ superblock, an ISO 9660 volume descriptor).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Image, ImageError, no_holes};
use crate::source::tree::Source;

/// Whether `head` (the first bytes of a file, up to 64 KiB) looks like the
/// start of a disk or a volume.
pub fn looks_like_media(head: &[u8]) -> bool {
    let at = |o: usize, s: &[u8]| head.get(o..o + s.len()) == Some(s);
    let boot = at(510, &[0x55, 0xAA]);
    let jump = matches!(head.first(), Some(0xEB | 0xE9));
    let fs_boot =
        jump && (at(3, b"NTFS    ") || at(3, b"EXFAT   ") || at(54, b"FAT") || at(82, b"FAT32"));
    let mbr =
        boot && (0..4).any(|i| {
            let e = &head[446 + i * 16..462 + i * 16];
            matches!(e[0], 0 | 0x80)
                && e[4] != 0
                && u32::from_le_bytes([e[12], e[13], e[14], e[15]]) != 0
        }) && (0..4).all(|i| matches!(head[446 + i * 16], 0 | 0x80));
    (boot && (fs_boot || mbr))
        || at(512, b"EFI PART")
        || at(1080, &[0x53, 0xEF])
        || at(1024, b"H+")
        || at(1024, b"HX")
        || (at(0, b"ER") && at(512, b"PM"))
        || at(32769, b"CD001")
}

/// The next segment name after `name`'s numbered or lettered suffix, if
/// it has one: `x.000` → `x.001`, `x.aa` → `x.ab`, `x.az` → `x.ba`.
fn next_name(name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    if suffix.len() >= 2 && suffix.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = suffix.parse().ok()?;
        return Some(format!("{stem}.{:0width$}", n + 1, width = suffix.len()));
    }
    if suffix.len() == 2 && suffix.bytes().all(|b| b.is_ascii_lowercase()) {
        let mut b = suffix.as_bytes().to_vec();
        if b[1] == b'z' {
            if b[0] == b'z' {
                return None;
            }
            b[0] += 1;
            b[1] = b'a';
        } else {
            b[1] += 1;
        }
        return Some(format!("{stem}.{}", String::from_utf8(b).ok()?));
    }
    None
}

/// The name before `name` in its sequence, if one can exist.
fn previous_name(name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    if suffix.len() >= 2 && suffix.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = suffix.parse().ok()?;
        return n
            .checked_sub(1)
            .map(|p| format!("{stem}.{p:0width$}", width = suffix.len()));
    }
    if suffix.len() == 2 && suffix.bytes().all(|b| b.is_ascii_lowercase()) && suffix != "aa" {
        let mut b = suffix.as_bytes().to_vec();
        if b[1] == b'a' {
            b[0] -= 1;
            b[1] = b'z';
        } else {
            b[1] -= 1;
        }
        return Some(format!("{stem}.{}", String::from_utf8(b).ok()?));
    }
    None
}

/// Opens a raw image starting at `path` (already open as `first`), with
/// the segments that follow it.
pub fn open(path: &Path, first: File, size: u64) -> Result<Image, ImageError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if let Some(prev) = previous_name(name) {
        let p = path.with_file_name(&prev);
        // `.001` also starts a set (when there is no `.000`).
        if p.exists() {
            return Err(ImageError::Format(
                path.to_path_buf(),
                format!(
                    "this is a later segment of a split image; give its first segment ('{prev}' or before)"
                ),
            ));
        }
    }
    let mut segments = vec![(path.to_path_buf(), first, size)];
    let mut next = next_name(name);
    while let Some(n) = next {
        let p = path.with_file_name(&n);
        if !p.exists() {
            break;
        }
        let f = super::open_image_file(&p).map_err(|e| ImageError::Io(p.clone(), e))?;
        let len = f
            .metadata()
            .map_err(|e| ImageError::Io(p.clone(), e))?
            .len();
        segments.push((p, f, len));
        next = next_name(&n);
    }
    let format = if segments.len() > 1 {
        "split-raw"
    } else {
        "raw"
    };
    let listed: Vec<(PathBuf, u64)> = segments.iter().map(|(p, _, l)| (p.clone(), *l)).collect();
    let media = Segmented::new(segments.into_iter().map(|(_, f, l)| (f, l)).collect());
    Ok(Image {
        format,
        size: media.size,
        media: Arc::new(media),
        segments: listed,
        metadata: Vec::new(),
        stored_digests: Vec::new(),
        notes: Vec::new(),
    })
}

/// Files read one after the other as one medium.
pub struct Segmented {
    /// (file, offset in the medium), in order.
    parts: Vec<(File, u64)>,
    size: u64,
}

impl Segmented {
    /// The concatenation of `files` with the given lengths.
    pub fn new(files: Vec<(File, u64)>) -> Segmented {
        let mut parts = Vec::with_capacity(files.len());
        let mut at = 0;
        for (f, len) in files {
            parts.push((f, at));
            at += len;
        }
        Segmented { parts, size: at }
    }
}

impl Source for Segmented {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let i = self.parts.partition_point(|p| p.1 <= offset) - 1;
        let end = self.parts.get(i + 1).map_or(self.size, |p| p.1);
        let n = (end - offset).min(buf.len() as u64) as usize;
        let (file, start) = &self.parts[i];
        std::os::unix::fs::FileExt::read_at(file, &mut buf[..n], offset - start)
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
    fn segment_names_follow_each_other() {
        assert_eq!(next_name("a.000").as_deref(), Some("a.001"));
        assert_eq!(next_name("a.099").as_deref(), Some("a.100"));
        assert_eq!(next_name("a.aa").as_deref(), Some("a.ab"));
        assert_eq!(next_name("a.az").as_deref(), Some("a.ba"));
        assert_eq!(next_name("a.zz"), None);
        assert_eq!(next_name("a.img"), None);
        assert_eq!(previous_name("a.001").as_deref(), Some("a.000"));
        assert_eq!(previous_name("a.000"), None);
        assert_eq!(previous_name("a.ba").as_deref(), Some("a.az"));
        assert_eq!(previous_name("a.aa"), None);
    }
}
