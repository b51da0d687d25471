//! The coordinator end to end: real `wg service start` processes running real mock agents.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::project::codex_env;
use crate::common::service::{alive, procs_with_env, Coordinator};
use crate::common::stub::{messages, KEY};
use crate::common::TestEnv;

/// Live processes of this project's task `task`.
fn task_procs(env: &TestEnv, task: &str) -> Vec<i32> {
    let dir = format!("WG_DIR={}", env.wg_dir().display());
    procs_with_env("WG_TASK_ID", task)
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .map(|e| e.split(|b| *b == 0).any(|kv| kv == dir.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

fn pgid_of(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..]
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// Runs `wg ARGS` and insists on success.
fn ok(env: &TestEnv, args: &[&str]) {
    let _ = env.wg(args).ok();
}

fn set(env: &TestEnv, key: &str, value: &str) {
    ok(env, &["config", "set", key, value]);
}

fn project(config: &str) -> TestEnv {
    let env = TestEnv::new();
    let path = env.wg_dir().join("config.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push('\n');
    text.push_str(config);
    std::fs::write(&path, text).unwrap();
    env
}

fn markers(env: &TestEnv, id: &str) -> Vec<Value> {
    let dir = env.wg_dir().join("tasks").join(id).join("mock-runs");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect()
}

fn task_log(env: &TestEnv, id: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(env.wg_dir().join("tasks").join(id).join("log.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ts_ms(v: &Value) -> u128 {
    let t = humantime::parse_rfc3339(v["ts"].as_str().unwrap()).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

/// Times of a task's status changes to `to`.
fn status_times(env: &TestEnv, id: &str, to: &str) -> Vec<u128> {
    task_log(env, id)
        .iter()
        .filter(|r| r["event"] == "status" && r["to"] == to)
        .map(ts_ms)
        .collect()
}

#[test]
fn twenty_task_graph_respects_every_edge_and_max_agents() {
    let env = project("[executors.mock]\nturn_ms = 60\n");
    // Five layers of four; each task waits for one or two tasks of the layer before.
    let mut records = Vec::new();
    let mut edges = Vec::new();
    for layer in 0..5 {
        for i in 0..4 {
            let id = format!("t{layer}-{i}");
            let mut after = Vec::new();
            if layer > 0 {
                after.push(format!("t{}-{i}", layer - 1));
                after.push(format!("t{}-{}", layer - 1, (i + 1) % 4));
            }
            for a in &after {
                edges.push((a.clone(), id.clone()));
            }
            records.push(serde_json::json!({"id": id, "title": id, "after": after}));
        }
    }
    env.import(&records);
    let out = Coordinator::start(&env, &["--until-done", "--max-agents", "3"])
        .wait(Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out}");
    let all = env.tasks();
    assert_eq!(all.len(), 20);
    for (id, t) in &all {
        assert_eq!(t["status"], "done", "{id}");
        assert_eq!(markers(&env, id).len(), 1, "{id} ran more than once");
    }
    // Every edge: the dependent was claimed only after its dependency was done.
    for (dep, task) in &edges {
        let done = status_times(&env, dep, "done")[0];
        let started = status_times(&env, task, "in-progress")[0];
        assert!(started >= done, "{task} started before {dep} was done");
    }
    // Concurrency from the logs: claim..done intervals never overlap more than 3 deep.
    let mut events = Vec::new();
    for id in all.keys() {
        events.push((status_times(&env, id, "in-progress")[0], 1i32));
        events.push((status_times(&env, id, "done")[0], -1i32));
    }
    events.sort(); // at equal times the end (-1) sorts first
    let (mut now, mut peak) = (0, 0);
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    assert!(peak <= 3, "{peak} agents ran at once with max_agents = 3");
    assert_eq!(
        peak, 3,
        "the graph has room for 3 at once; the coordinator used {peak}"
    );
}

#[test]
fn kill_9_then_restart_adopts_live_agents_and_runs_nothing_twice() {
    let env = project("[executors.mock]\nturn_ms = 1500\n");
    let records: Vec<Value> = (0..20)
        .map(|i| serde_json::json!({"id": format!("job-{i:02}"), "title": format!("job {i}")}))
        .collect();
    env.import(&records);
    let mut first = Coordinator::start(&env, &["--max-agents", "8"]);
    wait_until!(
        Duration::from_secs(10),
        || env.agents().len() == 8,
        "8 agents never ran: {}",
        env.coordinator_log()
    );
    let running: BTreeSet<String> = env
        .agents()
        .iter()
        .map(|a| a["task"].as_str().unwrap().to_string())
        .collect();
    first.kill9();
    let counts = env.tasks();
    assert_eq!(
        counts.values().filter(|t| t["status"] == "open").count(),
        12,
        "12 tasks should still wait"
    );
    let out = Coordinator::start(&env, &["--until-done", "--max-agents", "8"])
        .wait(Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out}");
    for (id, t) in env.tasks() {
        assert_eq!(t["status"], "done", "{id}: {t}");
        let m = markers(&env, &id);
        assert_eq!(m.len(), 1, "{id} ran {} times", m.len());
        if running.contains(&id) {
            // Adopted, not restarted: its only run is the one started before the kill.
            assert_eq!(t["retries"].as_u64().unwrap_or(0), 0);
        }
    }
    let log = env.coordinator_log();
    assert_eq!(log.matches("adopt agent=").count(), 8, "{log}");
}

#[test]
fn each_timeout_ends_its_agent_and_term_ignorers_and_grandchildren_die() {
    let env = project("[executors.mock]\nturn_ms = 0\n");
    set(&env, "coordinator.idle_timeout", "1500ms");
    set(&env, "coordinator.first_output_timeout", "700ms");
    set(&env, "coordinator.grace_period", "300ms");
    let t = |id: &str, behavior: &str, timeout: Option<&str>| {
        let mut v = serde_json::json!({"id": id, "title": id, "max_retries": 0,
            "mock": {"behavior": behavior}});
        if let Some(to) = timeout {
            v["timeout"] = to.into();
        }
        v
    };
    env.import(&[
        t("idle", "hang", None),
        t("silent", "silent-hang", None),
        t("hard", "hang", Some("400ms")),
        t("stubborn", "ignore-term", Some("400ms")),
        t("family", "grandchild", Some("1s")),
    ]);
    let coord = Coordinator::start(&env, &["--until-done", "--max-agents", "8"]);
    // Catch the family's whole process group while it runs.
    let mut family = Vec::new();
    wait_until!(Duration::from_secs(5), || {
        let Some(a) = env.agents().into_iter().find(|a| a["task"] == "family") else {
            return false;
        };
        let pgid = a["pgid"].as_i64().unwrap() as i32;
        family = task_procs(&env, "family")
            .into_iter()
            .filter(|p| pgid_of(*p) == Some(pgid))
            .collect();
        family.len() >= 3 // wg mock-agent, sh, and the sleeps
    });
    let out = coord.wait(Duration::from_secs(30));
    // Some task failed: --until-done says so.
    assert_eq!(out.code, 8, "{out}");
    let all = env.tasks();
    let reason = |id: &str| {
        assert_eq!(all[id]["status"], "failed", "{id}");
        all[id]["failure_reason"].as_str().unwrap().to_string()
    };
    assert!(
        reason("idle").starts_with("idle timeout"),
        "{}",
        reason("idle")
    );
    assert!(
        reason("silent").starts_with("first-output timeout"),
        "{}",
        reason("silent")
    );
    assert!(
        reason("hard").starts_with("hard timeout"),
        "{}",
        reason("hard")
    );
    assert!(reason("stubborn").starts_with("hard timeout"));
    assert!(reason("family").starts_with("hard timeout"));
    let log = env.coordinator_log();
    let stubborn = log
        .lines()
        .find(|l| l.contains("ended agent=") && l.contains("task=stubborn"))
        .unwrap();
    assert!(stubborn.contains("(SIGKILL)"), "{stubborn}");
    assert!(!family.is_empty());
    wait_until!(
        Duration::from_secs(3),
        || family.iter().all(|p| !alive(*p)),
        "a process of the family survived: {family:?}"
    );
    assert!(procs_with_env("WG_DIR", &env.wg_dir().display().to_string()).is_empty());
}

#[test]
fn failures_are_retried_with_backoff_then_stay_failed() {
    let env = project("[executors.mock]\nturn_ms = 0\n");
    set(&env, "coordinator.retry_backoff", "150ms");
    env.import(&[
        serde_json::json!({"id": "flaky", "title": "flaky", "max_retries": 2,
                "mock": {"fail_times": 1}}),
        serde_json::json!({"id": "broken", "title": "broken", "max_retries": 2,
                "mock": {"behavior": "fail"}}),
    ]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    // Some task failed: --until-done says so.
    assert_eq!(out.code, 8, "{out}");
    let all = env.tasks();
    assert_eq!(all["flaky"]["status"], "done");
    assert_eq!(all["flaky"]["retries"], 1);
    assert_eq!(markers(&env, "flaky").len(), 2);
    assert_eq!(all["broken"]["status"], "failed");
    assert_eq!(all["broken"]["retries"], 2);
    assert_eq!(markers(&env, "broken").len(), 3, "one run plus two retries");
    // Backoff: 150 ms before the first retry, 300 ms before the second.
    let failed = status_times(&env, "broken", "failed");
    let reopened: Vec<u128> = task_log(&env, "broken")
        .iter()
        .filter(|r| r["event"] == "status" && r["from"] == "failed" && r["to"] == "open")
        .map(ts_ms)
        .collect();
    assert_eq!(failed.len(), 3);
    assert_eq!(reopened.len(), 2);
    assert!(reopened[0] - failed[0] >= 150, "{failed:?} {reopened:?}");
    assert!(reopened[1] - failed[1] >= 300, "{failed:?} {reopened:?}");
}

#[test]
fn shell_executor_exit_code_decides_and_silent_agents_fail() {
    let env = project("[executors.mock]\nturn_ms = 0\n");
    ok(&env, &["add", "ok", "-x", "shell", "--command", "true"]);
    ok(
        &env,
        &[
            "add",
            "bad",
            "-x",
            "shell",
            "--max-retries",
            "0",
            "--command",
            "sh",
            "--command",
            "-c",
            "--command",
            "echo broken-output; exit 3",
        ],
    );
    env.import(&[
        serde_json::json!({"id": "quiet", "title": "quiet", "max_retries": 0,
            "mock": {"behavior": "exit-silently"}}),
    ]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    // Some task failed: --until-done says so.
    assert_eq!(out.code, 8, "{out}");
    let all = env.tasks();
    assert_eq!(all["ok"]["status"], "done");
    assert_eq!(all["bad"]["status"], "failed");
    let r = all["bad"]["failure_reason"].as_str().unwrap();
    assert!(
        r.starts_with("exit code 3") && r.contains("broken-output"),
        "{r}"
    );
    let r = all["quiet"]["failure_reason"].as_str().unwrap();
    assert!(
        r.starts_with("agent exited without reporting (exit code 1)"),
        "{r}"
    );
}

#[test]
fn service_is_single_abandon_stops_the_agent_and_stop_cleans_up() {
    let env = project("[executors.mock]\nturn_ms = 0\n");
    env.import(
        &[
            serde_json::json!({"id": "forever", "title": "forever", "mock": {"behavior": "grandchild"}}),
            serde_json::json!({"id": "slow", "title": "slow", "mock": {"behavior": "hang"}}),
        ],
    );
    let started = env.wg(&["service", "start"]).ok();
    let _guard = Coordinator::background(&env);
    let pid: i32 = started
        .stdout
        .split("pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .expect("pid in the start message");
    let second = env.wg(&["service", "start"]);
    assert_eq!(second.code, 1, "{second}");
    assert!(second.stderr.contains(&format!("pid {pid}")), "{second}");
    wait_until!(Duration::from_secs(5), || env.agents().len() == 2);
    let status = env.wg(&["service", "status", "--json"]).ok().json();
    assert_eq!(status["running"], true);
    assert_eq!(status["pid"], pid);
    assert_eq!(status["agents"].as_array().unwrap().len(), 2);
    assert_eq!(status["counts"]["in-progress"], 2);
    let forever_pgid = status["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["task"] == "forever")
        .unwrap()["pid"]
        .as_i64()
        .unwrap() as i32;
    // The agent, its `sh`, and the two sleeps.
    let mut group: Vec<i32> = Vec::new();
    wait_until!(Duration::from_secs(5), || {
        group = task_procs(&env, "forever");
        group.len() >= 4
    });
    ok(&env, &["abandon", "forever"]);
    wait_until!(
        Duration::from_secs(10),
        || group.iter().all(|p| !alive(*p)),
        "the abandoned task's processes survived"
    );
    assert!(!alive(forever_pgid));
    ok(&env, &["service", "stop"]);
    assert!(!alive(pid));
    let down = env.wg(&["service", "status", "--json"]);
    assert_eq!(down.code, 6, "{down}");
    assert_eq!(down.json()["running"], false);
    let all = env.tasks();
    assert_eq!(all["forever"]["status"], "abandoned");
    // The interrupted task goes back to open without spending a retry.
    assert_eq!(all["slow"]["status"], "open");
    assert_eq!(all["slow"]["retries"].as_u64().unwrap_or(0), 0);
    assert!(env.agents().is_empty());
    assert!(procs_with_env("WG_DIR", &env.wg_dir().display().to_string()).is_empty());
}

#[test]
fn no_api_key_in_argv_logs_or_files() {
    const SECRET: &str = "sk-wgtest-9f3c1e77-DO-NOT-LEAK";
    let mut env = project("[executors.mock]\nturn_ms = 700\n");
    env.set_env("WG_API_KEY", SECRET);
    for i in 0..3 {
        ok(&env, &["add", &format!("job {i}")]);
    }
    let coord = Coordinator::start(&env, &["--until-done"]);
    wait_until!(Duration::from_secs(5), || env.agents().len() == 3);
    let mut seen_in_env = 0;
    for a in env.agents() {
        let pid = a["pid"].as_i64().unwrap();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let environ = String::from_utf8_lossy(&environ);
        assert!(environ.contains("WG_TASK_ID="), "environ of {pid} was read");
        if environ.contains(SECRET) {
            seen_in_env += 1;
        }
    }
    // An executor that does not talk to the endpoint never gets the key (codex and claude
    // get it only in `wg handler`, whose credential proxy keeps it from the agent).
    assert_eq!(seen_in_env, 0);
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(SECRET),
                "the key is on a command line: {:?}",
                e.path()
            );
        }
    }
    let out = coord.wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET));
    let files = env.snapshot();
    assert!(files.iter().any(|(p, _)| p.ends_with("agent.log")));
    assert!(files.iter().any(|(p, _)| p.ends_with("agents.json")));
    for (path, bytes) in files {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "the key is in {}",
            path.display()
        );
    }
}

mod webhooks {
    use super::*;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn chain(env: &TestEnv) {
        ok(env, &["add", "a"]);
        ok(env, &["add", "b", "--after", "a"]);
        ok(env, &["add", "c", "--after", "b"]);
    }

    /// From the first claim to the last done, from the task logs.
    fn dispatch_span(env: &TestEnv) -> u128 {
        let start = status_times(env, "a", "in-progress")[0];
        let end = status_times(env, "c", "done")[0];
        end - start
    }

    #[test]
    fn one_post_per_transition_with_the_token() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(MockServer::start());
        rt.block_on(
            Mock::given(method("POST"))
                .and(path("/hook"))
                .and(header("X-WG-Token", "tok-123"))
                .respond_with(ResponseTemplate::new(200))
                .expect(6)
                .mount(&server),
        );
        let mut env = project(&format!(
            "[executors.mock]\nturn_ms = 0\n[notify]\nurl = \"{}/hook\"\ntoken_env = \"HOOK_TOKEN\"\n",
            server.uri()
        ));
        env.set_env("HOOK_TOKEN", "tok-123");
        chain(&env);
        let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
        assert_eq!(out.code, 0, "{out}");
        let requests = rt.block_on(server.received_requests()).unwrap();
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in &requests {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert!(
                body["time"].is_string() && body["agent"].is_string(),
                "{body}"
            );
            *seen
                .entry((
                    body["task"].as_str().unwrap().into(),
                    body["status"].as_str().unwrap().into(),
                ))
                .or_default() += 1;
        }
        for t in ["a", "b", "c"] {
            for s in ["running", "done"] {
                assert_eq!(
                    seen.get(&(t.into(), s.into())),
                    Some(&1),
                    "{t} {s}: {seen:?}"
                );
            }
        }
        assert_eq!(requests.len(), 6);
        rt.block_on(server.verify());
    }

    #[test]
    fn slow_or_dead_receivers_do_not_slow_dispatch() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let slow = rt.block_on(MockServer::start());
        rt.block_on(
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
                .mount(&slow),
        );
        // A port nobody listens on: bind, note it, close.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        for url in [
            format!("{}/hook", slow.uri()),
            format!("http://127.0.0.1:{dead}/hook"),
        ] {
            let env = project(&format!(
                "[executors.mock]\nturn_ms = 50\n[notify]\nurl = \"{url}\"\n"
            ));
            chain(&env);
            let t0 = Instant::now();
            let coord = Coordinator::start(&env, &["--until-done"]);
            // The graph finishes long before the receiver would have answered once.
            wait_until!(Duration::from_secs(10), || {
                env.tasks().values().all(|t| t["status"] == "done")
            });
            let _ = coord.wait(Duration::from_secs(30));
            let span = dispatch_span(&env);
            assert!(span < 1500, "{url}: dispatch took {span} ms");
            assert!(t0.elapsed() < Duration::from_secs(30));
        }
    }
}

#[test]
fn endpoint_trouble_pauses_dispatch_without_spending_retries() {
    let env = project("[executors.mock]\nturn_ms = 0\n");
    set(&env, "coordinator.retry_backoff", "100ms");
    env.import(&[
        serde_json::json!({"id": "remote", "title": "remote", "max_retries": 0,
            "mock": {"endpoint_error_times": 2}}),
    ]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    let all = env.tasks();
    // With no retries allowed it still ends done: endpoint trouble is not the task's fault.
    assert_eq!(all["remote"]["status"], "done", "{}", env.coordinator_log());
    assert_eq!(all["remote"]["retries"].as_u64().unwrap_or(0), 0);
    assert_eq!(markers(&env, "remote").len(), 3);
    // Each failure pauses the executor for retry_backoff. It has no endpoint to probe, so
    // the pause ends with its wait (an HTTP endpoint's needs a probe that passes).
    let requeued = status_times(&env, "remote", "open");
    let started = status_times(&env, "remote", "in-progress");
    assert_eq!(requeued.len(), 2);
    assert!(started[1] - requeued[0] >= 100, "{requeued:?} {started:?}");
    assert!(started[2] - requeued[1] >= 100, "{requeued:?} {started:?}");
    assert_eq!(
        env.coordinator_log()
            .matches("endpoint executor:mock paused (unreachable)")
            .count(),
        2,
        "{}",
        env.coordinator_log()
    );
}

#[test]
fn conversational_agent_is_nudged_once_then_failed() {
    // A conversational executor whose turns never report nor answer.
    let env = project(
        "[executors.mock]\nturn_ms = 0\n\
         [executors.talker]\ncommand = [\"sh\", \"-c\", \"echo turn of $WG_TASK_ID\"]\n\
         conversational = true\n",
    );
    ok(&env, &["add", "chat", "-x", "talker", "--max-retries", "0"]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    // Some task failed: --until-done says so.
    assert_eq!(out.code, 8, "{out}");
    let all = env.tasks();
    assert_eq!(all["chat"]["status"], "failed");
    assert_eq!(
        all["chat"]["failure_reason"],
        "agent ended its turn without reporting"
    );
    let inbox = std::fs::read_to_string(env.wg_dir().join("tasks/chat/inbox.jsonl")).unwrap();
    assert_eq!(inbox.matches("\"kind\":\"nudge\"").count(), 1, "{inbox}");
    let agent_log = std::fs::read_to_string(env.wg_dir().join("tasks/chat/agent.log")).unwrap();
    assert_eq!(agent_log.matches("turn of chat").count(), 2, "{agent_log}");
}

/// `[evaluate] auto`: every task that ends done is scored; weak work goes back to open with the
/// notes in its inbox and runs again, and the third rejection fails it.
#[tokio::test(flavor = "multi_thread")]
async fn evaluation_gate_reruns_weak_work_then_fails_it() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let dims = [
        "correctness",
        "completeness",
        "constraint_fidelity",
        "intent_fidelity",
        "style",
        "downstream_usability",
        "efficiency",
    ];
    let scores: serde_json::Map<String, Value> = dims
        .iter()
        .map(|d| (d.to_string(), serde_json::json!(0.2)))
        .collect();
    let verdict = serde_json::json!({"scores": scores, "notes": "write the tests"}).to_string();
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": verdict}}]
        })))
        .expect(3)
        .mount(&server)
        .await;
    let env = project("[executors.mock]\nturn_ms = 0\n");
    let url = format!("{}/v1", server.uri());
    for (k, v) in [
        ("evaluate.auto", "true"),
        ("evaluate.endpoint", url.as_str()),
        ("evaluate.model", "judge"),
        ("evaluate.wire_api", "chat"),
    ] {
        set(&env, k, v);
    }
    ok(&env, &["add", "Weak work", "--id", "weak"]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(60));
    let t = &env.tasks()["weak"];
    assert_eq!(t["status"], "failed", "{out}");
    assert!(t["failure_reason"].as_str().unwrap().contains("3/3"), "{t}");
    assert_eq!(markers(&env, "weak").len(), 3, "one run per rejection");
    let inbox = std::fs::read_to_string(env.wg_dir().join("tasks/weak/inbox.jsonl")).unwrap();
    assert!(inbox.contains("Rejected (1/3): write the tests"), "{inbox}");
    assert!(inbox.contains("Rejected (2/3): write the tests"), "{inbox}");
    assert!(env.coordinator_log().contains("evaluated task=weak"));
}

/// One graph, two agent CLIs: codex tasks on one endpoint, claude tasks on another with its
/// own model and key variable (`[executors.claude]`), all run by the coordinator to done.
#[tokio::test(flavor = "multi_thread")]
async fn a_graph_mixing_codex_and_claude_tasks_runs_to_done() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer};
    const CLAUDE_KEY: &str = "sk-claude-test-5e6f7a8b9c0d";
    let codex_srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(crate::common::stub::ResponsesTool(
            "wg done \"$WG_TASK_ID\"".into(),
        ))
        .mount(&codex_srv)
        .await;
    let claude_srv = MockServer::start().await;
    messages()
        .respond_with(crate::common::stub::ClaudeTool(
            "wg done \"$WG_TASK_ID\"".into(),
        ))
        .mount(&claude_srv)
        .await;
    let Some(claude) = crate::common::real_claude() else {
        return;
    };
    let Some(mut env) = codex_env(&format!("{}/v1", codex_srv.uri())) else {
        return;
    };
    set(&env, "executors.claude.endpoint", &claude_srv.uri());
    set(&env, "executors.claude.model", "claude-test-model");
    set(&env, "executors.claude.api_key_env", "CLAUDE_CRED");
    set(&env, "claude.binary", claude.to_str().unwrap());
    set(&env, "claude.max_retries", "0");
    // claude (a node program) may print nothing for many seconds on a loaded machine: the
    // limits of the claude handler tests, not the 3 s of the codex fault tests.
    set(&env, "handler.idle_timeout", "30s");
    set(&env, "handler.first_output_timeout", "20s");
    env.set_env("CLAUDE_CRED", CLAUDE_KEY);
    ok(&env, &["add", "first", "--max-retries", "0"]);
    ok(
        &env,
        &[
            "add",
            "second",
            "-x",
            "claude",
            "--after",
            "first",
            "--max-retries",
            "0",
        ],
    );
    ok(&env, &["add", "side", "-x", "claude", "--max-retries", "0"]);
    ok(
        &env,
        &["add", "last", "--after", "second", "--max-retries", "0"],
    );
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(60));
    let side_log =
        std::fs::read_to_string(env.wg_dir().join("tasks/side/handler.log")).unwrap_or_default();
    assert_eq!(out.code, 0, "{out}\nside's handler.log:\n{side_log}");
    let all = env.tasks();
    for id in ["first", "second", "side", "last"] {
        assert_eq!(all[id]["status"], "done", "{id}: {}", env.coordinator_log());
    }
    let codex_reqs = codex_srv.received_requests().await.unwrap();
    assert_eq!(codex_reqs.len(), 4, "two codex tasks, two requests each");
    assert!(codex_reqs
        .iter()
        .all(|r| r.headers.get("authorization").unwrap() == format!("Bearer {}", KEY).as_str()));
    let claude_reqs = claude_srv.received_requests().await.unwrap();
    assert_eq!(claude_reqs.len(), 4, "two claude tasks, two requests each");
    for r in &claude_reqs {
        assert_eq!(r.headers.get("x-api-key").unwrap(), CLAUDE_KEY);
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["model"], "claude-test-model");
    }
    let done_second = status_times(&env, "second", "done")[0];
    let started_last = status_times(&env, "last", "in-progress")[0];
    assert!(started_last >= done_second, "the edge second → last held");
    for (_, bytes) in env.snapshot() {
        assert!(!String::from_utf8_lossy(&bytes).contains(CLAUDE_KEY));
    }
}
