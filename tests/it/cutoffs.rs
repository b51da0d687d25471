//! What a real model server showed and the stubs had not (issue: a real model server in the
//! test suite), each re-created here with the real codex against a wiremock stub of the
//! server's measured behaviour: an answer cut at the output cap on both wires, the tokens of a
//! failed turn, a window smaller than codex's own prompt, an overflow retry that fails, proxy
//! warnings stamped when they happen, and a project codex cannot sandbox itself in.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::project::{codex_env, codex_project, outbox, read, task};
use crate::common::service::Coordinator;
use crate::common::stub::{chat_sse, message, responses_stub, sse_response, v1};
use crate::common::{real_codex, TestEnv};

/// llama.cpp's server ends a Responses answer it stopped at its cap with `completed`, and as
/// many output tokens as the request allowed.
struct CappedResponses;
impl Respond for CappedResponses {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let cap = body["max_output_tokens"].as_u64().unwrap_or(9999);
        let item = message("a rambling answer that stops mid");
        let item_ev = json!({"type": "response.output_item.done", "output_index": 0, "item": item});
        let done = json!({"type": "response.completed", "response": {"id": "resp_1",
            "object": "response", "status": "completed", "output": [item],
            "usage": {"input_tokens": 5105, "input_tokens_details": {"cached_tokens": 5040},
                      "output_tokens": cap, "total_tokens": 5105 + cap}}});
        let sse = format!(
            "event: response.output_item.done\ndata: {item_ev}\n\nevent: response.completed\ndata: {done}\n\n"
        );
        ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_completed_at_the_cap_is_output_limit_on_responses() {
    let server = responses_stub(CappedResponses).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.set_config(&[
        ("endpoint.max_output_tokens", "16"),
        ("handler.idle_timeout", "60s"),
        ("handler.first_output_timeout", "60s"),
    ]);
    env.wg(&["add", "Talk", "--id", "talk"]).ok();
    let run = env.wg(&["handler", "talk"]).code(1);
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1, "not retried: {run}");
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["max_output_tokens"], 16, "the proxy asks for the cap");
    let last = outbox(&env, "talk").pop().unwrap();
    assert_eq!(last["role"], "error", "{run}");
    assert_eq!(last["error_kind"], "output-limit");
    assert!(
        last["text"].as_str().unwrap().contains("llama-server -n")
            && last["text"]
                .as_str()
                .unwrap()
                .contains("endpoint.max_output_tokens"),
        "says what to raise: {last}"
    );
    assert_eq!(last["usage"]["output_tokens"], 16);
    assert_eq!(last["usage"]["cached_input_tokens"], 5040);
}

/// llama.cpp's chat answer stopped by `-n 256`: `finish_reason: "length"`.
fn chat_cut() -> ResponseTemplate {
    chat_sse(&[
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "and so on and"}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
               "usage": {"prompt_tokens": 5258, "completion_tokens": 256,
                         "prompt_tokens_details": {"cached_tokens": 5200}}}),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_answer_cut_by_length_is_output_limit_and_counts_its_tokens() {
    let server = MockServer::start().await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_cut())
        .mount(&server)
        .await;
    env.set_config(&[
        ("endpoint.wire_api", "chat"),
        ("handler.idle_timeout", "60s"),
        ("handler.first_output_timeout", "60s"),
    ]);
    env.wg(&["add", "Talk", "--id", "talk"]).ok();
    let run = env.wg(&["handler", "talk"]).code(1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let last = outbox(&env, "talk").pop().unwrap();
    assert_eq!(last["error_kind"], "output-limit", "{run}");
    // codex reports no usage for a failed turn; the server's counts are recorded.
    assert_eq!(last["usage"]["input_tokens"], 5258, "{last}");
    assert_eq!(last["usage"]["cached_input_tokens"], 5200);
    assert_eq!(last["usage"]["output_tokens"], 256);
    let stats = env.wg(&["stats", "--json"]).ok().json();
    assert_eq!(stats[0]["input_tokens"], 5258, "{stats}");
}

/// llama.cpp's words for a prompt longer than the window, counted as it counts them.
struct SmallLlama(std::sync::atomic::AtomicUsize);
impl Respond for SmallLlama {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ResponseTemplate::new(400).set_body_json(json!({"error": {"code": 400,
            "message": "request (5095 tokens) exceeds the available context size (4096 tokens), try increasing it",
            "type": "exceed_context_size_error", "n_prompt_tokens": 5095, "n_ctx": 4096}}))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_smaller_than_codexs_own_prompt_says_so_and_is_not_retried() {
    let server = responses_stub(SmallLlama(Default::default())).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.wg(&["add", "Small", "--id", "small"]).ok();
    env.wg(&["handler", "small"]).code(1);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "no history can help: no retry"
    );
    let last = outbox(&env, "small").pop().unwrap();
    assert_eq!(last["error_kind"], "context-overflow");
    let text = last["text"].as_str().unwrap();
    assert!(
        text.contains("cannot hold even codex's own prompt") && text.contains("-c 8192"),
        "{text}"
    );
    assert!(!text.contains("history_budget_chars"), "{text}");
    assert!(!read(&env, "small", "handler.log").contains("context_overflow.retry"));
}

/// Overflows whenever the prompt is over `limit` bytes, in vLLM's words.
struct Window {
    limit: usize,
}
impl Respond for Window {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if r.body.len() > self.limit {
            return ResponseTemplate::new(400).set_body_json(json!({"object": "error",
                "message": "This model's maximum context length is 4096 tokens. Please reduce the length of the messages.",
                "type": "BadRequestError", "code": 400}));
        }
        sse_response(&[message("fits")])
    }
}

/// `history_budget=` of every turn.start, in order.
fn budgets(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains(" turn.start "))
        .map(|l| {
            let v = l.split(" history_budget=").nth(1).unwrap();
            v.split(' ').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overflow_retry_that_fails_keeps_its_smaller_budget() {
    // Every request overflows, as a window too small for the retry would.
    let server = responses_stub(Window { limit: 1 }).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.wg(&["add", "Long"]).ok();
    let dir = env.wg_dir().join("tasks/long");
    std::fs::create_dir_all(&dir).unwrap();
    let mut inbox = format!(
        "{}\n",
        json!({"seq": 1, "ts": "2026-01-01T00:00:00.000Z", "sender": "wg", "kind": "brief", "text": "# Task long"})
    );
    let mut out = String::new();
    for i in 1..=10u64 {
        inbox.push_str(&format!("{}\n", json!({"seq": i + 1, "ts": "2026-01-01T00:00:00.000Z", "sender": "user", "kind": "message", "text": format!("q{i} {}", "q".repeat(1500))})));
        out.push_str(&format!("{}\n", json!({"seq": i, "ts": "2026-01-01T00:00:00.000Z", "in_reply_to": i + 1, "role": "assistant", "text": format!("a{i} {}", "a".repeat(1500)), "duration_ms": 1})));
    }
    std::fs::write(dir.join("inbox.jsonl"), inbox).unwrap();
    std::fs::write(dir.join("outbox.jsonl"), out).unwrap();
    env.wg(&["msg", "long", "first"]).ok();
    env.wg(&["handler", "long"]).code(1);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "tried and retried"
    );
    let last = outbox(&env, "long").pop().unwrap();
    assert_eq!(last["error_kind"], "context-overflow");
    let kept = last["history_budget_chars"]
        .as_u64()
        .unwrap_or_else(|| panic!("the failed retry's record has no budget: {last}"));
    assert!(
        kept < 200_000 && last["overflow_from_budget_chars"] == 200_000,
        "{last}"
    );
    // The next turn starts from the cut budget, not from the full one.
    env.wg(&["msg", "long", "second"]).ok();
    env.wg(&["handler", "long"]).code(1);
    let b = budgets(&read(&env, "long", "handler.log"));
    assert_eq!(b.len(), 4, "{b:?}");
    assert_eq!(
        b[2], kept,
        "the next turn started from {}, not the kept {kept}",
        b[2]
    );
    assert!(b[3] < kept, "and its retry cut further: {b:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_warnings_carry_the_time_they_happened() {
    let server = MockServer::start().await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    // The answer takes 3 s; the warning (OpenAI-only fields dropped) comes when the request
    // is translated, before it.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            chat_sse(&[
                json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "late"}}]}),
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 30, "completion_tokens": 5}}),
            ])
            .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    env.set_config(&[
        ("endpoint.wire_api", "chat"),
        ("handler.idle_timeout", "60s"),
        ("handler.first_output_timeout", "60s"),
    ]);
    env.wg(&["add", "Late", "--id", "late"]).ok();
    env.wg(&["handler", "late"]).ok();
    let log = read(&env, "late", "handler.log");
    let ts = |event: &str| {
        let line = log
            .lines()
            .find(|l| l.contains(event))
            .unwrap_or_else(|| panic!("no {event}:\n{log}"));
        humantime::parse_rfc3339(line.split(' ').next().unwrap()).unwrap()
    };
    let warned = ts(" proxy.warning ");
    let ended = ts(" turn.end ");
    let gap = ended.duration_since(warned).unwrap_or_default();
    assert!(
        gap >= Duration::from_secs(2),
        "the warning is stamped {gap:?} before the turn's end:\n{log}"
    );
}

#[test]
fn a_project_codex_cannot_sandbox_in_fails_fast_and_doctor_says_so() {
    let Some(codex) = real_codex() else {
        return;
    };
    // Project and HOME both under the temp dir: codex's home has nowhere else to go.
    let env = codex_project(TestEnv::bare(), "http://127.0.0.1:9/v1", &codex);
    env.wg(&["add", "T", "--id", "t"]).ok();
    let started = std::time::Instant::now();
    let run = env.wg(&["handler", "t"]).code(1);
    // Nothing was spawned: the unreachable endpoint would have taken codex longer to report.
    let last = outbox(&env, "t").pop().unwrap();
    assert_eq!(last["error_kind"], "sandbox-unavailable", "{run}");
    assert!(
        last["text"].as_str().unwrap().contains("temp dir"),
        "{last}"
    );
    assert!(!read(&env, "t", "handler.log").contains(" spawn "));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "ended, not hung"
    );
    let doctor = env.wg(&["doctor"]);
    assert_ne!(doctor.code, 0);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("sandbox") && l.contains("temp dir")),
        "{doctor}"
    );
}

/// llama.cpp's model list: the window in `meta.n_ctx`.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_compares_the_servers_window_with_codexs_own_prompt() {
    let server = MockServer::start().await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    for (n_ctx, ok) in [(4096, false), (8192, true)] {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"object": "list",
                "data": [{"id": "qwen3-coder", "object": "model", "meta": {"n_ctx": n_ctx}}]})),
            )
            .mount(&server)
            .await;
        let doctor = env.wg(&["doctor"]);
        let line = doctor
            .stdout
            .lines()
            .find(|l| l.contains(" window "))
            .unwrap_or_else(|| panic!("no window check: {doctor}"))
            .to_string();
        assert_eq!(line.starts_with("ok"), ok, "{line}");
        assert!(line.contains(&n_ctx.to_string()), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_coordinator_spends_no_retry_on_an_output_limit() {
    let server = responses_stub(CappedResponses).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.set_config(&[
        ("endpoint.max_output_tokens", "16"),
        ("coordinator.max_retries", "2"),
        ("coordinator.retry_backoff", "100ms"),
        ("handler.idle_timeout", "60s"),
        ("handler.first_output_timeout", "60s"),
    ]);
    env.wg(&["add", "Talk", "--id", "talk"]).ok();
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(240));
    let t = task(&env, "talk");
    assert_eq!(t["status"], "failed", "{run}");
    assert!(t["retries"].as_u64().unwrap_or(0) == 0, "{t}");
    assert_eq!(t["failed_by"], "limit", "{t}");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        reqs.len(),
        1,
        "{run}\n{}\n{}",
        read(&env, "talk", "handler.log"),
        env.coordinator_log()
    );
}
