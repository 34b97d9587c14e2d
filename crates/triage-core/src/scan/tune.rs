//! Reads in flight, tuned while the scan runs.
//!
//! The device's class is only a starting point: this VM's virtio disk says
//! `rotational=1`, and with one reader a cold scan of small files ran at
//! 0.69× `cat`'s rate where two or more readers ran 1.14× (benches/README).
//! A real spinning disk loses the other way: two streams make it seek
//! between them. So the number of files read at once starts from the
//! detected class ([`IoPolicy`](crate::source::dir::device::IoPolicy)) and
//! then follows the measured throughput: every so often the tuner tries a
//! neighbouring level for one measuring period and keeps it only if bytes
//! came in clearly faster ([`GAIN`]); otherwise it goes back and waits
//! longer before trying that direction again. A spinning disk settles at one
//! or two; virtio, SSD, NVMe and network storage climb until more reads stop
//! helping.
//!
//! Input: the scan's byte counter. Output: the current level
//! ([`Tuner::readers`]), applied to the reader gate, and the changes made
//! ([`ReadTuning`], written in the summary). Levels never change what is
//! recorded about a file, only how many are read at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::record::{ReadTuning, ReadersChange};

/// How often the byte counter is read.
const TICK: Duration = Duration::from_millis(100);
/// Length of one measuring period.
const PERIOD: Duration = Duration::from_millis(500);
/// A level is kept over its neighbour only when bytes came in this much
/// faster (relative): smaller differences are noise between periods.
const GAIN: f64 = 0.10;
/// First wait before trying a direction again after it failed; doubles on
/// each failure up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(32);
/// Changes kept in the record; later ones are counted only.
const MAX_CHANGES: usize = 64;

/// The levels tried: doubling from one, up to `max`.
fn ladder(max: usize) -> Vec<usize> {
    let mut v = vec![1];
    while *v.last().unwrap_or(&1) < max {
        let next = (v.last().unwrap_or(&1) * 2).min(max);
        v.push(next);
    }
    v
}

/// How many readers the gate lets in for `level` readers and `threads`
/// hashing threads. The pool runs at most `threads` jobs, so at or above
/// that the gate only needs to keep the queue fed: deep, so the walker
/// rarely waits.
pub(super) fn gate_depth(level: usize, threads: usize) -> usize {
    if level < threads { level } else { level * 16 }
}

/// The current level, shared between the tuner and the scan.
pub(super) struct Tuner {
    readers: AtomicUsize,
    adaptive: bool,
    ladder: Vec<usize>,
}

impl Tuner {
    /// Starts at `start` readers; `adaptive` false keeps it there (the
    /// user chose `--readers`). The ladder reaches at least `start` and
    /// `4 × threads`.
    pub(super) fn new(start: usize, threads: usize, adaptive: bool) -> Tuner {
        let start = start.max(1);
        let max = start.max(threads * 4).clamp(1, 64);
        Tuner {
            readers: AtomicUsize::new(start),
            adaptive,
            ladder: ladder(max),
        }
    }

    /// Files read at once now.
    pub(super) fn readers(&self) -> usize {
        self.readers.load(Ordering::Relaxed)
    }

    /// Runs until `done()` is true, reading `bytes()` every tick and
    /// calling `apply(level)` on every change. Returns what it did.
    pub(super) fn run(
        &self,
        bytes: impl Fn() -> u64,
        done: impl Fn() -> bool,
        apply: impl Fn(usize),
    ) -> ReadTuning {
        let start = self.readers();
        let mut tuning = ReadTuning {
            adaptive: self.adaptive,
            start,
            end: start,
            changes: Vec::new(),
            more_changes: 0,
        };
        if !self.adaptive {
            return tuning;
        }
        let t0 = Instant::now();
        let mut climb = Climb::new(&self.ladder, start);
        let mut mark = (Instant::now(), bytes());
        while !done() {
            std::thread::sleep(TICK);
            let now = Instant::now();
            let elapsed = now.duration_since(mark.0);
            if elapsed < PERIOD {
                continue;
            }
            let b = bytes();
            let rate = b.saturating_sub(mark.1) as f64 / elapsed.as_secs_f64();
            mark = (now, b);
            if let Some(level) = climb.period(rate, now.duration_since(t0)) {
                self.readers.store(level, Ordering::Relaxed);
                apply(level);
                if tuning.changes.len() < MAX_CHANGES {
                    tuning.changes.push(ReadersChange {
                        at_secs: (now.duration_since(t0).as_secs_f64() * 10.0).round() / 10.0,
                        readers: level,
                        mb_per_s: (rate / 1e6).round(),
                    });
                } else {
                    tuning.more_changes += 1;
                }
            }
        }
        tuning.end = self.readers();
        tuning
    }
}

/// The hill climb over the ladder, as plain state: fed one measured rate
/// per period, it says when to move. Kept apart from the clock and the
/// counter so tests can drive it.
struct Climb<'l> {
    ladder: &'l [usize],
    /// Index of the level held.
    at: usize,
    /// Its rate over the last period measured at it.
    held_rate: Option<f64>,
    /// A trial under way: the level tried and the direction.
    trial: Option<(usize, Direction)>,
    /// When each direction may next be tried, and its current backoff.
    up: (Duration, Duration),
    down: (Duration, Duration),
    /// The direction tried last, so the two take turns.
    last: Direction,
    /// The level changed at the end of the last period: the next one mixes
    /// work started before and after, so it is not measured.
    settling: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Direction {
    Up,
    Down,
}

impl<'l> Climb<'l> {
    fn new(ladder: &'l [usize], start: usize) -> Climb<'l> {
        let at = ladder.iter().position(|&l| l >= start).unwrap_or(0);
        Climb {
            ladder,
            at,
            held_rate: None,
            trial: None,
            up: (Duration::ZERO, BACKOFF),
            down: (Duration::ZERO, BACKOFF),
            last: Direction::Down,
            settling: false,
        }
    }

    /// One period's rate (bytes/s) at the level in force, `now` since the
    /// start. Returns the new level when it changes.
    fn period(&mut self, rate: f64, now: Duration) -> Option<usize> {
        let change = self.decide(rate, now);
        if change.is_some() {
            self.settling = true;
        }
        change
    }

    fn decide(&mut self, rate: f64, now: Duration) -> Option<usize> {
        if std::mem::take(&mut self.settling) {
            return None;
        }
        if rate <= 0.0 {
            // Nothing read (a long decode, a stall): no evidence either way.
            return None;
        }
        if let Some((tried, dir)) = self.trial.take() {
            let base = self.held_rate.unwrap_or(0.0);
            let wait = match dir {
                Direction::Up => &mut self.up,
                Direction::Down => &mut self.down,
            };
            if rate > base * (1.0 + GAIN) {
                // Better: keep it, and try further the same way soon.
                self.at = tried;
                self.held_rate = Some(rate);
                *wait = (now, BACKOFF);
                // The next trial goes on in the same direction.
                self.last = match dir {
                    Direction::Up => Direction::Down,
                    Direction::Down => Direction::Up,
                };
                return None;
            }
            // Not better: back to the level held, and wait longer.
            *wait = (now + wait.1, (wait.1 * 2).min(MAX_BACKOFF));
            return Some(self.ladder[self.at]);
        }
        self.held_rate = Some(rate);
        let can_up = self.at + 1 < self.ladder.len() && now >= self.up.0;
        let can_down = self.at > 0 && now >= self.down.0;
        // The two directions take turns (`last` is the one not to repeat).
        let dir = match (can_up, can_down) {
            (true, true) if self.last == Direction::Up => Direction::Down,
            (true, _) => Direction::Up,
            (false, true) => Direction::Down,
            (false, false) => return None,
        };
        self.last = dir;
        let tried = match dir {
            Direction::Up => self.at + 1,
            Direction::Down => self.at - 1,
        };
        self.trial = Some((tried, dir));
        Some(self.ladder[tried])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Drives the climb against a device whose rate depends on the level
    /// only; returns the level after `periods` periods.
    fn settle(
        ladder: &[usize],
        start: usize,
        device: impl Fn(usize) -> f64,
        periods: usize,
    ) -> usize {
        let mut climb = Climb::new(ladder, start);
        let mut level = start;
        for p in 0..periods {
            if let Some(l) = climb.period(device(level), secs(p as f64 * 0.5)) {
                level = l;
            }
        }
        level
    }

    #[test]
    fn the_ladder_doubles_up_to_its_top() {
        assert_eq!(ladder(8), [1, 2, 4, 8]);
        assert_eq!(ladder(6), [1, 2, 4, 6]);
        assert_eq!(ladder(1), [1]);
    }

    #[test]
    fn a_device_that_likes_parallel_reads_climbs_from_one() {
        // Virtio or SSD: more readers help up to 4, then flat.
        let device = |l: usize| 100.0 * l.min(4) as f64;
        assert_eq!(settle(&ladder(8), 1, device, 40), 4);
    }

    #[test]
    fn a_spinning_disk_stays_at_one() {
        // Two streams make it seek: throughput falls with every reader.
        let device = |l: usize| 120.0 / l as f64;
        let ladder = ladder(8);
        let mut climb = Climb::new(&ladder, 1);
        let mut level = 1;
        let mut at_two = 0;
        for p in 0..200 {
            if let Some(l) = climb.period(device(level), secs(p as f64 * 0.5)) {
                level = l;
            }
            at_two += usize::from(level > 1);
        }
        assert_eq!(level, 1);
        // Trials back off (2, 4, 8, 16, 32 s between them) and each takes
        // two periods (one settling, one measured): 100 s hold six trials.
        assert!(at_two <= 12, "{at_two} periods spent trying two readers");
    }

    #[test]
    fn a_spinning_disk_taken_for_an_ssd_comes_down() {
        // A USB bridge hiding a spinning disk: detection said 8 readers.
        let device = |l: usize| 120.0 / l as f64;
        assert_eq!(settle(&ladder(8), 8, device, 40), 1);
    }

    #[test]
    fn a_flat_device_keeps_its_start() {
        // CPU-bound (page cache): no level is clearly better, none is taken.
        let device = |_l: usize| 500.0;
        assert_eq!(settle(&ladder(8), 8, device, 100), 8);
        assert_eq!(settle(&ladder(8), 2, device, 100), 2);
    }

    #[test]
    fn periods_without_bytes_decide_nothing() {
        let ladder = ladder(8);
        let mut climb = Climb::new(&ladder, 2);
        for p in 0..10 {
            assert_eq!(climb.period(0.0, secs(p as f64)), None);
        }
    }

    #[test]
    fn gate_depth_is_the_level_below_the_thread_count_and_deep_above() {
        assert_eq!(gate_depth(1, 2), 1);
        assert_eq!(gate_depth(2, 2), 32);
        assert_eq!(gate_depth(8, 2), 128);
    }

    #[test]
    fn a_fixed_level_never_changes() {
        let tuner = Tuner::new(3, 2, false);
        let t = tuner.run(|| 0, || true, |_| panic!("no change expected"));
        assert_eq!((t.start, t.end, t.changes.len()), (3, 3, 0));
        assert!(!t.adaptive);
    }
}
