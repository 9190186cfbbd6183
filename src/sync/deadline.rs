//! Deadlines of bounded waits (they never expire under loom).

use std::time::Duration;

/// A point in time after which a bounded wait gives up. Under loom time does not pass, so a
/// deadline never expires there (the model explores the schedules instead).
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    #[cfg(not(feature = "loom"))]
    at: Option<std::time::Instant>,
}

impl Deadline {
    /// A deadline `d` from now; `None` waits forever.
    pub fn after(d: Option<Duration>) -> Self {
        #[cfg(feature = "loom")]
        let _ = d;
        Deadline {
            #[cfg(not(feature = "loom"))]
            at: d.and_then(|d| std::time::Instant::now().checked_add(d)),
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        #[cfg(not(feature = "loom"))]
        return self.at.is_some_and(|t| std::time::Instant::now() >= t);
        #[cfg(feature = "loom")]
        false
    }

    /// Time left before the deadline (`None` = unbounded); zero once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        #[cfg(not(feature = "loom"))]
        return self
            .at
            .map(|t| t.saturating_duration_since(std::time::Instant::now()));
        #[cfg(feature = "loom")]
        None
    }
}
