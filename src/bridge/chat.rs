//! The Chat wire mode: takes codex's `POST /v1/responses`, sends the translated request to
//! `{upstream}/chat/completions`, and streams the answer back as Responses SSE events while it
//! arrives.
//!
//! The upstream call uses ureq (the project's one HTTP client, with TLS) on a plain thread per
//! request, forwarding lines over a channel. Each request gets its own agent so that when codex
//! goes away (or the proxy stops), `Agent::shutdown` interrupts a blocked read at once instead of
//! leaving a thread waiting on a silent server.

use std::io::BufRead;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::shared::{
    error_reply, full, redact, AgentGuard, RespBody, Shared, Unregister, MAX_REQUEST_BYTES,
};
use super::translate::{self, StreamTranslator};
use super::{BridgeEvent, UpstreamError};

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

pub(super) async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Response<RespBody> {
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
    let mut request: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                &format!("the request is not JSON: {e}"),
            )
        }
    };
    let cap = super::tally::apply_cap(&mut request, shared.max_output_tokens);
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
                unreachable: false,
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
                unreachable: true,
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
    tokio::spawn(pump(translator, up_rx, sse_tx, shared.clone(), cap));
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

/// Feeds upstream lines through the translator and the events out to codex; keeps how the
/// answer ended (`Shared::record_exchange`).
async fn pump(
    mut tr: StreamTranslator,
    mut up_rx: mpsc::Receiver<Upstream>,
    out: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    cap: Option<u64>,
) {
    let mut events = tr.start();
    loop {
        for x in events
            .iter()
            .filter_map(|e| super::tally::from_event(e, cap))
        {
            shared.record_exchange(x);
        }
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
                    unreachable: false,
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

/// The SSE body: frames from `pump`, ended when it drops its sender.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    _guard: AgentGuard,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
