//! Source stage: where items come from.
//!
//! A source is a tree of items whose bytes can be read. Today there is one
//! kind, [`dir`]: a mounted directory tree (or a single file), walked
//! read-only through directory descriptors. Disk images (`image/`: raw,
//! E01, qcow2, VHD, VMDK), their partition tables (`volume/`) and file
//! systems (`fs/`) will be sources beside it (issue 12), so that the
//! stages after this one see items, never OS paths of evidence.

pub mod dir;
