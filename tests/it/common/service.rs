//! The one guard for a coordinator a test starts: whatever happens to the test, dropping it
//! stops the coordinator (our child, or a background one found by its lock file) and every
//! agent of the project.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::wait::poll_until;
use super::{to_run, Run, TestEnv};

pub struct Coordinator {
    child: Option<Child>,
    wg_dir: PathBuf,
}

impl Coordinator {
    /// `wg service start --foreground ARGS`.
    pub fn start(env: &TestEnv, args: &[&str]) -> Coordinator {
        let mut all = vec!["service", "start", "--foreground"];
        all.extend_from_slice(args);
        Coordinator::run(env, &all)
    }

    /// `wg ARGS` for a command line that starts a coordinator some other way (for example
    /// `service start --until-done` without `--foreground`).
    pub fn run(env: &TestEnv, args: &[&str]) -> Coordinator {
        let child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start coordinator");
        Coordinator {
            child: Some(child),
            wg_dir: env.wg_dir(),
        }
    }

    /// Guards a background coordinator the test starts itself (`wg service start`).
    pub fn background(env: &TestEnv) -> Coordinator {
        Coordinator {
            child: None,
            wg_dir: env.wg_dir(),
        }
    }

    /// Waits for an `--until-done` run to end; fails with its output if it does not.
    pub fn wait(mut self, timeout: Duration) -> Run {
        let mut child = self.child.take().expect("running");
        let ended = poll_until(timeout, || child.try_wait().unwrap().is_some());
        if !ended {
            let _ = child.kill();
        }
        let run = to_run(child.wait_with_output().unwrap());
        assert!(
            ended,
            "coordinator did not finish within {timeout:?}:\n{run}"
        );
        run
    }

    /// Whether the process has exited (without reaping its output).
    pub fn finished(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A background coordinator is not our child: find it by the pid in its lock file.
        if let Some(pid) = std::fs::read_to_string(self.wg_dir.join("service/coordinator.lock"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("service") {
                // SAFETY: signalling the coordinator this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        kill_agents_of(&self.wg_dir);
    }
}

/// Kills every process whose environment points at this project (agents a killed coordinator
/// left behind), so no test leaks processes.
pub fn kill_agents_of(wg_dir: &Path) {
    for pid in procs_with_env("WG_DIR", &wg_dir.display().to_string()) {
        // SAFETY: signalling processes this test started.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

pub fn procs_with_env(key: &str, value: &str) -> Vec<i32> {
    let needle = format!("{key}={value}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) && alive(pid) {
                out.push(pid);
            }
        }
    }
    out
}

/// A live (non-zombie) process.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s[s.rfind(')')? + 1..]
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .is_some_and(|st| st != "Z" && st != "X")
}
