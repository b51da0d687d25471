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
