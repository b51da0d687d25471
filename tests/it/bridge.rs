//! The chat bridge (issue 7): the real codex CLI → bridge → a wiremock Chat Completions stub.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use wg::bridge::{self, BridgeConfig, BridgeHandle};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::real_codex;

const UPSTREAM_KEY: &str = "sk-upstream-secret";

fn chat_sse(chunks: &[Value]) -> String {
    let mut s = String::new();
    for c in chunks {
        s.push_str(&format!("data: {c}\n\n"));
    }
    s.push_str("data: [DONE]\n\n");
    s
}

fn text_chunks(text: &str) -> Vec<Value> {
    let mut v =
        vec![json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})];
    for word in text.split_inclusive(' ') {
        v.push(
            json!({"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]}),
        );
    }
    v.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
    v.push(
        json!({"choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7,
        "total_tokens": 49, "prompt_tokens_details": {"cached_tokens": 40}}}),
    );
    v
}

fn sse(chunks: &[Value]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(chat_sse(chunks), "text/event-stream")
}

fn start_bridge(server: &MockServer) -> BridgeHandle {
    bridge::start(BridgeConfig::new(
        &format!("{}/v1", server.uri()),
        Some(UPSTREAM_KEY.into()),
    ))
    .expect("bridge starts")
}

/// A work dir and a CODEX_HOME outside the system temp dir (codex refuses helper binaries there).
struct Dirs {
    _root: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let work = root.path().join("work");
    let home = root.path().join("codex-home");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    Dirs {
        _root: root,
        work,
        home,
    }
}

struct Turn {
    code: i32,
    events: Vec<Value>,
    stderr: String,
}

impl Turn {
    fn agent_message(&self) -> Option<&str> {
        self.events
            .iter()
            .rev()
            .filter(|e| e["type"] == "item.completed" && e["item"]["type"] == "agent_message")
            .find_map(|e| e["item"]["text"].as_str())
    }
    fn failure(&self) -> Option<&str> {
        self.events
            .iter()
            .find(|e| e["type"] == "turn.failed")
            .and_then(|e| e["error"]["message"].as_str())
    }
    fn dump(&self) -> String {
        let lines: Vec<String> = self.events.iter().map(Value::to_string).collect();
        format!(
            "rc {}\n{}\n--- stderr\n{}",
            self.code,
            lines.join("\n"),
            self.stderr
        )
    }
}

async fn codex_turn(codex: &Path, bridge: &BridgeHandle, d: &Dirs, prompt: &str) -> Turn {
    let base_url = format!("model_providers.wg.base_url=\"{}\"", bridge.base_url());
    let mut cmd = tokio::process::Command::new(codex);
    cmd.args([
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--color",
        "never",
    ])
    .arg("-C")
    .arg(&d.work)
    .args(["-m", "qwen3-coder"])
    .args(["-c", "model_provider=\"wg\""])
    .args(["-c", "model_providers.wg.name=\"wg\""])
    .args(["-c", &base_url])
    .args(["-c", "model_providers.wg.env_key=\"WG_BRIDGE_TOKEN\""])
    .args(["-c", "model_providers.wg.wire_api=\"responses\""])
    .args(["-c", "model_providers.wg.request_max_retries=0"])
    .args(["-c", "model_providers.wg.stream_max_retries=0"])
    .args(["-c", "analytics.enabled=false"])
    .args(["--disable", "plugins", "--disable", "shell_snapshot"])
    .args(["--disable", "unbounded_connection_retries"])
    .args(["-c", "allow_login_shell=false"])
    .args(["-c", "model_reasoning_summary=\"none\""])
    .args(["--sandbox", "workspace-write", "-"])
    .env_clear()
    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
    .env("HOME", &d.home)
    .env("CODEX_HOME", &d.home)
    .env("WG_BRIDGE_TOKEN", bridge.token())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn codex");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(prompt.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("codex turn ends within 30 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    Turn {
        code: out.status.code().unwrap_or(-1),
        events: stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn chat_requests(server: &MockServer) -> Vec<(Value, String)> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/chat/completions")
        .map(|r| {
            let auth = r
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (serde_json::from_slice(&r.body).unwrap(), auth)
        })
        .collect()
}

fn tool_message(req: &Value) -> Option<&Value> {
    req["messages"]
        .as_array()?
        .iter()
        .find(|m| m["role"] == "tool")
}

#[tokio::test(flavor = "multi_thread")]
async fn text_turn_reaches_codex() {
    let Some(codex) = real_codex() else { return };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(&text_chunks("hi from the chat stub")))
        .expect(1)
        .mount(&server)
        .await;
    let bridge = start_bridge(&server);
    let d = dirs();
    let turn = codex_turn(&codex, &bridge, &d, "say hi").await;
    assert_eq!(turn.code, 0, "{}", turn.dump());
    assert_eq!(
        turn.agent_message(),
        Some("hi from the chat stub"),
        "{}",
        turn.dump()
    );
    let done = turn
        .events
        .iter()
        .find(|e| e["type"] == "turn.completed")
        .unwrap();
    assert_eq!(done["usage"]["input_tokens"], 42);
    assert_eq!(done["usage"]["cached_input_tokens"], 40);
    assert_eq!(done["usage"]["output_tokens"], 7);

    let reqs = chat_requests(&server).await;
    let (body, auth) = &reqs[0];
    // The real key goes upstream; codex only ever had the token.
    assert_eq!(auth, &format!("Bearer {UPSTREAM_KEY}"));
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"].as_array().unwrap().last().unwrap()["content"],
        "say hi"
    );
    assert!(body.get("include").is_none());
    // codex's default web_search/namespace tools were dropped, with a warning.
    let warnings = bridge.take_warnings().join("\n");
    assert!(warnings.contains("dropped OpenAI-only"), "{warnings}");
    assert!(bridge.first_error().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_tool_call_runs_and_the_output_goes_back() {
    let Some(codex) = real_codex() else { return };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("\"role\":\"tool\""))
        .respond_with(sse(&text_chunks("ran it")))
        .with_priority(1)
        .mount(&server)
        .await;
    let args = json!({"cmd": "echo bridged | tee out.txt"}).to_string();
    let (a, b) = args.split_at(10);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(&[
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0,
                "id": "call_br1", "type": "function", "function": {"name": "exec_command", "arguments": ""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": a}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": b}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ]))
        .with_priority(2)
        .mount(&server)
        .await;
    let bridge = start_bridge(&server);
    let d = dirs();
    let turn = codex_turn(&codex, &bridge, &d, "run the thing").await;
    assert_eq!(turn.code, 0, "{}", turn.dump());
    assert_eq!(turn.agent_message(), Some("ran it"), "{}", turn.dump());
    assert_eq!(
        std::fs::read_to_string(d.work.join("out.txt")).unwrap(),
        "bridged\n"
    );
    let reqs = chat_requests(&server).await;
    assert_eq!(reqs.len(), 2);
    let followup = &reqs[1].0;
    let tool = tool_message(followup).expect("follow-up has a tool message");
    assert_eq!(tool["tool_call_id"], "call_br1");
    assert!(
        tool["content"].as_str().unwrap().contains("bridged"),
        "{tool}"
    );
    let assistant = followup["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tool_calls"].is_array())
        .unwrap();
    assert_eq!(assistant["tool_calls"][0]["function"]["arguments"], args);
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_call_text_is_converted_and_runs() {
    let Some(codex) = real_codex() else { return };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("\"role\":\"tool\""))
        .respond_with(sse(&text_chunks("converted ok")))
        .with_priority(1)
        .mount(&server)
        .await;
    let text = "Running it.\n<tool_call>\n{\"name\": \"exec_command\", \"arguments\": {\"cmd\": \"echo from-text | tee conv.txt\"}}\n</tool_call>";
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(&text_chunks(text)))
        .with_priority(2)
        .mount(&server)
        .await;
    let bridge = start_bridge(&server);
    let d = dirs();
    let turn = codex_turn(&codex, &bridge, &d, "run it").await;
    assert_eq!(turn.code, 0, "{}", turn.dump());
    assert_eq!(
        turn.agent_message(),
        Some("converted ok"),
        "{}",
        turn.dump()
    );
    assert_eq!(
        std::fs::read_to_string(d.work.join("conv.txt")).unwrap(),
        "from-text\n"
    );
    let reqs = chat_requests(&server).await;
    let tool = tool_message(&reqs[1].0).expect("follow-up has a tool message");
    assert!(tool["content"].as_str().unwrap().contains("from-text"));
    let warnings = bridge.take_warnings().join("\n");
    assert!(
        warnings.contains("converted a <tool_call> block"),
        "{warnings}"
    );
}

async fn failing_turn(status: u16, message: &str) -> (Turn, Option<bridge::UpstreamError>) {
    let codex = real_codex().expect("checked by caller");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(status)
                .set_body_json(json!({"error": {"message": message, "type": "stub"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let bridge = start_bridge(&server);
    let d = dirs();
    let turn = codex_turn(&codex, &bridge, &d, "say hi").await;
    (turn, bridge.first_error())
}

/// An upstream error answer reaches codex as a failed turn quoting the server's message, and
/// the bridge records its status and message.
async fn upstream_error_reaches_codex_and_the_record(status: u16, message: &str) {
    if real_codex().is_none() {
        return;
    }
    let (turn, err) = failing_turn(status, message).await;
    assert_eq!(turn.code, 1, "{}", turn.dump());
    let failure = turn.failure().expect("turn.failed");
    assert!(failure.contains(message), "{failure}");
    let err = err.expect("recorded");
    assert_eq!(err.status, Some(status));
    assert_eq!(err.message, message);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_401_reaches_codex_and_the_record() {
    upstream_error_reaches_codex_and_the_record(401, "Incorrect API key provided (stub)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_500_reaches_codex_and_the_record() {
    upstream_error_reaches_codex_and_the_record(500, "model exploded (stub)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_429_reaches_codex_and_the_record() {
    upstream_error_reaches_codex_and_the_record(429, "slow down (stub)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_quoting_the_key_does_not_leak_it() {
    if real_codex().is_none() {
        return;
    }
    let (turn, err) =
        failing_turn(401, &format!("Incorrect API key provided: {UPSTREAM_KEY}")).await;
    assert_eq!(turn.code, 1, "{}", turn.dump());
    assert!(
        turn.failure().unwrap().contains("<redacted key>"),
        "{}",
        turn.dump()
    );
    assert!(!turn.dump().contains(UPSTREAM_KEY));
    assert!(!err.unwrap().message.contains(UPSTREAM_KEY));
}

fn raw_post(url: &str, bearer: Option<&str>) -> u16 {
    let agent = wg::http::agent(Duration::from_secs(5));
    wg::http::post_json(
        &agent,
        url,
        bearer,
        &json!({"model": "m", "input": "hi"}),
        Duration::from_secs(5),
    )
    .expect("bridge answers")
    .0
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_the_token_are_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(&text_chunks("nope")))
        .expect(0)
        .mount(&server)
        .await;
    let bridge = start_bridge(&server);
    let url = format!("{}/responses", bridge.base_url());
    let token = bridge.token().to_string();
    let statuses = tokio::task::spawn_blocking(move || {
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push('x');
        [
            raw_post(&url, None),
            raw_post(&url, Some(&wrong)),
            raw_post(&url, Some(UPSTREAM_KEY)),
        ]
    })
    .await
    .unwrap();
    assert_eq!(statuses, [401, 401, 401]);
    assert!(bridge.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(bridge.token().len(), 64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_upstream_is_cut_off_when_the_client_leaves() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(&text_chunks("late")).set_delay(Duration::from_secs(20)))
        .mount(&server)
        .await;
    let bridge = start_bridge(&server);
    let url = format!("{}/responses", bridge.base_url());
    let token = bridge.token().to_string();
    let gave_up = tokio::task::spawn_blocking(move || {
        let agent = wg::http::agent(Duration::from_millis(300));
        wg::http::post_json(
            &agent,
            &url,
            Some(&token),
            &json!({"model": "m", "input": "hi"}),
            Duration::from_millis(300),
        )
    })
    .await
    .unwrap();
    assert!(gave_up.is_err(), "the client timed out");
    // Long before the stub's 20 s delay, the upstream call is interrupted.
    let bridge_ref = &bridge;
    tokio::task::block_in_place(|| {
        wait_until!(
            Duration::from_secs(3),
            || bridge_ref.in_flight() == 0,
            "upstream call still running: {}",
            bridge_ref.in_flight()
        )
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_upstream_fails_the_codex_turn_by_the_read_timeout() {
    let Some(codex) = real_codex() else { return };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(&text_chunks("late")).set_delay(Duration::from_secs(20)))
        .mount(&server)
        .await;
    let mut config = BridgeConfig::new(&format!("{}/v1", server.uri()), None);
    config.read_timeout = Duration::from_millis(500);
    let bridge = bridge::start(config).unwrap();
    let d = dirs();
    let started = std::time::Instant::now();
    let turn = codex_turn(&codex, &bridge, &d, "say hi").await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(turn.code, 1, "{}", turn.dump());
    let failure = turn.failure().expect("turn.failed");
    assert!(
        failure.contains("cannot reach the chat endpoint"),
        "{failure}"
    );
    let err = bridge.first_error().expect("recorded");
    assert_eq!(err.status, None);
    assert!(
        err.message.contains("cannot reach the chat endpoint"),
        "{err}"
    );
    assert_eq!(bridge.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn non_streamed_answer_is_translated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "c1", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "whole answer"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})))
        .mount(&server)
        .await;
    let bridge = start_bridge(&server);
    let url = format!("{}/responses", bridge.base_url());
    let token = bridge.token().to_string();
    let (status, body) = tokio::task::spawn_blocking(move || {
        let agent = wg::http::agent(Duration::from_secs(5));
        wg::http::post_json(
            &agent,
            &url,
            Some(&token),
            &json!({"model": "m", "input": "hi", "stream": true}),
            Duration::from_secs(5),
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let done: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let item = done
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .unwrap();
    assert_eq!(item["item"]["content"][0]["text"], "whole answer");
    assert_eq!(done.last().unwrap()["type"], "response.completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_tells_which_api_answers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"choices": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})))
        .mount(&server)
        .await;
    let url = format!("{}/v1", server.uri());
    let support = tokio::task::spawn_blocking(move || {
        bridge::probe(&url, Some("k"), "qwen3-coder", Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(support.chat);
    assert!(!support.responses);
    assert_eq!(support.responses_detail, "404: Not Found");
    assert_eq!(support.recommended(), Some("chat"));
    let reqs = server.received_requests().await.unwrap();
    assert!(reqs
        .iter()
        .all(|r| r.headers.get("authorization").unwrap() == "Bearer k"));
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_of_nothing_recommends_nothing() {
    let support = tokio::task::spawn_blocking(|| {
        bridge::probe("http://127.0.0.1:9/v1", None, "m", Duration::from_secs(2))
    })
    .await
    .unwrap();
    assert!(!support.responses && !support.chat);
    assert_eq!(support.recommended(), None);
}
