//! The replayed prompt with the real codex against wiremock: each request extends the previous
//! one except where the history budget cuts; a digest of what the agent ran; a context
//! overflow retried once with a smaller budget; tokens and cost in `wg show` and `wg stats`.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::project::{codex_env, outbox, read};
use crate::common::stub::{message, responses_stub, sse_response, v1};
use serde_json::{json, Value};
use wiremock::{Request, Respond, ResponseTemplate};

/// Everything of a request the chat template sees, in order: instructions, then every input
/// item's text.
fn template_text(r: &Request) -> String {
    let b: Value = serde_json::from_slice(&r.body).unwrap();
    let mut s = b["instructions"].as_str().unwrap_or("").to_string();
    for item in b["input"].as_array().unwrap() {
        for c in item["content"].as_array().into_iter().flatten() {
            s.push_str(c["text"].as_str().unwrap_or(""));
            s.push('\n');
        }
    }
    s
}

fn is_followup(r: &Request) -> bool {
    String::from_utf8_lossy(&r.body).contains("function_call_output")
}

/// Turn 1 runs a command (so later prompts carry its digest); every other request gets
/// "reply N" padded to about 600 characters.
struct Talk(AtomicUsize);
impl Respond for Talk {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if is_followup(r) {
            return sse_response(&[message("ran it")]);
        }
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            let args = json!({"cmd": "echo digest-marker; exit 3"}).to_string();
            return sse_response(&[json!({"type": "function_call", "status": "completed",
                "id": "fc_1", "name": "exec_command", "arguments": args, "call_id": "call_1"})]);
        }
        sse_response(&[message(&format!("reply {n} {}", "r".repeat(600)))])
    }
}

/// `dropped_turns=` of every turn.start in handler.log, in order.
fn dropped_per_turn(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains(" turn.start "))
        .map(|l| {
            let v = l.split(" dropped_turns=").nth(1).unwrap();
            v.split(' ').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_extend_each_other_except_at_the_budget_cut_points() {
    let server = responses_stub(Talk(AtomicUsize::new(0))).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    // The stub never stalls: generous bounds keep a loaded machine from failing the test.
    env.set_config(&[
        ("handler.idle_timeout", "60s"),
        ("handler.first_output_timeout", "60s"),
    ]);
    env.wg(&["config", "set", "codex.history_budget_chars", "3000"])
        .ok();
    // Prices for the model, to see cost in show and stats.
    let cfg = env.wg_dir().join("config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[pricing.\"qwen3-coder\"]\ninput_per_mtok = 2.0\ncached_input_per_mtok = 0.5\noutput_per_mtok = 10.0\n");
    std::fs::write(&cfg, text).unwrap();
    env.wg(&["add", "Talk", "-d", "Keep talking."]).ok();
    env.wg(&["handler", "talk"]).ok();
    let turns = 12;
    for i in 2..=turns {
        env.wg(&["msg", "talk", &format!("message {i} {}", "m".repeat(300))])
            .ok();
        env.wg(&["handler", "talk"]).ok();
    }
    let reqs: Vec<Request> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| !is_followup(r))
        .collect();
    assert_eq!(reqs.len(), turns);
    let texts: Vec<String> = reqs.iter().map(template_text).collect();
    let dropped = dropped_per_turn(&read(&env, "talk", "handler.log"));
    assert_eq!(dropped.len(), turns);
    let mut cuts = 0;
    for k in 1..turns {
        let prev = &texts[k - 1];
        // All of the previous request but its final request to answer.
        let stable = &prev[..prev.rfind("## Your turn\n").expect("request heading")];
        if dropped[k] == dropped[k - 1] {
            assert!(
                texts[k].starts_with(stable),
                "request {} does not extend request {k}",
                k + 1
            );
        } else {
            cuts += 1;
            // At a cut, everything up to the history still stays.
            let head = &prev[..prev.find("## Conversation\n").unwrap()];
            assert!(
                texts[k].starts_with(head),
                "request {} changed the brief",
                k + 1
            );
        }
    }
    assert!(cuts >= 2, "the budget was passed {cuts} times: {dropped:?}");
    // Cuts come in large steps: after a cut, the next turn extends the prompt again. (The
    // old layout dropped the oldest turn on every turn past the budget: a cut each turn.)
    for k in 2..turns {
        assert!(
            !(dropped[k] != dropped[k - 1] && dropped[k - 1] != dropped[k - 2]),
            "turns {k} and {} both cut the history: {dropped:?}",
            k + 1
        );
    }
    // What turn 1 ran is replayed with its exit code while that turn is shown.
    assert!(
        texts[1].contains("### What you did in that turn\n- ran `echo digest-marker; exit 3` → exit 3: digest-marker"),
        "{}",
        texts[1]
    );
    let out = outbox(&env, "talk");
    assert_eq!(out[0]["actions"]["commands"][0]["exit_code"], 3);

    // Tokens and money: every turn reported 42 in (3 cached), 7 out (1 reasoning).
    let show = env.wg(&["show", "talk", "--json"]).ok().json();
    let total = &show["tokens"]["total"];
    assert_eq!(total["input_tokens"], 42 * turns as u64 + 42); // turn 1 made two requests
    assert_eq!(total["cached_input_tokens"], 3 * turns as u64 + 3);
    assert_eq!(show["tokens"]["turns"].as_array().unwrap().len(), turns);
    assert_eq!(show["tokens"]["turns"][1]["cached_input_tokens"], 3);
    let cost = total["cost_usd"].as_f64().unwrap();
    let want = (13.0 * (39.0 * 2.0 + 3.0 * 0.5 + 7.0 * 10.0)) / 1e6;
    assert!((cost - want).abs() < 1e-9, "{cost} vs {want}");
    assert!((out[1]["cost_usd"].as_f64().unwrap() - want / 13.0).abs() < 1e-9);
    let human = env.wg(&["show", "talk"]).ok().stdout;
    assert!(
        human
            .contains("tokens:   546 in (7% cached), 91 out (13 reasoning), $0.0019 over 12 turns"),
        "{human}"
    );
    let stats = env.wg(&["stats", "--json"]).ok().json();
    let row = &stats[0];
    assert_eq!(row["cached_input_tokens"], 39);
    assert_eq!(row["cached_share"], 0.071);
    assert!((row["cost_usd"].as_f64().unwrap() - want).abs() < 1e-9);
}

/// Answers 400 with vLLM's overflow body when the user prompt is over `limit` characters.
struct SmallWindow {
    limit: usize,
}
impl Respond for SmallWindow {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        let prompt = b["input"].as_array().unwrap().last().unwrap()["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .len();
        if prompt > self.limit {
            return ResponseTemplate::new(400).set_body_json(json!({"object": "error",
                "message": format!("This model's maximum context length is 4096 tokens. However, you requested {} tokens (3800 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.", prompt / 3),
                "type": "BadRequestError", "param": null, "code": 400}));
        }
        sse_response(&[message("fits now")])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_context_overflow_is_retried_once_with_a_smaller_budget() {
    let server = responses_stub(SmallWindow { limit: 16_000 }).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    // The stub never stalls: generous bounds keep a loaded machine from failing the test.
    env.set_config(&[
        ("handler.idle_timeout", "60s"),
        ("handler.first_output_timeout", "60s"),
    ]);
    env.wg(&["add", "Long"]).ok();
    // Ten answered turns of 3,000 characters, written as records like any other.
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
    env.wg(&["msg", "long", "and now?"]).ok();
    let run = env.wg(&["handler", "long"]).ok();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2, "one overflow, one retry");
    assert!(
        run.stdout
            .contains("[wg: the prompt overflowed the model's context window")
            && run.stdout.contains("fits now"),
        "{run}"
    );
    let log = read(&env, "long", "handler.log");
    let retry = log
        .lines()
        .find(|l| l.contains(" context_overflow.retry "))
        .unwrap_or_else(|| panic!("no retry line:\n{log}"));
    assert!(retry.contains(" history_budget=200000 "), "{retry}");
    let records = outbox(&env, "long");
    let last = records.last().unwrap();
    assert_eq!(last["role"], "assistant");
    let cut = last["history_budget_chars"].as_u64().unwrap();
    assert!(cut < 16_000, "{cut}");
    assert_eq!(last["overflow_from_budget_chars"], 200_000);

    // The next turn starts with the smaller budget: one request, no overflow.
    env.wg(&["msg", "long", "next"]).ok();
    env.wg(&["handler", "long"]).ok();
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let log = read(&env, "long", "handler.log");
    assert_eq!(log.matches("context_overflow.retry").count(), 1);

    // A message too big for any budget: retried once, then an error reply of its kind.
    env.wg(&["msg", "long", &"z".repeat(20_000)]).ok();
    let run = env.wg(&["handler", "long"]).code(1);
    assert_eq!(server.received_requests().await.unwrap().len(), 5);
    let last = outbox(&env, "long").pop().unwrap();
    assert_eq!(last["role"], "error");
    assert_eq!(last["error_kind"], "context-overflow");
    assert!(run.stderr.contains("context window"), "{run}");
}
