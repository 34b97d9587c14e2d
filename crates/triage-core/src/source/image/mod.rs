//! Disk-image containers: the bytes of the acquired medium, whatever file
//! format holds them.
//!
//! Input: the path of an image's first file. Output: an [`Image`]: the
//! medium as one [`Source`] of its full size, the files it was read from,
//! and what the container records about the acquisition (case metadata,
//! stored digests). Formats are recognised by content, one reader per
//! file: [`raw`] (one file, or split into numbered segments).
//!
//! Image files are opened read-only with `O_NOATIME` and never written.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::source::Source;

pub mod raw;

/// An opened disk image.
pub struct Image {
    /// The container format: `raw`, `split-raw`, `ewf`, `qcow2`, `vhd`,
    /// `vmdk`.
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
    let _ = (has_tail, tail);
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

/// Exactly `buf.len()` bytes of `src` at `pos`.
pub(crate) fn read_exact(src: &dyn Source, buf: &mut [u8], pos: u64) -> io::Result<()> {
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
