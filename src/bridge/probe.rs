//! Which API an endpoint answers, for `wg doctor`: one tiny request to `/responses` and one to
//! `/chat/completions`. Costs a few tokens on a real server.

use std::time::Duration;

use serde_json::json;

use crate::http;

/// What the endpoint answered. `responses`/`chat` are true only for a 2xx answer; the details
/// say what happened otherwise (status and the server's message, or why there was no answer).
#[derive(Debug, Clone, PartialEq)]
pub struct WireSupport {
    pub responses: bool,
    pub chat: bool,
    pub responses_detail: String,
    pub chat_detail: String,
}

impl WireSupport {
    /// The `wire_api` to configure: `responses` when it works (codex speaks it natively),
    /// `chat` (through the bridge) when only that works, `None` when neither answered.
    pub fn recommended(&self) -> Option<&'static str> {
        if self.responses {
            Some("responses")
        } else if self.chat {
            Some("chat")
        } else {
            None
        }
    }
}

/// Asks `{base_url}/responses` and `{base_url}/chat/completions` for a one-word answer from
/// `model`. `base_url` includes `/v1`. Blocking; each request ends within `timeout`.
pub fn probe(base_url: &str, key: Option<&str>, model: &str, timeout: Duration) -> WireSupport {
    let base = base_url.trim_end_matches('/');
    let agent = http::agent(timeout);
    let responses_body = json!({"model": model, "input": "Say ok.", "max_output_tokens": 16});
    let chat_body = json!({"model": model, "max_tokens": 1,
        "messages": [{"role": "user", "content": "Say ok."}]});
    let ask = |path: &str, body: &serde_json::Value| -> (bool, String) {
        let url = format!("{base}{path}");
        match http::post_json(&agent, &url, key, body, timeout) {
            Ok((status, _)) if (200..300).contains(&status) => (true, format!("{status}")),
            Ok((status, text)) => (
                false,
                format!("{status}: {}", super::translate::error_message(&text)),
            ),
            Err(e) => (false, e.to_string()),
        }
    };
    let (responses, responses_detail) = ask("/responses", &responses_body);
    let (chat, chat_detail) = ask("/chat/completions", &chat_body);
    WireSupport {
        responses,
        chat,
        responses_detail,
        chat_detail,
    }
}

/// What an endpoint did with a request that offered one tool and asked for it to be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCallCheck {
    /// A structured tool call came back (`tool_calls` / a `function_call` item).
    Structured,
    /// The call came back as `<tool_call>` text in the content: the server's tool-call
    /// parser is off, and codex would see prose instead of a call.
    AsText,
    /// The model answered without calling the tool: nothing to conclude.
    NoCall,
    /// The request failed: status and the server's message.
    Failed(String),
}

/// The advice for [`ToolCallCheck::AsText`] (also logged by the handler when a reply holds
/// `<tool_call>` text).
pub const TOOL_CALL_TEXT_ADVICE: &str = "the server returns tool calls as `<tool_call>` text instead of structured calls: its tool-call parser is off. vLLM: start it with `--enable-auto-tool-choice --tool-call-parser qwen3_coder` (the parser that fits the model; qwen3_coder is for Qwen3-Coder). SGLang: start it with `--tool-call-parser qwen3_coder` (likewise). llama.cpp's llama-server: start it with `--jinja` (its chat template then parses tool calls; add `--chat-template-file` when the GGUF's own template lacks tools). Other servers: turn on their tool-call parser for the model";

/// Whether a reply text carries a tool call the server left unparsed.
pub fn has_tool_call_text(text: &str) -> bool {
    text.contains("<tool_call>") || text.contains("<function=")
}

/// Judges a 2xx reply body of the tool-call request, in either wire API.
pub fn judge_tool_reply(chat: bool, body: &serde_json::Value) -> ToolCallCheck {
    if chat {
        let msg = &body["choices"][0]["message"];
        if msg["tool_calls"].as_array().is_some_and(|a| !a.is_empty()) {
            return ToolCallCheck::Structured;
        }
        if msg["content"].as_str().is_some_and(has_tool_call_text) {
            return ToolCallCheck::AsText;
        }
        return ToolCallCheck::NoCall;
    }
    let items = body["output"].as_array().cloned().unwrap_or_default();
    if items.iter().any(|i| {
        matches!(
            i["type"].as_str(),
            Some("function_call" | "custom_tool_call")
        )
    }) {
        return ToolCallCheck::Structured;
    }
    let text = items
        .iter()
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect::<String>();
    if has_tool_call_text(&text) {
        ToolCallCheck::AsText
    } else {
        ToolCallCheck::NoCall
    }
}

/// Sends one tiny request offering one tool (`ping`) and asking for it to be called.
pub fn tool_call_check(
    base_url: &str,
    key: Option<&str>,
    model: &str,
    chat: bool,
    timeout: Duration,
) -> ToolCallCheck {
    let base = base_url.trim_end_matches('/');
    let params = json!({"type": "object", "properties": {"text": {"type": "string"}},
        "required": ["text"]});
    let prompt = "Call the ping tool with text \"ok\". Do not answer in prose.";
    let (path, body) = if chat {
        (
            "/chat/completions",
            json!({"model": model, "max_tokens": 64, "tool_choice": "auto",
                "messages": [{"role": "user", "content": prompt}],
                "tools": [{"type": "function", "function": {"name": "ping",
                    "description": "Echo a text.", "parameters": params}}]}),
        )
    } else {
        (
            "/responses",
            json!({"model": model, "max_output_tokens": 64, "tool_choice": "auto",
                "input": prompt,
                "tools": [{"type": "function", "name": "ping", "description": "Echo a text.",
                    "parameters": params}]}),
        )
    };
    let url = format!("{base}{path}");
    match http::post_json(&http::agent(timeout), &url, key, &body, timeout) {
        Ok((status, text)) if (200..300).contains(&status) => {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            judge_tool_reply(chat, &v)
        }
        Ok((status, text)) => ToolCallCheck::Failed(format!(
            "POST {url} answered {status}: {}",
            http::server_message(&text)
        )),
        Err(e) => ToolCallCheck::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tool_tests {
    use super::*;

    #[test]
    fn tool_replies_are_judged_in_both_wire_apis() {
        let chat_ok = json!({"choices": [{"message": {"tool_calls": [{"id": "c1"}]}}]});
        let chat_text = json!({"choices": [{"message": {"content":
            "<tool_call>\n<function=ping>\n<parameter=text>ok</parameter>\n</function>\n</tool_call>"}}]});
        let chat_prose = json!({"choices": [{"message": {"content": "ok"}}]});
        assert_eq!(judge_tool_reply(true, &chat_ok), ToolCallCheck::Structured);
        assert_eq!(judge_tool_reply(true, &chat_text), ToolCallCheck::AsText);
        assert_eq!(judge_tool_reply(true, &chat_prose), ToolCallCheck::NoCall);
        let resp_ok = json!({"output": [{"type": "function_call", "name": "ping"}]});
        let resp_text = json!({"output": [{"type": "message", "content": [
            {"type": "output_text", "text": "<tool_call>{\"name\": \"ping\"}</tool_call>"}]}]});
        assert_eq!(judge_tool_reply(false, &resp_ok), ToolCallCheck::Structured);
        assert_eq!(judge_tool_reply(false, &resp_text), ToolCallCheck::AsText);
        assert_eq!(judge_tool_reply(false, &json!({})), ToolCallCheck::NoCall);
    }
}
