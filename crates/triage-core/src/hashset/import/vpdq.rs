//! Known videos as vPDQ frame hashes: the reference hasher's own files and
//! the JSON HMA (Hasher-Matcher-Actioner) stores.
//!
//! Each known video becomes one record whose keys are its unique frame
//! hashes of quality at least [`KNOWN_MIN_QUALITY`] (vPDQ's filter, applied
//! once here for the known side), and whose entry JSON carries the number
//! of those frames (`vpdq_frames`: the denominator of "percentage of the
//! known video matched").
//!
//! - `vpdq` (text): the reference's `vpdq-hash-video` output, one line per
//!   frame, `frame_number,quality,pdq_hex[,timestamp]`; one file is one
//!   video, named by the file.
//! - `vpdq-json`: a JSON array of `"pdq_hex,quality,timestamp"` strings
//!   (HMA's current `VpdqCompactFeature` serialisation) for one video; an
//!   object of `{frame_number: {"quality", "hash", "timestamp"}}` (its
//!   earlier form) for one video; or an object mapping a name to either
//!   (or to either form as a JSON string) for several videos.

use std::io::{BufRead, Read};

use serde_json::Value;

use super::{ImportError, Importer, Item, info_json};
use crate::hashset::KeyAlg;
use crate::perceptual::pdq::PdqHash;

/// Known frames of lower quality are not imported (vPDQ's default filter).
pub const KNOWN_MIN_QUALITY: u8 = 50;

/// Largest JSON file read whole.
const MAX_JSON: u64 = 1 << 30;

/// The record of one known video from its frames (hash, quality):
/// the unique hashes at the quality floor as keys. `None` when no frame is
/// left (the caller rejects the video, saying why).
pub(crate) fn video_item(
    frames: impl IntoIterator<Item = (PdqHash, u8)>,
    at: u64,
    mut info: Vec<(&str, Value)>,
) -> Result<Item, String> {
    let mut listed = 0u64;
    let mut keys: Vec<[u8; 32]> = Vec::new();
    for (hash, quality) in frames {
        listed += 1;
        if quality >= KNOWN_MIN_QUALITY {
            keys.push(hash.to_bytes());
        }
    }
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Err(format!(
            "none of its {listed} frames has quality {KNOWN_MIN_QUALITY} or more: it could never match"
        ));
    }
    info.push(("vpdq_frames", Value::from(keys.len() as u64)));
    info.push(("vpdq_frames_listed", Value::from(listed)));
    Ok(Item {
        keys: keys
            .into_iter()
            .map(|k| (KeyAlg::Vpdq, k.to_vec()))
            .collect(),
        info: info_json(&info),
        at,
        ..Item::default()
    })
}

/// Reads one reference hash file (one video).
pub(super) fn import_text(r: &mut dyn BufRead, imp: &mut Importer<'_>) -> Result<(), ImportError> {
    let name = imp.source_name();
    let mut frames = Vec::new();
    for (i, line) in r.split(b'\n').enumerate() {
        let at = i as u64 + 1;
        let line = line.map_err(|e| ImportError::new(format!("reading: {e}")))?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(f) => frames.push(f),
            Err(why) => imp.reject(at, why)?,
        }
    }
    match video_item(frames, 1, vec![("name", Value::String(name))]) {
        Ok(item) => imp.item(item),
        Err(why) => imp.reject(1, why),
    }
}

/// `frame,quality,hash[,timestamp]`.
fn parse_line(line: &str) -> Result<(PdqHash, u8), String> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    if !(3..=4).contains(&f.len()) {
        return Err("not frame,quality,hash[,timestamp]".into());
    }
    f[0].parse::<u64>()
        .map_err(|_| format!("frame number {:?} is not a number", f[0]))?;
    let quality = parse_quality(f[1])?;
    let hash: PdqHash = f[2]
        .parse()
        .map_err(|e: crate::perceptual::pdq::BadPdqHash| e.to_string())?;
    if let Some(t) = f.get(3) {
        t.parse::<f64>()
            .ok()
            .filter(|t| t.is_finite())
            .ok_or_else(|| format!("timestamp {t:?} is not a number"))?;
    }
    Ok((hash, quality))
}

fn parse_quality(s: &str) -> Result<u8, String> {
    s.parse::<u8>()
        .ok()
        .filter(|q| *q <= 100)
        .ok_or_else(|| format!("quality {s:?} is not 0–100"))
}

/// Whether a text file's first line looks like the reference's output.
pub(crate) fn looks_like_text(first: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(first) else {
        return false;
    };
    parse_line(line.trim()).is_ok()
}

/// Reads an HMA-style JSON file (one video or several).
pub(super) fn import_json(r: &mut dyn BufRead, imp: &mut Importer<'_>) -> Result<(), ImportError> {
    let mut text = Vec::new();
    r.take(MAX_JSON + 1)
        .read_to_end(&mut text)
        .map_err(|e| ImportError::new(format!("reading: {e}")))?;
    if text.len() as u64 > MAX_JSON {
        return Err(ImportError::new("a vPDQ JSON file over 1 GiB is not read"));
    }
    let v: Value =
        serde_json::from_slice(&text).map_err(|e| ImportError::new(format!("not JSON: {e}")))?;
    let name = imp.source_name();
    if let Some(frames) = one_video(&v) {
        return add(imp, 1, name, frames);
    }
    let Value::Object(map) = &v else {
        return Err(ImportError::new(
            "not vPDQ JSON: expected an array of \"hash,quality,timestamp\" strings or an object of videos",
        ));
    };
    for (i, (key, value)) in map.iter().enumerate() {
        let at = i as u64 + 1;
        let inner = match value {
            Value::String(s) => serde_json::from_str(s).ok(),
            other => Some(other.clone()),
        };
        match inner.as_ref().and_then(one_video) {
            Some(frames) => add(imp, at, key.clone(), frames)?,
            None => imp.reject(at, format!("'{key}' is not a list of vPDQ frames"))?,
        }
    }
    Ok(())
}

fn add(
    imp: &mut Importer<'_>,
    at: u64,
    name: String,
    frames: Vec<Result<(PdqHash, u8), String>>,
) -> Result<(), ImportError> {
    let mut good = Vec::new();
    for f in frames {
        match f {
            Ok(f) => good.push(f),
            Err(why) => imp.reject(at, format!("video '{name}': {why}"))?,
        }
    }
    match video_item(good, at, vec![("name", Value::String(name.clone()))]) {
        Ok(item) => imp.item(item),
        Err(why) => imp.reject(at, format!("video '{name}': {why}")),
    }
}

/// The frames of one video in either of HMA's shapes, or `None` when `v`
/// is neither.
fn one_video(v: &Value) -> Option<Vec<Result<(PdqHash, u8), String>>> {
    match v {
        Value::Array(items) => {
            if !items.iter().all(Value::is_string) {
                return None;
            }
            Some(
                items
                    .iter()
                    .map(|s| compact(s.as_str().unwrap_or_default()))
                    .collect(),
            )
        }
        Value::Object(map) if !map.is_empty() && map.keys().all(|k| k.parse::<u64>().is_ok()) => {
            Some(
                map.values()
                    .map(|f| {
                        let hash = f.get("hash").and_then(Value::as_str).ok_or("no 'hash'")?;
                        let q = f
                            .get("quality")
                            .and_then(Value::as_u64)
                            .ok_or("no 'quality'")?;
                        let quality = parse_quality(&q.to_string())?;
                        let hash: PdqHash = hash
                            .parse()
                            .map_err(|e: crate::perceptual::pdq::BadPdqHash| e.to_string())?;
                        Ok((hash, quality))
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// `"pdq_hex,quality,timestamp"`.
fn compact(s: &str) -> Result<(PdqHash, u8), String> {
    let f: Vec<&str> = s.split(',').map(str::trim).collect();
    if f.len() != 3 {
        return Err(format!("{s:?} is not \"hash,quality,timestamp\""));
    }
    let hash: PdqHash = f[0]
        .parse()
        .map_err(|e: crate::perceptual::pdq::BadPdqHash| e.to_string())?;
    Ok((hash, parse_quality(f[1])?))
}

/// Whether a JSON file's start looks like vPDQ frames: a compact frame
/// (`64 hex digits,quality,`) appears in it, as a string or inside one, or
/// frame objects with `quality` and `hash`.
pub(crate) fn looks_like_json(text: &[u8]) -> bool {
    let head = &text[..text.len().min(4096)];
    let compact_frame = (0..head.len().saturating_sub(66)).any(|i| {
        let run = &head[i..i + 64];
        (i == 0 || !head[i - 1].is_ascii_hexdigit())
            && run.iter().all(u8::is_ascii_hexdigit)
            && head[i + 64] == b','
            && head[i + 65].is_ascii_digit()
    });
    let s = String::from_utf8_lossy(head);
    compact_frame || (s.starts_with('{') && s.contains("\"quality\"") && s.contains("\"hash\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c";

    #[test]
    fn a_reference_line_parses_and_a_bad_one_says_why() {
        assert_eq!(parse_line(&format!("0,100,{H},0.000")).unwrap().1, 100);
        assert!(parse_line(&format!("0,100,{H}")).is_ok());
        assert!(
            parse_line(&format!("x,100,{H}"))
                .unwrap_err()
                .contains("frame number")
        );
        assert!(
            parse_line(&format!("0,101,{H}"))
                .unwrap_err()
                .contains("quality")
        );
        assert!(looks_like_text(format!("12,87,{H},0.400").as_bytes()));
        assert!(!looks_like_text(format!("{H}  name.jpg").as_bytes()));
    }

    #[test]
    fn both_hma_shapes_are_recognised() {
        let compact_list = format!(r#"["{H},100,0.000","{H},40,1.000"]"#);
        assert!(looks_like_json(compact_list.as_bytes()));
        let v: Value = serde_json::from_str(&compact_list).unwrap();
        assert_eq!(one_video(&v).unwrap().len(), 2);
        let by_frame = format!(r#"{{"0":{{"quality":100,"hash":"{H}","timestamp":0.0}}}}"#);
        assert!(looks_like_json(by_frame.as_bytes()));
        let v: Value = serde_json::from_str(&by_frame).unwrap();
        assert_eq!(one_video(&v).unwrap().len(), 1);
        assert!(!looks_like_json(br#"{"raw_indicator":"x"}"#));
        let bank = serde_json::json!({ "item": compact_list }).to_string();
        assert!(looks_like_json(bank.as_bytes()), "{bank}");
    }

    #[test]
    fn a_known_video_keeps_its_unique_frames_of_quality_50_or_more() {
        let h: PdqHash = H.parse().unwrap();
        let mut other = h;
        other.0[0] ^= 1;
        let item = video_item([(h, 100), (h, 90), (other, 49)], 1, Vec::new()).unwrap();
        assert_eq!(item.keys.len(), 1);
        assert!(item.info.contains(r#""vpdq_frames":1"#), "{}", item.info);
        assert!(
            item.info.contains(r#""vpdq_frames_listed":3"#),
            "{}",
            item.info
        );
        assert!(video_item([(other, 10)], 1, Vec::new()).is_err());
    }
}
