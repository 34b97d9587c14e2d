//! The one place a test decides it cannot run here.
//!
//! A check that needs an outside tool (hashdeep, b3sum, xmllint,
//! case_validate, setpriv, openssl), root (mount, mknod) or `../shared`
//! calls [`skip`] when it is missing. Under `CI=true` that is a failure:
//! CI installs everything, so a missing piece means a check did not run,
//! and CI must not pass what it did not check. Elsewhere the test goes on
//! without the check, and says so where the user sees it: straight to the
//! terminal (not through the test harness's capture) and, when
//! `TRIAGE_SKIP_LOG` names a file (`scripts/test` sets it), into that file
//! for the summary at the end.

use std::io::Write;

/// Records that the calling test cannot run a check: `reason` says what is
/// missing and how to get it. Panics under `CI=true`.
#[track_caller]
pub fn skip(reason: &str) {
    let at = std::panic::Location::caller();
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run a check under CI=true: {reason} ({at})");
    }
    let line = format!("SKIPPED {test}: {reason} ({at})\n");
    // `io::stderr()` is not captured by the test harness (only the print
    // macros are), so this shows without --nocapture.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("TRIAGE_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
