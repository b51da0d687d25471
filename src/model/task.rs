//! The task record and its lifecycle. Pure types: no I/O here.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest id we accept. Ids become directory names under `.wg/tasks/`.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid task id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("task id is empty")]
    Empty,
    #[error("task id `{0}` is longer than {MAX_ID_LEN} characters")]
    TooLong(String),
    #[error("task id `{0}` may only hold lowercase letters, digits and `-`, and must start with a letter or digit")]
    BadChars(String),
}

/// Checks that `id` is a slug of `[a-z0-9-]` that starts with a letter or digit.
/// This is what keeps `../` and `/` out of paths built from ids.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(id.to_string()));
    }
    let bytes = id.as_bytes();
    let ok_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    if !bytes.iter().all(ok_char) || bytes[0] == b'-' {
        return Err(IdError::BadChars(id.to_string()));
    }
    Ok(())
}

/// Deserializes an id and refuses one that is not a valid slug: a record whose id (or a
/// dependency) reads `../x` is a corrupt record, never a path waiting to be built.
pub fn de_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = String::deserialize(d)?;
    validate_id(&id).map_err(serde::de::Error::custom)?;
    Ok(id)
}

/// [`de_id`] for a list of ids (`after`).
pub fn de_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let ids = Vec::<String>::deserialize(d)?;
    for id in &ids {
        validate_id(id).map_err(serde::de::Error::custom)?;
    }
    Ok(ids)
}

/// Derives an id from a title: lowercase, runs of other characters become one `-`,
/// at most 40 characters, never empty.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    let mut pending_dash = false;
    for c in title.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            let needed = if pending_dash && !slug.is_empty() {
                2
            } else {
                1
            };
            if slug.len() + needed > 40 {
                break;
            }
            if needed == 2 {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(c);
        } else {
            pending_dash = true;
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "task".to_string()
    } else {
        slug
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    Open,
    InProgress,
    Waiting,
    /// The agent asked a person a question (`wg ask`); the answer (`wg msg`) resumes it.
    NeedsInput,
    /// Stopped by a person (`wg pause`, `wg cancel`); never dispatched until `wg resume`.
    Paused,
    Done,
    Failed,
    Abandoned,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Open,
        TaskStatus::InProgress,
        TaskStatus::Waiting,
        TaskStatus::NeedsInput,
        TaskStatus::Paused,
        TaskStatus::Done,
        TaskStatus::Failed,
        TaskStatus::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::InProgress => "in-progress",
            TaskStatus::Waiting => "waiting",
            TaskStatus::NeedsInput => "needs-input",
            TaskStatus::Paused => "paused",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Abandoned => "abandoned",
        }
    }

    /// Done, failed and abandoned tasks have no agent and are not ready.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Done | TaskStatus::Failed | TaskStatus::Abandoned
        )
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    ///
    /// open → in-progress → (waiting ⇄ in-progress)* → done | failed; any non-terminal task may
    /// be closed by hand; retry (and an evaluator's rejection) sends failed or done back to open;
    /// abandoned is final. A running task may also be put back to open (requeue after a crash).
    /// A running or waiting task may ask a person (needs-input); the answer makes it waiting
    /// again. Any non-terminal task may be paused; a paused task is only resumed (open) or
    /// closed.
    pub fn can_become(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        match (self, to) {
            (Abandoned, _) => false,
            (a, b) if a == b => false,
            (Open, InProgress | Done | Failed | Abandoned | Paused) => true,
            (Open, _) => false,
            (InProgress, _) => true,
            (Waiting, _) => true,
            (NeedsInput, Waiting | InProgress | Paused | Done | Failed | Abandoned) => true,
            (NeedsInput, _) => false,
            (Paused, Open | Done | Failed | Abandoned) => true,
            (Paused, _) => false,
            (Done | Failed, Open) => true,
            // Checks or the merge queue failed its last round: a person decides.
            (Done, NeedsInput) => true,
            (Failed, Abandoned) => true,
            (Done | Failed, _) => false,
        }
    }

    /// Statuses whose task holds on to its conversation and may get another turn: the agent
    /// is running, or between turns.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            TaskStatus::InProgress | TaskStatus::Waiting | TaskStatus::NeedsInput
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}` (expected one of: open, in-progress, waiting, needs-input, paused, done, failed, abandoned)"
                )
            })
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// One task record: one line of `graph.jsonl`.
///
/// Field order here is the field order on disk, which keeps compacted files deterministic.
/// Fields this version does not know are kept in `extra` and written back unchanged.
/// Deserialize is written by hand (`task_de.rs`): serde's `flatten` buffers every field of
/// every record, which made reading full records several times slower.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub priority: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Hard timeout, a humantime duration such as `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<crate::time::Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// argv for the `shell` executor; never passed through a shell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    pub created: String,
    pub updated: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Task record field: `true` while an agent's `done` waits for the automatic evaluation
/// (`evaluate.auto`). Such a task does not satisfy its dependents until accepted.
pub const AWAITING_EVALUATION: &str = "awaiting_evaluation";

/// The field that makes a record a tombstone: `wg rm` appends the removed task's id and
/// `created` with `"removed": "<RFC 3339>"`. It removes that task (every record with the same
/// id and `created`) wherever its records stand in the file, so a git union merge with a
/// branch that still has the task cannot bring it back; a task added later under the same id
/// has another `created` and lives. Its `status` is `abandoned`, so a wg that does not know
/// the field reads a task that never runs.
pub const REMOVED: &str = "removed";

/// Task record field holding the open question of a `needs-input` task (`wg ask`).
pub const QUESTION: &str = "question";

impl Task {
    /// Whether this record is a tombstone (`wg rm`), not a task.
    pub fn is_tombstone(&self) -> bool {
        self.extra.contains_key(REMOVED)
    }

    /// The tombstone that removes this task: its id, title and `created`, and when.
    pub fn tombstone(&self, now: &str) -> Task {
        let mut t = Task::new(self.id.clone(), self.title.clone(), &self.created);
        t.status = TaskStatus::Abandoned;
        t.updated = now.to_string();
        t.extra
            .insert(REMOVED.to_string(), serde_json::Value::from(now));
        t
    }

    /// Done, but not yet accepted by the evaluation gate.
    pub fn awaiting_evaluation(&self) -> bool {
        self.status == TaskStatus::Done
            && self
                .extra
                .get(AWAITING_EVALUATION)
                .and_then(|v| v.as_bool())
                == Some(true)
    }

    /// The dependencies that are done but still wait for their evaluation: this task waits
    /// too. `get` looks a task up by id.
    pub fn held_by_gate<'a>(&self, get: impl Fn(&str) -> Option<&'a Task>) -> Vec<String> {
        self.after
            .iter()
            .filter(|d| get(d).is_some_and(Task::awaiting_evaluation))
            .cloned()
            .collect()
    }

    pub fn new(id: String, title: String, now: &str) -> Task {
        Task {
            id,
            title,
            description: String::new(),
            status: TaskStatus::Open,
            after: Vec::new(),
            executor: None,
            model: None,
            tags: Vec::new(),
            priority: 0,
            retries: 0,
            max_retries: None,
            timeout: None,
            workspace: None,
            command: Vec::new(),
            created: now.to_string(),
            updated: now.to_string(),
            assigned: None,
            failure_reason: None,
            artifacts: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_paths_and_odd_characters() {
        assert!(validate_id("fix-parser-2").is_ok());
        for bad in ["", "../etc", "a/b", "A", "-x", "a b", "a.b", "a\0b"] {
            assert!(validate_id(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(validate_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn slugs_are_valid_ids() {
        assert_eq!(slugify("Fix the Parser!"), "fix-the-parser");
        assert_eq!(slugify("  ../../etc/passwd "), "etc-passwd");
        assert_eq!(slugify("日本"), "task");
        let long = slugify(&"word ".repeat(30));
        assert!(long.len() <= 40 && validate_id(&long).is_ok());
    }

    #[test]
    fn lifecycle_rules() {
        use TaskStatus::*;
        assert!(Open.can_become(InProgress));
        assert!(Open.can_become(Done));
        assert!(!Open.can_become(Waiting));
        assert!(InProgress.can_become(Waiting));
        assert!(Waiting.can_become(InProgress));
        assert!(Failed.can_become(Open));
        assert!(Done.can_become(Open));
        assert!(!Done.can_become(Failed));
        for to in TaskStatus::ALL {
            assert!(!Abandoned.can_become(to));
        }
        assert!(InProgress.can_become(NeedsInput) && NeedsInput.can_become(Waiting));
        assert!(!Open.can_become(NeedsInput) && !NeedsInput.can_become(Open));
        for from in [Open, InProgress, Waiting, NeedsInput] {
            assert!(from.can_become(Paused), "{from}");
        }
        assert!(Paused.can_become(Open) && !Paused.can_become(InProgress));
        assert!(!Done.can_become(Paused) && !Paused.can_become(Waiting));
    }

    #[test]
    fn records_with_path_ids_do_not_parse() {
        let ok =
            r#"{"id":"a","title":"A","status":"open","created":"t","updated":"t","after":["b"]}"#;
        assert!(serde_json::from_str::<Task>(ok).is_ok());
        for bad in [
            ok.replace("\"a\"", "\"../a\""),
            ok.replace("\"b\"", "\"x/y\""),
        ] {
            let e = serde_json::from_str::<Task>(&bad).unwrap_err().to_string();
            assert!(e.contains("task id"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let line = r#"{"id":"a","title":"A","status":"open","created":"t","updated":"t","zeta":1,"alpha":{"x":[1]}}"#;
        let task: Task = serde_json::from_str(line).unwrap();
        assert_eq!(task.extra.len(), 2);
        let back = serde_json::to_string(&task).unwrap();
        assert!(back.contains(r#""alpha":{"x":[1]}"#) && back.contains(r#""zeta":1"#));
    }
}
