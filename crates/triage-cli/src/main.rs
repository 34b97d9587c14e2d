//! `triage`: the command line over `triage-core`.
//!
//! This crate only parses flags into a `ScanConfig`, checks what can be
//! checked before evidence is touched, calls the library, prints to stderr,
//! and maps the outcome to an [`exit::Exit`] code. Every record comes from
//! `triage-core`.

mod exit;
mod hashset;
mod progress;
mod signals;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use triage_core::hashset::KeyAlg;
use triage_core::matching::{MatchConfig, Matcher};
use triage_core::perceptual::{ImgHashAlg, Perceptual, PerceptualConfig, perceptual_hashes};
use triage_core::record::{OutputFormat, RecordWriter, hashdeep};
use triage_core::{AlgorithmSet, ScanConfig, ScanError, Scanner, Summary};

use exit::Exit;

#[derive(Parser)]
#[command(
    name = "triage",
    version,
    about = "Find known material on seized evidence, read-only, and record every file.",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk an evidence tree read-only and hash every regular file once.
    ///
    /// Every entry ends as a record: hashed, skipped (with the reason) or
    /// failed (with the OS error and the bytes read). Records come in byte
    /// order of their paths, so two scans of the same tree are identical.
    #[command(after_help = exit::HELP)]
    Scan(ScanArgs),

    /// Print the perceptual hashes of image files: PDQ hash, quality, tag, path.
    ///
    /// One line per file, `HASH QUALITY TAG PATH` (with --dihedral, the 8
    /// dihedral hashes follow the tag). Files that cannot be decoded are
    /// reported on stderr and make the exit code 3.
    #[command(name = "hash-image", after_help = exit::HELP)]
    HashImage(HashImageArgs),

    /// Hash sets: import agency lists into indexes, describe, verify, query.
    #[command(subcommand)]
    Hashset(hashset::HashsetCommand),
}

#[derive(clap::Args)]
struct HashImageArgs {
    /// Image files (JPEG, PNG, GIF, BMP, TIFF, WebP, ICO).
    #[arg(required = true)]
    files: Vec<PathBuf>,

    /// Also print the 8 dihedral PDQ hashes (rotations and mirrors).
    #[arg(long)]
    dihedral: bool,

    /// Perceptual hashes, comma-separated: pdq, phash, dhash, ahash. Lines
    /// of the image_hasher ones have `-` for the quality.
    #[arg(long, value_name = "LIST", default_value = "pdq")]
    perceptual: String,
}

#[derive(clap::Args)]
struct ScanArgs {
    /// Evidence root: a mounted directory (or a single file).
    root: PathBuf,

    /// Write records here instead of stdout. Refused if it exists (see
    /// --force) or lies inside the evidence root.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Record format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,

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

    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,

    /// No progress, no device line, no summary on stderr (errors still print).
    #[arg(short, long)]
    quiet: bool,

    /// Draw the progress bar even when stderr is not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    progress: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// JSON Lines, schema triage-scan v1 (docs/scan-schema.md): the full record.
    Jsonl,
    /// CSV, one row per entry.
    Csv,
    /// HASHDEEP-1.0, for `hashdeep -k` (MD5/SHA-1/SHA-256 only).
    Hashdeep,
}

impl From<Format> for OutputFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Jsonl => OutputFormat::Jsonl,
            Format::Csv => OutputFormat::Csv,
            Format::Hashdeep => OutputFormat::Hashdeep,
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    let code = match run(cli) {
        Ok(exit) => exit,
        Err(err) => {
            eprintln!("triage: error: {err:#}");
            match err.downcast_ref::<UsageError>() {
                Some(_) => Exit::Usage,
                None => Exit::Fatal,
            }
        }
    };
    ExitCode::from(code.code())
}

/// Decoded images are tens of MB each; glibc maps every allocation over its
/// dynamic threshold fresh and unmaps it on free, so each image paid for
/// page faults on new memory (a tenth of the time in perceptual scans). Raise
/// the threshold to glibc's maximum (32 MiB) and keep freed memory for reuse.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Scan(args) => scan(args),
        Command::HashImage(args) => hash_image(args),
        Command::Hashset(cmd) => hashset::run(cmd),
    }
}

/// An error in what the user asked for, found before any evidence was read.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

fn scan(args: ScanArgs) -> Result<Exit> {
    let mut algorithms = AlgorithmSet::parse_list(&args.hash).map_err(|e| usage(e.to_string()))?;
    let format = OutputFormat::from(args.format);
    let mut perceptual = perceptual_config(&args.perceptual, args.dihedral)?;
    perceptual.all_frames = args.all_frames;
    perceptual.fast_decode = args.fast_decode;
    let matcher = open_hashsets(&args, &mut algorithms, &mut perceptual)?;
    ensure_format_fits(format, algorithms)?;
    let show_progress = progress::wanted(args.progress, args.quiet);
    let config = ScanConfig {
        root: args.root.clone(),
        algorithms,
        one_file_system: args.one_file_system,
        threads: args.threads,
        readers: args.readers,
        perceptual,
        no_link_targets: args.no_link_targets,
        count_totals: show_progress,
        matcher,
    };
    let scanner = match Scanner::new(config) {
        Ok(s) => s,
        Err(e @ ScanError::Root(_)) => {
            return Err(usage(format!("{e} ('{}')", args.root.display())));
        }
        Err(e) => return Err(e.into()),
    };
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(create_output(path, scanner.root(), args.force)?),
        None => Box::new(io::stdout().lock()),
    };
    let header = scanner.header();
    if !args.quiet {
        eprintln!("triage: {}", scanner.policy().describe());
        if header.read_only_mount == Some(false) {
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

    signals::install();
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

    let mut writer: Box<dyn RecordWriter> = format.writer(out, scanner.root());
    let result = writer
        .header(&header)
        .map_err(ScanError::Sink)
        .and_then(|()| scanner.run(|e| writer.entry(&e)));
    let result = result.and_then(|s| writer.summary(&s).map(|()| s).map_err(ScanError::Sink));
    drop(done);
    let _ = watcher.join();

    let summary = match result {
        Ok(s) => s,
        Err(ScanError::Sink(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            // The reader of our output went away (`| head`): not an error.
            return Ok(Exit::Clean);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context("the scan did not finish"));
        }
    };
    if !args.quiet {
        eprintln!("triage: {}", describe(&summary));
    }
    Ok(if summary.interrupted {
        if !args.quiet {
            eprintln!("triage: interrupted; the records written are a complete prefix of the walk");
        }
        Exit::Interrupted
    } else if summary.files_matched > 0 && summary.failed_total() > 0 {
        Exit::MatchesAndFailures
    } else if summary.files_matched > 0 {
        Exit::Matches
    } else if summary.failed_total() > 0 {
        Exit::Failures
    } else {
        Exit::Clean
    })
}

/// Opens the `--hashset` indexes, and adds the digests and perceptual
/// hashes they need to what the scan computes (saying so), so no entry of a
/// set goes unchecked.
fn open_hashsets(
    args: &ScanArgs,
    algorithms: &mut AlgorithmSet,
    perceptual: &mut PerceptualConfig,
) -> Result<Matcher> {
    let mut sets: Vec<std::sync::Arc<triage_core::hashset::Index>> = Vec::new();
    for path in &args.hashsets {
        let set = hashset::open(path)?;
        // Hits name their set: two sets of one name could not be told apart.
        if let Some(other) = sets.iter().find(|s| s.meta().name == set.meta().name) {
            let same = other.content_hash() == set.content_hash();
            return Err(usage(if same {
                format!("hash set '{}' is given twice", path.display())
            } else {
                format!(
                    "'{}' and '{}' are both named '{}': hits could not be told apart; re-import one with another --name",
                    other.path().display(),
                    path.display(),
                    set.meta().name
                )
            }));
        }
        sets.push(std::sync::Arc::new(set));
    }
    let matcher = Matcher::new(
        sets,
        MatchConfig {
            pdq_distance: args.pdq_distance.min(256),
            pdq_min_quality: args.pdq_min_quality,
            img_distance: args.img_distance.min(64),
        },
    );
    let mut added = Vec::new();
    for alg in matcher.algorithms() {
        if let Some(d) = alg.digest() {
            if !algorithms.contains(d) {
                *algorithms = algorithms.with(d);
                added.push(alg.name());
            }
        } else if alg == KeyAlg::Pdq {
            if !perceptual.pdq {
                perceptual.pdq = true;
                added.push(alg.name());
            }
        } else if let Some(img) = ImgHashAlg::from_tag(alg.name())
            && !perceptual.img_hashes.contains(&img)
        {
            perceptual.img_hashes.push(img);
            added.push(alg.name());
        }
    }
    if !added.is_empty() && !args.quiet {
        eprintln!(
            "triage: the hash sets have {} entries: computing {} too",
            added.join(", "),
            if added.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(matcher)
}

fn perceptual_config(list: &str, dihedral: bool) -> Result<PerceptualConfig> {
    let mut config = PerceptualConfig::off();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "pdq" => config.pdq = true,
            "none" => {}
            other => match ImgHashAlg::ALL.into_iter().find(|a| a.name() == other) {
                Some(alg) if !config.img_hashes.contains(&alg) => config.img_hashes.push(alg),
                Some(_) => {}
                None => {
                    return Err(usage(format!(
                        "unknown perceptual hash '{other}': choose from pdq, phash, dhash, ahash, or none"
                    )));
                }
            },
        }
    }
    if dihedral && !config.pdq {
        return Err(usage("--dihedral needs PDQ: drop --perceptual none"));
    }
    config.dihedral = dihedral;
    Ok(config)
}

fn hash_image(args: HashImageArgs) -> Result<Exit> {
    let config = perceptual_config(&args.perceptual, args.dihedral)?;
    let mut out = io::stdout().lock();
    let mut failed = false;
    for path in &args.files {
        let shown = triage_core::RawPath::from_path(path);
        let result = read_evidence(path, config.max_file_bytes)
            .and_then(|bytes| perceptual_hashes(&bytes, &config).map_err(|e| e.to_string()));
        match result {
            Ok(hashes) => {
                if hashes.info.is_some_and(|i| i.truncated) {
                    eprintln!(
                        "triage: {shown}: warning: truncated image, hashed as far as the data goes"
                    );
                }
                for p in hashes.hashes {
                    match &p {
                        Perceptual::Pdq {
                            hash,
                            quality,
                            dihedral,
                            ..
                        } => {
                            let dih: String = dihedral
                                .iter()
                                .flat_map(|d| d.iter())
                                .map(|h| format!(" {h}"))
                                .collect();
                            writeln!(out, "{hash} {quality} {}{dih} {shown}", p.tag())?;
                        }
                        Perceptual::Img { hash, .. } => {
                            let hex = triage_core::hash::to_hex(hash);
                            writeln!(out, "{hex} - {} {shown}", p.tag())?;
                        }
                    }
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("triage: {shown}: {e}");
            }
        }
    }
    Ok(if failed { Exit::Failures } else { Exit::Clean })
}

/// A whole file, opened the way the scan opens evidence (read-only,
/// O_NOATIME, no symlink following, regular files only).
/// A symlink named on the command line is followed: the user named it.
fn read_evidence(path: &Path, max: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let resolved;
    let path = if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
        resolved = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
        resolved.as_path()
    } else {
        path
    };
    let (mut file, meta) =
        triage_core::read::open_evidence(path, None).map_err(|f| f.kind.to_string())?;
    if meta.size > max {
        let size = meta.size;
        return Err(format!(
            "file of {size} bytes is over the {max}-byte limit for decoding"
        ));
    }
    let mut bytes = Vec::with_capacity(meta.size as usize);
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn ensure_format_fits(format: OutputFormat, algorithms: AlgorithmSet) -> Result<()> {
    if format == OutputFormat::Hashdeep
        && !hashdeep::SUPPORTED.iter().any(|a| algorithms.contains(*a))
    {
        return Err(usage(
            "--format hashdeep can only carry md5, sha1 and sha256: add one, e.g. --hash md5,sha1,sha256,blake3",
        ));
    }
    Ok(())
}

/// Creates the output file, refusing to write into the evidence or over an
/// existing file unless `force`.
fn create_output(path: &Path, root: &Path, force: bool) -> Result<File> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent_real = std::fs::canonicalize(parent)
        .with_context(|| format!("the output directory '{}' does not exist", parent.display()))?;
    let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if parent_real.starts_with(&root_real) {
        return Err(usage(format!(
            "the output '{}' is inside the evidence root '{}': evidence is never written to; choose a path outside it",
            path.display(),
            root.display()
        )));
    }
    let mut opts = OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    opts.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            usage(format!(
                "'{}' exists; use --force to overwrite it",
                path.display()
            ))
        } else {
            anyhow::Error::new(e).context(format!("cannot create '{}'", path.display()))
        }
    })
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
    format!(
        "{} files hashed ({} bytes, {} empty, {} images with perceptual hashes, {} images without{}), \
         {} skipped{}, {} failed{}, {} directories, in {:.2} s{}{matches}",
        s.files_hashed,
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
        s.duration_secs,
        rate
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn hashdeep_needs_a_supported_digest() {
        let blake3_only = AlgorithmSet::parse_list("blake3").unwrap();
        let err = ensure_format_fits(OutputFormat::Hashdeep, blake3_only).unwrap_err();
        assert!(err.to_string().contains("--hash md5,sha1,sha256,blake3"));
        assert!(ensure_format_fits(OutputFormat::Csv, blake3_only).is_ok());
    }
}
