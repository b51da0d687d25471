//! The typed outcome of a failed agent turn: one error kind shared by the handler (which
//! writes it into the outbox), the bridge (whose upstream statuses map onto it) and the
//! coordinator (which decides from it, never from text). Pure.
//!
//! Each kind knows whether it is the endpoint's fault (every task on that endpoint would hit
//! it: dispatch pauses, no retry is spent) or the task's own, and what to do about it.

use serde::{Deserialize, Serialize};

/// Why a turn ended without an assistant reply. Serialized kebab-case as the outbox record's
/// `error_kind` (docs/conversation.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// HTTP 401: the key was rejected.
    Unauthorized,
    /// HTTP 403: the key is valid but not allowed (this model, this route, a budget).
    Forbidden,
    /// The key's variable is unset or empty.
    KeyMissing,
    /// No connection to the endpoint.
    Unreachable,
    /// The endpoint took the request and sent nothing, not even a status, within
    /// `handler.first_byte_timeout`: a server (or the backend behind a gateway) that hangs.
    NoFirstByte,
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    ServerError,
    /// HTTP 404: the endpoint does not serve this model (or this path).
    ModelNotFound,
    /// The conversation no longer fits the model's context window.
    ContextOverflow,
    /// The answer was cut off by the output-token limit (the server's, or
    /// `endpoint.max_output_tokens`): retrying the same turn gets the same cut.
    OutputLimit,
    /// HTTP 400 (or another 4xx) that is not about the context: this request was refused.
    BadRequest,
    /// The answer stopped mid-stream.
    StreamBroken,
    /// The agent refused its configuration.
    BadConfig,
    TimeoutFirstOutput,
    TimeoutIdle,
    TimeoutHard,
    CodexMissing,
    ClaudeMissing,
    /// codex cannot set up its sandbox helpers: its home is under the temp dir, where it
    /// refuses to create them, so every command it runs would fail.
    SandboxUnavailable,
    /// A per-task budget is spent.
    Budget,
    /// The agent repeated one command, or ran too many in one turn (runaway).
    Loop,
    /// Anything else the agent reported. Its name predates claude support.
    #[serde(rename = "codex-failed")]
    AgentFailed,
    /// A kind written by a newer wg: judged as the task's own failure.
    #[serde(other)]
    Unknown,
}

/// Who a failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every task on this endpoint would fail the same way: pause the endpoint, spend no retry.
    Endpoint,
    /// This task's turn failed: the task fails (and may be retried).
    Task,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 23] = [
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::KeyMissing,
        ErrorKind::Unreachable,
        ErrorKind::NoFirstByte,
        ErrorKind::RateLimited,
        ErrorKind::ServerError,
        ErrorKind::ModelNotFound,
        ErrorKind::ContextOverflow,
        ErrorKind::OutputLimit,
        ErrorKind::BadRequest,
        ErrorKind::StreamBroken,
        ErrorKind::BadConfig,
        ErrorKind::TimeoutFirstOutput,
        ErrorKind::TimeoutIdle,
        ErrorKind::TimeoutHard,
        ErrorKind::CodexMissing,
        ErrorKind::ClaudeMissing,
        ErrorKind::SandboxUnavailable,
        ErrorKind::Budget,
        ErrorKind::Loop,
        ErrorKind::AgentFailed,
        ErrorKind::Unknown,
    ];

    /// The kebab-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::KeyMissing => "key-missing",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::NoFirstByte => "no-first-byte",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::ServerError => "server-error",
            ErrorKind::ModelNotFound => "model-not-found",
            ErrorKind::ContextOverflow => "context-overflow",
            ErrorKind::OutputLimit => "output-limit",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::StreamBroken => "stream-broken",
            ErrorKind::BadConfig => "bad-config",
            ErrorKind::TimeoutFirstOutput => "timeout-first-output",
            ErrorKind::TimeoutIdle => "timeout-idle",
            ErrorKind::TimeoutHard => "timeout-hard",
            ErrorKind::CodexMissing => "codex-missing",
            ErrorKind::ClaudeMissing => "claude-missing",
            ErrorKind::SandboxUnavailable => "sandbox-unavailable",
            ErrorKind::Budget => "budget",
            ErrorKind::Loop => "loop",
            ErrorKind::AgentFailed => "codex-failed",
            ErrorKind::Unknown => "unknown",
        }
    }

    /// A stored name back to its kind (unknown names are [`ErrorKind::Unknown`]).
    pub fn parse(s: &str) -> ErrorKind {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(ErrorKind::Unknown)
    }

    /// Endpoint-wide kinds are the ones every task on the endpoint would hit alike. A broken
    /// stream or a timeout can be this task's own doing (a prompt the server chokes on), so
    /// they spend a retry: pausing for them could hold a whole graph on one bad task.
    pub fn scope(self) -> Scope {
        match self {
            ErrorKind::Unauthorized
            | ErrorKind::Forbidden
            | ErrorKind::KeyMissing
            | ErrorKind::Unreachable
            | ErrorKind::NoFirstByte
            | ErrorKind::RateLimited
            | ErrorKind::ServerError
            | ErrorKind::ModelNotFound => Scope::Endpoint,
            _ => Scope::Task,
        }
    }

    pub fn endpoint_wide(self) -> bool {
        self.scope() == Scope::Endpoint
    }

    /// Whether running the task again as it is could end differently. An answer cut at the
    /// output cap is cut the same way again, and codex cannot sandbox itself in the same
    /// place the next time either: the coordinator does not spend retries on them.
    pub fn retry_helps(self) -> bool {
        !matches!(self, ErrorKind::OutputLimit | ErrorKind::SandboxUnavailable)
    }

    /// One line: what to do about it.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "the endpoint rejected the API key: check the key variable holds a valid key (`wg doctor` checks it)",
            ErrorKind::Forbidden => "the key is not allowed to do this (model, route or budget on the gateway): check its permissions",
            ErrorKind::KeyMissing => "the API key variable is not set where the coordinator runs: export it and restart the service",
            ErrorKind::Unreachable => "no connection to the endpoint: is the model server running and the URL right (`wg doctor`)?",
            ErrorKind::NoFirstByte => "the endpoint takes requests but does not answer (a hung server, or a backend down behind a gateway): dispatch resumes once a model request gets an answer",
            ErrorKind::RateLimited => "the endpoint is rate-limiting: dispatch waits; lower coordinator.max_agents if it keeps happening",
            ErrorKind::ServerError => "the endpoint answered with a server error: look at the model server's log",
            ErrorKind::ModelNotFound => "the endpoint does not serve this model (or the URL lacks /v1): check `wg config get endpoint.model`",
            ErrorKind::ContextOverflow => "the conversation no longer fits the model's context: split the task or raise the server's context length",
            ErrorKind::OutputLimit => "the answer hit the output-token limit: raise the server's cap (llama-server -n, vLLM max_tokens) and endpoint.max_output_tokens to match",
            ErrorKind::BadRequest => "the endpoint refused the request: the server's message says why",
            ErrorKind::StreamBroken => "the answer stopped mid-stream: the server may be overloaded; check its log",
            ErrorKind::BadConfig => "the agent refused its configuration: check .wg/config.toml",
            ErrorKind::TimeoutFirstOutput => "the agent printed nothing after it started: check that its binary runs (`wg doctor`)",
            ErrorKind::TimeoutIdle => "the agent went quiet (idle timeout): check the model server; raise handler.idle_timeout if turns are legitimately slow",
            ErrorKind::TimeoutHard => "the turn ran past handler.turn_timeout: split the task or raise the limit",
            ErrorKind::CodexMissing => "codex cannot be started: install it or set codex.binary",
            ErrorKind::ClaudeMissing => "claude cannot be started: install it or set claude.binary",
            ErrorKind::SandboxUnavailable => "codex cannot set up its sandbox under the temp dir: move the project out of /tmp, or set HOME to a directory outside it",
            ErrorKind::Budget => "the task is over its budget: raise the limit in [handler] and `wg retry` it",
            ErrorKind::Loop => "the agent was looping: look at its last commands (`wg tail ID`), then `wg msg` it a hint or `wg retry` it",
            ErrorKind::AgentFailed | ErrorKind::Unknown => "see the task's handler.log and events.jsonl",
        }
    }

    /// The kind an HTTP error status means; `message` is the server's text, which tells a
    /// context overflow from other 400s. `None` for statuses that are not errors.
    pub fn from_status(status: u16, message: &str) -> Option<ErrorKind> {
        Some(match status {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::ModelNotFound,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::ServerError,
            400..=499 if is_context_overflow(message) => ErrorKind::ContextOverflow,
            400..=499 => ErrorKind::BadRequest,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `wg retry --error-kind KIND` takes the stored names, so a kind added to `ALL` is accepted
/// (and listed by `--help`) without a second list.
impl clap::ValueEnum for ErrorKind {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// The servers' wordings for a prompt longer than the context window: vLLM ("This model's
/// maximum context length is N tokens", "longer than the maximum model length"), SGLang ("is
/// longer than the model's context length", "exceeds the model's maximum context length")
/// and OpenAI (`context_length_exceeded`, "maximum context length"); codex's own text for
/// OpenAI's ("ran out of room in the model's context window"), llama.cpp's server ("exceeds
/// the available context size") and Anthropic's ("prompt is too long").
pub fn is_context_overflow(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    const PHRASES: [&str; 9] = [
        "maximum context length",
        "context_length_exceeded",
        "longer than the model's context length",
        "longer than the maximum model length",
        "context length exceeded",
        "exceeds the context window",
        "out of room in the model's context window",
        "exceeds the available context size",
        "prompt is too long",
    ];
    PHRASES.iter().any(|p| m.contains(p))
}

/// codex's words for an answer the server ended at its output-token limit (a chat
/// `finish_reason: "length"`, a Responses `incomplete` with reason `max_output_tokens`):
/// "Incomplete response returned, reason: max_output_tokens".
pub fn is_output_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("incomplete response") && m.contains("max_output_tokens")
}

/// The HTTP status a message names in one of the forms codex and the bridge print
/// (`unexpected status 401 Unauthorized`, `last status: 429`, `answered 503`, `HTTP 500`).
/// Bare numbers are never taken: a URL's port, a task id or a path may hold "503".
pub fn status_in(message: &str) -> Option<u16> {
    let m = message.to_ascii_lowercase();
    const LEADS: [&str; 5] = ["status: ", "status ", "answered ", "http ", "status code "];
    let mut best: Option<(usize, u16)> = None;
    for lead in LEADS {
        let mut from = 0;
        while let Some(i) = m[from..].find(lead) {
            let at = from + i + lead.len();
            let digits: String = m[at..].chars().take_while(char::is_ascii_digit).collect();
            // Exactly three digits, not followed by more of a number or a path.
            let next = m[at + digits.len()..].chars().next();
            if digits.len() == 3
                && !matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == '/' || c == '.')
            {
                if let Ok(s) = digits.parse::<u16>() {
                    if (100..=599).contains(&s) && best.is_none_or(|(b, _)| at < b) {
                        best = Some((at, s));
                    }
                }
            }
            from = at;
        }
    }
    best.map(|(_, s)| s)
}

/// The first HTTP error status among a turn's messages, in the order they were seen. codex
/// retries within a turn, and a gateway may answer a retry differently (a 401 then a 429
/// from its cooldown): the first answer is the one about the request.
pub fn first_status<'a>(messages: impl IntoIterator<Item = &'a str>) -> Option<(u16, &'a str)> {
    messages
        .into_iter()
        .find_map(|m| status_in(m).filter(|s| *s >= 400).map(|s| (s, m)))
}

/// Classifies a failure from the agent's messages (warnings, then the final failure) when no
/// typed status came with it. Context overflows are named by their wording whatever the
/// status; then the first HTTP status decides; then the transport's own words.
pub fn classify_messages<'a>(messages: impl IntoIterator<Item = &'a str> + Clone) -> ErrorKind {
    if messages.clone().into_iter().any(is_context_overflow) {
        return ErrorKind::ContextOverflow;
    }
    if let Some((status, msg)) = first_status(messages.clone()) {
        if let Some(k) = ErrorKind::from_status(status, msg) {
            return k;
        }
    }
    // The final message is the failure; earlier ones are retries.
    let last = messages.into_iter().last().unwrap_or("");
    classify_text(last)
}

/// A failure message without a status (measured codex texts: connection failures, a missing
/// variable, a stalled stream, a config error).
pub fn classify_text(message: &str) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    if is_context_overflow(&m) {
        ErrorKind::ContextOverflow
    } else if is_output_limit(&m) {
        ErrorKind::OutputLimit
    } else if m.contains("unauthorized") || m.contains("invalid api key") {
        ErrorKind::Unauthorized
    } else if m.contains("forbidden") {
        ErrorKind::Forbidden
    } else if m.contains("too many requests") || m.contains("rate limit") {
        ErrorKind::RateLimited
    } else if m.contains("missing environment variable") {
        ErrorKind::KeyMissing
    } else if m.contains("connection failed")
        || m.contains("error sending request")
        || m.contains("connection refused")
    {
        ErrorKind::Unreachable
    } else if m.contains("high demand")
        || m.contains("internal server error")
        || m.contains("bad gateway")
        || m.contains("service unavailable")
        || m.contains("gateway timeout")
    {
        // codex replaces a 5xx body with its "high demand" text.
        ErrorKind::ServerError
    } else if m.contains("stream disconnected") || m.contains("idle timeout") {
        ErrorKind::StreamBroken
    } else if m.contains("error loading config") || m.contains("config") && m.contains("error") {
        ErrorKind::BadConfig
    } else {
        ErrorKind::AgentFailed
    }
}

/// What a custom executor's exit and log say, for executors that write no outbox. Only
/// wg's own `endpoint_error` marker and transport words count, never status digits alone,
/// which a URL, a task id or a path in the log may hold.
pub fn classify_log(tail: &str) -> Option<ErrorKind> {
    let m = tail.to_ascii_lowercase();
    if m.contains("endpoint_error") {
        return Some(ErrorKind::Unreachable);
    }
    const WORDS: [(&str, ErrorKind); 6] = [
        ("connection refused", ErrorKind::Unreachable),
        ("connection reset", ErrorKind::Unreachable),
        ("too many requests", ErrorKind::RateLimited),
        ("rate limit", ErrorKind::RateLimited),
        ("bad gateway", ErrorKind::ServerError),
        ("service unavailable", ErrorKind::ServerError),
    ];
    WORDS.iter().find(|(w, _)| m.contains(w)).map(|(_, k)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for k in ErrorKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()), "{k:?}");
            if k != ErrorKind::Unknown {
                assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), k);
                assert_eq!(ErrorKind::parse(k.as_str()), k);
            }
        }
        // A kind from a newer wg still reads.
        assert_eq!(
            serde_json::from_str::<ErrorKind>("\"from-the-future\"").unwrap(),
            ErrorKind::Unknown
        );
    }

    #[test]
    fn scopes() {
        let endpoint: Vec<_> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.endpoint_wide())
            .map(ErrorKind::as_str)
            .collect();
        assert_eq!(
            endpoint,
            [
                "unauthorized",
                "forbidden",
                "key-missing",
                "unreachable",
                "no-first-byte",
                "rate-limited",
                "server-error",
                "model-not-found"
            ]
        );
        for k in ErrorKind::ALL {
            assert!(!k.advice().is_empty());
        }
    }

    #[test]
    fn statuses_are_read_only_where_a_status_is_named() {
        let r = "Reconnecting... 1/5 (unexpected status 401 Unauthorized: bad key, url: http://127.0.0.1:8503/v1/responses)";
        assert_eq!(status_in(r), Some(401));
        assert_eq!(
            status_in("exceeded retry limit, last status: 429 Too Many Requests"),
            Some(429)
        );
        assert_eq!(status_in("the chat endpoint answered 503: down"), Some(503));
        // Digits in a URL, a task id or a path are not statuses.
        assert_eq!(
            status_in("url: http://127.0.0.1:8503/v1 task fix-503-page"),
            None
        );
        assert_eq!(status_in("see /tmp/status/503/x"), None);
        assert_eq!(status_in("HTTP 5030 things"), None);
    }

    #[test]
    fn the_first_status_of_a_turn_wins() {
        let msgs = [
            "Model metadata for `m` not found.",
            "Reconnecting... 1/1 (unexpected status 401 Unauthorized: key rejected, url: http://h:4290/v1/responses)",
            "exceeded retry limit, last status: 429 Too Many Requests",
        ];
        assert_eq!(classify_messages(msgs), ErrorKind::Unauthorized);
        assert_eq!(
            classify_messages(["unexpected status 403 Forbidden: no"]),
            ErrorKind::Forbidden
        );
        assert_eq!(
            classify_messages(["unexpected status 404 Not Found: model `x` does not exist"]),
            ErrorKind::ModelNotFound
        );
        assert_eq!(
            classify_messages(["unexpected status 400 Bad Request: invalid tool"]),
            ErrorKind::BadRequest
        );
        assert_eq!(
            classify_messages([
                "We’re currently experiencing high demand, which may cause temporary errors."
            ]),
            ErrorKind::ServerError
        );
        assert_eq!(
            classify_messages(["Connection failed: error sending request"]),
            ErrorKind::Unreachable
        );
        assert_eq!(
            classify_messages(["Missing environment variable: `WG_API_KEY`."]),
            ErrorKind::KeyMissing
        );
        assert_eq!(
            classify_messages([
                "stream disconnected before completion: idle timeout waiting for SSE"
            ]),
            ErrorKind::StreamBroken
        );
        assert_eq!(classify_messages(["something odd"]), ErrorKind::AgentFailed);
        // codex's words for a chat `finish_reason: "length"` (llama-server's `-n` cap).
        assert_eq!(
            classify_messages(["Incomplete response returned, reason: max_output_tokens"]),
            ErrorKind::OutputLimit
        );
    }

    #[test]
    fn context_overflows_in_every_servers_words() {
        for m in [
            // vLLM
            "unexpected status 400 Bad Request: This model's maximum context length is 32768 tokens. However, you requested 40000 tokens",
            "The prompt (40000 tokens) is longer than the maximum model length of 32768",
            // SGLang
            "The input (40000 tokens) is longer than the model's context length (32768 tokens).",
            // OpenAI
            "Your input exceeds the context window of this model. code: context_length_exceeded",
            // codex's text for OpenAI's, llama.cpp, Anthropic
            "Codex ran out of room in the model's context window. Start a new thread or clear earlier history before retrying.",
            "the request exceeds the available context size, try increasing it",
            "prompt is too long: 210000 tokens > 200000 maximum",
        ] {
            assert_eq!(classify_messages([m]), ErrorKind::ContextOverflow, "{m}");
        }
        assert_eq!(
            ErrorKind::from_status(400, "maximum context length is 8192"),
            Some(ErrorKind::ContextOverflow)
        );
        assert_eq!(ErrorKind::from_status(200, ""), None);
    }

    #[test]
    fn custom_executor_logs_are_judged_by_words_not_digits() {
        assert_eq!(
            classify_log("GET http://127.0.0.1:8503/v1 -> 401; task fix-503-page; HTTP 429"),
            None
        );
        assert_eq!(
            classify_log("error: Connection refused (os error 111)"),
            Some(ErrorKind::Unreachable)
        );
        assert_eq!(
            classify_log("endpoint_error: timeout"),
            Some(ErrorKind::Unreachable)
        );
        assert_eq!(
            classify_log("429 Too Many Requests"),
            Some(ErrorKind::RateLimited)
        );
    }
}
