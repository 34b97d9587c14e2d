//! The sources a member's bytes are read through: a window of its
//! container ([`Slice`], for bytes stored as they are) and a decoder's
//! output ([`Decoded`], for compressed bytes), which counts every byte it
//! produces against the member's and the scan's [`Budget`].
//!
//! A decoder only goes forward: [`Decoded`] serves reads at increasing
//! offsets from one running decoder (the scan reads a member once, in
//! order), and for a read behind it starts the decoder again from the
//! start, a few times at most: a container looked inside through a
//! compressed stream reads its index, then its members in order.

use std::io::{self, Read};
use std::sync::Mutex;

use super::{Budget, damaged};
use crate::source::Source;

/// Bytes `[offset, offset + len)` of a container, as a source of their own.
pub(crate) struct Slice<'a> {
    pub(crate) src: &'a dyn Source,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

impl Source for Slice<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = (self.len - offset).min(buf.len() as u64) as usize;
        self.src.read_at(&mut buf[..n], self.offset + offset)
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<u64>> {
        Ok((offset < self.len).then_some(offset))
    }
    fn next_hole(&self, _offset: u64) -> io::Result<u64> {
        Ok(self.len)
    }
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.len)
    }
}

/// A [`Read`] of bytes `[at, end)` of a source: what a decoder reads.
pub(crate) struct Reader<'a> {
    src: &'a dyn Source,
    at: u64,
    end: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a dyn Source, at: u64, len: u64) -> Reader<'a> {
        Reader {
            src,
            at,
            end: at.saturating_add(len),
        }
    }
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.end.saturating_sub(self.at)).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.src.read_at(&mut buf[..n], self.at)?;
        self.at += got as u64;
        Ok(got)
    }
}

/// How a [`Decoded`] starts its decoder (again).
pub(crate) type Open<'a> =
    Box<dyn Fn() -> io::Result<Box<dyn Read + Send + 'a>> + Send + Sync + 'a>;

/// Restarts a [`Decoded`] allows: more means something reads it at random.
const MAX_RESTARTS: u32 = 4;

/// Ratios are checked once a member is past this many bytes (small
/// members of repeated bytes compress far beyond any ratio, harmlessly).
const RATIO_FROM: u64 = 1 << 20;

/// A decoder's output as a source (see the module doc).
pub(crate) struct Decoded<'a> {
    open: Open<'a>,
    /// The size the container declares (`None`: known once read).
    declared: Option<u64>,
    /// The compressed bytes it comes from, for the ratio limit.
    compressed: u64,
    budget: &'a Budget,
    /// The most bytes it may give (the member limit, unless shared).
    limit: Option<u64>,
    max_restarts: u32,
    state: Mutex<State<'a>>,
}

struct State<'a> {
    decoder: Option<Box<dyn Read + Send + 'a>>,
    /// Bytes the running decoder has given.
    pos: u64,
    /// The most it ever gave (counted against the budget once).
    counted: u64,
    restarts: u32,
    /// Where it ended, once seen.
    end: Option<u64>,
}

impl<'a> Decoded<'a> {
    pub(crate) fn new(
        open: Open<'a>,
        declared: Option<u64>,
        compressed: u64,
        budget: &'a Budget,
    ) -> Decoded<'a> {
        Decoded {
            open,
            declared,
            compressed,
            budget,
            limit: None,
            max_restarts: MAX_RESTARTS,
            state: Mutex::new(State {
                decoder: None,
                pos: 0,
                counted: 0,
                restarts: 0,
                end: None,
            }),
        }
    }

    /// A stream many members are windows of (a 7z solid block): not
    /// limited as one member is (each window is), but by the budgets and
    /// its declared size; read again from its start a few more times, as
    /// each member may be read again.
    pub(crate) fn shared(
        open: Open<'a>,
        declared: u64,
        compressed: u64,
        budget: &'a Budget,
    ) -> Decoded<'a> {
        Decoded {
            limit: Some(u64::MAX - 1),
            max_restarts: 4 * MAX_RESTARTS,
            ..Decoded::new(open, Some(declared), compressed, budget)
        }
    }

    /// One read of the running decoder at its position, counted.
    fn pull(&self, st: &mut State<'a>, buf: &mut [u8]) -> io::Result<usize> {
        let limits = &self.budget.limits;
        let limit = self.limit.unwrap_or(limits.member_bytes);
        if st.decoder.is_none() {
            st.decoder = Some((self.open)()?);
        }
        let Some(d) = st.decoder.as_mut() else {
            return Ok(0);
        };
        // Never more than one byte past the member's limit: that byte
        // shows it is over.
        let room = (limit + 1).saturating_sub(st.pos);
        let want = buf.len().min(room.min(usize::MAX as u64) as usize);
        let n = loop {
            match d.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        if n == 0 {
            st.end = Some(st.pos);
            if let Some(declared) = self.declared
                && st.pos < declared
            {
                return Err(damaged(format!(
                    "the compressed member ends after {} bytes, short of the {declared} it declares",
                    st.pos
                )));
            }
            return Ok(0);
        }
        let new_pos = st.pos + n as u64;
        if new_pos > limit {
            return Err(damaged(format!(
                "stopped after {limit} decompressed bytes: the limit for one member (--max-member-bytes)"
            )));
        }
        if limits.ratio > 0
            && new_pos > RATIO_FROM
            && new_pos / self.compressed.max(1) > limits.ratio
        {
            return Err(damaged(format!(
                "stopped after {new_pos} decompressed bytes from {} compressed: more than {} to 1 (--max-ratio), a decompression bomb's mark",
                self.compressed, limits.ratio
            )));
        }
        if let Some(declared) = self.declared
            && new_pos > declared
        {
            return Err(damaged(format!(
                "the compressed member gives more than the {declared} bytes it declares"
            )));
        }
        if new_pos > st.counted {
            self.budget.take(new_pos - st.counted).map_err(damaged)?;
            st.counted = new_pos;
        }
        st.pos = new_pos;
        Ok(n)
    }
}

impl Source for Decoded<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(end) = st.end
            && offset >= end
        {
            return Ok(0);
        }
        if offset < st.pos {
            st.restarts += 1;
            if st.restarts > self.max_restarts {
                return Err(damaged(
                    "read out of order inside a compressed stream more often than it can be decompressed again",
                ));
            }
            st.decoder = None;
            st.pos = 0;
            st.end = None;
        }
        let mut skip = [0u8; 16 * 1024];
        while st.pos < offset {
            let want = ((offset - st.pos) as usize).min(skip.len());
            if self.pull(&mut st, &mut skip[..want])? == 0 {
                return Ok(0);
            }
        }
        self.pull(&mut st, buf)
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<u64>> {
        Ok(Some(offset))
    }
    fn next_hole(&self, _offset: u64) -> io::Result<u64> {
        Ok(u64::MAX)
    }
    fn size_now(&self) -> io::Result<u64> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(st.end.or(self.declared).unwrap_or(st.pos))
    }
}
