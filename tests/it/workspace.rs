//! Workspaces (issue 6) with real git: worktrees per task, collisions, `on_done`, cleanup,
//! lock paths. Agents are `shell` tasks (a real child with the agent environment), except
//! the real codex turn in `codex_in_a_worktree`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::service::Coordinator;
use crate::common::stub::{message, sse_response, KEY};
use crate::common::TestEnv;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", dir.join("../home/.gitconfig"))
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A project in a git repository (one commit holding `tracked.txt`), `.wg/` ignored, git's
/// identity in the test HOME, the shell executor, worktree mode.
fn repo_project(env: TestEnv) -> TestEnv {
    std::fs::write(
        env.home.join(".gitconfig"),
        "[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n",
    )
    .unwrap();
    git(&env.root, &["init", "-q"]);
    std::fs::write(env.path(".gitignore"), ".wg/\n").unwrap();
    std::fs::write(env.path("tracked.txt"), "v1\n").unwrap();
    git(&env.root, &["add", "."]);
    git(&env.root, &["commit", "-qm", "init"]);
    env.wg(&["init", "-x", "shell"]).ok();
    env.set_config(&[
        ("workspace.mode", "worktree"),
        ("coordinator.poll_interval", "200ms"),
        ("coordinator.grace_period", "1s"),
    ]);
    env
}

fn project() -> TestEnv {
    repo_project(TestEnv::bare())
}

/// A shell task running `script` under `sh -c`.
fn add_sh(env: &TestEnv, id: &str, script: &str, extra: &[&str]) {
    let mut args = vec![
        "add",
        id,
        "--id",
        id,
        "--max-retries",
        "0",
        "--command",
        "sh",
        "--command",
        "-c",
        "--command",
        script,
    ];
    args.extend_from_slice(extra);
    env.wg(&args).ok();
}

fn show(env: &TestEnv, id: &str) -> Value {
    env.wg(&["show", id, "--json"]).ok().json()
}

fn task_log(env: &TestEnv, id: &str) -> Vec<Value> {
    std::fs::read_to_string(env.wg_dir().join("tasks").join(id).join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn cleanup_record(env: &TestEnv, id: &str) -> Value {
    task_log(env, id)
        .into_iter()
        .find(|r| r["event"] == "workspace.cleanup")
        .unwrap_or_else(|| panic!("no cleanup record for {id}: {:?}", task_log(env, id)))
}

/// The time (ms since the epoch) of the first coordinator.log line containing `needle`.
fn log_time(log: &str, needle: &str) -> u128 {
    let line = log
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in:\n{log}"));
    let ts = line.split(' ').next().unwrap();
    let t = humantime::parse_rfc3339(ts).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

fn files_at(env: &TestEnv, rev: &str) -> String {
    git(&env.root, &["ls-tree", "-r", "--name-only", rev])
}

fn worktrees(env: &TestEnv) -> String {
    git(&env.root, &["worktree", "list", "--porcelain"])
}

#[test]
fn parallel_tasks_commit_on_their_own_branches() {
    let env = project();
    let script = "echo \"$WG_TASK_ID\" > \"out-$WG_TASK_ID.txt\" && git add . && git commit -qm \"work of $WG_TASK_ID\" && sleep 0.4";
    add_sh(&env, "a", script, &[]);
    add_sh(&env, "b", script, &[]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    for id in ["a", "b"] {
        assert_eq!(show(&env, id)["status"], "done");
        let files = files_at(&env, &format!("wg/{id}"));
        assert!(files.contains(&format!("out-{id}.txt")), "{id}: {files}");
        let other = if id == "a" { "b" } else { "a" };
        assert!(
            !files.contains(&format!("out-{other}.txt")),
            "{id}: {files}"
        );
        let msg = git(
            &env.root,
            &["log", "-1", "--format=%s", &format!("wg/{id}")],
        );
        assert_eq!(msg.trim(), format!("work of {id}"));
        let t = show(&env, id);
        let base = git(&env.root, &["rev-parse", "main"]);
        assert_eq!(t["base_commit"], base.trim());
        assert_eq!(t["branch"], format!("wg/{id}"));
        assert!(t.get("worktree").is_none(), "{t}");
        let c = cleanup_record(&env, id);
        assert_eq!(c["ok"], true, "{c}");
        assert_eq!(t["workspace_cleanup"]["ok"], true);
    }
    // The main checkout is untouched: no agent file, nothing modified, on main.
    assert!(!env.path("out-a.txt").exists() && !env.path("out-b.txt").exists());
    assert_eq!(git(&env.root, &["status", "--porcelain"]), "");
    assert_eq!(files_at(&env, "main").trim(), ".gitignore\ntracked.txt");
    assert!(!env.wg_dir().join("worktrees/a").exists());
    assert_eq!(worktrees(&env).matches("worktree ").count(), 1);
    // They ran at the same time: both started before either ended.
    let log = env.coordinator_log();
    let first_end = log_time(&log, "ended agent=");
    assert!(log_time(&log, "start task=a") < first_end, "{log}");
    assert!(log_time(&log, "start task=b") < first_end, "{log}");
}

#[test]
fn a_collision_waits_until_the_first_worktree_is_cleaned_up() {
    let env = project();
    // One path for every task: the second must wait for the first's cleanup.
    env.wg(&["config", "set", "workspace.dir", ".wg/slot"]).ok();
    add_sh(
        &env,
        "first",
        "echo 1 > one.txt && sleep 1.2",
        &["--priority", "1"],
    );
    add_sh(&env, "second", "echo 2 > two.txt", &[]);
    let c = Coordinator::start(&env, &["--until-done"]);
    wait_until!(Duration::from_secs(10), || {
        show(&env, "second")["waiting_for"]
            .as_str()
            .is_some_and(|r| r.contains("in use by task first (running)"))
    });
    let shown = env.wg(&["show", "second"]).ok().stdout;
    assert!(
        shown.contains("waiting:") && shown.contains("first"),
        "{shown}"
    );
    assert_eq!(show(&env, "second")["status"], "open");
    let out = c.wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(show(&env, "first")["status"], "done");
    assert_eq!(show(&env, "second")["status"], "done");
    let log = env.coordinator_log();
    assert!(
        log_time(&log, "cleanup task=first") <= log_time(&log, "start task=second"),
        "{log}"
    );
    // Nothing clobbered: each branch holds only its own work (saved at cleanup).
    assert!(files_at(&env, "wg/first").contains("one.txt"));
    assert!(!files_at(&env, "wg/second").contains("one.txt"));
    assert!(files_at(&env, "wg/second").contains("two.txt"));
    assert!(task_log(&env, "second")
        .iter()
        .any(|r| r["event"] == "waiting" && r["text"].as_str().unwrap().contains("first")));
}

const DIRTY: &str = "echo staged > staged.txt && git add staged.txt && echo v2 >> tracked.txt && echo new > untracked.txt && wg done \"$WG_TASK_ID\"";

#[test]
fn done_commits_leftover_changes_on_the_task_branch() {
    let env = project();
    add_sh(&env, "tidy", DIRTY, &[]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(show(&env, "tidy")["status"], "done");
    let files = files_at(&env, "wg/tidy");
    for f in ["staged.txt", "untracked.txt", "tracked.txt"] {
        assert!(files.contains(f), "{files}");
    }
    let tracked = git(&env.root, &["show", "wg/tidy:tracked.txt"]);
    assert_eq!(tracked, "v1\nv2\n");
    let msg = git(&env.root, &["log", "-1", "--format=%B", "wg/tidy"]);
    assert!(msg.contains("(tidy)") && msg.contains("wg done"), "{msg}");
    let rec = task_log(&env, "tidy")
        .into_iter()
        .find(|r| r["event"] == "workspace.commit")
        .expect("commit record");
    assert_eq!(rec["files"].as_array().unwrap().len(), 3, "{rec}");
    // The main checkout never saw any of it.
    assert_eq!(
        std::fs::read_to_string(env.path("tracked.txt")).unwrap(),
        "v1\n"
    );
}

#[test]
fn done_is_refused_with_the_files_when_on_done_is_refuse() {
    let env = project();
    env.wg(&["config", "set", "workspace.on_done", "refuse"])
        .ok();
    add_sh(&env, "strict", DIRTY, &[]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    // A task failed (or was abandoned): --until-done says so.
    assert_eq!(out.code, 8, "{out}");
    let t = show(&env, "strict");
    // `wg done` failed, so the script did: the task is failed, not done.
    assert_eq!(t["status"], "failed", "{t}");
    let agent_log = std::fs::read_to_string(env.wg_dir().join("tasks/strict/agent.log")).unwrap();
    assert!(agent_log.contains("uncommitted changes"), "{agent_log}");
    for f in ["staged.txt", "tracked.txt", "untracked.txt"] {
        assert!(agent_log.contains(f), "{f}: {agent_log}");
    }
    // Cleanup after the failure still saves the work on the branch before removing it.
    let c = cleanup_record(&env, "strict");
    assert_eq!(c["ok"], true, "{c}");
    assert!(c["saved_commit"].is_string(), "{c}");
    assert!(files_at(&env, "wg/strict").contains("untracked.txt"));
    assert!(!env.wg_dir().join("worktrees/strict").exists());
}

#[test]
fn cleanup_after_fail_and_abandon_reaches_log_and_webhook() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(wiremock::MockServer::start());
    rt.block_on(
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(wiremock::ResponseTemplate::new(200))
            .mount(&server),
    );
    let env = project();
    env.wg(&[
        "config",
        "set",
        "notify.url",
        &format!("{}/hook", server.uri()),
    ])
    .ok();
    add_sh(&env, "breaks", "echo half > half.txt; exit 3", &[]);
    add_sh(&env, "long", "echo x > x.txt; sleep 30", &[]);
    let c = Coordinator::start(&env, &["--until-done"]);
    wait_until!(Duration::from_secs(10), || {
        env.wg_dir().join("worktrees/long/x.txt").exists()
    });
    env.wg(&["abandon", "long"]).ok();
    let out = c.wait(Duration::from_secs(30));
    // A task failed (or was abandoned): --until-done says so.
    assert_eq!(out.code, 8, "{out}");
    assert_eq!(show(&env, "breaks")["status"], "failed");
    assert_eq!(show(&env, "long")["status"], "abandoned");
    for (id, file) in [("breaks", "half.txt"), ("long", "x.txt")] {
        let c = cleanup_record(&env, id);
        assert_eq!(c["ok"], true, "{c}");
        assert!(
            c["text"].as_str().unwrap().contains("removed worktree"),
            "{c}"
        );
        assert!(!env.wg_dir().join("worktrees").join(id).exists());
        assert!(files_at(&env, &format!("wg/{id}")).contains(file));
    }
    assert_eq!(worktrees(&env).matches("worktree ").count(), 1);
    let bodies: Vec<Value> = rt
        .block_on(server.received_requests())
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    for (id, status) in [("breaks", "failed"), ("long", "abandoned")] {
        let hook = bodies
            .iter()
            .find(|b| b["task"] == id && b.get("workspace").is_some())
            .unwrap_or_else(|| panic!("no cleanup webhook for {id}: {bodies:?}"));
        assert_eq!(hook["status"], status);
        assert_eq!(hook["workspace"]["ok"], true, "{hook}");
    }
}

#[test]
fn cleanup_after_a_coordinator_crash() {
    let env = project();
    add_sh(
        &env,
        "survivor",
        "echo late > late.txt && sleep 1 && wg done \"$WG_TASK_ID\"",
        &[],
    );
    let mut c = Coordinator::start(&env, &[]);
    wait_until!(Duration::from_secs(10), || {
        env.wg_dir().join("worktrees/survivor/late.txt").exists()
    });
    c.kill9();
    // The agent outlives the coordinator and reports on its own.
    wait_until!(Duration::from_secs(10), || {
        show(&env, "survivor")["status"] == "done"
    });
    assert!(env.wg_dir().join("worktrees/survivor").exists());
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    let c = cleanup_record(&env, "survivor");
    assert_eq!(c["ok"], true, "{c}");
    assert!(!env.wg_dir().join("worktrees/survivor").exists());
    assert!(files_at(&env, "wg/survivor").contains("late.txt"));
}

#[test]
fn overlapping_lock_paths_serialise_and_disjoint_ones_run_together() {
    let env = project();
    env.wg(&["config", "set", "workspace.mode", "shared"]).ok();
    add_sh(
        &env,
        "a",
        "sleep 0.6",
        &["--lock", "src", "--priority", "3"],
    );
    add_sh(
        &env,
        "b",
        "sleep 0.6",
        &["--lock", "./src/parser/", "--priority", "2"],
    );
    add_sh(
        &env,
        "c",
        "sleep 0.6",
        &["--lock", "docs", "--priority", "1"],
    );
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    for id in ["a", "b", "c"] {
        assert_eq!(show(&env, id)["status"], "done");
    }
    let log = env.coordinator_log();
    let end_a = log_time(&log, "task=a exit=");
    let end_c = log_time(&log, "task=c exit=");
    // c (disjoint) ran alongside a; b (under a's path) only after a ended.
    assert!(log_time(&log, "start task=c") < end_a, "{log}");
    assert!(log_time(&log, "start task=b") >= end_a, "{log}");
    let _ = end_c;
    assert!(
        log.contains("wait task=b: lock path src/parser overlaps src, held by task a"),
        "{log}"
    );
    assert!(task_log(&env, "b")
        .iter()
        .any(|r| r["event"] == "waiting" && r["text"].as_str().unwrap().contains("task a")));
}

#[test]
fn doctor_finds_and_prunes_stale_worktrees() {
    let env = project();
    env.wg(&["config", "set", "workspace.keep_worktrees", "true"])
        .ok();
    add_sh(&env, "kept", "echo k > k.txt", &[]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    assert!(env.wg_dir().join("worktrees/kept").exists());
    env.wg(&["config", "set", "workspace.keep_worktrees", "false"])
        .ok();
    let d = env.wg(&["doctor"]);
    assert!(
        d.stdout.contains("stale worktree") && d.stdout.contains("kept"),
        "{d}"
    );
    let fixed = env.wg(&["doctor", "--fix"]);
    assert!(fixed.stdout.contains("removed"), "{fixed}");
    assert!(!env.wg_dir().join("worktrees/kept").exists());
    assert_eq!(worktrees(&env).matches("worktree ").count(), 1);
    assert!(files_at(&env, "wg/kept").contains("k.txt"));
}

/// First request: run `cmd`; the follow-up (carrying its output): a final message.
struct ToolThenDone(String);
impl wiremock::Respond for ToolThenDone {
    fn respond(&self, r: &wiremock::Request) -> wiremock::ResponseTemplate {
        if String::from_utf8_lossy(&r.body).contains("function_call_output") {
            return sse_response(&[message("committed and done")]);
        }
        let args = serde_json::json!({"cmd": self.0}).to_string();
        sse_response(&[
            serde_json::json!({"type": "function_call", "status": "completed",
            "id": "fc_1", "name": "exec_command", "arguments": args, "call_id": "call_1"}),
        ])
    }
}

/// The real codex, in its `workspace-write` sandbox with `-C` at the worktree, commits on the
/// task branch and runs `wg done` against the project's `.wg/`: both lie outside `-C` and are
/// reachable only through the `--add-dir` roots the handler grants.
#[tokio::test(flavor = "multi_thread")]
async fn codex_in_a_worktree_commits_and_runs_wg_done() {
    use wiremock::matchers::{method, path};
    let server = wiremock::MockServer::start().await;
    let cmd = "pwd > where.txt && echo x > f && git add f where.txt && git commit -qm 'agent commit' && wg done \"$WG_TASK_ID\"";
    wiremock::Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ToolThenDone(cmd.into()))
        .mount(&server)
        .await;
    let Some(codex) = crate::common::real_codex() else {
        return;
    };
    let env = TestEnv::bare_outside_tmp();
    let mut env = repo_project(env);
    let url = format!("{}/v1", server.uri());
    env.set_config(&[
        ("executor", "codex"),
        ("model", "qwen3-coder"),
        ("endpoint.url", url.as_str()),
        ("codex.binary", codex.to_str().unwrap()),
        ("handler.request_max_retries", "0"),
        ("handler.stream_max_retries", "0"),
        ("handler.first_output_timeout", "20s"),
    ]);
    env.set_env("WG_API_KEY", KEY);
    env.wg(&["add", "Commit in a worktree", "--id", "wt"]).ok();
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out}");
    let handler_log =
        std::fs::read_to_string(env.wg_dir().join("tasks/wt/handler.log")).unwrap_or_default();
    let events =
        std::fs::read_to_string(env.wg_dir().join("tasks/wt/events.jsonl")).unwrap_or_default();
    assert_eq!(show(&env, "wt")["status"], "done", "{events}");
    assert!(handler_log.contains("--add-dir"), "{handler_log}");
    let followup = server.received_requests().await.unwrap();
    let followup = String::from_utf8_lossy(&followup.last().unwrap().body).to_string();
    // Without the worktree's own git dir as a writable root, codex's sandbox keeps it
    // read-only (it protects the `.git` target of every writable root) and the commit fails.
    assert!(!followup.contains("Read-only file system"), "{followup}");
    // The agent's commit is on its branch; it ran in the worktree; main is untouched.
    let msg = git(&env.root, &["log", "-1", "--format=%s", "wg/wt"]);
    assert_eq!(msg.trim(), "agent commit");
    let wd = git(&env.root, &["show", "wg/wt:where.txt"]);
    assert!(wd.trim().ends_with(".wg/worktrees/wt"), "{wd}");
    assert!(!env.path("f").exists());
    assert_eq!(git(&env.root, &["status", "--porcelain"]), "");
    assert_eq!(cleanup_record(&env, "wt")["ok"], true);
}

#[test]
fn merge_ff_fast_forwards_the_base_branch_or_says_why_not() {
    let env = project();
    env.wg(&["config", "set", "workspace.merge", "ff"]).ok();
    add_sh(
        &env,
        "feat",
        "echo f > feat.txt && wg done \"$WG_TASK_ID\"",
        &[],
    );
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{out}");
    let c = cleanup_record(&env, "feat");
    assert_eq!(c["merge"]["ok"], true, "{c}");
    // main moved, and its checkout with it.
    assert_eq!(
        git(&env.root, &["rev-parse", "main"]),
        git(&env.root, &["rev-parse", "wg/feat"])
    );
    assert!(env.path("feat.txt").exists());
    // main moves on meanwhile: no fast-forward, reported, nothing changed.
    add_sh(
        &env,
        "late",
        "echo l > late.txt && sleep 0.5 && wg done \"$WG_TASK_ID\"",
        &[],
    );
    let c2 = Coordinator::start(&env, &[]);
    wait_until!(Duration::from_secs(10), || {
        env.wg_dir().join("worktrees/late/late.txt").exists()
    });
    std::fs::write(env.path("other.txt"), "o\n").unwrap();
    git(&env.root, &["add", "other.txt"]);
    git(&env.root, &["commit", "-qm", "moved on"]);
    let main = git(&env.root, &["rev-parse", "main"]);
    wait_until!(Duration::from_secs(10), || {
        task_log(&env, "late")
            .iter()
            .any(|r| r["event"] == "workspace.cleanup")
    });
    drop(c2);
    let c = cleanup_record(&env, "late");
    assert_eq!(c["merge"]["ok"], false, "{c}");
    assert!(
        c["merge"]["message"]
            .as_str()
            .unwrap()
            .contains("not a fast-forward"),
        "{c}"
    );
    assert_eq!(git(&env.root, &["rev-parse", "main"]), main);
}
