use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::{not_found, user_error, CliResult};
use crate::model::TaskStatus;
use crate::time::now_rfc3339;

/// Remove a task. Refused while other tasks wait for it, unless `--force` drops those edges.
#[derive(Debug, Args)]
pub struct RmArgs {
    pub id: String,
    /// Also remove this task from the dependencies of the tasks that wait for it.
    #[arg(long)]
    pub force: bool,
}

pub fn cmd_rm(ctx: &Ctx, args: &RmArgs) -> CliResult {
    check_id(&args.id)?;
    let mut w = ctx.store.writer()?;
    let mut graph = w.load_all()?;
    let Some(task) = graph.tasks.get(&args.id) else {
        if w.is_archived(&args.id) {
            return Err(user_error(format!(
                "task `{}` is archived; archived tasks are kept",
                args.id
            )));
        }
        return Err(not_found(&args.id));
    };
    if matches!(task.status, TaskStatus::InProgress | TaskStatus::Waiting) {
        return Err(user_error(format!(
            "task `{}` is {}; an agent holds it",
            args.id, task.status
        ))
        .hinted("`wg abandon` it first"));
    }
    let dependents: Vec<String> = graph
        .tasks
        .values()
        .filter(|t| t.after.contains(&args.id))
        .map(|t| t.id.clone())
        .collect();
    if !dependents.is_empty() && !args.force {
        return Err(user_error(format!(
            "task `{}` is needed by: {}",
            args.id,
            dependents.join(", ")
        ))
        .hinted("`wg rm --force` removes it and drops those edges"));
    }
    let now = now_rfc3339();
    for d in &dependents {
        let t = graph.tasks.get_mut(d).expect("dependent found above");
        t.after.retain(|x| x != &args.id);
        t.updated = now.clone();
    }
    graph.tasks.remove(&args.id);
    w.replace_all(&graph)?;
    let value = serde_json::json!({"removed": args.id, "edges_dropped": dependents});
    ctx.out.either(&value, || {
        if dependents.is_empty() {
            format!("removed {}", args.id)
        } else {
            format!(
                "removed {} (dropped it from: {})",
                args.id,
                dependents.join(", ")
            )
        }
    })?;
    Ok(())
}
