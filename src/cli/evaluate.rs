use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::conversation;
use crate::error::{not_found, user_error, CliError, CliResult, Kind};
use crate::evaluate::verdict::{gate, GateDecision, DIMENSIONS};
use crate::evaluate::{self, Evaluation};
use crate::lifecycle::{transition, Change};
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
}

pub fn cmd_evaluate(ctx: &Ctx, args: &EvaluateArgs) -> CliResult {
    check_id(&args.id)?;
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
    evaluate::save(&ctx.layout, &result)?;
    let mut rec = LogRecord::note(&now_rfc3339(), &ctx.actor, "");
    rec.event = "evaluation".into();
    rec.text = None;
    rec.extra
        .insert("status".into(), result.status.clone().into());
    if let Some(total) = result.total {
        rec.extra.insert("total".into(), total.into());
    }
    tasklog::append(&ctx.layout, &task.id, &rec, false)?;
    let decision = if args.apply && result.status == "ok" && task.status == TaskStatus::Done {
        Some(apply_gate(ctx, &task.id, &result)?)
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

/// The gate: below the pass mark a done task goes back to open with the notes as a new
/// inbox message; the `max_rejections`-th rejection fails it.
pub fn apply_gate(ctx: &Ctx, id: &str, e: &Evaluation) -> CliResult<GateDecision> {
    let cfg = &ctx.config.evaluate;
    let mut w = ctx.store.writer()?;
    let task = w.get(id)?.ok_or_else(|| not_found(id))?;
    let decision = gate(
        e.total.unwrap_or(0.0),
        cfg.pass,
        evaluate::rejections(&task),
        cfg.max_rejections,
    );
    let (n, last) = match decision {
        GateDecision::Accept => return Ok(decision),
        GateDecision::Reject { n } => (n, false),
        GateDecision::Fail { n } => (n, true),
    };
    let reason = format!(
        "rejected by evaluator ({n}/{}): score {:.2} below {:.2}",
        cfg.max_rejections,
        e.total.unwrap_or(0.0),
        cfg.pass
    );
    let reopened = transition(
        &mut w,
        id,
        Change {
            to: TaskStatus::Open,
            reason: Some(&reason),
            actor: "evaluator",
        },
        |t| {
            t.extra.insert("rejections".into(), n.into());
        },
    )?;
    if last {
        transition(
            &mut w,
            id,
            Change {
                to: TaskStatus::Failed,
                reason: Some(&reason),
                actor: "evaluator",
            },
            |_| {},
        )?;
    }
    w.commit()?;
    let text = format!(
        "Rejected ({n}/{}): {}",
        cfg.max_rejections,
        if e.notes.is_empty() {
            &reason
        } else {
            &e.notes
        }
    );
    let brief_task = reopened.clone();
    conversation::append_message(
        &ctx.layout,
        &reopened,
        || conversation::build_brief(&brief_task, &[]),
        "evaluator",
        "rejection",
        &text,
    )
    .map_err(|e| user_error(e.to_string()))?;
    Ok(decision)
}
