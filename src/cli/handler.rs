//! `wg handler ID`: the codex or claude agent of one task. Answers every unanswered inbox
//! message, one agent turn each, then exits (0 when every turn got an assistant reply, 1 when
//! one ended in an error reply). What the coordinator runs; works by hand too. The turn loop
//! is `handler::session`; this file parses and prints.

use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::env;
use crate::error::{config_error, internal, not_found, user_error, CliError, CliResult, Kind};
use crate::handler::error::SessionError;
use crate::handler::session::{self, Session};

/// Run agent turns (codex or claude) for a task until every message to it is answered.
///
/// Claims an `open` task (as agent `manual` when run by hand), writes the brief when the inbox
/// is empty, and leaves the task `waiting` after a turn that did not finish it.
#[derive(Debug, Args)]
pub struct HandlerArgs {
    pub id: String,
    /// Run one turn only.
    #[arg(long)]
    pub once: bool,
    /// Model for this run (default: the task's, then the config's).
    #[arg(long, env = env::WG_MODEL, hide_env_values = true)]
    pub model: Option<String>,
    /// Endpoint base URL for this run, including /v1 (default: `[endpoint] url`).
    #[arg(long, env = env::WG_ENDPOINT, hide_env_values = true)]
    pub endpoint: Option<String>,
}

/// A session's own error as the CLI's: exit code and hint.
fn cli_error(e: SessionError) -> CliError {
    let hinted = |mut c: CliError, hint: Option<String>| {
        if let Some(h) = hint {
            c = c.hinted(h);
        }
        c
    };
    match e {
        SessionError::NotFound(id) => not_found(&id),
        SessionError::Refused { message, hint } => hinted(user_error(message), hint),
        SessionError::Config { message, hint } => hinted(config_error(message), hint),
        SessionError::Locked(e) => CliError::new(Kind::Locked, e),
        SessionError::Store(e) => e,
        // A full disk or a corrupt conversation line is not a bug: exit 74 or 7 with the path.
        SessionError::Io(e) => e.into(),
        // Exit code from its cause (`CliError::exit_code` looks through the chain).
        SessionError::Conversation(e) => internal(e),
    }
}

pub fn cmd_handler(ctx: &Ctx, args: &HandlerArgs) -> CliResult {
    check_id(&args.id)?;
    let id = args.id.as_str();
    let print = |rec: &crate::conversation::OutboxRecord| {
        // Replies go to stdout; an error record only in --json (its text is the error).
        let _ = if rec.role == crate::conversation::Role::Error {
            if ctx.out.json {
                ctx.out.json(rec)
            } else {
                Ok(())
            }
        } else {
            ctx.out.either(rec, || rec.text.clone())
        };
    };
    let s = Session {
        layout: &ctx.layout,
        store: &ctx.store,
        config: &ctx.config,
        agent: if ctx.actor == "user" {
            "manual".to_string()
        } else {
            ctx.actor.clone()
        },
        once: args.once,
        model: args.model.clone(),
        endpoint: args.endpoint.clone(),
        on_record: &print,
    };
    let end = session::run(&s, id).map_err(cli_error)?;
    if end.busy {
        crate::output::stderr(&format!(
            "another `wg handler` is running turns for task `{id}`; it will answer the inbox\n"
        ));
    }
    match end.error {
        Some(e) => Err(user_error(format!(
            "a turn of task `{id}` ended in an error ({}): {}",
            e.kind, e.reply
        ))
        .hinted(format!(
            "details: {}",
            crate::cli::display_path(&ctx.layout.task_dir(id).join("handler.log"))
        ))),
        None => Ok(()),
    }
}
