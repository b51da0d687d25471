//! Crashes, full disks and bad settings: every acknowledged change survives, no file is left
//! torn, stale agents are fenced, and every refusal says why with the right exit code.

use std::time::Duration;

use serde_json::Value;

use crate::common::disk::SmallDisk;
use crate::common::project::{assert_all_lines_whole, log_events, status};
use crate::common::service::Coordinator;
use crate::common::TestEnv;

#[test]
fn a_full_disk_tears_no_file_and_loses_no_acknowledged_change() {
    let env = TestEnv::bare();
    let Some(disk) = SmallDisk::mount(&env.root, "2m") else {
        return;
    };
    env.wg(&["init", "-x", "mock"]).ok();
    env.wg(&["add", "Talk", "--id", "t"]).ok();
    env.wg(&["msg", "t", "first"]).ok();
    env.wg(&["log", "t", "a note"]).ok();
    let filler = disk.fill();

    // Large records span pages, so part of each write lands before ENOSPC.
    let big = "m".repeat(20_000);
    for args in [
        vec!["msg", "t", big.as_str()],
        vec!["log", "t", big.as_str()],
        vec!["done", "t", "--note", big.as_str()],
        vec!["fail", "t", "--reason", big.as_str()],
    ] {
        let r = env.wg(&args);
        assert_eq!(r.code, 74, "{:?} on a full disk:\n{r}", &args[..2]);
        assert!(
            r.stderr.contains(".wg/") && r.stderr.contains("No space left on device"),
            "the error names the path and the reason:\n{r}"
        );
        assert!(!r.stderr.contains("panicked"), "{r}");
    }
    // Nothing reported as failed was applied.
    assert_eq!(status(&env, "t"), "open");
    assert!(
        !log_events(&env, "t")
            .iter()
            .any(|e| e["event"] == "status" && e["to"] == "done"),
        "a done that failed left no record"
    );
    assert_all_lines_whole(&env);

    std::fs::remove_file(filler).unwrap();
    env.wg(&["msg", "t", "second"]).ok();
    env.wg(&["log", "t", "after the disk was freed"]).ok();
    let transcript = env.wg(&["transcript", "t"]).ok();
    assert!(transcript.stdout.contains("first") && transcript.stdout.contains("second"));
    assert!(
        !transcript.stdout.contains(&big),
        "the refused message is not there"
    );
    env.wg(&["done", "t"]).ok();
    assert_eq!(status(&env, "t"), "done");
    let log = log_events(&env, "t");
    let texts: Vec<&str> = log.iter().filter_map(|e| e["text"].as_str()).collect();
    assert_eq!(texts, ["a note", "after the disk was freed"]);
    assert_eq!(
        log.iter()
            .filter(|e| e["event"] == "status" && e["to"] == "done")
            .count(),
        1
    );
    assert_all_lines_whole(&env);
    drop(disk);
}

#[test]
fn a_torn_tail_from_a_crash_is_cut_before_the_next_append() {
    let env = TestEnv::new();
    env.wg(&["add", "Talk", "--id", "t"]).ok();
    env.wg(&["msg", "t", "first"]).ok();
    env.wg(&["log", "t", "one"]).ok();
    for name in ["inbox.jsonl", "log.jsonl"] {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(env.path(&format!(".wg/tasks/t/{name}")))
            .unwrap();
        f.write_all(b"{\"seq\":9,\"ts\":\"x\",\"text\":\"cut sh")
            .unwrap();
    }
    env.wg(&["msg", "t", "second"]).ok();
    env.wg(&["log", "t", "two"]).ok();
    assert_all_lines_whole(&env);
    let t = env.wg(&["transcript", "t"]).ok();
    assert!(
        t.stdout.contains("first") && t.stdout.contains("second"),
        "{t}"
    );
    let notes: Vec<String> = log_events(&env, "t")
        .iter()
        .filter_map(|e| e["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(notes, ["one", "two"]);
}

#[test]
fn a_corrupt_conversation_line_is_exit_7_with_file_and_line() {
    let env = TestEnv::new();
    env.wg(&["add", "Talk", "--id", "t"]).ok();
    env.wg(&["msg", "t", "first"]).ok();
    let inbox = env.path(".wg/tasks/t/inbox.jsonl");
    let mut text = std::fs::read_to_string(&inbox).unwrap();
    text.push_str("{not json}\n");
    std::fs::write(&inbox, &text).unwrap();
    for args in [
        &["transcript", "t"][..],
        &["msg", "t", "more"],
        &["handler", "t"],
    ] {
        let r = env.wg(args).code(7);
        assert!(r.stderr.contains("inbox.jsonl:3:"), "{args:?}: {r}");
    }
    assert_eq!(std::fs::read_to_string(&inbox).unwrap(), text);
    // The same for a reply record.
    text.truncate(text.len() - "{not json}\n".len());
    std::fs::write(&inbox, &text).unwrap();
    let outbox = env.path(".wg/tasks/t/outbox.jsonl");
    std::fs::write(&outbox, "{\"seq\": 1, cut\n").unwrap();
    for args in [&["transcript", "t"][..], &["handler", "t"]] {
        let r = env.wg(args).code(7);
        assert!(r.stderr.contains("outbox.jsonl:1:"), "{args:?}: {r}");
    }
    assert_eq!(
        std::fs::read_to_string(&outbox).unwrap(),
        "{\"seq\": 1, cut\n"
    );
}

#[test]
fn a_stderr_that_cannot_be_written_never_panics() {
    let env = TestEnv::new();
    env.wg(&["add", "A", "--id", "a"]).ok();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    for (args, code) in [
        (&["list"][..], 0),
        (&["show", "nope"], 4),
        (&["msg", "a", "hi"], 0),
        (&["done", "zzz"], 4),
    ] {
        let out = env
            .command(args)
            .env("WG_LOG", "debug")
            .stderr(full.try_clone().unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let env = TestEnv::new();
    let config = env.path(".wg/config.toml");
    let before = std::fs::read(&config).unwrap();
    for (key, value, says) in [
        ("coordinator.poll_interval", "0s", "must be more than zero"),
        ("coordinator.hard_timeout", "0s", "must be more than zero"),
        ("handler.idle_timeout", "0ms", "must be more than zero"),
        ("coordinator.max_agents", "0", "must be at least 1"),
        ("coordinator.max_agents", "many", "invalid type"),
        ("coordinator.max_agent", "3", "did you mean `max_agents`?"),
    ] {
        let r = env.wg(&["config", "set", key, value]).code(2);
        assert!(r.stderr.contains(says), "{key} = {value}:\n{r}");
        assert_eq!(
            std::fs::read(&config).unwrap(),
            before,
            "{key} changed the file"
        );
    }
    // The command-line override follows the same rule, and nothing starts.
    for args in [
        &["service", "start", "--max-agents", "0"][..],
        &[
            "service",
            "start",
            "--foreground",
            "--until-done",
            "--max-agents",
            "0",
        ],
    ] {
        let r = env.wg(args).code(2);
        assert!(r.stderr.contains("must be at least 1"), "{args:?}:\n{r}");
        assert!(
            !env.path(".wg/service/coordinator.lock").exists(),
            "{args:?} started a coordinator"
        );
    }
    // A file edited by hand is refused when loaded, with the nearest key.
    let mut text = String::from_utf8(before).unwrap();
    text = text.replace("[coordinator]", "[coordinator]\nmax_agent = 3");
    assert!(
        text.contains("max_agent = 3"),
        "the example has a [coordinator] table"
    );
    std::fs::write(&config, text).unwrap();
    let r = env.wg(&["list"]).code(3);
    assert!(r.stderr.contains("did you mean `max_agents`?"), "{r}");
}

#[test]
fn titles_are_one_line_and_missing_edges_cannot_be_removed() {
    let env = TestEnv::new();
    env.wg(&["add", "A", "--id", "a"]).ok();
    env.wg(&["add", "B", "--id", "b", "--after", "a"]).ok();
    let before = env.snapshot();
    let r = env.wg(&["add", "two\nlines"]).code(2);
    assert!(r.stderr.contains("control character"), "{r}");
    env.wg(&["edit", "a", "--title", "bell\u{7}"]).code(2);
    let r = env.wg(&["edit", "a", "--remove-after", "b"]).code(1);
    assert!(r.stderr.contains("does not wait for `b`"), "{r}");
    assert_eq!(env.snapshot(), before, "nothing changed");
    env.wg(&["edit", "b", "--remove-after", "a"]).ok();
}

#[test]
fn a_message_over_the_limit_is_refused_with_the_limit_named() {
    let env = TestEnv::new();
    env.wg(&["add", "Talk", "--id", "t"]).ok();
    env.wg(&["config", "set", "handler.max_message_chars", "100"])
        .ok();
    let r = env.wg(&["msg", "t", &"x".repeat(101)]).code(1);
    assert!(
        r.stderr.contains("101 characters") && r.stderr.contains("limit is 100"),
        "{r}"
    );
    assert!(!env.path(".wg/tasks/t/inbox.jsonl").exists());
    env.wg(&["msg", "t", &"x".repeat(100)]).ok();
}

/// Appends a changed copy of task `id`'s record to graph.jsonl (the last line wins), as a
/// crashed writer could have left it.
fn put_record(env: &TestEnv, id: &str, change: impl FnOnce(&mut Value)) {
    use std::io::Write;
    let graph = std::fs::read_to_string(env.path(".wg/graph.jsonl")).unwrap();
    let mut rec: Value = graph
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|r| r["id"] == id)
        .unwrap();
    change(&mut rec);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.path(".wg/graph.jsonl"))
        .unwrap();
    f.write_all(format!("{rec}\n").as_bytes()).unwrap();
}

#[test]
fn a_replaced_attempt_cannot_report() {
    let mut env = TestEnv::new();
    env.wg(&["add", "T", "--id", "t"]).ok();
    put_record(&env, "t", |r| {
        r["status"] = "in-progress".into();
        r["assigned"] = "agent-1-2".into();
    });
    env.set_env("WG_TASK_ID", "t");
    env.set_env("WG_AGENT_ID", "agent-1-1");
    for args in [
        &["done", "t"][..],
        &["fail", "t", "--reason", "r"],
        &["log", "t", "late"],
    ] {
        let r = env.wg(args).code(1);
        assert!(
            r.stderr
                .contains("agent agent-1-1 is no longer the current attempt")
                && r.stderr.contains("held by agent-1-2"),
            "{r}"
        );
    }
    assert_eq!(status(&env, "t"), "in-progress");
    let refused = log_events(&env, "t")
        .iter()
        .filter(|e| e["event"] == "stale_attempt")
        .count();
    assert_eq!(refused, 3);
    env.extra_env.retain(|(k, _)| k != "WG_AGENT_ID");
    env.set_env("WG_AGENT_ID", "agent-1-2");
    env.wg(&["done", "t"]).ok();
    // The agent that closed it may still log what it did in the rest of its turn.
    env.wg(&["log", "t", "a summary"]).ok();
    env.extra_env.retain(|(k, _)| k != "WG_AGENT_ID");
    env.set_env("WG_AGENT_ID", "agent-1-1");
    env.wg(&["log", "t", "late"]).code(1);
}

/// A conversational executor whose every turn reports done: the coordinator's own decisions
/// are what these tests watch.
fn conversational_env() -> TestEnv {
    let env = TestEnv::new();
    let config = env.path(".wg/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[executors.talk]\ncommand = [\"sh\", \"-c\", \"wg done $WG_TASK_ID\"]\nconversational = true\n",
    );
    std::fs::write(&config, text).unwrap();
    env.wg(&["add", "Talk", "--id", "t", "-x", "talk"]).ok();
    env
}

/// The state a coordinator killed mid-turn leaves when the turn then ends on its own: the
/// task `waiting` for its dead agent (still in agents.json), the brief answered.
fn turn_ended_while_down(env: &TestEnv) {
    // Brief (1) and a message (2), both answered by the turn.
    env.wg(&["msg", "t", "the first question"]).ok();
    put_record(env, "t", |r| {
        r["status"] = "waiting".into();
        r["assigned"] = "agent-1-1".into();
    });
    let outbox = serde_json::json!({"seq": 1, "ts": "2026-01-01T00:00:00Z", "in_reply_to": 2,
        "role": "assistant", "text": "worked on it", "duration_ms": 1});
    std::fs::write(env.path(".wg/tasks/t/outbox.jsonl"), format!("{outbox}\n")).unwrap();
    std::fs::create_dir_all(env.path(".wg/service")).unwrap();
    let agents = serde_json::json!({"version": 1, "coordinator_pid": 1, "agents": [{
        "task": "t", "agent_id": "agent-1-1", "pid": 999_999_999, "pgid": 999_999_999,
        "start_time": 1, "started_at": "2026-01-01T00:00:00Z", "executor": "talk", "turn": 1,
        "conversational": true, "exit_code_decides": false, "log_offset": 0, "inbox_seq": 2}]});
    std::fs::write(env.path(".wg/service/agents.json"), agents.to_string()).unwrap();
}

#[test]
fn a_turn_that_ended_while_no_coordinator_ran_is_judged_at_start() {
    let env = conversational_env();
    turn_ended_while_down(&env);
    assert_eq!(status(&env, "t"), "waiting");
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(20));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(status(&env, "t"), "done", "{out}");
    assert!(
        out.stderr
            .contains("its turn ended while no coordinator ran"),
        "{out}"
    );
    assert!(
        out.stderr.contains("nudge task=t"),
        "the unreported turn was nudged: {out}"
    );
    let task = env.wg(&["show", "t", "--json"]).ok().json();
    assert_eq!(task["retries"].as_u64().unwrap_or(0), 0, "no retry spent");
}

#[test]
fn a_message_sent_while_no_coordinator_ran_is_answered_not_counted_as_a_crash() {
    let env = conversational_env();
    turn_ended_while_down(&env);
    // The agent's turn is over; this wakes the task to in-progress with nobody running it.
    env.wg(&["msg", "t", "one more thing"]).ok();
    assert_eq!(status(&env, "t"), "in-progress");
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(20));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(status(&env, "t"), "done", "{out}");
    assert!(!out.stderr.contains("died while no coordinator"), "{out}");
    let task = env.wg(&["show", "t", "--json"]).ok().json();
    assert_eq!(task["retries"].as_u64().unwrap_or(0), 0, "no retry spent");
    assert!(
        out.stderr.contains("start task=t"),
        "a turn ran for the message: {out}"
    );
}

#[test]
fn a_message_that_arrives_during_the_closing_turn_gets_a_visible_note() {
    // The agent's turn: a message comes in while it works, then it reports done.
    let env = TestEnv::new();
    let config = env.path(".wg/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[executors.talk]\ncommand = [\"sh\", \"-c\", \"wg msg $WG_TASK_ID 'and one more thing' && wg done $WG_TASK_ID\"]\nconversational = true\n",
    );
    std::fs::write(&config, text).unwrap();
    env.wg(&["add", "Talk", "--id", "t", "-x", "talk"]).ok();
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(20));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(status(&env, "t"), "done", "{out}");
    let transcript = env.wg(&["transcript", "t"]).ok().stdout;
    assert!(
        transcript.contains("note from wg") && transcript.contains("Not answered: message 2"),
        "{transcript}"
    );
    assert!(
        out.stderr.contains("note task=t: message 2 not answered"),
        "{out}"
    );
}

#[test]
fn losers_of_a_simultaneous_start_name_the_running_pid() {
    let env = TestEnv::new();
    let _stop = Coordinator::background(&env);
    let children: Vec<_> = (0..5)
        .map(|_| {
            env.command(&["service", "start"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<_> = children
        .into_iter()
        .map(|c| crate::common::to_run(c.wait_with_output().unwrap()))
        .collect();
    let winners = runs.iter().filter(|r| r.code == 0).count();
    assert_eq!(winners, 1, "{runs:#?}");
    let pid = std::fs::read_to_string(env.path(".wg/service/coordinator.lock"))
        .unwrap()
        .trim()
        .to_string();
    for r in runs.iter().filter(|r| r.code != 0) {
        assert_eq!(r.code, 1, "{r}");
        assert!(
            r.stderr
                .contains(&format!("already running for this project (pid {pid})")),
            "{r}"
        );
    }
}

#[test]
fn a_start_that_meets_a_status_probe_waits_it_out() {
    use std::os::fd::AsRawFd;
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path(".wg/service")).unwrap();
    // What a status probe does, held a little longer: the lock taken for 50 ms.
    let lock = std::fs::File::create(env.path(".wg/service/coordinator.lock")).unwrap();
    // SAFETY: flock on a file this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(lock);
    });
    let r = env.wg(&["service", "start", "--foreground", "--until-done"]);
    release.join().unwrap();
    assert_eq!(r.code, 0, "a start gave way to a probe:\n{r}");
}
