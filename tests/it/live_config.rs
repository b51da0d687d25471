//! Live configuration: a running coordinator applies `config.toml` edits from its next
//! dispatch, keeps its settings when an edit is invalid and says why, and names the settings
//! that need a restart. Observed with mock agents that hang until the test ends them.

use std::time::Duration;

use crate::common::service::Coordinator;
use crate::common::TestEnv;

fn service_status(env: &TestEnv) -> String {
    let out = env.wg(&["service", "status"]);
    format!("{}{}", out.stdout, out.stderr)
}

/// Waits for exactly `n` running agents, then checks they stay `n` after the coordinator has
/// finished a whole dispatch pass that started after that: it had every chance to start more.
fn settles_at(env: &TestEnv, n: usize) {
    wait_until!(
        Duration::from_secs(30),
        || env.agents().len() == n,
        "expected {n} agents, have {}:\n{}",
        env.agents().len(),
        env.coordinator_log()
    );
    // Each tick reads the config, then dispatches. A tick that reads the second of two
    // harmless edits starts after the tick that read the first one has dispatched.
    for _ in 0..2 {
        tick(env);
    }
    assert_eq!(env.agents().len(), n, "{}", env.coordinator_log());
}

/// Appends a comment to `config.toml` and waits for the coordinator to have re-read it (a
/// valid file changes nothing; an invalid one is refused again).
fn tick(env: &TestEnv) {
    let judged = |log: String| {
        log.matches("config: re-read; no setting changed").count()
            + log.matches("config: the edit is not valid").count()
    };
    let seen = judged(env.coordinator_log());
    let path = env.wg_dir().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}# tick {seen}\n")).unwrap();
    wait_until!(
        Duration::from_secs(30),
        || judged(env.coordinator_log()) > seen,
        "the coordinator did not re-read its config:\n{}",
        env.coordinator_log()
    );
}

fn config_text(env: &TestEnv) -> String {
    std::fs::read_to_string(env.wg_dir().join("config.toml")).unwrap()
}

#[test]
fn config_edits_reach_a_running_coordinator_and_invalid_ones_are_refused() {
    let env = TestEnv::new();
    env.set_config(&[
        ("coordinator.max_agents", "1"),
        ("coordinator.poll_interval", "200ms"),
        ("executors.mock.behavior", "hang"),
    ]);
    for i in 1..=6 {
        env.wg(&["add", &format!("Task {i}"), "--id", &format!("t{i}")])
            .ok();
    }
    let _coordinator = Coordinator::start(&env, &[]);
    settles_at(&env, 1);

    // `wg config set` on the running coordinator changes its concurrency.
    env.wg(&["config", "set", "coordinator.max_agents", "3"])
        .ok();
    settles_at(&env, 3);
    assert!(
        env.coordinator_log()
            .contains("applied from the next dispatch: coordinator.max_agents = 3"),
        "{}",
        env.coordinator_log()
    );
    let status = service_status(&env);
    assert!(
        status.contains("config: reloaded") && status.contains("coordinator.max_agents = 3"),
        "{status}"
    );
    // The agent that was running keeps what it started with, and that is said.
    assert!(
        status.contains("1 agent(s) started before it keep the settings"),
        "{status}"
    );

    // A hand edit that is not valid: the old settings keep running, and both the log and
    // `wg service status` say why.
    let good = config_text(&env);
    let bad = good
        .replace("max_agents = 3", "max_agents = 5")
        .replace("poll_interval = \"200ms\"", "poll_interval = \"soon\"");
    assert_ne!(bad, good);
    std::fs::write(env.wg_dir().join("config.toml"), &bad).unwrap();
    wait_until!(
        Duration::from_secs(30),
        || env
            .coordinator_log()
            .contains("still running on the previous settings"),
        "{}",
        env.coordinator_log()
    );
    settles_at(&env, 3);
    let log = env.coordinator_log();
    assert!(log.contains("coordinator.poll_interval"), "{log}");
    let status = service_status(&env);
    assert!(
        status.contains("config: INVALID edit") && status.contains("coordinator.poll_interval"),
        "{status}"
    );
    // Agents read the last valid config the coordinator runs on, not the broken file.
    let agent = &env.agents()[0];
    let environ =
        std::fs::read(format!("/proc/{}/environ", agent["pid"].as_i64().unwrap())).unwrap();
    let running = env.wg_dir().join("service/config.toml");
    let wanted = format!("WG_CONFIG={}", running.display());
    assert!(
        environ.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()),
        "the agent has no {wanted}"
    );
    let as_agent = env
        .command(&["show", "t1"])
        .env("WG_CONFIG", &running)
        .output()
        .unwrap();
    assert!(as_agent.status.success(), "{as_agent:?}");
    assert_eq!(env.wg(&["show", "t1"]).code, 3, "a person sees the error");

    // Fixed: applied at once, and the complaint is gone.
    std::fs::write(
        env.wg_dir().join("config.toml"),
        good.replace("max_agents = 3", "max_agents = 4"),
    )
    .unwrap();
    settles_at(&env, 4);
    let status = service_status(&env);
    assert!(!status.contains("INVALID"), "{status}");

    // The launcher is fixed for a coordinator's run: named as needing a restart, and the
    // next agent still starts as a local process.
    env.wg(&["config", "set", "coordinator.launcher", "slurm"])
        .ok();
    wait_until!(
        Duration::from_secs(30),
        || service_status(&env).contains("config: coordinator.launcher needs a restart"),
        "{}",
        service_status(&env)
    );
    env.wg(&["config", "set", "coordinator.max_agents", "5"])
        .ok();
    settles_at(&env, 5);
    for a in env.agents() {
        assert!(
            a["pid"].as_i64().unwrap() > 0 && a["slurm_job"].is_null(),
            "{a}"
        );
    }
    assert!(
        env.coordinator_log()
            .contains("coordinator.launcher needs a restart"),
        "{}",
        env.coordinator_log()
    );
}

/// An editor that empties `config.toml` and writes it back 3 s later: the emptied file is a
/// valid one (every setting at its default, so the `codex` executor instead of `mock`), but
/// it drops every setting the running file has, so it is held and shown, never applied.
#[test]
fn an_emptied_config_is_held_and_forty_tasks_run_on_untouched() {
    let env = TestEnv::new();
    env.set_config(&[
        ("coordinator.max_agents", "4"),
        ("executors.mock.turn_ms", "300"),
    ]);
    for i in 1..=40 {
        env.wg(&["add", &format!("Task {i}"), "--id", &format!("t{i}")])
            .ok();
    }
    let _coordinator = Coordinator::start(&env, &[]);
    wait_until!(
        Duration::from_secs(30),
        || !env.agents().is_empty(),
        "{}",
        env.coordinator_log()
    );
    let good = config_text(&env);
    std::fs::write(env.wg_dir().join("config.toml"), "").unwrap();
    wait_until!(
        Duration::from_secs(30),
        || service_status(&env).contains("config: edit HELD"),
        "{}",
        service_status(&env)
    );
    // The scenario measured: the file stays empty for 3 s while agents come and go.
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(env.wg_dir().join("config.toml"), &good).unwrap();
    let all_done = || env.tasks().values().all(|t| t["status"] == "done");
    wait_until!(
        Duration::from_secs(120),
        all_done,
        "{:?}\n{}",
        env.tasks(),
        env.coordinator_log()
    );
    for (id, t) in env.tasks() {
        assert!(
            t["retries"].as_u64().unwrap_or(0) == 0,
            "{id} was retried: {t}"
        );
    }
    let log = env.coordinator_log();
    assert!(log.contains("held, not applied"), "{log}");
    assert!(!log.contains("executor = codex"), "{log}");
    wait_until!(
        Duration::from_secs(30),
        || !service_status(&env).contains("HELD"),
        "the restored file did not lift the hold: {}",
        service_status(&env)
    );
}

/// A held edit is applied once a person confirms it.
#[test]
fn a_held_edit_applies_once_confirmed() {
    let env = TestEnv::new();
    env.set_config(&[
        ("coordinator.max_agents", "1"),
        ("executors.mock.behavior", "hang"),
        ("model", "m1"),
    ]);
    for i in 1..=3 {
        env.wg(&["add", &format!("Task {i}"), "--id", &format!("t{i}")])
            .ok();
    }
    let _coordinator = Coordinator::start(&env, &[]);
    settles_at(&env, 1);
    // Drop `model` and raise max_agents in one hand edit: held, so still one agent.
    let edited = config_text(&env)
        .replace("model = \"m1\"", "")
        .replace("max_agents = 1", "max_agents = 2");
    std::fs::write(env.wg_dir().join("config.toml"), &edited).unwrap();
    wait_until!(
        Duration::from_secs(30),
        || service_status(&env).contains("config: edit HELD"),
        "{}",
        service_status(&env)
    );
    assert!(
        service_status(&env).contains("model"),
        "{}",
        service_status(&env)
    );
    assert_eq!(env.agents().len(), 1, "{}", env.coordinator_log());
    env.wg(&["config", "confirm"]).ok();
    settles_at(&env, 2);
    assert!(
        env.coordinator_log()
            .contains("the held edit was confirmed"),
        "{}",
        env.coordinator_log()
    );
}
