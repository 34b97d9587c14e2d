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
//! file's hashing ([`MultiHasher::update_parallel`]), so one huge file still
//! uses every core.

use std::collections::BTreeMap;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Instant;

use crate::hash::{AlgorithmSet, MultiHasher};
use crate::identify::{SNIFF_LEN, sniff};
use crate::item::{Failure, FailureKind, FileMeta, Stage};
use crate::matching::Matcher;
use crate::path::RawPath;
use crate::perceptual::decode::DecodeError;
use crate::perceptual::{ImageHashes, PerceptualConfig, perceptual_hashes};
use crate::record::{Entry, HashSetUse, Hashed, Outcome, ScanHeader, Summary};
use crate::source::dir::device::{DeviceInfo, IoPolicy};
use crate::source::dir::read::{Source, check_opened, looks_sparse, open_beneath, read_all};
use crate::source::dir::walk::{Next, RootError, WalkOptions, Walked, Walker};
use crate::time::Timestamp;

/// Entries walked but not yet handed to the sink, at most. Bounds memory
/// (a few hundred bytes each) while letting small files flow past a big one.
const WINDOW: usize = 8192;
/// Read size. Measured (benches/README.md): large enough that syscall cost
/// vanishes next to hashing, small enough to stay in L2 between hashers.
const READ_LEN: usize = 1024 * 1024;
/// Files opened by the walk (deep paths) waiting to be read, at most.
const PREOPENED: usize = 256;
/// Files at least this large have their hashers split across two threads.
const PARALLEL_MIN: u64 = 4 * 1024 * 1024;

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
    /// Hash sets to match every file against (none by default).
    pub matcher: Matcher,
    /// Paths an earlier, unfinished run already recorded (`--resume`):
    /// walked, but neither read again nor handed to the sink.
    pub recorded: Arc<Recorded>,
    /// Fault injection for tests (see [`Faults`]); empty in real scans.
    #[doc(hidden)]
    pub faults: Faults,
}

/// Fault injection, for tests of what the scan records when the evidence
/// changes under it or the disk fails: a hook between the walk and the
/// open (to delete or replace the file: TOCTOU), and a wrapper around the
/// opened file (to return EIO at an offset, short reads, EINTR, or to
/// shrink or grow the file mid-read).
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct Faults {
    /// Called with the absolute path just before the file is opened.
    pub before_open: Option<OpenHook>,
    /// Wraps (a duplicate descriptor of) each opened file; the reader reads
    /// through what it returns.
    pub source: Option<SourceHook>,
}

/// See [`Faults::before_open`].
pub type OpenHook = Arc<dyn Fn(&Path) + Send + Sync>;

/// See [`Faults::source`].
pub type SourceHook = Arc<dyn Fn(&RawPath, std::fs::File) -> Box<dyn Source> + Send + Sync>;

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("before_open", &self.before_open.is_some())
            .field("source", &self.source.is_some())
            .finish()
    }
}

/// A set of entry paths, kept as 128-bit BLAKE3 prefixes so a million
/// paths cost 16 MB however long they are. A collision (odds about
/// n²/2¹²⁹) would make a resumed scan skip one unrecorded path.
#[derive(Clone, Debug, Default)]
pub struct Recorded(std::collections::HashSet<[u8; 16]>);

impl Recorded {
    fn key(path: &RawPath) -> [u8; 16] {
        let h = blake3::hash(path.as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.as_bytes()[..16]);
        k
    }

    /// Adds a path.
    pub fn insert(&mut self, path: &RawPath) {
        self.0.insert(Self::key(path));
    }

    /// Whether a path was added.
    pub fn contains(&self, path: &RawPath) -> bool {
        !self.0.is_empty() && self.0.contains(&Self::key(path))
    }

    /// Paths added.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none were added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

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
            matcher: Matcher::default(),
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

/// Live counters of a running scan; clone it, and read it from any thread
/// with [`Progress::snapshot`]. Updating costs an atomic add per read chunk.
#[derive(Clone, Default)]
pub struct Progress(Arc<ProgressInner>);

#[derive(Default)]
struct ProgressInner {
    entries_done: AtomicU64,
    bytes_done: AtomicU64,
    failed: AtomicU64,
    counted_files: AtomicU64,
    counted_bytes: AtomicU64,
    counting_done: AtomicBool,
    current: Mutex<RawPath>,
}

/// A reading of [`Progress`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// Entries handed to the sink.
    pub entries_done: u64,
    /// Bytes read and hashed so far (partial files included).
    pub bytes_done: u64,
    /// Entries that failed so far.
    pub failed: u64,
    /// Entries found by the background count (see [`ScanConfig::count_totals`]).
    pub total_entries: u64,
    /// Bytes of regular files found by the background count.
    pub total_bytes: u64,
    /// Whether the background count has finished, so the totals are final.
    pub totals_final: bool,
    /// The file most recently started.
    pub current: RawPath,
}

impl Progress {
    /// The current counters.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let p = &self.0;
        ProgressSnapshot {
            entries_done: p.entries_done.load(Ordering::Relaxed),
            bytes_done: p.bytes_done.load(Ordering::Relaxed),
            failed: p.failed.load(Ordering::Relaxed),
            total_entries: p.counted_files.load(Ordering::Relaxed),
            total_bytes: p.counted_bytes.load(Ordering::Relaxed),
            totals_final: p.counting_done.load(Ordering::Relaxed),
            current: p.current.lock().map(|c| c.clone()).unwrap_or_default(),
        }
    }
}

/// Stops a running scan from another thread (a Ctrl-C handler, a GUI
/// button). The scan finishes the entries it can hand over in order, then
/// returns a [`Summary`] with `interrupted` set.
#[derive(Clone, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// Asks the scan to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A bound on work in flight, with hysteresis: a producer that hits the
/// bound sleeps until the count falls to `resume_at`, so with a deep bound it
/// wakes once per many completions instead of once per file (a wake-up costs
/// more than hashing a small file). Completions signal only when a producer
/// is actually waiting.
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
    max: usize,
    resume_at: usize,
}

struct GateState {
    in_flight: usize,
    waiting: bool,
}

impl Gate {
    fn new(max: usize) -> Self {
        let max = max.max(1);
        Gate {
            state: Mutex::new(GateState {
                in_flight: 0,
                waiting: false,
            }),
            cv: Condvar::new(),
            max,
            resume_at: if max >= 8 { max / 2 } else { max - 1 },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot, waiting (with hysteresis) when all are taken.
    fn enter(&self) {
        let mut st = self.lock();
        if st.in_flight >= self.max {
            st.waiting = true;
            while st.in_flight > self.resume_at {
                st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.waiting = false;
        }
        st.in_flight += 1;
    }

    /// Gives a slot back.
    fn leave(&self) {
        let mut st = self.lock();
        st.in_flight -= 1;
        if st.waiting && st.in_flight <= self.resume_at {
            drop(st);
            self.cv.notify_one();
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
    walker: Walker,
    policy: IoPolicy,
    root_abs: PathBuf,
    started: Timestamp,
    progress: Progress,
    cancel: CancelHandle,
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
        let walker = Walker::new(
            &config.root,
            WalkOptions {
                one_file_system: config.one_file_system,
                no_link_targets: config.no_link_targets,
            },
        )
        .map_err(ScanError::Root)?;
        let root_abs =
            std::path::absolute(walker.root()).map_err(|e| ScanError::Root(RootError::Stat(e)))?;
        let policy = IoPolicy::new(
            DeviceInfo::detect(&root_abs),
            config.threads,
            config.readers,
        );
        Ok(Scanner {
            config,
            added,
            walker,
            policy,
            root_abs,
            started: Timestamp::now(),
            progress: Progress::default(),
            cancel: CancelHandle::default(),
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
        &self.root_abs
    }

    /// The threads and readers this scan will use, and why.
    pub fn policy(&self) -> &IoPolicy {
        &self.policy
    }

    /// What to write before the first entry.
    pub fn header(&self) -> ScanHeader {
        ScanHeader {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            root: self.root_abs.clone(),
            started: self.started,
            algorithms: self.config.algorithms,
            one_file_system: self.config.one_file_system,
            perceptual: self.config.perceptual.tags(),
            dihedral: self.config.perceptual.pdq && self.config.perceptual.dihedral,
            all_frames: self.config.perceptual.pdq && self.config.perceptual.all_frames,
            threads: self.policy.threads,
            readers: self.policy.readers,
            device: self.policy.describe(),
            read_only_mount: read_only_mount(&self.root_abs),
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
            run_id: crate::record::provenance::new_run_id(),
            case: None,
            host: crate::record::provenance::HostInfo::current(),
            build: crate::record::provenance::BuildInfo::current(),
            command_line: Vec::new(),
            checkpoints: Default::default(),
            signing_key: None,
            outputs: Vec::new(),
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
            walker,
            policy,
            started,
            progress,
            cancel,
            ..
        } = self;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(policy.threads)
            .thread_name(|i| format!("triage-hash-{i}"))
            .build()
            .map_err(|e| ScanError::Threads(e.to_string()))?;
        let root = walker.root().to_path_buf();
        let root_fd = crate::source::dir::read::open_root(&root);
        let window = Gate::new(WINDOW);
        // At most `readers` files are read at once. The pool already runs at
        // most `threads` jobs, so when readers >= threads the bound only needs
        // to keep the queue fed: make it deep, so the walker rarely waits.
        let in_flight = if policy.readers < policy.threads {
            policy.readers
        } else {
            policy.readers * 16
        };
        let readers = Gate::new(in_flight);
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
        let (tx, rx) = mpsc::channel::<(u64, Option<Entry>)>();

        let directories = std::thread::scope(|s| {
            if config.count_totals {
                let (progress, finished, config) = (&progress, &finished, &config);
                s.spawn(move || count_totals(config, progress, finished));
            }
            let walk_thread = s.spawn(|| {
                let (window, readers, cancel, opened) = (&window, &readers, &cancel, &opened);
                let ctx = &JobContext {
                    root: &root,
                    root_fd: root_fd.as_ref(),
                    algorithms,
                    perceptual: &config.perceptual,
                    matcher: &config.matcher,
                    progress: &progress,
                    cancel,
                    faults: &config.faults,
                };
                let mut walker = walker;
                let recorded = &config.recorded;
                pool.in_place_scope(|scope| {
                    let todo = walker.by_ref().filter(|w| !recorded.contains(&w.path));
                    for (seq, w) in (0u64..).zip(todo) {
                        window.enter();
                        if cancel.is_cancelled() {
                            break;
                        }
                        match w.next {
                            Next::Done(outcome) => {
                                let e = Entry {
                                    path: w.path,
                                    meta: w.meta,
                                    outcome: outcome.into(),
                                };
                                let _ = tx.send((seq, Some(e)));
                            }
                            Next::Read => {
                                let holds_fd = w.file.is_some();
                                if holds_fd {
                                    opened.enter();
                                }
                                readers.enter();
                                let tx = tx.clone();
                                scope.spawn(move |_| {
                                    let e = process_file(w, ctx);
                                    readers.leave();
                                    if holds_fd {
                                        opened.leave();
                                    }
                                    let _ = tx.send((seq, e));
                                });
                            }
                        }
                    }
                    drop(tx);
                });
                walker.directories()
            });

            // The sink side: restore walk order, hand over, release the window.
            let mut pending: BTreeMap<u64, Option<Entry>> = BTreeMap::new();
            let mut next = 0u64;
            let mut stopped = false;
            // Wake-ups cost more than a small file: after a small batch, let
            // results pile up for a millisecond before blocking again.
            let mut batch = Vec::new();
            while let Ok(first) = rx.recv() {
                batch.push(first);
                batch.extend(rx.try_iter());
                let small = batch.len() < 64;
                for (seq, e) in batch.drain(..) {
                    pending.insert(seq, e);
                    while let Some(e) = pending.remove(&next) {
                        next += 1;
                        window.leave();
                        match e {
                            Some(e) if !stopped => {
                                summary.count(&e);
                                if matches!(e.outcome, Outcome::Failed(_)) {
                                    progress.0.failed.fetch_add(1, Ordering::Relaxed);
                                }
                                progress.0.entries_done.fetch_add(1, Ordering::Relaxed);
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
            match walk_thread.join() {
                Ok(d) => d,
                Err(p) => std::panic::resume_unwind(p),
            }
        });

        if let Some(e) = sink_error {
            return Err(ScanError::Sink(e));
        }
        summary.directories = directories;
        summary.interrupted = cancel.is_cancelled();
        summary.finished = Some(Timestamp::now());
        summary.duration_secs = t0.elapsed().as_secs_f64();
        Ok(summary)
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
fn count_totals(config: &ScanConfig, progress: &Progress, finished: &AtomicBool) {
    // Link targets are not needed for counting; do not touch the links twice.
    let opts = WalkOptions {
        one_file_system: config.one_file_system,
        no_link_targets: true,
    };
    let Ok(walker) = Walker::new(&config.root, opts) else {
        return;
    };
    for w in walker {
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

/// What every file job needs, shared by reference.
struct JobContext<'a> {
    root: &'a Path,
    root_fd: Option<&'a std::os::fd::OwnedFd>,
    algorithms: AlgorithmSet,
    perceptual: &'a PerceptualConfig,
    matcher: &'a Matcher,
    progress: &'a Progress,
    cancel: &'a CancelHandle,
    faults: &'a Faults,
}

thread_local! {
    /// Read buffers of this thread. A pool, not one buffer: while waiting in
    /// a rayon join, a thread may run another file's job on the same stack.
    static BUFFERS: std::cell::RefCell<Vec<Box<[u8]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads and hashes one regular file. `None` when cancelled mid-file.
fn process_file(w: Walked, ctx: &JobContext<'_>) -> Option<Entry> {
    let (progress, cancel) = (ctx.progress, ctx.cancel);
    if cancel.is_cancelled() {
        return None;
    }
    if let Ok(mut c) = progress.0.current.lock() {
        c.clone_from(&w.path);
    }
    let path = w.path;
    let walk_meta = w.meta;
    let preopened = w.file;
    let result = catch_unwind(AssertUnwindSafe(|| {
        hash_file(&path, walk_meta.as_ref(), preopened, ctx)
    }));
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
        outcome,
    })
}

/// Open, read, hash, identify. Returns the metadata to record (from `fstat`
/// at open when the file was opened, as that is what was read) and the
/// outcome; `None` when cancelled mid-read.
fn hash_file(
    path: &RawPath,
    walk_meta: Option<&FileMeta>,
    preopened: Option<std::fs::File>,
    ctx: &JobContext<'_>,
) -> Option<(Option<FileMeta>, Outcome)> {
    let (progress, cancel) = (ctx.progress, ctx.cancel);
    let expect = walk_meta.map(|m| (m.dev, m.ino));
    let opened = match preopened {
        Some(f) => check_opened(f, expect),
        None => {
            if let Some(hook) = &ctx.faults.before_open {
                hook(&path.under(ctx.root));
            }
            open_beneath(ctx.root_fd, ctx.root, path, expect)
        }
    };
    let (file, meta) = match opened {
        Ok(r) => r,
        Err(f) => return Some((walk_meta.cloned(), Outcome::Failed(f))),
    };
    let mut hasher = MultiHasher::new(ctx.algorithms);
    // Images are kept whole for decoding, decided on the first chunk;
    // `None` until then, `Some(empty)` and unused for other files.
    let want_image = ctx.perceptual.enabled() && meta.size <= ctx.perceptual.max_file_bytes;
    let mut image: Option<Vec<u8>> = None;
    let parallel = meta.size >= PARALLEL_MIN;
    let mut head = Vec::with_capacity(SNIFF_LEN.min(meta.size as usize));
    let take = || {
        BUFFERS
            .with(|b| b.borrow_mut().pop())
            .unwrap_or_else(|| vec![0u8; READ_LEN].into_boxed_slice())
    };
    let (mut buf_a, mut buf_b) = (take(), take());
    let mut file = file;
    let mut faulty = match (&ctx.faults.source, file.try_clone()) {
        (Some(wrap), Ok(dup)) => Some(wrap(path, dup)),
        _ => None,
    };
    let src: &mut dyn Source = match &mut faulty {
        Some(s) => &mut **s,
        None => &mut file,
    };
    let bufs = [&mut buf_a[..], &mut buf_b[..]];
    let sparse = looks_sparse(&meta);
    let result = read_all(src, meta.size, sparse, bufs, &mut |chunk, prefetch| {
        // Checked per chunk, holes included, so a long file stops at once.
        if cancel.is_cancelled() {
            return Err(io::Error::other("scan cancelled"));
        }
        if head.len() < SNIFF_LEN {
            let take = chunk.len().min(SNIFF_LEN - head.len());
            head.extend_from_slice(&chunk[..take]);
        }
        let keep = image.get_or_insert_with(|| {
            if want_image && sniff(&head, meta.size).is_image() {
                Vec::with_capacity(meta.size as usize)
            } else {
                Vec::new()
            }
        });
        if keep.capacity() > 0 {
            keep.extend_from_slice(chunk);
        }
        if parallel {
            // The next read runs beside the lighter hashers.
            hasher.update_parallel_with(chunk, prefetch);
        } else {
            hasher.update(chunk);
        }
        let n = chunk.len() as u64;
        progress.0.bytes_done.fetch_add(n, Ordering::Relaxed);
        Ok(())
    });
    BUFFERS.with(|b| b.borrow_mut().extend([buf_a, buf_b]));
    if cancel.is_cancelled() && result.is_err() {
        return None;
    }
    let outcome = match result {
        Err(f) => Outcome::Failed(f),
        Ok(bytes_read) => {
            let file_type = sniff(&head, bytes_read);
            let (images, perceptual_error) = if !ctx.perceptual.enabled() || !file_type.is_image() {
                (ImageHashes::default(), None)
            } else if meta.size > ctx.perceptual.max_file_bytes {
                let detail = format!(
                    "file of {} bytes is over the {}-byte limit for decoding",
                    meta.size, ctx.perceptual.max_file_bytes
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
                    _ => reread(&file, bytes_read),
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
            let mut hashed = Hashed {
                digests: hasher.finalize(),
                bytes_read,
                file_type,
                ext_mismatch: file_type.ext_mismatch(path.extension()),
                empty: bytes_read == 0,
                perceptual: images.hashes,
                image: images.info,
                perceptual_error,
                matches: Vec::new(),
                near_skipped: None,
            };
            if !ctx.matcher.is_empty() {
                (hashed.matches, hashed.near_skipped) =
                    ctx.matcher.match_file(&hashed.digests, &hashed.perceptual);
            }
            Outcome::Hashed(hashed)
        }
    };
    Some((Some(meta), outcome))
}

/// The whole file again, for the rare image whose first read was too short
/// to recognise it.
fn reread(file: &std::fs::File, len: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut v = vec![0u8; len as usize];
    file.read_exact_at(&mut v, 0)?;
    Ok(v)
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
