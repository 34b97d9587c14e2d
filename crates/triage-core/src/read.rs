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
    let fail = |e: io::Error, pos: u64| Failure {
        stage: Stage::Read,
        kind: FailureKind::Io((&e).into()),
        bytes_read: pos,
    };
    let [mut cur, mut next] = bufs;
    let mut pos = 0u64;
    if sparse {
        pos = read_sparse(src, size_at_open, cur, sink).map_err(|(e, p)| fail(e, p))?;
    }
    // The whole file when not sparse, and never more than the size seen at
    // open: a file that grows (a log being written, a kernel file with no
    // end) is read that far, then probed for one byte more.
    let limit = size_at_open;
    let mut n = read_bounded(src, cur, pos, limit).map_err(|e| fail(e, pos))?;
    while n > 0 {
        let next_pos = pos + n as u64;
        let mut fetched = None;
        {
            let next = &mut *next;
            let mut prefetch = || fetched = Some(read_bounded(src, next, next_pos, limit));
            sink(&cur[..n], &mut prefetch).map_err(|e| fail(e, pos))?;
        }
        pos = next_pos;
        let r = match fetched {
            Some(r) => r,
            None => read_bounded(src, next, pos, limit),
        };
        n = r.map_err(|e| fail(e, pos))?;
        std::mem::swap(&mut cur, &mut next);
    }
    // At the size seen at open: one more byte means the file grew. Short of
    // it: it shrank. Either way fstat gives the size now for the record.
    if pos == size_at_open {
        let mut probe = [0u8; 1];
        if read_retrying(src, &mut probe, pos).map_err(|e| fail(e, pos))? == 0 {
            return Ok(pos);
        }
    }
    let size_after = src.size_now().map_err(|e| fail(e, pos))?;
    Err(Failure {
        stage: Stage::Read,
        kind: FailureKind::ChangedDuringRead {
            size_at_open,
            size_after,
        },
        bytes_read: pos,
    })
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

/// Reads data regions up to `size`, feeding holes as zeros. Returns the
/// position reached, which is `size` unless the file shrank; on error, the
/// error and the bytes fed before it.
fn read_sparse(
    src: &dyn Source,
    size: u64,
    buf: &mut [u8],
    sink: &mut Sink<'_>,
) -> Result<u64, (io::Error, u64)> {
    let zeros = |sink: &mut Sink<'_>, pos: u64, n: u64| -> Result<(), (io::Error, u64)> {
        let mut done = 0;
        while done < n {
            let k = (n - done).min(ZEROS.len() as u64) as usize;
            sink(&ZEROS[..k], &mut || {}).map_err(|e| (e, pos + done))?;
            done += k as u64;
        }
        Ok(())
    };
    let mut pos = 0u64;
    while pos < size {
        let data = match src.next_data(pos) {
            Ok(Some(d)) => d.min(size),
            Ok(None) => size,
            // Cannot tell holes here: the plain read that follows does it all.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok(pos),
            Err(e) => return Err((e, pos)),
        };
        zeros(sink, pos, data - pos)?;
        pos = data;
        if pos >= size {
            break;
        }
        let hole = src.next_hole(pos).map_err(|e| (e, pos))?.min(size);
        while pos < hole {
            let want = buf.len().min((hole - pos) as usize);
            let n = read_retrying(src, &mut buf[..want], pos).map_err(|e| (e, pos))?;
            if n == 0 {
                // Shrank under us; the caller's size check reports it.
                return Ok(pos);
            }
            sink(&buf[..n], &mut || {}).map_err(|e| (e, pos))?;
            pos += n as u64;
        }
    }
    Ok(pos)
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
