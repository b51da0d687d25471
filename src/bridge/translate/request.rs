//! Request: a Responses request becomes a Chat Completions request.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::ToolInfo;

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
