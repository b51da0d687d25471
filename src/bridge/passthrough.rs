//! Responses and Anthropic Messages requests, forwarded as they are: the agent's token is
//! swapped for the real key, everything else (path, query, headers, body) goes on unchanged,
//! and the endpoint's status, headers and body come back unchanged, streamed while they
//! arrive. So the agent's own retries, streaming and error texts behave as they would against
//! the endpoint itself. Two differences only: an endpoint that cannot be reached makes the
//! proxy close the agent's connection without an answer (the agent then reports a connection
//! error, as it would have), and the reason is kept for the handler.
//!
//! The upstream call runs on a plain thread with its own ureq agent, as in the Chat bridge, so
//! that a call whose agent went away is interrupted at once.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::shared::{
    error_reply, full, redact, AgentGuard, RespBody, Shared, Unregister, MAX_REQUEST_BYTES,
};
use super::{tally, translate, UpstreamAuth, UpstreamError};

/// Chunks read from the endpoint; SSE events are small, a read returns what has arrived.
const READ_CHUNK: usize = 16 * 1024;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and the ones the
/// proxy sets itself.
const NOT_FORWARDED: [&str; 12] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "x-api-key",
];

/// The endpoint URL for the agent's `path_and_query`: the agent's prefix (`/v1` for codex)
/// taken off, the rest appended to the upstream base's path, and the base's own query (e.g.
/// `?api-version=…`) kept ahead of the agent's. `None` for a path outside the prefix.
pub(super) fn target_url(
    upstream_base: &str,
    prefix: &str,
    path_and_query: &str,
) -> Option<String> {
    let rest = path_and_query.strip_prefix(prefix)?;
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    let (base, base_query) = match upstream_base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (upstream_base, None),
    };
    let (rest_path, rest_query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let query: Vec<&str> = [base_query, rest_query]
        .into_iter()
        .flatten()
        .filter(|q| !q.is_empty())
        .collect();
    let mut url = format!("{}{rest_path}", base.trim_end_matches('/'));
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    Some(url)
}

/// The agent's request headers that go on to the endpoint. `accept-encoding` stays behind too:
/// the HTTP client asks for gzip itself and hands the body on decoded.
pub(super) fn request_headers(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            !NOT_FORWARDED.contains(&k) && k != "accept-encoding"
        })
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// The endpoint's response headers that go back to the agent (the body is re-framed).
pub(super) fn response_headers(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(k, _)| !NOT_FORWARDED.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// What the upstream thread reports: `Head` or `Failed` first, then chunks.
enum Piece {
    Head {
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
    },
    Chunk(Bytes),
    /// The body broke off after the head.
    Broken(std::io::Error),
    /// No answer at all.
    Failed(String),
}

pub(super) async fn forward(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<RespBody>, std::io::Error> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let Some(url) = target_url(
        &shared.upstream_base,
        shared.wire.agent_prefix(),
        &path_and_query,
    ) else {
        return Ok(error_reply(
            StatusCode::NOT_FOUND,
            &format!(
                "the wg proxy forwards only paths under {}/",
                shared.wire.agent_prefix()
            ),
        ));
    };
    let method = req.method().clone();
    let headers = request_headers(req.headers());
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return Ok(error_reply(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request: {e}"),
            ))
        }
    };

    let (body, scan) = watch_responses(&shared, &method, &url, body);
    let number = shared.next_request.fetch_add(1, Ordering::Relaxed);
    let agent = crate::http::streaming_agent(shared.connect_timeout, shared.read_timeout);
    if let Ok(mut m) = shared.agents.lock() {
        m.insert(number, agent.clone());
    }
    // Lives as long as the answer's body: dropped when the agent hangs up, it ends the call.
    let guard = AgentGuard {
        shared: shared.clone(),
        number,
    };
    let (tx, mut rx) = mpsc::channel::<Piece>(64);
    let worker_shared = shared.clone();
    let request = Upstream {
        method,
        url: url.clone(),
        headers,
        body,
    };
    let spawned = std::thread::Builder::new()
        .name("wg-proxy-upstream".into())
        .spawn(move || call(&worker_shared, number, agent, request, tx));
    if let Err(e) = spawned {
        if let Ok(mut m) = shared.agents.lock() {
            m.remove(&number);
        }
        return Ok(error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot start the upstream call: {e}"),
        ));
    }

    let (status, headers) = match rx.recv().await {
        Some(Piece::Head { status, headers }) => (status, headers),
        Some(Piece::Failed(reason)) => {
            shared.record_error(UpstreamError {
                status: None,
                unreachable: true,
                message: format!("cannot reach {url}: {reason}"),
            });
            // No answer, as from the endpoint itself.
            return Err(std::io::Error::other("the endpoint cannot be reached"));
        }
        Some(Piece::Broken(e)) => return Err(e),
        Some(Piece::Chunk(_)) | None => {
            return Err(std::io::Error::other(
                "the upstream call ended without an answer",
            ))
        }
    };
    let mut builder = Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    if !(200..300).contains(&status) {
        // Error bodies are small: read whole, so the server's own message can be kept for
        // handler.log while the agent gets it unchanged.
        let mut body = Vec::new();
        while let Some(p) = rx.recv().await {
            match p {
                Piece::Chunk(b) => body.extend_from_slice(&b),
                Piece::Broken(_) | Piece::Failed(_) => break,
                Piece::Head { .. } => {}
            }
        }
        let text = String::from_utf8_lossy(&body);
        shared.record_error(UpstreamError {
            status: Some(status),
            unreachable: false,
            message: redact(&translate::error_message(&text), shared.api_key.as_deref()),
        });
        return builder.body(full(body)).map_err(std::io::Error::other);
    }
    let stream = StreamBody { rx, scan, guard };
    builder
        .body(stream.boxed_unsync())
        .map_err(std::io::Error::other)
}

/// A codex request for an answer (`POST …/responses`) gets the configured output cap when it
/// has none, and its answer is watched for how it ends; every other request passes untouched.
fn watch_responses(
    shared: &Shared,
    method: &hyper::Method,
    url: &str,
    body: Bytes,
) -> (Bytes, Option<tally::SseScan>) {
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    if shared.wire != super::Wire::Responses
        || method != hyper::Method::POST
        || !path.ends_with("/responses")
    {
        return (body, None);
    }
    let Ok(mut request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (body, None);
    };
    let had = tally::request_cap(&request);
    let cap = tally::apply_cap(&mut request, shared.max_output_tokens);
    let body = match serde_json::to_vec(&request) {
        Ok(b) if had != cap => Bytes::from(b),
        _ => body,
    };
    (body, Some(tally::SseScan::new(cap)))
}

struct Upstream {
    method: hyper::Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
}

fn call(shared: &Shared, number: u64, agent: ureq::Agent, up: Upstream, tx: mpsc::Sender<Piece>) {
    let _done = Unregister { shared, number };
    let mut builder = ureq::http::Request::builder()
        .method(up.method.as_str())
        .uri(&up.url);
    for (k, v) in &up.headers {
        builder = builder.header(k.as_str(), v.as_slice());
    }
    if let Some(key) = &shared.api_key {
        builder = match shared.auth {
            UpstreamAuth::Bearer => builder.header("authorization", format!("Bearer {key}")),
            UpstreamAuth::ApiKeyHeader => builder.header("x-api-key", key.as_str()),
        };
    }
    let request = match builder.body(up.body.to_vec()) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Piece::Failed(e.to_string()));
            return;
        }
    };
    let mut resp = match agent.run(request) {
        Ok(r) => r,
        Err(e) => {
            let reason = redact(&e.to_string(), shared.api_key.as_deref());
            let _ = tx.blocking_send(Piece::Failed(reason));
            return;
        }
    };
    let head = Piece::Head {
        status: resp.status().as_u16(),
        headers: response_headers(resp.headers()),
    };
    if tx.blocking_send(head).is_err() {
        return;
    }
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let piece = match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => Piece::Chunk(Bytes::copy_from_slice(&buf[..n])),
            Err(e) => Piece::Broken(e),
        };
        let broken = matches!(piece, Piece::Broken(_));
        if tx.blocking_send(piece).is_err() || broken {
            return; // the agent is gone, or the stream is over
        }
    }
}

/// The streamed body: chunks as they arrive; an upstream break aborts the connection. A
/// Responses answer is read on its way through (`scan`) and its end kept when it is over.
struct StreamBody {
    rx: mpsc::Receiver<Piece>,
    scan: Option<tally::SseScan>,
    guard: AgentGuard,
}

impl StreamBody {
    fn ended(&mut self) {
        if let Some(x) = self.scan.take().and_then(tally::SseScan::unreported) {
            self.guard.shared.record_exchange(x);
        }
    }
}

impl http_body::Body for StreamBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        loop {
            return match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Piece::Chunk(b))) => {
                    if let Some(x) = self.scan.as_mut().and_then(|s| s.feed(&b)) {
                        // Kept before the agent gets the chunk: it may hang up right after.
                        self.guard.shared.record_exchange(x);
                    }
                    Poll::Ready(Some(Ok(http_body::Frame::data(b))))
                }
                Poll::Ready(Some(Piece::Broken(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Piece::Failed(m))) => {
                    Poll::Ready(Some(Err(std::io::Error::other(m))))
                }
                Poll::Ready(Some(Piece::Head { .. })) => continue,
                Poll::Ready(None) => {
                    self.ended();
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_onto_the_upstream_base() {
        let t = |base, prefix, p| target_url(base, prefix, p);
        assert_eq!(
            t("https://llm.example/v1", "/v1", "/v1/responses").as_deref(),
            Some("https://llm.example/v1/responses")
        );
        assert_eq!(
            t("https://llm.example/v1/", "/v1", "/v1/models?x=1").as_deref(),
            Some("https://llm.example/v1/models?x=1")
        );
        assert_eq!(
            t("https://gw.example/anthropic", "", "/v1/messages?beta=true").as_deref(),
            Some("https://gw.example/anthropic/v1/messages?beta=true")
        );
        assert_eq!(
            t(
                "https://az.example/v1?api-version=1",
                "/v1",
                "/v1/responses?b=2"
            )
            .as_deref(),
            Some("https://az.example/v1/responses?api-version=1&b=2")
        );
        assert_eq!(t("https://llm.example/v1", "/v1", "/v2/x"), None);
        assert_eq!(t("https://llm.example/v1", "/v1", "/v1x"), None);
    }

    #[test]
    fn the_agents_credentials_and_connection_headers_stay_behind() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer tok"),
            ("x-api-key", "tok"),
            ("host", "127.0.0.1:1"),
            ("content-length", "3"),
            ("connection", "keep-alive"),
            ("accept-encoding", "gzip"),
            ("anthropic-version", "2023-06-01"),
            ("content-type", "application/json"),
        ] {
            h.insert(
                hyper::header::HeaderName::from_static(k),
                hyper::header::HeaderValue::from_static(v),
            );
        }
        let names: Vec<String> = request_headers(&h).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["anthropic-version", "content-type"]);
        let back: Vec<String> = response_headers(&h).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            back,
            ["accept-encoding", "anthropic-version", "content-type"]
        );
    }
}
