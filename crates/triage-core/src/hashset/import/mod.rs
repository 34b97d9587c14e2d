//! Reading the hash lists agencies ship, into an index.
//!
//! One module per family of formats, each a streaming parser that hands
//! `Item`s to an `Importer`, which checks and categorises them and feeds
//! the [`IndexBuilder`]. The format is recognised from the content, never
//! from the file name ([`detect`]).
//!
//! Bad input never produces a silent partial set: a malformed line is
//! counted and the first ones kept with their line numbers (or, with
//! `strict`, end the import); a file that is cut off (JSON, SQLite, EnCase)
//! or unreadable ends the import with an error and no index is written.

mod encase;
mod encoding;
mod hashdeep;
mod json;
mod nsrl;
mod text;
mod triage_scan;
pub mod vpdq;

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

pub use encoding::MAX_LINE;
use encoding::{CapLines, Decoded};

/// Longest line of a `triage scan` log read as a hash list: an entry with
/// 1,000 frame hashes and their dihedral variants stays well under it.
pub const MAX_SCAN_LINE: usize = 16 << 20;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sha2::Digest;

use super::{EntryFlags, IndexBuilder, KeyAlg, Rejected, Scheme, SetKind, SetMeta, SourceInfo};
use crate::hash::{from_hex, to_hex};

/// The formats `import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// One hash per line, `md5sum`/`sha1sum`/`sha256sum`/`b3sum` lines (text
    /// and binary mode, escaped names), BSD `--tag` lines, and
    /// ThreatExchange-style PDQ lists (`hash[,quality][,metadata]`, `hash=`).
    Text,
    /// `%%%% HASHDEEP-1.0` known-file lists.
    Hashdeep,
    /// NIST NSRL RDS 2.x `NSRLFile.txt`.
    NsrlV2,
    /// NIST NSRL RDS v3 SQLite database, full or minimal shape.
    NsrlV3,
    /// Project VIC VICS JSON 1.x and 2.0 (media hash sets and case exports).
    Vics,
    /// ThreatExchange descriptor JSON (`raw_indicator`, `type`).
    ThreatExchange,
    /// EnCase 3–6 binary `.hash` set.
    Encase,
    /// A `triage scan` JSON Lines output (its digests and perceptual hashes).
    TriageScan,
    /// vPDQ's reference hash file: one known video, a line per frame.
    Vpdq,
    /// vPDQ frames as HMA stores them, in JSON: one video or several.
    VpdqJson,
}

impl Format {
    /// All formats.
    pub const ALL: [Format; 10] = [
        Format::Text,
        Format::Hashdeep,
        Format::NsrlV2,
        Format::NsrlV3,
        Format::Vics,
        Format::ThreatExchange,
        Format::Encase,
        Format::TriageScan,
        Format::Vpdq,
        Format::VpdqJson,
    ];

    /// The name on the command line and in the set's metadata.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Hashdeep => "hashdeep",
            Format::NsrlV2 => "nsrl-v2",
            Format::NsrlV3 => "nsrl-v3",
            Format::Vics => "vics",
            Format::ThreatExchange => "threatexchange",
            Format::Encase => "encase",
            Format::TriageScan => "triage-scan",
            Format::Vpdq => "vpdq",
            Format::VpdqJson => "vpdq-json",
        }
    }

    /// Parses [`Format::name`].
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }

    /// What an entry's `at` counts in this format.
    fn locator_unit(self) -> &'static str {
        match self {
            Format::Vics | Format::ThreatExchange | Format::VpdqJson => "element",
            Format::NsrlV3 => "row",
            Format::Encase => "record",
            Format::Text
            | Format::Hashdeep
            | Format::NsrlV2
            | Format::TriageScan
            | Format::Vpdq => "line",
        }
    }

    /// NSRL lists known files: imported as known-good unless told otherwise.
    fn default_kind(self) -> SetKind {
        match self {
            Format::NsrlV2 | Format::NsrlV3 => SetKind::KnownGood,
            _ => SetKind::Alert,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The set's name, recorded with every hit.
    pub name: String,
    /// Alert or known-good; `None`: known-good for NSRL, alert otherwise.
    pub kind: Option<SetKind>,
    /// `None`: recognise each file's format from its content.
    pub format: Option<Format>,
    /// The algorithm of hashes whose length does not say (64 hex digits:
    /// SHA-256, BLAKE3 or PDQ; 16: pHash, dHash, aHash). Applies only to
    /// untagged hashes of that length: 32 and 40 hex digits are always MD5
    /// and SHA-1.
    pub algorithm: Option<KeyAlg>,
    /// The scheme of the set's category codes; `None`: Project VIC for VICS
    /// files, no categories otherwise.
    pub scheme: Option<Scheme>,
    /// Category code for entries whose list gives none (`1`, `A`).
    pub category: Option<String>,
    /// Source category number → scheme code (`1` → `A`), for lists whose
    /// numbers are not the scheme's codes (VICS UK profile).
    pub category_map: Vec<(i64, String)>,
    /// Stop at the first bad line instead of counting it.
    pub strict: bool,
    /// Bytes of keys held in memory before sorting them out to disk.
    pub memory_budget: usize,
    /// Where temporary runs go; `None`: beside the output.
    pub tmp_dir: Option<PathBuf>,
    /// Write the set even when no entry was imported. Off: a set with no
    /// entries is an error, since a scan against it can find nothing (a
    /// header-only list, or a file of the wrong format, says so loudly).
    pub allow_empty: bool,
}

impl ImportOptions {
    /// Defaults: auto-detect, 512 MiB of keys in memory, not strict.
    pub fn new(name: impl Into<String>) -> ImportOptions {
        ImportOptions {
            name: name.into(),
            kind: None,
            format: None,
            algorithm: None,
            scheme: None,
            category: None,
            category_map: Vec::new(),
            strict: false,
            memory_budget: 512 << 20,
            tmp_dir: None,
            allow_empty: false,
        }
    }
}

/// Why an import failed. Nothing was written.
#[derive(Debug)]
pub struct ImportError {
    /// The source file, when the error is about one.
    pub file: Option<String>,
    /// Where in it (`line 12`, `element 3`, `row 7`, `line 2 column 9`).
    pub at: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
    /// The OS error, if any.
    pub io: Option<io::Error>,
    /// The input is fine but the options cannot read it as asked: the fix
    /// is an option (`--algorithm`, `--scheme`, `--format`, …).
    pub needs_option: bool,
}

impl ImportError {
    pub(crate) fn new(message: impl Into<String>) -> ImportError {
        ImportError {
            file: None,
            at: None,
            message: message.into(),
            io: None,
            needs_option: false,
        }
    }

    /// Marks the error as one an option fixes.
    pub(crate) fn needs_option(mut self) -> ImportError {
        self.needs_option = true;
        self
    }

    pub(crate) fn at(mut self, at: impl Into<String>) -> ImportError {
        self.at = Some(at.into());
        self
    }

    fn io(file: &Path, e: io::Error) -> ImportError {
        ImportError {
            file: Some(file.display().to_string()),
            at: None,
            message: e.to_string(),
            io: Some(e),
            needs_option: false,
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io.as_ref().map(|e| e as _)
    }
}

/// The outcome of an import.
#[derive(Clone, Debug)]
pub struct ImportReport {
    /// The metadata written into the index.
    pub meta: SetMeta,
    /// Records in the index.
    pub entries: u64,
    /// BLAKE3 of the index content (as in its header).
    pub content_hash: String,
}

/// Progress of an import, passed to the caller's callback now and then.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportProgress {
    /// Bytes of the sources read so far (SQLite sources count when done).
    pub bytes: u64,
    /// Bytes of all sources.
    pub total_bytes: u64,
    /// Entries read so far.
    pub entries: u64,
}

/// A category as a list writes it, before the scheme gives it meaning.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RawCategory {
    Number(i64),
    Text(String),
}

/// One listed item, as a parser hands it over.
#[derive(Debug, Default)]
pub(crate) struct Item {
    /// Validated keys (right length for their kind).
    pub keys: Vec<(KeyAlg, Vec<u8>)>,
    pub category: Option<RawCategory>,
    /// Declared perceptual quality, 0–100.
    pub quality: Option<u8>,
    /// A JSON object, or empty.
    pub info: String,
    /// Line / element / row / record number.
    pub at: u64,
}

/// Most rejected lines kept per source for the report; the rest are counted.
const MAX_REPORTED: usize = 10;

/// Receives the items of the file being imported.
pub(crate) struct Importer<'a> {
    opts: &'a ImportOptions,
    builder: IndexBuilder,
    source: SourceInfo,
    source_index: u32,
    /// What `at` counts in this source: `line`, `element`, `row`, `record`.
    unit: &'static str,
    scheme: Option<Scheme>,
    default_category: Option<u16>,
    empty: Vec<(KeyAlg, Vec<u8>)>,
    progress: &'a mut dyn FnMut(&ImportProgress),
    state: ImportProgress,
    /// Bytes of earlier sources, and bytes read of this one (shared with its reader).
    file_start: u64,
    file_bytes: Rc<Cell<u64>>,
}

impl Importer<'_> {
    /// The source file's name without its directory: names a video listed
    /// by a file of its own.
    pub(crate) fn source_name(&self) -> String {
        std::path::Path::new(&self.source.file)
            .file_name()
            .map_or_else(
                || self.source.file.clone(),
                |n| n.to_string_lossy().into_owned(),
            )
    }

    /// The user's declared algorithm for hashes whose length is ambiguous.
    pub(crate) fn algorithm(&self) -> Option<KeyAlg> {
        self.opts.algorithm
    }

    /// Records what the file says about itself (version, context).
    pub(crate) fn declare(&mut self, text: String) {
        self.source.declared = Some(text);
    }

    /// The scheme the list's own codes belong to (VICS: Project VIC), used
    /// when the user named none.
    pub(crate) fn scheme_hint(&mut self, s: Scheme) -> Result<(), ImportError> {
        match self.scheme {
            None => {
                self.scheme = Some(s);
                Ok(())
            }
            Some(x) if x == s || self.opts.scheme.is_some() => Ok(()),
            Some(x) => Err(ImportError::new(format!(
                "this file's categories are {s} but the set's are {x}; import it into another set, or say --scheme"
            ))
            .needs_option()),
        }
    }

    /// Counts a line or record that could not be used.
    pub(crate) fn reject(&mut self, at: u64, reason: impl Into<String>) -> Result<(), ImportError> {
        let reason = reason.into();
        if self.opts.strict {
            let unit = self.unit;
            return Err(ImportError::new(format!("{reason} (--strict)")).at(format!("{unit} {at}")));
        }
        self.source.rejected += 1;
        if self.source.first_rejected.len() < MAX_REPORTED {
            self.source.first_rejected.push(Rejected { at, reason });
        }
        Ok(())
    }

    /// Adds one item.
    pub(crate) fn item(&mut self, item: Item) -> Result<(), ImportError> {
        if item.keys.is_empty() {
            return self.reject(item.at, "no usable hash");
        }
        let mut flags = 0u16;
        for (alg, key) in &item.keys {
            if self.empty.iter().any(|(a, k)| a == alg && k == key) {
                flags |= EntryFlags::EMPTY_FILE;
            }
        }
        if item.quality.is_some_and(|q| q < 50) {
            flags |= EntryFlags::LOW_QUALITY;
        }
        let category = match &item.category {
            None => self.default_category,
            Some(raw) => match self.category_code(raw)? {
                Some(c) => Some(c),
                None => {
                    flags |= EntryFlags::UNKNOWN_CATEGORY;
                    self.source.unknown_categories += 1;
                    None
                }
            },
        };
        let record = self
            .builder
            .add_record(&item.info, item.at, self.source_index, category, flags)
            .map_err(write_err)?;
        for (alg, key) in &item.keys {
            self.builder
                .add_key(*alg, key, record, flags)
                .map_err(write_err)?;
        }
        self.source.entries += 1;
        self.state.entries += 1;
        if self.state.entries.is_multiple_of(65536) {
            self.state.bytes = self.file_start + self.file_bytes.get();
            (self.progress)(&self.state);
        }
        Ok(())
    }

    /// The scheme code of a list's category; `None` when the scheme has no such code.
    fn category_code(&mut self, raw: &RawCategory) -> Result<Option<u16>, ImportError> {
        let scheme = match self.scheme {
            Some(s) => s,
            None => {
                return Err(ImportError::new(
                    "the list has categories but no scheme is known for them: say --scheme projectvic|projectvic-legacy|caid-uk",
                )
                .needs_option());
            }
        };
        let text = match raw {
            RawCategory::Number(n) => {
                match self.opts.category_map.iter().find(|(from, _)| from == n) {
                    Some((_, to)) => to.clone(),
                    None if !self.opts.category_map.is_empty() => return Ok(None),
                    None => n.to_string(),
                }
            }
            RawCategory::Text(t) => t.clone(),
        };
        Ok(scheme.parse_code(&text))
    }
}

fn write_err(e: io::Error) -> ImportError {
    ImportError {
        message: format!("cannot write the index: {e}"),
        io: Some(e),
        ..ImportError::new("")
    }
}

/// Parses a hex hash into bytes, naming the problem when it is not one.
pub(crate) fn hex_key(s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Err("empty hash".into());
    }
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let shown: String = s.chars().take(80).collect();
        return Err(format!("not hexadecimal: {shown:?}"));
    }
    from_hex(s).ok_or_else(|| format!("odd number of hex digits ({})", s.len()))
}

/// The algorithm of an untagged hex hash of `len` bytes, or why it cannot be told.
pub(crate) fn alg_for_len(declared: Option<KeyAlg>, len: usize) -> Result<KeyAlg, LenProblem> {
    // MD5 and SHA-1 lengths say what they are whatever --algorithm says:
    // it decides only the lengths several algorithms share, so a list that
    // mixes MD5, SHA-1 and SHA-256 lines imports whole.
    match len {
        16 => Ok(KeyAlg::Md5),
        20 => Ok(KeyAlg::Sha1),
        32 | 8 => match declared {
            Some(a) if a.width() == len => Ok(a),
            Some(a) => Err(LenProblem::Wrong(format!(
                "{} hex digits, and --algorithm {a} is not one of {}",
                len * 2,
                if len == 32 {
                    "sha256, blake3, pdq"
                } else {
                    "phash, dhash, ahash"
                }
            ))),
            None => Err(LenProblem::Ambiguous(len)),
        },
        _ => Err(LenProblem::Wrong(format!(
            "{} hex digits: not MD5 (32), SHA-1 (40), SHA-256/BLAKE3/PDQ (64) or pHash (16)",
            len * 2
        ))),
    }
}

/// Why a hash's length did not give its algorithm.
pub(crate) enum LenProblem {
    /// Several algorithms have this length: the user must say which.
    Ambiguous(usize),
    /// No algorithm (or not the declared one) has it.
    Wrong(String),
}

pub(crate) fn ambiguous(len: usize) -> ImportError {
    let choices = if len == 32 {
        "sha256, blake3 or pdq"
    } else {
        "phash, dhash or ahash"
    };
    ImportError::new(format!(
        "{} hex digits could be {choices}: say which with --algorithm",
        len * 2
    ))
    .needs_option()
}

/// Recognises a format from the first bytes of a file.
pub fn detect(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"HASH\r\n\xff\0") {
        return Some(Format::Encase);
    }
    if head.starts_with(b"SQLite format 3\0") {
        return Some(Format::NsrlV3);
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = &text[start..];
    if text.starts_with(b"%%%% HASHDEEP-1.0") {
        return Some(Format::Hashdeep);
    }
    if text.starts_with(b"\"SHA-1\",") {
        return Some(Format::NsrlV2);
    }
    if text.starts_with(b"{") {
        let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
        if has(b"\"record\"") && has(b"triage-scan") {
            return Some(Format::TriageScan);
        }
        if has(b"odata") {
            return Some(Format::Vics);
        }
        if has(b"raw_indicator") {
            return Some(Format::ThreatExchange);
        }
        if vpdq::looks_like_json(text) {
            return Some(Format::VpdqJson);
        }
        return None;
    }
    if text.starts_with(b"[") {
        return vpdq::looks_like_json(text).then_some(Format::VpdqJson);
    }
    // Text lists: the first line that is not blank or a comment must parse.
    let first = text
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.is_empty() && !l.starts_with(b"#"))?;
    if vpdq::looks_like_text(first) {
        return Some(Format::Vpdq);
    }
    text::looks_like_hash_line(first).then_some(Format::Text)
}

/// A reader that hashes and counts what passes through.
struct Tee<R> {
    inner: R,
    sha256: sha2::Sha256,
    bytes: u64,
    shared: Rc<Cell<u64>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        self.bytes += n as u64;
        self.shared.set(self.bytes);
        Ok(n)
    }
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = crate::files::open_quiet(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(to_hex(&h.finalize())),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Imports `files` into one index at `out`; `progress` is called now and then.
///
/// Formats are recognised per file (unless `opts.format` says), so one set
/// can combine, say, an md5sum list and a VICS export. Either the whole set
/// is written or, on error, nothing.
pub fn import_files(
    files: &[PathBuf],
    opts: &ImportOptions,
    out: &Path,
    progress: &mut dyn FnMut(&ImportProgress),
) -> Result<ImportReport, ImportError> {
    if files.is_empty() {
        return Err(ImportError::new("no input files"));
    }
    if files.len() > u32::MAX as usize {
        return Err(ImportError::new("too many input files"));
    }
    let mut formats = Vec::new();
    let mut total_bytes = 0;
    for f in files {
        let mut file = crate::files::open_quiet(f).map_err(|e| ImportError::io(f, e))?;
        let meta = file.metadata().map_err(|e| ImportError::io(f, e))?;
        if !meta.is_file() {
            return Err(ImportError {
                file: Some(f.display().to_string()),
                ..ImportError::new("not a regular file")
            });
        }
        total_bytes += meta.len();
        let format = match opts.format {
            Some(fmt) => fmt,
            None => {
                let mut head = vec![0u8; 64 << 10];
                let n = read_up_to(&mut file, &mut head).map_err(|e| ImportError::io(f, e))?;
                detect(&encoding::decode_head(&head[..n])).ok_or_else(|| ImportError {
                    file: Some(f.display().to_string()),
                    ..ImportError::new(
                        "cannot tell the format from the content; say --format (see `triage hashset import --help`)",
                    )
                    .needs_option()
                })?
            }
        };
        formats.push(format);
    }
    let kind = opts.kind.unwrap_or_else(|| {
        if formats
            .iter()
            .all(|f| f.default_kind() == SetKind::KnownGood)
        {
            SetKind::KnownGood
        } else {
            SetKind::Alert
        }
    });
    if opts.category.is_some() && opts.scheme.is_none() {
        return Err(ImportError::new(
            "--category needs the scheme its code belongs to: add --scheme",
        )
        .needs_option());
    }
    let default_category = match (&opts.category, opts.scheme) {
        (Some(c), Some(s)) => Some(s.parse_code(c).ok_or_else(|| {
            ImportError::new(format!("category {c:?} is not a code of scheme {s}")).needs_option()
        })?),
        _ => None,
    };
    if let Some(s) = opts.scheme {
        for (_, to) in &opts.category_map {
            if s.parse_code(to).is_none() {
                return Err(ImportError::new(format!(
                    "--category-map target {to:?} is not a code of scheme {s}"
                ))
                .needs_option());
            }
        }
    } else if !opts.category_map.is_empty() {
        return Err(ImportError::new("--category-map needs --scheme").needs_option());
    }

    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp_parent = opts.tmp_dir.clone().unwrap_or(out_dir);
    let builder = IndexBuilder::new(&tmp_parent, opts.memory_budget).map_err(|e| ImportError {
        message: format!(
            "cannot create temporary files in {}: {e}",
            tmp_parent.display()
        ),
        io: Some(e),
        ..ImportError::new("")
    })?;
    let mut imp = Importer {
        opts,
        builder,
        source: empty_source(),
        source_index: 0,
        unit: "line",
        scheme: opts.scheme,
        default_category,
        empty: [KeyAlg::Md5, KeyAlg::Sha1, KeyAlg::Sha256, KeyAlg::Blake3]
            .into_iter()
            .filter_map(|a| a.empty_digest().map(|d| (a, d)))
            .collect(),
        progress,
        state: ImportProgress {
            total_bytes,
            ..ImportProgress::default()
        },
        file_start: 0,
        file_bytes: Rc::new(Cell::new(0)),
    };
    let mut sources = Vec::new();
    for (i, (path, format)) in files.iter().zip(&formats).enumerate() {
        imp.source = empty_source();
        imp.source.file = path.display().to_string();
        imp.source.format = format.name().to_string();
        imp.source_index = i as u32;
        imp.unit = format.locator_unit();
        let start_bytes = imp.state.bytes;
        imp.file_start = start_bytes;
        imp.file_bytes.set(0);
        let located = |e: ImportError| ImportError {
            file: Some(path.display().to_string()),
            ..e
        };
        match format {
            Format::NsrlV3 | Format::Encase => {
                imp.source.sha256 = sha256_file(path).map_err(|e| ImportError::io(path, e))?;
                imp.source.bytes = std::fs::metadata(path)
                    .map_err(|e| ImportError::io(path, e))?
                    .len();
                if *format == Format::NsrlV3 {
                    nsrl::import_v3(path, &mut imp).map_err(located)?;
                } else {
                    // Checked before the whole file is read into memory.
                    let mut data = vec![0u8; encase::MAGIC.len()];
                    let mut f =
                        crate::files::open_quiet(path).map_err(|e| ImportError::io(path, e))?;
                    let n = read_up_to(&mut f, &mut data).map_err(|e| ImportError::io(path, e))?;
                    if data[..n] != *encase::MAGIC {
                        return Err(located(encase::not_encase()));
                    }
                    f.read_to_end(&mut data)
                        .map_err(|e| ImportError::io(path, e))?;
                    encase::import(&data, &mut imp).map_err(located)?;
                }
                imp.state.bytes = start_bytes + imp.source.bytes;
            }
            _ => {
                let file = crate::files::open_quiet(path).map_err(|e| ImportError::io(path, e))?;
                let mut tee = Tee {
                    inner: file,
                    sha256: sha2::Sha256::new(),
                    bytes: 0,
                    shared: imp.file_bytes.clone(),
                };
                {
                    // Bytes → BOM dropped, UTF-16 transcoded → (line formats)
                    // lines capped → parser. The digest is taken below all of it.
                    let decoded = BufReader::with_capacity(1 << 20, Decoded::new(&mut tee));
                    let cap = match format {
                        Format::Text | Format::Hashdeep | Format::NsrlV2 | Format::Vpdq => {
                            Some(MAX_LINE)
                        }
                        // Scan logs: a line holds up to 1,000 frame hashes.
                        Format::TriageScan => Some(MAX_SCAN_LINE),
                        _ => None,
                    };
                    let (mut reader, long): (Box<dyn BufRead + '_>, _) = match cap {
                        Some(max) => {
                            let (capped, long) = CapLines::new(decoded, max, opts.strict);
                            (
                                Box::new(BufReader::with_capacity(64 << 10, capped)),
                                Some(long),
                            )
                        }
                        None => (Box::new(decoded), None),
                    };
                    let r: &mut dyn BufRead = &mut reader;
                    match format {
                        Format::Text => text::import(r, &mut imp),
                        Format::Hashdeep => hashdeep::import(r, &mut imp),
                        Format::NsrlV2 => nsrl::import_v2(r, &mut imp),
                        Format::Vics => json::import_vics(r, &mut imp),
                        Format::ThreatExchange => json::import_threatexchange(r, &mut imp),
                        Format::TriageScan => triage_scan::import(r, &mut imp),
                        Format::Vpdq => vpdq::import_text(r, &mut imp),
                        Format::VpdqJson => vpdq::import_json(r, &mut imp),
                        Format::NsrlV3 | Format::Encase => Ok(()),
                    }
                    .map_err(located)?;
                    for line in long.map(|l| l.take()).unwrap_or_default() {
                        imp.reject(
                            line,
                            format!(
                                "longer than {} bytes: not read (no hash line is this long)",
                                cap.unwrap_or(MAX_LINE)
                            ),
                        )
                        .map_err(located)?;
                    }
                    // The digest is of the whole file, even past what the parser needed.
                    io::copy(&mut reader, &mut io::sink()).map_err(|e| ImportError::io(path, e))?;
                }
                imp.source.sha256 = to_hex(&tee.sha256.finalize());
                imp.source.bytes = tee.bytes;
                imp.state.bytes = start_bytes + tee.bytes;
            }
        }
        (imp.progress)(&imp.state);
        sources.push(std::mem::replace(&mut imp.source, empty_source()));
    }
    if imp.state.entries == 0 && !opts.allow_empty {
        let rejected: u64 = sources.iter().map(|s| s.rejected).sum();
        let why = if rejected > 0 {
            format!(
                "all {rejected} {} were rejected (the first: {})",
                if rejected == 1 {
                    "line or record"
                } else {
                    "lines or records"
                },
                sources
                    .iter()
                    .flat_map(|s| s.first_rejected.first())
                    .next()
                    .map(|r| format!("{} {}: {}", imp.unit, r.at, r.reason))
                    .unwrap_or_default()
            )
        } else {
            "the lists hold no hash".to_string()
        };
        return Err(ImportError::new(format!(
            "no entries to import: {why}; check the files and --format, or give --allow-empty to write an empty set on purpose"
        )));
    }
    let meta = SetMeta {
        name: opts.name.clone(),
        kind,
        scheme: imp.scheme,
        created_by: format!("triage {}", env!("CARGO_PKG_VERSION")),
        records: 0,
        keys: Vec::new(),
        sources,
    };
    let meta = imp.builder.finish(meta, out).map_err(write_err)?;
    let index = super::Index::open(out)
        .map_err(|e| ImportError::new(format!("the index just written does not open: {e}")))?;
    Ok(ImportReport {
        entries: meta.records,
        meta,
        content_hash: index.content_hash(),
    })
}

fn empty_source() -> SourceInfo {
    SourceInfo {
        file: String::new(),
        bytes: 0,
        sha256: String::new(),
        format: String::new(),
        declared: None,
        entries: 0,
        rejected: 0,
        first_rejected: Vec::new(),
        unknown_categories: 0,
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A JSON object text from key/value pairs, leaving out empty values.
pub(crate) fn info_json(pairs: &[(&str, serde_json::Value)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if map.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(map).to_string()
    }
}
