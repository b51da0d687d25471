//! A disk that fills at the worst moment: between a status change's log record and its graph
//! record, between the graph record and the index, and in the middle of a handler's turn.
//! After space is freed every acknowledged change is there, every file reads, and nothing
//! reported as failed was applied.

use serde_json::{json, Value};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::common::disk::SmallDisk;
use crate::common::project::{assert_all_lines_whole, codex_project, log_events, outbox, status};
use crate::common::stub::{message, responses_stub, sse_response};
use crate::common::{real_codex, to_run, TestEnv};

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

/// Length of the note each turn logs: more than a full disk's page slack takes.
const NOTE: usize = 6000;

/// Asks for a long `wg log` note and then `wg done`, the first time 2 s late (the test fills
/// the disk meanwhile); answers the tool's output with a message.
struct LateFirst(std::sync::atomic::AtomicUsize);
impl Respond for LateFirst {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if String::from_utf8_lossy(&r.body).contains("function_call_output") {
            return sse_response(&[message("reported")]);
        }
        let cmd = format!(
            "wg log \"$WG_TASK_ID\" \"$(head -c {NOTE} /dev/zero | tr '\\0' n)\" && wg done \"$WG_TASK_ID\""
        );
        let args = json!({ "cmd": cmd }).to_string();
        let reply = sse_response(&[json!({"type": "function_call", "status": "completed",
            "id": "fc_1", "name": "exec_command", "arguments": args, "call_id": "call_1"})]);
        if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            reply.set_delay(std::time::Duration::from_secs(2))
        } else {
            reply
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_turn_on_a_disk_that_fills_loses_nothing_acknowledged() {
    let server = responses_stub(LateFirst(Default::default())).await;
    let Some(codex) = real_codex() else {
        return;
    };
    let bare = TestEnv::bare_outside_tmp();
    let Some(disk) = SmallDisk::mount(&bare.root, "16m") else {
        return;
    };
    let env = codex_project(bare, &format!("{}/v1", server.uri()), &codex);
    env.wg(&["config", "set", "handler.stream_idle_timeout", "30s"])
        .ok();
    env.wg(&["add", "Work", "--id", "t"]).ok();
    env.wg(&["msg", "t", "an acknowledged message"]).ok();

    // The disk fills while the turn's model call is out; its `wg log` then finds it full.
    let mut handler = env
        .command(&["handler", "t"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut asked = false;
    for _ in 0..600 {
        if !server.received_requests().await.unwrap().is_empty() {
            asked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    if !asked {
        let _ = handler.kill();
        panic!("codex never asked the stub");
    }
    let filler = disk.fill();
    let first = to_run(handler.wait_with_output().unwrap());
    assert_ne!(first.code, 101, "{first}");
    if first.code != 0 {
        assert!(
            first.stderr.contains(".wg/") && first.stderr.contains("No space left on device"),
            "a failed turn names the path and the reason:\n{first}"
        );
    }
    std::fs::remove_file(filler).unwrap();
    assert_all_lines_whole(&env);
    // Whether or not the first turn's reply could be written, a message asks again.
    env.wg(&["msg", "t", "space is back: try again"]).ok();
    let second = env.wg(&["handler", "t"]).ok();
    assert_all_lines_whole(&env);
    assert_eq!(status(&env, "t"), "done", "{first}\n{second}");
    assert_eq!(done_records(&env, "t"), 1);

    // What each `wg log` told the agent, from the tool outputs the stub was sent: a note is
    // in the log exactly as often as one was acknowledged.
    let mut told = Vec::new();
    for r in server.received_requests().await.unwrap() {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let outputs: Vec<String> = body["input"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "function_call_output")
            .map(|i| i["output"].to_string())
            .collect();
        // A turn replays earlier turns as text: a tool output is only in its own turn.
        told.extend(outputs.last().cloned());
    }
    let refused = told
        .iter()
        .filter(|o| o.contains("No space left on device"))
        .count();
    assert_eq!(told.len(), 2, "one tool call per turn: {told:?}");
    assert_eq!(refused, 1, "the full disk refused the first note: {told:?}");
    let notes = log_events(&env, "t")
        .iter()
        .filter(|e| e["text"].as_str().is_some_and(|t| t.len() == NOTE))
        .count();
    assert_eq!(notes, told.len() - refused, "{told:?}");
    // Every message answered, the transcript reads.
    let inbox = std::fs::read_to_string(env.path(".wg/tasks/t/inbox.jsonl")).unwrap();
    let last = outbox(&env, "t").last().cloned().unwrap();
    assert_eq!(last["in_reply_to"], inbox.lines().count() as u64, "{inbox}");
    let transcript = env.wg(&["transcript", "t"]).ok();
    assert!(
        transcript.stdout.contains("an acknowledged message"),
        "{transcript}"
    );
    drop(disk);
}
