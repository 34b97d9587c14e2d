//! Verify a disk image's medium against the digests stored in it at
//! acquisition (EWF's MD5 and SHA-1), as `ewfverify` does.
//!
//! The medium is read once, in order, through the container reader (EWF
//! chunks inflated in parallel, each checked against its own checksum),
//! while MD5 and SHA-1 are computed on two threads beside the next read:
//! one MD5 stream is the bound (it cannot be split). A range that
//! cannot be read (a chunk failing its checksum, an I/O error) is
//! recorded with its offsets, counted as zeros in the digests, and makes
//! the result damaged: the medium is not what was acquired.
//!
//! ```no_run
//! use triage_core::verify::image::{verify_image, Verdict};
//! let v = verify_image(std::path::Path::new("case.E01"), &|_done| {})?;
//! for (alg, verdict) in &v.verdicts {
//!     println!("{alg}: {verdict:?}");
//! }
//! assert!(v.bad_ranges.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::hash::{Algorithm, AlgorithmSet, MultiHasher};
use crate::item::ByteRange;
use crate::source::image::{self, Image, ImageError};

/// Read size: many EWF chunks at once, so they inflate in parallel.
const BLOCK: usize = 4 << 20;
/// When a block cannot be read, it is read again in pieces this small, so
/// that only the bad part is lost.
const PIECE: usize = 4096;

/// How a stored digest compares with the medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The medium has the stored digest.
    Matched,
    /// The medium does not have the stored digest: it is not what was
    /// acquired (or the image is damaged).
    Mismatched,
    /// The container stores no digest of this kind.
    Absent,
}

impl Verdict {
    /// The word used in records and messages.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Matched => "matched",
            Verdict::Mismatched => "mismatched",
            Verdict::Absent => "absent",
        }
    }
}

/// What verifying a medium found.
#[derive(Clone, Debug)]
pub struct MediaVerification {
    /// The container format.
    pub format: &'static str,
    /// The medium's size.
    pub size: u64,
    /// Digests computed now (`md5`, `sha1`), lower-case hex.
    pub computed: BTreeMap<String, String>,
    /// Digests stored at acquisition.
    pub stored: BTreeMap<String, String>,
    /// For `md5` and `sha1`: how the stored digest compares.
    pub verdicts: Vec<(String, Verdict)>,
    /// Ranges that could not be read, with why.
    pub bad_ranges: Vec<(ByteRange, String)>,
}

impl MediaVerification {
    /// Whether the medium is intact: every stored digest matched and
    /// every byte was read.
    pub fn intact(&self) -> bool {
        self.bad_ranges.is_empty() && self.verdicts.iter().all(|(_, v)| *v != Verdict::Mismatched)
    }
}

/// Opens the image at `path` and verifies its medium; `progress` is told
/// the bytes done after each block.
pub fn verify_image(
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<MediaVerification, ImageError> {
    let img = image::open(path)?.ok_or_else(|| {
        ImageError::Format(
            path.to_path_buf(),
            "not a disk image triage recognises (E01, raw with a partition table or file system, split raw, QCOW2, VHD, VMDK)".into(),
        )
    })?;
    Ok(verify_media(&img, progress))
}

/// Verifies the medium of an opened image (see the module doc).
pub fn verify_media(img: &Image, progress: &(dyn Fn(u64) + Sync)) -> MediaVerification {
    let algs = AlgorithmSet::empty()
        .with(Algorithm::Md5)
        .with(Algorithm::Sha1);
    let mut hasher = MultiHasher::new(algs);
    let mut bad: Vec<(ByteRange, String)> = Vec::new();
    let (mut cur, mut next) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    let mut pos = 0u64;
    let mut n = read_block(img, &mut cur, pos, &mut bad);
    while n > 0 {
        let next_pos = pos + n as u64;
        let mut fetched = 0;
        {
            // MD5 on one thread; SHA-1, then the next read (EWF chunks
            // inflating on whatever threads are free), on the other.
            let (next, bad) = (&mut next, &mut bad);
            hasher.update_parallel_with(&cur[..n], &mut || {
                fetched = read_block(img, next, next_pos, bad)
            });
        }
        pos = next_pos;
        progress(pos);
        n = fetched;
        std::mem::swap(&mut cur, &mut next);
    }
    let digests = hasher.finalize();
    let mut computed = BTreeMap::new();
    for (name, a) in [("md5", Algorithm::Md5), ("sha1", Algorithm::Sha1)] {
        if let Some(h) = digests.hex(a) {
            computed.insert(name.to_string(), h);
        }
    }
    let stored: BTreeMap<String, String> = img.stored_digests.iter().cloned().collect();
    let verdicts = ["md5", "sha1"]
        .iter()
        .map(|alg| {
            let v = match stored.get(*alg) {
                None => Verdict::Absent,
                Some(s) if computed.get(*alg) == Some(s) => Verdict::Matched,
                Some(_) => Verdict::Mismatched,
            };
            (alg.to_string(), v)
        })
        .collect();
    MediaVerification {
        format: img.format,
        size: img.size,
        computed,
        stored,
        verdicts,
        bad_ranges: bad,
    }
}

/// Fills `buf` from `pos` (less at the medium's end); a range that cannot
/// be read is zeros, and recorded in `bad`. Returns the bytes filled.
fn read_block(img: &Image, buf: &mut [u8], pos: u64, bad: &mut Vec<(ByteRange, String)>) -> usize {
    let want = (img.size.saturating_sub(pos)).min(buf.len() as u64) as usize;
    if want == 0 {
        return 0;
    }
    if image::read_exact(&*img.media, &mut buf[..want], pos).is_ok() {
        return want;
    }
    // Again in small pieces, to keep what can be read.
    let mut at = 0;
    while at < want {
        let k = PIECE.min(want - at);
        if let Err(e) = image::read_exact(&*img.media, &mut buf[at..at + k], pos + at as u64) {
            buf[at..at + k].fill(0);
            let range = ByteRange {
                offset: pos + at as u64,
                length: k as u64,
            };
            match bad.last_mut() {
                Some((r, msg)) if r.offset + r.length == range.offset && *msg == e.to_string() => {
                    r.length += range.length
                }
                _ => bad.push((range, e.to_string())),
            }
        }
        at += k;
    }
    want
}
