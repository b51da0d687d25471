//! What the agent did in a turn, in a few lines: the commands it ran with their exit codes and
//! the files it changed. Taken from the turn's events (`events.jsonl`) when the turn ends,
//! stored bounded in the outbox record (`actions`), and replayed with each earlier turn so the
//! agent remembers its own work and failures. Pure: no I/O.
//!
//! The record is written once and never changes, so its rendering is the same on every later
//! turn: a prompt prefix that stays put (see prompt.rs).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent_events::{self, AgentEvent, Dialect};

/// Characters kept of one command line.
const COMMAND_CHARS: usize = 240;
/// Characters kept of a failed command's output (its end: where errors are).
const OUTPUT_CHARS: usize = 240;
/// Commands kept per turn; later ones are counted in `more_commands`.
const MAX_COMMANDS: usize = 40;
/// Distinct changed files kept per turn.
const MAX_FILES: usize = 40;

/// The actions of one turn, as stored in the outbox record's `actions` field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<Ran>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<Changed>,
    /// Commands run beyond the ones kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_commands: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One command the agent ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ran {
    pub command: String,
    /// codex reports it; claude only says whether the tool call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// The end of a failed command's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// One file the agent changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changed {
    pub path: String,
    /// `add`, `update`, `delete` (codex) or `edit`, `write` (claude).
    pub kind: String,
}

impl Actions {
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.files.is_empty()
    }

    /// The `actions` field of an outbox record, if it has one.
    pub fn of_record(extra: &serde_json::Map<String, Value>) -> Option<Actions> {
        serde_json::from_value(extra.get("actions")?.clone()).ok()
    }

    fn push_command(&mut self, run: Ran) {
        if self.commands.len() < MAX_COMMANDS {
            self.commands.push(run);
        } else {
            self.more_commands += 1;
        }
    }

    fn push_file(&mut self, path: String, kind: String) {
        if path.is_empty() || self.files.len() >= MAX_FILES {
            return;
        }
        match self.files.iter_mut().find(|f| f.path == path) {
            Some(f) => f.kind = kind,
            None => self.files.push(Changed { path, kind }),
        }
    }
}

fn cut_start(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

fn cut_end(s: &str, max: usize) -> String {
    let s = s.trim();
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let mut out = String::from("…");
    out.extend(s.chars().skip(n - max));
    out
}

/// `/bin/bash -lc 'cmd'` → `cmd`: codex wraps every command in a shell; the wrapper says
/// nothing to the agent and costs characters.
fn unwrap_shell(cmd: &str) -> &str {
    for prefix in [
        "/bin/bash -lc '",
        "/bin/bash -c '",
        "bash -lc '",
        "bash -c '",
    ] {
        if let Some(inner) = cmd.strip_prefix(prefix).and_then(|r| r.strip_suffix('\'')) {
            if !inner.contains('\'') {
                return inner;
            }
        }
    }
    cmd
}

/// The actions in one turn's events (the `event` values of its `events.jsonl` lines).
pub fn of_events<'a>(dialect: Dialect, events: impl IntoIterator<Item = &'a Value>) -> Actions {
    of_agent_events(&agent_events::fold_all(dialect, events))
}

fn of_agent_events(events: &[AgentEvent]) -> Actions {
    let mut a = Actions::default();
    for ev in events {
        match ev {
            AgentEvent::ToolEnded(run) if run.shell => a.push_command(Ran {
                command: cut_start(unwrap_shell(&run.shown), COMMAND_CHARS),
                exit_code: run.exit_code,
                failed: run.failed,
                output: Some(&run.output)
                    .filter(|o| run.failed && !o.trim().is_empty())
                    .map(|o| cut_end(o, OUTPUT_CHARS)),
            }),
            AgentEvent::FilesChanged(changes) => {
                for (path, kind) in changes {
                    let kind = if kind.is_empty() { "update" } else { kind };
                    a.push_file(path.clone(), kind.to_string());
                }
            }
            _ => {}
        }
    }
    a
}

/// Characters kept of an interrupted attempt's last reply (its end).
const REPLY_CHARS: usize = 400;

/// An attempt at a turn that left events but no outbox record: its handler was stopped
/// (`wg pause`, `wg cancel`, a timeout, a coordinator stopping or crashing). The turn runs
/// again under the same number; its prompt says what the stopped attempt did.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    /// What it did, with the commands still running when it was stopped as failed ones.
    pub actions: Actions,
    /// The end of its last message, if it wrote one.
    pub reply: Option<String>,
}

/// The interrupted attempt in `events` (the turn's events so far), if it did anything.
pub fn interrupted(dialect: Dialect, events: &[Value]) -> Option<Interrupted> {
    if events.is_empty() {
        return None;
    }
    let folded = agent_events::fold_all(dialect, events);
    let mut actions = of_agent_events(&folded);
    for (_, command) in agent_events::open_commands(&folded) {
        actions.push_command(Ran {
            command: cut_start(unwrap_shell(&command), COMMAND_CHARS),
            exit_code: None,
            failed: true,
            output: Some("stopped while it ran".into()),
        });
    }
    let reply = folded
        .iter()
        .rev()
        .find_map(|e| match e {
            AgentEvent::Reply(text) => Some(text),
            AgentEvent::Completed {
                reply: Some(text), ..
            } => Some(text),
            _ => None,
        })
        .filter(|r| !r.trim().is_empty())
        .map(|r| cut_end(r, REPLY_CHARS));
    (!actions.is_empty() || reply.is_some()).then_some(Interrupted { actions, reply })
}

/// The interrupted attempt as prompt text, its digest bounded by `max_chars`.
pub fn render_interrupted(i: &Interrupted, max_chars: usize) -> String {
    let mut out = String::from(
        "### An earlier attempt at this turn did not finish\n\
         It ended before it could reply (stopped by a person, a timeout or a restart, or a \
         failed request). Its changes to files are still there: check them and continue from \
         where it stopped rather than starting over.\n\n",
    );
    out.push_str(&render_headed(
        &i.actions,
        max_chars,
        "### What that attempt did\n",
    ));
    if let Some(r) = &i.reply {
        out.push_str("### Its last message\n");
        out.push_str(r.trim_end());
        out.push_str("\n\n");
    }
    out
}

/// The digest as prompt text, at most `max_chars` characters (a line that does not fit is
/// left out and counted). Empty when there is nothing to show.
pub fn render(a: &Actions, max_chars: usize) -> String {
    render_headed(a, max_chars, "### What you did in that turn\n")
}

fn render_headed(a: &Actions, max_chars: usize, head: &str) -> String {
    if a.is_empty() || max_chars == 0 {
        return String::new();
    }
    let mut lines: Vec<String> = Vec::new();
    for r in &a.commands {
        let status = match (r.exit_code, r.failed) {
            (Some(c), _) => format!("exit {c}"),
            (None, true) => "failed".to_string(),
            (None, false) => "ok".to_string(),
        };
        let mut line = format!("- ran `{}` → {status}", r.command);
        if let Some(o) = &r.output {
            line.push_str(&format!(": {}", o.replace('\n', " ⏎ ")));
        }
        lines.push(line);
    }
    if !a.files.is_empty() {
        let files: Vec<String> = a
            .files
            .iter()
            .map(|f| format!("{} ({})", f.path, f.kind))
            .collect();
        lines.push(format!("- changed {}", files.join(", ")));
    }
    let mut out = String::from(head);
    let mut left_out = a.more_commands;
    let mut used = head.chars().count();
    // Room for the "… more" line, so the bound holds whatever is left out.
    let reserve = 40 + 1;
    for (i, line) in lines.iter().enumerate() {
        let len = line.chars().count() + 1;
        if used + len + reserve > max_chars {
            left_out += lines.len() - i;
            break;
        }
        out.push_str(line);
        out.push('\n');
        used += len;
    }
    if left_out > 0 {
        out.push_str(&format!("- … {left_out} more not shown\n"));
    }
    if out.chars().count() + 1 > max_chars {
        // A bound too small for even the heading: show nothing rather than break it.
        return String::new();
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_attempt_names_what_it_finished_and_what_it_was_running() {
        let events: Vec<Value> = [
            r#"{"type":"thread.started","thread_id":"t"}"#,
            r#"{"type":"item.started","item":{"id":"item_0","type":"command_execution","command":"/bin/bash -lc 'ls'","status":"in_progress"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_0","type":"command_execution","command":"/bin/bash -lc 'ls'","exit_code":0,"status":"completed"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Now the long build."}}"#,
            r#"{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"/bin/bash -lc 'make all'","status":"in_progress"}}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let i = interrupted(Dialect::Codex, &events).unwrap();
        let cmds: Vec<(&str, bool)> = i
            .actions
            .commands
            .iter()
            .map(|r| (r.command.as_str(), r.failed))
            .collect();
        assert_eq!(cmds, [("ls", false), ("make all", true)]);
        assert_eq!(i.reply.as_deref(), Some("Now the long build."));
        let text = render_interrupted(&i, 1200);
        assert!(text.contains("did not finish"), "{text}");
        assert!(
            text.contains("- ran `ls` → ok") || text.contains("- ran `ls` → exit 0"),
            "{text}"
        );
        assert!(
            text.contains("`make all` → failed: stopped while it ran"),
            "{text}"
        );
        assert!(
            text.contains("### Its last message\nNow the long build."),
            "{text}"
        );
        assert_eq!(interrupted(Dialect::Codex, &[]), None);
        // Events with nothing to tell (the attempt died before doing anything): no section.
        let quiet: Vec<Value> = vec![serde_json::json!({"type": "thread.started"})];
        assert_eq!(interrupted(Dialect::Codex, &quiet), None);
    }

    #[test]
    fn a_claude_tool_call_without_its_result_was_running() {
        let events: Vec<Value> = vec![
            serde_json::json!({"type": "assistant", "message": {"content": [
                {"type": "tool_use", "id": "tu1", "name": "Bash", "input": {"command": "cargo test"}}
            ]}}),
        ];
        let i = interrupted(Dialect::Claude, &events).unwrap();
        assert_eq!(i.actions.commands[0].command, "cargo test");
        assert!(i.actions.commands[0].failed);
    }
    use serde_json::json;

    fn codex_cmd(cmd: &str, code: i64, out: &str) -> Value {
        json!({"type":"item.completed","item":{"id":"i","type":"command_execution",
            "command": cmd, "aggregated_output": out, "exit_code": code, "status": "completed"}})
    }

    #[test]
    fn codex_commands_and_files_are_collected_with_failures_and_their_output() {
        let evs = [
            json!({"type":"turn.started"}),
            codex_cmd(
                "/bin/bash -lc 'cargo test'",
                101,
                "lots\nof\nerror: test failed",
            ),
            codex_cmd("/bin/bash -lc 'ls'", 0, "a\nb\n"),
            json!({"type":"item.completed","item":{"type":"file_change","changes":[
                {"path":"src/a.rs","kind":"update"},{"path":"src/b.rs","kind":"add"}]}}),
            json!({"type":"item.completed","item":{"type":"file_change","changes":[
                {"path":"src/a.rs","kind":"update"}]}}),
        ];
        let a = of_events(Dialect::Codex, &evs);
        assert_eq!(a.commands.len(), 2);
        assert_eq!(a.commands[0].command, "cargo test");
        assert_eq!(a.commands[0].exit_code, Some(101));
        assert!(a.commands[0].failed);
        assert!(a.commands[0]
            .output
            .as_deref()
            .unwrap()
            .ends_with("test failed"));
        assert_eq!(
            a.commands[1].output, None,
            "a passing command keeps no output"
        );
        assert_eq!(a.files.len(), 2, "a file changed twice is listed once");
        let r = render(&a, 2000);
        assert!(r.contains("- ran `cargo test` → exit 101: lots ⏎ of ⏎ error: test failed"));
        assert!(r.contains("- ran `ls` → exit 0\n"));
        assert!(r.contains("- changed src/a.rs (update), src/b.rs (add)"));
        // Round trip through the outbox record's field.
        let mut extra = serde_json::Map::new();
        extra.insert("actions".into(), serde_json::to_value(&a).unwrap());
        assert_eq!(Actions::of_record(&extra), Some(a));
    }

    #[test]
    fn claude_tool_calls_become_commands_and_file_changes() {
        let evs = [
            json!({"type":"assistant","message":{"content":[
                {"type":"tool_use","id":"t1","name":"Bash","input":{"command":"make"}},
                {"type":"tool_use","id":"t2","name":"Write","input":{"file_path":"/p/x.rs"}},
                {"type":"tool_use","id":"t3","name":"Read","input":{"file_path":"/p/y.rs"}}]}}),
            json!({"type":"user","message":{"content":[
                {"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"make: *** no rule"}]}}),
            json!({"type":"user","message":{"content":[
                {"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"ok"}]}]}}),
            json!({"type":"user","message":{"content":[
                {"type":"tool_result","tool_use_id":"t3","content":"..."}]}}),
        ];
        let a = of_events(Dialect::Claude, &evs);
        assert_eq!(a.commands.len(), 1);
        assert!(a.commands[0].failed && a.commands[0].exit_code.is_none());
        assert_eq!(a.commands[0].output.as_deref(), Some("make: *** no rule"));
        assert_eq!(
            a.files,
            vec![Changed {
                path: "/p/x.rs".into(),
                kind: "write".into()
            }]
        );
        assert!(render(&a, 500).contains("- ran `make` → failed: make: *** no rule"));
    }

    #[test]
    fn everything_is_bounded() {
        let long = "x".repeat(10_000);
        let evs: Vec<Value> = (0..100)
            .map(|i| codex_cmd(&format!("echo {i} {long}"), 1, &long))
            .collect();
        let a = of_events(Dialect::Codex, &evs);
        assert_eq!(a.commands.len(), MAX_COMMANDS);
        assert_eq!(a.more_commands, 100 - MAX_COMMANDS);
        for c in &a.commands {
            assert!(c.command.chars().count() <= COMMAND_CHARS + 1);
            assert!(c.output.as_ref().unwrap().chars().count() <= OUTPUT_CHARS + 1);
        }
        for max in [0, 10, 100, 700, 1500, 5000] {
            let r = render(&a, max);
            assert!(r.chars().count() <= max, "{max}: {}", r.chars().count());
        }
        let r = render(&a, 1500);
        assert!(r.contains("more not shown"), "{r}");
        assert_eq!(render(&Actions::default(), 1500), "");
    }
}
