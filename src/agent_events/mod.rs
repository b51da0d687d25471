//! What an agent CLI did, in wg's own terms. codex's and claude's JSON events are parsed into
//! tagged enums once (`codex.rs`, `claude.rs`) and folded into one stream of [`AgentEvent`]s;
//! the handler, the actions digest, `wg top`, `wg tail` and the evaluator all read that stream,
//! and nothing else matches an agent's raw JSON. Pure: no I/O.

pub mod claude;
pub mod codex;

use serde::Deserialize as _;
use serde_json::Value;

use crate::conversation::Usage;

/// Which agent CLI printed the events: the executor table picks the parser.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    Codex,
    Claude,
}

impl Dialect {
    /// Which agent printed `raw`, from its type alone (claude's four top-level types are not
    /// codex's), for readers of an `events.jsonl` that do not know the task's executor.
    pub fn of_event(raw: &Value) -> Dialect {
        match raw.get("type").and_then(Value::as_str) {
            Some("system" | "assistant" | "user" | "result") => Dialect::Claude,
            _ => Dialect::Codex,
        }
    }

    /// The agent's name, for log event names and texts.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Codex => "codex",
            Dialect::Claude => "claude",
        }
    }
}

/// One thing an agent did or said.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The agent's own session id (codex's thread, claude's session).
    Session(String),
    TurnStarted,
    /// A tool call began: a shell command (`shell`), or another tool shown as its name and
    /// input.
    CommandStarted {
        id: String,
        shown: String,
        shell: bool,
    },
    /// A tool call ended.
    ToolEnded(ToolRun),
    /// Text the agent wrote to the person; the last one of a turn is its reply.
    Reply(String),
    Thinking(String),
    /// Files the agent changed: (path, kind), kind as the agent names it (`add`, `update`,
    /// `delete`; `edit`, `write`).
    FilesChanged(Vec<(String, String)>),
    /// Something went wrong that does not end the turn (a retry, a denied tool).
    Warning(String),
    /// An item wg does not model (codex's `todo_list`, ...), by its type name.
    OtherItem(String),
    /// The turn ended well. claude says its reply here; codex's is the last `Reply`.
    Completed {
        usage: Option<Usage>,
        reply: Option<String>,
    },
    /// The turn failed; `status` is the HTTP status of the final API error when the agent
    /// reports one (claude).
    Failed {
        message: String,
        status: Option<u64>,
        usage: Option<Usage>,
    },
}

/// A tool call and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRun {
    pub id: String,
    /// The tool's name (`shell` for codex's commands; `Bash`, `Read`, `Write`... for claude).
    pub name: String,
    /// The command for a shell tool, else the tool's name and input.
    pub shown: String,
    pub shell: bool,
    pub exit_code: Option<i64>,
    pub failed: bool,
    /// As the agent says it: `completed`, `failed`, `declined`...
    pub status: String,
    pub output: String,
}

/// Folds a stream of raw events, in order, into [`AgentEvent`]s. Holds the tool calls still
/// waiting for their result (claude sends them apart).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fold {
    pub dialect: Dialect,
    pub claude: claude::Pairing,
}

impl Fold {
    pub fn new(dialect: Dialect) -> Fold {
        Fold {
            dialect,
            claude: claude::Pairing::default(),
        }
    }

    /// One raw event (one `events.jsonl` line's `event`, or one stdout line of the agent).
    /// Events of an unknown type, or of a known type in a shape wg cannot read, give nothing.
    pub fn push(&mut self, raw: &Value) -> Vec<AgentEvent> {
        match self.dialect {
            Dialect::Codex => match codex::CodexEvent::deserialize(raw) {
                Ok(ev) => codex::fold(ev, raw),
                Err(_) => Vec::new(),
            },
            Dialect::Claude => match claude::ClaudeEvent::deserialize(raw) {
                Ok(ev) => self.claude.fold(ev),
                Err(_) => Vec::new(),
            },
        }
    }

    /// The tool calls started and not ended yet, oldest first (claude; codex's are matched by
    /// [`open_commands`]).
    pub fn pending(&self) -> &[claude::PendingTool] {
        &self.claude.pending
    }
}

/// Every event of `raw`, in order.
pub fn fold_all<'a>(dialect: Dialect, raw: impl IntoIterator<Item = &'a Value>) -> Vec<AgentEvent> {
    let mut fold = Fold::new(dialect);
    raw.into_iter().flat_map(|ev| fold.push(ev)).collect()
}

/// Commands started and never ended, in start order: what was running when a turn stopped.
pub fn open_commands(events: &[AgentEvent]) -> Vec<(String, String)> {
    let mut open: Vec<(String, String)> = Vec::new();
    for ev in events {
        match ev {
            AgentEvent::CommandStarted {
                id,
                shown,
                shell: true,
            } => open.push((id.clone(), shown.clone())),
            AgentEvent::ToolEnded(run) => open.retain(|(i, _)| *i != run.id),
            _ => {}
        }
    }
    open
}

#[cfg(test)]
mod tests;
