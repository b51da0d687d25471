//! Translation tests, driven by shapes recorded from codex 0.169.0 and a Chat Completions server
//! (tests/fixtures/bridge, copied from the reference captures).

use super::*;

fn recorded(name: &str) -> Value {
    let text = match name {
        "first" => include_str!("../../../tests/fixtures/bridge/request-responses.json"),
        "followup" => {
            include_str!("../../../tests/fixtures/bridge/request-responses-tool-followup.json")
        }
        _ => unreachable!(),
    };
    let v: Value = serde_json::from_str(text).unwrap();
    v["body"].clone()
}

fn chat_chunks(sse: &str) -> Vec<Value> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn run(chunks: &[Value], tools: ToolInfo) -> (Vec<Value>, Vec<String>) {
    let mut t = StreamTranslator::new("resp_1", "qwen3-coder", 1, tools);
    let mut events = t.start();
    for c in chunks {
        events.extend(t.push_chunk(c));
    }
    events.extend(t.finish());
    (events, t.take_warnings())
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn done_items(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| &e["item"])
        .collect()
}

fn last(events: &[Value]) -> &Value {
    events.last().unwrap()
}

fn chunk(delta: Value) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
}

fn finish_chunk(reason: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

// ---- request ---------------------------------------------------------------------------------

#[test]
fn first_request_becomes_one_system_message_then_users() {
    let req = recorded("first");
    let out = request_to_chat(&req).unwrap();
    let b = &out.body;
    assert_eq!(b["model"], "qwen3-coder");
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    let msgs = b["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "user"]);
    let system = msgs[0]["content"].as_str().unwrap();
    assert!(system.starts_with("You are a coding agent running in the Codex CLI"));
    // The second developer message's two parts follow the base prompt, in order.
    let skills = system.find("<skills_instructions>").unwrap();
    let perms = system.find("<permissions instructions>").unwrap();
    assert!(skills < perms);
    assert!(msgs[1]["content"]
        .as_str()
        .unwrap()
        .starts_with("<environment_context>"));
    assert_eq!(msgs[2]["content"], "say hi");
}

#[test]
fn function_tools_pass_with_their_schemas() {
    let out = request_to_chat(&recorded("first")).unwrap();
    let tools = out.body["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["exec_command", "write_stdin", "request_user_input"]);
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(
        tools[0]["function"]["parameters"]["required"],
        json!(["cmd"])
    );
    assert!(tools[0]["function"].get("strict").is_none());
    assert_eq!(out.body["tool_choice"], "auto");
    assert_eq!(out.body["parallel_tool_calls"], true);
    assert!(out.tools.schemas.contains_key("exec_command"));
}

#[test]
fn openai_only_fields_are_dropped_with_one_warning() {
    let out = request_to_chat(&recorded("first")).unwrap();
    for key in [
        "include",
        "store",
        "client_metadata",
        "reasoning",
        "prompt_cache_key",
        "input",
    ] {
        assert!(out.body.get(key).is_none(), "{key} leaked");
    }
    let w: Vec<&String> = out
        .warnings
        .iter()
        .filter(|w| w.contains("OpenAI-only"))
        .collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("include, store, client_metadata, reasoning, prompt_cache_key"));
}

#[test]
fn followup_carries_assistant_tool_calls_and_tool_output() {
    let out = request_to_chat(&recorded("followup")).unwrap();
    let msgs = out.body["messages"].as_array().unwrap();
    let n = msgs.len();
    assert_eq!(msgs[n - 2]["role"], "assistant");
    assert_eq!(msgs[n - 2]["content"], Value::Null);
    let call = &msgs[n - 2]["tool_calls"][0];
    assert_eq!(call["id"], "call_d6287c604a53");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "exec_command");
    assert_eq!(
        call["function"]["arguments"],
        "{\"cmd\": \"echo tool-ran > stub_tool_output.txt && echo done\"}"
    );
    assert_eq!(msgs[n - 1]["role"], "tool");
    assert_eq!(msgs[n - 1]["tool_call_id"], "call_d6287c604a53");
    assert!(msgs[n - 1]["content"]
        .as_str()
        .unwrap()
        .contains("Process exited with code 0"));
}

#[test]
fn non_function_tools_and_reasoning_items_are_dropped_with_warnings() {
    let req = json!({
        "model": "m",
        "instructions": "base",
        "input": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xxx"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": "data:..."}]},
        ],
        "tools": [
            {"type": "web_search"},
            {"type": "namespace", "name": "multi_agent_v1"},
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
        ],
        "tool_choice": {"type": "function", "name": "exec_command"},
        "max_output_tokens": 100,
        "temperature": 0.2,
    });
    let out = request_to_chat(&req).unwrap();
    let b = &out.body;
    assert_eq!(
        b["messages"][0],
        json!({"role": "system", "content": "base"})
    );
    assert_eq!(b["messages"][1], json!({"role": "user", "content": "hi"}));
    assert_eq!(b["tools"].as_array().unwrap().len(), 1);
    assert_eq!(
        b["tool_choice"],
        json!({"type": "function", "function": {"name": "exec_command"}})
    );
    assert_eq!(b["max_tokens"], 100);
    assert_eq!(b["temperature"], 0.2);
    let all = out.warnings.join("\n");
    assert!(all.contains("web_search"), "{all}");
    assert!(all.contains("namespace `multi_agent_v1`"), "{all}");
    assert!(all.contains("1 reasoning"), "{all}");
    assert!(all.contains("1 non-text content part"), "{all}");
}

#[test]
fn no_tools_left_means_no_tool_choice() {
    let req = json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}],
        "tool_choice": "auto", "parallel_tool_calls": true});
    let out = request_to_chat(&req).unwrap();
    assert!(out.body.get("tools").is_none());
    assert!(out.body.get("tool_choice").is_none());
    assert!(out.body.get("parallel_tool_calls").is_none());
    assert_eq!(
        out.body["messages"],
        json!([{"role": "user", "content": "hi"}])
    );
}

#[test]
fn text_then_parallel_calls_are_one_assistant_turn() {
    let req = json!({"model": "m", "input": [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "let me look"}]},
        {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "g", "arguments": "{\"x\":1}"},
        {"type": "function_call_output", "call_id": "a", "output": "A"},
        {"type": "function_call_output", "call_id": "b", "output": [{"type": "input_text", "text": "B"}]},
    ]});
    let msgs = request_to_chat(&req).unwrap().body["messages"].clone();
    assert_eq!(msgs.as_array().unwrap().len(), 3);
    assert_eq!(msgs[0]["content"], "let me look");
    assert_eq!(msgs[0]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(
        msgs[0]["tool_calls"][1]["function"]["arguments"],
        "{\"x\":1}"
    );
    assert_eq!(
        msgs[2],
        json!({"role": "tool", "tool_call_id": "b", "content": "B"})
    );
}

#[test]
fn custom_tools_become_functions_with_an_input_string() {
    let req = json!({"model": "m", "input": [
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
    ], "tools": [{"type": "custom", "name": "apply_patch", "description": "patch",
        "format": {"type": "grammar", "syntax": "lark", "definition": "..."}}]});
    let out = request_to_chat(&req).unwrap();
    assert!(out.tools.custom.contains("apply_patch"));
    assert_eq!(
        out.body["tools"][0]["function"]["parameters"]["required"],
        json!(["input"])
    );
    let args = out.body["messages"][0]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"input": "*** Begin Patch"})
    );
}

#[test]
fn json_schema_text_format_becomes_response_format() {
    let req = json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema",
        "name": "out", "schema": {"type": "object"}, "strict": true}}});
    let out = request_to_chat(&req).unwrap();
    assert_eq!(
        out.body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}})
    );
}

#[test]
fn bad_requests_are_errors() {
    assert_eq!(
        request_to_chat(&json!([])).unwrap_err(),
        TranslateError::NotAnObject
    );
    assert_eq!(
        request_to_chat(&json!({"input": "x"})).unwrap_err(),
        TranslateError::NoModel
    );
    assert_eq!(
        request_to_chat(&json!({"model": "m", "input": 3})).unwrap_err(),
        TranslateError::BadInput
    );
}

// ---- answer ----------------------------------------------------------------------------------

#[test]
fn recorded_chat_stream_becomes_the_events_codex_accepted() {
    let chunks = chat_chunks(include_str!(
        "../../../tests/fixtures/bridge/sse-chat-ok.txt"
    ));
    let (events, warnings) = run(&chunks, ToolInfo::default());
    assert!(warnings.is_empty());
    // Same event sequence as the Responses stream codex accepted.
    let accepted: Vec<String> = include_str!("../../../tests/fixtures/bridge/sse-responses-ok.txt")
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_string)
        .collect();
    assert_eq!(types(&events), accepted);
    let items = done_items(&events);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["type"], "message");
    assert_eq!(items[0]["role"], "assistant");
    assert_eq!(items[0]["content"][0]["type"], "output_text");
    assert_eq!(items[0]["content"][0]["text"], "hi from the stub");
    let done = last(&events);
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(done["response"]["id"], "resp_1");
    assert_eq!(done["response"]["usage"]["input_tokens"], 42);
    assert_eq!(done["response"]["usage"]["output_tokens"], 7);
    assert_eq!(
        done["response"]["usage"]["input_tokens_details"]["cached_tokens"],
        0
    );
    assert_eq!(done["response"]["output"][0], *items[0]);
    // Sequence numbers count up from 0.
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64);
    }
}

#[test]
fn tool_call_deltas_are_assembled_by_index() {
    let chunks = vec![
        chunk(json!({"role": "assistant", "content": null})),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_A", "type": "function",
            "function": {"name": "exec_command", "arguments": ""}}]}),
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"cmd\": "}}]})),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_B", "type": "function",
            "function": {"name": "write_stdin", "arguments": "{}"}}]}),
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"echo hi\"}"}}]})),
        finish_chunk("tool_calls"),
        json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 8}}}),
    ];
    let (events, _) = run(&chunks, ToolInfo::default());
    let items = done_items(&events);
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["type"], "function_call");
    assert_eq!(items[0]["call_id"], "call_A");
    assert_eq!(items[0]["name"], "exec_command");
    assert_eq!(items[0]["arguments"], "{\"cmd\": \"echo hi\"}");
    assert_eq!(items[1]["call_id"], "call_B");
    let done = last(&events);
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        done["response"]["usage"]["input_tokens_details"]["cached_tokens"],
        8
    );
    assert_eq!(done["response"]["usage"]["total_tokens"], 13);
}

#[test]
fn length_finish_is_incomplete() {
    let (events, _) = run(
        &[chunk(json!({"content": "partial"})), finish_chunk("length")],
        ToolInfo::default(),
    );
    let done = last(&events);
    assert_eq!(done["type"], "response.incomplete");
    assert_eq!(
        done["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(done_items(&events)[0]["content"][0]["text"], "partial");
}

#[test]
fn error_inside_the_stream_fails_the_response() {
    let (events, _) = run(
        &[
            chunk(json!({"content": "a"})),
            json!({"error": {"message": "model crashed", "code": 500}}),
        ],
        ToolInfo::default(),
    );
    let done = last(&events);
    assert_eq!(done["type"], "response.failed");
    assert_eq!(done["response"]["error"]["message"], "model crashed");
}

#[test]
fn hermes_tool_call_text_split_across_chunks_becomes_a_call() {
    let chunks = vec![
        chunk(json!({"content": "I'll run it.\n<tool"})),
        chunk(json!({"content": "_call>\n{\"name\": \"exec_command\", "})),
        chunk(json!({"content": "\"arguments\": {\"cmd\": \"ls\"}}\n</tool_call>"})),
        finish_chunk("stop"),
    ];
    let (events, warnings) = run(&chunks, ToolInfo::default());
    let items = done_items(&events);
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["content"][0]["text"], "I'll run it.\n");
    assert_eq!(items[1]["type"], "function_call");
    assert_eq!(items[1]["name"], "exec_command");
    assert_eq!(items[1]["arguments"], "{\"cmd\":\"ls\"}");
    assert!(items[1]["call_id"].as_str().unwrap().starts_with("call_"));
    // No delta ever showed the tag.
    for e in &events {
        if e["type"] == "response.output_text.delta" {
            assert!(!e["delta"].as_str().unwrap().contains('<'), "{e}");
        }
    }
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("exec_command"));
}

#[test]
fn qwen_coder_xml_tool_call_uses_the_schema_types() {
    let mut tools = ToolInfo::default();
    tools.schemas.insert(
        "exec_command".into(),
        json!({"type": "object", "properties": {"cmd": {"type": "string"},
            "yield_time_ms": {"type": "number"}}}),
    );
    let text = "<tool_call>\n<function=exec_command>\n<parameter=cmd>\necho 1\n</parameter>\n<parameter=yield_time_ms>\n500\n</parameter>\n</function>\n</tool_call>";
    let (events, _) = run(&[chunk(json!({"content": text}))], tools);
    let items = done_items(&events);
    assert_eq!(items.len(), 1, "{events:?}");
    let args: Value = serde_json::from_str(items[0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"cmd": "echo 1", "yield_time_ms": 500}));
}

#[test]
fn unparseable_tool_call_text_stays_text() {
    let (events, warnings) = run(
        &[chunk(
            json!({"content": "x <tool_call>nonsense</tool_call> y"}),
        )],
        ToolInfo::default(),
    );
    let items = done_items(&events);
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["content"][0]["text"],
        "x <tool_call>nonsense</tool_call> y"
    );
    assert!(warnings[0].contains("could not be parsed"));
}

#[test]
fn a_lone_angle_bracket_is_not_held_back_at_the_end() {
    let (events, _) = run(&[chunk(json!({"content": "a <"}))], ToolInfo::default());
    assert_eq!(done_items(&events)[0]["content"][0]["text"], "a <");
}

#[test]
fn custom_tool_calls_come_back_as_custom_items() {
    let mut tools = ToolInfo::default();
    tools.custom.insert("apply_patch".into());
    let chunks = vec![chunk(
        json!({"tool_calls": [{"index": 0, "id": "c", "function": {
        "name": "apply_patch", "arguments": "{\"input\": \"*** Begin Patch\\n\"}"}}]}),
    )];
    let (events, _) = run(&chunks, tools);
    let item = done_items(&events)[0];
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(item["input"], "*** Begin Patch\n");
}

#[test]
fn reasoning_content_becomes_a_reasoning_item_first() {
    let chunks = vec![
        chunk(json!({"reasoning_content": "think "})),
        chunk(json!({"reasoning_content": "more"})),
        chunk(json!({"content": "answer"})),
    ];
    let (events, _) = run(&chunks, ToolInfo::default());
    let items = done_items(&events);
    assert_eq!(items[0]["type"], "reasoning");
    assert_eq!(items[0]["summary"][0]["text"], "think more");
    assert_eq!(items[1]["type"], "message");
}

#[test]
fn non_streamed_completion_gives_the_same_items() {
    let completion = json!({
        "id": "chatcmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "ok",
            "tool_calls": [{"id": "call_9", "type": "function",
                "function": {"name": "exec_command", "arguments": "{\"cmd\":\"pwd\"}"}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    });
    let mut t = StreamTranslator::new("resp_2", "m", 1, ToolInfo::default());
    let mut events = t.start();
    events.extend(t.push_completion(&completion));
    events.extend(t.finish());
    let items = done_items(&events);
    assert_eq!(items[0]["content"][0]["text"], "ok");
    assert_eq!(items[1]["call_id"], "call_9");
    assert_eq!(last(&events)["response"]["usage"]["input_tokens"], 5);
}

#[test]
fn empty_answer_completes_with_no_items() {
    let (events, _) = run(&[finish_chunk("stop")], ToolInfo::default());
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.completed"
        ]
    );
}

#[test]
fn sse_frames_and_error_messages() {
    let e = json!({"type": "response.completed", "response": {}});
    assert_eq!(
        sse_frame(&e),
        format!("event: response.completed\ndata: {e}\n\n")
    );
    assert_eq!(
        error_message(r#"{"error":{"message":"Incorrect API key provided"}}"#),
        "Incorrect API key provided"
    );
    assert_eq!(error_message(r#"{"detail":"Not Found"}"#), "Not Found");
    assert_eq!(error_message(r#"{"error":"boom"}"#), "boom");
    assert_eq!(error_message("plain text\n"), "plain text");
    assert_eq!(error_message(""), "(empty body)");
}
