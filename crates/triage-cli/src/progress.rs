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

/// The bar's styles for a terminal `cols` wide: (while counting, totals
/// known). The fixed parts must fit, or the line wraps and each redraw
/// scrolls; the message (`{wide_msg}`) gets what is left, cut to fit.
fn styles(cols: u16) -> (ProgressStyle, ProgressStyle) {
    let (counting, known) = if cols >= 100 {
        (
            "{spinner} {elapsed_precise} {bytes} {bytes_per_sec} | {wide_msg}",
            "{elapsed_precise} [{bar:20}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} | {wide_msg}",
        )
    } else if cols >= 60 {
        (
            "{spinner} {bytes} {bytes_per_sec} {wide_msg}",
            "{percent:>3}% {bytes}/{total_bytes} ETA {eta} {wide_msg}",
        )
    } else {
        (
            "{spinner} {bytes} {wide_msg}",
            "{percent:>3}% ETA {eta} {wide_msg}",
        )
    };
    let style = |t: &str| {
        ProgressStyle::with_template(t)
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .progress_chars("=> ")
    };
    (style(counting), style(known))
}

/// The terminal's width (80 when stderr is not a terminal: `--progress`).
fn columns() -> u16 {
    console::Term::stderr()
        .size_checked()
        .map_or(80, |(_, cols)| cols)
}

/// Draws `progress` until `done` is closed, calling `tick` at each redraw.
/// The line is fitted to the terminal's width at every redraw (see
/// [`styles`]), so it never wraps, also after a resize.
pub fn draw(progress: Progress, done: Receiver<()>, mut tick: impl FnMut()) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
    let mut cols = columns();
    let (mut counting, mut known) = styles(cols);
    bar.set_style(counting.clone());
    let mut styled = false;
    while let Err(RecvTimeoutError::Timeout) = done.recv_timeout(Duration::from_millis(100)) {
        tick();
        let s = progress.snapshot();
        let now = columns();
        if now != cols {
            cols = now;
            (counting, known) = styles(cols);
            bar.set_style(if styled {
                known.clone()
            } else {
                counting.clone()
            });
        }
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
