//! Verify a disk image's medium against the digests stored in it at
//! acquisition (EWF's MD5 and SHA-1), as `ewfverify` does: opens the
//! image and reads its medium through [`crate::scan::media`], which
//! `scan --verify-image` runs beside a scan.
//!
//! ```no_run
//! use triage_core::verify::image::{verify_image, Verdict};
//! let v = verify_image(std::path::Path::new("case.E01"), &|_done| {})?;
//! for (alg, verdict) in &v.verdicts {
//!     println!("{alg}: {verdict:?}");
//! }
//! assert!(v.bad_ranges.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

pub use crate::scan::media::{MediaVerification, Verdict, verify_media};
use crate::source::image::{self, ImageError};

/// Opens the image at `path` and verifies its medium; `progress` is told
/// the bytes done after each block.
pub fn verify_image(
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<MediaVerification, ImageError> {
    let img = image::open(path)?.ok_or_else(|| {
        ImageError::Format(
            path.to_path_buf(),
            "not a disk image triage recognises (E01, raw with a partition table or file system, split raw, QCOW2, VHD, VMDK)".into(),
        )
    })?;
    Ok(verify_media(&img, progress))
}
