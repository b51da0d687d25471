//! The local credential proxy in front of every endpoint, and the Responses→Chat Completions
//! bridge it runs for `wire_api = "chat"`. The handler starts it on 127.0.0.1 and gives the
//! agent its address and a token valid for one turn; only the proxy holds the real key. See
//! docs/proxy.md and docs/bridge.md.
//!
//! ```no_run
//! # fn main() -> Result<(), wg::bridge::BridgeError> {
//! let bridge = wg::bridge::start(wg::bridge::BridgeConfig::new(
//!     "https://llm.example/v1",
//!     Some("the real key".into()),
//! ))?;
//! // codex: base_url = bridge.base_url(), env_key var = bridge.token()
//! # Ok(()) }
//! ```
//!
//! translate/ is pure (request.rs, stream.rs, tool_text.rs); server.rs does the I/O (and the Chat translation's streaming);
//! passthrough.rs forwards Responses and Anthropic Messages requests as they are; probe.rs asks
//! an endpoint which APIs it has.

mod chat;
mod passthrough;
pub mod probe;
mod server;
mod shared;
pub mod tally;
pub mod translate;

use std::sync::Arc;
use std::time::Duration;

pub use probe::{probe, WireSupport};

/// Receives every bridge event as it happens (the handler writes them to handler.log).
pub type LogFn = Arc<dyn Fn(&BridgeEvent) + Send + Sync>;

/// What the agent speaks to the proxy, and so what the proxy does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// codex and an OpenAI Responses endpoint: forwarded as it is, streamed back as it comes.
    Responses,
    /// codex and a Chat Completions endpoint: translated both ways (the bridge).
    Chat,
    /// Claude Code and an Anthropic Messages endpoint: forwarded as it is.
    Anthropic,
}

impl Wire {
    /// The path the agent's base URL ends in, taken off before the rest is appended to the
    /// upstream base URL. codex is given `…/v1` and the endpoint's URL includes `/v1`; Claude
    /// Code appends `/v1/messages` itself to a base URL without it.
    pub fn agent_prefix(self) -> &'static str {
        match self {
            Wire::Responses | Wire::Chat => "/v1",
            Wire::Anthropic => "",
        }
    }
}

/// How the proxy hands the real key to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// `Authorization: Bearer KEY` (OpenAI-style endpoints; claude with `auth = "bearer"`).
    Bearer,
    /// `x-api-key: KEY` (Anthropic; claude with `auth = "api-key"`).
    ApiKeyHeader,
}

/// How to reach the real endpoint.
#[derive(Clone)]
pub struct BridgeConfig {
    pub wire: Wire,
    /// Base URL: with `/v1` for `Responses` and `Chat` (the bridge POSTs to
    /// `{upstream_base_url}/chat/completions`), without it for `Anthropic`.
    pub upstream_base_url: String,
    /// The real key, sent upstream only. `None` for keyless local servers.
    pub api_key: Option<String>,
    pub auth: UpstreamAuth,
    pub log: LogFn,
    /// Connecting to the upstream (including TLS).
    pub connect_timeout: Duration,
    /// Longest silence between two reads of the upstream answer, including the wait for its
    /// headers. A server that stalls longer is cut off and codex gets a failed response.
    pub read_timeout: Duration,
    /// The output cap put into every Responses request without one (`endpoint.max_output_tokens`),
    /// so that an answer stopped there can be told from one the model finished.
    pub max_output_tokens: Option<u64>,
}

impl BridgeConfig {
    /// Defaults: 30 s to connect, 10 min of silence (a large prompt on a slow local GPU can take
    /// minutes before the first token; the handler's own timeouts are the real limit).
    pub fn new(upstream_base_url: &str, api_key: Option<String>) -> Self {
        Self::for_wire(Wire::Chat, upstream_base_url, api_key)
    }

    /// A proxy for `wire`, sending the key as `Authorization: Bearer` (see [`Self::with_auth`]).
    pub fn for_wire(wire: Wire, upstream_base_url: &str, api_key: Option<String>) -> Self {
        BridgeConfig {
            wire,
            upstream_base_url: upstream_base_url.to_string(),
            api_key,
            auth: UpstreamAuth::Bearer,
            log: Arc::new(|_| {}),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(600),
            max_output_tokens: None,
        }
    }

    pub fn with_max_output_tokens(mut self, cap: Option<u64>) -> Self {
        self.max_output_tokens = cap;
        self
    }

    pub fn with_auth(mut self, auth: UpstreamAuth) -> Self {
        self.auth = auth;
        self
    }

    pub fn with_log(mut self, log: impl Fn(&BridgeEvent) + Send + Sync + 'static) -> Self {
        self.log = Arc::new(log);
        self
    }
}

/// The key never shows up in logs, even through `{:?}`.
impl std::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("wire", &self.wire)
            .field("upstream_base_url", &self.upstream_base_url)
            .field("auth", &self.auth)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_output_tokens", &self.max_output_tokens)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BridgeEvent {
    /// A request was translated and is going upstream.
    Request {
        model: String,
        messages: usize,
        tools: usize,
    },
    /// Something was dropped or converted: tool kinds, OpenAI-only fields, `<tool_call>` text.
    Warning(String),
    /// The upstream failed; codex gets the same status (or a failed response), but may show
    /// only a generic text (it does for 500s), so this is the message to quote.
    UpstreamError(UpstreamError),
}

/// A warning and when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    /// RFC 3339 UTC with milliseconds, as handler.log writes it.
    pub ts: String,
    pub message: String,
}

/// What the chat endpoint said when it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamError {
    /// The HTTP status; `None` when there was no answer or the stream broke off.
    pub status: Option<u16>,
    /// No answer at all: the endpoint could not be reached (refused, DNS, TLS, timeout).
    pub unreachable: bool,
    /// The server's own message (`error.message` of its body), or why there was no answer.
    pub message: String,
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "the endpoint answered {s}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot listen on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    #[error("cannot start the bridge's runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot make a random token")]
    Random,
}

fn new_token() -> Result<String, BridgeError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| BridgeError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A running bridge. Dropping it stops the server and interrupts upstream calls in flight.
pub struct BridgeHandle {
    base_url: String,
    shared: Arc<shared::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the bridge on 127.0.0.1 and a free port. Needs no async caller.
pub fn start(config: BridgeConfig) -> Result<BridgeHandle, BridgeError> {
    let token = new_token()?;
    let prefix = config.wire.agent_prefix();
    let running = server::spawn(config, token)?;
    Ok(BridgeHandle {
        base_url: format!("http://{}{prefix}", running.addr),
        shared: running.shared,
        stop: Some(running.stop),
        thread: Some(running.thread),
    })
}

impl BridgeHandle {
    /// `http://127.0.0.1:PORT/v1` (codex's `model_providers.<id>.base_url`), or without
    /// `/v1` for [`Wire::Anthropic`] (Claude Code's `ANTHROPIC_BASE_URL`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// What the proxy does with a request: forward it, or translate it (`Chat`).
    pub fn wire(&self) -> Wire {
        self.shared.wire
    }

    /// The token accepted now. Give it to the agent in place of the real key; requests
    /// without it get 401.
    pub fn token(&self) -> String {
        self.shared
            .token
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Starts a turn: a new token, the only one accepted from now on, and an empty error and
    /// warning record.
    pub fn new_turn(&self) -> Result<String, BridgeError> {
        let token = new_token()?;
        self.set_token(token.clone());
        let _ = self.take_first_error();
        let _ = self.take_warnings();
        let _ = self.take_exchanges();
        Ok(token)
    }

    /// Ends the turn: its token stops working at once (replaced by one nobody knows) and calls
    /// still running upstream are cut off.
    pub fn end_turn(&self) {
        if let Ok(t) = new_token() {
            self.set_token(t);
        } else if let Ok(mut t) = self.shared.token.lock() {
            // No randomness: no token can match an empty one (an empty key is never given).
            t.clear();
        }
        self.shared.shutdown_agents();
    }

    fn set_token(&self, token: String) {
        if let Ok(mut t) = self.shared.token.lock() {
            *t = token;
        }
    }

    /// The first upstream failure with an HTTP status (else the first one), with the server's
    /// own message, for handler.log, the error reply and the turn's error kind.
    pub fn first_error(&self) -> Option<UpstreamError> {
        self.shared.first_error.lock().ok().and_then(|e| e.clone())
    }

    /// Like [`first_error`](Self::first_error), and clears it: a per-turn caller sees only the
    /// failures of its own turn.
    pub fn take_first_error(&self) -> Option<UpstreamError> {
        self.shared
            .first_error
            .lock()
            .ok()
            .and_then(|mut e| e.take())
    }

    /// Warnings since the last call (dropped tools and fields, converted `<tool_call>` text).
    pub fn take_warnings(&self) -> Vec<String> {
        self.take_stamped_warnings()
            .into_iter()
            .map(|w| w.message)
            .collect()
    }

    /// Like [`take_warnings`](Self::take_warnings), each with the time it happened.
    pub fn take_stamped_warnings(&self) -> Vec<Stamped> {
        self.shared
            .warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// How each answer since the turn began ended, with the server's token counts, in order.
    pub fn take_exchanges(&self) -> Vec<tally::Exchange> {
        self.shared
            .exchanges
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// Upstream calls still running (0 once codex is gone and the calls were cut off).
    pub fn in_flight(&self) -> usize {
        self.shared.agents.lock().map_or(0, |m| m.len())
    }

    /// Stops the server now (same as dropping the handle).
    pub fn shutdown(self) {}
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.shared.shutdown_agents();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for BridgeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        // Only ids depend on this; uniqueness within one run is enough.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("{t:x}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
