//! The decompressors members are read through, each bounded in memory
//! whatever its input declares: deflate (flate2), deflate64 (`deflate64`,
//! a 64 KiB window), bzip2 (the `bzip2`
//! crate on its pure-Rust libbzip2 port), LZMA and xz (`lzma-rust2`, a
//! port of XZ for Java), zstd (`ruzstd`). A dictionary or window larger
//! than [`MAX_WINDOW`] is refused before it is allocated.

use std::io::{self, BufRead, BufReader, Read};

use super::damaged;

/// The largest LZMA dictionary, xz block dictionary or zstd window a
/// member may ask for (zstd's own default limit; `xz -9` uses 64 MiB).
pub(crate) const MAX_WINDOW: u64 = 128 << 20;

/// A decompressor over compressed bytes.
pub(crate) type Decoder<'a> = Box<dyn Read + Send + 'a>;

/// Deflate64 (zip method 9, PKWARE's "enhanced deflate").
pub(crate) fn deflate64<'a>(r: impl Read + Send + 'a) -> Decoder<'a> {
    Box::new(deflate64::Deflate64Decoder::new(r))
}

/// Concatenated bzip2 streams.
pub(crate) fn bzip2<'a>(r: impl Read + Send + 'a) -> Decoder<'a> {
    Box::new(bzip2::read::MultiBzDecoder::new(r))
}

/// An xz file: its streams one after another, each block's dictionary
/// bounded.
pub(crate) fn xz<'a>(r: impl Read + Send + 'a) -> Decoder<'a> {
    Box::new(Errors(lzma_rust2::XzReader::new_mem_limit(
        r,
        true,
        (MAX_WINDOW >> 10) as u32 + 1024,
    )))
}

/// A zip member compressed with LZMA (method 14): a 4-byte LZMA SDK
/// version and properties length, the 5 property bytes (lc/lp/pb, then
/// the dictionary size), then the raw stream for `size` bytes.
pub(crate) fn zip_lzma<'a>(mut r: impl Read + Send + 'a, size: u64) -> io::Result<Decoder<'a>> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head)
        .map_err(|e| damaged(format!("its LZMA header: {e}")))?;
    if u16::from_le_bytes([head[2], head[3]]) != 5 {
        return Err(damaged("its LZMA header does not give 5 property bytes"));
    }
    let dict = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
    if dict as u64 > MAX_WINDOW {
        return Err(damaged(format!(
            "its LZMA dictionary of {dict} bytes is over the {MAX_WINDOW}-byte limit"
        )));
    }
    let reader = lzma_rust2::LzmaReader::new_with_props(r, size, head[4], dict, None)
        .map_err(|e| damaged(format!("its LZMA properties: {e}")))?;
    Ok(Box::new(Errors(reader)))
}

/// Zstandard frames one after another, each window bounded.
pub(crate) fn zstd<'a>(r: impl Read + Send + 'a) -> Decoder<'a> {
    Box::new(Zstd {
        src: Some(BufReader::new(r)),
        frame: None,
    })
}

/// lzma-rust2's errors carry their own type under `no_std`; with `std`
/// they are `io::Error` already: this only fixes the trait object's shape.
struct Errors<R>(R);

impl<R: Read> Read for Errors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

type Frame<R> = ruzstd::decoding::StreamingDecoder<BufReader<R>, ruzstd::decoding::FrameDecoder>;

struct Zstd<R: Read> {
    /// Between frames.
    src: Option<BufReader<R>>,
    frame: Option<Frame<R>>,
}

impl<R: Read> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = self.frame.as_mut() {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                // The frame ended: another may follow.
                let Some(f) = self.frame.take() else {
                    return Ok(0);
                };
                self.src = Some(f.into_inner());
            }
            let Some(mut src) = self.src.take() else {
                return Ok(0);
            };
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame =
                ruzstd::decoding::StreamingDecoder::new_with_max_window_size(src, MAX_WINDOW)
                    .map_err(|e| damaged(format!("a zstd frame: {e}")))?;
            self.frame = Some(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    fn all(mut r: super::Decoder<'_>) -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn zstd_frames_follow_each_other_and_damage_is_an_error() {
        // Two raw-block frames ("abc", "de"), as RFC 8878 lays them out:
        // magic, a descriptor with single-segment and a 1-byte content
        // size, then one last raw block (header: size << 3 | last).
        let frame = |data: &[u8]| {
            let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0x20, data.len() as u8];
            let h = (data.len() as u32) << 3 | 1;
            f.extend_from_slice(&h.to_le_bytes()[..3]);
            f.extend_from_slice(data);
            f
        };
        let mut two = frame(b"abc");
        two.extend(frame(b"de"));
        assert_eq!(all(super::zstd(&two[..])).unwrap(), b"abcde");
        assert!(all(super::zstd(&two[..7])).is_err(), "cut inside a frame");
        assert!(all(super::zstd(&b"not zstd"[..])).is_err());
    }

    #[test]
    fn an_lzma_dictionary_over_the_limit_is_refused_before_allocation() {
        let mut head = vec![9, 20, 5, 0, 0x5D];
        head.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = super::zip_lzma(&head[..], 10).err().unwrap();
        assert!(err.to_string().contains("over the"), "{err}");
    }
}
