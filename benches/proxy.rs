//! Per-request overhead of the local credential proxy (target: a few ms at most). One local
//! endpoint answers a streamed Responses reply of about 8 KB; the same request is sent to it
//! directly and through the proxy, alternating, each on a new connection (as each codex turn
//! is a new process). Prints the medians, their difference and ratio, measured in one run.
//! `cargo bench --bench proxy` (`RUNS=N` to change the 300 requests per side).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use wg::bridge::{self, BridgeConfig, Wire};

const KEY: &str = "sk-bench-not-a-secret";

/// An endpoint that answers every request with the same SSE body, one thread per connection.
fn endpoint() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let event = format!(
        "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"delta\":\"{}\"}}\n\n",
        "x".repeat(200)
    );
    let body =
        event.repeat(32) + "event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n";
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(s) = conn else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut req = vec![0; len];
                let _ = r.read_exact(&mut req);
                let mut s = s;
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// One request on a new connection, body read to the end.
fn request(url: &str, bearer: &str, payload: &[u8]) -> Duration {
    let agent = wg::http::agent(Duration::from_secs(10));
    let start = Instant::now();
    let mut resp = agent
        .post(url)
        .header("authorization", &format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .send(payload)
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.body_mut().read_to_vec().expect("body");
    assert!(body.ends_with(b"\n\n"));
    start.elapsed()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let port = endpoint();
    let upstream = format!("http://127.0.0.1:{port}/v1");
    let proxy = bridge::start(BridgeConfig::for_wire(
        Wire::Responses,
        &upstream,
        Some(KEY.into()),
    ))
    .expect("proxy starts");
    let token = proxy.new_turn().expect("token");
    // A request of the size codex sends on a first turn (tens of KB of instructions and tools).
    let payload = format!(
        "{{\"model\":\"m\",\"stream\":true,\"input\":\"{}\"}}",
        "p".repeat(30_000)
    );
    let direct_url = format!("{upstream}/responses");
    let proxy_url = format!("{}/responses", proxy.base_url());
    for _ in 0..20 {
        request(&direct_url, KEY, payload.as_bytes());
        request(&proxy_url, &token, payload.as_bytes());
    }
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Alternate the order so drift on a shared machine hits both sides alike.
        if i % 2 == 0 {
            direct.push(request(&direct_url, KEY, payload.as_bytes()));
            proxied.push(request(&proxy_url, &token, payload.as_bytes()));
        } else {
            proxied.push(request(&proxy_url, &token, payload.as_bytes()));
            direct.push(request(&direct_url, KEY, payload.as_bytes()));
        }
    }
    let (d, p) = (median(&mut direct), median(&mut proxied));
    println!(
        "proxy overhead, median of {runs} requests each: direct {:.3} ms, through the proxy {:.3} ms, \
         difference {:.3} ms, ratio {:.2} (target: difference of a few ms at most)",
        d.as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3,
        (p.as_secs_f64() - d.as_secs_f64()) * 1e3,
        p.as_secs_f64() / d.as_secs_f64()
    );
}
