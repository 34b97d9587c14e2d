//! The medium of a disk image read once, in order, for its MD5 and SHA-1,
//! compared with the digests stored at acquisition (EWF's), as `ewfverify`
//! does: what `triage verify-image` and `scan --verify-image` report.
//!
//! The medium is read through the container reader (EWF chunks inflated
//! in parallel, each checked against its own checksum), while MD5 and
//! SHA-1 are computed on two threads beside the next read: one MD5 stream
//! is the bound (it cannot be split). A range that cannot be read (a chunk
//! failing its checksum, an I/O error) is recorded with its offsets,
//! counted as zeros in the digests, and makes the result damaged: the
//! medium is not what was acquired.

use std::collections::BTreeMap;

use crate::hash::{Algorithm, AlgorithmSet, MultiHasher};
use crate::item::{ByteRange, MediaCheck, UnreadableRange};
use crate::source::image::{self, Image};
use crate::source::tree::Medium;

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
    /// As recorded in a scan's summary.
    pub fn record(&self) -> MediaCheck {
        MediaCheck {
            computed: self.computed.clone(),
            stored: self.stored.clone(),
            verdicts: self
                .verdicts
                .iter()
                .map(|(a, v)| (a.clone(), v.name().to_string()))
                .collect(),
            unreadable: self
                .bad_ranges
                .iter()
                .map(|(r, why)| UnreadableRange {
                    offset: r.offset,
                    length: r.length,
                    error: why.clone(),
                })
                .collect(),
        }
    }

    /// Whether the medium is intact: every stored digest matched and
    /// every byte was read.
    pub fn intact(&self) -> bool {
        self.bad_ranges.is_empty() && self.verdicts.iter().all(|(_, v)| *v != Verdict::Mismatched)
    }
}

/// Verifies the medium of an opened image (see the module doc).
pub fn verify_media(img: &Image, progress: &(dyn Fn(u64) + Sync)) -> MediaVerification {
    read_medium(&img.medium(), progress, &|| false).0
}

/// [`verify_media`] on a [`Medium`], stopping (with `None`) as soon as
/// `stop` says so.
pub fn verify_medium(
    img: &Medium,
    progress: &(dyn Fn(u64) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<MediaVerification> {
    let (v, complete) = read_medium(img, progress, stop);
    complete.then_some(v)
}

/// Reads the medium until its end or `stop`: the verification, and
/// whether it read to the end.
fn read_medium(
    img: &Medium,
    progress: &(dyn Fn(u64) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> (MediaVerification, bool) {
    let mut complete = true;
    let algs = AlgorithmSet::empty()
        .with(Algorithm::Md5)
        .with(Algorithm::Sha1);
    let mut hasher = MultiHasher::new(algs);
    let mut bad: Vec<(ByteRange, String)> = Vec::new();
    let (mut cur, mut next) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    let mut pos = 0u64;
    let mut n = read_block(img, &mut cur, pos, &mut bad);
    while n > 0 {
        if stop() {
            complete = false;
            break;
        }
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
    let stored: BTreeMap<String, String> = img.stored.iter().cloned().collect();
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
    let v = MediaVerification {
        format: img.format,
        size: img.size,
        computed,
        stored,
        verdicts,
        bad_ranges: bad,
    };
    (v, complete)
}

/// Fills `buf` from `pos` (less at the medium's end); a range that cannot
/// be read is zeros, and recorded in `bad`. Returns the bytes filled.
fn read_block(img: &Medium, buf: &mut [u8], pos: u64, bad: &mut Vec<(ByteRange, String)>) -> usize {
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
