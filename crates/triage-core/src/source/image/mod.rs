//! Disk-image containers: the bytes of the acquired medium, whatever file
//! format holds them.
//!
//! Input: the path of an image's first file. Output: an [`Image`]: the
//! medium as one [`Source`] of its full size, the files it was read from,
//! and what the container records about the acquisition (case metadata,
//! stored digests). Formats are recognised by content, one reader per
//! file: [`raw`] (one file, or split into numbered segments), [`ewf`]
//! (E01, one or more segments), [`ewf2`] (Ex01), [`qcow`] (QCOW2), [`vhd`] (VHD fixed and
//! dynamic), [`vhdx`] (VHDX), [`vmdk`] (sparse, stream-optimized, flat and
//! split).
//!
//! Image files are opened read-only with `O_NOATIME` and never written.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::source::tree::Source;
pub(crate) use crate::source::tree::read_exact;

pub mod ewf;
pub mod ewf2;
pub mod qcow;
pub mod raw;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;

/// An opened disk image.
pub struct Image {
    /// The container format: `raw`, `split-raw`, `ewf`, `ewf2`, `qcow2`,
    /// `vhd`, `vhdx`, `vmdk`.
    pub format: &'static str,
    /// The medium's bytes.
    pub media: Arc<dyn Source>,
    /// The medium's size in bytes.
    pub size: u64,
    /// The files read, in order, with their sizes.
    pub segments: Vec<(PathBuf, u64)>,
    /// What the container records about the acquisition (EWF: case number,
    /// examiner, evidence number, notes, acquisition date and tool), as
    /// (name, value).
    pub metadata: Vec<(String, String)>,
    /// Digests of the whole medium stored in the container at acquisition
    /// (EWF: MD5, SHA-1), as (algorithm, lower-case hex).
    pub stored_digests: Vec<(String, String)>,
    /// What this reader does not read or check in this image.
    pub notes: Vec<String>,
}

impl Image {
    /// Its medium, to read in order.
    pub fn medium(&self) -> crate::source::tree::Medium {
        crate::source::tree::Medium {
            format: self.format,
            media: self.media.clone(),
            size: self.size,
            stored: self.stored_digests.clone(),
        }
    }
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("format", &self.format)
            .field("size", &self.size)
            .field("segments", &self.segments)
            .finish()
    }
}

/// Why an image file cannot be read as one.
#[derive(Debug)]
pub enum ImageError {
    /// A file of the image cannot be opened or read.
    Io(PathBuf, io::Error),
    /// The container is recognised but damaged or not supported.
    Format(PathBuf, String),
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageError::Io(p, e) => write!(f, "cannot read image file '{}': {e}", p.display()),
            ImageError::Format(p, m) => write!(f, "image '{}': {m}", p.display()),
        }
    }
}

impl std::error::Error for ImageError {}

/// Bytes needed to recognise every format (VHD's footer is the last 512).
const HEAD: usize = 64 * 1024;

/// Opens `path` as a disk image if its content is one: `Ok(None)` for any
/// other file. A raw image is recognised by a partition table or a file
/// system's boot sector or superblock where one belongs.
pub fn open(path: &Path) -> Result<Option<Image>, ImageError> {
    let io_err = |e| ImageError::Io(path.to_path_buf(), e);
    let file = open_image_file(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let mut head = vec![0u8; HEAD.min(size as usize)];
    read_exact(&file, &mut head, 0).map_err(io_err)?;
    let mut tail = [0u8; 512];
    let has_tail = size >= 512 && read_exact(&file, &mut tail, size - 512).is_ok();
    if head.starts_with(ewf::SIGNATURE) {
        return ewf::open(path, file).map(Some);
    }
    if head.starts_with(ewf2::SIGNATURE) {
        return ewf2::open(path, file).map(Some);
    }
    if head.starts_with(qcow::MAGIC) {
        return qcow::open(path, file, &head).map(Some);
    }
    if head.starts_with(vhdx::SIGNATURE) {
        return vhdx::open(path, file).map(Some);
    }
    if head.starts_with(vmdk::SPARSE_MAGIC) || vmdk::is_descriptor(&head) {
        return vmdk::open(path, file, &head).map(Some);
    }
    if has_tail && tail.starts_with(vhd::COOKIE) {
        return vhd::open(path, file, &tail).map(Some);
    }
    if raw::looks_like_media(&head) {
        return raw::open(path, file, size).map(Some);
    }
    Ok(None)
}

/// Opens an image file as evidence (read-only, `O_NOATIME`, no blocking
/// on a FIFO). A symlink is followed: the examiner named the image, or
/// the image names its own segments.
pub(crate) fn open_image_file(path: &Path) -> io::Result<std::fs::File> {
    let resolved = std::fs::canonicalize(path)?;
    let (file, _) = crate::source::dir::open::open_evidence(&resolved, None)
        .map_err(|f| io::Error::other(f.kind.to_string()))?;
    Ok(file)
}

/// The SHA-256 of a whole image file, read sequentially as evidence is
/// (read-only, `O_NOATIME`); stops early, with `None`, when `stop` says so.
pub fn segment_sha256(path: &Path, stop: &dyn Fn() -> bool) -> crate::item::SegmentDigest {
    use sha2::Digest as _;
    let mut d = crate::item::SegmentDigest {
        path: path.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let file = match open_image_file(path) {
        Ok(f) => f,
        Err(e) => {
            d.error = Some(e.to_string());
            return d;
        }
    };
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if stop() {
            d.error = Some("the scan ended before this file was read in full".into());
            return d;
        }
        match std::os::unix::fs::FileExt::read_at(&file, &mut buf, d.bytes) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                d.bytes += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                d.error = Some(format!("at byte {}: {e}", d.bytes));
                return d;
            }
        }
    }
    d.sha256 = Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect());
    d
}

/// Decoded blocks (EWF chunks, compressed QCOW2 clusters) kept for reuse:
/// a file system's metadata is read in many small pieces, which must not
/// inflate one block again each time. Sharded so that threads reading
/// different blocks do not wait on one lock; a few entries per shard and
/// at most [`Cache::SHARD_BYTES`] beyond the newest one, so memory stays
/// at a few MiB for the usual 32 KiB–1 MiB blocks whatever the image's
/// size, and at 16 blocks when a (hostile or unusual) image declares huge
/// ones.
#[derive(Default)]
pub(crate) struct Cache {
    shards: [std::sync::Mutex<Shard>; 16],
}

/// One shard of a [`Cache`]: (block number, bytes), oldest first.
type Shard = Vec<(u64, Arc<[u8]>)>;

impl Cache {
    const PER_SHARD: usize = 4;
    /// Bytes a shard keeps besides its newest block.
    const SHARD_BYTES: usize = 4 << 20;

    /// Block `n`, from the cache or made by `load`.
    pub(crate) fn get(
        &self,
        n: u64,
        load: impl FnOnce() -> io::Result<Vec<u8>>,
    ) -> io::Result<Arc<[u8]>> {
        let shard = &self.shards[(n % 16) as usize];
        if let Ok(c) = shard.lock()
            && let Some((_, data)) = c.iter().find(|(k, _)| *k == n)
        {
            return Ok(data.clone());
        }
        let data: Arc<[u8]> = load()?.into();
        if let Ok(mut c) = shard.lock() {
            let mut held: usize = c.iter().map(|(_, d)| d.len()).sum();
            while !c.is_empty() && (c.len() >= Self::PER_SHARD || held > Self::SHARD_BYTES) {
                held -= c.remove(0).1.len();
            }
            c.push((n, data.clone()));
        }
        Ok(data)
    }
}

/// A medium whose holes are not known: the [`Source`] methods every
/// container shares.
macro_rules! no_holes {
    () => {
        fn next_data(&self, _: u64) -> std::io::Result<Option<u64>> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        fn next_hole(&self, _: u64) -> std::io::Result<u64> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
    };
}
pub(crate) use no_holes;
