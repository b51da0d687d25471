//! Landing finished work (issue 24) with real git: checks wg runs itself after `wg done`, the
//! merge queue onto the base branch, conflicts and merged-check failures sent back, and a
//! coordinator killed in the middle. Agents are `shell` tasks where no judgement is needed;
//! the conflict that an agent must resolve is resolved by the real codex against a stub.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{wait_until, TestEnv};
use crate::coordinator::Coordinator;
use crate::workspace::{add_sh, git, project, show, task_log};

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
        "[checks]\ncommands = [\"sh test.sh\"]\ntimeout = \"60s\"\n",
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
    assert!(
        wait_until(Duration::from_secs(60), || show(&env, "never")["status"]
            == "needs-input"),
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
    assert!(
        wait_until(Duration::from_secs(90), || show(&env, "second")["status"]
            == "needs-input"),
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
    assert!(
        wait_until(Duration::from_secs(90), || show(&env, "right")["status"]
            == "needs-input"),
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
