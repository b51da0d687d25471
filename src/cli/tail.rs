use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::cli::{check_id, Ctx};
use crate::error::{not_found, CliResult};
use crate::handler::events::claude;
use crate::handler::events::PendingTool;

/// Show what a task's agent is doing, from `events.jsonl`: messages, commands with exit codes,
/// file changes, tokens.
#[derive(Debug, Args)]
pub struct TailArgs {
    pub id: String,
    /// Keep following new events (Ctrl-C ends).
    #[arg(short, long)]
    pub follow: bool,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Turns `events.jsonl` records into lines. Keeps the claude tool calls still waiting for
/// their result: a claude result names only the call's id, not its command.
#[derive(Debug, Default)]
pub struct Renderer {
    pending: Vec<PendingTool>,
}

impl Renderer {
    /// One record in human form; `None` for events not worth a line.
    pub fn render(&mut self, record: &Value) -> Option<String> {
        let turn = record.get("turn").and_then(Value::as_u64).unwrap_or(0);
        let ev = record.get("event")?;
        let text = match s(ev, "type") {
            "system" | "assistant" | "user" | "result" => self.claude(ev)?,
            _ => codex(ev)?,
        };
        Some(
            text.lines()
                .map(|l| format!("[turn {turn}] {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }

    /// A claude stream-json event (docs/claude.md).
    fn claude(&mut self, ev: &Value) -> Option<String> {
        let blocks = || {
            ev.pointer("/message/content")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let mut lines = Vec::new();
        match s(ev, "type") {
            "system" => match s(ev, "subtype") {
                "init" => lines.push("turn started".to_string()),
                "api_retry" => lines.push(format!(
                    "warning: retry after status {}",
                    ev.get("error_status").unwrap_or(&Value::Null)
                )),
                _ => {}
            },
            "assistant" => {
                for b in blocks() {
                    match s(&b, "type") {
                        "text" => lines.push(format!("agent: {}", s(&b, "text"))),
                        "thinking" => lines.push(format!(
                            "thinking: {}",
                            s(&b, "thinking").lines().next().unwrap_or("")
                        )),
                        "tool_use" => {
                            if let Some(p) = claude::pending_tool(&b) {
                                lines.push(format!("$ {}  (running)", p.shown));
                                self.pending.push(p);
                            }
                        }
                        _ => {}
                    }
                }
            }
            "user" => {
                for b in blocks() {
                    if s(&b, "type") != "tool_result" {
                        continue;
                    }
                    let id = s(&b, "tool_use_id");
                    let pos = self.pending.iter().position(|p| p.id == id);
                    let (shown, shell) = pos
                        .map(|p| self.pending.remove(p))
                        .map_or((format!("tool {id}"), false), |p| (p.shown, p.shell));
                    let is_error = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                    let end = match claude::tool_exit_code(&b, is_error, shell) {
                        Some(code) => format!("exit {code}"),
                        None if is_error => "error".to_string(),
                        None => "ok".to_string(),
                    };
                    lines.push(format!("$ {shown}  → {end}"));
                }
            }
            "result" => {
                if ev.get("is_error").and_then(Value::as_bool) == Some(true) {
                    lines.push(format!("turn failed: {}", s(ev, "result")));
                } else {
                    let u = claude::usage_of(ev.get("usage").unwrap_or(&Value::Null));
                    lines.push(format!(
                        "turn completed · tokens: {} in ({} cached), {} out ({} reasoning)",
                        u.input_tokens,
                        u.cached_input_tokens,
                        u.output_tokens,
                        u.reasoning_output_tokens
                    ));
                }
            }
            _ => {}
        }
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

/// A codex `--json` event.
fn codex(ev: &Value) -> Option<String> {
    let item = ev.get("item").unwrap_or(&Value::Null);
    Some(match (s(ev, "type"), s(item, "type")) {
        ("turn.started", _) => "turn started".to_string(),
        ("item.started", "command_execution") => format!("$ {}  (running)", s(item, "command")),
        ("item.completed", "command_execution") => {
            let code = item
                .get("exit_code")
                .and_then(Value::as_i64)
                .map_or("?".into(), |c| c.to_string());
            format!("$ {}  → exit {code}", s(item, "command"))
        }
        ("item.completed", "agent_message") => format!("agent: {}", s(item, "text")),
        ("item.completed", "reasoning") => {
            format!("thinking: {}", s(item, "text").lines().next().unwrap_or(""))
        }
        ("item.completed", "file_change") => {
            let changes = item
                .get("changes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            changes
                .iter()
                .map(|c| format!("file {}: {}", s(c, "kind"), s(c, "path")))
                .collect::<Vec<_>>()
                .join("\n")
        }
        ("item.completed", "error") | ("error", _) => {
            format!(
                "warning: {}",
                if s(ev, "type") == "error" {
                    s(ev, "message")
                } else {
                    s(item, "message")
                }
            )
        }
        ("item.completed", other) => other.to_string(),
        ("turn.completed", _) => {
            let u = ev.get("usage").unwrap_or(&Value::Null);
            let n = |k| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            format!(
                "turn completed · tokens: {} in ({} cached), {} out ({} reasoning)",
                n("input_tokens"),
                n("cached_input_tokens"),
                n("output_tokens"),
                n("reasoning_output_tokens")
            )
        }
        ("turn.failed", _) => format!(
            "turn failed: {}",
            s(ev.get("error").unwrap_or(&Value::Null), "message")
        ),
        _ => return None,
    })
}

pub fn cmd_tail(ctx: &Ctx, args: &TailArgs) -> CliResult {
    check_id(&args.id)?;
    if !ctx.store.writer()?.exists(&args.id) {
        return Err(not_found(&args.id));
    }
    let path = ctx.layout.task_file(&args.id, "events.jsonl");
    let mut offset = 0u64;
    let mut pending = Vec::new();
    let mut renderer = Renderer::default();
    loop {
        if let Ok(mut f) = crate::store::nofollow::open(&path, crate::store::nofollow::Mode::Read) {
            let len = f.metadata()?.len();
            if len < offset {
                // Rotated: the file started over.
                offset = 0;
                pending.clear();
            }
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            offset += buf.len() as u64;
            pending.extend_from_slice(&buf);
            // Only whole lines; a line in flight waits for the next read.
            if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
                let complete: Vec<u8> = pending.drain(..=end).collect();
                for line in complete.split(|b| *b == b'\n') {
                    let Ok(v) = serde_json::from_slice::<Value>(line) else {
                        continue;
                    };
                    if ctx.out.json {
                        ctx.out.line(v.to_string())?;
                    } else if let Some(t) = renderer.render(&v) {
                        ctx.out.line(t)?;
                    }
                }
            }
        }
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(jsonl: &str) -> Vec<String> {
        let mut r = Renderer::default();
        jsonl
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|ev| serde_json::json!({"turn": 1, "event": ev}))
            .filter_map(|rec| r.render(&rec))
            .collect()
    }

    #[test]
    fn claude_events_show_commands_with_exit_codes() {
        let tool = include_str!("../../tests/fixtures/claude-events/events-tool.jsonl");
        let out = lines(tool).join("\n");
        assert!(out.contains("[turn 1] turn started"), "{out}");
        assert!(out.contains("$ echo done > marker.txt  (running)"), "{out}");
        assert!(out.contains("$ echo done > marker.txt  → exit 0"), "{out}");
        assert!(out.contains("agent: The command ran. Done."), "{out}");
        assert!(out.contains("turn completed · tokens:"), "{out}");
        let failed = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"false"}}]}}
{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"Exit code 1","is_error":true}]}}
{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t2","name":"Read","input":{"file_path":"x"}}]}}
{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t2","content":"no such file","is_error":true}]}}"#;
        let out = lines(failed);
        assert_eq!(out[1], "[turn 1] $ false  → exit 1");
        assert!(
            out[3].ends_with("→ error") && out[3].contains("Read"),
            "{out:?}"
        );
    }

    #[test]
    fn codex_events_render_as_before() {
        let ev = r#"{"type":"item.completed","item":{"type":"command_execution","command":"ls","exit_code":2}}"#;
        assert_eq!(lines(ev), ["[turn 1] $ ls  → exit 2"]);
    }
}
