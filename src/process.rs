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

/// Makes the child started by `cmd` die (SIGKILL) when the thread that starts it ends: an
/// agent CLI must not outlive the `wg handler` that runs its turn, or the turn would run on
/// while the coordinator starts another agent for it. The caller must spawn from a thread
/// that lives as long as the child should (the handler's single runtime thread).
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the request took effect.
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
}

/// Whether any process of group `pgid` still runs (zombies do not count).
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    if pgid <= 1 || unsafe { libc::kill(-pgid, 0) } != 0 {
        return false;
    }
    // kill(2) counts zombies too. An agent orphaned by a killed coordinator is reaped by PID 1,
    // and a PID 1 that never reaps (common in containers) leaves it a zombie for good: the
    // group would look alive until a grace period ran out and SIGKILL went to nobody.
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return true;
    };
    rd.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            return false;
        };
        let Some(stat) = read_stat(pid) else {
            return false;
        };
        let pgrp = stat_field(&stat, 5).and_then(|g| g.parse::<i32>().ok());
        pgrp == Some(pgid) && stat_field(&stat, 3).is_some_and(|s| s != "Z" && s != "X")
    })
}

/// Whether process `pid` exists (a zombie counts as gone).
pub fn pid_alive(pid: i32) -> bool {
    read_stat(pid).is_some_and(|stat| stat_field(&stat, 3).is_some_and(|s| s != "Z" && s != "X"))
}

/// /proc/PID/stat, decoded lossily: the command name in it is whatever bytes the program's
/// file name had, and a name that is not UTF-8 must not make a live process look gone.
fn read_stat(pid: i32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat). With the pid
/// it identifies a process across pid reuse: recovery adopts an agent only if both match.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    stat_field(&read_stat(pid)?, 22)?.parse().ok()
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

/// Sends `signal` to the single process `pid` (not its group). Ok(false) when it is gone.
pub fn signal_pid(pid: i32, signal: i32) -> std::io::Result<bool> {
    if pid <= 1 {
        return Err(std::io::Error::other(format!(
            "refusing to signal process {pid}"
        )));
    }
    // SAFETY: kill(2) on one pid; no memory is shared.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// How to stop a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopHow {
    /// SIGTERM to the group, up to the grace period for it to go, then SIGKILL.
    Graceful(Duration),
    /// SIGTERM to the group's leader alone first, up to the grace period for it to exit, then
    /// `Graceful`. Claude Code cleans up the Bash commands it started (which run in their own
    /// sessions, out of reach of a group signal) only when it gets SIGTERM itself and has the
    /// time to act on it.
    LeaderFirst(Duration),
    /// SIGKILL now.
    Now,
}

/// How often a stop checks whether the processes are gone.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// One stop of a process group as a sequence of steps. Blocking and async callers drive the
/// same sequence ([`terminate_blocking`], [`terminate`]); they differ only in how they wait
/// between steps and how they reap their own child (a zombie leader keeps a group "alive").
#[derive(Debug)]
pub struct Termination {
    pgid: i32,
    how: StopHow,
    phase: Phase,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Start,
    /// The leader got SIGTERM; waiting for it until then.
    Leader(Instant),
    /// The group got SIGTERM; waiting for it until then.
    Group(Instant),
    Over {
        killed: bool,
    },
}

/// What the driver of a [`Termination`] does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reap the own child if any, wait this long, then call `step` again.
    Wait(Duration),
    /// Everything is signalled; `killed` says whether SIGKILL was needed.
    Done { killed: bool },
}

impl Termination {
    pub fn new(pgid: i32, how: StopHow) -> Termination {
        Termination {
            pgid,
            how,
            phase: Phase::Start,
        }
    }

    /// Sends the next signal when it is due and says what to do next.
    pub fn step(&mut self) -> Step {
        let now = Instant::now();
        loop {
            match self.phase {
                Phase::Start => match self.how {
                    StopHow::Now => self.phase = self.kill(),
                    StopHow::Graceful(grace) => self.phase = self.term_group(now, grace),
                    StopHow::LeaderFirst(grace) => {
                        if matches!(signal_pid(self.pgid, libc::SIGTERM), Ok(true)) {
                            self.phase = Phase::Leader(now + grace);
                        } else {
                            self.phase = self.term_group(now, grace);
                        }
                    }
                },
                Phase::Leader(until) => {
                    if now < until && pid_alive(self.pgid) {
                        return Step::Wait(STOP_CHECK);
                    }
                    let grace = match self.how {
                        StopHow::LeaderFirst(g) | StopHow::Graceful(g) => g,
                        StopHow::Now => Duration::ZERO,
                    };
                    self.phase = self.term_group(now, grace);
                }
                Phase::Group(until) => {
                    if !group_alive(self.pgid) {
                        self.phase = Phase::Over { killed: false };
                    } else if now < until {
                        return Step::Wait(STOP_CHECK);
                    } else {
                        self.phase = self.kill();
                    }
                }
                Phase::Over { killed } => return Step::Done { killed },
            }
        }
    }

    fn term_group(&self, now: Instant, grace: Duration) -> Phase {
        if grace.is_zero() {
            return self.kill();
        }
        match signal_group(self.pgid, libc::SIGTERM) {
            Ok(true) => Phase::Group(now + grace),
            _ => Phase::Over { killed: false },
        }
    }

    fn kill(&self) -> Phase {
        let killed =
            group_alive(self.pgid) && matches!(signal_group(self.pgid, libc::SIGKILL), Ok(true));
        Phase::Over { killed }
    }
}

/// Stops the whole group of `pgid`, blocking the thread. `reap` reaps the caller's own child
/// (if it has one in the group) between checks. Returns true when SIGKILL was needed.
pub fn terminate_blocking(pgid: i32, how: StopHow, mut reap: impl FnMut()) -> bool {
    let mut t = Termination::new(pgid, how);
    loop {
        reap();
        match t.step() {
            Step::Wait(d) => std::thread::sleep(d),
            Step::Done { killed } => return killed,
        }
    }
}

/// Stops the whole group of `pgid` from async code. With `child` (our own child) it is reaped
/// on the way and waited for at the end. Returns true when SIGKILL was needed.
pub async fn terminate(
    pgid: i32,
    mut child: Option<&mut tokio::process::Child>,
    how: StopHow,
) -> bool {
    let mut t = Termination::new(pgid, how);
    let killed = loop {
        if let Some(c) = child.as_deref_mut() {
            let _ = c.try_wait();
        }
        match t.step() {
            Step::Wait(d) => tokio::time::sleep(d).await,
            Step::Done { killed } => break killed,
        }
    };
    if let Some(c) = child {
        let _ = c.wait().await;
    }
    killed
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
    fn a_live_process_whose_name_is_not_utf8_is_alive() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = dir.path().join(std::ffi::OsStr::from_bytes(b"sl\xffeep"));
        std::os::unix::fs::symlink("/bin/sleep", &name).unwrap();
        let mut child = std::process::Command::new(&name).arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        // Until the exec has happened, the name is still the test's own.
        while !std::fs::read(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(&0xff))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let alive = pid_alive(pid);
        let started = pid_start_time(pid);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(alive, "a running process was taken for gone");
        assert!(started.is_some());
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
        let killed =
            terminate_blocking(pgid, StopHow::Graceful(Duration::from_millis(300)), || {
                let _ = child.try_wait();
            });
        assert!(killed, "the TERM-ignoring shell needed SIGKILL");
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!group_alive(pgid), "a process of the group survived");
    }

    #[test]
    fn a_group_of_zombies_is_not_alive_and_stops_at_once() {
        // Not reaped on purpose: the leader stays a zombie, as an orphan does under a PID 1
        // that never reaps.
        let mut child = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid_alive(pgid), "the child did not end");
        assert!(!group_alive(pgid), "a zombie counted as a live group");
        let start = Instant::now();
        let killed = terminate_blocking(pgid, StopHow::Graceful(Duration::from_secs(5)), || {});
        assert!(!killed && start.elapsed() < Duration::from_secs(2));
        child.wait().unwrap();
    }
}
