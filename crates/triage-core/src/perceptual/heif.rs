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

/// A HEIF or AVIF picture's primary image as a PNG, from libheif (the
/// caller decodes it, within its limits).
pub(crate) fn to_png(bytes: &[u8], what: &str) -> Result<Vec<u8>, HeifError> {
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
    let output = scratch.0.join("out.png");
    std::fs::write(&input, bytes)
        .map_err(|e| HeifError::Failed(format!("writing {what} for its decoder: {e}")))?;
    let mut cmd = match &w.prlimit {
        Some(p) => {
            let mut c = Command::new(p);
            c.arg(MEMORY_LIMIT).arg(&w.program);
            c
        }
        None => Command::new(&w.program),
    };
    cmd.arg("--quiet")
        .arg(&input)
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
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
    if let Some(mut s) = child.stderr.take() {
        let _ = (&mut s).take(4096).read_to_string(&mut err);
    }
    // More than one top-level image: heif-convert numbers them; the first
    // is the primary one in the files it writes.
    let png = [output.clone(), scratch.0.join("out-1.png")]
        .into_iter()
        .find(|p| p.is_file());
    let Some(png) = png.filter(|_| status.success()) else {
        let why = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no picture written");
        return Err(HeifError::Failed(format!(
            "{what}: libheif: {}",
            why.trim()
        )));
    };
    std::fs::read(&png)
        .map_err(|e| HeifError::Failed(format!("reading heif-convert's picture: {e}")))
}
