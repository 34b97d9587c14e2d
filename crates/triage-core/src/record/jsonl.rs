//! JSON Lines: the audit log, the reference form of scan records (schema
//! `triage-scan` v1).
//!
//! One JSON object per line; the `record` key says which kind: `header`
//! first, then one `file`, `skipped` or `failed` per entry in walk order,
//! with `checkpoint` lines between them (and a `resume` line where a killed
//! scan was continued), then the `summary` footer. Every line is chained to
//! the one before (see [`super::seal`]). Every key is documented in
//! `docs/scan-schema.md`. A log without a footer is the record of a scan
//! that did not finish.

use std::io::{self, BufRead, Write};
use std::time::{Duration, Instant};

use super::seal::{self, SigningKey};
use super::wire::{WireCheckpoint, WireLine, WireResume};
use super::{Checkpoint, Checkpoints, Entry, RecordWriter, Resume, ScanHeader, Summary};
use crate::time::Timestamp;

/// Where a log's hash chain stands: what a writer needs to continue it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainState {
    /// The `seq` of the next line.
    pub seq: u64,
    /// SHA-256 of the last line: the next line's `prev`.
    pub prev: [u8; 32],
    /// The counts of every entry recorded so far.
    pub tally: Summary,
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState {
            seq: 0,
            prev: seal::GENESIS,
            tally: Summary::default(),
        }
    }
}

/// Writes the audit log: chained JSON Lines with sealed checkpoints and a
/// sealed footer (see [`seal`] for the rules).
///
/// ```
/// use triage_core::record::jsonl::Writer;
/// use triage_core::record::{RecordWriter, Summary};
/// let mut out = Vec::new();
/// let mut w = Writer::new(&mut out);
/// w.checkpoint().unwrap();
/// w.summary(&Summary::default()).unwrap();
/// drop(w);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with(r#"{"seq":0,"prev":"0000"#));
/// assert!(text.lines().nth(1).unwrap().contains(r#""seal":"sha256:"#));
/// ```
pub struct Writer<W: Write> {
    out: io::BufWriter<W>,
    sync: Option<fn(&W) -> io::Result<()>>,
    chain: ChainState,
    line: Vec<u8>,
    key: Option<SigningKey>,
    every: Checkpoints,
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl<W: Write> Writer<W> {
    /// A writer over `out` (buffered internally), starting a new chain.
    pub fn new(out: W) -> Self {
        Writer {
            out: io::BufWriter::with_capacity(64 * 1024, out),
            sync: None,
            chain: ChainState::default(),
            line: Vec::with_capacity(4096),
            key: None,
            every: Checkpoints::default(),
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        }
    }

    /// Makes checkpoints durable: after flushing, `sync` is called on the
    /// output (`File::sync_data` for a file).
    pub fn with_sync(mut self, sync: fn(&W) -> io::Result<()>) -> Self {
        self.sync = Some(sync);
        self
    }

    /// Signs checkpoints and the footer with `key` (the header must name
    /// its public key, see [`ScanHeader::signing_key`]).
    pub fn with_key(mut self, key: SigningKey) -> Self {
        self.key = Some(key);
        self
    }

    /// When to write checkpoints.
    pub fn with_checkpoints(mut self, every: Checkpoints) -> Self {
        self.every = every;
        self
    }

    /// Continues an existing chain (for `--resume`) instead of starting one.
    pub fn continuing(mut self, state: ChainState) -> Self {
        self.chain = state;
        self
    }

    /// The chain's state after the last line written.
    pub fn state(&self) -> &ChainState {
        &self.chain
    }

    /// Writes a resume record and makes it durable.
    pub fn resume(&mut self, r: &Resume) -> io::Result<()> {
        self.line(&WireLine::Resume(WireResume::from(r)), false)?;
        self.commit()
    }

    /// Writes a sealed checkpoint and makes everything before it durable.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        let c = Checkpoint {
            entries: self.chain.tally.entries(),
            time: Timestamp::now(),
        };
        self.line(&WireLine::Checkpoint(WireCheckpoint::from(&c)), true)?;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        self.commit()
    }

    fn commit(&mut self) -> io::Result<()> {
        self.out.flush()?;
        match self.sync {
            Some(sync) => sync(self.out.get_ref()),
            None => Ok(()),
        }
    }

    fn checkpoint_due(&self) -> bool {
        (self.every.every_entries > 0 && self.since_checkpoint >= self.every.every_entries)
            || (self.every.every_secs > 0
                && self.last_checkpoint.elapsed() >= Duration::from_secs(self.every.every_secs))
    }

    /// Writes one chained line: `{"seq":N,"prev":"<hex>",` then the record's
    /// own members, then (for checkpoints and the footer) the seal.
    fn line(&mut self, l: &WireLine, sealed: bool) -> io::Result<()> {
        self.line.clear();
        write!(
            self.line,
            "{{\"seq\":{},\"prev\":\"{}\",",
            self.chain.seq,
            crate::hash::to_hex(&self.chain.prev)
        )?;
        let members = self.line.len();
        serde_json::to_writer(&mut self.line, l).map_err(io::Error::other)?;
        // The record's own opening brace: the chain keys opened the object.
        self.line.remove(members);
        if sealed {
            seal::seal_line(&mut self.line, self.key.as_ref());
        }
        self.out.write_all(&self.line)?;
        self.out.write_all(b"\n")?;
        self.chain.prev = seal::line_hash(&self.line);
        self.chain.seq += 1;
        Ok(())
    }
}

impl<W: Write> RecordWriter for Writer<W> {
    fn header(&mut self, header: &ScanHeader) -> io::Result<()> {
        let named = header.signing_key.as_ref();
        let have = self.key.as_ref().map(SigningKey::public);
        if named != have.as_ref() {
            return Err(io::Error::other(
                "the header must name exactly the key the log is signed with",
            ));
        }
        self.line(&WireLine::header(header), false)?;
        self.commit()
    }

    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        self.line(&WireLine::entry(entry), false)?;
        self.chain.tally.count(entry);
        self.since_checkpoint += 1;
        if self.checkpoint_due() {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Writes the sealed footer. Its counts are those of every entry in the
    /// log (including those before a resume); times, directories, the
    /// interrupted flag, outputs and read tuning come from `summary`.
    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        let footer = Summary {
            directories: summary.directories,
            started: summary.started,
            finished: summary.finished,
            duration_secs: summary.duration_secs,
            interrupted: summary.interrupted,
            outputs: summary.outputs.clone(),
            image_segments: summary.image_segments.clone(),
            image_verification: summary.image_verification.clone(),
            reads: summary.reads.clone(),
            ..self.chain.tally.clone()
        };
        self.line(&WireLine::summary(&footer), true)?;
        self.commit()
    }
}

/// One parsed line.
// Headers come once per log; boxing them would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// The `header` record.
    Header(ScanHeader),
    /// A `file`, `skipped` or `failed` record.
    Entry(Entry),
    /// A `checkpoint` record.
    Checkpoint(Checkpoint),
    /// A `resume` record.
    Resume(Resume),
    /// The `summary` record (the footer).
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
}

/// Counts an entry line into `summary` without parsing all of it (the
/// verifier's fast path; [`parse_line`] reads everything).
pub fn tally_line(bytes: &[u8], summary: &mut Summary) -> Result<(), String> {
    let wire: super::wire::WireTally<'_> =
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    summary.count_tally(&wire.tally()?);
    Ok(())
}

/// Parses one line of the log (without its newline).
pub fn parse_line(bytes: &[u8]) -> Result<Line, String> {
    let wire: WireLine = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match wire {
        WireLine::Header(h) => h.into_header().map(Line::Header),
        WireLine::Summary(s) => s.into_summary().map(Line::Summary),
        WireLine::File(e) => e.into_entry("file").map(Line::Entry),
        WireLine::Skipped(e) => e.into_entry("skipped").map(Line::Entry),
        WireLine::Failed(e) => e.into_entry("failed").map(Line::Entry),
        WireLine::Checkpoint(c) => c.into_checkpoint().map(Line::Checkpoint),
        WireLine::Resume(r) => r.into_resume().map(Line::Resume),
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
            return Some(parse_line(&self.buf).map_err(|message| ReadError {
                line: self.line_no,
                message,
            }));
        }
    }
}
