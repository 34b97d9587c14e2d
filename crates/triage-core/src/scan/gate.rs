//! The gate: a bound on work in flight (entries walked but not yet
//! recorded, files being read), with hysteresis.

use std::sync::{Condvar, Mutex};

/// A bound on work in flight, with hysteresis: a producer that hits the
/// bound sleeps until the count falls to `resume_at`, so with a deep bound it
/// wakes once per many completions instead of once per file (a wake-up costs
/// more than hashing a small file). Completions signal only when a producer
/// is actually waiting.
pub(super) struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

struct GateState {
    in_flight: usize,
    waiting: bool,
    max: usize,
    resume_at: usize,
}

/// The count a waiting producer wakes at, for a bound of `max`.
fn resume_at(max: usize) -> usize {
    if max >= 8 { max / 2 } else { max - 1 }
}

impl Gate {
    pub(super) fn new(max: usize) -> Self {
        let max = max.max(1);
        Gate {
            state: Mutex::new(GateState {
                in_flight: 0,
                waiting: false,
                max,
                resume_at: resume_at(max),
            }),
            cv: Condvar::new(),
        }
    }

    /// Moves the bound (the read tuner does, as it measures throughput).
    /// Work already in flight above a lowered bound finishes; no new work
    /// enters until the count is back under it.
    pub(super) fn set_max(&self, max: usize) {
        let max = max.max(1);
        let mut st = self.lock();
        st.max = max;
        st.resume_at = resume_at(max);
        if st.waiting && st.in_flight <= st.resume_at {
            drop(st);
            self.cv.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot, waiting (with hysteresis) when all are taken.
    pub(super) fn enter(&self) {
        let mut st = self.lock();
        if st.in_flight >= st.max {
            st.waiting = true;
            while st.in_flight > st.resume_at {
                st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.waiting = false;
        }
        st.in_flight += 1;
    }

    /// Gives a slot back.
    pub(super) fn leave(&self) {
        let mut st = self.lock();
        st.in_flight -= 1;
        if st.waiting && st.in_flight <= st.resume_at {
            drop(st);
            self.cv.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn raising_the_bound_lets_a_waiting_producer_in() {
        let gate = Gate::new(1);
        gate.enter();
        let entered = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                gate.enter();
                entered.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !entered.load(Ordering::SeqCst),
                "the bound of one was passed"
            );
            gate.set_max(2);
        });
        assert!(entered.load(Ordering::SeqCst));
    }

    #[test]
    fn a_lowered_bound_holds_new_work_until_the_count_falls_under_it() {
        let gate = Gate::new(4);
        for _ in 0..3 {
            gate.enter();
        }
        gate.set_max(1);
        let entered = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                gate.enter();
                entered.store(true, Ordering::SeqCst);
            });
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(30));
                assert!(!entered.load(Ordering::SeqCst));
                gate.leave();
            }
            std::thread::sleep(Duration::from_millis(30));
            assert!(
                !entered.load(Ordering::SeqCst),
                "entered with one still in flight"
            );
            gate.leave();
        });
        assert!(entered.load(Ordering::SeqCst));
    }
}
