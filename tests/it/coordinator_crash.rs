//! A coordinator killed with SIGKILL at the moments that matter, on a graph of tasks run by
//! the real codex against a Responses stub: mid-turn, while turns end with nobody watching, and
//! right after a claim. Every count comes from the stub's request log: a turn that ran twice
//! would have asked the model twice.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

use crate::common::project::{codex_env, outbox, read, task};
use crate::common::service::{alive, Coordinator};
use crate::common::stub::{message, responses_stub, sse_response, v1, Finisher};
use crate::common::TestEnv;

/// Marks each task's brief, so the stub knows whose turn a request is.
const MARK: &str = "crash-test-task=";

/// The task a request belongs to (its brief's mark; a dependency's brief is not replayed).
fn task_of(body: &str) -> String {
    let marks: Vec<&str> = body
        .match_indices(MARK)
        .map(|(i, _)| {
            let rest = &body[i + MARK.len()..];
            &rest[..rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len())]
        })
        .collect();
    let first = marks.first().copied().unwrap_or("?");
    assert!(
        marks.iter().all(|m| *m == first),
        "one task per request: {marks:?}"
    );
    first.to_string()
}

/// A model call that starts a turn (the follow-up of a tool call carries its output).
fn starts_turn(body: &str) -> bool {
    !body.contains("function_call_output")
}

const LOOKED: &str = "I looked at it.";

/// `a` answers late (the coordinator dies meanwhile); `b` and `c` end their first turn late
/// and without reporting; every other turn reports done as `Finisher` does.
struct Script;
impl Respond for Script {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&r.body);
        let reply = Finisher.respond(r);
        if !starts_turn(&body) {
            return reply;
        }
        match task_of(&body).as_str() {
            "a" => reply.set_delay(Duration::from_secs(3)),
            "b" | "c" if !body.contains(LOOKED) => {
                sse_response(&[message(LOOKED)]).set_delay(Duration::from_secs(2))
            }
            _ => reply,
        }
    }
}

/// Per task: the model calls that started a turn, and all calls.
async fn requests(server: &MockServer) -> BTreeMap<String, (Vec<String>, usize)> {
    let mut out: BTreeMap<String, (Vec<String>, usize)> = BTreeMap::new();
    for r in server.received_requests().await.unwrap() {
        let body = String::from_utf8_lossy(&r.body).to_string();
        let e = out.entry(task_of(&body)).or_default();
        e.1 += 1;
        if starts_turn(&body) {
            e.0.push(body);
        }
    }
    out
}

async fn wait_for(
    server: &MockServer,
    what: &str,
    cond: impl Fn(&BTreeMap<String, (Vec<String>, usize)>) -> bool,
) {
    for _ in 0..1200 {
        if cond(&requests(server).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the stub never saw {what}");
}

/// The latest record of task `id` in graph.jsonl (read raw: this must not wait on any lock).
fn latest_record(env: &TestEnv, id: &str) -> Option<Value> {
    let text = std::fs::read_to_string(env.wg_dir().join("graph.jsonl")).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["id"] == id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_coordinator_killed_mid_turn_while_turns_end_and_after_a_claim_runs_no_turn_twice() {
    let server = responses_stub(Script).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.set_config(&[
        // The stub's late answers must not look like a stalled stream.
        ("handler.stream_idle_timeout", "30s"),
        ("handler.idle_timeout", "30s"),
        ("coordinator.poll_interval", "200ms"),
    ]);
    for (id, after) in [
        ("a", &[][..]),
        ("b", &["a"]),
        ("c", &["a"]),
        ("d", &["b", "c"]),
    ] {
        let desc = format!("Do it. {MARK}{id}");
        let mut args = vec!["add", id, "--id", id, "-d", &desc];
        for a in after {
            args.extend(["--after", a]);
        }
        env.wg(&args).ok();
    }

    // 1. Mid-turn: `a`'s model call is in flight when the coordinator dies; the next one
    //    adopts the still running agent.
    let mut first = Coordinator::start(&env, &[]);
    wait_for(&server, "a's turn", |r| r.contains_key("a")).await;
    first.kill9();
    let mut second = Coordinator::start(&env, &[]);

    // 2. Turns that end while no coordinator runs: `b` and `c` reply without reporting, and
    //    `b` gets a message while nobody watches.
    wait_for(&server, "b's and c's turns", |r| {
        r.contains_key("b") && r.contains_key("c")
    })
    .await;
    second.kill9();
    let pids: Vec<i32> = env
        .agents()
        .iter()
        .filter(|a| a["task"] == "b" || a["task"] == "c")
        .map(|a| a["pid"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(pids.len(), 2, "{:?}", env.agents());
    // Over: replied, waiting, and their handlers gone.
    wait_until!(
        Duration::from_secs(30),
        || {
            ["b", "c"]
                .iter()
                .all(|id| outbox(&env, id).len() == 1 && task(&env, id)["status"] == "waiting")
                && !pids.iter().any(|p| alive(*p))
        },
        "b's and c's turns did not end: {}",
        read(&env, "b", "handler.log")
    );
    env.wg(&["msg", "b", "A question while no coordinator runs?"])
        .ok();

    // 3. Right after a claim: the coordinator dies the moment `d` is claimed.
    let mut third = Coordinator::start(&env, &[]);
    // Polled without pause: the claim is followed within milliseconds by the agent's start
    // and its agents.json entry, and a kill in between is the case that matters most.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !latest_record(&env, "d").is_some_and(|r| r["status"] == "in-progress") {
        assert!(std::time::Instant::now() < deadline, "d was never claimed");
        std::thread::yield_now();
    }
    third.kill9();
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(90));
    assert_eq!(run.code, 0, "{run}");

    let log = env.coordinator_log();
    let calls = requests(&server).await;
    let turns = |id: &str| calls.get(id).map(|c| c.0.len()).unwrap_or(0);
    for id in ["a", "b", "c", "d"] {
        let t = task(&env, id);
        assert_eq!(t["status"], "done", "{id}: {t}\n{run}\n{log}");
        // Done exactly once, and the reporting turn's work ran once.
        let tl = read(&env, id, "log.jsonl");
        assert_eq!(tl.matches("\"to\":\"done\"").count(), 1, "{id}: {tl}");
        assert_eq!(tl.matches("working on it").count(), 1, "{id}: {tl}");
        // Every message answered, each by one reply.
        let replies = outbox(&env, id);
        let inbox = read(&env, id, "inbox.jsonl");
        let last_seq = inbox.lines().count() as u64;
        assert_eq!(
            replies.last().unwrap()["in_reply_to"],
            last_seq,
            "{id}: {inbox}"
        );
        assert!(
            replies.iter().all(|r| r["role"] == "assistant"),
            "{id}: {replies:?}"
        );
        // One model call started each turn: none ran twice.
        assert_eq!(turns(id), replies.len(), "{id}: {log}");
    }
    assert_eq!(turns("a"), 1, "a was adopted, not run again: {log}");
    assert_eq!(turns("d"), 1, "{log}");
    // `b`: its first turn, then one for the message; `c`: its first turn, then the nudge.
    assert_eq!(turns("b"), 2, "{log}");
    assert_eq!(turns("c"), 2, "{log}");
    let b = &calls["b"].0;
    assert!(!b[0].contains("A question while") && b[1].contains("A question while"));
    let c = &calls["c"].0;
    assert!(c[1].contains("without reporting"), "c was nudged");
    // A crash is no failure: no retry was spent on any of it.
    for id in ["a", "b", "c", "d"] {
        let t = task(&env, id);
        assert_eq!(t["retries"].as_u64().unwrap_or(0), 0, "{id}: {t}\n{log}");
    }
    // The paths taken: `a` adopted while its turn ran, `c`'s ended turn judged at the start.
    assert!(
        log.lines()
            .any(|l| l.contains("adopt agent=") && l.contains("task=a ")),
        "{log}"
    );
    assert!(
        log.contains("recover task=c: its turn ended while no coordinator ran"),
        "{log}"
    );
}

/// The state a coordinator killed between a claim and its agent's start leaves: the task
/// in progress for an agent that is in no agents.json and runs nowhere, the claim its log's
/// last record. `agent_log` is written after the claim: the empty file the coordinator creates
/// just before the fork, or the output of an agent that ran.
fn claimed_then_killed(env: &TestEnv, id: &str, agent_log: Option<&str>) {
    use std::io::Write;
    let ts = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let graph = env.wg_dir().join("graph.jsonl");
    let mut rec = latest_record(env, id).unwrap();
    rec["status"] = "in-progress".into();
    rec["assigned"] = format!("agent-dead-{id}").into();
    rec["updated"] = ts.clone().into();
    std::fs::create_dir_all(env.wg_dir().join("tasks").join(id)).unwrap();
    let claim = serde_json::json!({"ts": ts, "actor": "coordinator", "event": "status",
        "from": "open", "to": "in-progress"});
    for (path, line) in [
        (graph, rec),
        (env.wg_dir().join("tasks").join(id).join("log.jsonl"), claim),
    ] {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        f.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    if let Some(text) = agent_log {
        std::thread::sleep(Duration::from_millis(5));
        std::fs::write(env.wg_dir().join("tasks").join(id).join("agent.log"), text).unwrap();
    }
}

#[test]
fn a_claim_whose_agent_never_started_spends_no_retry() {
    let env = TestEnv::new();
    for id in ["quiet", "forked", "ran", "recorded"] {
        env.wg(&["add", id, "--id", id, "--max-retries", "0"]).ok();
    }
    claimed_then_killed(&env, "quiet", None);
    claimed_then_killed(&env, "forked", Some(""));
    claimed_then_killed(&env, "ran", Some("ran\n"));
    // A silent agent that agents.json says was started, and is gone.
    claimed_then_killed(&env, "recorded", None);
    std::fs::create_dir_all(env.wg_dir().join("service")).unwrap();
    let agents = serde_json::json!({"version": 1, "coordinator_pid": 1, "agents": [{
        "task": "recorded", "agent_id": "agent-dead-recorded", "pid": 999_999_999,
        "pgid": 999_999_999, "start_time": 1, "started_at": "2026-01-01T00:00:00Z",
        "executor": "mock", "turn": 1, "conversational": false, "exit_code_decides": false,
        "log_offset": 0}]});
    std::fs::write(env.wg_dir().join("service/agents.json"), agents.to_string()).unwrap();
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    for id in ["quiet", "forked"] {
        let t = task(&env, id);
        assert_eq!(t["status"], "done", "{t}\n{run}");
        assert_eq!(t["retries"].as_u64().unwrap_or(0), 0, "{run}");
    }
    assert!(
        run.stderr.contains("was claimed but never started"),
        "{run}"
    );
    // An agent that left output, or was recorded as started, ran and died: that is the
    // retry rule's case (none left).
    for id in ["ran", "recorded"] {
        let t = task(&env, id);
        assert_eq!(t["status"], "failed", "{t}\n{run}");
        assert!(
            run.stderr.contains(&format!(
                "agent agent-dead-{id} died while no coordinator watched it; no retries left"
            )),
            "{run}"
        );
    }
    assert_eq!(run.code, 8, "{run}");
}

#[test]
fn a_claimed_agent_missing_from_agents_json_is_found_by_its_environment() {
    use std::os::unix::process::CommandExt;
    let env = TestEnv::new();
    env.wg(&["add", "t", "--id", "t"]).ok();
    claimed_then_killed(&env, "t", None);
    // The agent the killed coordinator had just started: it reports in a moment.
    let mut agent = std::process::Command::new("sh")
        .args(["-c", "sleep 1 && exec \"$WG\" done t"])
        .current_dir(&env.root)
        .env("WG", crate::common::wg_bin())
        .env("WG_DIR", env.wg_dir())
        .env("WG_TASK_ID", "t")
        .env("WG_AGENT_ID", "agent-dead-t")
        .process_group(0)
        .spawn()
        .unwrap();
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    let _ = agent.kill();
    agent.wait().unwrap();
    assert!(
        run.stderr.contains("adopt agent=agent-dead-t task=t")
            && run.stderr.contains("found by its environment"),
        "{run}"
    );
    let t = task(&env, "t");
    assert_eq!(t["status"], "done", "{t}\n{run}");
    assert_eq!(t["retries"].as_u64().unwrap_or(0), 0, "{run}");
    // Adopted, not started again.
    assert!(!run.stderr.contains("start task=t"), "{run}");
}
