use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::CliResult;
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;

/// Resume a paused (or cancelled) task: it is ready again, with its conversation, and its
/// next agent is told what the interrupted attempt did.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    pub id: String,
}

pub fn cmd_resume(ctx: &Ctx, args: &ResumeArgs) -> CliResult {
    check_id(&args.id)?;
    let mut w = ctx.store.writer()?;
    let change = Change {
        to: TaskStatus::Open,
        reason: Some("resumed"),
        actor: &ctx.actor,
    };
    let task = transition(&mut w, &args.id, change, |_| {})?;
    w.commit()?;
    ctx.out.either(&task, || format!("{} resumed", task.id))?;
    Ok(())
}
