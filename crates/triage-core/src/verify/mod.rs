//! Verify stage: prove an audit log is intact, and re-check evidence against it.
//!
//! [`check_log`] reads a log once, streaming, and checks every rule of
//! [`crate::record::seal`]: each line's `seq` and `prev`, the order of
//! record kinds, every seal (or signature), the entry count of every
//! checkpoint and the totals of every footer against the entries before
//! it. It stops at the first line that does not verify and names it.
//! [`evidence`] re-hashes an evidence tree and compares it with the log in
//! hashdeep's audit terms. [`image`] checks a disk image's medium against
//! the digests stored in it at acquisition.

pub mod evidence;
pub mod image;

use std::fmt;
use std::io::{self, BufRead};

use crate::record::jsonl::{ChainState, Line, parse_line, tally_line};
use crate::record::seal::{self, PublicKey, SealKind};
use crate::record::{ScanHeader, Summary};

/// What checking a log found.
#[derive(Clone, Debug)]
pub struct LogCheck {
    /// Complete lines that verified.
    pub lines: u64,
    /// Byte length of those lines (newlines included).
    pub verified_bytes: u64,
    /// The header, once line 1 verified.
    pub header: Option<ScanHeader>,
    /// The chain after the last verified line: what `--resume` continues.
    pub state: ChainState,
    /// The footer, when the last verified line is one.
    pub footer: Option<Summary>,
    /// Checkpoints verified.
    pub checkpoints: u64,
    /// Seals that were signatures by the header's key.
    pub signatures: u64,
    /// The last line with a verified seal or signature (1-based).
    pub last_sealed_line: Option<u64>,
    /// Resume records seen.
    pub resumes: u64,
    /// Bytes after the last newline: a line whose write was cut short.
    pub partial_tail: u64,
    /// The first line that does not verify, and why.
    pub problem: Option<Problem>,
    /// Length of the last verified line, newline included.
    last_len: u64,
}

/// A line that does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number.
    pub line: u64,
    /// Why, in words an examiner can put in a report.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The verdict on a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every line verifies and the log ends with the footer of a finished scan.
    Complete,
    /// Every line verifies; the footer says the scan was interrupted
    /// (SIGINT/SIGTERM). `--resume` can finish it.
    Interrupted,
    /// Every complete line verifies but there is no footer: the scan was
    /// killed, or the log was cut. `--resume` can finish it.
    Incomplete,
    /// A line does not verify: the log was altered or damaged.
    Failed,
}

impl LogCheck {
    /// The verdict.
    pub fn status(&self) -> Status {
        match (&self.problem, &self.footer) {
            (Some(_), _) => Status::Failed,
            (None, Some(f)) if self.partial_tail == 0 && f.interrupted => Status::Interrupted,
            (None, Some(_)) if self.partial_tail == 0 => Status::Complete,
            (None, _) => Status::Incomplete,
        }
    }

    /// SHA-256 of the last verified line: commits to the whole verified
    /// log. Examiners note it in their case file to anchor the log.
    pub fn head(&self) -> [u8; 32] {
        self.state.prev
    }

    /// Why the log is incomplete, in words (naming the line), or `None`.
    pub fn incompleteness(&self) -> Option<Problem> {
        if self.status() != Status::Incomplete {
            return None;
        }
        let line = self.lines + 1;
        Some(Problem {
            line,
            reason: if self.partial_tail > 0 {
                format!(
                    "incomplete line of {} bytes without a newline: the scan was killed while writing, or the log was cut",
                    self.partial_tail
                )
            } else if self.lines == 0 {
                "the log is empty".to_string()
            } else {
                "the log ends without a footer: the scan was killed, or the log was cut".to_string()
            },
        })
    }
}

/// Opens a log for reading, with a buffer large enough that reading costs
/// nothing next to hashing and parsing.
pub fn open_log(path: &std::path::Path) -> io::Result<io::BufReader<std::fs::File>> {
    Ok(io::BufReader::with_capacity(
        1 << 20,
        crate::files::open_quiet(path)?,
    ))
}

/// Checks a whole log. With `expected`, the header must name that key and
/// every seal must be its signature; without, the header's own key (if
/// any) is used, which proves integrity but not who signed.
///
/// Fails only when the log cannot be read; everything wrong with its
/// content is a [`Problem`].
///
/// ```
/// use triage_core::record::jsonl::Writer;
/// use triage_core::record::{RecordWriter, Summary};
/// use triage_core::verify::{Status, check_log};
/// # let dir = std::env::temp_dir().join(format!("triage-doc-verify-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # std::fs::write(dir.join("f"), b"x").unwrap();
/// let scanner = triage_core::Scanner::new(triage_core::ScanConfig::new(&dir)).unwrap();
/// let mut log = Vec::new();
/// let mut w = Writer::new(&mut log);
/// w.header(&scanner.header()).unwrap();
/// let summary = scanner.run(|e| w.entry(&e)).unwrap();
/// w.summary(&summary).unwrap();
/// drop(w);
/// assert_eq!(check_log(&log[..], None).unwrap().status(), Status::Complete);
/// log[60] ^= 1;
/// let check = check_log(&log[..], None).unwrap();
/// assert_eq!(check.status(), Status::Failed);
/// assert_eq!(check.problem.unwrap().line, 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn check_log<R: BufRead>(mut input: R, expected: Option<&PublicKey>) -> io::Result<LogCheck> {
    let mut check = LogCheck {
        lines: 0,
        verified_bytes: 0,
        header: None,
        state: ChainState::default(),
        footer: None,
        checkpoints: 0,
        signatures: 0,
        last_sealed_line: None,
        resumes: 0,
        partial_tail: 0,
        problem: None,
        last_len: 0,
    };
    let mut key: Option<PublicKey> = None;
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            check.partial_tail = n as u64;
            break;
        }
        buf.pop();
        let number = check.lines + 1;
        if let Err(reason) = check_line(&mut check, &mut key, expected, &buf) {
            check.problem = Some(match reason {
                Blame::This(reason) => Problem {
                    line: number,
                    reason,
                },
                Blame::Previous => {
                    // Either the line before was altered, or this line's
                    // prev was. The line after this one (or this line's
                    // seal) says whether this line is as written.
                    let this_intact = next_confirms(&mut input, &buf)?
                        .unwrap_or_else(|| seal::check_seal(&buf, key.as_ref()).is_ok());
                    if this_intact {
                        check.lines -= 1;
                        check.verified_bytes -= check.last_len;
                        Problem {
                            line: number - 1,
                            reason: format!(
                                "this line was altered: its SHA-256 is not the prev of line {number}, which is itself intact"
                            ),
                        }
                    } else {
                        Problem {
                            line: number,
                            reason: format!(
                                "prev is not the SHA-256 of line {}: this line was altered",
                                number - 1
                            ),
                        }
                    }
                }
            });
            break;
        }
        check.last_len = n as u64;
        check.state.prev = seal::line_hash(&buf);
        check.state.seq += 1;
        check.lines += 1;
        check.verified_bytes += n as u64;
    }
    Ok(check)
}

/// Which line a failed check points at.
enum Blame {
    /// The line being checked.
    This(String),
    /// Its `prev` is not the SHA-256 of the line before: one of the two
    /// was altered.
    Previous,
}

/// Whether the line after `line` carries `line`'s SHA-256 as its prev
/// (`None`: there is no complete next line).
fn next_confirms<R: BufRead>(input: &mut R, line: &[u8]) -> io::Result<Option<bool>> {
    let mut next = Vec::new();
    input.read_until(b'\n', &mut next)?;
    if next.pop() != Some(b'\n') {
        return Ok(None);
    }
    Ok(Some(chain_keys(&next).is_ok_and(|(_, prev)| {
        prev == link_hex(&seal::line_hash(line))
    })))
}

impl From<String> for Blame {
    fn from(s: String) -> Self {
        Blame::This(s)
    }
}

impl From<&str> for Blame {
    fn from(s: &str) -> Self {
        Blame::This(s.to_string())
    }
}

fn check_line(
    check: &mut LogCheck,
    key: &mut Option<PublicKey>,
    expected: Option<&PublicKey>,
    line: &[u8],
) -> Result<(), Blame> {
    let (seq, prev) = chain_keys(line)?;
    if seq != check.state.seq {
        return Err(format!(
            "seq is {seq} where {} was expected: lines were removed, inserted or reordered here",
            check.state.seq
        )
        .into());
    }
    if prev != link_hex(&check.state.prev) {
        if check.state.seq == 0 {
            return Err("prev is not the genesis value (the log does not start here)".into());
        }
        return Err(Blame::Previous);
    }
    // Entry lines, nearly all of the log, are only counted; the rest are
    // read in full. The record kind follows the chain keys.
    let kind = &line[CHAIN_PREFIX_MIN + digits(seq)..];
    if check.state.seq > 0
        && check.footer.is_none()
        && [
            &b"\"record\":\"file\""[..],
            b"\"record\":\"skipped\"",
            b"\"record\":\"failed\"",
        ]
        .iter()
        .any(|k| kind.starts_with(k))
    {
        return tally_line(line, &mut check.state.tally)
            .map_err(|e| Blame::This(format!("not a valid record: {e}")));
    }
    let record = parse_line(line).map_err(|e| format!("not a valid record: {e}"))?;
    check_record(check, key, expected, line, record).map_err(Blame::This)
}

fn check_record(
    check: &mut LogCheck,
    key: &mut Option<PublicKey>,
    expected: Option<&PublicKey>,
    line: &[u8],
    record: Line,
) -> Result<(), String> {
    if let Some(footer) = &check.footer
        && !(footer.interrupted && matches!(record, Line::Resume(_)))
    {
        return Err("a record follows the footer of a finished scan".to_string());
    }
    let seal_it = |check: &mut LogCheck| -> Result<(), String> {
        match seal::check_seal(line, key.as_ref())? {
            SealKind::Signed => check.signatures += 1,
            SealKind::Sha256 => {}
        }
        check.last_sealed_line = Some(check.state.seq + 1);
        Ok(())
    };
    match record {
        Line::Header(h) if check.state.seq == 0 => {
            match (expected, &h.signing_key) {
                (Some(want), Some(have)) if want != have => {
                    return Err(format!(
                        "the log is signed with key {}, not the given key {}",
                        have.fingerprint(),
                        want.fingerprint()
                    ));
                }
                (Some(want), None) => {
                    return Err(format!(
                        "the log is not signed, but key {} was given",
                        want.fingerprint()
                    ));
                }
                _ => {}
            }
            *key = h.signing_key.clone();
            check.header = Some(h);
        }
        _ if check.state.seq == 0 => return Err("the first line is not a header".to_string()),
        Line::Header(_) => return Err("a second header".to_string()),
        Line::Entry(e) => {
            check.state.tally.count(&e);
            check.footer = None;
        }
        Line::Checkpoint(c) => {
            seal_it(check)?;
            let have = check.state.tally.entries();
            if c.entries != have {
                return Err(format!(
                    "the checkpoint counts {} entries, but {have} come before it",
                    c.entries
                ));
            }
            check.checkpoints += 1;
            check.footer = None;
        }
        Line::Resume(r) => {
            let have = check.state.tally.entries();
            if r.entries_before != have {
                return Err(format!(
                    "the resume record counts {} entries before it, but there are {have}",
                    r.entries_before
                ));
            }
            check.resumes += 1;
            check.footer = None;
        }
        Line::Summary(s) => {
            seal_it(check)?;
            if !s.same_counts(&check.state.tally) {
                return Err(format!(
                    "the footer's totals do not match the records before it ({} entries in the footer, {} recorded)",
                    s.entries(),
                    check.state.tally.entries()
                ));
            }
            check.footer = Some(s);
        }
    }
    Ok(())
}

/// Length of `{"seq":,"prev":"<64 hex>",` without the digits of N.
const CHAIN_PREFIX_MIN: usize = r#"{"seq":,"prev":"","#.len() + 64;

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The textual prefix every line starts with: `{"seq":N,"prev":"<64 hex>",`.
fn chain_keys(line: &[u8]) -> Result<(u64, &[u8]), String> {
    let bad = || "the line does not start with its seq and prev".to_string();
    let rest = line.strip_prefix(b"{\"seq\":").ok_or_else(bad)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || (digits > 1 && rest[0] == b'0') {
        return Err(bad());
    }
    let seq = rest[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let rest = rest[digits..]
        .strip_prefix(b",\"prev\":\"")
        .ok_or_else(bad)?;
    if rest.len() < 66 || &rest[64..66] != b"\"," {
        return Err(bad());
    }
    Ok((seq, &rest[..64]))
}

/// Lower-case hex of a chain link, as lines carry it (no allocation: this
/// runs for every line).
fn link_hex(h: &[u8; 32]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in h.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_keys_are_strict() {
        let zero = "0".repeat(64);
        let ok = format!(r#"{{"seq":12,"prev":"{zero}","record":"x"}}"#);
        assert_eq!(chain_keys(ok.as_bytes()), Ok((12, zero.as_bytes())));
        assert_eq!(&link_hex(&[0xab; 32])[..4], b"abab");
        for bad in [
            format!(r#"{{"seq":012,"prev":"{zero}","#),
            format!(r#"{{"seq":-1,"prev":"{zero}","#),
            format!(r#"{{ "seq":1,"prev":"{zero}","#),
            format!(r#"{{"seq":1,"prev":"{}","#, "0".repeat(63)),
            format!(r#"{{"prev":"{zero}","seq":1,"#),
        ] {
            assert!(chain_keys(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
