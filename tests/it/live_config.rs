//! Live configuration: a running coordinator applies `config.toml` edits from its next
//! dispatch, keeps its settings when an edit is invalid and says why, and names the settings
//! that need a restart. Observed with mock agents that hang until the test ends them.

use std::time::Duration;

use crate::common::service::Coordinator;
use crate::common::wait::stays;
use crate::common::TestEnv;

fn service_status(env: &TestEnv) -> String {
    let out = env.wg(&["service", "status"]);
    format!("{}{}", out.stdout, out.stderr)
}

/// Waits for exactly `n` running agents, then checks they stay `n` for a second (five of the
/// coordinator's 200 ms polls): it had every chance to start more.
fn settles_at(env: &TestEnv, n: usize) {
    wait_until!(
        Duration::from_secs(30),
        || env.agents().len() == n,
        "expected {n} agents, have {}:\n{}",
        env.agents().len(),
        env.coordinator_log()
    );
    stays(
        &format!("{n} agents running"),
        Duration::from_secs(1),
        || env.agents().len() == n,
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
