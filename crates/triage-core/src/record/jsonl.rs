//! JSON Lines: the reference form of scan records (schema `triage-scan` v1).
//!
//! One JSON object per line; the `record` key says which kind: `header`
//! first, then one `file`, `skipped` or `failed` per entry in walk order,
//! then `summary`. Every key is documented in `docs/scan-schema.md`. A file
//! without a `summary` line is the record of a scan that did not finish.

use std::io::{self, BufRead, Write};

use super::wire::WireLine;
use super::{Entry, RecordWriter, ScanHeader, Summary};

/// Writes scan records as JSON Lines.
pub struct Writer<W: Write> {
    out: io::BufWriter<W>,
}

impl<W: Write> Writer<W> {
    /// A writer over `out` (buffered internally).
    pub fn new(out: W) -> Self {
        Writer {
            out: io::BufWriter::with_capacity(64 * 1024, out),
        }
    }

    fn line(&mut self, l: &WireLine) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, l).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }
}

impl<W: Write> RecordWriter for Writer<W> {
    fn header(&mut self, header: &ScanHeader) -> io::Result<()> {
        self.line(&WireLine::header(header))
    }

    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        self.line(&WireLine::entry(entry))
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        self.line(&WireLine::summary(summary))?;
        self.out.flush()
    }
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// The `header` record.
    Header(ScanHeader),
    /// A `file`, `skipped` or `failed` record.
    Entry(Entry),
    /// The `summary` record.
    Summary(Summary),
}

/// A line that could not be read as a schema v1 record.
#[derive(Debug)]
pub struct ReadError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ReadError {}

/// Reads JSON Lines scan records back, streaming: one line in memory at a time.
///
/// ```
/// use triage_core::record::jsonl::{Reader, Line};
/// let text = br#"{"record":"skipped","path":"p","reason":"fifo"}"#;
/// let lines: Vec<_> = Reader::new(&text[..]).collect::<Result<_, _>>().unwrap();
/// assert!(matches!(&lines[0], Line::Entry(e) if e.path.to_str() == Some("p")));
/// ```
pub struct Reader<R: BufRead> {
    input: R,
    line_no: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Reader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> Self {
        Reader {
            input,
            line_no: 0,
            buf: Vec::new(),
        }
    }

    fn parse(&self) -> Result<Line, String> {
        let wire: WireLine = serde_json::from_slice(&self.buf).map_err(|e| e.to_string())?;
        match wire {
            WireLine::Header(h) => h.into_header().map(Line::Header),
            WireLine::Summary(s) => s.into_summary().map(Line::Summary),
            WireLine::File(e) => e.into_entry("file").map(Line::Entry),
            WireLine::Skipped(e) => e.into_entry("skipped").map(Line::Entry),
            WireLine::Failed(e) => e.into_entry("failed").map(Line::Entry),
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Line, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            self.line_no += 1;
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(ReadError {
                        line: self.line_no,
                        message: e.to_string(),
                    }));
                }
            }
            while self.buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                self.buf.pop();
            }
            if self.buf.is_empty() {
                continue;
            }
            return Some(self.parse().map_err(|message| ReadError {
                line: self.line_no,
                message,
            }));
        }
    }
}
