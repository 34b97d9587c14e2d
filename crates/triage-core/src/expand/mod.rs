//! Expand stage: the child items a file's bytes hold, one expander per
//! container format behind one trait (`Expander`), each in its own file
//! (`zip.rs`, `tar.rs`, `gzip.rs`, `single.rs` for bzip2/xz/zstd streams,
//! `sevenz.rs`, `heif.rs` for HEIC/AVIF thumbnails,
//! `exif.rs`, `pdf/`, `thumbcache.rs`, `thumbsdb.rs`, `carve.rs` for a
//! volume's unallocated space), and the
//! decompressors they read through (`codecs.rs`).
//!
//! Input: an item already hashed and identified (its type says which
//! expander applies), as a [`Source`]. Output: its members (`Member`), in the
//! order the container stores them, each with a [`Source`] of its bytes
//! (or why it is not read). The scan reads each member through the same
//! stages as a file (digests, type, perceptual hashes, matches, and its
//! own members, to [`ExpandConfig::max_depth`]) and records it right
//! after its parent ([`crate::item::Within`]).
//!
//! Every container is hostile: names are recorded as stored and never
//! used as paths; offsets and sizes are checked against the container's
//! own size before use; decompressed bytes are counted as they are
//! produced, never trusted from a header ([`Limits`]); a member whose
//! bytes overlap another's (the non-recursive zip bomb) is not read; a
//! member with the same bytes as a container it is inside (a quine) is
//! not looked inside again. A damaged listing fails that container's
//! listing, recorded as its own entry; the scan goes on.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::identify::FileType;
use crate::item::{FileMeta, SkipReason};
use crate::path::RawPath;
use crate::source::Source;

pub(crate) mod carve;
pub(crate) mod codecs;
pub(crate) mod exif;
pub(crate) mod gzip;
pub(crate) mod heif;
pub(crate) mod pdf;
pub(crate) mod sevenz;
pub(crate) mod single;
pub(crate) mod stream;
pub(crate) mod tar;
pub(crate) mod thumbcache;
pub(crate) mod thumbsdb;
pub(crate) mod zip;

/// A container format an expander reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// ZIP (and what is a zip inside: OOXML, ODF, JAR, APK…).
    Zip,
    /// TAR (ustar, pax, GNU).
    Tar,
    /// A gzip stream (its content is one member).
    Gzip,
    /// A bzip2 stream.
    Bzip2,
    /// An xz stream.
    Xz,
    /// A Zstandard stream.
    Zstd,
    /// A 7z archive.
    SevenZip,
    /// A HEIF picture (HEIC, AVIF): its thumbnails and EXIF thumbnail.
    Heif,
    /// A picture's EXIF block (JPEG, TIFF): its thumbnail.
    Exif,
    /// A PDF's pictures (image XObjects).
    Pdf,
    /// A Windows thumbnail cache (`thumbcache_*.db`): its thumbnails.
    Thumbcache,
    /// A `Thumbs.db` (a compound file with a `Catalog`): its thumbnails.
    ThumbsDb,
    /// A disk image volume's unallocated space (`$Unallocated`): the
    /// pictures carved from it.
    Carve,
}

impl Kind {
    /// Every expander, in the order `--expand` lists them.
    pub const ALL: [Kind; 13] = [
        Kind::Zip,
        Kind::Tar,
        Kind::Gzip,
        Kind::Bzip2,
        Kind::Xz,
        Kind::Zstd,
        Kind::Exif,
        Kind::Pdf,
        Kind::Thumbcache,
        Kind::ThumbsDb,
        Kind::Carve,
        // Last, so that the fuzz seeds' first bytes keep their kinds.
        Kind::SevenZip,
        Kind::Heif,
    ];

    /// The name the log and `--expand` use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Zip => "zip",
            Kind::Tar => "tar",
            Kind::Gzip => "gzip",
            Kind::Bzip2 => "bzip2",
            Kind::Xz => "xz",
            Kind::Zstd => "zstd",
            Kind::SevenZip => "7z",
            Kind::Heif => "heif",
            Kind::Exif => "exif",
            Kind::Pdf => "pdf",
            Kind::Thumbcache => "thumbcache",
            Kind::ThumbsDb => "thumbsdb",
            Kind::Carve => "carve",
        }
    }

    /// The kind `--expand` names.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The expander for a content type, if one reads it.
    pub fn of(t: FileType) -> Option<Kind> {
        match t {
            // Office documents, OpenDocument and EPUB are zips: their
            // embedded pictures come out as members.
            FileType::Zip | FileType::Ooxml | FileType::Odf | FileType::Epub => Some(Kind::Zip),
            FileType::Tar => Some(Kind::Tar),
            FileType::Gzip => Some(Kind::Gzip),
            FileType::Bzip2 => Some(Kind::Bzip2),
            FileType::Xz => Some(Kind::Xz),
            FileType::Zstd => Some(Kind::Zstd),
            FileType::SevenZip => Some(Kind::SevenZip),
            FileType::Heif | FileType::Avif => Some(Kind::Heif),
            FileType::Jpeg | FileType::Tiff => Some(Kind::Exif),
            FileType::Pdf => Some(Kind::Pdf),
            FileType::Thumbcache => Some(Kind::Thumbcache),
            // Only those with a thumbnail catalog ([`applies`]).
            FileType::Cfb => Some(Kind::ThumbsDb),
            _ => None,
        }
    }
}

/// How much decompressed data the scan produces at most, counted as it
/// is produced. A limit reached fails the member being read, recorded
/// with the bytes read so far; the scan goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one member may decompress to (default 4 GiB).
    pub member_bytes: u64,
    /// Bytes all members of one top-level item may decompress to
    /// (default 16 GiB).
    pub item_bytes: u64,
    /// Bytes all members of the scan may decompress to (default 1 TiB).
    pub scan_bytes: u64,
    /// Members one container may list (default 100,000).
    pub members: u64,
    /// Output per compressed byte a member may reach once past 1 MiB; 0
    /// (the default): no such limit. Deflate cannot exceed ~1,032 to 1
    /// (a file of zeros reaches it), so the byte budgets above, not a
    /// ratio, bound a bomb's work; bombs go further only by nesting or
    /// overlapping members, which are limited and refused.
    pub ratio: u64,
    /// A compressed member that is itself a zip is read into memory to be
    /// looked inside when at most this large (default 64 MiB); larger,
    /// it is looked inside through its stream.
    pub in_memory: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            member_bytes: 4 << 30,
            item_bytes: 16 << 30,
            scan_bytes: 1 << 40,
            members: 100_000,
            ratio: 0,
            in_memory: 64 << 20,
        }
    }
}

/// Which containers are looked inside, and how deep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandConfig {
    /// The expanders that run (`--expand`); empty: none.
    pub kinds: Vec<Kind>,
    /// Nesting levels looked inside at most (`--max-depth`, default 4): a
    /// walked zip's members are at depth 1.
    pub max_depth: u32,
    /// Decompression budgets.
    pub limits: Limits,
}

impl Default for ExpandConfig {
    fn default() -> ExpandConfig {
        ExpandConfig {
            kinds: Kind::ALL.to_vec(),
            max_depth: 4,
            limits: Limits::default(),
        }
    }
}

impl ExpandConfig {
    /// Nothing is looked inside.
    pub fn none() -> ExpandConfig {
        ExpandConfig {
            kinds: Vec::new(),
            ..ExpandConfig::default()
        }
    }

    /// Whether `kind` runs.
    pub fn runs(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The expanders `--expand` names: `all`, `none`, or a comma-separated
    /// list (`zip,tar`).
    ///
    /// ```
    /// use triage_core::expand::{ExpandConfig, Kind};
    /// assert_eq!(ExpandConfig::parse_kinds("tar,zip").unwrap(), [Kind::Tar, Kind::Zip]);
    /// assert_eq!(ExpandConfig::parse_kinds("all").unwrap(), Kind::ALL);
    /// assert!(ExpandConfig::parse_kinds("none").unwrap().is_empty());
    /// assert!(ExpandConfig::parse_kinds("rar").is_err());
    /// ```
    pub fn parse_kinds(list: &str) -> Result<Vec<Kind>, String> {
        match list.trim() {
            "all" => return Ok(Kind::ALL.to_vec()),
            "none" | "" => return Ok(Vec::new()),
            _ => {}
        }
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim) {
            let k = Kind::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "--expand: '{name}' is not an expander (all, none, or a list of: {})",
                    known.join(", ")
                )
            })?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(out)
    }
}

/// The bytes one top-level item's members and the whole scan may still
/// decompress to, shared by every member being read.
#[derive(Debug)]
pub(crate) struct Budget {
    item: AtomicU64,
    scan: Arc<AtomicU64>,
    pub(crate) limits: Limits,
}

impl Budget {
    /// The budget of a new top-level item, drawing on the scan's.
    pub(crate) fn new(limits: &Limits, scan: Arc<AtomicU64>) -> Budget {
        Budget {
            item: AtomicU64::new(limits.item_bytes),
            scan,
            limits: limits.clone(),
        }
    }

    /// A fresh scan-wide remainder.
    pub(crate) fn scan_total(limits: &Limits) -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(limits.scan_bytes))
    }

    /// Takes `n` produced bytes from the item's and the scan's budget.
    fn take(&self, n: u64) -> Result<(), String> {
        let take = |a: &AtomicU64| {
            a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok()
        };
        if !take(&self.item) {
            return Err(format!(
                "stopped: this item's members reached their limit of {} decompressed bytes (--max-expand-bytes)",
                self.limits.item_bytes
            ));
        }
        if !take(&self.scan) {
            return Err(format!(
                "stopped: the scan's members reached their limit of {} decompressed bytes",
                self.limits.scan_bytes
            ));
        }
        Ok(())
    }
}

/// One child item, as its container lists it.
pub(crate) struct Member<'a> {
    /// Its name in the container, as stored.
    pub(crate) name: RawPath,
    /// Where its bytes lie as they are in the container, if they do.
    pub(crate) offset: Option<u64>,
    /// What the container says of it: size (as declared; the bytes read
    /// are what count), times, mode.
    pub(crate) meta: FileMeta,
    /// The CRC-32 the container stores for its bytes.
    pub(crate) crc32: Option<u32>,
    /// Other checksums it stores, checked when listed.
    pub(crate) checksums: Vec<crate::item::Checksum>,
    /// Checksums found only as its bytes are read (a gzip stream's
    /// trailers follow its content), filled in by the reading.
    pub(crate) found: Option<Found>,
    /// Its bytes, or why they are not read.
    pub(crate) body: Body<'a>,
}

/// Where a member's reading leaves the checksums it met (see
/// [`Member::found`]).
pub(crate) type Found = std::sync::Arc<std::sync::Mutex<Vec<crate::item::Checksum>>>;

/// A member's content.
pub(crate) enum Body<'a> {
    /// Read it. `to_end`: its size is known only once read (a gzip
    /// stream's content): read to the end, not to `meta.size`. `stored`:
    /// its bytes lie as they are in the container (read at random as
    /// cheaply as the container is).
    Read {
        src: Box<dyn Source + 'a>,
        to_end: bool,
        stored: bool,
    },
    /// Not read, by rule (encrypted, a link, a device node).
    Skipped(SkipReason),
    /// Cannot be read (an unsupported compression method, bytes outside
    /// the container, overlapping another member's).
    Failed(String),
}

/// A container's members, one at a time; an error ends the listing (the
/// members before it stand).
pub(crate) type Members<'a> = Box<dyn Iterator<Item = Result<Member<'a>, String>> + 'a>;

/// One container format: how a file of its type is looked inside. Each
/// lives in its own file; [`Kind::expander`] gives the one for a kind.
pub(crate) trait Expander: Sync {
    /// The members of `src` (`size` bytes, the item at `path`), in the
    /// order the container stores them, their decompressed bytes counted
    /// against `budget`.
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        path: &RawPath,
        budget: &'a Budget,
    ) -> Result<Members<'a>, String>;

    /// Whether `src`, of a type this expander reads, is one it looks
    /// inside: a compound file only when it is a `Thumbs.db` (not a Word
    /// document or an installer, whose type is the same). Asked before
    /// anything is recorded of it; most expanders read all of their type.
    fn applies(&self, _src: &dyn Source, _size: u64) -> bool {
        true
    }

    /// Whether it reads its container at random (so one inside a
    /// compressed member is read into memory first, up to
    /// [`Limits::in_memory`]).
    fn random_access(&self) -> bool {
        false
    }
}

impl Kind {
    /// Its expander.
    pub(crate) fn expander(self) -> &'static dyn Expander {
        match self {
            Kind::Zip => &zip::Zip,
            Kind::Tar => &tar::Tar,
            Kind::Gzip => &gzip::Gzip,
            Kind::Bzip2 => &single::Single(Kind::Bzip2),
            Kind::Xz => &single::Single(Kind::Xz),
            Kind::Zstd => &single::Single(Kind::Zstd),
            Kind::SevenZip => &sevenz::SevenZip,
            Kind::Heif => &heif::Heif,
            Kind::Exif => &exif::Exif,
            Kind::Pdf => &pdf::Pdf,
            Kind::Thumbcache => &thumbcache::Thumbcache,
            Kind::ThumbsDb => &thumbsdb::ThumbsDb,
            Kind::Carve => &carve::Carve,
        }
    }

    /// Whether it looks inside only some files of its type
    /// ([`Expander::applies`]): it says nothing of the others, which are
    /// mostly no containers of its kind at all.
    pub(crate) fn probes(self) -> bool {
        self == Kind::ThumbsDb
    }
}

/// The members of `src` (`size` bytes, the item at `path`) for `kind`.
pub(crate) fn members<'a>(
    kind: Kind,
    src: &'a dyn Source,
    size: u64,
    path: &RawPath,
    budget: &'a Budget,
) -> Result<Members<'a>, String> {
    kind.expander().members(src, size, path, budget)
}

/// The bytes of a member found again (for a report's thumbnail): inside
/// `top` (`size` bytes, at `path`), through `chain`, each step a
/// container kind and a member name (the first member of that name): at
/// most `max` bytes for the member, and [`Limits::in_memory`] for each
/// container between.
pub(crate) fn read_member(
    top: &dyn Source,
    size: u64,
    path: &RawPath,
    chain: &[(Kind, RawPath)],
    max: u64,
) -> Result<Vec<u8>, String> {
    let between = Limits::default().in_memory;
    let limits = Limits {
        member_bytes: max.max(between),
        item_bytes: u64::MAX,
        scan_bytes: u64::MAX,
        ..Limits::default()
    };
    let budget = Budget::new(&limits, Budget::scan_total(&limits));
    let mut held: Option<crate::source::tree::MemSource> = None;
    let mut size = size;
    let mut path = path.clone();
    for (step, (kind, name)) in chain.iter().enumerate() {
        let max = if step + 1 == chain.len() {
            max
        } else {
            between
        };
        let bytes = {
            let src: &dyn Source = held.as_ref().map_or(top, |m| m as &dyn Source);
            let found = members(*kind, src, size, &path, &budget)?
                .find_map(|m| m.ok().filter(|m| &m.name == name))
                .ok_or_else(|| format!("no member '{name}' in '{path}' now"))?;
            let Body::Read {
                src: body, to_end, ..
            } = found.body
            else {
                return Err(format!("member '{name}' is not readable"));
            };
            let want = if to_end {
                max
            } else {
                found.meta.size.min(max)
            };
            if !to_end && found.meta.size > max {
                return Err(format!("member '{name}' is larger than {max} bytes"));
            }
            let mut bytes = Vec::new();
            let mut buf = vec![0u8; 64 << 10];
            while (bytes.len() as u64) < want {
                let n = body
                    .read_at(&mut buf, bytes.len() as u64)
                    .map_err(|e| format!("reading member '{name}': {e}"))?;
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&buf[..n]);
            }
            if to_end
                && body
                    .read_at(&mut buf[..1], bytes.len() as u64)
                    .is_ok_and(|n| n > 0)
            {
                return Err(format!("member '{name}' is larger than {max} bytes"));
            }
            bytes
        };
        size = bytes.len() as u64;
        path = path.join_member(name);
        held = Some(crate::source::tree::MemSource(bytes));
    }
    held.map(|m| m.0)
        .ok_or_else(|| "no member named".to_string())
}

/// Metadata for a member: a regular file (or `mode`'s kind) of `size`
/// bytes modified at `mtime` (seconds), the rest unknown (zero).
pub(crate) fn member_meta(size: u64, mode: u32, mtime: i64) -> FileMeta {
    let t = crate::time::Timestamp::new(mtime, 0);
    FileMeta {
        size,
        mode,
        dev: 0,
        ino: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        mtime: t,
        atime: t,
        ctime: t,
        btime: None,
        blocks: size.div_ceil(512),
    }
}

pub(crate) fn damaged(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_expander_is_a_container_the_log_names() {
        let names: Vec<&str> = super::Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, crate::item::CONTAINERS);
    }
}
