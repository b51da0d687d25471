//! Pure translation between the Responses API (what codex speaks) and Chat Completions (what
//! many local servers speak). No I/O here: `server.rs` feeds bytes in and writes events out.
//!
//! Request: [`request_to_chat`]. Answer: [`StreamTranslator`], fed chat chunks (streamed) or one
//! `chat.completion` object (non-streamed), producing Responses events as JSON values.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Map, Value};

/// What the answer translator needs to know about the request's tools.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolInfo {
    /// Tools codex declared as `custom` (freeform text input, e.g. `apply_patch` for some
    /// models). They go upstream as functions with one `input` string parameter, and calls to
    /// them must come back as `custom_tool_call` items, which is what codex registered.
    pub custom: HashSet<String>,
    /// JSON schema of each function's parameters, so `<tool_call>` blocks written as XML
    /// parameters get their numbers and booleans typed the way the schema says.
    pub schemas: HashMap<String, Value>,
}

/// A translated request: the Chat Completions body, what was dropped, and the tool facts.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub body: Value,
    pub model: String,
    pub warnings: Vec<String>,
    pub tools: ToolInfo,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TranslateError {
    #[error("the request body is not a JSON object")]
    NotAnObject,
    #[error("the request has no `model`")]
    NoModel,
    #[error("`input` is neither a string nor an array")]
    BadInput,
}

/// Request fields that only OpenAI's own Responses service understands; a Chat Completions
/// server would reject or ignore them, so they are dropped (with one warning naming them).
const OPENAI_ONLY: &[&str] = &[
    "include",
    "store",
    "client_metadata",
    "reasoning",
    "prompt_cache_key",
    "service_tier",
    "previous_response_id",
    "truncation",
    "metadata",
    "user",
    "background",
];

/// Responses request → Chat Completions request (always streamed, with usage in the stream).
pub fn request_to_chat(req: &Value) -> Result<ChatRequest, TranslateError> {
    let obj = req.as_object().ok_or(TranslateError::NotAnObject)?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or(TranslateError::NoModel)?
        .to_string();
    let mut warnings = Vec::new();

    let (tools, tool_info) = translate_tools(obj.get("tools"), &mut warnings);
    let messages = translate_input(obj, &mut warnings)?;

    let mut body = Map::new();
    body.insert("model".into(), Value::String(model.clone()));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), Value::Bool(true));
    // Without this, servers send no usage in a stream and codex reports zero tokens.
    body.insert("stream_options".into(), json!({"include_usage": true}));
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = obj.get("tool_choice").and_then(translate_tool_choice) {
            body.insert("tool_choice".into(), choice);
        }
        if let Some(p) = obj.get("parallel_tool_calls").filter(|v| v.is_boolean()) {
            body.insert("parallel_tool_calls".into(), p.clone());
        }
    }
    if let Some(n) = obj.get("max_output_tokens").filter(|v| v.is_u64()) {
        body.insert("max_tokens".into(), n.clone());
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = obj.get(key).filter(|v| v.is_number()) {
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(format) = req.pointer("/text/format") {
        if let Some(rf) = translate_text_format(format) {
            body.insert("response_format".into(), rf);
        }
    }

    let dropped: Vec<&str> = OPENAI_ONLY
        .iter()
        .copied()
        .filter(|k| obj.contains_key(*k))
        .collect();
    if !dropped.is_empty() {
        warnings.push(format!(
            "dropped OpenAI-only request fields: {}",
            dropped.join(", ")
        ));
    }

    Ok(ChatRequest {
        body: Value::Object(body),
        model,
        warnings,
        tools: tool_info,
    })
}

fn translate_tools(tools: Option<&Value>, warnings: &mut Vec<String>) -> (Vec<Value>, ToolInfo) {
    let mut out = Vec::new();
    let mut info = ToolInfo::default();
    let mut dropped = Vec::new();
    for tool in tools.and_then(Value::as_array).into_iter().flatten() {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
        let name = tool.get("name").and_then(Value::as_str);
        match (kind, name) {
            ("function", Some(name)) => {
                let params = tool
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                info.schemas.insert(name.to_string(), params.clone());
                let mut f = Map::new();
                f.insert("name".into(), Value::String(name.to_string()));
                if let Some(d) = tool.get("description") {
                    f.insert("description".into(), d.clone());
                }
                // `strict` is left out: servers without structured-output support reject it.
                f.insert("parameters".into(), params);
                out.push(json!({"type": "function", "function": f}));
            }
            ("custom", Some(name)) => {
                let description = tool
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let params = json!({
                    "type": "object",
                    "properties": {"input": {"type": "string", "description": "The raw input for this tool."}},
                    "required": ["input"],
                });
                info.custom.insert(name.to_string());
                info.schemas.insert(name.to_string(), params.clone());
                out.push(json!({"type": "function", "function": {
                    "name": name,
                    "description": description,
                    "parameters": params,
                }}));
            }
            _ => dropped.push(match name {
                Some(n) => format!("{kind} `{n}`"),
                None => kind.to_string(),
            }),
        }
    }
    if !dropped.is_empty() {
        warnings.push(format!(
            "dropped tools a Chat Completions server cannot run: {}",
            dropped.join(", ")
        ));
    }
    (out, info)
}

fn translate_tool_choice(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Some(choice.clone())
        }
        Value::Object(o) => {
            let name = o.get("name").and_then(Value::as_str)?;
            Some(json!({"type": "function", "function": {"name": name}}))
        }
        _ => None,
    }
}

fn translate_text_format(format: &Value) -> Option<Value> {
    match format.get("type").and_then(Value::as_str)? {
        "json_schema" => {
            let mut js = Map::new();
            for key in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(key) {
                    js.insert(key.into(), v.clone());
                }
            }
            Some(json!({"type": "json_schema", "json_schema": js}))
        }
        "json_object" => Some(json!({"type": "json_object"})),
        _ => None,
    }
}

/// The text of a Responses content value: a string, or parts with `text` (input_text,
/// output_text, text). Other parts (images, files) are counted so the caller can warn.
fn content_text(content: Option<&Value>, skipped: &mut usize) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for part in parts {
                match part.get("text").and_then(Value::as_str) {
                    Some(t) => texts.push(t),
                    None => *skipped += 1,
                }
            }
            texts.join("\n")
        }
        _ => String::new(),
    }
}

fn translate_input(
    obj: &Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Value>, TranslateError> {
    // Many chat templates (Qwen's among them) accept one system message and only as the first
    // message, so `instructions` and every developer/system message become one leading system
    // message, in their original order.
    let mut system: Vec<String> = Vec::new();
    if let Some(s) = obj.get("instructions").and_then(Value::as_str) {
        if !s.is_empty() {
            system.push(s.to_string());
        }
    }
    let items: Vec<Value> = match obj.get("input") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![json!({"type": "message", "role": "user", "content": s})],
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(TranslateError::BadInput),
    };

    let mut messages: Vec<Value> = Vec::new();
    let mut skipped_parts = 0usize;
    let mut dropped_items: BTreeMap<String, usize> = BTreeMap::new();
    for item in &items {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                let text = content_text(item.get("content"), &mut skipped_parts);
                match role {
                    "developer" | "system" => system.push(text),
                    "assistant" => messages.push(json!({"role": "assistant", "content": text})),
                    _ => messages.push(json!({"role": "user", "content": text})),
                }
            }
            "function_call" | "custom_tool_call" => {
                let call_id = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                let arguments = if kind == "custom_tool_call" {
                    let input = item.get("input").and_then(Value::as_str).unwrap_or("");
                    json!({"input": input}).to_string()
                } else {
                    match item.get("arguments") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => "{}".into(),
                    }
                };
                let call = json!({
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                });
                push_tool_call(&mut messages, call);
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let output = content_text(item.get("output"), &mut skipped_parts);
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            other => *dropped_items.entry(other.to_string()).or_default() += 1,
        }
    }
    if !dropped_items.is_empty() {
        let list: Vec<String> = dropped_items
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        warnings.push(format!(
            "dropped input items a Chat Completions server cannot take: {}",
            list.join(", ")
        ));
    }
    if skipped_parts > 0 {
        warnings.push(format!(
            "dropped {skipped_parts} non-text content part(s) (images, files)"
        ));
    }
    if !system.is_empty() {
        messages.insert(0, json!({"role": "system", "content": system.join("\n\n")}));
    }
    Ok(messages)
}

/// Adds a tool call to the assistant message just before it (parallel calls, or text followed by
/// a call, are one assistant turn in Chat Completions), or starts a new assistant message.
fn push_tool_call(messages: &mut Vec<Value>, call: Value) {
    if let Some(last) = messages.last_mut() {
        if last.get("role").and_then(Value::as_str) == Some("assistant") {
            if let Some(obj) = last.as_object_mut() {
                let calls = obj
                    .entry("tool_calls")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Some(a) = calls.as_array_mut() {
                    a.push(call);
                    return;
                }
            }
        }
    }
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

// ---------------------------------------------------------------------------------------------
// Answer: chat chunks → Responses events.
// ---------------------------------------------------------------------------------------------

const OPEN_TAG: &str = "<tool_call>";
const CLOSE_TAG: &str = "</tool_call>";

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

/// Splits streamed text into plain text and `<tool_call>…</tool_call>` blocks, holding back a
/// tail that might be the start of a tag split across chunks.
#[derive(Debug, Default)]
struct TagSplitter {
    pending: String,
    in_call: bool,
}

#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Call(String),
}

impl TagSplitter {
    fn feed(&mut self, delta: &str) -> Vec<Piece> {
        self.pending.push_str(delta);
        let mut out = Vec::new();
        loop {
            if self.in_call {
                match self.pending.find(CLOSE_TAG) {
                    Some(end) => {
                        out.push(Piece::Call(self.pending[..end].to_string()));
                        self.pending.drain(..end + CLOSE_TAG.len());
                        self.in_call = false;
                    }
                    None => return out,
                }
            } else {
                match self.pending.find(OPEN_TAG) {
                    Some(start) => {
                        if start > 0 {
                            out.push(Piece::Text(self.pending[..start].to_string()));
                        }
                        self.pending.drain(..start + OPEN_TAG.len());
                        self.in_call = true;
                    }
                    None => {
                        let keep = partial_tag_suffix(&self.pending);
                        let cut = self.pending.len() - keep;
                        if cut > 0 {
                            out.push(Piece::Text(self.pending[..cut].to_string()));
                            self.pending.drain(..cut);
                        }
                        return out;
                    }
                }
            }
        }
    }

    /// The end of the text: an unclosed block is still offered as a call (models often stop
    /// right after the JSON), anything else is text.
    fn finish(&mut self) -> Vec<Piece> {
        let rest = std::mem::take(&mut self.pending);
        if rest.is_empty() {
            return Vec::new();
        }
        if self.in_call {
            self.in_call = false;
            vec![Piece::Call(rest)]
        } else {
            vec![Piece::Text(rest)]
        }
    }
}

/// Length of the longest suffix of `s` that is a proper prefix of `<tool_call>`.
fn partial_tag_suffix(s: &str) -> usize {
    (1..OPEN_TAG.len())
        .rev()
        .find(|&n| {
            s.len() >= n
                && s.is_char_boundary(s.len() - n)
                && OPEN_TAG.starts_with(&s[s.len() - n..])
        })
        .unwrap_or(0)
}

/// Parses the inside of a `<tool_call>` block: Hermes-style JSON
/// (`{"name": …, "arguments": {…}}`) or Qwen3-Coder's XML
/// (`<function=NAME><parameter=K>V</parameter></function>`). Returns name and arguments JSON.
pub fn parse_tool_call_text(
    inner: &str,
    schemas: &HashMap<String, Value>,
) -> Option<(String, String)> {
    let inner = inner.trim();
    if let Ok(v) = serde_json::from_str::<Value>(inner) {
        let name = v.get("name").and_then(Value::as_str)?.to_string();
        let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
            Some(Value::String(s)) => s.clone(),
            Some(a) => a.to_string(),
            None => "{}".into(),
        };
        return Some((name, arguments));
    }
    let rest = inner.strip_prefix("<function=")?;
    let (name, mut body) = rest.split_once('>')?;
    let name = name.trim().to_string();
    let schema = schemas.get(&name);
    let mut args = Map::new();
    while let Some(start) = body.find("<parameter=") {
        let after = &body[start + "<parameter=".len()..];
        let (key, value_and_rest) = after.split_once('>')?;
        let end = value_and_rest.find("</parameter>")?;
        let raw = value_and_rest[..end]
            .strip_prefix('\n')
            .unwrap_or(&value_and_rest[..end]);
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        let key = key.trim();
        let declared = schema
            .and_then(|s| s.pointer(&format!("/properties/{key}/type")))
            .and_then(Value::as_str);
        let value = match declared {
            Some("string") | None => Value::String(raw.to_string()),
            Some(_) => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())),
        };
        args.insert(key.to_string(), value);
        body = &value_and_rest[end + "</parameter>".len()..];
    }
    Some((name, Value::Object(args).to_string()))
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

/// Chat usage → Responses usage. Cached prompt tokens become `input_tokens_details.cached_tokens`
/// (codex's `cached_input_tokens`).
pub fn map_usage(u: &Value) -> Value {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let input = n("/prompt_tokens");
    let output = n("/completion_tokens");
    let total = u
        .get("total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(input + output);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": n("/prompt_tokens_details/cached_tokens")},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": n("/completion_tokens_details/reasoning_tokens")},
        "total_tokens": total,
    })
}

/// One Responses event as an SSE frame (`event:` line plus `data:` line).
pub fn sse_frame(event: &Value) -> String {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    format!("event: {kind}\ndata: {event}\n\n")
}

/// The message of an OpenAI-style error body (`{"error":{"message":…}}`, `{"error":"…"}`,
/// `{"message":…}`, `{"detail":…}`), else the body text itself, cut to a readable length.
pub fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let found = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .and_then(Value::as_str);
        if let Some(m) = found {
            return m.to_string();
        }
    }
    let t = body.trim();
    if t.is_empty() {
        return "(empty body)".into();
    }
    t.chars().take(2000).collect()
}

#[cfg(test)]
mod tests;
