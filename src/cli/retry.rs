use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::CliResult;
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;

/// Open a failed or done task again. Its transcript and logs are kept.
#[derive(Debug, Args)]
pub struct RetryArgs {
    pub id: String,
}

pub fn cmd_retry(ctx: &Ctx, args: &RetryArgs) -> CliResult {
    check_id(&args.id)?;
    let mut w = ctx.store.writer()?;
    let change = Change {
        to: TaskStatus::Open,
        reason: Some("retry requested"),
        actor: &ctx.actor,
    };
    let task = transition(&mut w, &args.id, change, |t| t.failure_reason = None)?;
    w.commit()?;
    ctx.out
        .either(&task, || format!("{} is open again", task.id))?;
    Ok(())
}
