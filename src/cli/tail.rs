use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::agent_events::{AgentEvent, Dialect, Fold};
use crate::cli::{check_id, Ctx};
use crate::error::{not_found, CliResult};

/// Show what a task's agent is doing, from `events.jsonl`: messages, commands with exit codes,
/// file changes, tokens.
#[derive(Debug, Args)]
pub struct TailArgs {
    pub id: String,
    /// Keep following new events (Ctrl-C ends).
    #[arg(short, long)]
    pub follow: bool,
}

/// Turns `events.jsonl` records into lines, through the one agent-event model. Keeps a fold
/// per agent so a claude tool call's result finds the command it answers.
#[derive(Debug)]
pub struct Renderer {
    codex: Fold,
    claude: Fold,
}

impl Default for Renderer {
    fn default() -> Renderer {
        Renderer {
            codex: Fold::new(Dialect::Codex),
            claude: Fold::new(Dialect::Claude),
        }
    }
}

impl Renderer {
    /// One record in human form; `None` for events not worth a line.
    pub fn render(&mut self, record: &Value) -> Option<String> {
        let turn = record.get("turn").and_then(Value::as_u64).unwrap_or(0);
        let ev = record.get("event")?;
        let fold = match Dialect::of_event(ev) {
            Dialect::Codex => &mut self.codex,
            Dialect::Claude => &mut self.claude,
        };
        let lines: Vec<String> = fold
            .push(ev)
            .into_iter()
            .filter_map(line_of)
            .flat_map(|text| {
                text.lines()
                    .map(|l| format!("[turn {turn}] {l}"))
                    .collect::<Vec<_>>()
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

fn line_of(event: AgentEvent) -> Option<String> {
    Some(match event {
        AgentEvent::Session(_) => return None,
        AgentEvent::TurnStarted => "turn started".to_string(),
        AgentEvent::CommandStarted { shown, .. } => format!("$ {shown}  (running)"),
        AgentEvent::ToolEnded(run) => {
            let end = match run.exit_code {
                Some(code) => format!("exit {code}"),
                None if run.failed => "error".to_string(),
                None => "ok".to_string(),
            };
            format!("$ {}  → {end}", run.shown)
        }
        AgentEvent::Reply(text) => format!("agent: {text}"),
        AgentEvent::Thinking(text) => format!("thinking: {}", text.lines().next().unwrap_or("")),
        AgentEvent::FilesChanged(changes) => changes
            .iter()
            .map(|(path, kind)| format!("file {kind}: {path}"))
            .collect::<Vec<_>>()
            .join("\n"),
        AgentEvent::Warning(message) => format!("warning: {message}"),
        AgentEvent::OtherItem(name) => name,
        AgentEvent::Completed { usage, .. } => {
            let u = usage.unwrap_or_default();
            format!(
                "turn completed · tokens: {} in ({} cached), {} out ({} reasoning)",
                u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_output_tokens
            )
        }
        AgentEvent::Failed { message, .. } => format!("turn failed: {message}"),
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
        if let Ok(mut f) = std::fs::File::open(&path) {
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
