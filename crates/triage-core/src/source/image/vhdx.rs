//! VHDX (Hyper-V), fixed and dynamic, read-only.
//!
//! Layout (Microsoft's [MS-VHDX]): a file identifier, two headers (the
//! valid one with the higher sequence number counts; CRC-32C checked), two
//! region tables naming the block allocation table (BAT) and the metadata
//! region; the metadata gives the block size, the disk's size and its
//! logical sector size. The BAT has one entry per payload block, with a
//! sector-bitmap entry after every "chunk ratio" of them; a block is
//! present (at a 1 MiB-aligned offset), or reads as zeros. Differencing
//! disks (which need their parent) are refused; a log that was not
//! replayed (the disk was not closed cleanly) is noted: the blocks it
//! would have changed are read as they are.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::{Image, ImageError, no_holes};
use crate::source::bytes::{le32, le64};
use crate::source::tree::Source;

/// The file identifier's signature.
pub const SIGNATURE: &[u8] = b"vhdxfile";

const BAT_GUID: [u8; 16] = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
const METADATA_GUID: [u8; 16] = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const FILE_PARAMETERS: [u8; 16] = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const DISK_SIZE: [u8; 16] = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const SECTOR_SIZE: [u8; 16] = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);

/// A GUID as its 16 bytes on disk (the first three fields little-endian).
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// CRC-32C (Castagnoli, reflected), as VHDX checksums its structures.
pub fn crc32c(data: &[u8]) -> u32 {
    crate::source::bytes::crc32_reflected(0x82F6_3B78, data)
}

/// Whether the checksum at `at` (4 bytes) of `buf` holds, computed with
/// that field zeroed.
fn checksum_ok(buf: &[u8], at: usize) -> bool {
    let mut copy = buf.to_vec();
    copy[at..at + 4].fill(0);
    crc32c(&copy) == le32(buf, at)
}

struct Vhdx {
    file: File,
    file_len: u64,
    size: u64,
    block: u64,
    chunk_ratio: u64,
    bat: Vec<u64>,
}

impl Source for Vhdx {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let b = offset / self.block;
        let within = offset % self.block;
        let n = (self.block - within)
            .min(buf.len() as u64)
            .min(self.size - offset) as usize;
        let out = &mut buf[..n];
        let index = b + b / self.chunk_ratio;
        let entry = self.bat.get(index as usize).copied().unwrap_or(0);
        match entry & 7 {
            // Fully present.
            6 => {
                let at = (entry >> 20) << 20;
                if at.saturating_add(self.block) > self.file_len.next_multiple_of(1 << 20) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "VHDX block {b} (media bytes {}..) lies past the end of the file",
                            b * self.block
                        ),
                    ));
                }
                self.file.read_exact_at(out, at + within)?;
            }
            // Not present, undefined, zero, unmapped: zeros (no parent).
            0..=3 => out.fill(0),
            s => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "VHDX block {b} has state {s}, which a disk without a parent cannot have"
                    ),
                ));
            }
        }
        Ok(n)
    }
    no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

/// Opens the VHDX at `path`.
pub fn open(path: &Path, file: File) -> Result<Image, ImageError> {
    let fmt = |m: String| ImageError::Format(path.to_path_buf(), m);
    let io_err = |e| ImageError::Io(path.to_path_buf(), e);
    let file_len = file.metadata().map_err(io_err)?.len();
    let read = |at: u64, n: usize| -> Result<Vec<u8>, ImageError> {
        if at.saturating_add(n as u64) > file_len {
            return Err(fmt(format!(
                "VHDX structure at byte {at} lies past the end of the file"
            )));
        }
        let mut v = vec![0u8; n];
        file.read_exact_at(&mut v, at).map_err(io_err)?;
        Ok(v)
    };
    let mut notes = Vec::new();
    // The current header: valid, with the higher sequence number.
    let mut header: Option<Vec<u8>> = None;
    for at in [64 << 10, 128 << 10] {
        let h = read(at, 4096)?;
        if &h[..4] == b"head"
            && checksum_ok(&h, 4)
            && header.as_ref().is_none_or(|c| le64(&h, 8) > le64(c, 8))
        {
            header = Some(h);
        }
    }
    let header = header.ok_or_else(|| fmt("neither VHDX header is valid (damaged)".into()))?;
    if header[48..64].iter().any(|&b| b != 0) {
        notes.push("the VHDX log was not replayed (the disk was not closed cleanly): blocks it would change are read as they are".into());
    }
    let mut regions: Option<Vec<u8>> = None;
    for at in [192 << 10, 256 << 10] {
        let r = read(at, 64 << 10)?;
        if &r[..4] == b"regi" && checksum_ok(&r, 4) {
            regions = Some(r);
            break;
        }
    }
    let regions =
        regions.ok_or_else(|| fmt("neither VHDX region table is valid (damaged)".into()))?;
    let count = (le32(&regions, 8) as usize).min(2047);
    let (mut bat_at, mut bat_len, mut meta_at, mut meta_len) = (None, 0u64, None, 0u64);
    for k in 0..count {
        let e = &regions[16 + k * 32..48 + k * 32];
        let (off, len) = (le64(e, 16), le32(e, 24) as u64);
        if e[..16] == BAT_GUID {
            (bat_at, bat_len) = (Some(off), len);
        } else if e[..16] == METADATA_GUID {
            (meta_at, meta_len) = (Some(off), len);
        } else if le32(e, 28) & 1 != 0 {
            return Err(fmt(
                "the VHDX file needs a region this version of triage does not know".into(),
            ));
        }
    }
    let (Some(bat_at), Some(meta_at)) = (bat_at, meta_at) else {
        return Err(fmt(
            "the VHDX region table lacks the BAT or the metadata".into()
        ));
    };
    let meta = read(meta_at, meta_len.min(1 << 20) as usize)?;
    if &meta[..8] != b"metadata" {
        return Err(fmt("the VHDX metadata region has no signature".into()));
    }
    let items = (u16::from_le_bytes([meta[10], meta[11]]) as usize).min(2047);
    let item = |id: &[u8; 16]| -> Option<&[u8]> {
        (0..items).find_map(|k| {
            let e = meta.get(32 + k * 32..64 + k * 32)?;
            (e[..16] == *id).then(|| {
                let (o, l) = (le32(e, 16) as usize, le32(e, 20) as usize);
                meta.get(o..o.saturating_add(l))
            })?
        })
    };
    let params = item(&FILE_PARAMETERS)
        .filter(|v| v.len() >= 8)
        .ok_or_else(|| fmt("VHDX without file parameters".into()))?;
    let block = le32(params, 0) as u64;
    if le32(params, 4) & 2 != 0 {
        return Err(fmt("this is a differencing VHDX: it holds only the changes from its parent disk; merge it first (`qemu-img convert -O raw CHILD.vhdx FLAT.raw`) and scan that".into()));
    }
    let size = item(&DISK_SIZE)
        .filter(|v| v.len() >= 8)
        .map(|v| le64(v, 0))
        .ok_or_else(|| fmt("VHDX without a disk size".into()))?;
    let sector = item(&SECTOR_SIZE)
        .filter(|v| v.len() >= 4)
        .map(|v| le32(v, 0) as u64)
        .unwrap_or(512);
    if !(1 << 20..=256 << 20).contains(&block)
        || !block.is_power_of_two()
        || !matches!(sector, 512 | 4096)
    {
        return Err(fmt(format!(
            "VHDX block size {block} or sector size {sector} is invalid"
        )));
    }
    let chunk_ratio = (1u64 << 23) * sector / block;
    let blocks = size.div_ceil(block);
    // [MS-VHDX] 2.5: payload entries, and a bitmap entry after each chunk.
    let entries = blocks + blocks.saturating_sub(1) / chunk_ratio.max(1);
    if entries > bat_len / 8 || bat_len > 1 << 30 {
        return Err(fmt(format!(
            "the VHDX BAT of {bat_len} bytes cannot map {size} bytes"
        )));
    }
    let raw = read(bat_at, (entries * 8) as usize)?;
    let bat = raw.chunks_exact(8).map(|c| le64(c, 0)).collect();
    let v = Vhdx {
        file,
        file_len,
        size,
        block,
        chunk_ratio: chunk_ratio.max(1),
        bat,
    };
    Ok(Image {
        format: "vhdx",
        size,
        media: Arc::new(v),
        segments: vec![(path.to_path_buf(), file_len)],
        metadata: Vec::new(),
        stored_digests: Vec::new(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_matches_the_published_check_value() {
        // The CRC catalogue's check value of CRC-32C for "123456789".
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
    }
}
