//! Many tasks through a coordinator killed with SIGKILL on the way: every task is done, and
//! each ran exactly once (one mock-agent marker each). Not timed: speed is measured by
//! `scripts/bench-coordinator.sh`.
//!
//! The size is 5,000 tasks; `WG_TEST_CRASH_TASKS=10000` runs the same test larger.

use std::time::Duration;

use crate::common::service::Coordinator;
use crate::common::TestEnv;

fn size() -> usize {
    std::env::var("WG_TEST_CRASH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

fn done_count(env: &TestEnv) -> u64 {
    env.wg(&["status", "--json"]).ok().json()["counts"]["done"]
        .as_u64()
        .expect("status --json counts done")
}

/// How many runs each task's mock agent left (`mock-runs/<agent>.json`).
fn runs(env: &TestEnv, id: &str) -> usize {
    std::fs::read_dir(env.wg_dir().join("tasks").join(id).join("mock-runs"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

#[test]
#[ignore = "KNOWN BROKEN: on the merged main a clean-clone run saw 6 of 5,000 tasks run twice \
            around the first kill -9 (issue 25 stays open); run with --ignored to reproduce"]
fn thousands_of_tasks_through_two_kill_9s_each_run_exactly_once() {
    let n = size();
    let env = TestEnv::new();
    env.set_config(&[("executors.mock.turn_ms", "0")]);
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"id": format!("t-{i:05}"), "title": format!("task {i}")}))
        .collect();
    env.import(&records);
    // Killed twice on the way, at a third and at two thirds done: running agents are left
    // behind each time, and claims may be cut short.
    // The guards are kept: dropping one kills every agent of the project, and the agents
    // of a killed coordinator must live on for the next one to adopt.
    let mut killed = Vec::new();
    for part in 1..=2u64 {
        // `--daemon`: no echo of each decision on stderr, a pipe nobody reads until the end.
        let mut c = Coordinator::start(&env, &["--daemon", "--max-agents", "16"]);
        let goal = n as u64 * part / 3;
        wait_until!(
            Duration::from_secs(1800),
            || c.finished() || done_count(&env) >= goal,
            "{}",
            env.coordinator_log()
        );
        assert!(!c.finished(), "the coordinator stopped on its own");
        c.kill9();
        killed.push(c);
    }
    let out = Coordinator::start(&env, &["--daemon", "--until-done", "--max-agents", "16"])
        .wait(Duration::from_secs(1800));
    assert_eq!(out.code, 0, "{out}");
    let tasks = env.tasks();
    assert_eq!(tasks.len(), n);
    let mut twice = Vec::new();
    for (id, t) in &tasks {
        assert_eq!(t["status"], "done", "{id}: {t}");
        if runs(&env, id) != 1 {
            twice.push(format!("{id}: {} runs", runs(&env, id)));
        }
    }
    assert!(twice.is_empty(), "not run exactly once: {twice:?}");
    let log = env.coordinator_log();
    assert_eq!(log.matches("started pid=").count(), 3, "{log}");
}
