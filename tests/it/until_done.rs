//! How `wg service start --until-done` ends when tasks are left that nothing will move: exit 9
//! ("stuck", docs/exit-codes.md), with a message that names what they wait for.

use std::time::Duration;

use crate::common::service::Coordinator;
use crate::common::TestEnv;

#[test]
fn until_done_exits_9_when_the_tasks_left_wait_for_a_person() {
    let env = TestEnv::new();
    // An agent that asks a person and ends its run: its task waits in needs-input.
    let config = env.wg_dir().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[executors.mock]\nturn_ms = 0\n\n[executors.asker]\n\
         command = [\"sh\", \"-c\", \"wg ask \\\"$WG_TASK_ID\\\" 'Which colour should the button be?'\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    env.wg(&["add", "Build the page"]).ok();
    env.wg(&["add", "Paint the button", "-x", "asker"]).ok();
    // A person paused this one before the run; the next one waits for it.
    env.wg(&["add", "Write the changelog"]).ok();
    env.wg(&[
        "pause",
        "write-the-changelog",
        "--reason",
        "after the release",
    ])
    .ok();
    env.wg(&["add", "Release", "--after", "write-the-changelog"])
        .ok();

    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(60));
    assert_eq!(out.code, 9, "stuck: {out}");
    let status = |id: &str| env.wg(&["show", id, "--json"]).ok().json()["status"].clone();
    assert_eq!(status("build-the-page"), "done");
    assert_eq!(status("paint-the-button"), "needs-input");
    assert_eq!(status("write-the-changelog"), "paused");
    assert_eq!(status("release"), "open");
    // The message says what is left and where to look.
    assert!(
        out.stderr
            .contains("error: no task can make progress: 1 needs-input, 1 paused, 1 open"),
        "{out}"
    );
    assert!(out.stderr.contains("hint: "), "{out}");

    // With --json the error is one object on stderr, kind `stuck`.
    let out = Coordinator::start(&env, &["--until-done", "--json"]).wait(Duration::from_secs(60));
    assert_eq!(out.code, 9, "{out}");
    // (--foreground echoes the coordinator's decisions on stderr first.)
    let last = out.stderr.trim_end().lines().last().unwrap_or_default();
    let err: serde_json::Value = serde_json::from_str(last).expect("one JSON object");
    assert_eq!(err["error"]["kind"], "stuck", "{err}");
    assert_eq!(err["error"]["exit_code"], 9, "{err}");
}
