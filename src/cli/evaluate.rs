use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::{not_found, user_error, CliError, CliResult, Kind};
use crate::evaluate::verdict::{GateDecision, DIMENSIONS};
use crate::evaluate::{self, Evaluation};
use crate::model::TaskStatus;
use crate::store::tasklog::{self, LogRecord};
use crate::time::now_rfc3339;

/// Score a finished task from its transcript, handler.log, progress log, commands and diff,
/// by asking the configured endpoint; writes `.wg/tasks/<id>/evaluation.json`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    pub id: String,
    /// Apply the gate: below `evaluate.pass` a done task goes back to open with the notes
    /// in its inbox; the `evaluate.max_rejections`-th rejection fails it.
    #[arg(long)]
    pub apply: bool,
    /// A person's verdict, without asking the endpoint: accept the done work (its dependents
    /// may start).
    #[arg(long, conflicts_with_all = ["apply", "reject"])]
    pub accept: bool,
    /// A person's verdict: send the done work back to open, with the evaluation's notes as
    /// its next message.
    #[arg(long, conflicts_with = "apply")]
    pub reject: bool,
}

pub fn cmd_evaluate(ctx: &Ctx, args: &EvaluateArgs) -> CliResult {
    check_id(&args.id)?;
    if args.accept || args.reject {
        let task = evaluate::person_verdict(&ctx.store, &args.id, args.accept, &ctx.actor)?;
        let verdict = if args.accept {
            "accepted"
        } else {
            "rejected: open again"
        };
        ctx.out.either(&task, || format!("{} {verdict}", task.id))?;
        return Ok(());
    }
    let graph = ctx.store.load()?;
    let (task, _archived) = ctx
        .store
        .find(&graph, &args.id)?
        .ok_or_else(|| not_found(&args.id))?;
    if !matches!(task.status, TaskStatus::Done | TaskStatus::Failed) {
        return Err(user_error(format!(
            "task `{}` is {}; only done or failed work is evaluated",
            task.id, task.status
        ))
        .hinted("wait until it is done, or `wg done` it"));
    }
    evaluate::target(&ctx.config).map_err(|e| {
        CliError::new(Kind::Config, anyhow::anyhow!("{e}"))
            .hinted("e.g. `wg config set evaluate.endpoint https://host/v1`")
    })?;
    let result = evaluate::evaluate(&ctx.layout, &ctx.config, &task, &ctx.layout.project_root()).map_err(|e| {
        let _ = tasklog::append(
            &ctx.layout,
            &task.id,
            &LogRecord {
                extra: [("error".to_string(), serde_json::Value::String(e.to_string()))].into_iter().collect(),
                ..LogRecord::note(&now_rfc3339(), &ctx.actor, "evaluation failed")
            },
            false,
        );
        user_error(format!("evaluation of `{}` failed: {e}", task.id))
            .hinted("nothing was changed; check the endpoint with `wg doctor`, then run `wg evaluate` again")
    })?;
    evaluate::record(&ctx.layout, &ctx.actor, &result)?;
    let decision = if args.apply && result.status == "ok" && task.status == TaskStatus::Done {
        Some(evaluate::apply_gate(
            &ctx.store,
            &ctx.config,
            &task.id,
            &result,
        )?)
    } else {
        None
    };
    let mut value = serde_json::to_value(&result).map_err(crate::error::internal)?;
    match &decision {
        Some(GateDecision::Accept) => value["decision"] = "accept".into(),
        Some(GateDecision::Reject { n }) => {
            value["decision"] = "reject".into();
            value["rejection"] = (*n).into();
        }
        Some(GateDecision::Fail { n }) => {
            value["decision"] = "fail".into();
            value["rejection"] = (*n).into();
        }
        None => {}
    }
    ctx.out
        .either(&value, || render(&result, decision.as_ref()))?;
    if result.status != "ok" {
        return Err(user_error(format!(
            "the evaluator gave no usable verdict for `{}`: {}",
            task.id,
            result.error.as_deref().unwrap_or("unknown")
        ))
        .hinted("recorded in evaluation.json; the task was not changed"));
    }
    Ok(())
}

fn render(e: &Evaluation, decision: Option<&GateDecision>) -> String {
    let mut s = match e.total {
        Some(t) => format!("{}: {:.2} (pass {:.2}) by {}\n", e.task, t, e.pass, e.model),
        None => format!(
            "{}: no verdict ({})\n",
            e.task,
            e.error.as_deref().unwrap_or("")
        ),
    };
    for dim in DIMENSIONS {
        if let Some(score) = e.scores.get(dim) {
            let reason = e
                .reasons
                .get(dim)
                .map(|r| format!("  {r}"))
                .unwrap_or_default();
            s.push_str(&format!("  {dim:<21} {score:.2}{reason}\n"));
        }
    }
    for f in &e.findings {
        s.push_str(&format!("  finding: {f}\n"));
    }
    if !e.notes.is_empty() {
        s.push_str(&format!("notes: {}\n", e.notes));
    }
    match decision {
        Some(GateDecision::Accept) => s.push_str("accepted\n"),
        Some(GateDecision::Reject { n }) => {
            s.push_str(&format!("rejected ({n}): sent back to open\n"))
        }
        Some(GateDecision::Fail { n }) => s.push_str(&format!("rejected ({n}): task failed\n")),
        None => {}
    }
    s
}
