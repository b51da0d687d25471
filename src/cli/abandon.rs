use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::CliResult;
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;

/// Abandon a task for good. A running agent is stopped by the coordinator.
#[derive(Debug, Args)]
pub struct AbandonArgs {
    pub id: String,
    #[arg(long)]
    pub reason: Option<String>,
}

pub fn cmd_abandon(ctx: &Ctx, args: &AbandonArgs) -> CliResult {
    check_id(&args.id)?;
    let mut w = ctx.store.writer()?;
    let change = Change {
        to: TaskStatus::Abandoned,
        reason: args.reason.as_deref(),
        actor: &ctx.actor,
    };
    let task = transition(&mut w, &args.id, change, |_| {})?;
    w.commit()?;
    ctx.out.either(&task, || format!("{} abandoned", task.id))?;
    Ok(())
}
