use clap::Args;

use crate::cli::Ctx;
use crate::error::{usage_error, CliResult};
use crate::model::{Task, TaskStatus};

/// List tasks (live ones; `--archived` adds archived ones).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks with this status.
    #[arg(long)]
    pub status: Option<String>,
    /// Only tasks with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Include archived tasks.
    #[arg(long)]
    pub archived: bool,
}

/// One line per task: status, id, title, and what it waits for.
pub fn task_line(t: &Task) -> String {
    let mut line = format!("{:<11} {}  {}", t.status.as_str(), t.id, t.title);
    if !t.after.is_empty() {
        line.push_str(&format!("  (after {})", t.after.join(", ")));
    }
    line
}

pub fn cmd_list(ctx: &Ctx, args: &ListArgs) -> CliResult {
    let status: Option<TaskStatus> = match &args.status {
        Some(s) => Some(s.parse().map_err(usage_error)?),
        None => None,
    };
    let graph = ctx.store.load()?;
    let mut tasks: Vec<Task> = graph.tasks.into_values().collect();
    if args.archived {
        tasks.extend(ctx.store.load_archive()?.into_values());
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        tasks.dedup_by(|a, b| a.id == b.id);
    }
    tasks.retain(|t| {
        status.is_none_or(|s| t.status == s)
            && args.tag.as_ref().is_none_or(|tag| t.tags.contains(tag))
    });
    ctx.out.either(&tasks, || {
        if tasks.is_empty() {
            return "no tasks".to_string();
        }
        tasks
            .iter()
            .map(|t| {
                let mut line = task_line(t);
                // A task whose last turn failed says so (only unfinished tasks have one that
                // matters; finished ones are not read).
                if matches!(t.status, TaskStatus::Open | TaskStatus::Waiting) {
                    if let Some(e) = crate::conversation::last_error(&ctx.layout, &t.id) {
                        line.push_str(&format!("  [last error: {}: {}]", e.kind, e.message));
                    }
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(())
}
