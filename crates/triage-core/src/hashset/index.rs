//! The `.tset` index file: layout constants, and the reader.
//!
//! Layout (all integers little-endian; full description in
//! `docs/tset-format.md`):
//!
//! ```text
//! 0   8  magic  89 'T' 'S' 'E' 'T' 0D 0A 1A
//! 8   4  format version (1)
//! 12  4  number of sections S
//! 16 32  BLAKE3 of bytes 48..end (everything after this field)
//! 48  8  file length
//! 56  8  zero
//! 64  S × 32  section table: kind u16, alg u16, param u32, offset u64, length u64, items u64
//! ..  sections, each at a multiple of 64
//! ```
//!
//! Sections: `META` (JSON [`SetMeta`]), `INFO` (the listed items' JSON
//! texts), and per key kind: `KEYS` (sorted, unique, fixed width), `RECORDS`
//! (the 32-byte record of each key's item, beside the key so a hit costs
//! no extra indirection), `DIR` (u32 first key
//! index per `param`-bit prefix, `2^param + 1` of them) and, for perceptual
//! kinds with at least [`MIH_MIN_KEYS`] keys, `MIH` (one counting-sort table
//! per 16-bit chunk; smaller tables are scanned whole, with the same result).
//!
//! Opening checks the header, the table and every section's size against
//! the file, in time independent of the number of entries; the BLAKE3 and
//! the key order are checked by [`Index::verify`]. Lookups bounds-check
//! every offset they read, so a damaged file gives wrong answers at worst
//! (and `verify` says so), never a crash.

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::mih::{self, MihView};
use super::{Category, EntryFlags, KeyAlg, SetMeta};

pub(crate) const MAGIC: [u8; 8] = *b"\x89TSET\r\n\x1a";
/// Version of the `.tset` layout this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 64;
pub(crate) const SECTION_LEN: usize = 32;
/// The BLAKE3 in the header covers the file from here to the end.
pub(crate) const HASHED_FROM: usize = 48;
pub(crate) const RECORD_LEN: usize = 32;
pub(crate) const ALIGN: u64 = 64;
pub(crate) const NO_CATEGORY: u16 = u16::MAX;
const MAX_SECTIONS: usize = 256;
/// Perceptual key tables smaller than this get no multi-index tables (each
/// costs 256 KiB per chunk): reading a few thousand keys is as fast.
pub const MIH_MIN_KEYS: u64 = 4096;
const MAX_DIR_BITS: u32 = 24;

/// Section kinds.
pub(crate) mod kind {
    pub const META: u16 = 1;
    // 2 was a per-item record table in development builds; not used.
    pub const INFO: u16 = 3;
    pub const KEYS: u16 = 4;
    pub const RECORDS: u16 = 5;
    pub const DIR: u16 = 6;
    pub const MIH: u16 = 7;
}

/// Why an index could not be opened or did not verify.
#[derive(Debug)]
pub enum IndexError {
    /// Reading the file failed.
    Io(io::Error),
    /// The file is not a `.tset` index.
    NotAnIndex,
    /// Written by a newer `triage` with a layout this build does not know.
    UnsupportedVersion(u32),
    /// Shorter or longer than its header says: cut off in a copy, or appended to.
    WrongLength {
        /// Length in the header.
        expected: u64,
        /// Length on disk.
        actual: u64,
    },
    /// Inconsistent structure.
    Corrupt(String),
    /// The content does not hash to the BLAKE3 in the header (`verify`).
    ContentMismatch {
        /// BLAKE3 in the header.
        expected: String,
        /// BLAKE3 of the content.
        actual: String,
    },
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REDO: &str = "re-create it with `triage hashset import`";
        match self {
            IndexError::Io(e) => write!(f, "cannot read the index: {e}"),
            IndexError::NotAnIndex => write!(
                f,
                "not a triage hash-set index (.tset); import the list first with `triage hashset import`"
            ),
            IndexError::UnsupportedVersion(v) => write!(
                f,
                "index format version {v} is newer than this triage reads ({FORMAT_VERSION}); use a newer triage"
            ),
            IndexError::WrongLength { expected, actual } => write!(
                f,
                "index is {actual} bytes but its header says {expected}: truncated or damaged copy; {REDO}"
            ),
            IndexError::Corrupt(m) => write!(f, "index is damaged ({m}); {REDO}"),
            IndexError::ContentMismatch { expected, actual } => write!(
                f,
                "index content does not match its header (BLAKE3 {actual}, header says {expected}): it was altered or damaged; {REDO}"
            ),
        }
    }
}

impl std::error::Error for IndexError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IndexError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for IndexError {
    fn from(e: io::Error) -> Self {
        IndexError::Io(e)
    }
}

fn corrupt(m: impl Into<String>) -> IndexError {
    IndexError::Corrupt(m.into())
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

/// One section table row.
#[derive(Clone, Copy, Debug)]
struct Section {
    kind: u16,
    alg: u16,
    param: u32,
    offset: u64,
    length: u64,
    items: u64,
}

impl Section {
    fn range(&self) -> Range<usize> {
        self.offset as usize..(self.offset + self.length) as usize
    }
}

/// The sections of one key kind.
#[derive(Clone, Debug)]
struct KeyTable {
    alg: KeyAlg,
    n: usize,
    keys: Range<usize>,
    records: Range<usize>,
    dir: Range<usize>,
    dir_bits: u32,
    mih: Option<Range<usize>>,
}

/// One entry of a set, as a lookup finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetEntry<'a> {
    /// Record number in the set (import order).
    pub record: u32,
    /// Where in its source: line number (text), element number (JSON), row
    /// id (SQLite), record number (EnCase).
    pub locator: u64,
    /// Index into [`SetMeta::sources`].
    pub source: u32,
    /// Its category, when the set has a scheme and the entry a code.
    pub category: Option<Category>,
    /// Empty-file digest, low quality, unknown category.
    pub flags: EntryFlags,
    /// What the list said about the item, as a JSON object (`{}` when nothing):
    /// file name, MediaID, PhotoDNA, …
    pub info: &'a str,
}

/// An opened `.tset` hash-set index, memory-mapped.
pub struct Index {
    map: memmap2::Mmap,
    path: PathBuf,
    meta: SetMeta,
    content_hash: [u8; 32],
    info: Range<usize>,
    tables: Vec<KeyTable>,
    /// The BLAKE3 of the content as [`Index::verify`] computed it, once it
    /// has: what an audit log may vouch for.
    verified: std::sync::OnceLock<[u8; 32]>,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .field("name", &self.meta.name)
            .finish()
    }
}

impl Index {
    /// Opens and maps an index. Checks the structure, not the BLAKE3
    /// (see [`Index::verify`]): opening costs the same for any size.
    pub fn open(path: &Path) -> Result<Index, IndexError> {
        let file = File::open(path)?;
        let actual = file.metadata()?.len();
        if actual < HEADER_LEN as u64 {
            return Err(if actual >= 8 && has_magic(&file)? {
                IndexError::WrongLength {
                    expected: HEADER_LEN as u64,
                    actual,
                }
            } else {
                IndexError::NotAnIndex
            });
        }
        // SAFETY: the map is read-only and private to this process. A file
        // truncated by someone else while mapped would fault on access; the
        // indexes are the examiner's own files, not evidence.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let b = &map[..];
        if b[..8] != MAGIC {
            return Err(IndexError::NotAnIndex);
        }
        let version = le_u32(b, 8);
        if version != FORMAT_VERSION {
            return Err(IndexError::UnsupportedVersion(version));
        }
        let expected = le_u64(b, 48);
        if expected != actual {
            return Err(IndexError::WrongLength { expected, actual });
        }
        let count = le_u32(b, 12) as usize;
        if count > MAX_SECTIONS || HEADER_LEN + count * SECTION_LEN > b.len() {
            return Err(corrupt(format!("section table of {count} entries")));
        }
        let mut sections = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER_LEN + i * SECTION_LEN;
            let s = Section {
                kind: le_u16(b, at),
                alg: le_u16(b, at + 2),
                param: le_u32(b, at + 4),
                offset: le_u64(b, at + 8),
                length: le_u64(b, at + 16),
                items: le_u64(b, at + 24),
            };
            let end = s.offset.checked_add(s.length);
            if end.is_none_or(|e| e > actual)
                || s.offset < (HEADER_LEN + count * SECTION_LEN) as u64
            {
                return Err(corrupt(format!("section {i} lies outside the file")));
            }
            sections.push(s);
        }
        let one = |k: u16| -> Result<Section, IndexError> {
            let mut it = sections.iter().filter(|s| s.kind == k);
            match (it.next(), it.next()) {
                (Some(s), None) => Ok(*s),
                _ => Err(corrupt(format!("needs exactly one section of kind {k}"))),
            }
        };
        let meta_s = one(kind::META)?;
        let meta: SetMeta = serde_json::from_slice(&b[meta_s.range()])
            .map_err(|e| corrupt(format!("metadata: {e}")))?;
        // Sizes come from the file: products saturate, so a damaged table
        // cannot overflow into a plausible value.
        let times = |a: u64, b: u64| a.saturating_mul(b);
        let info_s = one(kind::INFO)?;
        let mut tables = Vec::new();
        for s in sections.iter().filter(|s| s.kind == kind::KEYS) {
            let alg = KeyAlg::from_code(s.alg)
                .ok_or_else(|| corrupt(format!("unknown key kind {}", s.alg)))?;
            let w = alg.width() as u64;
            let n = s.items;
            if n >= u32::MAX as u64 || s.length != times(n, w) {
                return Err(corrupt(format!("{alg} key table size")));
            }
            let find = |k: u16| sections.iter().find(|x| x.kind == k && x.alg == s.alg);
            let recs = find(kind::RECORDS).ok_or_else(|| corrupt(format!("{alg}: no records")))?;
            if recs.items != n || recs.length != times(n, RECORD_LEN as u64) {
                return Err(corrupt(format!("{alg} record table size")));
            }
            let dir = find(kind::DIR).ok_or_else(|| corrupt(format!("{alg}: no directory")))?;
            if dir.param > MAX_DIR_BITS
                || dir.items != (1u64 << dir.param) + 1
                || dir.length != dir.items * 4
                || le_u32(b, dir.range().end - 4) as u64 != n
            {
                return Err(corrupt(format!("{alg} directory")));
            }
            let mih = match find(kind::MIH) {
                Some(m) => {
                    let chunks = alg.width() as u64 / 2;
                    if m.param as u64 != chunks
                        || m.length != times(chunks, times(mih::BUCKETS as u64 + 1 + n, 4))
                    {
                        return Err(corrupt(format!("{alg} near-match tables")));
                    }
                    Some(m.range())
                }
                None => None,
            };
            tables.push(KeyTable {
                alg,
                n: n as usize,
                keys: s.range(),
                records: recs.range(),
                dir: dir.range(),
                dir_bits: dir.param,
                mih,
            });
        }
        let mut content_hash = [0u8; 32];
        content_hash.copy_from_slice(&b[16..48]);
        Ok(Index {
            path: path.to_path_buf(),
            meta,
            content_hash,
            info: info_s.range(),
            tables,
            map,
            verified: std::sync::OnceLock::new(),
        })
    }

    /// The file this index was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Name, kind, scheme, sources and counts.
    pub fn meta(&self) -> &SetMeta {
        &self.meta
    }

    /// The BLAKE3 stored in the header, lower-case hex: what the index
    /// claims its content hashes to. Only [`Index::verified_hash`] says
    /// what it does hash to.
    pub fn content_hash(&self) -> String {
        crate::hash::to_hex(&self.content_hash)
    }

    /// The BLAKE3 of the content as computed by a successful
    /// [`Index::verify`] (lower-case hex), or `None` before one. A scan
    /// records this one.
    pub fn verified_hash(&self) -> Option<String> {
        self.verified.get().map(|h| crate::hash::to_hex(h))
    }

    /// Opens an index and verifies all of it ([`Index::open`], then
    /// [`Index::verify`]): what a scan needs before it relies on a set.
    /// About a second per 5 GB, on every core.
    ///
    /// ```no_run
    /// use triage_core::hashset::Index;
    /// let set = Index::open_verified(std::path::Path::new("ncmec.tset"))?;
    /// assert_eq!(set.verified_hash(), Some(set.content_hash()));
    /// # Ok::<(), triage_core::hashset::IndexError>(())
    /// ```
    pub fn open_verified(path: &Path) -> Result<Index, IndexError> {
        let index = Index::open(path)?;
        index.verify()?;
        Ok(index)
    }

    /// The key kinds this set has.
    pub fn algorithms(&self) -> impl Iterator<Item = KeyAlg> + '_ {
        self.tables.iter().map(|t| t.alg)
    }

    /// Size of the mapped file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    fn table(&self, alg: KeyAlg) -> Option<&KeyTable> {
        self.tables.iter().find(|t| t.alg == alg)
    }

    fn key_bytes(&self, t: &KeyTable) -> &[u8] {
        &self.map[t.keys.clone()]
    }

    /// The entry of key `i` of table `t`.
    fn entry_of_key(&self, t: &KeyTable, i: usize) -> Option<SetEntry<'_>> {
        let r = self.map[t.records.clone()].get(i * RECORD_LEN..(i + 1) * RECORD_LEN)?;
        let info_off = le_u64(r, 0) as usize;
        let info_len = le_u32(r, 16) as usize;
        let info_all = &self.map[self.info.clone()];
        let info = info_off
            .checked_add(info_len)
            .and_then(|end| info_all.get(info_off..end))
            .and_then(|s| std::str::from_utf8(s).ok())
            .unwrap_or("{}");
        let code = le_u16(r, 24);
        Some(SetEntry {
            record: le_u32(r, 28),
            locator: le_u64(r, 8),
            source: le_u32(r, 20),
            category: match (self.meta.scheme, code) {
                (Some(scheme), c) if c != NO_CATEGORY => Some(Category { scheme, code: c }),
                _ => None,
            },
            flags: EntryFlags(le_u16(r, 26)),
            info: if info.is_empty() { "{}" } else { info },
        })
    }

    /// The entry whose `alg` key equals `key`, if the set lists it.
    pub fn lookup(&self, alg: KeyAlg, key: &[u8]) -> Option<SetEntry<'_>> {
        let t = self.table(alg)?;
        let w = alg.width();
        if key.len() != w {
            return None;
        }
        let prefix = u32::from_be_bytes([key[0], key[1], key[2], key[3]]) as u64;
        let p = if t.dir_bits == 0 {
            0
        } else {
            (prefix >> (32 - t.dir_bits)) as usize
        };
        let dir = &self.map[t.dir.clone()];
        let (lo, hi) = (le_u32(dir, p * 4) as usize, le_u32(dir, p * 4 + 4) as usize);
        if lo > hi || hi > t.n {
            return None;
        }
        // The bucket's records are contiguous: start loading them with the
        // keys, so a hit does not wait for two misses in a row.
        let recs = &self.map[t.records.clone()];
        mih::prefetch(recs, lo * RECORD_LEN);
        mih::prefetch(recs, lo * RECORD_LEN + 64);
        let keys = self.key_bytes(t);
        // Buckets hold about 16 keys: compare their leading 8 bytes as one
        // number, the rest only on a tie.
        let head = u64::from_be_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ]);
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = &keys[mid * w..(mid + 1) * w];
            let kh = u64::from_be_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]]);
            match kh.cmp(&head).then_with(|| k[8..].cmp(&key[8..])) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.entry_of_key(t, mid),
            }
        }
        None
    }

    /// Entries whose `alg` key is within `max_distance` bits of `query`, by
    /// multi-index hashing, nearest first: `(entry, distance)`.
    pub fn near(&self, alg: KeyAlg, query: &[u8], max_distance: u32) -> Vec<(SetEntry<'_>, u32)> {
        let Some(t) = self.table_for(alg, query) else {
            return Vec::new();
        };
        self.resolve(t, self.hits(t, query, max_distance, false))
    }

    /// Key numbers within `max` bits of `query` in table `t`, with their
    /// distances: through the multi-index tables when `t` has them and
    /// `brute` is not asked for, else by reading every key.
    fn hits(&self, t: &KeyTable, query: &[u8], max: u32, brute: bool) -> Vec<(u32, u32)> {
        match &t.mih {
            Some(m) if !brute => MihView {
                keys: self.key_bytes(t),
                width: t.alg.width(),
                tables: &self.map[m.clone()],
            }
            .query(query, max),
            _ => mih::brute_force(self.key_bytes(t), t.alg.width(), query, max),
        }
    }

    /// What [`Index::near`] answers, by comparing with every key: the
    /// oracle for tests and the baseline for benchmarks.
    pub fn near_brute_force(
        &self,
        alg: KeyAlg,
        query: &[u8],
        max_distance: u32,
    ) -> Vec<(SetEntry<'_>, u32)> {
        let Some(t) = self.table_for(alg, query) else {
            return Vec::new();
        };
        self.resolve(t, self.hits(t, query, max_distance, true))
    }

    /// The table of `alg`, if the set has one and `query` has its width.
    fn table_for(&self, alg: KeyAlg, query: &[u8]) -> Option<&KeyTable> {
        self.table(alg).filter(|_| query.len() == alg.width())
    }

    /// [`Index::near`] with each hit's key number (its place in the key
    /// table): video matching counts distinct known frames by it. `brute`
    /// compares with every key (the oracle).
    pub(crate) fn near_keyed(
        &self,
        alg: KeyAlg,
        query: &[u8],
        max_distance: u32,
        brute: bool,
    ) -> Vec<(u32, SetEntry<'_>, u32)> {
        let Some(t) = self.table_for(alg, query) else {
            return Vec::new();
        };
        self.hits(t, query, max_distance, brute)
            .into_iter()
            .filter_map(|(i, d)| self.entry_of_key(t, i as usize).map(|e| (i, e, d)))
            .collect()
    }

    fn resolve(&self, t: &KeyTable, hits: Vec<(u32, u32)>) -> Vec<(SetEntry<'_>, u32)> {
        hits.into_iter()
            .filter_map(|(i, d)| self.entry_of_key(t, i as usize).map(|e| (e, d)))
            .collect()
    }

    /// Every key of kind `alg` with its entry, in key order.
    pub fn keys(&self, alg: KeyAlg) -> impl Iterator<Item = (&[u8], Option<SetEntry<'_>>)> + '_ {
        let t = self.table(alg);
        let w = alg.width();
        let n = t.map_or(0, |t| t.n);
        (0..n).filter_map(move |i| {
            let t = t?;
            Some((
                &self.key_bytes(t)[i * w..(i + 1) * w],
                self.entry_of_key(t, i),
            ))
        })
    }

    /// Reads the whole file: recomputes the BLAKE3 and checks that keys are
    /// sorted and unique, references and directories in range, and the
    /// near-match tables consistent. Time grows with the size. On success
    /// the computed digest is kept ([`Index::verified_hash`]); a second call
    /// re-reads nothing.
    pub fn verify(&self) -> Result<(), IndexError> {
        if self.verified.get().is_some() {
            return Ok(());
        }
        let mut h = blake3::Hasher::new();
        h.update_rayon(&self.map[HASHED_FROM..]);
        let actual = h.finalize();
        if actual.as_bytes() != &self.content_hash {
            return Err(IndexError::ContentMismatch {
                expected: self.content_hash(),
                actual: actual.to_hex().to_string(),
            });
        }
        for t in &self.tables {
            let w = t.alg.width();
            let keys = self.key_bytes(t);
            let recs = &self.map[t.records.clone()];
            let info_len = self.info.len() as u64;
            let per_record = t.alg.repeats_across_records();
            for i in 0..t.n {
                let r = &recs[i * RECORD_LEN..(i + 1) * RECORD_LEN];
                if i > 0 {
                    let (prev, cur) = (&keys[(i - 1) * w..i * w], &keys[i * w..(i + 1) * w]);
                    let prev_record = le_u32(&recs[(i - 1) * RECORD_LEN..i * RECORD_LEN], 28);
                    let in_order =
                        prev < cur || (per_record && prev == cur && prev_record < le_u32(r, 28));
                    if !in_order {
                        return Err(corrupt(format!("{} keys out of order at {i}", t.alg)));
                    }
                }
                let end = le_u64(r, 0).saturating_add(le_u32(r, 16) as u64);
                if le_u32(r, 28) as u64 >= self.meta.records || end > info_len {
                    return Err(corrupt(format!("{} record of key {i}", t.alg)));
                }
            }
            let dir = &self.map[t.dir.clone()];
            let buckets = 1usize << t.dir_bits;
            let mut prev = 0;
            for p in 0..=buckets {
                let v = le_u32(dir, p * 4) as usize;
                if v < prev || v > t.n {
                    return Err(corrupt(format!("{} directory at {p}", t.alg)));
                }
                prev = v;
            }
            if let Some(m) = &t.mih {
                let tables = &self.map[m.clone()];
                let stride = (mih::BUCKETS + 1 + t.n) * 4;
                for c in 0..w / 2 {
                    let table = &tables[c * stride..(c + 1) * stride];
                    if le_u32(table, mih::BUCKETS * 4) as usize != t.n {
                        return Err(corrupt(format!("{} chunk table {c}", t.alg)));
                    }
                    for p in 0..t.n {
                        let i = le_u32(table, (mih::BUCKETS + 1 + p) * 4) as usize;
                        if i >= t.n {
                            return Err(corrupt(format!("{} chunk table {c}", t.alg)));
                        }
                    }
                }
            }
        }
        let _ = self.verified.set(*actual.as_bytes());
        Ok(())
    }
}

fn has_magic(mut file: &File) -> io::Result<bool> {
    use std::io::Read;
    let mut b = [0u8; 8];
    file.read_exact(&mut b)?;
    Ok(b == MAGIC)
}

/// The directory prefix width for `n` keys: about 16 keys (two cache lines
/// of MD5s) per bucket. Measured: 8 per bucket made the directory too big
/// to stay in cache (10M keys: 8 MiB), 32 made the search touch more lines.
pub(crate) fn dir_bits(n: u64) -> u32 {
    let mut b = 0;
    while b < MAX_DIR_BITS && (n >> b) > 16 {
        b += 1;
    }
    b
}
