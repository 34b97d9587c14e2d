//! gzip streams (RFC 1952): the content is one member, named by the
//! header's file name when it has one, else by the container's name less
//! its `.gz` (`.tgz` → `.tar`). Concatenated streams (`cat a.gz b.gz`)
//! are one content, as `gunzip` gives it. Each stream's CRC-32 and length
//! (its trailer) are checked against the bytes it gave and recorded with
//! the member (`within.checksums`: `crc32`, `isize`, then `crc32.2`, …
//! for the streams after the first): a damaged stream whose deflate data
//! still decodes is hashed as it decodes and shows as not checking out,
//! as a zip member does. A stream cut short fails the content.

use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};

use super::stream::{Decoded, Reader};
use super::{Body, Budget, Found, Member, Members, damaged, member_meta};
use crate::item::Checksum;
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::read_exact;

/// The members of a gzip stream of `size` bytes inside `parent` (its path).
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    parent: &RawPath,
    budget: &'a Budget,
) -> Result<Members<'a>, String> {
    let mut first = io::BufReader::new(Reader::new(src, 0, size));
    let head = read_header(&mut first, 1).map_err(|e| e.to_string())?;
    let mtime = head.mtime as i64;
    // A name is a name, not a path: its last part only.
    let base = head
        .name
        .rsplit(|&c| c == b'/')
        .next()
        .unwrap_or(&[])
        .to_vec();
    let name = (!base.is_empty()).then_some(base);
    let name = name.unwrap_or_else(|| super::single::content_name(parent, super::Kind::Gzip));
    let budget_ref = budget;
    let found: Found = Arc::new(Mutex::new(Vec::new()));
    let trailers = found.clone();
    let member = Member {
        name: RawPath::from_bytes(name),
        offset: None,
        // The size is known once read; the last stream's trailer gives it
        // modulo 2^32, a hint only (used to size buffers, never trusted).
        meta: member_meta(
            isize_hint(src, size).min(budget.limits.member_bytes),
            libc::S_IFREG | 0o644,
            mtime,
        ),
        crc32: None,
        checksums: Vec::new(),
        found: Some(found),
        body: Body::Read {
            src: Box::new(Decoded::new(
                Box::new(move || {
                    // Started again: the trailers are met again.
                    trailers.lock().unwrap_or_else(|e| e.into_inner()).clear();
                    Ok(Box::new(Streams::new(
                        Reader::new(src, 0, size),
                        trailers.clone(),
                    )))
                }),
                None,
                size,
                budget_ref,
            )),
            to_end: true,
            stored: false,
        },
    };
    Ok(Box::new(std::iter::once(Ok(member))))
}

/// The content of concatenated gzip streams, each stream's trailer
/// checked against what its deflate data gave and written to `found`.
pub(crate) struct Streams<R: Read> {
    state: State<R>,
    /// Streams begun, counting from 1.
    stream: u32,
    crc: crc32fast::Hasher,
    len: u64,
    found: Found,
}

enum State<R: Read> {
    /// Between streams (or before the first): a header comes next.
    Header(io::BufReader<R>),
    Body(flate2::bufread::DeflateDecoder<io::BufReader<R>>),
    Done,
}

impl<R: Read> Streams<R> {
    pub(crate) fn new(input: R, found: Found) -> Streams<R> {
        Streams {
            state: State::Header(io::BufReader::with_capacity(64 * 1024, input)),
            stream: 0,
            crc: crc32fast::Hasher::new(),
            len: 0,
            found,
        }
    }

    /// Checks the trailer of the stream just ended, then sees whether
    /// another follows.
    fn end_stream(&mut self, mut input: io::BufReader<R>) -> io::Result<()> {
        let mut t = [0u8; 8];
        input.read_exact(&mut t).map_err(|_| {
            damaged(format!(
                "gzip stream {} is cut short: its data ends before its trailer (CRC-32 and length)",
                self.stream
            ))
        })?;
        let crc = std::mem::take(&mut self.crc).finalize();
        let len = std::mem::take(&mut self.len) as u32;
        let suffix = if self.stream == 1 {
            String::new()
        } else {
            format!(".{}", self.stream)
        };
        let stored_crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let stored_len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.push(Checksum {
            name: format!("crc32{suffix}"),
            stored: format!("{stored_crc:08x}"),
            computed: format!("{crc:08x}"),
        });
        found.push(Checksum {
            name: format!("isize{suffix}"),
            stored: format!("{stored_len:08x}"),
            computed: format!("{len:08x}"),
        });
        drop(found);
        self.state = if input.fill_buf()?.is_empty() {
            State::Done
        } else {
            State::Header(input)
        };
        Ok(())
    }
}

/// What a gzip member header (RFC 1952 §2.3) says that is kept.
struct Header {
    /// The original file name (its first 1 KiB), empty without one.
    name: Vec<u8>,
    mtime: u32,
}

/// Reads a gzip member header, leaving `r` at its deflate data.
fn read_header(r: &mut impl BufRead, stream: u32) -> io::Result<Header> {
    let bad = |what: &str| damaged(format!("gzip stream {stream}: {what}"));
    let mut head = [0u8; 10];
    r.read_exact(&mut head)
        .map_err(|_| bad("its header is cut short"))?;
    if head[..2] != [0x1f, 0x8b] {
        return Err(if stream == 1 {
            damaged("not a gzip stream")
        } else {
            bad("bytes after the previous stream are not a gzip header (trailing data)")
        });
    }
    if head[2] != 8 {
        return Err(bad("not deflate-compressed"));
    }
    let flags = head[3];
    let mtime = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if flags & 4 != 0 {
        let mut x = [0u8; 2];
        r.read_exact(&mut x)
            .map_err(|_| bad("its extra field is cut short"))?;
        let n = u16::from_le_bytes(x) as u64;
        if io::copy(&mut r.by_ref().take(n), &mut io::sink())? < n {
            return Err(bad("its extra field is cut short"));
        }
    }
    // The name and the comment: NUL-terminated; the name's first 1 KiB
    // kept, the rest skipped.
    let mut name = Vec::new();
    for bit in [8u8, 16] {
        if flags & bit == 0 {
            continue;
        }
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Err(bad("its header's name or comment is cut short"));
            }
            let (n, end) = match buf.iter().position(|&b| b == 0) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if bit == 8 {
                let room = 1024usize.saturating_sub(name.len());
                name.extend_from_slice(&buf[..n.min(room)]);
            }
            r.consume(n + end as usize);
            if end {
                break;
            }
        }
    }
    if flags & 2 != 0 {
        let mut x = [0u8; 2];
        r.read_exact(&mut x)
            .map_err(|_| bad("its header CRC is cut short"))?;
    }
    Ok(Header { name, mtime })
}

impl<R: Read> Read for Streams<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(0),
                State::Header(mut input) => {
                    self.stream += 1;
                    read_header(&mut input, self.stream)?;
                    self.state = State::Body(flate2::bufread::DeflateDecoder::new(input));
                }
                State::Body(mut d) => {
                    let stream = self.stream;
                    let n = d.read(buf).map_err(|e| {
                        if e.kind() == io::ErrorKind::UnexpectedEof
                            || e.to_string().contains("incomplete")
                        {
                            damaged(format!(
                                "gzip stream {stream} is cut short: its deflate data ends before the stream does"
                            ))
                        } else {
                            damaged(format!("gzip stream {stream}: {e}"))
                        }
                    })?;
                    if n > 0 {
                        self.crc.update(&buf[..n]);
                        self.len += n as u64;
                        self.state = State::Body(d);
                        return Ok(n);
                    }
                    self.end_stream(d.into_inner())?;
                }
            }
        }
    }
}

/// The last four bytes: the last stream's length modulo 2^32.
fn isize_hint(src: &dyn Source, size: u64) -> u64 {
    let mut t = [0u8; 4];
    if size < 18 || read_exact(src, &mut t, size - 4).is_err() {
        return 0;
    }
    u32::from_le_bytes(t) as u64
}

/// The gzip expander ([`super::Kind::Gzip`]).
pub(crate) struct Gzip;

impl super::Expander for Gzip {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size, path, budget)
    }
}
