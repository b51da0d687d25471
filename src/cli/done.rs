use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::{internal, user_error, CliResult};
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;
use crate::store::tasklog::{self, LogRecord};
use crate::workspace::ops::{settle_on_done, DoneOutcome};

/// Mark a task done.
#[derive(Debug, Args)]
pub struct DoneArgs {
    pub id: String,
    /// A closing note, kept in the task's log.
    #[arg(long)]
    pub note: Option<String>,
}

pub fn cmd_done(ctx: &Ctx, args: &DoneArgs) -> CliResult {
    check_id(&args.id)?;
    let mut w = ctx.store.writer()?;
    crate::cli::fence::check(ctx, &w, &args.id, "wg done")?;
    // A worktree's uncommitted changes are never dropped silently: committed on the task
    // branch, or `done` is refused (`workspace.on_done`). Only a task that may become done.
    let mut committed = None;
    if let Some(task) = w.get(&args.id)? {
        if task.status.can_become(TaskStatus::Done) {
            match settle_on_done(&ctx.config.workspace, &task).map_err(internal)? {
                DoneOutcome::Clean => {}
                DoneOutcome::Refused(files) => {
                    return Err(user_error(format!(
                        "task `{}` has uncommitted changes in its worktree:\n  {}",
                        task.id,
                        files.join("\n  ")
                    ))
                    .hinted("commit them on the task branch (or discard them), then run `wg done` again; workspace.on_done = \"commit\" commits them for you"));
                }
                DoneOutcome::Committed(commit, files) => committed = Some((commit, files)),
            }
        }
    }
    if let Some((commit, files)) = &committed {
        let text = format!(
            "committed {} uncommitted file(s) on the task branch as {}",
            files.len(),
            &commit[..commit.len().min(12)]
        );
        let mut rec = LogRecord::note(&crate::time::now_rfc3339(), &ctx.actor, &text);
        rec.event = "workspace.commit".into();
        rec.extra.insert("commit".into(), commit.clone().into());
        rec.extra.insert("files".into(), files.clone().into());
        tasklog::append(&ctx.layout, &args.id, &rec, false).map_err(internal)?;
    }
    let change = Change {
        to: TaskStatus::Done,
        reason: args.note.as_deref(),
        actor: &ctx.actor,
    };
    // An agent's `done` is checked by the evaluation gate before dependents may start; a
    // person's is their own verdict.
    let task = transition(&mut w, &args.id, change, |t| {
        t.failure_reason = None;
        crate::evaluate::hold_for_evaluation(t, &ctx.config, &ctx.actor);
        crate::landing::hold_on_done(t, &ctx.config, &ctx.actor);
    })?;
    w.commit()?;
    // Closing a task leaves what it was sent since its last reply without a turn: say so. (An
    // agent's own `wg done` runs inside a turn whose reply is still to come; the coordinator
    // notes what that turn left unanswered in the transcript once it ends.)
    let by_agent = ctx.actor.starts_with(crate::coordinator::AGENT_PREFIX);
    let late: Vec<String> = crate::conversation::unanswered(&ctx.layout, &args.id)
        .unwrap_or_default()
        .into_iter()
        .filter(|_| !by_agent)
        .filter(|m| m.kind == "message")
        .map(|m| m.seq.to_string())
        .collect();
    if !late.is_empty() {
        crate::output::stderr(&format!(
            "note: message {} to `{}` will not be answered: the task is done (`wg msg {} TEXT --reopen` opens it again)\n",
            late.join(", "),
            args.id,
            args.id
        ));
    }
    ctx.out.either(&task, || match &committed {
        Some((c, files)) => format!(
            "{} done (committed {} uncommitted file(s) as {})",
            task.id,
            files.len(),
            &c[..c.len().min(12)]
        ),
        None => format!("{} done", task.id),
    })?;
    Ok(())
}
