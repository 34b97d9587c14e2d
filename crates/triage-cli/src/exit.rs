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

/// One rule for every command: 2 when what was asked for cannot be done
/// as asked (a bad flag, a missing or wrong input, an output in the way;
/// nothing was read or written), 5 when an I/O failure stopped the work, 6
/// when an input or the evidence is altered or damaged. The other codes
/// are results. Each command's `--help` lists the codes it returns, with
/// what each means for it.
pub type Codes = &'static [(Exit, &'static str)];

const USAGE: (Exit, &str) = (
    Exit::Usage,
    "usage error, or an input missing or of the wrong kind: nothing was done",
);
const FATAL: (Exit, &str) = (
    Exit::Fatal,
    "an I/O failure stopped it (e.g. the disk is full)",
);

/// `triage scan`.
pub const SCAN: Codes = &[
    (
        Exit::Clean,
        "completed: every entry hashed or skipped with a reason",
    ),
    (
        Exit::Matches,
        "completed, files matched an alert hash set (known-good hits and empty-file digests do not count)",
    ),
    USAGE,
    (
        Exit::Failures,
        "completed, but some entries failed (see their records), or with --verify-image the medium is not what was acquired",
    ),
    (
        Exit::MatchesAndFailures,
        "completed, matches found and some entries failed",
    ),
    (
        Exit::Fatal,
        "the scan could not run or finish (e.g. the output disk is full)",
    ),
    (
        Exit::VerifyFailed,
        "a hash set (or, with --resume, the log) is altered or damaged: nothing was scanned",
    ),
    (
        Exit::Interrupted,
        "interrupted (SIGINT/SIGTERM): the log is closed, its records a complete prefix",
    ),
];

/// `triage verify`.
pub const VERIFY: Codes = &[
    (
        Exit::Clean,
        "the log verifies and its scan finished (and the evidence is unchanged)",
    ),
    USAGE,
    FATAL,
    (
        Exit::VerifyFailed,
        "the log was altered or damaged (or, with --evidence, the evidence changed)",
    ),
    (
        Exit::Incomplete,
        "the log verifies but its scan did not finish (`triage scan --resume` finishes it)",
    ),
];

/// `triage report`.
pub const REPORT: Codes = &[
    (
        Exit::Clean,
        "the report is written from a verified, finished log",
    ),
    USAGE,
    FATAL,
    (
        Exit::VerifyFailed,
        "the log was altered or damaged: no report",
    ),
    (
        Exit::Incomplete,
        "written, but the log's scan did not finish: the report covers what it recorded",
    ),
];

/// `triage verify-image`.
pub const VERIFY_IMAGE: Codes = &[
    (
        Exit::Clean,
        "every digest stored in the image matches its medium (or none is stored: the computed ones are printed)",
    ),
    USAGE,
    (
        Exit::VerifyFailed,
        "the medium does not match a digest stored in it, or parts of it cannot be read (listed)",
    ),
];

/// `triage keygen`.
pub const KEYGEN: Codes = &[(Exit::Clean, "the key pair is written"), USAGE, FATAL];

/// `triage hash-image`.
pub const HASH_IMAGE: Codes = &[
    (Exit::Clean, "every file was hashed"),
    USAGE,
    (
        Exit::Failures,
        "some files could not be read or decoded (said on stderr)",
    ),
    FATAL,
];

/// `triage hashset import`.
pub const IMPORT: Codes = &[
    (Exit::Clean, "the index is written"),
    USAGE,
    (
        Exit::Failures,
        "the index is written, but some lines were rejected (listed on stderr)",
    ),
    (
        Exit::Fatal,
        "nothing was written: a list is truncated, unreadable or holds no entry, or writing failed",
    ),
];

/// `triage hashset info`.
pub const INFO: Codes = &[
    (Exit::Clean, "described"),
    USAGE,
    FATAL,
    (Exit::VerifyFailed, "the index is truncated or damaged"),
];

/// `triage hashset verify`.
pub const SET_VERIFY: Codes = &[
    (Exit::Clean, "the index verifies"),
    USAGE,
    FATAL,
    (Exit::VerifyFailed, "the index was altered or damaged"),
];

/// `triage hashset lookup`.
pub const LOOKUP: Codes = &[
    (Exit::Clean, "none of the hashes is in the set"),
    (Exit::Matches, "found"),
    USAGE,
    FATAL,
    (Exit::VerifyFailed, "the index is truncated or damaged"),
];

/// Every command and its codes, for the help texts and the tests.
pub const COMMANDS: &[(&[&str], Codes)] = &[
    (&["scan"], SCAN),
    (&["verify"], VERIFY),
    (&["verify-image"], VERIFY_IMAGE),
    (&["report"], REPORT),
    (&["keygen"], KEYGEN),
    (&["hash-image"], HASH_IMAGE),
    (&["hashset", "import"], IMPORT),
    (&["hashset", "info"], INFO),
    (&["hashset", "verify"], SET_VERIFY),
    (&["hashset", "lookup"], LOOKUP),
];

/// The `Exit status:` section of a command's `--help`.
pub fn help(codes: Codes) -> String {
    let mut s = String::from("Exit status:");
    for (e, what) in codes {
        s.push_str(&format!("\n  {:<4} {what}", e.code()));
    }
    s
}

/// The top-level `--help`: the rule every command follows.
pub const HELP: &str = "\
Exit status (each command's --help lists its own):
  0    done, nothing to report
  1    found: files matched an alert set (scan), a hash is in the set (hashset lookup)
  2    usage error, or an input missing or of the wrong kind: nothing was done
  3    done, but some items failed or were rejected (their records say why)
  4    scan: matches found and some entries failed
  5    an I/O failure stopped the command (e.g. the disk is full)
  6    an input or the evidence is altered or damaged
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
        for (cmd, codes) in COMMANDS {
            let mut seen: Vec<u8> = codes.iter().map(|(e, _)| e.code()).collect();
            let n = seen.len();
            seen.dedup();
            assert_eq!(seen.len(), n, "{cmd:?} lists a code twice");
            assert!(seen.is_sorted(), "{cmd:?} in order");
        }
    }
}
