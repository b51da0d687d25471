use serde_json::{json, Value};

use super::*;

fn lines(sample: &str) -> Vec<Value> {
    sample
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

const CODEX_TOOL: &str = include_str!("../../tests/fixtures/codex-events/events-tool.jsonl");
const CLAUDE_TOOL: &str = include_str!("../../tests/fixtures/claude-events/events-tool.jsonl");

#[test]
fn a_codex_tool_turn_folds_into_start_end_reply_and_usage() {
    let events = fold_all(Dialect::Codex, &lines(CODEX_TOOL));
    assert!(matches!(&events[0], AgentEvent::Session(id) if !id.is_empty()));
    assert!(matches!(&events[1], AgentEvent::Warning(w) if w.contains("Model metadata")));
    assert_eq!(events[2], AgentEvent::TurnStarted);
    let AgentEvent::CommandStarted { id, shown, shell } = &events[3] else {
        panic!("{:?}", events[3])
    };
    assert!(*shell && shown.contains("echo tool-ran"));
    let AgentEvent::ToolEnded(run) = &events[4] else {
        panic!("{:?}", events[4])
    };
    assert_eq!((&run.id, run.exit_code, run.failed), (id, Some(0), false));
    assert_eq!(events[5], AgentEvent::Reply("done running it".into()));
    let AgentEvent::Completed {
        usage: Some(u),
        reply: None,
    } = &events[6]
    else {
        panic!("{:?}", events[6])
    };
    assert_eq!((u.input_tokens, u.output_tokens), (84, 14));
    assert!(open_commands(&events).is_empty());
}

#[test]
fn a_claude_tool_call_is_paired_with_its_result_across_events() {
    let events = fold_all(Dialect::Claude, &lines(CLAUDE_TOOL));
    let started = events
        .iter()
        .position(|e| matches!(e, AgentEvent::CommandStarted { shell: true, .. }))
        .expect("the Bash call");
    let ended = events
        .iter()
        .position(
            |e| matches!(e, AgentEvent::ToolEnded(r) if r.name == "Bash" && r.exit_code == Some(0)),
        )
        .expect("its result");
    assert!(started < ended);
    assert!(matches!(
        events.last(),
        Some(AgentEvent::Completed {
            reply: Some(_),
            usage: Some(_)
        })
    ));
}

#[test]
fn claude_file_tools_are_file_changes_and_a_failed_bash_keeps_its_exit_code() {
    let raw = [
        json!({"type":"assistant","message":{"content":[
            {"type":"tool_use","id":"t1","name":"Bash","input":{"command":"make"}},
            {"type":"tool_use","id":"t2","name":"Write","input":{"file_path":"/p/x.rs"}}]}}),
        json!({"type":"user","message":{"content":[
            {"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"Exit code 2\nmake: *** no rule"},
            {"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"ok"}]}]}}),
    ];
    let mut fold = Fold::new(Dialect::Claude);
    fold.push(&raw[0]);
    assert_eq!(fold.pending().len(), 2);
    let out = fold.push(&raw[1]);
    assert!(fold.pending().is_empty());
    let AgentEvent::ToolEnded(make) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((make.exit_code, make.failed), (Some(2), true));
    assert!(make.output.contains("no rule"));
    assert_eq!(
        out[1],
        AgentEvent::FilesChanged(vec![("/p/x.rs".into(), "write".into())])
    );
    assert!(
        matches!(&out[2], AgentEvent::ToolEnded(w) if w.name == "Write" && w.exit_code.is_none())
    );
}

#[test]
fn unknown_and_malformed_events_give_nothing_and_unknown_items_their_name() {
    let mut fold = Fold::new(Dialect::Codex);
    assert!(fold.push(&json!({"type":"something.new","x":1})).is_empty());
    assert!(fold.push(&json!({"type":"item.completed"})).is_empty());
    assert!(fold.push(&json!([1, 2])).is_empty());
    assert_eq!(
        fold.push(&json!({"type":"item.completed","item":{"type":"todo_list","items":[]}})),
        vec![AgentEvent::OtherItem("todo_list".into())]
    );
    let mut claude = Fold::new(Dialect::Claude);
    assert!(claude.push(&json!({"type":"stream_event"})).is_empty());
    assert!(claude
        .push(&json!({"type":"user","message":{"content":"text"}}))
        .is_empty());
}

#[test]
fn an_api_error_in_claude_text_is_not_a_reply_and_a_failed_result_keeps_status_and_usage() {
    let mut fold = Fold::new(Dialect::Claude);
    let err = json!({"type":"assistant","error":"authentication_failed",
        "message":{"content":[{"type":"text","text":"API Error: 401"}]}});
    assert!(fold.push(&err).is_empty());
    let result = json!({"type":"result","is_error":true,"result":"API Error: 401","api_error_status":401,
        "usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":0}});
    let AgentEvent::Failed {
        message,
        status,
        usage: Some(u),
    } = &fold.push(&result)[0]
    else {
        panic!()
    };
    assert_eq!((message.as_str(), *status), ("API Error: 401", Some(401)));
    assert_eq!((u.input_tokens, u.cached_input_tokens), (15, 5));
}

#[test]
fn a_command_without_its_end_is_open() {
    let raw = [
        json!({"type":"item.started","item":{"id":"a","type":"command_execution","command":"make"}}),
        json!({"type":"item.started","item":{"id":"b","type":"command_execution","command":"sleep 9"}}),
        json!({"type":"item.completed","item":{"id":"a","type":"command_execution","command":"make","exit_code":0}}),
    ];
    let events = fold_all(Dialect::Codex, &raw);
    assert_eq!(open_commands(&events), vec![("b".into(), "sleep 9".into())]);
}
