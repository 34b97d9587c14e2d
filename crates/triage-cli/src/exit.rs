//! Exit codes: one enum, so scripts can rely on them.

/// How `triage` ended. The numbers are a public contract (README, `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Completed; every entry hashed or skipped with a reason; no matches.
    Clean,
    /// Completed and files matched an alert hash set (known-good hits and
    /// empty-file digests do not count).
    Matches,
    /// The command line was wrong; nothing was read.
    Usage,
    /// Completed, but some entries failed (unreadable, changed, replaced).
    /// Their records say why.
    Failures,
    /// Completed with matches and with failed entries.
    MatchesAndFailures,
    /// The scan could not run or finish (root unusable, output unwritable).
    Fatal,
    /// A file checked by `verify` was altered or damaged (or the evidence
    /// no longer matches its log).
    VerifyFailed,
    /// An audit log verifies but its scan did not finish (killed or
    /// interrupted): `triage scan --resume` finishes it.
    Incomplete,
    /// Stopped by SIGINT/SIGTERM; the records are a complete prefix.
    Interrupted,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Matches => 1,
            Exit::Usage => 2,
            Exit::Failures => 3,
            Exit::MatchesAndFailures => 4,
            Exit::Fatal => 5,
            Exit::VerifyFailed => 6,
            Exit::Incomplete => 7,
            Exit::Interrupted => 130,
        }
    }
}

/// The `--help` text that documents the codes.
pub const HELP: &str = "\
Exit status:
  0    completed: every entry hashed or skipped with a reason
  1    completed, files matched an alert hash set (hashset lookup: found)
  2    usage error: nothing was read
  3    completed, but some entries failed (see their records)
  4    completed, matches found and some entries failed
  5    fatal: the scan could not run or finish
  6    verification failed: the file was altered or damaged, or the evidence changed
  7    the audit log verifies but its scan did not finish (resume it)
  130  interrupted (SIGINT/SIGTERM): the records are a complete prefix";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_documented() {
        let all = [
            Exit::Clean,
            Exit::Matches,
            Exit::Usage,
            Exit::Failures,
            Exit::MatchesAndFailures,
            Exit::Fatal,
            Exit::VerifyFailed,
            Exit::Incomplete,
            Exit::Interrupted,
        ];
        let mut codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for e in all {
            assert!(HELP.contains(&format!("\n  {:<4}", e.code())), "{e:?}");
        }
    }
}
