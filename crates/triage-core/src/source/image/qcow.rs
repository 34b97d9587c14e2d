//! QCOW2 (QEMU copy-on-write, versions 2 and 3), read-only.
//!
//! Layout (QEMU's `docs/interop/qcow2.txt`): a big-endian header, a level-1
//! table of level-2 table offsets, and level-2 tables of cluster offsets;
//! a cluster is stored plainly, compressed (raw deflate), marked as
//! zeros, or unallocated (zeros: a backing file would supply it, and
//! images with a backing file are refused). Encrypted images, external
//! data files, extended L2 entries, zstd compression and internal
//! snapshots other than the current state are refused or noted, never
//! guessed at.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::{Cache, Image, ImageError, no_holes};
use crate::source::bytes::{be32, be64};
use crate::source::tree::Source;

/// `QFI\xfb`.
pub const MAGIC: &[u8] = b"QFI\xfb";

const L2_COPIED_MASK: u64 = 0x00FF_FFFF_FFFF_FE00;

/// A QCOW2 image.
pub struct Qcow {
    file: File,
    cluster_bits: u32,
    size: u64,
    l1: Vec<u64>,
    file_len: u64,
    cache: Cache,
}

/// Opens the QCOW2 image at `path`, whose first bytes are `head`.
pub fn open(path: &Path, file: File, head: &[u8]) -> Result<Image, ImageError> {
    let fmt = |m: String| ImageError::Format(path.to_path_buf(), m);
    if head.len() < 72 {
        return Err(fmt("QCOW header is truncated".into()));
    }
    let version = be32(head, 4);
    if !(2..=3).contains(&version) {
        return Err(fmt(format!(
            "QCOW version {version}: only versions 2 and 3 (qcow2) are read; convert it with `qemu-img convert -O raw`"
        )));
    }
    if be64(head, 8) != 0 && be32(head, 16) != 0 {
        let (off, len) = (be64(head, 8) as usize, be32(head, 16) as usize);
        let name = head
            .get(off..off.saturating_add(len.min(1023)))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        return Err(fmt(format!(
            "this QCOW2 image has a backing file ('{name}'): it holds only the changes from it, which alone are not the medium; flatten it first with `qemu-img convert -O qcow2 IMAGE FLAT.qcow2` and scan that"
        )));
    }
    let cluster_bits = be32(head, 20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(fmt(format!(
            "QCOW2 cluster size 2^{cluster_bits} is invalid"
        )));
    }
    let size = be64(head, 24);
    if be32(head, 32) != 0 {
        return Err(fmt(
            "this QCOW2 image is encrypted: it cannot be read without its key".into(),
        ));
    }
    let mut notes = Vec::new();
    if version >= 3 && head.len() >= 104 {
        let incompatible = be64(head, 72);
        if incompatible & 0b100 != 0 {
            return Err(fmt("this QCOW2 image keeps its data in an external file: not read by this version of triage".into()));
        }
        if incompatible & 0b1000 != 0 && head.get(104).copied().unwrap_or(0) != 0 {
            return Err(fmt("this QCOW2 image uses zstd compression: not read by this version of triage; convert it with `qemu-img convert -O raw`".into()));
        }
        if incompatible & 0b1_0000 != 0 {
            return Err(fmt("this QCOW2 image uses extended L2 entries (subclusters): not read by this version of triage; convert it with `qemu-img convert -O raw`".into()));
        }
        if incompatible & 0b1 != 0 {
            notes.push("the QCOW2 image is marked dirty (not closed cleanly): its reference counts may be stale; data is read through the L1/L2 tables, which do not depend on them".into());
        }
        if incompatible & 0b10 != 0 {
            notes.push("the QCOW2 image is marked corrupt by QEMU: clusters may be wrong".into());
        }
    }
    if be32(head, 60) != 0 {
        notes.push(format!(
            "the QCOW2 image holds {} internal snapshot(s): only its current state is read",
            be32(head, 60)
        ));
    }
    let cluster = 1u64 << cluster_bits;
    let per_l2 = cluster / 8;
    let l1_size = be32(head, 36) as u64;
    let need = size.div_ceil(cluster).div_ceil(per_l2);
    if l1_size < need || l1_size > 1 << 25 {
        return Err(fmt(format!(
            "QCOW2 L1 table of {l1_size} entries cannot map {size} bytes"
        )));
    }
    let l1_at = be64(head, 40);
    let file_len = file
        .metadata()
        .map_err(|e| ImageError::Io(path.to_path_buf(), e))?
        .len();
    if l1_at.checked_add(need * 8).is_none_or(|e| e > file_len) {
        return Err(fmt(
            "QCOW2 L1 table lies past the end of the file: truncated".into(),
        ));
    }
    let mut raw = vec![0u8; (need * 8) as usize];
    file.read_exact_at(&mut raw, l1_at)
        .map_err(|e| ImageError::Io(path.to_path_buf(), e))?;
    let l1 = raw.chunks(8).map(|c| be64(c, 0)).collect();
    let q = Qcow {
        file,
        cluster_bits,
        size,
        l1,
        file_len,
        cache: Cache::default(),
    };
    Ok(Image {
        format: "qcow2",
        size,
        media: Arc::new(q),
        segments: vec![(path.to_path_buf(), file_len)],
        metadata: vec![("qcow_version".into(), version.to_string())],
        stored_digests: Vec::new(),
        notes,
    })
}

impl Qcow {
    fn damaged(&self, cluster: u64, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "QCOW2 cluster {cluster} (media bytes {}..) {what}",
                cluster << self.cluster_bits
            ),
        )
    }

    /// The L2 entry of guest cluster `c` (0: unallocated).
    fn l2_entry(&self, c: u64) -> io::Result<u64> {
        let per_l2 = 1u64 << (self.cluster_bits - 3);
        let l1e = self.l1[(c / per_l2) as usize];
        let l2_at = l1e & L2_COPIED_MASK;
        if l2_at == 0 {
            return Ok(0);
        }
        let at = l2_at + (c % per_l2) * 8;
        if at + 8 > self.file_len {
            return Err(self.damaged(c, "has its L2 table past the end of the file"));
        }
        let mut e = [0u8; 8];
        self.file.read_exact_at(&mut e, at)?;
        Ok(u64::from_be_bytes(e))
    }

    fn compressed(&self, c: u64, entry: u64) -> io::Result<Arc<[u8]>> {
        self.cache.get(c, || {
            let cluster = 1usize << self.cluster_bits;
            let x = 62 - (self.cluster_bits - 8);
            let offset = entry & ((1u64 << x) - 1);
            let sectors = (entry >> x) & ((1u64 << (62 - x)) - 1);
            let len = (sectors.saturating_add(1).saturating_mul(512) - (offset & 511))
                .min(4 * cluster as u64) as usize;
            let len = len.min(self.file_len.saturating_sub(offset) as usize);
            let mut stored = vec![0u8; len];
            self.file.read_exact_at(&mut stored, offset)?;
            let mut out = Vec::with_capacity(cluster);
            let mut z = flate2::Decompress::new(false);
            z.decompress_vec(&stored, &mut out, flate2::FlushDecompress::Finish)
                .map_err(|e| self.damaged(c, &format!("cannot be decompressed ({e})")))?;
            if out.len() < cluster {
                return Err(self.damaged(c, "decompresses to less than a cluster"));
            }
            Ok(out)
        })
    }
}

impl Source for Qcow {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let cluster = 1u64 << self.cluster_bits;
        let c = offset >> self.cluster_bits;
        let within = offset & (cluster - 1);
        let n = (cluster - within)
            .min(buf.len() as u64)
            .min(self.size - offset) as usize;
        let out = &mut buf[..n];
        let entry = self.l2_entry(c)?;
        if entry & (1 << 62) != 0 {
            let data = self.compressed(c, entry)?;
            out.copy_from_slice(&data[within as usize..within as usize + n]);
        } else {
            let host = entry & L2_COPIED_MASK;
            // Bit 0 (version 3): the cluster reads as zeros.
            if host == 0 || entry & 1 != 0 {
                out.fill(0);
            } else {
                if host + cluster > self.file_len.next_multiple_of(cluster) {
                    return Err(self.damaged(c, "points past the end of the file"));
                }
                self.file.read_exact_at(out, host + within)?;
            }
        }
        Ok(n)
    }
    no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}
