//! The proxy's HTTP side: a hyper 1.x server on 127.0.0.1 that checks each request for the
//! current turn's token and hands it to its wire mode: `chat.rs` translates to Chat
//! Completions, `passthrough.rs` forwards Responses and Anthropic Messages as they are.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::sync::oneshot;

use super::shared::{error_reply, RespBody, Shared};
use super::{BridgeConfig, BridgeError};

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
        token: Mutex::new(token),
        wire: config.wire,
        upstream_base: config.upstream_base_url.trim_end_matches('/').to_string(),
        auth: config.auth,
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
        max_output_tokens: config.max_output_tokens,
        exchanges: Mutex::new(Vec::new()),
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
                        async move { serve(req, shared).await }
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

/// The current token as `Authorization: Bearer` (codex, claude with `auth = "bearer"`) or
/// `x-api-key` (claude with `auth = "api-key"`).
fn authorized(req: &Request<Incoming>, shared: &Shared) -> bool {
    let Ok(token) = shared.token.lock() else {
        return false;
    };
    let h = req.headers();
    let bearer = h
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let api_key = h.get("x-api-key").and_then(|v| v.to_str().ok());
    [bearer, api_key]
        .into_iter()
        .flatten()
        .any(|given| !token.is_empty() && same_secret(given.trim().as_bytes(), token.as_bytes()))
}

/// Every request: the token first, then the wire mode's own handling. An `Err` makes hyper
/// drop the connection without an answer (the passthrough's "endpoint unreachable").
async fn serve(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<RespBody>, std::io::Error> {
    if !authorized(&req, &shared) {
        return Ok(error_reply(
            StatusCode::UNAUTHORIZED,
            "this wg proxy needs the current turn's token as the key; a token dies when its \
             turn ends",
        ));
    }
    match shared.wire {
        super::Wire::Chat => Ok(super::chat::handle(req, shared).await),
        super::Wire::Responses | super::Wire::Anthropic => {
            super::passthrough::forward(req, shared).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
