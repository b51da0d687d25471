//! Landing finished work: the checks wg runs itself after an agent's `wg done`, and the state a
//! task carries while it goes through checks, the evaluation gate and the merge queue. See
//! docs/landing.md.
//!
//! This file is pure (the record field, the stage decisions, the messages sent back);
//! `checks.rs` runs a check and keeps its record.

pub mod checks;
pub mod land;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::model::task::AWAITING_EVALUATION;
use crate::model::Task;

/// Task record field: the task's [`Landing`] state.
pub const FIELD: &str = "landing";
/// Task record field: the checks given with `wg add --check` (replace `[checks] commands`).
pub const CHECKS_FIELD: &str = "checks";

/// Where a done task stands on its way to counting as finished. While it is in a pending
/// stage it keeps `awaiting_evaluation`, so its dependents wait (the gate's hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Its checks are to run (or running) in its workspace.
    Checks,
    /// Checked; the evaluation gate decides.
    Evaluation,
    /// In the merge queue.
    Queue,
    /// Landed on the base branch (`landed_commit`).
    Landed,
    /// Checked (and accepted), nothing to land: finished.
    Passed,
}

impl Stage {
    /// Stages that hold the task's dependents.
    pub fn pending(self) -> bool {
        matches!(self, Stage::Checks | Stage::Evaluation | Stage::Queue)
    }
}

/// The `landing` field of a task record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Landing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// Check rounds that failed so far (against `checks.max_rounds`).
    #[serde(default)]
    pub check_rounds: u32,
    /// Queue rounds that went back to the agent (against `workspace.land_rounds`).
    #[serde(default)]
    pub land_rounds: u32,
    /// The commit the base branch advanced to when the task landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landed_commit: Option<String>,
}

impl Landing {
    pub fn of(task: &Task) -> Landing {
        task.extra
            .get(FIELD)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    pub fn store(&self, task: &mut Task) {
        task.extra.insert(
            FIELD.into(),
            serde_json::to_value(self).expect("plain struct"),
        );
    }
}

/// The task's stage, if any.
pub fn stage(task: &Task) -> Option<Stage> {
    Landing::of(task).stage
}

/// Whether the task is on its way (checks, gate, queue): its workspace stays, its dependents wait.
pub fn pending(task: &Task) -> bool {
    task.status == crate::model::TaskStatus::Done && stage(task).is_some_and(Stage::pending)
}

/// The checks of a task: its own (`wg add --check`), else the project's `[checks] commands`.
pub fn commands_for(task: &Task, config: &Config) -> Vec<String> {
    let own: Vec<String> = task
        .extra
        .get(CHECKS_FIELD)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if own.is_empty() {
        config.checks.commands.clone()
    } else {
        own
    }
}

/// Whether the merge queue lands this task: `workspace.merge = "queue"` and it has a branch.
pub fn queued(task: &Task, config: &Config) -> bool {
    config.workspace.merge == crate::config::MergeMode::Queue
        && task
            .extra
            .get(crate::workspace::field::BRANCH)
            .is_some_and(|v| v.is_string())
}

/// The first stage after a done, or `None` when nothing follows it.
pub fn first_stage(has_checks: bool, gated: bool, queued: bool) -> Option<Stage> {
    if has_checks {
        Some(Stage::Checks)
    } else if gated {
        // The gate alone keeps its older shape: no `landing` field unless a queue follows.
        queued.then_some(Stage::Evaluation)
    } else if queued {
        Some(Stage::Queue)
    } else {
        None
    }
}

/// The stage after checks passed (`Evaluation` when the gate is on) or after the gate accepted
/// (`gated = false` then).
pub fn after_checks(gated: bool, queued: bool) -> Stage {
    if gated {
        Stage::Evaluation
    } else if queued {
        Stage::Queue
    } else {
        Stage::Passed
    }
}

/// Marks a task an agent (not a person, `user`) just made done: its checks, gate and queue
/// come next, and the gate's hold keeps its dependents waiting meanwhile. Called where the
/// task becomes done (`wg done`, an agent's exit). Returns the stage set.
pub fn hold_on_done(task: &mut Task, config: &Config, actor: &str) -> Option<Stage> {
    let has_checks = !commands_for(task, config).is_empty();
    let stage = first_stage(has_checks, config.evaluate.auto, queued(task, config))
        .filter(|_| actor != "user");
    let mut l = Landing::of(task);
    // A stage left from an earlier done never carries over (a person's done has none).
    if l.stage.is_some() || stage.is_some() {
        l.stage = stage;
        l.store(task);
    }
    let stage = stage?;
    task.extra.insert(AWAITING_EVALUATION.into(), true.into());
    Some(stage)
}

/// The gate accepted `task`: when it was in the landing's `Evaluation` stage, it moves on
/// (to the queue, keeping the hold, or finished). Returns whether the queue comes next.
pub fn accepted(task: &mut Task, config: &Config) -> bool {
    let mut l = Landing::of(task);
    if l.stage != Some(Stage::Evaluation) {
        return false;
    }
    let next = after_checks(false, queued(task, config));
    l.stage = Some(next);
    l.store(task);
    next == Stage::Queue
}

/// What to do after a round failed (`used` rounds failed so far, this one included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendBack {
    /// Back to the agent (the task reopens with a message).
    Agent,
    /// The budget is spent: a person decides (`needs-input`).
    Person,
}

pub fn send_back(used: u32, max: u32) -> SendBack {
    if used >= max {
        SendBack::Person
    } else {
        SendBack::Agent
    }
}

/// One line on where a task stands in its landing, for `wg show`; `None` when it has none.
pub fn describe(task: &Task) -> Option<String> {
    let l = Landing::of(task);
    let rounds = format!(
        "{} check round(s) and {} queue round(s) failed",
        l.check_rounds, l.land_rounds
    );
    let what = match l.stage {
        Some(s) if !pending(task) && s.pending() => return Some(rounds),
        Some(Stage::Checks) => "its checks run (dependents wait)".to_string(),
        Some(Stage::Evaluation) => "checked; waiting for the evaluation gate".to_string(),
        Some(Stage::Queue) => "in the merge queue (`wg queue`)".to_string(),
        Some(Stage::Landed) => format!("landed as {}", l.landed_commit.as_deref().unwrap_or("?")),
        Some(Stage::Passed) => "checks passed".to_string(),
        None if l.check_rounds + l.land_rounds > 0 => return Some(rounds),
        None => return None,
    };
    Some(what)
}

/// The last `max` characters of `text`, on a character boundary, marked when cut.
pub fn tail(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let cut: String = text.chars().skip(n - max).collect();
    format!("[… {} characters before this cut …]\n{cut}", n - max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_checks_gate_and_queue() {
        assert_eq!(first_stage(true, true, true), Some(Stage::Checks));
        assert_eq!(first_stage(false, true, true), Some(Stage::Evaluation));
        assert_eq!(first_stage(false, true, false), None);
        assert_eq!(first_stage(false, false, true), Some(Stage::Queue));
        assert_eq!(first_stage(false, false, false), None);
        assert_eq!(after_checks(true, true), Stage::Evaluation);
        assert_eq!(after_checks(false, true), Stage::Queue);
        assert_eq!(after_checks(false, false), Stage::Passed);
        assert!(Stage::Queue.pending() && !Stage::Landed.pending() && !Stage::Passed.pending());
    }

    #[test]
    fn the_last_round_goes_to_a_person() {
        assert_eq!(send_back(1, 3), SendBack::Agent);
        assert_eq!(send_back(2, 3), SendBack::Agent);
        assert_eq!(send_back(3, 3), SendBack::Person);
    }

    #[test]
    fn a_person_done_is_not_held_and_an_agent_done_is() {
        let mut cfg = Config::default();
        cfg.checks.commands = vec!["true".into()];
        let mut t = Task::new("a".into(), "A".into(), "t");
        assert_eq!(hold_on_done(&mut t, &cfg, "user"), None);
        assert!(!t.extra.contains_key(FIELD));
        // A person's done after an agent's: the old stage does not hold it.
        hold_on_done(&mut t, &cfg, "agent-1");
        hold_on_done(&mut t, &cfg, "user");
        t.status = crate::model::TaskStatus::Done;
        assert_eq!(stage(&t), None);
        assert!(!pending(&t));
        t.status = crate::model::TaskStatus::Open;
        assert_eq!(hold_on_done(&mut t, &cfg, "agent-1"), Some(Stage::Checks));
        assert!(!pending(&t), "only a done task is pending");
        t.status = crate::model::TaskStatus::Done;
        assert!(pending(&t) && t.awaiting_evaluation());
        // A task's own checks replace the project's.
        t.extra
            .insert(CHECKS_FIELD.into(), serde_json::json!(["make test"]));
        assert_eq!(commands_for(&t, &cfg), vec!["make test".to_string()]);
    }

    #[test]
    fn tails_cut_on_characters() {
        assert_eq!(tail("abc", 5), "abc");
        let t = tail("ééééé", 2);
        assert!(t.ends_with("éé") && t.contains("3 characters"), "{t}");
    }
}
