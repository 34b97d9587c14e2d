//! `triage-core`: find known material on seized evidence, and prove what was done.
//!
//! # Brief overview
//!
//! A scan is a pipeline of stages, one module each, in the order data flows;
//! [`item`] holds the vocabulary they share (kinds, metadata, skip and
//! failure reasons):
//!
//! 1. [`source`]: where items come from. Today a mounted tree
//!    ([`source::dir`]): [`walk`] gives every entry under the evidence root,
//!    once, in byte order of its path, never following links or opening
//!    pipes and devices; [`read`] opens read-only without touching access
//!    times, streams the bytes once, never past the size seen at open (holes
//!    in sparse files cost no I/O), and detects files that change underneath.
//! 3. [`hash`]: MD5, SHA-1, SHA-256 and BLAKE3 from that one read, the
//!    hashers of a large file split across two threads.
//! 4. [`identify`]: the content type from the leading bytes, and whether the
//!    name's extension fits it.
//! 5. [`hashset`] and [`matching`]: known-material lists imported once into
//!    an index that opens instantly; each file's digests looked up exactly,
//!    its PDQ and pHash by Hamming distance.
//! 6. [`record`]: one [`Entry`] per walked entry (hashed, skipped with a
//!    reason, or failed with the OS error), written as JSON Lines, CSV or
//!    hashdeep.
//!
//! [`scan`] ties the stages together: [`Scanner`] runs them on a thread pool
//! and hands entries to the caller in walk order, so two scans of the same
//! tree give the same records. [`device`] decides how many files to read at
//! once from what the evidence sits on. [`verify`] checks a log, [`report`]
//! writes it for other tools, [`resume`] continues a killed scan's log.
//!
//! The library never prints; progress is read from a [`Progress`] handle and
//! scans are stopped with a [`CancelHandle`].
//!
//! ```
//! use triage_core::{Scanner, ScanConfig, record::{OutputFormat, RecordWriter}};
//! # let dir = std::env::temp_dir().join(format!("triage-lib-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # std::fs::write(dir.join("photo.jpg"), b"\xFF\xD8\xFF\xE0 not really").unwrap();
//! let scanner = Scanner::new(ScanConfig::new(&dir))?;
//! let mut out = Vec::new();
//! let mut writer = OutputFormat::Jsonl.writer(&mut out, scanner.root());
//! writer.header(&scanner.header())?;
//! let summary = scanner.run(|entry| writer.entry(&entry))?;
//! writer.summary(&summary)?;
//! drop(writer);
//!
//! let text = String::from_utf8(out).unwrap();
//! assert_eq!(text.lines().count(), 3); // header, one file, summary
//! assert!(text.contains(r#""type":"jpeg""#));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// No panic reaches the user: outside tests, errors are values. Where a
// panic is impossible by construction the code says why, with an allow.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

pub mod expand;
pub(crate) mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
pub mod hashset;
pub mod identify;
pub mod item;
pub mod matching;
pub mod path;
pub mod perceptual;
pub mod read;
pub mod record;
pub mod report;
pub mod resume;
pub mod scan;
pub mod source;
pub mod time;
pub mod verify;

// The directory source's stages, at the paths they have always had.
pub use source::dir::{device, walk};

pub use hash::{Algorithm, AlgorithmSet, Digests, MultiHasher, hash_bytes};
pub use path::RawPath;
pub use record::{Entry, Failure, FailureKind, Hashed, Outcome, ScanHeader, SkipReason, Summary};
pub use scan::{CancelHandle, Progress, ProgressSnapshot, ScanConfig, ScanError, Scanner};
pub use time::Timestamp;
