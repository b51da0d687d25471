//! The snapshot's pure parts: ordering, events, tokens, transcripts.

use super::*;
use serde_json::json;

fn row(id: &str, status: TaskStatus, updated: &str) -> TaskRow {
    TaskRow {
        id: id.into(),
        title: id.into(),
        status,
        ready: false,
        reason: None,
        updated: updated.into(),
        agent: None,
    }
}

#[test]
fn failed_tasks_come_first_then_running_then_waiting() {
    let mut rows = vec![
        row("d", TaskStatus::Done, "2"),
        row("o", TaskStatus::Open, "1"),
        row("r", TaskStatus::InProgress, "1"),
        row("f", TaskStatus::Failed, "1"),
        row("w", TaskStatus::Waiting, "1"),
        row("a", TaskStatus::Abandoned, "1"),
    ];
    sort_rows(&mut rows);
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["f", "r", "w", "o", "d", "a"]);
}

#[test]
fn ready_open_tasks_before_blocked_ones_and_newest_first() {
    let mut blocked = row("b", TaskStatus::Open, "9");
    blocked.ready = false;
    let mut ready = row("r", TaskStatus::Open, "1");
    ready.ready = true;
    let mut rows = vec![
        blocked,
        ready,
        row("d1", TaskStatus::Done, "1"),
        row("d2", TaskStatus::Done, "2"),
    ];
    sort_rows(&mut rows);
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r", "b", "d2", "d1"]);
}

#[test]
fn last_event_is_the_newest_command_reply_or_error() {
    let events = vec![
        json!({"turn": 2, "event": {"type": "turn.started"}}),
        json!({"turn": 2, "event": {"type": "item.started", "item": {"type": "command_execution", "command": "cargo test"}}}),
        json!({"turn": 2, "event": {"type": "item.completed", "item": {"type": "todo_list"}}}),
    ];
    let e = last_event(&events).unwrap();
    assert_eq!(
        (e.kind, e.text.as_str(), e.turn, e.running),
        (EventKind::Command, "cargo test", 2, true)
    );
    let failed = json!({"turn": 3, "event": {"type": "item.completed", "item": {"type": "command_execution", "command": "make", "exit_code": 2}}});
    assert_eq!(last_event(&[failed]).unwrap().text, "make → exit 2");
    let err = json!({"turn": 3, "event": {"type": "turn.failed", "error": {"message": "stream disconnected\nmore"}}});
    let e = last_event(&[err]).unwrap();
    assert_eq!(
        (e.kind, e.text.as_str()),
        (EventKind::Error, "stream disconnected")
    );
    let reply = json!({"turn": 3, "event": {"type": "item.completed", "item": {"type": "agent_message", "text": "\nAll done.\nDetails"}}});
    assert_eq!(last_event(&[reply]).unwrap().text, "All done.");
    assert_eq!(last_event(&[]), None);
}

#[test]
fn claude_events_give_the_running_tool_or_the_last_reply() {
    let wrap = |turn: u32, ev: Value| json!({"turn": turn, "event": ev});
    let tool = wrap(
        1,
        json!({"type": "assistant", "message": {"content": [
            {"type": "tool_use", "id": "tu1", "name": "Bash", "input": {"command": "cargo build"}}
        ]}}),
    );
    let e = last_event(std::slice::from_ref(&tool)).unwrap();
    assert_eq!(
        (e.kind, e.text.as_str(), e.running),
        (EventKind::Command, "cargo build", true)
    );
    let result = wrap(
        1,
        json!({"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "tu1", "is_error": true}
        ]}}),
    );
    let e = last_event(&[tool.clone(), result.clone()]).unwrap();
    assert_eq!(
        (e.kind, e.text.as_str(), e.running),
        (EventKind::Command, "cargo build → failed", false)
    );
    let reply = wrap(
        2,
        json!({"type": "assistant", "message": {"content": [{"type": "text", "text": "Built."}]}}),
    );
    let e = last_event(&[tool, result, reply]).unwrap();
    assert_eq!(
        (e.kind, e.text.as_str(), e.turn),
        (EventKind::Reply, "Built.", 2)
    );
}

#[test]
fn cached_share_and_cost_add_up() {
    let mut t = Tokens::default();
    assert_eq!(t.cached_share(), None);
    let rec: OutboxRecord = serde_json::from_value(json!({
        "seq": 1, "ts": "x", "in_reply_to": 1, "role": "assistant", "text": "hi",
        "usage": {"input_tokens": 1000, "cached_input_tokens": 750, "output_tokens": 10},
        "cost_usd": 0.25
    }))
    .unwrap();
    t.add_record(&rec);
    t.add_record(&rec);
    assert_eq!(t.total(), 2020);
    assert_eq!(t.cached_share(), Some(0.75));
    assert_eq!(t.cost_usd, Some(0.5));
}

#[test]
fn transcript_interleaves_messages_replies_and_live_activity() {
    let msg = |seq, sender: &str, kind: &str, text: &str| conversation::InboxMessage {
        seq,
        ts: String::new(),
        sender: sender.into(),
        kind: kind.into(),
        text: text.into(),
    };
    let inbox = vec![
        msg(1, "wg", "brief", "# Task t"),
        msg(2, "user", "message", "use the lexer"),
        msg(3, "user", "message", "and add tests"),
    ];
    let outbox: Vec<OutboxRecord> = vec![serde_json::from_value(json!({
        "seq": 1, "ts": "x", "in_reply_to": 2, "role": "assistant", "text": "ok, done"
    }))
    .unwrap()];
    let events = vec![
        json!({"turn": 1, "event": {"type": "item.completed", "item": {"type": "command_execution", "command": "old", "exit_code": 0}}}),
        json!({"turn": 2, "event": {"type": "item.started", "item": {"type": "command_execution", "command": "cargo test"}}}),
    ];
    let lines = merge_transcript(&inbox, &outbox, &events);
    let got: Vec<(Speaker, &str, &str)> = lines
        .iter()
        .map(|l| (l.speaker, l.who.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Speaker::To, "wg (brief)", "# Task t"),
            (Speaker::To, "user", "use the lexer"),
            (Speaker::Agent, "agent", "ok, done"),
            (Speaker::To, "user", "and add tests"),
            (Speaker::Activity, "$", "cargo test"),
        ]
    );
}
