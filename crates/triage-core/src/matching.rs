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
use crate::perceptual::video::VideoHashes;

/// Thresholds of near matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchConfig {
    /// Largest PDQ Hamming distance (of 256 bits) that is a match.
    pub pdq_distance: u32,
    /// PDQ hashes of lower quality are not near-matched.
    pub pdq_min_quality: u8,
    /// Largest pHash/dHash/aHash distance (of 64 bits) that is a match.
    pub img_distance: u32,
    /// Largest PDQ distance at which two video frames match. vPDQ's
    /// README and HMA's matcher count a frame at distance `<=` this; the
    /// C++ reference's own matcher uses `<` (so its 31 is 30 here). The
    /// README's rule is followed.
    pub video_distance: u32,
    /// Video frames of lower PDQ quality are left out on the scanned side
    /// (the known side's frames are filtered at import, at 50).
    pub video_min_quality: u8,
    /// A video matches a known one when at least this percentage of the
    /// known video's unique frames is matched (vPDQ's comparison threshold).
    pub video_known_percent: u8,
    /// … and at least this percentage of the scanned video's unique frames
    /// (vPDQ's query threshold; 0 lets a known clip match inside a longer
    /// video).
    pub video_query_percent: u8,
}

impl Default for MatchConfig {
    /// PDQ ≤ 31 at quality ≥ 50 (ThreatExchange's values); 64-bit hashes ≤ 6.
    fn default() -> Self {
        MatchConfig {
            pdq_distance: 31,
            pdq_min_quality: 50,
            img_distance: 6,
            video_distance: 31,
            video_min_quality: 50,
            video_known_percent: 80,
            video_query_percent: 0,
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
    /// For a video matched to a known video (`vpdq/1`): how much of each
    /// matched (boxed: most hits are not videos).
    pub video: Option<Box<VideoMatch>>,
}

/// How a scanned video matched a known one, by vPDQ's rule: both taken as
/// sets of unique frame hashes of quality at least the floor; a frame
/// matches when some frame of the other video is within the distance.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoMatch {
    /// Unique frames of the known video that some scanned frame matches.
    pub known_matched: u64,
    /// Unique frames of the known video (at import's quality floor).
    pub known_frames: u64,
    /// Unique frames of the scanned video that match some known frame.
    pub query_matched: u64,
    /// Unique frames of the scanned video at the quality floor.
    pub query_frames: u64,
    /// The scanned video's matched frames: frame number and timestamp (s).
    pub frames: Vec<(u64, f64)>,
}

// Timestamps are finite (see `perceptual::video`).
impl Eq for VideoMatch {}

impl VideoMatch {
    /// Percentage of the known video's frames matched.
    pub fn known_percent(&self) -> f64 {
        percent(self.known_matched, self.known_frames)
    }

    /// Percentage of the scanned video's frames matched.
    pub fn query_percent(&self) -> f64 {
        percent(self.query_matched, self.query_frames)
    }
}

fn percent(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
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
        if self.video_distance > MAX_PDQ_DISTANCE {
            return Err(MatcherError::Threshold(format!(
                "a video frame distance of {} is beyond {MAX_PDQ_DISTANCE} (half of 256 bits); the usual one is 31",
                self.video_distance
            )));
        }
        if self.video_min_quality > 100
            || self.video_known_percent > 100
            || self.video_query_percent > 100
        {
            return Err(MatcherError::Threshold(
                "video quality and percentages run from 0 to 100".to_string(),
            ));
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
                video: None,
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

impl Matcher {
    /// Every known video (`vpdq/1` entries) that `video` matches by vPDQ's
    /// rule (see [`VideoMatch`] and the thresholds in [`MatchConfig`]), in
    /// set order, then by the known video's match percentage (highest
    /// first), then record. Known frames are found through the set's
    /// multi-index tables, never by comparing every pair; the result equals
    /// [`Matcher::match_video_brute_force`].
    pub fn match_video(&self, video: &VideoHashes) -> Vec<Match> {
        self.match_video_with(video, false)
    }

    /// [`Matcher::match_video`] by comparing every scanned frame with every
    /// known frame: the oracle for tests and benchmarks.
    pub fn match_video_brute_force(&self, video: &VideoHashes) -> Vec<Match> {
        self.match_video_with(video, true)
    }

    fn match_video_with(&self, video: &VideoHashes, brute: bool) -> Vec<Match> {
        let c = self.config;
        // The scanned side: unique hashes at the quality floor, each with
        // its first frame.
        let mut query: Vec<&crate::perceptual::video::VideoFrame> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for f in &video.frames {
            if f.quality >= c.video_min_quality && seen.insert(f.hash) {
                query.push(f);
            }
        }
        let mut out = Vec::new();
        if query.is_empty() {
            return out;
        }
        for set in &self.sets {
            if set.meta().key_count(KeyAlg::Vpdq) == 0 {
                continue;
            }
            // Per known video: its scanned frames matched, its keys matched.
            let mut per: std::collections::BTreeMap<u32, (Vec<usize>, Vec<u32>, SetEntry<'_>)> =
                Default::default();
            for (qi, f) in query.iter().enumerate() {
                let q = f.hash.to_bytes();
                for (key, e, _) in set.near_keyed(KeyAlg::Vpdq, &q, c.video_distance, brute) {
                    let slot = per
                        .entry(e.record)
                        .or_insert_with(|| (Vec::new(), Vec::new(), e.clone()));
                    if slot.0.last() != Some(&qi) {
                        slot.0.push(qi);
                    }
                    slot.1.push(key);
                }
            }
            let meta = set.meta();
            let mut found = Vec::new();
            for (record, (qs, mut keys, e)) in per {
                keys.sort_unstable();
                keys.dedup();
                let known_frames = known_frame_count(e.info);
                let (kn, qn) = (keys.len() as u64, qs.len() as u64);
                let m = VideoMatch {
                    known_matched: kn,
                    known_frames,
                    query_matched: qn,
                    query_frames: query.len() as u64,
                    frames: qs
                        .iter()
                        .map(|&i| (query[i].frame, query[i].timestamp))
                        .collect(),
                };
                let enough = known_frames > 0
                    && kn * 100 >= c.video_known_percent as u64 * known_frames
                    && qn * 100 >= c.video_query_percent as u64 * query.len() as u64;
                if !enough {
                    continue;
                }
                found.push((
                    record,
                    Match {
                        set: meta.name.clone(),
                        kind: meta.kind,
                        alg: KeyAlg::Vpdq,
                        distance: None,
                        frame: None,
                        transform: None,
                        category: e.category,
                        source: meta
                            .sources
                            .get(e.source as usize)
                            .map(|s| s.file.clone())
                            .unwrap_or_default(),
                        at: e.locator,
                        entry: e.info.to_string(),
                        empty_file_digest: false,
                        video: Some(Box::new(m)),
                    },
                ));
            }
            found.sort_by(|(ra, a), (rb, b)| {
                let pa = a.video.as_ref().map_or(0.0, |v| v.known_percent());
                let pb = b.video.as_ref().map_or(0.0, |v| v.known_percent());
                pb.total_cmp(&pa).then(ra.cmp(rb))
            });
            out.extend(found.into_iter().map(|(_, m)| m));
        }
        out
    }
}

/// The unique frames a known video was imported with (`vpdq_frames` in
/// its entry's JSON); 0 when absent (it then never matches).
fn known_frame_count(info: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(info)
        .ok()
        .and_then(|v| v.get("vpdq_frames").and_then(|n| n.as_u64()))
        .unwrap_or(0)
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
