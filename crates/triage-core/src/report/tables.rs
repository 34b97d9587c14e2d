//! CSV reports: one row per entry (the columns of `scan --csv`), or one
//! row per hash-set hit.

use std::io::Write;

use super::{ReportError, VerifiedLog};
use crate::hash::Algorithm;
use crate::record::{Outcome, RecordWriter, csv};

/// The columns of the matches CSV, in order.
pub const MATCH_COLUMNS: [&str; 17] = [
    "path",
    "path_b64",
    "set",
    "set_kind",
    "alg",
    "distance",
    "transform",
    "frame",
    "category_scheme",
    "category_code",
    "category_label",
    "source",
    "at",
    "empty_file_digest",
    "md5",
    "sha1",
    "sha256",
];

/// Every entry as a row, exactly as `triage scan --csv` writes it.
pub fn write_files<W: Write>(log: &VerifiedLog, out: W) -> Result<(), ReportError> {
    let mut w = csv::Writer::new(out);
    w.header(log.header())?;
    for e in log.entries()? {
        w.entry(&e?)?;
    }
    w.summary(&log.totals())?;
    Ok(())
}

/// Every hit as a row.
pub fn write_matches<W: Write>(log: &VerifiedLog, out: W) -> Result<(), ReportError> {
    let mut w = ::csv::Writer::from_writer(out);
    let io = |e: ::csv::Error| ReportError::Io(e.into());
    w.write_record(MATCH_COLUMNS).map_err(io)?;
    for e in log.entries()? {
        let e = e?;
        let Outcome::Hashed(h) = &e.outcome else {
            continue;
        };
        let [text, b64] = csv::path_cells(&e.path);
        for m in &h.matches {
            let opt = |v: Option<String>| v.unwrap_or_default();
            let row = [
                text.clone(),
                b64.clone(),
                m.set.clone(),
                m.kind.name().to_string(),
                m.alg.name().to_string(),
                opt(m.distance.map(|d| d.to_string())),
                opt(m.transform.clone()),
                opt(m.frame.map(|f| f.to_string())),
                opt(m.category.map(|c| c.scheme.name().to_string())),
                opt(m.category.map(|c| c.scheme.code_text(c.code))),
                opt(m.category.map(|c| c.label().to_string())),
                m.source.clone(),
                m.at.to_string(),
                m.empty_file_digest.to_string(),
                opt(h.digests.hex(Algorithm::Md5)),
                opt(h.digests.hex(Algorithm::Sha1)),
                opt(h.digests.hex(Algorithm::Sha256)),
            ];
            w.write_record(csv::safe_row(&row)).map_err(io)?;
        }
    }
    w.flush()?;
    Ok(())
}
