//! `.wg/` kept in git: `wg init` gives `graph.jsonl` the union merge, a merge of two branches
//! that both added and changed tasks needs no hand work, every command reads the result, and
//! `wg doctor --fix` compacts it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{system_tool, TestEnv};

fn git(env: &TestEnv, args: &[&str]) -> String {
    let out = Command::new(system_tool("git"))
        .arg("-C")
        .arg(&env.root)
        .args(args)
        .env("HOME", &env.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn statuses(env: &TestEnv) -> Vec<(String, String, String)> {
    let list = env.wg(&["list", "--json"]).ok().json();
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
            (s("id"), s("status"), s("title"))
        })
        .collect()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

/// `base` with two tasks; branch `a` adds two and marks `shared` done; branch `b` adds one,
/// fails `shared` and renames `other`. Returns to `b`.
fn two_branches(env: &TestEnv) {
    git(env, &["init", "-q", "-b", "main"]);
    env.wg(&["add", "Shared"]).ok();
    env.wg(&["add", "Other"]).ok();
    git(env, &["add", "-A"]);
    git(env, &["commit", "-qm", "base"]);
    git(env, &["checkout", "-qb", "a"]);
    env.wg(&["add", "From a"]).ok();
    env.wg(&["add", "Also from a", "--after", "other"]).ok();
    env.wg(&["done", "shared"]).ok();
    git(env, &["commit", "-qam", "a"]);
    git(env, &["checkout", "-q", "main"]);
    git(env, &["checkout", "-qb", "b"]);
    env.wg(&["add", "From b"]).ok();
    env.wg(&["fail", "shared", "--reason", "b says no"]).ok();
    env.wg(&["edit", "other", "--title", "Other, renamed on b"])
        .ok();
    git(env, &["add", "-A"]);
    git(env, &["commit", "-qm", "b"]);
}

#[test]
fn init_writes_the_union_merge_for_the_logs() {
    let env = TestEnv::new();
    let attrs = std::fs::read_to_string(env.wg_dir().join(".gitattributes")).unwrap();
    for l in [
        "graph.jsonl merge=union",
        "archive.jsonl merge=union",
        "tasks/*/log.jsonl merge=union",
    ] {
        assert!(attrs.lines().any(|x| x == l), "no `{l}` in:\n{attrs}");
    }
}

#[test]
fn a_union_merge_keeps_every_task_and_every_command_works() {
    let env = TestEnv::new();
    two_branches(&env);
    git(&env, &["merge", "-q", "a", "-m", "merge a"]);
    assert_eq!(git(&env, &["status", "--porcelain"]), "", "a clean merge");

    let have = statuses(&env);
    let ids: Vec<&str> = have.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(ids, ["also-from-a", "from-a", "from-b", "other", "shared"]);
    // Both branches changed `shared`: the branch merged in comes later in the file and wins;
    // a change only one branch made is kept.
    let shared = have.iter().find(|t| t.0 == "shared").unwrap();
    assert_eq!(shared.1, "done");
    let other = have.iter().find(|t| t.0 == "other").unwrap();
    assert_eq!(other.2, "Other, renamed on b");

    // Readers and writers on the merged file.
    let ready = env.wg(&["ready", "--json"]).ok().json();
    let mut ready: Vec<&str> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    ready.sort();
    assert_eq!(ready, ["from-a", "from-b", "other"]);
    env.wg(&["status"]).ok();
    env.wg(&["show", "also-from-a"]).ok();
    env.wg(&["viz"]).ok();
    let top = env.wg(&["top", "--once"]).ok();
    assert!(top.stdout.contains("done        shared"), "{top}");
    env.wg(&["add", "After the merge", "--after", "from-a"])
        .ok();
    env.wg(&["done", "other"]).ok();
    let ready = env.wg(&["ready", "--json"]).ok().json();
    assert!(ready
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == "also-from-a"));

    // doctor --fix compacts: one line per task, same tasks.
    let graph = env.wg_dir().join("graph.jsonl");
    let before = statuses(&env);
    assert!(lines(&graph) > before.len());
    let doctor = env.wg(&["doctor", "--fix", "--json"]);
    let checks: Value = serde_json::from_str(&doctor.stdout).unwrap();
    let store = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "store")
        .unwrap_or_else(|| panic!("no store check:\n{doctor}"));
    assert!(
        store["detail"].as_str().unwrap().contains("compacted away"),
        "{doctor}"
    );
    assert_eq!(lines(&graph), before.len());
    assert_eq!(statuses(&env), before);
    let again = env.wg(&["doctor", "--json"]);
    assert!(
        !again.stdout.contains("\"store\""),
        "nothing to say about a compacted store: {again}"
    );
}

#[test]
fn the_merge_direction_decides_a_task_both_branches_changed() {
    let env = TestEnv::new();
    two_branches(&env);
    // Now merge b into a: b's record of `shared` comes later, so b's failure wins.
    git(&env, &["checkout", "-q", "a"]);
    git(&env, &["merge", "-q", "b", "-m", "merge b"]);
    let have = statuses(&env);
    assert_eq!(have.len(), 5);
    let shared = have.iter().find(|t| t.0 == "shared").unwrap();
    assert_eq!(shared.1, "failed");
}

#[test]
fn doctor_writes_a_missing_gitattributes_in_a_git_project() {
    let env = TestEnv::new();
    git(&env, &["init", "-q"]);
    std::fs::remove_file(env.wg_dir().join(".gitattributes")).unwrap();
    let run = env.wg(&["doctor", "--json"]);
    assert!(
        run.stdout.contains("no union merge for .wg/graph.jsonl"),
        "{run}"
    );
    let run = env.wg(&["doctor", "--fix", "--json"]);
    assert!(run.stdout.contains("wrote .wg/.gitattributes"), "{run}");
    let attrs = std::fs::read_to_string(env.wg_dir().join(".gitattributes")).unwrap();
    assert!(attrs.contains("graph.jsonl merge=union"));
}

/// `base` holds `v` (its last line); branch `drop` removes it; branch `grow` adds `w` after
/// it (a line right after `v`'s: the two changes meet, and the union keeps both sides).
/// Leaves `grow` checked out.
fn removal_and_addition(env: &TestEnv) {
    git(env, &["init", "-q", "-b", "main"]);
    env.wg(&["add", "Keeper", "--id", "k"]).ok();
    env.wg(&["add", "Vanishing", "--id", "v"]).ok();
    git(env, &["add", "-A"]);
    git(env, &["commit", "-qm", "base"]);
    git(env, &["checkout", "-qb", "drop"]);
    env.wg(&["rm", "v"]).ok();
    git(env, &["commit", "-qam", "rm v"]);
    git(env, &["checkout", "-q", "main"]);
    git(env, &["checkout", "-qb", "grow"]);
    env.wg(&["add", "Waiter", "--id", "w", "--after", "v"]).ok();
    git(env, &["add", "-A"]);
    git(env, &["commit", "-qm", "w after v"]);
}

fn ids(env: &TestEnv) -> Vec<String> {
    statuses(env).into_iter().map(|t| t.0).collect()
}

fn ready_ids(env: &TestEnv) -> Vec<String> {
    let ready = env.wg(&["ready", "--json"]).ok().json();
    let mut ids: Vec<String> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// What both merge directions must give: `v` stays removed, `w` is held and says why.
fn the_removal_held(env: &TestEnv) {
    assert_eq!(git(env, &["status", "--porcelain"]), "", "a clean merge");
    assert_eq!(ids(env), ["k", "w"], "v came back");
    assert_eq!(ready_ids(env), ["k"], "w must wait: its dependency is gone");
    let shown = env.wg(&["show", "w", "--json"]).ok().json();
    assert_eq!(shown["missing_after"], serde_json::json!(["v"]));
    assert_eq!(shown["ready"], false);
    let human = env.wg(&["show", "w"]).ok().stdout;
    assert!(human.contains("waits for v, not in the graph"), "{human}");
    let doctor = env.wg(&["doctor"]).code(1);
    assert!(
        doctor
            .stdout
            .contains("task w waits for v, which is not in the graph"),
        "{doctor}"
    );
    // The removal is kept through a compaction, and a new `v` is a new task.
    env.wg(&["doctor", "--fix"]).code(1);
    assert_eq!(ids(env), ["k", "w"]);
    env.wg(&["add", "Vanishing again", "--id", "v"]).ok();
    assert_eq!(ids(env), ["k", "v", "w"]);
    env.wg(&["done", "v"]).ok();
    assert_eq!(ready_ids(env), ["k", "w"]);
}

#[test]
fn a_removal_survives_a_merge_with_a_branch_that_added_a_dependent() {
    let env = TestEnv::new();
    removal_and_addition(&env);
    git(&env, &["merge", "-q", "drop", "-m", "merge drop"]);
    the_removal_held(&env);
}

#[test]
fn a_removal_survives_the_merge_in_the_other_direction() {
    let env = TestEnv::new();
    removal_and_addition(&env);
    git(&env, &["checkout", "-q", "drop"]);
    git(&env, &["merge", "-q", "grow", "-m", "merge grow"]);
    the_removal_held(&env);
}

/// Two branches each add one edge; merged, `a` and `b` wait for each other. Branch `x` also
/// marks `a` done by hand, so `b`'s only dependency is done: only the cycle holds it.
#[test]
fn a_merge_that_makes_a_cycle_is_named_and_its_tasks_held() {
    let env = TestEnv::new();
    env.set_config(&[("executor", "mock"), ("executors.mock.turn_ms", "0")]);
    git(&env, &["init", "-q", "-b", "main"]);
    for id in ["a", "b", "c"] {
        env.wg(&["add", id, "--id", id]).ok();
    }
    git(&env, &["add", "-A"]);
    git(&env, &["commit", "-qm", "base"]);
    git(&env, &["checkout", "-qb", "x"]);
    env.wg(&["edit", "a", "--add-after", "b"]).ok();
    env.wg(&["done", "a"]).ok();
    git(&env, &["add", "-A"]);
    git(&env, &["commit", "-qm", "a after b"]);
    git(&env, &["checkout", "-q", "main"]);
    git(&env, &["checkout", "-qb", "y"]);
    env.wg(&["edit", "b", "--add-after", "a"]).ok();
    git(&env, &["add", "-A"]);
    git(&env, &["commit", "-qm", "b after a"]);
    git(&env, &["merge", "-q", "x", "-m", "merge x"]);
    assert_eq!(git(&env, &["status", "--porcelain"]), "", "a clean merge");

    // Any command that loads the graph names the cycle.
    let list = env.wg(&["list"]).ok();
    assert!(list.stderr.contains("dependency cycle: a, b"), "{list}");
    let doctor = env.wg(&["doctor"]).code(1);
    assert!(doctor.stdout.contains("dependency cycle: a, b"), "{doctor}");
    let shown = env.wg(&["show", "b", "--json"]).ok().json();
    assert_eq!(shown["cycle"], serde_json::json!(["a", "b"]));
    assert_eq!(shown["ready"], false);

    let run = env.wg(&["service", "start", "--until-done"]).code(9);
    assert!(run.stderr.contains("dependency cycle: a, b"), "{run}");
    let tasks = env.tasks();
    assert_eq!(tasks["c"]["status"], "done");
    assert_eq!(
        tasks["b"]["status"], "open",
        "b is on the cycle: it must not run"
    );
}
