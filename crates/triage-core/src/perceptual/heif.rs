//! HEIF/HEIC (iPhone photos) and AVIF, decoded by libheif in a worker
//! process: `heif-convert` (Debian's libheif-examples), run on a copy of
//! the picture's bytes in a scratch directory of the scan's own, its
//! output a PNG read back through the PNG decoder. libheif applies the
//! picture's own transformations (rotation, mirroring, crop) and colour
//! conversion (its `nclx` matrix) as it does for Pillow through
//! pillow-heif; the primary image is the one decoded (a grid of tiles put
//! together by libheif).
//!
//! Why a worker, not a library in the process: the decoders (libde265 for
//! HEVC, dav1d and aom for AV1) are C code reading hostile input; a crash
//! or a runaway allocation there ends the worker, bounded by a time limit
//! and, where `prlimit` is present, an address-space limit, and fails
//! that picture only. And the binary builds with cargo alone: the
//! decoder is found at run time, named with its version in the log
//! (`build.features`: `decode:heif (heif-convert, libheif 1.15.1)`), and
//! its absence is said for each picture (`unsupported_format`, naming the
//! package), never passed over.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a picture was not converted.
#[derive(Debug)]
pub(crate) enum HeifError {
    /// No decoder on this machine (the message names the package).
    Unavailable(String),
    /// The decoder failed on this picture (its reason), or did not finish.
    Failed(String),
}

/// How long one picture may take to decode.
const TIME_LIMIT: Duration = Duration::from_secs(60);
/// The worker's address space, where `prlimit` can set it.
const MEMORY_LIMIT: &str = "--as=4294967296";

/// The worker found on this machine: its path and libheif's version.
struct Worker {
    program: PathBuf,
    version: String,
    prlimit: Option<PathBuf>,
}

fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn worker() -> Option<&'static Worker> {
    static W: OnceLock<Option<Worker>> = OnceLock::new();
    W.get_or_init(|| {
        let program = find("heif-convert")?;
        let out = Command::new(&program)
            .arg("--help")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let version = text
            .split("libheif version:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("unknown")
            .to_string();
        Some(Worker {
            program,
            version,
            prlimit: find("prlimit"),
        })
    })
    .as_ref()
}

/// What decodes HEIF and AVIF here, for the log: `None` when nothing does.
pub fn decoder_name() -> Option<String> {
    worker().map(|w| format!("heif (heif-convert, libheif {})", w.version))
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A scratch directory of this process, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A converted picture.
pub(crate) enum Picture {
    /// 8-bit RGB, row-major.
    Rgb {
        width: usize,
        height: usize,
        pixels: Vec<u8>,
    },
    /// A PNG for the caller to decode (formats the raw path does not
    /// take).
    Png(Vec<u8>),
}

/// A HEIF or AVIF picture's primary image, from libheif: as raw YCbCr
/// (Y4M) made RGB here by the picture's own matrix and range (its `nclx`
/// colour box; BT.601 full range, libheif's default, without one), or,
/// for a sampling the raw path does not take, as a PNG libheif makes.
/// At most `max_pixels` pixels are made.
pub(crate) fn convert(bytes: &[u8], what: &str, max_pixels: u64) -> Result<Picture, HeifError> {
    let y4m = run(bytes, what, "y4m")?;
    match yuv_to_rgb(&y4m, nclx(bytes), max_pixels)? {
        Some(p) => Ok(p),
        None => run(bytes, what, "png").map(Picture::Png),
    }
}

/// Runs the worker on `bytes`, its output of kind `ext` read back.
fn run(bytes: &[u8], what: &str, ext: &str) -> Result<Vec<u8>, HeifError> {
    let Some(w) = worker() else {
        return Err(HeifError::Unavailable(format!(
            "{what}: no decoder on this machine (install heif-convert: Debian's libheif-examples)"
        )));
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("triage-heif-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| HeifError::Failed(format!("a scratch directory for {what}: {e}")))?;
    let scratch = Scratch(dir);
    let input = scratch.0.join("in");
    let output = scratch.0.join(format!("out.{ext}"));
    let errors = scratch.0.join("stderr");
    std::fs::write(&input, bytes)
        .map_err(|e| HeifError::Failed(format!("writing {what} for its decoder: {e}")))?;
    let stderr = std::fs::File::create(&errors)
        .map_err(|e| HeifError::Failed(format!("a scratch file for {what}: {e}")))?;
    let mut cmd = match &w.prlimit {
        Some(p) => {
            let mut c = Command::new(p);
            c.arg(MEMORY_LIMIT).arg(&w.program);
            c
        }
        None => Command::new(&w.program),
    };
    // Its messages go to a file: a pipe nobody reads while it runs could
    // fill and stall it.
    cmd.arg("--quiet")
        .arg(&input)
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child = cmd
        .spawn()
        .map_err(|e| HeifError::Failed(format!("starting heif-convert: {e}")))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HeifError::Failed(format!(
                    "{what}: heif-convert did not finish in {} s: stopped",
                    TIME_LIMIT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => {
                return Err(HeifError::Failed(format!("waiting for heif-convert: {e}")));
            }
        }
    };
    let mut err = String::new();
    if let Ok(f) = std::fs::File::open(&errors) {
        let _ = f.take(4096).read_to_string(&mut err);
    }
    // More than one top-level image: heif-convert numbers them; the first
    // is the primary one in the files it writes.
    let out = [output.clone(), scratch.0.join(format!("out-1.{ext}"))]
        .into_iter()
        .find(|p| p.is_file());
    let Some(out) = out.filter(|_| status.success()) else {
        let why = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no picture written");
        return Err(HeifError::Failed(format!(
            "{what}: libheif: {}",
            why.trim()
        )));
    };
    std::fs::read(&out)
        .map_err(|e| HeifError::Failed(format!("reading heif-convert's picture: {e}")))
}

/// The picture's `nclx` colour description: (matrix coefficients, full
/// range), from the first `colr` box of type `nclx` (ISO/IEC 23091-2
/// code points).
fn nclx(bytes: &[u8]) -> Option<(u16, bool)> {
    let at = bytes.windows(8).position(|w| w == b"colrnclx")? + 8;
    let b = bytes.get(at..at + 7)?;
    Some((u16::from_be_bytes([b[4], b[5]]), b[6] & 0x80 != 0))
}

/// A Y4M file's first frame as RGB, when it is 8-bit 4:2:0, 4:4:4 or
/// monochrome (`None`: another sampling).
fn yuv_to_rgb(
    y4m: &[u8],
    nclx: Option<(u16, bool)>,
    max_pixels: u64,
) -> Result<Option<Picture>, HeifError> {
    let bad = |why: &str| HeifError::Failed(format!("heif-convert's Y4M: {why}"));
    let line_end = |from: usize| {
        y4m[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| from + i)
            .ok_or_else(|| bad("no header line"))
    };
    let head_end = line_end(0)?;
    let head = std::str::from_utf8(&y4m[..head_end]).map_err(|_| bad("header is not text"))?;
    let mut fields = head.split(' ');
    if fields.next() != Some("YUV4MPEG2") {
        return Err(bad("no YUV4MPEG2 signature"));
    }
    let (mut w, mut h, mut chroma) = (0usize, 0usize, "420");
    for f in fields {
        match f.split_at(f.len().min(1)) {
            ("W", v) => w = v.parse().map_err(|_| bad("width"))?,
            ("H", v) => h = v.parse().map_err(|_| bad("height"))?,
            ("C", v) => chroma = v,
            _ => {}
        }
    }
    let (cw, ch) = match chroma {
        "420" | "420jpeg" | "420mpeg2" | "420paldv" => (w.div_ceil(2), h.div_ceil(2)),
        "444" => (w, h),
        "mono" => (0, 0),
        _ => return Ok(None),
    };
    if w == 0 || h == 0 || (w as u64) * (h as u64) > max_pixels {
        return Err(HeifError::Failed(format!(
            "{w}x{h} is over {max_pixels} pixels"
        )));
    }
    let frame_end = line_end(head_end + 1)?;
    if !y4m[head_end + 1..].starts_with(b"FRAME") {
        return Err(bad("no FRAME"));
    }
    let planes = &y4m[frame_end + 1..];
    let (ys, cs) = (w * h, cw * ch);
    if planes.len() < ys + 2 * cs {
        return Err(bad("shorter than its size"));
    }
    let (yp, up, vp) = (
        &planes[..ys],
        &planes[ys..ys + cs],
        &planes[ys + cs..ys + 2 * cs],
    );
    let (matrix, full) = nclx.unwrap_or((6, true));
    // Kr, Kb by matrix coefficients: BT.709 (1), BT.2020 (9, 10), else
    // BT.601 (5, 6 and the unspecified 2).
    let (kr, kb) = match matrix {
        1 => (0.2126f32, 0.0722f32),
        9 | 10 => (0.2627, 0.0593),
        _ => (0.299, 0.114),
    };
    let kg = 1.0 - kr - kb;
    let (rv, gu, gv, bu) = (
        2.0 * (1.0 - kr),
        2.0 * kb * (1.0 - kb) / kg,
        2.0 * kr * (1.0 - kr) / kg,
        2.0 * (1.0 - kb),
    );
    let (ys_scale, yo, cs_scale) = if full {
        (1.0f32, 0.0f32, 1.0f32)
    } else {
        (255.0 / 219.0, 16.0, 255.0 / 224.0)
    };
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let mut pixels = vec![0u8; ys * 3];
    for row in 0..h {
        let crow = if chroma == "444" { row } else { row / 2 };
        for col in 0..w {
            let y = (yp[row * w + col] as f32 - yo) * ys_scale;
            let (u, v) = if cw == 0 {
                (0.0, 0.0)
            } else {
                let ccol = if chroma == "444" { col } else { col / 2 };
                let i = crow * cw + ccol;
                (
                    (up[i] as f32 - 128.0) * cs_scale,
                    (vp[i] as f32 - 128.0) * cs_scale,
                )
            };
            let o = (row * w + col) * 3;
            if matrix == 0 {
                // GBR: the planes are G, B, R.
                pixels[o] = clamp(v + 128.0);
                pixels[o + 1] = clamp(y);
                pixels[o + 2] = clamp(u + 128.0);
            } else {
                pixels[o] = clamp(y + rv * v);
                pixels[o + 1] = clamp(y - gu * u - gv * v);
                pixels[o + 2] = clamp(y + bu * u);
            }
        }
    }
    Ok(Some(Picture::Rgb {
        width: w,
        height: h,
        pixels,
    }))
}
