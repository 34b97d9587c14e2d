//! GUID partition tables (UEFI spec, chapter 5), on 512- or 4096-byte
//! sectors. The header and entry array CRCs are checked; a mismatch is
//! noted and the primary table still read (the backup is not consulted).

use std::io;

use super::{Extent, Layout};
use crate::item::Partition;
use crate::source::tree::Source;

/// Entries read at most (the spec's minimum array holds 128).
const MAX_ENTRIES: u32 = 4096;

/// The GPT of `media`, if it has one.
pub fn read(media: &dyn Source, size: u64) -> io::Result<Option<Layout>> {
    for sector in [512u64, 4096] {
        if size < sector * 2 {
            continue;
        }
        let mut h = [0u8; 512];
        crate::source::image::read_exact(media, &mut h, sector)?;
        if &h[..8] != b"EFI PART" {
            continue;
        }
        return table(media, size, sector, &h).map(Some);
    }
    Ok(None)
}

fn table(media: &dyn Source, size: u64, sector: u64, h: &[u8]) -> io::Result<Layout> {
    let le32 = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let le64 = |b: &[u8], o: usize| {
        u64::from_le_bytes([
            b[o],
            b[o + 1],
            b[o + 2],
            b[o + 3],
            b[o + 4],
            b[o + 5],
            b[o + 6],
            b[o + 7],
        ])
    };
    let mut l = Layout::default();
    let header_size = le32(h, 12) as usize;
    if (92..=512).contains(&header_size) {
        let mut copy = h[..header_size].to_vec();
        copy[16..20].fill(0);
        if crc32(&copy) != le32(h, 16) {
            l.notes
                .push("GPT header CRC does not match: the table may be damaged".into());
        }
    } else {
        l.notes
            .push(format!("GPT header size {header_size} is invalid"));
    }
    let entries_lba = le64(h, 72);
    let count = le32(h, 80);
    let entry_size = le32(h, 84) as u64;
    if count > MAX_ENTRIES || !(128..=4096).contains(&entry_size) {
        l.notes.push(format!(
            "GPT claims {count} entries of {entry_size} bytes: not read"
        ));
        return Ok(l);
    }
    let bytes = count as u64 * entry_size;
    let start = entries_lba.saturating_mul(sector);
    if start.checked_add(bytes).is_none_or(|e| e > size) {
        l.notes
            .push("GPT entry array lies past the medium's end".into());
        return Ok(l);
    }
    let mut array = vec![0u8; bytes as usize];
    crate::source::image::read_exact(media, &mut array, start)?;
    if crc32(&array) != le32(h, 88) {
        l.notes
            .push("GPT entry array CRC does not match: entries may be damaged".into());
    }
    for (i, e) in array.chunks(entry_size as usize).enumerate() {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        if last < first {
            l.notes
                .push(format!("GPT entry {} ends before it starts", i + 1));
            continue;
        }
        let offset = first.saturating_mul(sector);
        let length = (last - first).saturating_add(1).saturating_mul(sector);
        l.volumes.push(Extent {
            partition: Some(Partition {
                index: i as u32 + 1,
                scheme: "gpt",
                type_id: guid(&e[..16]),
                offset,
                length,
            }),
            offset,
            length,
        });
    }
    Ok(l)
}

/// A GUID as text: the first three fields are little-endian.
fn guid(b: &[u8]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// CRC-32 (IEEE 802.3, reflected), as GPT uses.
pub fn crc32(data: &[u8]) -> u32 {
    crate::source::bytes::crc32_reflected(0xEDB8_8320, data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_published_check_value() {
        // The CRC-32 catalogue's check value for "123456789".
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
