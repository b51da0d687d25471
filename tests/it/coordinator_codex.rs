//! The coordinator running real `wg handler` agents that drive the real codex CLI against a
//! wiremock Responses stub: the whole product path, end to end.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::project::{assert_no_key, codex_env, outbox, read, task};
use crate::common::service::Coordinator;
use crate::common::stub::{message, responses_stub, sse_response, v1, Finisher, KEY};
use crate::common::to_run;

#[tokio::test(flavor = "multi_thread")]
async fn a_codex_graph_runs_to_done_through_the_coordinator() {
    let server = responses_stub(Finisher).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.wg(&["add", "Design", "--id", "design"]).ok();
    env.wg(&["add", "Build", "--id", "build", "--after", "design"])
        .ok();
    env.wg(&["add", "Test", "--id", "test", "--after", "design"])
        .ok();
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(90));
    for id in ["design", "build", "test"] {
        let t = task(&env, id);
        assert_eq!(t["status"], "done", "{id}: {t}\n{run}");
        let replies = outbox(&env, id);
        assert_eq!(replies.len(), 1, "{id}: one turn");
        assert_eq!(replies[0]["role"], "assistant");
        assert!(read(&env, id, "log.jsonl").contains("working on it"));
        assert!(read(&env, id, "handler.log").contains("turn.end"));
    }
    // Dependents started only after their dependency was done.
    let done_at = |id: &str| task(&env, id)["updated"].as_str().unwrap().to_string();
    let design_done = done_at("design");
    for id in ["build", "test"] {
        let brief = read(&env, id, "inbox.jsonl");
        assert!(
            brief.contains("design (done)"),
            "the brief names what design produced: {brief}"
        );
        assert!(done_at(id) > design_done);
    }
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_never_reports_is_nudged_once_then_failed() {
    let server = MockServer::start().await;
    // The binary first: a skipped test must not leave an unmet mock expectation.
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(sse_response(&[message("I looked at it.")]))
        .expect(2)
        .mount(&server)
        .await;
    env.wg(&["add", "Quiet", "--id", "quiet", "--max-retries", "0"])
        .ok();
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(60));
    let t = task(&env, "quiet");
    assert_eq!(t["status"], "failed", "{t}\n{run}");
    assert!(
        t["failure_reason"]
            .as_str()
            .unwrap()
            .contains("without reporting"),
        "{t}"
    );
    let inbox = read(&env, "quiet", "inbox.jsonl");
    assert_eq!(inbox.matches("\"kind\":\"nudge\"").count(), 1, "{inbox}");
    let replies = outbox(&env, "quiet");
    assert_eq!(replies.len(), 2, "the brief's turn and the nudge's turn");
    assert!(replies.iter().all(|r| r["role"] == "assistant"));
    // The second turn replayed the first exchange and carried the nudge.
    let reqs = server.received_requests().await.unwrap();
    let second = String::from_utf8_lossy(&reqs[1].body).to_string();
    assert!(second.contains("I looked at it.") && second.contains("without reporting"));
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoint_trouble_pauses_dispatch_then_the_task_resumes_without_spending_a_retry() {
    let server = MockServer::start().await;
    // The first model call fails with a 500; every later one works.
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(500).set_body_string("overloaded"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(Finisher)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "qwen3-coder"}]})),
        )
        .mount(&server)
        .await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.wg(&["config", "set", "coordinator.retry_backoff", "200ms"])
        .ok();
    env.wg(&["add", "Flaky server", "--id", "flaky"]).ok();
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(60));
    let t = task(&env, "flaky");
    assert_eq!(t["status"], "done", "{t}\n{run}");
    assert!(
        t.get("retries").is_none_or(|r| r == 0),
        "endpoint trouble spent a retry: {t}"
    );
    let log = env.coordinator_log();
    assert!(log.contains("paused (server-error)"), "{log}");
    assert!(log.contains("passed its probe"), "{log}");
    // The probe that lifted the pause carried the key agents use.
    let probes: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/models")
        .collect();
    assert_eq!(
        probes.len(),
        1,
        "one probe passed and lifted the pause:\n{log}"
    );
    assert!(probes.iter().all(|r| r
        .headers
        .get("authorization")
        .is_some_and(|v| v.to_str().unwrap() == format!("Bearer {}", KEY))));
    let replies = outbox(&env, "flaky");
    assert_eq!(replies[0]["role"], "error");
    assert_eq!(replies.last().unwrap()["role"], "assistant");
    assert!(read(&env, "flaky", "inbox.jsonl").contains("started again"));
}

/// Holds the first request (the turn the test kills) and answers the rest as `Finisher`.
struct HoldFirst(std::sync::atomic::AtomicUsize);
impl Respond for HoldFirst {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let reply = Finisher.respond(r);
        if n == 0 {
            reply.set_delay(Duration::from_secs(60))
        } else {
            reply
        }
    }
}

/// Live (not zombie) processes whose environment says they belong to agent `agent`.
fn processes_of(agent: &str) -> Vec<i32> {
    let needle = format!("WG_AGENT_ID={agent}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                let state = s[s.rfind(')').unwrap() + 2..].chars().next();
                !matches!(state, Some('Z' | 'X'))
            })
            .unwrap_or(false);
        if alive && env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_handler_takes_its_codex_along_and_its_attempt_is_fenced() {
    let server = responses_stub(HoldFirst(Default::default())).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    // The held turn must be ended by the kill, not by a timeout.
    env.set_config(&[
        ("handler.idle_timeout", "5m"),
        ("handler.first_output_timeout", "5m"),
    ]);
    env.wg(&["add", "Work", "--id", "t"]).ok();
    let service = Coordinator::start(&env, &["--until-done"]);
    let asked = async {
        for _ in 0..1200 {
            if !server.received_requests().await.unwrap().is_empty() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(asked.await, "codex never asked the stub");
    let agents: Value = serde_json::from_str(
        &std::fs::read_to_string(env.wg_dir().join("service/agents.json")).unwrap(),
    )
    .unwrap();
    let first = agents["agents"][0].clone();
    let (agent, handler_pid) = (
        first["agent_id"].as_str().unwrap().to_string(),
        first["pid"].as_i64().unwrap() as i32,
    );
    let codex: Vec<i32> = processes_of(&agent)
        .into_iter()
        .filter(|p| *p != handler_pid)
        .collect();
    assert!(!codex.is_empty(), "codex runs the turn under the handler");
    // SAFETY: kill(2) on the handler this test's coordinator started.
    assert_eq!(unsafe { libc::kill(handler_pid, libc::SIGKILL) }, 0);
    wait_until!(
        Duration::from_secs(2),
        || processes_of(&agent).is_empty(),
        "2 s after the handler was killed, these of its processes still run: {:?}",
        processes_of(&agent)
    );
    let run = service.wait(Duration::from_secs(120));
    let t = task(&env, "t");
    assert_eq!(
        t["status"], "done",
        "the next attempt finished it: {t}\n{run}"
    );
    assert_ne!(t["assigned"].as_str(), Some(agent.as_str()));
    // The killed turn's request, then the next attempt's two: no turn ran twice.
    assert_eq!(server.received_requests().await.unwrap().len(), 3, "{run}");
    // Had anything of the killed attempt survived, its reports would be refused.
    for args in [&["log", "t", "late report"][..], &["done", "t"]] {
        let mut stale = env.command(args);
        stale.env("WG_AGENT_ID", &agent).env("WG_TASK_ID", "t");
        let r = to_run(stale.output().unwrap());
        assert_eq!(r.code, 1, "{args:?}: {r}");
        assert!(r.stderr.contains("no longer the current attempt"), "{r}");
    }
}
