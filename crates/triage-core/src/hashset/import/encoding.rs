//! What sits between a list's bytes and its parser: Windows encodings, and
//! a bound on line length.
//!
//! - **Byte-order marks.** Windows tools write lists in UTF-8 with a BOM,
//!   or in UTF-16 (LE or BE, with a BOM). [`Decoded`] drops a UTF-8 BOM and
//!   transcodes UTF-16 to UTF-8 as it streams, so every text format parses
//!   them alike. The source's SHA-256 is still of the file's own bytes (the
//!   digest is taken below this layer).
//! - **Line length.** A parser holds a line in memory; a 500 MB line would
//!   cost 500 MB. [`CapLines`] passes lines of up to a bound through, and
//!   replaces a longer one by an empty line (so line numbers stay right),
//!   noting its number: the importer rejects it by number, and goes on.

use std::cell::RefCell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

/// The encoding a byte-order mark at the start of `head` declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bom {
    /// No mark: taken as UTF-8.
    None,
    /// `EF BB BF`.
    Utf8,
    /// `FF FE`.
    Utf16Le,
    /// `FE FF`.
    Utf16Be,
}

impl Bom {
    pub(crate) fn of(head: &[u8]) -> Bom {
        if head.starts_with(b"\xEF\xBB\xBF") {
            Bom::Utf8
        } else if head.starts_with(b"\xFF\xFE") {
            Bom::Utf16Le
        } else if head.starts_with(b"\xFE\xFF") {
            Bom::Utf16Be
        } else {
            Bom::None
        }
    }

    fn len(self) -> usize {
        match self {
            Bom::None => 0,
            Bom::Utf8 => 3,
            Bom::Utf16Le | Bom::Utf16Be => 2,
        }
    }
}

/// The first bytes of a file as UTF-8 without a BOM, for format detection.
pub(crate) fn decode_head(head: &[u8]) -> Vec<u8> {
    let bom = Bom::of(head);
    let body = &head[bom.len()..];
    match bom {
        Bom::None | Bom::Utf8 => body.to_vec(),
        Bom::Utf16Le | Bom::Utf16Be => {
            let mut out = Vec::with_capacity(body.len());
            utf16_to_utf8(body, bom == Bom::Utf16Le, &mut out);
            out
        }
    }
}

/// UTF-16 code units (pairs of bytes) to UTF-8; an odd last byte and
/// unpaired surrogates become U+FFFD, as a lossy decode does.
fn utf16_to_utf8(bytes: &[u8], little: bool, out: &mut Vec<u8>) {
    let units = bytes.chunks_exact(2).map(|p| {
        if little {
            u16::from_le_bytes([p[0], p[1]])
        } else {
            u16::from_be_bytes([p[0], p[1]])
        }
    });
    let mut tmp = [0u8; 4];
    for c in char::decode_utf16(units) {
        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
        out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
    }
    if bytes.len() % 2 == 1 {
        out.extend_from_slice("\u{FFFD}".as_bytes());
    }
}

/// A reader that drops a leading BOM and transcodes UTF-16 to UTF-8.
pub(crate) struct Decoded<R> {
    inner: R,
    bom: Option<Bom>,
    /// Raw bytes not yet decoded (UTF-16: a split code unit or surrogate pair).
    raw: Vec<u8>,
    /// Decoded bytes not yet handed out.
    out: Vec<u8>,
    at: usize,
    eof: bool,
}

impl<R: Read> Decoded<R> {
    pub(crate) fn new(inner: R) -> Self {
        Decoded {
            inner,
            bom: None,
            raw: Vec::new(),
            out: Vec::new(),
            at: 0,
            eof: false,
        }
    }

    /// Reads and decodes the next chunk into `out`.
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 << 10];
        let n = loop {
            match self.inner.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        self.raw.extend_from_slice(&chunk[..n]);
        if n == 0 {
            self.eof = true;
        }
        let bom = match self.bom {
            Some(b) => b,
            None => {
                // Three bytes tell every mark apart (or the file is shorter).
                if self.raw.len() < 3 && !self.eof {
                    return Ok(());
                }
                let b = Bom::of(&self.raw);
                self.raw.drain(..b.len());
                self.bom = Some(b);
                b
            }
        };
        self.out.clear();
        self.at = 0;
        match bom {
            Bom::None | Bom::Utf8 => std::mem::swap(&mut self.out, &mut self.raw),
            Bom::Utf16Le | Bom::Utf16Be => {
                // Keep a trailing high surrogate (or odd byte) for the next
                // chunk, unless this is the end.
                let mut take = self.raw.len() & !1;
                let little = bom == Bom::Utf16Le;
                if !self.eof && take >= 2 {
                    let p = &self.raw[take - 2..take];
                    let last = if little {
                        u16::from_le_bytes([p[0], p[1]])
                    } else {
                        u16::from_be_bytes([p[0], p[1]])
                    };
                    if (0xD800..0xDC00).contains(&last) {
                        take -= 2;
                    }
                }
                if self.eof {
                    take = self.raw.len();
                }
                let rest = self.raw.split_off(take);
                utf16_to_utf8(&self.raw, little, &mut self.out);
                self.raw = rest;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.out.len() {
            if self.eof && self.raw.is_empty() {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Longest line the line-oriented parsers are handed: no hash line comes
/// near it (a hashdeep line with a long path is under 5 KiB).
pub const MAX_LINE: usize = 64 << 10;

/// Line numbers (1-based) that [`CapLines`] replaced.
pub(crate) type LongLines = Rc<RefCell<Vec<u64>>>;

/// A line-capping reader over a `BufRead`; see the module doc. With
/// `strict`, a long line is a read error instead. Holds at most one line
/// (`max` bytes) of its own.
pub(crate) struct CapLines<R> {
    inner: R,
    max: usize,
    strict: bool,
    /// The number of the line in `cur` (1-based).
    line: u64,
    cur: Vec<u8>,
    at: usize,
    long: LongLines,
}

impl<R: BufRead> CapLines<R> {
    pub(crate) fn new(inner: R, max: usize, strict: bool) -> (Self, LongLines) {
        let long = LongLines::default();
        (
            CapLines {
                inner,
                max,
                strict,
                line: 0,
                cur: Vec::new(),
                at: 0,
                long: long.clone(),
            },
            long,
        )
    }

    /// Reads the next line (with its newline) into `cur`; an over-long one
    /// is consumed and stands as a bare newline. `cur` is empty at the end.
    fn next_line(&mut self) -> io::Result<()> {
        self.cur.clear();
        self.at = 0;
        self.line += 1;
        let mut too_long = false;
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let (part, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if !too_long {
                // The newline does not count towards the length.
                let content = self.cur.len() + part - usize::from(done);
                if content > self.max {
                    too_long = true;
                    self.cur.clear();
                } else {
                    self.cur.extend_from_slice(&avail[..part]);
                }
            }
            self.inner.consume(part);
            if done {
                break;
            }
        }
        if too_long {
            if self.strict {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {} is longer than {} bytes: not a hash line",
                        self.line, self.max
                    ),
                ));
            }
            self.long.borrow_mut().push(self.line);
            self.cur.push(b'\n');
        }
        Ok(())
    }
}

impl<R: BufRead> Read for CapLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.cur.len() {
            self.next_line()?;
        }
        let n = buf.len().min(self.cur.len() - self.at);
        buf[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], chunk: usize) -> Vec<u8> {
        // A reader that hands out `chunk` bytes at a time, to split code
        // units and surrogate pairs across reads.
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        Decoded::new(Chunks(bytes, chunk))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn boms_are_dropped_and_utf16_transcoded_in_any_chunking() {
        let text = "39cb097008d17660abd0539891a672af  tài liệu 📁.txt\r\n";
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for u in text.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        let mut utf8 = b"\xEF\xBB\xBF".to_vec();
        utf8.extend_from_slice(text.as_bytes());
        for chunk in [1, 2, 3, 5, 7, 64 << 10] {
            for input in [&le, &be, &utf8, &text.as_bytes().to_vec()] {
                assert_eq!(decode(input, chunk), text.as_bytes(), "chunk {chunk}");
            }
        }
        assert_eq!(decode_head(&le), text.as_bytes());
        assert_eq!(decode(b"", 1), b"");
        assert_eq!(decode(b"\xFF", 1), b"\xFF");
    }

    /// Against the obvious reference (split into lines, blank the long
    /// ones) on random line lengths around the bound, random buffer sizes
    /// and random read sizes.
    #[test]
    fn cap_lines_equals_the_reference() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for _ in 0..300 {
            let max = 1 + next(40) as usize;
            let mut input = Vec::new();
            for _ in 0..next(12) {
                let len = next(max as u64 * 2 + 2) as usize;
                input.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                input.push(b'\n');
            }
            if next(2) == 0 {
                input.extend(b"tail-without-newline".iter().take(next(21) as usize));
            }
            let (mut want, mut want_long) = (Vec::new(), Vec::new());
            for (i, line) in input.split_inclusive(|&b| b == b'\n').enumerate() {
                let content = line.len() - usize::from(line.ends_with(b"\n"));
                if content > max {
                    want.push(b'\n');
                    want_long.push(i as u64 + 1);
                } else {
                    want.extend_from_slice(line);
                }
            }
            let cap = 1 + next(16) as usize;
            let (mut r, long) =
                CapLines::new(io::BufReader::with_capacity(cap, &input[..]), max, false);
            let mut got = Vec::new();
            let mut buf = vec![0u8; 1 + next(9) as usize];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(
                got,
                want,
                "max {max} input {:?}",
                String::from_utf8_lossy(&input)
            );
            assert_eq!(*long.borrow(), want_long);
        }
    }

    #[test]
    fn long_lines_are_replaced_and_numbered() {
        let long = "a".repeat(100);
        let input = format!("one\n{long}\nthree\n{long}");
        let (mut r, noted) =
            CapLines::new(io::BufReader::with_capacity(7, input.as_bytes()), 10, false);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "one\n\nthree\n\n");
        assert_eq!(*noted.borrow(), [2, 4]);
        let exact = "b".repeat(10);
        let line = format!("{exact}\n");
        let (mut r, noted) = CapLines::new(line.as_bytes(), 10, false);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, format!("{exact}\n"));
        assert!(noted.borrow().is_empty());
        let (mut r, _) = CapLines::new(input.as_bytes(), 10, true);
        let e = r.read_to_string(&mut String::new()).unwrap_err();
        assert!(
            e.to_string().contains("line 2 is longer than 10 bytes"),
            "{e}"
        );
    }
}
