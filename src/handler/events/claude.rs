//! Claude Code's `stream-json` events folded into a turn's [`TurnEvents`]: replies, Bash
//! commands with their exit codes, usage, and how the turn ended.

use serde_json::Value;

use super::{CommandRun, Notice, PendingTool, TurnEvents};
use crate::conversation::Usage;

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// `result.usage` in wg's terms. Anthropic counts cached input apart from `input_tokens`;
/// wg's `input_tokens` is all input, as codex reports it.
pub fn usage_of(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens")
            + n("cache_read_input_tokens")
            + n("cache_creation_input_tokens"),
        cached_input_tokens: n("cache_read_input_tokens"),
        output_tokens: n("output_tokens"),
        reasoning_output_tokens: u
            .get("output_tokens_details")
            .and_then(|d| d.get("thinking_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// Folds one stream-json event in. Success is judged from the `result` line's `is_error`
/// (and the exit code), never its `subtype`, which says `success` for API failures.
pub fn feed(t: &mut TurnEvents, ev: &Value) -> Option<Notice> {
    match ev.get("type").and_then(Value::as_str).unwrap_or("") {
        "system" => match ev.get("subtype").and_then(Value::as_str).unwrap_or("") {
            "init" => {
                t.thread_id = text(ev, "session_id");
                None
            }
            "api_retry" => {
                let n = |k: &str| ev.get(k).map(|v| v.to_string()).unwrap_or_default();
                let msg = format!(
                    "retry {}/{} after {} ms: status {} ({})",
                    n("attempt"),
                    n("max_retries"),
                    n("retry_delay_ms"),
                    n("error_status"),
                    text(ev, "error").unwrap_or_default()
                );
                t.warnings.push(msg.clone());
                Some(Notice::Warning(msg))
            }
            _ => None,
        },
        "assistant" => {
            let content = ev.pointer("/message/content")?.as_array()?;
            let mut notice = None;
            for block in content {
                match block.get("type").and_then(Value::as_str).unwrap_or("") {
                    "tool_use" => {
                        if let Some(p) = pending_tool(block) {
                            t.pending_tools.push(p);
                        }
                    }
                    "text" => {
                        let s = text(block, "text").unwrap_or_default();
                        if ev.get("error").is_none() {
                            notice = Some(Notice::Message(s));
                        }
                    }
                    _ => {}
                }
            }
            notice
        }
        "user" => {
            let content = ev.pointer("/message/content")?.as_array()?;
            let block = content
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))?;
            let id = text(block, "tool_use_id").unwrap_or_default();
            let pos = t.pending_tools.iter().position(|p| p.id == id);
            let (command, shell) = pos
                .map(|p| t.pending_tools.remove(p))
                .map_or((format!("tool {id}"), false), |p| (p.shown, p.shell));
            let is_error = block
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let run = CommandRun {
                exit_code: tool_exit_code(block, is_error, shell),
                command,
                status: if is_error { "failed" } else { "completed" }.into(),
            };
            t.commands.push(run.clone());
            Some(Notice::Command(run))
        }
        "result" => {
            if let Some(u) = ev.get("usage") {
                t.usage = usage_of(u);
            }
            t.error_status = ev.get("api_error_status").and_then(Value::as_u64);
            let result = text(ev, "result");
            let is_error = ev.get("is_error").and_then(Value::as_bool).unwrap_or(false);
            if is_error {
                let msg = result.unwrap_or_else(|| {
                    format!(
                        "claude ended the turn with an error ({})",
                        text(ev, "terminal_reason").unwrap_or_else(|| "no reason given".into())
                    )
                });
                t.failed = Some(msg.clone());
                return Some(Notice::Failed(msg));
            }
            t.completed = true;
            t.reply = result;
            let denied = ev
                .get("permission_denials")
                .and_then(Value::as_array)
                .filter(|d| !d.is_empty())?;
            // A denied tool still ends the turn as a success; only this field tells.
            let names: Vec<String> = denied.iter().filter_map(|d| text(d, "tool_name")).collect();
            let msg = format!(
                "permission denied for {} tool call(s): {} (see claude.permissions)",
                denied.len(),
                names.join(", ")
            );
            t.warnings.push(msg.clone());
            Some(Notice::Warning(msg))
        }
        _ => None,
    }
}

/// A `tool_use` block as a call waiting for its result; `None` without an id.
pub fn pending_tool(block: &Value) -> Option<PendingTool> {
    let name = text(block, "name").unwrap_or_default();
    let input = block.get("input").cloned().unwrap_or(Value::Null);
    let command = input.get("command").and_then(Value::as_str);
    Some(PendingTool {
        id: text(block, "id")?,
        shown: command.map_or_else(|| format!("{name} {input}"), str::to_string),
        shell: command.is_some(),
    })
}

/// The text of a `tool_result` block: a string, or text blocks.
pub fn tool_result_text(block: &Value) -> String {
    match block.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
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
pub fn tool_exit_code(block: &Value, is_error: bool, shell: bool) -> Option<i64> {
    if !shell {
        return None;
    }
    if !is_error {
        return Some(0);
    }
    let text = tool_result_text(block);
    let rest = text.trim_start().strip_prefix("Exit code ")?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}
