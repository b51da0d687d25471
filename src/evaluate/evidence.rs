//! Gathers what an evaluator reads about a finished task: its brief, the conversation,
//! handler.log, progress notes, the commands the agent ran, and the changes it made.

use std::path::Path;
use std::process::Command;

use crate::agent_events::{AgentEvent, Dialect, Fold};
use crate::conversation::Role;
use crate::conversation::{read_inbox, read_outbox};
use crate::model::Task;
use crate::store::layout::Layout;
use crate::store::tasklog;

#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub task_id: String,
    pub title: String,
    pub description: String,
    pub brief: String,
    /// `(speaker, text)` in conversation order.
    pub transcript: Vec<(String, String)>,
    pub replies: usize,
    pub error_replies: usize,
    pub handler_log: String,
    pub progress: Vec<String>,
    /// `(command, exit code)` of every command the agent ran.
    pub commands: Vec<(String, Option<i64>)>,
    /// The workspace diff; `None` when the workspace is not a git repository.
    pub diff: Option<String>,
    /// The checks wg ran itself (`checks.jsonl`): their last run on the task's workspace.
    pub checks: Vec<crate::landing::checks::CheckRecord>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Reads every source; a missing file is simply empty evidence.
pub fn gather(layout: &Layout, task: &Task, workdir: &Path) -> Evidence {
    let inbox = read_inbox(layout, &task.id).unwrap_or_default();
    let outbox = read_outbox(layout, &task.id).unwrap_or_default();
    let mut transcript = Vec::new();
    let mut replies = outbox.iter().peekable();
    for m in &inbox {
        transcript.push((
            format!("message {} from {}", m.seq, m.sender),
            m.text.clone(),
        ));
        while let Some(r) = replies.peek() {
            if r.in_reply_to <= m.seq {
                transcript.push((format!("reply {} ({})", r.seq, r.role), r.text.clone()));
                replies.next();
            } else {
                break;
            }
        }
    }
    for r in replies {
        transcript.push((format!("reply {} ({})", r.seq, r.role), r.text.clone()));
    }
    let (input_tokens, output_tokens) = outbox
        .iter()
        .filter_map(|r| r.usage.as_ref())
        .fold((0, 0), |(i, o), u| {
            (i + u.input_tokens, o + u.output_tokens)
        });
    let progress = tasklog::read(&layout.task_log(&task.id))
        .unwrap_or_default()
        .iter()
        .map(|r| r.human())
        .collect();
    let events =
        crate::store::nofollow::read_to_string(&layout.task_file(&task.id, "events.jsonl"))
            .unwrap_or_default();
    Evidence {
        task_id: task.id.clone(),
        title: task.title.clone(),
        description: task.description.clone(),
        brief: inbox.first().map(|m| m.text.clone()).unwrap_or_default(),
        replies: outbox.iter().filter(|r| r.role == Role::Assistant).count(),
        error_replies: outbox.iter().filter(|r| r.role == Role::Error).count(),
        transcript,
        handler_log: crate::store::nofollow::read_to_string(
            &layout.task_file(&task.id, "handler.log"),
        )
        .unwrap_or_default(),
        progress,
        commands: commands_from_events(&events),
        diff: workspace_diff(workdir, base_commit(task).as_deref()),
        checks: crate::landing::checks::last_run(
            &crate::landing::checks::read(layout, &task.id),
            crate::landing::checks::CheckStage::Task,
        )
        .into_iter()
        .cloned()
        .collect(),
        input_tokens,
        output_tokens,
    }
}

/// The commit the task started from, when the coordinator recorded one.
pub fn base_commit(task: &Task) -> Option<String> {
    ["base_commit", "start_commit"].iter().find_map(|k| {
        task.extra
            .get(*k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    })
}

/// The commands the agent ran, with their exit codes, from its events (codex or claude),
/// whether the line is the raw event or wraps it under `event`.
pub fn commands_from_events(jsonl: &str) -> Vec<(String, Option<i64>)> {
    let mut codex = Fold::new(Dialect::Codex);
    let mut claude = Fold::new(Dialect::Claude);
    let mut out = Vec::new();
    for line in jsonl.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let ev = v.get("event").filter(|e| e.is_object()).unwrap_or(&v);
        let fold = match Dialect::of_event(ev) {
            Dialect::Codex => &mut codex,
            Dialect::Claude => &mut claude,
        };
        for e in fold.push(ev) {
            if let AgentEvent::ToolEnded(run) = e {
                if run.shell {
                    out.push((run.shown, run.exit_code));
                }
            }
        }
    }
    out
}

/// `git diff` of the workspace against `base` (or HEAD), without `.wg/`, plus untracked
/// files. `None` when `dir` is not inside a git work tree.
pub fn workspace_diff(dir: &Path, base: Option<&str>) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    if git(&["rev-parse", "--is-inside-work-tree"])?.trim() != "true" {
        return None;
    }
    let base = base.unwrap_or("HEAD");
    let mut diff = git(&["diff", base, "--", ".", ":(exclude).wg"]).unwrap_or_default();
    let untracked = git(&[
        "ls-files",
        "--others",
        "--exclude-standard",
        "--",
        ".",
        ":(exclude).wg",
    ])
    .unwrap_or_default();
    for f in untracked.lines().filter(|l| !l.is_empty()) {
        diff.push_str(&format!("new untracked file: {f}\n"));
        if let Ok(text) = std::fs::read_to_string(dir.join(f)) {
            for line in text.lines().take(200) {
                diff.push_str(&format!("+{line}\n"));
            }
        }
    }
    Some(diff)
}

/// Words in a task that ask for changes to code or files.
pub fn asks_for_code(title: &str, description: &str) -> bool {
    let text = format!("{title} {description}").to_lowercase();
    [
        "implement",
        "fix",
        "add ",
        "write",
        "code",
        "refactor",
        "change",
        "create",
        "build",
        "update",
        "remove",
        "rename",
        "test",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// Cheap checks done without a model. Each finding goes into the prompt and the result.
pub fn findings(e: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    if e.replies == 0 {
        out.push("no assistant reply in the outbox".to_string());
    }
    if e.error_replies > 0 {
        out.push(format!(
            "{} turn(s) ended in an error reply",
            e.error_replies
        ));
    }
    if e.commands.is_empty() {
        out.push("the agent never ran a command".to_string());
    } else {
        let failed = e
            .commands
            .iter()
            .filter(|(_, c)| c.is_some_and(|c| c != 0))
            .count();
        if failed > 0 {
            out.push(format!(
                "{failed} of {} commands exited non-zero",
                e.commands.len()
            ));
        }
    }
    // What wg ran itself outweighs what the agent says it ran.
    for c in e.checks.iter().filter(|c| !c.passed) {
        out.push(format!(
            "the check `{}` that wg ran itself failed ({})",
            c.command,
            c.exit_code
                .map_or("no exit code".to_string(), |x| format!("exit {x}"))
        ));
    }
    if let Some(d) = &e.diff {
        if d.trim().is_empty() && asks_for_code(&e.title, &e.description) {
            out.push("the task asked for changes but the workspace diff is empty".to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_come_from_raw_and_wrapped_events() {
        let raw = r#"{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"ls","exit_code":0}}"#;
        let wrapped = r#"{"turn":2,"event":{"type":"item.completed","item":{"type":"command_execution","command":"false","exit_code":1}}}"#;
        let other = r#"{"type":"item.completed","item":{"type":"agent_message","text":"hi"}}"#;
        let cmds = commands_from_events(&format!("{raw}\nnot json\n{wrapped}\n{other}\n"));
        assert_eq!(
            cmds,
            vec![("ls".to_string(), Some(0)), ("false".to_string(), Some(1))]
        );
    }

    #[test]
    fn findings_flag_the_cheap_problems() {
        let e = Evidence {
            title: "Fix the parser".into(),
            diff: Some(String::new()),
            error_replies: 1,
            ..Evidence::default()
        };
        let f = findings(&e);
        assert!(f.iter().any(|x| x.contains("no assistant reply")));
        assert!(f.iter().any(|x| x.contains("never ran a command")));
        assert!(f.iter().any(|x| x.contains("diff is empty")));
        assert!(f.iter().any(|x| x.contains("error reply")));
        let good = Evidence {
            title: "Summarise".into(),
            replies: 1,
            commands: vec![("ls".into(), Some(0))],
            diff: None,
            ..Evidence::default()
        };
        assert!(findings(&good).is_empty());
        let failing = Evidence {
            checks: vec![crate::landing::checks::CheckRecord {
                ts: "t".into(),
                task: "a".into(),
                stage: crate::landing::checks::CheckStage::Task,
                round: 1,
                command: "cargo test".into(),
                commit: None,
                exit_code: Some(101),
                passed: false,
                timed_out: false,
                duration_ms: 5,
                output: "1 failed".into(),
            }],
            ..good
        };
        assert_eq!(
            findings(&failing),
            vec!["the check `cargo test` that wg ran itself failed (exit 101)".to_string()]
        );
    }
}
