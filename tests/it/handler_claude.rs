//! `wg handler` with the real Claude Code CLI against wiremock stubs of the Anthropic Messages
//! API (`POST /v1/messages?beta=true`).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::project::{
    assert_no_key, claude_env, claude_env_with, expect_failure, outbox, read, status,
};
use crate::common::stub::{anthropic_sse, messages, text_response, ClaudeTool, KEY};

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// The user text of a Messages request (the replayed conversation).
fn user_text(r: &Request) -> String {
    let b = body(r);
    let mut s = String::new();
    for m in b["messages"].as_array().unwrap() {
        if m["role"] != "user" {
            continue;
        }
        match &m["content"] {
            Value::String(t) => s.push_str(t),
            Value::Array(parts) => {
                for p in parts {
                    s.push_str(p["text"].as_str().unwrap_or(""));
                    s.push('\n');
                }
            }
            _ => {}
        }
    }
    s
}

/// The pids of running processes whose command line contains `needle`.
fn procs_running(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let c = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if c.contains(needle) {
            out.push((pid, c));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_text_turn_lands_in_the_outbox_and_the_key_stays_off_argv() {
    let server = MockServer::start().await;
    // The binary first: a skipped test must not leave an unmet mock expectation.
    let Some(env) = claude_env(&server.uri()) else {
        return;
    };
    messages()
        // Slow enough to catch the CLI running and read its /proc entries.
        .respond_with(text_response("hi from the stub").set_delay(Duration::from_millis(700)))
        .expect(1)
        .mount(&server)
        .await;
    env.wg(&["add", "Say hi", "-d", "Greet the user."]).ok();
    let child = env
        .command(&["handler", "say-hi"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let needle = env.tmp.path().display().to_string();
    let mut seen = Vec::new();
    wait_until!(Duration::from_secs(10), || {
        seen = procs_running("--output-format stream-json")
            .into_iter()
            .filter(|(pid, _)| {
                let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
                cwd.display().to_string().starts_with(&needle)
            })
            .collect();
        !seen.is_empty()
    });
    assert!(!seen.is_empty(), "claude never seen running");
    for (pid, cmdline) in &seen {
        assert!(!cmdline.contains(KEY), "key on argv of {pid}: {cmdline}");
        // The CLI gets the credential proxy's address and the turn's token, under the
        // variable it reads the key from; never the key, never the configured variable.
        let environ = String::from_utf8_lossy(
            &std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default(),
        )
        .replace('\0', "\n");
        assert!(environ.contains("ANTHROPIC_API_KEY="), "{environ}");
        assert!(
            environ.contains("ANTHROPIC_BASE_URL=http://127.0.0.1:"),
            "{environ}"
        );
        assert!(!environ.contains(KEY), "the key is in claude's environment");
        assert!(!environ.contains("WG_API_KEY="), "{environ}");
    }
    let run = crate::common::to_run(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.stdout.trim(), "hi from the stub");

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].headers.get("x-api-key").unwrap(), KEY);
    assert_eq!(body(&reqs[0])["model"], "qwen3-coder");
    let prompt = user_text(&reqs[0]);
    assert!(prompt.contains("Task say-hi: Say hi") && prompt.contains("Greet the user."));

    let out = outbox(&env, "say-hi");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["role"], "assistant");
    assert_eq!(out[0]["text"], "hi from the stub");
    assert_eq!(out[0]["executor"], "claude");
    assert_eq!(out[0]["usage"]["input_tokens"], 40);
    assert_eq!(out[0]["usage"]["output_tokens"], 6);
    assert!(out[0]["claude_version"]
        .as_str()
        .unwrap()
        .starts_with("2.1.330"));
    // No price configured: the CLI's invented figure is not recorded.
    assert!(out[0].get("cost_usd").is_none());
    let log = read(&env, "say-hi", "handler.log");
    for needle in [
        " turn=1 spawn argv=",
        "--dangerously-skip-permissions",
        " turn=1 turn.end status=ok exit_code=0 ",
    ] {
        assert!(log.contains(needle), "{needle} missing:\n{log}");
    }
    let events = read(&env, "say-hi", "events.jsonl");
    assert!(events.contains(r#""type":"result""#) && events.contains(r#""subtype":"init""#));
    assert_eq!(status(&env, "say-hi"), "waiting");
    let state = env.wg_dir().join("tasks/say-hi/claude");
    assert!(state.join("env.sh").is_file(), "per-task config dir");
    // The CLI's state may keep a key's tail; check that too.
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
    let tail = &KEY[KEY.len() - 12..];
    for (p, bytes) in env.snapshot() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(tail),
            "key tail in {}",
            p.display()
        );
    }

    // With a price for the model, the outbox records a cost from the tokens.
    env.wg(&[
        "config",
        "set",
        "claude.prices.qwen3-coder.input_per_mtok",
        "1.0",
    ])
    .ok();
    env.wg(&[
        "config",
        "set",
        "claude.prices.qwen3-coder.output_per_mtok",
        "2.0",
    ])
    .ok();
    server.reset().await;
    messages()
        .respond_with(text_response("again"))
        .mount(&server)
        .await;
    env.wg(&["msg", "say-hi", "once more"]).ok();
    env.wg(&["handler", "say-hi"]).ok();
    let out = outbox(&env, "say-hi");
    let cost = out[1]["cost_usd"].as_f64().unwrap();
    assert!((cost - (40.0 + 12.0) / 1e6).abs() < 1e-12, "{cost}");
}

/// Replies "reply N" to the Nth request.
struct Counter(AtomicUsize);
impl Respond for Counter {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        text_response(&format!("reply {n}"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn five_claude_turns_replay_the_conversation_in_order() {
    let server = MockServer::start().await;
    messages()
        .respond_with(Counter(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let Some(env) = claude_env(&format!("{}/v1", server.uri())) else {
        return;
    };
    env.wg(&["add", "Chat"]).ok();
    for i in 1..=5 {
        env.wg(&["msg", "chat", &format!("message number {i}")])
            .ok();
        env.wg(&["handler", "chat"]).ok();
    }
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 5);
    let fifth = user_text(&reqs[4]);
    let mut at = 0;
    for needle in [
        "message number 1",
        "reply 1",
        "message number 2",
        "reply 2",
        "message number 3",
        "reply 3",
        "message number 4",
        "reply 4",
        "message number 5",
    ] {
        let i = fifth[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing or out of order in:\n{fifth}"));
        at += i + needle.len();
    }
    let out = outbox(&env, "chat");
    assert_eq!(out.len(), 5);
    assert_eq!(out[4]["text"], "reply 5");
    assert_eq!(out[4]["in_reply_to"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claude_bash_turn_runs_wg_done_without_seeing_the_key() {
    let server = MockServer::start().await;
    let cmd = "echo \"seen-task=$WG_TASK_ID\"; echo \"seen-key=${LLM_CRED:-unset}/${ANTHROPIC_API_KEY:-unset}\"; env > env-seen.txt; wg done \"$WG_TASK_ID\"";
    messages()
        .respond_with(ClaudeTool(cmd.into()))
        .mount(&server)
        .await;
    let Some(mut env) = claude_env(&server.uri()) else {
        return;
    };
    env.wg(&["config", "set", "endpoint.api_key_env", "LLM_CRED"])
        .ok();
    env.extra_env.retain(|(k, _)| k != "WG_API_KEY");
    env.set_env("LLM_CRED", KEY);
    env.wg(&["add", "Finish"]).ok();
    let run = env.wg(&["handler", "finish"]).ok();
    assert_eq!(status(&env, "finish"), "done");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    let follow = String::from_utf8_lossy(&reqs[1].body).to_string();
    assert!(follow.contains("seen-task=finish"), "{follow}");
    assert!(follow.contains("seen-key=unset/unset"), "{follow}");
    let seen = std::fs::read_to_string(env.root.join("env-seen.txt")).unwrap();
    assert!(seen.contains("WG_TASK_ID=finish") && seen.contains("WG_DIR="));
    assert!(!seen.contains(KEY), "the agent's command saw the key");
    let log = read(&env, "finish", "handler.log");
    assert!(
        log.contains(" turn=1 command exit_code=0 status=completed cmd="),
        "{log}"
    );
    // `wg tail` reads claude's events as it reads codex's: the command and its exit code.
    let tail = env.wg(&["tail", "finish"]).ok().stdout;
    assert!(
        tail.contains("[turn 1] $ echo \"seen-task=$WG_TASK_ID\""),
        "{tail}"
    );
    assert!(tail.contains("wg done \"$WG_TASK_ID\"  → exit 0"), "{tail}");
    assert!(tail.contains("[turn 1] agent: finished the task"), "{tail}");
    assert!(log.contains("task.closed status=done"), "{log}");
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
    std::fs::remove_file(env.root.join("env-seen.txt")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_401_and_500_end_fast_with_an_error_reply() {
    for (code, kind, says) in [
        (401, "unauthorized", "rejected the API key"),
        (500, "server-error", "server error"),
    ] {
        let server = MockServer::start().await;
        messages()
            .respond_with(ResponseTemplate::new(code).set_body_raw(
                json!({"type": "error", "error": {"type": "api_error", "message": "stub says no"}})
                    .to_string(),
                "application/json",
            ))
            .mount(&server)
            .await;
        let Some(env) = claude_env(&server.uri()) else {
            return;
        };
        env.wg(&["add", "Fail"]).ok();
        // claude.max_retries = 0: one request, then the CLI gives up (its default is ~3 min).
        expect_failure(&env, "fail", Duration::from_secs(30), kind, says);
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}

/// A raw HTTP server: a streaming request gets headers and `message_start`, then silence; the
/// CLI's non-streaming retry gets `fallback` (a full response) or a 500.
fn stalling_server(fallback_ok: bool) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let req = read_request(&mut s);
            if req.contains("\"stream\":true") {
                let start = anthropic_sse(&[], "end_turn");
                let first = start.split("\n\n").next().unwrap().to_string() + "\n\n";
                let _ = s.write_all(
                    format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n", first.len())
                        .as_bytes(),
                );
                held.push(s);
            } else if fallback_ok {
                let b = json!({"id": "msg_2", "type": "message", "role": "assistant",
                    "model": "qwen3-coder", "content": [{"type": "text", "text": "answered without streaming"}],
                    "stop_reason": "end_turn", "stop_sequence": null,
                    "usage": {"input_tokens": 40, "output_tokens": 4}})
                .to_string();
                let _ = s.write_all(
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}", b.len()).as_bytes(),
                );
            } else {
                let b =
                    r#"{"type":"error","error":{"type":"api_error","message":"fallback broken"}}"#;
                let _ = s.write_all(
                    format!("HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}", b.len()).as_bytes(),
                );
            }
        }
    });
    port
}

fn read_request(s: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = s.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
    String::from_utf8_lossy(&buf).to_string()
}

#[test]
fn a_claude_stream_that_stalls_ends_within_its_bound() {
    // The CLI's stall watchdog cannot go below 10 s; both cases run at once.
    let ok = std::thread::spawn(|| {
        let port = stalling_server(true);
        let env = claude_env(&format!("http://127.0.0.1:{port}"))?;
        env.wg(&["config", "set", "claude.stream_idle_timeout", "10s"])
            .ok();
        env.wg(&["add", "Stall"]).ok();
        let start = Instant::now();
        let run = env.wg(&["handler", "stall"]).ok();
        let took = start.elapsed();
        assert!(took < Duration::from_secs(20), "took {took:?}");
        assert_eq!(run.stdout.trim(), "answered without streaming");
        Some(())
    });
    let port = stalling_server(false);
    let Some(env) = claude_env(&format!("http://127.0.0.1:{port}")) else {
        return;
    };
    env.wg(&["config", "set", "claude.stream_idle_timeout", "10s"])
        .ok();
    env.wg(&["add", "Stall"]).ok();
    expect_failure(
        &env,
        "stall",
        Duration::from_secs(20),
        "server-error",
        "server error",
    );
    ok.join().unwrap();
}

#[test]
fn claude_missing_is_an_error_reply_saying_how_to_install() {
    // Needs no real binary: the point is that there is none.
    let env = claude_env_with("http://127.0.0.1:9", Path::new("/nonexistent/claude"));
    env.wg(&["add", "X"]).ok();
    expect_failure(
        &env,
        "x",
        Duration::from_secs(5),
        "claude-missing",
        "claude.binary",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_claude_and_its_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(wiremock::matchers::header("x-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":[]}"#))
        .mount(&server)
        .await;
    let Some(env) = claude_env(&server.uri()) else {
        return;
    };
    // A claude-only project: no codex to find, and the endpoint is checked the Messages way.
    let out = env.wg(&["doctor"]).ok().stdout;
    assert!(out.contains("2.1.330 (Claude Code)"), "{out}");
    assert!(
        out.contains("claude endpoint") && out.contains("answered 200"),
        "{out}"
    );
    assert!(!out.contains("codex"), "{out}");
    env.wg(&["config", "set", "endpoint.url", "http://127.0.0.1:9"])
        .ok();
    let bad = env.wg(&["doctor"]).code(1);
    assert!(bad.stdout.contains("unreachable"), "{bad}");
    env.wg(&["config", "set", "claude.binary", "/nonexistent/claude"])
        .ok();
    let bad = env.wg(&["doctor"]).code(1);
    assert!(bad.stdout.contains("claude.binary"), "{bad}");
}
