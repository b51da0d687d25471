//! `.wg/tasks/<id>/log.jsonl`: progress notes and every status change, with time and actor.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::jsonl;
use super::layout::Layout;

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

pub fn read(path: &Path) -> Result<Vec<LogRecord>, jsonl::ReadError> {
    jsonl::read_all(path)
}
