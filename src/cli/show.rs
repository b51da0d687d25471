use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::{not_found, CliResult};

/// Show one task: every field, whether it is ready, and its recent log.
#[derive(Debug, Args)]
pub struct ShowArgs {
    pub id: String,
}

/// Turns listed in the human view; `--json` has them all.
const SHOWN_TURNS: usize = 10;

/// Tokens per turn and in total, priced at the model's `[pricing]` entry if it has one.
fn task_tokens(ctx: &Ctx, task: &crate::model::Task) -> crate::pricing::TaskTokens {
    let outbox = crate::conversation::read_outbox(&ctx.layout, &task.id).unwrap_or_default();
    let executor = task.executor.as_deref().unwrap_or(&ctx.config.executor);
    let model = task
        .model
        .clone()
        .or_else(|| ctx.config.endpoint_for(executor).model);
    let price = model.and_then(|m| ctx.config.price_for(&m));
    crate::pricing::task_tokens(&outbox, price.as_ref())
}

pub fn cmd_show(ctx: &Ctx, args: &ShowArgs) -> CliResult {
    check_id(&args.id)?;
    let graph = ctx.store.load()?;
    let (task, archived) = ctx
        .store
        .find(&graph, &args.id)?
        .ok_or_else(|| not_found(&args.id))?;
    // `Store::ready` applies the evaluation gate.
    let ready = !archived && ctx.store.ready(&graph)?.iter().any(|t| t.id == task.id);
    let log = crate::store::tasklog::read(&ctx.layout.task_log(&task.id)).unwrap_or_default();
    let evaluation: Option<serde_json::Value> =
        crate::store::nofollow::read(&ctx.layout.task_file(&task.id, "evaluation.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
    let tokens = task_tokens(ctx, &task);
    // Why a task is held by the graph's shape (a git merge can give it one).
    let missing = if task.after.iter().any(|d| !graph.tasks.contains_key(d)) {
        let archive = ctx.store.load_archive()?;
        graph.missing_deps(&task, |id| archive.contains_key(id))
    } else {
        Vec::new()
    };
    let cycle = graph.cycles.iter().find(|c| c.contains(&task.id)).cloned();
    let mut value = serde_json::to_value(&task).map_err(crate::error::internal)?;
    // The record on disk leaves out an empty `after`; the JSON contract of `show` always has it.
    value["after"] = serde_json::json!(task.after);
    value["ready"] = serde_json::Value::Bool(ready);
    value["archived"] = serde_json::Value::Bool(archived);
    value["tokens"] = serde_json::json!(tokens);
    if !missing.is_empty() {
        value["missing_after"] = serde_json::json!(missing);
    }
    if let Some(c) = &cycle {
        value["cycle"] = serde_json::json!(c);
    }
    let sandbox = crate::sandbox::describe(&task, &ctx.config);
    value["sandbox"] = serde_json::json!(sandbox);
    if let Some(e) = &evaluation {
        value["evaluation"] = e.clone();
    }
    let check_runs = crate::landing::checks::read(&ctx.layout, &task.id);
    if !check_runs.is_empty() {
        value["check_runs"] = serde_json::to_value(&check_runs).map_err(crate::error::internal)?;
    }
    let last_error = crate::conversation::last_error(&ctx.layout, &task.id);
    if let Some(e) = &last_error {
        value["last_error"] = serde_json::to_value(e).map_err(crate::error::internal)?;
    }
    ctx.out.either(&value, || {
        let mut s = format!("{}: {}\n", task.id, task.title);
        s.push_str(&format!(
            "  status:   {}{}{}\n",
            task.status,
            if ready { " (ready)" } else { "" },
            if archived { " (archived)" } else { "" }
        ));
        if !task.after.is_empty() {
            s.push_str(&format!("  after:    {}\n", task.after.join(", ")));
        }
        if !missing.is_empty() {
            s.push_str(&format!(
                "  held:     waits for {}, not in the graph (removed); `wg edit {} --remove-after ID` frees it\n",
                missing.join(", "),
                task.id
            ));
        }
        if let Some(c) = &cycle {
            s.push_str(&format!(
                "  held:     on a dependency cycle with {}; `wg edit ID --remove-after DEP` breaks it\n",
                c.join(", ")
            ));
        }
        if let Some(l) = crate::landing::describe(&task) {
            s.push_str(&format!("  landing:  {l}\n"));
        } else if crate::evaluate::awaiting(&task) {
            s.push_str(
                "  gate:     waiting for evaluation (dependents start once it is accepted)\n",
            );
        }
        let held = crate::evaluate::held_by(&task, |d| graph.tasks.get(d));
        if !held.is_empty() && task.status == crate::model::TaskStatus::Open {
            s.push_str(&format!(
                "  gate:     waiting for evaluation of {}\n",
                held.join(", ")
            ));
        }
        for (k, v) in [
            ("executor", task.executor.as_deref()),
            ("model", task.model.as_deref()),
            ("timeout", task.timeout.as_ref().map(|d| d.text())),
            // Only an opt-out (the box is the default; `--json` and `wg doctor` also name the
            // executors not boxed yet).
            (
                "sandbox",
                Some(sandbox.as_str()).filter(|s| *s != "bwrap" && !s.contains("executor runs")),
            ),
            ("assigned", task.assigned.as_deref()),
            ("failed:  ", task.failure_reason.as_deref()),
            (
                "question:",
                task.extra
                    .get(crate::cli::ask::QUESTION)
                    .and_then(|q| q.as_str())
                    .filter(|_| task.status == crate::model::TaskStatus::NeedsInput),
            ),
            (
                "workspace",
                task.workspace.as_deref().or(crate::workspace::extra_str(
                    &task,
                    crate::workspace::field::WORKTREE,
                )),
            ),
            (
                "branch:  ",
                crate::workspace::extra_str(&task, crate::workspace::field::BRANCH),
            ),
            (
                "waiting: ",
                crate::workspace::extra_str(&task, crate::workspace::field::WAITING_FOR)
                    .filter(|_| task.status == crate::model::TaskStatus::Open),
            ),
        ] {
            if let Some(v) = v {
                s.push_str(&format!("  {k:<9} {v}\n"));
            }
        }
        if let Some(e) = &last_error {
            s.push_str(&format!(
                "  error:    {} ({}): {}\n",
                e.kind,
                e.kind.advice(),
                e.message
            ));
        }
        if !task.tags.is_empty() {
            s.push_str(&format!("  tags:     {}\n", task.tags.join(", ")));
        }
        if task.priority != 0 {
            s.push_str(&format!("  priority: {}\n", task.priority));
        }
        if task.retries > 0 || task.max_retries.is_some() {
            s.push_str(&format!(
                "  retries:  {}{}\n",
                task.retries,
                task.max_retries
                    .map(|m| format!(" of {m}"))
                    .unwrap_or_default()
            ));
        }
        if !tokens.turns.is_empty() {
            s.push_str(&format!(
                "  tokens:   {} over {} turn{}\n",
                tokens.total.human(),
                tokens.turns.len(),
                if tokens.turns.len() == 1 { "" } else { "s" }
            ));
        }
        if !task.command.is_empty() {
            s.push_str(&format!("  command:  {:?}\n", task.command));
        }
        s.push_str(&format!(
            "  created:  {}\n  updated:  {}\n",
            task.created, task.updated
        ));
        if !task.description.is_empty() {
            s.push_str(&format!("\n{}\n", task.description));
        }
        s.push_str(&crate::landing::checks::describe(&check_runs));
        if let Some(e) = &evaluation {
            s.push_str(&format!(
                "\nevaluation: {}\n",
                e.get("total")
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "?".into())
            ));
        }
        if !tokens.turns.is_empty() {
            s.push_str("\nturns:\n");
            let skip = tokens.turns.len().saturating_sub(SHOWN_TURNS);
            if skip > 0 {
                s.push_str(&format!(
                    "  ({skip} earlier turns: `wg show {} --json`)\n",
                    task.id
                ));
            }
            for t in &tokens.turns[skip..] {
                let failed = if t.role == crate::conversation::Role::Error {
                    " (failed)"
                } else {
                    ""
                };
                s.push_str(&format!(
                    "  turn {}{failed}: {}\n",
                    t.turn,
                    t.tokens.human()
                ));
            }
        }
        if !log.is_empty() {
            s.push_str("\nlog:\n");
            for r in log.iter().rev().take(10).rev() {
                s.push_str(&format!("  {}\n", r.human()));
            }
        }
        s
    })?;
    Ok(())
}
