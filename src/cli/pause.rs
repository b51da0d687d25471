use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::CliResult;
use crate::lifecycle::{transition, Change};
use crate::model::{Task, TaskStatus};

/// Pause a task: a running agent is stopped (its whole process group), the task and its
/// conversation are kept, and it is never started again until `wg resume ID`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    pub id: String,
    /// Why (kept in the task's log).
    #[arg(long)]
    pub reason: Option<String>,
}

/// Stop-and-keep: the status change `wg pause` and `wg cancel` share.
pub(crate) fn pause(ctx: &Ctx, id: &str, reason: &str) -> CliResult<Task> {
    check_id(id)?;
    let mut w = ctx.store.writer()?;
    let change = Change {
        to: TaskStatus::Paused,
        reason: Some(reason),
        actor: &ctx.actor,
    };
    let task = transition(&mut w, id, change, |_| {})?;
    w.commit()?;
    Ok(task)
}

pub fn cmd_pause(ctx: &Ctx, args: &PauseArgs) -> CliResult {
    let reason = args.reason.as_deref().unwrap_or("paused");
    let task = pause(ctx, &args.id, reason)?;
    ctx.out.either(&task, || {
        format!("{} paused; `wg resume {}` continues it", task.id, task.id)
    })?;
    Ok(())
}
