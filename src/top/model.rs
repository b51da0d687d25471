//! What `wg top` shows, read from the project's files: tasks, running agents, their last event,
//! tokens. One read is a [`Snapshot`]; the view never reads files itself, so every layout test
//! builds a snapshot by hand. New fields (a status, a cost, a pause) land here and in one
//! render function.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

use crate::agent_events::{AgentEvent, Dialect, Fold};
use crate::conversation::Role;
use crate::conversation::{self, OutboxRecord};
use crate::coordinator::{self, agents_file, endpoints};
use crate::model::{Task, TaskStatus};
use crate::store::{Layout, Store, StoreError};
use crate::time::parse_rfc3339;

/// How much of the end of `events.jsonl` is read for the last event: plenty for the last
/// few events, and a bounded cost however long the turn.
const EVENTS_TAIL_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Coordinator {
    NotRunning,
    Running { pid: Option<u32> },
}

/// Token counts summed over a task's turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Tokens {
    pub input: u64,
    pub cached: u64,
    pub output: u64,
    /// Dollars, when the executor reported a price (`cost_usd` in the outbox).
    pub cost_usd: Option<f64>,
}

impl Tokens {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }

    /// The share of input tokens served from the prompt cache, 0..=1; `None` without input.
    pub fn cached_share(&self) -> Option<f64> {
        (self.input > 0).then(|| self.cached as f64 / self.input as f64)
    }

    fn add_record(&mut self, r: &OutboxRecord) {
        if let Some(u) = &r.usage {
            self.input += u.input_tokens;
            self.cached += u.cached_input_tokens;
            self.output += u.output_tokens;
        }
        if let Some(c) = r.cost_usd {
            *self.cost_usd.get_or_insert(0.0) += c;
        }
    }

    pub fn add(&mut self, o: &Tokens) {
        self.input += o.input;
        self.cached += o.cached;
        self.output += o.output;
        if let Some(c) = o.cost_usd {
            *self.cost_usd.get_or_insert(0.0) += c;
        }
    }
}

/// What an agent did last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A shell command it ran (or is running).
    Command,
    /// Its reply (an agent message).
    Reply,
    /// An error: a failed turn, an error event, an `error` outbox record.
    Error,
    /// Anything else worth a line (turn started, reasoning, a file change).
    Other,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LastEvent {
    pub kind: EventKind,
    /// One line of text: the command, the reply's first line, the error.
    pub text: String,
    pub turn: u32,
    /// The command is still running.
    pub running: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    pub agent_id: String,
    pub executor: String,
    pub turn: u32,
    pub started: Option<SystemTime>,
    pub tokens: Tokens,
    pub last: Option<LastEvent>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub status: TaskStatus,
    /// Open and every dependency done.
    pub ready: bool,
    /// Why it failed, or what it waits for.
    pub reason: Option<String>,
    pub updated: String,
    pub agent: Option<AgentRow>,
    /// The tasks it runs after (`wg web` draws the dependency graph from these).
    pub after: Vec<String>,
    /// Done, but its evaluation is not accepted yet.
    pub awaiting_evaluation: bool,
}

/// An endpoint the coordinator stopped dispatching to (`.wg/service/endpoints.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct PausedEndpoint {
    pub endpoint: String,
    /// The error kind and the server's message.
    pub reason: String,
    /// The next probe, which resumes dispatch if it passes.
    pub until: Option<SystemTime>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub by_status: BTreeMap<TaskStatus, usize>,
    pub ready: usize,
    pub agents: usize,
    /// Tokens of the running agents' tasks.
    pub tokens: Tokens,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub taken_at: SystemTime,
    pub project: String,
    pub coordinator: Coordinator,
    /// In display order: see [`status_rank`].
    pub tasks: Vec<TaskRow>,
    pub paused: Vec<PausedEndpoint>,
    /// Why the coordinator holds dispatch (a disk that refuses writes), if it does.
    pub held: Option<String>,
    /// The merge queue, in order (`.wg/service/queue.json`).
    pub queue: Vec<crate::workspace::queue::Entry>,
    pub totals: Totals,
}

/// Display order of statuses: what needs a person first (failed), then what runs, then what
/// waits, then the rest. A new status must be placed here (the match is exhaustive).
pub fn status_rank(s: TaskStatus) -> u8 {
    match s {
        TaskStatus::Failed | TaskStatus::NeedsInput => 0,
        TaskStatus::InProgress => 1,
        TaskStatus::Waiting => 2,
        TaskStatus::Open | TaskStatus::Paused => 3,
        TaskStatus::Done => 4,
        TaskStatus::Abandoned => 5,
    }
}

/// Orders rows: by status rank, ready before blocked, most recently changed first, then id.
pub fn sort_rows(rows: &mut [TaskRow]) {
    rows.sort_by(|a, b| {
        status_rank(a.status)
            .cmp(&status_rank(b.status))
            .then(b.ready.cmp(&a.ready))
            .then(b.updated.cmp(&a.updated))
            .then(a.id.cmp(&b.id))
    });
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Agents(#[from] agents_file::AgentsFileError),
    #[error("cannot check the coordinator: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one snapshot of the project.
pub fn load(layout: &Layout, store: &Store) -> Result<Snapshot, LoadError> {
    let coordinator = match coordinator::running(layout)? {
        Some(pid) => Coordinator::Running { pid },
        None => Coordinator::NotRunning,
    };
    let agents = if coordinator == Coordinator::NotRunning {
        Vec::new()
    } else {
        agents_file::read(&layout.agents_file())?
    };
    let paused = if coordinator == Coordinator::NotRunning {
        Vec::new()
    } else {
        endpoints::read_paused(layout)
            .into_iter()
            .map(|p| PausedEndpoint {
                endpoint: p.endpoint,
                reason: format!("{}: {}", p.kind, first_line(&p.reason)),
                until: parse_rfc3339(&p.next_probe),
            })
            .collect()
    };
    let held = (coordinator != Coordinator::NotRunning)
        .then(|| coordinator::hold::read(layout))
        .flatten()
        .map(|h| format!("{} (since {}, {} tries)", h.reason, h.since, h.attempts));
    let graph = store.load()?;
    let ready: std::collections::HashSet<String> = store
        .ready(&graph)?
        .into_iter()
        .map(|t| t.id.clone())
        .collect();
    let mut by_task: BTreeMap<&str, &agents_file::AgentRecord> = BTreeMap::new();
    for a in &agents {
        by_task.insert(a.task.as_str(), a);
    }
    let mut totals = Totals {
        ready: ready.len(),
        agents: agents.len(),
        ..Totals::default()
    };
    let mut rows = Vec::with_capacity(graph.tasks.len());
    for t in graph.tasks.values() {
        *totals.by_status.entry(t.status).or_default() += 1;
        let agent = by_task.get(t.id.as_str()).map(|a| agent_row(layout, a, t));
        if let Some(a) = &agent {
            totals.tokens.add(&a.tokens);
        }
        rows.push(TaskRow {
            id: t.id.clone(),
            title: t.title.clone(),
            status: t.status,
            ready: ready.contains(&t.id),
            reason: reason(t),
            updated: t.updated.clone(),
            agent,
            after: t.after.clone(),
            awaiting_evaluation: t.awaiting_evaluation(),
        });
    }
    sort_rows(&mut rows);
    Ok(Snapshot {
        taken_at: SystemTime::now(),
        project: layout.project_root().display().to_string(),
        coordinator,
        tasks: rows,
        paused,
        held,
        queue: crate::workspace::queue::Queue::load(&crate::workspace::queue::path(
            &layout.service_dir(),
        ))
        .map(|q| q.entries)
        .unwrap_or_default(),
        totals,
    })
}

fn reason(t: &Task) -> Option<String> {
    if let Some(r) = &t.failure_reason {
        return Some(r.clone());
    }
    t.extra
        .get("waiting_for")
        .and_then(Value::as_str)
        .map(|w| format!("waiting for {w}"))
}

fn agent_row(layout: &Layout, a: &agents_file::AgentRecord, t: &Task) -> AgentRow {
    let outbox = conversation::read_outbox(layout, &t.id).unwrap_or_default();
    let mut tokens = Tokens::default();
    for r in &outbox {
        tokens.add_record(r);
    }
    let events = folded(&read_events_tail(&layout.task_file(&t.id, "events.jsonl")));
    let mut last = events.iter().rev().find_map(|(turn, e)| shown(*turn, e));
    let mut turn = a.turn;
    if let Some(e) = &last {
        turn = turn.max(e.turn);
    }
    // The current turn's usage is in events.jsonl until its outbox record is written.
    if let Some(u) = current_turn_usage(&events, outbox.len() as u32) {
        tokens.add(&u);
    }
    if last.is_none() {
        last = outbox.last().map(|r| LastEvent {
            kind: if r.role == Role::Error {
                EventKind::Error
            } else {
                EventKind::Reply
            },
            text: first_line(&r.text),
            turn: outbox.len() as u32,
            running: false,
        });
    }
    AgentRow {
        agent_id: a.agent_id.clone(),
        executor: a.executor.clone(),
        turn,
        started: parse_rfc3339(&a.started_at),
        tokens,
        last,
    }
}

/// The last whole lines of `events.jsonl`, parsed; an unreadable file is no events.
pub fn read_events_tail(path: &Path) -> Vec<Value> {
    let Ok(mut f) = crate::store::nofollow::open(path, crate::store::nofollow::Mode::Read) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(EVENTS_TAIL_BYTES);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let mut lines: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
    // The last piece has no newline: empty, or an append in flight.
    lines.pop();
    if from > 0 && !lines.is_empty() {
        // The first piece starts mid-line.
        lines.remove(0);
    }
    lines
        .into_iter()
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// The agent events of `events.jsonl` records, each with its turn, folded in order through
/// the one agent-event model (a claude tool result finds the call it answers).
pub fn folded(records: &[Value]) -> Vec<(u32, AgentEvent)> {
    let mut codex = Fold::new(Dialect::Codex);
    let mut claude = Fold::new(Dialect::Claude);
    let mut out = Vec::new();
    for record in records {
        let turn = record.get("turn").and_then(Value::as_u64).unwrap_or(0) as u32;
        let Some(ev) = record.get("event") else {
            continue;
        };
        let fold = match Dialect::of_event(ev) {
            Dialect::Codex => &mut codex,
            Dialect::Claude => &mut claude,
        };
        out.extend(fold.push(ev).into_iter().map(|e| (turn, e)));
    }
    out
}

/// One agent event as a line of activity; `None` for those not worth showing.
pub fn shown(turn: u32, event: &AgentEvent) -> Option<LastEvent> {
    let (kind, text, running) = match event {
        AgentEvent::CommandStarted { shown, .. } => (EventKind::Command, first_line(shown), true),
        AgentEvent::ToolEnded(run) => {
            let text = match run.exit_code {
                Some(c) if c != 0 => format!("{} → exit {c}", first_line(&run.shown)),
                None if run.failed => format!("{} → failed", first_line(&run.shown)),
                _ => first_line(&run.shown),
            };
            (EventKind::Command, text, false)
        }
        AgentEvent::Reply(text) => (EventKind::Reply, first_line(text), false),
        AgentEvent::Warning(message) | AgentEvent::Failed { message, .. } => {
            (EventKind::Error, first_line(message), false)
        }
        AgentEvent::FilesChanged(changes) => {
            let paths: Vec<&str> = changes.iter().map(|(p, _)| p.as_str()).collect();
            (
                EventKind::Other,
                format!("edited {}", paths.join(", ")),
                false,
            )
        }
        AgentEvent::TurnStarted => (EventKind::Other, "turn started".into(), false),
        AgentEvent::Session(_)
        | AgentEvent::Thinking(_)
        | AgentEvent::OtherItem(_)
        | AgentEvent::Completed { .. } => return None,
    };
    Some(LastEvent {
        kind,
        text,
        turn,
        running,
    })
}

/// The newest event worth showing.
pub fn last_event(records: &[Value]) -> Option<LastEvent> {
    folded(records)
        .iter()
        .rev()
        .find_map(|(turn, e)| shown(*turn, e))
}

/// Usage of turns newer than the outbox (ended, but their outbox record not written yet).
fn current_turn_usage(events: &[(u32, AgentEvent)], outbox_turns: u32) -> Option<Tokens> {
    let mut sum: Option<Tokens> = None;
    for (turn, e) in events {
        let (AgentEvent::Completed { usage: Some(u), .. }
        | AgentEvent::Failed { usage: Some(u), .. }) = e
        else {
            continue;
        };
        if *turn > outbox_turns {
            let t = sum.get_or_insert_with(Tokens::default);
            t.input += u.input_tokens;
            t.cached += u.cached_input_tokens;
            t.output += u.output_tokens;
        }
    }
    sum
}

/// Who said it, in a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// A message to the agent (the brief, a person, the coordinator).
    To,
    /// The agent's reply.
    Agent,
    /// A failed turn.
    Error,
    /// A command or other activity of the current turn.
    Activity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptLine {
    pub speaker: Speaker,
    /// `user`, `wg`, `agent`, `$`…
    pub who: String,
    pub text: String,
}

/// A task's conversation in order (messages, then the reply that answered them), followed by
/// the activity of a turn that has no reply yet. Read for the selected task only.
pub fn transcript(layout: &Layout, id: &str) -> Vec<TranscriptLine> {
    let inbox = conversation::read_inbox(layout, id).unwrap_or_default();
    let outbox = conversation::read_outbox(layout, id).unwrap_or_default();
    let events = read_events_tail(&layout.task_file(id, "events.jsonl"));
    merge_transcript(&inbox, &outbox, &events)
}

/// Pure part of [`transcript`].
pub fn merge_transcript(
    inbox: &[conversation::InboxMessage],
    outbox: &[OutboxRecord],
    events: &[Value],
) -> Vec<TranscriptLine> {
    let mut out = Vec::new();
    let mut next_msg = 0;
    let mut push_msgs = |upto: u64, out: &mut Vec<TranscriptLine>| {
        while next_msg < inbox.len() && inbox[next_msg].seq <= upto {
            let m = &inbox[next_msg];
            let who = if m.kind == "message" {
                m.sender.clone()
            } else {
                format!("{} ({})", m.sender, m.kind)
            };
            out.push(TranscriptLine {
                speaker: Speaker::To,
                who,
                text: m.text.trim_end().to_string(),
            });
            next_msg += 1;
        }
    };
    for r in outbox {
        push_msgs(r.in_reply_to, &mut out);
        let error = r.role == Role::Error;
        out.push(TranscriptLine {
            speaker: if error {
                Speaker::Error
            } else {
                Speaker::Agent
            },
            who: if error {
                "error".into()
            } else {
                "agent".into()
            },
            text: r.text.trim_end().to_string(),
        });
    }
    push_msgs(u64::MAX, &mut out);
    let done_turns = outbox.len() as u32;
    for e in folded(events)
        .iter()
        .filter_map(|(turn, e)| shown(*turn, e))
    {
        if e.turn > done_turns && e.kind != EventKind::Reply {
            out.push(TranscriptLine {
                speaker: Speaker::Activity,
                who: match e.kind {
                    EventKind::Command => "$".into(),
                    EventKind::Error => "error".into(),
                    _ => "·".into(),
                },
                text: e.text,
            });
        }
    }
    out
}

/// `wg top --once --json`: the snapshot for scripts.
pub fn json(snap: &Snapshot) -> Value {
    let secs = |t: Option<SystemTime>| {
        t.and_then(|t| snap.taken_at.duration_since(t).ok())
            .map(|d| d.as_secs_f64())
    };
    let tasks: Vec<Value> = snap
        .tasks
        .iter()
        .map(|r| {
            let agent = r.agent.as_ref().map(|a| {
                serde_json::json!({
                    "agent_id": a.agent_id,
                    "executor": a.executor,
                    "turn": a.turn,
                    "elapsed_secs": secs(a.started),
                    "tokens": a.tokens,
                    "cached_share": a.tokens.cached_share(),
                    "last_event": a.last,
                })
            });
            serde_json::json!({
                "id": r.id,
                "title": r.title,
                "status": r.status,
                "ready": r.ready,
                "reason": r.reason,
                "agent": agent,
            })
        })
        .collect();
    let (running, pid) = match &snap.coordinator {
        Coordinator::Running { pid } => (true, *pid),
        Coordinator::NotRunning => (false, None),
    };
    let by_status: BTreeMap<&str, usize> = snap
        .totals
        .by_status
        .iter()
        .map(|(s, n)| (s.as_str(), *n))
        .collect();
    serde_json::json!({
        "coordinator": {"running": running, "pid": pid},
        "totals": {
            "by_status": by_status,
            "ready": snap.totals.ready,
            "agents": snap.totals.agents,
            "tokens": snap.totals.tokens,
        },
        "paused": snap.paused.iter().map(|p| serde_json::json!({
            "endpoint": p.endpoint,
            "reason": p.reason,
            "remaining_secs": p.until.and_then(|u| u.duration_since(snap.taken_at).ok()).map(|d| d.as_secs_f64()),
        })).collect::<Vec<_>>(),
        "held": snap.held,
        "queue": snap.queue,
        "tasks": tasks,
    })
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
