//! Partition tables: where the volumes of a disk image are.
//!
//! Input: the medium of an [`crate::source::image::Image`]. Output: its
//! [`Layout`]: every partition the table lists ([`mbr`] with extended and
//! logical partitions, [`gpt`], [`apm`]), or the whole medium as one volume when it
//! has no table (a bare file system), and the byte ranges no partition
//! covers, so that nothing on the medium goes unaccounted for.

use std::io;

use crate::item::Partition;
use crate::source::tree::Source;

pub mod apm;
pub mod gpt;
pub mod mbr;

/// Sector size assumed by the tables (512; 4096-byte-sector GPTs are
/// recognised too, see [`gpt`]).
pub const SECTOR: u64 = 512;

/// One volume to look for a file system in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extent {
    /// The partition it is, or `None` for a medium without a table.
    pub partition: Option<Partition>,
    /// Byte offset on the medium.
    pub offset: u64,
    /// Length in bytes (clipped to the medium).
    pub length: u64,
}

/// What the partition table says.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// `mbr`, `gpt`, `apm`, or `none`.
    pub scheme: &'static str,
    /// The volumes, in table order.
    pub volumes: Vec<Extent>,
    /// Byte ranges (offset, length) outside every partition and outside
    /// the table's own sectors.
    pub gaps: Vec<(u64, u64)>,
    /// Problems with the table (a bad CRC, a partition past the medium's
    /// end), for the log.
    pub notes: Vec<String>,
}

/// Reads the partition table of `media` (of `size` bytes).
pub fn layout(media: &dyn Source, size: u64) -> io::Result<Layout> {
    let mut s0 = vec![0u8; 512.min(size as usize)];
    crate::source::image::read_exact(media, &mut s0, 0)?;
    if let Some(l) = gpt::read(media, size)? {
        return Ok(finish(l, size, "gpt"));
    }
    if let Some(l) = mbr::read(media, size, &s0)? {
        return Ok(finish(l, size, "mbr"));
    }
    if let Some(l) = apm::read(media, size)? {
        return Ok(finish(l, size, "apm"));
    }
    Ok(Layout {
        scheme: "none",
        volumes: vec![Extent {
            partition: None,
            offset: 0,
            length: size,
        }],
        gaps: Vec::new(),
        notes: Vec::new(),
    })
}

/// Clips volumes to the medium, notes the ones that do not fit, and
/// computes the gaps. `reserved`: sectors the table itself occupies are
/// counted as gaps too (they hold no file system, and a later carve
/// should see them).
fn finish(mut l: Layout, size: u64, scheme: &'static str) -> Layout {
    l.scheme = scheme;
    for v in &mut l.volumes {
        if v.offset >= size {
            l.notes.push(format!(
                "partition {} starts at byte {}, past the medium's end ({size}): not read",
                v.partition.as_ref().map_or(0, |p| p.index),
                v.offset
            ));
            v.length = 0;
        } else if v.offset.saturating_add(v.length) > size {
            l.notes.push(format!(
                "partition {} ends past the medium's end: read up to byte {size}",
                v.partition.as_ref().map_or(0, |p| p.index)
            ));
            v.length = size - v.offset;
        }
    }
    let mut covered: Vec<(u64, u64)> = l
        .volumes
        .iter()
        .filter(|v| v.length > 0)
        .map(|v| (v.offset, v.offset.saturating_add(v.length)))
        .collect();
    covered.sort();
    let mut at = 0;
    let mut gaps = Vec::new();
    for (s, e) in covered {
        if s > at {
            gaps.push((at, s - at));
        }
        at = at.max(e);
    }
    if at < size {
        gaps.push((at, size - at));
    }
    l.gaps = gaps;
    l
}
