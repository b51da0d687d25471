//! The agent's events of one turn, folded (through [`crate::agent_events`]) into its outcome.
//! Pure.
//!
//! Success is a completed turn and exit 0; a failed turn or a non-zero exit is a failure;
//! warnings alone (codex's `error` events, emitted for every retry and for unknown model
//! metadata; claude's API retries) do not end a turn. The reply is the last text the agent
//! wrote, or the one claude's result names.

use serde_json::Value;

pub use crate::agent_events::Dialect;
use crate::agent_events::{AgentEvent, Fold, ToolRun};
use crate::conversation::Usage;
use crate::outcome::ErrorKind;

/// A command the agent ran.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRun {
    pub command: String,
    pub exit_code: Option<i64>,
    pub status: String,
}

impl From<ToolRun> for CommandRun {
    fn from(run: ToolRun) -> CommandRun {
        CommandRun {
            command: run.shown,
            exit_code: run.exit_code,
            status: run.status,
        }
    }
}

/// What one stdout line was.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A JSON object; kept as is in `events.jsonl`.
    Event(Value),
    /// Anything else: logged and skipped.
    NotJson,
}

pub fn parse_line(line: &str) -> Line {
    match serde_json::from_str::<Value>(line.trim()) {
        Ok(v) if v.is_object() => Line::Event(v),
        _ => Line::NotJson,
    }
}

/// Something worth a line in `handler.log`, derived from one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Warning(String),
    Command(CommandRun),
    FileChange { path: String, kind: String },
    Message(String),
    Failed(String),
}

/// The state of a turn as its events arrive.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TurnEvents {
    pub dialect: Dialect,
    pub thread_id: Option<String>,
    pub completed: bool,
    pub failed: Option<String>,
    /// The last text the agent wrote (codex), or the one its result names (claude).
    pub reply: Option<String>,
    pub usage: Usage,
    pub commands: Vec<CommandRun>,
    pub warnings: Vec<String>,
    pub events: usize,
    /// The HTTP status of the final API error, when the agent reports one (claude).
    pub error_status: Option<u64>,
    /// The raw events folded so far, with the tool calls still waiting for their result.
    pub fold: Fold,
}

impl TurnEvents {
    pub fn new(dialect: Dialect) -> TurnEvents {
        TurnEvents {
            dialect,
            fold: Fold::new(dialect),
            ..TurnEvents::default()
        }
    }

    /// Folds one raw event in; returns what is worth logging.
    pub fn feed(&mut self, ev: &Value) -> Vec<Notice> {
        self.events += 1;
        let folded = self.fold.push(ev);
        folded.into_iter().filter_map(|e| self.apply(e)).collect()
    }

    fn apply(&mut self, event: AgentEvent) -> Option<Notice> {
        match event {
            AgentEvent::Session(id) => {
                self.thread_id = Some(id);
                None
            }
            AgentEvent::TurnStarted
            | AgentEvent::CommandStarted { .. }
            | AgentEvent::Thinking(_)
            | AgentEvent::OtherItem(_) => None,
            AgentEvent::ToolEnded(run) => {
                let run = CommandRun::from(run);
                self.commands.push(run.clone());
                Some(Notice::Command(run))
            }
            AgentEvent::Reply(text) => {
                self.reply = Some(text.clone());
                Some(Notice::Message(text))
            }
            AgentEvent::FilesChanged(changes) => {
                let (path, kind) = changes.into_iter().next().unwrap_or_default();
                Some(Notice::FileChange { path, kind })
            }
            AgentEvent::Warning(message) => {
                self.warnings.push(message.clone());
                Some(Notice::Warning(message))
            }
            AgentEvent::Completed { usage, reply } => {
                self.completed = true;
                if let Some(u) = usage {
                    self.usage = u;
                }
                if reply.is_some() {
                    self.reply = reply;
                }
                None
            }
            AgentEvent::Failed {
                message,
                status,
                usage,
            } => {
                self.failed = Some(message.clone());
                self.error_status = status;
                if let Some(u) = usage {
                    self.usage = u;
                }
                Some(Notice::Failed(message))
            }
        }
    }

    /// Whether the turn succeeded given the agent's exit code.
    pub fn succeeded(&self, exit_code: Option<i32>) -> bool {
        self.completed && self.failed.is_none() && exit_code == Some(0)
    }
}

/// Classifies a failed codex turn from everything it said: the warnings it printed while
/// retrying (`Reconnecting... (unexpected status 401 …)`), then the final failure. The first
/// HTTP status wins (see [`crate::outcome::classify_messages`]).
pub fn classify(t: &TurnEvents, detail: &str) -> ErrorKind {
    let msgs: Vec<&str> = t
        .warnings
        .iter()
        .map(String::as_str)
        .chain(t.failed.as_deref())
        .chain(std::iter::once(detail))
        .collect();
    crate::outcome::classify_messages(msgs.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sample: &str) -> TurnEvents {
        let mut t = TurnEvents::new(Dialect::Codex);
        for line in sample.lines() {
            if let Line::Event(v) = parse_line(line) {
                t.feed(&v);
            }
        }
        t
    }

    const OK: &str = include_str!("../../tests/fixtures/codex-events/events-ok.jsonl");
    const TOOL: &str = include_str!("../../tests/fixtures/codex-events/events-tool.jsonl");
    const E401: &str =
        include_str!("../../tests/fixtures/codex-events/events-err-401-default-retries.jsonl");
    const E500: &str = include_str!("../../tests/fixtures/codex-events/events-err-500.jsonl");
    const REFUSED: &str =
        include_str!("../../tests/fixtures/codex-events/events-err-refused.jsonl");
    const NOKEY: &str = include_str!("../../tests/fixtures/codex-events/events-err-nokey.jsonl");
    const STALL: &str = include_str!("../../tests/fixtures/codex-events/events-err-stall.jsonl");

    #[test]
    fn ok_turn_has_reply_and_usage_and_the_metadata_warning_is_not_fatal() {
        let t = run(OK);
        assert!(t.succeeded(Some(0)) && !t.succeeded(Some(1)));
        assert_eq!(t.reply.as_deref(), Some("hi from the stub"));
        assert_eq!((t.usage.input_tokens, t.usage.output_tokens), (42, 7));
        assert_eq!(t.warnings.len(), 1);
        assert!(t.thread_id.is_some());
    }

    #[test]
    fn tool_turn_records_the_command() {
        let t = run(TOOL);
        assert!(t.succeeded(Some(0)));
        assert_eq!(t.commands.len(), 1);
        assert_eq!(t.commands[0].exit_code, Some(0));
        assert_eq!(t.reply.as_deref(), Some("done running it"));
        assert_eq!(t.usage.input_tokens, 84);
    }

    #[test]
    fn failures_are_classified() {
        for (sample, kind) in [
            (E401, ErrorKind::Unauthorized),
            (E500, ErrorKind::ServerError),
            (REFUSED, ErrorKind::Unreachable),
            (NOKEY, ErrorKind::KeyMissing),
            (STALL, ErrorKind::StreamBroken),
        ] {
            let t = run(sample);
            assert!(!t.succeeded(Some(0)), "{sample}");
            assert_eq!(classify(&t, t.failed.as_deref().unwrap()), kind, "{sample}");
        }
        // Retries alone ("Reconnecting...") are warnings; only turn.failed decides.
        assert_eq!(run(E401).warnings.len(), 7);
    }

    #[test]
    fn odd_lines_are_tolerated() {
        assert_eq!(parse_line("Reading additional input"), Line::NotJson);
        assert_eq!(parse_line("[1,2]"), Line::NotJson);
        let mut t = TurnEvents::default();
        let Line::Event(v) = parse_line(r#"{"type":"something.new","x":1}"#) else {
            panic!()
        };
        assert_eq!(t.feed(&v), Vec::new());
        let Line::Event(v) = parse_line(r#"{"type":"item.completed"}"#) else {
            panic!()
        };
        assert_eq!(t.feed(&v), Vec::new());
        let Line::Event(v) = parse_line(r#"{"type":"turn.completed"}"#) else {
            panic!()
        };
        t.feed(&v);
        assert!(t.succeeded(Some(0)) && t.reply.is_none());
    }
}
