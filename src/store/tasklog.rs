//! `.wg/tasks/<id>/log.jsonl`: progress notes and every status change, with time and actor.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::{append, jsonl};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogRecord {
    pub ts: String,
    pub actor: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl LogRecord {
    pub fn status(ts: &str, actor: &str, from: &str, to: &str, reason: Option<&str>) -> LogRecord {
        LogRecord {
            ts: ts.to_string(),
            actor: actor.to_string(),
            event: "status".into(),
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            reason: reason.map(str::to_string),
            text: None,
            extra: Default::default(),
        }
    }

    pub fn note(ts: &str, actor: &str, text: &str) -> LogRecord {
        LogRecord {
            ts: ts.to_string(),
            actor: actor.to_string(),
            event: "note".into(),
            from: None,
            to: None,
            reason: None,
            text: Some(text.to_string()),
            extra: Default::default(),
        }
    }
}

impl LogRecord {
    /// One line for people: `<ts> <actor> note: <text>`, `<ts> <actor> <from> -> <to> (<reason>)`,
    /// or `<ts> <actor> <event>` with any `status`/`total` an other event carries.
    pub fn human(&self) -> String {
        match self.event.as_str() {
            "note" => format!(
                "{} {} note: {}",
                self.ts,
                self.actor,
                self.text.as_deref().unwrap_or("")
            ),
            "status" => format!(
                "{} {} {} -> {}{}",
                self.ts,
                self.actor,
                self.from.as_deref().unwrap_or("?"),
                self.to.as_deref().unwrap_or("?"),
                self.reason
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default()
            ),
            other => {
                let mut line = format!("{} {} {other}", self.ts, self.actor);
                for key in ["status", "total", "error"] {
                    if let Some(v) = self.extra.get(key) {
                        line.push_str(&format!(" {key}={v}"));
                    }
                }
                line
            }
        }
    }
}

pub fn append(layout: &Layout, id: &str, record: &LogRecord, fsync: bool) -> std::io::Result<()> {
    jsonl::append(&layout.task_log(id), record, fsync)
}

/// A record appended to a task's log that can still be taken back.
pub struct Undoable {
    path: PathBuf,
    at: u64,
    len: u64,
}

impl Undoable {
    /// Takes the record back (if nothing was appended after it; a record another writer
    /// already followed stays, rather than cutting theirs).
    pub fn undo(self) {
        if let Err(e) = append::retract(&self.path, self.at, self.len) {
            tracing::warn!("{e}");
        }
    }
}

/// Appends `record` to the task's log, keeping what is needed to take it back.
pub fn append_undoable(layout: &Layout, id: &str, record: &LogRecord) -> std::io::Result<Undoable> {
    let path = layout.task_log(id);
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let done = append::append(&path, &line, false)?;
    Ok(Undoable {
        path,
        at: done.at,
        len: line.len() as u64,
    })
}

pub fn read(path: &Path) -> Result<Vec<LogRecord>, jsonl::ReadError> {
    jsonl::read_all(path)
}
