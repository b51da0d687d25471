//! `wg top`: `--once` on a project with a task in every state, and the live view under a real
//! terminal (tmux) watching a running agent, sending it a message, pausing, resuming and
//! retrying it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::service::Coordinator;
use crate::common::{system_tool, TestEnv};

/// A project with tasks in every state the store has (no coordinator, so none runs).
fn every_state(env: &TestEnv) {
    let records = [
        r#"{"id":"parse-input","title":"Parse input","status":"failed","failure_reason":"exit code 2: no input"}"#,
        r#"{"id":"write-docs","title":"Write docs","status":"in-progress"}"#,
        r#"{"id":"chat","title":"Chat","status":"waiting"}"#,
        r#"{"id":"ask-colour","title":"Ask colour","status":"needs-input"}"#,
        r#"{"id":"on-hold","title":"On hold","status":"paused"}"#,
        r#"{"id":"needs-docs","title":"Needs docs","after":["write-docs"]}"#,
        r#"{"id":"ship-it","title":"Ship it","status":"done"}"#,
        r#"{"id":"old-idea","title":"Old idea","status":"abandoned"}"#,
    ];
    env.wg_stdin(&["import", "-"], &(records.join("\n") + "\n"))
        .ok();
}

#[test]
fn once_prints_every_states_tasks_failed_first() {
    let env = TestEnv::new();
    every_state(&env);
    let run = env.wg(&["top", "--once"]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    let row = |status: &str, id: &str| {
        lines
            .iter()
            .position(|l| l.split_whitespace().take(2).eq([status, id]))
            .unwrap_or_else(|| panic!("no `{status} {id}` row:\n{}", run.stdout))
    };
    // Groups in display order; within a group the order is by last change.
    let groups = [
        vec![
            row("failed", "parse-input"),
            row("needs-input", "ask-colour"),
        ],
        vec![row("in-progress", "write-docs")],
        vec![row("waiting", "chat")],
        vec![row("open", "needs-docs"), row("paused", "on-hold")],
        vec![row("done", "ship-it")],
        vec![row("abandoned", "old-idea")],
    ];
    assert!(
        groups
            .windows(2)
            .all(|w| w[0].iter().max() < w[1].iter().min()),
        "{}",
        run.stdout
    );
    let order: Vec<usize> = groups.iter().map(|g| g[0]).collect();
    assert!(
        lines[order[0]].contains("exit code 2: no input"),
        "{}",
        run.stdout
    );
    assert!(
        lines[1]
            .contains("1 needs-input, 1 failed, 1 in-progress, 1 waiting, 1 open (0 ready), 1 paused, 1 done, 1 abandoned"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains('\u{1b}'),
        "plain text: no escape codes"
    );

    let json = env.wg(&["top", "--once", "--json"]).ok().json();
    let statuses: Vec<&str> = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort_by_key(|s| {
        [
            "failed needs-input",
            "in-progress",
            "waiting",
            "open paused",
            "done",
            "abandoned",
        ]
        .iter()
        .position(|g| g.split(' ').any(|x| x == *s))
        .unwrap_or_else(|| panic!("unknown status {s}"))
    });
    assert_eq!(statuses, sorted, "JSON tasks in display order");
    assert_eq!(statuses.len(), 8, "{statuses:?}");
    assert_eq!(json["coordinator"]["running"], false);

    // Without a terminal the live view refuses and names --once.
    let run = env.wg(&["top"]).code(2);
    assert!(run.stderr.contains("--once"), "{run}");
}

/// A tmux server of our own (its own socket), killed when the test ends.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new(system_tool("tmux"));
        c.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    /// Polls the screen until `pred` holds; panics with the last screen after `timeout`.
    fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> Duration {
        let start = Instant::now();
        let mut last = String::new();
        if crate::common::wait::poll_until(timeout, || {
            last = self.screen();
            pred(&last)
        }) {
            return start.elapsed();
        }
        panic!("wg top did not show {what} within {timeout:?}; screen:\n{last}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

#[test]
fn live_view_under_tmux_follows_an_agent_messages_pauses_resumes_and_retries_it() {
    let env = TestEnv::new();
    // A conversational agent that stays in its turn: the handler's events are written below,
    // as a codex turn writes them, so the test controls when each one happens.
    let config = env.wg_dir().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[executors.sleeper]\ncommand = [\"sleep\", \"600\"]\nconversational = true\n");
    std::fs::write(&config, text).unwrap();
    env.wg(&["add", "Live task", "-x", "sleeper"]).ok();
    let _coordinator = Coordinator::start(&env, &[]);
    wait_until!(
        Duration::from_secs(30),
        || {
            env.wg(&["service", "status", "--json"])
                .stdout
                .contains("\"live-task\"")
        },
        "the agent did not start"
    );

    let tmux = Tmux {
        socket: env.tmp.path().join("tmux.sock"),
    };
    let inner = format!(
        "env -i HOME={home} PATH=/usr/bin:/bin TERM=screen WG_DIR={dir} {wg} top",
        home = env.home.display(),
        dir = env.wg_dir().display(),
        wg = crate::common::wg_bin().display(),
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "80",
        "-y",
        "24",
        &inner,
    ]);
    tmux.wait_for(Duration::from_secs(20), "the running agent", |s| {
        s.contains("in-progress live-task") && s.contains("turn 1")
    });

    // The agent starts its second turn and runs a command.
    let events = env.wg_dir().join("tasks/live-task/events.jsonl");
    append(
        &events,
        r#"{"turn":2,"ts":"2026-11-30T00:00:00.000Z","event":{"type":"turn.started"}}"#,
    );
    append(
        &events,
        r#"{"turn":2,"ts":"2026-11-30T00:00:00.100Z","event":{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"cargo test --quiet","status":"in_progress"}}}"#,
    );
    let took = tmux.wait_for(Duration::from_secs(10), "turn 2 and its command", |s| {
        s.contains("turn 2") && s.contains("$ cargo test --quiet (running)")
    });
    eprintln!("wg top showed the new command after {took:?}");

    // Select the task (the only one, so the first row), type a message, send it.
    tmux.run(&["send-keys", "-t", "top", "m"]);
    tmux.wait_for(Duration::from_secs(10), "the message prompt", |s| {
        s.contains("message to live-task:")
    });
    tmux.run(&["send-keys", "-t", "top", "-l", "please also run clippy"]);
    tmux.run(&["send-keys", "-t", "top", "Enter"]);
    let inbox = env.wg_dir().join("tasks/live-task/inbox.jsonl");
    wait_until!(
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&inbox).is_ok_and(|s| {
                s.lines().any(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["text"] == "please also run clippy" && v["sender"] == "user"
                })
            })
        },
        "the message did not reach the inbox:\n{}",
        tmux.screen()
    );

    // The transcript pane shows it.
    tmux.run(&["send-keys", "-t", "top", "Enter"]);
    tmux.wait_for(Duration::from_secs(10), "the transcript", |s| {
        s.contains("transcript: live-task") && s.contains("user: please also run clippy")
    });
    // ...and grows as the agent works: its next command appears in the open pane.
    append(
        &events,
        r#"{"turn":2,"ts":"2026-11-30T00:00:01.000Z","event":{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"cargo clippy --all-targets","status":"in_progress"}}}"#,
    );
    tmux.wait_for(
        Duration::from_secs(10),
        "the new command in the transcript",
        |s| s.contains("$: cargo clippy --all-targets"),
    );

    // `p` pauses the task: the coordinator stops its agent, the row says paused, the footer
    // offers to resume; `p` again resumes it and the coordinator starts a new agent.
    let status = || env.wg(&["show", "live-task", "--json"]).ok().json()["status"].clone();
    let agent_pid = || {
        env.wg(&["service", "status", "--json"]).ok().json()["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["task"] == "live-task"))
            .map(|a| a["pid"].clone())
    };
    let first_agent = agent_pid().expect("an agent runs live-task");
    tmux.run(&["send-keys", "-t", "top", "Escape"]);
    tmux.run(&["send-keys", "-t", "top", "p"]);
    tmux.wait_for(Duration::from_secs(10), "the paused task", |s| {
        s.contains("> paused      live-task") && s.contains("p resume")
    });
    assert_eq!(status(), "paused");
    wait_until!(
        Duration::from_secs(20),
        || agent_pid().is_none(),
        "the paused task's agent was not stopped"
    );
    tmux.run(&["send-keys", "-t", "top", "p"]);
    tmux.wait_for(
        Duration::from_secs(30),
        "the resumed task running again",
        |s| s.contains("> in-progress live-task") && s.contains("p pause"),
    );
    wait_until!(
        Duration::from_secs(20),
        || agent_pid().is_some_and(|p| p != first_agent),
        "no new agent after resume"
    );

    // `r` retries a failed task: a person fails it, then retries it from wg top.
    env.wg(&["fail", "live-task", "--reason", "wrong approach"])
        .ok();
    tmux.wait_for(Duration::from_secs(10), "the failed task", |s| {
        s.contains("> failed      live-task") && s.contains("wrong approach")
    });
    tmux.run(&["send-keys", "-t", "top", "r"]);
    tmux.wait_for(Duration::from_secs(30), "the retried task running", |s| {
        s.contains("live-task is open again") && s.contains("> in-progress live-task")
    });

    tmux.run(&["send-keys", "-t", "top", "q"]);
    wait_until!(Duration::from_secs(10), || {
        tmux.cmd()
            .args(["has-session", "-t", "top"])
            .output()
            .is_ok_and(|o| !o.status.success())
    });
}
