//! What every request path of the proxy shares: the turn's token and the upstream's settings
//! (`Shared`), the answer-body type and its helpers, and the guards that stop an upstream call
//! when the request it serves goes away.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::{BridgeEvent, UpstreamError};

/// A body error aborts the connection mid-answer, which is what the agent would have seen had
/// the endpoint's own stream broken off.
pub(super) type RespBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Codex's requests run to tens of KB, long sessions to a few MB; this only stops abuse.
pub(super) const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// State shared by the server, its requests, and the handle.
pub(super) struct Shared {
    /// The only token accepted now; replaced for every turn and when a turn ends.
    pub token: Mutex<String>,
    pub wire: super::Wire,
    /// The endpoint's base URL as configured (with `/v1` for OpenAI-style endpoints).
    pub upstream_base: String,
    pub chat_url: String,
    pub api_key: Option<String>,
    pub auth: super::UpstreamAuth,
    pub log: super::LogFn,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub first_error: Mutex<Option<UpstreamError>>,
    /// Each warning with the time it happened (`BridgeHandle::take_stamped_warnings`).
    pub warnings: Mutex<Vec<super::Stamped>>,
    /// Put into every Responses request that has no `max_output_tokens` of its own.
    pub max_output_tokens: Option<u64>,
    /// How each answer of the turn ended, with the server's token counts.
    pub exchanges: Mutex<Vec<super::tally::Exchange>>,
    /// Agents of upstream calls still running, by request number.
    pub agents: Mutex<HashMap<u64, ureq::Agent>>,
    pub next_request: AtomicU64,
}

/// Warnings kept for `take_warnings` when nobody takes them; the log callback sees them all.
const MAX_KEPT_WARNINGS: usize = 1000;

/// Some servers quote the key they were given in their error text; it must not reach
/// handler.log or the outbox.
pub(super) fn redact(message: &str, key: Option<&str>) -> String {
    match key {
        Some(k) if k.len() >= 4 && message.contains(k) => message.replace(k, "<redacted key>"),
        _ => message.to_string(),
    }
}

impl Shared {
    pub fn warn(&self, message: String) {
        let message = redact(&message, self.api_key.as_deref());
        (self.log)(&BridgeEvent::Warning(message.clone()));
        if let Ok(mut w) = self.warnings.lock() {
            if w.len() < MAX_KEPT_WARNINGS {
                w.push(super::Stamped {
                    ts: crate::time::now_rfc3339(),
                    message,
                });
            }
        }
    }

    /// Keeps how one answer ended, for the handler's reading of the turn.
    pub fn record_exchange(&self, x: super::tally::Exchange) {
        if let Ok(mut e) = self.exchanges.lock() {
            e.push(x);
        }
    }

    pub fn record_error(&self, mut err: UpstreamError) {
        err.message = redact(&err.message, self.api_key.as_deref());
        (self.log)(&BridgeEvent::UpstreamError(err.clone()));
        // The first failure with a status is the one about the request: later ones may be
        // a gateway's cooldown answering codex's retries.
        if let Ok(mut e) = self.first_error.lock() {
            if e.as_ref().is_none_or(|old| old.status.is_none()) {
                *e = Some(err);
            }
        }
    }

    /// Interrupts every upstream call still running (the bridge is stopping).
    pub fn shutdown_agents(&self) {
        let agents: Vec<ureq::Agent> = match self.agents.lock() {
            Ok(mut m) => m.drain().map(|(_, a)| a).collect(),
            Err(_) => return,
        };
        for a in agents {
            a.shutdown();
        }
    }
}

/// An OpenAI-style error reply: codex quotes `error.message` for 4xx statuses.
pub(super) fn error_reply(status: StatusCode, message: &str) -> Response<RespBody> {
    let body = json!({"error": {
        "message": message,
        "type": if status.is_client_error() { "invalid_request_error" } else { "server_error" },
        "code": status.as_u16(),
    }});
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(super) fn full(s: impl Into<Bytes>) -> RespBody {
    Full::new(s.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Removes a finished upstream call from the registry (`BridgeHandle::in_flight`).
pub(super) struct Unregister<'a> {
    pub shared: &'a Shared,
    pub number: u64,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.agents.lock() {
            m.remove(&self.number);
        }
    }
}

/// Interrupts the upstream call when the request it serves is dropped (answered, or abandoned
/// by codex). Harmless after the call has finished.
pub(super) struct AgentGuard {
    pub shared: Arc<Shared>,
    pub number: u64,
}

impl Drop for AgentGuard {
    fn drop(&mut self) {
        let agent = match self.shared.agents.lock() {
            Ok(m) => m.get(&self.number).cloned(),
            Err(_) => None,
        };
        if let Some(a) = agent {
            a.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_redacted_from_messages() {
        assert_eq!(
            redact("Incorrect API key provided: sk-abc123", Some("sk-abc123")),
            "Incorrect API key provided: <redacted key>"
        );
        assert_eq!(redact("no key here", Some("sk-abc123")), "no key here");
        assert_eq!(redact("a", None), "a");
    }
}
