//! Apple Partition Maps: the partition table of older Macintosh disks,
//! and of hybrid CD/DVD images whose HFS+ volume sits beside ISO 9660.
//!
//! Layout (Apple's "Inside Macintosh: Devices"): block 0 holds the driver
//! descriptor (`ER`, with the block size); from block 1 on, one `PM`
//! entry per partition, each giving the number of entries in the map, the
//! partition's first block and block count, its name and its type
//! (`Apple_HFS`, `Apple_partition_map`, `Apple_Free`, …).

use std::io;

use super::{Extent, Layout};
use crate::item::Partition;
use crate::source::bytes::{be16, be32};
use crate::source::tree::Source;

/// Entries read at most (a map claiming more is cut there, and noted).
const MAX_ENTRIES: u64 = 256;

/// The map on `media`, if block 0 is a driver descriptor and block 1 a
/// partition map entry. The map's own entry and free space are not
/// volumes; every other entry is.
pub fn read(media: &dyn Source, size: u64) -> io::Result<Option<Layout>> {
    if size < 1024 {
        return Ok(None);
    }
    let mut b0 = [0u8; 512];
    crate::source::tree::read_exact(media, &mut b0, 0)?;
    if &b0[..2] != b"ER" {
        return Ok(None);
    }
    let block = match be16(&b0, 2) as u64 {
        b @ (512 | 1024 | 2048 | 4096) => b,
        _ => 512,
    };
    let entry = |i: u64| -> io::Result<Option<[u8; 512]>> {
        let at = i * block;
        if at + 512 > size {
            return Ok(None);
        }
        let mut e = [0u8; 512];
        crate::source::tree::read_exact(media, &mut e, at)?;
        Ok((&e[..2] == b"PM").then_some(e))
    };
    let Some(first) = entry(1)? else {
        return Ok(None);
    };
    let mut l = Layout::default();
    let count = be32(&first, 4) as u64;
    if count > MAX_ENTRIES {
        l.notes.push(format!(
            "the Apple partition map claims {count} entries: the first {MAX_ENTRIES} are read"
        ));
    }
    for i in 1..=count.clamp(1, MAX_ENTRIES) {
        let Some(e) = entry(i)? else {
            l.notes.push(format!(
                "Apple partition map entry {i} is missing or has no signature: the map ends there"
            ));
            break;
        };
        let kind = text(&e[48..80]);
        let (start, blocks) = (be32(&e, 8) as u64, be32(&e, 12) as u64);
        if blocks == 0 || matches!(kind.as_str(), "Apple_partition_map" | "Apple_Free") {
            continue;
        }
        let (offset, length) = (start * block, blocks * block);
        l.volumes.push(Extent {
            partition: Some(Partition {
                index: i as u32,
                scheme: "apm",
                type_id: kind,
                offset,
                length,
            }),
            offset,
            length,
        });
    }
    Ok(Some(l))
}

/// A NUL-padded name or type, as text.
fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}
