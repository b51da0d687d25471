use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::coordinator::agents_file;
use crate::error::{not_found, user_error, CliResult};
use crate::model::TaskStatus;
use crate::process::{terminate_blocking, StopHow};
use crate::time::now_rfc3339;

/// Remove a task. Refused while other tasks wait for it or an agent runs it, unless `--force`
/// drops those edges and stops the agent first.
///
/// The removal is a record (a tombstone) appended to graph.jsonl, so it survives a git merge
/// with a branch that still has the task.
#[derive(Debug, Args)]
pub struct RmArgs {
    pub id: String,
    /// Also remove this task from the dependencies of the tasks that wait for it, and stop its
    /// running agent (SIGTERM to its process group, SIGKILL after `coordinator.grace_period`).
    #[arg(long)]
    pub force: bool,
}

pub fn cmd_rm(ctx: &Ctx, args: &RmArgs) -> CliResult {
    check_id(&args.id)?;
    let mut w = ctx.store.writer()?;
    let mut graph = w.load_all()?;
    let Some(task) = graph.tasks.get(&args.id).cloned() else {
        if w.is_archived(&args.id) {
            return Err(user_error(format!(
                "task `{}` is archived; archived tasks are kept",
                args.id
            )));
        }
        return Err(not_found(&args.id));
    };
    let held = matches!(task.status, TaskStatus::InProgress | TaskStatus::Waiting);
    if held && !args.force {
        return Err(user_error(format!(
            "task `{}` is {}; an agent holds it",
            args.id, task.status
        ))
        .hinted("`wg rm --force` stops its agent and then removes it; `wg abandon` keeps it"));
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
    // Stopped while the store is locked: the coordinator cannot start another turn of the
    // task in between, and the agent's end finds the task gone.
    let stopped = if held {
        stop_agent(ctx, &args.id)
    } else {
        None
    };
    let now = now_rfc3339();
    let mut records = Vec::with_capacity(dependents.len() + 1);
    for d in &dependents {
        let t = graph.tasks.get_mut(d).expect("dependent found above");
        t.after.retain(|x| x != &args.id);
        t.updated = now.clone();
        records.push(t.clone());
    }
    records.push(task.tombstone(&now));
    w.put(&records)?;
    w.commit()?;
    let value = serde_json::json!({
        "removed": args.id,
        "edges_dropped": dependents,
        "agent_stopped": stopped,
    });
    ctx.out.either(&value, || {
        let mut line = format!("removed {}", args.id);
        if let Some(a) = &stopped {
            line = format!("stopped {a}, {line}");
        }
        if !dependents.is_empty() {
            line.push_str(&format!(" (dropped it from: {})", dependents.join(", ")));
        }
        line
    })?;
    Ok(())
}

/// Stops the agent running `task` (its whole process group), if one runs here. Returns its
/// id. A Slurm job is left to the coordinator, which cancels it once the task is gone.
fn stop_agent(ctx: &Ctx, task: &str) -> Option<String> {
    let agents = agents_file::read(&ctx.layout.agents_file()).unwrap_or_default();
    let rec = agents.into_iter().find(|r| r.task == task)?;
    if rec.slurm_job.is_none() && agents_file::still_alive(&rec) {
        let grace = ctx.config.coordinator.grace_period.get();
        terminate_blocking(rec.pgid, StopHow::Graceful(grace), || {});
    }
    Some(rec.agent_id)
}
