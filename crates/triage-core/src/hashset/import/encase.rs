//! EnCase 3–6 binary `.hash` sets (read-only; the layout is reverse-engineered,
//! as described by md5deep and The Sleuth Kit).
//!
//! ```text
//! 0x000  8  "HASH\r\n\xff\0"
//! 0x008  4  version (2 seen)
//! 0x010  4  record count (LE)
//! 0x408 80  set name, UTF-16LE, NUL-padded
//! 0x458 40  category, UTF-16LE, NUL-padded
//! 0x480 18×count  records: 16-byte MD5 + 2 bytes
//! ```
//!
//! A file shorter than its count says is an error (a truncated copy);
//! bytes after the last record are reported. EnCase 7/8 hash libraries have
//! no public description: export them to a hash list first.

use serde_json::Value;

use super::{ImportError, Importer, Item};
use crate::hashset::KeyAlg;

const RECORDS: usize = 0x480;
/// The first bytes of every EnCase `.hash` file.
pub(super) const MAGIC: &[u8] = b"HASH\r\n\xff\0";

/// The error for a file that lacks the EnCase magic.
pub(super) fn not_encase() -> ImportError {
    ImportError::new(
        "not an EnCase .hash file (it does not start with EnCase's \"HASH\" signature); \
         drop --format to have the format recognised",
    )
    .needs_option()
}
const RECORD_LEN: usize = 18;

fn utf16z(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Reads one `.hash` file.
pub(super) fn import(data: &[u8], imp: &mut Importer<'_>) -> Result<(), ImportError> {
    if !data.starts_with(MAGIC) {
        return Err(not_encase());
    }
    if data.len() < RECORDS {
        return Err(ImportError::new(format!(
            "EnCase hash file of {} bytes is shorter than its {RECORDS}-byte header: truncated",
            data.len()
        )));
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let version = u32_at(8);
    let count = u32_at(0x10) as usize;
    let name = utf16z(&data[0x408..0x458]);
    let category = utf16z(&data[0x458..0x480]);
    let need = RECORDS + count * RECORD_LEN;
    if data.len() < need {
        return Err(ImportError::new(format!(
            "EnCase hash file says {count} records ({need} bytes) but has {} bytes: truncated",
            data.len()
        )));
    }
    imp.declare(format!(
        "EnCase hash set v{version} {name:?}, category {category:?}"
    ));
    for i in 0..count {
        let rec = &data[RECORDS + i * RECORD_LEN..][..RECORD_LEN];
        imp.item(Item {
            keys: vec![(KeyAlg::Md5, rec[..16].to_vec())],
            at: i as u64 + 1,
            info: super::info_json(&[("set", Value::String(name.clone()))]),
            ..Item::default()
        })?;
    }
    let extra = data.len() - need;
    if extra > 0 {
        imp.reject(
            count as u64 + 1,
            format!("{extra} bytes after the last record ignored"),
        )?;
    }
    Ok(())
}
