//! Read stage: stream an item's bytes once, in order, whatever its source.
//!
//! Input: a [`Source`] (a file of a mounted tree, a file inside a disk
//! image) and the size seen when it was opened. Output: the bytes, fed in
//! order to a sink (the hash stage), and the number read; or a [`Failure`]
//! naming the stage, the OS error and the bytes read before it.
//!
//! - Bytes are read with `pread` into two reused buffers, never mapped: on
//!   a disk with bad sectors a mapped read turns `EIO` into `SIGBUS`, which
//!   would kill the whole scan, while `pread` gives an error for this file
//!   and the scan goes on. (`benches/README.md` has the measurements.)
//! - Holes in sparse files (`SEEK_DATA`/`SEEK_HOLE`) are fed as zeros
//!   without reading them, so a 100 GiB sparse file costs no I/O; the digest
//!   is the same as a plain read's.
//! - Never past the size seen at open; the size is checked after the read:
//!   a file that grew or shrank is a failure
//!   ([`FailureKind::ChangedDuringRead`]), not a silent digest of half a
//!   file.

use std::io;

use crate::item::{Failure, FailureKind, FileMeta, Stage};
pub use crate::source::{Source, read_whole};

/// A size at open meaning "to the source's end": for a decompressed
/// stream, whose size is known only once read (an archive member's
/// budget bounds it).
pub const TO_END: u64 = u64::MAX;

/// Zeros fed to the sink for holes; static so holes cost no allocation.
static ZEROS: [u8; 256 * 1024] = [0; 256 * 1024];

/// Whether the file has fewer allocated blocks than its size needs: only
/// then is hole detection worth the two extra syscalls per region.
pub fn looks_sparse(meta: &FileMeta) -> bool {
    meta.blocks.saturating_mul(512) < meta.size
}

/// What consumes the bytes. It gets each chunk and a `prefetch` closure that
/// reads the next chunk into the other buffer; calling it while hashing (on
/// another thread) overlaps I/O with hashing. A sink that does not call it
/// gets it called after it returns. Returning an error stops the read with it
/// (the scan uses this for cancellation, which must also stop a long hole).
pub type Sink<'a> = dyn FnMut(&[u8], &mut Prefetch<'_>) -> io::Result<()> + 'a;

/// See [`Sink`].
pub type Prefetch<'a> = dyn FnMut() + Send + 'a;

/// One piece of an item, as [`Chunks::next`] gives it: bytes read into the
/// caller's buffer, or zeros for a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// The first `n` bytes of the buffer passed to [`Chunks::next`].
    Read(usize),
    /// `n` zero bytes (a hole), not in the buffer.
    Zeros(usize),
}

impl Piece {
    /// Its bytes: the front of `buf` (the buffer it was read into), or zeros.
    pub fn bytes(self, buf: &[u8]) -> &[u8] {
        match self {
            Piece::Read(n) => &buf[..n],
            Piece::Zeros(n) => &ZEROS[..n],
        }
    }

    /// Its length.
    pub fn len(self) -> usize {
        match self {
            Piece::Read(n) | Piece::Zeros(n) => n,
        }
    }

    /// Whether it is empty (never, from [`Chunks::next`]).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// Where [`Chunks`] is.
enum Mode {
    /// Holes are found with `SEEK_DATA`/`SEEK_HOLE`: zeros up to
    /// `zeros_until`, then data up to `data_until`, then ask again.
    Sparse { zeros_until: u64, data_until: u64 },
    /// Plain reads to the size seen at open.
    Plain,
    /// The end was reached and the size checked.
    Done,
}

/// One item's bytes in order, a piece at a time: the pull form of
/// [`read_all`], for a caller that interleaves several items (the scan's
/// lane groups read many files side by side). The same rules hold: holes
/// are zeros without reads, never past the size seen at open, and a size
/// change is a [`FailureKind::ChangedDuringRead`] at the end.
///
/// ```
/// use triage_core::read::{Chunks, Piece};
/// # struct Mem(Vec<u8>);
/// # impl triage_core::source::Source for Mem {
/// #     fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
/// #         let s = self.0.get(off as usize..).unwrap_or(&[]);
/// #         let n = s.len().min(buf.len());
/// #         buf[..n].copy_from_slice(&s[..n]);
/// #         Ok(n)
/// #     }
/// #     fn next_data(&self, o: u64) -> std::io::Result<Option<u64>> { Ok(Some(o)) }
/// #     fn next_hole(&self, _: u64) -> std::io::Result<u64> { Ok(self.0.len() as u64) }
/// #     fn size_now(&self) -> std::io::Result<u64> { Ok(self.0.len() as u64) }
/// # }
/// let file = Mem(b"hello, world".to_vec());
/// let mut chunks = Chunks::new(12, false);
/// let mut buf = [0u8; 5];
/// let mut got = Vec::new();
/// while let Some(piece) = chunks.next(&file, &mut buf).unwrap() {
///     got.extend_from_slice(piece.bytes(&buf));
/// }
/// assert_eq!(got, b"hello, world");
/// assert_eq!(chunks.position(), 12);
/// ```
pub struct Chunks {
    size: u64,
    pos: u64,
    mode: Mode,
    /// Bytes up to here were announced to the source ([`Source::will_need`]).
    hinted: u64,
}

/// How far ahead of the reading position a large item's bytes are
/// announced ([`Source::will_need`]), and in what steps. The kernel's own
/// read-ahead keeps one window in flight (128 KiB by default); hinting
/// further keeps the device's queue full while the hashers work.
const HINT_AHEAD: u64 = 32 << 20;
const HINT_STEP: u64 = 8 << 20;

impl Chunks {
    /// A reader from an item's start (the item is given to each
    /// [`Chunks::next`]). `size_at_open` is the size `fstat` gave; `sparse`
    /// enables hole skipping (see [`looks_sparse`]).
    pub fn new(size_at_open: u64, sparse: bool) -> Chunks {
        Chunks {
            size: size_at_open,
            pos: 0,
            hinted: 0,
            mode: if sparse {
                Mode::Sparse {
                    zeros_until: 0,
                    data_until: 0,
                }
            } else {
                Mode::Plain
            },
        }
    }

    /// Bytes given so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The size seen at open.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next piece of `src` (always the same item), read into `buf` (at
    /// most its length) or zeros; `Ok(None)` at the end, once the size is
    /// checked. After an error or the end, do not call it again.
    pub fn next(&mut self, src: &dyn Source, buf: &mut [u8]) -> Result<Option<Piece>, Failure> {
        let pos = self.pos;
        let fail = |e: io::Error| Failure {
            stage: Stage::Read,
            kind: FailureKind::Io((&e).into()),
            bytes_read: pos,
        };
        loop {
            match self.mode {
                Mode::Done => return Ok(None),
                Mode::Sparse {
                    zeros_until,
                    data_until,
                } => {
                    if self.pos >= self.size {
                        self.mode = Mode::Plain;
                    } else if self.pos < zeros_until {
                        let n = (zeros_until - self.pos).min(ZEROS.len() as u64) as usize;
                        self.pos += n as u64;
                        return Ok(Some(Piece::Zeros(n)));
                    } else if self.pos < data_until {
                        let want = buf.len().min((data_until - self.pos) as usize);
                        let n = read_retrying(src, &mut buf[..want], self.pos).map_err(fail)?;
                        if n == 0 {
                            // Shrank under us: the plain read's size check
                            // reports it.
                            self.mode = Mode::Plain;
                            continue;
                        }
                        self.pos += n as u64;
                        return Ok(Some(Piece::Read(n)));
                    } else {
                        let data = match src.next_data(self.pos) {
                            Ok(Some(d)) => d.min(self.size),
                            Ok(None) => self.size,
                            // Cannot tell holes here: plain reads do the rest.
                            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                                self.mode = Mode::Plain;
                                continue;
                            }
                            Err(e) => return Err(fail(e)),
                        };
                        let hole = if data < self.size {
                            src.next_hole(data).map_err(fail)?.min(self.size)
                        } else {
                            data
                        };
                        // A source whose next hole is not past its data
                        // would loop: read plainly instead.
                        if data == self.pos && hole <= self.pos {
                            self.mode = Mode::Plain;
                            continue;
                        }
                        self.mode = Mode::Sparse {
                            zeros_until: data,
                            data_until: hole,
                        };
                    }
                }
                Mode::Plain => {
                    if self.size > HINT_STEP
                        && self.size != TO_END
                        && self.hinted < self.size
                        && self.pos + HINT_AHEAD >= self.hinted + HINT_STEP
                    {
                        let from = self.hinted.max(self.pos);
                        let to = (self.pos + HINT_AHEAD).min(self.size);
                        src.will_need(from, to - from);
                        self.hinted = to;
                    }
                    let n = read_bounded(src, buf, self.pos, self.size).map_err(fail)?;
                    if n > 0 {
                        self.pos += n as u64;
                        return Ok(Some(Piece::Read(n)));
                    }
                    if self.size == TO_END {
                        self.mode = Mode::Done;
                        return Ok(None);
                    }
                    // At the size seen at open: one more byte means the file
                    // grew. Short of it: it shrank. Either way fstat gives
                    // the size now for the record.
                    if self.pos == self.size {
                        let mut probe = [0u8; 1];
                        if read_retrying(src, &mut probe, self.pos).map_err(fail)? == 0 {
                            self.mode = Mode::Done;
                            return Ok(None);
                        }
                    }
                    let size_after = src.size_now().map_err(fail)?;
                    return Err(Failure {
                        stage: Stage::Read,
                        kind: FailureKind::ChangedDuringRead {
                            size_at_open: self.size,
                            size_after,
                        },
                        bytes_read: self.pos,
                    });
                }
            }
        }
    }
}

/// Reads all of `src` once, in order, into `sink`, alternating between the
/// two read buffers (their length is the read size). `size_at_open` is the
/// size `fstat` gave; `sparse` enables hole skipping. Returns the bytes fed
/// to the sink.
pub fn read_all(
    src: &dyn Source,
    size_at_open: u64,
    sparse: bool,
    bufs: [&mut [u8]; 2],
    sink: &mut Sink<'_>,
) -> Result<u64, Failure> {
    let [mut cur, mut next] = bufs;
    let mut chunks = Chunks::new(size_at_open, sparse);
    let mut piece = chunks.next(src, cur)?;
    while let Some(p) = piece {
        let at = chunks.position() - p.len() as u64;
        let mut fetched = None;
        {
            let (chunks, next) = (&mut chunks, &mut *next);
            let mut prefetch = || fetched = Some(chunks.next(src, next));
            sink(p.bytes(cur), &mut prefetch).map_err(|e| Failure {
                stage: Stage::Read,
                kind: FailureKind::Io((&e).into()),
                bytes_read: at,
            })?;
        }
        piece = match fetched {
            Some(r) => r?,
            None => chunks.next(src, next)?,
        };
        std::mem::swap(&mut cur, &mut next);
    }
    Ok(chunks.position())
}

/// A read at `pos` of at most `limit - pos` bytes (0 at or past `limit`).
fn read_bounded(src: &dyn Source, buf: &mut [u8], pos: u64, limit: u64) -> io::Result<usize> {
    let room = limit.saturating_sub(pos).min(buf.len() as u64) as usize;
    if room == 0 {
        return Ok(0);
    }
    read_retrying(src, &mut buf[..room], pos)
}

fn read_retrying(src: &dyn Source, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    loop {
        match src.read_at(buf, pos) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory source with holes and injectable faults.
    /// A file in memory that misbehaves as told. Its state sits behind a
    /// mutex: `Source` reads through `&self`.
    struct Fake {
        /// (start, end) of data regions; the rest are holes.
        regions: Vec<(u64, u64)>,
        eio_at: Option<u64>,
        eintr_every: usize,
        max_read: usize,
        state: std::sync::Mutex<FakeState>,
    }

    struct FakeState {
        data: Vec<u8>,
        calls: usize,
        grow_by: usize,
        reads_of_holes: u64,
        /// `(offset, len)` of each [`Source::will_need`] call, and the
        /// reading position when it came.
        hints: Vec<(u64, u64, u64)>,
        last_read: u64,
    }

    impl Fake {
        fn new(data: Vec<u8>) -> Self {
            let len = data.len() as u64;
            Fake {
                regions: vec![(0, len)],
                eio_at: None,
                eintr_every: 0,
                max_read: usize::MAX,
                state: std::sync::Mutex::new(FakeState {
                    data,
                    calls: 0,
                    grow_by: 0,
                    reads_of_holes: 0,
                    hints: Vec::new(),
                    last_read: 0,
                }),
            }
        }

        fn st(&self) -> std::sync::MutexGuard<'_, FakeState> {
            self.state.lock().unwrap()
        }
    }

    impl Source for Fake {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let mut st = self.st();
            st.calls += 1;
            st.last_read = offset;
            if self.eintr_every > 0 && st.calls.is_multiple_of(self.eintr_every) {
                return Err(io::Error::from_raw_os_error(libc::EINTR));
            }
            if let Some(at) = self.eio_at
                && offset + buf.len() as u64 > at
            {
                if offset >= at {
                    return Err(io::Error::from_raw_os_error(libc::EIO));
                }
                let n = (at - offset) as usize;
                buf[..n].copy_from_slice(&st.data[offset as usize..at as usize]);
                return Ok(n);
            }
            if !self.regions.iter().any(|&(s, e)| offset >= s && offset < e)
                && offset < st.data.len() as u64
            {
                st.reads_of_holes += 1;
            }
            let off = offset as usize;
            if off >= st.data.len() {
                if st.grow_by > 0 {
                    let g = st.grow_by;
                    st.data.extend(std::iter::repeat_n(7u8, g));
                    st.grow_by = 0;
                } else {
                    return Ok(0);
                }
            }
            let n = buf.len().min(self.max_read).min(st.data.len() - off);
            buf[..n].copy_from_slice(&st.data[off..off + n]);
            Ok(n)
        }
        fn next_data(&self, offset: u64) -> io::Result<Option<u64>> {
            Ok(self
                .regions
                .iter()
                .filter(|&&(_, e)| e > offset)
                .map(|&(s, _)| s.max(offset))
                .min())
        }
        fn next_hole(&self, offset: u64) -> io::Result<u64> {
            Ok(self
                .regions
                .iter()
                .find(|&&(s, e)| offset >= s && offset < e)
                .map(|&(_, e)| e)
                .unwrap_or(offset))
        }
        fn size_now(&self) -> io::Result<u64> {
            Ok(self.st().data.len() as u64)
        }
        fn will_need(&self, offset: u64, len: u64) {
            let mut st = self.st();
            let at = st.last_read;
            st.hints.push((offset, len, at));
        }
    }

    #[test]
    fn a_large_item_is_announced_ahead_of_its_reads_once_each_byte() {
        let size = (HINT_AHEAD * 3 + 12_345) as usize;
        let f = Fake::new(pattern(size));
        let (r, got) = run(&f, false, 1 << 20);
        assert_eq!(r.unwrap(), size as u64);
        assert_eq!(got, pattern(size));
        let st = f.st();
        // Contiguous, from 0 to the end, never past it, each byte once.
        let mut next = 0;
        for &(off, len, _) in &st.hints {
            assert_eq!(off, next, "hints {:?}", st.hints);
            assert!(len > 0);
            next = off + len;
        }
        assert_eq!(next, size as u64);
        // Each hint reaches at least a step past the read before it.
        for &(off, len, at) in &st.hints {
            assert!(off + len >= (at + HINT_STEP).min(size as u64));
        }
        drop(st);
        // Small items are read in a call or two: no hints.
        let small = Fake::new(pattern(HINT_STEP as usize));
        run(&small, false, 1 << 20).0.unwrap();
        assert!(small.st().hints.is_empty());
    }

    fn run(f: &Fake, sparse: bool, buf_len: usize) -> (Result<u64, Failure>, Vec<u8>) {
        let mut got = Vec::new();
        let (mut a, mut b) = (vec![0u8; buf_len], vec![0u8; buf_len]);
        let size = f.st().data.len() as u64;
        // Alternate between prefetching inside the sink and leaving it to
        // the reader, as the two kinds of sink in the scan do.
        let mut calls = 0;
        let r = read_all(f, size, sparse, [&mut a, &mut b], &mut |chunk, prefetch| {
            calls += 1;
            if calls % 2 == 0 {
                prefetch();
            }
            got.extend_from_slice(chunk);
            Ok(())
        });
        (r, got)
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    #[test]
    fn plain_read_at_buffer_boundaries() {
        for len in [0, 1, 4095, 4096, 4097, 8191, 8192, 8193] {
            let f = Fake::new(pattern(len));
            let (r, got) = run(&f, false, 4096);
            assert_eq!(r.unwrap(), len as u64);
            assert_eq!(got, pattern(len));
        }
    }

    #[test]
    fn short_reads_and_eintr_lose_nothing() {
        let mut f = Fake::new(pattern(100_000));
        f.max_read = 777;
        f.eintr_every = 3;
        let (r, got) = run(&f, false, 4096);
        assert_eq!(r.unwrap(), 100_000);
        assert_eq!(got, pattern(100_000));
    }

    #[test]
    fn eio_reports_bytes_read_before_it() {
        let mut f = Fake::new(pattern(50_000));
        f.eio_at = Some(10_000);
        let (r, got) = run(&f, false, 4096);
        let fail = r.unwrap_err();
        assert_eq!(fail.stage, Stage::Read);
        assert_eq!(fail.bytes_read, 10_000);
        assert_eq!(got.len(), 10_000);
        match fail.kind {
            FailureKind::Io(e) => assert_eq!(e.errno, Some(libc::EIO)),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn holes_are_zeros_without_reads() {
        let mut data = vec![0u8; 1 << 20];
        data[100_000..100_010].copy_from_slice(b"0123456789");
        data[(1 << 20) - 5..].copy_from_slice(b"tail!");
        let mut f = Fake::new(data.clone());
        f.regions = vec![(98_304, 102_400), ((1 << 20) - 4096, 1 << 20)];
        let (r, got) = run(&f, true, 4096);
        assert_eq!(r.unwrap(), 1 << 20);
        assert_eq!(got, data);
        assert_eq!(f.st().reads_of_holes, 0);
        // Trailing hole: data only at the start.
        let mut f = Fake::new(data[..200_000].to_vec());
        f.regions = vec![(98_304, 102_400)];
        let (r, got) = run(&f, true, 4096);
        assert_eq!(r.unwrap(), 200_000);
        assert_eq!(got, &data[..200_000]);
    }

    #[test]
    fn growth_during_read_is_a_failure() {
        let f = Fake::new(pattern(10_000));
        f.st().grow_by = 10;
        let (r, _) = run(&f, false, 4096);
        let fail = r.unwrap_err();
        assert_eq!(
            fail.kind,
            FailureKind::ChangedDuringRead {
                size_at_open: 10_000,
                size_after: 10_010
            }
        );
        // Read to the size seen at open, never past it (issue 11, item 3).
        assert_eq!(fail.bytes_read, 10_000);
    }
}
