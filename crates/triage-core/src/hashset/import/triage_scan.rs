//! A `triage scan` JSON Lines output as a hash set: every hashed file's
//! digests and perceptual hashes (all frames), and each video's vPDQ
//! frames (as a known video), with its path. This is how a
//! lab turns its own catalogue of known material into a set, and the only
//! source of `phash/1`-style sets, which no other tool computes.

use std::io::BufRead;

use serde_json::Value;

use super::{ImportError, Importer, Item, info_json};
use crate::hash::Algorithm;
use crate::hashset::KeyAlg;
use crate::perceptual::Perceptual;
use crate::record::Outcome;
use crate::record::jsonl::{Line, Reader};

/// Reads one scan output.
pub(super) fn import(r: &mut dyn BufRead, imp: &mut Importer<'_>) -> Result<(), ImportError> {
    let mut saw_header = false;
    for (i, line) in Reader::new(r).enumerate() {
        let at = i as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                imp.reject(e.line, e.message)?;
                continue;
            }
        };
        let entry = match line {
            Line::Header(h) => {
                saw_header = true;
                imp.declare(format!(
                    "triage scan of {} started {}",
                    h.root.display(),
                    h.started
                ));
                continue;
            }
            Line::Summary(_) | Line::Checkpoint(_) | Line::Resume(_) => continue,
            Line::Entry(e) => e,
        };
        let Outcome::Hashed(h) = &entry.outcome else {
            continue;
        };
        let mut item = Item {
            at,
            ..Item::default()
        };
        for alg in Algorithm::ALL {
            if let Some(d) = h.digests.get(alg) {
                item.keys.push((KeyAlg::from_digest(alg), d.to_vec()));
            }
        }
        for p in &h.perceptual {
            match p {
                Perceptual::Pdq { hash, quality, .. } => {
                    item.keys.push((KeyAlg::Pdq, hash.to_bytes().to_vec()));
                    item.quality = Some(item.quality.map_or(*quality, |q| q.min(*quality)));
                }
                Perceptual::Img { alg, hash } => {
                    if let Some(k) = KeyAlg::from_tag(alg.tag()) {
                        item.keys.push((k, hash.to_vec()));
                    }
                }
            }
        }
        let info = vec![
            ("path", Value::String(entry.path.to_string())),
            ("size", Value::from(h.bytes_read)),
        ];
        // A video: one record with its digests and its unique frames.
        if let Some(Ok(v)) = h.video.as_deref() {
            match super::vpdq::video_item(v.frames.iter().map(|f| (f.hash, f.quality)), at, info) {
                Ok(video) => {
                    item.keys.extend(video.keys);
                    item.info = video.info;
                }
                Err(why) => {
                    // Still listed by its digests; its frames cannot match.
                    imp.reject(at, format!("{}: {why}", entry.path))?;
                    item.info = info_json(&[
                        ("path", Value::String(entry.path.to_string())),
                        ("size", Value::from(h.bytes_read)),
                    ]);
                }
            }
        } else {
            item.info = info_json(&info);
        }
        imp.item(item)?;
    }
    if !saw_header {
        return Err(ImportError::new(
            "no header record: not a complete triage scan output",
        ));
    }
    Ok(())
}
