use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::CliResult;
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;

/// Mark a task failed, with the reason.
#[derive(Debug, Args)]
pub struct FailArgs {
    pub id: String,
    /// What went wrong (shown by `wg show`, used by retries and evaluators).
    #[arg(long)]
    pub reason: String,
}

pub fn cmd_fail(ctx: &Ctx, args: &FailArgs) -> CliResult {
    check_id(&args.id)?;
    let mut w = ctx.store.writer()?;
    crate::cli::fence::check(ctx, &w, &args.id, "wg fail")?;
    let change = Change {
        to: TaskStatus::Failed,
        reason: Some(&args.reason),
        actor: &ctx.actor,
    };
    let task = transition(&mut w, &args.id, change, |_| {})?;
    w.commit()?;
    ctx.out
        .either(&task, || format!("{} failed: {}", task.id, args.reason))?;
    Ok(())
}
