use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::conversation::{self, InboxMessage};
use crate::error::{not_found, user_error, CliResult};
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;
use crate::store::layout::Layout;
use crate::store::lock::FileLock;

/// Send a message to a task's agent (appended to `.wg/tasks/<id>/inbox.jsonl`).
///
/// A `waiting` task goes back to `in-progress` and the coordinator runs its next turn; a
/// message sent mid-turn is answered by the next turn.
#[derive(Debug, Args)]
pub struct MsgArgs {
    pub id: String,
    /// The message.
    pub text: String,
    /// Open a done or failed task again with this message.
    #[arg(long)]
    pub reopen: bool,
}

/// Whether a coordinator holds `.wg/service/coordinator.lock`. If we can take the lock, no
/// coordinator runs; the lock is let go at once.
pub(crate) fn coordinator_running(layout: &Layout) -> bool {
    let path = layout.coordinator_lock();
    if !path.exists() {
        return false;
    }
    matches!(FileLock::try_acquire(&path), Ok(None))
}

/// Appends `text` for task `id` and wakes a waiting task. Shared by `wg msg` and `wg chat`.
pub(crate) fn send(ctx: &Ctx, id: &str, text: &str, reopen: bool) -> CliResult<InboxMessage> {
    check_id(id)?;
    if text.trim().is_empty() {
        return Err(user_error("the message is empty"));
    }
    let max = ctx.config.handler.max_message_chars;
    if text.len() > max {
        let chars = text.chars().count();
        if chars > max {
            return Err(user_error(format!(
                "the message is {chars} characters; the limit is {max} (handler.max_message_chars)"
            ))
            .hinted("nothing was sent; put the text in a file and send its path, or raise handler.max_message_chars (codex refuses a prompt over 1,048,576 characters)"));
        }
    }
    let graph = ctx.store.load()?;
    let mut task = graph.tasks.get(id).cloned().ok_or_else(|| not_found(id))?;
    if task.status == TaskStatus::Abandoned {
        return Err(
            user_error(format!("task `{id}` is abandoned; nobody will answer"))
                .hinted("add a new task instead"),
        );
    }
    if task.status.is_terminal() {
        if !reopen {
            return Err(user_error(format!(
                "task `{id}` is {}; a message to it would never be answered",
                task.status
            ))
            .hinted(format!(
                "`wg msg {id} TEXT --reopen` opens it again with this message"
            )));
        }
        let mut w = ctx.store.writer()?;
        let change = Change {
            to: TaskStatus::Open,
            reason: Some("reopened by a message"),
            actor: &ctx.actor,
        };
        task = transition(&mut w, id, change, |t| t.failure_reason = None)?;
        w.commit()?;
    }
    let brief = || conversation::brief_for(&ctx.layout, &task, |d| graph.tasks.get(d).cloned());
    // An answer names the question it answers: the agent's replayed conversation has its
    // replies, not the commands it ran, so it would not see its own `wg ask` otherwise.
    let question = task
        .extra
        .get(crate::cli::ask::QUESTION)
        .and_then(|q| q.as_str())
        .filter(|_| task.status == TaskStatus::NeedsInput);
    let answered;
    let text = match question {
        Some(q) => {
            answered = format!("Answer to your question \"{q}\":\n{text}");
            answered.as_str()
        }
        None => text,
    };
    let msg = conversation::append_message(&ctx.layout, &task, brief, &ctx.actor, "message", text)?;
    let mut w = ctx.store.writer()?;
    // The answer to `wg ask`: the task waits for its next turn, which reads this message.
    if w.get(id)?
        .is_some_and(|t| t.status == TaskStatus::NeedsInput)
    {
        let change = Change {
            to: TaskStatus::Waiting,
            reason: Some("answered"),
            actor: &ctx.actor,
        };
        transition(&mut w, id, change, |t| {
            t.extra.remove(crate::cli::ask::QUESTION);
        })?;
        w.commit()?;
        return Ok(msg);
    }
    if w.get(id)?.is_some_and(|t| t.status == TaskStatus::Waiting) {
        let change = Change {
            to: TaskStatus::InProgress,
            reason: Some("new message"),
            actor: &ctx.actor,
        };
        transition(&mut w, id, change, |_| {})?;
        w.commit()?;
    }
    Ok(msg)
}

pub fn cmd_msg(ctx: &Ctx, args: &MsgArgs) -> CliResult {
    let msg = send(ctx, &args.id, &args.text, args.reopen)?;
    ctx.out
        .either(&msg, || format!("sent message {} to {}", msg.seq, args.id))?;
    if !coordinator_running(&ctx.layout) {
        crate::output::stderr(&format!(
            "note: no coordinator is running, so nothing will answer yet; run `wg handler {}` to answer now, or `wg service start`\n",
            args.id
        ));
    }
    Ok(())
}
