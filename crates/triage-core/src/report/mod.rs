//! Report stage: the audit log, read back and written for other tools and readers.
//!
//! Input: a log file. It is verified first (a log that does not verify
//! gives no report), then streamed, one record at a time, into one of the
//! [`ReportFormat`]s: DFXML, CASE/UCO JSON-LD, CSV of files, CSV of
//! matches, a Project VIC VICS 2.0 case export of the matched media, or a
//! self-contained HTML page. The log is only opened for reading.

pub mod case;
pub mod dfxml;
pub mod html;
pub mod tables;
pub mod vics;

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::record::jsonl::{Line, Reader};
use crate::record::seal::PublicKey;
use crate::record::{Entry, ScanHeader, Summary};
use crate::verify::{LogCheck, Problem, Status, check_log, open_log};

/// The formats `triage report` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// DFXML 1.2 (valid against the DFXML schema), BLAKE3 and perceptual
    /// hashes in an extension namespace.
    Dfxml,
    /// CASE/UCO JSON-LD.
    Case,
    /// CSV, one row per entry (the columns of `scan --csv`).
    Csv,
    /// CSV, one row per hash-set hit.
    MatchesCsv,
    /// Project VIC VICS 2.0 case export of the matched media.
    Vics,
    /// One self-contained HTML page.
    Html,
}

impl ReportFormat {
    /// Every format.
    pub const ALL: [ReportFormat; 6] = [
        ReportFormat::Dfxml,
        ReportFormat::Case,
        ReportFormat::Csv,
        ReportFormat::MatchesCsv,
        ReportFormat::Vics,
        ReportFormat::Html,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Dfxml => "dfxml",
            ReportFormat::Case => "case",
            ReportFormat::Csv => "csv",
            ReportFormat::MatchesCsv => "matches-csv",
            ReportFormat::Vics => "vics",
            ReportFormat::Html => "html",
        }
    }

    /// Parses [`ReportFormat::name`].
    pub fn parse(s: &str) -> Option<ReportFormat> {
        ReportFormat::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// Escapes text for XML and HTML content and attribute values (DFXML and
/// the HTML page). Control characters other than tab and newlines, which
/// XML 1.0 cannot carry at all, become `\u{..}` text.
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

/// What a report may use besides the log.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// The key the log must be signed with (see [`check_log`]).
    pub pubkey: Option<PublicKey>,
    /// HTML: thumbnails of matched images (small, greyscale, blurred until
    /// clicked), read from the evidence and shown only if their digests
    /// still equal the log's.
    pub thumbnails: bool,
    /// Where the evidence is mounted now, if not at the log's root.
    pub evidence: Option<PathBuf>,
}

/// Why no report was written.
#[derive(Debug)]
pub enum ReportError {
    /// The log or the output could not be read or written.
    Io(io::Error),
    /// The log does not verify: it was altered or damaged.
    DoesNotVerify(Problem),
    /// A verified line could not be read as a record (a newer schema?).
    Log(String),
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Io(e) => e.fmt(f),
            ReportError::DoesNotVerify(p) => write!(
                f,
                "the log does not verify ({p}): no report is made from an altered or damaged log"
            ),
            ReportError::Log(m) => write!(f, "the log cannot be read: {m}"),
        }
    }
}

impl std::error::Error for ReportError {}

impl From<io::Error> for ReportError {
    fn from(e: io::Error) -> Self {
        ReportError::Io(e)
    }
}

/// A verified log, ready to be read again as often as a format needs.
pub struct VerifiedLog {
    path: PathBuf,
    header: ScanHeader,
    /// What verification found (status, header, totals, chain head).
    pub check: LogCheck,
}

impl VerifiedLog {
    /// Opens and verifies `path` (read-only).
    pub fn open(path: &Path, pubkey: Option<&PublicKey>) -> Result<VerifiedLog, ReportError> {
        let check = check_log(open_log(path)?, pubkey)?;
        if let Some(p) = &check.problem {
            return Err(ReportError::DoesNotVerify(p.clone()));
        }
        let header = check
            .header
            .clone()
            .ok_or_else(|| ReportError::Log("it has no header".to_string()))?;
        Ok(VerifiedLog {
            path: path.to_path_buf(),
            header,
            check,
        })
    }

    /// The header.
    pub fn header(&self) -> &ScanHeader {
        &self.header
    }

    /// The totals of every entry: the footer's when there is one, else
    /// those counted while verifying (an unfinished scan).
    pub fn totals(&self) -> Summary {
        self.check
            .footer
            .clone()
            .unwrap_or_else(|| self.check.state.tally.clone())
    }

    /// The verdict, for reports to state.
    pub fn status(&self) -> Status {
        self.check.status()
    }

    /// The entries, streamed from the verified part of the log.
    pub fn entries(&self) -> Result<impl Iterator<Item = Result<Entry, ReportError>>, ReportError> {
        let file = open_log(&self.path)?.take(self.check.verified_bytes);
        Ok(Reader::new(BufReader::new(file)).filter_map(|l| match l {
            Ok(Line::Entry(e)) => Some(Ok(e)),
            Ok(_) => None,
            Err(e) => Some(Err(ReportError::Log(e.to_string()))),
        }))
    }

    /// Where the evidence is: `evidence` if given, else the log's root.
    pub fn evidence_root(&self, evidence: Option<&Path>) -> PathBuf {
        evidence.map_or_else(|| self.header().root.clone(), Path::to_path_buf)
    }
}

/// Verifies `log` and writes it to `out` as `format`.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("triage-doc-report-{}", std::process::id()));
/// # std::fs::create_dir_all(dir.join("ev")).unwrap();
/// # std::fs::write(dir.join("ev/f"), b"x").unwrap();
/// use triage_core::record::{RecordWriter, jsonl};
/// use triage_core::report::{ReportFormat, ReportOptions, write_report};
/// let scanner = triage_core::Scanner::new(triage_core::ScanConfig::new(dir.join("ev"))).unwrap();
/// let mut w = jsonl::Writer::new(std::fs::File::create(dir.join("log")).unwrap());
/// w.header(&scanner.header()).unwrap();
/// let s = scanner.run(|e| w.entry(&e)).unwrap();
/// w.summary(&s).unwrap();
/// drop(w);
/// let mut xml = Vec::new();
/// write_report(&dir.join("log"), ReportFormat::Dfxml, &ReportOptions::default(), &mut xml).unwrap();
/// assert!(String::from_utf8(xml).unwrap().contains("<filename>f</filename>"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_report<W: Write>(
    log: &Path,
    format: ReportFormat,
    options: &ReportOptions,
    out: W,
) -> Result<Status, ReportError> {
    let log = VerifiedLog::open(log, options.pubkey.as_ref())?;
    let mut out = io::BufWriter::new(out);
    match format {
        ReportFormat::Dfxml => dfxml::write(&log, &mut out)?,
        ReportFormat::Case => case::write(&log, &mut out)?,
        ReportFormat::Csv => tables::write_files(&log, &mut out)?,
        ReportFormat::MatchesCsv => tables::write_matches(&log, &mut out)?,
        ReportFormat::Vics => vics::write(&log, &mut out)?,
        ReportFormat::Html => html::write(&log, options, &mut out)?,
    }
    out.flush()?;
    Ok(log.status())
}
