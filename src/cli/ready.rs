use clap::Args;

use crate::cli::list::task_line;
use crate::cli::Ctx;
use crate::error::CliResult;

/// List tasks that are ready to run, in dispatch order (priority, then age).
#[derive(Debug, Args)]
pub struct ReadyArgs {}

pub fn cmd_ready(ctx: &Ctx, _args: &ReadyArgs) -> CliResult {
    let ready = ctx.store.ready_tasks()?;
    ctx.out.either(&ready, || {
        if ready.is_empty() {
            return "no ready tasks".to_string();
        }
        ready.iter().map(task_line).collect::<Vec<_>>().join("\n")
    })?;
    Ok(())
}
