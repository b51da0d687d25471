use clap::Args;

use crate::cli::Ctx;
use crate::conversation::{last_error, LastError};
use crate::error::{usage_error, CliResult};
use crate::model::{Task, TaskStatus};

/// List tasks (live ones; `--archived` adds archived ones).
///
/// With `--json`: an array of task records (the fields of `graph.jsonl`, docs/storage.md),
/// each unfinished task whose last turn failed with `last_error`: `{"kind", "message"}`, the
/// same as `wg show --json`.
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

/// Whether a task's last failed turn is worth reading and showing: a done or abandoned task's
/// conversation is over, so their outboxes are not read (a listing of thousands of finished
/// tasks stays cheap).
pub fn shows_last_error(status: TaskStatus) -> bool {
    !matches!(status, TaskStatus::Done | TaskStatus::Abandoned)
}

/// A listed task: its record, and the failure of its last turn.
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    task: &'a Task,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<LastError>,
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
    let listed: Vec<Listed> = tasks
        .iter()
        .map(|task| Listed {
            task,
            last_error: shows_last_error(task.status)
                .then(|| last_error(&ctx.layout, &task.id))
                .flatten(),
        })
        .collect();
    ctx.out.either(&listed, || {
        if listed.is_empty() {
            return "no tasks".to_string();
        }
        listed
            .iter()
            .map(|l| {
                let mut line = task_line(l.task);
                if let Some(e) = &l.last_error {
                    line.push_str(&format!("  [last error: {}: {}]", e.kind, e.message));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(())
}
