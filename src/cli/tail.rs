use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use clap::Args;
use serde_json::Value;

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

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// One `events.jsonl` record in human form; `None` for events not worth a line.
pub fn render(record: &Value) -> Option<String> {
    let turn = record.get("turn").and_then(Value::as_u64).unwrap_or(0);
    let ev = record.get("event")?;
    let item = ev.get("item").unwrap_or(&Value::Null);
    let text = match (s(ev, "type"), s(item, "type")) {
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
    };
    Some(
        text.lines()
            .map(|l| format!("[turn {turn}] {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

pub fn cmd_tail(ctx: &Ctx, args: &TailArgs) -> CliResult {
    check_id(&args.id)?;
    if !ctx.store.writer()?.exists(&args.id) {
        return Err(not_found(&args.id));
    }
    let path = ctx.layout.task_file(&args.id, "events.jsonl");
    let mut offset = 0u64;
    let mut pending = Vec::new();
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
                    } else if let Some(t) = render(&v) {
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
