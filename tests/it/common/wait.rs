//! Waiting for a state instead of sleeping. `wait_until!` fails the test with the condition it
//! waited for (and any context given, computed only then); `stays` checks that something keeps
//! holding for a while, the only honest way to see that a thing does not happen.

use std::time::{Duration, Instant};

/// `wait_until!(timeout, || cond)` or `wait_until!(timeout, || cond, "context {}", x)`: polls
/// every 50 ms until the condition holds; otherwise fails, naming the condition.
macro_rules! wait_until {
    ($timeout:expr, $cond:expr $(,)?) => {
        $crate::common::wait::wait_or_fail($timeout, $cond, stringify!($cond), String::new)
    };
    ($timeout:expr, $cond:expr, $($context:tt)+) => {
        $crate::common::wait::wait_or_fail($timeout, $cond, stringify!($cond), || {
            format!($($context)+)
        })
    };
}

#[track_caller]
pub fn wait_or_fail(
    timeout: Duration,
    cond: impl FnMut() -> bool,
    what: &str,
    context: impl FnOnce() -> String,
) {
    if !poll_until(timeout, cond) {
        panic!(
            "gave up after {timeout:?} waiting for {what}\n{}",
            context()
        );
    }
}

/// Checks `cond` every 50 ms for `period`; fails the test naming `what` the first time it
/// does not hold.
#[track_caller]
pub fn stays(what: &str, period: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + period;
    loop {
        assert!(cond(), "no longer true: {what}");
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The polling under both, for the guards that must clean up before they fail.
pub(crate) fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
