//! The paths an earlier, unfinished run already recorded, so a
//! resumed scan walks them but neither reads them again nor records them
//! twice.

use crate::item::Location;
use crate::path::RawPath;

/// A set of entry paths, kept as 128-bit BLAKE3 prefixes so a million
/// paths cost 16 MB however long they are. A collision (odds about
/// n²/2¹²⁹) would make a resumed scan skip one unrecorded path.
///
/// A container recorded last may have been cut off among its members
/// (the log ends inside its family): it is [`Recorded::set_partial`], read
/// and looked inside again, and only its members not yet recorded are
/// handed over.
#[derive(Clone, Debug, Default)]
pub struct Recorded(std::collections::HashSet<[u8; 16]>, Option<[u8; 16]>);

impl Recorded {
    /// The key of an item: its path, and in a disk image its location too
    /// (a deleted file and the file now bearing its name share a path).
    fn key(path: &RawPath, location: Option<&Location>) -> [u8; 16] {
        let mut h = blake3::Hasher::new();
        h.update(path.as_bytes());
        if let Some(l) = location {
            h.update(&[0xFF]);
            h.update(&l.partition.as_ref().map_or(0, |p| p.index).to_le_bytes());
            h.update(&l.fs_offset.to_le_bytes());
            h.update(&l.addr.to_le_bytes());
            h.update(&[l.state as u8]);
        }
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.finalize().as_bytes()[..16]);
        k
    }

    /// Adds an item: its path and, in a disk image, its location.
    pub fn insert(&mut self, path: &RawPath, location: Option<&Location>) {
        self.0.insert(Self::key(path, location));
    }

    /// Whether an item was added.
    pub fn contains(&self, path: &RawPath, location: Option<&Location>) -> bool {
        !self.0.is_empty() && self.0.contains(&Self::key(path, location))
    }

    /// Marks a recorded walked item whose members may not all be
    /// recorded: the walk gives it again, for its missing members.
    pub fn set_partial(&mut self, path: &RawPath, location: Option<&Location>) {
        self.1 = Some(Self::key(path, location));
    }

    /// Whether the walk skips a walked item: recorded, and not partial.
    pub fn skips(&self, path: &RawPath, location: Option<&Location>) -> bool {
        !self.0.is_empty() && {
            let k = Self::key(path, location);
            self.1 != Some(k) && self.0.contains(&k)
        }
    }

    /// Paths added.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none were added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
