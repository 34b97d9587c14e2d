//! Decoding images to 8-bit RGB for perceptual hashing, within limits.
//!
//! Input: a file's bytes. Output: RGB8 pixels at full resolution, alpha
//! dropped (as every PDQ reference pipeline does), no EXIF rotation (the
//! canonical hash is of the stored pixels; the dihedral hashes cover rotated
//! copies). Failure is a [`DecodeError`] for this file, never a crash:
//! dimension and allocation limits stop decompression bombs before they
//! allocate, and a decoder panic is caught and reported.

use std::fmt;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{ImageFormat, ImageReader, Limits};

/// Limits on what is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width or height accepted.
    pub max_dimension: u32,
    /// Largest number of pixels accepted.
    pub max_pixels: u64,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// 32,768 px a side, 64 megapixels, 320 MiB per allocation: above the
    /// 48-megapixel phone sensors in use, far below what a hostile header can
    /// ask for. The pixel cap keeps the worst case (an RGBA frame converted
    /// to RGB: 7 bytes a pixel, ~450 MB) under 512 MB per decoding thread.
    fn default() -> Self {
        DecodeLimits {
            max_dimension: 32_768,
            max_pixels: 64 << 20,
            max_alloc: 320 << 20,
        }
    }
}

/// A decoded image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb8 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `3 · width · height` bytes, row-major.
    pub pixels: Vec<u8>,
    /// The EXIF orientation tag (1–8) when the file has one. Not applied:
    /// hashes are of the stored pixels; the dihedral hashes cover rotations.
    pub exif_orientation: Option<u8>,
    /// The data ends before the format's end marker (JPEG EOI, GIF
    /// trailer): the decoder filled in what was missing, so the pixels, and
    /// the hashes, are of a partial image.
    pub truncated: bool,
    /// `Some(n)`: a JPEG decoded at 1/n scale in the DCT domain
    /// ([`decode_jpeg_scaled`]); `None`: full resolution.
    pub scale: Option<u8>,
}

/// Why an image could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// No decoder for this format in this build (HEIC, AVIF, RAW, ...).
    Unsupported(String),
    /// The header asks for more than [`DecodeLimits`] allow.
    TooLarge {
        /// What the header said, or what the decoder was refused.
        detail: String,
    },
    /// Damaged or truncated data.
    Corrupt(String),
    /// The decoder panicked (a bug in it); caught, the scan goes on.
    DecoderPanic(String),
}

impl DecodeError {
    /// Stable code for records.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Unsupported(_) => "unsupported_format",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Corrupt(_) => "corrupt",
            DecodeError::DecoderPanic(_) => "decoder_panic",
        }
    }
}

impl DecodeError {
    /// Rebuilds an error from its [`DecodeError::code`] and message (reading
    /// records back); `None` for an unknown code.
    pub fn from_code(code: &str, message: String) -> Option<DecodeError> {
        Some(match code {
            "unsupported_format" => DecodeError::Unsupported(message),
            "too_large" => DecodeError::TooLarge { detail: message },
            "corrupt" => DecodeError::Corrupt(message),
            "decoder_panic" => DecodeError::DecoderPanic(message),
            _ => return None,
        })
    }

    /// The message without the code's wording, as stored in records.
    pub fn detail(&self) -> &str {
        match self {
            DecodeError::Unsupported(m)
            | DecodeError::Corrupt(m)
            | DecodeError::DecoderPanic(m) => m,
            DecodeError::TooLarge { detail } => detail,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Unsupported(what) => write!(f, "unsupported image format: {what}"),
            DecodeError::TooLarge { detail } => {
                write!(f, "image exceeds the decode limits: {detail}")
            }
            DecodeError::Corrupt(e) => write!(f, "damaged image: {e}"),
            DecodeError::DecoderPanic(e) => write!(f, "the image decoder crashed (caught): {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `bytes` (format from content, not name) to RGB8 within `limits`.
pub fn decode_rgb8(bytes: &[u8], limits: DecodeLimits) -> Result<Rgb8, DecodeError> {
    match catch_unwind(AssertUnwindSafe(|| decode_inner(bytes, limits))) {
        Ok(r) => r,
        Err(p) => Err(DecodeError::DecoderPanic(crate::item::panic_message(&*p))),
    }
}

fn decode_inner(bytes: &[u8], limits: DecodeLimits) -> Result<Rgb8, DecodeError> {
    use image::ImageDecoder;
    // HEIF and AVIF: libheif, in a worker process, gives a PNG.
    let what = match crate::identify::sniff(bytes, bytes.len() as u64) {
        crate::identify::FileType::Heif => Some("HEIF"),
        crate::identify::FileType::Avif => Some("AVIF"),
        _ => None,
    };
    if let Some(what) = what {
        use super::heif::{HeifError, Picture};
        let picture =
            super::heif::convert(bytes, what, limits.max_pixels).map_err(|e| match e {
                HeifError::Unavailable(m) => DecodeError::Unsupported(m),
                HeifError::Failed(m) => DecodeError::Corrupt(m),
            })?;
        return match picture {
            Picture::Rgb {
                width,
                height,
                pixels,
            } => Ok(Rgb8 {
                width,
                height,
                pixels,
                exif_orientation: None,
                truncated: false,
                scale: None,
            }),
            Picture::Png(png) => {
                let mut rgb = decode_inner(&png, limits)?;
                // The PNG is the worker's: its (absent) EXIF is not the
                // picture's.
                rgb.exif_orientation = None;
                Ok(rgb)
            }
        };
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let Some(format) = reader.format() else {
        return Err(DecodeError::Unsupported(
            "not recognised by the decoder".into(),
        ));
    };
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_dimension);
    l.max_image_height = Some(limits.max_dimension);
    l.max_alloc = Some(limits.max_alloc);
    reader.limits(l);
    // The decoder reads the header; check its size before any pixel is
    // allocated.
    let mut decoder = reader.into_decoder().map_err(map_err)?;
    let (w, h) = decoder.dimensions();
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(DecodeError::TooLarge {
            detail: format!("{w}×{h} is over {} pixels", limits.max_pixels),
        });
    }
    let exif_orientation = decoder
        .orientation()
        .ok()
        .map(|o| o.to_exif())
        .filter(|&o| o != 1 || has_exif(bytes));
    let truncated = missing_end_marker(format, bytes);
    let len = decoder.total_bytes();
    if decoder.color_type() == image::ColorType::Rgb8 && len == w as u64 * h as u64 * 3 {
        // Most photos: decode straight into a buffer this thread reuses.
        // A fresh 36 MB buffer per 12-megapixel JPEG cost a page fault per
        // 4 KiB (a tenth of a pHash scan's time, perf).
        let mut pixels = take_buffer(len as usize);
        if let Err(e) = decoder.read_image(&mut pixels) {
            recycle(pixels);
            return Err(map_err(e));
        }
        return Ok(Rgb8 {
            width: w as usize,
            height: h as usize,
            pixels,
            exif_orientation,
            truncated,
            scale: None,
        });
    }
    let img = image::DynamicImage::from_decoder(decoder).map_err(map_err)?;
    let rgb = img.into_rgb8();
    Ok(Rgb8 {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        pixels: rgb.into_raw(),
        exif_orientation,
        truncated,
        scale: None,
    })
}

thread_local! {
    /// One pixel buffer per thread, kept between images.
    static POOL: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers above this are freed, not kept: one huge image must not pin
/// its memory for the rest of the scan (21 megapixels of RGB fit).
const POOL_MAX: usize = 64 << 20;

/// A buffer of `len` bytes, the thread's kept one if there is one. Its
/// contents are whatever was there: callers overwrite all of it.
fn take_buffer(len: usize) -> Vec<u8> {
    let mut v = POOL.with(|p| std::mem::take(&mut *p.borrow_mut()));
    // Growing zero-fills only the new part; shrinking writes nothing.
    v.resize(len, 0);
    v
}

/// Gives a pixel buffer back for the next image on this thread.
pub(crate) fn recycle(v: Vec<u8>) {
    if v.capacity() <= POOL_MAX {
        POOL.with(|p| {
            let mut slot = p.borrow_mut();
            if v.capacity() > slot.capacity() {
                *slot = v;
            }
        });
    }
}

/// Decodes a JPEG at the smallest DCT-domain scale (1/2, 1/4 or 1/8) that
/// keeps at least `min_side` pixels on one side, with `jpeg-decoder`.
/// Several times faster on large photos, but the pixels differ from a full
/// decode, and PDQ moves by several bits (docs/perceptual.md): opt-in only.
/// `Ok(None)` when the image is not a JPEG this path handles (CMYK,
/// 12-bit) or is already small; the caller then decodes in full.
pub fn decode_jpeg_scaled(
    bytes: &[u8],
    min_side: u16,
    limits: DecodeLimits,
) -> Result<Option<Rgb8>, DecodeError> {
    let run = || -> Result<Option<Rgb8>, DecodeError> {
        let corrupt = |e: jpeg_decoder::Error| DecodeError::Corrupt(e.to_string());
        let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
        d.set_max_decoding_buffer_size(limits.max_alloc as usize);
        d.read_info().map_err(corrupt)?;
        let Some(info) = d.info() else {
            return Ok(None);
        };
        let (w0, h0) = (info.width as u64, info.height as u64);
        if w0 * h0 > limits.max_pixels {
            return Err(DecodeError::TooLarge {
                detail: format!("{w0}×{h0} is over {} pixels", limits.max_pixels),
            });
        }
        if !matches!(
            info.pixel_format,
            jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
        ) {
            return Ok(None);
        }
        let (w, h) = d.scale(min_side, min_side).map_err(corrupt)?;
        if w as u64 == w0 {
            return Ok(None);
        }
        let raw = d.decode().map_err(corrupt)?;
        let pixels = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => raw.iter().flat_map(|&v| [v, v, v]).collect(),
            _ => raw,
        };
        if pixels.len() != 3 * w as usize * h as usize {
            return Err(DecodeError::Corrupt(
                "scaled decode returned a short buffer".into(),
            ));
        }
        Ok(Some(Rgb8 {
            width: w as usize,
            height: h as usize,
            pixels,
            exif_orientation: None,
            truncated: missing_end_marker(ImageFormat::Jpeg, bytes),
            scale: Some(w0.div_ceil(w as u64) as u8),
        }))
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(p) => Err(DecodeError::DecoderPanic(crate::item::panic_message(&*p))),
    }
}

/// Whether the bytes carry an EXIF block at all (the decoders report
/// orientation 1 both for "tag says 1" and for "no tag").
fn has_exif(bytes: &[u8]) -> bool {
    bytes.windows(6).take(1 << 16).any(|w| w == b"Exif\0\0")
}

/// JPEG without its EOI marker, GIF without its trailer: the decoders
/// accept both and fill in the missing part.
fn missing_end_marker(format: ImageFormat, bytes: &[u8]) -> bool {
    // Some writers pad after the end marker; ignore trailing zero bytes.
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let data = &bytes[..end];
    match format {
        ImageFormat::Jpeg => !data.ends_with(&[0xFF, 0xD9]),
        ImageFormat::Gif => !data.ends_with(&[0x3B]),
        _ => false,
    }
}

pub(crate) fn map_err(e: image::ImageError) -> DecodeError {
    use image::ImageError as E;
    match e {
        E::Limits(l) => DecodeError::TooLarge {
            detail: l.to_string(),
        },
        E::Unsupported(u) => DecodeError::Unsupported(u.to_string()),
        other => DecodeError::Corrupt(other.to_string()),
    }
}

/// Name of a decodable format, for messages.
pub fn format_name(bytes: &[u8]) -> Option<&'static str> {
    image::guess_format(bytes).ok().map(|f| match f {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::Gif => "gif",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Tiff => "tiff",
        ImageFormat::WebP => "webp",
        ImageFormat::Ico => "ico",
        _ => "other",
    })
}
