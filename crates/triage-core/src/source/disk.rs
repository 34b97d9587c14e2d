//! A disk image as a [`Tree`]: container → partitions → file systems →
//! files, deleted ones included.
//!
//! Paths: a file's path in its file system, after `p<N>/` (the partition's
//! index in its table) when the image has a partition table. Each item
//! carries its [`Location`] (partition, file system, address, allocated or
//! deleted). A volume no reader recognises is one item, `p<N>` (or the
//! empty path for a bare medium), hashed whole, with file system
//! `unrecognised`: its digests are recorded and nothing on it is lost.
//!
//! Order is fixed: partitions in table order; in each file system the same
//! byte order of paths as a directory walk (names sorted with `/` after
//! directory names), and for two entries with one name (a deleted file and
//! the file now bearing its name) the allocated one first, then by
//! address. Memory is bounded by the listings on the current path.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::item::{
    Allocation, ByteRange, Failure, FailureKind, FileKind, FileMeta, ImageInfo, Location, NotRead,
    SegmentInfo, SkipReason, Stage, VolumeInfo,
};
use crate::path::RawPath;
use crate::source::fs::{self, FileSystem, Node, Volume};
use crate::source::image::Image;
use crate::source::tree::{ItemRef, Next, Source, Tree, Walk, Walked};
use crate::source::volume::{self, Extent, Layout};

/// Directory depth followed at most (a hostile image can nest without end).
const MAX_DEPTH: usize = 512;
/// A file inside an image may be larger than its volume only by holes
/// (a sparse file). Past this many times the volume's size (plus 1 GiB)
/// the size is taken as damage, not read: hashing petabytes of holes
/// that a damaged inode or record claims would stall the scan for days.
const MAX_SPARSE_FACTOR: u64 = 16;

/// One volume and what was found on it.
struct Part {
    extent: Extent,
    fs: Result<Option<Box<dyn FileSystem>>, String>,
    /// Its file system's unallocated space, read on the first call for
    /// the header (not when the image is opened only to re-read files:
    /// `verify --evidence`, report thumbnails).
    unallocated: std::sync::OnceLock<Option<crate::item::Unallocated>>,
}

/// An opened disk image, ready to walk.
pub struct DiskTree {
    root: PathBuf,
    image: Image,
    layout: Layout,
    parts: Vec<Part>,
    /// Whether the walk gives each volume's unallocated space as an item
    /// of its own (`$Unallocated`, to carve).
    unallocated_items: bool,
}

/// The name of a volume's unallocated space as an item, after its files.
pub const UNALLOCATED: &str = "$Unallocated";

/// The name of the medium's bytes outside every partition as an item,
/// after the last volume.
pub const UNPARTITIONED: &str = "$Unpartitioned";

impl DiskTree {
    /// Reads the partition table of `image` and probes each volume for a
    /// file system. `root`: the image's (first) file, absolute.
    pub fn new(root: PathBuf, image: Image) -> io::Result<DiskTree> {
        let layout = volume::layout(&*image.media, image.size)?;
        let parts = layout
            .volumes
            .iter()
            .map(|e| Part {
                extent: e.clone(),
                fs: fs::probe(Volume::new(image.media.clone(), e.offset, e.length))
                    .map_err(|err| err.to_string()),
                unallocated: std::sync::OnceLock::new(),
            })
            .collect();
        Ok(DiskTree {
            root,
            image,
            layout,
            parts,
            unallocated_items: false,
        })
    }

    /// Whether the walk gives each volume's unallocated space (as its
    /// file system's allocation map says) as one item after the volume's
    /// files, `p1/$Unallocated` (for carving; off by default).
    pub fn set_unallocated_items(&mut self, on: bool) {
        self.unallocated_items = on;
    }

    /// A volume's unallocated space, read once.
    fn unallocated_of<'p>(&self, p: &'p Part) -> Option<&'p crate::item::Unallocated> {
        p.unallocated
            .get_or_init(|| match &p.fs {
                Ok(Some(f)) => unallocated(&**f, p.extent.offset),
                _ => None,
            })
            .as_ref()
    }

    /// The container.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The partition table.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether any volume has a file system a reader recognised, readable
    /// or not (a damaged one still makes the file an image, whose log says
    /// what could not be read).
    pub fn has_file_system(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p.fs, Ok(None)))
    }

    /// Each volume with the file system found on it, or why none was read:
    /// (extent, file-system name or `None`, problem).
    pub fn volumes(&self) -> Vec<(Extent, Option<&'static str>, Option<String>)> {
        self.parts
            .iter()
            .map(|p| match &p.fs {
                Ok(Some(f)) => (p.extent.clone(), Some(f.name()), None),
                Ok(None) => (p.extent.clone(), None, None),
                Err(e) => (p.extent.clone(), None, Some(e.clone())),
            })
            .collect()
    }

    /// What is not read in this image, from every layer, for the log.
    pub fn notes(&self) -> Vec<String> {
        let mut n = self.image.notes.clone();
        n.extend(self.layout.notes.iter().cloned());
        for p in &self.parts {
            let label = part_label(&p.extent);
            match &p.fs {
                Ok(Some(f)) => n.extend(f.notes().into_iter().map(|x| format!("{label}: {x}"))),
                Ok(None) => n.push(format!(
                    "{label}: no file system this version of triage reads; the volume is hashed as one item"
                )),
                Err(e) => n.push(format!(
                    "{label}: the file system cannot be read ({e}); the volume is hashed as one item"
                )),
            }
        }
        n
    }

    fn prefix(&self, e: &Extent) -> RawPath {
        match &e.partition {
            Some(p) => RawPath::from_bytes(format!("p{}", p.index).into_bytes()),
            None => RawPath::default(),
        }
    }

    /// The partition table's gaps: the medium outside every volume.
    fn gap_ranges(&self) -> Vec<ByteRange> {
        self.layout
            .gaps
            .iter()
            .filter(|g| g.1 > 0)
            .map(|&(offset, length)| ByteRange { offset, length })
            .collect()
    }

    fn part_of(&self, l: &Location) -> Option<&Part> {
        self.parts.iter().find(|p| {
            p.extent.offset == l.fs_offset
                && p.extent.partition.as_ref().map(|x| x.index)
                    == l.partition.as_ref().map(|x| x.index)
        })
    }
}

fn part_label(e: &Extent) -> String {
    match &e.partition {
        Some(p) => format!(
            "partition {} ({} type {}, at byte {})",
            p.index, p.scheme, p.type_id, p.offset
        ),
        None => "the medium".to_string(),
    }
}

impl Tree for DiskTree {
    fn walk(&self) -> Box<dyn Walk + '_> {
        Box::new(DiskWalk {
            tree: self,
            part: 0,
            stack: Vec::new(),
            seen: HashMap::new(),
            first_names: HashMap::new(),
            directories: 0,
            unallocated_given: 0,
            unpartitioned_given: false,
        })
    }

    fn open(
        &self,
        item: ItemRef<'_>,
        _preopened: Option<std::fs::File>,
    ) -> Result<(Box<dyn Source + '_>, FileMeta), Failure> {
        let fail = |msg: String| Failure {
            stage: Stage::Open,
            kind: FailureKind::Io(crate::item::OsError {
                errno: None,
                message: msg,
            }),
            bytes_read: 0,
        };
        let loc = item
            .location
            .ok_or_else(|| fail("an item of a disk image without its location".into()))?;
        if loc.fs == "unpartitioned" {
            let src = Runs::new(self.image.media.clone(), &self.gap_ranges());
            let mut meta = medium_meta(self.image.size);
            meta.size = src.len;
            meta.blocks = src.len.div_ceil(512);
            return Ok((Box::new(src), meta));
        }
        let part = self
            .part_of(loc)
            .ok_or_else(|| fail("the item's partition is not in this image".into()))?;
        match &part.fs {
            Ok(Some(f)) if loc.fs == f.name() => {
                let (src, mut meta) = f.open(loc.addr).map_err(|e| fail(e.to_string()))?;
                meta.dev = part.extent.partition.as_ref().map_or(0, |p| p.index as u64);
                Ok((src, meta))
            }
            _ if loc.fs == "unallocated" => {
                let free = self
                    .unallocated_of(part)
                    .filter(|u| u.error.is_none())
                    .ok_or_else(|| {
                        fail("the volume's unallocated space is not known now".into())
                    })?;
                let src = Runs::new(self.image.media.clone(), &free.ranges);
                let mut meta = volume_meta(&part.extent);
                meta.size = src.len;
                meta.blocks = src.len.div_ceil(512);
                Ok((Box::new(src), meta))
            }
            _ if loc.fs == "unrecognised" => {
                let src = VolumeBytes {
                    media: self.image.media.clone(),
                    offset: part.extent.offset,
                    len: part.extent.length,
                };
                Ok((Box::new(src), volume_meta(&part.extent)))
            }
            _ => Err(fail(format!(
                "the item is on a {} file system, which this image's partition does not hold now",
                loc.fs
            ))),
        }
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn medium(&self) -> Option<crate::source::tree::Medium> {
        Some(self.image.medium())
    }

    fn segments(&self) -> Vec<PathBuf> {
        self.image.segments.iter().map(|(p, _)| p.clone()).collect()
    }

    fn image(&self) -> Option<ImageInfo> {
        let img = &self.image;
        Some(ImageInfo {
            format: img.format.to_string(),
            size: img.size,
            segments: img
                .segments
                .iter()
                .map(|(p, size)| SegmentInfo {
                    path: p.to_string_lossy().into_owned(),
                    size: *size,
                })
                .collect(),
            metadata: img.metadata.iter().cloned().collect(),
            stored_digests: img.stored_digests.iter().cloned().collect(),
            partition_table: self.layout.scheme.to_string(),
            volumes: self
                .volumes()
                .into_iter()
                .map(|(e, fs, error)| VolumeInfo {
                    partition: e.partition.as_ref().map(|p| p.index),
                    type_id: e.partition.as_ref().map(|p| p.type_id.clone()),
                    offset: e.offset,
                    length: e.length,
                    fs: fs.map(str::to_string),
                    error,
                    unallocated: self
                        .parts
                        .iter()
                        .find(|p| p.extent == e)
                        .and_then(|p| self.unallocated_of(p).cloned()),
                })
                .collect(),
            gaps: self.gap_ranges(),
            notes: self.notes(),
        })
    }
}

fn volume_meta(e: &Extent) -> FileMeta {
    FileMeta {
        dev: e.partition.as_ref().map_or(0, |p| p.index as u64),
        ..medium_meta(e.length)
    }
}

/// Metadata for bytes of the medium made one item: `size` bytes, no
/// times.
fn medium_meta(size: u64) -> FileMeta {
    FileMeta {
        size,
        mode: libc::S_IFREG | 0o444,
        dev: 0,
        ino: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        mtime: crate::time::Timestamp::new(0, 0),
        atime: crate::time::Timestamp::new(0, 0),
        ctime: crate::time::Timestamp::new(0, 0),
        btime: None,
        blocks: size.div_ceil(512),
    }
}

/// A volume's bytes as one item.
struct VolumeBytes {
    media: Arc<dyn Source>,
    offset: u64,
    len: u64,
}

impl Source for VolumeBytes {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = (self.len - offset).min(buf.len() as u64) as usize;
        self.media.read_at(&mut buf[..n], self.offset + offset)
    }
    crate::source::image::no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.len)
    }
}

/// Runs of the medium one after another as one source: a volume's
/// unallocated space.
struct Runs {
    media: Arc<dyn Source>,
    runs: Vec<ByteRange>,
    /// Where each run starts in the source.
    starts: Vec<u64>,
    len: u64,
}

impl Runs {
    fn new(media: Arc<dyn Source>, runs: &[ByteRange]) -> Runs {
        let mut starts = Vec::with_capacity(runs.len());
        let mut len = 0u64;
        for r in runs {
            starts.push(len);
            len += r.length;
        }
        Runs {
            media,
            runs: runs.to_vec(),
            starts,
            len,
        }
    }

    /// The run holding byte `offset`, and where in it.
    fn find(&self, offset: u64) -> Option<(&ByteRange, u64)> {
        let i = self
            .starts
            .partition_point(|&s| s <= offset)
            .checked_sub(1)?;
        let r = &self.runs[i];
        let into = offset - self.starts[i];
        (into < r.length).then_some((r, into))
    }
}

impl Source for Runs {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Some((r, into)) = self.find(offset) else {
            return Ok(0);
        };
        let n = (r.length - into).min(buf.len() as u64) as usize;
        self.media.read_at(&mut buf[..n], r.offset + into)
    }
    crate::source::image::no_holes!();
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.len)
    }
    fn medium_offset(&self, offset: u64) -> Option<u64> {
        self.find(offset).map(|(r, into)| r.offset + into)
    }
}

struct Frame {
    dir: RawPath,
    /// Remaining names, sorted so that `pop` yields the next.
    nodes: Vec<Node>,
    deleted: bool,
}

struct DiskWalk<'a> {
    tree: &'a DiskTree,
    /// The next partition to start.
    part: usize,
    stack: Vec<Frame>,
    /// Directories entered in the current file system, by address, with
    /// the path each was entered at: a directory reached again (an HFS+
    /// directory hard link, damage, a deleted name pointing at a live
    /// directory) is not entered twice; that name is recorded as a
    /// [`SkipReason::HardLink`] to the first path, or a
    /// [`SkipReason::DirectoryLoop`] when the first is its ancestor. One
    /// path per directory (the walk's only state growing with the tree).
    seen: HashMap<u64, RawPath>,
    /// Files with more than one name (hard links) in the current file
    /// system, by address: the name each was read at, so that its other
    /// names are recorded as [`SkipReason::HardLink`] instead of read
    /// again. Only multi-name files are kept (bounded by their number).
    first_names: HashMap<u64, RawPath>,
    directories: u64,
    /// Partitions (counted as `part`) whose unallocated space was given.
    unallocated_given: usize,
    /// Whether the space outside the partitions was given.
    unpartitioned_given: bool,
}

impl DiskWalk<'_> {
    /// The current volume's unallocated space as an item, when its file
    /// system says what is free and something is.
    fn unallocated_item(&self) -> Option<Walked> {
        let p = self.current()?;
        let Ok(Some(_)) = &p.fs else {
            return None;
        };
        let free = self.tree.unallocated_of(p)?;
        if free.error.is_some() || free.bytes == 0 {
            return None;
        }
        let mut meta = volume_meta(&p.extent);
        meta.size = free.bytes;
        meta.blocks = free.bytes.div_ceil(512);
        let prefix = self.tree.prefix(&p.extent);
        Some(Walked {
            path: prefix.join(UNALLOCATED.as_bytes()),
            meta: Some(meta),
            next: Next::Read,
            file: None,
            location: Some(Location {
                partition: p.extent.partition.clone(),
                fs: "unallocated",
                fs_offset: p.extent.offset,
                addr: 0,
                state: Allocation::Deleted,
                name_times: None,
            }),
        })
    }

    /// The medium's bytes outside every partition as one item, when the
    /// partition table leaves any (the table's own sectors included: a
    /// table holds no pictures, and a damaged one is worth carving).
    fn unpartitioned_item(&self) -> Option<Walked> {
        let gaps = self.tree.gap_ranges();
        let bytes: u64 = gaps.iter().map(|g| g.length).sum();
        if bytes == 0 {
            return None;
        }
        let mut meta = medium_meta(self.tree.image.size);
        meta.size = bytes;
        meta.blocks = bytes.div_ceil(512);
        Some(Walked {
            path: RawPath::from_bytes(UNPARTITIONED.as_bytes().to_vec()),
            meta: Some(meta),
            next: Next::Read,
            file: None,
            location: Some(Location {
                partition: None,
                fs: "unpartitioned",
                fs_offset: 0,
                addr: 0,
                state: Allocation::Deleted,
                name_times: None,
            }),
        })
    }

    fn current(&self) -> Option<&Part> {
        self.part
            .checked_sub(1)
            .and_then(|i| self.tree.parts.get(i))
    }

    fn location(&self, node: &Node, deleted: bool) -> Option<Location> {
        let p = self.current()?;
        let fs = p.fs.as_ref().ok()?.as_ref()?;
        Some(Location {
            partition: p.extent.partition.clone(),
            fs: fs.name(),
            fs_offset: p.extent.offset,
            addr: node.addr,
            state: if deleted || node.deleted {
                Allocation::Deleted
            } else {
                Allocation::Allocated
            },
            name_times: node.name_times,
        })
    }

    /// For a file with several names: the name it was first walked at, if
    /// this is not that name (the walk's order is fixed, so the same name
    /// is read in every scan of the image).
    fn first_name(
        &mut self,
        node: &Node,
        meta: Option<&FileMeta>,
        path: &RawPath,
    ) -> Option<RawPath> {
        if meta.is_none_or(|m| m.nlink < 2) {
            return None;
        }
        match self.first_names.entry(node.addr) {
            std::collections::hash_map::Entry::Occupied(first) => Some(first.get().clone()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(path.clone());
                None
            }
        }
    }

    /// Sorted for `pop`: descending by (name with `/` after directories,
    /// deleted after allocated, address).
    fn sorted(mut nodes: Vec<Node>) -> Vec<Node> {
        fn key(n: &Node) -> (Vec<u8>, bool, u64) {
            let mut k = n.name.clone();
            if n.kind() == FileKind::Directory {
                k.push(b'/');
            }
            (k, n.deleted, n.addr)
        }
        nodes.sort_by_key(|n| std::cmp::Reverse(key(n)));
        nodes
    }

    fn enter(
        &mut self,
        fs: &dyn FileSystem,
        addr: u64,
        dir: RawPath,
        deleted: bool,
    ) -> Option<Walked> {
        if self.stack.len() >= MAX_DEPTH {
            return Some(Walked {
                path: dir,
                meta: None,
                next: Next::Done(NotRead::Failed(damage(
                    Stage::ReadDir,
                    format!("directories nested deeper than {MAX_DEPTH}: not entered"),
                ))),
                file: None,
                location: None,
            });
        }
        self.directories += 1;
        self.seen.insert(addr, dir.clone());
        match fs.list(addr, deleted) {
            Ok(nodes) => {
                self.stack.push(Frame {
                    dir,
                    nodes: Self::sorted(nodes),
                    deleted,
                });
                None
            }
            Err(e) => Some(Walked {
                path: dir,
                meta: None,
                next: Next::Done(NotRead::Failed(damage(Stage::ReadDir, e.to_string()))),
                file: None,
                location: None,
            }),
        }
    }
}

/// A file system's unallocated space as the log records it (medium
/// offsets), or `None` where its reader does not compute it.
fn unallocated(fs: &dyn FileSystem, base: u64) -> Option<crate::item::Unallocated> {
    match fs.unallocated() {
        Ok(None) => None,
        Ok(Some(ranges)) => Some(crate::item::Unallocated {
            bytes: ranges.iter().map(|r| r.1).sum(),
            ranges: ranges
                .into_iter()
                .map(|(offset, length)| ByteRange {
                    offset: base + offset,
                    length,
                })
                .collect(),
            error: None,
        }),
        Err(e) => Some(crate::item::Unallocated {
            error: Some(format!("not listed: {e}")),
            ..Default::default()
        }),
    }
}

/// Why a file's size cannot be true on a volume of `volume` bytes, if it
/// cannot (see [`MAX_SPARSE_FACTOR`]).
fn implausible_size(meta: Option<&FileMeta>, volume: u64) -> Option<String> {
    let size = meta?.size;
    let limit = volume
        .saturating_mul(MAX_SPARSE_FACTOR)
        .saturating_add(1 << 30);
    (size > limit).then(|| {
        format!(
            "its size, {size} bytes, is more than {MAX_SPARSE_FACTOR} times its volume's ({volume} bytes): a damaged size, or a sparse file of holes too large to hash; not read"
        )
    })
}

/// Why a directory already entered at `first` is not entered again at
/// `path`: a loop when `first` is one of `path`'s ancestors, else another
/// name of it.
fn reached_again(first: &RawPath, path: &RawPath) -> SkipReason {
    let (f, p) = (first.as_bytes(), path.as_bytes());
    let ancestor = f.is_empty() || (p.starts_with(f) && p.get(f.len()) == Some(&b'/'));
    if ancestor {
        SkipReason::DirectoryLoop {
            ancestor: first.clone(),
        }
    } else {
        SkipReason::HardLink {
            first: first.clone(),
        }
    }
}

fn damage(stage: Stage, message: String) -> Failure {
    Failure {
        stage,
        kind: FailureKind::Io(crate::item::OsError {
            errno: None,
            message,
        }),
        bytes_read: 0,
    }
}

impl Iterator for DiskWalk<'_> {
    type Item = Walked;

    fn next(&mut self) -> Option<Walked> {
        loop {
            let tree = self.tree;
            if let Some(top) = self.stack.last_mut() {
                let Some(node) = top.nodes.pop() else {
                    self.stack.pop();
                    continue;
                };
                let path = top.dir.join(&node.name);
                let deleted = top.deleted || node.deleted;
                let part = &tree.parts[self.part - 1];
                let Ok(Some(fs)) = &part.fs else {
                    self.stack.clear();
                    continue;
                };
                let location = self.location(&node, deleted);
                let mut meta = node.meta.clone();
                if let Some(m) = &mut meta {
                    m.dev = part.extent.partition.as_ref().map_or(0, |p| p.index as u64);
                }
                let kind = node.kind();
                let next = if let Some(why) = &node.error {
                    Next::Done(NotRead::Failed(damage(Stage::Stat, why.clone())))
                } else if let Some(r) = &node.skip {
                    Next::Done(NotRead::Skipped(r.clone()))
                } else if meta.is_none() {
                    Next::Done(NotRead::Failed(damage(Stage::Stat, "no metadata".into())))
                } else if kind == FileKind::Directory {
                    match self.seen.get(&node.addr) {
                        Some(first) => Next::Done(NotRead::Skipped(reached_again(first, &path))),
                        None => {
                            if let Some(w) = self.enter(&**fs, node.addr, path, deleted) {
                                return Some(w);
                            }
                            continue;
                        }
                    }
                } else if kind == FileKind::Regular
                    && let Some(why) = implausible_size(meta.as_ref(), part.extent.length)
                {
                    Next::Done(NotRead::Failed(damage(Stage::Stat, why)))
                } else if kind == FileKind::Regular {
                    match self.first_name(&node, meta.as_ref(), &path) {
                        Some(first) => Next::Done(NotRead::Skipped(SkipReason::HardLink { first })),
                        None => Next::Read,
                    }
                } else if kind == FileKind::Symlink {
                    // Recorded, never followed: the target is a record of
                    // the file system, read like any other.
                    let target = fs.link_target(node.addr).map(RawPath::from_bytes);
                    Next::Done(NotRead::Skipped(SkipReason::Symlink { target }))
                } else {
                    Next::Done(NotRead::Skipped(
                        SkipReason::for_kind(kind).unwrap_or(SkipReason::UnknownType),
                    ))
                };
                return Some(Walked {
                    path,
                    meta,
                    next,
                    file: None,
                    location,
                });
            }
            // The volume's unallocated space, after its files.
            if tree.unallocated_items && self.unallocated_given < self.part {
                self.unallocated_given = self.part;
                if let Some(w) = self.unallocated_item() {
                    return Some(w);
                }
            }
            // The next partition; after the last, the space outside them.
            let Some(part) = tree.parts.get(self.part) else {
                if tree.unallocated_items && !self.unpartitioned_given {
                    self.unpartitioned_given = true;
                    if let Some(w) = self.unpartitioned_item() {
                        return Some(w);
                    }
                }
                return None;
            };
            self.part += 1;
            self.seen.clear();
            self.first_names.clear();
            let prefix = tree.prefix(&part.extent);
            match &part.fs {
                Ok(Some(fs)) => {
                    if let Some(w) = self.enter(&**fs, fs.root(), prefix, false) {
                        return Some(w);
                    }
                }
                _ => {
                    if part.extent.length == 0 {
                        continue;
                    }
                    return Some(Walked {
                        path: prefix,
                        meta: Some(volume_meta(&part.extent)),
                        next: Next::Read,
                        file: None,
                        location: Some(Location {
                            partition: part.extent.partition.clone(),
                            fs: "unrecognised",
                            fs_offset: part.extent.offset,
                            addr: 0,
                            state: Allocation::Allocated,
                            name_times: None,
                        }),
                    });
                }
            }
        }
    }
}

impl Walk for DiskWalk<'_> {
    fn directories(&self) -> u64 {
        self.directories
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tree::MemSource;

    /// A file system of directories only, by address: (name, address)
    /// children; address 1 is the root.
    struct Dirs(Vec<(u64, &'static str, u64)>);

    fn dir_meta(addr: u64) -> FileMeta {
        FileMeta {
            size: 0,
            mode: libc::S_IFDIR | 0o755,
            dev: 0,
            ino: addr,
            nlink: 2,
            uid: 0,
            gid: 0,
            mtime: crate::time::Timestamp::new(0, 0),
            atime: crate::time::Timestamp::new(0, 0),
            ctime: crate::time::Timestamp::new(0, 0),
            btime: None,
            blocks: 0,
        }
    }

    impl FileSystem for Dirs {
        fn name(&self) -> &'static str {
            "test"
        }
        fn root(&self) -> u64 {
            1
        }
        fn list(&self, addr: u64, _deleted: bool) -> io::Result<Vec<Node>> {
            Ok(self
                .0
                .iter()
                .filter(|c| c.0 == addr)
                .map(|&(_, name, to)| Node {
                    name: name.as_bytes().to_vec(),
                    addr: to,
                    meta: Some(dir_meta(to)),
                    deleted: false,
                    skip: None,
                    error: None,
                    name_times: None,
                })
                .collect())
        }
        fn open(&self, _addr: u64) -> io::Result<(Box<dyn Source + '_>, FileMeta)> {
            Err(io::Error::other("no files"))
        }
    }

    /// A directory reached again is recorded at that name, never left out:
    /// a second name of it as a hard link to the first, a name of one of
    /// its own ancestors as a loop.
    #[test]
    fn a_directory_reached_twice_is_recorded_not_dropped() {
        let fs = Dirs(vec![
            (1, "a", 2),
            (1, "b", 2),
            (2, "up", 1),
            (2, "self", 2),
            (2, "c", 3),
        ]);
        let media: Arc<dyn Source> = Arc::new(MemSource(Vec::new()));
        let tree = DiskTree {
            root: PathBuf::from("/test.img"),
            image: Image {
                format: "raw",
                media,
                size: 0,
                segments: Vec::new(),
                metadata: Vec::new(),
                stored_digests: Vec::new(),
                notes: Vec::new(),
            },
            layout: Layout::default(),
            parts: vec![Part {
                extent: Extent {
                    partition: None,
                    offset: 0,
                    length: 1 << 20,
                },
                fs: Ok(Some(Box::new(fs))),
                unallocated: std::sync::OnceLock::new(),
            }],
            unallocated_items: false,
        };
        let got: Vec<(String, String)> = tree
            .walk()
            .map(|w| {
                let what = match w.next {
                    Next::Done(NotRead::Skipped(r)) => format!("{}: {r}", r.code()),
                    _ => "other".into(),
                };
                (w.path.to_string(), what)
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "a/self".to_string(),
                    "directory_loop: directory loop: the same directory (device and inode, or record in an image) as 'a'".to_string()
                ),
                (
                    "a/up".to_string(),
                    "directory_loop: directory loop: the same directory (device and inode, or record in an image) as the evidence root"
                        .to_string()
                ),
                (
                    "b".to_string(),
                    "hard_link: another name of what was read at 'a' (a hard link: the same record); not read twice"
                        .to_string()
                ),
            ]
        );
    }
}
