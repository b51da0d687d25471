//! Settings: one plan of what an agent runs with (the doctor checks what agents use), a
//! type and a range for every setting, refused the same way by `wg config set`, at load and
//! by `wg doctor`.

use crate::common::TestEnv;

/// `[executors.codex] endpoint` points codex elsewhere than `endpoint.url`: the handler
/// honours it, so the doctor must check that one.
#[test]
fn doctor_checks_the_endpoint_an_executor_override_gives_codex() {
    let env = TestEnv::new();
    env.set_config(&[
        ("executor", "codex"),
        ("endpoint.url", "http://127.0.0.1:9/v1"),
        ("executors.codex.endpoint", "http://127.0.0.1:7/v1"),
    ]);
    env.wg(&["add", "C"]).ok();
    let run = env.wg(&["doctor", "--json"]).code(1);
    let text = run.stdout.clone();
    assert!(text.contains("127.0.0.1:7/"), "{run}");
    assert!(!text.contains("127.0.0.1:9/"), "{run}");
}

/// Writes `key = value` (a TOML value) into the config file by hand, as an editor would.
fn write_by_hand(env: &TestEnv, key: &str, value: &str) {
    let path = env.path(".wg/config.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let parts: Vec<&str> = key.split('.').collect();
    let (last, tables) = parts.split_last().unwrap();
    let mut t = doc.as_table_mut();
    for p in tables {
        t = t
            .entry(p)
            .or_insert(toml_edit::Item::Table(toml_edit::Table::new()))
            .as_table_mut()
            .unwrap();
    }
    let v: toml_edit::Value = value.parse().unwrap();
    t.insert(last, toml_edit::Item::Value(v));
    std::fs::write(&path, doc.to_string()).unwrap();
}

/// `wg config set KEY VALUE` refuses the value and leaves the file as it was; the same value
/// written by hand is refused by the next command that loads the file and by `wg doctor`,
/// with the same words, which name the setting.
fn refused_everywhere(key: &str, cli_value: &str, toml_value: &str, why: &str) {
    let env = TestEnv::new();
    let path = env.path(".wg/config.toml");
    let before = std::fs::read_to_string(&path).unwrap();
    let set = env.wg(&["config", "set", key, cli_value]).code(2);
    assert!(
        set.stderr.contains(key) && set.stderr.contains(why),
        "{set}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    let said = set
        .stderr
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("error: ")
        .to_string();

    write_by_hand(&env, key, toml_value);
    let load = env.wg(&["list"]).code(3);
    assert!(load.stderr.contains(&said), "set said {said:?}\n{load}");
    let doctor = env.wg(&["doctor"]).code(3);
    assert!(doctor.stderr.contains(&said), "set said {said:?}\n{doctor}");
}

#[test]
fn a_turn_budget_of_zero_is_refused() {
    refused_everywhere("handler.max_turns", "0", "0", "must be at least 1");
}

#[test]
fn a_pass_mark_above_one_is_refused() {
    refused_everywhere("evaluate.pass", "2", "2.0", "must be between 0 and 1");
}

#[test]
fn an_unknown_codex_sandbox_is_refused() {
    refused_everywhere(
        "codex.sandbox",
        "weird",
        "\"weird\"",
        "expected one of `read-only`, `workspace-write`",
    );
}

#[test]
fn an_executor_command_given_as_a_string_is_refused() {
    refused_everywhere(
        "executors.mine.command",
        "my-agent",
        "\"my-agent\"",
        "expected a sequence",
    );
}

#[test]
fn a_mock_turn_time_in_words_is_refused() {
    refused_everywhere(
        "executors.mock.turn_ms",
        "fast",
        "\"fast\"",
        "invalid type: string \"fast\"",
    );
}

#[test]
fn a_duration_in_words_is_refused() {
    refused_everywhere(
        "coordinator.poll_interval",
        "soon",
        "\"soon\"",
        "invalid duration `soon`",
    );
}

/// Every command's output goes through one printer, and clap's help and the completion
/// script too: a stdout that cannot be written ends in exit code 74, not 0.
#[test]
fn commands_exit_74_when_stdout_is_a_full_device() {
    let env = TestEnv::new();
    env.set_config(&[
        ("executor", "codex"),
        ("codex.binary", "/nonexistent/codex"),
    ]);
    env.wg(&["add", "T", "--id", "t"]).ok();
    env.wg(&["msg", "t", "hello"]).ok();
    std::fs::write(
        env.path(".wg/tasks/t/events.jsonl"),
        "{\"turn\":1,\"ts\":\"2026-12-08T01:20:46.810Z\",\"event\":{\"type\":\"turn.started\"}}\n",
    )
    .unwrap();
    for args in [
        &["doctor"][..],
        &["transcript", "t"],
        &["tail", "t"],
        &["help"],
        &["--help"],
        &["help", "add"],
        &["list"],
        &["show", "t"],
        &["completions", "bash"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = env.command(args).stdout(full).output().expect("wg runs");
        assert_eq!(
            out.status.code(),
            Some(74),
            "wg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
