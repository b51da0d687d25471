//! The mock agent: a scripted, deterministic agent that needs no key and no network. It runs
//! as a real child process (`wg mock-agent`, hidden) so the coordinator treats it like any
//! other agent. Settings come from `[executors.mock]` and, per task, from a `mock` object in
//! the task record (`{"mock": {"behavior": "fail"}}` through `wg import`); the task wins.
//!
//! | key          | default | meaning                                                         |
//! |--------------|---------|-----------------------------------------------------------------|
//! | `turn_ms`    | 100     | how long the "work" takes                                       |
//! | `behavior`   | `done`  | `done`, `fail`, `hang`, `silent-hang`, `ignore-term`,           |
//! |              |         | `grandchild`, `exit-silently`, `endpoint-error`                 |
//! | `fail_times` | 0       | fail the first N runs of the task, then behave as configured    |
//! | `endpoint_error_times` | 0 | the first N runs (after `fail_times`) report endpoint trouble |
//!
//! Every run leaves `.wg/tasks/<id>/mock-runs/<agent-id>.json` (one marker per run), so tests
//! can prove that nothing ran twice.

use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::model::Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Log a note and mark the task done.
    Done,
    /// Mark the task failed.
    Fail,
    /// Print a line, then sleep forever (hard and idle timeouts end it).
    Hang,
    /// Sleep forever without printing anything (the first-output timeout ends it).
    SilentHang,
    /// Ignore SIGTERM and sleep forever (only SIGKILL ends it).
    IgnoreTerm,
    /// Start `sh -c 'sleep 60 & sleep 60'` and sleep forever.
    Grandchild,
    /// Exit with code 1 without `wg done`/`wg fail`.
    ExitSilently,
    /// Print an endpoint error and exit 1, as an agent whose model server is down.
    EndpointError,
}

impl Behavior {
    pub fn parse(s: &str) -> Option<Behavior> {
        Some(match s {
            "done" => Behavior::Done,
            "fail" => Behavior::Fail,
            "hang" => Behavior::Hang,
            "silent-hang" => Behavior::SilentHang,
            "ignore-term" => Behavior::IgnoreTerm,
            "grandchild" => Behavior::Grandchild,
            "exit-silently" => Behavior::ExitSilently,
            "endpoint-error" => Behavior::EndpointError,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub turn: Duration,
    pub behavior: Behavior,
    pub fail_times: u64,
    pub endpoint_error_times: u64,
}

impl Settings {
    /// Config first, then the task's `mock` object on top. Unknown behaviors are an error so
    /// a typo in a test does not silently pass.
    pub fn resolve(config: &Config, task: &Task) -> Result<Settings, String> {
        let mut s = Settings {
            turn: Duration::from_millis(100),
            behavior: Behavior::Done,
            fail_times: 0,
            endpoint_error_times: 0,
        };
        let from_config: Option<serde_json::Value> = config
            .executors
            .get("mock")
            .and_then(|t| serde_json::to_value(t).ok());
        for layer in [from_config.as_ref(), task.extra.get("mock")]
            .into_iter()
            .flatten()
        {
            if let Some(ms) = layer.get("turn_ms").and_then(|v| v.as_u64()) {
                s.turn = Duration::from_millis(ms);
            }
            if let Some(b) = layer.get("behavior").and_then(|v| v.as_str()) {
                s.behavior =
                    Behavior::parse(b).ok_or_else(|| format!("unknown mock behavior `{b}`"))?;
            }
            if let Some(n) = layer.get("fail_times").and_then(|v| v.as_u64()) {
                s.fail_times = n;
            }
            if let Some(n) = layer.get("endpoint_error_times").and_then(|v| v.as_u64()) {
                s.endpoint_error_times = n;
            }
        }
        Ok(s)
    }

    /// What this run does, given how many runs came before it.
    pub fn behavior_for_run(&self, run: u64) -> Behavior {
        if run <= self.fail_times {
            Behavior::Fail
        } else if run <= self.fail_times + self.endpoint_error_times {
            Behavior::EndpointError
        } else {
            self.behavior
        }
    }
}

/// The marker one run leaves behind.
#[derive(Debug, Serialize)]
pub struct Marker<'a> {
    pub task: &'a str,
    pub agent: &'a str,
    pub pid: u32,
    pub run: u64,
    pub started: String,
    /// `SLURM_JOB_ID` when the run is a Slurm job (`launcher = "slurm"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_settings_override_config() {
        let config = Config::parse("[executors.mock]\nturn_ms = 5\nfail_times = 1\n").unwrap();
        let mut task = Task::new("t".into(), "T".into(), "now");
        let s = Settings::resolve(&config, &task).unwrap();
        assert_eq!(s.turn, Duration::from_millis(5));
        assert_eq!(s.behavior_for_run(1), Behavior::Fail);
        assert_eq!(s.behavior_for_run(2), Behavior::Done);
        task.extra.insert(
            "mock".into(),
            serde_json::json!({"behavior": "hang", "turn_ms": 0}),
        );
        let s = Settings::resolve(&config, &task).unwrap();
        assert_eq!(s.behavior_for_run(2), Behavior::Hang);
        assert_eq!(s.turn, Duration::ZERO);
        task.extra
            .insert("mock".into(), serde_json::json!({"behavior": "dance"}));
        assert!(Settings::resolve(&config, &task).is_err());
    }
}
