//! ext2, ext3 and ext4, read-only: block maps and extent trees, inline
//! data, sparse files, and deleted names found in directory free space.
//!
//! Layout (from the kernel's `Documentation/filesystems/ext4/`): the
//! superblock at byte 1024, block group descriptors in the block after it,
//! each group's inode table where its descriptor says; an inode's data
//! through twelve direct, one indirect, one double and one triple indirect
//! block pointer (ext2/3), or an extent tree (ext4), or stored in the
//! inode itself (inline data).
//!
//! Not done, and said in [`FileSystem::notes`]: the journal is never
//! replayed (what is read is the file system as last checkpointed, the
//! state The Sleuth Kit reads too); `meta_bg` group descriptor layouts and
//! encrypted files are refused with a message.
//!
//! Deleted files: when a name is removed, ext2/3/4 merge its directory
//! entry into the previous one's record length, so the name survives in
//! that slack until overwritten. Such names are listed as deleted; their
//! content is read from their inode when the inode is free (ext2 keeps the
//! block pointers of a deleted inode; ext3 and ext4 clear them, so little
//! is recovered there, as with The Sleuth Kit). A deleted name whose inode
//! has since been given to another file is listed, not read. Inodes whose
//! names are gone altogether are listed under `$OrphanFiles/`, as TSK
//! lists them (see `Ext::find_orphans`).

use std::collections::HashSet;
use std::io;
use std::sync::OnceLock;

use super::{FileSystem, Node, Run, RunFile, Volume, damaged, le16, le32};
use crate::item::{FileKind, FileMeta, SkipReason};
use crate::source::tree::{MemSource, Source};
use crate::time::Timestamp;

const MAGIC: u16 = 0xEF53;
const ROOT_INODE: u64 = 2;

// Feature flags this reader looks at.
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;
const INCOMPAT_INLINE_DATA: u32 = 0x8000;
const RO_COMPAT_HUGE_FILE: u32 = 0x8;
/// Group descriptors carry checksums, and so a trusted `bg_itable_unused`.
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const COMPAT_SPARSE_SUPER2: u32 = 0x200;
/// `bg_flags`: the group's block bitmap was never written.
const BG_BLOCK_UNINIT: u16 = 0x2;
/// `bg_flags`: the group's inode table was never written (all free).
const BG_INODE_UNINIT: u16 = 0x1;

const FL_HUGE_FILE: u32 = 0x4_0000;
const FL_EXTENTS: u32 = 0x8_0000;
const FL_INLINE_DATA: u32 = 0x1000_0000;
const FL_ENCRYPT: u32 = 0x800;

const EXTENT_MAGIC: u16 = 0xF30A;
/// The kernel never builds extent trees deeper than 5.
const MAX_EXTENT_DEPTH: u16 = 5;
/// Directories larger than this are refused (the largest real ones are a
/// few MiB; a hostile size must not make the listing allocate without end).
const MAX_DIR_BYTES: u64 = 256 << 20;

/// A mounted-nowhere ext2/3/4 file system.
pub struct Ext {
    vol: Volume,
    name: &'static str,
    block_size: u64,
    inodes_count: u64,
    inodes_per_group: u64,
    inode_size: u64,
    blocks_count: u64,
    blocks_per_group: u64,
    first_data_block: u64,
    /// Blocks after a superblock copy: group descriptors and reserved
    /// descriptor blocks.
    gdt_blocks: u64,
    /// Which groups hold a superblock copy: all, sparse (0, 1, powers of
    /// 3, 5, 7), or the two `s_backup_bgs` (sparse_super2).
    backups: Backups,
    filetype: bool,
    huge_file: bool,
    groups: Vec<Group>,
    notes: Vec<String>,
    /// `$OrphanFiles`' listing, made on its first listing.
    orphans: OnceLock<Result<Vec<u64>, String>>,
}

#[derive(Clone, Copy)]
enum Backups {
    All,
    Sparse,
    Two(u64, u64),
}

#[derive(Clone, Copy)]
struct Group {
    inode_bitmap: u64,
    inode_table: u64,
    block_bitmap: u64,
    /// `bg_flags`: 0x2 is BLOCK_UNINIT (the block bitmap is not written).
    flags: u16,
    /// Inodes at the end of the group's table never used
    /// (`bg_itable_unused`; 0 without group-descriptor checksums).
    itable_unused: u64,
}

/// An inode's fields this reader uses.
struct Inode {
    mode: u16,
    uid: u32,
    gid: u32,
    size: u64,
    links: u16,
    blocks: u64,
    flags: u32,
    atime: Timestamp,
    ctime: Timestamp,
    mtime: Timestamp,
    crtime: Option<Timestamp>,
    block: [u8; 60],
    /// The raw inode, for inline data stored in its extended attributes.
    raw: Vec<u8>,
}

impl Ext {
    /// Whether `vol` holds an ext superblock.
    pub fn detect(vol: &Volume) -> io::Result<bool> {
        if vol.len() < 2048 {
            return Ok(false);
        }
        let sb = vol.bytes_at(1024, 1024)?;
        Ok(le16(&sb, 56) == MAGIC)
    }

    /// Reads the superblock and group descriptors.
    pub fn open(vol: Volume) -> io::Result<Ext> {
        let sb = vol.bytes_at(1024, 1024)?;
        if le16(&sb, 56) != MAGIC {
            return Err(damaged("no ext superblock at byte 1024"));
        }
        let log = le32(&sb, 24);
        if log > 6 {
            return Err(damaged(format!(
                "ext superblock: block size 2^{} is impossible",
                log as u64 + 10
            )));
        }
        let block_size = 1024u64 << log;
        let compat = le32(&sb, 92);
        let incompat = le32(&sb, 96);
        let ro_compat = le32(&sb, 100);
        if incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err(damaged(
                "this is an external ext journal device, which holds no files",
            ));
        }
        if incompat & INCOMPAT_META_BG != 0 {
            return Err(damaged(
                "ext file system with meta_bg group descriptors: not read by this version of triage",
            ));
        }
        let rev = le32(&sb, 76);
        let inode_size = if rev == 0 { 128 } else { le16(&sb, 88) as u64 };
        if inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two() {
            return Err(damaged(format!("ext superblock: inode size {inode_size}")));
        }
        let bit64 = incompat & INCOMPAT_64BIT != 0;
        let blocks_count = le32(&sb, 4) as u64
            | if bit64 {
                (le32(&sb, 336) as u64) << 32
            } else {
                0
            };
        let inodes_count = le32(&sb, 0) as u64;
        let blocks_per_group = le32(&sb, 32) as u64;
        let inodes_per_group = le32(&sb, 40) as u64;
        let first_data_block = le32(&sb, 20) as u64;
        if blocks_per_group == 0 || inodes_per_group == 0 || blocks_count == 0 {
            return Err(damaged("ext superblock: zero blocks or inodes per group"));
        }
        let group_count =
            (blocks_count - first_data_block.min(blocks_count)).div_ceil(blocks_per_group);
        if group_count == 0 || group_count.saturating_mul(inodes_per_group) < inodes_count {
            return Err(damaged(format!(
                "ext superblock: {group_count} groups of {inodes_per_group} inodes cannot hold {inodes_count}"
            )));
        }
        let desc_size = if bit64 {
            (le16(&sb, 254) as u64).max(32)
        } else {
            32
        };
        let gdt_bytes = group_count.saturating_mul(desc_size);
        if gdt_bytes > vol.len() || desc_size > 1024 {
            return Err(damaged(format!(
                "ext superblock: {group_count} group descriptors do not fit in the volume"
            )));
        }
        let gdt = vol.bytes_at((first_data_block + 1) * block_size, gdt_bytes as usize)?;
        let csum = ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0;
        let groups = gdt
            .chunks(desc_size as usize)
            .map(|d| {
                let hi = |at| if bit64 { (le32(d, at) as u64) << 32 } else { 0 };
                let hi16 = |at| if bit64 { (le16(d, at) as u64) << 16 } else { 0 };
                Group {
                    inode_bitmap: le32(d, 4) as u64 | hi(0x24),
                    inode_table: le32(d, 8) as u64 | hi(0x28),
                    block_bitmap: le32(d, 0) as u64 | hi(0x20),
                    flags: le16(d, 0x12),
                    itable_unused: if csum {
                        le16(d, 0x1C) as u64 | hi16(0x32)
                    } else {
                        0
                    },
                }
            })
            .collect();
        let ext4 = incompat
            & (INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG | INCOMPAT_INLINE_DATA)
            != 0
            || ro_compat & RO_COMPAT_HUGE_FILE != 0;
        let journal = compat & COMPAT_HAS_JOURNAL != 0;
        let name = if ext4 {
            "ext4"
        } else if journal {
            "ext3"
        } else {
            "ext2"
        };
        let mut notes = Vec::new();
        if journal {
            let state = if incompat & INCOMPAT_RECOVER != 0 {
                "the journal holds transactions not yet written to the file system (it was not cleanly unmounted): they are not applied"
            } else {
                "the journal is clean"
            };
            notes.push(format!(
                "{name}: the journal is not replayed; the file system is read as last checkpointed ({state})"
            ));
        }
        // Blocks past the volume's end cannot be read: a larger count (a
        // truncated image, or damage) must not make block offsets overflow.
        let blocks_count = blocks_count.min(vol.len() / block_size);
        Ok(Ext {
            vol,
            name,
            block_size,
            inodes_count,
            inodes_per_group,
            inode_size,
            blocks_count,
            blocks_per_group,
            first_data_block,
            gdt_blocks: gdt_bytes.div_ceil(block_size) + le16(&sb, 0xCE) as u64,
            backups: if compat & COMPAT_SPARSE_SUPER2 != 0 {
                Backups::Two(le32(&sb, 0x24C) as u64, le32(&sb, 0x250) as u64)
            } else if ro_compat & RO_COMPAT_SPARSE_SUPER != 0 {
                Backups::Sparse
            } else {
                Backups::All
            },
            filetype: incompat & INCOMPAT_FILETYPE != 0,
            huge_file: ro_compat & RO_COMPAT_HUGE_FILE != 0,
            groups,
            notes,
            orphans: OnceLock::new(),
        })
    }

    /// The names stored in directory `addr` (deleted ones included).
    fn entries(&self, addr: u64) -> io::Result<Vec<Node>> {
        let dir = self.inode(addr)?;
        if dir.mode as u32 & libc::S_IFMT != libc::S_IFDIR {
            return Err(damaged(format!("inode {addr} is not a directory")));
        }
        let bytes = self.dir_bytes(&dir)?;
        let mut out = Vec::new();
        let block = if dir.flags & FL_INLINE_DATA != 0 {
            bytes.len().max(1)
        } else {
            self.block_size as usize
        };
        for blk in bytes.chunks(block) {
            let mut pos = 0;
            while pos + 8 <= blk.len() {
                let Some((ino, name, rec_len)) = parse_entry(&blk[pos..], self.filetype) else {
                    break;
                };
                if rec_len < 8 || pos + rec_len > blk.len() || rec_len % 4 != 0 {
                    // A damaged entry: the rest of this block cannot be
                    // trusted; the next block starts afresh.
                    break;
                }
                let used = (8 + name.len()).next_multiple_of(4);
                if ino != 0 && !name.is_empty() && name != b"." && name != b".." {
                    out.push(self.node(name, ino, false));
                }
                // Deleted names in the slack after this entry.
                let used = if ino == 0 { 0 } else { used };
                let mut s = pos + used;
                let end = pos + rec_len;
                while s + 8 <= end {
                    match parse_entry(&blk[s..end], self.filetype) {
                        Some((dino, dname, _))
                            if dino != 0
                                && dino <= self.inodes_count
                                && !dname.is_empty()
                                && dname != b"."
                                && dname != b".."
                                && !dname.contains(&b'/')
                                && !dname.contains(&0) =>
                        {
                            out.push(self.node(dname, dino, true));
                            s += (8 + dname.len()).next_multiple_of(4);
                        }
                        _ => s += 4,
                    }
                }
                pos += rec_len;
            }
        }
        Ok(out)
    }

    /// The address of the virtual `$OrphanFiles` directory: one past the
    /// last inode, as TSK numbers it.
    fn orphan_dir(&self) -> u64 {
        self.inodes_count + 1
    }

    /// `$OrphanFiles`, as The Sleuth Kit makes it: every inode that is
    /// free in its bitmap, was used (its ctime is set) and is named by no
    /// deleted name under the root, nor inside an orphan directory listed
    /// before it; in inode order. Groups whose inode table was never
    /// written (`INODE_UNINIT`) hold none, nor the inodes a group never
    /// used (`bg_itable_unused`, where descriptors carry checksums).
    fn find_orphans(&self) -> io::Result<Vec<u64>> {
        // Inodes named by deleted names (or names inside deleted
        // directories), reached from the root through every directory.
        let mut named = HashSet::new();
        self.mark_names(ROOT_INODE, false, &mut named, &mut HashSet::new());
        let mut inside = HashSet::new();
        let mut entered = HashSet::new();
        let mut out = Vec::new();
        for (g, grp) in self.groups.iter().enumerate() {
            let first = g as u64 * self.inodes_per_group + 1;
            if grp.flags & BG_INODE_UNINIT != 0 || first > self.inodes_count {
                continue;
            }
            // Inodes at the table's end never used hold no orphan: not
            // read (on a large volume, most of the inode tables).
            let count = self
                .inodes_per_group
                .min(self.inodes_count - first + 1)
                .saturating_sub(grp.itable_unused);
            if count == 0 {
                continue;
            }
            // Checks the group's bitmap and table lie in the volume.
            self.group_of(first + count - 1)?;
            let bitmap = self.vol.bytes_at(
                grp.inode_bitmap * self.block_size,
                count.div_ceil(8) as usize,
            )?;
            let table = self.vol.bytes_at(
                grp.inode_table * self.block_size,
                (count * self.inode_size) as usize,
            )?;
            for k in 0..count {
                let raw = &table[(k * self.inode_size) as usize..];
                let ino = first + k;
                if bitmap[(k / 8) as usize] & (1 << (k % 8)) != 0
                    || le32(raw, 12) == 0
                    || named.contains(&ino)
                    || inside.contains(&ino)
                {
                    continue;
                }
                out.push(ino);
                if le16(raw, 0) as u32 & libc::S_IFMT == libc::S_IFDIR {
                    // Its contents are listed under it, not again here.
                    self.mark_names(ino, true, &mut inside, &mut entered);
                }
            }
        }
        Ok(out)
    }

    /// Adds to `named` the inodes of the deleted names under directory
    /// `dir` (all its names, when `all`), through its subdirectories,
    /// each entered once (`entered`); unreadable directories are passed.
    fn mark_names(
        &self,
        dir: u64,
        all: bool,
        named: &mut HashSet<u64>,
        entered: &mut HashSet<u64>,
    ) {
        let mut stack = vec![(dir, all)];
        while let Some((dir, all)) = stack.pop() {
            if !entered.insert(dir) {
                continue;
            }
            let Ok(nodes) = self.entries(dir) else {
                continue;
            };
            for n in nodes {
                if all || n.deleted {
                    named.insert(n.addr);
                }
                if n.kind() == FileKind::Directory && n.skip.is_none() {
                    stack.push((n.addr, all || n.deleted));
                }
            }
        }
    }

    fn group_of(&self, ino: u64) -> io::Result<(Group, u64)> {
        if ino == 0 || ino > self.inodes_count {
            return Err(damaged(format!(
                "inode {ino} is outside the file system's {} inodes",
                self.inodes_count
            )));
        }
        let g = (ino - 1) / self.inodes_per_group;
        let group = *self
            .groups
            .get(g as usize)
            .ok_or_else(|| damaged(format!("inode {ino}: no group {g}")))?;
        let index = (ino - 1) % self.inodes_per_group;
        let table_blocks = (index + 1)
            .saturating_mul(self.inode_size)
            .div_ceil(self.block_size);
        if group.inode_bitmap >= self.blocks_count
            || group.inode_table.saturating_add(table_blocks) > self.blocks_count
        {
            return Err(damaged(format!(
                "group {g}'s inode table or bitmap lies outside the file system"
            )));
        }
        Ok((group, index))
    }

    /// Group `g`'s block bitmap: as written, or for a BLOCK_UNINIT group
    /// the one the kernel would write (its metadata blocks in use).
    fn group_bitmap(&self, g: usize) -> io::Result<Vec<u8>> {
        let grp = self
            .groups
            .get(g)
            .ok_or_else(|| damaged(format!("block group {g} has no descriptor")))?;
        if grp.flags & BG_BLOCK_UNINIT == 0 {
            if grp.block_bitmap >= self.blocks_count {
                return Err(damaged(format!(
                    "block group {g}'s block bitmap lies outside the file system"
                )));
            }
            return self
                .vol
                .bytes_at(grp.block_bitmap * self.block_size, self.block_size as usize);
        }
        let bpg = self.blocks_per_group;
        let start = self.first_data_block + g as u64 * bpg;
        let mut map = vec![0u8; bpg.div_ceil(8) as usize];
        let mut mark = |b: u64, n: u64| {
            for x in b..b.saturating_add(n) {
                if (start..start + bpg).contains(&x) {
                    let k = x - start;
                    map[(k / 8) as usize] |= 1 << (k % 8);
                }
            }
        };
        if self.has_super(g as u64) {
            mark(start, 1 + self.gdt_blocks);
        }
        // Any group's bitmaps and inode table may sit here (flex_bg).
        let table = (self.inodes_per_group * self.inode_size).div_ceil(self.block_size);
        for other in &self.groups {
            mark(other.block_bitmap, 1);
            mark(other.inode_bitmap, 1);
            mark(other.inode_table, table);
        }
        Ok(map)
    }

    /// Whether group `g` holds a copy of the superblock.
    fn has_super(&self, g: u64) -> bool {
        let power_of = |mut n: u64, b: u64| {
            while n > 1 && n.is_multiple_of(b) {
                n /= b;
            }
            n == 1
        };
        match self.backups {
            Backups::All => true,
            Backups::Sparse => g <= 1 || power_of(g, 3) || power_of(g, 5) || power_of(g, 7),
            Backups::Two(a, b) => g == 0 || g == a || g == b,
        }
    }

    /// Whether inode `ino` is marked in use in its group's bitmap.
    fn allocated(&self, ino: u64) -> io::Result<bool> {
        let (g, index) = self.group_of(ino)?;
        let mut b = [0u8; 1];
        self.vol
            .read_exact_at(&mut b, g.inode_bitmap * self.block_size + index / 8)?;
        Ok(b[0] & (1 << (index % 8)) != 0)
    }

    fn inode(&self, ino: u64) -> io::Result<Inode> {
        let (g, index) = self.group_of(ino)?;
        let at = g.inode_table * self.block_size + index * self.inode_size;
        let raw = self.vol.bytes_at(at, self.inode_size as usize)?;
        let extra = if self.inode_size > 128 {
            le16(&raw, 128) as usize
        } else {
            0
        };
        // An extra time field is there when the extra area reaches it.
        let has = |end: usize| 128 + extra >= end;
        let time = |base: usize, extra_at: usize| {
            let secs = le32(&raw, base) as i32 as i64;
            if has(extra_at + 4) {
                let x = le32(&raw, extra_at);
                Timestamp::new(secs + (((x & 3) as i64) << 32), (x >> 2) as i64)
            } else {
                Timestamp::new(secs, 0)
            }
        };
        let flags = le32(&raw, 32);
        let blocks_lo = le32(&raw, 28) as u64;
        let blocks_hi = le16(&raw, 116) as u64;
        let mut blocks = if self.huge_file {
            blocks_lo | blocks_hi << 32
        } else {
            blocks_lo
        };
        if self.huge_file && flags & FL_HUGE_FILE != 0 {
            // Counted in file-system blocks, not 512-byte sectors.
            blocks = blocks.saturating_mul(self.block_size / 512);
        }
        let mut block = [0u8; 60];
        block.copy_from_slice(&raw[40..100]);
        Ok(Inode {
            mode: le16(&raw, 0),
            uid: le16(&raw, 2) as u32 | (le16(&raw, 120) as u32) << 16,
            gid: le16(&raw, 24) as u32 | (le16(&raw, 122) as u32) << 16,
            size: le32(&raw, 4) as u64 | (le32(&raw, 108) as u64) << 32,
            links: le16(&raw, 26),
            blocks,
            flags,
            atime: time(8, 140),
            ctime: time(12, 132),
            mtime: time(16, 136),
            crtime: has(148 + 4).then(|| time(144, 148)),
            block,
            raw,
        })
    }

    fn meta(&self, ino: u64, i: &Inode) -> FileMeta {
        FileMeta {
            size: i.size,
            mode: i.mode as u32,
            dev: 0,
            ino,
            nlink: i.links as u64,
            uid: i.uid,
            gid: i.gid,
            mtime: i.mtime,
            atime: i.atime,
            ctime: i.ctime,
            btime: i.crtime,
            blocks: i.blocks,
        }
    }

    /// The inode's data: from the inode itself (inline), or as runs of
    /// volume blocks.
    fn data(&self, i: &Inode) -> io::Result<Data> {
        if i.flags & FL_ENCRYPT != 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the file is encrypted (ext4 fscrypt): its content cannot be read without the key",
            ));
        }
        if i.flags & FL_INLINE_DATA != 0 {
            return Ok(Data::Inline(self.inline(i)?));
        }
        let blocks = i.size.div_ceil(self.block_size);
        let mut runs = Vec::new();
        if i.flags & FL_EXTENTS != 0 {
            self.extents(&i.block, MAX_EXTENT_DEPTH + 1, blocks, &mut runs)?;
        } else {
            self.block_map(&i.block, blocks, &mut runs)?;
        }
        runs.sort_by_key(|r| r.0);
        // Overlapping extents are damage: keep each logical byte once.
        let mut clean: Vec<Run> = Vec::with_capacity(runs.len());
        for r in runs {
            match clean.last() {
                Some(l) if r.0 < l.0 + l.2 => {}
                _ => clean.push(r),
            }
        }
        Ok(Data::Runs(clean))
    }

    fn block_range_ok(&self, phys: u64, n: u64) -> io::Result<()> {
        if phys.checked_add(n).is_none_or(|e| e > self.blocks_count) {
            return Err(damaged(format!(
                "blocks {phys}..+{n} are outside the file system's {} blocks",
                self.blocks_count
            )));
        }
        Ok(())
    }

    /// Runs from an extent tree node (`node`: the 60 bytes in the inode or
    /// a tree block). `depth_limit` strictly decreases on the way down, so
    /// a tree that points back at itself ends.
    fn extents(
        &self,
        node: &[u8],
        depth_limit: u16,
        blocks: u64,
        runs: &mut Vec<Run>,
    ) -> io::Result<()> {
        if le16(node, 0) != EXTENT_MAGIC {
            return Err(damaged("extent tree node without its magic number"));
        }
        let entries = le16(node, 2) as usize;
        let depth = le16(node, 6);
        if depth >= depth_limit {
            return Err(damaged(format!(
                "extent tree deeper than allowed (depth {depth}): a loop or damage"
            )));
        }
        if 12 + entries * 12 > node.len() {
            return Err(damaged("extent tree node claims more entries than fit"));
        }
        let bs = self.block_size;
        for k in 0..entries {
            let e = &node[12 + k * 12..24 + k * 12];
            let logical = le32(e, 0) as u64;
            if depth == 0 {
                let raw_len = le16(e, 4) as u64;
                // Over 32768: an unwritten (preallocated) extent, read as zeros.
                let (len, unwritten) = if raw_len > 32768 {
                    (raw_len - 32768, true)
                } else {
                    (raw_len, false)
                };
                let phys = (le16(e, 6) as u64) << 32 | le32(e, 8) as u64;
                if logical >= blocks || len == 0 {
                    continue;
                }
                let len = len.min(blocks - logical);
                if unwritten {
                    runs.push((logical * bs, None, len * bs));
                } else {
                    self.block_range_ok(phys, len)?;
                    runs.push((logical * bs, Some(phys * bs), len * bs));
                }
            } else {
                let child = (le16(e, 8) as u64) << 32 | le32(e, 4) as u64;
                self.block_range_ok(child, 1)?;
                let block = self.vol.bytes_at(child * bs, bs as usize)?;
                // (A child claiming depth 0xFFFF must not overflow.)
                if le16(&block, 6).checked_add(1) != Some(depth) {
                    return Err(damaged(format!(
                        "extent tree block {child} has depth {} under a node of depth {depth}",
                        le16(&block, 6)
                    )));
                }
                self.extents(&block, depth, blocks, runs)?;
            }
        }
        Ok(())
    }

    /// Runs from the 15 block pointers of an ext2/3 inode.
    fn block_map(&self, ptrs: &[u8; 60], blocks: u64, runs: &mut Vec<Run>) -> io::Result<()> {
        let per = self.block_size / 4;
        let mut next = 0u64;
        for k in 0..12 {
            if next >= blocks {
                return Ok(());
            }
            self.push_block(le32(ptrs, k * 4) as u64, next, runs)?;
            next += 1;
        }
        for (k, level) in [(12usize, 1u32), (13, 2), (14, 3)] {
            if next >= blocks {
                return Ok(());
            }
            let span = per.pow(level);
            let ptr = le32(ptrs, k * 4) as u64;
            if ptr == 0 {
                next += span;
                continue;
            }
            self.indirect(ptr, level, &mut next, blocks, runs)?;
        }
        Ok(())
    }

    fn indirect(
        &self,
        ptr: u64,
        level: u32,
        next: &mut u64,
        blocks: u64,
        runs: &mut Vec<Run>,
    ) -> io::Result<()> {
        let per = self.block_size / 4;
        self.block_range_ok(ptr, 1)?;
        let table = self
            .vol
            .bytes_at(ptr * self.block_size, self.block_size as usize)?;
        for k in 0..per as usize {
            if *next >= blocks {
                return Ok(());
            }
            let p = le32(&table, k * 4) as u64;
            if level == 1 {
                self.push_block(p, *next, runs)?;
                *next += 1;
            } else if p == 0 {
                *next += per.pow(level - 1);
            } else {
                self.indirect(p, level - 1, next, blocks, runs)?;
            }
        }
        Ok(())
    }

    /// Adds logical block `logical` at physical `phys` (0: a hole),
    /// merging with the previous run when contiguous.
    fn push_block(&self, phys: u64, logical: u64, runs: &mut Vec<Run>) -> io::Result<()> {
        if phys == 0 {
            return Ok(());
        }
        self.block_range_ok(phys, 1)?;
        let bs = self.block_size;
        if let Some(last) = runs.last_mut()
            && let Some(p) = last.1
            && last.0 + last.2 == logical * bs
            && p + last.2 == phys * bs
        {
            last.2 += bs;
            return Ok(());
        }
        runs.push((logical * bs, Some(phys * bs), bs));
        Ok(())
    }

    /// Inline data: the 60 bytes of `i_block`, then the value of the
    /// `system.data` extended attribute in the inode's extra space.
    fn inline(&self, i: &Inode) -> io::Result<Vec<u8>> {
        let size = i.size as usize;
        let mut data = i.block[..size.min(60)].to_vec();
        if size > 60 {
            let extra = le16(&i.raw, 128) as usize;
            let start = 128 + extra;
            let area = i.raw.get(start..).unwrap_or_default();
            if le32(area, 0) != 0xEA02_0000 {
                return Err(damaged(
                    "inline data larger than the inode, without its attribute",
                ));
            }
            let entries = &area[4..];
            let mut at = 0;
            let mut value = None;
            while at + 16 <= entries.len() && le32(entries, at) != 0 {
                let name_len = entries[at] as usize;
                let index = entries[at + 1];
                let offs = le16(entries, at + 2) as usize;
                let vsize = le32(entries, at + 8) as usize;
                let name = entries.get(at + 16..at + 16 + name_len).unwrap_or_default();
                if index == 7 && name == b"data" {
                    value = entries.get(offs..offs.saturating_add(vsize));
                    break;
                }
                at += (16 + name_len).next_multiple_of(4);
            }
            let value = value
                .ok_or_else(|| damaged("inline data attribute missing or out of the inode"))?;
            data.extend_from_slice(value);
            if data.len() < size {
                return Err(damaged(format!(
                    "inline data holds {} bytes, the inode says {size}",
                    data.len()
                )));
            }
            data.truncate(size);
        }
        Ok(data)
    }

    /// A directory's bytes (bounded).
    fn dir_bytes(&self, i: &Inode) -> io::Result<Vec<u8>> {
        if i.size > MAX_DIR_BYTES {
            return Err(damaged(format!(
                "directory of {} bytes is over the {MAX_DIR_BYTES}-byte limit",
                i.size
            )));
        }
        match self.data(i)? {
            Data::Inline(mut d) => {
                // The first four bytes are the parent's inode, not an entry:
                // make them a '..' entry so the parser sees entries only.
                if d.len() >= 4 {
                    let parent = d[..4].to_vec();
                    d.splice(0..4, fake_dotdot(&parent));
                }
                Ok(d)
            }
            Data::Runs(runs) => {
                let f = RunFile {
                    vol: &self.vol,
                    runs: runs.into(),
                    size: i.size,
                };
                crate::source::tree::read_whole(&f, i.size)
            }
        }
    }

    fn node(&self, name: &[u8], ino: u64, deleted: bool) -> Node {
        let mut node = Node {
            name: name.to_vec(),
            addr: ino,
            meta: None,
            deleted,
            skip: None,
            error: None,
            name_times: None,
        };
        match self.inode(ino) {
            Ok(i) => {
                // The deleted name's inode is in use again, by another file.
                if deleted && self.allocated(ino).unwrap_or(false) {
                    node.skip = Some(SkipReason::NotRecoverable);
                }
                node.meta = Some(self.meta(ino, &i));
            }
            Err(e) if deleted => {
                let _ = e;
                node.skip = Some(SkipReason::NotRecoverable);
            }
            Err(e) => node.error = Some(format!("inode {ino}: {e}")),
        }
        node
    }
}

/// A '..' directory entry of 12 bytes (the inline directory header).
fn fake_dotdot(parent: &[u8]) -> Vec<u8> {
    let mut e = parent.to_vec();
    e.extend_from_slice(&12u16.to_le_bytes());
    e.extend_from_slice(&[2, 2, b'.', b'.', 0, 0]);
    e
}

enum Data {
    Inline(Vec<u8>),
    Runs(Vec<Run>),
}

/// One directory entry as parsed: (inode, name, record length used).
fn parse_entry(b: &[u8], filetype: bool) -> Option<(u64, &[u8], usize)> {
    let ino = le32(b, 0) as u64;
    let rec_len = le16(b, 4) as usize;
    let name_len = if filetype {
        b.get(6).copied()? as usize
    } else {
        le16(b, 6) as usize
    };
    let name = b.get(8..8 + name_len)?;
    Some((ino, name, rec_len))
}

impl FileSystem for Ext {
    fn name(&self) -> &'static str {
        self.name
    }

    fn root(&self) -> u64 {
        ROOT_INODE
    }

    fn list(&self, addr: u64, _deleted: bool) -> io::Result<Vec<Node>> {
        if addr == self.orphan_dir() {
            let orphans = self
                .orphans
                .get_or_init(|| self.find_orphans().map_err(|e| e.to_string()))
                .as_ref()
                .map_err(|e| damaged(format!("$OrphanFiles not listed: {e}")))?;
            return Ok(orphans
                .iter()
                .map(|&ino| self.node(format!("OrphanFile-{ino}").as_bytes(), ino, true))
                .collect());
        }
        let mut out = self.entries(addr)?;
        if addr == ROOT_INODE {
            out.push(Node::orphan_dir(self.orphan_dir()));
        }
        Ok(out)
    }

    fn open(&self, addr: u64) -> io::Result<(Box<dyn Source + '_>, FileMeta)> {
        let i = self.inode(addr)?;
        if i.mode as u32 & libc::S_IFMT != libc::S_IFREG {
            return Err(damaged(format!("inode {addr} is not a regular file")));
        }
        let meta = self.meta(addr, &i);
        let src: Box<dyn Source + '_> = match self.data(&i)? {
            Data::Inline(d) => Box::new(MemSource(d)),
            Data::Runs(runs) => Box::new(RunFile {
                vol: &self.vol,
                runs: runs.into(),
                size: i.size,
            }),
        };
        Ok((src, meta))
    }

    fn link_target(&self, addr: u64) -> Option<Vec<u8>> {
        let i = self.inode(addr).ok()?;
        if i.mode as u32 & libc::S_IFMT != libc::S_IFLNK || i.size > 4096 {
            return None;
        }
        // A fast symlink keeps its target in the block pointers (no blocks
        // allocated, no extents or inline-data flag).
        if i.size < 60 && i.blocks == 0 && i.flags & (FL_EXTENTS | FL_INLINE_DATA) == 0 {
            return Some(i.block[..i.size as usize].to_vec());
        }
        let src: Box<dyn Source + '_> = match self.data(&i).ok()? {
            Data::Inline(d) => Box::new(MemSource(d)),
            Data::Runs(runs) => Box::new(RunFile {
                vol: &self.vol,
                runs: runs.into(),
                size: i.size,
            }),
        };
        crate::source::tree::read_whole(&*src, i.size).ok()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn unallocated(&self) -> io::Result<Option<Vec<(u64, u64)>>> {
        // Blocks clear in their group's block bitmap, from the first data
        // block on; in a group whose bitmap was never written
        // (BLOCK_UNINIT), every block but the metadata placed in it, as
        // the kernel and e2fsprogs count them.
        let bpg = self.blocks_per_group;
        let mut cached: Option<(usize, Vec<u8>)> = None;
        let units = self.blocks_count.saturating_sub(self.first_data_block);
        super::free_ranges(
            units,
            self.block_size,
            self.first_data_block * self.block_size,
            |k| {
                let (g, bit) = ((k / bpg) as usize, k % bpg);
                if cached.as_ref().is_none_or(|c| c.0 != g) {
                    cached = Some((g, self.group_bitmap(g)?));
                }
                let map = cached.as_ref().map_or(&[][..], |c| &c.1[..]);
                Ok(map
                    .get((bit / 8) as usize)
                    .is_some_and(|b| b >> (bit % 8) & 1 == 0))
            },
        )
        .map(Some)
    }
}
