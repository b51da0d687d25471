//! Answer: chat chunks (or one non-streamed completion) become Responses events.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::tool_text::{parse_tool_call_text, Piece, TagSplitter, CLOSE_TAG, OPEN_TAG};
use super::{map_usage, ToolInfo};

#[derive(Debug, Default)]
struct ToolAcc {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug)]
struct OpenText {
    id: String,
    output_index: usize,
    text: String,
}

/// Chat chunks in, Responses events out. Items are numbered in the order they open.
#[derive(Debug)]
pub struct StreamTranslator {
    response_id: String,
    model: String,
    created_at: u64,
    tools: ToolInfo,
    seq: u64,
    next_index: usize,
    item_counter: usize,
    reasoning: Option<OpenText>,
    text: Option<OpenText>,
    splitter: TagSplitter,
    tool_calls: BTreeMap<u64, ToolAcc>,
    /// Calls parsed out of `<tool_call>` text, in order.
    text_calls: Vec<(String, String)>,
    output: Vec<Value>,
    usage: Option<Value>,
    finish_reason: Option<String>,
    warnings: Vec<String>,
    failed: Option<String>,
    done: bool,
}

impl StreamTranslator {
    /// `response_id` seeds every item id, so output is deterministic for a given id.
    pub fn new(response_id: &str, model: &str, created_at: u64, tools: ToolInfo) -> Self {
        StreamTranslator {
            response_id: response_id.to_string(),
            model: model.to_string(),
            created_at,
            tools,
            seq: 0,
            next_index: 0,
            item_counter: 0,
            reasoning: None,
            text: None,
            splitter: TagSplitter::default(),
            tool_calls: BTreeMap::new(),
            text_calls: Vec::new(),
            output: Vec::new(),
            usage: None,
            finish_reason: None,
            warnings: Vec::new(),
            failed: None,
            done: false,
        }
    }

    /// Warnings gathered so far (converted `<tool_call>` text, unparseable chunks); drained.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The error the upstream reported inside its stream, if any.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn event(&mut self, kind: &str, mut fields: Map<String, Value>) -> Value {
        fields.insert("type".into(), Value::String(kind.to_string()));
        fields.insert("sequence_number".into(), Value::from(self.seq));
        self.seq += 1;
        Value::Object(fields)
    }

    fn response_obj(&self, status: &str) -> Value {
        let mut r = json!({
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "model": self.model,
            "output": self.output,
            "status": status,
        });
        if let Some(u) = &self.usage {
            r["usage"] = u.clone();
        }
        r
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.item_counter += 1;
        format!("{prefix}_{}_{}", self.response_id, self.item_counter)
    }

    /// The opening events: `response.created` and `response.in_progress`.
    pub fn start(&mut self) -> Vec<Value> {
        let created = self.response_obj("in_progress");
        let in_progress = created.clone();
        vec![
            self.event("response.created", obj(json!({"response": created}))),
            self.event(
                "response.in_progress",
                obj(json!({"response": in_progress})),
            ),
        ]
    }

    /// One parsed `data:` payload of a chat stream.
    pub fn push_chunk(&mut self, chunk: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if let Some(err) = chunk.get("error") {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            self.failed = Some(message);
            return out;
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(map_usage(u));
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return out;
        };
        let delta = choice.get("delta").or_else(|| choice.get("message"));
        if let Some(delta) = delta {
            let reasoning = delta
                .get("reasoning_content")
                .or_else(|| delta.get("reasoning"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            if let Some(r) = reasoning {
                self.push_reasoning(r);
            }
            if let Some(text) = delta
                .get("content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                self.close_reasoning(&mut out);
                let pieces = self.splitter.feed(text);
                self.apply_pieces(pieces, &mut out);
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                self.close_reasoning(&mut out);
                for (pos, call) in calls.iter().enumerate() {
                    // Some servers leave out `index` when they send each call whole.
                    let index = call
                        .get("index")
                        .and_then(Value::as_u64)
                        .unwrap_or(self.tool_calls.len() as u64 + pos as u64);
                    let acc = self.tool_calls.entry(index).or_default();
                    if let Some(id) = call.get("id").and_then(Value::as_str) {
                        if acc.id.is_empty() {
                            acc.id = id.to_string();
                        }
                    }
                    if let Some(f) = call.get("function") {
                        if let Some(n) = f.get("name").and_then(Value::as_str) {
                            if acc.name.is_empty() {
                                acc.name = n.to_string();
                            }
                        }
                        match f.get("arguments") {
                            Some(Value::String(a)) => acc.arguments.push_str(a),
                            Some(Value::Object(_)) => {
                                acc.arguments.push_str(&f["arguments"].to_string())
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        out
    }

    /// A whole non-streamed `chat.completion`: run through the same machine as one chunk.
    pub fn push_completion(&mut self, completion: &Value) -> Vec<Value> {
        let mut chunk = completion.clone();
        if let Some(choice) = chunk.pointer_mut("/choices/0") {
            if let Some(calls) = choice
                .pointer_mut("/message/tool_calls")
                .and_then(Value::as_array_mut)
            {
                for (i, c) in calls.iter_mut().enumerate() {
                    if c.get("index").is_none() {
                        c["index"] = Value::from(i);
                    }
                }
            }
        }
        self.push_chunk(&chunk)
    }

    fn push_reasoning(&mut self, delta: &str) {
        if self.reasoning.is_none() {
            let id = self.new_id("rs");
            let output_index = self.next_index;
            self.next_index += 1;
            self.reasoning = Some(OpenText {
                id,
                output_index,
                text: String::new(),
            });
        }
        if let Some(r) = self.reasoning.as_mut() {
            r.text.push_str(delta);
        }
    }

    /// Reasoning is sent as one complete item (codex shows it as a `reasoning` item); codex
    /// needs no deltas for it.
    fn close_reasoning(&mut self, out: &mut Vec<Value>) {
        if let Some(r) = self.reasoning.take() {
            let item = json!({
                "id": r.id,
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": r.text}],
            });
            out.push(self.event(
                "response.output_item.added",
                obj(json!({"output_index": r.output_index, "item": item})),
            ));
            out.push(self.event(
                "response.output_item.done",
                obj(json!({"output_index": r.output_index, "item": item})),
            ));
            self.output.push(item);
        }
    }

    fn apply_pieces(&mut self, pieces: Vec<Piece>, out: &mut Vec<Value>) {
        for piece in pieces {
            match piece {
                Piece::Text(t) => self.push_text(&t, out),
                Piece::Call(inner) => match parse_tool_call_text(&inner, &self.tools.schemas) {
                    Some((name, args)) => {
                        self.warnings.push(format!(
                            "converted a <tool_call> block in the model's text into a call to `{name}` (is the server's tool-call parser off?)"
                        ));
                        self.text_calls.push((name, args));
                    }
                    None => {
                        self.warnings.push(
                            "a <tool_call> block in the model's text could not be parsed; passed on as text"
                                .into(),
                        );
                        self.push_text(&format!("{OPEN_TAG}{inner}{CLOSE_TAG}"), out);
                    }
                },
            }
        }
    }

    fn push_text(&mut self, text: &str, out: &mut Vec<Value>) {
        if text.is_empty() {
            return;
        }
        if self.text.is_none() {
            let id = self.new_id("msg");
            let output_index = self.next_index;
            self.next_index += 1;
            out.push(self.event(
                "response.output_item.added",
                obj(json!({"output_index": output_index, "item": {
                    "id": id, "type": "message", "status": "in_progress",
                    "role": "assistant", "content": [],
                }})),
            ));
            out.push(self.event(
                "response.content_part.added",
                obj(
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []}}),
                ),
            ));
            self.text = Some(OpenText {
                id,
                output_index,
                text: String::new(),
            });
        }
        let (id, index) = match self.text.as_mut() {
            Some(t) => {
                t.text.push_str(text);
                (t.id.clone(), t.output_index)
            }
            None => return,
        };
        out.push(self.event(
            "response.output_text.delta",
            obj(json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text})),
        ));
    }

    /// Codex only takes an item from `output_item.done` carrying the complete item; deltas alone
    /// are lost, so the message is always closed with its full text.
    fn close_text(&mut self, out: &mut Vec<Value>) {
        if let Some(t) = self.text.take() {
            let part = json!({"type": "output_text", "text": t.text, "annotations": []});
            out.push(self.event(
                "response.output_text.done",
                obj(json!({"item_id": t.id, "output_index": t.output_index, "content_index": 0, "text": t.text})),
            ));
            out.push(self.event(
                "response.content_part.done",
                obj(json!({"item_id": t.id, "output_index": t.output_index, "content_index": 0, "part": part})),
            ));
            let item = json!({
                "id": t.id, "type": "message", "status": "completed",
                "role": "assistant", "content": [part],
            });
            out.push(self.event(
                "response.output_item.done",
                obj(json!({"output_index": t.output_index, "item": item})),
            ));
            self.output.push(item);
        }
    }

    fn emit_call(
        &mut self,
        call_id: String,
        name: String,
        arguments: String,
        out: &mut Vec<Value>,
    ) {
        let output_index = self.next_index;
        self.next_index += 1;
        let arguments = if arguments.trim().is_empty() {
            "{}".to_string()
        } else {
            arguments
        };
        let item = if self.tools.custom.contains(&name) {
            // Codex registered this tool as freeform: give it the raw `input` back.
            let input = serde_json::from_str::<Value>(&arguments)
                .ok()
                .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
                .unwrap_or(arguments);
            let id = self.new_id("ctc");
            json!({"id": id, "type": "custom_tool_call", "status": "completed",
                "call_id": call_id, "name": name, "input": input})
        } else {
            let id = self.new_id("fc");
            json!({"id": id, "type": "function_call", "status": "completed",
                "call_id": call_id, "name": name, "arguments": arguments})
        };
        out.push(self.event(
            "response.output_item.added",
            obj(json!({"output_index": output_index, "item": item})),
        ));
        out.push(self.event(
            "response.output_item.done",
            obj(json!({"output_index": output_index, "item": item})),
        ));
        self.output.push(item);
    }

    /// The end of the upstream answer (`[DONE]`, end of body, or a whole completion): closes
    /// open items, then `response.completed`, `response.incomplete` (length, content filter)
    /// or `response.failed` (an error inside the stream).
    pub fn finish(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.done = true;
        self.close_reasoning(&mut out);
        let pieces = self.splitter.finish();
        self.apply_pieces(pieces, &mut out);
        self.close_text(&mut out);
        let calls = std::mem::take(&mut self.tool_calls);
        for (_, acc) in calls {
            let call_id = if acc.id.is_empty() {
                self.new_id("call")
            } else {
                acc.id
            };
            self.emit_call(call_id, acc.name, acc.arguments, &mut out);
        }
        let text_calls = std::mem::take(&mut self.text_calls);
        for (name, args) in text_calls {
            let call_id = self.new_id("call");
            self.emit_call(call_id, name, args, &mut out);
        }
        if let Some(message) = self.failed.clone() {
            let mut r = self.response_obj("failed");
            r["error"] = json!({"code": "server_error", "message": message});
            out.push(self.event("response.failed", obj(json!({"response": r}))));
            return out;
        }
        match self.finish_reason.as_deref() {
            Some("length") | Some("content_filter") => {
                let reason = if self.finish_reason.as_deref() == Some("length") {
                    "max_output_tokens"
                } else {
                    "content_filter"
                };
                let mut r = self.response_obj("incomplete");
                r["incomplete_details"] = json!({"reason": reason});
                out.push(self.event("response.incomplete", obj(json!({"response": r}))));
            }
            _ => {
                let r = self.response_obj("completed");
                out.push(self.event("response.completed", obj(json!({"response": r}))));
            }
        }
        out
    }

    /// Ends the stream with `response.failed` carrying `message` (the upstream broke off).
    pub fn fail(&mut self, message: &str) -> Vec<Value> {
        if self.failed.is_none() {
            self.failed = Some(message.to_string());
        }
        self.finish()
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
