//! Who holds what: process identity and liveness, for detecting peers that died.
//!
//! A pid alone is not an identity: the kernel reuses pids. shmkit records a pid together with the
//! process's start time (field 22 of `/proc/<pid>/stat`, in clock ticks since boot); a process is
//! taken for the recorded owner only when both match. Where the start time was not recorded (it is
//! written after the claim), the pid alone decides.

use std::sync::OnceLock;

/// This process's id.
#[inline]
pub fn pid() -> u32 {
    std::process::id()
}

/// This thread's kernel thread id (`gettid`).
#[inline]
pub fn tid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// Start time of this process, in clock ticks since boot (0 if `/proc` is unavailable).
pub fn start_time() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| start_time_of(pid()).unwrap_or(0))
}

/// Start time of process `pid` in clock ticks since boot, or `None` if it does not exist.
pub fn start_time_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces or ')': split after the
    // last ')'. Fields after it start with field 3 (state); start time is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Whether a process with this pid exists now (zombies count as dead).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        if let Some(i) = stat.rfind(')') {
            let state = stat[i + 1..].split_ascii_whitespace().next();
            return !matches!(state, Some("Z") | Some("X") | Some("x"));
        }
        return true;
    }
    // No /proc entry: fall back to kill(pid, 0).
    // SAFETY: signal 0 performs only the existence and permission check; nothing is delivered.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether the process recorded as (`pid`, `start`) is still running. `start == 0` means the start
/// time was not recorded, and the pid alone decides.
pub fn owner_alive(pid: u32, start: u64) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    if start == 0 {
        return true;
    }
    match start_time_of(pid) {
        Some(s) => s == start,
        None => pid_alive(pid),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn self_is_alive_and_stable() {
        assert!(start_time() > 0);
        assert!(owner_alive(pid(), start_time()));
        assert!(
            !owner_alive(pid(), start_time() + 1),
            "start time must be compared"
        );
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }

    #[test]
    fn reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = child.id();
        child.wait().unwrap();
        // The pid may in theory be reused at once; with its start time recorded that is harmless.
        assert!(!pid_alive(p) || start_time_of(p).is_some());
    }
}
