//! Match stage, part 2: a hashed file against the opened hash sets.
//!
//! Input: a file's digests and perceptual hashes, and the [`Index`]es the
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

use crate::hash::Algorithm;
use crate::hashset::{Category, EntryFlags, Index, KeyAlg, SetEntry, SetKind};
use crate::perceptual::Perceptual;
use crate::perceptual::pdq::Dihedral;
use crate::record::Hashed;

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

/// The sets of a scan and the thresholds to match them with.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    sets: Vec<Arc<Index>>,
    config: MatchConfig,
}

impl Matcher {
    /// A matcher over `sets`, checked in this order.
    pub fn new(sets: Vec<Arc<Index>>, config: MatchConfig) -> Matcher {
        Matcher { sets, config }
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

    /// Every hit of `h`, and why near matching was skipped, if it was.
    pub fn match_file(&self, h: &Hashed) -> (Vec<Match>, Option<String>) {
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
                if let Some(d) = h.digests.get(alg) {
                    let k = KeyAlg::from_digest(alg);
                    if let Some(e) = set.lookup(k, d) {
                        out.push(make(e, k, None, None, None));
                    }
                }
            }
            // Near hits, one per entry and algorithm: its smallest distance
            // over frames and rotations.
            let mut found: Vec<(u32, Match)> = Vec::new();
            for p in &h.perceptual {
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
