//! VHD (Virtual PC / Hyper-V, "conectix"), fixed and dynamic, read-only.
//!
//! Layout (Microsoft's "Virtual Hard Disk Image Format Specification"): a
//! 512-byte big-endian footer at the end of the file (copied at the start
//! of a dynamic disk); a fixed disk is its data then the footer; a dynamic
//! disk has a header pointing at a block allocation table, each allocated
//! block being a sector bitmap then the block's data. A sector whose bit
//! is clear, or in an unallocated block, reads as zeros. Differencing
//! disks (which need their parent) are refused.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::{Image, ImageError, no_holes};
use crate::source::bytes::{be32, be64};
use crate::source::tree::Source;

/// The footer's first eight bytes.
pub const COOKIE: &[u8] = b"conectix";

const UNUSED: u32 = 0xFFFF_FFFF;

/// The spec's checksum: the one's complement of the byte sum, the
/// checksum field counted as zero.
fn checksum(b: &[u8], field: usize) -> u32 {
    let sum: u32 = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .map(|(_, &x)| x as u32)
        .fold(0u32, u32::wrapping_add);
    !sum
}

/// A fixed disk: the file's bytes before the footer.
struct Fixed {
    file: File,
    size: u64,
}

impl Source for Fixed {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = (self.size - offset).min(buf.len() as u64) as usize;
        FileExt::read_at(&self.file, &mut buf[..n], offset)
    }
    no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

/// A dynamic disk.
struct Dynamic {
    file: File,
    size: u64,
    block: u64,
    /// Sector offsets of blocks (`UNUSED`: not allocated).
    bat: Vec<u32>,
    /// Bytes of the sector bitmap before each block's data.
    bitmap: u64,
    file_len: u64,
}

impl Source for Dynamic {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let b = offset / self.block;
        let within = offset % self.block;
        // One sector at a time would be slow; read the run within the block,
        // then clear the sectors the bitmap says are absent.
        let n = (self.block - within)
            .min(buf.len() as u64)
            .min(self.size - offset) as usize;
        let out = &mut buf[..n];
        let entry = self.bat.get(b as usize).copied().unwrap_or(UNUSED);
        if entry == UNUSED {
            out.fill(0);
            return Ok(n);
        }
        let start = entry as u64 * 512;
        if start + self.bitmap + self.block > self.file_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "VHD block {b} (media bytes {}..) lies past the end of the file",
                    b * self.block
                ),
            ));
        }
        let first = within / 512;
        let last = (within + n as u64 - 1) / 512;
        let mut bits = vec![0u8; (last / 8 - first / 8 + 1) as usize];
        self.file.read_exact_at(&mut bits, start + first / 8)?;
        self.file.read_exact_at(out, start + self.bitmap + within)?;
        for s in first..=last {
            let byte = bits[(s / 8 - first / 8) as usize];
            if byte & (0x80 >> (s % 8)) == 0 {
                let from = (s * 512).saturating_sub(within) as usize;
                let to = ((s + 1) * 512 - within).min(n as u64) as usize;
                out[from..to].fill(0);
            }
        }
        Ok(n)
    }
    no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

/// Opens the VHD at `path`, whose last 512 bytes are `footer`.
pub fn open(path: &Path, file: File, footer: &[u8]) -> Result<Image, ImageError> {
    let fmt = |m: String| ImageError::Format(path.to_path_buf(), m);
    let io_err = |e| ImageError::Io(path.to_path_buf(), e);
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut notes = Vec::new();
    if checksum(footer, 64) != be32(footer, 64) {
        notes.push("the VHD footer fails its checksum".to_string());
    }
    let size = be64(footer, 48);
    let kind = be32(footer, 60);
    let segments = vec![(path.to_path_buf(), file_len)];
    let image = |media: Arc<dyn Source>, format_kind: &str, notes: Vec<String>| Image {
        format: "vhd",
        size,
        media,
        segments: segments.clone(),
        metadata: vec![("vhd_type".into(), format_kind.into())],
        stored_digests: Vec::new(),
        notes,
    };
    match kind {
        2 => {
            if size + 512 > file_len {
                return Err(fmt(format!(
                    "fixed VHD of {size} bytes in a file of {file_len}: truncated"
                )));
            }
            Ok(image(Arc::new(Fixed { file, size }), "fixed", notes))
        }
        3 => {
            let header_at = be64(footer, 16);
            if header_at.checked_add(1024).is_none_or(|e| e > file_len) {
                return Err(fmt("the VHD dynamic header lies past the end of the file".into()));
            }
            let mut h = vec![0u8; 1024];
            file.read_exact_at(&mut h, header_at).map_err(io_err)?;
            if &h[..8] != b"cxsparse" {
                return Err(fmt("the VHD dynamic header has no 'cxsparse' cookie".into()));
            }
            if checksum(&h, 36) != be32(&h, 36) {
                notes.push("the VHD dynamic header fails its checksum".to_string());
            }
            let bat_at = be64(&h, 16);
            let entries = be32(&h, 28) as u64;
            let block = be32(&h, 32) as u64;
            if block < 512 || !block.is_power_of_two() || block > 1 << 30 {
                return Err(fmt(format!("VHD block size {block} is invalid")));
            }
            if entries < size.div_ceil(block) || entries > 1 << 26 {
                return Err(fmt(format!(
                    "VHD allocation table of {entries} entries cannot map {size} bytes"
                )));
            }
            if bat_at.checked_add(entries * 4).is_none_or(|e| e > file_len) {
                return Err(fmt("the VHD allocation table lies past the end of the file".into()));
            }
            let mut raw = vec![0u8; (entries * 4) as usize];
            file.read_exact_at(&mut raw, bat_at).map_err(io_err)?;
            let bat = raw.chunks(4).map(|c| be32(c, 0)).collect();
            let bitmap = (block / 512).div_ceil(8).next_multiple_of(512);
            let d = Dynamic {
                file,
                size,
                block,
                bat,
                bitmap,
                file_len,
            };
            Ok(image(Arc::new(d), "dynamic", notes))
        }
        4 => Err(fmt(
            "this is a differencing VHD: it holds only the changes from its parent disk; merge it first (`qemu-img convert -O raw CHILD.vhd FLAT.raw`) and scan that".into(),
        )),
        other => Err(fmt(format!("VHD disk type {other} is unknown"))),
    }
}
