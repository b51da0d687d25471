//! Claude Code's `stream-json` events as typed values, folded into wg's [`AgentEvent`]s. The
//! shapes were measured on Claude Code 2.1.330 (`tests/fixtures/claude-events/`, docs/claude.md).
//! A tool call and its result arrive in different events; [`Pairing`] joins them, the one
//! place that does.

use serde::Deserialize;
use serde_json::Value;

use super::{AgentEvent, ToolRun};
use crate::conversation::Usage;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClaudeEvent {
    System(System),
    Assistant {
        #[serde(default)]
        message: Content,
        /// Set when the "assistant" text is an API error the CLI reports, not a reply.
        #[serde(default)]
        error: Option<Value>,
    },
    User {
        #[serde(default)]
        message: Content,
    },
    Result(Box<ResultEvent>),
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct System {
    pub subtype: String,
    pub session_id: Option<String>,
    pub attempt: Option<Value>,
    pub max_retries: Option<Value>,
    pub retry_delay_ms: Option<Value>,
    pub error_status: Option<Value>,
    pub error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Content {
    pub content: Vec<Block>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    ToolUse {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        #[serde(default)]
        tool_use_id: String,
        #[serde(default)]
        content: Value,
        #[serde(default)]
        is_error: bool,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResultEvent {
    pub usage: Option<ClaudeUsage>,
    pub api_error_status: Option<u64>,
    pub result: Option<String>,
    pub is_error: bool,
    pub terminal_reason: Option<String>,
    pub permission_denials: Vec<Denial>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Denial {
    pub tool_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClaudeUsage {
    pub input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub output_tokens: u64,
    pub output_tokens_details: Option<ThinkingTokens>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ThinkingTokens {
    pub thinking_tokens: u64,
}

/// Usage in wg's terms. Anthropic counts cached input apart from `input_tokens`; wg's
/// `input_tokens` is all input, as codex reports it.
impl From<ClaudeUsage> for Usage {
    fn from(u: ClaudeUsage) -> Usage {
        Usage {
            input_tokens: u.input_tokens
                + u.cache_read_input_tokens
                + u.cache_creation_input_tokens,
            cached_input_tokens: u.cache_read_input_tokens,
            output_tokens: u.output_tokens,
            reasoning_output_tokens: u.output_tokens_details.map_or(0, |d| d.thinking_tokens),
        }
    }
}

/// A tool call waiting for its result.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTool {
    pub id: String,
    pub name: String,
    pub input: Value,
    /// The command for a shell tool, else the tool's name and input.
    pub shown: String,
    /// A shell tool (Bash): its result carries an exit code.
    pub shell: bool,
}

/// The tool calls of a stream that have not had their result yet.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pairing {
    pub pending: Vec<PendingTool>,
}

/// The tools that change a file, with the kind wg records for them.
fn file_change_kind(tool: &str) -> Option<&'static str> {
    match tool {
        "Write" => Some("write"),
        "Edit" | "MultiEdit" | "NotebookEdit" => Some("edit"),
        _ => None,
    }
}

impl Pairing {
    pub fn fold(&mut self, event: ClaudeEvent) -> Vec<AgentEvent> {
        match event {
            ClaudeEvent::System(s) => system(s),
            ClaudeEvent::Assistant { message, error } => {
                self.assistant(message.content, error.is_some())
            }
            ClaudeEvent::User { message } => self.user(message.content),
            ClaudeEvent::Result(r) => result(*r),
            ClaudeEvent::Other => Vec::new(),
        }
    }

    fn assistant(&mut self, blocks: Vec<Block>, is_api_error: bool) -> Vec<AgentEvent> {
        let mut out = Vec::new();
        for block in blocks {
            match block {
                Block::Text { text } if !is_api_error => out.push(AgentEvent::Reply(text)),
                Block::Thinking { thinking } => out.push(AgentEvent::Thinking(thinking)),
                Block::ToolUse {
                    id: Some(id),
                    name,
                    input,
                } => {
                    let command = input.get("command").and_then(Value::as_str);
                    let pending = PendingTool {
                        shown: command.map_or_else(|| format!("{name} {input}"), str::to_string),
                        shell: command.is_some(),
                        id,
                        name,
                        input,
                    };
                    out.push(AgentEvent::CommandStarted {
                        id: pending.id.clone(),
                        shown: pending.shown.clone(),
                        shell: pending.shell,
                    });
                    self.pending.push(pending);
                }
                _ => {}
            }
        }
        out
    }

    fn user(&mut self, blocks: Vec<Block>) -> Vec<AgentEvent> {
        let mut out = Vec::new();
        for block in blocks {
            let Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } = block
            else {
                continue;
            };
            let call = self
                .pending
                .iter()
                .position(|p| p.id == tool_use_id)
                .map(|at| self.pending.remove(at));
            let output = result_text(&content);
            let (name, shown, shell) = match &call {
                Some(p) => (p.name.clone(), p.shown.clone(), p.shell),
                None => (String::new(), format!("tool {tool_use_id}"), false),
            };
            if let (Some(kind), Some(p), false) = (file_change_kind(&name), &call, is_error) {
                let path = ["file_path", "notebook_path"]
                    .iter()
                    .find_map(|k| p.input.get(*k).and_then(Value::as_str))
                    .unwrap_or("");
                out.push(AgentEvent::FilesChanged(vec![(path.into(), kind.into())]));
            }
            out.push(AgentEvent::ToolEnded(ToolRun {
                exit_code: tool_exit_code(&output, is_error, shell),
                id: tool_use_id,
                name,
                shown,
                shell,
                failed: is_error,
                status: if is_error { "failed" } else { "completed" }.into(),
                output,
            }));
        }
        out
    }
}

fn system(s: System) -> Vec<AgentEvent> {
    match s.subtype.as_str() {
        "init" => s
            .session_id
            .map(AgentEvent::Session)
            .into_iter()
            .chain([AgentEvent::TurnStarted])
            .collect(),
        "api_retry" => {
            let n = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
            vec![AgentEvent::Warning(format!(
                "retry {}/{} after {} ms: status {} ({})",
                n(&s.attempt),
                n(&s.max_retries),
                n(&s.retry_delay_ms),
                n(&s.error_status),
                s.error.unwrap_or_default()
            ))]
        }
        _ => Vec::new(),
    }
}

/// Success is judged from `is_error` (and the exit code), never the `subtype`, which says
/// `success` for API failures.
fn result(r: ResultEvent) -> Vec<AgentEvent> {
    let usage = r.usage.map(Usage::from);
    if r.is_error {
        let message = r.result.unwrap_or_else(|| {
            format!(
                "claude ended the turn with an error ({})",
                r.terminal_reason.as_deref().unwrap_or("no reason given")
            )
        });
        return vec![AgentEvent::Failed {
            message,
            status: r.api_error_status,
            usage,
        }];
    }
    let mut out = vec![AgentEvent::Completed {
        usage,
        reply: r.result,
    }];
    if !r.permission_denials.is_empty() {
        // A denied tool still ends the turn as a success; only this field tells.
        let names: Vec<String> = r
            .permission_denials
            .iter()
            .filter_map(|d| d.tool_name.clone())
            .collect();
        out.push(AgentEvent::Warning(format!(
            "permission denied for {} tool call(s): {} (see claude.permissions)",
            r.permission_denials.len(),
            names.join(", ")
        )));
    }
    out
}

/// The text of a `tool_result` block's content: a string, or text blocks.
pub fn result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A Bash tool's exit code: 0 when the result is not an error; on an error the CLI starts the
/// result with `Exit code N` (measured: "Exit code 137" after a SIGTERM). Other tools and
/// errors without that line have none.
pub fn tool_exit_code(output: &str, is_error: bool, shell: bool) -> Option<i64> {
    if !shell {
        return None;
    }
    if !is_error {
        return Some(0);
    }
    let rest = output.trim_start().strip_prefix("Exit code ")?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}
