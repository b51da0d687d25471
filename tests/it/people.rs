//! People in the loop, end to end with the real codex against a wiremock Responses stub and a
//! real coordinator: an agent asks and waits for an answer; a person pauses, resumes and
//! cancels a running task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::project::{codex_env, read, status};
use crate::common::service::Coordinator;
use crate::common::stub::{message, sse_response};
use crate::common::wait::stays;
use crate::common::TestEnv;

fn call(cmd: &str) -> ResponseTemplate {
    let args = json!({ "cmd": cmd }).to_string();
    sse_response(&[
        json!({"type": "function_call", "status": "completed", "id": "fc_1",
        "name": "exec_command", "arguments": args, "call_id": "call_1"}),
    ])
}

fn body(r: &Request) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

fn fast(env: &TestEnv) {
    env.wg(&["config", "set", "coordinator.poll_interval", "200ms"])
        .ok();
}

/// Turn 1: asks a question. Turn 2 (the answer is in the prompt): reports done.
struct Asker;
impl Respond for Asker {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let b = body(r);
        if b.contains("function_call_output") {
            return sse_response(&[message("ok")]);
        }
        if b.contains("ANSWER-BLUE") {
            return call("wg done \"$WG_TASK_ID\"");
        }
        call("wg ask \"$WG_TASK_ID\" 'Which colour should the button be?'")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_asks_waits_unnudged_and_the_answer_is_its_next_message() {
    let server = MockServer::start().await;
    let Some(env) = codex_env(&format!("{}/v1", server.uri())) else {
        return;
    };
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(Asker)
        .mount(&server)
        .await;
    fast(&env);
    env.wg(&["add", "Paint", "--id", "paint"]).ok();
    let _service = Coordinator::start(&env, &[]);
    wait_until!(
        Duration::from_secs(60),
        || status(&env, "paint") == "needs-input",
        "{}",
        env.coordinator_log()
    );
    // Several coordinator ticks (200 ms each) after the turn ended: still waiting, unnudged.
    wait_until!(Duration::from_secs(30), || env
        .coordinator_log()
        .contains("ended agent="));
    stays("paint waits for a person", Duration::from_secs(2), || {
        status(&env, "paint") == "needs-input"
    });
    let inbox = read(&env, "paint", "inbox.jsonl");
    assert!(!inbox.contains("\"kind\":\"nudge\""), "{inbox}");
    let shown = env.wg(&["show", "paint"]).ok().stdout;
    assert!(
        shown.contains("Which colour should the button be?"),
        "{shown}"
    );
    let listed = env.wg(&["list"]).ok().stdout;
    assert!(listed.contains("needs-input"), "{listed}");
    let svc = env.command(&["service", "status"]).output().unwrap();
    let svc = String::from_utf8_lossy(&svc.stdout).to_string();
    assert!(
        svc.contains("needs input (1") && svc.contains("paint"),
        "{svc}"
    );

    env.wg(&["msg", "paint", "Make it ANSWER-BLUE"]).ok();
    wait_until!(
        Duration::from_secs(60),
        || status(&env, "paint") == "done",
        "{}",
        env.coordinator_log()
    );
    let reqs = server.received_requests().await.unwrap();
    let answered = reqs
        .iter()
        .map(body)
        .find(|b| b.contains("ANSWER-BLUE"))
        .expect("a prompt carried the answer");
    // The answer names the question it answers.
    let tail = &answered[answered.find("## New message").unwrap_or(0)..];
    assert!(
        tail.contains("Answer to your question \\\"Which colour should the button be?\\\""),
        "{}",
        &tail[..tail.len().min(600)]
    );
    let log = read(&env, "paint", "log.jsonl");
    assert!(
        log.contains("\"to\":\"needs-input\"") && log.contains("answered"),
        "{log}"
    );
}

/// Runs a long command until the test flips `finish`; then reports done.
struct Sleeper(Arc<AtomicBool>);
impl Respond for Sleeper {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let b = body(r);
        if b.contains("function_call_output") {
            return sse_response(&[message("ok")]);
        }
        if self.0.load(Ordering::SeqCst) {
            return call("wg done \"$WG_TASK_ID\"");
        }
        call("echo started-long-work; sleep 120")
    }
}

fn agent_pid(env: &TestEnv, id: &str) -> Option<i64> {
    let text = std::fs::read_to_string(env.wg_dir().join("service/agents.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["agents"]
        .as_array()?
        .iter()
        .find(|a| a["task"] == id)
        .and_then(|a| a["pgid"].as_i64())
}

/// Whether any process is left in process group `pgid`.
fn group_alive(pgid: i64) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.to_string();
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some(f.first() != Some(&"Z") && f.get(2)?.parse::<i64>().ok()? == pgid)
            })
            .unwrap_or(false)
    })
}

async fn stop_and_keep(verb: &[&str]) {
    let server = MockServer::start().await;
    let Some(env) = codex_env(&format!("{}/v1", server.uri())) else {
        return;
    };
    let finish = Arc::new(AtomicBool::new(false));
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(Sleeper(finish.clone()))
        .mount(&server)
        .await;
    fast(&env);
    // The long command prints nothing for a while: only the test ends it.
    env.wg(&["config", "set", "handler.idle_timeout", "300s"])
        .ok();
    env.wg(&["add", "Long", "--id", "long"]).ok();
    let _service = Coordinator::start(&env, &[]);
    let mut pgid = None;
    wait_until!(Duration::from_secs(60), || {
        pgid = agent_pid(&env, "long");
        pgid.is_some() && read(&env, "long", "events.jsonl").contains("started-long-work")
    });
    let pgid = pgid.unwrap();
    let mut args = verb.to_vec();
    args.insert(1, "long");
    env.wg(&args).ok();
    wait_until!(
        Duration::from_secs(30),
        || !group_alive(pgid),
        "the agent's group is still running: {}",
        env.coordinator_log()
    );
    if verb[0] == "done" {
        assert_eq!(status(&env, "long"), "done");
        assert!(env.coordinator_log().contains("task made done by user"));
        return;
    }
    assert_eq!(status(&env, "long"), "paused");
    // Never dispatched while paused.
    stays(
        "long stays paused, no agent",
        Duration::from_secs(1),
        || status(&env, "long") == "paused" && agent_pid(&env, "long").is_none(),
    );
    assert!(
        read(&env, "long", "inbox.jsonl").contains("Long"),
        "conversation kept"
    );
    let shown = env.wg(&["show", "long"]).ok().stdout;
    assert!(shown.contains("status:   paused"), "{shown}");

    finish.store(true, Ordering::SeqCst);
    env.wg(&["resume", "long"]).ok();
    wait_until!(
        Duration::from_secs(60),
        || status(&env, "long") == "done",
        "{}",
        env.coordinator_log()
    );
    // The stopped turn left no reply; the resumed one is told what it had done, including
    // the command that was still running when it was stopped.
    let reqs = server.received_requests().await.unwrap();
    let resumed = reqs
        .iter()
        .map(body)
        .find(|b| b.contains("An earlier attempt at this turn did not finish"))
        .expect("the resumed turn's prompt describes the stopped attempt");
    assert!(
        resumed.contains("echo started-long-work; sleep 120")
            && resumed.contains("stopped while it ran"),
        "{}",
        &resumed[resumed.find("An earlier attempt").unwrap()..]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_stops_a_running_agent_and_resume_continues_the_task() {
    stop_and_keep(&["pause"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_and_keeps_the_task_with_its_reason() {
    stop_and_keep(&["cancel", "--reason", "wrong approach"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_marking_a_running_task_done_stops_its_agent() {
    stop_and_keep(&["done"]).await;
}

/// Asks for the same command on every request, forever.
struct Repeater;
impl Respond for Repeater {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        call("cat notes.txt")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_repeating_one_command_ends_with_a_loop_error_naming_it() {
    let server = MockServer::start().await;
    let Some(env) = codex_env(&format!("{}/v1", server.uri())) else {
        return;
    };
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(Repeater)
        .mount(&server)
        .await;
    env.wg(&["config", "set", "handler.max_repeated_commands", "4"])
        .ok();
    env.wg(&["add", "Spin", "--id", "spin"]).ok();
    let run = env.wg(&["handler", "spin", "--once"]);
    let log = read(&env, "spin", "handler.log");
    assert!(
        log.contains("runaway kind=loop") && log.contains("4 times in a row: "),
        "{log}\n{run}"
    );
    assert!(log.contains("error_kind=loop"), "{log}");
    let reqs = server.received_requests().await.unwrap().len();
    assert!(
        reqs <= 6,
        "stopped within the repeat count: {reqs} requests"
    );
    let outbox = read(&env, "spin", "outbox.jsonl");
    assert!(
        outbox.contains("\"error_kind\":\"loop\"") && outbox.contains("cat notes.txt"),
        "{outbox}"
    );
}
