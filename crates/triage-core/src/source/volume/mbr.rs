//! MBR partition tables: four primary entries, and logical partitions in
//! a chain of extended boot records.

use std::io;

use super::{Extent, Layout, SECTOR};
use crate::item::Partition;
use crate::source::tree::Source;

/// Extended-partition type bytes (CHS, LBA, Linux).
const EXTENDED: [u8; 3] = [0x05, 0x0F, 0x85];
/// Logical partitions read at most (a loop in the chain ends here).
const MAX_LOGICAL: usize = 128;

/// The partition table in `s0` (sector 0), if it is an MBR: `None` when
/// the sector is a volume's boot sector (a bare FAT or NTFS file system,
/// which carries the same 0x55AA signature) or has no valid entry.
pub fn read(media: &dyn Source, size: u64, s0: &[u8]) -> io::Result<Option<Layout>> {
    if s0.len() < 512 || s0[510..512] != [0x55, 0xAA] || is_boot_sector(s0) {
        return Ok(None);
    }
    let entries: Vec<&[u8]> = (0..4).map(|i| &s0[446 + i * 16..462 + i * 16]).collect();
    if entries.iter().any(|e| !matches!(e[0], 0 | 0x80)) {
        return Ok(None);
    }
    let mut l = Layout::default();
    let mut logical = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let (kind, start, len) = (e[4], lba(e, 8), lba(e, 12));
        if kind == 0 || len == 0 {
            continue;
        }
        if kind == 0xEE {
            // A protective MBR whose GPT could not be read.
            l.notes.push(
                "protective MBR (type 0xEE) without a readable GPT: the disk's GPT is damaged"
                    .into(),
            );
        }
        if EXTENDED.contains(&kind) {
            logical = chain(media, size, start * SECTOR, &mut l.notes)?;
            continue;
        }
        l.volumes
            .push(extent(i as u32 + 1, kind, start * SECTOR, len * SECTOR));
    }
    for (k, (kind, off, len)) in logical.into_iter().enumerate() {
        l.volumes.push(extent(5 + k as u32, kind, off, len));
    }
    if l.volumes.is_empty() && l.notes.is_empty() {
        return Ok(None);
    }
    Ok(Some(l))
}

fn extent(index: u32, kind: u8, offset: u64, length: u64) -> Extent {
    Extent {
        partition: Some(Partition {
            index,
            scheme: "mbr",
            type_id: format!("0x{kind:02x}"),
            offset,
            length,
        }),
        offset,
        length,
    }
}

fn lba(e: &[u8], at: usize) -> u64 {
    u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]) as u64
}

/// Whether sector 0 is a FAT/NTFS/exFAT boot sector rather than an MBR.
pub fn is_boot_sector(s0: &[u8]) -> bool {
    let at = |o: usize, s: &[u8]| s0.get(o..o + s.len()) == Some(s);
    matches!(s0.first(), Some(0xEB | 0xE9))
        && (at(3, b"NTFS    ") || at(3, b"EXFAT   ") || at(54, b"FAT") || at(82, b"FAT32"))
}

/// Logical partitions: (type, byte offset, byte length) from the chain of
/// EBRs starting at the extended partition at `base`.
fn chain(
    media: &dyn Source,
    size: u64,
    base: u64,
    notes: &mut Vec<String>,
) -> io::Result<Vec<(u8, u64, u64)>> {
    let mut out = Vec::new();
    let mut ebr = base;
    let mut seen = std::collections::HashSet::new();
    while out.len() < MAX_LOGICAL {
        if !seen.insert(ebr) || ebr + SECTOR > size {
            if ebr + SECTOR > size {
                notes.push(format!(
                    "extended boot record at byte {ebr} is past the medium's end"
                ));
            } else {
                notes.push(format!(
                    "the chain of extended boot records loops at byte {ebr}"
                ));
            }
            break;
        }
        let mut s = [0u8; 512];
        crate::source::image::read_exact(media, &mut s, ebr)?;
        if s[510..512] != [0x55, 0xAA] {
            notes.push(format!(
                "extended boot record at byte {ebr} has no signature"
            ));
            break;
        }
        let (e1, e2) = (&s[446..462], &s[462..478]);
        if e1[4] != 0 && lba(e1, 12) != 0 {
            out.push((e1[4], ebr + lba(e1, 8) * SECTOR, lba(e1, 12) * SECTOR));
        }
        if e2[4] == 0 || lba(e2, 12) == 0 {
            break;
        }
        ebr = base + lba(e2, 8) * SECTOR;
    }
    Ok(out)
}
