//! The codex per-turn handler (`wg handler ID`): every turn replays the task's conversation
//! into a fresh `codex exec` and records what came back. See docs/architecture.md ("The
//! turn"), docs/conversation.md and docs/handler-log.md.
//!
//! `prompt`, `command`, `events`, `log` and this file are pure; `run` and `files` do the I/O
//! (the codex child, `events.jsonl`, `handler.log`); `cli/handler.rs` wires them to the store.

pub mod agent;
pub mod claude;
pub mod codex;
pub mod command;
pub mod digest;
pub mod error;
pub mod events;
pub mod files;
pub mod log;
pub mod overflow;
pub mod prompt;
pub mod proxy;
pub mod resolve;
pub mod run;
pub mod runaway;
pub mod session;
pub mod trim;

use std::time::Duration;

use crate::conversation::OutboxRecord;
use crate::outcome::ErrorKind;

/// Per-task limits, counted over the whole conversation (retries included: the outbox keeps
/// every turn).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    pub max_turns: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_wall: Option<Duration>,
}

/// What the conversation has used so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Used {
    pub turns: u64,
    pub tokens: u64,
    pub wall: Duration,
}

impl Used {
    pub fn of(outbox: &[OutboxRecord]) -> Used {
        Used {
            turns: outbox.len() as u64,
            tokens: outbox
                .iter()
                .filter_map(|r| r.usage.as_ref())
                .map(|u| u.input_tokens + u.output_tokens)
                .sum(),
            wall: Duration::from_millis(outbox.iter().map(|r| r.duration_ms).sum()),
        }
    }
}

impl Budget {
    /// The budget that is spent, named, if any. `next_turn`: whether one more turn is about to
    /// start (then reaching `max_turns` already counts as over).
    pub fn exceeded(&self, used: &Used, next_turn: bool) -> Option<String> {
        if let Some(max) = self.max_turns {
            if used.turns > max || (next_turn && used.turns >= max) {
                return Some(format!("max_turns = {max} ({} turns used)", used.turns));
            }
        }
        if let Some(max) = self.max_tokens {
            if used.tokens >= max {
                return Some(format!("max_tokens = {max} ({} tokens used)", used.tokens));
            }
        }
        if let Some(max) = self.max_wall {
            if used.wall >= max {
                return Some(format!(
                    "max_wall = {} ({} used)",
                    humantime::format_duration(max),
                    humantime::format_duration(Duration::from_secs(used.wall.as_secs()))
                ));
            }
        }
        None
    }
}

/// Why a turn ended without an assistant reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The agent reported a failure (or exited non-zero); the message is its own (or the
    /// server's, when the bridge kept it).
    Agent { kind: ErrorKind, detail: String },
    /// The handler's own timeout ended the process group.
    Timeout {
        which: &'static str,
        after: Duration,
    },
    /// The agent's binary could not be started.
    NotInstalled {
        agent: &'static str,
        binary: String,
        detail: String,
    },
    /// The key's env var is unset or empty.
    KeyMissing { var: String },
    /// A per-task budget is spent.
    Budget { what: String },
}

impl Failure {
    /// The typed kind, for `handler.log` and the outbox record's `error_kind`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Failure::Agent { kind, .. } => *kind,
            Failure::Timeout { which, .. } => match *which {
                "first-output" => ErrorKind::TimeoutFirstOutput,
                "idle" => ErrorKind::TimeoutIdle,
                _ => ErrorKind::TimeoutHard,
            },
            Failure::NotInstalled {
                agent: "claude", ..
            } => ErrorKind::ClaudeMissing,
            Failure::NotInstalled { .. } => ErrorKind::CodexMissing,
            Failure::KeyMissing { .. } => ErrorKind::KeyMissing,
            Failure::Budget { .. } => ErrorKind::Budget,
        }
    }

    /// The failure in the words of whoever reported it (the server, the agent, wg), for the
    /// outbox record's `error_message`, the task's last error and the pause reason.
    pub fn detail(&self) -> String {
        match self {
            Failure::Agent { detail, .. } => detail.clone(),
            Failure::Timeout { which, after } => format!(
                "{which} timeout after {}",
                humantime::format_duration(*after)
            ),
            Failure::NotInstalled { binary, detail, .. } => format!("{binary}: {detail}"),
            Failure::KeyMissing { var } => format!("${var} is not set"),
            Failure::Budget { what } => format!("over budget: {what}"),
        }
    }
}

/// Where the turn was going, for error texts.
pub struct ReplyContext<'a> {
    /// `codex` or `claude`.
    pub agent: &'a str,
    pub task_id: &'a str,
    pub endpoint: Option<&'a str>,
    pub key_env: &'a str,
}

/// The `error` reply: what failed and what to do about it.
pub fn error_reply(f: &Failure, c: &ReplyContext<'_>) -> String {
    let agent = c.agent;
    let own = format!("{agent}'s own provider");
    let url = c.endpoint.unwrap_or(&own);
    let id = c.task_id;
    let again =
        format!("then send the message again (`wg msg {id} TEXT`) or rerun `wg handler {id}`");
    match f {
        Failure::Agent { kind, detail } => match kind {
            ErrorKind::Unauthorized => format!(
                "The endpoint {url} rejected the API key ({detail}). Check that ${} holds a valid key for it (`wg doctor` checks this), {again}.",
                c.key_env
            ),
            ErrorKind::RateLimited => format!(
                "The endpoint {url} is rate-limiting requests ({detail}). Wait a little, {again}; lower coordinator.max_agents if it keeps happening."
            ),
            ErrorKind::ServerError => format!(
                "The endpoint {url} answered with a server error ({detail}). Look at the model server's own log (`wg doctor` checks that it answers), {again}."
            ),
            ErrorKind::Unreachable => format!(
                "Could not connect to the endpoint {url} ({detail}). Is the model server running, and is the URL right (`wg config get endpoint.url`)? `wg doctor` checks it; {again}."
            ),
            ErrorKind::StreamBroken => format!(
                "The endpoint {url} stopped streaming the answer ({detail}). The server may be overloaded or may have crashed; check its log, {again}."
            ),
            ErrorKind::KeyMissing => format!(
                "{agent} found no API key ({detail}). Export ${} where the coordinator or `wg handler` runs, {again}.",
                c.key_env
            ),
            ErrorKind::BadConfig => format!(
                "{agent} refused its configuration ({detail}). Check [endpoint] and [{agent}] in .wg/config.toml, {again}."
            ),
            ErrorKind::Forbidden => format!(
                "The endpoint {url} refused the request for this key ({detail}). The key is valid but not allowed to use this model or route (on a gateway: its model list or budget); fix its permissions, {again}."
            ),
            ErrorKind::ModelNotFound => format!(
                "The endpoint {url} does not serve the model ({detail}). Check the model name (`wg config get endpoint.model`, or the task's) against the server's `/models`, and that the URL ends in /v1; {again}."
            ),
            ErrorKind::ContextOverflow => format!(
                "The conversation no longer fits the model's context window ({detail}). wg retries such a turn once with half the replayed history before reporting it. Split the task, lower codex.history_budget_chars, or raise the server's context length and set endpoint.model_context_window to match; {again}."
            ),
            ErrorKind::BadRequest => format!(
                "The endpoint {url} refused the request ({detail}). The server's message says what it did not accept; {again}."
            ),
            _ => format!(
                "{agent} failed: {detail}. The details are in .wg/tasks/{id}/handler.log and events.jsonl; {again}."
            ),
        },
        Failure::Timeout { which, after } => {
            let d = humantime::format_duration(*after);
            match *which {
                "first-output" => format!(
                    "{agent} printed nothing for {d} after it started (first-output timeout), so wg stopped it. Check that the {agent} binary runs (`wg doctor`); raise handler.first_output_timeout if it is just slow to start; {again}."
                ),
                "idle" => format!(
                    "{agent} produced no output for {d} (idle timeout), so wg stopped it. The endpoint {url} may have accepted the connection without ever answering: check the model server; raise handler.idle_timeout if turns legitimately stay quiet that long; {again}."
                ),
                _ => format!(
                    "The turn ran longer than {d} (handler.turn_timeout), so wg stopped it. Split the task or raise handler.turn_timeout, {again}."
                ),
            }
        }
        Failure::NotInstalled {
            agent: "claude",
            binary,
            detail,
        } => format!(
            "Claude Code is not installed or cannot be started (`{binary}`: {detail}). Install it (`npm install -g @anthropic-ai/claude-code`, or scripts/install-claude.sh in the wg repository), or point wg at it with `wg config set claude.binary /path/to/claude`; {again}."
        ),
        Failure::NotInstalled { binary, detail, .. } => format!(
            "codex is not installed or cannot be started (`{binary}`: {detail}). Install the Codex CLI (`npm install -g @openai/codex`), or point wg at it with `wg config set codex.binary /path/to/codex`; {again}."
        ),
        Failure::KeyMissing { var } => format!(
            "The API key variable ${var} is not set (or empty), so {agent} cannot authenticate to {url}. Export it where the coordinator or `wg handler` runs (wg never stores the key), {again}."
        ),
        Failure::Budget { what } => format!(
            "Task {id} is over its budget: {what}. wg failed the task; raise the limit in [handler] of .wg/config.toml and `wg retry {id}` to continue."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_named() {
        let b = Budget {
            max_turns: Some(3),
            max_tokens: Some(1000),
            max_wall: Some(Duration::from_secs(60)),
        };
        let mut u = Used {
            turns: 2,
            tokens: 10,
            wall: Duration::from_secs(1),
        };
        assert_eq!(b.exceeded(&u, true), None);
        u.turns = 3;
        assert!(b.exceeded(&u, false).is_none());
        assert!(b.exceeded(&u, true).unwrap().starts_with("max_turns = 3"));
        u.turns = 1;
        u.tokens = 1000;
        assert!(b
            .exceeded(&u, false)
            .unwrap()
            .starts_with("max_tokens = 1000"));
        u.tokens = 0;
        u.wall = Duration::from_secs(61);
        assert!(b.exceeded(&u, false).unwrap().starts_with("max_wall = 1m"));
        assert_eq!(Budget::default().exceeded(&u, true), None);
    }

    #[test]
    fn error_replies_say_what_to_do() {
        let c = ReplyContext {
            agent: "codex",
            task_id: "t",
            endpoint: Some("http://h/v1"),
            key_env: "MY_KEY",
        };
        let r = error_reply(
            &Failure::KeyMissing {
                var: "MY_KEY".into(),
            },
            &c,
        );
        assert!(r.contains("$MY_KEY") && r.contains("wg msg t"));
        let r = error_reply(
            &Failure::NotInstalled {
                agent: "codex",
                binary: "codex".into(),
                detail: "not found".into(),
            },
            &c,
        );
        assert!(r.contains("codex.binary"));
        let r = error_reply(
            &Failure::Agent {
                kind: ErrorKind::Unreachable,
                detail: "Connection failed".into(),
            },
            &c,
        );
        assert!(r.contains("http://h/v1") && r.contains("wg doctor"));
        let r = error_reply(
            &Failure::Timeout {
                which: "idle",
                after: Duration::from_secs(2),
            },
            &c,
        );
        assert!(r.contains("idle timeout") && r.contains("2s"));
    }
}
