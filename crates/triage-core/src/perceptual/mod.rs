//! Perceptual stage: hashes of what an image looks like, not of its bytes.
//!
//! Input: the bytes of a file the identify stage calls an image. Output:
//! PDQ hash and quality (and the 8 dihedral hashes on request), each tagged
//! with its algorithm version; or a decode error for this file.
//!
//! Resized and recompressed copies of known pictures keep their PDQ hash
//! within a small Hamming distance; exact digests miss them. PDQ is the
//! interoperable one (agencies and platforms exchange PDQ lists), so it is
//! written here from its description and tested bit for bit against Meta's
//! reference ([`pdq`]).

pub mod decode;
pub mod pdq;
