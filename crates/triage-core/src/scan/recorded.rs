//! The paths an earlier, unfinished run already recorded, so a
//! resumed scan walks them but neither reads them again nor records them
//! twice.

use crate::path::RawPath;

/// A set of entry paths, kept as 128-bit BLAKE3 prefixes so a million
/// paths cost 16 MB however long they are. A collision (odds about
/// n²/2¹²⁹) would make a resumed scan skip one unrecorded path.
#[derive(Clone, Debug, Default)]
pub struct Recorded(std::collections::HashSet<[u8; 16]>);

impl Recorded {
    fn key(path: &RawPath) -> [u8; 16] {
        let h = blake3::hash(path.as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.as_bytes()[..16]);
        k
    }

    /// Adds a path.
    pub fn insert(&mut self, path: &RawPath) {
        self.0.insert(Self::key(path));
    }

    /// Whether a path was added.
    pub fn contains(&self, path: &RawPath) -> bool {
        !self.0.is_empty() && self.0.contains(&Self::key(path))
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
