//! hashdeep / md5deep known-file lists (`%%%% HASHDEEP-1.0`).
//!
//! Line 1 names the format, line 2 the columns (`%%%% size,md5,sha256,filename`:
//! size first, file name last); `#` lines are comments; data rows are
//! unquoted CSV where extra commas belong to the file name. Tiger and
//! Whirlpool columns are read past (triage does not compute them); a list
//! with none of MD5, SHA-1, SHA-256 is an error.

use std::io::BufRead;

use serde_json::Value;

use super::{ImportError, Importer, Item, hex_key, info_json};
use crate::hashset::KeyAlg;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Column {
    Size,
    Hash(Option<KeyAlg>),
    Name,
}

fn columns(spec: &str) -> Result<Vec<Column>, String> {
    let names: Vec<&str> = spec.split(',').map(str::trim).collect();
    if names.first() != Some(&"size") || names.last() != Some(&"filename") || names.len() < 3 {
        return Err(format!(
            "column line must be size,<algorithms>,filename, not {spec:?}"
        ));
    }
    let mut cols = vec![Column::Size];
    for n in &names[1..names.len() - 1] {
        cols.push(Column::Hash(match n.to_ascii_lowercase().as_str() {
            "md5" => Some(KeyAlg::Md5),
            "sha1" | "sha-1" => Some(KeyAlg::Sha1),
            "sha256" | "sha-256" => Some(KeyAlg::Sha256),
            "tiger" | "whirlpool" => None,
            other => return Err(format!("unknown hashdeep column {other:?}")),
        }));
    }
    cols.push(Column::Name);
    if !cols.iter().any(|c| matches!(c, Column::Hash(Some(_)))) {
        return Err("no MD5, SHA-1 or SHA-256 column: nothing triage can match".into());
    }
    Ok(cols)
}

/// Reads one hashdeep file.
pub(super) fn import(r: &mut dyn BufRead, imp: &mut Importer<'_>) -> Result<(), ImportError> {
    let mut cols: Option<Vec<Column>> = None;
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| ImportError::new(format!("read error: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end_matches(['\n', '\r']);
        if let Some(h) = line.strip_prefix("%%%% ") {
            if h.starts_with("HASHDEEP-") {
                if h != "HASHDEEP-1.0" {
                    return Err(ImportError::new(format!("unknown hashdeep format {h:?}"))
                        .at(format!("line {line_no}")));
                }
                continue;
            }
            cols = Some(columns(h).map_err(|m| ImportError::new(m).at(format!("line {line_no}")))?);
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(cols) = &cols else {
            return Err(ImportError::new("data before the %%%% size,… column line")
                .at(format!("line {line_no}")));
        };
        let fields: Vec<&str> = line.splitn(cols.len(), ',').collect();
        if fields.len() != cols.len() {
            imp.reject(
                line_no,
                format!("{} fields, the header has {}", fields.len(), cols.len()),
            )?;
            continue;
        }
        let mut item = Item {
            at: line_no,
            ..Item::default()
        };
        let mut size = None;
        let mut name = "";
        let mut bad = None;
        for (col, field) in cols.iter().zip(&fields) {
            match col {
                Column::Size => match field.parse::<u64>() {
                    Ok(s) => size = Some(s),
                    Err(_) => bad = Some(format!("size {field:?} is not a number")),
                },
                Column::Hash(None) => {}
                Column::Hash(Some(alg)) => match hex_key(field) {
                    Ok(k) if k.len() == alg.width() => item.keys.push((*alg, k)),
                    Ok(_) => bad = Some(format!("{alg} {field:?} has the wrong length")),
                    Err(m) => bad = Some(format!("{alg}: {m}")),
                },
                Column::Name => name = field,
            }
        }
        if let Some(reason) = bad {
            imp.reject(line_no, reason)?;
            continue;
        }
        item.info = info_json(&[
            ("name", Value::String(name.to_string())),
            ("size", size.map_or(Value::Null, Value::from)),
        ]);
        imp.item(item)?;
    }
    if cols.is_none() {
        return Err(ImportError::new(
            "no %%%% size,… column line: not a complete hashdeep file",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_lines() {
        assert_eq!(
            columns("size,md5,sha256,filename").unwrap(),
            vec![
                Column::Size,
                Column::Hash(Some(KeyAlg::Md5)),
                Column::Hash(Some(KeyAlg::Sha256)),
                Column::Name
            ]
        );
        assert_eq!(
            columns("size,sha-1,tiger,filename").unwrap()[2],
            Column::Hash(None)
        );
        assert!(columns("size,tiger,filename").is_err());
        assert!(columns("md5,filename").is_err());
        assert!(columns("size,crc,filename").is_err());
    }
}
