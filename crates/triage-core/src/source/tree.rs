//! The vocabulary of sources: a [`Tree`] of items, walked ([`Walk`],
//! [`Walked`]) and opened ([`ItemRef`]) into a [`Source`] of bytes read at
//! offsets. Every kind of source (`dir`, `disk`) implements these; the
//! stages after the source stage use only these.

use std::io;
use std::path::Path;

use crate::item::{Failure, FileMeta, Location, NotRead};
use crate::path::RawPath;

/// One item produced by a walk.
#[derive(Debug)]
pub struct Walked {
    /// Path relative to the root: a directory tree's path, or, in an image,
    /// the path in its file system (after `p<N>/` when the image has a
    /// partition table).
    pub path: RawPath,
    /// Metadata, unless it could not be read.
    pub meta: Option<FileMeta>,
    /// What the pipeline should do next with it.
    pub next: Next,
    /// Directory trees only: for [`Next::Read`] entries whose full path is
    /// too long to open by name, the file, already opened (read-only,
    /// `O_NOFOLLOW`, `O_NONBLOCK`, `O_NOATIME` when permitted) relative to
    /// its directory.
    pub file: Option<std::fs::File>,
    /// Disk images only: where in the image the item is.
    pub location: Option<Location>,
}

/// What happens to a walked item after the walk.
// `Done` is large (a NotRead) but short-lived and bounded by the scan's
// window; boxing it would add an allocation per skipped entry for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next {
    /// A regular file: read and hash it.
    Read,
    /// Finished at the walk: skipped or failed.
    Done(NotRead),
}

/// The item to open, as a walk or a log names it.
#[derive(Clone, Copy, Debug)]
pub struct ItemRef<'a> {
    /// Its path relative to the root.
    pub path: &'a RawPath,
    /// The (device, inode) it had when walked, to detect a replaced file.
    pub expect: Option<(u64, u64)>,
    /// Where in a disk image it is.
    pub location: Option<&'a Location>,
}

impl<'a> ItemRef<'a> {
    /// The reference to a walked item.
    pub fn of(w: &'a Walked) -> ItemRef<'a> {
        ItemRef {
            path: &w.path,
            expect: w.meta.as_ref().map(|m| (m.dev, m.ino)),
            location: w.location.as_ref(),
        }
    }
}

/// A walk in progress: the items, then how many directories it entered.
pub trait Walk: Iterator<Item = Walked> + Send {
    /// Directories entered so far.
    fn directories(&self) -> u64;
}

/// A tree of items whose bytes can be read at offsets: what the scan, the
/// HTML report's thumbnails and `verify --evidence` read evidence through.
///
/// ```
/// use triage_core::source::{self, ItemRef, Next};
/// # let dir = std::env::temp_dir().join(format!("triage-tree-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.txt"), b"abc").unwrap();
/// let tree = source::open(&dir, &source::SourceOptions::default()).unwrap();
/// let mut walk = tree.walk();
/// let mut item = walk.next().unwrap();
/// assert!(matches!(item.next, Next::Read));
/// let preopened = item.file.take();
/// let (bytes, meta) = tree.open(ItemRef::of(&item), preopened).unwrap();
/// let mut buf = [0u8; 8];
/// assert_eq!(bytes.read_at(&mut buf, 0).unwrap(), 3);
/// assert_eq!(meta.size, 3);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub trait Tree: Send + Sync {
    /// A walk over every item, from the start, in the tree's fixed order.
    fn walk(&self) -> Box<dyn Walk + '_>;
    /// A walk for counting items and bytes only (progress totals), beside
    /// the scan's own: it may skip work the records need.
    fn count_walk(&self) -> Box<dyn Walk + '_> {
        self.walk()
    }
    /// Opens an item for reading; with its metadata as of now, which is
    /// what gets recorded. `preopened`: the file the walk opened itself
    /// ([`Walked::file`]), if any.
    fn open(
        &self,
        item: ItemRef<'_>,
        preopened: Option<std::fs::File>,
    ) -> Result<(Box<dyn Source + '_>, FileMeta), Failure>;
    /// The directory or image file records are relative to, absolute.
    fn root(&self) -> &Path;
    /// A disk image's description for the log's header; `None` for a
    /// directory tree.
    fn image(&self) -> Option<crate::item::ImageInfo> {
        None
    }
    /// A disk image's files, to digest whole beside the scan; none for a
    /// directory tree.
    fn segments(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
    /// A disk image's medium, to read in order beside the scan
    /// (`scan --verify-image`); `None` for a directory tree.
    fn medium(&self) -> Option<Medium> {
        None
    }
}

/// The medium of a disk image: its bytes and what its container stored
/// about them at acquisition.
#[derive(Clone)]
pub struct Medium {
    /// The container format (`ewf`, `raw`, …).
    pub format: &'static str,
    /// The medium's bytes.
    pub media: std::sync::Arc<dyn Source>,
    /// Its size in bytes.
    pub size: u64,
    /// Digests of the whole medium stored at acquisition (algorithm,
    /// lower-case hex).
    pub stored: Vec<(String, String)>,
}

/// An item's bytes, read at offsets through a shared reference (`pread`),
/// so one reader serves several threads: a file of a mounted tree (a
/// [`std::fs::File`]), a disk image, a partition, a file inside a file
/// system. A seam too: tests inject faults (EIO at an offset, short reads,
/// EINTR, growth) through their own implementations.
pub trait Source: Send + Sync {
    /// `pread`: up to `buf.len()` bytes at `offset`; 0 at end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Start of the next data region at or after `offset` (`SEEK_DATA`);
    /// `Ok(None)` when only a hole remains. An `Unsupported` error means the
    /// filesystem cannot tell, and the reader reads everything.
    fn next_data(&self, offset: u64) -> io::Result<Option<u64>>;
    /// Start of the next hole at or after `offset` (`SEEK_HOLE`).
    fn next_hole(&self, offset: u64) -> io::Result<u64>;
    /// The current size (`fstat`).
    fn size_now(&self) -> io::Result<u64>;
    /// Where byte `offset` of this source lies on the evidence medium,
    /// when the source is pieces of it put together (a volume's
    /// unallocated space) and says so; carving names what it finds by it.
    fn medium_offset(&self, _offset: u64) -> Option<u64> {
        None
    }
    /// Advice: bytes `offset..offset + len` will be read soon, so the
    /// source may start fetching them (`POSIX_FADV_WILLNEED` for a file).
    /// Changes nothing that is read; sources without a use for it ignore it.
    fn will_need(&self, _offset: u64, _len: u64) {}
}

/// All `len` bytes of `src` from offset 0, in one buffer: for the small
/// items read whole (a picture decoded, a thumbnail, a directory of a file
/// system). Fails on a source shorter than `len`.
pub fn read_whole(src: &dyn Source, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut v = vec![0u8; len];
    read_exact(src, &mut v, 0)?;
    Ok(v)
}

/// Exactly `buf.len()` bytes of `src` at `pos` (`EINTR` retried); a source
/// that ends first is `UnexpectedEof`.
pub fn read_exact(src: &dyn Source, buf: &mut [u8], pos: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match src.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Bytes held in memory as a [`Source`]: data stored inside a file
/// system's own records (ext inline data, NTFS resident attributes), or a
/// medium given as bytes.
pub struct MemSource(pub Vec<u8>);

impl Source for MemSource {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Some(rest) = usize::try_from(offset).ok().and_then(|o| self.0.get(o..)) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
    fn next_data(&self, _: u64) -> io::Result<Option<u64>> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn next_hole(&self, _: u64) -> io::Result<u64> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn size_now(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }
}
