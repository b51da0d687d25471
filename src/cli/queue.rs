use clap::Args;

use crate::cli::Ctx;
use crate::error::{internal, CliResult};
use crate::workspace::queue::{self, Queue};

/// List the merge queue (`workspace.merge = "queue"`): position, task, state, the check
/// running on the merged result.
#[derive(Debug, Args)]
pub struct QueueArgs {}

pub fn cmd_queue(ctx: &Ctx, _args: &QueueArgs) -> CliResult {
    let q = Queue::load(&queue::path(&ctx.layout.service_dir())).map_err(internal)?;
    let graph = ctx.store.load()?;
    // Tasks whose own checks run now come before the queue: they enter it next.
    let checking: Vec<String> = graph
        .tasks
        .values()
        .filter(|t| {
            crate::landing::pending(t)
                && crate::landing::stage(t) == Some(crate::landing::Stage::Checks)
        })
        .map(|t| t.id.clone())
        .collect();
    let value = serde_json::json!({
        "entries": q.entries.iter().enumerate().map(|(i, e)| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            v["position"] = (i + 1).into();
            v
        }).collect::<Vec<_>>(),
        "checking": checking,
    });
    ctx.out.either(&value, || {
        let mut lines = Vec::new();
        for (i, e) in q.entries.iter().enumerate() {
            let mut l = format!(
                "{:>2}. {:<20} {:<9} onto {}",
                i + 1,
                e.task,
                e.state.as_str(),
                e.base_ref.trim_start_matches("refs/heads/")
            );
            if let Some(c) = &e.check {
                l.push_str(&format!("  running: {c}"));
            }
            lines.push(l);
        }
        if lines.is_empty() {
            lines.push("the merge queue is empty".into());
        }
        if !checking.is_empty() {
            lines.push(format!("checks running: {}", checking.join(", ")));
        }
        lines.join("\n")
    })?;
    Ok(())
}
