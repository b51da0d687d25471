//! A disk that fills at the worst moment: between a status change's log record and its graph
//! record, between the graph record and the index, and in the middle of a handler's turn.
//! After space is freed every acknowledged change is there, every file reads, and nothing
//! reported as failed was applied.

use serde_json::{json, Value};

use crate::common::TestEnv;
use crate::faults::{assert_all_lines_whole, log_events, status, SmallDisk};

fn done_records(env: &TestEnv, id: &str) -> usize {
    log_events(env, id)
        .iter()
        .filter(|e| e["event"] == "status" && e["to"] == "done")
        .count()
}

fn graph_lines(env: &TestEnv) -> usize {
    std::fs::read_to_string(env.path(".wg/graph.jsonl"))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn done_is_one_unit_with_its_log_record_when_the_disk_fills() {
    let env = TestEnv::bare();
    let Some(disk) = SmallDisk::mount(&env.root, "2m") else {
        return;
    };
    env.wg(&["init", "-x", "mock"]).ok();
    // `t`'s record is large (its graph append needs pages its small log record does not);
    // 40 other tasks make a compacted graph larger still.
    let mut records: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("s{i}"), "title": "s", "description": "d".repeat(1500)}))
        .collect();
    records.push(json!({"id": "t", "title": "Big", "description": "b".repeat(20_000)}));
    let lines: Vec<String> = records.iter().map(Value::to_string).collect();
    env.wg_stdin(&["import", "-"], &(lines.join("\n") + "\n"))
        .ok();
    // Up to twice as many graph lines as live tasks: the next change compacts the graph.
    for i in 0..(82 - graph_lines(&env)) {
        env.wg(&["edit", "s0", "--title", &format!("s0 v{i}")]).ok();
    }
    assert_eq!(graph_lines(&env), 82, "the next change must compact");
    let filler = disk.fill();

    // Room for the log record, not for the graph record: the log record is taken back.
    disk.free(&filler, 2 * 4096);
    let r = env.wg(&["done", "t"]).code(74);
    assert!(
        r.stderr.contains(".wg/graph.jsonl") && r.stderr.contains("No space left on device"),
        "the error names the file that could not be written:\n{r}"
    );
    assert_eq!(status(&env, "t"), "open");
    assert_eq!(
        done_records(&env, "t"),
        0,
        "a done that failed left a log record"
    );
    assert_all_lines_whole(&env);

    // Room for both records, not for the compacted graph: the change stands and says so.
    disk.free(&filler, 8 * 4096);
    let r = env.wg(&["done", "t"]);
    assert_eq!(r.code, 0, "an applied done reported as failed:\n{r}");
    assert!(r.stderr.contains("the change is saved"), "{r}");
    assert_eq!(status(&env, "t"), "done");
    assert_eq!(done_records(&env, "t"), 1);
    assert_all_lines_whole(&env);

    // Space back: the graph reads whole and the next change compacts it.
    std::fs::remove_file(filler).unwrap();
    env.wg(&["edit", "s1", "--title", "after"]).ok();
    assert!(graph_lines(&env) <= 41, "compacted: {}", graph_lines(&env));
    assert_eq!(status(&env, "t"), "done");
    let list = env.wg(&["list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 41);
    drop(disk);
}
