//! Progress and cancellation: live counters any thread can read, and the
//! handle that stops a running scan.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::path::RawPath;

/// Live counters of a running scan; clone it, and read it from any thread
/// with [`Progress::snapshot`]. Updating costs an atomic add per read chunk.
#[derive(Clone, Default)]
pub struct Progress(pub(super) Arc<ProgressInner>);

#[derive(Default)]
pub(super) struct ProgressInner {
    pub(super) entries_done: AtomicU64,
    pub(super) bytes_done: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) counted_files: AtomicU64,
    pub(super) counted_bytes: AtomicU64,
    pub(super) counting_done: AtomicBool,
    pub(super) current: Mutex<RawPath>,
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
    /// Entries found by the background count (see [`super::ScanConfig::count_totals`]).
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
/// returns a [`crate::Summary`] with `interrupted` set.
#[derive(Clone, Default)]
pub struct CancelHandle(pub(super) Arc<AtomicBool>);

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
