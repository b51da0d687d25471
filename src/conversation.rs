//! A task's conversation: `inbox.jsonl` (messages to the agent) and `outbox.jsonl` (one reply
//! per turn). Shared by `wg msg`, the handler and the coordinator. Formats: docs/conversation.md.
//!
//! Message 1 is always the task brief; whoever touches the conversation first writes it.
//! A message is unanswered until an outbox record's `in_reply_to` reaches its seq.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Task;
use crate::outcome::ErrorKind;
use crate::store::jsonl;
use crate::store::layout::Layout;
use crate::store::lock::{FileLock, LockError};
use crate::time::now_rfc3339;

/// One message to the agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InboxMessage {
    pub seq: u64,
    pub ts: String,
    /// `wg` for the brief and reminders, `user`, an agent id, or `coordinator`.
    pub sender: String,
    /// `brief`, `message`, `nudge` or `rejection`.
    #[serde(default = "default_kind")]
    pub kind: String,
    pub text: String,
}

fn default_kind() -> String {
    "message".into()
}

/// Token counts of one turn, as codex reports them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub cached_input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub reasoning_output_tokens: u64,
}

/// Who wrote an outbox record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The agent's reply.
    Assistant,
    /// The turn failed; `text` says what failed and what to do.
    Error,
    /// wg's own word, no turn ran (e.g. that a message was not answered).
    Note,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Assistant => "assistant",
            Role::Error => "error",
            Role::Note => "note",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a turn failed, as an `error` record stores it. Flattened into the record as
/// `error_kind`, `error_message` and `exit_code`, the fields records have always had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnError {
    #[serde(rename = "error_kind")]
    pub kind: ErrorKind,
    /// The server's (or agent's) own words, whole. Empty on records that did not keep them.
    #[serde(
        rename = "error_message",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
    /// The agent's exit code, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// One reply: the outcome of one turn.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxRecord {
    pub seq: u64,
    pub ts: String,
    /// The highest inbox seq this turn answered.
    pub in_reply_to: u64,
    pub role: Role,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codex_version: Option<String>,
    /// The turn number; `None` on notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u64>,
    /// The turn's cost at the model's price when it ran; `None` without a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// On `error` records (a record without `error_kind` reads as `None`).
    #[serde(flatten)]
    pub error: Option<TurnError>,
    /// Fields this version does not type (`actions`, the executor's own), kept as read.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl OutboxRecord {
    /// A record with nothing but its role and text; `append_outbox` gives it its seq.
    pub fn new(in_reply_to: u64, role: Role, text: impl Into<String>) -> OutboxRecord {
        OutboxRecord {
            seq: 0,
            ts: now_rfc3339(),
            in_reply_to,
            role,
            text: text.into(),
            usage: None,
            duration_ms: 0,
            codex_version: None,
            turn: None,
            cost_usd: None,
            error: None,
            extra: Default::default(),
        }
    }

    /// The failure this record reports, when it is an `error` record. Records written before
    /// the kind was typed read as `unknown` (the task's own); without the server's words, the
    /// record's text is the message.
    pub fn last_error(&self) -> Option<LastError> {
        if self.role != Role::Error {
            return None;
        }
        let (kind, message) = match &self.error {
            Some(e) if !e.message.is_empty() => (e.kind, e.message.clone()),
            Some(e) => (e.kind, self.text.clone()),
            None => (ErrorKind::Unknown, self.text.clone()),
        };
        Some(LastError { kind, message })
    }
}

pub fn inbox_path(layout: &Layout, id: &str) -> PathBuf {
    layout.task_file(id, "inbox.jsonl")
}
pub fn outbox_path(layout: &Layout, id: &str) -> PathBuf {
    layout.task_file(id, "outbox.jsonl")
}

pub fn read_inbox(layout: &Layout, id: &str) -> Result<Vec<InboxMessage>, jsonl::ReadError> {
    jsonl::read_all(&inbox_path(layout, id))
}
pub fn read_outbox(layout: &Layout, id: &str) -> Result<Vec<OutboxRecord>, jsonl::ReadError> {
    jsonl::read_all(&outbox_path(layout, id))
}

/// The failure of a task's last turn, when its last outbox record is an `error`: the typed
/// kind and the server's (or agent's) own words. `None` without a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The failure of the task's last turn (see `OutboxRecord::last_error`).
pub fn last_error(layout: &Layout, id: &str) -> Option<LastError> {
    let path = outbox_path(layout, id);
    if !path.exists() {
        return None;
    }
    read_outbox(layout, id).ok()?.pop()?.last_error()
}

/// Whether `r` is the error reply of a turn the endpoint never took (an endpoint-wide kind:
/// an outage, a rejected key, a silent server). Such a turn answers nothing: its messages are
/// answered again when the endpoint is back, and it is not replayed, so a prompt after any
/// number of outages is the prompt before them.
pub fn is_outage(r: &OutboxRecord) -> bool {
    r.role == Role::Error && r.error.as_ref().is_some_and(|e| e.kind.endpoint_wide())
}

/// Inbox messages not yet answered by any outbox record (outages answer nothing).
pub fn unanswered(layout: &Layout, id: &str) -> Result<Vec<InboxMessage>, jsonl::ReadError> {
    let answered = read_outbox(layout, id)?
        .iter()
        .filter(|r| !is_outage(r))
        .map(|r| r.in_reply_to)
        .max()
        .unwrap_or(0);
    Ok(read_inbox(layout, id)?
        .into_iter()
        .filter(|m| m.seq > answered)
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Read(#[from] jsonl::ReadError),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Serialises seq assignment among concurrent writers of one inbox.
fn inbox_lock(layout: &Layout, id: &str) -> Result<FileLock, ConversationError> {
    let dir = layout.task_dir(id);
    crate::store::nofollow::create_dir_all(&dir).map_err(|source| ConversationError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    Ok(FileLock::acquire(
        &dir.join("inbox.lock"),
        Duration::from_secs(30),
    )?)
}

fn append_locked(
    layout: &Layout,
    id: &str,
    sender: &str,
    kind: &str,
    text: &str,
) -> Result<InboxMessage, ConversationError> {
    let seq = read_inbox(layout, id)?.last().map_or(0, |m| m.seq) + 1;
    let msg = InboxMessage {
        seq,
        ts: now_rfc3339(),
        sender: sender.to_string(),
        kind: kind.to_string(),
        text: text.to_string(),
    };
    let path = inbox_path(layout, id);
    jsonl::append(&path, &msg, false).map_err(|source| ConversationError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(msg)
}

/// Writes the brief as message 1 if the inbox is empty. Returns whether it wrote it.
pub fn ensure_brief(layout: &Layout, task: &Task, brief: &str) -> Result<bool, ConversationError> {
    let _lock = inbox_lock(layout, &task.id)?;
    if !read_inbox(layout, &task.id)?.is_empty() {
        return Ok(false);
    }
    append_locked(layout, &task.id, "wg", "brief", brief)?;
    Ok(true)
}

/// Appends a message (after the brief, which `brief` provides if the inbox is still empty).
pub fn append_message(
    layout: &Layout,
    task: &Task,
    brief: impl FnOnce() -> String,
    sender: &str,
    kind: &str,
    text: &str,
) -> Result<InboxMessage, ConversationError> {
    let _lock = inbox_lock(layout, &task.id)?;
    if read_inbox(layout, &task.id)?.is_empty() {
        append_locked(layout, &task.id, "wg", "brief", &brief())?;
    }
    append_locked(layout, &task.id, sender, kind, text)
}

/// Appends one outbox record; its seq is one more than the last.
pub fn append_outbox(
    layout: &Layout,
    id: &str,
    mut record: OutboxRecord,
) -> Result<OutboxRecord, ConversationError> {
    let _lock = inbox_lock(layout, id)?;
    record.seq = read_outbox(layout, id)?.last().map_or(0, |r| r.seq) + 1;
    let path = outbox_path(layout, id);
    jsonl::append(&path, &record, false).map_err(|source| ConversationError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(record)
}

/// Appends a `note` reply: wg's own word in the transcript (not the agent's), marking the
/// messages up to `in_reply_to` as dealt with.
pub fn append_note(
    layout: &Layout,
    id: &str,
    in_reply_to: u64,
    text: &str,
) -> Result<OutboxRecord, ConversationError> {
    append_outbox(layout, id, OutboxRecord::new(in_reply_to, Role::Note, text))
}

/// What a dependency produced, for the brief.
pub struct DependencyOutput<'a> {
    pub task: &'a Task,
    /// The dependency's last assistant reply, if it had a conversation.
    pub last_reply: Option<String>,
}

/// The task brief: title, description, and what its dependencies produced. Pure.
pub fn build_brief(task: &Task, deps: &[DependencyOutput<'_>]) -> String {
    let mut s = format!("# Task {}: {}\n", task.id, task.title);
    if !task.description.trim().is_empty() {
        s.push_str(&format!("\n{}\n", task.description.trim()));
    }
    if !deps.is_empty() {
        s.push_str("\n## What the tasks before this one produced\n");
        for d in deps {
            s.push_str(&format!(
                "\n### {} ({}): {}\n",
                d.task.id, d.task.status, d.task.title
            ));
            if !d.task.artifacts.is_empty() {
                s.push_str(&format!("Artifacts: {}\n", d.task.artifacts.join(", ")));
            }
            if let Some(r) = &d.last_reply {
                let r = r.trim();
                let cut: String = r.chars().take(2000).collect();
                s.push_str(&cut);
                if cut.len() < r.len() {
                    s.push_str(" […]");
                }
                s.push('\n');
            }
        }
    }
    s
}

/// Builds the brief of `task` from the store: its dependencies' records and last replies.
pub fn brief_for(layout: &Layout, task: &Task, lookup: impl Fn(&str) -> Option<Task>) -> String {
    let dep_tasks: Vec<Task> = task.after.iter().filter_map(|d| lookup(d)).collect();
    let deps: Vec<DependencyOutput<'_>> = dep_tasks
        .iter()
        .map(|t| DependencyOutput {
            task: t,
            last_reply: read_outbox(layout, &t.id).ok().and_then(|o| {
                o.into_iter()
                    .rev()
                    .find(|r| r.role == Role::Assistant)
                    .map(|r| r.text)
            }),
        })
        .collect();
    build_brief(task, &deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Layout, Task) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join(".wg"));
        std::fs::create_dir_all(layout.tasks_dir()).unwrap();
        let mut task = Task::new("t".into(), "Do it".into(), "now");
        task.description = "carefully".into();
        (dir, layout, task)
    }

    #[test]
    fn brief_comes_first_and_unanswered_tracks_replies() {
        let (_d, layout, task) = setup();
        assert!(ensure_brief(&layout, &task, "brief").unwrap());
        assert!(!ensure_brief(&layout, &task, "again").unwrap());
        let m = append_message(&layout, &task, || unreachable!(), "user", "message", "hi").unwrap();
        assert_eq!(m.seq, 2);
        assert_eq!(unanswered(&layout, "t").unwrap().len(), 2);
        let rec = OutboxRecord::new(2, Role::Assistant, "ok");
        assert_eq!(append_outbox(&layout, "t", rec).unwrap().seq, 1);
        assert!(unanswered(&layout, "t").unwrap().is_empty());
    }

    #[test]
    fn brief_names_dependencies_and_their_output() {
        let (_d, _layout, task) = setup();
        let mut dep = Task::new("parser".into(), "Write parser".into(), "now");
        dep.status = crate::model::TaskStatus::Done;
        let b = build_brief(
            &task,
            &[DependencyOutput {
                task: &dep,
                last_reply: Some("parser in src/p.rs".into()),
            }],
        );
        assert!(b.contains("Task t: Do it") && b.contains("carefully"));
        assert!(b.contains("parser (done)") && b.contains("src/p.rs"));
    }

    /// Every outbox record an earlier wg wrote reads into the typed record and writes back
    /// as the same fields and values.
    #[test]
    fn outbox_records_of_an_earlier_wg_round_trip() {
        let files = [
            include_str!("../tests/fixtures/store-main/wg-dir/tasks/hello/outbox.jsonl"),
            include_str!("../tests/fixtures/store-main/wg-dir/tasks/broken/outbox.jsonl"),
        ];
        let mut roles = Vec::new();
        for line in files.iter().flat_map(|f| f.lines()) {
            let raw: serde_json::Value = serde_json::from_str(line).unwrap();
            let rec: OutboxRecord = serde_json::from_str(line).unwrap();
            assert!(rec.extra.is_empty(), "untyped fields left: {:?}", rec.extra);
            assert_eq!(serde_json::to_value(&rec).unwrap(), raw);
            roles.push(rec.role);
        }
        assert_eq!(roles, [Role::Assistant, Role::Assistant, Role::Error]);
        let err: OutboxRecord = serde_json::from_str(files[1].lines().next().unwrap()).unwrap();
        let e = err.error.as_ref().unwrap();
        assert_eq!((e.kind, e.exit_code), (ErrorKind::Unreachable, Some(1)));
        assert_eq!(err.last_error().unwrap().kind, ErrorKind::Unreachable);
        assert!(e.message.starts_with("cannot reach"));
    }

    #[test]
    fn an_error_record_without_a_kind_is_the_tasks_own_unknown_failure() {
        let old = r#"{"seq":1,"ts":"t","in_reply_to":1,"role":"error","text":"boom","duration_ms":0,"exit_code":3,"actions":{"commands":[]}}"#;
        let rec: OutboxRecord = serde_json::from_str(old).unwrap();
        let e = rec.last_error().unwrap();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Unknown, "boom"));
        assert!(rec.extra.contains_key("actions"));
        let note = OutboxRecord::new(1, Role::Note, "not answered");
        assert!(note.last_error().is_none());
        let back: OutboxRecord =
            serde_json::from_str(&serde_json::to_string(&note).unwrap()).unwrap();
        assert_eq!(back, note);
    }
}
