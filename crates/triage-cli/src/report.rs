//! `triage report`: an audit log, verified, in the format another reader needs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use triage_core::report::{ReportError, ReportFormat, ReportOptions, write_report};
use triage_core::verify::Status;

use crate::audit::read_public_key;
use crate::exit::Exit;
use crate::usage;

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
    let options = ReportOptions {
        pubkey: args.pubkey.as_deref().map(read_public_key).transpose()?,
        thumbnails: args.thumbnails,
        evidence: args.evidence.clone(),
    };
    let out: Box<dyn Write> = match &args.output {
        None => Box::new(std::io::stdout().lock()),
        Some(p) => {
            if p == &args.log {
                return Err(usage("the report would overwrite the log"));
            }
            let mut o = std::fs::OpenOptions::new();
            o.write(true);
            if args.force {
                o.create(true).truncate(true);
            } else {
                o.create_new(true);
            }
            Box::new(o.open(p).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    usage(format!(
                        "'{}' exists; use --force to overwrite it",
                        p.display()
                    ))
                } else {
                    anyhow::Error::new(e).context(format!("cannot create '{}'", p.display()))
                }
            })?)
        }
    };
    match write_report(&args.log, format, &options, out) {
        Ok(Status::Complete) => Ok(Exit::Clean),
        Ok(_) => {
            eprintln!(
                "triage: note: the log verifies but its scan did not finish; the report covers the entries recorded"
            );
            Ok(Exit::Incomplete)
        }
        Err(ReportError::DoesNotVerify(p)) => {
            if let Some(path) = &args.output {
                let _ = std::fs::remove_file(path);
            }
            eprintln!(
                "triage: {}: DOES NOT VERIFY: {p}; no report is made from an altered or damaged log",
                args.log.display()
            );
            Ok(Exit::VerifyFailed)
        }
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot report on '{}'", args.log.display())),
    }
}
