//! Status changes: the one place that checks the lifecycle, writes the new record and records
//! the change in the task's `log.jsonl`. Used by the CLI, the coordinator and the handler.

use crate::error::{not_found, user_error, CliResult};
use crate::model::{Task, TaskStatus};
use crate::store::tasklog::{self, LogRecord};
use crate::store::Writer;
use crate::time::now_rfc3339;

/// Record field naming the actor that failed a task.
pub const FAILED_BY: &str = "failed_by";

/// Task record field: `true` while an agent's `done` waits for the automatic evaluation.
pub use crate::model::task::AWAITING_EVALUATION as AWAITING;

/// `failed_by` of a failure whose cause a retry cannot change (`ErrorKind::retry_helps`).
pub const FAILED_BY_LIMIT: &str = "limit";

/// Whether the coordinator may retry this failed task: failures decided by a person
/// (`wg fail` outside an agent), by the evaluator's last rejection, or by a limit a retry
/// would hit again are final; `wg retry` opens them again.
pub fn retryable_failure(task: &Task) -> bool {
    !matches!(
        task.extra.get(FAILED_BY).and_then(|v| v.as_str()),
        Some("user" | "evaluator" | FAILED_BY_LIMIT)
    )
}

/// A status change to apply.
pub struct Change<'a> {
    pub to: TaskStatus,
    pub reason: Option<&'a str>,
    pub actor: &'a str,
}

/// Applies `change` to task `id` under the caller's writer; `edit` may adjust the record
/// further (assigned agent, retries…) before it is written. Returns the new record.
pub fn transition(
    w: &mut Writer<'_>,
    id: &str,
    change: Change<'_>,
    edit: impl FnOnce(&mut Task),
) -> CliResult<Task> {
    let mut task = w.get(id)?.ok_or_else(|| not_found(id))?;
    if w.is_archived(id) {
        return Err(user_error(format!(
            "task `{id}` is archived and can no longer change"
        )));
    }
    let from = task.status;
    if !from.can_become(change.to) {
        let hint = match (from, change.to) {
            (TaskStatus::Abandoned, _) => "abandoned is final; add a new task instead",
            (TaskStatus::Done | TaskStatus::Failed, _) => "use `wg retry` to open it again first",
            _ => "see the lifecycle in docs/cli.md",
        };
        return Err(user_error(format!(
            "task `{id}` is {from}; it cannot become {}",
            change.to
        ))
        .hinted(hint));
    }
    let now = now_rfc3339();
    task.status = change.to;
    task.updated = now.clone();
    match change.to {
        TaskStatus::Failed => task.failure_reason = change.reason.map(str::to_string),
        TaskStatus::Open | TaskStatus::Done => {
            task.assigned = None;
        }
        _ => {}
    }
    // A paused task's agent is stopped; whoever resumes it starts a new one.
    if change.to.is_terminal() || change.to == TaskStatus::Paused {
        task.assigned = None;
    }
    // Who failed it decides whether the coordinator may retry it: an agent's failure is
    // retried, a person's or the evaluator's final verdict is not (see `retryable_failure`).
    if change.to == TaskStatus::Failed {
        task.extra.insert(FAILED_BY.into(), change.actor.into());
    } else {
        task.extra.remove(FAILED_BY);
    }
    // Only the `done` being evaluated waits; a reopened or re-closed task starts over.
    task.extra.remove(AWAITING);
    edit(&mut task);
    let record = LogRecord::status(
        &now,
        change.actor,
        from.as_str(),
        change.to.as_str(),
        change.reason,
    );
    // The change and its log record are one unit: the record goes first, and is taken back
    // when the change cannot be written. A full disk therefore leaves neither, and a change
    // is never reported as failed while it was applied.
    let log = tasklog::append_undoable(w.layout(), id, &record)?;
    if let Err(e) = w.put(std::slice::from_ref(&task)) {
        log.undo();
        return Err(e.into());
    }
    Ok(task)
}
