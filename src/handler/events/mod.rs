//! codex `--json` events, parsed tolerantly into the outcome of one turn. Pure.
//!
//! Success is `turn.completed` and exit 0; `turn.failed` or a non-zero exit is a failure;
//! `error` events and `error` items alone are warnings (codex emits them for every retry and
//! for unknown model metadata). The reply is the last `agent_message`.

pub mod claude;

use serde_json::Value;

use crate::conversation::Usage;
use crate::outcome::ErrorKind;

/// A command the agent ran.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRun {
    pub command: String,
    pub exit_code: Option<i64>,
    pub status: String,
}

/// A claude tool call waiting for its result.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTool {
    pub id: String,
    /// The command for a shell tool, else the tool's name and input.
    pub shown: String,
    /// A shell tool (Bash): its result carries an exit code.
    pub shell: bool,
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

/// Which agent CLI printed the events: the executor table picks the parser.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    Codex,
    Claude,
}

impl Dialect {
    /// The agent's name, for log event names and texts.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Codex => "codex",
            Dialect::Claude => "claude",
        }
    }
}

/// The state of a turn as its events arrive.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TurnEvents {
    pub dialect: Dialect,
    pub thread_id: Option<String>,
    pub completed: bool,
    pub failed: Option<String>,
    pub reply: Option<String>,
    pub usage: Usage,
    pub commands: Vec<CommandRun>,
    pub warnings: Vec<String>,
    pub events: usize,
    /// The HTTP status of the final API error, when the agent reports one (claude).
    pub error_status: Option<u64>,
    /// Tool calls started and not yet answered (claude).
    pub pending_tools: Vec<PendingTool>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn usage_of(v: &Value) -> Usage {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        cached_input_tokens: n("cached_input_tokens"),
        output_tokens: n("output_tokens"),
        reasoning_output_tokens: n("reasoning_output_tokens"),
    }
}

impl TurnEvents {
    pub fn new(dialect: Dialect) -> TurnEvents {
        TurnEvents {
            dialect,
            ..TurnEvents::default()
        }
    }

    /// Folds one event in; returns what is worth logging.
    pub fn feed(&mut self, ev: &Value) -> Option<Notice> {
        self.events += 1;
        if self.dialect == Dialect::Claude {
            return claude::feed(self, ev);
        }
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "thread.started" => {
                self.thread_id = text(ev, "thread_id");
                None
            }
            "turn.completed" => {
                self.completed = true;
                if let Some(u) = ev.get("usage") {
                    self.usage = usage_of(u);
                }
                None
            }
            "turn.failed" => {
                let msg = ev
                    .get("error")
                    .and_then(|e| text(e, "message"))
                    .unwrap_or_else(|| "turn failed (no message)".into());
                self.failed = Some(msg.clone());
                Some(Notice::Failed(msg))
            }
            "error" => {
                let msg = text(ev, "message").unwrap_or_default();
                self.warnings.push(msg.clone());
                Some(Notice::Warning(msg))
            }
            "item.completed" => {
                let item = ev.get("item")?;
                match item.get("type").and_then(Value::as_str).unwrap_or("") {
                    "agent_message" => {
                        let t = text(item, "text").unwrap_or_default();
                        self.reply = Some(t.clone());
                        Some(Notice::Message(t))
                    }
                    "command_execution" => {
                        let run = CommandRun {
                            command: text(item, "command").unwrap_or_default(),
                            exit_code: item.get("exit_code").and_then(Value::as_i64),
                            status: text(item, "status").unwrap_or_default(),
                        };
                        self.commands.push(run.clone());
                        Some(Notice::Command(run))
                    }
                    "file_change" => {
                        let first = item
                            .get("changes")
                            .and_then(Value::as_array)
                            .and_then(|c| c.first())
                            .cloned()
                            .unwrap_or(Value::Null);
                        Some(Notice::FileChange {
                            path: text(&first, "path").unwrap_or_default(),
                            kind: text(&first, "kind").unwrap_or_default(),
                        })
                    }
                    "error" => {
                        let msg = text(item, "message").unwrap_or_default();
                        self.warnings.push(msg.clone());
                        Some(Notice::Warning(msg))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Whether the turn succeeded given codex's exit code.
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
        let mut t = TurnEvents::default();
        for line in sample.lines() {
            if let Line::Event(v) = parse_line(line) {
                t.feed(&v);
            }
        }
        t
    }

    const OK: &str = include_str!("../../../tests/fixtures/codex-events/events-ok.jsonl");
    const TOOL: &str = include_str!("../../../tests/fixtures/codex-events/events-tool.jsonl");
    const E401: &str =
        include_str!("../../../tests/fixtures/codex-events/events-err-401-default-retries.jsonl");
    const E500: &str = include_str!("../../../tests/fixtures/codex-events/events-err-500.jsonl");
    const REFUSED: &str =
        include_str!("../../../tests/fixtures/codex-events/events-err-refused.jsonl");
    const NOKEY: &str = include_str!("../../../tests/fixtures/codex-events/events-err-nokey.jsonl");
    const STALL: &str = include_str!("../../../tests/fixtures/codex-events/events-err-stall.jsonl");

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
        assert_eq!(t.feed(&v), None);
        let Line::Event(v) = parse_line(r#"{"type":"item.completed"}"#) else {
            panic!()
        };
        assert_eq!(t.feed(&v), None);
        let Line::Event(v) = parse_line(r#"{"type":"turn.completed"}"#) else {
            panic!()
        };
        t.feed(&v);
        assert!(t.succeeded(Some(0)) && t.reply.is_none());
    }
}
