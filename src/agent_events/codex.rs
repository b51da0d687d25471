//! codex's `exec --json` events as typed values, folded into wg's [`AgentEvent`]s. The shapes
//! were measured on codex 0.169.0 (`tests/fixtures/codex-events/`). Unknown event and item
//! types are kept as `Other`, so a newer codex never breaks a turn.

use serde::Deserialize;

use super::{AgentEvent, ToolRun};
use crate::conversation::Usage;

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum CodexEvent {
    #[serde(rename = "thread.started")]
    ThreadStarted {
        #[serde(default)]
        thread_id: Option<String>,
    },
    #[serde(rename = "turn.started")]
    TurnStarted,
    #[serde(rename = "turn.completed")]
    TurnCompleted {
        #[serde(default)]
        usage: Option<CodexUsage>,
    },
    #[serde(rename = "turn.failed")]
    TurnFailed {
        #[serde(default)]
        error: Option<Message>,
    },
    /// codex prints one for every retry and for unknown model metadata: a warning.
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        message: String,
    },
    #[serde(rename = "item.started")]
    ItemStarted { item: Item },
    #[serde(rename = "item.updated")]
    ItemUpdated { item: Item },
    #[serde(rename = "item.completed")]
    ItemCompleted { item: Item },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodexUsage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
}

impl From<CodexUsage> for Usage {
    fn from(u: CodexUsage) -> Usage {
        Usage {
            input_tokens: u.input_tokens,
            cached_input_tokens: u.cached_input_tokens,
            output_tokens: u.output_tokens,
            reasoning_output_tokens: u.reasoning_output_tokens,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    AgentMessage {
        #[serde(default)]
        text: String,
    },
    Reasoning {
        #[serde(default)]
        text: String,
    },
    CommandExecution {
        #[serde(default)]
        id: String,
        #[serde(default)]
        command: String,
        #[serde(default)]
        aggregated_output: String,
        #[serde(default)]
        exit_code: Option<i64>,
        #[serde(default)]
        status: String,
    },
    FileChange {
        #[serde(default)]
        changes: Vec<Change>,
    },
    Error {
        #[serde(default)]
        message: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Change {
    pub path: String,
    pub kind: String,
}

/// The item type's name as codex spells it, for items wg does not model (`todo_list`, ...).
fn other_item_name(raw: &serde_json::Value) -> String {
    raw.pointer("/item/type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// One codex event in wg's terms; `raw` is the same event, for the names of unknown items.
pub fn fold(event: CodexEvent, raw: &serde_json::Value) -> Vec<AgentEvent> {
    match event {
        CodexEvent::ThreadStarted { thread_id } => {
            thread_id.map(AgentEvent::Session).into_iter().collect()
        }
        CodexEvent::TurnStarted => vec![AgentEvent::TurnStarted],
        CodexEvent::TurnCompleted { usage } => vec![AgentEvent::Completed {
            usage: usage.map(Usage::from),
            reply: None,
        }],
        CodexEvent::TurnFailed { error } => vec![AgentEvent::Failed {
            message: error
                .and_then(|e| e.message)
                .unwrap_or_else(|| "turn failed (no message)".into()),
            status: None,
            usage: None,
        }],
        CodexEvent::Error { message } => vec![AgentEvent::Warning(message)],
        CodexEvent::ItemStarted {
            item: Item::CommandExecution { id, command, .. },
        } => vec![AgentEvent::CommandStarted {
            id,
            shown: command,
            shell: true,
        }],
        CodexEvent::ItemStarted { .. } | CodexEvent::ItemUpdated { .. } | CodexEvent::Other => {
            Vec::new()
        }
        CodexEvent::ItemCompleted { item } => completed_item(item, raw),
    }
}

fn completed_item(item: Item, raw: &serde_json::Value) -> Vec<AgentEvent> {
    match item {
        Item::AgentMessage { text } => vec![AgentEvent::Reply(text)],
        Item::Reasoning { text } => vec![AgentEvent::Thinking(text)],
        Item::CommandExecution {
            id,
            command,
            aggregated_output,
            exit_code,
            status,
        } => vec![AgentEvent::ToolEnded(ToolRun {
            id,
            name: "shell".into(),
            shown: command,
            shell: true,
            exit_code,
            failed: exit_code.is_some_and(|c| c != 0) || status == "failed",
            status,
            output: aggregated_output,
        })],
        Item::FileChange { changes } => vec![AgentEvent::FilesChanged(
            changes.into_iter().map(|c| (c.path, c.kind)).collect(),
        )],
        Item::Error { message } => vec![AgentEvent::Warning(message)],
        Item::Other => vec![AgentEvent::OtherItem(other_item_name(raw))],
    }
}
