//! PDF tokens and values (ISO 32000-1 §7.2–7.3), read through a window
//! of the file: numbers, names (`#xx` decoded), strings (kept up to a
//! few KiB), arrays and dictionaries (nesting and entries bounded), and
//! the stream keywords the scan steps over data by.

use super::{MAX_DEPTH, MAX_ENTRIES, MAX_STR};
use crate::source::Source;

/// A PDF value, as much of it as the expander uses.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Val {
    Int(i64),
    Ref(u64, u64),
    Name(Vec<u8>),
    Str(Vec<u8>),
    Arr(Vec<Val>),
    Dict(Vec<(Vec<u8>, Val)>),
    Kw(Vec<u8>),
    Other,
}

#[derive(Debug, PartialEq)]
pub(super) enum Tok {
    Int(i64),
    Real,
    Name(Vec<u8>),
    Str(Vec<u8>),
    DictOpen,
    DictClose,
    ArrOpen,
    ArrClose,
    Kw(Vec<u8>),
}

pub(super) fn is_space(b: u8) -> bool {
    matches!(b, 0 | b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

pub(super) fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// PDF tokens read through a window of the file.
pub(super) struct Lex<'a> {
    src: &'a dyn Source,
    size: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    pos: u64,
    back: Vec<Tok>,
}

pub(super) const WINDOW: usize = 64 << 10;

impl<'a> Lex<'a> {
    pub(super) fn new(src: &'a dyn Source, size: u64) -> Lex<'a> {
        Lex {
            src,
            size,
            buf: Vec::new(),
            base: 0,
            pos: 0,
            back: Vec::new(),
        }
    }

    /// The byte at `at`, if the file has it.
    fn at(&mut self, at: u64) -> Result<Option<u8>, String> {
        if at >= self.size {
            return Ok(None);
        }
        if at < self.base || at >= self.base + self.buf.len() as u64 {
            let n = (self.size - at).min(WINDOW as u64) as usize;
            self.buf.resize(n, 0);
            let mut got = 0;
            while got < n {
                let k = self
                    .src
                    .read_at(&mut self.buf[got..], at + got as u64)
                    .map_err(|e| format!("reading it at byte {}: {e}", at + got as u64))?;
                if k == 0 {
                    break;
                }
                got += k;
            }
            self.buf.truncate(got);
            self.base = at;
            if got == 0 {
                self.size = at;
                return Ok(None);
            }
        }
        Ok(Some(self.buf[(at - self.base) as usize]))
    }

    fn peek(&mut self) -> Result<Option<u8>, String> {
        self.at(self.pos)
    }

    pub(super) fn back(&mut self, t: Tok) {
        self.back.push(t);
    }

    pub(super) fn token(&mut self) -> Result<Option<Tok>, String> {
        if let Some(t) = self.back.pop() {
            return Ok(Some(t));
        }
        loop {
            let Some(b) = self.peek()? else {
                return Ok(None);
            };
            if is_space(b) {
                self.pos += 1;
                continue;
            }
            if b == b'%' {
                while let Some(c) = self.peek()? {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
                continue;
            }
            self.pos += 1;
            return Ok(Some(match b {
                b'/' => Tok::Name(self.regular(127, true)?),
                b'(' => Tok::Str(self.literal()?),
                b'<' => {
                    if self.peek()? == Some(b'<') {
                        self.pos += 1;
                        Tok::DictOpen
                    } else {
                        Tok::Str(self.hex()?)
                    }
                }
                b'>' => {
                    if self.peek()? == Some(b'>') {
                        self.pos += 1;
                        Tok::DictClose
                    } else {
                        continue;
                    }
                }
                b'[' => Tok::ArrOpen,
                b']' => Tok::ArrClose,
                b')' | b'{' | b'}' => continue,
                _ => {
                    self.pos -= 1;
                    let w = self.regular(64, false)?;
                    number(&w).unwrap_or(Tok::Kw(w))
                }
            }));
        }
    }

    /// A run of regular characters (`#xx` decoded in names), at most `cap`
    /// kept.
    fn regular(&mut self, cap: usize, name: bool) -> Result<Vec<u8>, String> {
        let mut w = Vec::new();
        while let Some(c) = self.peek()? {
            if is_space(c) || is_delim(c) {
                break;
            }
            self.pos += 1;
            let mut c = c;
            if name && c == b'#' {
                let h = |x: Option<u8>| x.and_then(|x| (x as char).to_digit(16));
                let (a, b) = (self.peek()?, self.at(self.pos + 1)?);
                if let (Some(a), Some(b)) = (h(a), h(b)) {
                    c = (a * 16 + b) as u8;
                    self.pos += 2;
                }
            }
            if w.len() < cap {
                w.push(c);
            }
        }
        Ok(w)
    }

    fn literal(&mut self) -> Result<Vec<u8>, String> {
        let mut s = Vec::new();
        let mut depth = 1u32;
        while let Some(c) = self.peek()? {
            self.pos += 1;
            let out = match c {
                b'(' => {
                    depth += 1;
                    Some(c)
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                    Some(c)
                }
                b'\\' => {
                    let Some(e) = self.peek()? else { break };
                    self.pos += 1;
                    match e {
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'0'..=b'7' => {
                            let mut v = (e - b'0') as u32;
                            for _ in 0..2 {
                                match self.peek()? {
                                    Some(d @ b'0'..=b'7') => {
                                        self.pos += 1;
                                        v = v * 8 + (d - b'0') as u32;
                                    }
                                    _ => break,
                                }
                            }
                            Some(v as u8)
                        }
                        b'\r' => {
                            if self.peek()? == Some(b'\n') {
                                self.pos += 1;
                            }
                            None
                        }
                        b'\n' => None,
                        other => Some(other),
                    }
                }
                _ => Some(c),
            };
            if let Some(o) = out
                && s.len() < MAX_STR
            {
                s.push(o);
            }
        }
        Ok(s)
    }

    fn hex(&mut self) -> Result<Vec<u8>, String> {
        let mut s = Vec::new();
        let mut half: Option<u8> = None;
        while let Some(c) = self.peek()? {
            self.pos += 1;
            if c == b'>' {
                break;
            }
            let Some(v) = (c as char).to_digit(16) else {
                continue;
            };
            match half.take() {
                None => half = Some(v as u8),
                Some(h) if s.len() < MAX_STR => s.push(h << 4 | v as u8),
                Some(_) => {}
            }
        }
        if let Some(h) = half
            && s.len() < MAX_STR
        {
            s.push(h << 4);
        }
        Ok(s)
    }

    /// A value whose first token is `t`.
    fn value(&mut self, t: Tok, depth: u32) -> Result<Val, String> {
        Ok(match t {
            Tok::Int(n) => {
                // `N G R`?
                let Some(t2) = self.token()? else {
                    return Ok(Val::Int(n));
                };
                if let Tok::Int(g) = t2 {
                    match self.token()? {
                        Some(Tok::Kw(k)) if k == b"R" && n >= 0 && g >= 0 => {
                            return Ok(Val::Ref(n as u64, g as u64));
                        }
                        Some(t3) => {
                            self.back(t3);
                            self.back(Tok::Int(g));
                        }
                        None => self.back(Tok::Int(g)),
                    }
                } else {
                    self.back(t2);
                }
                Val::Int(n)
            }
            Tok::Name(n) => Val::Name(n),
            Tok::Str(s) => Val::Str(s),
            Tok::DictOpen => Val::Dict(self.dict(depth + 1)?),
            Tok::ArrOpen => {
                let mut a = Vec::new();
                while let Some(t) = self.token()? {
                    match t {
                        Tok::ArrClose => break,
                        Tok::Kw(ref k) if is_structure(k) => {
                            self.back(t);
                            break;
                        }
                        Tok::DictClose => continue,
                        t if depth < MAX_DEPTH => {
                            let v = self.value(t, depth + 1)?;
                            if a.len() < MAX_ENTRIES {
                                a.push(v);
                            }
                        }
                        _ => {}
                    }
                }
                Val::Arr(a)
            }
            Tok::Kw(k) => Val::Kw(k),
            Tok::Real | Tok::DictClose | Tok::ArrClose => Val::Other,
        })
    }

    /// A dictionary's entries, after its `<<`.
    pub(super) fn dict(&mut self, depth: u32) -> Result<Vec<(Vec<u8>, Val)>, String> {
        let mut d = Vec::new();
        while let Some(t) = self.token()? {
            match t {
                Tok::DictClose => break,
                Tok::Name(key) => {
                    let Some(t) = self.token()? else { break };
                    if matches!(&t, Tok::Kw(k) if is_structure(k)) || t == Tok::DictClose {
                        self.back(t);
                        continue;
                    }
                    if depth >= MAX_DEPTH {
                        continue;
                    }
                    let v = self.value(t, depth)?;
                    if d.len() < MAX_ENTRIES {
                        d.push((key, v));
                    }
                }
                // Damage: a dictionary never closed.
                Tok::Kw(ref k) if is_structure(k) => {
                    self.back(t);
                    break;
                }
                _ => {}
            }
        }
        Ok(d)
    }

    /// Where a stream's data starts: after `stream` and its end of line.
    pub(super) fn after_stream_keyword(&mut self) -> Result<u64, String> {
        // Spaces before the end of line are tolerated (they break the
        // rule, and some writers do it).
        while matches!(self.peek()?, Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        match self.peek()? {
            Some(b'\r') => {
                self.pos += 1;
                if self.peek()? == Some(b'\n') {
                    self.pos += 1;
                }
            }
            Some(b'\n') => self.pos += 1,
            _ => {}
        }
        Ok(self.pos)
    }

    /// Whether `endstream` follows `at` (after white space); if it does,
    /// the scan goes on after it.
    pub(super) fn endstream_at(&mut self, at: u64) -> Result<bool, String> {
        let mut p = at;
        while let Some(c) = self.at(p)? {
            if !is_space(c) {
                break;
            }
            p += 1;
            if p - at > 8 {
                return Ok(false);
            }
        }
        for (i, &c) in b"endstream".iter().enumerate() {
            if self.at(p + i as u64)? != Some(c) {
                return Ok(false);
            }
        }
        // The keyword, not the start of a longer word.
        if self
            .at(p + 9)?
            .is_some_and(|c| !is_space(c) && !is_delim(c))
        {
            return Ok(false);
        }
        self.pos = p + 9;
        Ok(true)
    }

    /// Finds the `endstream` after `from` and goes on after it: (where it
    /// is, found). Not found: the file's end.
    pub(super) fn past_endstream(&mut self, from: u64) -> Result<(u64, bool), String> {
        let mut p = from;
        while let Some(c) = self.at(p)? {
            // A keyword starts after white space or a delimiter.
            if c == b'e'
                && (p == from || self.at(p - 1)?.is_some_and(|c| is_space(c) || is_delim(c)))
                && self.endstream_at(p)?
            {
                return Ok((p, true));
            }
            p += 1;
        }
        self.pos = self.size;
        Ok((self.size, false))
    }
}

fn is_structure(k: &[u8]) -> bool {
    matches!(
        k,
        b"obj" | b"endobj" | b"stream" | b"endstream" | b"trailer" | b"xref"
    )
}

fn number(w: &[u8]) -> Option<Tok> {
    let digits = w
        .strip_prefix(b"+")
        .or_else(|| w.strip_prefix(b"-"))
        .unwrap_or(w);
    if digits.is_empty() {
        return None;
    }
    if digits.iter().all(u8::is_ascii_digit) {
        let s = std::str::from_utf8(w).ok()?;
        return Some(s.parse().map(Tok::Int).unwrap_or(Tok::Real));
    }
    let dots = digits.iter().filter(|&&c| c == b'.').count();
    (dots == 1 && digits.iter().all(|c| c.is_ascii_digit() || *c == b'.')).then_some(Tok::Real)
}
