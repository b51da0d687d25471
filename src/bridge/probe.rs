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
