//! The progress bar on stderr: bytes, rate, ETA and the current file.

use std::io::IsTerminal;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use triage_core::Progress;

/// Whether to draw: asked for, or stderr is a terminal and not `--quiet`.
pub fn wanted(force: bool, quiet: bool) -> bool {
    force || (!quiet && std::io::stderr().is_terminal())
}

/// Draws `progress` until `done` is closed, calling `tick` at each redraw.
pub fn draw(progress: Progress, done: Receiver<()>, mut tick: impl FnMut()) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
    let counting =
        ProgressStyle::with_template("{spinner} {elapsed_precise} {bytes} {bytes_per_sec} | {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let known = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} | {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(counting);
    let mut styled = false;
    while let Err(RecvTimeoutError::Timeout) = done.recv_timeout(Duration::from_millis(100)) {
        tick();
        let s = progress.snapshot();
        if s.totals_final && !styled {
            bar.set_style(known.clone());
            styled = true;
        }
        bar.set_length(s.total_bytes.max(s.bytes_done));
        bar.set_position(s.bytes_done);
        let total = if s.totals_final {
            s.total_entries.to_string()
        } else {
            format!("{}+ (counting)", s.total_entries)
        };
        let mut current = s.current.escaped();
        if current.chars().count() > 60 {
            let tail: String = current
                .chars()
                .rev()
                .take(59)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            current = format!("…{tail}");
        }
        let failed = if s.failed > 0 {
            format!(", {} failed", s.failed)
        } else {
            String::new()
        };
        bar.set_message(format!(
            "{}/{} entries{failed} | {current}",
            s.entries_done, total
        ));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
