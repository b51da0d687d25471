//! `wg handler` with the real codex CLI against wiremock Responses API stubs.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::project::{assert_no_key, codex_env, outbox, read, status};
use crate::common::stub::{message, responses_stub, sse_response, v1, ResponsesTool, KEY};

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// All input text of a Responses request, in order.
fn input_text(r: &Request) -> String {
    let b = body(r);
    let mut s = String::new();
    for item in b["input"].as_array().unwrap() {
        for c in item["content"].as_array().into_iter().flatten() {
            s.push_str(c["text"].as_str().unwrap_or(""));
            s.push('\n');
        }
    }
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn real_codex_turn_reaches_the_stub_and_lands_in_the_outbox() {
    let server = MockServer::start().await;
    // The binary first: a skipped test must not leave an unmet mock expectation.
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(sse_response(&[message("hi from the stub")]))
        .expect(1)
        .mount(&server)
        .await;
    env.wg(&["add", "Say hi", "-d", "Greet the user."]).ok();
    let run = env.wg(&["handler", "say-hi"]).ok();
    assert_eq!(run.stdout.trim(), "hi from the stub");

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {KEY}")
    );
    assert_eq!(body(&reqs[0])["model"], "qwen3-coder");
    let prompt = input_text(&reqs[0]);
    assert!(
        prompt.contains("Task say-hi: Say hi")
            && prompt.contains("Greet the user.")
            && prompt.contains("wg done say-hi")
    );

    let out = outbox(&env, "say-hi");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["role"], "assistant");
    assert_eq!(out[0]["text"], "hi from the stub");
    assert_eq!(out[0]["in_reply_to"], 1);
    assert_eq!(out[0]["usage"]["input_tokens"], 42);
    assert_eq!(out[0]["usage"]["cached_input_tokens"], 3);
    assert_eq!(out[0]["codex_version"], "codex-cli 0.169.0");

    let log = read(&env, "say-hi", "handler.log");
    for needle in [
        " INFO  task=say-hi turn=1 turn.start ",
        " turn=1 spawn argv=",
        " turn=1 turn.end status=ok exit_code=0 ",
    ] {
        assert!(log.contains(needle), "{needle} missing:\n{log}");
    }
    let events = read(&env, "say-hi", "events.jsonl");
    assert!(events
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).unwrap()["turn"] == 1));
    assert!(events.contains("turn.completed"));
    // Not finished by the agent: the task waits for the next message.
    assert_eq!(status(&env, "say-hi"), "waiting");
    let codex_home = env.wg_dir().join("codex-home");
    assert!(codex_home.is_dir(), "project-local CODEX_HOME");
    assert!(
        !codex_home.join("sessions").exists(),
        "ephemeral turns leave no session files"
    );
    assert_no_key(&env, &[&run.stdout, &run.stderr]);

    // Human views of the same turn.
    let t = env.wg(&["transcript", "say-hi"]).ok().stdout;
    assert!(t.contains("message 1 from wg (brief)") && t.contains("hi from the stub"));
    let tail = env.wg(&["tail", "say-hi"]).ok().stdout;
    assert!(
        tail.contains("[turn 1] agent: hi from the stub")
            && tail.contains("42 in (3 cached), 7 out")
    );
}

/// Replies "reply N" to the Nth request.
struct Counter(AtomicUsize);
impl Respond for Counter {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        sse_response(&[message(&format!("reply {n}"))])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn five_turns_replay_the_conversation_in_order() {
    let server = responses_stub(Counter(AtomicUsize::new(0))).await;
    let Some(env) = codex_env(&v1(&server)) else {
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
    let fifth = input_text(&reqs[4]);
    let order = [
        "message number 1",
        "reply 1",
        "message number 2",
        "reply 2",
        "message number 3",
        "reply 3",
        "message number 4",
        "reply 4",
        "message number 5",
    ];
    let mut at = 0;
    for needle in order {
        let i = fifth[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing or out of order in:\n{fifth}"));
        at += i + needle.len();
    }
    assert!(!fifth.contains("reply 5"));
    let out = outbox(&env, "chat");
    assert_eq!(out.len(), 5);
    assert_eq!(out[4]["text"], "reply 5");
    assert_eq!(out[4]["in_reply_to"], 6);

    // Now a history far over 128 KiB (one argv element's limit): still works, trimmed.
    env.wg(&["config", "set", "codex.history_budget_chars", "60000"])
        .ok();
    for i in 0..30 {
        env.wg(&["msg", "chat", &format!("big {i} {}", "x".repeat(10_000))])
            .ok();
        // Answer without codex: a fake earlier turn is an outbox record like any other.
        let inbox = read(&env, "chat", "inbox.jsonl");
        let last = inbox.lines().count();
        let rec = json!({"seq": 6 + i, "ts": "2026-01-01T00:00:00.000Z", "in_reply_to": last, "role": "assistant", "text": format!("ok {i} {}", "y".repeat(10_000)), "duration_ms": 1});
        let p = env.wg_dir().join("tasks/chat/outbox.jsonl");
        let mut o = std::fs::read_to_string(&p).unwrap();
        o.push_str(&format!("{rec}\n"));
        std::fs::write(&p, o).unwrap();
    }
    env.wg(&["msg", "chat", "the last question"]).ok();
    env.wg(&["handler", "chat"]).ok();
    let reqs = server.received_requests().await.unwrap();
    let last = input_text(reqs.last().unwrap());
    assert!(
        last.contains("the last question")
            && last.contains("earlier turns omitted to fit the history budget")
    );
    assert!(last.contains("ok 29 ") && !last.contains("ok 0 "));
    let user_prompt_len = body(reqs.last().unwrap())["input"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"][0]["text"]
        .as_str()
        .unwrap()
        .len();
    assert!(
        user_prompt_len < 60_000 + 5_000,
        "prompt {user_prompt_len} chars, budget 60000"
    );
    assert_eq!(outbox(&env, "chat").last().unwrap()["role"], "assistant");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_tool_turn_runs_wg_done_in_the_sandbox() {
    let server = MockServer::start().await;
    let cmd = "echo \"seen-task=$WG_TASK_ID\"; echo \"seen-key=${LLM_CRED:-unset}\"; env > env-seen.txt; wg done \"$WG_TASK_ID\"";
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponsesTool(cmd.into()))
        .mount(&server)
        .await;
    let Some(mut env) = codex_env(&v1(&server)) else {
        return;
    };
    // A key variable without KEY/SECRET/TOKEN in its name: codex's default shell-environment
    // filter hides WG_API_KEY by name alone, so only wg's explicit exclude is tested here.
    env.wg(&["config", "set", "endpoint.api_key_env", "LLM_CRED"])
        .ok();
    env.extra_env.retain(|(k, _)| k != "WG_API_KEY");
    env.set_env("LLM_CRED", KEY);
    env.wg(&["add", "Finish me"]).ok();
    let run = env.wg(&["handler", "finish-me"]).ok();
    assert_eq!(status(&env, "finish-me"), "done");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    let followup = String::from_utf8_lossy(&reqs[1].body).to_string();
    assert!(followup.contains("seen-task=finish-me"), "{followup}");
    assert!(
        followup.contains("seen-key=unset"),
        "the command saw the key"
    );
    let seen = std::fs::read_to_string(env.path("env-seen.txt")).unwrap();
    assert!(seen.contains("WG_TASK_ID=finish-me") && seen.contains("WG_DIR="));
    assert!(!seen.contains(KEY));
    let log = read(&env, "finish-me", "handler.log");
    assert!(
        log.contains(" command exit_code=0 status=completed cmd="),
        "{log}"
    );
    assert!(log.contains("task.closed status=done"));
    let tail = env.wg(&["tail", "finish-me"]).ok().stdout;
    assert!(tail.contains("→ exit 0"), "{tail}");
    assert_eq!(outbox(&env, "finish-me")[0]["text"], "finished the task");
    let _ = std::fs::remove_file(env.path("env-seen.txt"));
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_codex_endpoint_model_and_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(wiremock::matchers::header(
            "authorization",
            format!("Bearer {KEY}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "data": [{"id": "qwen3-coder"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"output": []})))
        .mount(&server)
        .await;
    let Some(mut env) = codex_env(&v1(&server)) else {
        return;
    };
    let out = env.wg(&["doctor"]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[0].starts_with("ok   codex") && lines[0].contains("codex-cli 0.169.0"));
    assert!(lines[1].starts_with("ok   endpoint") && lines[2].starts_with("ok   model"));
    assert!(lines[3].starts_with("ok   api key") && lines[3].contains("accepted"));
    assert!(lines[4].starts_with("ok   wire api") && lines[4].contains("/v1/responses only"));
    assert!(lines[5].starts_with("ok   tool calls"), "{out}");
    env.wg(&["config", "set", "model", "other-model"]).ok();
    let bad = env.wg(&["doctor"]).code(1);
    assert!(
        bad.stdout
            .contains("FAIL model     other-model is not listed"),
        "{bad}"
    );
    env.extra_env.retain(|(k, _)| k != "WG_API_KEY");
    let bad = env.wg(&["doctor"]).code(1);
    assert!(
        bad.stdout.contains("FAIL api key") && bad.stdout.contains("is not set"),
        "{bad}"
    );
}
