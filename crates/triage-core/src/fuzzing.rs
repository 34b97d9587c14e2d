//! Entry points for the fuzz targets in `fuzz/`, and for the regression
//! tests that replay every input the fuzzers ever found (`tests/fuzz`).
//!
//! Each function takes arbitrary bytes and must return without panicking,
//! whatever they are: errors are fine, crashes are bugs. Keeping the
//! bodies here (not in `fuzz/`) means `cargo test` runs exactly the code
//! the fuzzers ran.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hashset::import::{Format, ImportOptions, import_files};
use crate::hashset::{Index, KeyAlg};
use crate::perceptual::decode::DecodeLimits;
use crate::perceptual::{ImgHashAlg, PerceptualConfig, perceptual_hashes};
use crate::record::jsonl::{Reader, tally_line};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The targets, by name, as `fuzz/fuzz_targets/` and `fuzz/regressions/` name them.
pub const TARGETS: [(&str, Target); 10] = [
    ("hashset_import", hashset_import),
    ("tset_open", tset_open),
    ("audit_log", audit_log),
    ("image_perceptual", image_perceptual),
    ("sniff", sniff),
    ("disk_image", disk_image),
    ("image_container", image_container),
    ("md5_lanes", md5_lanes),
    ("video_probe", video_probe),
    ("expand", expand),
];

/// Multi-buffer MD5, SHA-256 and SHA-1 on every kernel this CPU runs
/// equal `md-5`, `sha2` and `sha1`, whole and streamed in pieces: the
/// first byte of each 2-byte pair gives a message length (0..=255 × a
/// scale from the second byte), the messages are cut from the rest.
pub fn md5_lanes(data: &[u8]) {
    use crate::hash::md5x::{Level, md5_many_with};
    use md5::Digest as _;
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize % 40).min(rest.len() / 2);
    let (lens, body) = rest.split_at(n * 2);
    let mut msgs = Vec::new();
    let mut at = 0usize;
    for pair in lens.chunks_exact(2) {
        let len = (pair[0] as usize * (1 + pair[1] as usize % 8)).min(body.len() - at);
        msgs.push(&body[at..at + len]);
        at = (at + len / 2).min(body.len());
    }
    let want: Vec<[u8; 16]> = msgs.iter().map(|m| md5::Md5::digest(m).into()).collect();
    // Piece lengths for the streaming path, from the same bytes.
    let cuts: Vec<usize> = data.iter().map(|&b| b as usize % 97).collect();
    for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
        if level.supported() {
            assert_eq!(md5_many_with(level, &msgs), want, "{level:?}");
            assert_eq!(
                lanes_streamed::<crate::hash::md5x::Md5>(level, &msgs, &cuts),
                want,
                "{level:?} streamed"
            );
        }
    }
    let want: Vec<[u8; 32]> = msgs
        .iter()
        .map(|m| sha2::Sha256::digest(m).into())
        .collect();
    for level in [Level::Scalar, Level::Avx512] {
        if level.supported() {
            use crate::hash::sha256x::{Sha256, sha256_many_with};
            assert_eq!(sha256_many_with(level, &msgs), want, "sha256 {level:?}");
            assert_eq!(
                lanes_streamed::<Sha256>(level, &msgs, &cuts),
                want,
                "sha256 {level:?} streamed"
            );
        }
    }
    let want: Vec<[u8; 20]> = msgs.iter().map(|m| sha1::Sha1::digest(m).into()).collect();
    for level in [Level::Scalar, Level::Avx512] {
        if level.supported() {
            use crate::hash::sha1x::{Sha1, sha1_many_with};
            assert_eq!(sha1_many_with(level, &msgs), want, "sha1 {level:?}");
            assert_eq!(
                lanes_streamed::<Sha1>(level, &msgs, &cuts),
                want,
                "sha1 {level:?} streamed"
            );
        }
    }
}

/// Every message through [`crate::hash::lanes::Lanes`] of kernel `K` in
/// pieces whose lengths cycle through `cuts` (0 = an empty piece), lanes
/// refilled and finished as the scan's lane groups do: the streaming
/// path's check.
pub fn lanes_streamed<K: crate::hash::lanes::Kernel>(
    level: crate::hash::lanes::Level,
    msgs: &[&[u8]],
    cuts: &[usize],
) -> Vec<K::Digest> {
    use crate::hash::lanes::{Lanes, MAX_LANES};
    let mut lanes = Lanes::<K>::new(level);
    let width = lanes.lanes();
    let mut out: Vec<Option<K::Digest>> = vec![None; msgs.len()];
    let mut owner = [usize::MAX; MAX_LANES];
    let mut pos = [0usize; MAX_LANES];
    let mut inputs: [&[u8]; MAX_LANES] = [&[]; MAX_LANES];
    let (mut next, mut k) = (0, 0);
    let mut cut = || {
        k += 1;
        cuts.get(k % cuts.len().max(1)).copied().unwrap_or(64)
    };
    loop {
        for i in 0..width {
            if owner[i] == usize::MAX && next < msgs.len() {
                lanes.start(i);
                owner[i] = next;
                pos[i] = 0;
                next += 1;
            }
        }
        // Dry lanes (and new ones) get their next piece; the end of a
        // message finishes it.
        let ev = lanes.run(&mut inputs[..width]);
        if ev.is_empty() && lanes.busy() == 0 {
            return out.into_iter().flatten().collect();
        }
        for i in 0..width {
            if ev.done & (1 << i) != 0 {
                out[owner[i]] = Some(lanes.take(i));
                owner[i] = usize::MAX;
            } else if ev.dry & (1 << i) != 0 {
                let m = msgs[owner[i]];
                if pos[i] == m.len() {
                    lanes.finish(i);
                } else {
                    let n = cut().min(m.len() - pos[i]);
                    inputs[i] = &m[pos[i]..pos[i] + n];
                    pos[i] += n;
                }
            }
        }
    }
}

/// Bytes read from any one item at most by the disk targets: enough to
/// cross every structure, little enough that a hostile size costs nothing.
const ITEM_READ_MAX: u64 = 1 << 20;

/// Reads up to `ITEM_READ_MAX` bytes of `src`, discarding them.
fn drain(src: &dyn crate::source::Source, size: u64) {
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = 0u64;
    while pos < size.min(ITEM_READ_MAX) {
        match src.read_at(&mut buf, pos) {
            Ok(0) | Err(_) => break,
            Ok(n) => pos += n as u64,
        }
    }
}

/// The bytes as a raw disk: partition table, every file system on it,
/// every directory walked, every file opened and read (a bounded part).
pub fn disk_image(data: &[u8]) {
    use crate::source::{ItemRef, Next, Tree};
    let img = crate::source::image::Image {
        format: "raw",
        size: data.len() as u64,
        media: std::sync::Arc::new(crate::source::tree::MemSource(data.to_vec())),
        segments: Vec::new(),
        metadata: Vec::new(),
        stored_digests: Vec::new(),
        notes: Vec::new(),
    };
    let Ok(tree) = crate::source::disk::DiskTree::new(PathBuf::from("fuzz.img"), img) else {
        return;
    };
    let _ = tree.image();
    let mut walk = tree.walk();
    // A hostile tree can be wide: bound the items looked at.
    for _ in 0..20_000 {
        let Some(w) = walk.next() else { break };
        if matches!(w.next, Next::Read)
            && let Ok((src, meta)) = tree.open(ItemRef::of(&w), None)
        {
            drain(&*src, meta.size);
        }
    }
}

/// The bytes as a container (the first byte picks zip, tar or gzip; the
/// rest is the container): every member listed and read to a small
/// budget, and members that are containers looked inside, two levels.
pub fn expand(data: &[u8]) {
    use crate::expand::{Body, Budget, Kind, Limits};
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        member_bytes: 1 << 20,
        item_bytes: 8 << 20,
        scan_bytes: 8 << 20,
        members: 2_000,
        ratio: 0,
        in_memory: 1 << 20,
    };
    let budget = Budget::new(&limits, Budget::scan_total(&limits));
    fn walk(kind: Kind, src: &dyn crate::source::Source, size: u64, depth: u32, budget: &Budget) {
        let path = crate::path::RawPath::from_bytes(b"fuzz.bin".to_vec());
        let Ok(members) = crate::expand::members(kind, src, size, &path, budget) else {
            return;
        };
        for m in members.take(2_000) {
            let Ok(m) = m else { break };
            let Body::Read { src, .. } = m.body else {
                continue;
            };
            // Read as the scan reads: from the start, in order, to the end.
            let mut bytes = Vec::new();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match src.read_at(&mut buf, bytes.len() as u64) {
                    Ok(0) | Err(_) => break,
                    Ok(n) if bytes.len() + n <= 1 << 20 => bytes.extend_from_slice(&buf[..n]),
                    Ok(_) => break,
                }
            }
            let inner = Kind::of(crate::identify::sniff(&bytes, bytes.len() as u64));
            if let (Some(inner), true) = (inner, depth < 2) {
                let n = bytes.len() as u64;
                walk(
                    inner,
                    &crate::source::tree::MemSource(bytes),
                    n,
                    depth + 1,
                    budget,
                );
            }
        }
    }
    let kind = Kind::ALL[pick as usize % Kind::ALL.len()];
    let src = crate::source::tree::MemSource(body.to_vec());
    walk(kind, &src, body.len() as u64, 0, &budget);
}

/// The bytes as an image file of any container (EWF, QCOW2, VHD, VMDK,
/// raw): opened, and its medium read (a bounded part, from the start and
/// from the end).
pub fn image_container(data: &[u8]) {
    let scratch = Scratch::new();
    let path = scratch.0.join("image");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(Some(img)) = crate::source::image::open(&path) {
        drain(&*img.media, img.size);
        let mut tail = vec![0u8; 4096];
        let _ = img.media.read_at(&mut tail, img.size.saturating_sub(4096));
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A scratch directory of this process, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("triage-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A hash list in any format: the first byte picks a format to force (or
/// detection), the rest is the file. An index that is written must open,
/// verify and answer lookups.
pub fn hashset_import(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let scratch = Scratch::new();
    let list = scratch.0.join("list");
    let out = scratch.0.join("out.tset");
    if std::fs::write(&list, body).is_err() {
        return;
    }
    let mut opts = ImportOptions::new("fuzz");
    // 0–7 the first eight formats, 12 and 13 the vPDQ ones, the rest
    // detection (the encoding the committed seeds were made with).
    opts.format = match pick % 16 {
        p @ 0..=7 => Format::ALL.get(p as usize).copied(),
        12 => Some(Format::Vpdq),
        13 => Some(Format::VpdqJson),
        _ => None,
    };
    opts.memory_budget = 1 << 20;
    // The expects are the fuzzer's assertions: a panic is what it reports.
    #[allow(clippy::expect_used)]
    if import_files(&[list], &opts, &out, &mut |_| {}).is_ok() {
        let index = Index::open(&out).expect("an index we just wrote opens");
        index.verify().expect("an index we just wrote verifies");
        for alg in KeyAlg::ALL {
            let _ = index.lookup(alg, &vec![0u8; alg.width()]);
        }
    }
}

/// Arbitrary bytes as a `.tset` index: opening fails or gives an index
/// whose lookups, near searches and verification do not panic.
pub fn tset_open(data: &[u8]) {
    let scratch = Scratch::new();
    let path = scratch.0.join("x.tset");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(index) = Index::open(&path) {
        let _ = index.verify();
        for alg in KeyAlg::ALL {
            let key: Vec<u8> = data.iter().copied().cycle().take(alg.width()).collect();
            let _ = index.lookup(alg, &key);
            if alg.is_perceptual() {
                let _ = index.near(alg, &key, 40);
            }
        }
    }
}

/// Arbitrary bytes as an audit log: verified, read record by record, and
/// counted line by line.
pub fn audit_log(data: &[u8]) {
    let _ = crate::verify::check_log(data, None);
    for line in Reader::new(data) {
        let _ = line;
    }
    let mut tally = crate::Summary::default();
    for line in data.split(|&b| b == b'\n') {
        let _ = tally_line(line, &mut tally);
    }
}

/// Arbitrary bytes as an image: every perceptual hash, dihedral and all
/// frames, under limits small enough to keep each run fast.
pub fn image_perceptual(data: &[u8]) {
    let config = PerceptualConfig {
        pdq: true,
        dihedral: true,
        all_frames: true,
        img_hashes: ImgHashAlg::ALL.to_vec(),
        limits: DecodeLimits {
            max_dimension: 4096,
            max_pixels: 4 << 20,
            max_alloc: 64 << 20,
        },
        ..PerceptualConfig::default()
    };
    let _ = perceptual_hashes(data, &config);
}

/// Arbitrary bytes through the content sniffer and the extension check.
pub fn sniff(data: &[u8]) {
    let t = crate::identify::sniff(data, data.len() as u64);
    let ext = data.iter().position(|&b| b == b'.').map(|i| &data[i + 1..]);
    let _ = t.ext_mismatch(ext);
}

/// A video as the worker sees it: an even first byte makes the rest
/// ffprobe's JSON answer (parsed as the prober parses it); an odd one makes
/// it the video's bytes, given to the real FFmpeg worker (as an MP4 when
/// bit 1 is clear, else as Matroska) under a 2-second timeout per run
/// (probe and decode: well inside libFuzzer's 10-second limit) and 50
/// frames. FFmpeg's own crashes are the worker's to survive, never ours;
/// without FFmpeg the second half does nothing.
pub fn video_probe(data: &[u8]) {
    use crate::identify::FileType;
    use crate::perceptual::ffmpeg::Decoder;
    use crate::perceptual::video::{VideoConfig, hash_video};
    static DECODER: std::sync::OnceLock<Option<Decoder>> = std::sync::OnceLock::new();
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    if pick & 1 == 0 {
        let _ = crate::perceptual::video::parse_probe(body);
        return;
    }
    let Some(decoder) = DECODER.get_or_init(|| Decoder::find().ok()) else {
        return;
    };
    let t = if pick & 2 == 0 {
        FileType::Mp4
    } else {
        FileType::Mkv
    };
    let config = VideoConfig {
        interval_ms: 0,
        timeout: Some(std::time::Duration::from_secs(2)),
        max_frames: 50,
        ..VideoConfig::default()
    };
    let src = crate::source::tree::MemSource(body.to_vec());
    let _ = hash_video(
        decoder,
        &src,
        body.len() as u64,
        t,
        &config,
        1 << 22,
        2,
        &|| false,
    );
}
