//! The stubs every test talks to: the Responses API (codex), Chat Completions (the bridge)
//! and Anthropic Messages (claude), and responders that script an agent's tool call.

use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const KEY: &str = "sk-wg-test-9f8e7d6c5b4a";

/// The minimal SSE codex 0.169 accepts: the complete item, then response.completed.
pub fn sse(items: &[Value]) -> String {
    let mut s = String::new();
    for (i, item) in items.iter().enumerate() {
        let ev = json!({"type": "response.output_item.done", "output_index": i, "item": item});
        s.push_str(&format!("event: response.output_item.done\ndata: {ev}\n\n"));
    }
    let done = json!({"type": "response.completed", "response": {"id": "resp_1", "object": "response",
        "status": "completed", "output": items,
        "usage": {"input_tokens": 42, "input_tokens_details": {"cached_tokens": 3},
                  "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 49}}});
    s.push_str(&format!("event: response.completed\ndata: {done}\n\n"));
    s
}

pub fn message(text: &str) -> Value {
    json!({"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

pub fn sse_response(items: &[Value]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(sse(items), "text/event-stream")
}

/// A wiremock stub of the Responses API that answers every `POST /v1/responses` with `answer`.
pub async fn responses_stub(answer: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// The stub's base URL as a project's `endpoint.url`.
pub fn v1(server: &MockServer) -> String {
    format!("{}/v1", server.uri())
}

/// First request: run a command; the follow-up (carrying its output): a final message.
pub struct ResponsesTool(pub String);

impl Respond for ResponsesTool {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if String::from_utf8_lossy(&r.body).contains("function_call_output") {
            return sse_response(&[message("finished the task")]);
        }
        let args = json!({"cmd": self.0}).to_string();
        sse_response(&[
            json!({"type": "function_call", "status": "completed", "id": "fc_1",
            "name": "exec_command", "arguments": args, "call_id": "call_1"}),
        ])
    }
}

pub fn chat_sse(chunks: &[Value]) -> ResponseTemplate {
    let mut s = String::new();
    for c in chunks {
        s.push_str(&format!("data: {c}\n\n"));
    }
    s.push_str("data: [DONE]\n\n");
    ResponseTemplate::new(200).set_body_raw(s, "text/event-stream")
}

pub fn chat_text(t: &str) -> ResponseTemplate {
    chat_sse(&[
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": t}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 30, "completion_tokens": 5}}),
    ])
}

/// First call: a streamed tool call running the command; then a closing message.
pub struct ChatTool(pub String);

impl Respond for ChatTool {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        if body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool")
        {
            return chat_text("all done");
        }
        let args = json!({ "cmd": self.0 }).to_string();
        let (a, b) = args.split_at(args.len() / 2);
        chat_sse(&[
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "exec_command", "arguments": a}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": b}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ])
    }
}

/// The Messages SSE for `blocks` (text or tool_use), ending with `stop`.
pub fn anthropic_sse(blocks: &[Value], stop: &str) -> String {
    let mut s = String::new();
    let mut ev = |t: &str, d: Value| s.push_str(&format!("event: {t}\ndata: {d}\n\n"));
    ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "model": "qwen3-coder", "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 40, "output_tokens": 1}}}),
    );
    for (i, b) in blocks.iter().enumerate() {
        if b["type"] == "text" {
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}),
            );
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": b["text"]}}),
            );
        } else {
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}}),
            );
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": b["input"].to_string()}}),
            );
        }
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        );
    }
    ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 6}}),
    );
    ev("message_stop", json!({"type": "message_stop"}));
    s
}

pub fn text_response(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        anthropic_sse(&[json!({"type": "text", "text": text})], "end_turn"),
        "text/event-stream",
    )
}

/// The Messages endpoint, path and query string as the CLI sends them.
pub fn messages() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(query_param("beta", "true"))
}

/// First request: a Bash tool call; the follow-up (carrying its result): a final message.
pub struct ClaudeTool(pub String);

impl Respond for ClaudeTool {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if String::from_utf8_lossy(&r.body).contains("\"tool_result\"") {
            return text_response("finished the task");
        }
        let b = anthropic_sse(
            &[json!({"type": "tool_use", "id": "toolu_1", "name": "Bash",
                     "input": {"command": self.0, "description": "finish"}})],
            "tool_use",
        );
        ResponseTemplate::new(200).set_body_raw(b, "text/event-stream")
    }
}

/// Asks codex to run `wg done $WG_TASK_ID`, then answers the follow-up with a message.
pub struct Finisher;

impl Respond for Finisher {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if String::from_utf8_lossy(&r.body).contains("function_call_output") {
            return sse_response(&[message("reported done")]);
        }
        let args =
            json!({"cmd": "wg log \"$WG_TASK_ID\" 'working on it' && wg done \"$WG_TASK_ID\""})
                .to_string();
        sse_response(&[
            json!({"type": "function_call", "status": "completed", "id": "fc_1",
            "name": "exec_command", "arguments": args, "call_id": "call_1"}),
        ])
    }
}
