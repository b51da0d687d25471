//! Landing finished work (issue 24) with real git: checks wg runs itself after `wg done`, the
//! merge queue onto the base branch, conflicts and merged-check failures sent back, and a
//! coordinator killed in the middle. Agents are `shell` tasks where no judgement is needed;
//! the conflict that an agent must resolve is resolved by the real codex against a stub.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::service::Coordinator;
use crate::common::TestEnv;
use crate::workspace::{add_sh, git, project, repo_project, show, task_log};

/// Appends TOML to the project's config (arrays cannot be set with `wg config set`).
fn append_config(env: &TestEnv, toml: &str) {
    let p = env.wg_dir().join("config.toml");
    let mut s = std::fs::read_to_string(&p).unwrap();
    s.push('\n');
    s.push_str(toml);
    std::fs::write(&p, s).unwrap();
}

/// A project whose repository has a test script, `test.sh`, committed on `main`: it fails
/// when any `*.part` file holds the word `broken`, or when more than `MAX_PARTS` (a file in
/// the tree) part files exist. The merge queue is on and runs `sh test.sh`.
fn queue_project() -> TestEnv {
    queue_project_with(r#"["sh test.sh"]"#)
}

/// [`queue_project`] with `commands` (a TOML array) as its `[checks] commands`.
fn queue_project_with(commands: &str) -> TestEnv {
    let env = project();
    std::fs::write(
        env.path("test.sh"),
        "set -e\nfor f in *.part; do [ -e \"$f\" ] || continue; if grep -q broken \"$f\"; then echo \"FAIL: $f is broken\"; exit 1; fi; done\nmax=$(cat MAX_PARTS 2>/dev/null || echo 99)\nn=$(ls *.part 2>/dev/null | wc -l)\nif [ \"$n\" -gt \"$max\" ]; then echo \"FAIL: $n part files, at most $max\"; exit 1; fi\necho \"ok: $n part files\"\n",
    )
    .unwrap();
    git(&env.root, &["add", "test.sh"]);
    git(&env.root, &["commit", "-qm", "test script"]);
    env.set_config(&[("workspace.merge", "queue")]);
    append_config(
        &env,
        &format!("[checks]\ncommands = {commands}\ntimeout = \"60s\"\n"),
    );
    env
}

fn checks_of(env: &TestEnv, id: &str) -> Vec<Value> {
    std::fs::read_to_string(env.wg_dir().join("tasks").join(id).join("checks.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn inbox(env: &TestEnv, id: &str) -> Vec<Value> {
    std::fs::read_to_string(env.wg_dir().join("tasks").join(id).join("inbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn landed_commit(env: &TestEnv, id: &str) -> String {
    task_log(env, id)
        .into_iter()
        .rev()
        .find(|r| r["event"] == "landed")
        .unwrap_or_else(|| panic!("{id} never landed: {:?}", task_log(env, id)))["commit"]
        .as_str()
        .unwrap()
        .to_string()
}

fn rev(dir: &Path, r: &str) -> String {
    git(dir, &["rev-parse", r]).trim().to_string()
}

/// How many commits on main's first-parent line land task `id`.
fn lands_on_main(env: &TestEnv, id: &str) -> usize {
    git(&env.root, &["log", "--first-parent", "--format=%s", "main"])
        .lines()
        .filter(|s| s.ends_with(&format!("({id})")) && s.starts_with("wg: land "))
        .count()
}

/// A shell task that writes `<file>` with `content`, commits it, and says `wg done`.
fn add_writer(env: &TestEnv, id: &str, file: &str, content: &str, extra: &[&str]) {
    let script = format!(
        "printf '%s\\n' '{content}' > {file} && git add {file} && git commit -qm 'write {file}' && wg done \"$WG_TASK_ID\""
    );
    add_sh(env, id, &script, extra);
}

#[test]
fn five_parallel_tasks_all_land_with_checks_on_each_merged_state() {
    let env = queue_project();
    let ids = ["t1", "t2", "t3", "t4", "t5"];
    for id in ids {
        add_writer(
            &env,
            id,
            &format!("{id}.part"),
            &format!("work of {id}"),
            &[],
        );
    }
    env.set_config(&[("coordinator.max_agents", "5")]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(120));
    assert_eq!(out.code, 0, "{out}");
    let files = git(&env.root, &["ls-tree", "-r", "--name-only", "main"]);
    let mut landed = Vec::new();
    for id in ids {
        assert_eq!(
            show(&env, id)["status"],
            "done",
            "{}",
            env.coordinator_log()
        );
        assert!(files.contains(&format!("{id}.part")), "{id}: {files}");
        assert_eq!(lands_on_main(&env, id), 1, "{id}");
        let commit = landed_commit(&env, id);
        // The checks ran on the merged state that landed: the record names that commit.
        let recs = checks_of(&env, id);
        let merged: Vec<&Value> = recs.iter().filter(|r| r["stage"] == "merged").collect();
        assert!(
            merged
                .iter()
                .any(|r| r["commit"] == commit.as_str() && r["passed"] == true),
            "{id}: {recs:?}"
        );
        assert!(recs
            .iter()
            .any(|r| r["stage"] == "task" && r["passed"] == true));
        // The merged state held every earlier landing: its test saw their part files.
        let count: usize = merged.last().unwrap()["output"]
            .as_str()
            .unwrap()
            .trim()
            .trim_start_matches("ok: ")
            .trim_end_matches(" part files")
            .parse()
            .unwrap();
        landed.push((commit, count));
        assert_eq!(show(&env, id)["landing"]["stage"], "landed");
    }
    landed.sort_by_key(|(_, n)| *n);
    assert_eq!(
        landed.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    // One chain: each landing's merged commit is the base of the next, and main ends at the last.
    for w in landed.windows(2) {
        assert_eq!(rev(&env.root, &format!("{}^1", w[1].0)), w[0].0);
    }
    assert_eq!(rev(&env.root, "main"), landed[4].0);
    // The main checkout followed, and the queue is empty.
    assert!(env.path("t3.part").exists());
    assert_eq!(git(&env.root, &["status", "--porcelain"]), "");
    let q: Value = serde_json::from_str(
        &std::fs::read_to_string(env.wg_dir().join("service/queue.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(q["entries"], serde_json::json!([]));
}

#[test]
fn a_failing_check_sends_the_task_back_with_its_output_until_it_passes() {
    let env = project();
    // The agent says done every time; only its second round writes the file the check wants.
    let script = "if [ -f round1 ]; then echo fixed > fixed.txt; fi; touch round1; git add -A; git commit -qm round; wg done \"$WG_TASK_ID\"";
    add_sh(
        &env,
        "claim",
        script,
        &[
            "--check",
            "test -f fixed.txt || { echo 'fixed.txt is missing'; exit 4; }",
        ],
    );
    add_sh(
        &env,
        "later",
        "true",
        &["--after", "claim", "--workspace", "shared"],
    );
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(60));
    assert_eq!(out.code, 0, "{out}");
    let recs = checks_of(&env, "claim");
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0]["passed"], false);
    assert_eq!(recs[0]["exit_code"], 4);
    assert!(recs[0]["output"]
        .as_str()
        .unwrap()
        .contains("fixed.txt is missing"));
    assert_eq!(recs[1]["passed"], true);
    // Not done after its first `wg done`: sent back, with the command and its output.
    let log = task_log(&env, "claim");
    assert!(
        log.iter().any(|r| r["event"] == "status"
            && r["from"] == "done"
            && r["to"] == "open"
            && r["reason"].as_str().unwrap().contains("check failed")),
        "{log:?}"
    );
    let msg = inbox(&env, "claim")
        .into_iter()
        .find(|m| m["kind"] == "check")
        .expect("a check message");
    let text = msg["text"].as_str().unwrap();
    assert!(
        text.contains("test -f fixed.txt") && text.contains("exited 4"),
        "{text}"
    );
    assert!(text.contains("fixed.txt is missing"), "{text}");
    assert_eq!(show(&env, "claim")["status"], "done");
    // The dependent started only after the checks passed.
    let c = env.coordinator_log();
    let passed = c.find("checks task=claim: passed").expect(&c);
    assert!(c.find("start task=later").unwrap() > passed, "{c}");
    let shown = env.wg(&["show", "claim"]).ok().stdout;
    assert!(
        shown.contains("checks:") && shown.contains("test -f fixed.txt"),
        "{shown}"
    );
}

#[test]
fn a_spent_check_budget_makes_the_task_needs_input() {
    let env = project();
    append_config(
        &env,
        "[checks]\ncommands = [\"echo nope; false\"]\nmax_rounds = 2\n",
    );
    add_sh(
        &env,
        "never",
        "echo x > x.txt && wg done \"$WG_TASK_ID\"",
        &[],
    );
    let c = Coordinator::start(&env, &[]);
    wait_until!(
        Duration::from_secs(60),
        || show(&env, "never")["status"] == "needs-input",
        "{}",
        env.coordinator_log()
    );
    drop(c);
    assert_eq!(checks_of(&env, "never").len(), 2);
    assert_eq!(show(&env, "never")["landing"]["check_rounds"], 2);
    // The worktree is kept for whoever picks it up.
    assert!(env.wg_dir().join("worktrees/never/x.txt").exists());
}

#[test]
fn a_change_that_breaks_checks_only_when_merged_goes_back_and_the_base_stays() {
    let env = queue_project();
    std::fs::write(env.path("MAX_PARTS"), "1\n").unwrap();
    git(&env.root, &["add", "MAX_PARTS"]);
    git(&env.root, &["commit", "-qm", "one part at most"]);
    env.set_config(&[("workspace.land_rounds", "1")]);
    add_writer(&env, "first", "a.part", "a", &["--priority", "2"]);
    // Runs beside `first` from the same base: passes alone (one part file), breaks merged
    // with `first` (two).
    add_sh(
        &env,
        "second",
        "sleep 1.5 && echo b > b.part && git add b.part && git commit -qm b && wg done \"$WG_TASK_ID\"",
        &[],
    );
    let c = Coordinator::start(&env, &[]);
    wait_until!(
        Duration::from_secs(90),
        || show(&env, "second")["status"] == "needs-input",
        "{}",
        env.coordinator_log()
    );
    drop(c);
    let main = rev(&env.root, "main");
    assert_eq!(main, landed_commit(&env, "first"));
    assert!(!git(&env.root, &["ls-tree", "-r", "--name-only", "main"]).contains("b.part"));
    let recs = checks_of(&env, "second");
    assert!(recs
        .iter()
        .any(|r| r["stage"] == "task" && r["passed"] == true));
    let merged = recs.iter().find(|r| r["stage"] == "merged").unwrap();
    assert_eq!(merged["passed"], false);
    assert!(merged["output"].as_str().unwrap().contains("2 part files"));
    let msg = inbox(&env, "second")
        .into_iter()
        .find(|m| m["kind"] == "check")
        .expect("a message with the merged check's output");
    assert!(msg["text"]
        .as_str()
        .unwrap()
        .contains("merged onto the current base"));
    assert_eq!(lands_on_main(&env, "second"), 0);
}

#[test]
fn conflicting_lines_land_first_and_send_the_second_back_with_the_hunks() {
    let env = queue_project();
    std::fs::write(env.path("shared.txt"), "one\ntwo\nthree\n").unwrap();
    git(&env.root, &["add", "shared.txt"]);
    git(&env.root, &["commit", "-qm", "shared file"]);
    env.set_config(&[("workspace.land_rounds", "1")]);
    let edit = |word: &str| {
        format!(
            "sed -i 's/two/{word}/' shared.txt && git commit -qam '{word}' && sleep 0.3 && wg done \"$WG_TASK_ID\""
        )
    };
    add_sh(&env, "left", &edit("LEFT"), &["--priority", "2"]);
    add_sh(
        &env,
        "right",
        &(String::from("sleep 0.5 && ") + &edit("RIGHT")),
        &[],
    );
    let c = Coordinator::start(&env, &[]);
    wait_until!(
        Duration::from_secs(90),
        || show(&env, "right")["status"] == "needs-input",
        "{}",
        env.coordinator_log()
    );
    drop(c);
    assert_eq!(rev(&env.root, "main"), landed_commit(&env, "left"));
    let msg = inbox(&env, "right")
        .into_iter()
        .find(|m| m["kind"] == "conflict")
        .expect("a conflict message");
    let text = msg["text"].as_str().unwrap();
    assert!(text.contains("shared.txt"), "{text}");
    assert!(
        text.contains("<<<<<<<") && text.contains("LEFT") && text.contains("RIGHT"),
        "{text}"
    );
    assert!(text.contains("git merge main"), "{text}");
}

fn queue_state(env: &TestEnv) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(env.wg_dir().join("service/queue.json")).unwrap_or_default();
    let q: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    q["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["task"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Two tasks into the queue; the coordinator is killed (-9) once the queue file shows
/// `state` for one of them, then a new one runs to the end: each task is on main exactly once.
fn killed_while(env: &TestEnv, state: &str) {
    add_writer(env, "k1", "k1.part", "k1", &[]);
    add_writer(env, "k2", "k2.part", "k2", &[]);
    let mut c = Coordinator::start(env, &[]);
    wait_until!(
        Duration::from_secs(60),
        || queue_state(env).iter().any(|(_, s)| s == state),
        "never {state}: {:?}\n{}",
        queue_state(env),
        env.coordinator_log()
    );
    // `wg queue` lists it: position, task, state (and the check running on the merged result).
    let listed = env.wg(&["queue"]).ok().stdout;
    assert!(
        listed.contains(" 1. k") && listed.contains(state),
        "{listed}"
    );
    if state == "checking" {
        assert!(listed.contains("running: "), "{listed}");
    }
    c.kill9();
    let before = rev(&env.root, "main");
    let out = Coordinator::start(env, &["--until-done"]).wait(Duration::from_secs(120));
    assert_eq!(out.code, 0, "{out}");
    // The restart resumed the entry where the queue file left it.
    let log = env.coordinator_log();
    let restart = log.rfind(" started pid=").unwrap();
    assert!(log[restart..].contains(&format!("({state})")), "{log}");
    for id in ["k1", "k2"] {
        assert_eq!(show(env, id)["status"], "done", "{}", env.coordinator_log());
        assert_eq!(lands_on_main(env, id), 1, "{id}: {}", env.coordinator_log());
        assert!(git(&env.root, &["ls-tree", "-r", "--name-only", "main"])
            .contains(&format!("{id}.part")));
    }
    // What landed before the kill stays; main only moved forward.
    assert!(git(&env.root, &["merge-base", "--is-ancestor", &before, "main"]).is_empty());
    assert!(queue_state(env).is_empty());
    assert_eq!(
        git(&env.root, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1,
        "the scratch worktrees are gone"
    );
}

#[test]
fn a_coordinator_killed_in_the_middle_of_a_merged_check_lands_each_task_once() {
    let env = queue_project_with(
        r#"["sh test.sh", "if [ \"$WG_CHECK_STAGE\" = merged ]; then sleep 2; fi"]"#,
    );
    killed_while(&env, "checking");
}

#[test]
fn a_coordinator_killed_in_the_middle_of_a_merge_lands_each_task_once() {
    let env = queue_project();
    // git runs this hook inside `git merge`, before the merge commit: the merge takes 2 s.
    let hook = env.root.join(".git/hooks/pre-merge-commit");
    std::fs::write(&hook, "#!/bin/sh\nsleep 2\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    killed_while(&env, "merging");
}

/// The agent of task `right`, as the stub plays it: its first turn changes line two and says
/// done; once the inbox carries the conflict, it merges main, keeps both words, commits the
/// merge and says done again. Every turn ends with a short reply after the command's output.
struct Resolver;

const FIRST_ROUND: &str = "sleep 2 && sed -i 's/two/RIGHT/' shared.txt && git commit -qam RIGHT && wg done \"$WG_TASK_ID\"";
const RESOLVE: &str = "git merge main >/dev/null 2>&1; printf 'one\\nLEFT RIGHT\\nthree\\n' > shared.txt && git add shared.txt && git commit -qm 'merge main, keep both' && wg done \"$WG_TASK_ID\"";

impl wiremock::Respond for Resolver {
    fn respond(&self, r: &wiremock::Request) -> wiremock::ResponseTemplate {
        use crate::common::stub::{message, sse_response};
        let body = String::from_utf8_lossy(&r.body);
        if body.contains("function_call_output") {
            return sse_response(&[message("done")]);
        }
        let cmd = if body.contains("Merge conflict") {
            RESOLVE
        } else {
            FIRST_ROUND
        };
        let args = serde_json::json!({"cmd": cmd}).to_string();
        sse_response(&[
            serde_json::json!({"type": "function_call", "status": "completed",
            "id": "fc_1", "name": "exec_command", "arguments": args, "call_id": "call_1"}),
        ])
    }
}

/// Two tasks change the same line: `left` lands, `right` goes back to its agent (the real
/// codex against a stub) with the conflict, the agent merges main and resolves it, and
/// `right` lands on the next round.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_resolves_the_conflict_it_is_sent_and_lands_next_round() {
    use wiremock::matchers::{method, path};
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(Resolver)
        .mount(&server)
        .await;
    let codex = crate::common::real_codex().expect("the real codex");
    let mut env = repo_project(TestEnv::bare_outside_tmp());
    std::fs::write(env.path("shared.txt"), "one\ntwo\nthree\n").unwrap();
    git(&env.root, &["add", "shared.txt"]);
    git(&env.root, &["commit", "-qm", "shared file"]);
    let url = format!("{}/v1", server.uri());
    env.set_config(&[
        ("workspace.merge", "queue"),
        ("model", "qwen3-coder"),
        ("endpoint.url", url.as_str()),
        ("codex.binary", codex.to_str().unwrap()),
        ("handler.request_max_retries", "0"),
        ("handler.stream_max_retries", "0"),
        ("handler.first_output_timeout", "30s"),
    ]);
    append_config(
        &env,
        "[checks]\ncommands = [\"grep -q RIGHT shared.txt || grep -q LEFT shared.txt\"]\n",
    );
    env.set_env("WG_API_KEY", crate::common::stub::KEY);
    add_sh(
        &env,
        "left",
        "sed -i 's/two/LEFT/' shared.txt && git commit -qam LEFT && wg done \"$WG_TASK_ID\"",
        &["--priority", "2"],
    );
    env.wg(&["add", "Change line two", "--id", "right", "-x", "codex"])
        .ok();
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(180));
    assert_eq!(out.code, 0, "{out}");
    let log = env.coordinator_log();
    assert_eq!(show(&env, "right")["status"], "done", "{log}");
    assert!(
        log.contains("back task=right -> open: merge conflict"),
        "{log}"
    );
    // The agent's second turn was sent the conflict: the file and the hunks.
    let bodies: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    let sent = bodies
        .iter()
        .find(|b| b.contains("Merge conflict"))
        .expect("the conflict reached the agent");
    assert!(
        sent.contains("shared.txt") && sent.contains("<<<<<<<"),
        "{sent}"
    );
    // Both landed, once each; main holds the resolution.
    assert_eq!(lands_on_main(&env, "left"), 1);
    assert_eq!(lands_on_main(&env, "right"), 1);
    assert_eq!(rev(&env.root, "main"), landed_commit(&env, "right"));
    assert_eq!(
        git(&env.root, &["show", "main:shared.txt"]),
        "one\nLEFT RIGHT\nthree\n"
    );
    assert_eq!(show(&env, "right")["landing"]["land_rounds"], 1);
}

/// An evaluator endpoint that gives every task full marks.
async fn perfect_evaluator() -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    let server = wiremock::MockServer::start().await;
    let scores: serde_json::Map<String, Value> = [
        "correctness",
        "completeness",
        "constraint_fidelity",
        "intent_fidelity",
        "style",
        "downstream_usability",
        "efficiency",
    ]
    .iter()
    .map(|d| (d.to_string(), serde_json::json!(1.0)))
    .collect();
    let verdict = serde_json::json!({"scores": scores, "reasons": {}, "notes": "looks great"});
    wiremock::Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "r1", "object": "response", "status": "completed",
            "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": verdict.to_string()}]}],
            "usage": {"input_tokens": 10, "output_tokens": 5}
        })))
        .mount(&server)
        .await;
    server
}

/// The evaluation gate sees wg's own checks: a task whose last checks failed is rejected
/// whatever the evaluator scores it, and the failure is in the evidence it was sent.
#[tokio::test(flavor = "multi_thread")]
async fn the_gate_rejects_work_whose_checks_fail_even_at_a_perfect_score() {
    let server = perfect_evaluator().await;
    let mut env = project();
    let url = format!("{}/v1", server.uri());
    env.set_config(&[("endpoint.url", url.as_str()), ("model", "qwen3-coder")]);
    env.set_env("WG_API_KEY", crate::common::stub::KEY);
    append_config(
        &env,
        "[checks]\ncommands = [\"echo 'assertion failed: 2 + 2 == 5'; exit 1\"]\nmax_rounds = 1\n",
    );
    add_sh(
        &env,
        "claims",
        "echo 'all tests pass' && wg done \"$WG_TASK_ID\"",
        &[],
    );
    let c = Coordinator::start(&env, &[]);
    wait_until!(Duration::from_secs(60), || show(&env, "claims")["status"]
        == "needs-input");
    drop(c);
    // A person closes it anyway; the gate still refuses it.
    env.wg(&["done", "claims"]).ok();
    let e = env
        .wg(&["evaluate", "claims", "--apply", "--json"])
        .ok()
        .json();
    assert_eq!(e["decision"], "reject", "{e}");
    assert_eq!(show(&env, "claims")["status"], "open");
    let sent = server.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&sent.last().unwrap().body).to_string();
    assert!(body.contains("Checks wg ran itself"), "{body}");
    assert!(body.contains("assertion failed: 2 + 2 == 5"), "{body}");
    assert!(
        body.contains("that wg ran itself failed (exit 1)"),
        "{body}"
    );
}

/// `workspace.land_batch`: tasks waiting in the queue land together (merged in turn, checked
/// once); a batch whose check fails lands its tasks one by one, which lands the good ones and
/// sends the culprit back.
#[test]
fn a_batch_lands_together_and_a_failing_one_finds_its_culprit() {
    // `poison` breaks only the merged check; the last command keeps a landing busy for a
    // second, so the tasks that finish meanwhile queue up behind it.
    let env = queue_project_with(
        r#"["sh test.sh", "[ \"$WG_CHECK_STAGE\" = task ] || ! grep -l poison *.part", "[ \"$WG_CHECK_STAGE\" = task ] || sleep 1"]"#,
    );
    env.set_config(&[
        ("workspace.land_batch", "8"),
        ("workspace.land_rounds", "1"),
        ("coordinator.max_agents", "5"),
    ]);
    add_writer(&env, "p1", "p1.part", "p1", &["--priority", "2"]);
    for id in ["p2", "p3", "p4"] {
        add_sh(
            &env,
            id,
            &format!("sleep 0.3 && echo {id} > {id}.part && git add . && git commit -qm {id} && wg done \"$WG_TASK_ID\""),
            &[],
        );
    }
    add_sh(
        &env,
        "px",
        "sleep 0.3 && echo poison > px.part && git add . && git commit -qm px && wg done \"$WG_TASK_ID\"",
        &[],
    );
    let c = Coordinator::start(&env, &[]);
    wait_until!(
        Duration::from_secs(120),
        || show(&env, "px")["status"] == "needs-input"
            && ["p1", "p2", "p3", "p4"]
                .iter()
                .all(|id| show(&env, id)["landing"]["stage"] == "landed"),
        "{}",
        env.coordinator_log()
    );
    drop(c);
    for id in ["p1", "p2", "p3", "p4"] {
        assert_eq!(lands_on_main(&env, id), 1, "{id}");
    }
    assert_eq!(lands_on_main(&env, "px"), 0);
    let log = env.coordinator_log();
    // px was in a batch (ids joined by commas) that failed, then landed alone and went back.
    let batch = log
        .lines()
        .find(|l| l.contains(" land task=") && l.contains(',') && l.contains("px"))
        .unwrap_or_else(|| panic!("no batch with px:\n{log}"));
    assert!(
        batch.contains("p2") || batch.contains("p3") || batch.contains("p4"),
        "{batch}"
    );
    assert!(
        log.contains("back task=px -> needs-input: check failed on the merged result"),
        "{log}"
    );
}

/// A dependent of a task that went through the queue starts from a base that contains what
/// it landed; the landing is announced on the webhook with its commit.
#[test]
fn a_dependent_starts_from_its_dependency_landed_and_the_webhook_hears_of_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(wiremock::MockServer::start());
    rt.block_on(
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(wiremock::ResponseTemplate::new(200))
            .mount(&server),
    );
    let env = queue_project();
    let hook = format!("{}/hook", server.uri());
    env.set_config(&[("notify.url", hook.as_str())]);
    add_writer(&env, "base", "base.part", "base", &[]);
    add_sh(
        &env,
        "builds-on",
        "test -f base.part && echo more > more.part && git add . && git commit -qm more && wg done \"$WG_TASK_ID\"",
        &["--after", "base"],
    );
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(90));
    assert_eq!(out.code, 0, "{out}");
    let landed = landed_commit(&env, "base");
    assert_eq!(show(&env, "builds-on")["base_commit"], landed.as_str());
    assert_eq!(lands_on_main(&env, "builds-on"), 1);
    let bodies: Vec<Value> = rt
        .block_on(server.received_requests())
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let event = bodies
        .iter()
        .find(|b| b["task"] == "base" && b["status"] == "landed")
        .unwrap_or_else(|| panic!("no landed event: {bodies:?}"));
    assert_eq!(event["workspace"]["landed_commit"], landed.as_str());
    assert_eq!(event["workspace"]["base"], "main");
}

/// `land_by = "rebase"`: the task's commits are replayed onto the tip; main stays linear.
#[test]
fn rebase_lands_a_linear_history() {
    let env = queue_project();
    env.set_config(&[("workspace.land_by", "rebase")]);
    add_writer(&env, "r1", "r1.part", "r1", &["--priority", "2"]);
    add_sh(
        &env,
        "r2",
        "sleep 0.5 && echo r2 > r2.part && git add . && git commit -qm 'write r2.part' && wg done \"$WG_TASK_ID\"",
        &[],
    );
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(90));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        git(&env.root, &["rev-list", "--merges", "--count", "main"]).trim(),
        "0"
    );
    let subjects = git(&env.root, &["log", "--format=%s", "main"]);
    assert_eq!(subjects.matches("write r1.part").count(), 1, "{subjects}");
    assert_eq!(subjects.matches("write r2.part").count(), 1, "{subjects}");
    let last = [landed_commit(&env, "r1"), landed_commit(&env, "r2")];
    assert!(last.contains(&rev(&env.root, "main")));
    let recs = checks_of(&env, "r2");
    assert!(recs
        .iter()
        .any(|r| r["stage"] == "merged" && r["passed"] == true));
}

/// With the gate on, a task is checked, then evaluated, then queued: it lands only once
/// accepted, and its dependent waits for the landing.
#[tokio::test(flavor = "multi_thread")]
async fn checks_then_the_gate_then_the_queue() {
    let server = perfect_evaluator().await;
    let mut env = queue_project();
    let url = format!("{}/v1", server.uri());
    env.set_config(&[
        ("endpoint.url", url.as_str()),
        ("model", "qwen3-coder"),
        ("evaluate.auto", "true"),
    ]);
    env.set_env("WG_API_KEY", crate::common::stub::KEY);
    add_writer(&env, "gated", "gated.part", "gated", &[]);
    add_sh(&env, "next", "test -f gated.part", &["--after", "gated"]);
    let out = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(90));
    assert_eq!(out.code, 0, "{out}");
    let log = env.coordinator_log();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{log}"))
    };
    assert!(
        at("checks task=gated: passed") < at("evaluating task=gated"),
        "{log}"
    );
    // The verdict enters the queue as it is recorded; the coordinator's "evaluated" line may
    // follow the queue's own lines, so the order is read from the queue's side.
    assert!(
        at("evaluating task=gated") < at("queue task=gated: entered"),
        "{log}"
    );
    assert!(at("landed task=gated") < at("start task=next"), "{log}");
    assert_eq!(lands_on_main(&env, "gated"), 1);
    assert_eq!(show(&env, "next")["status"], "done");
}
