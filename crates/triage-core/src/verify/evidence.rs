//! Re-hash an evidence tree and compare it with a log, in hashdeep's audit terms.
//!
//! Every file the log recorded as hashed is *known*. After re-hashing the
//! tree with the log's algorithms (no perceptual hashes, no matching):
//! a known path with the same digests is **matched**, with other digests
//! **changed**; a path the log does not know whose content equals a known
//! file that is gone from its own path is **moved**; other unknown files
//! are **new**; known paths not found are **missing**. Files the log could
//! not read but which hash now are **previously unread**, and files that
//! cannot be read now are **failed**.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use crate::hash::{AlgorithmSet, Digests};
use crate::path::RawPath;
use crate::perceptual::PerceptualConfig;
use crate::record::jsonl::{Line, Reader};
use crate::record::{Outcome, ScanHeader};
use crate::scan::{ScanConfig, ScanError, Scanner};

/// The comparison of an evidence tree with a log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvidenceAudit {
    /// Files at their recorded path with their recorded digests.
    pub matched: u64,
    /// Files at their recorded path with other digests.
    pub changed: Vec<RawPath>,
    /// Known content found at a new path, its recorded path gone: (from, to).
    pub moved: Vec<(RawPath, RawPath)>,
    /// Recorded files not found.
    pub missing: Vec<RawPath>,
    /// Files the log does not know.
    pub new: Vec<RawPath>,
    /// Files the log recorded as skipped or failed that hash now.
    pub previously_unread: Vec<RawPath>,
    /// Files that could not be read now, with the reason.
    pub failed: Vec<(RawPath, String)>,
}

impl EvidenceAudit {
    /// Whether the evidence is exactly as the log recorded it.
    pub fn unchanged(&self) -> bool {
        self.changed.is_empty()
            && self.moved.is_empty()
            && self.missing.is_empty()
            && self.new.is_empty()
            && self.previously_unread.is_empty()
            && self.failed.is_empty()
    }
}

/// Why the audit could not run.
#[derive(Debug)]
pub enum AuditError {
    /// The log could not be read back.
    Log(String),
    /// The evidence could not be scanned.
    Scan(ScanError),
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditError::Log(m) => write!(f, "the log cannot be read: {m}"),
            AuditError::Scan(e) => write!(f, "the evidence cannot be scanned: {e}"),
        }
    }
}

impl std::error::Error for AuditError {}

/// Re-hashes `root` and compares it with the records of `log` (which should
/// have been checked with [`super::check_log`] first).
pub fn audit_evidence<R: BufRead>(
    log: R,
    root: &Path,
    threads: Option<usize>,
) -> Result<EvidenceAudit, AuditError> {
    let mut header: Option<ScanHeader> = None;
    let mut known: HashMap<RawPath, Digests> = HashMap::new();
    let mut unread: std::collections::HashSet<RawPath> = Default::default();
    for line in Reader::new(log) {
        match line.map_err(|e| AuditError::Log(e.to_string()))? {
            Line::Header(h) => header = Some(h),
            Line::Entry(e) => match e.outcome {
                Outcome::Hashed(ref h) => {
                    known.insert(key(&e), h.digests.clone());
                }
                Outcome::Failed(_) => {
                    unread.insert(key(&e));
                }
                Outcome::Skipped(_) => {}
            },
            _ => {}
        }
    }
    let header = header.ok_or_else(|| AuditError::Log("it has no header".to_string()))?;
    let algorithms = header.algorithms;
    // Content → the known paths holding it, for telling moves from new files.
    let mut by_content: HashMap<Vec<u8>, Vec<RawPath>> = HashMap::new();
    for (path, d) in &known {
        by_content
            .entry(content_key(d, algorithms))
            .or_default()
            .push(path.clone());
    }

    let config = ScanConfig {
        algorithms,
        one_file_system: header.one_file_system,
        threads,
        perceptual: PerceptualConfig::off(),
        no_link_targets: true,
        // The same members looked inside, so they are compared too.
        expand: header.expand.clone(),
        ..ScanConfig::new(root)
    };
    let scanner = Scanner::new(config).map_err(AuditError::Scan)?;
    let mut audit = EvidenceAudit::default();
    let mut unknown: Vec<(RawPath, Digests)> = Vec::new();
    let mut seen: std::collections::HashSet<RawPath> = Default::default();
    scanner
        .run(|e| {
            let k = key(&e);
            match e.outcome {
                Outcome::Hashed(h) => match known.get(&k) {
                    Some(d) if *d == h.digests => audit.matched += 1,
                    Some(_) => audit.changed.push(e.path.clone()),
                    None if unread.contains(&k) => audit.previously_unread.push(e.path.clone()),
                    None => unknown.push((k.clone(), h.digests)),
                },
                Outcome::Failed(f) => audit.failed.push((e.path.clone(), f.kind.to_string())),
                Outcome::Skipped(_) => {}
            }
            seen.insert(k);
            Ok(())
        })
        .map_err(AuditError::Scan)?;

    let mut gone: std::collections::HashSet<RawPath> = known
        .keys()
        .filter(|p| !seen.contains(*p))
        .cloned()
        .collect();
    for (path, digests) in unknown {
        let from = by_content
            .get(&content_key(&digests, algorithms))
            .and_then(|paths| paths.iter().find(|p| gone.contains(*p)).cloned());
        match from {
            Some(from) => {
                gone.remove(&from);
                audit.moved.push((shown(&from), shown(&path)));
            }
            None => audit.new.push(shown(&path)),
        }
    }
    audit.missing = gone.iter().map(shown).collect();
    audit.missing.sort();
    audit.moved.sort();
    audit.new.sort();
    Ok(audit)
}

/// An entry's identity: its path, and in a disk image its location too (a
/// deleted file and the live file now bearing its name share a path). The
/// location follows a NUL, which no path holds.
fn key(e: &crate::record::Entry) -> RawPath {
    match &e.location {
        None => e.path.clone(),
        Some(l) => {
            let mut b = e.path.as_bytes().to_vec();
            b.push(0);
            b.extend_from_slice(
                format!(
                    "{}:{}:{}:{}",
                    l.partition.as_ref().map_or(0, |p| p.index),
                    l.fs_offset,
                    l.addr,
                    l.state.name()
                )
                .as_bytes(),
            );
            RawPath::from_bytes(b)
        }
    }
}

/// The path of a [`key`].
fn shown(k: &RawPath) -> RawPath {
    let b = k.as_bytes();
    RawPath::from_bytes(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())])
}

fn content_key(d: &Digests, algorithms: AlgorithmSet) -> Vec<u8> {
    algorithms
        .iter()
        .filter_map(|a| d.get(a))
        .flatten()
        .copied()
        .collect()
}
