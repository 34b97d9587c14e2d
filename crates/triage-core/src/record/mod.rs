//! Record stage: what happened to every entry, and the writers that put it on disk.
//!
//! Input: one [`Entry`] per walked entry, in walk order, plus a
//! [`ScanHeader`] before and a [`Summary`] after. Output: bytes in one of the
//! [`OutputFormat`]s. A writer fails only when its output cannot be written;
//! that aborts the scan, because a record that cannot be kept is worse than
//! no scan.
//!
//! Every entry ends in exactly one [`Outcome`]: hashed, skipped with a
//! [`SkipReason`], or failed with a [`Failure`] naming the stage, the OS error
//! and how many bytes were read. Nothing is dropped silently.
//!
//! The JSON Lines form is the reference: it is versioned
//! ([`SCHEMA_VERSION`]), documented in `docs/scan-schema.md`, and read back by
//! [`jsonl::Reader`]. CSV and hashdeep are views of it for other tools.

pub mod csv;
pub mod hashdeep;
pub mod jsonl;
pub mod output;
pub mod provenance;
pub mod seal;
mod wire;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use crate::hash::{AlgorithmSet, Digests};
use crate::hashset::{Index, SetKind, SetMeta};
use crate::identify::FileType;
pub use crate::item::{
    Allocation, Failure, FailureKind, FileKind, FileMeta, Location, OsError, Partition, SkipReason,
    Stage,
};
use crate::matching::{Match, MatchConfig};
use crate::path::RawPath;
use crate::perceptual::decode::DecodeError;
use crate::perceptual::video::{VideoError, VideoHashes};
use crate::perceptual::{ImageInfo, Perceptual};
use crate::time::Timestamp;
use provenance::{BuildInfo, CaseInfo, HostInfo};
use seal::PublicKey;

/// Name of the JSON Lines schema written by [`jsonl::Writer`].
pub const SCHEMA_NAME: &str = "triage-scan";
/// Version of that schema. Bumped on any change a reader could notice;
/// additions of optional keys keep the version.
pub const SCHEMA_VERSION: u32 = 1;

/// One walked entry and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the scan root (empty when the root itself is the file).
    pub path: RawPath,
    /// Metadata from the walk; `None` only when `lstat` itself failed.
    pub meta: Option<FileMeta>,
    /// Where in a disk image the item is; `None` in a directory tree and
    /// for a child item (its parent's entry has it).
    pub location: Option<Location>,
    /// For a child item (an archive member…): the item it is inside.
    pub within: Option<crate::item::Within>,
    /// Hashed, skipped or failed.
    pub outcome: Outcome,
}

/// The three ways an entry can end.
// Most entries are hashed, and entries stream one at a time: boxing the
// common variant would cost an allocation per file to save bytes on the
// rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Read completely and hashed.
    Hashed(Hashed),
    /// Deliberately not read.
    Skipped(SkipReason),
    /// Could not be read completely.
    Failed(Failure),
}

impl From<crate::item::NotRead> for Outcome {
    fn from(n: crate::item::NotRead) -> Outcome {
        match n {
            crate::item::NotRead::Skipped(r) => Outcome::Skipped(r),
            crate::item::NotRead::Failed(f) => Outcome::Failed(f),
        }
    }
}

impl Outcome {
    /// `"file"`, `"skipped"` or `"failed"`: the `record` key of the JSON form.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Hashed(_) => "file",
            Outcome::Skipped(_) => "skipped",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// The result of reading and hashing a regular file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    /// Digests of exactly the bytes read.
    pub digests: Digests,
    /// Bytes read (equal to the size; a file whose size changed is a failure).
    pub bytes_read: u64,
    /// Content type from the leading bytes.
    pub file_type: FileType,
    /// `Some(true)` when the extension does not fit the content type (a JPEG
    /// named `.dll`); `None` when there is no extension or the type is unknown.
    pub ext_mismatch: Option<bool>,
    /// Zero-length: its digests appear in many published lists and cause false hits.
    pub empty: bool,
    /// Perceptual hashes, for images that decoded.
    pub perceptual: Vec<Perceptual>,
    /// Dimensions, EXIF orientation and truncation of a decoded image.
    pub image: Option<ImageInfo>,
    /// Why an image's perceptual hashes are missing (unsupported format,
    /// damaged, over the limits). The exact digests are still valid.
    pub perceptual_error: Option<DecodeError>,
    /// Hits in the scan's hash sets, in set order.
    pub matches: Vec<Match>,
    /// Why near matching was not done for this file (PDQ quality too low).
    pub near_skipped: Option<String>,
    /// For a container (an archive…): whether its child items follow
    /// (boxed: most entries have none).
    pub expansion: Option<Box<crate::item::Expansion>>,
    /// For a video: its vPDQ frame hashes, or why it has none (boxed:
    /// most entries are not videos).
    pub video: Option<Box<Result<VideoHashes, VideoError>>>,
}

/// What the scan was asked to do: written before the first entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanHeader {
    /// `triage` version that wrote the records.
    pub tool_version: String,
    /// The evidence root, absolute.
    pub root: PathBuf,
    /// When the scan started.
    pub started: Timestamp,
    /// Digests computed for every regular file.
    pub algorithms: AlgorithmSet,
    /// Whether directories on other file systems were skipped.
    pub one_file_system: bool,
    /// Perceptual algorithms computed for images, by tag (e.g. `pdq/1`).
    pub perceptual: Vec<String>,
    /// Whether the 8 dihedral PDQ hashes were computed.
    pub dihedral: bool,
    /// Whether every distinct frame of animations was hashed.
    pub all_frames: bool,
    /// Hashing threads.
    pub threads: usize,
    /// Files read concurrently.
    pub readers: usize,
    /// What the scanner assumed about the evidence's storage, in words.
    pub device: String,
    /// Whether the evidence root is on a read-only mount (`None`: unknown).
    /// On a read-write mount, reading symlink targets moves the links' atimes.
    pub read_only_mount: Option<bool>,
    /// Whether symlink targets were read and recorded.
    pub link_targets: bool,
    /// The hash sets matched against, as they were when the scan started.
    pub hashsets: Vec<HashSetUse>,
    /// Near-matching thresholds (meaningful when there are hash sets).
    pub matching: MatchConfig,
    /// Whether large JPEGs were decoded at reduced scale (approximate PDQ).
    pub fast_decode: bool,
    /// How videos were hashed, and by which FFmpeg (`None`: not hashed).
    pub video: Option<crate::perceptual::video::VideoHeader>,
    /// Which containers were looked inside, how deep, with what budgets.
    pub expand: crate::expand::ExpandConfig,
    /// This run's identifier (a random UUID).
    pub run_id: String,
    /// The case, as the examiner gave it; `None` when the scan was run
    /// with `--no-case`.
    pub case: Option<CaseInfo>,
    /// The machine and account.
    pub host: HostInfo,
    /// The build of `triage`.
    pub build: BuildInfo,
    /// The full command line, each argument as text (non-UTF-8 bytes escaped
    /// as in [`RawPath::escaped`]). Empty when a library caller gives none.
    pub command_line: Vec<String>,
    /// When checkpoints are written.
    pub checkpoints: Checkpoints,
    /// The key that signs checkpoints and the footer, if any.
    pub signing_key: Option<PublicKey>,
    /// Other files this scan writes besides the log (their digests are in
    /// the footer).
    pub outputs: Vec<OutputFile>,
    /// When the evidence is a disk image: what it is (`None` for a
    /// directory tree).
    pub image: Option<crate::item::ImageInfo>,
}

/// When the audit log writes a checkpoint (sealed, and flushed to disk):
/// after this many entries or this many seconds, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoints {
    /// Entries between checkpoints (0: never by count).
    pub every_entries: u64,
    /// Seconds between checkpoints (0: never by time).
    pub every_secs: u64,
}

impl Default for Checkpoints {
    /// Every 10,000 entries or 60 seconds: a killed scan loses at most a
    /// minute of signed work, and sealing costs nothing measurable.
    fn default() -> Self {
        Checkpoints {
            every_entries: 10_000,
            every_secs: 60,
        }
    }
}

/// Another output file of a scan (CSV, hashdeep), named in the header and
/// fingerprinted in the footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFile {
    /// Its format, as `--format` names it.
    pub format: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Bytes written (known at the end).
    pub bytes: Option<u64>,
    /// SHA-256 of its content (known at the end).
    pub sha256: Option<String>,
}

/// A hash set a scan used, as its header records it: which file, which
/// exact content (BLAKE3 of the index), and everything the index says about
/// its sources (their SHA-256, declared versions, rejected lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashSetUse {
    /// The index file as given.
    pub path: PathBuf,
    /// BLAKE3 of the index content: as the scan computed it when
    /// `verified`, else as the index's header claims.
    pub blake3: String,
    /// Whether the scan read the whole index and checked it
    /// ([`Index::verify`]) before using it. Every scan does; logs written
    /// before that check existed read back as `false`.
    pub verified: bool,
    /// The index's metadata.
    pub meta: SetMeta,
}

impl HashSetUse {
    /// What to record for an opened index: the digest its verification
    /// computed, or, if it was never verified, the one it claims.
    pub fn of(index: &Index) -> HashSetUse {
        let verified = index.verified_hash();
        HashSetUse {
            path: index.path().to_path_buf(),
            verified: verified.is_some(),
            blake3: verified.unwrap_or_else(|| index.content_hash()),
            meta: index.meta().clone(),
        }
    }
}

/// A checkpoint of the audit log: the records before it are sealed (signed
/// with a key) and on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Entries recorded before it.
    pub entries: u64,
    /// When it was written.
    pub time: Timestamp,
}

/// The record that `triage scan --resume` continued an unfinished log:
/// who resumed, when, and what was cut from the end of the old log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// When the resumed scan started.
    pub started: Timestamp,
    /// Entries recorded before the resume (they are not read again).
    pub entries_before: u64,
    /// Bytes of an incomplete last line removed from the log (a write cut
    /// short by the kill); 0 when the log ended on a complete line.
    pub discarded_tail_bytes: u64,
    /// The resumed run's identifier.
    pub run_id: String,
    /// Where it ran.
    pub host: HostInfo,
    /// With which build.
    pub build: BuildInfo,
    /// Version of the resuming `triage`.
    pub tool_version: String,
    /// Its command line.
    pub command_line: Vec<String>,
}

/// The facts of an entry that [`Summary`] counts.
pub(crate) enum Tally<'a> {
    Hashed {
        bytes_read: u64,
        empty: bool,
        image: bool,
        image_error: Option<&'a str>,
        video: bool,
        video_error: Option<&'a str>,
        near_skipped: bool,
        matches: Vec<TallyMatch<'a>>,
    },
    Skipped(&'a str),
    Failed(&'a str),
}

/// The facts of a hit that [`Summary`] counts.
pub(crate) struct TallyMatch<'a> {
    pub(crate) set: &'a str,
    pub(crate) kind: SetKind,
    pub(crate) category: Option<crate::hashset::Category>,
    pub(crate) empty_file_digest: bool,
}

impl TallyMatch<'_> {
    fn is_find(&self) -> bool {
        self.kind == SetKind::Alert && !self.empty_file_digest
    }
}

impl<'a> Tally<'a> {
    fn of(e: &'a Entry) -> Tally<'a> {
        match &e.outcome {
            Outcome::Hashed(h) => Tally::Hashed {
                bytes_read: h.bytes_read,
                empty: h.empty,
                image: !h.perceptual.is_empty(),
                image_error: h.perceptual_error.as_ref().map(DecodeError::code),
                video: matches!(h.video.as_deref(), Some(Ok(_))),
                video_error: match h.video.as_deref() {
                    Some(Err(e)) => Some(e.code()),
                    _ => None,
                },
                near_skipped: h.near_skipped.is_some(),
                matches: h
                    .matches
                    .iter()
                    .map(|m| TallyMatch {
                        set: &m.set,
                        kind: m.kind,
                        category: m.category,
                        empty_file_digest: m.empty_file_digest,
                    })
                    .collect(),
            },
            Outcome::Skipped(r) => Tally::Skipped(r.code()),
            Outcome::Failed(f) => Tally::Failed(f.stage.code()),
        }
    }
}

/// Totals: written after the last entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Regular files read and hashed (zero-length ones included).
    pub files_hashed: u64,
    /// Of those, zero-length files.
    pub empty_files: u64,
    /// Bytes read and hashed.
    pub bytes_hashed: u64,
    /// Entries skipped, by [`SkipReason::code`].
    pub skipped: BTreeMap<String, u64>,
    /// Entries failed, by [`Stage::code`].
    pub failed: BTreeMap<String, u64>,
    /// Directories listed (they are not entries of their own).
    pub directories: u64,
    /// Files with perceptual hashes.
    pub images_hashed: u64,
    /// Images without perceptual hashes, by [`DecodeError::code`].
    pub image_errors: BTreeMap<String, u64>,
    /// Files with at least one hit in an alert set (empty-file digests aside).
    pub files_matched: u64,
    /// Files with hits only in known-good sets.
    pub files_known: u64,
    /// Files with hits, by set name, then by category (`uncategorised`
    /// when the entry has none); a file counts once per set and category.
    pub matches: BTreeMap<String, BTreeMap<String, u64>>,
    /// Files with alert hits, by their most serious category (each file
    /// once, whatever the number of sets; `uncategorised` when none has one).
    pub files_by_category: BTreeMap<String, u64>,
    /// Hits on the digest of an empty file (reported, not counted as finds).
    pub empty_digest_hits: u64,
    /// Images whose near matching was skipped (low PDQ quality).
    pub near_skipped: u64,
    /// Videos given vPDQ frame hashes.
    pub videos_hashed: u64,
    /// Videos without them, by [`VideoError::code`] (`no_video_stream`
    /// counts audio-only files of video container types).
    pub video_errors: BTreeMap<String, u64>,
    /// When the scan started.
    pub started: Option<Timestamp>,
    /// When it ended.
    pub finished: Option<Timestamp>,
    /// Wall-clock seconds.
    pub duration_secs: f64,
    /// Whether the scan was cancelled before the walk finished.
    pub interrupted: bool,
    /// The other files written, with their digests.
    pub outputs: Vec<OutputFile>,
    /// When the evidence is a disk image: the SHA-256 of each of its files,
    /// read in full beside the scan.
    pub image_segments: Vec<crate::item::SegmentDigest>,
    /// When the scan verified the image's medium (`--verify-image`): its
    /// digests against those stored at acquisition; `None` when not asked,
    /// not an image, or interrupted first.
    pub image_verification: Option<crate::item::MediaCheck>,
    /// How many files were read at once, and how that changed as the scan
    /// measured its throughput; `None` where the scan did not say (older
    /// logs, scans not run by [`crate::scan::Scanner`]). Timing-dependent,
    /// like the times above: not part of what a scan reproduces.
    pub reads: Option<ReadTuning>,
}

/// The number of files read at once over a scan: where it started (from
/// the device's class, or `--readers`), the changes the scan made while
/// measuring throughput, and where it ended.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadTuning {
    /// Whether the number followed the measured throughput (false: fixed
    /// by the caller).
    pub adaptive: bool,
    /// Files read at once at the start.
    pub start: usize,
    /// At the end.
    pub end: usize,
    /// Each change, in order (the first 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ReadersChange>,
    /// Changes made after the first 64, counted only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_changes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One change of [`ReadTuning`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadersChange {
    /// Seconds since the scan started, to a tenth.
    pub at_secs: f64,
    /// Files read at once from then on.
    pub readers: usize,
    /// Throughput over the measuring period before the change, MB/s.
    pub mb_per_s: f64,
}

impl Summary {
    /// Counts one entry.
    pub fn count(&mut self, e: &Entry) {
        self.count_tally(&Tally::of(e));
    }

    /// The counting rules, on the few facts of an entry they need (the
    /// verifier reads only these from each line).
    pub(crate) fn count_tally(&mut self, t: &Tally<'_>) {
        match t {
            Tally::Hashed {
                bytes_read,
                empty,
                image,
                image_error,
                video,
                video_error,
                near_skipped,
                matches,
            } => {
                self.videos_hashed += *video as u64;
                if let Some(code) = video_error {
                    *self.video_errors.entry(code.to_string()).or_default() += 1;
                }
                self.files_hashed += 1;
                self.bytes_hashed += bytes_read;
                self.empty_files += *empty as u64;
                self.images_hashed += *image as u64;
                if let Some(code) = image_error {
                    *self.image_errors.entry(code.to_string()).or_default() += 1;
                }
                self.near_skipped += *near_skipped as u64;
                self.count_matches(matches);
            }
            Tally::Skipped(code) => *self.skipped.entry(code.to_string()).or_default() += 1,
            Tally::Failed(stage) => *self.failed.entry(stage.to_string()).or_default() += 1,
        }
    }

    fn count_matches(&mut self, matches: &[TallyMatch<'_>]) {
        self.empty_digest_hits += matches.iter().filter(|m| m.empty_file_digest).count() as u64;
        let find = matches.iter().any(TallyMatch::is_find);
        self.files_matched += find as u64;
        if find {
            let worst = crate::matching::worst(
                matches
                    .iter()
                    .filter(|m| m.is_find())
                    .filter_map(|m| m.category),
            )
            .map_or_else(|| "uncategorised".to_string(), |c| c.to_string());
            *self.files_by_category.entry(worst).or_default() += 1;
        }
        let known = matches
            .iter()
            .any(|m| m.kind == SetKind::KnownGood && !m.empty_file_digest);
        self.files_known += (known && !find) as u64;
        let mut seen: Vec<(&str, String)> = Vec::new();
        for m in matches.iter().filter(|m| !m.empty_file_digest) {
            let cat = m
                .category
                .map_or_else(|| "uncategorised".to_string(), |c| c.to_string());
            if !seen.iter().any(|(s, c)| *s == m.set && *c == cat) {
                *self
                    .matches
                    .entry(m.set.to_string())
                    .or_default()
                    .entry(cat.clone())
                    .or_default() += 1;
                seen.push((m.set, cat));
            }
        }
    }

    /// Total entries skipped.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Total entries failed.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Total entries recorded.
    pub fn entries(&self) -> u64 {
        self.files_hashed + self.skipped_total() + self.failed_total()
    }

    /// Whether the per-entry counts of `self` and `other` agree (times,
    /// directories, outputs and the image's own digests aside): how a
    /// footer is checked against the records before it.
    pub fn same_counts(&self, other: &Summary) -> bool {
        let counts = |s: &Summary| Summary {
            directories: 0,
            started: None,
            finished: None,
            duration_secs: 0.0,
            interrupted: false,
            outputs: Vec::new(),
            image_segments: Vec::new(),
            image_verification: None,
            reads: None,
            ..s.clone()
        };
        counts(self) == counts(other)
    }
}

/// Passes bytes through to `W`, counting them and computing their SHA-256:
/// how the footer learns the digests of the other files a scan writes.
pub struct DigestingWriter<W> {
    inner: W,
    sha: sha2::Sha256,
    bytes: u64,
}

impl<W: io::Write> DigestingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        use sha2::Digest;
        DigestingWriter {
            inner,
            sha: sha2::Sha256::new(),
            bytes: 0,
        }
    }

    /// Flushes, and returns the inner writer, the byte count and the hex SHA-256.
    pub fn finish(mut self) -> io::Result<(W, u64, String)> {
        use sha2::Digest;
        self.inner.flush()?;
        let hex = crate::hash::to_hex(&self.sha.finalize());
        Ok((self.inner, self.bytes, hex))
    }
}

impl<W: io::Write> io::Write for DigestingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A destination for scan records in some format.
pub trait RecordWriter {
    /// Writes what precedes the entries.
    fn header(&mut self, header: &ScanHeader) -> io::Result<()>;
    /// Writes one entry.
    fn entry(&mut self, entry: &Entry) -> io::Result<()>;
    /// Writes the totals and flushes.
    fn summary(&mut self, summary: &Summary) -> io::Result<()>;
}

/// The output formats of `triage scan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// JSON Lines, schema [`SCHEMA_NAME`] v[`SCHEMA_VERSION`]: the complete record.
    Jsonl,
    /// CSV, one row per entry, RFC 4180 quoting.
    Csv,
    /// `HASHDEEP-1.0`, readable by `hashdeep -k` (MD5/SHA-1/SHA-256 only).
    Hashdeep,
}

impl OutputFormat {
    /// A writer of this format over `out`. `root` is the absolute evidence
    /// root, needed by formats that store absolute paths (hashdeep).
    pub fn writer<'w, W: io::Write + 'w>(
        self,
        out: W,
        root: &std::path::Path,
    ) -> Box<dyn RecordWriter + 'w> {
        match self {
            OutputFormat::Jsonl => Box::new(jsonl::Writer::new(out)),
            OutputFormat::Csv => Box::new(csv::Writer::new(out)),
            OutputFormat::Hashdeep => Box::new(hashdeep::Writer::new(out, root)),
        }
    }
}
