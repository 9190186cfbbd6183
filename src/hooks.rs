//! Named test points inside multi-step protocols, for the crash-consistency tests in `tests/`.
//!
//! A protocol that takes several stores to do one thing (claim a slot then publish it, count a
//! permit then record its holder, …) marks each gap between two stores with a named point:
//!
//! ```ignore
//! crate::hooks::at("semaphore.acquire.counted");
//! ```
//!
//! With the cargo feature `test-hooks` (never on by default), a process started with the
//! environment variable [`VAR`] set to `<action>:<point>` (or `<action>:<point>:<name>` for
//! [`at_named`]) acts when it reaches that point:
//!
//! | action | what the process does                                              |
//! | ------ | ------------------------------------------------------------------ |
//! | `kill` | `SIGKILL`s itself: death at exactly that instruction boundary      |
//! | `stop` | `SIGSTOP`s itself: a stalled peer, resumed by the test's `SIGCONT` |
//! | `park` | sleeps forever on that thread: a live peer that never proceeds     |
//!
//! Without the feature every point compiles to nothing: no environment read, no branch, on any
//! path.

/// The environment variable naming the point and the action (read once per process).
pub const VAR: &str = "SHMKIT_HOOK";

/// Test point `point` (see the module docs). Compiles to nothing without `test-hooks`.
#[inline(always)]
pub fn at(point: &str) {
    #[cfg(feature = "test-hooks")]
    imp::reached(point, None);
    #[cfg(not(feature = "test-hooks"))]
    let _ = point;
}

/// Test point `point` on the object or segment called `name`: acts only when [`VAR`] names both.
#[inline(always)]
pub fn at_named(point: &str, name: &str) {
    #[cfg(feature = "test-hooks")]
    imp::reached(point, Some(name));
    #[cfg(not(feature = "test-hooks"))]
    let _ = (point, name);
}

#[cfg(feature = "test-hooks")]
mod imp {
    use std::sync::OnceLock;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Action {
        Kill,
        Stop,
        Park,
    }

    struct Armed {
        action: Action,
        point: String,
        name: Option<String>,
    }

    fn armed() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let v = std::env::var(super::VAR).ok()?;
                let mut parts = v.splitn(3, ':');
                let action = match parts.next()? {
                    "kill" => Action::Kill,
                    "stop" => Action::Stop,
                    "park" => Action::Park,
                    _ => return None,
                };
                Some(Armed {
                    action,
                    point: parts.next()?.to_string(),
                    name: parts.next().map(str::to_string),
                })
            })
            .as_ref()
    }

    #[cold]
    fn act(action: Action) {
        match action {
            // SAFETY: kill/raise on this process with a valid signal number; no memory is
            // passed. SIGKILL does not return; SIGSTOP returns after SIGCONT.
            Action::Kill => unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            },
            // SAFETY: as above.
            Action::Stop => unsafe {
                libc::raise(libc::SIGSTOP);
            },
            Action::Park => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
        }
    }

    #[inline]
    pub(super) fn reached(point: &str, name: Option<&str>) {
        if let Some(a) = armed() {
            if a.point == point && (a.name.is_none() || a.name.as_deref() == name) {
                act(a.action);
            }
        }
    }
}
