use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::{user_error, CliResult};
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;

pub use crate::model::task::QUESTION;

/// Ask a person a question about a task: what an agent runs when it cannot go on alone.
///
/// The task becomes `needs-input`: it is never nudged or failed for waiting. `wg msg ID
/// ANSWER` makes it ready again, and the answer is the next message its agent reads.
#[derive(Debug, Args)]
pub struct AskArgs {
    pub id: String,
    /// The question, as the person should read it.
    pub question: String,
}

pub fn cmd_ask(ctx: &Ctx, args: &AskArgs) -> CliResult {
    check_id(&args.id)?;
    if args.question.trim().is_empty() {
        return Err(user_error("the question is empty").hinted("wg ask ID \"what to decide\""));
    }
    let mut w = ctx.store.writer()?;
    let change = Change {
        to: TaskStatus::NeedsInput,
        reason: Some(&args.question),
        actor: &ctx.actor,
    };
    let task = transition(&mut w, &args.id, change, |t| {
        t.extra
            .insert(QUESTION.into(), args.question.clone().into());
    })?;
    w.commit()?;
    ctx.out.either(&task, || {
        format!(
            "{} needs input; end your turn now: the answer arrives as the next message",
            task.id
        )
    })?;
    Ok(())
}
