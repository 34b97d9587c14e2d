//! `triage`: the command line over `triage-core`.
//!
//! This crate only parses flags into a `ScanConfig`, checks what can be
//! checked before evidence is touched, calls the library, prints to stderr,
//! and maps the outcome to an [`exit::Exit`] code. Every record comes from
//! `triage-core`.

// No panic reaches the user: outside tests, errors are values. Where a
// panic is impossible by construction the code says why, with an allow.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod audit;
mod exit;
mod hashset;
mod progress;
mod report;
mod scan;
mod signals;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use triage_core::perceptual::{ImgHashAlg, Perceptual, PerceptualConfig, perceptual_hashes};

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
    Scan(Box<scan::ScanArgs>),

    /// Check an audit log: hash chain, sequence, seals, signatures and
    /// totals; optionally re-hash the evidence and compare.
    ///
    /// On failure, names the first line that does not verify and why
    /// (exit 6). A log that verifies but has no footer (a killed scan) is
    /// incomplete (exit 7): `triage scan --resume LOG` finishes it.
    Verify(audit::VerifyArgs),

    /// Check a disk image's medium against the digests stored in it at
    /// acquisition (EWF's MD5 and SHA-1), like ewfverify.
    ///
    /// Reads the whole medium once; EWF chunks are checked against their
    /// own checksums on the way. Unreadable ranges are listed (exit 6).
    #[command(name = "verify-image")]
    VerifyImage(VerifyImageArgs),

    /// Write an audit log as DFXML, CASE/UCO JSON-LD, CSV, VICS 2.0 or HTML.
    ///
    /// The log is verified first; an altered or damaged log gives no report
    /// (exit 6). The log is only read.
    Report(report::ReportArgs),

    /// Make an Ed25519 key pair for signing audit logs (PEM files that
    /// OpenSSL also reads).
    Keygen(audit::KeygenArgs),

    /// Print the perceptual hashes of image files: PDQ hash, quality, tag, path.
    ///
    /// One line per file, `HASH QUALITY TAG PATH` (with --dihedral, the 8
    /// dihedral hashes follow the tag). Files that cannot be decoded are
    /// reported on stderr and make the exit code 3.
    #[command(name = "hash-image")]
    HashImage(HashImageArgs),

    /// Hash sets: import agency lists into indexes, describe, verify, query.
    #[command(subcommand)]
    Hashset(hashset::HashsetCommand),
}

#[derive(clap::Args)]
struct VerifyImageArgs {
    /// The image (its first segment, for EWF and split raw).
    image: PathBuf,
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

fn main() -> ExitCode {
    tune_allocator();
    let cli = match command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One error style: clap's message, with our prefix and no colour.
            let text = e.render().to_string();
            eprint!("triage: {text}");
            return ExitCode::from(Exit::Usage.code());
        }
        Err(e) => {
            // --help, --version: on stdout.
            let _ = e.print();
            return ExitCode::from(0);
        }
    };
    let code = match run(cli) {
        Ok(exit) => exit,
        Err(err) => {
            eprintln!("triage: error: {err:#}");
            match err.downcast_ref::<Refusal>() {
                Some(r) => r.exit,
                None => Exit::Fatal,
            }
        }
    };
    ExitCode::from(code.code())
}

/// The command line, with each command's exit codes in its `--help` and
/// the build (git commit, decoders compiled in) in `--version`.
fn command() -> clap::Command {
    let mut cmd = Cli::command()
        .version(version())
        .color(clap::ColorChoice::Never);
    for (path, codes) in exit::COMMANDS {
        let help = exit::help(codes);
        cmd = match path {
            [one] => cmd.mut_subcommand(*one, |c| c.after_help(help)),
            [group, sub] => {
                cmd.mut_subcommand(*group, |g| g.mut_subcommand(*sub, |c| c.after_help(help)))
            }
            _ => cmd,
        };
    }
    cmd
}

/// `0.1.0 (git 1a2b3c4d, release, decode: jpeg png …)`.
fn version() -> &'static str {
    let b = triage_core::record::provenance::BuildInfo::current();
    let decode: Vec<&str> = b
        .features
        .iter()
        .map(|f| f.strip_prefix("decode:").unwrap_or(f))
        .collect();
    let v = format!(
        "{} (git {}, {} build, {}; decodes {})",
        env!("CARGO_PKG_VERSION"),
        b.git_commit
            .as_deref()
            .unwrap_or("unknown: built outside a checkout"),
        b.profile,
        b.target,
        decode.join(" ")
    );
    // Once per process, for clap's 'static version string.
    Box::leak(v.into_boxed_str())
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
        Command::Scan(args) => scan::scan(*args),
        Command::Verify(args) => audit::verify(args),
        Command::Keygen(args) => audit::keygen(args),
        Command::Report(args) => report::report(args),
        Command::HashImage(args) => hash_image(args),
        Command::VerifyImage(args) => verify_image(args),
        Command::Hashset(cmd) => hashset::run(cmd),
    }
}

/// An error that ends the command with a given exit code: a usage error
/// found before any evidence was read (2), or a damaged input (6). Any
/// other error is fatal (5).
#[derive(Debug)]
struct Refusal {
    exit: Exit,
    msg: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Refusal {}

/// What the user asked for cannot be done as asked: exit 2, nothing read.
pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    Refusal {
        exit: Exit::Usage,
        msg: msg.into(),
    }
    .into()
}

/// An input file that cannot be read: one that is not there (or not a
/// file, or not permitted) is a usage error (2), other I/O failures are
/// fatal (5). `what` names it: "hash set 'x.tset'".
pub(crate) fn input_error(e: std::io::Error, what: &str) -> anyhow::Error {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => usage(format!("{what} does not exist")),
        K::PermissionDenied => usage(format!("{what} cannot be read: {e}")),
        K::IsADirectory => usage(format!("{what} is a directory, not a file")),
        _ => anyhow::Error::new(e).context(format!("cannot read {what}")),
    }
}

/// An input (log, index) is altered or damaged: exit 6.
pub(crate) fn damaged(msg: impl Into<String>) -> anyhow::Error {
    Refusal {
        exit: Exit::VerifyFailed,
        msg: msg.into(),
    }
    .into()
}

pub(crate) fn perceptual_config(list: &str, dihedral: bool) -> Result<PerceptualConfig> {
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

/// `triage verify-image`: the medium's MD5 and SHA-1 against the stored ones.
fn verify_image(args: VerifyImageArgs) -> Result<Exit> {
    use triage_core::verify::image::Verdict;
    let v = triage_core::verify::image::verify_image(&args.image, &|_| {})
        .map_err(|e| usage(e.to_string()))?;
    println!(
        "image: {} ({}, medium of {} bytes)",
        args.image.display(),
        v.format,
        v.size
    );
    for (alg, verdict) in &v.verdicts {
        let computed = v.computed.get(alg).map_or("-", String::as_str);
        match verdict {
            Verdict::Absent => {
                println!("{alg}: {computed} (none stored in the image: nothing to compare)")
            }
            Verdict::Matched => println!("{alg}: {computed} matched the stored digest"),
            Verdict::Mismatched => println!(
                "{alg}: {computed} MISMATCHED: the image stores {}",
                v.stored.get(alg).map_or("-", String::as_str)
            ),
        }
    }
    for (r, why) in &v.bad_ranges {
        println!(
            "unreadable: media bytes {}..{} ({} bytes, read as zeros): {why}",
            r.offset,
            r.offset + r.length,
            r.length
        );
    }
    if v.intact() {
        Ok(Exit::Clean)
    } else {
        eprintln!(
            "triage: error: the medium is not what was acquired: {}",
            if v.bad_ranges.is_empty() {
                "a stored digest does not match"
            } else {
                "parts of it cannot be read"
            }
        );
        Ok(Exit::VerifyFailed)
    }
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
    let (mut file, meta) = triage_core::source::dir::open::open_evidence(path, None)
        .map_err(|f| f.kind.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }
}
