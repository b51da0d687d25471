//! The bridge's HTTP side: a hyper 1.x server on 127.0.0.1 that takes codex's
//! `POST /v1/responses`, sends the translated request to `{upstream}/chat/completions`, and
//! streams the answer back as Responses SSE events while it arrives.
//!
//! The upstream call uses ureq (the project's one HTTP client, with TLS) on a plain thread per
//! request, forwarding lines over a channel. Each request gets its own agent so that when codex
//! goes away (or the bridge stops), `Agent::shutdown` interrupts a blocked read at once instead of
//! leaving a thread waiting on a silent server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::BufRead;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::translate::{self, StreamTranslator};
use super::{BridgeConfig, BridgeError, BridgeEvent, UpstreamError};

type RespBody = UnsyncBoxBody<Bytes, Infallible>;

/// Codex's requests run to tens of KB, long sessions to a few MB; this only stops abuse.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// State shared by the server, its requests, and the handle.
pub(super) struct Shared {
    pub token: String,
    chat_url: String,
    api_key: Option<String>,
    log: super::LogFn,
    connect_timeout: Duration,
    read_timeout: Duration,
    pub first_error: Mutex<Option<UpstreamError>>,
    pub warnings: Mutex<Vec<String>>,
    /// Agents of upstream calls still running, by request number.
    pub agents: Mutex<HashMap<u64, ureq::Agent>>,
    next_request: AtomicU64,
}

/// Warnings kept for `take_warnings` when nobody takes them; the log callback sees them all.
const MAX_KEPT_WARNINGS: usize = 1000;

/// Some servers quote the key they were given in their error text; it must not reach
/// handler.log or the outbox.
fn redact(message: &str, key: Option<&str>) -> String {
    match key {
        Some(k) if k.len() >= 4 && message.contains(k) => message.replace(k, "<redacted key>"),
        _ => message.to_string(),
    }
}

impl Shared {
    fn warn(&self, message: String) {
        let message = redact(&message, self.api_key.as_deref());
        (self.log)(&BridgeEvent::Warning(message.clone()));
        if let Ok(mut w) = self.warnings.lock() {
            if w.len() < MAX_KEPT_WARNINGS {
                w.push(message);
            }
        }
    }

    fn record_error(&self, mut err: UpstreamError) {
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

pub(super) struct Running {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    pub stop: oneshot::Sender<()>,
    pub thread: std::thread::JoinHandle<()>,
}

/// Binds 127.0.0.1 on a free port and serves on a thread with its own small runtime, so callers
/// need not be async and the bridge lives exactly as long as its handle.
pub(super) fn spawn(config: BridgeConfig, token: String) -> Result<Running, BridgeError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(BridgeError::Bind)?;
    listener.set_nonblocking(true).map_err(BridgeError::Bind)?;
    let addr = listener.local_addr().map_err(BridgeError::Bind)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("wg-bridge")
        .enable_all()
        .build()
        .map_err(BridgeError::Runtime)?;
    let shared = Arc::new(Shared {
        token,
        chat_url: format!(
            "{}/chat/completions",
            config.upstream_base_url.trim_end_matches('/')
        ),
        api_key: config.api_key,
        log: config.log,
        connect_timeout: config.connect_timeout,
        read_timeout: config.read_timeout,
        first_error: Mutex::new(None),
        warnings: Mutex::new(Vec::new()),
        agents: Mutex::new(HashMap::new()),
        next_request: AtomicU64::new(1),
    });
    let (stop, stop_rx) = oneshot::channel();
    let serve_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("wg-bridge".into())
        .spawn(move || {
            runtime.block_on(accept_loop(listener, serve_shared, stop_rx));
            // Dropping the runtime cancels every connection task; their guards interrupt the
            // upstream calls they own.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(BridgeError::Runtime)?;
    Ok(Running {
        addr,
        shared,
        stop,
        thread,
    })
}

async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            shared.warn(format!("bridge cannot listen: {e}"));
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(req, shared).await) }
                    });
                    // A client that hangs up mid-answer is normal (codex was stopped).
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        }
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same_secret(given.trim().as_bytes(), token.as_bytes()))
}

/// An OpenAI-style error reply: codex quotes `error.message` for 4xx statuses.
fn error_reply(status: StatusCode, message: &str) -> Response<RespBody> {
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

/// A Responses stream that only says the response failed with `message`.
fn failed_stream(model: &str, message: &str) -> Response<RespBody> {
    let mut tr = StreamTranslator::new(
        &format!("resp_{}", super::random_hex(12)),
        model,
        0,
        translate::ToolInfo::default(),
    );
    let mut events = tr.start();
    events.extend(tr.fail(message));
    let frames: String = events.iter().map(translate::sse_frame).collect();
    let mut resp = Response::new(full(frames));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    resp
}

fn full(s: String) -> RespBody {
    Full::new(Bytes::from(s)).boxed_unsync()
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Response<RespBody> {
    if !authorized(&req, &shared.token) {
        return error_reply(
            StatusCode::UNAUTHORIZED,
            "this wg bridge needs its per-run token as the bearer key",
        );
    }
    let path = req.uri().path().trim_end_matches('/');
    if path != "/v1/responses" && path != "/responses" {
        return error_reply(
            StatusCode::NOT_FOUND,
            "the wg bridge serves only POST /v1/responses",
        );
    }
    if req.method() != Method::POST {
        return error_reply(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let bytes = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request: {e}"),
            )
        }
    };
    let request: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                &format!("the request is not JSON: {e}"),
            )
        }
    };
    let chat = match translate::request_to_chat(&request) {
        Ok(c) => c,
        Err(e) => return error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    for w in &chat.warnings {
        shared.warn(w.clone());
    }
    (shared.log)(&BridgeEvent::Request {
        model: chat.model.clone(),
        messages: chat.body["messages"].as_array().map_or(0, Vec::len),
        tools: chat.body["tools"].as_array().map_or(0, Vec::len),
    });

    let number = shared.next_request.fetch_add(1, Ordering::Relaxed);
    let agent = crate::http::streaming_agent(shared.connect_timeout, shared.read_timeout);
    let guard = AgentGuard {
        shared: shared.clone(),
        number,
    };
    if let Ok(mut m) = shared.agents.lock() {
        m.insert(number, agent.clone());
    }
    let (up_tx, mut up_rx) = mpsc::channel::<Upstream>(64);
    let worker_shared = shared.clone();
    let body = chat.body;
    let spawned = std::thread::Builder::new()
        .name("wg-bridge-upstream".into())
        .spawn(move || upstream_call(&worker_shared, number, agent, &body, up_tx));
    if let Err(e) = spawned {
        return error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot start the upstream call: {e}"),
        );
    }

    // `guard` lives across this await: if hyper drops this future because codex hung up while
    // the server had not answered yet, the upstream call is interrupted.
    match up_rx.recv().await {
        Some(Upstream::Head) => {}
        Some(Upstream::Status { status, body }) => {
            let message = redact(&translate::error_message(&body), shared.api_key.as_deref());
            shared.record_error(UpstreamError {
                status: Some(status),
                message: message.clone(),
            });
            if status >= 500 || status == 429 {
                // codex replaces a 5xx body with a generic "high demand" text and a 429 with
                // "exceeded retry limit", so the server's own words would never reach the
                // user. A failed response inside a 200 stream is shown as it is.
                return failed_stream(
                    &chat.model,
                    &format!("the chat endpoint answered {status}: {message}"),
                );
            }
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return error_reply(status, &message);
        }
        Some(Upstream::Failed(reason)) => {
            let message = format!("cannot reach the chat endpoint: {reason}");
            shared.record_error(UpstreamError {
                status: None,
                message: message.clone(),
            });
            // As for 5xx: codex would show a generic text for a 502.
            return failed_stream(&chat.model, &message);
        }
        Some(_) | None => {
            return error_reply(
                StatusCode::BAD_GATEWAY,
                "the upstream call ended without an answer",
            )
        }
    }

    let response_id = format!("resp_{}", super::random_hex(12));
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let translator = StreamTranslator::new(&response_id, &chat.model, created, chat.tools);
    let (sse_tx, sse_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(pump(translator, up_rx, sse_tx, shared.clone()));
    let mut resp = Response::new(
        ChannelBody {
            rx: sse_rx,
            _guard: guard,
        }
        .boxed_unsync(),
    );
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    resp
}

/// Feeds upstream lines through the translator and the events out to codex.
async fn pump(
    mut tr: StreamTranslator,
    mut up_rx: mpsc::Receiver<Upstream>,
    out: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
) {
    let mut events = tr.start();
    loop {
        let frames: String = events.iter().map(translate::sse_frame).collect();
        if !frames.is_empty() && out.send(Bytes::from(frames)).await.is_err() {
            return; // codex hung up; dropping up_rx and the body's guard ends the upstream call
        }
        for w in tr.take_warnings() {
            shared.warn(w);
        }
        let Some(msg) = up_rx.recv().await else {
            break;
        };
        events = match msg {
            Upstream::Data(line) => match serde_json::from_str::<Value>(&line) {
                Ok(chunk) => tr.push_chunk(&chunk),
                Err(_) => {
                    shared.warn(format!(
                        "skipped a stream line that is not JSON: {}",
                        line.chars().take(200).collect::<String>()
                    ));
                    Vec::new()
                }
            },
            Upstream::Whole(text) => match serde_json::from_str::<Value>(&text) {
                Ok(completion) => {
                    let mut ev = tr.push_completion(&completion);
                    ev.extend(tr.finish());
                    ev
                }
                Err(_) => tr.fail(&format!(
                    "the chat endpoint answered neither a stream nor JSON: {}",
                    translate::error_message(&text)
                )),
            },
            Upstream::End => tr.finish(),
            Upstream::Failed(reason) => {
                tr.fail(&format!("the chat endpoint's stream broke off: {reason}"))
            }
            Upstream::Head | Upstream::Status { .. } => Vec::new(),
        };
        if let Some(m) = tr.failure() {
            if events.iter().any(|e| e["type"] == "response.failed") {
                shared.record_error(UpstreamError {
                    status: None,
                    message: m.to_string(),
                });
            }
        }
    }
    let frames: String = events.iter().map(translate::sse_frame).collect();
    if !frames.is_empty() {
        let _ = out.send(Bytes::from(frames)).await;
    }
    for w in tr.take_warnings() {
        shared.warn(w);
    }
}

/// What the upstream thread reports, in order: `Head` or `Status` or `Failed` first.
#[derive(Debug)]
enum Upstream {
    /// A 2xx answer; lines follow.
    Head,
    /// A non-2xx answer with its body.
    Status {
        status: u16,
        body: String,
    },
    /// One `data:` payload of a stream.
    Data(String),
    /// A whole non-streamed body.
    Whole(String),
    /// The stream ended (`[DONE]` or end of body).
    End,
    Failed(String),
}

fn upstream_call(
    shared: &Shared,
    number: u64,
    agent: ureq::Agent,
    body: &Value,
    tx: mpsc::Sender<Upstream>,
) {
    let _done = Unregister { shared, number };
    let mut req = agent
        .post(&shared.chat_url)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream");
    if let Some(key) = &shared.api_key {
        req = req.header("authorization", &format!("Bearer {key}"));
    }
    let bytes = body.to_string();
    let mut resp = match req.send(bytes.as_bytes()) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Upstream::Failed(e.to_string()));
            return;
        }
    };
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let _ = tx.blocking_send(Upstream::Status { status, body: text });
        return;
    }
    if tx.blocking_send(Upstream::Head).is_err() {
        return;
    }
    let is_stream = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("event-stream"));
    if !is_stream {
        let msg = match resp.body_mut().read_to_string() {
            Ok(t) => Upstream::Whole(t),
            Err(e) => Upstream::Failed(e.to_string()),
        };
        let _ = tx.blocking_send(msg);
        return;
    }
    let reader = std::io::BufReader::new(resp.body_mut().as_reader());
    for line in reader.lines() {
        let msg = match line {
            Ok(l) => {
                let Some(data) = l.strip_prefix("data:") else {
                    continue; // `event:`, comments and blank separators carry nothing we need
                };
                let data = data.trim();
                if data == "[DONE]" {
                    break;
                }
                Upstream::Data(data.to_string())
            }
            Err(e) => {
                let _ = tx.blocking_send(Upstream::Failed(e.to_string()));
                return;
            }
        };
        if tx.blocking_send(msg).is_err() {
            return; // codex is gone; stop reading
        }
    }
    let _ = tx.blocking_send(Upstream::End);
}

/// Removes a finished upstream call from the registry (`BridgeHandle::in_flight`).
struct Unregister<'a> {
    shared: &'a Shared,
    number: u64,
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
struct AgentGuard {
    shared: Arc<Shared>,
    number: u64,
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

/// The SSE body: frames from `pump`, ended when it drops its sender.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    _guard: AgentGuard,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
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

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
