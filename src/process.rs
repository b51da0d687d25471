//! Process groups: the only place that sends signals. Agents and codex run in their own
//! process group so that stopping one also stops everything it started.

use std::time::{Duration, Instant};

/// Sends `signal` to every process in group `pgid`. Ok(false) when the group is gone.
pub fn signal_group(pgid: i32, signal: i32) -> std::io::Result<bool> {
    if pgid <= 1 {
        return Err(std::io::Error::other(format!(
            "refusing to signal process group {pgid}"
        )));
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Whether any process of group `pgid` still exists.
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

/// Whether process `pid` exists (a zombie counts as gone).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_field(&stat, 3).is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat). With the pid
/// it identifies a process across pid reuse: recovery adopts an agent only if both match.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_field(&stat, 22)?.parse().ok()
}

/// Field `n` (1-based, as in proc(5)) of a /proc/PID/stat line; the command name in field 2
/// may hold spaces and parentheses, so fields are counted after its closing parenthesis.
fn stat_field(stat: &str, n: usize) -> Option<String> {
    let after = &stat[stat.rfind(')')? + 1..];
    after
        .split_whitespace()
        .nth(n.checked_sub(3)?)
        .map(str::to_string)
}

/// SIGTERM to the group, up to `grace` for it to go, then SIGKILL. Returns true when SIGKILL
/// was needed. The caller still reaps its own direct child.
pub fn terminate_group(pgid: i32, grace: Duration) -> bool {
    if !matches!(signal_group(pgid, libc::SIGTERM), Ok(true)) {
        return false;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !group_alive(pgid) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = signal_group(pgid, libc::SIGKILL);
    true
}

/// SIGTERM to the leader `pid` alone first, up to `grace` for it to exit, then
/// `terminate_group`. Claude Code cleans up the Bash commands it started (which run in their
/// own sessions, out of reach of a group signal) only when it gets SIGTERM itself and has the
/// time to act on it. Returns true when SIGKILL was needed.
pub fn terminate_leader_then_group(pid: i32, pgid: i32, grace: Duration) -> bool {
    if pid > 1 {
        // SAFETY: kill(2) on one pid; no memory is shared.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && pid_alive(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    terminate_group(pgid, grace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let stat = "123 (a b) c) S 1 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0";
        assert_eq!(stat_field(stat, 3).as_deref(), Some("S"));
        assert_eq!(stat_field(stat, 22).as_deref(), Some("98765"));
    }

    #[test]
    fn terminate_group_kills_grandchildren_and_term_ignorers() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 60 & sleep 60"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        std::thread::sleep(Duration::from_millis(100));
        assert!(group_alive(pgid));
        assert!(pid_start_time(pgid).is_some());
        terminate_group(pgid, Duration::from_millis(300));
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!group_alive(pgid), "a process of the group survived");
    }
}

/// Makes this process non-dumpable: other processes of the same user can then neither read
/// its memory nor `/proc/PID/environ` (the files under `/proc/PID` become root's), and it
/// leaves no core dump. wg processes may hold the endpoint's API key (the coordinator, the
/// handler and its credential proxy, `wg evaluate`, `wg doctor`) while the agent's commands run
/// as the same user. The flag is reset when a child execs, so agents are unaffected; only
/// root (or CAP_SYS_PTRACE) can still look inside.
pub fn make_non_dumpable() -> std::io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether this process is dumpable (`PR_GET_DUMPABLE`).
pub fn is_dumpable() -> bool {
    // SAFETY: PR_GET_DUMPABLE only returns a value.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}
