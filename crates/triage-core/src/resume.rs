//! Resume: an unfinished audit log, checked and turned back into the scan
//! that wrote it.
//!
//! Input: the log (killed or interrupted), opened for reading and writing
//! and locked by the caller ([`crate::record::output::open_locked`]), and
//! the signing key given for it. Output: a [`Resumption`]: the verified
//! prefix's header and chain state, and a [`ScanConfig`] that does what the
//! first run did (same root, digests, perceptual hashes, thresholds, and
//! the very same hash sets, verified again and compared by BLAKE3), with
//! the paths already recorded to skip. The rules live here so that every
//! embedder resumes as the CLI does; the CLI only appends.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::PathBuf;
use std::sync::Arc;

use crate::hashset::{Index, IndexError};
use crate::matching::{Matcher, MatcherError};
use crate::perceptual::{ImgHashAlg, PerceptualConfig};
use crate::record::ScanHeader;
use crate::record::jsonl::{self, ChainState, Line};
use crate::record::seal::{PublicKey, SigningKey};
use crate::scan::{Recorded, ScanConfig};
use crate::verify::{Problem, Status, check_log};

/// Why a log cannot be resumed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResumeError {
    /// Reading the log failed.
    Io(io::Error),
    /// The log does not verify: nothing from `problem` on can be trusted.
    DoesNotVerify(Problem),
    /// The log has its footer: the scan finished.
    Finished,
    /// The log has no complete header.
    NoHeader,
    /// The log is signed with `want` and no key, or another key, was given.
    WrongKey {
        /// The key the header names (fingerprint).
        want: String,
        /// Whether a key was given at all.
        given: bool,
    },
    /// A key was given for a log that is not signed.
    NotSigned,
    /// A hash set the log names cannot be opened or is damaged.
    HashSet {
        /// The index file the header names.
        path: PathBuf,
        /// What is wrong with it.
        error: IndexError,
    },
    /// A hash set the log names has other content now.
    HashSetChanged {
        /// The index file.
        path: PathBuf,
        /// BLAKE3 the log recorded.
        then: String,
        /// BLAKE3 it has now.
        now: String,
    },
    /// The recorded sets cannot be matched together (two of one name…).
    Matcher(MatcherError),
    /// This build computes other perceptual hashes than the log's.
    Perceptual {
        /// The tags this build would write.
        ours: Vec<String>,
        /// The tags of the log.
        theirs: Vec<String>,
        /// The version that wrote the log.
        tool_version: String,
    },
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::Io(e) => write!(f, "cannot read the log: {e}"),
            ResumeError::DoesNotVerify(p) => {
                write!(f, "the log does not verify: {p}; it cannot be resumed")
            }
            ResumeError::Finished => {
                f.write_str("this is the log of a finished scan: there is nothing to resume")
            }
            ResumeError::NoHeader => {
                f.write_str("the log has no complete header: start a new scan")
            }
            ResumeError::WrongKey { want, given: true } => write!(
                f,
                "the log is signed with key {want}, and --sign-key is another key"
            ),
            ResumeError::WrongKey { want, given: false } => {
                write!(
                    f,
                    "the log is signed with key {want}: give it with --sign-key"
                )
            }
            ResumeError::NotSigned => {
                f.write_str("the log is not signed: drop --sign-key to resume it")
            }
            ResumeError::HashSet { path, error } => write!(
                f,
                "hash set '{}': {error}; the scan cannot be resumed with it",
                path.display()
            ),
            ResumeError::HashSetChanged { path, then, now } => write!(
                f,
                "hash set '{}' has changed since the scan started (BLAKE3 {then} then, {now} now): the resumed scan would match differently",
                path.display()
            ),
            ResumeError::Matcher(e) => e.fmt(f),
            ResumeError::Perceptual {
                ours,
                theirs,
                tool_version,
            } => write!(
                f,
                "this build computes perceptual hashes {ours:?}, the log has {theirs:?}: resume with the build that started the scan ({tool_version})"
            ),
        }
    }
}

impl std::error::Error for ResumeError {}

impl From<io::Error> for ResumeError {
    fn from(e: io::Error) -> Self {
        ResumeError::Io(e)
    }
}

impl ResumeError {
    /// Whether the log or a set is altered or damaged (as opposed to a
    /// request that cannot be met).
    pub fn is_integrity(&self) -> bool {
        match self {
            ResumeError::DoesNotVerify(_) => true,
            ResumeError::HashSet { error, .. } => matches!(
                error,
                IndexError::ContentMismatch { .. }
                    | IndexError::Corrupt(_)
                    | IndexError::WrongLength { .. }
            ),
            _ => false,
        }
    }
}

/// An unfinished log, checked, with the scan that continues it.
#[derive(Debug)]
pub struct Resumption {
    /// The header of the log.
    pub header: ScanHeader,
    /// The scan that continues it: the first run's options, its hash sets,
    /// and the paths already recorded. Threads and readers are left to
    /// the caller.
    pub config: ScanConfig,
    /// The chain after the last verified line (for `Writer::continuing`).
    pub state: ChainState,
    /// Bytes of the log that verify: the rest is an incomplete last line,
    /// to cut before appending.
    pub verified_bytes: u64,
    /// Bytes of that incomplete last line.
    pub partial_tail: u64,
}

/// Checks `log` (from its start) and rebuilds its scan; `key` is the
/// signing key given for it, which must be the header's. The file is only
/// read; the caller cuts it to [`Resumption::verified_bytes`] and appends.
///
/// ```no_run
/// use triage_core::record::output::open_locked;
/// use triage_core::{Scanner, ScanConfig};
/// let mut log = open_locked(std::path::Path::new("case.jsonl"))?;
/// let plan = triage_core::resume::resume(&mut log, None)?;
/// log.set_len(plan.verified_bytes)?;
/// let scanner = Scanner::new(ScanConfig { threads: Some(2), ..plan.config })?;
/// // … a `jsonl::Writer` continuing `plan.state` appends a resume record and the rest.
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resume(log: &mut File, key: Option<&SigningKey>) -> Result<Resumption, ResumeError> {
    log.rewind()?;
    let check = check_log(BufReader::new(&mut *log), None)?;
    let header = match (check.status(), &check.header) {
        (Status::Failed, _) => {
            return Err(ResumeError::DoesNotVerify(
                check.problem.clone().ok_or(ResumeError::NoHeader)?,
            ));
        }
        (Status::Complete, _) => return Err(ResumeError::Finished),
        (_, None) => return Err(ResumeError::NoHeader),
        (_, Some(h)) => h.clone(),
    };
    check_key(header.signing_key.as_ref(), key)?;

    let mut sets = Vec::new();
    for used in &header.hashsets {
        let set = Index::open_verified(&used.path).map_err(|error| ResumeError::HashSet {
            path: used.path.clone(),
            error,
        })?;
        let now = set.verified_hash().unwrap_or_default();
        if now != used.blake3 {
            return Err(ResumeError::HashSetChanged {
                path: used.path.clone(),
                then: used.blake3.clone(),
                now,
            });
        }
        sets.push(Arc::new(set));
    }
    let matcher = Matcher::new(sets, header.matching).map_err(ResumeError::Matcher)?;
    let perceptual = perceptual_of(&header)?;

    // The paths already recorded, from the verified prefix only.
    let mut recorded = Recorded::default();
    log.rewind()?;
    let prefix = BufReader::new(&mut *log).take(check.verified_bytes);
    // The last walked item, if it was looked inside: its members may have
    // been cut off.
    let mut last_container = None;
    // A member is keyed by its path and the location of the walked item
    // it is inside (members have none of their own): a deleted archive
    // and the one now bearing its name have members of the same paths.
    let mut walked_at: Option<crate::item::Location> = None;
    for line in jsonl::Reader::new(prefix) {
        if let Line::Entry(e) =
            line.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
        {
            if e.within.is_none() {
                walked_at = e.location.clone();
            }
            let at = if e.within.is_some() {
                walked_at.as_ref()
            } else {
                e.location.as_ref()
            };
            recorded.insert(&e.path, at);
            if e.within.is_none() {
                let expanded = matches!(&e.outcome, crate::record::Outcome::Hashed(h)
                    if matches!(h.expansion.as_deref(), Some(crate::item::Expansion::Expanded { .. })));
                last_container = expanded.then(|| (e.path.clone(), e.location.clone()));
            }
        }
    }
    if let Some((path, location)) = &last_container {
        recorded.set_partial(path, location.as_ref());
    }
    let config = ScanConfig {
        algorithms: header.algorithms,
        one_file_system: header.one_file_system,
        perceptual,
        no_link_targets: !header.link_targets,
        matcher,
        expand: header.expand.clone(),
        recorded: Arc::new(recorded),
        // A disk image scanned as one file stays one file.
        image_as_file: header.image.is_none() && header.root.is_file(),
        ..ScanConfig::new(&header.root)
    };
    Ok(Resumption {
        header,
        config,
        state: check.state.clone(),
        verified_bytes: check.verified_bytes,
        partial_tail: check.partial_tail,
    })
}

/// The key rule: a signed log goes on signed by the same key, an unsigned
/// one unsigned.
fn check_key(want: Option<&PublicKey>, given: Option<&SigningKey>) -> Result<(), ResumeError> {
    match (want, given) {
        (Some(w), Some(k)) if *w != k.public() => Err(ResumeError::WrongKey {
            want: w.fingerprint(),
            given: true,
        }),
        (Some(w), None) => Err(ResumeError::WrongKey {
            want: w.fingerprint(),
            given: false,
        }),
        (None, Some(_)) => Err(ResumeError::NotSigned),
        _ => Ok(()),
    }
}

/// The perceptual configuration the header describes, if this build
/// computes exactly those tags.
fn perceptual_of(header: &ScanHeader) -> Result<PerceptualConfig, ResumeError> {
    let mut p = PerceptualConfig::off();
    for tag in &header.perceptual {
        if tag.starts_with("pdq") {
            p.pdq = true;
        } else if let Some(alg) = ImgHashAlg::from_tag(tag) {
            p.img_hashes.push(alg);
        }
    }
    p.dihedral = header.dihedral;
    p.all_frames = header.all_frames;
    p.fast_decode = header.fast_decode;
    p.video = match &header.video {
        Some(v) => v.config.clone(),
        None => crate::perceptual::video::VideoConfig {
            enabled: false,
            ..Default::default()
        },
    };
    if p.tags() != header.perceptual {
        return Err(ResumeError::Perceptual {
            ours: p.tags(),
            theirs: header.perceptual.clone(),
            tool_version: header.tool_version.clone(),
        });
    }
    Ok(p)
}
