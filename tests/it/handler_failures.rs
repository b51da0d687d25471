//! `wg handler` failures, each ending within its bound with an `error` reply and an ERROR
//! line; plus what only a scripted fake codex can show, msg rules, budgets and the turn lock.

use std::io::{Read, Write};
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::time::{Duration, Instant};

use wiremock::{MockServer, ResponseTemplate};

use crate::common::project::{
    assert_no_key, codex_env, codex_env_with, expect_failure, outbox, read, status,
};
use crate::common::stub::{responses_stub, v1, KEY};
use crate::common::TestEnv;

async fn status_server(code: u16, body: &str) -> MockServer {
    let server = responses_stub(ResponseTemplate::new(code).set_body_string(body)).await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn http_401_is_an_error_reply_about_the_key() {
    let server = status_server(401, r#"{"error":{"message":"Incorrect API key provided"}}"#).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.wg(&["add", "T"]).ok();
    expect_failure(
        &env,
        "t",
        Duration::from_secs(10),
        "unauthorized",
        "rejected the API key",
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "fail fast: no retries"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_500_is_an_error_reply_about_the_server() {
    let server = status_server(500, "boom").await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.wg(&["add", "T"]).ok();
    expect_failure(
        &env,
        "t",
        Duration::from_secs(10),
        "server-error",
        "server error",
    );
}

#[test]
fn connection_refused_ends_fast() {
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(env) = codex_env(&format!("http://127.0.0.1:{port}/v1")) else {
        return;
    };
    env.wg(&["add", "T"]).ok();
    expect_failure(
        &env,
        "t",
        Duration::from_secs(10),
        "unreachable",
        "Could not connect",
    );
}

/// A raw server: reads a request, then either sends SSE headers and stalls, or never answers.
fn raw_server(send_headers: bool) -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = conn.read(&mut buf);
                if send_headers {
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
                    let _ = conn.flush();
                }
                std::thread::sleep(Duration::from_secs(60));
            });
        }
    });
    port
}

#[test]
fn a_stream_that_stalls_after_headers_ends_by_codex_idle_timeout() {
    let port = raw_server(true);
    let Some(env) = codex_env(&format!("http://127.0.0.1:{port}/v1")) else {
        return;
    };
    env.wg(&["add", "T"]).ok();
    expect_failure(
        &env,
        "t",
        Duration::from_secs(10),
        "stream-broken",
        "stopped streaming",
    );
}

#[test]
fn a_server_that_never_sends_headers_ends_by_the_handlers_idle_timeout() {
    let port = raw_server(false);
    let Some(env) = codex_env(&format!("http://127.0.0.1:{port}/v1")) else {
        return;
    };
    env.wg(&["config", "set", "handler.idle_timeout", "3s"])
        .ok();
    env.wg(&["add", "T"]).ok();
    // Watch the running codex: neither its argv nor its environment holds the key.
    let child = env
        .command(&["handler", "t"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut pid = None;
    wait_until!(Duration::from_secs(10), || {
        pid = read(&env, "t", "handler.log").lines().find_map(|l| {
            l.split(" spawned pid=")
                .nth(1)
                .map(|p| p.trim().to_string())
        });
        pid.is_some()
    });
    let pid = pid.unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(!cmdline.is_empty(), "codex should still be running");
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(KEY),
        "key in codex argv"
    );
    // codex gets the proxy's token for this turn, never the key.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("WG_PROXY_TOKEN="), "{environ}");
    assert!(!environ.contains(KEY), "the key is in codex's environment");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let last = outbox(&env, "t").pop().unwrap();
    assert_eq!(last["error_kind"], "timeout-idle");
    assert!(last["text"].as_str().unwrap().contains("idle timeout"));
    assert!(read(&env, "t", "handler.log").contains(" ERROR task=t turn=1 error kind=timeout-idle"));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    );
    assert_no_key(
        &env,
        &[
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        ],
    );
}

#[test]
fn codex_missing_is_an_error_reply_saying_how_to_install() {
    let env = codex_env_with("http://127.0.0.1:9/v1", Path::new("/nonexistent/codex"));
    env.wg(&["add", "T"]).ok();
    expect_failure(
        &env,
        "t",
        Duration::from_secs(5),
        "codex-missing",
        "codex.binary",
    );
}

#[test]
fn key_env_var_unset_is_an_error_reply_naming_it() {
    // The key check comes before any binary lookup: a missing binary would say codex-missing.
    let mut env = codex_env_with("http://127.0.0.1:9/v1", Path::new("/nonexistent/codex"));
    env.extra_env.retain(|(k, _)| k != "WG_API_KEY");
    env.wg(&["add", "T"]).ok();
    expect_failure(
        &env,
        "t",
        Duration::from_secs(5),
        "key-missing",
        "$WG_API_KEY is not set",
    );
}

/// A project whose codex is the scripted fake.
fn fake_env(mode: &str) -> TestEnv {
    let mut env = TestEnv::bare_outside_tmp();
    env.wg(&[
        "init",
        "-x",
        "codex",
        "-m",
        "m",
        "-e",
        "http://127.0.0.1:9/v1",
    ])
    .ok();
    let fake =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bin/fake-codex");
    env.wg(&["config", "set", "codex.binary", fake.to_str().unwrap()])
        .ok();
    env.wg(&["config", "set", "coordinator.grace_period", "500ms"])
        .ok();
    // The agent's environment is rebuilt from an allowlist; the fake's settings are let in
    // the documented way.
    let cfg = env.path(".wg/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        "\n[executors.codex]\npass_env = [\"FAKE_CODEX_MODE\", \"FAKE_CODEX_PIDFILE\", \"FAKE_CODEX_ARGV\"]\n",
    );
    std::fs::write(&cfg, text).unwrap();
    env.set_env("WG_API_KEY", KEY);
    env.set_env("FAKE_CODEX_MODE", mode);
    env
}

#[test]
fn non_json_lines_are_logged_and_skipped_and_unknown_events_kept() {
    let env = fake_env("nonjson");
    env.wg(&["add", "T"]).ok();
    let run = env.wg(&["handler", "t"]).ok();
    assert_eq!(run.stdout.trim(), "fake reply");
    let log = read(&env, "t", "handler.log");
    assert_eq!(log.matches(" codex.nonjson ").count(), 2, "{log}");
    assert!(log.contains("codex.stderr line=\"stderr noise\""));
    let events = read(&env, "t", "events.jsonl");
    assert!(events.contains("something.unknown") && !events.contains("not json"));
    assert_eq!(outbox(&env, "t")[0]["usage"]["output_tokens"], 20);
}

#[test]
fn hard_timeout_kills_a_term_ignoring_group() {
    let mut env = fake_env("ignore-term");
    let pidfile = env.root.join("grandchild.pid");
    env.set_env("FAKE_CODEX_PIDFILE", pidfile.to_str().unwrap());
    env.wg(&["config", "set", "handler.turn_timeout", "1s"])
        .ok();
    env.wg(&["add", "T"]).ok();
    let start = Instant::now();
    let run = env.wg(&["handler", "t"]).code(1);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let last = outbox(&env, "t").pop().unwrap();
    assert_eq!(last["error_kind"], "timeout-hard", "{run}");
    assert!(last["text"]
        .as_str()
        .unwrap()
        .contains("handler.turn_timeout"));
    let log = read(&env, "t", "handler.log");
    assert!(
        log.contains("killed") && log.contains("sigkill=true"),
        "{log}"
    );
    let grandchild = std::fs::read_to_string(&pidfile).unwrap();
    wait_until!(
        Duration::from_secs(3),
        || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", grandchild.trim()))
                .unwrap_or_default();
            stat.is_empty() || stat.contains(") Z ")
        },
        "the TERM-ignoring grandchild survived"
    );
}

#[test]
fn codex_argv_quotes_odd_values_and_never_holds_the_key() {
    let mut env = fake_env("argv");
    let argv_file = env.root.join("argv.txt");
    env.set_env("FAKE_CODEX_ARGV", argv_file.to_str().unwrap());
    env.wg(&[
        "config",
        "set",
        "endpoint.url",
        "http://127.0.0.1:9/v1?api-version=1&x=\"y\"",
    ])
    .ok();
    env.wg(&["add", "T"]).ok();
    env.wg(&["handler", "t", "--model", "qwen \"quoted\""]).ok();
    let argv = std::fs::read_to_string(&argv_file).unwrap();
    let lines: Vec<&str> = argv.lines().collect();
    assert!(
        lines.windows(2).any(|w| w == ["-m", "qwen \"quoted\""]),
        "{argv}"
    );
    // codex is pointed at the local credential proxy; the endpoint's URL (with its query)
    // is the proxy's business.
    assert!(
        lines.iter().any(
            |l| l.starts_with(r#"model_providers.wg.base_url="http://127.0.0.1:"#)
                && l.ends_with(r#"/v1""#)
        ),
        "{argv}"
    );
    assert!(!argv.contains("api-version"), "{argv}");
    assert_eq!(lines.last(), Some(&"-"));
    assert!(!argv.contains(KEY));
}

#[test]
fn msg_rules_reopen_and_no_coordinator_note() {
    let env = fake_env("nonjson");
    env.wg(&["add", "T"]).ok();
    let sent = env.wg(&["msg", "t", "hello"]).ok();
    assert_eq!(sent.stdout.trim(), "sent message 2 to t");
    assert!(
        sent.stderr.contains("no coordinator is running") && sent.stderr.contains("wg handler t")
    );
    // The brief was written first.
    let inbox = read(&env, "t", "inbox.jsonl");
    assert!(inbox.lines().next().unwrap().contains("\"kind\":\"brief\""));
    env.wg(&["handler", "t"]).ok();
    assert_eq!(outbox(&env, "t").len(), 1, "one turn answers both messages");
    assert_eq!(status(&env, "t"), "waiting");
    env.wg(&["msg", "t", "more"]).ok();
    assert_eq!(status(&env, "t"), "in-progress");
    env.wg(&["done", "t"]).ok();
    let refused = env.wg(&["msg", "t", "again"]).code(1);
    assert!(refused.stderr.contains("--reopen"), "{refused}");
    env.wg(&["msg", "t", "again", "--reopen"]).ok();
    assert_eq!(status(&env, "t"), "open");
    // The handler claims the open task and answers.
    env.wg(&["handler", "t"]).ok();
    assert_eq!(outbox(&env, "t").last().unwrap()["in_reply_to"], 4);
    let chat = env.wg_stdin(&["chat", "t"], "one more\n").ok();
    assert_eq!(chat.stdout.trim(), "fake reply");
    let t = env.wg(&["transcript", "t", "--json"]).ok().json();
    let types: Vec<&str> = t
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["message", "message", "reply", "message", "message", "reply", "message", "reply"]
    );
}

#[test]
fn budgets_fail_the_task_with_the_budget_named() {
    let env = fake_env("nonjson");
    env.wg(&["config", "set", "handler.max_turns", "1"]).ok();
    env.wg(&["add", "T"]).ok();
    env.wg(&["handler", "t"]).ok();
    env.wg(&["msg", "t", "next"]).ok();
    let run = env.wg(&["handler", "t"]).code(1);
    assert!(run.stderr.contains("max_turns = 1"), "{run}");
    let shown = env.wg(&["show", "t", "--json"]).ok().json();
    assert_eq!(shown["status"], "failed");
    assert!(shown["failure_reason"]
        .as_str()
        .unwrap()
        .contains("max_turns = 1"));
    assert_eq!(outbox(&env, "t").last().unwrap()["error_kind"], "budget");

    let env = fake_env("nonjson");
    env.wg(&["config", "set", "handler.max_tokens", "50"]).ok();
    env.wg(&["add", "T"]).ok();
    let run = env.wg(&["handler", "t"]).code(1);
    assert!(run.stderr.contains("max_tokens = 50"), "{run}");
    assert_eq!(status(&env, "t"), "failed");
}

#[test]
fn a_second_handler_leaves_the_turn_to_the_lock_holder() {
    let env = fake_env("nonjson");
    env.wg(&["add", "T"]).ok();
    let dir = env.wg_dir().join("tasks/t");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = wg::store::lock::FileLock::try_acquire(&dir.join("turn.lock"))
        .unwrap()
        .unwrap();
    let run = env.wg(&["handler", "t"]).ok();
    assert!(run.stderr.contains("another `wg handler`"), "{run}");
    assert!(outbox(&env, "t").is_empty());
    drop(lock);
    env.wg(&["handler", "t"]).ok();
    assert_eq!(outbox(&env, "t").len(), 1);
}
