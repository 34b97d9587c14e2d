//! A lane group's job: many files read side by side, their MD5s computed
//! together in SIMD lanes (16 files at once with AVX-512, 8 with AVX2;
//! SHA-256 and SHA-1 too with AVX-512), so MD5 stops being half of the
//! scan's time.
//!
//! Input: a run of walked files (`super::group` says which go together)
//! and the job context. Output: one entry per file, handed to `emit` as
//! each file ends (in any order; the scan restores walk order), `None` for
//! a file abandoned by cancellation.
//!
//! Each busy lane holds one file and one read buffer of [`PIECE`] bytes:
//! the lanes take the file's bytes from it block by block; when it runs
//! dry the next piece is read ([`Chunks`], so holes, size changes and
//! errors are handled as for a single file), and when the file ends its
//! digest comes out and the next file of the group takes the lane. Every
//! byte is still read once: the same piece feeds MD5 (in the lanes) and
//! the other digests, the sniffed head and a kept picture (beside them, on
//! a second thread when one is idle, as [`MultiHasher::update_parallel`]
//! does for one file). Memory: lanes × [`PIECE`], plus the pictures kept
//! whole for decoding; a picture larger than a piece is read to its end
//! on its own, with a one-stream MD5, so at most one is kept at a time.
//!
//! A problem with one file (open or read error, a panic in a reader or a
//! decoder) fails that file, never its group.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::job::{JobContext, Kept, finish};
use crate::hash::lanes::{Events, Kernel, Level, MAX_LANES};
use crate::hash::md5x::{Md5 as Md5Kernel, Md5Lanes};
use crate::hash::sha1x::{Sha1, Sha1Lanes};
use crate::hash::sha256x::{Sha256, Sha256Lanes};
use crate::hash::{Algorithm, AlgorithmSet, Digests, MultiHasher};
use crate::item::{Failure, FailureKind, FileMeta, Stage};
use crate::read::{Chunks, Piece, looks_sparse};
use crate::record::{Entry, Outcome};
use crate::source::{ItemRef, Source, Walked};

/// Bytes each lane reads at a time: whole files up to this size take one
/// read. Small enough that 16 buffers stay in L2/L3 beside the hashers'
/// state, large enough that syscalls cost little.
pub(super) const PIECE: usize = 256 * 1024;

thread_local! {
    /// Read buffers of this thread's groups, reused from group to group (a
    /// thread waiting in a join may run a second group: hence a pool).
    static PIECES: std::cell::RefCell<Vec<Box<[u8]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The digests of `algorithms` this CPU computes in lanes: MD5 with AVX2
/// or AVX-512F, SHA-256 and SHA-1 with AVX-512F (16 lanes run ~1.5× and
/// ~1.8× the SHA-NI one-stream functions: benches/README.md).
/// Empty: grouping files gains nothing here.
pub(super) fn in_lanes(algorithms: AlgorithmSet) -> AlgorithmSet {
    let mut set = AlgorithmSet::empty();
    if algorithms.contains(Algorithm::Md5) && Md5Kernel::detect() != Level::Scalar {
        set = set.with(Algorithm::Md5);
    }
    if algorithms.contains(Algorithm::Sha256) && Sha256::detect() != Level::Scalar {
        set = set.with(Algorithm::Sha256);
    }
    if algorithms.contains(Algorithm::Sha1) && Sha1::detect() != Level::Scalar {
        set = set.with(Algorithm::Sha1);
    }
    set
}

/// The files a group's lanes hold at once.
pub(super) fn width() -> usize {
    Level::detect().lanes()
}

/// The lanes of every digest computed in lanes, driven together: the same
/// pieces go to each, so they take the same bytes and report the same
/// events.
struct Kernels {
    md5: Option<Md5Lanes>,
    sha256: Option<Sha256Lanes>,
    sha1: Option<Sha1Lanes>,
}

impl Kernels {
    fn new(set: AlgorithmSet) -> Kernels {
        Kernels {
            md5: set
                .contains(Algorithm::Md5)
                .then(|| Md5Lanes::new(Level::detect())),
            sha256: set
                .contains(Algorithm::Sha256)
                .then(|| Sha256Lanes::new(Level::detect())),
            sha1: set
                .contains(Algorithm::Sha1)
                .then(|| Sha1Lanes::new(Level::detect())),
        }
    }

    fn lanes(&self) -> usize {
        let md5 = self.md5.as_ref().map_or(MAX_LANES, Md5Lanes::lanes);
        let sha = self.sha256.as_ref().map_or(MAX_LANES, Sha256Lanes::lanes);
        let sha1 = self.sha1.as_ref().map_or(MAX_LANES, Sha1Lanes::lanes);
        md5.min(sha).min(sha1)
    }

    fn start(&mut self, lane: usize) {
        self.md5.iter_mut().for_each(|l| l.start(lane));
        self.sha256.iter_mut().for_each(|l| l.start(lane));
        self.sha1.iter_mut().for_each(|l| l.start(lane));
    }

    fn finish(&mut self, lane: usize) {
        self.md5.iter_mut().for_each(|l| l.finish(lane));
        self.sha256.iter_mut().for_each(|l| l.finish(lane));
        self.sha1.iter_mut().for_each(|l| l.finish(lane));
    }

    fn abandon(&mut self, lane: usize) {
        self.md5.iter_mut().for_each(|l| l.abandon(lane));
        self.sha256.iter_mut().for_each(|l| l.abandon(lane));
        self.sha1.iter_mut().for_each(|l| l.abandon(lane));
    }

    /// The finished lane's digests into `d`.
    fn take(&mut self, lane: usize, d: &mut Digests) {
        if let Some(l) = &mut self.md5 {
            d.md5 = Some(l.take(lane));
        }
        if let Some(l) = &mut self.sha256 {
            d.sha256 = Some(l.take(lane));
        }
        if let Some(l) = &mut self.sha1 {
            d.sha1 = Some(l.take(lane));
        }
    }

    /// Runs every kernel's lanes over the same inputs (side by side when a
    /// thread is idle), advancing `inputs` as they do.
    fn run(&mut self, inputs: &mut [&[u8]]) -> Events {
        // One kernel (the usual case on a group of few files): no copies,
        // no joins.
        match (&mut self.md5, &mut self.sha256, &mut self.sha1) {
            (Some(l), None, None) => return l.run(inputs),
            (None, Some(l), None) => return l.run(inputs),
            (None, None, Some(l)) => return l.run(inputs),
            _ => {}
        }
        let n = inputs.len();
        let mut c256: [&[u8]; MAX_LANES] = [&[]; MAX_LANES];
        c256[..n].copy_from_slice(inputs);
        let mut c1 = c256;
        let mut c5 = c256;
        let (md5, sha256, sha1) = (&mut self.md5, &mut self.sha256, &mut self.sha1);
        let ((e5, e256), e1) = rayon::join(
            || {
                rayon::join(
                    || md5.as_mut().map(|l| l.run(&mut c5[..n])),
                    || sha256.as_mut().map(|l| l.run(&mut c256[..n])),
                )
            },
            || sha1.as_mut().map(|l| l.run(&mut c1[..n])),
        );
        // Lanes take bytes by the same rules whatever the kernel; if they
        // ever did not, the digests would be wrong: fail the group's files
        // (the panic is caught) rather than record them.
        let ran = [(e5, &c5), (e256, &c256), (e1, &c1)];
        let mut first: Option<(Events, &[&[u8]; MAX_LANES])> = None;
        for (ev, left) in ran {
            let Some(ev) = ev else { continue };
            match first {
                None => first = Some((ev, left)),
                Some((e, l)) => {
                    let same = l[..n]
                        .iter()
                        .zip(&left[..n])
                        .all(|(x, y)| x.len() == y.len());
                    assert!(e == ev && same, "the kernels' lanes moved apart");
                }
            }
        }
        let Some((ev, left)) = first else {
            return Events::default();
        };
        inputs.copy_from_slice(&left[..n]);
        ev
    }
}

/// One file in a lane.
struct Member<'t> {
    /// Its index in the group.
    idx: usize,
    src: Box<dyn Source + 't>,
    meta: FileMeta,
    chunks: Chunks,
    kept: Kept,
    /// The digests not computed in lanes.
    hasher: MultiHasher,
    /// The piece in the lane's buffer, and how much of it the lanes took.
    piece: Piece,
    used: usize,
    /// The piece has not yet gone to `hasher` and `kept`.
    unhashed: bool,
    /// The next piece, already read into the lane's spare buffer while the
    /// lanes took this one.
    ahead: Option<Result<Option<Piece>, Failure>>,
    /// The end was reached: nothing more to read ahead.
    ended: bool,
}

/// Hashes `files` (each a walk sequence number and its walked file) in
/// lanes; see the module doc.
pub(super) fn process_group(
    files: Vec<(u64, Walked)>,
    ctx: &JobContext<'_>,
    emit: &mut dyn FnMut(u64, Option<Entry>),
) {
    let mut group: Vec<Option<(u64, Walked)>> = files.into_iter().map(Some).collect();
    let mut bufs: Vec<Box<[u8]>> = PIECES.with(|p| {
        let mut p = p.borrow_mut();
        let keep = p.len().saturating_sub(2 * width());
        p.split_off(keep)
    });
    // Two per lane: the piece the lanes take, and the next one read ahead.
    bufs.resize_with(2 * width(), || vec![0u8; PIECE].into_boxed_slice());
    let r = catch_unwind(AssertUnwindSafe(|| run(&mut group, &mut bufs, ctx, emit)));
    PIECES.with(|p| p.borrow_mut().extend(bufs));
    // A bug in the group itself (every per-file step catches its own):
    // the files not yet recorded fail with it, and the scan goes on.
    if let Err(panic) = r {
        let message = crate::item::panic_message(&*panic);
        for (seq, w) in group.iter_mut().filter_map(Option::take) {
            let failure = Failure {
                stage: Stage::Read,
                kind: FailureKind::Internal {
                    message: message.clone(),
                },
                bytes_read: 0,
            };
            emit(seq, Some(entry(w, None, Outcome::Failed(failure))));
        }
    }
}

fn entry(w: Walked, meta: Option<FileMeta>, outcome: Outcome) -> Entry {
    let meta = meta.or(w.meta);
    Entry {
        path: w.path,
        meta,
        location: w.location,
        within: None,
        outcome,
    }
}

fn internal(panic: Box<dyn std::any::Any + Send>, bytes_read: u64) -> Failure {
    Failure {
        stage: Stage::Read,
        kind: FailureKind::Internal {
            message: crate::item::panic_message(&*panic),
        },
        bytes_read,
    }
}

/// The group's loop: fill free lanes, run them, refill the dry ones, record
/// the finished ones.
fn run(
    group: &mut [Option<(u64, Walked)>],
    bufs: &mut [Box<[u8]>],
    ctx: &JobContext<'_>,
    emit: &mut dyn FnMut(u64, Option<Entry>),
) {
    // SHA lanes beat the one-stream functions only with most lanes busy: a
    // group of a few (large) files keeps them one stream per file.
    let few = |min: u32| group.len() < min as usize;
    let laned: AlgorithmSet = in_lanes(ctx.algorithms)
        .iter()
        .filter(|&a| match a {
            Algorithm::Sha256 => !few(Sha256::min_simd_lanes()),
            Algorithm::Sha1 => !few(Sha1::min_simd_lanes()),
            _ => true,
        })
        .collect();
    let rest: AlgorithmSet = ctx
        .algorithms
        .iter()
        .filter(|&a| !laned.contains(a))
        .collect();
    let mut lanes = Kernels::new(laned);
    let width = lanes.lanes().min(bufs.len() / 2);
    let (bufs, spares) = bufs.split_at_mut(width);
    let mut slots: Vec<Option<Member<'_>>> = (0..width).map(|_| None).collect();
    let mut next = 0usize;
    loop {
        if ctx.cancel.is_cancelled() {
            for (seq, _) in group.iter_mut().filter_map(Option::take) {
                emit(seq, None);
            }
            return;
        }
        // Free lanes take the next files, lowest lanes first (a group that
        // thins out ends on the narrower kernel).
        for (i, slot) in slots.iter_mut().enumerate() {
            while slot.is_none() && next < group.len() {
                let idx = next;
                next += 1;
                *slot = admit(idx, group, &mut bufs[i], rest, laned, ctx, emit);
                if slot.is_some() {
                    lanes.start(i);
                }
            }
        }
        if slots.iter().all(Option::is_none) {
            return;
        }
        // MD5 in the lanes, beside the other digests of the pieces just
        // read (on another thread when one is idle).
        let mut inputs: [&[u8]; MAX_LANES] = [&[]; MAX_LANES];
        for (i, m) in slots.iter().enumerate() {
            if let Some(m) = m {
                inputs[i] = &m.piece.bytes(&bufs[i])[m.used..];
            }
        }
        let before: [usize; MAX_LANES] = std::array::from_fn(|i| inputs[i].len());
        let unhashed: usize = slots
            .iter()
            .flatten()
            .filter(|m| m.unhashed)
            .map(|m| m.piece.len())
            .sum();
        // Worth a second thread for large pieces only (small files are
        // many groups, one per thread); that thread also reads ahead.
        let ev = if unhashed >= 64 * 1024 {
            let (lanes, inputs) = (&mut lanes, &mut inputs[..width]);
            let (ev, ()) = rayon::join(
                || lanes.run(inputs),
                || hash_pieces(&mut slots, bufs, Some(&mut *spares), ctx),
            );
            ev
        } else {
            hash_pieces(&mut slots, bufs, None, ctx);
            lanes.run(&mut inputs[..width])
        };
        let taken: [usize; MAX_LANES] = std::array::from_fn(|i| before[i] - inputs[i].len());
        for (i, slot) in slots.iter_mut().enumerate() {
            if let Some(m) = slot.as_mut() {
                m.used += taken[i];
            }
            let bit = 1u16 << i;
            if ev.done & bit != 0 {
                if let Some(m) = slot.take() {
                    let mut laned = Digests::default();
                    lanes.take(i, &mut laned);
                    record(m, laned, group, ctx, emit);
                }
            } else if ev.dry & bit != 0 {
                let next = slot.as_mut().map(|m| match m.ahead.take() {
                    Some(r) => {
                        std::mem::swap(&mut bufs[i], &mut spares[i]);
                        r
                    }
                    None => refill(m, &mut bufs[i]),
                });
                match next {
                    None => {}
                    Some(Ok(Some(p))) => {
                        if let Some(m) = slot.as_mut() {
                            (m.piece, m.used, m.unhashed) = (p, 0, true);
                        }
                    }
                    Some(Ok(None)) => {
                        if let Some(m) = slot.as_mut() {
                            m.ended = true;
                        }
                        lanes.finish(i);
                    }
                    Some(Err(f)) => {
                        lanes.abandon(i);
                        if let Some(m) = slot.take() {
                            record_failed(group, m.idx, Some(m.meta), f, emit);
                        }
                    }
                }
            }
        }
    }
}

/// Records file `idx` of the group as failed.
fn record_failed(
    group: &mut [Option<(u64, Walked)>],
    idx: usize,
    meta: Option<FileMeta>,
    failure: Failure,
    emit: &mut dyn FnMut(u64, Option<Entry>),
) {
    if let Some((seq, w)) = group[idx].take() {
        emit(seq, Some(entry(w, meta, Outcome::Failed(failure))));
    }
}

/// What opening a file and reading its first piece gave.
enum Opened<'t> {
    Member(Box<Member<'t>>),
    Failed(Failure, Option<FileMeta>),
}

/// Gives the pieces just read to each member's other digests and kept
/// bytes, a member per task; with `spares`, each task then reads its
/// member's next piece into the lane's spare buffer.
fn hash_pieces(
    slots: &mut [Option<Member<'_>>],
    bufs: &[Box<[u8]>],
    spares: Option<&mut [Box<[u8]>]>,
    ctx: &JobContext<'_>,
) {
    let work = |slot: &mut Option<Member<'_>>, buf: &[u8], spare: Option<&mut [u8]>| {
        let Some(m) = slot else { return };
        if m.unhashed {
            let bytes = m.piece.bytes(buf);
            m.kept.take(bytes);
            m.hasher.update(bytes);
            m.unhashed = false;
            let n = bytes.len() as u64;
            ctx.progress.0.bytes_done.fetch_add(n, Ordering::Relaxed);
        }
        if let Some(spare) = spare
            && m.ahead.is_none()
            && !m.ended
        {
            m.ahead = Some(refill(m, spare));
        }
    };
    match spares {
        Some(spares) => slots
            .par_iter_mut()
            .zip(bufs.par_iter())
            .zip(spares.par_iter_mut())
            .for_each(|((slot, buf), spare)| work(slot, buf, Some(spare))),
        None => slots
            .iter_mut()
            .zip(bufs)
            .for_each(|(slot, buf)| work(slot, buf, None)),
    }
}

/// Opens file `idx` and reads its first piece. `None` when it is already
/// recorded (failed to open or read, or read to its end on its own).
fn admit<'t>(
    idx: usize,
    group: &mut [Option<(u64, Walked)>],
    buf: &mut [u8],
    rest: AlgorithmSet,
    laned: AlgorithmSet,
    ctx: &'t JobContext<'_>,
    emit: &mut dyn FnMut(u64, Option<Entry>),
) -> Option<Member<'t>> {
    let (seq, w) = group[idx].as_ref()?;
    let seq = *seq;
    if let Ok(mut c) = ctx.progress.0.current.lock() {
        c.clone_from(&w.path);
    }
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let (src, meta) = match ctx.tree.open(ItemRef::of(w), None) {
            Ok(r) => r,
            Err(f) => return Opened::Failed(f, None),
        };
        let mut m = Member {
            idx,
            chunks: Chunks::new(meta.size, looks_sparse(&meta)),
            kept: Kept::new(&meta, ctx.perceptual).for_location(w.location.as_ref()),
            hasher: MultiHasher::new(rest),
            src,
            meta,
            piece: Piece::Zeros(0),
            used: 0,
            unhashed: false,
            ahead: None,
            ended: false,
        };
        // The first piece now, so that a picture too large for a lane's
        // buffer is seen before it takes a lane.
        match m.chunks.next(&*m.src, buf) {
            Ok(p) => {
                m.piece = p.unwrap_or(Piece::Zeros(0));
                Opened::Member(Box::new(m))
            }
            Err(f) => Opened::Failed(f, Some(m.meta)),
        }
    }));
    let mut m = match opened {
        Ok(Opened::Member(m)) => *m,
        Ok(Opened::Failed(f, meta)) => {
            record_failed(group, idx, meta, f, emit);
            return None;
        }
        Err(panic) => {
            record_failed(group, idx, None, internal(panic, 0), emit);
            return None;
        }
    };
    let bytes = m.piece.bytes(buf);
    m.kept.take(bytes);
    m.hasher.update(bytes);
    m.unhashed = false;
    ctx.progress
        .0
        .bytes_done
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    if m.kept.keeps_whole() && m.meta.size > PIECE as u64 {
        let r = catch_unwind(AssertUnwindSafe(|| alone(&mut m, buf, laned, ctx)));
        let (_, w) = group[idx].take()?;
        let pos = m.chunks.position();
        let Member {
            src, kept, meta, ..
        } = m;
        let outcome = match r {
            Ok(None) => {
                emit(seq, None);
                return None;
            }
            Ok(Some(Err(f))) => Outcome::Failed(f),
            Ok(Some(Ok(digests))) => catch_unwind(AssertUnwindSafe(|| {
                finish(ctx, &w.path, &*src, kept, digests, pos)
            }))
            .unwrap_or_else(|p| Outcome::Failed(internal(p, pos))),
            Err(panic) => Outcome::Failed(internal(panic, pos)),
        };
        if super::job::video_cancelled(&outcome) {
            emit(seq, None);
            return None;
        }
        emit(seq, Some(entry(w, Some(meta), outcome)));
        return None;
    }
    Some(m)
}

/// A picture larger than a piece, read to its end at once with one-stream
/// hashers for the digests otherwise computed in lanes (so that a group
/// keeps one such picture at a time): its digests, or the read's failure;
/// `None` when cancelled.
fn alone(
    m: &mut Member<'_>,
    buf: &mut [u8],
    laned: AlgorithmSet,
    ctx: &JobContext<'_>,
) -> Option<Result<Digests, Failure>> {
    let mut one = MultiHasher::new(laned);
    one.update(m.piece.bytes(buf));
    loop {
        if ctx.cancel.is_cancelled() {
            return None;
        }
        match m.chunks.next(&*m.src, buf) {
            Ok(Some(p)) => {
                let bytes = p.bytes(buf);
                m.kept.take(bytes);
                m.hasher.update(bytes);
                one.update(bytes);
                let n = bytes.len() as u64;
                ctx.progress.0.bytes_done.fetch_add(n, Ordering::Relaxed);
            }
            Ok(None) => break,
            Err(f) => return Some(Err(f)),
        }
    }
    let hasher = std::mem::replace(&mut m.hasher, MultiHasher::new(AlgorithmSet::empty()));
    let mut digests = hasher.finalize();
    merge(&mut digests, one.finalize());
    Some(Ok(digests))
}

/// The member's next piece, read into `buf`; `Ok(None)` at its end. A
/// panic in the reader is the member's failure.
fn refill(m: &mut Member<'_>, buf: &mut [u8]) -> Result<Option<Piece>, Failure> {
    let pos = m.chunks.position();
    catch_unwind(AssertUnwindSafe(|| m.chunks.next(&*m.src, buf)))
        .unwrap_or_else(|panic| Err(internal(panic, pos)))
}

/// Adds the digests in `from` to `into`.
fn merge(into: &mut Digests, from: Digests) {
    for alg in from.algorithms().iter() {
        if let Some(d) = from.get(alg) {
            into.set(alg, d);
        }
    }
}

/// Records a member whose lane digests came out.
fn record(
    m: Member<'_>,
    laned: Digests,
    group: &mut [Option<(u64, Walked)>],
    ctx: &JobContext<'_>,
    emit: &mut dyn FnMut(u64, Option<Entry>),
) {
    let Some((seq, w)) = group[m.idx].take() else {
        return;
    };
    let Member {
        src,
        meta,
        chunks,
        kept,
        hasher,
        ..
    } = m;
    let pos = chunks.position();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut digests = hasher.finalize();
        merge(&mut digests, laned);
        finish(ctx, &w.path, &*src, kept, digests, pos)
    }))
    .unwrap_or_else(|p| Outcome::Failed(internal(p, pos)));
    if super::job::video_cancelled(&outcome) {
        emit(seq, None);
        return;
    }
    emit(seq, Some(entry(w, Some(meta), outcome)));
}
