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
    max: usize,
    resume_at: usize,
}

struct GateState {
    in_flight: usize,
    waiting: bool,
}

impl Gate {
    pub(super) fn new(max: usize) -> Self {
        let max = max.max(1);
        Gate {
            state: Mutex::new(GateState {
                in_flight: 0,
                waiting: false,
            }),
            cv: Condvar::new(),
            max,
            resume_at: if max >= 8 { max / 2 } else { max - 1 },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot, waiting (with hysteresis) when all are taken.
    pub(super) fn enter(&self) {
        let mut st = self.lock();
        if st.in_flight >= self.max {
            st.waiting = true;
            while st.in_flight > self.resume_at {
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
        if st.waiting && st.in_flight <= self.resume_at {
            drop(st);
            self.cv.notify_one();
        }
    }
}
