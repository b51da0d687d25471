use std::collections::BTreeMap;

use clap::Args;

use crate::cli::Ctx;
use crate::error::CliResult;
use crate::model::TaskStatus;

/// Count tasks by status.
#[derive(Debug, Args)]
pub struct StatusArgs {}

pub fn cmd_status(ctx: &Ctx, _args: &StatusArgs) -> CliResult {
    let graph = ctx.store.load()?;
    let mut counts: BTreeMap<&str, usize> =
        TaskStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for t in graph.tasks.values() {
        *counts.entry(t.status.as_str()).or_default() += 1;
    }
    let ready = ctx.store.ready(&graph)?.len();
    let total = graph.tasks.len();
    let value = serde_json::json!({"total": total, "ready": ready, "counts": counts});
    ctx.out.either(&value, || {
        let mut s = format!("{total} tasks, {ready} ready\n");
        for st in TaskStatus::ALL {
            s.push_str(&format!("  {:<11} {}\n", st.as_str(), counts[st.as_str()]));
        }
        s
    })?;
    Ok(())
}
