//! Match stage, part 2: a hashed file against the opened hash sets.
//!
//! Input: a file's digests and perceptual hashes (not its record: the
//! audit log depends on this stage, never the other way), and the [`Index`]es the
//! scan was given. Output: every [`Match`], in a fixed order (set, then
//! algorithm, then distance), each naming the set, the entry and where it
//! came from, how it matched (exact digest, or perceptual hash at a Hamming
//! distance, on which frame and rotation) and its category.
//!
//! Rules an examiner relies on:
//! - exact digests are looked up for every algorithm both the file and the
//!   set have;
//! - PDQ is matched within [`MatchConfig::pdq_distance`] (31, Meta's
//!   threshold), only when the file's PDQ quality is at least
//!   [`MatchConfig::pdq_min_quality`] (50): flat pictures have unreliable
//!   hashes. A skipped near match is reported, never silent;
//! - a perceptual hit is "similar, unverified" until a person looks: it is
//!   written with its distance, never as an exact match;
//! - a hit on the digest of an empty file is reported but flagged, and does
//!   not count as a find (such digests are in many lists by mistake);
//! - a known-good hit never hides an alert hit: all hits are written.

use std::sync::Arc;

use crate::hash::{Algorithm, Digests};
use crate::hashset::{Category, EntryFlags, Index, KeyAlg, SetEntry, SetKind};
use crate::perceptual::Perceptual;
use crate::perceptual::pdq::Dihedral;

/// Thresholds of near matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchConfig {
    /// Largest PDQ Hamming distance (of 256 bits) that is a match.
    pub pdq_distance: u32,
    /// PDQ hashes of lower quality are not near-matched.
    pub pdq_min_quality: u8,
    /// Largest pHash/dHash/aHash distance (of 64 bits) that is a match.
    pub img_distance: u32,
}

impl Default for MatchConfig {
    /// PDQ ≤ 31 at quality ≥ 50 (ThreatExchange's values); 64-bit hashes ≤ 6.
    fn default() -> Self {
        MatchConfig {
            pdq_distance: 31,
            pdq_min_quality: 50,
            img_distance: 6,
        }
    }
}

/// One hit of a file in a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The set's name.
    pub set: String,
    /// Alert or known-good.
    pub kind: SetKind,
    /// What matched: a digest (exact) or a perceptual hash (near).
    pub alg: KeyAlg,
    /// Hamming distance for perceptual hits; `None` for exact digests.
    pub distance: Option<u32>,
    /// The animation frame whose hash matched (`--all-frames`), if not the first.
    pub frame: Option<u32>,
    /// The rotation or mirror of the file's picture that matched (`--dihedral`), if not as stored.
    pub transform: Option<String>,
    /// The entry's category, if the set has them.
    pub category: Option<Category>,
    /// The set's source file the entry came from.
    pub source: String,
    /// Where in that file: line, element, row or record number.
    pub at: u64,
    /// What the list says about the entry (JSON object): name, MediaID, PhotoDNA…
    pub entry: String,
    /// The entry is the digest of an empty file: not counted as a find.
    pub empty_file_digest: bool,
}

impl Match {
    /// Whether this hit counts as finding known material: an alert set,
    /// and not an empty-file digest.
    pub fn is_find(&self) -> bool {
        self.kind == SetKind::Alert && !self.empty_file_digest
    }
}

/// Largest [`MatchConfig::pdq_distance`] accepted: half of PDQ's 256 bits.
/// Beyond it two unrelated pictures match more often than not.
pub const MAX_PDQ_DISTANCE: u32 = 128;
/// PDQ distances above this are accepted but should be warned about: ThreatExchange
/// calls 31 the match threshold, and unrelated pictures start near 64.
pub const PDQ_DISTANCE_WARN: u32 = 63;
/// Largest [`MatchConfig::img_distance`] accepted: half of the 64 bits.
pub const MAX_IMG_DISTANCE: u32 = 32;

impl MatchConfig {
    /// Checks the thresholds: a distance beyond half the hash's bits makes
    /// unrelated pictures match, so it is refused, not clamped.
    pub fn check(&self) -> Result<(), MatcherError> {
        if self.pdq_distance > MAX_PDQ_DISTANCE {
            return Err(MatcherError::Threshold(format!(
                "a PDQ distance of {} is beyond {MAX_PDQ_DISTANCE} (half of 256 bits), where unrelated pictures match; \
                 the usual threshold is 31",
                self.pdq_distance
            )));
        }
        if self.img_distance > MAX_IMG_DISTANCE {
            return Err(MatcherError::Threshold(format!(
                "a pHash/dHash/aHash distance of {} is beyond {MAX_IMG_DISTANCE} (half of 64 bits), where unrelated pictures match; \
                 the usual threshold is 6",
                self.img_distance
            )));
        }
        if self.pdq_min_quality > 100 {
            return Err(MatcherError::Threshold(format!(
                "a PDQ quality of {} is beyond 100, the highest there is",
                self.pdq_min_quality
            )));
        }
        Ok(())
    }
}

/// Why a [`Matcher`] cannot be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum MatcherError {
    /// A threshold is out of range (see [`MatchConfig::check`]).
    Threshold(String),
    /// The same set was given twice.
    Repeated(std::path::PathBuf),
    /// Two different sets have one name: their hits could not be told apart.
    SameName {
        /// The first set's file.
        first: std::path::PathBuf,
        /// The second set's file.
        second: std::path::PathBuf,
        /// The name both have.
        name: String,
    },
    /// A set could not be opened, or failed verification.
    Set {
        /// The index file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        error: crate::hashset::IndexError,
    },
}

impl std::fmt::Display for MatcherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatcherError::Threshold(m) => f.write_str(m),
            MatcherError::Repeated(p) => write!(f, "hash set '{}' is given twice", p.display()),
            MatcherError::SameName {
                first,
                second,
                name,
            } => write!(
                f,
                "'{}' and '{}' are both named '{name}': hits could not be told apart; re-import one with another --name",
                first.display(),
                second.display()
            ),
            MatcherError::Set { path, error } => {
                write!(f, "hash set '{}': {error}", path.display())
            }
        }
    }
}

impl std::error::Error for MatcherError {}

impl MatcherError {
    /// Whether the error says a set is damaged or altered (its content or
    /// structure), as opposed to a usage or I/O problem.
    pub fn is_integrity(&self) -> bool {
        use crate::hashset::IndexError as E;
        matches!(
            self,
            MatcherError::Set {
                error: E::ContentMismatch { .. } | E::Corrupt(_) | E::WrongLength { .. },
                ..
            }
        )
    }
}

/// The sets of a scan and the thresholds to match them with.
///
/// A scan verifies every set before it uses one ([`Index::verify`]) and
/// computes every digest and perceptual hash some set has entries of, so a
/// matcher cannot silently check less than its sets hold.
///
/// ```
/// use triage_core::matching::{MatchConfig, Matcher};
/// let none = Matcher::new(Vec::new(), MatchConfig::default()).unwrap();
/// assert!(none.is_empty());
/// let wild = MatchConfig { pdq_distance: 300, ..MatchConfig::default() };
/// assert!(Matcher::new(Vec::new(), wild).is_err());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    sets: Vec<Arc<Index>>,
    config: MatchConfig,
}

impl Matcher {
    /// A matcher over `sets`, checked in this order. Refuses thresholds out
    /// of range, a set given twice, and two sets with one name.
    pub fn new(sets: Vec<Arc<Index>>, config: MatchConfig) -> Result<Matcher, MatcherError> {
        config.check()?;
        for (i, set) in sets.iter().enumerate() {
            if let Some(other) = sets[..i].iter().find(|s| s.meta().name == set.meta().name) {
                return Err(if other.content_hash() == set.content_hash() {
                    MatcherError::Repeated(set.path().to_path_buf())
                } else {
                    MatcherError::SameName {
                        first: other.path().to_path_buf(),
                        second: set.path().to_path_buf(),
                        name: set.meta().name.clone(),
                    }
                });
            }
        }
        Ok(Matcher { sets, config })
    }

    /// Opens the indexes at `paths` and verifies each in full (see
    /// [`Index::open_verified`]), then builds the matcher.
    pub fn open(
        paths: &[impl AsRef<std::path::Path>],
        config: MatchConfig,
    ) -> Result<Matcher, MatcherError> {
        config.check()?;
        let mut sets = Vec::with_capacity(paths.len());
        for p in paths {
            let path = p.as_ref();
            let set = Index::open_verified(path).map_err(|error| MatcherError::Set {
                path: path.to_path_buf(),
                error,
            })?;
            sets.push(Arc::new(set));
        }
        Matcher::new(sets, config)
    }

    /// Verifies every set not yet verified; the first damaged one is the error.
    pub fn verify(&self) -> Result<(), MatcherError> {
        for set in &self.sets {
            set.verify().map_err(|error| MatcherError::Set {
                path: set.path().to_path_buf(),
                error,
            })?;
        }
        Ok(())
    }

    /// Entries over all sets (records).
    pub fn entries(&self) -> u64 {
        self.sets.iter().map(|s| s.meta().records).sum()
    }

    /// The sets, in order.
    pub fn sets(&self) -> &[Arc<Index>] {
        &self.sets
    }

    /// The thresholds.
    pub fn config(&self) -> MatchConfig {
        self.config
    }

    /// Whether there is anything to match against.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Key kinds some set has.
    pub fn algorithms(&self) -> Vec<KeyAlg> {
        let mut v: Vec<KeyAlg> = self.sets.iter().flat_map(|s| s.algorithms()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Every hit of a file with these digests and perceptual hashes, and
    /// why near matching was skipped, if it was.
    pub fn match_file(
        &self,
        digests: &Digests,
        perceptual: &[Perceptual],
    ) -> (Vec<Match>, Option<String>) {
        let mut out = Vec::new();
        let mut skipped = None;
        for set in &self.sets {
            let meta = set.meta();
            let make = |e: SetEntry<'_>, alg, distance, frame, transform: Option<Dihedral>| Match {
                set: meta.name.clone(),
                kind: meta.kind,
                alg,
                distance,
                frame,
                transform: transform.map(|t| t.name().to_string()),
                category: e.category,
                source: meta
                    .sources
                    .get(e.source as usize)
                    .map(|s| s.file.clone())
                    .unwrap_or_default(),
                at: e.locator,
                entry: e.info.to_string(),
                empty_file_digest: e.flags.has(EntryFlags::EMPTY_FILE),
            };
            for alg in Algorithm::ALL {
                if let Some(d) = digests.get(alg) {
                    let k = KeyAlg::from_digest(alg);
                    if let Some(e) = set.lookup(k, d) {
                        out.push(make(e, k, None, None, None));
                    }
                }
            }
            // Near hits, one per entry and algorithm: its smallest distance
            // over frames and rotations.
            let mut found: Vec<(u32, Match)> = Vec::new();
            for p in perceptual {
                match p {
                    Perceptual::Pdq {
                        hash,
                        quality,
                        dihedral,
                        frame,
                    } => {
                        if set.meta().key_count(KeyAlg::Pdq) == 0 {
                            continue;
                        }
                        if *quality < self.config.pdq_min_quality {
                            skipped = Some(format!(
                                "PDQ quality {quality} is under {}: not near-matched",
                                self.config.pdq_min_quality
                            ));
                            continue;
                        }
                        let mut queries = vec![(hash.to_bytes(), None)];
                        if let Some(d) = dihedral {
                            for (t, dh) in Dihedral::ALL.iter().zip(d.iter()).skip(1) {
                                queries.push((dh.to_bytes(), Some(*t)));
                            }
                        }
                        for (q, t) in queries {
                            for (e, dist) in set.near(KeyAlg::Pdq, &q, self.config.pdq_distance) {
                                let r = e.record;
                                keep(make(e, KeyAlg::Pdq, Some(dist), *frame, t), r, &mut found);
                            }
                        }
                    }
                    Perceptual::Img { alg, hash } => {
                        let Some(k) = KeyAlg::from_tag(alg.tag()) else {
                            continue;
                        };
                        for (e, dist) in set.near(k, hash, self.config.img_distance) {
                            let r = e.record;
                            keep(make(e, k, Some(dist), None, None), r, &mut found);
                        }
                    }
                }
            }
            found.sort_by_key(|(r, m)| (m.alg, m.distance, *r));
            out.extend(found.into_iter().map(|(_, m)| m));
        }
        (out, skipped)
    }
}

/// Keeps `m` unless `found` has a hit on the same entry by the same
/// algorithm at no greater distance.
fn keep(m: Match, record: u32, found: &mut Vec<(u32, Match)>) {
    match found
        .iter_mut()
        .find(|(r, x)| *r == record && x.alg == m.alg)
    {
        Some((_, x)) if x.distance <= m.distance => {}
        Some(slot) => slot.1 = m,
        None => found.push((record, m)),
    }
}

/// The most serious category among a file's alert hits, for summaries.
pub fn most_serious(matches: &[Match]) -> Option<Category> {
    worst(
        matches
            .iter()
            .filter(|m| m.is_find())
            .filter_map(|m| m.category),
    )
}

/// The most severe of `categories` (ties: the lower code).
pub(crate) fn worst(categories: impl Iterator<Item = Category>) -> Option<Category> {
    categories.max_by_key(|c| (c.scheme.severity(c.code), std::cmp::Reverse(c.code)))
}
