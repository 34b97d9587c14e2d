//! NIST NSRL Reference Data Sets: RDS 2.x text (`NSRLFile.txt`) and RDS v3 SQLite.
//!
//! RDS 2.x is quoted CSV with a header row; file names keep the vendor's
//! encoding, so invalid UTF-8 is read as ISO-8859-1 rather than failing the
//! row. RDS v3 comes in two shapes told apart by their tables: *minimal*
//! (`FILE` table) and *full* (`METADATA` table, read directly: its `FILE`
//! view is a slow join). The database is opened read-only and immutable (no
//! lock or journal files beside it), and first checked against the page
//! count in its header so a truncated copy is an error, not a short set.
//!
//! NSRL means *known*, not *known good*: it lists hacking tools too. Sets
//! made from it default to kind `known-good` all the same, because that is
//! how examiners use it (to set files aside); a known-good hit never hides
//! an alert hit.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use super::{ImportError, Importer, Item, hex_key, info_json};
use crate::hashset::KeyAlg;

/// Bytes as text: UTF-8 when valid, else ISO-8859-1 (never fails).
fn latin1_or_utf8(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

/// Reads an RDS 2.x `NSRLFile.txt`.
pub(super) fn import_v2(r: &mut dyn BufRead, imp: &mut Importer<'_>) -> Result<(), ImportError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(r);
    let header = rd
        .byte_headers()
        .map_err(|e| ImportError::new(format!("cannot read the header row: {e}")).at("line 1"))?
        .clone();
    let col = |name: &str| header.iter().position(|h| h == name.as_bytes());
    let (sha1, md5) = (col("SHA-1"), col("MD5"));
    if sha1.is_none() && md5.is_none() {
        return Err(ImportError::new("header has neither \"SHA-1\" nor \"MD5\"").at("line 1"));
    }
    let (name, size, product, special) = (
        col("FileName"),
        col("FileSize"),
        col("ProductCode"),
        col("SpecialCode"),
    );
    imp.declare(format!("RDS 2.x, {} columns", header.len()));
    let mut rec = csv::ByteRecord::new();
    loop {
        let before = rd.position().line();
        match rd.read_byte_record(&mut rec) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let at = format!("line {}", before + 1);
                return Err(ImportError::new(format!("cannot read the CSV: {e}")).at(at));
            }
        }
        // The csv crate counts a record's line only once the next read has
        // begun, so the reader's position after the record is its line.
        let line = rd.position().line();
        if rec.len() != header.len() {
            imp.reject(
                line,
                format!("{} fields, the header has {}", rec.len(), header.len()),
            )?;
            continue;
        }
        let field = |i: Option<usize>| i.and_then(|i| rec.get(i)).map(latin1_or_utf8);
        let mut item = Item {
            at: line,
            ..Item::default()
        };
        let mut bad = None;
        for (alg, i) in [(KeyAlg::Sha1, sha1), (KeyAlg::Md5, md5)] {
            if let Some(hex) = field(i) {
                match hex_key(&hex) {
                    Ok(k) if k.len() == alg.width() => item.keys.push((alg, k)),
                    Ok(_) => bad = Some(format!("{alg} {hex:?} has the wrong length")),
                    Err(m) => bad = Some(format!("{alg}: {m}")),
                }
            }
        }
        if let Some(reason) = bad {
            imp.reject(line, reason)?;
            continue;
        }
        let number = |i| {
            field(i)
                .and_then(|s| s.parse::<u64>().ok())
                .map_or(Value::Null, Value::from)
        };
        item.info = info_json(&[
            ("name", field(name).map_or(Value::Null, Value::String)),
            ("size", number(size)),
            ("product_code", number(product)),
            (
                "special_code",
                field(special).map_or(Value::Null, Value::String),
            ),
        ]);
        imp.item(item)?;
    }
}

/// Checks the SQLite header's page count against the file length.
fn check_not_truncated(path: &Path) -> Result<(), ImportError> {
    use std::io::Read;
    let mut f = crate::files::open_quiet(path).map_err(|e| ImportError::new(e.to_string()))?;
    let len = f
        .metadata()
        .map_err(|e| ImportError::new(e.to_string()))?
        .len();
    let mut h = [0u8; 100];
    f.read_exact(&mut h)
        .map_err(|_| ImportError::new("SQLite file shorter than its 100-byte header: truncated"))?;
    let page_size = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65536u64,
        n => n as u64,
    };
    let pages = u32::from_be_bytes([h[28], h[29], h[30], h[31]]) as u64;
    let change = &h[24..28];
    let valid_for = &h[92..96];
    // The in-header page count is only trustworthy when these agree.
    if change == valid_for && pages > 0 && len < pages * page_size {
        return Err(ImportError::new(format!(
            "SQLite database is truncated: its header says {pages} pages of {page_size} bytes ({} bytes), the file has {len}",
            pages * page_size
        )));
    }
    Ok(())
}

fn sqlite_err(e: rusqlite::Error) -> ImportError {
    ImportError::new(format!(
        "SQLite: {e} (damaged or not an NSRL RDS v3 database?)"
    ))
}

/// `file:` URI of a path, with the characters URIs reserve escaped.
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str("?immutable=1");
    s
}

/// Reads an RDS v3 database (minimal or full shape).
pub(super) fn import_v3(path: &Path, imp: &mut Importer<'_>) -> Result<(), ImportError> {
    use rusqlite::OpenFlags;
    check_not_truncated(path)?;
    let conn = rusqlite::Connection::open_with_flags(
        file_uri(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table','view')")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sqlite_err)?;
    let has = |t: &str| tables.iter().any(|x| x.eq_ignore_ascii_case(t));
    let columns = |table: &str| -> Result<Vec<String>, ImportError> {
        conn.prepare(&format!("PRAGMA table_info({table})"))
            .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(1))?.collect())
            .map_err(sqlite_err)
    };
    let (table, shape) = if has("METADATA") {
        ("METADATA", "full")
    } else if has("FILE") {
        ("FILE", "minimal")
    } else {
        return Err(ImportError::new(
            "SQLite database has neither a METADATA nor a FILE table: not an NSRL RDS v3 set",
        ));
    };
    let cols = columns(table)?;
    let pick = |want: &[&str]| -> Option<String> {
        want.iter()
            .find(|w| cols.iter().any(|c| c.eq_ignore_ascii_case(w)))
            .map(|w| w.to_string())
    };
    let fields = [
        pick(&["sha256"]),
        pick(&["sha1"]),
        pick(&["md5"]),
        pick(&["file_name"]),
        pick(&["extension"]),
        pick(&["file_size", "bytes"]),
        pick(&["package_id"]),
    ];
    if fields[..3].iter().all(Option::is_none) {
        return Err(ImportError::new(format!(
            "table {table} has no sha256, sha1 or md5 column"
        )));
    }
    let select: Vec<String> = fields
        .iter()
        .map(|f| f.clone().unwrap_or_else(|| "NULL".into()))
        .collect();
    let version: Option<(String, String)> = if has("VERSION") {
        conn.query_row("SELECT version, build_set FROM VERSION LIMIT 1", [], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .ok()
    } else {
        None
    };
    imp.declare(match version {
        Some((v, b)) => format!("RDS v3 {v} {b} ({shape} shape)"),
        None => format!("RDS v3 ({shape} shape, no VERSION row)"),
    });
    let sql = format!("SELECT rowid, {} FROM {table}", select.join(", "));
    let mut stmt = conn.prepare(&sql).map_err(sqlite_err)?;
    let mut rows = stmt.query([]).map_err(sqlite_err)?;
    let text = |r: &rusqlite::Row<'_>, i: usize| -> Option<String> {
        match r.get_ref(i).ok()? {
            rusqlite::types::ValueRef::Text(t) => Some(latin1_or_utf8(t)),
            rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
            _ => None,
        }
    };
    while let Some(row) = rows.next().map_err(sqlite_err)? {
        let rowid: i64 = row.get(0).map_err(sqlite_err)?;
        let at = rowid.max(0) as u64;
        let mut item = Item {
            at,
            ..Item::default()
        };
        let mut bad = None;
        for (i, alg) in [KeyAlg::Sha256, KeyAlg::Sha1, KeyAlg::Md5]
            .into_iter()
            .enumerate()
        {
            match text(row, i + 1).filter(|s| !s.is_empty()) {
                None => {}
                Some(hex) => match hex_key(&hex) {
                    Ok(k) if k.len() == alg.width() => item.keys.push((alg, k)),
                    Ok(_) => bad = Some(format!("{alg} {hex:?} has the wrong length")),
                    Err(m) => bad = Some(format!("{alg}: {m}")),
                },
            }
        }
        if let Some(reason) = bad {
            imp.reject(at, reason)?;
            continue;
        }
        let mut name = text(row, 4).unwrap_or_default();
        if let Some(ext) = text(row, 5).filter(|e| !e.is_empty()) {
            name = format!("{name}.{ext}");
        }
        let number = |i| {
            text(row, i)
                .and_then(|s| s.parse::<u64>().ok())
                .map_or(Value::Null, Value::from)
        };
        item.info = info_json(&[
            ("name", Value::String(name)),
            ("size", number(6)),
            ("package_id", number(7)),
        ]);
        imp.item(item)?;
    }
    Ok(())
}
