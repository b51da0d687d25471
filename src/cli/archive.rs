use clap::Args;

use crate::cli::Ctx;
use crate::error::CliResult;
use crate::model::TaskStatus;

/// Move finished tasks (done, failed, abandoned) out of the live graph into
/// `.wg/archive.jsonl`. Archived tasks still satisfy dependencies and `wg show` finds them.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Only done tasks.
    #[arg(long)]
    pub done_only: bool,
}

pub fn cmd_archive(ctx: &Ctx, args: &ArchiveArgs) -> CliResult {
    let mut w = ctx.store.writer()?;
    let mut graph = w.load_all()?;
    let ids: Vec<String> = graph
        .tasks
        .values()
        .filter(|t| {
            if args.done_only {
                t.status == TaskStatus::Done
            } else {
                t.status.is_terminal()
            }
        })
        .map(|t| t.id.clone())
        .collect();
    if !ids.is_empty() {
        w.archive(&mut graph, &ids)?;
    }
    let value = serde_json::json!({"archived": ids, "live": graph.tasks.len()});
    ctx.out.either(&value, || {
        format!(
            "archived {} tasks; {} remain live",
            ids.len(),
            graph.tasks.len()
        )
    })?;
    Ok(())
}
