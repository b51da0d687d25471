use clap::Args;

use crate::cli::add::{check_deps, check_executor};
use crate::cli::{check_id, Ctx};
use crate::error::{not_found, user_error, CliResult};
use crate::time::now_rfc3339;

/// Change a task's title, description, priority, dependencies, executor or model.
#[derive(Debug, Args)]
pub struct EditArgs {
    pub id: String,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(short, long = "description")]
    pub description: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// Add a dependency (repeatable). Refused if it would close a cycle.
    #[arg(long, value_name = "ID")]
    pub add_after: Vec<String>,
    /// Remove a dependency (repeatable).
    #[arg(long, value_name = "ID")]
    pub remove_after: Vec<String>,
    #[arg(short = 'x', long)]
    pub executor: Option<String>,
    #[arg(short, long)]
    pub model: Option<String>,
}

pub fn cmd_edit(ctx: &Ctx, args: &EditArgs) -> CliResult {
    check_id(&args.id)?;
    if let Some(x) = &args.executor {
        check_executor(ctx, x)?;
    }
    let mut w = ctx.store.writer()?;
    if w.is_archived(&args.id) {
        return Err(user_error(format!(
            "task `{}` is archived and can no longer change",
            args.id
        )));
    }
    let mut task = w.get(&args.id)?.ok_or_else(|| not_found(&args.id))?;
    if let Some(t) = &args.title {
        crate::cli::check_title(t)?;
        task.title = t.clone();
    }
    if let Some(d) = &args.description {
        task.description = d.clone();
    }
    if let Some(p) = args.priority {
        task.priority = p;
    }
    if let Some(x) = &args.executor {
        task.executor = Some(x.clone());
    }
    if let Some(m) = &args.model {
        task.model = Some(m.clone());
    }
    for dep in &args.remove_after {
        if !task.after.contains(dep) {
            return Err(user_error(format!(
                "`{}` does not wait for `{dep}`; there is no edge to remove",
                task.id
            ))
            .hinted(format!("`wg show {}` lists what it waits for", task.id)));
        }
        task.after.retain(|d| d != dep);
    }
    check_deps(&w, &task.id, &args.add_after)?;
    for dep in &args.add_after {
        if task.after.contains(dep) {
            continue;
        }
        if let Some(cycle) = w.cycle_if_added(&task.id, dep) {
            return Err(user_error(format!(
                "`{}` cannot wait for `{dep}`: that would close the cycle {}",
                task.id,
                cycle.join(" -> ")
            )));
        }
        task.after.push(dep.clone());
    }
    task.updated = now_rfc3339();
    w.put(std::slice::from_ref(&task))?;
    w.commit()?;
    ctx.out.either(&task, || format!("{} updated", task.id))?;
    Ok(())
}
