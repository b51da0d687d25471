//! Pure translation between the Responses API (what codex speaks) and Chat Completions (what
//! many local servers speak). No I/O here: `server.rs` feeds bytes in and writes events out.
//!
//! Request: [`request_to_chat`]. Answer: [`StreamTranslator`], fed chat chunks (streamed) or one
//! `chat.completion` object (non-streamed), producing Responses events as JSON values.

mod request;
mod stream;
mod tool_text;

pub use request::{request_to_chat, ChatRequest, TranslateError};
pub use stream::StreamTranslator;
pub use tool_text::parse_tool_call_text;

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

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
