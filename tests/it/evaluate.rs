//! `wg evaluate` against a wiremock stub of the evaluator endpoint.

use std::process::Command;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::service::Coordinator;
use crate::common::TestEnv;

const KEY: &str = "sk-eval-test-5f2c9e1d7a";
const DIMS: [&str; 7] = [
    "correctness",
    "completeness",
    "constraint_fidelity",
    "intent_fidelity",
    "style",
    "downstream_usability",
    "efficiency",
];

fn verdict(score: f64, notes: &str) -> String {
    let scores: serde_json::Map<String, Value> =
        DIMS.iter().map(|d| (d.to_string(), json!(score))).collect();
    json!({"scores": scores, "reasons": {"correctness": "checked the diff"}, "notes": notes})
        .to_string()
}

fn chat_reply(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "c1", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30}
    }))
}

/// A project whose endpoint is `server`, evaluated over Chat Completions, with `settings` on
/// top (the gate's own, for instance).
fn evaluated_project(server: &MockServer, settings: &[(&str, &str)]) -> TestEnv {
    let mut env = TestEnv::new();
    env.set_env("WG_API_KEY", KEY);
    let url = format!("{}/v1", server.uri());
    env.set_config(&[
        ("endpoint.url", url.as_str()),
        ("model", "qwen3-coder"),
        ("evaluate.wire_api", "chat"),
    ]);
    env.set_config(settings);
    env
}

/// A project whose task `fix-bug` ran and finished: a conversation, handler.log, events with
/// one command, a progress note, and an uncommitted change in a git work tree.
fn finished_project(server: &MockServer, wire_api: &str) -> TestEnv {
    let env = evaluated_project(server, &[("evaluate.wire_api", wire_api)]);
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&env.root)
            .env("HOME", &env.home)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    std::fs::write(env.path("lib.rs"), "fn parse() {}\n").unwrap();
    git(&["init", "-q"]);
    git(&["add", "lib.rs"]);
    git(&["commit", "-qm", "base"]);
    std::fs::write(env.path("lib.rs"), "fn parse() { UNIQUE_DIFF_LINE }\n").unwrap();
    env.wg(&[
        "add",
        "Fix the bug",
        "--id",
        "fix-bug",
        "-d",
        "Fix the parser bug",
    ])
    .ok();
    let dir = env.wg_dir().join("tasks/fix-bug");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("inbox.jsonl"),
        "{\"seq\":1,\"ts\":\"2026-11-21T10:00:00.000Z\",\"sender\":\"wg\",\"kind\":\"brief\",\"text\":\"# Task fix-bug: Fix the bug\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("outbox.jsonl"),
        "{\"seq\":1,\"ts\":\"2026-11-21T10:00:05.000Z\",\"in_reply_to\":1,\"role\":\"assistant\",\"text\":\"Fixed parse()\",\"usage\":{\"input_tokens\":50,\"output_tokens\":7},\"duration_ms\":900}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("handler.log"),
        "2026-11-21T10:00:00.100Z INFO task=fix-bug turn=1 turn.start HANDLER_LOG_MARKER\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("events.jsonl"),
        "{\"turn\":1,\"type\":\"item.completed\",\"item\":{\"type\":\"command_execution\",\"command\":\"cargo test\",\"exit_code\":0}}\n",
    )
    .unwrap();
    env.wg(&["log", "fix-bug", "found the off-by-one"]).ok();
    env.wg(&["done", "fix-bug"]).ok();
    env
}

fn scan_for_key(env: &TestEnv) {
    for (p, bytes) in env.snapshot() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(KEY),
            "the API key leaked into {}",
            p.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn good_verdict_is_stored_shown_and_built_from_the_evidence() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_reply(&format!(
            "```json\n{}\n```",
            verdict(0.9, "good work")
        )))
        .expect(1)
        .mount(&server)
        .await;
    let env = finished_project(&server, "chat");
    let out = env.wg(&["evaluate", "fix-bug", "--json"]).ok();
    assert!(!out.stdout.contains(KEY) && !out.stderr.contains(KEY));
    let e = out.json();
    assert_eq!(e["status"], "ok");
    assert_eq!(e["total"], 0.9);
    assert_eq!(e["input_tokens"], 120);
    let requests: Vec<Request> = server.received_requests().await.unwrap();
    let req = &requests[0];
    assert_eq!(
        req.headers.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {KEY}")
    );
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["model"], "qwen3-coder");
    let prompt = body["messages"][1]["content"].as_str().unwrap();
    for needle in [
        "HANDLER_LOG_MARKER",
        "UNIQUE_DIFF_LINE",
        "cargo test  -> exit 0",
        "Fixed parse()",
        "found the off-by-one",
    ] {
        assert!(prompt.contains(needle), "prompt lacks {needle}:\n{prompt}");
    }
    let stored: Value = serde_json::from_slice(
        &std::fs::read(env.wg_dir().join("tasks/fix-bug/evaluation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["total"], 0.9);
    let shown = env.wg(&["show", "fix-bug", "--json"]).ok().json();
    assert_eq!(shown["evaluation"]["total"], 0.9);
    assert!(env
        .wg(&["show", "fix-bug"])
        .ok()
        .stdout
        .contains("evaluation: 0.9"));
    let log = std::fs::read_to_string(env.wg_dir().join("tasks/fix-bug/log.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"evaluation\""), "{log}");
    scan_for_key(&env);
}

#[tokio::test(flavor = "multi_thread")]
async fn low_verdicts_send_the_task_back_and_the_third_fails_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "r1", "object": "response", "status": "completed",
            "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": verdict(0.3, "tests are missing")}]}],
            "usage": {"input_tokens": 10, "output_tokens": 5}
        })))
        .expect(3)
        .mount(&server)
        .await;
    let env = finished_project(&server, "responses");
    for n in 1..=3 {
        let e = env
            .wg(&["evaluate", "fix-bug", "--apply", "--json"])
            .ok()
            .json();
        let task = env.wg(&["show", "fix-bug", "--json"]).ok().json();
        if n < 3 {
            assert_eq!(
                (e["decision"].as_str(), e["rejection"].as_u64()),
                (Some("reject"), Some(n))
            );
            assert_eq!(task["status"], "open", "after rejection {n}");
            let inbox =
                std::fs::read_to_string(env.wg_dir().join("tasks/fix-bug/inbox.jsonl")).unwrap();
            assert!(
                inbox.contains(&format!("Rejected ({n}/3): tests are missing")),
                "{inbox}"
            );
            env.wg(&["done", "fix-bug"]).ok();
        } else {
            assert_eq!(
                (e["decision"].as_str(), e["rejection"].as_u64()),
                (Some("fail"), Some(3))
            );
            assert_eq!(task["status"], "failed");
            assert!(task["failure_reason"].as_str().unwrap().contains("3/3"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_json_twice_is_an_evaluation_error_and_changes_no_task() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_reply("I think it is fine."))
        .expect(2)
        .mount(&server)
        .await;
    let env = finished_project(&server, "chat");
    let before = env.wg(&["show", "fix-bug", "--json"]).ok().json();
    let out = env.wg(&["evaluate", "fix-bug", "--apply"]).code(1);
    assert!(out.stderr.contains("no usable verdict"), "{out}");
    let stored: Value = serde_json::from_slice(
        &std::fs::read(env.wg_dir().join("tasks/fix-bug/evaluation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["status"], "error");
    assert_eq!(stored["attempts"], 2);
    let after = env.wg(&["show", "fix-bug", "--json"]).ok().json();
    assert_eq!(before["status"], after["status"]);
    assert_eq!(before["updated"], after["updated"]);
    // The second request told the model what was wrong.
    let requests = server.received_requests().await.unwrap();
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert!(second["messages"].as_array().unwrap().len() == 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_error_and_timeout_are_clear_and_lose_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"message": "model crashed"}})),
        )
        .mount(&server)
        .await;
    let env = finished_project(&server, "chat");
    let eval_path = env.wg_dir().join("tasks/fix-bug/evaluation.json");
    std::fs::write(&eval_path, "{\"previous\": true}\n").unwrap();
    let out = env.wg(&["evaluate", "fix-bug"]).code(1);
    assert!(
        out.stderr.contains("answered 500: ") && out.stderr.contains("model crashed"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&eval_path).unwrap(),
        "{\"previous\": true}\n"
    );
    assert_eq!(
        env.wg(&["show", "fix-bug", "--json"]).ok().json()["status"],
        "done"
    );

    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(chat_reply(&verdict(1.0, "")).set_delay(std::time::Duration::from_secs(60)))
        .mount(&slow)
        .await;
    env.wg(&[
        "config",
        "set",
        "endpoint.url",
        &format!("{}/v1", slow.uri()),
    ])
    .ok();
    env.wg(&["config", "set", "evaluate.timeout", "1s"]).ok();
    let started = std::time::Instant::now();
    let out = env.wg(&["evaluate", "fix-bug"]).code(1);
    assert!(
        // Far below the server's 60 s, with room for a loaded machine.
        started.elapsed() < std::time::Duration::from_secs(20),
        "timeout not applied"
    );
    assert!(out.stderr.contains("no answer"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&eval_path).unwrap(),
        "{\"previous\": true}\n"
    );
    scan_for_key(&env);
}

#[test]
fn stats_group_by_executor_and_model() {
    let env = TestEnv::new();
    env.wg(&["add", "a", "-m", "m1"]).ok();
    env.wg(&["add", "b", "-m", "m1"]).ok();
    env.wg(&["add", "c", "-x", "shell"]).ok();
    env.wg(&["done", "a"]).ok();
    env.wg(&["fail", "b", "--reason", "x"]).ok();
    let rows = env.wg(&["stats", "--json"]).ok().json();
    let rows = rows.as_array().unwrap();
    let m1 = rows.iter().find(|r| r["model"] == "m1").unwrap();
    assert_eq!(
        (
            m1["tasks"].as_u64(),
            m1["done"].as_u64(),
            m1["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert!(rows.iter().any(|r| r["executor"] == "shell"));
}

/// The first time a task's log.jsonl records status `to`, or `event`.
fn first_ts(env: &TestEnv, id: &str, pred: impl Fn(&Value) -> bool) -> Option<String> {
    let text = std::fs::read_to_string(env.wg_dir().join("tasks").join(id).join("log.jsonl"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| pred(r))
        .and_then(|r| r["ts"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gate_holds_dependents_until_acceptance_and_never_after_a_rejection() {
    let server = MockServer::start().await;
    // The evaluator is slow, so a dependent that ignored the gate would start meanwhile.
    let slow = std::time::Duration::from_millis(1500);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(wiremock::matchers::body_string_contains("up-bad"))
        .respond_with(chat_reply(&verdict(0.1, "not done")).set_delay(slow))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_reply(&verdict(0.95, "good")).set_delay(slow))
        .mount(&server)
        .await;
    let env = evaluated_project(
        &server,
        &[("evaluate.auto", "true"), ("evaluate.max_rejections", "1")],
    );
    env.wg(&["add", "Up ok", "--id", "up-ok"]).ok();
    env.wg(&["add", "Down ok", "--id", "down-ok", "--after", "up-ok"])
        .ok();
    env.wg(&["add", "Up bad", "--id", "up-bad"]).ok();
    env.wg(&["add", "Down bad", "--id", "down-bad", "--after", "up-bad"])
        .ok();
    // Exit 8: the run ended with a failed task (up-bad, failed by the evaluator).
    let run = env
        .wg(&["service", "start", "--foreground", "--until-done"])
        .code(8);
    let status = |id: &str| env.wg(&["show", id, "--json"]).ok().json()["status"].clone();
    assert_eq!(status("up-ok"), "done", "{run}");
    assert_eq!(status("down-ok"), "done", "{run}");
    assert_eq!(status("up-bad"), "failed", "{run}");
    assert_eq!(status("down-bad"), "open", "{run}");
    // From log.jsonl: the dependent started after the upstream's evaluation was recorded.
    let started = |id: &str| first_ts(&env, id, |r| r["to"] == "in-progress");
    let accepted = first_ts(&env, "up-ok", |r| r["event"] == "evaluation").expect("evaluated");
    let down_started = started("down-ok").expect("down-ok started");
    assert!(
        down_started > accepted,
        "down-ok started {down_started}, up-ok accepted {accepted}"
    );
    assert_eq!(
        started("down-bad"),
        None,
        "a rejected upstream's dependent never starts"
    );
    let shown = env.wg(&["show", "down-bad"]).ok().stdout;
    assert!(!shown.contains("(ready)"), "{shown}");
}

/// Answers with a good verdict, or, while `hold` is set, only after a long wait (an
/// evaluation that is still running when the coordinator dies).
struct Evaluator(std::sync::Arc<std::sync::atomic::AtomicBool>);
impl wiremock::Respond for Evaluator {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let reply = chat_reply(&verdict(0.95, "good"));
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            reply.set_delay(std::time::Duration::from_secs(120))
        } else {
            reply
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_evaluation_holds_ready_and_runs_again_after_a_coordinator_crash() {
    use std::time::Duration;
    let server = MockServer::start().await;
    let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Evaluator(hold.clone()))
        .mount(&server)
        .await;
    let env = evaluated_project(
        &server,
        &[("evaluate.auto", "true"), ("evaluate.timeout", "300s")],
    );
    env.wg(&["add", "Up", "--id", "up"]).ok();
    env.wg(&["add", "Down", "--id", "down", "--after", "up"])
        .ok();
    let log = || env.coordinator_log();
    let mut first = Coordinator::start(&env, &[]);
    wait_until!(
        Duration::from_secs(30),
        || log().contains("evaluating task=up"),
        "{}",
        log()
    );

    // Held by the gate: `wg ready` and `wg status` do not count the dependent, whether they
    // read the index or parse the graph.
    for pass in ["index", "no index"] {
        if pass == "no index" {
            std::fs::remove_file(env.wg_dir().join("graph.idx")).ok();
        }
        let run = crate::common::to_run(
            env.command(&["ready", "--json"])
                .env("WG_LOG", "wg=debug")
                .output()
                .unwrap(),
        );
        assert_eq!(run.json(), json!([]), "{pass}");
        // Each pass takes the path it names.
        assert_eq!(
            run.stderr.contains("ready: from the sealed index"),
            pass == "index",
            "{pass}: {}",
            run.stderr
        );
        assert_eq!(env.wg(&["ready"]).ok().stdout.trim(), "no ready tasks");
        assert_eq!(
            env.wg(&["status", "--json"]).ok().json()["ready"],
            0,
            "{pass}"
        );
    }

    // The coordinator dies mid-evaluation; the next one evaluates again and releases `down`.
    first.kill9();
    hold.store(false, std::sync::atomic::Ordering::SeqCst);
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(60));
    assert_eq!(run.code, 0, "{run}\n{}", log());
    assert!(
        log().contains("recover task=up: its evaluation never finished; evaluating again"),
        "{}",
        log()
    );
    let status = |id: &str| env.wg(&["show", id, "--json"]).ok().json()["status"].clone();
    assert_eq!(status("down"), "done", "{}", log());
    let accepted = first_ts(&env, "up", |r| r["event"] == "evaluation").expect("evaluated");
    let down_started = first_ts(&env, "down", |r| r["to"] == "in-progress").unwrap();
    assert!(down_started > accepted, "{down_started} vs {accepted}");
    // Accepted: nothing holds anything any more.
    let shown = env.wg(&["show", "up", "--json"]).ok().json();
    assert!(shown.get("awaiting_evaluation").is_none(), "{shown}");
}
