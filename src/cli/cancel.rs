use clap::Args;

use crate::cli::pause::pause;
use crate::cli::Ctx;
use crate::error::CliResult;

/// Cancel a task's run: stop its agent and keep the task (paused), with the reason.
///
/// Nothing is lost: `wg resume ID` continues it, `wg abandon ID` gives it up for good.
#[derive(Debug, Args)]
pub struct CancelArgs {
    pub id: String,
    /// Why it was cancelled (kept in the task's log and shown by `wg show`).
    #[arg(long)]
    pub reason: String,
}

pub fn cmd_cancel(ctx: &Ctx, args: &CancelArgs) -> CliResult {
    let task = pause(ctx, &args.id, &format!("cancelled: {}", args.reason))?;
    ctx.out.either(&task, || {
        format!(
            "{} cancelled (kept, paused); `wg resume {}` continues it",
            task.id, task.id
        )
    })?;
    Ok(())
}
