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
//!
//! pHash, dHash and aHash come from the `image_hasher` crate (the maintained
//! fork of `img_hash`), each pinned to one configuration by its tag (see
//! [`ImgHashAlg`]). They do **not** reproduce Python `imagehash` or libpHash
//! (different grey conversion, resize size and filter, bit order): there is
//! no single "pHash". Use them between scans made by `triage`; exchange PDQ.

pub mod decode;
pub mod ffmpeg;
pub mod heif;
pub mod pdq;
mod thumb;
pub mod video;

use decode::{DecodeError, DecodeLimits, decode_rgb8};
use pdq::{PDQ_TAG, PdqHash};

/// Which perceptual hashes to compute, and the limits on decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerceptualConfig {
    /// Compute PDQ for every decodable image.
    pub pdq: bool,
    /// Also compute the 8 dihedral PDQ hashes (rotations and mirrors).
    pub dihedral: bool,
    /// The `image_hasher` hashes to compute, in this order.
    pub img_hashes: Vec<ImgHashAlg>,
    /// Decode large JPEGs at reduced scale in the DCT domain (to at least
    /// 512 px on one side): much faster, but not conformant (PDQ moves by
    /// several bits; see docs/perceptual.md). Recorded on each image.
    pub fast_decode: bool,
    /// Also PDQ every distinct later frame of animated GIF and WebP files
    /// (up to [`MAX_FRAMES`]); otherwise only the first frame is hashed.
    pub all_frames: bool,
    /// Limits on decoding.
    pub limits: DecodeLimits,
    /// Images larger than this many bytes are not decoded (recorded as too large).
    pub max_file_bytes: u64,
    /// How videos are hashed (vPDQ), when [`PerceptualConfig::pdq`] is on.
    pub video: video::VideoConfig,
}

impl Default for PerceptualConfig {
    /// PDQ on, dihedral off, default limits, files up to 256 MiB.
    fn default() -> Self {
        PerceptualConfig {
            pdq: true,
            dihedral: false,
            img_hashes: Vec::new(),
            fast_decode: false,
            all_frames: false,
            limits: DecodeLimits::default(),
            max_file_bytes: 256 << 20,
            video: video::VideoConfig::default(),
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
        self.pdq || !self.img_hashes.is_empty()
    }

    /// The tags of the selected algorithms, in output order.
    pub fn tags(&self) -> Vec<String> {
        let pdq = self.pdq.then(|| PDQ_TAG.to_string());
        pdq.into_iter()
            .chain(self.img_hashes.iter().map(|a| a.tag().to_string()))
            .collect()
    }
}

/// Before the `image_hasher` hashes, images larger than this are shrunk to
/// fit it (aspect kept) with `image`'s area-averaging `thumbnail`.
const THUMB: u32 = 256;

/// The `image_hasher` algorithms, each pinned to one configuration: the
/// image first shrunk to fit 256×256 by `image::DynamicImage::thumbnail`,
/// then 8×8 bits, Lanczos3 resize, image-rs (Rec. 709) grey, least
/// significant bit first, `image_hasher` 3.x. A change to any of these gets
/// a new tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImgHashAlg {
    /// `phash/1`: DCT of a 16×16 grey image, bits above the median.
    Phash,
    /// `dhash/1`: horizontal gradient signs of a 9×8 grey image.
    Dhash,
    /// `ahash/1`: 8×8 grey image, bits above the mean.
    Ahash,
}

impl ImgHashAlg {
    /// All three, in output order.
    pub const ALL: [ImgHashAlg; 3] = [ImgHashAlg::Phash, ImgHashAlg::Dhash, ImgHashAlg::Ahash];

    /// The version tag written beside the hash.
    pub fn tag(self) -> &'static str {
        match self {
            ImgHashAlg::Phash => "phash/1",
            ImgHashAlg::Dhash => "dhash/1",
            ImgHashAlg::Ahash => "ahash/1",
        }
    }

    /// The name on the command line (`phash`, `dhash`, `ahash`).
    pub fn name(self) -> &'static str {
        match self {
            ImgHashAlg::Phash => "phash",
            ImgHashAlg::Dhash => "dhash",
            ImgHashAlg::Ahash => "ahash",
        }
    }

    /// The algorithm with tag `tag`.
    pub fn from_tag(tag: &str) -> Option<ImgHashAlg> {
        ImgHashAlg::ALL.into_iter().find(|a| a.tag() == tag)
    }

    fn hasher(self) -> image_hasher::Hasher {
        use image_hasher::{BitOrder, FilterType, HashAlg, HasherConfig};
        let c = HasherConfig::new()
            .hash_size(8, 8)
            .resize_filter(FilterType::Lanczos3)
            .bit_order(BitOrder::LsbFirst);
        match self {
            ImgHashAlg::Phash => c.hash_alg(HashAlg::Median).preproc_dct(),
            ImgHashAlg::Dhash => c.hash_alg(HashAlg::Gradient),
            ImgHashAlg::Ahash => c.hash_alg(HashAlg::Mean),
        }
        .to_hasher()
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
        /// The 8 dihedral hashes, when asked for (boxed: 256 bytes).
        dihedral: Option<Box<[PdqHash; 8]>>,
        /// For the extra frames of an animation (`all_frames`): the frame's
        /// index. `None` for the image, i.e. its first frame.
        frame: Option<u32>,
    },
    /// An `image_hasher` hash: 8 bytes.
    Img {
        /// Which one.
        alg: ImgHashAlg,
        /// The hash bytes, as `image_hasher` lays them out.
        hash: [u8; 8],
    },
}

impl Perceptual {
    /// The algorithm and version, e.g. `pdq/1`.
    pub fn tag(&self) -> &'static str {
        match self {
            Perceptual::Pdq { .. } => PDQ_TAG,
            Perceptual::Img { alg, .. } => alg.tag(),
        }
    }
}

/// What decoding found out about an image, recorded beside its hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width in pixels as stored.
    pub width: u32,
    /// Height in pixels as stored.
    pub height: u32,
    /// EXIF orientation (1–8) when the file has EXIF data; not applied.
    pub exif_orientation: Option<u8>,
    /// The data ended before the format's end marker and the decoder filled
    /// in the rest: the hashes are of a partial picture.
    pub truncated: bool,
    /// `Some(n)`: decoded at 1/n scale (`fast_decode`), so the hashes are
    /// approximate, and `width`/`height` are the decoded (reduced) size.
    pub decoded_scale: Option<u8>,
}

/// The perceptual hashes of one image, and what its decoding found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageHashes {
    /// Dimensions, orientation, truncation; `None` when nothing was decoded.
    pub info: Option<ImageInfo>,
    /// The selected hashes, PDQ first.
    pub hashes: Vec<Perceptual>,
}

/// Frames hashed per animation at most: a GIF can hold hundreds of
/// thousands of tiny frames, each costing a full-canvas decode.
pub const MAX_FRAMES: usize = 1000;

/// PDQ of every frame after the first of an animated GIF or WebP whose hash
/// differs from all frames hashed before it (repeats carry no new picture).
fn later_frames(
    bytes: &[u8],
    config: &PerceptualConfig,
    first: PdqHash,
) -> Result<Vec<Perceptual>, DecodeError> {
    use image::AnimationDecoder;
    let frames: image::Frames<'_> = match decode::format_name(bytes) {
        Some("gif") => {
            let d = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes))
                .map_err(decode::map_err)?;
            d.into_frames()
        }
        Some("webp") => {
            let d = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(bytes))
                .map_err(decode::map_err)?;
            if !d.has_animation() {
                return Ok(Vec::new());
            }
            d.into_frames()
        }
        _ => return Ok(Vec::new()),
    };
    let mut seen = vec![first];
    let mut out = Vec::new();
    // Many frames of a huge canvas are a time bomb even when each fits the
    // limits: stop after ten images' worth of pixels.
    let mut budget = config.limits.max_pixels.saturating_mul(10);
    for (index, frame) in frames.enumerate().skip(1).take(MAX_FRAMES - 1) {
        let frame = frame.map_err(decode::map_err)?;
        let pixels = frame.buffer().width() as u64 * frame.buffer().height() as u64;
        if pixels > budget {
            break;
        }
        budget -= pixels;
        let rgb = image::DynamicImage::ImageRgba8(frame.into_buffer()).into_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        if (w as u64) * (h as u64) > config.limits.max_pixels {
            return Err(DecodeError::TooLarge {
                detail: format!("frame {index} is {w}×{h}"),
            });
        }
        let p = pdq::pdq_rgb8(rgb.as_raw(), w, h, config.dihedral);
        if seen.contains(&p.hash) {
            continue;
        }
        seen.push(p.hash);
        out.push(Perceptual::Pdq {
            hash: p.hash,
            quality: p.quality,
            dihedral: p.dihedral.map(Box::new),
            frame: Some(index as u32),
        });
    }
    Ok(out)
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
) -> Result<ImageHashes, DecodeError> {
    let mut out = Vec::new();
    if !config.enabled() {
        return Ok(ImageHashes::default());
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
    let scaled = if config.fast_decode && decode::format_name(bytes) == Some("jpeg") {
        decode::decode_jpeg_scaled(bytes, 512, config.limits)?
    } else {
        None
    };
    let img = match scaled {
        Some(img) => img,
        None => decode_rgb8(bytes, config.limits)?,
    };
    let info = ImageInfo {
        width: img.width as u32,
        height: img.height as u32,
        exif_orientation: img.exif_orientation,
        truncated: img.truncated,
        decoded_scale: img.scale,
    };
    let mut img_hashes = Vec::new();
    if !config.img_hashes.is_empty() {
        // Area-average down to at most 256 px a side first: image_hasher's
        // Lanczos3 over a full-size photo cost 3x the PDQ. Part of the tags.
        let (w, h) = (img.width as u32, img.height as u32);
        let shrunk = (w > THUMB || h > THUMB)
            .then(|| thumb::thumbnail_rgb8(&img.pixels, w, h, THUMB))
            .flatten();
        let dynamic = match shrunk {
            Some(t) => image::DynamicImage::ImageRgb8(t),
            None => {
                let rgb = image::RgbImage::from_raw(w, h, img.pixels.clone()).ok_or_else(|| {
                    DecodeError::Corrupt("pixel buffer does not match its size".into())
                })?;
                let full = image::DynamicImage::ImageRgb8(rgb);
                if w > THUMB || h > THUMB {
                    full.thumbnail(THUMB, THUMB)
                } else {
                    full
                }
            }
        };
        for alg in &config.img_hashes {
            let h = alg.hasher().hash_image(&dynamic);
            let mut hash = [0u8; 8];
            hash.copy_from_slice(&h.as_bytes()[..8]);
            img_hashes.push(Perceptual::Img { alg: *alg, hash });
        }
    }
    let pdq = config
        .pdq
        .then(|| pdq::pdq_rgb8(&img.pixels, img.width, img.height, config.dihedral));
    decode::recycle(img.pixels);
    if let Some(p) = pdq {
        out.push(Perceptual::Pdq {
            hash: p.hash,
            quality: p.quality,
            dihedral: p.dihedral.map(Box::new),
            frame: None,
        });
        if config.all_frames {
            out.extend(later_frames(bytes, config, p.hash)?);
        }
    }
    out.extend(img_hashes);
    Ok(ImageHashes {
        info: Some(info),
        hashes: out,
    })
}
