//! Project VIC VICS 2.0: the matched media as a case export.
//!
//! One `Cases` document (`@odata.context …/2.0.xml/US/$metadata#Cases`)
//! whose single case holds a `Media` object per file with an alert hit:
//! MD5, SHA1 and SHA256 (upper-case hex, as VICS producers write them),
//! PDQ and BLAKE3 under `AlternativeHashes`, the PhotoDNA of the matched
//! entry when the set has one, size, MIME type, path and category.
//!
//! `Category` is a US-profile number, so it is written only for hits in
//! the `projectvic` scheme, or in `projectvic-legacy` translated (legacy 5
//! "non-pertinent" is current 0; legacy 0 "uncategorised" has no number).
//! A UK CAID category has no public VICS number: it goes in `Comments`.
//! `triage hashset import` reads the export back.

use std::io::Write;

use serde_json::{Value, json};

use super::{ReportError, VerifiedLog};
use crate::hash::Algorithm;
use crate::hashset::{Category, Scheme};
use crate::matching::most_serious;
use crate::perceptual::Perceptual;
use crate::record::Outcome;

/// The OData context of the export.
pub const CONTEXT: &str =
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases";

/// The VICS (US profile) number of a category, if it has one.
pub fn us_category(c: Category) -> Option<u16> {
    match (c.scheme, c.code) {
        (Scheme::Projectvic, n) => Some(n),
        (Scheme::ProjectvicLegacy, 5) => Some(0),
        (Scheme::ProjectvicLegacy, n @ 1..=4) => Some(n),
        _ => None,
    }
}

/// Writes the matched media of the verified log as a VICS 2.0 case export.
pub fn write<W: Write>(log: &VerifiedLog, out: &mut W) -> Result<(), ReportError> {
    let h = log.header();
    let case = json!({
        "CaseID": h.run_id,
        "CaseNumber": h.case.as_ref().map(|c| c.case_id.clone()).unwrap_or_default(),
        "ContactEmail": "",
        "SourceApplicationName": "triage",
        "SourceApplicationVersion": h.tool_version,
    });
    let case = serde_json::to_string(&case).map_err(std::io::Error::other)?;
    write!(
        out,
        "{{\"@odata.context\":\"{CONTEXT}\",\n\"value\":[{},\"Media\":[",
        &case[..case.len() - 1]
    )?;
    let mut n = 0u64;
    for e in log.entries()? {
        let e = e?;
        let Outcome::Hashed(hashed) = &e.outcome else {
            continue;
        };
        let finds: Vec<_> = hashed.matches.iter().filter(|m| m.is_find()).collect();
        if finds.is_empty() {
            continue;
        }
        n += 1;
        let upper = |alg| hashed.digests.hex(alg).map(|h| h.to_ascii_uppercase());
        let mut media = json!({"MediaID": n});
        for (key, alg) in [
            ("MD5", Algorithm::Md5),
            ("SHA1", Algorithm::Sha1),
            ("SHA256", Algorithm::Sha256),
        ] {
            if let Some(hex) = upper(alg) {
                media[key] = json!(hex);
            }
        }
        let worst = most_serious(&hashed.matches);
        if let Some(code) = worst.and_then(us_category) {
            media["Category"] = json!(code);
            media["IsPrecategorized"] = json!(true);
        }
        let mut alternative = Vec::new();
        for p in &hashed.perceptual {
            if let Perceptual::Pdq {
                hash, frame: None, ..
            } = p
            {
                alternative.push(json!({"HashName": "PDQ", "HashValue": hash.to_string()}));
            }
        }
        if let Some(b3) = hashed.digests.hex(Algorithm::Blake3) {
            alternative.push(json!({"HashName": "BLAKE3", "HashValue": b3}));
        }
        if !alternative.is_empty() {
            media["AlternativeHashes"] = json!(alternative);
        }
        let photodna = finds.iter().find_map(|m| {
            serde_json::from_str::<Value>(&m.entry)
                .ok()?
                .get("PhotoDNA")?
                .as_str()
                .map(str::to_string)
        });
        if let Some(p) = photodna {
            media["PhotoDNA"] = json!(p);
        }
        media["MediaSize"] = json!(hashed.bytes_read);
        media["MimeType"] = json!(hashed.file_type.mime());
        let path = e.path.escaped();
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        media["RelativeFilePath"] = json!(path);
        media["MediaFiles"] = json!([{"FileName": name, "FilePath": format!("/{path}")}]);
        let hits: Vec<String> = finds
            .iter()
            .map(|m| {
                let mut s = format!("{} {}", m.set, m.alg.name());
                if let Some(d) = m.distance {
                    s.push_str(&format!(" distance {d}"));
                }
                if let Some(c) = m.category {
                    s.push_str(&format!(" category {c}"));
                }
                s
            })
            .collect();
        media["Comments"] = json!(format!("triage matched: {}", hits.join("; ")));
        let text = serde_json::to_string(&media).map_err(std::io::Error::other)?;
        write!(out, "{}\n{text}", if n == 1 { "" } else { "," })?;
    }
    writeln!(out, "]}}]}}")?;
    Ok(())
}
