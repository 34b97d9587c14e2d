//! A mounted directory tree as a source: the walk ([`walk`]), the
//! read-only open ([`open`]; the bytes are then streamed by
//! [`crate::read`]), the I/O policy of the device it sits on ([`device`]),
//! and the system calls they make relative to directory descriptors
//! (`sys`). Nothing outside this folder hands an evidence path to the
//! kernel.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::item::{Failure, FileMeta};
use crate::path::RawPath;
use crate::source::tree::{ItemRef, Source, Tree, Walk};

pub mod device;
pub mod open;
pub(crate) mod sys;
pub mod walk;

use open::{DirTree, check_opened};
use walk::{RootError, WalkOptions, Walker};

/// A directory tree (or a single file) as a [`Tree`]: walked by
/// [`Walker`], items opened beneath the root by [`DirTree`].
pub struct DirSource {
    tree: DirTree,
    opts: WalkOptions,
    /// The walker made when the root was checked, for the first walk: the
    /// root is resolved once, not again when the scan starts.
    first: Mutex<Option<Walker>>,
    /// The root as given (a single file's path, not its parent's).
    given: PathBuf,
    root_abs: PathBuf,
    faults: Faults,
}

impl DirSource {
    /// Checks the root can be walked (see [`Walker::new`]).
    pub fn open(root: &Path, opts: WalkOptions, faults: Faults) -> Result<DirSource, RootError> {
        let walker = Walker::new(root, opts.clone())?;
        let root_abs = std::path::absolute(walker.root()).map_err(RootError::Stat)?;
        Ok(DirSource {
            tree: DirTree::open(walker.root()),
            opts,
            first: Mutex::new(Some(walker)),
            given: root.to_path_buf(),
            root_abs,
            faults,
        })
    }
}

/// A walk that could not start again (the root went away between two
/// walks): no items.
struct Gone;

impl Iterator for Gone {
    type Item = crate::source::Walked;
    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}

impl Walk for Gone {
    fn directories(&self) -> u64 {
        0
    }
}

impl Tree for DirSource {
    fn walk(&self) -> Box<dyn Walk + '_> {
        let first = self.first.lock().ok().and_then(|mut f| f.take());
        match first.map_or_else(|| Walker::new(&self.given, self.opts.clone()), Ok) {
            Ok(w) => Box::new(w),
            Err(_) => Box::new(Gone),
        }
    }

    fn count_walk(&self) -> Box<dyn Walk + '_> {
        // Link targets are not needed for counting: do not touch the links
        // (and their access times) twice.
        let opts = WalkOptions {
            no_link_targets: true,
            ..self.opts.clone()
        };
        match Walker::new(&self.given, opts) {
            Ok(w) => Box::new(w),
            Err(_) => Box::new(Gone),
        }
    }

    fn open(
        &self,
        item: ItemRef<'_>,
        preopened: Option<std::fs::File>,
    ) -> Result<(Box<dyn Source + '_>, FileMeta), Failure> {
        let (file, meta) = match preopened {
            Some(f) => check_opened(f, item.expect)?,
            None => {
                if let Some(hook) = &self.faults.before_open {
                    hook(&item.path.under(self.tree.root()));
                }
                self.tree.open_item(item.path, item.expect)?
            }
        };
        let src: Box<dyn Source> = match (&self.faults.source, file.try_clone()) {
            (Some(wrap), Ok(dup)) => wrap(item.path, dup),
            _ => Box::new(file),
        };
        Ok((src, meta))
    }

    fn root(&self) -> &Path {
        &self.root_abs
    }
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
