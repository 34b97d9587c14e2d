//! The scan: walk → read → hash → record, in parallel, in a fixed order.
//!
//! Input: a [`ScanConfig`]. Output: one [`Entry`] per walked entry, handed
//! in walk order to the caller's sink on the caller's thread, then a
//! [`Summary`]. Per-entry problems become entries; only an unusable root, a
//! sink that cannot write, or cancellation end a scan early.
//!
//! Threads: the walk runs on its own thread and hands regular files to a
//! rayon pool; finished entries come back over a channel and are put back
//! into walk order before the sink sees them. Two semaphores bound the work:
//! the *window* (entries walked but not yet handed to the sink) bounds memory
//! whatever the tree's size, and *readers* bounds files read at once (1 on a
//! spinning disk). A thread with no file of its own steals half of another
//! file's hashing ([`crate::hash::MultiHasher::update_parallel`]), so one huge file still
//! uses every core.
//!
//! Where the CPU has SIMD lanes for a selected digest (MD5 with AVX2 or
//! AVX-512F, SHA-256 with AVX-512F), runs of walked files go to one job
//! together, a *lane group* (`lanes`): up to 16 files read side by side with
//! their MD5/SHA-256 computed in lanes. Files over a piece (256 KiB) join
//! groups only with two or more readers, as a group reads its files
//! interleaved; a group goes out when full, at the next file read alone, or
//! after 1,024 walk positions, so walk order and the window hold.
//!
//! By concern: `job` (one file: open, read, hash, sniff, picture, match),
//! `lanes` (a lane group),
//! `gate` (the bounds on work in flight), [`progress`](Progress) (counters
//! and cancellation), [`recorded`](Recorded) (paths a resumed scan skips); this
//! file holds the configuration, the scanner and its ordering loop.

use std::collections::BTreeMap;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use crate::hash::AlgorithmSet;
use crate::matching::Matcher;
use crate::perceptual::PerceptualConfig;
use crate::record::{Entry, HashSetUse, Outcome, ScanHeader, Summary};
use crate::source::dir::device::{DeviceInfo, IoPolicy};
use crate::source::dir::walk::{RootError, WalkOptions};
use crate::source::{Next, SourceOptions, Tree, Walked};
use crate::time::Timestamp;

mod children;
mod gate;
mod job;
mod lanes;
pub mod media;
mod progress;
mod recorded;
mod tune;

use gate::Gate;
use job::{JobContext, ReaderSlot, process_file};
pub use progress::{CancelHandle, Progress, ProgressSnapshot};
pub use recorded::Recorded;
use tune::Tuner;

/// Entries walked but not yet handed to the sink, at most. Bounds memory
/// (a few hundred bytes each) while letting small files flow past a big one.
const WINDOW: usize = 8192;
/// Files opened by the walk (deep paths) waiting to be read, at most.
const PREOPENED: usize = 256;

/// What to scan and how. Plain data; build it, then call [`Scanner::new`].
#[derive(Clone, Debug)]
pub struct ScanConfig {
    /// Evidence root: a directory, or a single regular file.
    pub root: PathBuf,
    /// Digests to compute for every regular file.
    pub algorithms: AlgorithmSet,
    /// Do not enter directories on other file systems.
    pub one_file_system: bool,
    /// Hashing threads; `None` = available CPUs.
    pub threads: Option<usize>,
    /// Files read at once; `None` = by device (1 on a spinning disk).
    pub readers: Option<usize>,
    /// Perceptual hashes for images (PDQ by default).
    pub perceptual: PerceptualConfig,
    /// Do not read symlink targets (see [`WalkOptions::no_link_targets`]).
    pub no_link_targets: bool,
    /// Walk the tree once more in the background to count files and bytes,
    /// so progress can show totals and an ETA. Costs one extra `lstat` per
    /// entry; off by default.
    pub count_totals: bool,
    /// A disk image given as the root is hashed as one file, not read
    /// through its partitions and file systems.
    pub image_as_file: bool,
    /// Read each file of a disk image whole, beside the scan, for its
    /// SHA-256 (the summary's `image_segments`). On by default: it is the
    /// record of which files were examined; it costs one more sequential
    /// read of the image and a SHA-256 pass (about a fifth of a 2-core
    /// machine's time on a raw image).
    pub hash_image_files: bool,
    /// Read a disk image's medium in order beside the scan for its MD5 and
    /// SHA-1, and compare them with the digests stored at acquisition (the
    /// summary's `image_verification`; what `triage verify-image` does).
    /// Off by default: one more full read of the medium.
    pub verify_image: bool,
    /// Hash sets to match every file against (none by default).
    pub matcher: Matcher,
    /// Which containers to look inside, and how far (all expanders, four
    /// levels, by default).
    pub expand: crate::expand::ExpandConfig,
    /// Paths an earlier, unfinished run already recorded (`--resume`):
    /// walked, but neither read again nor handed to the sink.
    pub recorded: Arc<Recorded>,
    /// Fault injection for tests (see [`Faults`]); empty in real scans.
    #[doc(hidden)]
    pub faults: Faults,
}

pub use crate::source::dir::{Faults, OpenHook, SourceHook};

impl ScanConfig {
    /// Defaults: all four digests, every file system, threads and readers by
    /// detection, no background count.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ScanConfig {
            root: root.into(),
            algorithms: AlgorithmSet::all(),
            one_file_system: false,
            threads: None,
            readers: None,
            perceptual: PerceptualConfig::default(),
            no_link_targets: false,
            count_totals: false,
            image_as_file: false,
            hash_image_files: true,
            verify_image: false,
            matcher: Matcher::default(),
            expand: crate::expand::ExpandConfig::default(),
            recorded: Arc::default(),
            faults: Faults::default(),
        }
    }
}

/// Why a scan could not run or finish.
#[derive(Debug)]
#[non_exhaustive]
pub enum ScanError {
    /// The root cannot be walked.
    Root(RootError),
    /// The sink failed (output disk full, pipe closed).
    Sink(io::Error),
    /// No thread pool could be started.
    Threads(String),
    /// No algorithm selected.
    NoAlgorithms,
    /// A hash set is damaged, or cannot be read: nothing was scanned.
    HashSet(crate::matching::MatcherError),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Root(e) => e.fmt(f),
            ScanError::Sink(e) => write!(f, "cannot write the scan records: {e}"),
            ScanError::Threads(e) => write!(f, "cannot start hashing threads: {e}"),
            ScanError::NoAlgorithms => f.write_str("no hash algorithm selected"),
            ScanError::HashSet(e) => e.fmt(f),
        }
    }
}

// The messages already include the underlying error (so that a plain
// `{}` says everything); `source` stays empty so a chain printer does not
// say it twice. `io_error` gives the OS error to callers that need it.
impl std::error::Error for ScanError {}

impl ScanError {
    /// The underlying I/O error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            ScanError::Sink(e) => Some(e),
            ScanError::Root(RootError::Stat(e) | RootError::List(e)) => Some(e),
            _ => None,
        }
    }
}

/// Adds to `algorithms` and `perceptual` what the sets of `matcher` have
/// entries of, so that no entry goes unchecked; returns the names added.
fn add_needed(
    matcher: &Matcher,
    algorithms: &mut AlgorithmSet,
    perceptual: &mut PerceptualConfig,
) -> Vec<&'static str> {
    use crate::hashset::KeyAlg;
    use crate::perceptual::ImgHashAlg;
    let mut added = Vec::new();
    for alg in matcher.algorithms() {
        if let Some(d) = alg.digest() {
            if !algorithms.contains(d) {
                *algorithms = algorithms.with(d);
                added.push(alg.name());
            }
        } else if alg == KeyAlg::Vpdq {
            if !perceptual.pdq || !perceptual.video.enabled {
                perceptual.pdq = true;
                perceptual.video.enabled = true;
                added.push(alg.name());
            }
        } else if alg == KeyAlg::Pdq {
            if !perceptual.pdq {
                perceptual.pdq = true;
                added.push(alg.name());
            }
        } else if let Some(img) = ImgHashAlg::from_tag(alg.name())
            && !perceptual.img_hashes.contains(&img)
        {
            perceptual.img_hashes.push(img);
            added.push(alg.name());
        }
    }
    added
}

/// Runs one scan. See the module doc for how the work is spread.
///
/// ```
/// use triage_core::{Scanner, ScanConfig, Outcome, Algorithm};
/// # let dir = std::env::temp_dir().join(format!("triage-scan-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.txt"), b"abc").unwrap();
///
/// let scanner = Scanner::new(ScanConfig::new(&dir)).unwrap();
/// let mut entries = Vec::new();
/// let summary = scanner.run(|e| { entries.push(e); Ok(()) }).unwrap();
///
/// assert_eq!(summary.files_hashed, 1);
/// let Outcome::Hashed(h) = &entries[0].outcome else { panic!() };
/// assert_eq!(h.digests.hex(Algorithm::Md5).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Scanner {
    config: ScanConfig,
    added: Vec<&'static str>,
    tree: Box<dyn Tree>,
    policy: IoPolicy,
    started: Timestamp,
    progress: Progress,
    cancel: CancelHandle,
    /// FFmpeg for videos, found once; or why there is none.
    decoder: Result<crate::perceptual::ffmpeg::Decoder, String>,
}

impl Scanner {
    /// Checks the root and detects the device, verifies every hash set in
    /// full (a damaged one is [`ScanError::HashSet`]), and adds to the
    /// digests and perceptual hashes whatever the sets have entries of
    /// (see [`Scanner::added_for_hashsets`]). No evidence is read yet.
    pub fn new(mut config: ScanConfig) -> Result<Scanner, ScanError> {
        if config.algorithms.is_empty() {
            return Err(ScanError::NoAlgorithms);
        }
        config.matcher.verify().map_err(ScanError::HashSet)?;
        let added = add_needed(
            &config.matcher,
            &mut config.algorithms,
            &mut config.perceptual,
        );
        let options = SourceOptions {
            walk: WalkOptions {
                one_file_system: config.one_file_system,
                no_link_targets: config.no_link_targets,
            },
            image_as_file: config.image_as_file,
            unallocated: config.expand.runs(crate::expand::Kind::Carve)
                && config.expand.max_depth > 0,
            faults: config.faults.clone(),
        };
        let tree = crate::source::open(&config.root, &options).map_err(ScanError::Root)?;
        let policy = IoPolicy::new(
            DeviceInfo::detect(tree.root()),
            config.threads,
            config.readers,
        );
        let decoder = if config.perceptual.pdq && config.perceptual.video.enabled {
            crate::perceptual::ffmpeg::Decoder::find()
        } else {
            Err("videos are not hashed in this scan".to_string())
        };
        Ok(Scanner {
            config,
            added,
            tree,
            policy,
            started: Timestamp::now(),
            progress: Progress::default(),
            cancel: CancelHandle::default(),
            decoder,
        })
    }

    /// The digests and perceptual hashes (by name: `md5`, `pdq`, `phash`…)
    /// that [`Scanner::new`] added because a hash set has entries of them.
    pub fn added_for_hashsets(&self) -> &[&'static str] {
        &self.added
    }

    /// The hash sets every file is matched against, verified.
    pub fn matcher(&self) -> &Matcher {
        &self.config.matcher
    }

    /// The directory record paths are relative to, absolute.
    pub fn root(&self) -> &Path {
        self.tree.root()
    }

    /// The threads and readers this scan will use, and why.
    pub fn policy(&self) -> &IoPolicy {
        &self.policy
    }

    /// What to write before the first entry.
    pub fn header(&self) -> ScanHeader {
        ScanHeader {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            root: self.tree.root().to_path_buf(),
            started: self.started,
            algorithms: self.config.algorithms,
            one_file_system: self.config.one_file_system,
            perceptual: self.config.perceptual.tags(),
            dihedral: self.config.perceptual.pdq && self.config.perceptual.dihedral,
            all_frames: self.config.perceptual.pdq && self.config.perceptual.all_frames,
            threads: self.policy.threads,
            readers: self.policy.readers,
            device: self.policy.describe(),
            read_only_mount: read_only_mount(self.tree.root()),
            link_targets: !self.config.no_link_targets,
            hashsets: self
                .config
                .matcher
                .sets()
                .iter()
                .map(|s| HashSetUse::of(s))
                .collect(),
            matching: self.config.matcher.config(),
            fast_decode: self.config.perceptual.fast_decode,
            video: (self.config.perceptual.pdq && self.config.perceptual.video.enabled).then(
                || {
                    crate::perceptual::video::VideoHeader::of(
                        &self.config.perceptual.video,
                        self.decoder
                            .as_ref()
                            .map(|d| d.version().to_string())
                            .map_err(Clone::clone),
                    )
                },
            ),
            expand: self.config.expand.clone(),
            run_id: crate::record::provenance::new_run_id(),
            case: None,
            host: crate::record::provenance::HostInfo::current(),
            build: crate::record::provenance::BuildInfo::current(),
            command_line: Vec::new(),
            checkpoints: Default::default(),
            signing_key: None,
            outputs: Vec::new(),
            image: self.tree.image(),
        }
    }

    /// A handle for reading progress while [`Scanner::run`] runs.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// A handle for stopping [`Scanner::run`] from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Scans, handing each entry to `sink` in walk order on this thread.
    /// Returns the totals, or the first sink error (which stops the scan).
    pub fn run<F>(self, mut sink: F) -> Result<Summary, ScanError>
    where
        F: FnMut(Entry) -> io::Result<()>,
    {
        let t0 = Instant::now();
        let Scanner {
            config,
            tree,
            policy,
            started,
            progress,
            cancel,
            decoder,
            ..
        } = self;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(policy.threads)
            .thread_name(|i| format!("triage-hash-{i}"))
            .build()
            .map_err(|e| ScanError::Threads(e.to_string()))?;
        let window = Gate::new(WINDOW);
        // At most `readers` files are read at once, a number the tuner
        // moves as it measures throughput (unless `--readers` fixed it).
        let tuner = Tuner::new(policy.readers, policy.threads, !policy.readers_overridden);
        let readers = Gate::new(tune::gate_depth(tuner.readers(), policy.threads));
        // Files the walk opened itself (paths too long to open by name) hold
        // a descriptor until read: bound them well under RLIMIT_NOFILE.
        let opened = Gate::new(PREOPENED);
        let finished = AtomicBool::new(false);
        let algorithms = config.algorithms;
        let mut summary = Summary {
            started: Some(started),
            ..Summary::default()
        };
        let mut sink_error = None;
        let (tx, rx) = mpsc::channel::<(u64, Out)>();
        let expand_total = crate::expand::Budget::scan_total(&config.expand.limits);

        let segments = if config.hash_image_files {
            tree.segments()
        } else {
            Vec::new()
        };
        let medium = if config.verify_image {
            tree.medium()
        } else {
            None
        };
        let (directories, image_segments, media_check, reads) = std::thread::scope(|s| {
            let tune_thread = {
                let (tuner, readers, progress, finished) = (&tuner, &readers, &progress, &finished);
                s.spawn(move || {
                    tuner.run(
                        || progress.0.bytes_done.load(Ordering::Relaxed),
                        || finished.load(Ordering::Relaxed),
                        |level| readers.set_max(tune::gate_depth(level, policy.threads)),
                    )
                })
            };
            if config.count_totals {
                let (progress, finished, tree) = (&progress, &finished, &*tree);
                s.spawn(move || count_totals(tree, progress, finished));
            }
            // A disk image's files, each read whole for its SHA-256 beside
            // the scan (the record of what was examined); stops on cancel.
            let segment_thread = (!segments.is_empty()).then(|| {
                let (segments, cancel) = (&segments, &cancel);
                s.spawn(move || {
                    segments
                        .iter()
                        .map(|p| crate::source::image::segment_sha256(p, &|| cancel.is_cancelled()))
                        .collect::<Vec<_>>()
                })
            });
            // The medium, read in order beside the scan for its MD5 and
            // SHA-1 (`--verify-image`); stops on cancel.
            let media_thread = medium.as_ref().map(|m| {
                let cancel = &cancel;
                s.spawn(move || media::verify_medium(m, &|_| {}, &|| cancel.is_cancelled()))
            });
            let walk_thread = s.spawn(|| {
                let (window, readers, cancel, opened) = (&window, &readers, &cancel, &opened);
                let ctx = &JobContext {
                    tree: &*tree,
                    algorithms,
                    perceptual: &config.perceptual,
                    matcher: &config.matcher,
                    progress: &progress,
                    cancel,
                    expand: &config.expand,
                    expand_total: expand_total.clone(),
                    root_is_file: tree.image().is_none() && config.root.is_file(),
                    decoder: &decoder,
                    video_workers: policy.threads,
                };
                let mut walker = tree.walk();
                let recorded = &config.recorded;
                pool.in_place_scope(|scope| {
                    let todo = walker
                        .by_ref()
                        .filter(|w| !recorded.skips(&w.path, w.location.as_ref()));
                    let mut grouping = Grouping::new(algorithms, &tuner);
                    let spawn_group = |files: Vec<(u64, Walked)>| {
                        readers.enter();
                        let tx = tx.clone();
                        scope.spawn(move |s| {
                            lanes::process_group(files, ctx, &mut |seq, e| {
                                // A group's files end one after another on
                                // one thread: a container among them is
                                // looked inside on a task of its own, so
                                // the members of many archives decode in
                                // parallel.
                                match e {
                                    Some(e) if children::is_container(&e, ctx) => {
                                        let tx = tx.clone();
                                        s.spawn(move |_| hand_over(seq, Some(e), ctx, &tx));
                                    }
                                    e => hand_over(seq, e, ctx, &tx),
                                }
                            });
                            readers.leave();
                        });
                    };
                    for (seq, w) in (0u64..).zip(todo) {
                        // A group waiting for more files holds back every
                        // entry after its first: hand it over well before
                        // the window fills.
                        if let Some(files) = grouping.flush_if_older(seq) {
                            spawn_group(files);
                        }
                        window.enter();
                        if cancel.is_cancelled() {
                            break;
                        }
                        match w.next {
                            Next::Done(outcome) => {
                                let e = Entry {
                                    path: w.path,
                                    meta: w.meta,
                                    location: w.location,
                                    within: None,
                                    outcome: outcome.into(),
                                };
                                let _ = tx.send((seq, Out::End(Some(e))));
                            }
                            Next::Read if grouping.takes(&w) => {
                                if let Some(files) = grouping.add(seq, w) {
                                    spawn_group(files);
                                }
                            }
                            Next::Read => {
                                // Files start in walk order: the group
                                // collected so far goes first.
                                if let Some(files) = grouping.flush() {
                                    spawn_group(files);
                                }
                                let holds_fd = w.file.is_some();
                                if holds_fd {
                                    opened.enter();
                                }
                                let slot = ReaderSlot::take(readers);
                                let tx = tx.clone();
                                scope.spawn(move |_| {
                                    let e = process_file(w, ctx, Some(&slot));
                                    slot.release();
                                    if holds_fd {
                                        opened.leave();
                                    }
                                    hand_over(seq, e, ctx, &tx);
                                });
                            }
                        }
                    }
                    if let Some(files) = grouping.flush() {
                        spawn_group(files);
                    }
                    drop(tx);
                });
                walker.directories()
            });

            // The sink side: restore walk order, hand over, release the window.
            let mut pending: BTreeMap<u64, Slot> = BTreeMap::new();
            let mut next = 0u64;
            let mut stopped = false;
            // The location of the walked item whose family is being written.
            let mut walked_at: Option<crate::item::Location> = None;
            // Wake-ups cost more than a small file: after a small batch, let
            // results pile up for a millisecond before blocking again.
            let mut batch = Vec::new();
            while let Ok(first) = rx.recv() {
                batch.push(first);
                batch.extend(rx.try_iter());
                let small = batch.len() < 64;
                for (seq, out) in batch.drain(..) {
                    let slot = pending.entry(seq).or_default();
                    match out {
                        Out::Part(e) => slot.entries.push_back(e),
                        Out::End(e) => {
                            slot.entries.extend(e);
                            slot.end = Some(false);
                        }
                        Out::Abandoned => slot.end = Some(true),
                    }
                    // An item's entries go out as they come while it is the
                    // next in walk order; the next item waits for its end.
                    while let Some(slot) = pending.get_mut(&next) {
                        let e = match slot.entries.pop_front() {
                            Some(e) => Some(e),
                            None => match slot.end {
                                None => break,
                                Some(abandoned) => {
                                    pending.remove(&next);
                                    next += 1;
                                    window.leave();
                                    if abandoned {
                                        stopped = true;
                                    }
                                    continue;
                                }
                            },
                        };
                        if let Some(e) = &e
                            && e.within.is_none()
                        {
                            walked_at = e.location.clone();
                        }
                        match e {
                            // A resumed scan's container cut off among its
                            // members: what the log has is not written twice
                            // (a member keyed with its walked item's location,
                            // as resume keys it).
                            Some(e)
                                if !config.recorded.is_empty()
                                    && config.recorded.contains(
                                        &e.path,
                                        if e.within.is_some() {
                                            walked_at.as_ref()
                                        } else {
                                            e.location.as_ref()
                                        },
                                    ) => {}
                            Some(e) if !stopped => {
                                summary.count(&e);
                                if matches!(e.outcome, Outcome::Failed(_)) {
                                    progress.0.failed.fetch_add(1, Ordering::Relaxed);
                                }
                                // Walked items, as the background count
                                // counts them (members are not in it).
                                if e.within.is_none() {
                                    progress.0.entries_done.fetch_add(1, Ordering::Relaxed);
                                }
                                // A panicking sink must not leave the walk waiting
                                // on the window forever: catch it, stop, drain.
                                let r = catch_unwind(AssertUnwindSafe(|| sink(e))).unwrap_or_else(
                                    |p| {
                                        Err(io::Error::other(format!(
                                            "the record writer panicked: {}",
                                            crate::item::panic_message(&*p)
                                        )))
                                    },
                                );
                                if let Err(err) = r {
                                    sink_error = Some(err);
                                    cancel.cancel();
                                    stopped = true;
                                }
                            }
                            // Abandoned by cancellation: nothing after it can be
                            // handed over without leaving a gap in walk order.
                            _ => stopped = true,
                        }
                    }
                }
                if small {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            finished.store(true, Ordering::Relaxed);
            // The walk thread catches every per-file panic, so a panic here is
            // a bug in the walk itself; propagate it rather than hide it.
            let dirs = match walk_thread.join() {
                Ok(d) => d,
                Err(p) => std::panic::resume_unwind(p),
            };
            let segs = match segment_thread.map(|t| t.join()) {
                None => Vec::new(),
                Some(Ok(v)) => v,
                Some(Err(p)) => std::panic::resume_unwind(p),
            };
            let check = match media_thread.map(|t| t.join()) {
                None => None,
                Some(Ok(v)) => v.map(|v| v.record()),
                Some(Err(p)) => std::panic::resume_unwind(p),
            };
            let reads = match tune_thread.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            };
            (dirs, segs, check, reads)
        });

        if let Some(e) = sink_error {
            return Err(ScanError::Sink(e));
        }
        summary.directories = directories;
        summary.image_segments = image_segments;
        summary.image_verification = media_check;
        summary.reads = Some(reads);
        summary.interrupted = cancel.is_cancelled();
        summary.finished = Some(Timestamp::now());
        summary.duration_secs = t0.elapsed().as_secs_f64();
        Ok(summary)
    }
}

/// What a job sends the sink for its item (by walk position): entries
/// as they are ready (the item's, then its members'), then its end.
enum Out {
    /// An entry, more of this item's to follow.
    Part(Entry),
    /// The item's last entry, or (`None`) no more.
    End(Option<Entry>),
    /// Given up on cancellation: nothing from here on is handed over.
    Abandoned,
}

/// An item's entries waiting for their turn in walk order, and whether
/// its job has ended (`Some(true)`: abandoned).
#[derive(Default)]
struct Slot {
    entries: std::collections::VecDeque<Entry>,
    end: Option<bool>,
}

/// Sends a file job's result: its entry and, for a container, its
/// members' entries after it ([`children`]); `None` (cancelled) abandons.
fn hand_over(seq: u64, e: Option<Entry>, ctx: &JobContext<'_>, tx: &mpsc::Sender<(u64, Out)>) {
    let Some(e) = e else {
        let _ = tx.send((seq, Out::Abandoned));
        return;
    };
    // Panics while looking inside are caught there, as entries.
    let last = children::expand(e, ctx, &mut |part| {
        let _ = tx.send((seq, Out::Part(part)));
    });
    let _ = tx.send((seq, Out::End(last)));
}

/// Walked files collected for a lane group ([`lanes`]): runs of files in
/// walk order, handed over when the lanes would be full, the group is
/// large, or its first file has waited long enough.
struct Grouping<'t> {
    /// Files grouped at all: a digest wanted is computed in lanes here.
    on: bool,
    /// Files larger than a piece may share lanes (read side by side) only
    /// while two or more files are read at once (a spinning disk reads one
    /// at a time).
    tuner: &'t Tuner,
    width: usize,
    files: Vec<(u64, Walked)>,
    big: usize,
    bytes: u64,
}

/// Files in one group at most: lanes stay full but for the last few.
const GROUP_FILES: usize = 256;
/// Bytes of small files in one group at most, so groups stay short jobs.
const GROUP_BYTES: u64 = 16 << 20;
/// Walk positions a group's first file may wait for the rest, at most;
/// well under [`WINDOW`].
const GROUP_SPAN: u64 = 1024;

impl<'t> Grouping<'t> {
    fn new(algorithms: AlgorithmSet, tuner: &'t Tuner) -> Grouping<'t> {
        Grouping {
            on: !lanes::in_lanes(algorithms).is_empty(),
            tuner,
            width: lanes::width(),
            files: Vec::new(),
            big: 0,
            bytes: 0,
        }
    }

    /// Whether `w` goes into a group (files the walk opened itself are read
    /// on their own, to give their descriptor back soon).
    fn takes(&self, w: &Walked) -> bool {
        self.on
            && w.file.is_none()
            && w.meta
                .as_ref()
                .is_some_and(|m| m.size <= lanes::PIECE as u64 || self.tuner.readers() >= 2)
    }

    /// Adds a file; the group when it is full.
    fn add(&mut self, seq: u64, w: Walked) -> Option<Vec<(u64, Walked)>> {
        let size = w.meta.as_ref().map_or(0, |m| m.size);
        if size > lanes::PIECE as u64 {
            self.big += 1;
        } else {
            self.bytes += size;
        }
        self.files.push((seq, w));
        (self.files.len() >= GROUP_FILES || self.big >= self.width || self.bytes >= GROUP_BYTES)
            .then(|| self.flush())
            .flatten()
    }

    /// The group if its first file was walked [`GROUP_SPAN`] or more
    /// positions before `seq`.
    fn flush_if_older(&mut self, seq: u64) -> Option<Vec<(u64, Walked)>> {
        let first = self.files.first()?.0;
        (seq - first >= GROUP_SPAN).then(|| self.flush()).flatten()
    }

    /// The files collected so far, if any.
    fn flush(&mut self) -> Option<Vec<(u64, Walked)>> {
        self.big = 0;
        self.bytes = 0;
        (!self.files.is_empty()).then(|| std::mem::take(&mut self.files))
    }
}

/// Whether `path` is on a read-only mount; `None` if `statvfs` fails.
pub fn read_only_mount(path: &Path) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_flag & libc::ST_RDONLY != 0)
}

/// Background count for progress totals; stops when the scan finishes.
fn count_totals(tree: &dyn Tree, progress: &Progress, finished: &AtomicBool) {
    for w in tree.count_walk() {
        if finished.load(Ordering::Relaxed) {
            return;
        }
        progress.0.counted_files.fetch_add(1, Ordering::Relaxed);
        if let (Next::Read, Some(m)) = (&w.next, &w.meta) {
            progress
                .0
                .counted_bytes
                .fetch_add(m.size, Ordering::Relaxed);
        }
    }
    progress.0.counting_done.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that panics ends the scan with an error instead of a hang or
    /// a crash, whatever the window holds.
    #[test]
    fn a_panicking_sink_is_an_error_not_a_hang() {
        let dir = std::env::temp_dir().join(format!("triage-scan-panic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..50 {
            std::fs::write(dir.join(format!("f{i}")), [i as u8; 100]).unwrap();
        }
        let scanner = Scanner::new(ScanConfig::new(&dir)).unwrap();
        let mut n = 0;
        let result = scanner.run(|_| {
            n += 1;
            if n == 3 {
                panic!("writer bug");
            }
            Ok(())
        });
        std::fs::remove_dir_all(&dir).unwrap();
        match result {
            Err(ScanError::Sink(e)) => assert!(e.to_string().contains("writer bug"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(n, 3);
    }
}
