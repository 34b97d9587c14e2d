//! Line-oriented hash lists: bare hashes, coreutils/b3sum and BSD `--tag`
//! lines, and ThreatExchange-style PDQ lists. One file may mix them (a
//! `SHA256SUMS` with both GNU and BSD lines is common), so each line is
//! recognised on its own.
//!
//! ```text
//! 39cb097008d17660abd0539891a672af                         bare: algorithm from length
//! 39cb097008d17660abd0539891a672af  passwords.txt          md5sum text mode
//! 39cb097008d17660abd0539891a672af *passwords.txt          binary mode
//! \d54ff73404ed6041a3bd66850b061bff  odd\nname.txt         escaped name
//! SHA256 (passwords.txt) = 02a2a6af…                       BSD --tag
//! f8f8f0ce…9b22,100,series-A-0001                          PDQ: hash[,quality][,metadata]
//! hash=0000…0000,quality=0,filename=blank.png              PDQ, key=value form
//! ```

use std::io::BufRead;

use serde_json::Value;

use super::{ImportError, Importer, Item, LenProblem, alg_for_len, ambiguous, hex_key, info_json};
use crate::hashset::KeyAlg;

/// One recognised line.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Skip,
    /// `ALG (name) = hex`
    Tagged {
        label: &'a str,
        name: String,
        hex: &'a str,
    },
    /// `hex  name`, `hex *name`
    Sum {
        hex: &'a str,
        name: String,
    },
    /// `hex`
    Bare {
        hex: &'a str,
    },
    /// `hex,rest` or `hash=hex,rest` (or tab-separated)
    Fields {
        hex: &'a str,
        rest: &'a str,
    },
    /// `hex quality tag [8 dihedral hashes] name`: `triage hash-image`
    Image {
        hex: &'a str,
        quality: Option<u8>,
        alg: KeyAlg,
        name: String,
    },
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `\\` → `\`, `\n` → newline, `\r` → CR: coreutils' escaping of odd names.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn parse(line: &str, first_data_line: bool) -> Result<Line<'_>, String> {
    let t = line.trim_end_matches(['\r', '\n']);
    let trimmed = t.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(Line::Skip);
    }
    // BSD: "ALG (name) = hex"
    if let Some(open) = t.find(" (")
        && let Some(close) = t.rfind(") = ")
        && open < close
    {
        let label = &t[..open];
        let hex = t[close + 4..].trim();
        if !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Ok(Line::Tagged {
                label,
                name: t[open + 2..close].to_string(),
                hex,
            });
        }
    }
    if let Some(rest) = trimmed.strip_prefix("hash=") {
        let (hex, rest) = rest.split_once([',', '\t']).unwrap_or((rest, ""));
        return Ok(Line::Fields { hex, rest });
    }
    let (escaped, body) = match t.strip_prefix('\\') {
        Some(b) => (true, b),
        None => (false, trimmed),
    };
    let end = body
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(body.len());
    let (hex, after) = body.split_at(end);
    if hex.is_empty() {
        if first_data_line {
            let field = trimmed
                .split([',', '\t', ' '])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if [
                "hash",
                "pdq",
                "md5",
                "sha1",
                "sha-1",
                "sha256",
                "hash_value",
            ]
            .contains(&field.as_str())
            {
                return Ok(Line::Skip); // a CSV header row
            }
        }
        let shown: String = trimmed.chars().take(60).collect();
        return Err(format!("not a hash line: {shown:?}"));
    }
    if after.is_empty() {
        return Ok(Line::Bare { hex });
    }
    if let Some(rest) = after.strip_prefix([',', '\t']) {
        return Ok(Line::Fields { hex, rest });
    }
    if let Some(name) = after
        .strip_prefix("  ")
        .or_else(|| after.strip_prefix(" *"))
    {
        let name = if escaped {
            unescape(name)
        } else {
            name.to_string()
        };
        return Ok(Line::Sum { hex, name });
    }
    if after.trim().is_empty() {
        return Ok(Line::Bare { hex });
    }
    if let Some(image) = image_line(hex, after) {
        return Ok(image);
    }
    let shown: String = after.chars().take(40).collect();
    Err(format!("unexpected text after the hash: {shown:?}"))
}

/// `triage hash-image` output after the hash: ` QUALITY TAG [DIHEDRAL×8] NAME`,
/// QUALITY a number or `-`, TAG a perceptual tag (`pdq/1`, `phash/1`…).
fn image_line<'a>(hex: &'a str, after: &str) -> Option<Line<'a>> {
    let rest = after.strip_prefix(' ')?;
    let (q, rest) = rest.split_once(' ')?;
    let (tag, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let alg = KeyAlg::from_tag(tag)?;
    let quality = match q {
        "-" => None,
        q => Some(q.parse::<u8>().ok().filter(|q| *q <= 100)?),
    };
    // With --dihedral, the 8 rotated and mirrored hashes come before the
    // name; the entry is the hash as stored.
    let mut dihedral = 0;
    while dihedral < 8
        && let Some((h, more)) = rest.split_once(' ')
        && h.len() == hex.len()
        && is_hex(h)
    {
        rest = more;
        dihedral += 1;
    }
    if dihedral != 0 && dihedral != 8 {
        return None;
    }
    Some(Line::Image {
        hex,
        quality,
        alg,
        name: rest.to_string(),
    })
}

/// Whether a first line looks like one of the forms above (for detection).
pub(super) fn looks_like_hash_line(line: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(line) else {
        return false;
    };
    match parse(s, false) {
        Ok(Line::Tagged { hex, .. }) => is_hex(hex),
        Ok(Line::Fields { hex, .. } | Line::Sum { hex, .. } | Line::Bare { hex }) => {
            matches!(hex.len(), 16 | 32 | 40 | 64)
        }
        Ok(Line::Image { hex, alg, .. }) => hex.len() == alg.width() * 2,
        _ => false,
    }
}

fn tagged_alg(label: &str) -> Option<KeyAlg> {
    match label.to_ascii_uppercase().replace('-', "").as_str() {
        "MD5" => Some(KeyAlg::Md5),
        "SHA1" => Some(KeyAlg::Sha1),
        "SHA256" => Some(KeyAlg::Sha256),
        "BLAKE3" => Some(KeyAlg::Blake3),
        _ => None,
    }
}

/// Reads one text list.
pub(super) fn import(r: &mut dyn BufRead, imp: &mut Importer<'_>) -> Result<(), ImportError> {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut seen_data = false;
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).map_err(|e| {
            ImportError::new(format!("read error: {e}")).at(format!("line {}", line_no + 1))
        })?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&buf);
        let line = match parse(&text, !seen_data) {
            Ok(Line::Skip) => continue,
            Ok(l) => l,
            Err(reason) => {
                seen_data = true;
                imp.reject(line_no, reason)?;
                continue;
            }
        };
        seen_data = true;
        match item_of(line, line_no, imp.algorithm()) {
            Ok(item) => imp.item(item)?,
            Err(LineError::Reject(reason)) => imp.reject(line_no, reason)?,
            Err(LineError::Ambiguous(len)) => {
                return Err(ambiguous(len).at(format!("line {line_no}")));
            }
        }
    }
}

enum LineError {
    Reject(String),
    Ambiguous(usize),
}

fn key_for(hex: &str, declared: Option<KeyAlg>) -> Result<(KeyAlg, Vec<u8>), LineError> {
    let key = hex_key(hex).map_err(LineError::Reject)?;
    match alg_for_len(declared, key.len()) {
        Ok(a) => Ok((a, key)),
        Err(LenProblem::Ambiguous(n)) => Err(LineError::Ambiguous(n)),
        Err(LenProblem::Wrong(m)) => Err(LineError::Reject(m)),
    }
}

fn item_of(line: Line<'_>, at: u64, declared: Option<KeyAlg>) -> Result<Item, LineError> {
    let mut item = Item {
        at,
        ..Item::default()
    };
    match line {
        Line::Skip => {}
        Line::Tagged { label, name, hex } => {
            let alg = tagged_alg(label).ok_or_else(|| {
                LineError::Reject(format!("{label} is not an algorithm triage matches"))
            })?;
            let key = hex_key(hex).map_err(LineError::Reject)?;
            if key.len() != alg.width() {
                return Err(LineError::Reject(format!(
                    "{} hex digits for {label}, which has {}",
                    hex.len(),
                    alg.width() * 2
                )));
            }
            item.keys.push((alg, key));
            item.info = info_json(&[("name", Value::String(name))]);
        }
        Line::Sum { hex, name } => {
            item.keys.push(key_for(hex, declared)?);
            item.info = info_json(&[("name", Value::String(name))]);
        }
        Line::Bare { hex } => item.keys.push(key_for(hex, declared)?),
        Line::Image {
            hex,
            quality,
            alg,
            name,
        } => {
            let key = hex_key(hex).map_err(LineError::Reject)?;
            if key.len() != alg.width() {
                return Err(LineError::Reject(format!(
                    "{} hex digits for {alg}, which has {}",
                    hex.len(),
                    alg.width() * 2
                )));
            }
            item.quality = quality;
            let mut pairs = vec![("name", Value::String(name))];
            if let Some(q) = quality {
                pairs.insert(0, ("quality", Value::from(q)));
            }
            item.info = info_json(&pairs);
            item.keys.push((alg, key));
        }
        Line::Fields { hex, rest } => {
            // ThreatExchange lists: 64 hex digits followed by fields are PDQ.
            let declared = declared.or((hex.len() == 64).then_some(KeyAlg::Pdq));
            let (alg, key) = key_for(hex, declared)?;
            let mut pairs: Vec<(String, Value)> = Vec::new();
            let mut positional = Vec::new();
            for field in rest
                .split([',', '\t'])
                .map(str::trim)
                .filter(|f| !f.is_empty())
            {
                match field.split_once('=') {
                    Some(("quality", q)) => {
                        item.quality = Some(parse_quality(q)?);
                    }
                    Some((k, v)) => pairs.push((k.to_string(), Value::String(v.to_string()))),
                    None if alg.is_perceptual()
                        && positional.is_empty()
                        && item.quality.is_none() =>
                    {
                        match field.parse::<u8>() {
                            Ok(q) if q <= 100 => item.quality = Some(q),
                            _ => positional.push(field),
                        }
                    }
                    None => positional.push(field),
                }
            }
            if let Some(q) = item.quality {
                pairs.insert(0, ("quality".into(), Value::from(q)));
            }
            if !positional.is_empty() {
                pairs.push(("meta".into(), Value::String(positional.join(","))));
            }
            let refs: Vec<(&str, Value)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            item.info = info_json(&refs);
            item.keys.push((alg, key));
        }
    }
    Ok(item)
}

fn parse_quality(q: &str) -> Result<u8, LineError> {
    match q.trim().parse::<u8>() {
        Ok(v) if v <= 100 => Ok(v),
        _ => Err(LineError::Reject(format!("quality {q:?} is not 0–100"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_every_line_form() {
        let md5 = "39cb097008d17660abd0539891a672af";
        assert_eq!(parse(md5, true), Ok(Line::Bare { hex: md5 }));
        assert_eq!(
            parse(&format!("{md5}  passwords.txt\n"), true),
            Ok(Line::Sum {
                hex: md5,
                name: "passwords.txt".into()
            })
        );
        assert_eq!(
            parse(&format!("{md5} *with space.bin"), true),
            Ok(Line::Sum {
                hex: md5,
                name: "with space.bin".into()
            })
        );
        assert_eq!(
            parse(&format!("\\{md5}  odd\\nname\\\\x.txt"), true),
            Ok(Line::Sum {
                hex: md5,
                name: "odd\nname\\x.txt".into()
            })
        );
        assert_eq!(
            parse(&format!("MD5 (a (1).txt) = {md5}"), true),
            Ok(Line::Tagged {
                label: "MD5",
                name: "a (1).txt".into(),
                hex: md5
            })
        );
        assert_eq!(
            parse(&format!("hash={md5},quality=3"), true),
            Ok(Line::Fields {
                hex: md5,
                rest: "quality=3"
            })
        );
        assert_eq!(parse("  # comment", true), Ok(Line::Skip));
        assert_eq!(parse("hash,quality,id", true), Ok(Line::Skip));
        assert!(parse("hash,quality,id", false).is_err());
        assert!(parse("zzzz", false).is_err());
        assert!(parse(&format!("{md5}x"), false).is_err());
    }

    #[test]
    fn pdq_fields_give_quality_and_metadata() {
        let h = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let item = item_of(
            parse(&format!("{h},100,series-A-0001"), true).unwrap(),
            4,
            None,
        )
        .ok()
        .unwrap();
        assert_eq!(item.keys[0].0, KeyAlg::Pdq);
        assert_eq!(item.quality, Some(100));
        assert_eq!(item.info, r#"{"meta":"series-A-0001","quality":100}"#);
        let item = item_of(
            parse(&format!("hash={h},quality=0,filename=blank.png"), true).unwrap(),
            5,
            None,
        )
        .ok()
        .unwrap();
        assert_eq!(item.quality, Some(0));
        assert_eq!(item.info, r#"{"filename":"blank.png","quality":0}"#);
        assert!(matches!(
            item_of(parse(&format!("{h},quality=101"), true).unwrap(), 1, None),
            Err(LineError::Reject(_))
        ));
    }

    #[test]
    fn lengths_decide_or_ask() {
        let sha = "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252";
        assert!(matches!(key_for(sha, None), Err(LineError::Ambiguous(32))));
        assert_eq!(
            key_for(sha, Some(KeyAlg::Sha256)).ok().unwrap().0,
            KeyAlg::Sha256
        );
        // --algorithm decides only shared lengths: 32 hex digits stay MD5.
        assert_eq!(
            key_for("39cb097008d17660abd0539891a672af", Some(KeyAlg::Sha256))
                .ok()
                .unwrap()
                .0,
            KeyAlg::Md5
        );
        assert!(matches!(
            key_for(sha, Some(KeyAlg::Md5)),
            Err(LineError::Reject(_))
        ));
        assert!(matches!(key_for("abc", None), Err(LineError::Reject(_))));
        assert!(matches!(
            key_for("0123456789abcdef0123", None),
            Err(LineError::Reject(_))
        ));
        assert_eq!(
            key_for("677bc4ec72665fabac0bc91cd4e423a535a0cae4", None)
                .ok()
                .unwrap()
                .0,
            KeyAlg::Sha1
        );
    }
}
