//! JSON hash sets, streamed element by element (files run to many GB):
//! Project VIC VICS 1.x/2.0 and ThreatExchange descriptors.
//!
//! VICS: one object with an OData context (`odata.metadata` in 1.x,
//! `@odata.context` in 2.0) and a `value` array of Media, or of Cases each
//! holding a `Media` array. Keys are matched without regard to case, a
//! leading BOM is skipped, booleans may be strings, unknown fields are
//! ignored. MediaID, Category, MD5, SHA1, PhotoDNA (which triage cannot
//! compute, but reports) and the descriptive fields are kept with the entry.
//!
//! ThreatExchange: an object of descriptors keyed by id (or a Graph API
//! `{"data": [...]}` page), each with `raw_indicator` and `type`.
//!
//! A file that ends inside the JSON (a truncated copy) is an error: no
//! partial set is written.

use std::fmt;
use std::io::BufRead;

use base64::Engine;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{ImportError, Importer, Item, RawCategory, hex_key, info_json};
use crate::hashset::{KeyAlg, Scheme};

/// Shared state of one file's parse. Importer errors are parked here while
/// serde unwinds with a placeholder error.
struct State<'i, 'o> {
    imp: &'i mut Importer<'o>,
    elements: u64,
    failed: Option<ImportError>,
}

impl State<'_, '_> {
    fn park<E: de::Error>(&mut self, e: ImportError) -> E {
        self.failed = Some(e);
        E::custom("import stopped")
    }

    fn item<E: de::Error>(&mut self, item: Item) -> Result<(), E> {
        self.imp.item(item).map_err(|e| self.park(e))
    }

    fn reject<E: de::Error>(&mut self, at: u64, reason: String) -> Result<(), E> {
        self.imp.reject(at, reason).map_err(|e| self.park(e))
    }
}

fn parse_with<F>(r: &mut dyn BufRead, state: &mut State<'_, '_>, f: F) -> Result<(), ImportError>
where
    F: FnOnce(
        &mut serde_json::Deserializer<serde_json::de::IoRead<&mut dyn BufRead>>,
        &mut State<'_, '_>,
    ) -> Result<(), serde_json::Error>,
{
    let head = r
        .fill_buf()
        .map_err(|e| ImportError::new(format!("read error: {e}")))?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
    }
    let mut de = serde_json::Deserializer::from_reader(r);
    let result = f(&mut de, state).and_then(|()| de.end());
    if let Some(e) = state.failed.take() {
        return Err(e);
    }
    result.map_err(|e| {
        let at = format!("line {} column {}", e.line(), e.column());
        let msg = if e.is_eof() {
            "the file ends inside the JSON: truncated copy? (nothing imported)".to_string()
        } else {
            format!("not valid JSON here: {e}")
        };
        ImportError::new(msg).at(at)
    })
}

/// Reads a VICS file.
pub(super) fn import_vics(r: &mut dyn BufRead, imp: &mut Importer<'_>) -> Result<(), ImportError> {
    let mut state = State {
        imp,
        elements: 0,
        failed: None,
    };
    parse_with(r, &mut state, |de, st| VicsTop(st).deserialize(de))
}

/// Reads a ThreatExchange descriptor file.
pub(super) fn import_threatexchange(
    r: &mut dyn BufRead,
    imp: &mut Importer<'_>,
) -> Result<(), ImportError> {
    let mut state = State {
        imp,
        elements: 0,
        failed: None,
    };
    parse_with(r, &mut state, |de, st| TeTop(st).deserialize(de))
}

// ---- VICS ------------------------------------------------------------------

struct VicsTop<'s, 'i, 'o>(&'s mut State<'i, 'o>);

impl<'de> DeserializeSeed<'de> for VicsTop<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for VicsTop<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a VICS object with an OData context and a value array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.0;
        let mut saw_value = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.to_ascii_lowercase().as_str() {
                "odata.metadata" | "@odata.context" => {
                    let ctx: String = map.next_value()?;
                    context(st, &ctx)?;
                }
                "value" => {
                    saw_value = true;
                    map.next_value_seed(Elements(&mut *st))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_value {
            return Err(st.park(ImportError::new("no \"value\" array: not a VICS hash set")));
        }
        Ok(())
    }
}

/// Records the OData context and picks the category scheme from its profile.
fn context<E: de::Error>(st: &mut State<'_, '_>, ctx: &str) -> Result<(), E> {
    st.imp.declare(ctx.to_string());
    let uk = ctx.contains("/UK/");
    if uk && st.imp.opts.scheme.is_none() {
        return Err(st.park(ImportError::new(
            "VICS UK profile: how its category numbers map to CAID A/B/C is not public, so triage will not guess; \
             pass --scheme caid-uk --category-map 1=A,2=B,3=C (from your CAID documentation)",
        )
        .needs_option()));
    }
    if !uk {
        st.imp
            .scheme_hint(Scheme::Projectvic)
            .map_err(|e| st.park(e))?;
    }
    Ok(())
}

/// A `value` or `Media` array: each element a Media or a Case.
struct Elements<'s, 'i, 'o>(&'s mut State<'i, 'o>);

impl<'de> DeserializeSeed<'de> for Elements<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of Media or Case objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Element(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

struct Element<'s, 'i, 'o>(&'s mut State<'i, 'o>);

impl<'de> DeserializeSeed<'de> for Element<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Element<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Media or Case object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.0;
        let mut fields: Vec<(String, Value)> = Vec::new();
        let mut is_case = false;
        while let Some(key) = map.next_key::<String>()? {
            if key.eq_ignore_ascii_case("media") {
                is_case = true;
                map.next_value_seed(Elements(&mut *st))?;
            } else {
                fields.push((key.to_ascii_lowercase(), map.next_value::<Value>()?));
            }
        }
        if is_case {
            return Ok(());
        }
        st.elements += 1;
        let at = st.elements;
        match media_item(&fields, at) {
            Ok(item) => st.item(item),
            Err(reason) => st.reject(at, reason),
        }
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// PhotoDNA as base64 (some producers write 288 hex digits for the 144 bytes).
fn photodna(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    if s.len() == 288 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = crate::hash::from_hex(s)?;
        return Some(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    (!s.is_empty()).then(|| s.to_string())
}

fn media_item(fields: &[(String, Value)], at: u64) -> Result<Item, String> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let mut item = Item {
        at,
        ..Item::default()
    };
    for (k, alg) in [
        ("md5", KeyAlg::Md5),
        ("sha1", KeyAlg::Sha1),
        ("sha256", KeyAlg::Sha256),
    ] {
        let Some(v) = get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
        else {
            continue;
        };
        let key = hex_key(v.trim()).map_err(|m| format!("{alg}: {m}"))?;
        if key.len() != alg.width() {
            return Err(format!("{alg} {v:?} has the wrong length"));
        }
        item.keys.push((alg, key));
    }
    let mut pdna = get("photodna").and_then(photodna);
    if let Some(Value::Array(alts)) = get("alternativehashes") {
        for a in alts {
            let name = a
                .get("HashName")
                .or_else(|| a.get("hashName"))
                .and_then(Value::as_str);
            let value = a.get("HashValue").or_else(|| a.get("hashValue"));
            match (name.map(str::to_ascii_lowercase).as_deref(), value) {
                (Some("photodna"), Some(v)) if pdna.is_none() => pdna = photodna(v),
                (Some("pdq"), Some(v)) => {
                    let hex = v.as_str().unwrap_or("");
                    let key = hex_key(hex).map_err(|m| format!("PDQ: {m}"))?;
                    if key.len() != 32 {
                        return Err(format!("PDQ {hex:?} has the wrong length"));
                    }
                    item.keys.push((KeyAlg::Pdq, key));
                }
                _ => {}
            }
        }
    }
    if item.keys.is_empty() {
        return Err("no MD5, SHA1 or SHA256".into());
    }
    item.category = get("category").and_then(|v| match v {
        Value::Null => None,
        v => Some(match as_int(v) {
            Some(n) => RawCategory::Number(n),
            None => RawCategory::Text(v.as_str().unwrap_or("").to_string()),
        }),
    });
    let file_name = match get("mediafiles") {
        Some(Value::Array(files)) => files
            .iter()
            .find_map(|f| f.get("FileName").or_else(|| f.get("fileName")))
            .cloned(),
        _ => None,
    };
    let boolean = |k: &str| get(k).and_then(as_bool).map_or(Value::Null, Value::Bool);
    let plain = |k: &str| get(k).cloned().unwrap_or(Value::Null);
    item.info = info_json(&[
        (
            "MediaID",
            get("mediaid")
                .and_then(as_int)
                .map_or_else(|| plain("mediaid"), Value::from),
        ),
        ("Category", plain("category")),
        (
            "MediaSize",
            get("mediasize")
                .and_then(as_int)
                .map_or(Value::Null, Value::from),
        ),
        ("Series", plain("series")),
        ("VictimIdentified", boolean("victimidentified")),
        ("OffenderIdentified", boolean("offenderidentified")),
        ("IsDistributed", boolean("isdistributed")),
        ("IsPrecategorized", boolean("isprecategorized")),
        ("DateUpdated", plain("dateupdated")),
        ("FileName", file_name.unwrap_or(Value::Null)),
        ("PhotoDNA", pdna.map_or(Value::Null, Value::String)),
    ]);
    Ok(item)
}

// ---- ThreatExchange ---------------------------------------------------------

struct TeTop<'s, 'i, 'o>(&'s mut State<'i, 'o>);

impl<'de> DeserializeSeed<'de> for TeTop<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TeTop<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of ThreatExchange descriptors")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "data" => map.next_value_seed(TeList(&mut *st))?,
                "paging" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let v: Value = map.next_value()?;
                    descriptor(st, &v)?;
                }
            }
        }
        Ok(())
    }
}

struct TeList<'s, 'i, 'o>(&'s mut State<'i, 'o>);

impl<'de> DeserializeSeed<'de> for TeList<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TeList<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of descriptors")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            descriptor(self.0, &v)?;
        }
        Ok(())
    }
}

fn descriptor<E: de::Error>(st: &mut State<'_, '_>, v: &Value) -> Result<(), E> {
    st.elements += 1;
    let at = st.elements;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let alg = match s("type") {
        "HASH_PDQ" => KeyAlg::Pdq,
        "HASH_MD5" => KeyAlg::Md5,
        "HASH_SHA1" => KeyAlg::Sha1,
        "HASH_SHA256" => KeyAlg::Sha256,
        "" => return st.reject(at, "no \"type\"".into()),
        other => return st.reject(at, format!("type {other} is not a hash triage matches")),
    };
    let hex = s("raw_indicator").trim();
    let key = match hex_key(hex) {
        Ok(k) if k.len() == alg.width() => k,
        Ok(_) => return st.reject(at, format!("{alg} {hex:?} has the wrong length")),
        Err(m) => return st.reject(at, m),
    };
    let tags: Vec<Value> = v
        .pointer("/tags/data")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| t.get("text").cloned()).collect())
        .unwrap_or_default();
    let plain = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let item = Item {
        keys: vec![(alg, key)],
        at,
        info: info_json(&[
            ("id", plain("id")),
            ("type", plain("type")),
            (
                "tags",
                if tags.is_empty() {
                    Value::Null
                } else {
                    Value::Array(tags)
                },
            ),
            ("status", plain("status")),
            ("confidence", plain("confidence")),
            ("share_level", plain("share_level")),
            ("added_on", plain("added_on")),
            (
                "owner",
                v.pointer("/owner/name").cloned().unwrap_or(Value::Null),
            ),
        ]),
        ..Item::default()
    };
    st.item(item)
}
