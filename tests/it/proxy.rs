//! The local credential proxy (`wg::bridge` in Responses and Anthropic passthrough): the
//! token of the current turn only, the real key only upstream, statuses, bodies and streams
//! passed through unchanged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use wg::bridge::{self, BridgeConfig, BridgeHandle, UpstreamAuth, Wire};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-real-upstream-key-for-proxy-tests";

fn proxy(wire: Wire, upstream: &str) -> BridgeHandle {
    bridge::start(BridgeConfig::for_wire(wire, upstream, Some(KEY.into()))).expect("proxy starts")
}

/// One request with a raw HTTP/1.1 client: (status, headers lower-cased, body). `None` when
/// the connection was closed without an answer.
fn send(
    base: &str,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: &str,
) -> Option<(u16, String, String)> {
    let addr = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some((k, v)) = auth {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Some((status, head, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn bearer(t: &str) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {t}")))
}

fn send_as(
    p: &BridgeHandle,
    path: &str,
    auth: Option<(&'static str, String)>,
) -> Option<(u16, String, String)> {
    send(
        p.base_url(),
        "POST",
        path,
        auth.as_ref().map(|(k, v)| (*k, v.as_str())),
        "{\"model\":\"m\",\"input\":\"hi\",\"stream\":true}",
    )
}

const SSE: &str = "event: response.created\ndata: {\"type\":\"response.created\"}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\"}\n\n";

#[tokio::test(flavor = "multi_thread")]
async fn responses_pass_through_with_the_real_key_and_only_with_the_current_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(SSE, "text/event-stream"))
        .mount(&server)
        .await;
    let p = proxy(Wire::Responses, &format!("{}/v1", server.uri()));
    assert!(p.base_url().starts_with("http://127.0.0.1:") && p.base_url().ends_with("/v1"));
    let first = p.new_turn().unwrap();
    let r = tokio::task::block_in_place(|| {
        (
            send_as(&p, "/v1/responses", bearer(&first)).unwrap(),
            send_as(&p, "/v1/responses", None).unwrap(),
            send_as(&p, "/v1/responses", bearer(KEY)).unwrap(),
        )
    });
    assert_eq!(r.0 .0, 200, "{r:?}");
    assert!(r.0 .1.contains("content-type: text/event-stream"), "{r:?}");
    assert_eq!(r.0 .2, SSE);
    assert_eq!(
        (r.1 .0, r.2 .0),
        (401, 401),
        "no token, the real key as token"
    );

    // A new turn: the old token is stale. After the turn ends no token works.
    let second = p.new_turn().unwrap();
    assert_ne!(first, second);
    let (stale, fresh) = tokio::task::block_in_place(|| {
        (
            send_as(&p, "/v1/responses", bearer(&first)).unwrap().0,
            send_as(&p, "/v1/responses", bearer(&second)).unwrap().0,
        )
    });
    assert_eq!((stale, fresh), (401, 200));
    p.end_turn();
    let after =
        tokio::task::block_in_place(|| send_as(&p, "/v1/responses", bearer(&second)).unwrap().0);
    assert_eq!(after, 401, "the token dies with its turn");
    assert_ne!(p.token(), second);

    // The endpoint saw the real key on every forwarded request and never a token.
    let seen = server.received_requests().await.unwrap();
    assert_eq!(seen.len(), 2, "only the authorized requests went upstream");
    for r in seen {
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("Bearer {KEY}")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_messages_pass_through_with_x_api_key_and_the_query() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/gw/v1/messages"))
        .and(query_param("beta", "true"))
        .and(header("x-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw("{\"ok\":1}", "application/json"))
        .mount(&server)
        .await;
    let p = bridge::start(
        BridgeConfig::for_wire(
            Wire::Anthropic,
            &format!("{}/gw", server.uri()),
            Some(KEY.into()),
        )
        .with_auth(UpstreamAuth::ApiKeyHeader),
    )
    .unwrap();
    assert!(!p.base_url().ends_with("/v1"));
    let t = p.new_turn().unwrap();
    let (ok, refused) = tokio::task::block_in_place(|| {
        (
            send_as(&p, "/v1/messages?beta=true", Some(("x-api-key", t.clone()))).unwrap(),
            send_as(
                &p,
                "/v1/messages?beta=true",
                Some(("x-api-key", "nope".into())),
            )
            .unwrap(),
        )
    });
    assert_eq!(ok.0, 200, "{ok:?}");
    assert_eq!(ok.2, "{\"ok\":1}");
    assert_eq!(refused.0, 401);
    let seen = server.received_requests().await.unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].headers.get("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn error_statuses_and_bodies_pass_through_unchanged() {
    let server = MockServer::start().await;
    for (code, p) in [(401u16, "/v1/a"), (429, "/v1/b"), (500, "/v1/c")] {
        Mock::given(path(p))
            .respond_with(ResponseTemplate::new(code).set_body_raw(
                format!("{{\"error\":{{\"message\":\"said {code} with {KEY}\"}}}}"),
                "application/json",
            ))
            .mount(&server)
            .await;
    }
    let p = proxy(Wire::Responses, &format!("{}/v1", server.uri()));
    let t = p.new_turn().unwrap();
    for (code, path) in [(401u16, "/v1/a"), (429, "/v1/b"), (500, "/v1/c")] {
        let r = tokio::task::block_in_place(|| send_as(&p, path, bearer(&t)).unwrap());
        assert_eq!(r.0, code, "{r:?}");
        assert!(r.2.contains(&format!("said {code}")), "{r:?}");
        let e = p.take_first_error().expect("recorded");
        assert_eq!(e.status, Some(code));
        assert!(!e.unreachable);
        assert!(
            !e.message.contains(KEY),
            "the key is redacted from what wg logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_endpoint_closes_the_connection_and_is_recorded() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = proxy(Wire::Responses, &format!("http://127.0.0.1:{port}/v1"));
    let t = p.new_turn().unwrap();
    let r = tokio::task::block_in_place(|| send_as(&p, "/v1/responses", bearer(&t)));
    assert!(r.is_none(), "no answer, as from the endpoint itself: {r:?}");
    let e = p.take_first_error().expect("recorded");
    assert!(e.unreachable && e.status.is_none(), "{e:?}");
    assert!(e.message.contains(&port.to_string()), "{e:?}");
}

/// The head, then the first event, reach the agent while the endpoint is still answering:
/// an endpoint that stalls after its headers looks the same through the proxy.
#[test]
fn heads_and_streams_are_passed_on_as_they_arrive() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let (go_on, wait) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (s, _) = upstream.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let mut s = s;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            .unwrap();
        s.flush().unwrap();
        // Each part waits until the client has seen the one before.
        for part in ["data: first\n\n", "data: last\n\n"] {
            wait.recv_timeout(Duration::from_secs(30)).unwrap();
            write!(s, "{:x}\r\n{part}\r\n", part.len()).unwrap();
            s.flush().unwrap();
        }
        s.write_all(b"0\r\n\r\n").unwrap();
    });
    let p = proxy(Wire::Responses, &format!("http://127.0.0.1:{port}/v1"));
    let t = p.new_turn().unwrap();
    let addr = p
        .base_url()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /v1/responses HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {t}\r\ncontent-length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    for (expect, not_yet) in [
        ("\r\n\r\n", "data: first"),
        ("data: first", "data: last"),
        ("data: last", "never"),
    ] {
        while !got.contains(expect) {
            let n = s
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {expect:?}: {e}; got {got:?}"));
            assert!(n > 0, "closed early: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(!got.contains(not_yet), "{got}");
        let _ = go_on.send(());
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    server.join().unwrap();
}
