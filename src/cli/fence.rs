//! Fencing stale agents: every claim of a task gives it a new agent id (`agent-…`, the
//! attempt's token, in `WG_AGENT_ID`). A report about its own task (`wg done`, `wg fail`,
//! `wg log`) from an agent that no longer holds the task is refused and logged, so a
//! replaced attempt still running somewhere cannot close or fail the task under the
//! current one.

use crate::cli::Ctx;
use crate::coordinator::AGENT_PREFIX;
use crate::error::{user_error, CliResult};
use crate::model::Task;
use crate::store::tasklog::{self, LogRecord};
use crate::store::Writer;
use crate::time::now_rfc3339;

/// Why the agent `agent` may not report on `task`, or `None` when it may. `closed_by` is the
/// actor of the task's last status change: an agent that closed the task itself (which
/// clears `assigned`) is still the current attempt for the rest of its turn. Pure.
pub fn stale_reason(task: &Task, agent: &str, closed_by: Option<&str>) -> Option<String> {
    if !agent.starts_with(AGENT_PREFIX) || task.assigned.as_deref() == Some(agent) {
        return None;
    }
    if task.assigned.is_none() && task.status.is_terminal() && closed_by == Some(agent) {
        return None;
    }
    Some(format!(
        "agent {agent} is no longer the current attempt at task `{}` (it is {}, {})",
        task.id,
        task.status,
        match &task.assigned {
            Some(a) => format!("held by {a}"),
            None => "held by no agent".to_string(),
        }
    ))
}

/// Refuses `command` when it comes from a replaced attempt at task `id` (see the module
/// doc); the refusal is recorded in the task's log.
pub fn check(ctx: &Ctx, w: &Writer<'_>, id: &str, command: &str) -> CliResult {
    let own_task = std::env::var(crate::env::WG_TASK_ID).is_ok_and(|t| t == id);
    if !own_task {
        return Ok(());
    }
    let Some(task) = w.get(id)? else {
        return Ok(());
    };
    let closed_by = task
        .assigned
        .is_none()
        .then(|| tasklog::read(&ctx.layout.task_log(id)).ok())
        .flatten()
        .and_then(|log| log.into_iter().rev().find(|r| r.event == "status"))
        .map(|r| r.actor);
    let Some(reason) = stale_reason(&task, &ctx.actor, closed_by.as_deref()) else {
        return Ok(());
    };
    let mut rec = LogRecord::note(
        &now_rfc3339(),
        &ctx.actor,
        &format!("refused `{command}`: {reason}"),
    );
    rec.event = "stale_attempt".into();
    let _ = tasklog::append(&ctx.layout, id, &rec, false);
    Err(user_error(format!("`{command}` refused: {reason}"))
        .hinted("a newer attempt runs this task now; stop working on it"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_current_agent_may_report() {
        let mut t = Task::new("t".into(), "t".into(), "now");
        t.assigned = Some("agent-1-2".into());
        assert_eq!(stale_reason(&t, "agent-1-2", None), None);
        // People and hand-run handlers are not attempts.
        assert_eq!(stale_reason(&t, "user", None), None);
        assert_eq!(stale_reason(&t, "manual", None), None);
        let r = stale_reason(&t, "agent-1-1", None).unwrap();
        assert!(r.contains("held by agent-1-2"), "{r}");
        t.assigned = None;
        assert!(stale_reason(&t, "agent-1-2", None)
            .unwrap()
            .contains("no agent"));
        // The agent that closed the task may still log what it did; no other may.
        t.status = crate::model::TaskStatus::Done;
        assert_eq!(stale_reason(&t, "agent-1-2", Some("agent-1-2")), None);
        assert!(stale_reason(&t, "agent-1-1", Some("agent-1-2")).is_some());
        // A task requeued (open, no agent) was not closed by the agent.
        t.status = crate::model::TaskStatus::Open;
        assert!(stale_reason(&t, "agent-1-2", Some("agent-1-2")).is_some());
    }
}
