//! Writing a `.tset` index in bounded memory.
//!
//! Records and their JSON texts stream to temporary files as they come.
//! Keys collect in memory up to a budget, then are sorted and spilled as a
//! run; at the end the runs of each key kind are merged (k-way), duplicate
//! keys dropped (the first listed is kept), and the directory and
//! near-match tables built from the merged keys. The file is assembled
//! under a temporary name, its BLAKE3 written into the header, synced, and
//! only then renamed into place: an interrupted import never leaves a
//! plausible-looking partial set.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::index::{self, ALIGN, HASHED_FROM, HEADER_LEN, MAGIC, NO_CATEGORY, SECTION_LEN, kind};
use super::mih;
use super::{EntryFlags, KeyAlg, KeyCount, SetMeta};

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A key (zero-padded), its item's number (the tie-break that keeps the
/// first-listed duplicate), and its item's record: carried through the sort
/// so the merge never reads records at random.
type Item = ([u8; 32], u32, [u8; index::RECORD_LEN]);

#[derive(Default)]
struct AlgState {
    buf: Vec<Item>,
    runs: Vec<PathBuf>,
    added: u64,
    empty: u64,
    low_quality: u64,
}

/// Collects records and keys and writes them as one `.tset` file.
///
/// ```
/// use triage_core::hashset::{IndexBuilder, Index, KeyAlg, SetKind, SetMeta};
/// # let dir = std::env::temp_dir().join(format!("triage-build-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let mut b = IndexBuilder::new(&dir, 64 << 20)?;
/// let r = b.add_record(r#"{"id":7}"#, 1, 0, Some(1), 0)?;
/// b.add_key(KeyAlg::Md5, &[0xab; 16], r, 0)?;
/// let meta = SetMeta {
///     name: "demo".into(), kind: SetKind::Alert, scheme: None,
///     created_by: "doc".into(), records: 0, keys: vec![], sources: vec![],
/// };
/// let out = dir.join("demo.tset");
/// let meta = b.finish(meta, &out)?;
/// assert_eq!(meta.key_count(KeyAlg::Md5), 1);
/// assert_eq!(Index::open(&out)?.lookup(KeyAlg::Md5, &[0xab; 16]).unwrap().info, r#"{"id":7}"#);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct IndexBuilder {
    tmp: TempDir,
    /// The record of the item being added, for its keys.
    current: Option<(u32, [u8; index::RECORD_LEN])>,
    n_records: u64,
    info: BufWriter<File>,
    info_len: u64,
    algs: Vec<AlgState>,
    buffered: usize,
    budget_items: usize,
    mih_min: u64,
}

fn alg_slot(alg: KeyAlg) -> usize {
    KeyAlg::ALL.iter().position(|a| *a == alg).unwrap_or(0)
}

impl IndexBuilder {
    /// A builder whose temporary files live in a new directory under
    /// `tmp_parent` (put it on the disk the index goes to: runs can be as
    /// large as the index), holding at most about `memory_budget` bytes of keys.
    pub fn new(tmp_parent: &Path, memory_budget: usize) -> io::Result<IndexBuilder> {
        let dir = tmp_parent.join(format!(
            ".triage-import-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        fs::create_dir_all(&dir)?;
        let tmp = TempDir(dir);
        let create =
            |n: &str| File::create(tmp.0.join(n)).map(|f| BufWriter::with_capacity(1 << 20, f));
        Ok(IndexBuilder {
            current: None,
            info: create("info")?,
            tmp,
            n_records: 0,
            info_len: 0,
            algs: KeyAlg::ALL.iter().map(|_| AlgState::default()).collect(),
            buffered: 0,
            budget_items: (memory_budget / std::mem::size_of::<Item>()).max(1024),
            mih_min: index::MIH_MIN_KEYS,
        })
    }

    /// Builds multi-index tables for perceptual kinds from `n` keys on
    /// (default [`MIH_MIN_KEYS`](super::MIH_MIN_KEYS)); for tests and
    /// benchmarks of small sets. Results are the same either way.
    pub fn near_index_min(mut self, n: u64) -> IndexBuilder {
        self.mih_min = n;
        self
    }

    /// Adds one listed item: its JSON text (`""` for none), where it was in
    /// its source, which source, its category code, its [`EntryFlags`].
    /// Returns its record number, for [`IndexBuilder::add_key`].
    pub fn add_record(
        &mut self,
        info: &str,
        locator: u64,
        source: u32,
        category: Option<u16>,
        flags: u16,
    ) -> io::Result<u32> {
        if self.n_records >= u32::MAX as u64 - 1 {
            return Err(io::Error::other("more than 4 billion records in one set"));
        }
        let mut r = [0u8; index::RECORD_LEN];
        r[0..8].copy_from_slice(&self.info_len.to_le_bytes());
        r[8..16].copy_from_slice(&locator.to_le_bytes());
        r[16..20].copy_from_slice(&(info.len() as u32).to_le_bytes());
        r[20..24].copy_from_slice(&source.to_le_bytes());
        r[24..26].copy_from_slice(&category.unwrap_or(NO_CATEGORY).to_le_bytes());
        r[26..28].copy_from_slice(&flags.to_le_bytes());
        let number = self.n_records as u32;
        r[28..32].copy_from_slice(&number.to_le_bytes());
        self.current = Some((number, r));
        self.info.write_all(info.as_bytes())?;
        self.info_len += info.len() as u64;
        self.n_records += 1;
        Ok(number)
    }

    /// Adds a key of record `record`, which must be the record added last
    /// (keys follow their item). `key` must be `alg.width()` bytes.
    pub fn add_key(&mut self, alg: KeyAlg, key: &[u8], record: u32, flags: u16) -> io::Result<()> {
        if key.len() != alg.width() {
            return Err(io::Error::other(format!(
                "{alg} key of {} bytes",
                key.len()
            )));
        }
        let rec = match self.current {
            Some((n, rec)) if n == record => rec,
            _ => {
                return Err(io::Error::other(
                    "add_key: keys must be added right after their record",
                ));
            }
        };
        let mut k = [0u8; 32];
        k[..key.len()].copy_from_slice(key);
        let s = &mut self.algs[alg_slot(alg)];
        s.buf.push((k, record, rec));
        s.added += 1;
        s.empty += EntryFlags(flags).has(EntryFlags::EMPTY_FILE) as u64;
        s.low_quality += EntryFlags(flags).has(EntryFlags::LOW_QUALITY) as u64;
        self.buffered += 1;
        if self.buffered >= self.budget_items {
            self.spill_all()?;
        }
        Ok(())
    }

    fn spill_all(&mut self) -> io::Result<()> {
        for (slot, alg) in KeyAlg::ALL.iter().enumerate() {
            if self.algs[slot].buf.is_empty() {
                continue;
            }
            let path =
                self.tmp
                    .0
                    .join(format!("run-{}-{}", alg.code(), self.algs[slot].runs.len()));
            let s = &mut self.algs[slot];
            s.buf.sort_unstable_by_key(|a| (a.0, a.1));
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            let w = alg.width();
            for (k, _, rec) in s.buf.drain(..) {
                out.write_all(&k[..w])?;
                out.write_all(&rec)?;
            }
            out.flush()?;
            s.runs.push(path);
        }
        self.buffered = 0;
        Ok(())
    }

    /// Sorts, merges and writes everything to `out`, filling `meta.records`
    /// and `meta.keys`. Returns the metadata as written.
    pub fn finish(mut self, mut meta: SetMeta, out: &Path) -> io::Result<SetMeta> {
        self.info.flush()?;
        let any_runs = self.algs.iter().any(|s| !s.runs.is_empty());
        if any_runs {
            self.spill_all()?;
        }
        let mut per_alg = Vec::new();
        meta.keys.clear();
        for (slot, alg) in KeyAlg::ALL.iter().copied().enumerate() {
            let s = std::mem::take(&mut self.algs[slot]);
            if s.added == 0 {
                continue;
            }
            let files = self.merge(alg, s.buf, &s.runs, s.added)?;
            meta.keys.push(KeyCount {
                alg: alg.name().to_string(),
                keys: files.n,
                duplicates: s.added - files.n,
                empty_file_digests: s.empty,
                low_quality: s.low_quality,
            });
            per_alg.push((alg, files));
        }
        meta.records = self.n_records;
        let meta_json = serde_json::to_vec(&meta).map_err(io::Error::other)?;

        // Section plan: (kind, alg code, param, items, source).
        enum Src {
            Bytes(Vec<u8>),
            File(PathBuf),
        }
        let tmp = &self.tmp.0;
        let mut plan: Vec<(u16, u16, u32, u64, u64, Src)> = vec![
            (
                kind::META,
                0,
                0,
                1,
                meta_json.len() as u64,
                Src::Bytes(meta_json),
            ),
            (
                kind::INFO,
                0,
                0,
                self.n_records,
                self.info_len,
                Src::File(tmp.join("info")),
            ),
        ];
        for (alg, f) in per_alg {
            let c = alg.code();
            let w = alg.width() as u64;
            plan.push((kind::KEYS, c, 0, f.n, f.n * w, Src::File(f.keys)));
            let rl = index::RECORD_LEN as u64;
            plan.push((kind::RECORDS, c, 0, f.n, f.n * rl, Src::File(f.records)));
            let dir_items = (1u64 << f.dir_bits) + 1;
            plan.push((
                kind::DIR,
                c,
                f.dir_bits,
                dir_items,
                dir_items * 4,
                Src::File(f.dir),
            ));
            if let Some(m) = f.mih {
                let chunks = w / 2;
                let len = chunks * (mih::BUCKETS as u64 + 1 + f.n) * 4;
                plan.push((kind::MIH, c, chunks as u32, chunks, len, Src::File(m)));
            }
        }
        let table_end = (HEADER_LEN + plan.len() * SECTION_LEN) as u64;
        let mut offsets = Vec::new();
        let mut at = table_end;
        for p in &plan {
            at = at.div_ceil(ALIGN) * ALIGN;
            offsets.push(at);
            at += p.4;
        }
        let total = at;
        let mut header = Vec::with_capacity(table_end as usize);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&index::FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&(plan.len() as u32).to_le_bytes());
        header.extend_from_slice(&[0u8; 32]);
        header.extend_from_slice(&total.to_le_bytes());
        header.extend_from_slice(&[0u8; 8]);
        for (p, off) in plan.iter().zip(&offsets) {
            header.extend_from_slice(&p.0.to_le_bytes());
            header.extend_from_slice(&p.1.to_le_bytes());
            header.extend_from_slice(&p.2.to_le_bytes());
            header.extend_from_slice(&off.to_le_bytes());
            header.extend_from_slice(&p.4.to_le_bytes());
            header.extend_from_slice(&p.3.to_le_bytes());
        }

        let partial = partial_path(out);
        let result = (|| -> io::Result<()> {
            let file = File::create(&partial)?;
            let mut w = HashingWriter {
                out: BufWriter::with_capacity(1 << 20, file),
                hasher: blake3::Hasher::new(),
                pos: 0,
            };
            w.write_all(&header)?;
            for (p, off) in plan.iter().zip(&offsets) {
                w.write_all(&vec![0u8; (off - w.pos) as usize])?;
                let before = w.pos;
                match &p.5 {
                    Src::Bytes(b) => w.write_all(b)?,
                    Src::File(path) => {
                        io::copy(&mut File::open(path)?, &mut w)?;
                    }
                }
                if w.pos - before != p.4 {
                    return Err(io::Error::other("section length changed while writing"));
                }
            }
            let hash = w.hasher.finalize();
            let mut file = w.out.into_inner().map_err(|e| e.into_error())?;
            file.seek(io::SeekFrom::Start(16))?;
            file.write_all(hash.as_bytes())?;
            file.sync_all()?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
        fs::rename(&partial, out)?;
        Ok(meta)
    }

    fn merge(
        &self,
        alg: KeyAlg,
        mut buf: Vec<Item>,
        runs: &[PathBuf],
        added: u64,
    ) -> io::Result<AlgFiles> {
        let w = alg.width();
        let tmp = &self.tmp.0;
        let c = alg.code();
        let keys_path = tmp.join(format!("keys-{c}"));
        let recs_path = tmp.join(format!("records-{c}"));
        let mut keys = BufWriter::with_capacity(1 << 20, File::create(&keys_path)?);
        let mut recs = BufWriter::with_capacity(1 << 20, File::create(&recs_path)?);
        let bits = index::dir_bits(added);
        let mut dir = vec![0u32; (1usize << bits) + 1];
        let mut n = 0u64;
        // Duplicates are dropped per set, or per record for kinds whose keys
        // repeat across records (a frame shared by two videos is kept for each).
        let per_record = alg.repeats_across_records();
        let mut last: Option<([u8; 32], u32)> = None;
        let mut emit = |k: [u8; 32], rec: [u8; index::RECORD_LEN]| -> io::Result<()> {
            let number = if per_record {
                u32::from_le_bytes([rec[28], rec[29], rec[30], rec[31]])
            } else {
                0
            };
            if last == Some((k, number)) {
                return Ok(());
            }
            last = Some((k, number));
            keys.write_all(&k[..w])?;
            recs.write_all(&rec)?;
            let prefix = u32::from_be_bytes([k[0], k[1], k[2], k[3]]) as u64;
            let p = if bits == 0 {
                0
            } else {
                (prefix >> (32 - bits)) as usize
            };
            dir[p + 1] += 1;
            n += 1;
            Ok(())
        };
        if runs.is_empty() {
            buf.sort_unstable_by_key(|a| (a.0, a.1));
            for (k, _, rec) in buf {
                emit(k, rec)?;
            }
        } else {
            let mut readers = runs
                .iter()
                .map(|p| File::open(p).map(|f| BufReader::with_capacity(256 << 10, f)))
                .collect::<io::Result<Vec<_>>>()?;
            let next = |i: usize, rd: &mut Vec<BufReader<File>>| -> io::Result<Option<Item>> {
                const RL: usize = index::RECORD_LEN;
                let mut b = [0u8; 32 + RL];
                match rd[i].read_exact(&mut b[..w + RL]) {
                    Ok(()) => {
                        let mut k = [0u8; 32];
                        k[..w].copy_from_slice(&b[..w]);
                        let mut rec = [0u8; RL];
                        rec.copy_from_slice(&b[w..w + RL]);
                        let number = u32::from_le_bytes([rec[28], rec[29], rec[30], rec[31]]);
                        Ok(Some((k, number, rec)))
                    }
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(e),
                }
            };
            let mut heap = BinaryHeap::new();
            for i in 0..readers.len() {
                if let Some(item) = next(i, &mut readers)? {
                    heap.push(Reverse((item, i)));
                }
            }
            while let Some(Reverse(((k, _, rec), i))) = heap.pop() {
                emit(k, rec)?;
                if let Some(item) = next(i, &mut readers)? {
                    heap.push(Reverse((item, i)));
                }
            }
        }
        keys.flush()?;
        recs.flush()?;
        drop((keys, recs));
        for p in 1..dir.len() {
            dir[p] += dir[p - 1];
        }
        let dir_path = tmp.join(format!("dir-{c}"));
        write_u32s(&dir_path, &dir)?;
        let mih_path = if alg.is_perceptual() && n >= self.mih_min {
            let path = tmp.join(format!("mih-{c}"));
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            let key_file = File::open(&keys_path)?;
            // SAFETY: our own temporary file (not empty: n > 0), not modified while mapped.
            let keys = unsafe { memmap2::Mmap::map(&key_file)? };
            for chunk in 0..w / 2 {
                for v in mih::build_chunk_table(&keys, w, chunk) {
                    out.write_all(&v.to_le_bytes())?;
                }
            }
            out.flush()?;
            Some(path)
        } else {
            None
        };
        Ok(AlgFiles {
            n,
            keys: keys_path,
            records: recs_path,
            dir: dir_path,
            dir_bits: bits,
            mih: mih_path,
        })
    }
}

struct AlgFiles {
    n: u64,
    keys: PathBuf,
    records: PathBuf,
    dir: PathBuf,
    dir_bits: u32,
    mih: Option<PathBuf>,
}

fn write_u32s(path: &Path, v: &[u32]) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    for x in v {
        out.write_all(&x.to_le_bytes())?;
    }
    out.flush()
}

/// Where an index is written before it is complete.
pub(crate) fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Writes through, hashing everything from [`HASHED_FROM`] on.
struct HashingWriter<W: Write> {
    out: W,
    hasher: blake3::Hasher,
    pos: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        let start = (HASHED_FROM as u64).saturating_sub(self.pos).min(n as u64) as usize;
        self.hasher.update(&buf[start..n]);
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
