//! The flat serde shape of every JSON Lines record (schema `triage-scan` v1).
//!
//! Domain types ([`Entry`], [`ScanHeader`], [`Summary`]) are free to change
//! shape; this module is the one place that fixes the key names on disk.
//! `docs/scan-schema.md` documents every key.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::provenance::{BuildInfo, CaseInfo, HostInfo};
use super::seal::PublicKey;
use super::{
    Allocation, Entry, Failure, FailureKind, FileKind, FileMeta, Hashed, Location, OsError,
    Outcome, Partition, SCHEMA_NAME, SCHEMA_VERSION, ScanHeader, SkipReason, Stage, Summary,
};
use super::{Checkpoint, Checkpoints, HashSetUse, OutputFile, Resume, Tally, TallyMatch};
use crate::hash::{Algorithm, AlgorithmSet, Digests, from_hex};
use crate::hashset::{Category, KeyAlg, Scheme, SetKind, SetMeta};
use crate::identify::FileType;
use crate::matching::{Match, MatchConfig};
use crate::path::RawPath;
use crate::perceptual::decode::DecodeError;
use crate::perceptual::pdq::{BadPdqHash, PDQ_TAG, PdqHash};
use crate::perceptual::video::{VPDQ_TAG, VideoError, VideoFrame, VideoHashes, VideoInfo};
use crate::perceptual::{ImageInfo, ImgHashAlg, Perceptual};
use crate::time::Timestamp;

/// One line of the JSON Lines file.
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "record", rename_all = "snake_case")]
pub(crate) enum WireLine {
    Header(WireHeader),
    File(WireEntry),
    Skipped(WireEntry),
    Failed(WireEntry),
    Checkpoint(WireCheckpoint),
    Resume(WireResume),
    Summary(WireSummary),
}

/// Only what [`super::Summary`] counts of an entry line, borrowed from the
/// line: the verifier reads a million of these a second, where parsing
/// whole entries would allocate for every field.
#[derive(Deserialize, Debug)]
pub(crate) struct WireTally<'a> {
    #[serde(borrow)]
    record: Cow<'a, str>,
    #[serde(default)]
    bytes_read: Option<u64>,
    #[serde(default)]
    empty: Option<bool>,
    #[serde(default)]
    perceptual: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    perceptual_error: Option<WireTallyError<'a>>,
    #[serde(default)]
    video: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    video_error: Option<WireTallyError<'a>>,
    #[serde(default, borrow)]
    matches: Option<Vec<WireTallyMatch<'a>>>,
    #[serde(default)]
    near_skipped: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stage: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct WireTallyError<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct WireTallyMatch<'a> {
    #[serde(borrow)]
    set: Cow<'a, str>,
    kind: SetKind,
    #[serde(default, borrow)]
    category: Option<WireTallyCategory<'a>>,
    #[serde(default)]
    empty_file_digest: bool,
}

#[derive(Deserialize, Debug)]
pub(crate) struct WireTallyCategory<'a> {
    scheme: Scheme,
    #[serde(borrow)]
    code: Cow<'a, str>,
}

impl<'a> WireTally<'a> {
    /// The counted facts, checked as far as counting needs.
    pub(crate) fn tally(&'a self) -> Result<Tally<'a>, String> {
        Ok(match &*self.record {
            "file" => Tally::Hashed {
                bytes_read: self.bytes_read.ok_or("'bytes_read' missing")?,
                empty: self.empty.ok_or("'empty' missing")?,
                image: self.perceptual.is_some(),
                image_error: self.perceptual_error.as_ref().map(|e| &*e.kind),
                video: self.video.is_some(),
                video_error: self.video_error.as_ref().map(|e| &*e.kind),
                near_skipped: self.near_skipped.is_some(),
                matches: self
                    .matches
                    .iter()
                    .flatten()
                    .map(|m| {
                        Ok(TallyMatch {
                            set: &m.set,
                            kind: m.kind,
                            category: match &m.category {
                                None => None,
                                Some(c) => Some(Category {
                                    scheme: c.scheme,
                                    code: c.scheme.parse_code(&c.code).ok_or_else(|| {
                                        format!(
                                            "category '{}' is not a code of {}",
                                            c.code, c.scheme
                                        )
                                    })?,
                                }),
                            },
                            empty_file_digest: m.empty_file_digest,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            },
            "skipped" => Tally::Skipped(self.reason.as_deref().ok_or("'reason' missing")?),
            "failed" => Tally::Failed(self.stage.as_deref().ok_or("'stage' missing")?),
            other => return Err(format!("'{other}' is not an entry record")),
        })
    }
}

/// A checkpoint: how many entries came before it, and when.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireCheckpoint {
    pub(crate) entries: u64,
    pub(crate) time: String,
}

/// A resumed scan continuing the log.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireResume {
    pub(crate) started: String,
    pub(crate) entries_before: u64,
    pub(crate) discarded_tail_bytes: u64,
    pub(crate) run_id: String,
    pub(crate) host: HostInfo,
    pub(crate) build: BuildInfo,
    #[serde(default)]
    pub(crate) tool_version: String,
    #[serde(default)]
    pub(crate) command_line: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireKey {
    algorithm: String,
    fingerprint: String,
    public_key: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireCheckpoints {
    every_entries: u64,
    every_secs: u64,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireOutput {
    format: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

impl WireCheckpoint {
    pub(crate) fn from(c: &Checkpoint) -> WireCheckpoint {
        WireCheckpoint {
            entries: c.entries,
            time: c.time.to_string(),
        }
    }

    pub(crate) fn into_checkpoint(self) -> Result<Checkpoint, String> {
        Ok(Checkpoint {
            entries: self.entries,
            time: self.time.parse().map_err(|e| format!("time: {e}"))?,
        })
    }
}

impl WireResume {
    pub(crate) fn from(r: &Resume) -> WireResume {
        WireResume {
            started: r.started.to_string(),
            entries_before: r.entries_before,
            discarded_tail_bytes: r.discarded_tail_bytes,
            run_id: r.run_id.clone(),
            host: r.host.clone(),
            build: r.build.clone(),
            tool_version: r.tool_version.clone(),
            command_line: r.command_line.clone(),
        }
    }

    pub(crate) fn into_resume(self) -> Result<Resume, String> {
        Ok(Resume {
            started: self.started.parse().map_err(|e| format!("started: {e}"))?,
            entries_before: self.entries_before,
            discarded_tail_bytes: self.discarded_tail_bytes,
            run_id: self.run_id,
            host: self.host,
            build: self.build,
            tool_version: self.tool_version,
            command_line: self.command_line,
        })
    }
}

impl WireOutput {
    fn from(o: &OutputFile) -> WireOutput {
        WireOutput {
            format: o.format.clone(),
            path: o.path.to_string_lossy().into_owned(),
            bytes: o.bytes,
            sha256: o.sha256.clone(),
        }
    }

    fn into_output(self) -> OutputFile {
        OutputFile {
            format: self.format,
            path: PathBuf::from(self.path),
            bytes: self.bytes,
            sha256: self.sha256,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WireHeader {
    schema: String,
    schema_version: u32,
    tool: String,
    tool_version: String,
    #[serde(default)]
    run_id: String,
    #[serde(default)]
    case: Option<CaseInfo>,
    #[serde(default)]
    no_case: bool,
    #[serde(default)]
    build: BuildInfo,
    #[serde(default)]
    host: HostInfo,
    #[serde(default)]
    command_line: Vec<String>,
    #[serde(flatten)]
    root: WirePath<RootKeys>,
    started: String,
    algorithms: Vec<String>,
    one_file_system: bool,
    #[serde(default)]
    perceptual: Vec<String>,
    #[serde(default)]
    dihedral: bool,
    #[serde(default)]
    all_frames: bool,
    threads: usize,
    readers: usize,
    device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only_mount: Option<bool>,
    link_targets: bool,
    #[serde(default)]
    hashsets: Vec<WireHashSet>,
    #[serde(default)]
    matching: Option<WireMatchConfig>,
    #[serde(default)]
    fast_decode: bool,
    /// Absent when videos were not hashed (and in logs from before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    video: Option<WireVideoHeader>,
    /// Absent in logs written before expansion existed: nothing expanded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expand: Option<WireExpand>,
    #[serde(default)]
    checkpoints: Option<WireCheckpoints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_key: Option<WireKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<WireOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<crate::item::ImageInfo>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireHashSet {
    path: String,
    blake3: String,
    /// Absent in logs from before scans verified their sets.
    #[serde(default)]
    verified: bool,
    set: SetMeta,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireMatchConfig {
    pdq_distance: u32,
    pdq_min_quality: u8,
    img_distance: u32,
    /// Absent in logs from before video matching: its defaults.
    #[serde(default)]
    video: Option<WireVideoMatchConfig>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireVideoMatchConfig {
    frame_distance: u32,
    min_quality: u8,
    known_percent: u8,
    query_percent: u8,
}

/// One hit, inside its file's record.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireMatch {
    set: String,
    kind: SetKind,
    alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    distance: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<WireCategory>,
    source: String,
    at: u64,
    // A Value, not a RawValue: serde's flatten (in WireEntry) cannot carry
    // raw values. The importer writes objects with sorted keys, which is
    // also how a Value writes them back, so records round-trip exactly.
    entry: serde_json::Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    empty_file_digest: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    video: Option<WireVideoMatch>,
}

/// How a video matched a known one: frame counts each way, and the
/// scanned video's matched frames as `[frame, timestamp]` pairs.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireVideoMatch {
    known_percent: f64,
    query_percent: f64,
    known_matched: u64,
    known_frames: u64,
    query_matched: u64,
    query_frames: u64,
    frames: Vec<(u64, f64)>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct WireCategory {
    scheme: Scheme,
    code: String,
    label: String,
}

impl WireMatch {
    fn from(m: &Match) -> WireMatch {
        WireMatch {
            set: m.set.clone(),
            kind: m.kind,
            alg: m.alg.name().to_string(),
            distance: m.distance,
            frame: m.frame,
            transform: m.transform.clone(),
            category: m.category.map(|c| WireCategory {
                scheme: c.scheme,
                code: c.scheme.code_text(c.code),
                label: c.label().to_string(),
            }),
            source: m.source.clone(),
            at: m.at,
            // Entries are JSON objects written by our importer; anything else
            // is kept as a string rather than lost.
            entry: serde_json::from_str(&m.entry)
                .unwrap_or_else(|_| serde_json::Value::String(m.entry.clone())),
            empty_file_digest: m.empty_file_digest,
            video: m.video.as_ref().map(|v| WireVideoMatch {
                known_percent: (v.known_percent() * 100.0).round() / 100.0,
                query_percent: (v.query_percent() * 100.0).round() / 100.0,
                known_matched: v.known_matched,
                known_frames: v.known_frames,
                query_matched: v.query_matched,
                query_frames: v.query_frames,
                frames: v.frames.clone(),
            }),
        }
    }

    fn into_match(self) -> Result<Match, String> {
        Ok(Match {
            alg: KeyAlg::parse(&self.alg)
                .ok_or_else(|| format!("unknown match alg '{}'", self.alg))?,
            category: match self.category {
                None => None,
                Some(c) => Some(Category {
                    scheme: c.scheme,
                    code: c.scheme.parse_code(&c.code).ok_or_else(|| {
                        format!("category '{}' is not a code of {}", c.code, c.scheme)
                    })?,
                }),
            },
            set: self.set,
            kind: self.kind,
            distance: self.distance,
            frame: self.frame,
            transform: self.transform,
            source: self.source,
            at: self.at,
            entry: self.entry.to_string(),
            empty_file_digest: self.empty_file_digest,
            video: match self.video {
                None => None,
                Some(v) => {
                    if v.frames.iter().any(|(_, t)| !t.is_finite()) {
                        return Err("a matched frame's timestamp is not a number".into());
                    }
                    Some(Box::new(crate::matching::VideoMatch {
                        known_matched: v.known_matched,
                        known_frames: v.known_frames,
                        query_matched: v.query_matched,
                        query_frames: v.query_frames,
                        frames: v.frames,
                    }))
                }
            },
        })
    }
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WireSummary {
    files_hashed: u64,
    empty_files: u64,
    bytes_hashed: u64,
    skipped: BTreeMap<String, u64>,
    failed: BTreeMap<String, u64>,
    directories: u64,
    #[serde(default)]
    images_hashed: u64,
    #[serde(default)]
    image_errors: BTreeMap<String, u64>,
    #[serde(default)]
    files_matched: u64,
    #[serde(default)]
    files_known: u64,
    #[serde(default)]
    matches: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(default)]
    files_by_category: BTreeMap<String, u64>,
    #[serde(default)]
    empty_digest_hits: u64,
    #[serde(default)]
    near_skipped: u64,
    #[serde(default)]
    videos_hashed: u64,
    #[serde(default)]
    video_errors: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished: Option<String>,
    duration_secs: f64,
    interrupted: bool,
    #[serde(default)]
    entries: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<WireOutput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    image_segments: Vec<crate::item::SegmentDigest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_verification: Option<crate::item::MediaCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reads: Option<crate::record::ReadTuning>,
}

/// Key names of one lossless path field: UTF-8 text under `TEXT`, anything
/// else as base64 under `B64`.
pub(crate) trait PathKeys {
    const TEXT: &'static str;
    const B64: &'static str;
}

macro_rules! path_keys {
    ($name:ident, $text:literal, $b64:literal) => {
        #[derive(Debug, Default, Clone)]
        pub(crate) struct $name;
        impl PathKeys for $name {
            const TEXT: &'static str = $text;
            const B64: &'static str = $b64;
        }
    };
}
path_keys!(RootKeys, "root", "root_b64");
path_keys!(EntryPathKeys, "path", "path_b64");
path_keys!(TargetKeys, "target", "target_b64");
path_keys!(AncestorKeys, "ancestor", "ancestor_b64");
path_keys!(FirstKeys, "first", "first_b64");
path_keys!(ParentKeys, "parent", "parent_b64");
path_keys!(MemberKeys, "member", "member_b64");

/// A raw path stored losslessly under one of two keys (see [`PathKeys`]), so
/// the same rule serves `path`, `target`, `ancestor`, `first` and `root`.
#[derive(Debug, Default, Clone)]
pub(crate) struct WirePath<K>(Option<RawPath>, PhantomData<K>);

impl<K> WirePath<K> {
    fn of(p: Option<RawPath>) -> Self {
        WirePath(p, PhantomData)
    }
}

impl<K: PathKeys> Serialize for WirePath<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if let Some(p) = &self.0 {
            match p.to_str() {
                Some(text) => m.serialize_entry(K::TEXT, text)?,
                None => m.serialize_entry(K::B64, &B64.encode(p.as_bytes()))?,
            }
        }
        m.end()
    }
}

impl<'de, K: PathKeys> Deserialize<'de> for WirePath<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<K>(PhantomData<K>);
        impl<'de, K: PathKeys> serde::de::Visitor<'de> for Visit<K> {
            type Value = WirePath<K>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a map with '{}' or '{}'", K::TEXT, K::B64)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let (mut text, mut b64) = (None::<String>, None::<String>);
                while let Some(k) = m.next_key::<String>()? {
                    if k == K::TEXT {
                        text = Some(m.next_value()?);
                    } else if k == K::B64 {
                        b64 = Some(m.next_value()?);
                    } else {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                let path = match (text, b64) {
                    (Some(_), Some(_)) => {
                        return Err(A::Error::custom(format!(
                            "both '{}' and '{}' given",
                            K::TEXT,
                            K::B64
                        )));
                    }
                    (Some(t), None) => Some(RawPath::from(t.as_str())),
                    (None, Some(b)) => Some(RawPath::from_bytes(B64.decode(b).map_err(|e| {
                        A::Error::custom(format!("'{}' is not base64: {e}", K::B64))
                    })?)),
                    (None, None) => None,
                };
                Ok(WirePath::of(path))
            }
        }
        d.deserialize_map(Visit(PhantomData))
    }
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WireEntry {
    #[serde(flatten)]
    path: WirePath<EntryPathKeys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    atime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ctime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    btime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ino: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nlink: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<WireLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    within: Option<WireWithin>,
    // Hashed.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    file_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ext_mismatch: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    empty: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blake3: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    perceptual: Option<Vec<WirePerceptual>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<WireImage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    perceptual_error: Option<WirePerceptualError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    video: Option<WireVideo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    video_error: Option<WirePerceptualError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    matches: Option<Vec<WireMatch>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    near_skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expanded: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_expanded: Option<WireNotExpanded>,
    // Skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(flatten)]
    target: WirePath<TargetKeys>,
    #[serde(flatten)]
    ancestor: WirePath<AncestorKeys>,
    #[serde(flatten)]
    first: WirePath<FirstKeys>,
    // Failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_at_open: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    now_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_read: Option<u64>,
}

/// One tagged perceptual hash.
#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WirePerceptual {
    tag: String,
    hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dihedral: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WireImage {
    width: u32,
    height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    exif_orientation: Option<u8>,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    decoded_scale: Option<u8>,
}

/// A video's vPDQ: the stream's facts and the frame hashes.
#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WireVideo {
    tag: String,
    container: String,
    codec: String,
    width: u32,
    height: u32,
    /// `num/den`.
    frame_rate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    /// Every `every`-th frame was hashed.
    every: u64,
    frames_hashed: u64,
    #[serde(default)]
    pruned: u64,
    #[serde(default)]
    truncated: bool,
    frames: Vec<WireVideoFrame>,
}

/// How videos were hashed: the options, and the decoder or why none.
#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WireVideoHeader {
    tag: String,
    seconds_per_hash: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prune_distance: Option<u32>,
    /// Absent: 120 s plus 2 s per MB of video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_secs: Option<u64>,
    max_memory: u64,
    max_frames: u64,
    /// `ffmpeg <version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decoder: Option<String>,
    /// Why there is no decoder: videos are recorded as not decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    no_decoder: Option<String>,
}

impl WireVideoHeader {
    fn of(h: &crate::perceptual::video::VideoHeader) -> WireVideoHeader {
        WireVideoHeader {
            tag: h.tag.clone(),
            seconds_per_hash: h.config.interval_ms as f64 / 1000.0,
            prune_distance: h.config.prune_distance,
            timeout_secs: h.config.timeout.map(|t| t.as_secs()),
            max_memory: h.config.max_memory,
            max_frames: h.config.max_frames,
            decoder: h.decoder.as_ref().ok().map(|v| format!("ffmpeg {v}")),
            no_decoder: h.decoder.as_ref().err().cloned(),
        }
    }

    fn into_header(self) -> Result<crate::perceptual::video::VideoHeader, String> {
        if !(0.0..=3600.0).contains(&self.seconds_per_hash) {
            return Err(format!(
                "video seconds_per_hash {} is out of range",
                self.seconds_per_hash
            ));
        }
        let decoder = match (self.decoder, self.no_decoder) {
            (Some(d), None) => Ok(d.strip_prefix("ffmpeg ").unwrap_or(&d).to_string()),
            (None, Some(why)) => Err(why),
            _ => return Err("the video header needs one of 'decoder' and 'no_decoder'".into()),
        };
        Ok(crate::perceptual::video::VideoHeader {
            tag: self.tag,
            config: crate::perceptual::video::VideoConfig {
                enabled: true,
                interval_ms: (self.seconds_per_hash * 1000.0).round() as u32,
                prune_distance: self.prune_distance,
                timeout: self.timeout_secs.map(std::time::Duration::from_secs),
                max_memory: self.max_memory,
                max_frames: self.max_frames,
            },
            decoder,
        })
    }
}

/// One hashed frame, with vPDQ's own field names.
#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WireVideoFrame {
    frame: u64,
    quality: u8,
    hash: String,
    timestamp: f64,
}

impl WireVideo {
    fn from(v: &VideoHashes) -> WireVideo {
        WireVideo {
            tag: VPDQ_TAG.to_string(),
            container: v.info.container.clone(),
            codec: v.info.codec.clone(),
            width: v.info.width,
            height: v.info.height,
            frame_rate: format!("{}/{}", v.info.frame_rate.0, v.info.frame_rate.1),
            duration: v.info.duration,
            every: v.every,
            frames_hashed: v.frames.len() as u64 + v.pruned,
            pruned: v.pruned,
            truncated: v.truncated,
            frames: v
                .frames
                .iter()
                .map(|f| WireVideoFrame {
                    frame: f.frame,
                    quality: f.quality,
                    hash: f.hash.to_string(),
                    timestamp: f.timestamp,
                })
                .collect(),
        }
    }

    fn into_video(self) -> Result<VideoHashes, String> {
        if self.tag != VPDQ_TAG {
            return Err(format!("unknown video hash tag '{}'", self.tag));
        }
        let frame_rate = self
            .frame_rate
            .split_once('/')
            .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
            .filter(|&(n, d): &(u64, u64)| n > 0 && d > 0)
            .ok_or_else(|| format!("'frame_rate' {:?} is not num/den", self.frame_rate))?;
        let frames = self
            .frames
            .into_iter()
            .map(|f| {
                if !f.timestamp.is_finite() {
                    return Err(format!("frame {}: timestamp is not a number", f.frame));
                }
                Ok(VideoFrame {
                    frame: f.frame,
                    quality: f.quality,
                    hash: f.hash.parse().map_err(|e: BadPdqHash| e.to_string())?,
                    timestamp: f.timestamp,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(VideoHashes {
            info: VideoInfo {
                container: self.container,
                codec: self.codec,
                width: self.width,
                height: self.height,
                frame_rate,
                duration: self.duration.filter(|d| d.is_finite() && *d >= 0.0),
            },
            every: self.every,
            frames,
            pruned: self.pruned,
            truncated: self.truncated,
        })
    }
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub(crate) struct WirePerceptualError {
    kind: String,
    message: String,
}

impl WirePerceptual {
    fn from(p: &Perceptual) -> Self {
        match p {
            Perceptual::Pdq {
                hash,
                quality,
                dihedral,
                frame,
            } => WirePerceptual {
                tag: p.tag().to_string(),
                hash: hash.to_string(),
                quality: Some(*quality),
                dihedral: dihedral
                    .as_ref()
                    .map(|d| d.iter().map(|h| h.to_string()).collect()),
                frame: *frame,
            },
            Perceptual::Img { hash, .. } => WirePerceptual {
                tag: p.tag().to_string(),
                hash: crate::hash::to_hex(hash),
                quality: None,
                dihedral: None,
                frame: None,
            },
        }
    }

    fn into_perceptual(self) -> Result<Perceptual, String> {
        match self.tag.as_str() {
            PDQ_TAG => {
                let bad = |e: crate::perceptual::pdq::BadPdqHash| e.to_string();
                let dihedral = match self.dihedral {
                    None => None,
                    Some(v) => {
                        let hashes: Vec<PdqHash> = v
                            .iter()
                            .map(|h| h.parse().map_err(bad))
                            .collect::<Result<_, _>>()?;
                        let arr: [PdqHash; 8] =
                            hashes.try_into().map_err(|_| "'dihedral' needs 8 hashes")?;
                        Some(Box::new(arr))
                    }
                };
                Ok(Perceptual::Pdq {
                    hash: self.hash.parse().map_err(bad)?,
                    quality: self.quality.ok_or("PDQ 'quality' missing")?,
                    dihedral,
                    frame: self.frame,
                })
            }
            other => match ImgHashAlg::from_tag(other) {
                Some(alg) => {
                    let bytes = from_hex(&self.hash).ok_or("perceptual 'hash' is not hex")?;
                    let hash = bytes
                        .try_into()
                        .map_err(|_| format!("'{other}' hash is not 8 bytes"))?;
                    Ok(Perceptual::Img { alg, hash })
                }
                None => Err(format!("unknown perceptual hash tag '{other}'")),
            },
        }
    }
}

impl WireLine {
    pub(crate) fn header(h: &ScanHeader) -> WireLine {
        WireLine::Header(WireHeader {
            schema: SCHEMA_NAME.to_string(),
            schema_version: SCHEMA_VERSION,
            tool: "triage".to_string(),
            tool_version: h.tool_version.clone(),
            run_id: h.run_id.clone(),
            case: h.case.clone(),
            no_case: h.case.is_none(),
            build: h.build.clone(),
            host: h.host.clone(),
            command_line: h.command_line.clone(),
            root: WirePath::of(Some(RawPath::from_path(&h.root))),
            started: h.started.to_string(),
            algorithms: h.algorithms.iter().map(|a| a.name().to_string()).collect(),
            one_file_system: h.one_file_system,
            perceptual: h.perceptual.clone(),
            dihedral: h.dihedral,
            all_frames: h.all_frames,
            threads: h.threads,
            readers: h.readers,
            device: h.device.clone(),
            read_only_mount: h.read_only_mount,
            link_targets: h.link_targets,
            hashsets: h
                .hashsets
                .iter()
                .map(|u| WireHashSet {
                    path: u.path.to_string_lossy().into_owned(),
                    blake3: u.blake3.clone(),
                    verified: u.verified,
                    set: u.meta.clone(),
                })
                .collect(),
            matching: (!h.hashsets.is_empty()).then_some(WireMatchConfig {
                pdq_distance: h.matching.pdq_distance,
                pdq_min_quality: h.matching.pdq_min_quality,
                img_distance: h.matching.img_distance,
                video: Some(WireVideoMatchConfig {
                    frame_distance: h.matching.video_distance,
                    min_quality: h.matching.video_min_quality,
                    known_percent: h.matching.video_known_percent,
                    query_percent: h.matching.video_query_percent,
                }),
            }),
            fast_decode: h.fast_decode,
            video: h.video.as_ref().map(WireVideoHeader::of),
            expand: Some(WireExpand::of(&h.expand)),
            checkpoints: Some(WireCheckpoints {
                every_entries: h.checkpoints.every_entries,
                every_secs: h.checkpoints.every_secs,
            }),
            signing_key: h.signing_key.as_ref().map(|k| WireKey {
                algorithm: "ed25519".to_string(),
                fingerprint: k.fingerprint(),
                public_key: k.to_base64(),
            }),
            outputs: h.outputs.iter().map(WireOutput::from).collect(),
            image: h.image.clone(),
        })
    }

    pub(crate) fn summary(s: &Summary) -> WireLine {
        WireLine::Summary(WireSummary {
            files_hashed: s.files_hashed,
            empty_files: s.empty_files,
            bytes_hashed: s.bytes_hashed,
            skipped: s.skipped.clone(),
            failed: s.failed.clone(),
            directories: s.directories,
            images_hashed: s.images_hashed,
            image_errors: s.image_errors.clone(),
            files_matched: s.files_matched,
            files_known: s.files_known,
            matches: s.matches.clone(),
            files_by_category: s.files_by_category.clone(),
            empty_digest_hits: s.empty_digest_hits,
            near_skipped: s.near_skipped,
            videos_hashed: s.videos_hashed,
            video_errors: s.video_errors.clone(),
            started: s.started.map(|t| t.to_string()),
            finished: s.finished.map(|t| t.to_string()),
            duration_secs: s.duration_secs,
            interrupted: s.interrupted,
            entries: s.entries(),
            outputs: s.outputs.iter().map(WireOutput::from).collect(),
            image_segments: s.image_segments.clone(),
            image_verification: s.image_verification.clone(),
            reads: s.reads.clone(),
        })
    }

    pub(crate) fn entry(e: &Entry) -> WireLine {
        let w = WireEntry::from_entry(e);
        match e.outcome {
            Outcome::Hashed(_) => WireLine::File(w),
            Outcome::Skipped(_) => WireLine::Skipped(w),
            Outcome::Failed(_) => WireLine::Failed(w),
        }
    }
}

fn ts(s: &Option<String>, key: &str) -> Result<Option<Timestamp>, String> {
    s.as_deref()
        .map(|t| t.parse().map_err(|e| format!("{key}: {e}")))
        .transpose()
}

impl WireHeader {
    pub(crate) fn into_header(self) -> Result<ScanHeader, String> {
        if self.schema != SCHEMA_NAME {
            return Err(format!("schema is '{}', not '{SCHEMA_NAME}'", self.schema));
        }
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "schema version {} is not supported (this build reads {SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        let mut algorithms = AlgorithmSet::empty();
        for a in &self.algorithms {
            algorithms = algorithms.with(a.parse().map_err(|e| format!("{e}"))?);
        }
        let root = self.root.0.ok_or("header has no root")?;
        Ok(ScanHeader {
            tool_version: self.tool_version,
            root: PathBuf::from(std::ffi::OsStr::from_bytes(root.as_bytes())),
            started: self.started.parse().map_err(|e| format!("started: {e}"))?,
            algorithms,
            one_file_system: self.one_file_system,
            perceptual: self.perceptual,
            dihedral: self.dihedral,
            all_frames: self.all_frames,
            threads: self.threads,
            readers: self.readers,
            device: self.device,
            read_only_mount: self.read_only_mount,
            link_targets: self.link_targets,
            hashsets: self
                .hashsets
                .into_iter()
                .map(|h| HashSetUse {
                    path: PathBuf::from(h.path),
                    blake3: h.blake3,
                    verified: h.verified,
                    meta: h.set,
                })
                .collect(),
            matching: self.matching.map_or_else(MatchConfig::default, |m| {
                let d = MatchConfig::default();
                let v = m.video.as_ref();
                MatchConfig {
                    pdq_distance: m.pdq_distance,
                    pdq_min_quality: m.pdq_min_quality,
                    img_distance: m.img_distance,
                    video_distance: v.map_or(d.video_distance, |v| v.frame_distance),
                    video_min_quality: v.map_or(d.video_min_quality, |v| v.min_quality),
                    video_known_percent: v.map_or(d.video_known_percent, |v| v.known_percent),
                    video_query_percent: v.map_or(d.video_query_percent, |v| v.query_percent),
                }
            }),
            fast_decode: self.fast_decode,
            video: self.video.map(WireVideoHeader::into_header).transpose()?,
            expand: match self.expand {
                None => crate::expand::ExpandConfig::none(),
                Some(e) => e.into_config()?,
            },
            run_id: self.run_id,
            case: self.case,
            host: self.host,
            build: self.build,
            command_line: self.command_line,
            checkpoints: self
                .checkpoints
                .map_or_else(Checkpoints::default, |c| Checkpoints {
                    every_entries: c.every_entries,
                    every_secs: c.every_secs,
                }),
            signing_key: match self.signing_key {
                None => None,
                Some(k) => {
                    if k.algorithm != "ed25519" {
                        return Err(format!("unknown signing algorithm '{}'", k.algorithm));
                    }
                    let key = PublicKey::from_base64(&k.public_key).map_err(|e| e.to_string())?;
                    if key.fingerprint() != k.fingerprint {
                        return Err("signing_key: the fingerprint does not match the key".into());
                    }
                    Some(key)
                }
            },
            outputs: self
                .outputs
                .into_iter()
                .map(WireOutput::into_output)
                .collect(),
            image: self.image,
        })
    }
}

impl WireSummary {
    pub(crate) fn into_summary(self) -> Result<Summary, String> {
        Ok(Summary {
            files_hashed: self.files_hashed,
            empty_files: self.empty_files,
            bytes_hashed: self.bytes_hashed,
            skipped: self.skipped,
            failed: self.failed,
            directories: self.directories,
            images_hashed: self.images_hashed,
            image_errors: self.image_errors,
            files_matched: self.files_matched,
            files_known: self.files_known,
            matches: self.matches,
            files_by_category: self.files_by_category,
            empty_digest_hits: self.empty_digest_hits,
            near_skipped: self.near_skipped,
            videos_hashed: self.videos_hashed,
            video_errors: self.video_errors,
            started: ts(&self.started, "started")?,
            finished: ts(&self.finished, "finished")?,
            duration_secs: self.duration_secs,
            interrupted: self.interrupted,
            outputs: self
                .outputs
                .into_iter()
                .map(WireOutput::into_output)
                .collect(),
            image_segments: self.image_segments,
            image_verification: self.image_verification,
            reads: self.reads,
        })
    }
}

/// Where an item of a disk image is (`location` of an entry).
#[derive(Serialize, Deserialize, Debug)]
struct WireLocation {
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<WirePartition>,
    fs: String,
    fs_offset: u64,
    addr: u64,
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name_times: Option<WireNameTimes>,
}

/// The header's `expand`: what was looked inside.
#[derive(Serialize, Deserialize, Debug)]
struct WireExpand {
    kinds: Vec<String>,
    max_depth: u32,
    max_member_bytes: u64,
    max_item_bytes: u64,
    max_scan_bytes: u64,
    max_members: u64,
    max_ratio: u64,
    in_memory: u64,
}

impl WireExpand {
    fn of(c: &crate::expand::ExpandConfig) -> WireExpand {
        let l = &c.limits;
        WireExpand {
            kinds: c.kinds.iter().map(|k| k.name().to_string()).collect(),
            max_depth: c.max_depth,
            max_member_bytes: l.member_bytes,
            max_item_bytes: l.item_bytes,
            max_scan_bytes: l.scan_bytes,
            max_members: l.members,
            max_ratio: l.ratio,
            in_memory: l.in_memory,
        }
    }

    fn into_config(self) -> Result<crate::expand::ExpandConfig, String> {
        Ok(crate::expand::ExpandConfig {
            kinds: self
                .kinds
                .iter()
                .map(|k| {
                    crate::expand::Kind::from_name(k)
                        .ok_or_else(|| format!("unknown expander '{k}' in 'expand'"))
                })
                .collect::<Result<_, _>>()?,
            max_depth: self.max_depth,
            limits: crate::expand::Limits {
                member_bytes: self.max_member_bytes,
                item_bytes: self.max_item_bytes,
                scan_bytes: self.max_scan_bytes,
                members: self.max_members,
                ratio: self.max_ratio,
                in_memory: self.in_memory,
            },
        })
    }
}

/// Where a child item was found (`within`).
#[derive(Serialize, Deserialize, Debug)]
struct WireWithin {
    #[serde(flatten)]
    parent: WirePath<ParentKeys>,
    #[serde(flatten)]
    member: WirePath<MemberKeys>,
    container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    depth: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc32_read: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pdq_distance: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pdq_differs: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<WireChecksum>,
}

/// A stored checksum and the computed one (`within.checksums`).
#[derive(Serialize, Deserialize, Debug)]
struct WireChecksum {
    name: String,
    stored: String,
    computed: String,
}

impl WireWithin {
    fn of(w: &crate::item::Within) -> WireWithin {
        WireWithin {
            parent: WirePath::of(Some(w.parent.clone())),
            member: WirePath::of(Some(w.member.clone())),
            container: w.container.to_string(),
            offset: w.offset,
            depth: w.depth,
            crc32: w.crc32.map(|c| format!("{:08x}", c.stored)),
            crc32_read: w.crc32.and_then(|c| c.computed.map(|v| format!("{v:08x}"))),
            pdq_distance: w.pdq_distance,
            pdq_differs: w.pdq_differs,
            checksums: w
                .checksums
                .iter()
                .map(|c| WireChecksum {
                    name: c.name.clone(),
                    stored: c.stored.clone(),
                    computed: c.computed.clone(),
                })
                .collect(),
        }
    }

    fn into_within(self) -> Result<crate::item::Within, String> {
        let container = crate::item::container_name(&self.container)
            .ok_or_else(|| format!("unknown container '{}'", self.container))?;
        let crc = |hex: &String| {
            u32::from_str_radix(hex, 16).map_err(|_| format!("'{hex}' is not a CRC-32"))
        };
        let crc32 = match &self.crc32 {
            None => None,
            Some(hex) => Some(crate::item::Crc32 {
                stored: crc(hex)?,
                computed: self.crc32_read.as_ref().map(crc).transpose()?,
            }),
        };
        Ok(crate::item::Within {
            parent: self.parent.0.ok_or("'within.parent' missing")?,
            member: self.member.0.ok_or("'within.member' missing")?,
            container,
            offset: self.offset,
            depth: self.depth,
            crc32,
            pdq_distance: self.pdq_distance,
            pdq_differs: self.pdq_differs,
            checksums: self
                .checksums
                .into_iter()
                .map(|c| crate::item::Checksum {
                    name: c.name,
                    stored: c.stored,
                    computed: c.computed,
                })
                .collect(),
        })
    }
}

/// A container not looked inside (`not_expanded`).
#[derive(Serialize, Deserialize, Debug)]
struct WireNotExpanded {
    container: String,
    why: String,
}

/// NTFS `$FILE_NAME` times (`location.name_times`).
#[derive(Serialize, Deserialize, Debug)]
struct WireNameTimes {
    created: String,
    modified: String,
    changed: String,
    accessed: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct WirePartition {
    index: u32,
    scheme: String,
    #[serde(rename = "type")]
    type_id: String,
    offset: u64,
    length: u64,
}

impl WireLocation {
    fn of(l: &Location) -> WireLocation {
        WireLocation {
            partition: l.partition.as_ref().map(|p| WirePartition {
                index: p.index,
                scheme: p.scheme.to_string(),
                type_id: p.type_id.clone(),
                offset: p.offset,
                length: p.length,
            }),
            fs: l.fs.to_string(),
            fs_offset: l.fs_offset,
            addr: l.addr,
            state: l.state.name().to_string(),
            name_times: l.name_times.map(|t| WireNameTimes {
                created: t.created.to_string(),
                modified: t.modified.to_string(),
                changed: t.changed.to_string(),
                accessed: t.accessed.to_string(),
            }),
        }
    }

    fn into_location(self) -> Result<Location, String> {
        let known = |v: &str, names: &[&'static str], what: &str| {
            names
                .iter()
                .copied()
                .find(|n| *n == v)
                .ok_or_else(|| format!("unknown {what} '{v}'"))
        };
        Ok(Location {
            partition: match self.partition {
                None => None,
                Some(p) => Some(Partition {
                    index: p.index,
                    scheme: known(
                        &p.scheme,
                        crate::item::PARTITION_SCHEMES,
                        "partition scheme",
                    )?,
                    type_id: p.type_id,
                    offset: p.offset,
                    length: p.length,
                }),
            },
            fs: known(&self.fs, crate::item::FS_NAMES, "file system")?,
            fs_offset: self.fs_offset,
            addr: self.addr,
            state: match self.state.as_str() {
                "allocated" => Allocation::Allocated,
                "deleted" => Allocation::Deleted,
                other => return Err(format!("unknown allocation state '{other}'")),
            },
            name_times: match self.name_times {
                None => None,
                Some(t) => {
                    let at = |v: &str, key: &str| -> Result<Timestamp, String> {
                        v.parse().map_err(|e| format!("name_times.{key}: {e}"))
                    };
                    Some(crate::item::NameTimes {
                        created: at(&t.created, "created")?,
                        modified: at(&t.modified, "modified")?,
                        changed: at(&t.changed, "changed")?,
                        accessed: at(&t.accessed, "accessed")?,
                    })
                }
            },
        })
    }
}

impl WireEntry {
    pub(crate) fn from_entry(e: &Entry) -> WireEntry {
        let mut w = WireEntry {
            path: WirePath::of(Some(e.path.clone())),
            ..WireEntry::default()
        };
        if let Some(m) = &e.meta {
            w.kind = Some(m.kind().name().to_string());
            w.size = Some(m.size);
            w.mtime = Some(m.mtime.to_string());
            w.atime = Some(m.atime.to_string());
            w.ctime = Some(m.ctime.to_string());
            w.btime = m.btime.map(|t| t.to_string());
            w.dev = Some(m.dev);
            w.ino = Some(m.ino);
            w.mode = Some(m.mode);
            w.nlink = Some(m.nlink);
            w.uid = Some(m.uid);
            w.gid = Some(m.gid);
            w.blocks = Some(m.blocks);
        }
        w.location = e.location.as_ref().map(WireLocation::of);
        w.within = e.within.as_ref().map(WireWithin::of);
        match &e.outcome {
            Outcome::Hashed(h) => {
                w.file_type = Some(h.file_type.name().to_string());
                w.mime = Some(h.file_type.mime().to_string());
                w.ext_mismatch = h.ext_mismatch;
                w.empty = Some(h.empty);
                w.bytes_read = Some(h.bytes_read);
                w.md5 = h.digests.hex(Algorithm::Md5);
                w.sha1 = h.digests.hex(Algorithm::Sha1);
                w.sha256 = h.digests.hex(Algorithm::Sha256);
                w.blake3 = h.digests.hex(Algorithm::Blake3);
                if !h.perceptual.is_empty() {
                    w.perceptual = Some(h.perceptual.iter().map(WirePerceptual::from).collect());
                }
                w.image = h.image.map(|i| WireImage {
                    width: i.width,
                    height: i.height,
                    exif_orientation: i.exif_orientation,
                    truncated: i.truncated,
                    decoded_scale: i.decoded_scale,
                });
                w.perceptual_error = h.perceptual_error.as_ref().map(|e| WirePerceptualError {
                    kind: e.code().to_string(),
                    message: e.detail().to_string(),
                });
                match h.video.as_deref() {
                    None => {}
                    Some(Ok(v)) => w.video = Some(WireVideo::from(v)),
                    Some(Err(e)) => {
                        w.video_error = Some(WirePerceptualError {
                            kind: e.code().to_string(),
                            message: e.detail().to_string(),
                        })
                    }
                }
                if !h.matches.is_empty() {
                    w.matches = Some(h.matches.iter().map(WireMatch::from).collect());
                }
                w.near_skipped = h.near_skipped.clone();
                match h.expansion.as_deref() {
                    None => {}
                    Some(crate::item::Expansion::Expanded { container }) => {
                        w.expanded = Some(container.to_string())
                    }
                    Some(crate::item::Expansion::NotExpanded { container, why }) => {
                        w.not_expanded = Some(WireNotExpanded {
                            container: container.to_string(),
                            why: why.clone(),
                        })
                    }
                }
            }
            Outcome::Skipped(r) => {
                w.reason = Some(r.code().to_string());
                w.error = Some(r.to_string());
                match r {
                    SkipReason::Symlink { target } => w.target = WirePath::of(target.clone()),
                    SkipReason::DirectoryLoop { ancestor } => {
                        w.ancestor = WirePath::of(Some(ancestor.clone()))
                    }
                    SkipReason::HardLink { first } => w.first = WirePath::of(Some(first.clone())),
                    _ => {}
                }
            }
            Outcome::Failed(f) => {
                w.stage = Some(f.stage.code().to_string());
                w.error_kind = Some(f.kind.code().to_string());
                w.error = Some(f.kind.to_string());
                w.bytes_read = Some(f.bytes_read);
                match &f.kind {
                    FailureKind::Io(e) => w.errno = e.errno,
                    FailureKind::ChangedDuringRead {
                        size_at_open,
                        size_after,
                    } => {
                        w.size_at_open = Some(*size_at_open);
                        w.size_after = Some(*size_after);
                    }
                    FailureKind::Replaced { now } => w.now_kind = Some(now.name().to_string()),
                    FailureKind::Internal { .. } => {}
                }
            }
        }
        w
    }

    fn meta(&self) -> Result<Option<FileMeta>, String> {
        let Some(size) = self.size else {
            return Ok(None);
        };
        let need = |v: Option<u64>, k: &str| v.ok_or_else(|| format!("'{k}' missing"));
        let need_ts = |v: &Option<String>, k: &str| -> Result<Timestamp, String> {
            ts(v, k)?.ok_or_else(|| format!("'{k}' missing"))
        };
        Ok(Some(FileMeta {
            size,
            mode: self.mode.ok_or("'mode' missing")?,
            dev: need(self.dev, "dev")?,
            ino: need(self.ino, "ino")?,
            nlink: need(self.nlink, "nlink")?,
            uid: self.uid.ok_or("'uid' missing")?,
            gid: self.gid.ok_or("'gid' missing")?,
            mtime: need_ts(&self.mtime, "mtime")?,
            atime: need_ts(&self.atime, "atime")?,
            ctime: need_ts(&self.ctime, "ctime")?,
            btime: ts(&self.btime, "btime")?,
            blocks: need(self.blocks, "blocks")?,
        }))
    }

    pub(crate) fn into_entry(mut self, record: &str) -> Result<Entry, String> {
        let path = self.path.0.clone().ok_or("'path' missing")?;
        let meta = self.meta()?;
        let location = self
            .location
            .take()
            .map(WireLocation::into_location)
            .transpose()?;
        let within = self
            .within
            .take()
            .map(WireWithin::into_within)
            .transpose()?;
        let container = |c: &str| {
            crate::item::container_name(c).ok_or_else(|| format!("unknown container '{c}'"))
        };
        let expansion = match (self.expanded.take(), self.not_expanded.take()) {
            (Some(c), None) => Some(Box::new(crate::item::Expansion::Expanded {
                container: container(&c)?,
            })),
            (None, Some(n)) => Some(Box::new(crate::item::Expansion::NotExpanded {
                container: container(&n.container)?,
                why: n.why,
            })),
            (None, None) => None,
            (Some(_), Some(_)) => return Err("both 'expanded' and 'not_expanded'".into()),
        };
        let outcome = match record {
            "file" => {
                let mut digests = Digests::default();
                for (alg, hex) in [
                    (Algorithm::Md5, &self.md5),
                    (Algorithm::Sha1, &self.sha1),
                    (Algorithm::Sha256, &self.sha256),
                    (Algorithm::Blake3, &self.blake3),
                ] {
                    if let Some(hex) = hex {
                        let ok = from_hex(hex).is_some_and(|b| digests.set(alg, &b));
                        if !ok {
                            return Err(format!("'{}' is not a {alg} digest", alg.name()));
                        }
                    }
                }
                let type_name = self.file_type.as_deref().ok_or("'type' missing")?;
                Outcome::Hashed(Hashed {
                    digests,
                    bytes_read: self.bytes_read.ok_or("'bytes_read' missing")?,
                    file_type: FileType::from_name(type_name)
                        .ok_or_else(|| format!("unknown type '{type_name}'"))?,
                    ext_mismatch: self.ext_mismatch,
                    empty: self.empty.ok_or("'empty' missing")?,
                    perceptual: self
                        .perceptual
                        .unwrap_or_default()
                        .into_iter()
                        .map(WirePerceptual::into_perceptual)
                        .collect::<Result<_, _>>()?,
                    image: self.image.map(|i| ImageInfo {
                        width: i.width,
                        height: i.height,
                        exif_orientation: i.exif_orientation,
                        truncated: i.truncated,
                        decoded_scale: i.decoded_scale,
                    }),
                    perceptual_error: match self.perceptual_error {
                        None => None,
                        Some(e) => {
                            Some(DecodeError::from_code(&e.kind, e.message).ok_or_else(|| {
                                format!("unknown perceptual_error kind '{}'", e.kind)
                            })?)
                        }
                    },
                    matches: self
                        .matches
                        .unwrap_or_default()
                        .into_iter()
                        .map(WireMatch::into_match)
                        .collect::<Result<_, _>>()?,
                    near_skipped: self.near_skipped,
                    expansion,
                    video: match (self.video, self.video_error) {
                        (None, None) => None,
                        (Some(v), None) => Some(Box::new(Ok(v.into_video()?))),
                        (None, Some(e)) => {
                            Some(Box::new(Err(VideoError::from_code(&e.kind, e.message)
                                .ok_or_else(|| {
                                    format!("unknown video_error kind '{}'", e.kind)
                                })?)))
                        }
                        (Some(_), Some(_)) => {
                            return Err("both 'video' and 'video_error'".to_string());
                        }
                    },
                })
            }
            "skipped" => {
                let code = self.reason.as_deref().ok_or("'reason' missing")?;
                let mut r = SkipReason::from_code(code)
                    .ok_or_else(|| format!("unknown skip reason '{code}'"))?;
                match &mut r {
                    SkipReason::Symlink { target } => *target = self.target.0,
                    SkipReason::DirectoryLoop { ancestor } => {
                        *ancestor = self.ancestor.0.ok_or("'ancestor' missing")?
                    }
                    SkipReason::HardLink { first } => {
                        *first = self.first.0.ok_or("'first' missing")?
                    }
                    _ => {}
                }
                Outcome::Skipped(r)
            }
            "failed" => {
                let stage = self.stage.as_deref().ok_or("'stage' missing")?;
                let stage =
                    Stage::from_code(stage).ok_or_else(|| format!("unknown stage '{stage}'"))?;
                let kind = match self.error_kind.as_deref() {
                    Some("io") => FailureKind::Io(OsError {
                        errno: self.errno,
                        message: self.error.clone().unwrap_or_default(),
                    }),
                    Some("changed_during_read") => FailureKind::ChangedDuringRead {
                        size_at_open: self.size_at_open.ok_or("'size_at_open' missing")?,
                        size_after: self.size_after.ok_or("'size_after' missing")?,
                    },
                    Some("replaced") => {
                        let k = self.now_kind.as_deref().ok_or("'now_kind' missing")?;
                        FailureKind::Replaced {
                            now: kind_from_name(k).ok_or_else(|| format!("unknown kind '{k}'"))?,
                        }
                    }
                    Some("internal") => {
                        let msg = self.error.clone().unwrap_or_default();
                        let prefix = "internal error in triage (please report): ";
                        FailureKind::Internal {
                            message: msg.strip_prefix(prefix).unwrap_or(&msg).to_string(),
                        }
                    }
                    other => return Err(format!("unknown error_kind {other:?}")),
                };
                Outcome::Failed(Failure {
                    stage,
                    kind,
                    bytes_read: self.bytes_read.ok_or("'bytes_read' missing")?,
                })
            }
            other => return Err(format!("'{other}' is not an entry record")),
        };
        Ok(Entry {
            path,
            meta,
            location,
            within,
            outcome,
        })
    }
}

fn kind_from_name(s: &str) -> Option<FileKind> {
    [
        FileKind::Regular,
        FileKind::Directory,
        FileKind::Symlink,
        FileKind::Fifo,
        FileKind::Socket,
        FileKind::BlockDevice,
        FileKind::CharDevice,
        FileKind::Unknown,
    ]
    .into_iter()
    .find(|k| k.name() == s)
}
