use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::CliResult;
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;

/// Mark a task done.
#[derive(Debug, Args)]
pub struct DoneArgs {
    pub id: String,
    /// A closing note, kept in the task's log.
    #[arg(long)]
    pub note: Option<String>,
}

pub fn cmd_done(ctx: &Ctx, args: &DoneArgs) -> CliResult {
    check_id(&args.id)?;
    let mut w = ctx.store.writer()?;
    let change = Change {
        to: TaskStatus::Done,
        reason: args.note.as_deref(),
        actor: &ctx.actor,
    };
    let task = transition(&mut w, &args.id, change, |t| t.failure_reason = None)?;
    w.commit()?;
    ctx.out.either(&task, || format!("{} done", task.id))?;
    Ok(())
}
