//! `HASHDEEP-1.0` output, for `hashdeep -k` audit and matching.
//!
//! The format (see hashdeep's `FILEFORMAT`) has one data row per file,
//! `size,<digests...>,filename`, with the file name unquoted and last, and
//! absolute paths, which is what `hashdeep -r ROOT` itself writes. It knows
//! MD5, SHA-1 and SHA-256 of ours (not BLAKE3), and it has no escaping: a
//! name containing a newline or carriage return cannot be represented, so
//! such files are listed in a `##` comment instead, and an audit against this
//! file will report them as new. Skipped and failed entries appear as `##`
//! comments too, so the file is still an account of everything seen.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Entry, Outcome, RecordWriter, ScanHeader, Summary};
use crate::hash::Algorithm;

/// The algorithms the format can carry, in our column order.
pub const SUPPORTED: [Algorithm; 3] = [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256];

/// Writes `HASHDEEP-1.0` files.
pub struct Writer<W: Write> {
    out: io::BufWriter<W>,
    root: PathBuf,
    columns: Vec<Algorithm>,
    unrepresentable: u64,
}

impl<W: Write> Writer<W> {
    /// A writer over `out`; paths are written as `root/relative`.
    pub fn new(out: W, root: &Path) -> Self {
        Writer {
            out: io::BufWriter::with_capacity(64 * 1024, out),
            root: root.to_path_buf(),
            columns: Vec::new(),
            unrepresentable: 0,
        }
    }
}

impl<W: Write> RecordWriter for Writer<W> {
    fn header(&mut self, h: &ScanHeader) -> io::Result<()> {
        self.columns = SUPPORTED
            .into_iter()
            .filter(|a| h.algorithms.contains(*a))
            .collect();
        if self.columns.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "hashdeep format needs md5, sha1 or sha256 among the selected hashes",
            ));
        }
        let names: Vec<&str> = self.columns.iter().map(|a| a.name()).collect();
        writeln!(self.out, "%%%% HASHDEEP-1.0")?;
        writeln!(self.out, "%%%% size,{},filename", names.join(","))?;
        writeln!(self.out, "## Written by triage {}", h.tool_version)?;
        writeln!(
            self.out,
            "## Evidence root: {}",
            crate::path::escape_bytes(h.root.as_os_str().as_bytes())
        )?;
        writeln!(self.out, "## Started: {}", h.started)?;
        writeln!(self.out, "##")
    }

    fn entry(&mut self, e: &Entry) -> io::Result<()> {
        let full = e.path.under(&self.root);
        let name = full.as_os_str().as_bytes();
        match &e.outcome {
            Outcome::Hashed(h) if !name.contains(&b'\n') && !name.contains(&b'\r') => {
                write!(self.out, "{}", h.bytes_read)?;
                for alg in &self.columns {
                    // A scan hashes every regular file with every selected
                    // algorithm, so the digest is present.
                    write!(self.out, ",{}", h.digests.hex(*alg).unwrap_or_default())?;
                }
                self.out.write_all(b",")?;
                self.out.write_all(name)?;
                self.out.write_all(b"\n")
            }
            Outcome::Hashed(_) => {
                self.unrepresentable += 1;
                writeln!(
                    self.out,
                    "## not representable in this format (newline in name), see the JSON Lines record: {}",
                    e.path
                )
            }
            Outcome::Skipped(r) => writeln!(self.out, "## skipped: {}: {r}", e.path),
            Outcome::Failed(f) => writeln!(
                self.out,
                "## failed ({}): {}: {} after {} bytes",
                f.stage.code(),
                e.path,
                f.kind,
                f.bytes_read
            ),
        }
    }

    fn summary(&mut self, s: &Summary) -> io::Result<()> {
        writeln!(
            self.out,
            "## {} files hashed, {} skipped, {} failed, {} not representable",
            s.files_hashed,
            s.skipped_total(),
            s.failed_total(),
            self.unrepresentable
        )?;
        self.out.flush()
    }
}
