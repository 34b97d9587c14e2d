//! VMDK (VMware virtual disks): monolithic sparse, stream-optimized
//! (compressed), flat and split (a text descriptor naming extent files),
//! read-only.
//!
//! Layout (VMware's "Virtual Disk Format 1.1"): a sparse extent starts
//! with a little-endian header (`KDMV`): capacity and grain size in
//! sectors, a grain directory of grain-table offsets, grain tables of
//! grain offsets (0: unallocated, read as zeros; 1: a zeroed grain). In a
//! stream-optimized extent each grain is deflated behind a 12-byte
//! marker, and the real header is a footer near the end of the file. A
//! descriptor lists extents as `RW <sectors> FLAT|SPARSE|ZERO "file"
//! [offset]`. Disks with a parent (`parentCID` other than `ffffffff`,
//! snapshots) and ESX `VMFSSPARSE` extents are refused.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::{Cache, Image, ImageError, no_holes};
use crate::source::bytes::{le32, le64};
use crate::source::tree::Source;

/// A sparse extent's magic, as its first four bytes.
pub const SPARSE_MAGIC: &[u8] = b"KDMV";

const FLAG_ZERO_GRAIN: u32 = 1 << 2;
const FLAG_COMPRESSED: u32 = 1 << 16;
const GD_AT_END: u64 = u64::MAX;
/// Descriptors longer than this are not descriptors.
const MAX_DESCRIPTOR: usize = 1 << 20;

/// Whether `head` is a VMDK text descriptor.
pub fn is_descriptor(head: &[u8]) -> bool {
    let text = &head[..head.len().min(4096)];
    text.starts_with(b"# Disk DescriptorFile")
        || (text.windows(9).any(|w| w == b"createTyp") && text.windows(7).any(|w| w == b"version"))
            && !text.contains(&0)
}

/// One sparse extent file.
struct Sparse {
    file: File,
    file_len: u64,
    capacity: u64,
    grain: u64,
    per_gt: u64,
    /// Sector offsets of grain tables.
    gd: Vec<u32>,
    flags: u32,
    cache: Cache,
}

enum Kind {
    Flat { file: File, offset: u64 },
    Sparse(Box<Sparse>),
    Zero,
}

struct Extent {
    start: u64,
    len: u64,
    kind: Kind,
}

/// A VMDK disk: its extents, one after the other.
struct Vmdk {
    extents: Vec<Extent>,
    size: u64,
}

fn damaged(m: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.into())
}

impl Sparse {
    fn open(file: File) -> io::Result<(Sparse, Option<String>)> {
        let file_len = file.metadata()?.len();
        let mut h = [0u8; 512];
        file.read_exact_at(&mut h, 0)?;
        if &h[..4] != SPARSE_MAGIC {
            return Err(damaged("not a VMDK sparse extent (no KDMV magic)"));
        }
        let mut gd_at = le64(&h, 56);
        if gd_at == GD_AT_END {
            // Stream-optimized: the header that counts is the footer, one
            // sector before the end-of-stream marker.
            if file_len < 1024 {
                return Err(damaged("stream-optimized VMDK without its footer"));
            }
            file.read_exact_at(&mut h, file_len - 1024)?;
            if &h[..4] != SPARSE_MAGIC {
                return Err(damaged(
                    "stream-optimized VMDK whose footer is missing: the file is truncated",
                ));
            }
            gd_at = le64(&h, 56);
        }
        let flags = le32(&h, 8);
        let capacity = le64(&h, 12).saturating_mul(512);
        let grain = le64(&h, 20).saturating_mul(512);
        let per_gt = le32(&h, 44) as u64;
        if !(512..=1 << 30).contains(&grain)
            || !grain.is_power_of_two()
            || per_gt == 0
            || per_gt > 1 << 16
        {
            return Err(damaged(format!(
                "VMDK grain size {grain} or {per_gt} entries per table is invalid"
            )));
        }
        let tables = capacity.div_ceil(grain).div_ceil(per_gt);
        let gd_bytes = tables * 4;
        if gd_bytes > 1 << 28
            || gd_at
                .saturating_mul(512)
                .checked_add(gd_bytes)
                .is_none_or(|e| e > file_len)
        {
            return Err(damaged(
                "the VMDK grain directory lies past the end of the file",
            ));
        }
        let mut raw = vec![0u8; gd_bytes as usize];
        file.read_exact_at(&mut raw, gd_at.saturating_mul(512))?;
        let gd = raw.chunks(4).map(|c| le32(c, 0)).collect();
        // The embedded descriptor, to learn of a parent.
        let (d_at, d_len) = (
            le64(&h, 28).saturating_mul(512),
            le64(&h, 36).saturating_mul(512).min(u32::MAX as u64) as usize,
        );
        let descriptor = if d_at > 0
            && d_len > 0
            && d_len <= MAX_DESCRIPTOR
            && d_at.saturating_add(d_len as u64) <= file_len
        {
            let mut d = vec![0u8; d_len];
            file.read_exact_at(&mut d, d_at)?;
            let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
            Some(String::from_utf8_lossy(&d[..end]).into_owned())
        } else {
            None
        };
        let s = Sparse {
            file,
            file_len,
            capacity,
            grain,
            per_gt,
            gd,
            flags,
            cache: Cache::default(),
        };
        Ok((s, descriptor))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.capacity || buf.is_empty() {
            return Ok(0);
        }
        let g = offset / self.grain;
        let within = offset % self.grain;
        let n = (self.grain - within)
            .min(buf.len() as u64)
            .min(self.capacity - offset) as usize;
        let out = &mut buf[..n];
        let gt_at = self.gd[(g / self.per_gt) as usize] as u64 * 512;
        if gt_at == 0 {
            out.fill(0);
            return Ok(n);
        }
        let at = gt_at + (g % self.per_gt) * 4;
        if at + 4 > self.file_len {
            return Err(damaged(format!(
                "VMDK grain table of grain {g} lies past the end of the file"
            )));
        }
        let mut e = [0u8; 4];
        self.file.read_exact_at(&mut e, at)?;
        let sector = u32::from_le_bytes(e) as u64;
        if sector == 0 || (sector == 1 && self.flags & FLAG_ZERO_GRAIN != 0) {
            out.fill(0);
            return Ok(n);
        }
        let host = sector * 512;
        if self.flags & FLAG_COMPRESSED != 0 {
            let data = self.cache.get(g, || {
                let mut m = [0u8; 12];
                self.file.read_exact_at(&mut m, host)?;
                let size = le32(&m, 8) as u64;
                if size > self.grain * 2 + 4096 || host + 12 + size > self.file_len {
                    return Err(damaged(format!(
                        "VMDK compressed grain {g} has an impossible size"
                    )));
                }
                let mut stored = vec![0u8; size as usize];
                self.file.read_exact_at(&mut stored, host + 12)?;
                let mut out = Vec::with_capacity(self.grain as usize);
                let mut z = flate2::Decompress::new(true);
                z.decompress_vec(&stored, &mut out, flate2::FlushDecompress::Finish)
                    .map_err(|e| damaged(format!("VMDK grain {g} cannot be decompressed ({e})")))?;
                out.resize(self.grain as usize, 0);
                Ok(out)
            })?;
            out.copy_from_slice(&data[within as usize..within as usize + n]);
        } else {
            if host + self.grain > self.file_len.next_multiple_of(self.grain) {
                return Err(damaged(format!(
                    "VMDK grain {g} lies past the end of the file"
                )));
            }
            self.file.read_exact_at(out, host + within)?;
        }
        Ok(n)
    }
}

impl Source for Vmdk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let i = self.extents.partition_point(|e| e.start <= offset) - 1;
        let e = &self.extents[i];
        let within = offset - e.start;
        let n = (e.len - within).min(buf.len() as u64) as usize;
        let out = &mut buf[..n];
        match &e.kind {
            Kind::Zero => {
                out.fill(0);
                Ok(n)
            }
            Kind::Flat { file, offset: base } => FileExt::read_at(file, out, base + within),
            Kind::Sparse(s) => {
                let got = s.read_at(out, within)?;
                if got == 0 {
                    // The extent's own capacity is shorter than the descriptor says.
                    out.fill(0);
                    return Ok(n);
                }
                Ok(got)
            }
        }
    }
    no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

/// Refuses a descriptor that names a parent disk.
fn check_parent(descriptor: &str) -> Result<(), String> {
    for line in descriptor.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("parentCID") {
            let v = v.trim_start_matches([' ', '=']).trim().trim_matches('"');
            if !v.eq_ignore_ascii_case("ffffffff") {
                return Err("this VMDK is a snapshot (it names a parent disk): it holds only the changes from the parent; consolidate it first (`qemu-img convert -O vmdk CHILD.vmdk FLAT.vmdk`) and scan that".into());
            }
        }
    }
    Ok(())
}

/// Opens the VMDK at `path`: a sparse extent (`head` starts with `KDMV`) or
/// a descriptor naming extent files beside it.
pub fn open(path: &Path, file: File, head: &[u8]) -> Result<Image, ImageError> {
    let fmt = |m: String| ImageError::Format(path.to_path_buf(), m);
    let file_len = file
        .metadata()
        .map_err(|e| ImageError::Io(path.to_path_buf(), e))?
        .len();
    if head.starts_with(SPARSE_MAGIC) {
        let (s, descriptor) = Sparse::open(file).map_err(|e| fmt(e.to_string()))?;
        if let Some(d) = &descriptor {
            check_parent(d).map_err(fmt)?;
        }
        let size = s.capacity;
        let kind = if s.flags & FLAG_COMPRESSED != 0 {
            "streamOptimized"
        } else {
            "monolithicSparse"
        };
        return Ok(Image {
            format: "vmdk",
            size,
            media: Arc::new(Vmdk {
                extents: vec![Extent {
                    start: 0,
                    len: size,
                    kind: Kind::Sparse(Box::new(s)),
                }],
                size,
            }),
            segments: vec![(path.to_path_buf(), file_len)],
            metadata: vec![("vmdk_type".into(), kind.into())],
            stored_digests: Vec::new(),
            notes: Vec::new(),
        });
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(MAX_DESCRIPTOR)]).into_owned();
    check_parent(&text).map_err(fmt)?;
    let mut extents = Vec::new();
    let mut segments = vec![(path.to_path_buf(), file_len)];
    let mut at = 0u64;
    let mut create_type = String::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("createType") {
            create_type = v
                .trim_start_matches([' ', '='])
                .trim()
                .trim_matches('"')
                .to_string();
        }
        let mut words = l.splitn(3, ' ');
        let (Some(access), Some(sectors), Some(rest)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        if !matches!(access, "RW" | "RDONLY" | "NOACCESS") {
            continue;
        }
        let sectors: u64 = sectors
            .parse()
            .map_err(|_| fmt(format!("VMDK extent line '{l}': bad sector count")))?;
        let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let (name, offset) = match rest
            .trim()
            .strip_prefix('"')
            .and_then(|r| r.split_once('"'))
        {
            Some((n, o)) => (n.to_string(), o.trim().parse::<u64>().unwrap_or(0)),
            None => (String::new(), 0),
        };
        let len = sectors
            .checked_mul(512)
            .ok_or_else(|| fmt(format!("VMDK extent line '{l}': size overflows")))?;
        if kind != "ZERO" && (name.is_empty() || name.contains('/') || name == "." || name == "..")
        {
            return Err(fmt(format!(
                "VMDK extent '{name}': only extent files beside the descriptor are read (a path leading elsewhere is refused)"
            )));
        }
        // An extent file beside the descriptor, listed among the image's files.
        let mut open_extent = |name: &str| -> Result<File, ImageError> {
            let p = path.with_file_name(name);
            let missing = |e: io::Error| {
                ImageError::Io(
                    p.clone(),
                    io::Error::new(e.kind(), format!("{e}; an extent of the VMDK is missing")),
                )
            };
            let f = super::open_image_file(&p).map_err(missing)?;
            let flen = f
                .metadata()
                .map_err(|e| ImageError::Io(p.clone(), e))?
                .len();
            segments.push((p.clone(), flen));
            Ok(f)
        };
        let k = match kind {
            "ZERO" => Kind::Zero,
            "FLAT" | "VMFS" => Kind::Flat {
                file: open_extent(&name)?,
                offset: offset * 512,
            },
            "SPARSE" => {
                let f = open_extent(&name)?;
                let (s, _) = Sparse::open(f).map_err(|e| fmt(format!("extent '{name}': {e}")))?;
                Kind::Sparse(Box::new(s))
            }
            other => {
                return Err(fmt(format!(
                    "VMDK extent type {other}: not read by this version of triage; convert the disk with `qemu-img convert -O raw`"
                )));
            }
        };
        extents.push(Extent {
            start: at,
            len,
            kind: k,
        });
        at = at
            .checked_add(len)
            .ok_or_else(|| fmt("VMDK extents add up past 2^64 bytes".into()))?;
    }
    if extents.is_empty() {
        return Err(fmt("the VMDK descriptor lists no extents".into()));
    }
    Ok(Image {
        format: "vmdk",
        size: at,
        media: Arc::new(Vmdk { extents, size: at }),
        segments,
        metadata: vec![("vmdk_type".into(), create_type)],
        stored_digests: Vec::new(),
        notes: Vec::new(),
    })
}
