//! CSV: one row per entry, for spreadsheets and databases.
//!
//! RFC 4180 quoting (the `csv` crate), so commas, quotes and newlines in
//! names stay intact. Fixed columns, see [`COLUMNS`]; cells that do not apply
//! to an entry are empty. A name that is not UTF-8 goes to `path_b64` as
//! base64, leaving `path` empty. The header and summary records have no rows:
//! the JSON Lines form carries them.

use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Entry, FailureKind, Outcome, RecordWriter, ScanHeader, SkipReason, Summary};
use crate::hash::{Algorithm, to_hex};
use crate::path::RawPath;
use crate::perceptual::Perceptual;

/// The column names, in order. `perceptual` holds the perceptual hashes as
/// space-separated `tag:hash` (PDQ: `tag:hash:quality`); `perceptual_error`
/// the decode error's kind and message; `matches` the hash-set hits as
/// `set:alg[:distance][:transform][:category code]`, `;`-separated (the
/// JSON Lines form has every detail). For a child item (an archive
/// member), `parent` is the path of the entry it is inside, `member` its
/// name there, `container` what it is in (`zip`) and `depth` its nesting
/// level; for a container, `expanded` says what looked inside it (`zip`)
/// or why nothing did (`zip: not looked inside: …`).
pub const COLUMNS: [&str; 33] = [
    "record",
    "path",
    "path_b64",
    "kind",
    "size",
    "mtime",
    "atime",
    "ctime",
    "btime",
    "dev",
    "ino",
    "mode",
    "type",
    "ext_mismatch",
    "empty",
    "md5",
    "sha1",
    "sha256",
    "blake3",
    "reason",
    "error",
    "bytes_read",
    "perceptual",
    "perceptual_error",
    "matches",
    "parent",
    "member",
    "container",
    "depth",
    "expanded",
    "video",
    "video_frames",
    "video_error",
];

/// Writes entries as CSV rows.
pub struct Writer<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> Writer<W> {
    /// A writer over `out`.
    pub fn new(out: W) -> Self {
        Writer {
            out: csv::WriterBuilder::new()
                .quote_style(csv::QuoteStyle::Necessary)
                .from_writer(out),
        }
    }
}

/// A path as the `path` and `path_b64` cells: text when it is UTF-8, else
/// base64. A name a spreadsheet would run as a formula is neutralised in
/// `path` (see [`neutralise`]) and kept exactly in `path_b64`.
pub fn path_cells(p: &RawPath) -> [String; 2] {
    match p.to_str() {
        Some(s) if is_formula(s) => [neutralise(s), B64.encode(p.as_bytes())],
        Some(s) => [s.to_string(), String::new()],
        None => [String::new(), B64.encode(p.as_bytes())],
    }
}

/// Whether a spreadsheet (Excel, LibreOffice, Sheets) would read `cell` as
/// a formula or command: it starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return (OWASP, "CSV Injection"). File names are chosen by the
/// suspect: `=HYPERLINK(…)` or `@SUM(1+1)*cmd|calc` must not run on the
/// examiner's machine.
pub fn is_formula(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// `cell`, with a `'` put before it when [`is_formula`]: spreadsheets then
/// show it as text (and hide the quote). Every cell of every CSV `triage`
/// writes goes through this; the raw text stays in the JSON Lines log (and
/// a path's bytes in `path_b64`).
pub fn neutralise(cell: &str) -> String {
    if is_formula(cell) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// A row with every cell neutralised (see [`neutralise`]).
pub fn safe_row<S: AsRef<str>>(row: &[S]) -> Vec<String> {
    row.iter().map(|c| neutralise(c.as_ref())).collect()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The `video`, `video_frames` and `video_error` cells: the stream
/// (`vpdq/1 h264 1280x720 30/1 4.309s every 30`), each kept frame as
/// `frame@seconds:hash:quality`, and why there are none.
fn video_cells(o: &Outcome) -> [String; 3] {
    let Outcome::Hashed(h) = o else {
        return Default::default();
    };
    match h.video.as_deref() {
        None => Default::default(),
        Some(Err(e)) => [
            String::new(),
            String::new(),
            format!("{}: {}", e.code(), e.detail()),
        ],
        Some(Ok(v)) => {
            let i = &v.info;
            let mut stream = format!(
                "{} {} {}x{} {}/{}",
                crate::perceptual::video::VPDQ_TAG,
                i.codec,
                i.width,
                i.height,
                i.frame_rate.0,
                i.frame_rate.1
            );
            if let Some(d) = i.duration {
                stream.push_str(&format!(" {d:.3}s"));
            }
            stream.push_str(&format!(" every {}", v.every));
            if v.truncated {
                stream.push_str(" truncated");
            }
            let frames: Vec<String> = v
                .frames
                .iter()
                .map(|f| format!("{}@{:.3}:{}:{}", f.frame, f.timestamp, f.hash, f.quality))
                .collect();
            [stream, frames.join(" "), String::new()]
        }
    }
}

impl<W: Write> RecordWriter for Writer<W> {
    fn header(&mut self, _header: &ScanHeader) -> io::Result<()> {
        self.out.write_record(COLUMNS)?;
        Ok(())
    }

    fn entry(&mut self, e: &Entry) -> io::Result<()> {
        let m = e.meta.as_ref();
        let [path, path_b64] = path_cells(&e.path);
        let mut row: Vec<String> = vec![
            e.outcome.label().to_string(),
            path,
            path_b64,
            opt(m.map(|m| m.kind().name())),
            opt(m.map(|m| m.size)),
            opt(m.map(|m| m.mtime)),
            opt(m.map(|m| m.atime)),
            opt(m.map(|m| m.ctime)),
            opt(m.and_then(|m| m.btime)),
            opt(m.map(|m| m.dev)),
            opt(m.map(|m| m.ino)),
            opt(m.map(|m| format!("{:o}", m.mode))),
        ];
        match &e.outcome {
            Outcome::Hashed(h) => {
                row.push(h.file_type.name().to_string());
                row.push(opt(h.ext_mismatch));
                row.push(h.empty.to_string());
                for alg in Algorithm::ALL {
                    row.push(h.digests.hex(alg).unwrap_or_default());
                }
                row.extend([String::new(), String::new(), h.bytes_read.to_string()]);
                let tagged: Vec<String> = h
                    .perceptual
                    .iter()
                    .map(|p| match p {
                        Perceptual::Pdq { hash, quality, .. } => {
                            format!("{}:{hash}:{quality}", p.tag())
                        }
                        Perceptual::Img { hash, .. } => format!("{}:{}", p.tag(), to_hex(hash)),
                    })
                    .collect();
                row.push(tagged.join(" "));
                row.push(
                    h.perceptual_error
                        .as_ref()
                        .map(|e| format!("{}: {}", e.code(), e.detail()))
                        .unwrap_or_default(),
                );
                let hits: Vec<String> = h
                    .matches
                    .iter()
                    .map(|m| {
                        let mut cell = format!("{}:{}", m.set, m.alg);
                        if let Some(d) = m.distance {
                            cell.push_str(&format!(":{d}"));
                        }
                        if let Some(t) = &m.transform {
                            cell.push_str(&format!(":{t}"));
                        }
                        if let Some(c) = m.category {
                            cell.push_str(&format!(":{} {}", c.scheme, c.scheme.code_text(c.code)));
                        }
                        if m.empty_file_digest {
                            cell.push_str(":empty-file-digest");
                        }
                        if let Some(f) = m.frame {
                            cell.push_str(&format!(":frame {f}"));
                        }
                        if let Some(v) = &m.video {
                            cell.push_str(&format!(
                                ":known {:.2}%:query {:.2}%",
                                v.known_percent(),
                                v.query_percent()
                            ));
                        }
                        cell
                    })
                    .collect();
                row.push(hits.join(";"));
            }
            Outcome::Skipped(r) => {
                row.extend(std::iter::repeat_n(String::new(), 7));
                row.push(r.code().to_string());
                // The symlink target, loop ancestor or first name, escaped: a CSV cell is
                // for reading, the JSON Lines form keeps the raw bytes.
                let detail = match r {
                    SkipReason::Symlink { .. }
                    | SkipReason::DirectoryLoop { .. }
                    | SkipReason::HardLink { .. } => r.to_string(),
                    _ => String::new(),
                };
                row.extend([
                    detail,
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            Outcome::Failed(f) => {
                row.extend(std::iter::repeat_n(String::new(), 7));
                let reason = match &f.kind {
                    FailureKind::Io(_) => format!("{}_error", f.stage.code()),
                    k => k.code().to_string(),
                };
                row.extend([reason, f.kind.to_string(), f.bytes_read.to_string()]);
                row.extend([String::new(), String::new(), String::new()]);
            }
        }
        let (parent, member, container, depth) = match &e.within {
            Some(w) => (
                w.parent.to_string(),
                w.member.to_string(),
                w.container.to_string(),
                w.depth.to_string(),
            ),
            None => Default::default(),
        };
        let expanded = match &e.outcome {
            Outcome::Hashed(h) => match h.expansion.as_deref() {
                Some(crate::item::Expansion::Expanded { container }) => container.to_string(),
                Some(crate::item::Expansion::NotExpanded { container, why }) => {
                    format!("{container}: not looked inside: {why}")
                }
                None => String::new(),
            },
            _ => String::new(),
        };
        row.extend([parent, member, container, depth, expanded]);
        row.extend(video_cells(&e.outcome));
        debug_assert_eq!(row.len(), COLUMNS.len());
        self.out.write_record(safe_row(&row))?;
        Ok(())
    }

    fn summary(&mut self, _summary: &Summary) -> io::Result<()> {
        self.out.flush()
    }
}
