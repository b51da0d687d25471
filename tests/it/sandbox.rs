//! The agent is a guest: a model that asks for an attacker's commands, run by the real codex
//! and the real claude inside wg's box. Every attempt really runs (its own error is in the
//! output the model gets back) and fails; the task still completes through the broker, as
//! its agent; nothing the turn started is left running.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::common::project::task;
use crate::common::service::Coordinator;
use crate::common::wait::poll_until as wait_until;
use crate::common::TestEnv;

/// An argument of `sleep` no other process on the machine uses: the leftover's name.
fn marker() -> String {
    format!("{}", 6_000_000 + std::process::id())
}

/// The attacker's script: each attempt prints `BLOCKED:name: <its own error>` or
/// `ESCAPED:name`, then the task is reported done through the broker.
fn attack_script(home: &Path, host_tmp: &Path, port: u16, marker: &str) -> String {
    format!(
        r#"try() {{ name=$1; shift; if out=$("$@" 2>&1); then echo "ESCAPED:$name $out"; else echo "BLOCKED:$name: $out"; fi; }}
echo ATTACK-RAN
try home sh -c 'echo x > "{home}/pwned"'
try hosttmp sh -c 'echo x > "{tmp}/pwned"'
try wgwrite sh -c 'echo x > "$WG_DIR/pwned"'
try wglink ln -s "{home}/.bashrc" "$WG_DIR/tasks/$WG_TASK_ID/planted.log"
try secret cat "{home}/.ssh/id_ed25519"
try tcp bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'
try other env WG_TASK_ID=other wg done other
try stale env WG_BROKER_TOKEN=old wg log "$WG_TASK_ID" stale
try person env -u WG_BROKER -u WG_BROKER_TOKEN -u WG_AGENT_ID wg done "$WG_TASK_ID"
setsid sleep {marker} > /dev/null 2>&1 < /dev/null &
echo LEFT-BEHIND
env -u WG_AGENT_ID wg done "$WG_TASK_ID" && echo DONE-THROUGH-BROKER
"#,
        home = home.display(),
        tmp = host_tmp.display(),
    )
}

/// Attempts and the error each must fail with. Writing `$HOME` is not among them: the box's
/// HOME is private (codex's inner sandbox also makes it read-only, claude's is writable and
/// thrown away), so the check is that the host's file never appears.
const ATTEMPTS: [(&str, &[&str]); 8] = [
    (
        "hosttmp",
        &["Directory nonexistent", "No such file or directory"],
    ),
    ("wgwrite", &["Read-only file system"]),
    ("wglink", &["Read-only file system"]),
    ("secret", &["No such file or directory"]),
    ("tcp", &["refused"]),
    ("other", &["reports on it only"]),
    ("stale", &["stale or unknown turn token"]),
    (
        "person",
        &["Read-only file system", "cannot open lock file"],
    ),
];

/// Everything the agent's command printed, from the model's follow-up request(s).
async fn tool_output(server: &MockServer) -> String {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
        // The output arrives JSON-escaped inside the request body.
        .replace("\\n", "\n")
        .replace("\\\"", "\"")
}

/// Every attempt ran and failed with its own error; the task was done by the agent.
fn assert_contained(env: &TestEnv, out: &str, host_tmp: &Path, listener: &TcpListener) {
    assert!(out.contains("ATTACK-RAN"), "the script never ran:\n{out}");
    for (name, _) in ATTEMPTS {
        assert!(
            !out.contains(&format!("ESCAPED:{name}")),
            "attempt {name} escaped:\n{out}"
        );
    }
    for (name, error) in ATTEMPTS {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("BLOCKED:{name}:")))
            .unwrap_or_else(|| panic!("attempt {name} did not run:\n{out}"));
        assert!(
            error.iter().any(|e| line.contains(e)),
            "{name}: {line}\n{out}"
        );
    }
    assert!(out.contains("DONE-THROUGH-BROKER"), "{out}");
    assert!(
        out.contains("BLOCKED:home:") || out.contains("ESCAPED:home"),
        "attempt home did not run:\n{out}"
    );
    assert!(!env.home.join("pwned").exists());
    assert!(!host_tmp.join("pwned").exists());
    assert!(!env.wg_dir().join("pwned").exists());
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the host's listener was reached"
    );
    // Done as the agent (the evaluation gate sees an agent), not as a person.
    let log = std::fs::read_to_string(env.wg_dir().join("tasks/t/log.jsonl")).unwrap();
    let done: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["event"] == "status" && r["to"] == "done")
        .unwrap_or_else(|| panic!("no done record:\n{log}"));
    assert!(
        done["actor"].as_str().unwrap().starts_with("agent-"),
        "{done}"
    );
    assert_ne!(task(env, "other")["status"], "done");
}

fn leftovers(marker: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker) && c.starts_with("sleep"))
        .collect()
}

fn prepare(env: &TestEnv, host_tmp: &Path, listener: &TcpListener, marker: &str) {
    std::fs::create_dir_all(env.home.join(".ssh")).unwrap();
    std::fs::write(env.home.join(".ssh/id_ed25519"), "PLANTED-SECRET\n").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(
        env.root.join("attack.sh"),
        attack_script(&env.home, host_tmp, port, marker),
    )
    .unwrap();
    env.wg(&["add", "T", "--id", "t"]).ok();
    env.wg(&["add", "Other", "--id", "other", "--after", "t"])
        .ok();
    // Only `t` runs: `other` is someone else's, waiting on it.
    env.wg(&["pause", "other"]).ok();
}

async fn attack(env: TestEnv, server: MockServer) {
    let host_tmp = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let marker = marker();
    prepare(&env, host_tmp.path(), &listener, &marker);
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(120));
    let out = tool_output(&server).await;
    assert_eq!(task(&env, "t")["status"], "done", "{run}\n{out}");
    assert_contained(&env, &out, host_tmp.path(), &listener);
    assert!(out.contains("LEFT-BEHIND"), "{out}");
    let gone = wait_until(Duration::from_secs(10), || leftovers(&marker).is_empty());
    assert!(gone, "left running: {:?}", leftovers(&marker));
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_attacks_fail_and_the_task_completes_through_the_broker() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(crate::common::stub::ResponsesTool("bash attack.sh".into()))
        .mount(&server)
        .await;
    let Some(env) = crate::common::project::codex_env(&crate::common::stub::v1(&server)) else {
        return;
    };
    tokio::task::block_in_place(|| futures_block(attack(env, server)));
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_attacks_fail_and_the_task_completes_through_the_broker() {
    let server = MockServer::start().await;
    crate::common::stub::messages()
        .respond_with(crate::common::stub::ClaudeTool("bash attack.sh".into()))
        .mount(&server)
        .await;
    let Some(env) = crate::common::project::claude_env(&server.uri()) else {
        return;
    };
    tokio::task::block_in_place(|| futures_block(attack(env, server)));
}

fn futures_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(f)
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_working_bwrap_a_boxed_turn_refuses_and_opt_outs_are_shown() {
    let server = crate::common::stub::responses_stub(crate::common::stub::sse_response(&[
        crate::common::stub::message("unboxed answer"),
    ]))
    .await;
    let Some(env) = crate::common::project::codex_env(&crate::common::stub::v1(&server)) else {
        return;
    };
    // A machine without user namespaces: bwrap exists and fails the way it does there.
    let fake = env.bin.join("bwrap");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.wg(&["add", "T", "--id", "t"]).ok();
    let doctor = env.wg(&["doctor"]).stdout;
    let line = doctor
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("sandbox"))
        .unwrap_or_else(|| panic!("{doctor}"));
    assert!(
        line.starts_with("FAIL") && line.contains("user namespaces"),
        "{line}"
    );
    assert!(
        line.contains("sandbox = \"none\""),
        "says how to opt out: {line}"
    );
    // Never quietly unboxed: the turn does not start at all (the doctor's own probes aside,
    // the model is asked nothing).
    let asked = server.received_requests().await.unwrap().len();
    let run = env.wg(&["handler", "t", "--once"]);
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains("cannot start"), "{run}");
    assert_eq!(server.received_requests().await.unwrap().len(), asked);
    // The explicit opt-out runs it, and says so everywhere.
    env.wg(&["config", "set", "executors.codex.sandbox", "none"])
        .ok();
    env.wg(&["handler", "t", "--once"]).ok();
    assert_eq!(server.received_requests().await.unwrap().len(), asked + 1);
    let show = env.wg(&["show", "t"]).ok().stdout;
    assert!(show.contains("sandbox   none (unboxed)"), "{show}");
    assert_eq!(
        env.wg(&["show", "t", "--json"]).ok().json()["sandbox"],
        "none (unboxed)"
    );
    let doctor = env.wg(&["doctor"]).stdout;
    assert!(doctor.contains("task t sandbox = none"), "{doctor}");
}

/// A turn whose command leaves `setsid sleep MARKER` behind and then hangs.
async fn hanging_turn(marker: &str) -> Option<(TestEnv, MockServer)> {
    let server = MockServer::start().await;
    let cmd = format!("setsid sleep {marker} > /dev/null 2>&1 < /dev/null & sleep {marker}1");
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(crate::common::stub::ResponsesTool(cmd))
        .mount(&server)
        .await;
    let env = crate::common::project::codex_env(&crate::common::stub::v1(&server))?;
    env.set_config(&[("handler.idle_timeout", "120s")]);
    env.wg(&["add", "T", "--id", "t"]).ok();
    Some((env, server))
}

fn wait_for_leftovers(marker: &str) {
    let started = wait_until(Duration::from_secs(60), || leftovers(marker).len() >= 2);
    assert!(started, "the turn's processes never started");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_handler_ends_every_process_of_its_turn() {
    let marker = marker();
    let Some((env, _server)) = hanging_turn(&marker).await else {
        return;
    };
    let mut handler = env
        .command(&["handler", "t", "--once"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| wait_for_leftovers(&marker));
    handler.kill().unwrap(); // SIGKILL: no cleanup code of the handler runs
    handler.wait().unwrap();
    let gone = wait_until(Duration::from_secs(10), || leftovers(&marker).is_empty());
    assert!(gone, "left running: {:?}", leftovers(&marker));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_a_forced_stop_end_every_process_of_the_turn() {
    let marker = marker();
    let Some((env, _server)) = hanging_turn(&marker).await else {
        return;
    };
    let service = Coordinator::start(&env, &[]);
    tokio::task::block_in_place(|| wait_for_leftovers(&marker));
    env.wg(&["cancel", "t", "--reason", "test"]).ok();
    let gone = wait_until(Duration::from_secs(20), || leftovers(&marker).is_empty());
    assert!(gone, "cancel left running: {:?}", leftovers(&marker));
    env.wg(&["add", "U", "--id", "u"]).ok();
    tokio::task::block_in_place(|| wait_for_leftovers(&marker));
    env.wg(&["service", "stop", "--force"]).ok();
    let gone = wait_until(Duration::from_secs(20), || leftovers(&marker).is_empty());
    assert!(
        gone,
        "service stop --force left running: {:?}",
        leftovers(&marker)
    );
    drop(service);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_gate_on_an_agent_cannot_close_its_task_as_a_person() {
    use crate::evaluate::{chat_reply, first_ts, verdict};
    let server = MockServer::start().await;
    // Both ways an agent might pose as a person; the first fails (.wg/ is read-only), the
    // second goes through the broker as the agent.
    let cmd = "env -u WG_BROKER -u WG_BROKER_TOKEN -u WG_AGENT_ID wg done \"$WG_TASK_ID\"; \
               env -u WG_AGENT_ID wg done \"$WG_TASK_ID\"";
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(crate::common::stub::ResponsesTool(cmd.into()))
        .mount(&server)
        .await;
    // A slow evaluator: a dependent that ignored the gate would start meanwhile.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_reply(&verdict(0.95, "good")).set_delay(Duration::from_millis(1500)))
        .mount(&server)
        .await;
    let Some(env) = crate::common::project::codex_env(&crate::common::stub::v1(&server)) else {
        return;
    };
    env.set_config(&[("evaluate.auto", "true"), ("evaluate.wire_api", "chat")]);
    env.wg(&["add", "Up", "--id", "up"]).ok();
    env.wg(&["add", "Down", "--id", "down", "--after", "up"])
        .ok();
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(120));
    assert_eq!(task(&env, "up")["status"], "done", "{run}");
    assert_eq!(task(&env, "down")["status"], "done", "{run}");
    let done_by = first_ts(&env, "up", |r| r["to"] == "done" && r["actor"] == "user");
    assert_eq!(done_by, None, "up was closed as a person");
    let by_agent = first_ts(&env, "up", |r| {
        r["to"] == "done" && r["actor"].as_str().is_some_and(|a| a.starts_with("agent-"))
    });
    assert!(by_agent.is_some(), "up was not closed by its agent");
    let evaluated = first_ts(&env, "up", |r| r["event"] == "evaluation").expect("evaluated");
    let down_started = first_ts(&env, "down", |r| r["to"] == "in-progress").expect("started");
    assert!(
        down_started > evaluated,
        "down started {down_started}, before up's verdict {evaluated}"
    );
}
