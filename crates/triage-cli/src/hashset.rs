//! `triage hashset ...`: import lists into `.tset` indexes, describe, verify and query them.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use triage_core::hash::from_hex;
use triage_core::hashset::import::{self, Format, ImportOptions, ImportProgress};
use triage_core::hashset::{Index, IndexError, KeyAlg, Scheme, SetEntry, SetKind, SetMeta};

use crate::exit::Exit;
use crate::{progress, usage};

#[derive(Subcommand)]
pub enum HashsetCommand {
    /// Import hash lists into one index file (.tset) that opens instantly.
    ///
    /// Formats are recognised from the content: hash-per-line lists,
    /// md5sum/sha1sum/sha256sum/b3sum and BSD --tag lines, hashdeep,
    /// NSRL RDS 2.x (NSRLFile.txt) and v3 (SQLite), Project VIC VICS 1.x/2.0
    /// JSON, ThreatExchange PDQ lists and descriptor JSON, EnCase .hash,
    /// and triage scan output. Malformed lines are counted and the first
    /// ones shown with line numbers (exit 3); --strict stops at the first.
    /// Nothing is written unless the whole import succeeds.
    Import(ImportArgs),
    /// Describe an index: name, kind, scheme, sources with their SHA-256,
    /// key counts, rejected lines, and the BLAKE3 of its content.
    Info(InfoArgs),
    /// Read a whole index and check its BLAKE3 and structure (exit 6 if it
    /// was altered or damaged).
    Verify(VerifyArgs),
    /// Look hashes up in an index (hex; perceptual ones by distance).
    Lookup(LookupArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The lists to import (one set can combine several files and formats).
    #[arg(required = true)]
    files: Vec<PathBuf>,

    /// The set's name, written with every hit.
    #[arg(long)]
    name: String,

    /// Output index [default: NAME.tset].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// alert (report hits, exit 1) or known-good (set aside) [default:
    /// known-good for NSRL, alert otherwise].
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,

    /// Format of every file instead of recognising it: text, hashdeep,
    /// nsrl-v2, nsrl-v3, vics, threatexchange, encase, triage-scan.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,

    /// Algorithm of untagged hashes whose length is ambiguous: sha256,
    /// blake3 or pdq for 64 hex digits; phash, dhash, ahash for 16.
    #[arg(long, value_name = "ALG")]
    algorithm: Option<String>,

    /// Category scheme: projectvic, projectvic-legacy or caid-uk
    /// [default: projectvic for VICS files].
    #[arg(long, value_name = "SCHEME")]
    scheme: Option<String>,

    /// Category code for entries the list gives none (e.g. 1, or A for caid-uk).
    #[arg(long, value_name = "CODE")]
    category: Option<String>,

    /// The list's category numbers as scheme codes, e.g. 1=A,2=B,3=C.
    #[arg(long, value_name = "MAP")]
    category_map: Option<String>,

    /// Stop at the first malformed line.
    #[arg(long)]
    strict: bool,

    /// Write the set even if no entry was imported (otherwise an error:
    /// a scan against an empty set finds nothing).
    #[arg(long)]
    allow_empty: bool,

    /// MiB of keys to sort in memory before using temporary files.
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    memory: usize,

    /// Overwrite the output if it exists.
    #[arg(long)]
    force: bool,

    /// No progress and no report on stderr (errors still print).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct InfoArgs {
    /// The index.
    index: PathBuf,
    /// Print the metadata as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The index.
    index: PathBuf,
}

#[derive(Args)]
pub struct LookupArgs {
    /// The index.
    index: PathBuf,
    /// Hashes (hex). 64 hex digits are tried as SHA-256, BLAKE3 and PDQ.
    #[arg(required = true)]
    hashes: Vec<String>,
    /// Largest Hamming distance for perceptual hashes.
    #[arg(long, default_value_t = 31)]
    distance: u32,
}

pub fn run(cmd: HashsetCommand) -> Result<Exit> {
    match cmd {
        HashsetCommand::Import(a) => import_cmd(a),
        HashsetCommand::Info(a) => info(a),
        HashsetCommand::Verify(a) => verify(a),
        HashsetCommand::Lookup(a) => lookup(a),
    }
}

/// Opens an index, turning its errors into messages that say what to do.
pub fn open(path: &std::path::Path) -> Result<Index> {
    Index::open(path).map_err(|e| match e {
        IndexError::Io(io) => crate::input_error(io, &format!("hash set '{}'", path.display())),
        e @ (IndexError::WrongLength { .. } | IndexError::Corrupt(_)) => {
            crate::damaged(format!("hash set '{}': {e}", path.display()))
        }
        e => usage(format!("hash set '{}': {e}", path.display())),
    })
}

fn parse_category_map(s: &str) -> Result<Vec<(i64, String)>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| usage(format!("--category-map: '{pair}' is not NUMBER=CODE")))?;
            let from = from
                .trim()
                .parse()
                .map_err(|_| usage(format!("--category-map: '{from}' is not a number")))?;
            Ok((from, to.trim().to_string()))
        })
        .collect()
}

/// An optional flag's value through `parse`; a value it rejects is a usage
/// error naming the flag and the choices.
fn parse_choice<T>(
    value: &Option<String>,
    flag: &str,
    parse: fn(&str) -> Option<T>,
    choices: &str,
) -> Result<Option<T>> {
    value
        .as_deref()
        .map(|v| parse(v).ok_or_else(|| usage(format!("{flag} '{v}': {choices}"))))
        .transpose()
}

fn import_cmd(a: ImportArgs) -> Result<Exit> {
    let mut opts = ImportOptions::new(a.name.clone());
    opts.kind = parse_choice(
        &a.kind,
        "--kind",
        SetKind::parse,
        "choose alert or known-good",
    )?;
    let formats: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
    let formats = format!("choose from auto, {}", formats.join(", "));
    let format = a.format.clone().filter(|f| f != "auto");
    opts.format = parse_choice(&format, "--format", Format::parse, &formats)?;
    opts.algorithm = parse_choice(
        &a.algorithm,
        "--algorithm",
        KeyAlg::parse,
        "choose from md5, sha1, sha256, blake3, pdq, phash, dhash, ahash",
    )?;
    opts.scheme = parse_choice(
        &a.scheme,
        "--scheme",
        Scheme::parse,
        "choose projectvic, projectvic-legacy or caid-uk",
    )?;
    opts.category = a.category.clone();
    opts.category_map = match &a.category_map {
        Some(m) => parse_category_map(m)?,
        None => Vec::new(),
    };
    opts.strict = a.strict;
    opts.allow_empty = a.allow_empty;
    opts.memory_budget = a.memory.max(16) << 20;
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.tset", a.name)));
    if out.exists() && !a.force {
        return Err(usage(format!(
            "'{}' exists; use --force to overwrite it",
            out.display()
        )));
    }

    let bar = (!a.quiet && progress::wanted(false, false)).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} | {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let t0 = Instant::now();
    let mut last = Instant::now() - Duration::from_secs(1);
    let mut on_progress = |p: &ImportProgress| {
        if let Some(bar) = &bar
            && last.elapsed() >= Duration::from_millis(100)
        {
            last = Instant::now();
            bar.set_length(p.total_bytes);
            bar.set_position(p.bytes);
            bar.set_message(format!("{} entries", p.entries));
        }
    };
    let result = import::import_files(&a.files, &opts, &out, &mut on_progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = result.map_err(|e| {
        let missing = e.io.as_ref().is_some_and(|io| {
            matches!(
                io.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::IsADirectory
                    | io::ErrorKind::PermissionDenied
            )
        }) && e.at.is_none();
        if missing {
            usage(format!(
                "{}: {}; nothing was written",
                e.file.as_deref().unwrap_or("input"),
                match e.io.as_ref().map(io::Error::kind) {
                    Some(io::ErrorKind::NotFound) => "does not exist".to_string(),
                    _ => e.message.clone(),
                }
            ))
        } else if e.needs_option {
            usage(format!("import failed; nothing was written: {e}"))
        } else {
            anyhow::anyhow!("{e}").context("import failed; nothing was written")
        }
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let rejected: u64 = report.meta.sources.iter().map(|s| s.rejected).sum();
    if !a.quiet {
        let mut err = io::stderr().lock();
        describe_meta(&mut err, &report.meta)?;
        writeln!(err, "blake3   {}", report.content_hash)?;
        writeln!(
            err,
            "triage: wrote '{}': {} entries in {:.2} s ({:.0} entries/s)",
            out.display(),
            report.entries,
            secs,
            report.entries as f64 / secs.max(1e-9)
        )?;
        if rejected > 0 {
            writeln!(
                err,
                "triage: {rejected} {} not imported (listed above)",
                if rejected == 1 {
                    "line or record was"
                } else {
                    "lines or records were"
                }
            )?;
        }
    }
    Ok(if rejected > 0 {
        Exit::Failures
    } else {
        Exit::Clean
    })
}

/// The human-readable description of a set (stderr for import, stdout for info).
fn describe_meta(out: &mut dyn Write, m: &SetMeta) -> io::Result<()> {
    writeln!(out, "name     {}", m.name)?;
    writeln!(out, "kind     {}", m.kind.name())?;
    writeln!(
        out,
        "scheme   {}",
        m.scheme.map_or("none (no categories)", |s| s.name())
    )?;
    writeln!(out, "records  {}", m.records)?;
    for k in &m.keys {
        let mut notes = Vec::new();
        if k.duplicates > 0 {
            notes.push(format!("{} duplicates dropped", k.duplicates));
        }
        if k.empty_file_digests > 0 {
            notes.push(format!(
                "{} empty-file digests (kept, flagged: they hit every empty file)",
                k.empty_file_digests
            ));
        }
        if k.low_quality > 0 {
            notes.push(format!(
                "{} under quality 50 (kept, flagged)",
                k.low_quality
            ));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        writeln!(out, "keys     {:<8} {}{notes}", k.alg, k.keys)?;
    }
    for s in &m.sources {
        writeln!(
            out,
            "source   {} [{}] {} bytes sha256 {}",
            s.file, s.format, s.bytes, s.sha256
        )?;
        if let Some(d) = &s.declared {
            writeln!(out, "         declares: {d}")?;
        }
        writeln!(
            out,
            "         {} entries, {} rejected",
            s.entries, s.rejected
        )?;
        if s.unknown_categories > 0 {
            writeln!(
                out,
                "         {} entries kept without a category: their code is not in the scheme",
                s.unknown_categories
            )?;
        }
        for r in &s.first_rejected {
            writeln!(out, "         rejected at {}: {}", r.at, r.reason)?;
        }
        if s.rejected > s.first_rejected.len() as u64 {
            writeln!(
                out,
                "         … and {} more",
                s.rejected - s.first_rejected.len() as u64
            )?;
        }
    }
    Ok(())
}

fn info(a: InfoArgs) -> Result<Exit> {
    let index = open(&a.index)?;
    let mut out = io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "path": a.index.to_string_lossy(),
            "blake3": index.content_hash(),
            "format_version": triage_core::hashset::FORMAT_VERSION,
            "bytes": index.file_len(),
            "set": index.meta(),
        });
        writeln!(out, "{v}")?;
    } else {
        describe_meta(&mut out, index.meta())?;
        writeln!(
            out,
            "blake3   {} (from the header; `triage hashset verify` checks it)",
            index.content_hash()
        )?;
        writeln!(
            out,
            "file     {} bytes, format version {}",
            index.file_len(),
            triage_core::hashset::FORMAT_VERSION
        )?;
    }
    Ok(Exit::Clean)
}

fn verify(a: VerifyArgs) -> Result<Exit> {
    let index = match Index::open(&a.index) {
        Ok(i) => i,
        Err(e @ (IndexError::WrongLength { .. } | IndexError::Corrupt(_))) => {
            eprintln!("triage: {}: verification FAILED: {e}", a.index.display());
            return Ok(Exit::VerifyFailed);
        }
        Err(_) => open(&a.index)?,
    };
    match index.verify() {
        Ok(()) => {
            writeln!(
                std::io::stdout(),
                "{}: OK, blake3 {}",
                a.index.display(),
                index.content_hash()
            )?;
            Ok(Exit::Clean)
        }
        Err(e) => {
            eprintln!("triage: {}: verification FAILED: {e}", a.index.display());
            Ok(Exit::VerifyFailed)
        }
    }
}

fn print_entry(
    out: &mut dyn Write,
    index: &Index,
    hex: &str,
    alg: KeyAlg,
    e: &SetEntry<'_>,
    d: Option<u32>,
) -> io::Result<()> {
    let source = index
        .meta()
        .sources
        .get(e.source as usize)
        .map_or("?", |s| s.file.as_str());
    let dist = d.map_or(String::new(), |d| format!(" distance {d}"));
    let cat = e
        .category
        .map_or(String::new(), |c| format!(" category {c}"));
    writeln!(
        out,
        "{hex} {alg}{dist}{cat} {source}:{} {}",
        e.locator, e.info
    )
}

fn lookup(a: LookupArgs) -> Result<Exit> {
    use triage_core::matching::{MAX_IMG_DISTANCE, MAX_PDQ_DISTANCE};
    let index = open(&a.index)?;
    if a.distance > MAX_PDQ_DISTANCE {
        return Err(usage(format!(
            "--distance {} is beyond {MAX_PDQ_DISTANCE} (half of PDQ's 256 bits), where unrelated pictures match",
            a.distance
        )));
    }
    if a.distance > MAX_IMG_DISTANCE
        && index
            .algorithms()
            .any(|k| k.is_perceptual() && k.width() == 8)
    {
        return Err(usage(format!(
            "--distance {} is beyond {MAX_IMG_DISTANCE} (half of 64 bits) for this set's pHash/dHash/aHash keys",
            a.distance
        )));
    }
    let mut out = io::stdout().lock();
    let mut found = false;
    for hex in &a.hashes {
        let key = from_hex(hex.trim())
            .ok_or_else(|| usage(format!("'{hex}' is not a hexadecimal hash")))?;
        for alg in index.algorithms().collect::<Vec<_>>() {
            if alg.width() != key.len() {
                continue;
            }
            if alg.is_perceptual() {
                for (e, d) in index.near(alg, &key, a.distance) {
                    found = true;
                    print_entry(&mut out, &index, hex, alg, &e, Some(d))?;
                }
            } else if let Some(e) = index.lookup(alg, &key) {
                found = true;
                print_entry(&mut out, &index, hex, alg, &e, None)?;
            }
        }
    }
    Ok(if found { Exit::Matches } else { Exit::Clean })
}
