use std::collections::BTreeMap;

use clap::Args;

use crate::cli::Ctx;
use crate::error::CliResult;
use crate::model::TaskStatus;

/// Count tasks by status.
#[derive(Debug, Args)]
pub struct StatusArgs {}

pub fn cmd_status(ctx: &Ctx, _args: &StatusArgs) -> CliResult {
    let (by_status, ready) = ctx.store.summary()?;
    let counts: BTreeMap<&str, usize> = TaskStatus::ALL
        .iter()
        .map(|s| (s.as_str(), by_status.get(s).copied().unwrap_or(0)))
        .collect();
    let total: usize = counts.values().sum();
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
