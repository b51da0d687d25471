//! The task store through the binary: concurrent writers, SIGKILL at random moments,
//! compaction, unknown fields, and the derived index.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::project::ids;
use crate::common::{wg_bin, TestEnv};

fn graph_lines(env: &TestEnv) -> Vec<String> {
    std::fs::read_to_string(env.path(".wg/graph.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A tiny xorshift, seeded from the clock and printed, so a failing run can be replayed
/// with WG_TEST_SEED.
fn rng() -> impl FnMut() -> u64 {
    let mut x: u64 = std::env::var("WG_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("WG_TEST_SEED={x}");
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// 8 processes × 250 `wg add` at once, with `wg done` and `wg log` mixed in: exactly 2,000
/// tasks, and every change that was acknowledged (exit 0) is there.
#[test]
fn eight_concurrent_writers_lose_nothing() {
    const WRITERS: usize = 8;
    const ADDS: usize = 250;
    let env = TestEnv::new();
    let start = Instant::now();
    let results: Vec<(Vec<String>, Vec<String>, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let env = &env;
                s.spawn(move || {
                    let (mut added, mut done, mut logged) = (vec![], vec![], vec![]);
                    for i in 0..ADDS {
                        // Every 10th title is shared by all writers: derived ids must stay
                        // unique under contention.
                        let title = if i % 10 == 0 {
                            "Shared title".to_string()
                        } else {
                            format!("W{w} task {i}")
                        };
                        let r = env.wg(&["add", &title]).ok();
                        let id = r.stdout.trim().to_string();
                        added.push(id.clone());
                        if i % 25 == 1 {
                            env.wg(&["done", &id]).ok();
                            done.push(id.clone());
                        }
                        if i % 25 == 2 {
                            env.wg(&["log", &id, &format!("note from {w}")]).ok();
                            logged.push(id);
                        }
                    }
                    (added, done, logged)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("8 x 250 adds took {:?}", start.elapsed());
    let tasks = env.tasks();
    assert_eq!(tasks.len(), WRITERS * ADDS);
    let mut acked = BTreeSet::new();
    for (added, done, logged) in &results {
        for id in added {
            assert!(acked.insert(id.clone()), "id {id} handed out twice");
            assert!(tasks.contains_key(id), "acknowledged {id} is missing");
        }
        for id in done {
            assert_eq!(tasks[id]["status"], "done", "{id}");
        }
        for id in logged {
            let log =
                std::fs::read_to_string(env.path(&format!(".wg/tasks/{id}/log.jsonl"))).unwrap();
            assert!(log.contains("note from"), "{id}: {log}");
        }
    }
    assert_eq!(
        tasks.values().filter(|t| t["status"] == "done").count(),
        WRITERS * (ADDS / 25)
    );
    let st = env.wg(&["status", "--json"]).ok().json();
    assert_eq!(st["total"], 2000);
}

/// A writer loop killed with SIGKILL at 50 random moments: the store always opens and holds
/// every change acknowledged before the kill. The loop adds, marks done and edits, so kills
/// also land inside compactions.
#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_change() {
    let env = TestEnv::new();
    let mut next = rng();
    let mut acked_open: BTreeSet<String> = BTreeSet::new();
    let mut acked_done: BTreeSet<String> = BTreeSet::new();
    let script = r#"
i=0
while :; do
  i=$((i+1)); id="r$ROUND-$i"
  "$WG" add "Task $i" --id "$id" >/dev/null && echo "add $id" || exit 1
  if [ $((i % 2)) -eq 0 ]; then "$WG" done "$id" >/dev/null && echo "done $id" || exit 1; fi
  if [ $((i % 3)) -eq 0 ]; then "$WG" edit "$id" --priority 5 >/dev/null || exit 1; fi
done
"#;
    for round in 0..50 {
        let mut child = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(&env.root)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &env.home)
            .env("WG", wg_bin())
            .env("ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn writer loop");
        // The shell leads its own process group; killing the group kills the wg it runs.
        let pgid = child.id() as i32;
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // Wait for the first acknowledgement so every round writes something, then a random
        // extra 0–40 ms.
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        std::thread::sleep(Duration::from_micros(next() % 40_000));
        // SAFETY: plain syscall on a process group we created.
        let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
        assert_eq!(rc, 0);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        for line in first.lines().chain(rest.lines()) {
            match line.split_once(' ') {
                Some(("add", id)) => {
                    acked_open.insert(id.to_string());
                }
                Some(("done", id)) => {
                    acked_done.insert(id.to_string());
                }
                _ => panic!("unexpected output {line:?}; stderr: {stderr}"),
            }
        }
        // The store must open after every kill, and hold everything acknowledged so far.
        let tasks = env.tasks();
        for id in &acked_open {
            assert!(tasks.contains_key(id), "round {round}: lost {id}");
        }
        for id in &acked_done {
            assert_eq!(tasks[id]["status"], "done", "round {round}: {id}");
        }
    }
    // A writer after all that still works, and a full rebuild of the index agrees.
    env.wg(&["add", "After the storm"]).ok();
    std::fs::remove_file(env.path(".wg/graph.idx")).unwrap();
    env.wg(&["add", "Rebuilt", "--after", "after-the-storm"])
        .ok();
    assert!(ids(&env).len() >= acked_open.len() + 2);
}

#[test]
fn unknown_fields_survive_edit_done_and_compaction() {
    let env = TestEnv::new();
    let input = r#"{"title": "Keep", "id": "keep", "x_custom": {"nested": [1, 2]}, "zzz": "last"}
{"title": "Other", "id": "other"}
"#;
    env.wg_stdin(&["import", "-"], input).ok();
    env.wg(&["edit", "keep", "--title", "Kept"]).ok();
    env.wg(&["done", "keep"]).ok();
    env.wg(&["rm", "other"]).ok(); // rm rewrites the whole file
    let lines = graph_lines(&env);
    assert_eq!(lines.len(), 1, "compacted: {lines:?}");
    let rec: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(rec["x_custom"], serde_json::json!({"nested": [1, 2]}));
    assert_eq!(rec["zzz"], "last");
    assert_eq!(rec["title"], "Kept");
    assert_eq!(rec["status"], "done");
    let shown = env.wg(&["show", "keep", "--json"]).ok().json();
    assert_eq!(shown["zzz"], "last");
}

/// Writes the same records to two projects in different orders, with superseded lines in
/// between, then compacts both: the files come out byte-identical and sorted by id.
#[test]
fn compaction_is_deterministic_and_sorted() {
    let rec = |id: &str, status: &str| {
        format!(
            r#"{{"id":"{id}","title":"T {id}","status":"{status}","created":"2025-01-01T00:00:00.000Z","updated":"2025-01-01T00:00:00.000Z","extra_b":1,"extra_a":2}}"#
        )
    };
    let mut a = vec![];
    let mut b = vec![];
    for id in ["m", "c", "x", "a", "q"] {
        a.push(rec(id, "open"));
    }
    for id in ["q", "a", "x", "c", "m"] {
        b.push(rec(id, "failed"));
        b.push(rec(id, "open"));
    }
    let mut outs = vec![];
    for lines in [a, b] {
        let env = TestEnv::new();
        std::fs::write(env.path(".wg/graph.jsonl"), lines.join("\n") + "\n").unwrap();
        env.wg(&["add", "Temp", "--id", "temp"]).ok();
        env.wg(&["rm", "temp"]).ok();
        outs.push(std::fs::read(env.path(".wg/graph.jsonl")).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
    let text = String::from_utf8(outs[0].clone()).unwrap();
    let got: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, vec!["a", "c", "m", "q", "x"]);
    // Unknown fields are written in a stable (sorted) order too.
    assert!(
        text.lines()
            .all(|l| l.ends_with(r#""extra_a":2,"extra_b":1}"#)),
        "{text}"
    );
}

#[test]
fn many_changes_keep_the_log_compacted() {
    let env = TestEnv::new();
    env.wg(&["add", "A"]).ok();
    env.wg(&["add", "B"]).ok();
    for i in 0..150 {
        env.wg(&["edit", "a", "--priority", &i.to_string()]).ok();
    }
    let lines = graph_lines(&env).len();
    // Compaction keeps the file within about twice the live tasks (never below 64 lines).
    assert!(lines <= 65, "{lines} lines for 2 tasks");
    let t = env.wg(&["show", "a", "--json"]).ok().json();
    assert_eq!(t["priority"], 149);
}

#[test]
fn index_is_rebuilt_when_missing_damaged_or_stale() {
    let env = TestEnv::new();
    for t in ["A", "B", "C"] {
        env.wg(&["add", t]).ok();
    }
    let idx = env.path(".wg/graph.idx");

    // Missing.
    std::fs::remove_file(&idx).unwrap();
    env.wg(&["add", "X", "--id", "b"]).code(1);
    env.wg(&["add", "D", "--after", "c"]).ok();
    assert!(idx.is_file());

    // Damaged.
    std::fs::write(&idx, "garbage\n").unwrap();
    env.wg(&["add", "X", "--id", "d"]).code(1);
    env.wg(&["add", "E", "--after", "d"]).ok();

    // Stale: a task appended by hand is known to the next writer...
    let mut text = std::fs::read_to_string(env.path(".wg/graph.jsonl")).unwrap();
    text.push_str(r#"{"id":"hand","title":"By hand","status":"done","created":"t","updated":"t"}"#);
    text.push('\n');
    std::fs::write(env.path(".wg/graph.jsonl"), &text).unwrap();
    env.wg(&["add", "X", "--id", "hand"]).code(1);
    env.wg(&["add", "F", "--after", "hand"]).ok();
    assert_eq!(
        env.wg(&["show", "hand", "--json"]).ok().json()["status"],
        "done"
    );

    // ...and a task deleted by hand is gone for it, after a compaction too.
    env.wg(&["rm", "f"]).ok();
    let kept: Vec<String> = graph_lines(&env)
        .into_iter()
        .filter(|l| !l.contains(r#""id":"a""#))
        .collect();
    std::fs::write(env.path(".wg/graph.jsonl"), kept.join("\n") + "\n").unwrap();
    let r = env.wg(&["add", "G", "--after", "a"]).code(1);
    assert!(r.stderr.contains("no such task"), "{r}");
    env.wg(&["add", "A again", "--id", "a"]).ok();

    // Folding a long tail (an import of 300) keeps lookups right.
    let batch: String = (0..300)
        .map(|i| format!("{{\"title\": \"Bulk {i}\", \"id\": \"bulk-{i}\"}}\n"))
        .collect();
    env.wg_stdin(&["import", "-"], &batch).ok();
    env.wg(&["add", "X", "--id", "bulk-150"]).code(1);
    env.wg(&["add", "Y", "--after", "bulk-299", "--after", "hand"])
        .ok();
    env.wg(&["done", "bulk-7"]).ok();
    std::fs::remove_file(&idx).unwrap();
    env.wg(&["add", "X", "--id", "bulk-7"]).code(1);
    assert_eq!(
        env.wg(&["show", "bulk-7", "--json"]).ok().json()["status"],
        "done"
    );
    // a, b, c, d, e, hand, 300 bulk, y.
    assert_eq!(ids(&env).len(), 6 + 300 + 1);
}

/// `wg ready` answers from the sealed index when it can; it must say exactly what a full
/// parse says: archived dependencies, tail lines past the index, priorities, statuses.
#[test]
fn ready_from_the_index_matches_a_full_parse() {
    let env = TestEnv::new();
    let mut lines = String::new();
    for i in 0..400 {
        let after = if i % 4 == 0 {
            String::new()
        } else {
            format!(",\"after\":[\"t-{}\"]", i - 1)
        };
        let status = if i % 3 == 0 {
            ",\"status\":\"done\""
        } else {
            ""
        };
        lines.push_str(&format!(
            "{{\"title\":\"T {i}\",\"id\":\"t-{i}\"{after}{status},\"priority\":{}}}\n",
            i % 5
        ));
    }
    let _ = env.wg_stdin(&["import", "-"], &lines).ok();
    let _ = env.wg(&["archive"]).ok(); // done tasks move out; their dependents still wait on them
    for (i, open) in [1, 2, 5, 7, 10].into_iter().enumerate() {
        // Tail lines the index does not cover yet.
        let _ = env
            .wg(&["add", &format!("Late {i}"), "--after", "t-1"])
            .ok();
        let _ = env.wg(&["done", &format!("t-{open}")]).ok();
    }
    let mut traced = env.command(&["ready", "--json"]);
    traced.env("WG_LOG", "wg=debug");
    let run = crate::common::to_run(traced.output().unwrap());
    assert!(run.stderr.contains("from the sealed index"), "{run}");
    let from_index = run.json();
    std::fs::remove_file(env.wg_dir().join("graph.idx")).unwrap();
    let from_parse = env.wg(&["ready", "--json"]).ok().json();
    assert!(from_index.as_array().unwrap().len() > 50, "{from_index}");
    assert_eq!(from_index, from_parse);
}
