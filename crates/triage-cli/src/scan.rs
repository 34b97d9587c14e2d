//! `triage scan`: the audit log of a scan, and `--resume` of an unfinished one.
//!
//! Parses the flags into a `ScanConfig` and the header's case details,
//! opens the log (and the other outputs), runs the library's scan into
//! them, and maps the outcome to an exit code. With `--resume`, everything
//! comes from the unfinished log's header instead, after its prefix verifies.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result};
use triage_core::matching::{MatchConfig, Matcher, PDQ_DISTANCE_WARN};
use triage_core::record::jsonl;
use triage_core::record::output::{self, AtomicFile, OutputError};
use triage_core::record::provenance::{BuildInfo, CaseInfo, HostInfo, new_run_id};
use triage_core::record::seal::SigningKey;
use triage_core::record::{
    Checkpoints, DigestingWriter, OutputFile, OutputFormat, RecordWriter, Resume, ScanHeader,
    hashdeep,
};
use triage_core::resume::ResumeError;
use triage_core::time::Timestamp;
use triage_core::{AlgorithmSet, RawPath, ScanConfig, ScanError, Scanner, Summary};

use crate::exit::Exit;
use crate::{damaged, hashset, perceptual_config, progress, signals, usage};

#[derive(clap::Args)]
pub struct ScanArgs {
    /// Evidence root: a mounted directory, a single file, or a disk image
    /// (E01, raw or split raw, QCOW2, VHD, VMDK: recognised by content),
    /// read through its partitions and file systems, deleted files included.
    #[arg(required_unless_present = "resume")]
    root: Option<PathBuf>,

    /// Hash a disk image given as the root as one file, instead of reading
    /// its partitions and file systems.
    #[arg(long)]
    image_as_file: bool,

    /// Do not read the image's files whole for their SHA-256 (recorded in
    /// the summary by default): saves one sequential read of the image and
    /// about a fifth of a 2-core machine's time on a raw image.
    #[arg(long)]
    no_image_file_hashes: bool,

    /// Also read a disk image's medium in order, beside the scan, for its
    /// MD5 and SHA-1, and compare them with the digests stored at
    /// acquisition (as `triage verify-image` does); recorded in the
    /// summary's `image_verification`. A mismatch or an unreadable range
    /// makes the exit code report failures.
    #[arg(long)]
    verify_image: bool,

    /// Write the audit log here instead of stdout. Refused if it exists
    /// (see --force) or lies inside the evidence root.
    #[arg(short, long, value_name = "LOG")]
    output: Option<PathBuf>,

    /// Case number or reference (recorded in the log's header).
    #[arg(long = "case", value_name = "ID", help_heading = "Case")]
    case_id: Option<String>,

    /// Exhibit / evidence item identifier.
    #[arg(long, value_name = "ID", help_heading = "Case")]
    evidence_id: Option<String>,

    /// Examiner name (and id).
    #[arg(long, value_name = "NAME", help_heading = "Case")]
    examiner: Option<String>,

    /// The examiner's agency or unit.
    #[arg(long, value_name = "NAME", help_heading = "Case")]
    agency: Option<String>,

    /// Free-text notes for the log's header.
    #[arg(long, value_name = "TEXT", help_heading = "Case")]
    notes: Option<String>,

    /// Run without case details (a test or a trial run). Without it, a scan
    /// needs --case and --examiner.
    #[arg(long, conflicts_with_all = ["case_id", "examiner", "evidence_id", "agency"], help_heading = "Case")]
    no_case: bool,

    /// Sign checkpoints and the footer with this Ed25519 private key (PEM,
    /// from `triage keygen`); the header names its fingerprint.
    #[arg(long, value_name = "KEY", help_heading = "Audit log")]
    sign_key: Option<PathBuf>,

    /// Write a checkpoint (sealed, synced to disk) every N entries (0: never by count).
    #[arg(long, value_name = "N", default_value_t = Checkpoints::default().every_entries, help_heading = "Audit log")]
    checkpoint_every: u64,

    /// ... and at least every S seconds (0: never by time).
    #[arg(long, value_name = "S", default_value_t = Checkpoints::default().every_secs, help_heading = "Audit log")]
    checkpoint_secs: u64,

    /// Continue the unfinished scan whose log is LOG (killed or
    /// interrupted): its prefix is verified, files it recorded are not read
    /// again, and the same chain goes on. Options come from its header.
    #[arg(long, value_name = "LOG", conflicts_with_all = ["root", "output", "case_id", "no_case", "csv", "hashdeep", "hash", "hashsets", "perceptual", "dihedral", "all_frames", "fast_decode", "no_video", "video_seconds_per_hash", "video_prune", "video_timeout", "video_memory", "video_max_frames", "one_file_system", "no_link_targets", "image_as_file", "no_image_file_hashes", "verify_image", "expand", "max_depth", "max_member_bytes", "max_expand_bytes", "max_members", "max_ratio"], help_heading = "Audit log")]
    resume: Option<PathBuf>,

    /// Also write the records as CSV to FILE ('-': stdout, when the log
    /// goes to a file). Its SHA-256 is recorded in the log's footer.
    #[arg(long, value_name = "FILE", help_heading = "Other outputs")]
    csv: Option<PathBuf>,

    /// Also write HASHDEEP-1.0 (for `hashdeep -k`; MD5/SHA-1/SHA-256) to FILE ('-': stdout).
    #[arg(long, value_name = "FILE", help_heading = "Other outputs")]
    hashdeep: Option<PathBuf>,

    /// Digests to compute, comma-separated: md5, sha1, sha256, blake3.
    #[arg(
        long = "hash",
        value_name = "LIST",
        default_value = "md5,sha1,sha256,blake3"
    )]
    hash: String,

    /// Match every file against this hash-set index (.tset from `triage
    /// hashset import`); repeat for several. Algorithms a set needs are
    /// added to --hash and --perceptual.
    #[arg(long = "hashset", value_name = "TSET")]
    hashsets: Vec<PathBuf>,

    /// Largest PDQ Hamming distance (of 256 bits) that counts as a match.
    #[arg(long, value_name = "BITS", default_value_t = 31)]
    pdq_distance: u32,

    /// PDQ hashes of lower quality are not near-matched (reported per file).
    #[arg(long, value_name = "Q", default_value_t = 50)]
    pdq_min_quality: u8,

    /// Largest pHash/dHash/aHash distance (of 64 bits) that counts as a match.
    #[arg(long, value_name = "BITS", default_value_t = 6)]
    img_distance: u32,

    /// Largest PDQ distance at which two video frames match (vPDQ;
    /// counted `<=`, as vPDQ's README and HMA do).
    #[arg(
        long,
        value_name = "BITS",
        default_value_t = 31,
        help_heading = "Videos"
    )]
    video_distance: u32,

    /// Scanned video frames of lower PDQ quality are not matched.
    #[arg(long, value_name = "Q", default_value_t = 50, help_heading = "Videos")]
    video_min_quality: u8,

    /// A video matches a known video when at least this percentage of the
    /// known video's unique frames is matched.
    #[arg(
        long,
        value_name = "PCT",
        default_value_t = 80,
        help_heading = "Videos"
    )]
    video_known_percent: u8,

    /// … and at least this percentage of the scanned video's own unique
    /// frames (0: a known clip inside a longer video matches).
    #[arg(long, value_name = "PCT", default_value_t = 0, help_heading = "Videos")]
    video_query_percent: u8,

    /// Do not enter directories on other file systems (recorded as skipped).
    #[arg(short = 'x', long)]
    one_file_system: bool,

    /// Perceptual hashes for images, comma-separated: pdq, phash, dhash,
    /// ahash, or none. Only PDQ is interoperable with other tools' lists.
    #[arg(long, value_name = "LIST", default_value = "pdq")]
    perceptual: String,

    /// Also record the 8 dihedral PDQ hashes (rotated and mirrored copies).
    #[arg(long)]
    dihedral: bool,

    /// PDQ every distinct frame of animated GIF/WebP files (up to 1,000),
    /// not only the first.
    #[arg(long)]
    all_frames: bool,

    /// Decode large JPEGs at 1/2, 1/4 or 1/8 scale (to at least 512 px):
    /// several times faster, but PDQ moves by several bits, so the hashes
    /// are approximate (recorded as image.decoded_scale). Never the default.
    #[arg(long)]
    fast_decode: bool,

    /// Do not hash videos' frames (vPDQ); their digests are still computed.
    #[arg(long, help_heading = "Videos")]
    no_video: bool,

    /// vPDQ's seconds per hash: hash the frame every this many seconds of
    /// video (by frame number from the average frame rate, as the
    /// reference does); 0 hashes every frame.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 1.0,
        help_heading = "Videos"
    )]
    video_seconds_per_hash: f64,

    /// Drop a video frame whose PDQ is within this distance of the last
    /// frame kept (vPDQ's pruning); off by default.
    #[arg(long, value_name = "BITS", help_heading = "Videos")]
    video_prune: Option<u32>,

    /// Kill a video's decoder after this many seconds (default: 120 s plus
    /// 2 s per MB of video); the video is recorded as timed out.
    #[arg(long, value_name = "SECS", help_heading = "Videos")]
    video_timeout: Option<u64>,

    /// Address-space limit of each video's decoder, MiB (a video decoded
    /// in pieces runs one decoder a piece).
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = 2048,
        help_heading = "Videos"
    )]
    video_memory: u64,

    /// Hash at most this many frames of a video; the rest are not decoded
    /// and the record says so (`truncated`).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        help_heading = "Videos"
    )]
    video_max_frames: u64,

    /// Look inside these containers, comma-separated (zip, tar, gzip, bzip2, xz, zstd, exif, pdf, thumbcache, thumbsdb, carve, 7z, heif), or
    /// all, or none: each member is hashed, typed, perceptually hashed and
    /// matched like a file, and recorded after its container (`within`).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "all",
        help_heading = "Inside files"
    )]
    expand: String,

    /// Nesting levels looked inside at most (a zip's members are level 1).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        help_heading = "Inside files"
    )]
    max_depth: u32,

    /// Bytes one member may decompress to; more fails that member.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 30, help_heading = "Inside files")]
    max_member_bytes: u64,

    /// Bytes all members of one file may decompress to.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 30, help_heading = "Inside files")]
    max_expand_bytes: u64,

    /// Members listed per container at most.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        help_heading = "Inside files"
    )]
    max_members: u64,

    /// Decompressed bytes per compressed byte a member may reach past its
    /// first MiB; more fails it [default: 0, no limit: deflate stays under
    /// ~1,032 to 1, and the byte limits bound a bomb's work].
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true,
        help_heading = "Inside files"
    )]
    max_ratio: u64,

    /// Hashing threads [default: number of CPUs].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Files read at once [default: 1 on a spinning disk, 4 per thread otherwise].
    /// Detection is unreliable behind USB bridges: set it for those.
    #[arg(long, value_name = "N")]
    readers: Option<usize>,

    /// Do not read symlink targets. On a read-write mount, reading a link's
    /// target updates the link's own access time (the kernel has no way
    /// around it); mount evidence read-only, or use this.
    #[arg(long)]
    no_link_targets: bool,

    /// Overwrite output files that exist.
    #[arg(long)]
    force: bool,

    /// No progress, no device line, no summary on stderr (errors still print).
    #[arg(short, long)]
    quiet: bool,

    /// Draw the progress bar even when stderr is not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    progress: bool,
}

/// Where an output goes: stdout; the log's file, appended and synced as it
/// goes; or a side output's `.partial` file, renamed over its target once
/// whole (nothing partial is left at the target).
enum Out {
    Stdout(io::Stdout),
    Log(File),
    Whole(AtomicFile),
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Stdout(s) => s.write(buf),
            Out::Log(f) => f.write(buf),
            Out::Whole(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Stdout(s) => s.flush(),
            Out::Log(f) => f.flush(),
            Out::Whole(f) => f.flush(),
        }
    }
}

/// Makes the log durable at a checkpoint. A FIFO or a device (`-o
/// /dev/null`) cannot be synced (EINVAL): there is nothing to make durable.
fn sync(out: &Out) -> io::Result<()> {
    match out {
        Out::Log(f) => match f.sync_data() {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            r => r,
        },
        Out::Stdout(_) | Out::Whole(_) => Ok(()),
    }
}

/// One of the other outputs (`--csv`, `--hashdeep`), digested as written.
struct Extra {
    format: OutputFormat,
    name: &'static str,
    path: PathBuf,
    out: DigestingWriter<Out>,
}

/// An output's write error, naming the output (the log, or `--csv FILE`).
pub(crate) fn named(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("cannot write {what}: {e}"))
}

pub fn scan(args: ScanArgs) -> Result<Exit> {
    // Before anything is written to a log (a resume appends its `resume`
    // record before the scan starts): a SIGINT from then on asks for a
    // clean stop, never kills the process mid-record.
    signals::install();
    if let Some(log) = args.resume.clone() {
        return resume(&log, args);
    }
    let Some(root) = args.root.clone() else {
        return Err(usage("give an evidence root, or --resume LOG"));
    };
    let case = case_info(&args)?;
    let algorithms = AlgorithmSet::parse_list(&args.hash).map_err(|e| usage(e.to_string()))?;
    let mut perceptual = perceptual_config(&args.perceptual, args.dihedral)?;
    perceptual.all_frames = args.all_frames;
    perceptual.fast_decode = args.fast_decode;
    perceptual.video = video_config(&args)?;
    let matcher = open_hashsets(&args)?;
    let key = read_signing_key(args.sign_key.as_deref())?;
    let config = ScanConfig {
        root: root.clone(),
        algorithms,
        one_file_system: args.one_file_system,
        threads: args.threads,
        readers: args.readers,
        perceptual,
        no_link_targets: args.no_link_targets,
        count_totals: progress::wanted(args.progress, args.quiet),
        image_as_file: args.image_as_file,
        hash_image_files: !args.no_image_file_hashes,
        verify_image: args.verify_image,
        matcher,
        expand: triage_core::expand::ExpandConfig {
            kinds: triage_core::expand::ExpandConfig::parse_kinds(&args.expand).map_err(usage)?,
            max_depth: args.max_depth,
            limits: triage_core::expand::Limits {
                member_bytes: args.max_member_bytes,
                item_bytes: args.max_expand_bytes,
                members: args.max_members,
                ratio: args.max_ratio,
                ..Default::default()
            },
        },
        ..ScanConfig::new(&root)
    };
    let scanner = new_scanner(config)?;
    if args.hashdeep.is_some()
        && !hashdeep::SUPPORTED
            .iter()
            .any(|a| scanner.header().algorithms.contains(*a))
    {
        return Err(usage(
            "--hashdeep can only carry md5, sha1 and sha256: add one, e.g. --hash md5,sha1,sha256,blake3",
        ));
    }
    describe_sets(&scanner, args.quiet);
    let stdout_users = [
        args.output.is_none(),
        is_stdout(&args.csv),
        is_stdout(&args.hashdeep),
    ];
    if stdout_users.iter().filter(|u| **u).count() > 1 {
        return Err(usage(
            "only one output can go to stdout: give the log a file with -o",
        ));
    }
    let mut extras = Vec::new();
    for (path, format, name) in [
        (&args.csv, OutputFormat::Csv, "csv"),
        (&args.hashdeep, OutputFormat::Hashdeep, "hashdeep"),
    ] {
        if let Some(path) = path {
            if args.output.as_deref() == Some(path.as_path()) {
                return Err(usage(format!(
                    "--{name} and -o are both '{}'",
                    path.display()
                )));
            }
            let out = if is_stdout(&Some(path.clone())) {
                Out::Stdout(io::stdout())
            } else {
                refuse_inside_evidence(path, scanner.root())?;
                Out::Whole(AtomicFile::create(path, args.force).map_err(output_error)?)
            };
            extras.push(Extra {
                format,
                name,
                path: path.clone(),
                out: DigestingWriter::new(out),
            });
        }
    }
    // The log last: a refusal of a side output leaves no log behind.
    let log = match &args.output {
        Some(path) => {
            refuse_inside_evidence(path, scanner.root())?;
            Out::Log(output::create_log(path, args.force).map_err(output_error)?)
        }
        None => Out::Stdout(io::stdout()),
    };
    let mut header = scanner.header();
    header.case = case;
    header.command_line = command_line();
    header.checkpoints = Checkpoints {
        every_entries: args.checkpoint_every,
        every_secs: args.checkpoint_secs,
    };
    header.signing_key = key.as_ref().map(SigningKey::public);
    header.outputs = extras
        .iter()
        .map(|e| OutputFile {
            format: e.name.to_string(),
            path: e.path.clone(),
            bytes: None,
            sha256: None,
        })
        .collect();
    let mut writer = jsonl::Writer::new(log)
        .with_sync(sync)
        .with_checkpoints(header.checkpoints);
    if let Some(key) = key {
        writer = writer.with_key(key);
    }
    run_scan(scanner, header, writer, extras, &args, None)
}

/// Runs the scan into the log and the other outputs, and writes the footer.
/// `resumed` is the header of the log being continued (its header is
/// already written).
/// What the disk image is and what will be read in it, on stderr.
fn describe_image(img: &triage_core::item::ImageInfo) {
    let mb = |b: u64| b as f64 / 1e6;
    eprintln!(
        "triage: image: {} ({} file{}), medium of {} bytes ({:.1} MB), partition table: {}",
        img.format,
        img.segments.len(),
        if img.segments.len() == 1 { "" } else { "s" },
        img.size,
        mb(img.size),
        img.partition_table
    );
    for (k, v) in &img.metadata {
        eprintln!("triage: image: {k}: {v}");
    }
    for (alg, hex) in &img.stored_digests {
        eprintln!(
            "triage: image: {alg} stored at acquisition: {hex} (check it with `triage verify-image`)"
        );
    }
    for v in &img.volumes {
        let name = v
            .partition
            .map_or_else(|| "the medium".to_string(), |p| format!("partition {p}"));
        let what = match (&v.fs, &v.error) {
            (Some(fs), _) if triage_core::item::recovers_deleted(fs) => {
                format!("{fs}, read with its deleted files")
            }
            (Some(fs), _) => format!("{fs}, read (deleted files are not recovered on {fs})"),
            (None, Some(e)) => format!("not readable ({e}): hashed as one item"),
            (None, None) => "no file system triage reads: hashed as one item".to_string(),
        };
        eprintln!(
            "triage: image: {name} at byte {} ({:.1} MB{}): {what}",
            v.offset,
            mb(v.length),
            v.type_id
                .as_ref()
                .map_or(String::new(), |t| format!(", type {t}"))
        );
    }
    let gap: u64 = img.gaps.iter().map(|g| g.length).sum();
    if gap > 0 {
        eprintln!(
            "triage: image: {gap} bytes in {} range(s) outside every partition (recorded in the log's header)",
            img.gaps.len()
        );
    }
    for n in &img.notes {
        eprintln!("triage: image: note: {n}");
    }
}

fn run_scan(
    scanner: Scanner,
    header: ScanHeader,
    mut log: jsonl::Writer<Out>,
    mut extras: Vec<Extra>,
    args: &ScanArgs,
    resumed: Option<&ScanHeader>,
) -> Result<Exit> {
    let show_progress = progress::wanted(args.progress, args.quiet);
    if !args.quiet {
        eprintln!("triage: {}", scanner.policy().describe());
        if let Some(img) = &header.image {
            describe_image(img);
        } else if header.read_only_mount == Some(false) {
            eprintln!(
                "triage: warning: the evidence is on a read-write mount. Files and directories are \
                 opened without updating access times, but {}; mount it read-only to rule out any change.",
                if header.link_targets {
                    "reading symlink targets updates the links' own access times (--no-link-targets avoids it)"
                } else {
                    "the kernel or a FUSE layer may still write"
                }
            );
        }
    }

    let cancel = scanner.cancel_handle();
    // The watcher forwards SIGINT/SIGTERM to the scan and draws progress. It
    // waits on a channel, not a sleep, so the scan's end wakes it at once.
    let (done, done_rx) = mpsc::channel::<()>();
    let watcher = {
        let progress = scanner.progress();
        std::thread::spawn(move || {
            let tick = || {
                if signals::stop_requested() {
                    cancel.cancel();
                }
            };
            if show_progress {
                progress::draw(progress, done_rx, tick);
            } else {
                while let Err(RecvTimeoutError::Timeout) =
                    done_rx.recv_timeout(Duration::from_millis(50))
                {
                    tick();
                }
            }
        })
    };

    let root = scanner.root().to_path_buf();
    let (set_count, set_entries) = (scanner.matcher().sets().len(), scanner.matcher().entries());
    let log_name = match args.output.as_ref().or(args.resume.as_ref()) {
        Some(p) => format!("the audit log '{}'", p.display()),
        None => "the audit log to stdout".to_string(),
    };
    let names: Vec<String> = extras
        .iter()
        .map(|e| format!("--{} '{}'", e.name, e.path.display()))
        .collect();
    let result = {
        let mut writers: Vec<Box<dyn RecordWriter + '_>> = extras
            .iter_mut()
            .map(|e| e.format.writer(&mut e.out, &root))
            .collect();
        let each = |writers: &mut Vec<Box<dyn RecordWriter + '_>>,
                    f: &mut dyn FnMut(&mut dyn RecordWriter) -> io::Result<()>| {
            writers
                .iter_mut()
                .zip(&names)
                .try_for_each(|(w, n)| f(w.as_mut()).map_err(|e| named(e, n)))
        };
        let started = if resumed.is_none() {
            log.header(&header)
                .map_err(|e| named(e, &log_name))
                .and_then(|()| each(&mut writers, &mut |w| w.header(&header)))
                .map_err(ScanError::Sink)
        } else {
            Ok(())
        };
        started
            .and_then(|()| {
                scanner.run(|e| {
                    log.entry(&e).map_err(|x| named(x, &log_name))?;
                    each(&mut writers, &mut |w| w.entry(&e))
                })
            })
            .and_then(|s| {
                each(&mut writers, &mut |w| w.summary(&s))
                    .map(|()| s)
                    .map_err(ScanError::Sink)
            })
    };
    drop(done);
    let _ = watcher.join();

    let mut summary = match result {
        Ok(s) => s,
        Err(ScanError::Sink(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            // The reader of our output went away (`| head`): not an error.
            return Ok(Exit::Clean);
        }
        Err(ScanError::Sink(e)) => {
            // Already names the output that failed.
            return Err(anyhow::anyhow!("{e}").context(
                "the scan did not finish (the log is a verifiable prefix: `triage scan --resume` finishes it)",
            ));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context("the scan did not finish"));
        }
    };
    for e in extras {
        let what = format!("--{} '{}'", e.name, e.path.display());
        let (out, bytes, sha256) = e.out.finish().map_err(|x| named(x, &what))?;
        if let Out::Whole(f) = out {
            f.commit().map_err(output_error)?;
        }
        summary.outputs.push(OutputFile {
            format: e.name.to_string(),
            path: e.path,
            bytes: Some(bytes),
            sha256: Some(sha256),
        });
    }
    if let Some(h) = resumed {
        summary.started = Some(h.started);
    }
    match log.summary(&summary) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Exit::Clean),
        r => r.context("cannot write the log's footer")?,
    }
    let totals = &log.state().tally;
    if !args.quiet {
        let shown = Summary {
            directories: summary.directories,
            duration_secs: summary.duration_secs,
            ..totals.clone()
        };
        eprintln!("triage: {}", describe(&shown));
        if let Some(r) = summary.reads.as_ref().filter(|r| !r.changes.is_empty()) {
            eprintln!("triage: {}", describe_reads(r));
        }
        eprintln!(
            "triage: {}",
            describe_matching(totals.files_matched, set_count, set_entries)
        );
        for d in &summary.image_segments {
            match (&d.sha256, &d.error) {
                (Some(h), _) => eprintln!(
                    "triage: image file {}: {} bytes, SHA-256 {h}",
                    d.path, d.bytes
                ),
                (None, e) => eprintln!(
                    "triage: image file {}: no SHA-256: {}",
                    d.path,
                    e.as_deref().unwrap_or("not read")
                ),
            }
        }
        match &summary.image_verification {
            Some(v) => {
                for (alg, verdict) in &v.verdicts {
                    eprintln!(
                        "triage: image medium {alg}: {verdict} ({})",
                        v.computed.get(alg).map_or("not computed", String::as_str)
                    );
                }
                for r in &v.unreadable {
                    eprintln!(
                        "triage: image medium: bytes {}..+{} unreadable: {}",
                        r.offset, r.length, r.error
                    );
                }
            }
            None if args.verify_image && !summary.interrupted => {
                eprintln!(
                    "triage: --verify-image: the evidence is not a disk image; nothing to verify"
                )
            }
            None => {}
        }
        eprintln!(
            "triage: audit log chain head {}",
            triage_core::hash::to_hex(&log.state().prev)
        );
    }
    let media_failed = summary
        .image_verification
        .as_ref()
        .is_some_and(|v| !v.intact());
    Ok(if summary.interrupted {
        if !args.quiet {
            eprintln!(
                "triage: interrupted; the log is closed with a footer that says so (continue with --resume)"
            );
        }
        Exit::Interrupted
    } else if totals.files_matched > 0 && (totals.failed_total() > 0 || media_failed) {
        Exit::MatchesAndFailures
    } else if totals.files_matched > 0 {
        Exit::Matches
    } else if totals.failed_total() > 0 || media_failed {
        Exit::Failures
    } else {
        Exit::Clean
    })
}

/// `--resume LOG`: verify the prefix, rebuild the scan from the header,
/// skip what was recorded, continue the chain.
fn resume(path: &Path, args: ScanArgs) -> Result<Exit> {
    // Locked before it is read: a scan still writing it, or another resume,
    // makes this one refuse instead of appending a second chain.
    let file = match output::open_locked(path) {
        Ok(f) => f,
        Err(OutputError::Io { error, .. }) => {
            return Err(crate::input_error(
                error,
                &format!("the log '{}'", path.display()),
            ));
        }
        Err(e) => return Err(output_error(e)),
    };
    let mut file = file;
    let key = read_signing_key(args.sign_key.as_deref())?;
    let plan = match triage_core::resume::resume(&mut file, key.as_ref()) {
        Ok(p) => p,
        Err(ResumeError::DoesNotVerify(p)) => {
            eprintln!(
                "triage: error: '{}' does not verify: {p}; it cannot be resumed",
                path.display()
            );
            return Ok(Exit::VerifyFailed);
        }
        Err(ResumeError::Io(e)) => {
            return Err(anyhow::Error::new(e).context(format!("cannot read '{}'", path.display())));
        }
        Err(e) if e.is_integrity() => return Err(damaged(e.to_string())),
        Err(e @ (ResumeError::Finished | ResumeError::NoHeader)) => {
            return Err(usage(format!("'{}': {e}", path.display())));
        }
        Err(e) => return Err(usage(e.to_string())),
    };
    let header = plan.header.clone();
    let config = ScanConfig {
        threads: args.threads,
        readers: args.readers,
        count_totals: false,
        ..plan.config
    };
    let scanner = Scanner::new(config).map_err(|e| {
        usage(format!(
            "the evidence root of the log cannot be opened: {e} ('{}')",
            header.root.display()
        ))
    })?;
    if !header.outputs.is_empty() && !args.quiet {
        eprintln!(
            "triage: note: the other outputs of the first run ({}) stay incomplete; make them from the finished log with `triage report`",
            header
                .outputs
                .iter()
                .map(|o| o.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // Cut an incomplete last line (a write the kill interrupted), then
    // append, through the locked descriptor.
    let mut out = file;
    out.set_len(plan.verified_bytes)?;
    out.seek(io::SeekFrom::End(0))?;
    let mut log = jsonl::Writer::new(Out::Log(out))
        .with_sync(sync)
        .with_checkpoints(header.checkpoints)
        .continuing(plan.state.clone());
    if let Some(key) = key {
        log = log.with_key(key);
    }
    log.resume(&Resume {
        started: Timestamp::now(),
        entries_before: plan.state.tally.entries(),
        discarded_tail_bytes: plan.partial_tail,
        run_id: new_run_id(),
        host: HostInfo::current(),
        build: BuildInfo::current(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        command_line: command_line(),
    })
    .context("cannot append to the log")?;
    if !args.quiet {
        eprintln!(
            "triage: resuming '{}': {} entries already recorded{}",
            path.display(),
            plan.state.tally.entries(),
            if plan.partial_tail > 0 {
                format!(
                    ", {} bytes of an incomplete last line removed",
                    plan.partial_tail
                )
            } else {
                String::new()
            }
        );
    }
    run_scan(
        scanner,
        header.clone(),
        log,
        Vec::new(),
        &args,
        Some(&header),
    )
}

fn is_stdout(p: &Option<PathBuf>) -> bool {
    p.as_deref().is_some_and(|p| p.as_os_str() == "-")
}

/// The case details, or the refusal to start without them.
fn case_info(args: &ScanArgs) -> Result<Option<CaseInfo>> {
    if args.no_case {
        return Ok(None);
    }
    let nonempty = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
    match (nonempty(&args.case_id), nonempty(&args.examiner)) {
        (Some(case_id), Some(examiner)) => Ok(Some(CaseInfo {
            case_id,
            evidence_id: nonempty(&args.evidence_id),
            examiner,
            agency: nonempty(&args.agency),
            notes: nonempty(&args.notes),
        })),
        _ => Err(usage(
            "the audit log needs the case and the examiner: give --case ID --examiner NAME \
             (and --evidence-id, --agency), or --no-case for a run outside a case",
        )),
    }
}

fn read_signing_key(path: Option<&Path>) -> Result<Option<SigningKey>> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::input_error(e, &format!("the signing key '{}'", path.display())))?;
    SigningKey::from_pem(&text).map(Some).map_err(|e| {
        usage(format!(
            "'{}': {e} (make one with `triage keygen`)",
            path.display()
        ))
    })
}

/// The command line as run, each argument losslessly escaped.
pub fn command_line() -> Vec<String> {
    std::env::args_os()
        .map(|a| RawPath::from_path(Path::new(&a)).to_string())
        .collect()
}

/// The video options, checked.
fn video_config(args: &ScanArgs) -> Result<triage_core::perceptual::video::VideoConfig> {
    let s = args.video_seconds_per_hash;
    if !(0.0..=3600.0).contains(&s) {
        return Err(usage(format!(
            "--video-seconds-per-hash {s} is out of range: give 0 (every frame) to 3600"
        )));
    }
    if args.video_prune.is_some_and(|d| d > 128) {
        return Err(usage(
            "--video-prune is a PDQ distance: at most 128 of 256 bits",
        ));
    }
    if args.video_memory < 64 {
        return Err(usage(
            "--video-memory under 64 MiB leaves FFmpeg unable to start",
        ));
    }
    if args.video_timeout == Some(0) {
        return Err(usage("--video-timeout must be at least 1 second"));
    }
    if args.video_max_frames == 0 {
        return Err(usage(
            "--video-max-frames must be at least 1 (--no-video hashes none)",
        ));
    }
    Ok(triage_core::perceptual::video::VideoConfig {
        enabled: !args.no_video,
        interval_ms: (s * 1000.0).round() as u32,
        prune_distance: args.video_prune,
        timeout: args.video_timeout.map(std::time::Duration::from_secs),
        max_memory: args.video_memory << 20,
        max_frames: args.video_max_frames,
    })
}

/// Opens the `--hashset` indexes into a matcher. The scanner verifies
/// each in full and adds what they need to what it computes.
fn open_hashsets(args: &ScanArgs) -> Result<Matcher> {
    let mut sets = Vec::new();
    for path in &args.hashsets {
        let set = hashset::open(path).context("nothing was scanned")?;
        sets.push(Arc::new(set));
    }
    let config = MatchConfig {
        pdq_distance: args.pdq_distance,
        pdq_min_quality: args.pdq_min_quality,
        img_distance: args.img_distance,
        video_distance: args.video_distance,
        video_min_quality: args.video_min_quality,
        video_known_percent: args.video_known_percent,
        video_query_percent: args.video_query_percent,
    };
    let matcher = Matcher::new(sets, config).map_err(|e| usage(e.to_string()))?;
    if args.pdq_distance > PDQ_DISTANCE_WARN && !args.quiet {
        eprintln!(
            "triage: warning: --pdq-distance {} is above {PDQ_DISTANCE_WARN}: unrelated pictures will match; \
             31 is the usual threshold",
            args.pdq_distance
        );
    }
    Ok(matcher)
}

/// A scanner, or the exit the error calls for: an unusable root is a usage
/// error, a damaged hash set an integrity failure.
fn new_scanner(config: ScanConfig) -> Result<Scanner> {
    let root = config.root.clone();
    Scanner::new(config).map_err(|e| match e {
        ScanError::Root(_) => usage(format!("{e} ('{}')", root.display())),
        ScanError::HashSet(h) if h.is_integrity() => damaged(format!("{h}; nothing was scanned")),
        ScanError::HashSet(h) => usage(h.to_string()),
        e => e.into(),
    })
}

/// Says on stderr which sets the scan uses, what it computes for them.
fn describe_sets(scanner: &Scanner, quiet: bool) {
    if quiet {
        return;
    }
    for set in scanner.matcher().sets() {
        let m = set.meta();
        eprintln!(
            "triage: hash set '{}' ({}, {} entries, verified, blake3 {}) from '{}'",
            m.name,
            m.kind.name(),
            m.records,
            set.verified_hash().unwrap_or_default(),
            set.path().display()
        );
    }
    let added = scanner.added_for_hashsets();
    if !added.is_empty() {
        eprintln!(
            "triage: the hash sets have {} entries: computing {} too",
            added.join(", "),
            if added.len() == 1 { "it" } else { "them" }
        );
    }
}

/// Refuses an output inside the evidence root (evidence is never written
/// to), through symlinks and `..` too: the output's directory is resolved.
pub(crate) fn refuse_inside_evidence(path: &Path, root: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent_real = std::fs::canonicalize(parent)
        .with_context(|| format!("the output directory '{}' does not exist", parent.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    // The output itself may be a symlink into the evidence.
    let target_real = std::fs::canonicalize(path).ok();
    if parent_real.starts_with(&root_real) || target_real.is_some_and(|t| t.starts_with(&root_real))
    {
        return Err(usage(format!(
            "the output '{}' is inside the evidence root '{}': evidence is never written to; choose a path outside it",
            path.display(),
            root.display()
        )));
    }
    Ok(())
}

/// An output that cannot be opened: in use or existing is a usage error
/// (nothing was touched), an I/O failure is fatal.
pub(crate) fn output_error(e: OutputError) -> anyhow::Error {
    match e {
        e @ (OutputError::Exists(_) | OutputError::InUse { .. }) => usage(e.to_string()),
        e => anyhow::Error::new(e),
    }
}

/// The last word on matching, said even when nothing matched, so that an
/// examiner never reads "no matches" into a scan that had nothing to match.
fn describe_matching(matched: u64, sets: usize, entries: u64) -> String {
    if sets == 0 {
        return "no hash set given: files were hashed, not matched (add --hashset)".to_string();
    }
    format!(
        "{matched} {} matched against {sets} {} ({entries} {})",
        plural(matched, "file", "files"),
        plural(sets as u64, "set", "sets"),
        plural(entries, "entry", "entries")
    )
}

pub(crate) fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// One line: how the files read at once moved with measured throughput.
fn describe_reads(r: &triage_core::record::ReadTuning) -> String {
    let steps: Vec<String> = r
        .changes
        .iter()
        .map(|c| format!("{} at {:.1} s", c.readers, c.at_secs))
        .collect();
    let more = if r.more_changes > 0 {
        format!(" and {} more", r.more_changes)
    } else {
        String::new()
    };
    format!(
        "files read at once: {} at the start, then {}{more}; {} at the end (by measured \
         throughput; --readers N fixes it)",
        r.start,
        steps.join(", "),
        r.end
    )
}

/// One line: what was hashed, skipped and failed, how much, how fast.
fn describe(s: &Summary) -> String {
    fn breakdown(m: &std::collections::BTreeMap<String, u64>) -> String {
        if m.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = m.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!(" ({})", parts.join(", "))
    }
    let rate = if s.duration_secs > 0.0 {
        format!(
            ", {:.0} MB/s",
            s.bytes_hashed as f64 / s.duration_secs / 1e6
        )
    } else {
        String::new()
    };
    let mut matches = String::new();
    if !s.matches.is_empty() || s.files_known > 0 {
        let per_set: Vec<String> = s
            .matches
            .iter()
            .map(|(set, cats)| {
                let c: Vec<String> = cats.iter().map(|(k, v)| format!("{v} {k}")).collect();
                format!("{set}: {}", c.join(", "))
            })
            .collect();
        matches = format!(
            "; {} files MATCHED alert sets, {} only known-good [{}]",
            s.files_matched,
            s.files_known,
            per_set.join("; ")
        );
    }
    if s.near_skipped > 0 {
        matches.push_str(&format!(
            "; {} images not near-matched (PDQ quality too low)",
            s.near_skipped
        ));
    }
    // Videos only when there were any: most scans have none to mention.
    let failed_videos: u64 = s
        .video_errors
        .iter()
        .filter(|(k, _)| k.as_str() != "no_video_stream")
        .map(|(_, n)| n)
        .sum();
    let videos = if s.videos_hashed + failed_videos > 0 {
        let why: std::collections::BTreeMap<String, u64> = s
            .video_errors
            .iter()
            .filter(|(k, _)| k.as_str() != "no_video_stream")
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        format!(
            ", {} videos with frame hashes, {} videos without{}",
            s.videos_hashed,
            failed_videos,
            breakdown(&why)
        )
    } else {
        String::new()
    };
    format!(
        "{} {} hashed ({} bytes, {} empty, {} images with perceptual hashes, {} images without{}{videos}), \
         {} skipped{}, {} failed{}, {} {}, in {:.2} s{}{matches}",
        s.files_hashed,
        plural(s.files_hashed, "file", "files"),
        s.bytes_hashed,
        s.empty_files,
        s.images_hashed,
        s.image_errors.values().sum::<u64>(),
        breakdown(&s.image_errors),
        s.skipped_total(),
        breakdown(&s.skipped),
        s.failed_total(),
        breakdown(&s.failed),
        s.directories,
        plural(s.directories, "directory", "directories"),
        s.duration_secs,
        rate
    )
}
