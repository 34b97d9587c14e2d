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

use decode::{DecodeError, DecodeLimits, decode_rgb8};
use pdq::{PDQ_TAG, PdqHash, pdq_luma};

/// Which perceptual hashes to compute, and the limits on decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerceptualConfig {
    /// Compute PDQ for every decodable image.
    pub pdq: bool,
    /// Also compute the 8 dihedral PDQ hashes (rotations and mirrors).
    pub dihedral: bool,
    /// Limits on decoding.
    pub limits: DecodeLimits,
    /// Images larger than this many bytes are not decoded (recorded as too large).
    pub max_file_bytes: u64,
}

impl Default for PerceptualConfig {
    /// PDQ on, dihedral off, default limits, files up to 256 MiB.
    fn default() -> Self {
        PerceptualConfig {
            pdq: true,
            dihedral: false,
            limits: DecodeLimits::default(),
            max_file_bytes: 256 << 20,
        }
    }
}

impl PerceptualConfig {
    /// No perceptual hashing at all.
    pub fn off() -> Self {
        PerceptualConfig {
            pdq: false,
            ..PerceptualConfig::default()
        }
    }

    /// Whether any perceptual hash is selected.
    pub fn enabled(&self) -> bool {
        self.pdq
    }
}

/// One perceptual hash, with the algorithm version that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Perceptual {
    /// PDQ, tag [`PDQ_TAG`].
    Pdq {
        /// The hash of the stored pixels.
        hash: PdqHash,
        /// 0–100; matches on hashes under 50 are unreliable.
        quality: u8,
        /// The 8 dihedral hashes, when asked for.
        dihedral: Option<[PdqHash; 8]>,
    },
}

impl Perceptual {
    /// The algorithm and version, e.g. `pdq/1`.
    pub fn tag(&self) -> &'static str {
        match self {
            Perceptual::Pdq { .. } => PDQ_TAG,
        }
    }
}

/// The perceptual hashes of an image file's bytes, as `config` selects.
///
/// ```
/// use triage_core::perceptual::{perceptual_hashes, PerceptualConfig, Perceptual};
/// let not_an_image = b"hello";
/// assert!(perceptual_hashes(not_an_image, &PerceptualConfig::default()).is_err());
/// ```
pub fn perceptual_hashes(
    bytes: &[u8],
    config: &PerceptualConfig,
) -> Result<Vec<Perceptual>, DecodeError> {
    let mut out = Vec::new();
    if !config.enabled() {
        return Ok(out);
    }
    if bytes.len() as u64 > config.max_file_bytes {
        return Err(DecodeError::TooLarge {
            detail: format!(
                "file of {} bytes is over the {}-byte limit for decoding",
                bytes.len(),
                config.max_file_bytes
            ),
        });
    }
    let img = decode_rgb8(bytes, config.limits)?;
    if config.pdq {
        // Free the RGB pixels as soon as the luma plane exists: for a large
        // photo they are 3 bytes a pixel on top of the filter's 8.
        let (w, h) = (img.width, img.height);
        let luma = pdq::luma_from_rgb8(&img.pixels);
        drop(img);
        let p = pdq_luma(luma, w, h, config.dihedral);
        out.push(Perceptual::Pdq {
            hash: p.hash,
            quality: p.quality,
            dihedral: p.dihedral,
        });
    }
    Ok(out)
}
