//! Match stage, part 1: hash sets, imported once into an index that opens instantly.
//!
//! Agencies ship known-material lists in many shapes (md5sum files, hashdeep,
//! NSRL, Project VIC JSON, ThreatExchange PDQ lists, EnCase `.hash`).
//! [`import`] reads each of them, streaming, into an [`IndexBuilder`], which
//! sorts the keys in bounded memory and writes one `.tset` file: a versioned
//! binary layout (documented in `docs/tset-format.md`) that [`Index::open`]
//! maps into memory without parsing, so opening a 100-million-entry set costs
//! the same as opening a 100-entry one.
//!
//! Exact digests are found by a prefix directory and a binary search over
//! sorted fixed-width keys; perceptual hashes (PDQ, pHash) by multi-index
//! hashing ([`Index::near`]), whose results equal a brute-force scan
//! ([`Index::near_brute_force`]). The header carries a BLAKE3 of the whole
//! content, so an audit log can name exactly which set was used.
//!
//! ```
//! use triage_core::hashset::{import, Index, KeyAlg};
//! # let dir = std::env::temp_dir().join(format!("triage-hs-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let list = dir.join("known.md5");
//! std::fs::write(&list, "39cb097008d17660abd0539891a672af  passwords.txt\n")?;
//! let out = dir.join("known.tset");
//! let opts = import::ImportOptions::new("known");
//! let report = import::import_files(&[list], &opts, &out, &mut |_| {})?;
//! assert_eq!(report.entries, 1);
//!
//! let index = Index::open(&out)?;
//! let md5 = triage_core::hash::from_hex("39cb097008d17660abd0539891a672af").unwrap();
//! let hit = index.lookup(KeyAlg::Md5, &md5).expect("listed");
//! assert_eq!(hit.info, r#"{"name":"passwords.txt"}"#);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
pub mod category;
pub mod import;
mod index;
mod mih;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use build::IndexBuilder;
pub use category::{Category, Scheme};
pub use index::{FORMAT_VERSION, Index, IndexError, MIH_MIN_KEYS, SetEntry};

use crate::hash::Algorithm;

/// The kind of hash a key of a set is: a file digest (matched exactly) or a
/// perceptual hash (matched by Hamming distance). Perceptual kinds carry the
/// algorithm version, like the scan's tags: a `phash/1` set only answers
/// `phash/1` queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyAlg {
    /// MD5 digest, 16 bytes.
    Md5,
    /// SHA-1 digest, 20 bytes.
    Sha1,
    /// SHA-256 digest, 32 bytes.
    Sha256,
    /// BLAKE3 digest, 32 bytes.
    Blake3,
    /// PDQ (`pdq/1`), 256 bits in ThreatExchange byte order.
    Pdq,
    /// `phash/1` of `triage` (not Python imagehash), 64 bits.
    Phash,
    /// `dhash/1` of `triage`, 64 bits.
    Dhash,
    /// `ahash/1` of `triage`, 64 bits.
    Ahash,
    /// A known video's frame (`vpdq/1`): a PDQ hash, 256 bits. Each listed
    /// video is one record with one key per unique frame; unlike the other
    /// kinds a key may repeat across records (two videos share a frame).
    Vpdq,
}

impl KeyAlg {
    /// Every kind, in the order sections and matches are listed.
    pub const ALL: [KeyAlg; 9] = [
        KeyAlg::Md5,
        KeyAlg::Sha1,
        KeyAlg::Sha256,
        KeyAlg::Blake3,
        KeyAlg::Pdq,
        KeyAlg::Phash,
        KeyAlg::Dhash,
        KeyAlg::Ahash,
        KeyAlg::Vpdq,
    ];

    /// The name in records and on the command line: `md5`, …, `pdq/1`, `phash/1`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::Md5 => "md5",
            KeyAlg::Sha1 => "sha1",
            KeyAlg::Sha256 => "sha256",
            KeyAlg::Blake3 => "blake3",
            KeyAlg::Pdq => "pdq/1",
            KeyAlg::Phash => "phash/1",
            KeyAlg::Dhash => "dhash/1",
            KeyAlg::Ahash => "ahash/1",
            KeyAlg::Vpdq => "vpdq/1",
        }
    }

    /// Parses [`KeyAlg::name`], also without the version (`pdq`, `phash`)
    /// and with the dashes people write (`sha-1`, `sha-256`).
    pub fn parse(s: &str) -> Option<KeyAlg> {
        let s = s.trim().to_ascii_lowercase();
        KeyAlg::ALL.into_iter().find(|a| {
            let name = a.name();
            s == name
                || s == name.trim_end_matches("/1")
                || s.replace('-', "") == name.replace('-', "")
        })
    }

    /// The stable number in the index file.
    pub(crate) fn code(self) -> u16 {
        match self {
            KeyAlg::Md5 => 1,
            KeyAlg::Sha1 => 2,
            KeyAlg::Sha256 => 3,
            KeyAlg::Blake3 => 4,
            KeyAlg::Pdq => 16,
            KeyAlg::Phash => 17,
            KeyAlg::Dhash => 18,
            KeyAlg::Ahash => 19,
            KeyAlg::Vpdq => 20,
        }
    }

    pub(crate) fn from_code(code: u16) -> Option<KeyAlg> {
        KeyAlg::ALL.into_iter().find(|a| a.code() == code)
    }

    /// Key length in bytes.
    pub fn width(self) -> usize {
        match self {
            KeyAlg::Md5 => 16,
            KeyAlg::Sha1 => 20,
            KeyAlg::Sha256 | KeyAlg::Blake3 | KeyAlg::Pdq | KeyAlg::Vpdq => 32,
            KeyAlg::Phash | KeyAlg::Dhash | KeyAlg::Ahash => 8,
        }
    }

    /// Whether keys are matched by Hamming distance rather than equality.
    pub fn is_perceptual(self) -> bool {
        !matches!(
            self,
            KeyAlg::Md5 | KeyAlg::Sha1 | KeyAlg::Sha256 | KeyAlg::Blake3
        )
    }

    /// Whether one key may belong to several records (video frames):
    /// such keys are unique per record, not per set.
    pub fn repeats_across_records(self) -> bool {
        self == KeyAlg::Vpdq
    }

    /// The file digest this key is, if it is one.
    pub fn digest(self) -> Option<Algorithm> {
        Some(match self {
            KeyAlg::Md5 => Algorithm::Md5,
            KeyAlg::Sha1 => Algorithm::Sha1,
            KeyAlg::Sha256 => Algorithm::Sha256,
            KeyAlg::Blake3 => Algorithm::Blake3,
            _ => return None,
        })
    }

    /// The key kind of a file digest.
    pub fn from_digest(alg: Algorithm) -> KeyAlg {
        match alg {
            Algorithm::Md5 => KeyAlg::Md5,
            Algorithm::Sha1 => KeyAlg::Sha1,
            Algorithm::Sha256 => KeyAlg::Sha256,
            Algorithm::Blake3 => KeyAlg::Blake3,
        }
    }

    /// The key kind of a perceptual tag (`pdq/1`, `phash/1`, …).
    pub fn from_tag(tag: &str) -> Option<KeyAlg> {
        KeyAlg::ALL
            .into_iter()
            .find(|a| a.is_perceptual() && a.name() == tag)
    }

    /// The digest of zero bytes, for the digests published lists are full of.
    pub(crate) fn empty_digest(self) -> Option<Vec<u8>> {
        self.digest().map(|a| {
            crate::hash::hash_bytes(crate::hash::AlgorithmSet::empty().with(a), b"")
                .get(a)
                .unwrap_or(&[])
                .to_vec()
        })
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a hit in a set means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetKind {
    /// Known material to find: a hit is reported and changes the exit code.
    Alert,
    /// Known files to set aside (NSRL). A hit never hides an alert hit.
    KnownGood,
}

impl SetKind {
    /// `alert` or `known-good`.
    pub fn name(self) -> &'static str {
        match self {
            SetKind::Alert => "alert",
            SetKind::KnownGood => "known-good",
        }
    }

    /// Parses [`SetKind::name`].
    pub fn parse(s: &str) -> Option<SetKind> {
        match s {
            "alert" => Some(SetKind::Alert),
            "known-good" | "known" => Some(SetKind::KnownGood),
            _ => None,
        }
    }
}

/// One input file of a set, as imported: enough to prove later which list was used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// File name as given on the command line (lossy UTF-8).
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// The format it was read as (`md5sum`, `vics`, `nsrl-v3`, …).
    pub format: String,
    /// What the file says about itself: NSRL version and build set, the
    /// VICS OData context, the EnCase set name.
    pub declared: Option<String>,
    /// Entries read from it (before removing duplicates across the set).
    pub entries: u64,
    /// Lines or records that could not be used.
    pub rejected: u64,
    /// The first rejected ones: where and why.
    pub first_rejected: Vec<Rejected>,
    /// Entries kept without a category because their code is not in the scheme.
    pub unknown_categories: u64,
}

/// A line or record of a source that was not imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// Line number (text), element number (JSON), row id (SQLite), record number (binary).
    pub at: u64,
    /// Why.
    pub reason: String,
}

/// Per key kind: how many distinct keys, and how many more were dropped as duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    /// Key kind name ([`KeyAlg::name`]).
    pub alg: String,
    /// Distinct keys in the index.
    pub keys: u64,
    /// Keys seen again (the first occurrence is kept).
    pub duplicates: u64,
    /// Keys that are the digest of an empty file (kept, flagged: they hit every empty file).
    pub empty_file_digests: u64,
    /// Perceptual keys whose declared quality is under 50 (kept, flagged).
    pub low_quality: u64,
}

/// Everything the index says about itself, stored as JSON in its header section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMeta {
    /// The set's name (`--name`).
    pub name: String,
    /// Alert or known-good.
    pub kind: SetKind,
    /// The category scheme the set's codes belong to, if it has categories.
    pub scheme: Option<Scheme>,
    /// The tool that wrote it (`triage 0.1.0`).
    pub created_by: String,
    /// Records (one per listed item; an item may have several keys).
    pub records: u64,
    /// Keys per kind.
    pub keys: Vec<KeyCount>,
    /// The input files, in import order.
    pub sources: Vec<SourceInfo>,
}

impl SetMeta {
    /// Distinct keys of kind `alg`.
    pub fn key_count(&self, alg: KeyAlg) -> u64 {
        self.keys
            .iter()
            .find(|k| k.alg == alg.name())
            .map_or(0, |k| k.keys)
    }
}

/// Flags of one set entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EntryFlags(pub u16);

impl EntryFlags {
    /// A key of the entry is the digest of zero bytes.
    pub const EMPTY_FILE: u16 = 1;
    /// The list declares a perceptual quality under 50.
    pub const LOW_QUALITY: u16 = 2;
    /// The source gave a category code the scheme does not know; kept uncategorised.
    pub const UNKNOWN_CATEGORY: u16 = 4;

    /// Whether `flag` is set.
    pub fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }
}
