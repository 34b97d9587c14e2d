//! `triage verify` and `triage keygen`: checking audit logs and making the
//! keys that sign them.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use triage_core::hash::to_hex;
use triage_core::record::seal::{PublicKey, SigningKey};
use triage_core::verify::evidence::audit_evidence;
use triage_core::verify::{Status, check_log, open_log};

use crate::exit::Exit;
use crate::usage;

#[derive(Args)]
pub struct VerifyArgs {
    /// The audit log (JSON Lines written by `triage scan`).
    log: PathBuf,

    /// The public key (PEM) the log must be signed with. Without it,
    /// signatures are checked against the key the log's header names,
    /// which proves the log is intact but not who signed it.
    #[arg(long, value_name = "KEY")]
    pubkey: Option<PathBuf>,

    /// Also re-hash this evidence tree and compare it with the log:
    /// files matched, changed, moved, missing and new (hashdeep's audit terms).
    #[arg(long, value_name = "ROOT")]
    evidence: Option<PathBuf>,

    /// Threads for re-hashing the evidence [default: number of CPUs].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Print only problems.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the private key; the public key goes to the same
    /// name with `.pub` added. Neither may exist.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

pub fn keygen(args: KeygenArgs) -> Result<Exit> {
    let key = SigningKey::generate().map_err(anyhow::Error::new)?;
    let public = key.public();
    let mut pub_path = args.output.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    for p in [&args.output, &pub_path] {
        if p.exists() {
            return Err(usage(format!(
                "'{}' exists: keys are never overwritten; choose another name",
                p.display()
            )));
        }
    }
    write_new(&args.output, key.to_pem()?.as_bytes(), 0o600)?;
    write_new(&pub_path, public.to_pem()?.as_bytes(), 0o644)?;
    writeln!(
        std::io::stdout(),
        "private key: {} (keep it secret)",
        args.output.display()
    )?;
    writeln!(std::io::stdout(), "public key:  {}", pub_path.display())?;
    writeln!(std::io::stdout(), "fingerprint: {}", public.fingerprint())?;
    Ok(Exit::Clean)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => usage(format!(
                "cannot create '{}': its directory does not exist",
                path.display()
            )),
            _ => anyhow::Error::new(e).context(format!("cannot create '{}'", path.display())),
        })?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        // No half-written key is left behind.
        let _ = std::fs::remove_file(path);
        return Err(anyhow::Error::new(e).context(format!("cannot write '{}'", path.display())));
    }
    Ok(())
}

pub fn read_public_key(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::input_error(e, &format!("the public key '{}'", path.display())))?;
    PublicKey::from_pem(&text).map_err(|e| usage(format!("'{}': {e}", path.display())))
}

/// Refuses what is not an audit log at all (exit 2: a wrong input), so
/// that "altered" (exit 6) is said only of logs. Every log line starts
/// `{"seq":`; a log whose first line was altered still does, mostly, and
/// then fails verification as it should.
pub fn require_log(path: &Path) -> Result<()> {
    use std::io::Read;
    const START: &[u8] = br#"{"seq":"#;
    let what = format!("the log '{}'", path.display());
    let f = open_log(path).map_err(|e| crate::input_error(e, &what))?;
    let mut head = Vec::with_capacity(START.len());
    f.take(START.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| crate::input_error(e, &what))?;
    let n = head.len();
    if head != START {
        return Err(usage(format!(
            "'{}' is not a triage audit log ({}): give the JSON Lines file `triage scan -o` wrote",
            path.display(),
            if n == 0 {
                "it is empty"
            } else {
                "its first line is not a chained record"
            }
        )));
    }
    Ok(())
}

pub fn verify(args: VerifyArgs) -> Result<Exit> {
    let expected = args.pubkey.as_deref().map(read_public_key).transpose()?;
    require_log(&args.log)?;
    let open =
        || open_log(&args.log).with_context(|| format!("cannot open '{}'", args.log.display()));
    let check = check_log(open()?, expected.as_ref())
        .with_context(|| format!("cannot read '{}'", args.log.display()))?;
    let name = args.log.display();
    let status = check.status();
    match status {
        Status::Failed => {
            let p = check
                .problem
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            eprintln!("triage: {name}: DOES NOT VERIFY: {p}");
            eprintln!(
                "triage: the {} lines before it verify; nothing from that line on can be trusted",
                check.lines
            );
            return Ok(Exit::VerifyFailed);
        }
        Status::Incomplete => {
            let p = check
                .incompleteness()
                .map(|p| p.to_string())
                .unwrap_or_default();
            eprintln!("triage: {name}: INCOMPLETE: {p}");
        }
        Status::Interrupted | Status::Complete => {}
    }
    if !args.quiet {
        let signed = match (&check.header, check.signatures) {
            (Some(h), n) if h.signing_key.is_some() => format!(
                "{n} signatures by {} verify{}",
                h.signing_key
                    .as_ref()
                    .map(PublicKey::fingerprint)
                    .unwrap_or_default(),
                if expected.is_some() {
                    " (the given key)"
                } else {
                    " (the key the header names; give --pubkey to prove who signed)"
                }
            ),
            _ => "not signed (seals are SHA-256 only)".to_string(),
        };
        writeln!(
            std::io::stdout(),
            "{name}: {} lines, {} entries, {} checkpoints, {} resumes verify; {signed}",
            check.lines,
            check.state.tally.entries(),
            check.checkpoints,
            check.resumes
        )?;
        match status {
            Status::Complete => writeln!(
                std::io::stdout(),
                "{name}: complete: the footer's totals match the records"
            )?,
            Status::Interrupted => writeln!(
                std::io::stdout(),
                "{name}: the scan was interrupted (the footer says so); `triage scan --resume` finishes it"
            )?,
            _ => match check.last_sealed_line {
                Some(l) => writeln!(
                    std::io::stdout(),
                    "{name}: the last sealed line is {l}; `triage scan --resume` finishes the scan"
                )?,
                None => writeln!(
                    std::io::stdout(),
                    "{name}: no line is sealed yet (the scan stopped before its first checkpoint); \
                     `triage scan --resume` finishes the scan"
                )?,
            },
        }
        writeln!(
            std::io::stdout(),
            "{name}: chain head {}",
            to_hex(&check.head())
        )?;
    }
    let mut exit = match status {
        Status::Complete => Exit::Clean,
        _ => Exit::Incomplete,
    };
    if let Some(root) = &args.evidence {
        let audit = audit_evidence(open()?, root, args.threads)
            .map_err(|e| anyhow::Error::msg(e.to_string()))?;
        for p in &audit.changed {
            writeln!(std::io::stdout(), "changed: {p}")?;
        }
        for (from, to) in &audit.moved {
            writeln!(std::io::stdout(), "moved: {from} -> {to}")?;
        }
        for p in &audit.missing {
            writeln!(std::io::stdout(), "missing: {p}")?;
        }
        for p in &audit.new {
            writeln!(std::io::stdout(), "new: {p}")?;
        }
        for p in &audit.previously_unread {
            writeln!(std::io::stdout(), "previously unread: {p}")?;
        }
        for (p, e) in &audit.failed {
            writeln!(std::io::stdout(), "failed: {p}: {e}")?;
        }
        writeln!(
            std::io::stdout(),
            "evidence {}: {} files matched, {} changed, {} moved, {} missing, {} new, {} previously unread, {} failed",
            root.display(),
            audit.matched,
            audit.changed.len(),
            audit.moved.len(),
            audit.missing.len(),
            audit.new.len(),
            audit.previously_unread.len(),
            audit.failed.len()
        )?;
        if !audit.unchanged() {
            exit = Exit::VerifyFailed;
        }
    }
    Ok(exit)
}
