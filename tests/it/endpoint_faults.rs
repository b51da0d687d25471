//! Endpoint faults end to end: the real codex through `wg handler` and the coordinator,
//! against wiremock. A rejected key pauses instead of failing or retrying forever, a pause
//! lifts only on an authenticated probe, `--until-done` says how it ended.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::project::{assert_no_key, codex_env, codex_env_with, outbox, read};
use crate::common::service::Coordinator;
use crate::common::stub::{message, responses_stub, sse_response, v1, Finisher, KEY};
use crate::common::TestEnv;

/// A listener on a free port whose number contains "503" (the digits a status-matching
/// classifier would mistake for a 503).
fn listener_with_503() -> std::net::TcpListener {
    for prefix in 1..=6 {
        for last in 0..10 {
            let port = prefix * 10000 + 5030 + last;
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
                return l;
            }
        }
    }
    panic!("no free port with 503 in it between 15030 and 65039");
}

fn task(env: &TestEnv, id: &str) -> Value {
    env.wg(&["show", id, "--json"]).ok().json()
}

fn posts(reqs: &[wiremock::Request]) -> usize {
    reqs.iter()
        .filter(|r| r.url.path() == "/v1/responses")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_key_at_a_503_port_pauses_with_the_key_reason_and_spends_nothing() {
    let server = MockServer::builder()
        .listener(listener_with_503())
        .start()
        .await;
    assert!(server.uri().contains("503"), "{}", server.uri());
    let rejected = ResponseTemplate::new(401)
        .set_body_json(json!({"error": {"message": "invalid api key for this gateway"}}));
    answer_every_call(&server, rejected).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.set_config(&[
        ("coordinator.retry_backoff", "200ms"),
        ("coordinator.endpoint_backoff_max", "400ms"),
        // One agent at a time: the second task must meet the pause, not race the first.
        ("coordinator.max_agents", "1"),
    ]);
    env.wg(&["add", "Fix the 503 page", "--id", "fix-503-page"])
        .ok();
    env.wg(&["add", "Plain", "--id", "plain", "--max-retries", "0"])
        .ok();
    // Without --foreground: --until-done still waits, and says how it ended.
    let run = Coordinator::run(
        &env,
        &["service", "start", "--until-done", "--max-pause", "3s"],
    )
    .wait(Duration::from_secs(90));
    assert_eq!(run.code, 10, "paused longer than --max-pause\n{run}");
    assert!(
        run.stderr.contains("invalid api key for this gateway"),
        "{run}"
    );
    for id in ["fix-503-page", "plain"] {
        let t = task(&env, id);
        assert_eq!(t["status"], "open", "{id}: {t}\n{run}");
        assert!(t.get("retries").is_none_or(|r| r == 0), "{id}: {t}");
    }
    // The one task that ran recorded the typed kind and the server's words.
    let errors: Vec<Value> = ["fix-503-page", "plain"]
        .iter()
        .flat_map(|id| outbox(&env, id))
        .collect();
    assert_eq!(errors.len(), 1, "one turn, then the pause held: {errors:?}");
    assert_eq!(errors[0]["error_kind"], "unauthorized");
    assert!(errors[0]["error_message"]
        .as_str()
        .unwrap()
        .contains("invalid api key for this gateway"));
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(posts(&reqs), 1, "bounded: no agent started into the outage");
    let probes: Vec<_> = reqs
        .iter()
        .filter(|r| r.url.path() == "/v1/models")
        .collect();
    assert!(probes.len() >= 2, "probes while paused: {}", probes.len());
    assert!(probes.iter().all(|r| r
        .headers
        .get("authorization")
        .is_some_and(|v| v.to_str().unwrap() == format!("Bearer {KEY}"))));
    let log = env.coordinator_log();
    assert!(log.contains("paused (unauthorized)"), "{log}");
    // The reason says it is the key, not the digits in the port or the task id.
    assert!(log.contains("the endpoint rejected the API key"), "{log}");
    assert!(!log.contains("server-error"), "{log}");
    // The failed turn is visible where people look.
    let ran = errors[0]["text"].as_str().unwrap().contains("fix-503-page");
    let id = if ran { "fix-503-page" } else { "plain" };
    let show = env.wg(&["show", id]).ok();
    assert!(
        show.stdout.contains("error:    unauthorized")
            && show.stdout.contains("invalid api key for this gateway"),
        "{show}"
    );
    assert_eq!(task(&env, id)["last_error"]["kind"], "unauthorized");
    let list = env.wg(&["list"]).ok();
    assert!(
        list.stdout.contains("[last error: unauthorized: "),
        "{list}"
    );
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_is_visible_and_never_lifted_by_an_unrelated_agent_exit() {
    let server = MockServer::start().await;
    // One model is still served (slowly: its agent ends after the pause began), the
    // default one is down.
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(body_string_contains("other-model"))
        .respond_with(sse_response(&[message("fine here")]).set_delay(Duration::from_secs(3)))
        .with_priority(1)
        .mount(&server)
        .await;
    answer_every_call(
        &server,
        ResponseTemplate::new(503).set_body_string("backend warming up"),
    )
    .await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.set_config(&[
        ("coordinator.retry_backoff", "300ms"),
        ("coordinator.endpoint_backoff_max", "600ms"),
        // The slow answer must not look idle.
        ("handler.idle_timeout", "20s"),
    ]);
    env.wg(&["add", "Remote", "--id", "remote"]).ok();
    // An agent of the same endpoint whose turn ends well while the endpoint is paused.
    env.wg(&["add", "Other", "--id", "other", "--model", "other-model"])
        .ok();
    let svc = Coordinator::run(
        &env,
        &[
            "service",
            "start",
            "--foreground",
            "--until-done",
            "--max-pause",
            "4s",
        ],
    );
    let status = |env: &TestEnv| env.wg(&["service", "status", "--json"]);
    let mut seen = None;
    wait_until!(Duration::from_secs(60), || {
        let s = status(&env);
        let v: Value = serde_json::from_str(&s.stdout).unwrap_or_default();
        let p = v["paused_endpoints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(p) = p.first() {
            seen = Some(p.clone());
            true
        } else {
            false
        }
    });
    let p = seen.expect("the pause shows in `wg service status --json`");
    assert_eq!(p["kind"], "server-error", "{p}");
    assert!(
        p["reason"].as_str().unwrap().contains("backend warming up"),
        "{p}"
    );
    assert!(p["since"].is_string() && p["next_probe"].is_string(), "{p}");
    let text = env.wg(&["service", "status"]);
    assert!(
        text.stdout.contains("PAUSED") && text.stdout.contains("backend warming up"),
        "{text}"
    );
    let run = svc.wait(Duration::from_secs(60));
    assert_eq!(run.code, 10, "{run}");
    assert_eq!(task(&env, "remote")["status"], "open");
    let other = outbox(&env, "other");
    assert_eq!(other.last().unwrap()["role"], "assistant", "{other:?}");
    let reqs = server.received_requests().await.unwrap();
    // The other agent's good exit did not lift the pause: nothing went in after it.
    assert_eq!(posts(&reqs), 2, "{run}");
    let log = env.coordinator_log();
    assert!(!log.contains("passed its probe"), "{log}");
}

/// An endpoint that gives every turn and every probe the same answer (an outage, a bad key).
async fn answer_every_call(server: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(answer.clone())
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// A project whose endpoint is `server`, for `wg doctor`.
async fn doctor_env(server: &MockServer, models: ResponseTemplate) -> Option<TestEnv> {
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(models)
        .mount(server)
        .await;
    codex_env(&v1(server))
}

fn listed() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "qwen3-coder"}]}))
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_sees_whether_tool_calls_come_back_structured_or_as_text() {
    // Structured: a function_call item.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(body_string_contains("\"ping\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"output": [
            {"type": "function_call", "name": "ping", "arguments": "{\"text\":\"ok\"}",
             "call_id": "c1"}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"output": []})))
        .mount(&server)
        .await;
    let Some(env) = doctor_env(&server, listed()).await else {
        return;
    };
    let out = env.wg(&["doctor"]).ok();
    assert!(
        out.stdout
            .contains("ok   tool calls a tool call came back structured"),
        "{out}"
    );
    // As text: the server's parser is off; doctor says what to change, per server.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(body_string_contains("\"ping\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"output": [
            {"type": "message", "content": [{"type": "output_text", "text":
            "<tool_call>\n<function=ping>\n<parameter=text>ok</parameter>\n</function>\n</tool_call>"}]}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"output": []})))
        .mount(&server)
        .await;
    let Some(env) = doctor_env(&server, listed()).await else {
        return;
    };
    let out = env.wg(&["doctor"]).code(1);
    assert!(out.stdout.contains("FAIL tool calls"), "{out}");
    assert!(
        out.stdout
            .contains("--enable-auto-tool-choice --tool-call-parser qwen3_coder")
            && out.stdout.contains("SGLang"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_quotes_the_server_and_checks_the_key_where_it_is_verified() {
    let server = MockServer::start().await;
    let rejected = ResponseTemplate::new(401)
        .set_body_json(json!({"error": {"message": "key sk-... is not valid for team blue"}}));
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "unsupported parameter: tools"}})),
        )
        .mount(&server)
        .await;
    let Some(env) = doctor_env(&server, rejected).await else {
        return;
    };
    let out = env.wg(&["doctor"]).code(1);
    assert!(
        out.stdout.contains("FAIL api key")
            && out
                .stdout
                .contains("answered 401: key sk-... is not valid for team blue"),
        "{out}"
    );
    assert!(
        out.stdout.contains("unsupported parameter: tools"),
        "every failure quotes the server: {out}"
    );
    assert_no_key(&env, &[&out.stdout, &out.stderr]);
}

/// `wg handler ID` once, returning the typed kind of the error record it wrote.
fn handler_error_kind(env: &TestEnv, id: &str) -> (String, String) {
    env.wg(&["add", id, "--id", id]).ok();
    env.wg(&["handler", id]).code(1);
    let last = outbox(env, id).pop().expect("an error record");
    assert_eq!(last["role"], "error", "{last}");
    (
        last["error_kind"].as_str().unwrap().to_string(),
        last["error_message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_bridge_429_and_5xx_are_classified_like_passthrough() {
    for (status, kind) in [
        (429, "rate-limited"),
        (503, "server-error"),
        (401, "unauthorized"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(
                    json!({"error": {"message": format!("upstream says {status}")}}),
                ),
            )
            .mount(&server)
            .await;
        let Some(env) = codex_env(&v1(&server)) else {
            return;
        };
        env.wg(&["config", "set", "endpoint.wire_api", "chat"]).ok();
        let (got, message) = handler_error_kind(&env, &format!("bridged-{status}"));
        assert_eq!(got, kind, "{status}: {message}");
        // The server's own words survive, not codex's retelling.
        assert!(
            message.contains(&format!("upstream says {status}")),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_status_of_a_turn_wins_over_what_codex_retries_saw_later() {
    // A gateway: the backend rejects the key, then the gateway's cooldown answers 429.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "backend: key rejected"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"error": {"message": "cooldown: too many failures"}})),
        )
        .mount(&server)
        .await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    // codex retries a 401 as a broken stream (`Reconnecting... 1/1`).
    env.wg(&["config", "set", "handler.stream_max_retries", "1"])
        .ok();
    let (kind, message) = handler_error_kind(&env, "gated");
    let posts = posts(&server.received_requests().await.unwrap());
    assert!(posts >= 2, "codex retried: {posts} requests");
    assert_eq!(kind, "unauthorized", "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_handler_logs_tool_calls_left_as_text_with_what_to_change() {
    let server = responses_stub(sse_response(&[message(
            "<tool_call>\n<function=exec_command>\n<parameter=cmd>wg done t</parameter>\n</function>\n</tool_call>",
        )])).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.wg(&["add", "T", "--id", "t"]).ok();
    env.wg(&["handler", "t"]).ok();
    let log = read(&env, "t", "handler.log");
    assert!(
        log.contains("tool_call_text") && log.contains("--tool-call-parser qwen3_coder"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_pauses_the_graph_instead_of_failing_it() {
    let server = responses_stub(sse_response(&[message("never asked")])).await;
    let Some(mut env) = codex_env(&v1(&server)) else {
        return;
    };
    env.extra_env.retain(|(k, _)| k != "WG_API_KEY");
    env.wg(&["config", "set", "coordinator.retry_backoff", "200ms"])
        .ok();
    for id in ["one", "two", "three"] {
        env.wg(&["add", id, "--id", id, "--max-retries", "0"]).ok();
    }
    let run = Coordinator::run(
        &env,
        &["service", "start", "--until-done", "--max-pause", "2s"],
    )
    .wait(Duration::from_secs(60));
    // `wg service start` said so before it started.
    assert!(run.stderr.contains("$WG_API_KEY is not set"), "{run}");
    assert_eq!(run.code, 10, "{run}");
    assert!(run.stderr.contains("key-missing"), "{run}");
    for id in ["one", "two", "three"] {
        let t = task(&env, id);
        assert_eq!(t["status"], "open", "{id}: {t}");
        assert!(t.get("retries").is_none_or(|r| r == 0), "{id}: {t}");
    }
    // Nothing reached the endpoint: the key is checked before codex starts, and the probe
    // does not ask without one.
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// Answers like the server behind it: down (503) until `up` is set, then `up_answer`.
struct Switch<R> {
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    up_answer: R,
}
impl<R: wiremock::Respond> wiremock::Respond for Switch<R> {
    fn respond(&self, r: &wiremock::Request) -> ResponseTemplate {
        if self.up.load(std::sync::atomic::Ordering::SeqCst) {
            self.up_answer.respond(r)
        } else {
            ResponseTemplate::new(503).set_body_string("backend warming up")
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn service_resume_probes_at_once_and_webhooks_announce_the_pause_and_its_end() {
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(Switch {
            up: up.clone(),
            up_answer: Finisher,
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(Switch {
            up: up.clone(),
            up_answer: listed(),
        })
        .mount(&server)
        .await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    // An hour to the next probe: only `wg service resume` can lift the pause in this test.
    env.set_config(&[
        ("coordinator.retry_backoff", "1h"),
        ("coordinator.endpoint_backoff_max", "1h"),
    ]);
    let cfg = env.wg_dir().join("config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("\n[notify]\nurl = \"{}/hook\"\n", hooks.uri()));
    std::fs::write(&cfg, text).unwrap();
    env.wg(&["add", "Remote", "--id", "remote"]).ok();
    // No coordinator yet: nothing to ask.
    env.wg(&["service", "resume"]).code(6);

    let svc = Coordinator::start(&env, &["--until-done"]);
    wait_until!(
        Duration::from_secs(60),
        || {
            let s = env.wg(&["service", "status", "--json"]);
            serde_json::from_str::<Value>(&s.stdout).is_ok_and(|v| {
                v["paused_endpoints"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            })
        },
        "the endpoint never showed as paused"
    );
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let resume = env.wg(&["service", "resume"]).ok();
    assert!(resume.stdout.contains("probing now: "), "{resume}");
    let run = svc.wait(Duration::from_secs(120));
    assert_eq!(run.code, 0, "{run}");
    let t = task(&env, "remote");
    assert_eq!(t["status"], "done", "{t}");
    assert!(t.get("retries").is_none_or(|r| r == 0), "{t}");
    let log = env.coordinator_log();
    assert!(
        log.contains("resume asked: 1 paused endpoint(s) probed now"),
        "{log}"
    );
    assert!(log.contains("passed its probe"), "{log}");
    // The probe that lifted the pause was the one resume asked for, with the agents' key.
    let reqs = server.received_requests().await.unwrap();
    let probes: Vec<_> = reqs
        .iter()
        .filter(|r| r.url.path() == "/v1/models")
        .collect();
    assert_eq!(probes.len(), 1, "{log}");
    assert_eq!(
        probes[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {KEY}")
    );

    // Webhooks: the pause with its reason, then its end, both naming the endpoint.
    let events: Vec<Value> = hooks
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let of = |status: &str| {
        events
            .iter()
            .find(|e| e["status"] == status)
            .unwrap_or_else(|| panic!("no {status} event: {events:?}"))
            .clone()
    };
    let (pause, end) = (of("endpoint-paused"), of("endpoint-resumed"));
    assert!(
        pause["reason"]
            .as_str()
            .is_some_and(|r| r.contains("server-error") && r.contains("backend warming up")),
        "{pause}"
    );
    for e in [&pause, &end] {
        assert!(
            e["endpoint"]
                .as_str()
                .is_some_and(|u| u.contains(&server.address().port().to_string())),
            "{e}"
        );
    }
    let at = |e: &Value| {
        events
            .iter()
            .position(|x| x == e)
            .expect("the event was received")
    };
    assert!(at(&pause) < at(&end), "{events:?}");
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
}

/// A backend that accepts connections and never answers. Returns its port and the largest
/// number of connections that were open at one time (a connection counts until the client
/// closes it).
fn hanging_backend() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let seen = peak.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let open = open.clone();
            std::thread::spawn(move || {
                // Read (and ignore) until the client gives up and closes.
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, seen)
}

#[test]
fn doctor_runs_its_endpoint_probes_at_once_against_a_hanging_backend() {
    let (port, peak) = hanging_backend();
    // No real codex needed: only the endpoint checks matter here.
    let env = codex_env_with(
        &format!("http://127.0.0.1:{port}/v1"),
        std::path::Path::new("/nonexistent/codex"),
    );
    let out = env.wg(&["doctor"]).code(1);
    // The model list, the wire check and the tool-call check were all waiting at once
    // (one after the other, no two connections would ever be open together).
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak >= 3, "at most {peak} probe(s) at a time:\n{out}");
    let endpoint = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("endpoint"))
        .unwrap_or_else(|| panic!("no endpoint check:\n{out}"));
    assert!(
        endpoint.starts_with("FAIL ") && endpoint.contains("no answer from"),
        "{out}"
    );
    assert_no_key(&env, &[&out.stdout, &out.stderr]);
}
