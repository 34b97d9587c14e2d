//! Source stage: where items come from.
//!
//! A source is a [`Tree`]: a tree of items, walked in a fixed order, whose
//! bytes can be read at offsets ([`Source`]). Two kinds:
//! - [`dir`]: a mounted directory tree (or a single file), walked read-only
//!   through directory descriptors; the only code that hands OS paths of
//!   evidence to the kernel.
//! - disk images: [`image`] reads the container (raw, split raw) as one
//!   run of bytes, [`volume`] finds its partitions,
//!   [`fs`] reads each partition's file system, deleted entries included,
//!   and [`disk`] puts them together as one tree.
//!
//! [`open`] looks at the evidence root and picks the kind: a regular file
//! whose content is a disk image is read as one; anything else is a
//! directory tree. The stages after this one see items, never OS paths.

use std::path::Path;

pub(crate) mod bytes;
pub mod dir;
pub mod disk;
pub mod fs;
pub mod image;
pub mod tree;
pub mod volume;

pub use tree::{ItemRef, Next, Source, Tree, Walk, Walked, read_whole};

/// How to read the evidence root.
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    /// Directory trees: see [`dir::walk::WalkOptions`].
    pub walk: dir::walk::WalkOptions,
    /// Hash a disk image file as one file instead of reading the file
    /// systems in it.
    pub image_as_file: bool,
    /// Disk images: give each volume's unallocated space as one item
    /// after its files (`p1/$Unallocated`), to be carved.
    pub unallocated: bool,
    /// Directory trees: fault injection for tests.
    #[doc(hidden)]
    pub faults: dir::Faults,
}

/// Opens the evidence root as the tree it is (see the module doc): a
/// regular file whose content is a disk image is read as one, unless
/// `options.image_as_file`; a raw-looking file in which no partition table
/// or file system can be read is hashed as the plain file it is.
pub fn open(root: &Path, options: &SourceOptions) -> Result<Box<dyn Tree>, dir::walk::RootError> {
    use dir::walk::RootError;
    let is_file = std::fs::metadata(root).is_ok_and(|m| m.is_file());
    if is_file && !options.image_as_file {
        match image::open(root) {
            Ok(Some(img)) => {
                let raw = img.format == "raw";
                let abs = std::path::absolute(root).map_err(RootError::Stat)?;
                let mut tree = disk::DiskTree::new(abs, img).map_err(|e| {
                    RootError::Image(format!(
                        "cannot read the partition table of image '{}': {e}",
                        root.display()
                    ))
                })?;
                if !(raw && !tree.has_file_system() && tree.layout().scheme == "none") {
                    tree.set_unallocated_items(options.unallocated);
                    return Ok(Box::new(tree));
                }
            }
            Ok(None) => {}
            Err(e) => return Err(RootError::Image(e.to_string())),
        }
    }
    Ok(Box::new(dir::DirSource::open(
        root,
        options.walk.clone(),
        options.faults.clone(),
    )?))
}
