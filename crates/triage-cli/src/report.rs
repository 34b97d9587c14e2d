//! `triage report`: an audit log, verified, in the format another reader needs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use triage_core::report::{ReportError, ReportFormat, ReportOptions, write_report};
use triage_core::verify::Status;

use crate::audit::read_public_key;
use crate::exit::Exit;
use crate::scan::{named, output_error, refuse_inside_evidence};
use crate::usage;
use triage_core::record::output::AtomicFile;

#[derive(Args)]
pub struct ReportArgs {
    /// The audit log (read only; never changed).
    log: PathBuf,

    /// dfxml, case (CASE/UCO JSON-LD), csv (one row per entry),
    /// matches-csv (one row per hit), vics (Project VIC VICS 2.0 case
    /// export of the matched media) or html.
    #[arg(long, value_name = "FORMAT")]
    format: String,

    /// Write here instead of stdout (refused if it exists, see --force).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Overwrite the output if it exists.
    #[arg(long)]
    force: bool,

    /// The public key (PEM) the log must be signed with.
    #[arg(long, value_name = "KEY")]
    pubkey: Option<PathBuf>,

    /// HTML: thumbnails of matched images, small, greyscale and blurred
    /// until clicked; made only from files that still have the logged digests.
    #[arg(long)]
    thumbnails: bool,

    /// Where the evidence is mounted now, if not at the log's root (for thumbnails).
    #[arg(long, value_name = "ROOT")]
    evidence: Option<PathBuf>,
}

pub fn report(args: ReportArgs) -> Result<Exit> {
    let format = ReportFormat::parse(&args.format).ok_or_else(|| {
        let names: Vec<&str> = ReportFormat::ALL.iter().map(|f| f.name()).collect();
        usage(format!(
            "unknown report format '{}': choose from {}",
            args.format,
            names.join(", ")
        ))
    })?;
    if args.thumbnails && format != ReportFormat::Html {
        return Err(usage("--thumbnails is for --format html"));
    }
    crate::audit::require_log(&args.log)?;
    let options = ReportOptions {
        pubkey: args.pubkey.as_deref().map(read_public_key).transpose()?,
        thumbnails: args.thumbnails,
        evidence: args.evidence.clone(),
    };
    let mut file = match &args.output {
        None => None,
        Some(p) => {
            if same_file(p, &args.log) {
                return Err(usage("the report would overwrite the log"));
            }
            // Evidence is never written to: not where the log says it was
            // scanned, nor where --evidence says it is now.
            if let Some(root) = logged_root(&args.log) {
                refuse_inside_evidence(p, &root)?;
            }
            if let Some(root) = &args.evidence {
                refuse_inside_evidence(p, root)?;
            }
            Some(AtomicFile::create(p, args.force).map_err(output_error)?)
        }
    };
    let result = match &mut file {
        None => write_report(&args.log, format, &options, std::io::stdout().lock()),
        Some(f) => {
            let what = format!("the report '{}'", f.target().display());
            write_report(&args.log, format, &options, Named { inner: f, what })
        }
    };
    // Committed (renamed into place) only when whole; on every error the
    // partial file goes when `file` drops.
    let commit = |file: Option<AtomicFile>| -> Result<()> {
        match file {
            Some(f) => f.commit().map_err(anyhow::Error::new),
            None => Ok(()),
        }
    };
    match result {
        Ok(Status::Complete) => {
            commit(file)?;
            Ok(Exit::Clean)
        }
        Ok(_) => {
            commit(file)?;
            eprintln!(
                "triage: note: the log verifies but its scan did not finish; the report covers the entries recorded"
            );
            Ok(Exit::Incomplete)
        }
        Err(ReportError::DoesNotVerify(p)) => {
            eprintln!(
                "triage: {}: DOES NOT VERIFY: {p}; no report is made from an altered or damaged log",
                args.log.display()
            );
            Ok(Exit::VerifyFailed)
        }
        Err(ReportError::Io(e))
            if e.kind() == std::io::ErrorKind::NotFound && !args.log.exists() =>
        {
            Err(crate::input_error(
                e,
                &format!("the log '{}'", args.log.display()),
            ))
        }
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot report on '{}'", args.log.display())),
    }
}

/// Writes to `inner`, naming it in every error (so a full disk is blamed on
/// the report, not the log).
struct Named<W> {
    inner: W,
    what: String,
}

impl<W: Write> Write for Named<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).map_err(|e| named(e, &self.what))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|e| named(e, &self.what))
    }
}

/// Whether two paths name one file (either may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => a == b,
    }
}

/// The evidence root the log's header names, if its first line is a header.
fn logged_root(log: &Path) -> Option<PathBuf> {
    let file = triage_core::verify::open_log(log).ok()?;
    match triage_core::record::jsonl::Reader::new(file).next()? {
        Ok(triage_core::record::jsonl::Line::Header(h)) => Some(h.root),
        _ => None,
    }
}
