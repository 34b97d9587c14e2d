//! HFS+ and HFSX, read-only: the catalog B-tree, data forks with their
//! overflow extents, resource forks, hard links, zlib-compressed files,
//! the special files as TSK names them.
//!
//! Layout (Apple's Technical Note TN1150): a volume header at byte 1024
//! (`H+`, or `HX` for the case-sensitive variant) giving the allocation
//! block size and the forks of the special files. The catalog file is a
//! B-tree whose leaf records are keyed by (parent folder ID, name): a
//! folder's children are the records with its ID as parent, found by
//! descending the index on the parent ID alone (an empty name sorts
//! first, so no Unicode comparison is needed) and walking the leaves. A
//! file record holds its data fork: the logical size and the first eight
//! extents; more extents live in the extents-overflow B-tree, keyed by
//! (file ID, fork, first block). All integers are big-endian; times are
//! seconds since 1904-01-01 UTC.
//!
//! Resource forks are items of their own, `name:rsrc` (as NTFS streams
//! are `name:stream`), read through their extents like data forks.
//!
//! File hard links are followed as macOS makes them and The Sleuth Kit
//! follows them: a file record of type `hlnk`, creator `hfs+`, whose
//! creation date is that of the private folder `\0\0\0\0HFS+ Private
//! Data` (or of the directory-link folder, or of the root) stands for the
//! indirect node file whose catalog node ID is in its BSD `special` field
//! (`iNode<ID>` in the private folder, which holds the data and the link
//! count). Every name of it then has that node's address, so the scan
//! reads it once. A record typed `hlnk` that fails the rule is read as
//! what it is (an empty file), as TSK reads it.
//!
//! Directory hard links are followed as TSK follows them: a file record
//! of type `fdrp`, creator `MACS`, with one of those creation dates,
//! stands for the folder whose ID is in its `special` field
//! (`dir_<ID>` in `.HFS+ Private Directory Data\r`). The walk enters that
//! folder once, at the name it reaches first, and records every other
//! name as a hard link to it (TSK lists the folder's contents under each
//! name).
//!
//! Compressed files (`UF_COMPRESSED`, an empty data fork and a
//! `com.apple.decmpfs` attribute in the attributes B-tree) are read
//! decompressed when zlib or LZVN holds them: type 3 (zlib) and 7 (LZVN)
//! inline after the record's 16-byte header; type 4 (zlib) in 64 KiB units
//! listed after the resource fork's header, type 8 (LZVN) in units listed
//! by offsets at the fork's start. A unit is stored as it is after a
//! marker byte (low nibble 0xF for zlib, 0x06 for LZVN) or compressed
//! (TSK's decmpfs rules).
//!
//! Not read (the file fails with why, never a wrong digest): files
//! compressed with LZFSE (decmpfs types 11, 12; TSK does not read them
//! either) or stored raw in the attribute or resource fork (types 9, 10).
//! Deleted files are not recovered
//! (HFS+ reuses catalog nodes; TSK does not recover them either). The
//! journal is not replayed. An HFS wrapper around HFS+ is refused.

use std::collections::HashSet;
use std::io;
use std::sync::OnceLock;

use super::{FileSystem, Node, Run, RunFile, Volume, damaged, le32, le64, lzvn};
use crate::item::FileMeta;
use crate::source::bytes::{be16, be32, be64};
use crate::source::tree::{MemSource, Source};
use crate::time::Timestamp;

/// Seconds from 1904-01-01 (HFS+) to 1970-01-01 (Unix).
const HFS_EPOCH: i64 = 2_082_844_800;
/// The root folder's catalog node ID.
const ROOT: u64 = 2;
const REC_FOLDER: u16 = 1;
const REC_FILE: u16 = 2;
/// Fork types in the extents-overflow tree's keys.
const FORK_DATA: u8 = 0;
const FORK_RSRC: u8 = 0xFF;
/// Addresses of items: the catalog node ID (32 bits); this bit set for
/// its resource fork.
const RSRC: u64 = 1 << 32;
/// B-tree nodes visited for one search or listing at most (a loop in the
/// leaf chain or index ends there).
const MAX_NODES: usize = 1 << 20;
/// The special files, by catalog node ID, as TSK names them.
const SPECIAL: [(u64, &str, usize); 6] = [
    (3, "$ExtentsFile", 192),
    (4, "$CatalogFile", 272),
    (5, "$BadBlockFile", 0),
    (6, "$AllocationFile", 112),
    (7, "$StartupFile", 432),
    (8, "$AttributesFile", 352),
];

/// A fork: its logical size and the first eight extents (start block,
/// block count), from a volume header or a file record.
#[derive(Clone, Debug)]
struct Fork {
    size: u64,
    blocks: u64,
    extents: Vec<(u64, u64)>,
}

impl Fork {
    fn parse(b: &[u8]) -> Fork {
        Fork {
            size: be64(b, 0),
            blocks: be32(b, 12) as u64,
            extents: (0..8)
                .map(|k| (be32(b, 16 + 8 * k) as u64, be32(b, 20 + 8 * k) as u64))
                .filter(|e| e.1 > 0)
                .collect(),
        }
    }
}

/// A B-tree: its file's runs and what the header node says.
struct BTree {
    runs: Vec<Run>,
    size: u64,
    node: u64,
    root: u32,
    depth: u16,
    /// Index keys are as long as they say (else padded to `max_key`).
    variable_keys: bool,
    max_key: u16,
}

/// One B-tree node's records (byte slices) and its kind and next node.
struct NodeRecs {
    kind: i8,
    next: u32,
    recs: Vec<Vec<u8>>,
}

/// An HFS+ or HFSX file system.
pub struct HfsPlus {
    vol: Volume,
    block: u64,
    blocks: u64,
    hfsx: bool,
    header: Vec<u8>,
    catalog: BTree,
    extents: Option<BTree>,
    /// The attributes B-tree (extended attributes, `decmpfs` records).
    attributes: Option<BTree>,
    notes: Vec<String>,
    /// What file hard links need, found on first use.
    links: OnceLock<Links>,
}

/// The private folders of file and directory hard links and the
/// creation dates a link must carry (the two private folders' and the
/// root's: TSK's rule). A kind of link is followed only where its
/// private folder exists.
#[derive(Default)]
struct Links {
    folder: Option<u64>,
    dirs: Option<u64>,
    dates: Vec<u32>,
}

/// The private folder of file hard links' indirect nodes, in the root.
const PRIVATE_FILES: &str = "\0\0\0\0HFS+ Private Data";
/// The private folder of directory hard links, in the root.
const PRIVATE_DIRS: &str = ".HFS+ Private Directory Data\r";

impl HfsPlus {
    /// Whether `vol` holds an HFS+ or HFSX volume header at byte 1024.
    pub fn detect(vol: &Volume) -> io::Result<bool> {
        if vol.len() < 1536 {
            return Ok(false);
        }
        let h = vol.bytes_at(1024, 512)?;
        Ok(matches!(&h[..2], b"H+" | b"HX") && matches!(be16(&h, 2), 4 | 5))
    }

    /// Reads the volume header and the headers of the catalog and
    /// extents-overflow B-trees.
    pub fn open(vol: Volume) -> io::Result<HfsPlus> {
        let h = vol.bytes_at(1024, 512)?;
        let block = be32(&h, 40) as u64;
        let blocks = be32(&h, 44) as u64;
        if !block.is_power_of_two() || !(512..=1 << 20).contains(&block) || blocks == 0 {
            return Err(damaged(format!(
                "HFS+ volume header: allocation blocks of {block} bytes, {blocks} blocks"
            )));
        }
        // Blocks past the volume's end cannot be read: a larger count (a
        // truncated image, or damage) must not be walked block by block.
        let blocks = blocks.min(vol.len() / block);
        let mut notes = Vec::new();
        if be32(&h, 4) & 0x2000 != 0 {
            notes.push("HFS+: the volume is journaled; the journal is not replayed".into());
        }
        let mut fs = HfsPlus {
            hfsx: &h[..2] == b"HX",
            block,
            blocks,
            catalog: BTree::empty(),
            extents: None,
            attributes: None,
            links: OnceLock::new(),
            header: h,
            vol,
            notes,
        };
        let ext_fork = Fork::parse(&fs.header[192..272]);
        let ext_runs = fs.fork_runs(&ext_fork, 3, FORK_DATA)?;
        fs.extents = Some(fs.btree(ext_runs, ext_fork.size, "extents overflow")?);
        let cat_fork = Fork::parse(&fs.header[272..352]);
        let cat_runs = fs.fork_runs(&cat_fork, 4, FORK_DATA)?;
        fs.catalog = fs.btree(cat_runs, cat_fork.size, "catalog")?;
        let attr_fork = Fork::parse(&fs.header[352..432]);
        if attr_fork.size > 0 {
            // Without it, compressed files fail (with why); the rest reads.
            match fs
                .fork_runs(&attr_fork, 8, FORK_DATA)
                .and_then(|runs| fs.btree(runs, attr_fork.size, "attributes"))
            {
                Ok(t) => fs.attributes = Some(t),
                Err(e) => fs.notes.push(format!(
                    "HFS+: the attributes file cannot be read ({e}): compressed files are not read"
                )),
            }
        }
        Ok(fs)
    }

    /// The runs of a fork (`kind`: [`FORK_DATA`] or [`FORK_RSRC`]) of file
    /// `id`: its first extents, then those of the extents-overflow tree
    /// (never for that tree's own file, ID 3), up to the fork's size.
    fn fork_runs(&self, f: &Fork, id: u64, kind: u8) -> io::Result<Vec<Run>> {
        let mut runs: Vec<Run> = Vec::new();
        let mut have = 0u64;
        let add = |runs: &mut Vec<Run>, have: &mut u64, (start, count): (u64, u64)| {
            if start.checked_add(count).is_none_or(|end| end > self.blocks) {
                return Err(damaged(format!(
                    "an HFS+ extent of file {id} (block {start}, {count} blocks) lies outside the volume's {} blocks",
                    self.blocks
                )));
            }
            runs.push((
                *have * self.block,
                Some(start * self.block),
                count * self.block,
            ));
            *have += count;
            Ok(())
        };
        for &e in &f.extents {
            add(&mut runs, &mut have, e)?;
        }
        let need = f.size.div_ceil(self.block).max(f.blocks.min(self.blocks));
        if have < need && id != 3 {
            let Some(tree) = &self.extents else {
                return Err(damaged(format!("HFS+ file {id} needs overflow extents")));
            };
            for e in self.overflow(tree, id, kind, have)? {
                if have >= need {
                    break;
                }
                add(&mut runs, &mut have, e)?;
            }
        }
        if have * self.block < f.size {
            return Err(damaged(format!(
                "HFS+ file {id}: its extents hold {} bytes of its {}",
                have * self.block,
                f.size
            )));
        }
        Ok(runs)
    }

    /// A fork of file `id` as a source of its bytes.
    fn fork_file(&self, f: &Fork, id: u64, kind: u8) -> io::Result<RunFile<'_>> {
        Ok(RunFile {
            vol: &self.vol,
            runs: self.fork_runs(f, id, kind)?.into(),
            size: f.size,
        })
    }

    /// Overflow extents of fork `kind` of file `id` from block `from` on.
    fn overflow(&self, tree: &BTree, id: u64, kind: u8, from: u64) -> io::Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let mut next = from;
        // Each record holds up to eight extents starting at `next`.
        for _ in 0..MAX_NODES {
            let key = |r: &[u8]| (be32(r, 4) as u64, r[2], be32(r, 8) as u64);
            let found = self.find(
                tree,
                |r| key(r) <= (id, kind, next),
                |r| key(r).cmp(&(id, kind, next)),
            )?;
            let Some(rec) = found else { break };
            let data = &rec[2 + be16(&rec, 0) as usize..];
            let mut added = 0;
            for k in 0..8 {
                let (s, c) = (be32(data, 8 * k) as u64, be32(data, 8 * k + 4) as u64);
                if c == 0 {
                    break;
                }
                out.push((s, c));
                next += c;
                added += 1;
            }
            if added == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// The leaf record equal to a key (`cmp` gives its order against the
    /// key sought; `le` whether an index key is at or before it).
    fn find(
        &self,
        tree: &BTree,
        le: impl Fn(&[u8]) -> bool,
        cmp: impl Fn(&[u8]) -> std::cmp::Ordering,
    ) -> io::Result<Option<Vec<u8>>> {
        let leaf = self.descend(tree, &le)?;
        let Some(n) = leaf else { return Ok(None) };
        let node = self.node(tree, n)?;
        Ok(node.recs.into_iter().find(|r| cmp(r).is_eq()))
    }

    /// The leaf node where the records at or after a key begin: from the
    /// root, in each index node the last record whose key is at or before
    /// it (`le`), or the first when none is.
    fn descend(&self, tree: &BTree, le: &dyn Fn(&[u8]) -> bool) -> io::Result<Option<u32>> {
        if tree.root == 0 {
            return Ok(None);
        }
        let mut n = tree.root;
        for _ in 0..=tree.depth.max(1) as usize + 1 {
            let node = self.node(tree, n)?;
            match node.kind {
                -1 => return Ok(Some(n)),
                0 => {}
                k => {
                    return Err(damaged(format!(
                        "HFS+ B-tree node {n} of kind {k} where an index or leaf node belongs"
                    )));
                }
            }
            let pick = node.recs.iter().rposition(|r| le(r)).unwrap_or(0);
            let rec = node
                .recs
                .get(pick)
                .ok_or_else(|| damaged(format!("HFS+ index node {n} has no records")))?;
            let key_len = if tree.variable_keys {
                be16(rec, 0) as usize
            } else {
                tree.max_key as usize
            };
            let child = be32(rec, 2 + key_len);
            if child == n {
                return Err(damaged(format!("HFS+ index node {n} points at itself")));
            }
            n = child;
        }
        Err(damaged("the HFS+ B-tree is deeper than its header says"))
    }

    /// Node `n` of `tree`: its descriptor and records.
    fn node(&self, tree: &BTree, n: u32) -> io::Result<NodeRecs> {
        let at = n as u64 * tree.node;
        if at + tree.node > tree.size {
            return Err(damaged(format!(
                "HFS+ B-tree node {n} lies past the end of its file"
            )));
        }
        let mut b = vec![0u8; tree.node as usize];
        let file = RunFile {
            vol: &self.vol,
            runs: tree.runs.as_slice().into(),
            size: tree.size,
        };
        crate::source::tree::read_exact(&file, &mut b, at)?;
        let count = be16(&b, 10) as usize;
        let size = b.len();
        if 14 + 2 * (count + 1) > size {
            return Err(damaged(format!(
                "HFS+ B-tree node {n} claims {count} records"
            )));
        }
        let off = |i: usize| be16(&b, size - 2 * (i + 1)) as usize;
        let mut recs = Vec::with_capacity(count);
        for i in 0..count {
            let (s, e) = (off(i), off(i + 1));
            if s < 14 || e < s || e > size - 2 * (count + 1) {
                return Err(damaged(format!(
                    "HFS+ B-tree node {n}: record {i} at {s}..{e} lies outside the node"
                )));
            }
            recs.push(b[s..e].to_vec());
        }
        Ok(NodeRecs {
            kind: b[8] as i8,
            next: be32(&b, 0),
            recs,
        })
    }

    fn btree(&self, runs: Vec<Run>, size: u64, what: &str) -> io::Result<BTree> {
        let mut t = BTree::empty();
        t.runs = runs;
        t.size = size;
        if size == 0 {
            return Ok(t);
        }
        let mut head = vec![0u8; 512.min(size as usize)];
        let file = RunFile {
            vol: &self.vol,
            runs: t.runs.as_slice().into(),
            size,
        };
        crate::source::tree::read_exact(&file, &mut head, 0)?;
        if head[8] != 1 {
            return Err(damaged(format!(
                "the HFS+ {what} B-tree has no header node"
            )));
        }
        let r = &head[14..];
        t.depth = be16(r, 0);
        t.root = be32(r, 2);
        t.node = be16(r, 18) as u64;
        t.max_key = be16(r, 20);
        t.variable_keys = be32(r, 38) & 0x4 != 0;
        if !t.node.is_power_of_two() || !(512..=32768).contains(&t.node) {
            return Err(damaged(format!(
                "the HFS+ {what} B-tree has nodes of {} bytes",
                t.node
            )));
        }
        Ok(t)
    }

    /// The catalog records of folder `parent`'s children (and its thread
    /// record), in key order.
    fn children(&self, parent: u64) -> io::Result<Vec<Vec<u8>>> {
        let parent_of = |r: &[u8]| be32(r, 2) as u64;
        // At or before (parent, ""): a smaller parent, or the parent's own
        // thread record (the one key with an empty name).
        let le = |r: &[u8]| parent_of(r) < parent || (parent_of(r) == parent && be16(r, 6) == 0);
        self.leaf_records(&self.catalog, &le, &parent_of, parent, "catalog")
    }

    /// The attribute records of file `id` (key: length, pad, file ID,
    /// start block, name), in key order; none without an attributes file.
    fn attributes_of(&self, id: u64) -> io::Result<Vec<Vec<u8>>> {
        let Some(tree) = &self.attributes else {
            return Ok(Vec::new());
        };
        let file_of = |r: &[u8]| be32(r, 4) as u64;
        self.leaf_records(
            tree,
            &|r: &[u8]| file_of(r) < id,
            &file_of,
            id,
            "attributes",
        )
    }

    /// The leaf records of `tree` whose `id_of` is `id`: from the leaf
    /// `le` descends to, along the leaf chain until a larger ID.
    fn leaf_records(
        &self,
        tree: &BTree,
        le: &dyn Fn(&[u8]) -> bool,
        id_of: &dyn Fn(&[u8]) -> u64,
        id: u64,
        what: &str,
    ) -> io::Result<Vec<Vec<u8>>> {
        let Some(mut n) = self.descend(tree, le)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        while n != 0 && seen.len() < MAX_NODES {
            if !seen.insert(n) {
                return Err(damaged(format!(
                    "the HFS+ {what} B-tree's leaf chain loops at node {n}"
                )));
            }
            let node = self.node(tree, n)?;
            if node.kind != -1 {
                return Err(damaged(format!(
                    "HFS+ {what} node {n} in the leaf chain is not a leaf"
                )));
            }
            for r in node.recs {
                match id_of(&r).cmp(&id) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => out.push(r),
                    std::cmp::Ordering::Greater => return Ok(out),
                }
            }
            n = node.next;
        }
        Ok(out)
    }

    /// The file or folder record of catalog node `id`: through its thread
    /// record (key `(id, "")`: parent and name), then the parent's records.
    fn record(&self, id: u64) -> io::Result<Vec<u8>> {
        let thread = self
            .children(id)?
            .into_iter()
            .find(|r| be16(r, 6) == 0 && matches!(rec_type(r), 3 | 4))
            .ok_or_else(|| damaged(format!("HFS+ catalog node {id} has no thread record")))?;
        let parent = be32(data(&thread), 4) as u64;
        self.children(parent)?
            .into_iter()
            .find(|r| matches!(rec_type(r), REC_FOLDER | REC_FILE) && be32(data(r), 8) as u64 == id)
            .ok_or_else(|| {
                damaged(format!(
                    "HFS+ catalog node {id} is not in its parent {parent}"
                ))
            })
    }

    /// The private folder and the creation dates that make an `hlnk`
    /// record a hard link; without the private folder, no dates.
    fn links(&self) -> &Links {
        self.links.get_or_init(|| {
            let Ok(root) = self.children(ROOT) else {
                return Links::default();
            };
            let folder = |wanted: &str| {
                let units: Vec<u16> = wanted.encode_utf16().collect();
                root.iter()
                    .find(|r| {
                        rec_type(r) == REC_FOLDER
                            && be16(r, 6) as usize == units.len()
                            && (0..units.len()).all(|k| be16(r, 8 + 2 * k) == units[k])
                    })
                    .map(|r| (be32(data(r), 8) as u64, be32(data(r), 12)))
            };
            let (files, dirs) = (folder(PRIVATE_FILES), folder(PRIVATE_DIRS));
            let mut dates: Vec<u32> = files.iter().chain(&dirs).map(|f| f.1).collect();
            if dates.is_empty() {
                return Links::default();
            }
            if let Ok(r) = self.record(ROOT) {
                dates.push(be32(data(&r), 12));
            }
            Links {
                folder: files.map(|f| f.0),
                dirs: dirs.map(|f| f.0),
                dates,
            }
        })
    }

    /// The indirect node a file record stands for, if it is a hard link.
    fn link_of(&self, d: &[u8]) -> Option<u64> {
        let links = self.links();
        (links.folder.is_some() && self.linked(d, b"hlnkhfs+")).then(|| be32(d, 44) as u64)
    }

    /// The folder a file record stands for, if it is a directory hard
    /// link (type `fdrp`, creator `MACS`: `dir_<ID>` in the directory
    /// links' private folder).
    fn dir_link_of(&self, d: &[u8]) -> Option<u64> {
        let links = self.links();
        (links.dirs.is_some() && self.linked(d, b"fdrpMACS")).then(|| be32(d, 44) as u64)
    }

    /// Whether a file record has this type and creator and a creation
    /// date that makes it a link.
    fn linked(&self, d: &[u8], type_creator: &[u8; 8]) -> bool {
        d.get(48..56) == Some(type_creator) && self.links().dates.contains(&be32(d, 12))
    }

    /// A compressed file's `decmpfs` record (the `com.apple.decmpfs`
    /// attribute's inline data), if the file is compressed (`UF_COMPRESSED`).
    fn decmpfs(&self, id: u64, d: &[u8]) -> Option<io::Result<Decmpfs>> {
        if d.get(41).is_none_or(|f| f & UF_COMPRESSED == 0) {
            return None;
        }
        Some(self.decmpfs_record(id))
    }

    fn decmpfs_record(&self, id: u64) -> io::Result<Decmpfs> {
        let name: Vec<u16> = "com.apple.decmpfs".encode_utf16().collect();
        let rec = self
            .attributes_of(id)?
            .into_iter()
            .find(|r| {
                be16(r, 12) as usize == name.len()
                    && (0..name.len()).all(|k| be16(r, 14 + 2 * k) == name[k])
            })
            .ok_or_else(|| {
                damaged(format!(
                    "HFS+ file {id} is compressed (decmpfs) but has no com.apple.decmpfs attribute"
                ))
            })?;
        // The data after the key, at an even offset: type, 8 reserved
        // bytes, size, then the bytes.
        let at = (2 + be16(&rec, 0) as usize).next_multiple_of(2);
        let body = rec.get(at..).unwrap_or(&[]);
        if be32(body, 0) != ATTR_INLINE {
            return Err(damaged(format!(
                "HFS+ file {id}: its decmpfs attribute is not inline data"
            )));
        }
        let len = be32(body, 12) as usize;
        let bytes = body.get(16..16 + len).ok_or_else(|| {
            damaged(format!(
                "HFS+ file {id}: its decmpfs attribute is truncated"
            ))
        })?;
        Decmpfs::parse(id, bytes)
    }

    /// A file record's metadata; an indirect node (a file in the private
    /// folder: the record's key names its parent) has all its names.
    fn file_meta(&self, id: u64, r: &[u8]) -> FileMeta {
        if self.links().folder == Some(be32(r, 2) as u64) {
            self.linked_meta(id, r)
        } else {
            self.meta(id, r)
        }
    }

    /// An indirect node's metadata with its number of names: its links
    /// (the BSD `special` field, as macOS counts them) and its own name in
    /// the private folder, which this reader lists too.
    fn linked_meta(&self, id: u64, r: &[u8]) -> FileMeta {
        FileMeta {
            nlink: (be32(data(r), 44) as u64).max(1) + 1,
            ..self.meta(id, r)
        }
    }

    fn meta(&self, id: u64, r: &[u8]) -> FileMeta {
        let d = data(r);
        let folder = rec_type(r) == REC_FOLDER;
        let stored = be16(d, 42) as u32;
        let mode = if stored & libc::S_IFMT != 0 {
            stored
        } else if folder {
            libc::S_IFDIR | 0o755
        } else {
            libc::S_IFREG | 0o644
        };
        let fork = if folder { None } else { Some(data_fork(d)) };
        let size = fork.as_ref().map_or(0, |f| f.size);
        FileMeta {
            size,
            mode,
            dev: 0,
            ino: id,
            nlink: 1,
            uid: be32(d, 32),
            gid: be32(d, 36),
            mtime: hfs_time(be32(d, 16)),
            atime: hfs_time(be32(d, 24)),
            ctime: hfs_time(be32(d, 20)),
            btime: Some(hfs_time(be32(d, 12))),
            blocks: fork.map_or(0, |f| f.blocks) * (self.block / 512),
        }
    }

    fn special_meta(&self, id: u64, fork: &Fork) -> FileMeta {
        let t = hfs_time(be32(&self.header, 16));
        FileMeta {
            size: fork.size,
            mode: libc::S_IFREG | 0o444,
            dev: 0,
            ino: id,
            nlink: 1,
            uid: 0,
            gid: 0,
            mtime: t,
            atime: t,
            ctime: t,
            btime: Some(t),
            blocks: fork.blocks * (self.block / 512),
        }
    }

    fn special_fork(&self, at: usize) -> Fork {
        if at == 0 {
            // The bad-block file has no fork in the header: its extents
            // are all in the overflow tree; TSK lists it with size 0.
            return Fork {
                size: 0,
                blocks: 0,
                extents: Vec::new(),
            };
        }
        Fork::parse(&self.header[at..at + 80])
    }
}

impl BTree {
    fn empty() -> BTree {
        BTree {
            runs: Vec::new(),
            size: 0,
            node: 512,
            root: 0,
            depth: 0,
            variable_keys: true,
            max_key: 0,
        }
    }
}

/// A catalog leaf record's type (after its key).
fn rec_type(r: &[u8]) -> u16 {
    be16(data(r), 0)
}

/// A file record's data fork (zeros when the record is too short: a
/// damaged record, caught by the length check in `list`).
fn data_fork(d: &[u8]) -> Fork {
    Fork::parse(d.get(88..168).unwrap_or(&[]))
}

/// `ownerFlags` bit of a compressed file (`UF_COMPRESSED`).
const UF_COMPRESSED: u8 = 0x20;
/// An attribute record holding its data inline.
const ATTR_INLINE: u32 = 0x10;
/// Bytes of a decmpfs compression unit (a block of a compressed file).
const UNIT: u64 = 64 * 1024;
/// The largest inline (type 3) file: its data sits in one B-tree node,
/// and zlib inflates at most ~1,000×.
const MAX_INLINE: u64 = 16 << 20;

/// A `decmpfs` record: how a compressed file's bytes are stored.
struct Decmpfs {
    kind: u32,
    size: u64,
    /// Type 3: the bytes after the 16-byte header.
    inline: Vec<u8>,
}

impl Decmpfs {
    /// The 16-byte header (`fpmc`, type, size; little-endian) and the
    /// inline bytes.
    fn parse(id: u64, b: &[u8]) -> io::Result<Decmpfs> {
        if b.len() < 16 || &b[..4] != b"fpmc" {
            return Err(damaged(format!(
                "HFS+ file {id}: its decmpfs record has no fpmc header"
            )));
        }
        Ok(Decmpfs {
            kind: le32(b, 4),
            size: le64(b, 8),
            inline: b[16..].to_vec(),
        })
    }
}

/// How a compressed file's units are coded.
#[derive(Clone, Copy)]
enum Codec {
    /// Types 3 and 4.
    Zlib,
    /// Types 7 and 8.
    Lzvn,
}

impl Codec {
    /// Whether a unit starting with `first` is stored as it is (after
    /// that byte): a low nibble 0xF for zlib (no zlib header has it),
    /// 0x06 for LZVN (the end-of-stream opcode, which no stream starts
    /// with).
    fn stored(self, first: u8) -> bool {
        match self {
            Codec::Zlib => first & 0x0F == 0x0F,
            Codec::Lzvn => first == 0x06,
        }
    }
}

/// One decmpfs unit as stored: a marker byte (see [`Codec::stored`])
/// before bytes stored as they are, or a compressed stream. `want`: the
/// unit's uncompressed size.
fn decmpfs_unit(id: u64, codec: Codec, stored: &[u8], want: u64) -> io::Result<Vec<u8>> {
    let out = match stored.first() {
        None => Vec::new(),
        Some(&b) if codec.stored(b) => stored[1..].to_vec(),
        Some(_) if matches!(codec, Codec::Lzvn) => {
            lzvn::decode(stored, want as usize).map_err(|e| {
                damaged(format!(
                    "HFS+ file {id}: a compressed unit cannot be decompressed ({e})"
                ))
            })?
        }
        Some(_) => {
            // Room for one byte more than wanted, so that a longer
            // stream shows as one (the vector never grows past it).
            let mut out = Vec::with_capacity(want as usize + 1);
            let mut z = flate2::Decompress::new(true);
            let status = z
                .decompress_vec(stored, &mut out, flate2::FlushDecompress::Finish)
                .map_err(|e| {
                    damaged(format!(
                        "HFS+ file {id}: a compressed unit cannot be inflated ({e})"
                    ))
                })?;
            if status != flate2::Status::StreamEnd {
                return Err(damaged(format!(
                    "HFS+ file {id}: a compressed unit is truncated or longer than {want} bytes"
                )));
            }
            out
        }
    };
    if out.len() as u64 != want {
        return Err(damaged(format!(
            "HFS+ file {id}: a compressed unit gives {} bytes, not {want}",
            out.len()
        )));
    }
    Ok(out)
}

/// A compressed file whose units are in the resource fork: type 4 (zlib)
/// after a resource header and a table of (offset, length) pairs, type 8
/// (LZVN) after a table of offsets at the fork's start. Each unit is
/// decompressed when read, the last one kept.
struct RsrcUnits<'a> {
    id: u64,
    codec: Codec,
    fork: RunFile<'a>,
    size: u64,
    /// Where the table starts in the fork (offsets count from there).
    table_at: u64,
    table: Vec<(u32, u32)>,
    last: std::sync::Mutex<Option<(u64, std::sync::Arc<Vec<u8>>)>>,
}

impl<'a> RsrcUnits<'a> {
    fn new(id: u64, codec: Codec, fork: RunFile<'a>, size: u64) -> io::Result<RsrcUnits<'a>> {
        match codec {
            Codec::Zlib => Self::zlib(id, fork, size),
            Codec::Lzvn => Self::lzvn(id, fork, size),
        }
    }

    /// Type 4: a resource header whose first word is where the data
    /// starts (less 4), then a count and (offset, length) pairs, offsets
    /// from the count.
    fn zlib(id: u64, fork: RunFile<'a>, size: u64) -> io::Result<RsrcUnits<'a>> {
        let mut head = [0u8; 4];
        crate::source::tree::read_exact(&fork, &mut head, 0)?;
        let table_at = u32::from_be_bytes(head) as u64 + 4;
        let mut n = [0u8; 4];
        crate::source::tree::read_exact(&fork, &mut n, table_at)?;
        let count = u32::from_le_bytes(n) as u64;
        // The table must lie in the fork (bounds what is allocated for it).
        if count != size.div_ceil(UNIT) || table_at + 4 + count * 8 > fork.size {
            return Err(damaged(format!(
                "HFS+ file {id}: its resource fork lists {count} compressed units for {size} bytes"
            )));
        }
        let mut raw = vec![0u8; count as usize * 8];
        crate::source::tree::read_exact(&fork, &mut raw, table_at + 4)?;
        let table = raw.chunks(8).map(|e| (le32(e, 0), le32(e, 4))).collect();
        Ok(RsrcUnits {
            id,
            codec: Codec::Zlib,
            fork,
            size,
            table_at,
            table,
            last: std::sync::Mutex::new(None),
        })
    }

    /// Type 8: little-endian offsets from the fork's start, one per unit
    /// and one for the end; the first is the table's own size (TSK's
    /// reading).
    fn lzvn(id: u64, fork: RunFile<'a>, size: u64) -> io::Result<RsrcUnits<'a>> {
        let count = size.div_ceil(UNIT);
        let mut first = [0u8; 4];
        crate::source::tree::read_exact(&fork, &mut first, 0)?;
        let table_size = u32::from_le_bytes(first) as u64;
        if table_size != 4 * (count + 1) || table_size > fork.size {
            return Err(damaged(format!(
                "HFS+ file {id}: its resource fork's table of {table_size} bytes does not list {count} compressed units for {size} bytes"
            )));
        }
        let mut raw = vec![0u8; table_size as usize];
        crate::source::tree::read_exact(&fork, &mut raw, 0)?;
        let offsets: Vec<u32> = raw.chunks(4).map(|e| le32(e, 0)).collect();
        let mut table = Vec::with_capacity(count as usize);
        for w in offsets.windows(2) {
            if w[1] < w[0] || w[1] as u64 > fork.size {
                return Err(damaged(format!(
                    "HFS+ file {id}: its resource fork's unit offsets {} and {} are out of order or past its end",
                    w[0], w[1]
                )));
            }
            table.push((w[0], w[1] - w[0]));
        }
        Ok(RsrcUnits {
            id,
            codec: Codec::Lzvn,
            fork,
            size,
            table_at: 0,
            table,
            last: std::sync::Mutex::new(None),
        })
    }

    fn unit(&self, k: u64) -> io::Result<std::sync::Arc<Vec<u8>>> {
        if let Some((n, u)) = &*self.last.lock().unwrap_or_else(|e| e.into_inner())
            && *n == k
        {
            return Ok(u.clone());
        }
        let (off, len) = self.table[k as usize];
        if len as u64 > UNIT + 1 {
            return Err(damaged(format!(
                "HFS+ file {}: compressed unit {k} claims {len} bytes",
                self.id
            )));
        }
        let mut stored = vec![0u8; len as usize];
        crate::source::tree::read_exact(&self.fork, &mut stored, self.table_at + off as u64)?;
        let want = (self.size - k * UNIT).min(UNIT);
        let u = std::sync::Arc::new(decmpfs_unit(self.id, self.codec, &stored, want)?);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((k, u.clone()));
        Ok(u)
    }
}

impl Source for RsrcUnits<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let k = offset / UNIT;
        let u = self.unit(k)?;
        let from = (offset - k * UNIT) as usize;
        let n = buf.len().min(u.len() - from);
        buf[..n].copy_from_slice(&u[from..from + n]);
        Ok(n)
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<u64>> {
        Ok((offset < self.size).then_some(offset))
    }

    fn next_hole(&self, _offset: u64) -> io::Result<u64> {
        Ok(self.size)
    }

    fn size_now(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

/// A file record's resource fork.
fn rsrc_fork(d: &[u8]) -> Fork {
    Fork::parse(d.get(168..248).unwrap_or(&[]))
}

/// The metadata of a file's resource fork: the file's, with the fork's
/// size and blocks.
fn rsrc_meta(file: &FileMeta, fork: &Fork, block: u64) -> FileMeta {
    FileMeta {
        size: fork.size,
        // A regular file's bytes, whatever the file is (a symbolic link's
        // resource fork is still data).
        mode: (file.mode & !libc::S_IFMT) | libc::S_IFREG,
        blocks: fork.blocks * (block / 512),
        ..file.clone()
    }
}

/// A leaf record's data: what follows its key.
fn data(r: &[u8]) -> &[u8] {
    let at = (2 + be16(r, 0) as usize).min(r.len());
    &r[at..]
}

/// A catalog key's name (UTF-16 big-endian, as stored: decomposed), as
/// UTF-8; `/` is shown as `:`, as macOS shows it.
fn name(r: &[u8]) -> Vec<u8> {
    let n = be16(r, 6) as usize;
    let units: Vec<u16> = (0..n).map(|k| be16(r, 8 + 2 * k)).collect();
    String::from_utf16_lossy(&units)
        .replace('/', ":")
        .into_bytes()
}

fn hfs_time(t: u32) -> Timestamp {
    if t == 0 {
        return Timestamp::new(0, 0);
    }
    Timestamp::new(t as i64 - HFS_EPOCH, 0)
}

impl FileSystem for HfsPlus {
    fn name(&self) -> &'static str {
        if self.hfsx { "hfsx" } else { "hfsplus" }
    }

    fn root(&self) -> u64 {
        ROOT
    }

    fn list(&self, addr: u64, _deleted: bool) -> io::Result<Vec<Node>> {
        let mut out = Vec::new();
        if addr == ROOT {
            for (id, name, at) in SPECIAL {
                let fork = self.special_fork(at);
                if fork.size == 0 && matches!(id, 7 | 8) {
                    continue;
                }
                out.push(Node {
                    name: name.as_bytes().to_vec(),
                    addr: id,
                    meta: Some(self.special_meta(id, &fork)),
                    deleted: false,
                    skip: None,
                    error: None,
                    name_times: None,
                });
            }
        }
        for r in self.children(addr)? {
            let t = rec_type(&r);
            if !matches!(t, REC_FOLDER | REC_FILE) {
                continue;
            }
            let mut id = be32(data(&r), 8) as u64;
            // A folder record is 88 bytes, a file record 248.
            let short = data(&r).len() < if t == REC_FILE { 248 } else { 88 };
            let mut meta = (!short).then(|| self.meta(id, &r));
            let mut error =
                short.then(|| format!("the HFS+ catalog record of node {id} is truncated"));
            if t == REC_FILE
                && !short
                && let Some(target) = self.dir_link_of(data(&r))
            {
                // A directory hard link: the folder's name, walked once
                // (the walk records its other names).
                match self.record(target) {
                    Ok(n) if rec_type(&n) == REC_FOLDER && data(&n).len() >= 88 => {
                        out.push(Node {
                            name: name(&r),
                            addr: target,
                            meta: Some(self.meta(target, &n)),
                            deleted: false,
                            skip: None,
                            error: None,
                            name_times: None,
                        });
                    }
                    _ => out.push(Node {
                        name: name(&r),
                        addr: id,
                        meta: None,
                        deleted: false,
                        skip: None,
                        error: Some(format!(
                            "an HFS+ directory hard link to dir_{target}, which is not a folder on the volume"
                        )),
                        name_times: None,
                    }),
                }
                continue;
            }
            if t == REC_FILE && !short {
                if let Some(target) = self.link_of(data(&r)) {
                    // A hard link: the name of its indirect node.
                    match self.record(target) {
                        Ok(n) if rec_type(&n) == REC_FILE && data(&n).len() >= 248 => {
                            id = target;
                            let mut m = self.linked_meta(target, &n);
                            if let Some(Ok(c)) = self.decmpfs(target, data(&n)) {
                                m.size = c.size;
                            }
                            meta = Some(m);
                        }
                        _ => {
                            meta = None;
                            error = Some(format!(
                                "an HFS+ hard link to iNode{target}, which is not a file on the volume"
                            ));
                        }
                    }
                } else {
                    meta = Some(self.file_meta(id, &r));
                }
                // A compressed file's size is its decmpfs record's (its
                // data fork is empty); a bad record fails it when opened.
                // (A link's target was looked at above.)
                if id == be32(data(&r), 8) as u64
                    && let (Some(m), Some(Ok(c))) = (&mut meta, self.decmpfs(id, data(&r)))
                {
                    m.size = c.size;
                }
            }
            let rsrc = (t == REC_FILE && !short).then(|| rsrc_fork(data(&r)));
            if let (Some(m), Some(fork)) = (&meta, rsrc.filter(|f| f.size > 0)) {
                let mut name = name(&r);
                name.extend_from_slice(b":rsrc");
                out.push(Node {
                    name,
                    addr: id | RSRC,
                    meta: Some(rsrc_meta(m, &fork, self.block)),
                    deleted: false,
                    skip: None,
                    error: None,
                    name_times: None,
                });
            }
            out.push(Node {
                name: name(&r),
                addr: id,
                meta,
                deleted: false,
                skip: None,
                error,
                name_times: None,
            });
        }
        Ok(out)
    }

    fn open(&self, addr: u64) -> io::Result<(Box<dyn Source + '_>, FileMeta)> {
        if let Some(&(id, _, at)) = SPECIAL.iter().find(|s| s.0 == addr) {
            let fork = self.special_fork(at);
            return Ok((
                Box::new(self.fork_file(&fork, id, FORK_DATA)?),
                self.special_meta(id, &fork),
            ));
        }
        if addr & RSRC != 0 {
            let id = addr & !RSRC;
            let r = self.record(id)?;
            if rec_type(&r) != REC_FILE || data(&r).len() < 248 {
                return Err(damaged(format!("HFS+ catalog node {id} is not a file")));
            }
            let fork = rsrc_fork(data(&r));
            let meta = rsrc_meta(&self.meta(id, &r), &fork, self.block);
            return Ok((Box::new(self.fork_file(&fork, id, FORK_RSRC)?), meta));
        }
        let r = self.record(addr)?;
        if rec_type(&r) != REC_FILE {
            return Err(damaged(format!("HFS+ catalog node {addr} is not a file")));
        }
        let d = data(&r);
        if let Some(target) = self.link_of(d) {
            // Opened by its own ID (`list` gives links their target's):
            // the indirect node's data, never a link of a link.
            let n = self.record(target)?;
            if rec_type(&n) != REC_FILE || self.link_of(data(&n)).is_some() {
                return Err(damaged(format!(
                    "an HFS+ hard link to iNode{target}, which is not a file on the volume"
                )));
            }
            return self.open(target);
        }
        let mut meta = self.file_meta(addr, &r);
        if let Some(c) = self.decmpfs(addr, d) {
            let c = c?;
            meta.size = c.size;
            match c.kind {
                3 | 7 => {
                    if c.size > MAX_INLINE {
                        return Err(damaged(format!(
                            "HFS+ file {addr}: an inline compressed file of {} bytes (at most {MAX_INLINE})",
                            c.size
                        )));
                    }
                    let codec = if c.kind == 3 {
                        Codec::Zlib
                    } else {
                        Codec::Lzvn
                    };
                    let bytes = decmpfs_unit(addr, codec, &c.inline, c.size)?;
                    return Ok((Box::new(MemSource(bytes)), meta));
                }
                4 | 8 => {
                    let codec = if c.kind == 4 {
                        Codec::Zlib
                    } else {
                        Codec::Lzvn
                    };
                    let file = self.fork_file(&rsrc_fork(d), addr, FORK_RSRC)?;
                    return Ok((Box::new(RsrcUnits::new(addr, codec, file, c.size)?), meta));
                }
                k => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!(
                            "an HFS+ compressed file of decmpfs type {k} ({}): not read; only zlib and LZVN (types 3, 4, 7, 8) are",
                            match k {
                                11 | 12 => "LZFSE",
                                9 | 10 => "uncompressed, in the attribute or resource fork",
                                1 => "uncompressed in the attribute",
                                _ => "unknown",
                            }
                        ),
                    ));
                }
            }
        }
        Ok((
            Box::new(self.fork_file(&data_fork(d), addr, FORK_DATA)?),
            meta,
        ))
    }

    fn link_target(&self, addr: u64) -> Option<Vec<u8>> {
        let (src, meta) = self.open(addr).ok()?;
        if meta.size > 4096 {
            return None;
        }
        crate::source::tree::read_whole(&*src, meta.size).ok()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn unallocated(&self) -> io::Result<Option<Vec<(u64, u64)>>> {
        // Blocks clear in the allocation file (most significant bit first).
        let (src, _) = self.open(6)?;
        super::Bits::new(&*src, true)
            .free_ranges(self.blocks, self.block, 0)
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hfs_times_count_from_1904() {
        assert_eq!(hfs_time(HFS_EPOCH as u32).secs, 0);
        assert_eq!(hfs_time(3_782_844_800).secs, 1_700_000_000);
        assert_eq!(hfs_time(0).secs, 0);
    }

    #[test]
    fn decmpfs_units_are_stored_or_zlib_and_exactly_their_size() {
        use std::io::Write;
        let text = b"a compressed unit, a compressed unit, a compressed unit".repeat(50);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&text).unwrap();
        let zlib = z.finish().unwrap();
        assert_ne!(zlib[0] & 0x0F, 0x0F, "a zlib header never looks stored");
        assert_eq!(
            decmpfs_unit(1, Codec::Zlib, &zlib, text.len() as u64).unwrap(),
            text
        );
        let mut stored = vec![0xFF];
        stored.extend_from_slice(b"as it is");
        assert_eq!(
            decmpfs_unit(1, Codec::Zlib, &stored, 8).unwrap(),
            b"as it is"
        );
        // Shorter or longer than the record says, or cut: an error.
        assert!(decmpfs_unit(1, Codec::Zlib, &zlib, text.len() as u64 - 1).is_err());
        assert!(decmpfs_unit(1, Codec::Zlib, &zlib, text.len() as u64 + 1).is_err());
        assert!(decmpfs_unit(1, Codec::Zlib, &zlib[..zlib.len() / 2], text.len() as u64).is_err());
        assert!(decmpfs_unit(1, Codec::Zlib, &stored, 9).is_err());
        // LZVN: 0x06 marks a stored unit; anything else is a stream.
        let mut lz = b"\x06as it is".to_vec();
        assert_eq!(decmpfs_unit(1, Codec::Lzvn, &lz, 8).unwrap(), b"as it is");
        assert!(decmpfs_unit(1, Codec::Zlib, &lz, 8).is_err());
        lz = vec![0xE3, b'a', b'b', b'c', 6, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decmpfs_unit(1, Codec::Lzvn, &lz, 3).unwrap(), b"abc");
        assert!(decmpfs_unit(1, Codec::Lzvn, &lz, 4).is_err());
        assert!(Decmpfs::parse(1, b"fpmX\x03\0\0\0\x08\0\0\0\0\0\0\0").is_err());
        let d = Decmpfs::parse(1, b"fpmc\x04\0\0\0\x10\x27\0\0\0\0\0\0").unwrap();
        assert_eq!((d.kind, d.size), (4, 10_000));
    }

    #[test]
    fn names_are_utf16_big_endian_with_slashes_shown_as_colons() {
        let mut r = vec![0u8, 12, 0, 0, 0, 2, 0, 3];
        for u in ['a', '/', 'é'] {
            r.extend_from_slice(&(u as u16).to_be_bytes());
        }
        assert_eq!(name(&r), "a:é".as_bytes());
    }
}
