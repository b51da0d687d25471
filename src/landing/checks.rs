//! Running a task's checks and keeping their record, `.wg/tasks/<id>/checks.jsonl`: one line
//! per command run, on the task's own workspace (`stage = "task"`) or on the merged result in
//! the merge queue (`stage = "merged"`).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::store::jsonl;
use crate::store::layout::Layout;
use crate::time::now_rfc3339;

/// Where a check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStage {
    /// In the task's workspace, after its `wg done`.
    Task,
    /// On the task's branch merged onto the base tip (the merge queue).
    Merged,
}

/// One line of `checks.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub ts: String,
    pub task: String,
    pub stage: CheckStage,
    /// The round (1 for the first `wg done`, counting every check and queue round).
    pub round: u32,
    pub command: String,
    /// The commit checked (the workspace's HEAD, or the merged commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `None` when it was killed (timeout) or could not start.
    pub exit_code: Option<i32>,
    pub passed: bool,
    #[serde(default)]
    pub timed_out: bool,
    pub duration_ms: u64,
    /// The tail of stdout and stderr, interleaved as written.
    pub output: String,
}

pub fn path(layout: &Layout, id: &str) -> std::path::PathBuf {
    layout.task_file(id, "checks.jsonl")
}

pub fn append(layout: &Layout, rec: &CheckRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(layout.task_dir(&rec.task))?;
    jsonl::append(&path(layout, &rec.task), rec, false)
}

/// Every check record of a task, oldest first; none when the file is missing.
pub fn read(layout: &Layout, id: &str) -> Vec<CheckRecord> {
    jsonl::read_all(&path(layout, id)).unwrap_or_default()
}

/// The records of the last run of `stage` (the last round's lines).
pub fn last_run(records: &[CheckRecord], stage: CheckStage) -> Vec<&CheckRecord> {
    let Some(last) = records.iter().rev().find(|r| r.stage == stage) else {
        return Vec::new();
    };
    records
        .iter()
        .filter(|r| r.stage == stage && r.round == last.round)
        .collect()
}

/// Whether the task's latest checks on its own workspace failed.
pub fn last_failed(layout: &Layout, id: &str) -> bool {
    last_run(&read(layout, id), CheckStage::Task)
        .iter()
        .any(|r| !r.passed)
}

/// The last run on the task's workspace and the last on a merged result, for `wg show`.
pub fn describe(records: &[CheckRecord]) -> String {
    let mut s = String::new();
    for stage in [CheckStage::Task, CheckStage::Merged] {
        let run = last_run(records, stage);
        let Some(first) = run.first() else { continue };
        let on = match stage {
            CheckStage::Task => "its workspace".to_string(),
            CheckStage::Merged => format!(
                "merged {}",
                first
                    .commit
                    .as_deref()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or("?")
            ),
        };
        s.push_str(&format!("\nchecks: round {} on {on}\n", first.round));
        for r in &run {
            let how = match (r.passed, r.timed_out, r.exit_code) {
                (true, _, _) => "passed".to_string(),
                (_, true, _) => "timed out".to_string(),
                (_, _, Some(c)) => format!("failed (exit {c})"),
                _ => "did not run".to_string(),
            };
            s.push_str(&format!(
                "  {how:<16} {} ({} ms)\n",
                r.command, r.duration_ms
            ));
            if !r.passed {
                for line in r
                    .output
                    .lines()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    s.push_str(&format!("    | {line}\n"));
                }
            }
        }
    }
    s
}

/// What to run, and where.
pub struct Run<'a> {
    pub task: &'a str,
    pub stage: CheckStage,
    pub round: u32,
    pub dir: &'a Path,
    pub commit: Option<String>,
    pub timeout: Duration,
    pub tail_chars: usize,
}

/// Runs `commands` in order under `sh -c`, recording each; stops at the first failure.
/// Returns the records (the last one failed, or all passed).
pub fn run_all(layout: &Layout, run: &Run<'_>, commands: &[String]) -> Vec<CheckRecord> {
    let mut out = Vec::new();
    for c in commands {
        let rec = run_one(layout, run, c);
        let _ = append(layout, &rec);
        let passed = rec.passed;
        out.push(rec);
        if !passed {
            break;
        }
    }
    out
}

/// One command: its own process group (a timeout kills everything it started), stdout and
/// stderr into one file so a chatty command never blocks on a full pipe.
fn run_one(layout: &Layout, run: &Run<'_>, command: &str) -> CheckRecord {
    let started = Instant::now();
    let mut rec = CheckRecord {
        ts: now_rfc3339(),
        task: run.task.to_string(),
        stage: run.stage,
        round: run.round,
        command: command.to_string(),
        commit: run.commit.clone(),
        exit_code: None,
        passed: false,
        timed_out: false,
        duration_ms: 0,
        output: String::new(),
    };
    let out_path = layout.task_file(run.task, "check.out");
    let result = (|| -> std::io::Result<(Option<i32>, bool)> {
        std::fs::create_dir_all(layout.task_dir(run.task))?;
        let file = std::fs::File::create(&out_path)?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(run.dir)
            .env("WG_TASK_ID", run.task)
            .env("WG_CHECK_STAGE", format!("{:?}", run.stage).to_lowercase())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0);
        // A coordinator killed mid-check takes its check along (the restart runs it again).
        // SAFETY: only prctl, async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
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
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pgid = child.id() as i32;
        loop {
            if let Some(status) = child.try_wait()? {
                // Whatever it left running in its group goes with it.
                let _ = crate::process::signal_group(pgid, libc::SIGKILL);
                return Ok((status.code(), false));
            }
            if started.elapsed() >= run.timeout {
                let _ = crate::process::signal_group(pgid, libc::SIGKILL);
                let _ = child.wait();
                return Ok((None, true));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })();
    rec.duration_ms = started.elapsed().as_millis() as u64;
    let text = std::fs::read(&out_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let mut output = super::tail(&text, run.tail_chars);
    match result {
        Ok((code, timed_out)) => {
            rec.exit_code = code;
            rec.timed_out = timed_out;
            rec.passed = code == Some(0);
            if timed_out {
                output.push_str(&format!(
                    "\n[wg: killed after {}]",
                    humantime::format_duration(run.timeout)
                ));
            }
        }
        Err(e) => output = format!("[wg: cannot run the check in {}: {e}]", run.dir.display()),
    }
    rec.output = output;
    rec
}

/// The message that sends a failed check back to the agent: the command, how it ended, and
/// the tail of its output.
pub fn failure_message(rec: &CheckRecord, round: u32, max: u32) -> String {
    let how = match (rec.timed_out, rec.exit_code) {
        (true, _) => "timed out".to_string(),
        (_, Some(c)) => format!("exited {c}"),
        (_, None) => "did not run".to_string(),
    };
    let what = match rec.stage {
        CheckStage::Task => "on your workspace".to_string(),
        CheckStage::Merged => format!(
            "on your branch merged onto the current base{}",
            rec.commit
                .as_deref()
                .map(|c| format!(" (merged commit {})", &c[..c.len().min(12)]))
                .unwrap_or_default()
        ),
    };
    format!(
        "Check failed (round {round} of {max}) {what}: `{}` {how}.\n\nOutput (tail):\n```\n{}\n```\n\nFix the cause, commit, and run `wg done` again.",
        rec.command,
        rec.output.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> (tempfile::TempDir, Layout) {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(d.path().join(".wg"));
        (d, l)
    }

    fn run<'a>(dir: &'a Path, timeout: Duration) -> Run<'a> {
        Run {
            task: "t",
            stage: CheckStage::Task,
            round: 1,
            dir,
            commit: None,
            timeout,
            tail_chars: 100,
        }
    }

    #[test]
    fn stops_at_the_first_failure_and_keeps_the_output() {
        let (d, l) = layout();
        let cmds = vec![
            "echo ok".to_string(),
            "echo broken >&2; exit 3".to_string(),
            "echo never".to_string(),
        ];
        let recs = run_all(&l, &run(d.path(), Duration::from_secs(20)), &cmds);
        assert_eq!(recs.len(), 2);
        assert!(recs[0].passed && recs[0].output.contains("ok"));
        assert_eq!(recs[1].exit_code, Some(3));
        assert!(recs[1].output.contains("broken"));
        assert_eq!(read(&l, "t").len(), 2);
        assert!(last_failed(&l, "t"));
        let m = failure_message(&recs[1], 1, 3);
        assert!(
            m.contains("exit 3` exited 3") && m.contains("broken"),
            "{m}"
        );
    }

    #[test]
    fn a_hung_check_is_killed_at_its_timeout() {
        let (d, l) = layout();
        let recs = run_all(
            &l,
            &run(d.path(), Duration::from_millis(300)),
            &["sleep 30 & wait".to_string()],
        );
        assert!(recs[0].timed_out && !recs[0].passed, "{:?}", recs[0]);
        assert!(recs[0].duration_ms < 20_000);
    }
}
