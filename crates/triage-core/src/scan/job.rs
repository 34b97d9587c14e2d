//! One file's job: open it beneath the root, read it once, hash it, sniff
//! its type, hash its picture, match it. Runs on the rayon pool; every
//! problem becomes the entry's failure, never the scan's.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

use super::{CancelHandle, Progress};
use crate::hash::{AlgorithmSet, Digests, MultiHasher};
use crate::identify::{SNIFF_LEN, sniff};
use crate::item::{Failure, FailureKind, FileMeta, Stage};
use crate::matching::Matcher;
use crate::path::RawPath;
use crate::perceptual::decode::DecodeError;
use crate::perceptual::{ImageHashes, Perceptual, PerceptualConfig, perceptual_hashes};
use crate::read::{Source, looks_sparse, read_all};
use crate::record::{Entry, Hashed, Outcome};
use crate::source::{ItemRef, Tree, Walked};

/// Read size. Measured (benches/README.md): large enough that syscall cost
/// vanishes next to hashing, small enough to stay in L2 between hashers.
const READ_LEN: usize = 1024 * 1024;
/// Files at least this large have their hashers split across two threads.
const PARALLEL_MIN: u64 = 4 * 1024 * 1024;

/// What every file job needs, shared by reference.
pub(super) struct JobContext<'a> {
    pub(super) tree: &'a dyn Tree,
    pub(super) algorithms: AlgorithmSet,
    pub(super) perceptual: &'a PerceptualConfig,
    pub(super) matcher: &'a Matcher,
    pub(super) progress: &'a Progress,
    pub(super) cancel: &'a CancelHandle,
    /// What to look inside ([`super::children`]).
    pub(super) expand: &'a crate::expand::ExpandConfig,
    /// Decompressed bytes the scan's members may still produce.
    pub(super) expand_total: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The evidence root is one file (an archive given as the evidence:
    /// a phone extraction's zip or tar): its members are the evidence, so
    /// the per-item budget does not apply to it, only the scan's.
    pub(super) root_is_file: bool,
    /// FFmpeg, or why there is none (when videos are hashed).
    pub(super) decoder: &'a Result<crate::perceptual::ffmpeg::Decoder, String>,
    /// FFmpeg decoders one video may run at once (the scan's threads).
    pub(super) video_workers: usize,
}

thread_local! {
    /// Read buffers of this thread. A pool, not one buffer: while waiting in
    /// a rayon join, a thread may run another file's job on the same stack.
    static BUFFERS: std::cell::RefCell<Vec<Box<[u8]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A walked file's place among the files read at once ([`super::gate`]),
/// given back once: when its bytes are read and only decoding is left
/// (which needs no disk, so the next file's read starts meanwhile), or
/// when its job ends.
pub(super) struct ReaderSlot<'g> {
    gate: &'g super::gate::Gate,
    held: std::cell::Cell<bool>,
}

impl<'g> ReaderSlot<'g> {
    /// Takes a place (waiting for one).
    pub(super) fn take(gate: &'g super::gate::Gate) -> ReaderSlot<'g> {
        gate.enter();
        ReaderSlot {
            gate,
            held: std::cell::Cell::new(true),
        }
    }

    /// Gives the place back, if it is still held.
    pub(super) fn release(&self) {
        if self.held.replace(false) {
            self.gate.leave();
        }
    }
}

impl Drop for ReaderSlot<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Reads and hashes one regular file. `None` when cancelled mid-file.
pub(super) fn process_file(
    w: Walked,
    ctx: &JobContext<'_>,
    slot: Option<&ReaderSlot<'_>>,
) -> Option<Entry> {
    let (progress, cancel) = (ctx.progress, ctx.cancel);
    if cancel.is_cancelled() {
        return None;
    }
    if let Ok(mut c) = progress.0.current.lock() {
        c.clone_from(&w.path);
    }
    let mut w = w;
    let preopened = w.file.take();
    let result = catch_unwind(AssertUnwindSafe(|| hash_file(&w, preopened, ctx, slot)));
    let Walked {
        path,
        meta: walk_meta,
        location,
        ..
    } = w;
    let (meta, outcome) = match result {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(panic) => {
            let message = crate::item::panic_message(&*panic);
            let failure = Failure {
                stage: Stage::Read,
                kind: FailureKind::Internal { message },
                bytes_read: 0,
            };
            (walk_meta, Outcome::Failed(failure))
        }
    };
    Some(Entry {
        path,
        meta,
        location,
        within: None,
        outcome,
    })
}

/// What the later stages need from a file's bytes as they stream past:
/// the head for sniffing, and the whole file when it is a picture to decode.
pub(super) struct Kept {
    head: Vec<u8>,
    /// `None` until the first piece; then `Some(empty)`, unused, for a file
    /// that is not a picture to decode.
    image: Option<Vec<u8>>,
    want_image: bool,
    size: u64,
    /// The most picture bytes kept (a member whose size is known only once
    /// read may be longer than its size said: past this it is not kept).
    max: u64,
    /// Whether its bytes may be a picture to decode: not a volume's
    /// unallocated space, whatever its first bytes look like (the
    /// pictures in it are carved, each decoded as its own item).
    decode: bool,
}

impl Kept {
    pub(super) fn new(meta: &FileMeta, perceptual: &PerceptualConfig) -> Kept {
        Kept {
            head: Vec::with_capacity(SNIFF_LEN.min(meta.size as usize)),
            image: None,
            want_image: perceptual.enabled() && meta.size <= perceptual.max_file_bytes,
            size: meta.size,
            max: perceptual.max_file_bytes,
            decode: true,
        }
    }

    /// For the item at `location`: free space is no picture.
    pub(super) fn for_location(mut self, location: Option<&crate::item::Location>) -> Kept {
        if location.is_some_and(|l| l.is_free_space()) {
            self.want_image = false;
            self.decode = false;
        }
        self
    }

    /// Takes what it needs of the next piece.
    pub(super) fn take(&mut self, chunk: &[u8]) {
        if self.head.len() < SNIFF_LEN {
            let take = chunk.len().min(SNIFF_LEN - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        let (want, head, size) = (self.want_image, &self.head, self.size);
        let keep = self.image.get_or_insert_with(|| {
            // Decided on the first piece.
            if want && sniff(head, size).is_image() {
                Vec::with_capacity(size as usize)
            } else {
                Vec::new()
            }
        });
        if keep.capacity() > 0 {
            if (keep.len() + chunk.len()) as u64 > self.max {
                // Longer than its size said and over the decoding limit:
                // `finish` records it as too large to decode.
                *keep = Vec::new();
                self.want_image = false;
            } else {
                keep.extend_from_slice(chunk);
            }
        }
    }

    /// Whether the whole file is being kept (a picture to decode).
    pub(super) fn keeps_whole(&self) -> bool {
        self.image.as_ref().is_some_and(|v| v.capacity() > 0)
    }

    /// Whether it is a video to decode once read: its reader's place is
    /// given back first, as for a picture.
    pub(super) fn is_video(&self) -> bool {
        self.decode && crate::perceptual::video::is_video(sniff(&self.head, self.size))
    }
}

/// The outcome of a file read to its end: its type from the head, its
/// perceptual hashes (from the kept bytes, or read again when the first
/// piece was too short to sniff), its matches.
pub(super) fn finish(
    ctx: &JobContext<'_>,
    path: &RawPath,
    src: &dyn Source,
    kept: Kept,
    digests: Digests,
    bytes_read: u64,
) -> Outcome {
    let Kept {
        head,
        mut image,
        size,
        decode,
        ..
    } = kept;
    let file_type = sniff(&head, bytes_read);
    let (images, perceptual_error) =
        if !ctx.perceptual.enabled() || !file_type.is_image() || !decode {
            (ImageHashes::default(), None)
        } else if size.max(bytes_read) > ctx.perceptual.max_file_bytes {
            let detail = format!(
                "file of {} bytes is over the {}-byte limit for decoding",
                size.max(bytes_read),
                ctx.perceptual.max_file_bytes
            );
            (
                ImageHashes::default(),
                Some(DecodeError::TooLarge { detail }),
            )
        } else {
            // A first read too short to sniff means nothing was kept:
            // read the (small) file again rather than skip it.
            let bytes = match image.take() {
                Some(b) if b.len() as u64 == bytes_read => Ok(b),
                _ => crate::read::read_whole(src, bytes_read),
            };
            match bytes.map(|b| perceptual_hashes(&b, ctx.perceptual)) {
                Ok(Ok(h)) => (h, None),
                Ok(Err(e)) => (ImageHashes::default(), Some(e)),
                Err(e) => {
                    let e = DecodeError::Corrupt(format!("re-reading for decoding: {e}"));
                    (ImageHashes::default(), Some(e))
                }
            }
        };
    let video = (decode
        && ctx.perceptual.pdq
        && ctx.perceptual.video.enabled
        && crate::perceptual::video::is_video(file_type))
    .then(|| {
        let stop = || ctx.cancel.is_cancelled();
        Box::new(match ctx.decoder {
            Ok(d) => crate::perceptual::video::hash_video(
                d,
                src,
                bytes_read,
                file_type,
                &ctx.perceptual.video,
                ctx.perceptual.limits.max_pixels,
                ctx.video_workers,
                &stop,
            ),
            Err(why) => Err(crate::perceptual::video::VideoError::NoDecoder(why.clone())),
        })
    });
    let mut hashed = Hashed {
        digests,
        bytes_read,
        file_type,
        ext_mismatch: file_type.ext_mismatch(path.extension()),
        empty: bytes_read == 0,
        perceptual: images.hashes,
        image: images.info,
        perceptual_error,
        matches: Vec::new(),
        near_skipped: None,
        expansion: None,
        video,
    };
    if !ctx.matcher.is_empty() {
        // A video's frames are matched against the sets' pictures too (a
        // still of known material in a new video): each hit names its
        // frame. Frames under the quality floor never match, and are not
        // reported as skipped (a video has many dark frames).
        let frames: Vec<Perceptual> = match hashed.video.as_deref() {
            Some(Ok(v)) => v
                .frames
                .iter()
                .filter(|f| f.quality >= ctx.matcher.config().pdq_min_quality)
                .map(|f| Perceptual::Pdq {
                    hash: f.hash,
                    quality: f.quality,
                    dihedral: None,
                    frame: Some(u32::try_from(f.frame).unwrap_or(u32::MAX)),
                })
                .collect(),
            _ => Vec::new(),
        };
        let queries: Vec<Perceptual> = if frames.is_empty() {
            Vec::new()
        } else {
            hashed.perceptual.iter().cloned().chain(frames).collect()
        };
        let perceptual = if queries.is_empty() {
            &hashed.perceptual
        } else {
            &queries
        };
        (hashed.matches, hashed.near_skipped) = ctx.matcher.match_file(&hashed.digests, perceptual);
        if let Some(Ok(v)) = hashed.video.as_deref() {
            hashed.matches.extend(ctx.matcher.match_video(v));
        }
    }
    Outcome::Hashed(hashed)
}

/// Whether the scan was cancelled while this item's video decoded: the
/// item is then not recorded (a resumed scan reads it again).
pub(super) fn video_cancelled(o: &Outcome) -> bool {
    matches!(o, Outcome::Hashed(h)
        if matches!(h.video.as_deref(), Some(Err(crate::perceptual::video::VideoError::Cancelled))))
}

/// Open, read, hash, identify. Returns the metadata to record (from `fstat`
/// at open when the file was opened, as that is what was read) and the
/// outcome; `None` when cancelled mid-read.
fn hash_file(
    w: &Walked,
    preopened: Option<std::fs::File>,
    ctx: &JobContext<'_>,
    slot: Option<&ReaderSlot<'_>>,
) -> Option<(Option<FileMeta>, Outcome)> {
    let (src, meta) = match ctx.tree.open(ItemRef::of(w), preopened) {
        Ok(r) => r,
        Err(f) => return Some((w.meta.clone(), Outcome::Failed(f))),
    };
    let (outcome, _) = hash_source(
        &w.path,
        &*src,
        &meta,
        meta.size,
        looks_sparse(&meta),
        Reading::Walked(w.location.as_ref(), slot),
        ctx,
    )?;
    Some((Some(meta), outcome))
}

/// What is being read: a walked item (at its location in a disk image,
/// if it is in one), or a container's member.
#[derive(Clone, Copy)]
pub(super) enum Reading<'l> {
    /// At its location in a disk image (if in one), holding its reader
    /// slot (if it holds one).
    Walked(
        Option<&'l crate::item::Location>,
        Option<&'l ReaderSlot<'l>>,
    ),
    Member,
}

/// Reads `src` once and gives its outcome: `read_size` bytes, or to the
/// end with [`crate::read::TO_END`]. For a [`Reading::Member`] (an
/// archive's child item), also the CRC-32 of the bytes read (when read to
/// the end), and its bytes are not counted in the progress's bytes (those
/// are the walked files'). `None` when cancelled mid-read.
pub(super) fn hash_source(
    path: &RawPath,
    src: &dyn Source,
    meta: &FileMeta,
    read_size: u64,
    sparse: bool,
    reading: Reading<'_>,
    ctx: &JobContext<'_>,
) -> Option<(Outcome, Option<u32>)> {
    let (progress, cancel) = (ctx.progress, ctx.cancel);
    let mut hasher = MultiHasher::new(ctx.algorithms);
    let (member, location, slot) = match reading {
        Reading::Walked(l, slot) => (false, l, slot),
        Reading::Member => (true, None, None),
    };
    let mut kept = Kept::new(meta, ctx.perceptual).for_location(location);
    let mut crc = member.then(crc32fast::Hasher::new);
    let parallel = meta.size >= PARALLEL_MIN;
    let take = || {
        BUFFERS
            .with(|b| b.borrow_mut().pop())
            .unwrap_or_else(|| vec![0u8; READ_LEN].into_boxed_slice())
    };
    let (mut buf_a, mut buf_b) = (take(), take());
    let bufs = [&mut buf_a[..], &mut buf_b[..]];
    let result = read_all(src, read_size, sparse, bufs, &mut |chunk, prefetch| {
        // Checked per chunk, holes included, so a long file stops at once.
        if cancel.is_cancelled() {
            return Err(io::Error::other("scan cancelled"));
        }
        kept.take(chunk);
        if let Some(c) = crc.as_mut() {
            c.update(chunk);
        }
        if parallel {
            // The next read runs beside the lighter hashers.
            hasher.update_parallel_with(chunk, prefetch);
        } else {
            hasher.update(chunk);
        }
        if !member {
            let n = chunk.len() as u64;
            progress.0.bytes_done.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    });
    BUFFERS.with(|b| b.borrow_mut().extend([buf_a, buf_b]));
    if cancel.is_cancelled() && result.is_err() {
        return None;
    }
    let (outcome, crc) = match result {
        Err(f) => (Outcome::Failed(f), None),
        Ok(bytes_read) => {
            // A picture read whole: only decoding is left.
            if (kept.keeps_whole() || kept.is_video())
                && let Some(s) = slot
            {
                s.release();
            }
            let outcome = finish(ctx, path, src, kept, hasher.finalize(), bytes_read);
            if video_cancelled(&outcome) {
                return None;
            }
            (outcome, crc.map(|c| c.finalize()))
        }
    };
    Some((outcome, crc))
}
