//! A store written by an earlier wg (`tests/fixtures/store-main/`, made by the main branch
//! named in its `MAIN_COMMIT`: a handler run with replies, an unreachable endpoint's error
//! reply, a task done and one failed by hand) is read as it was written. Its `.wg/` is kept
//! as `wg-dir/`, so the repository holds no live-looking store; tests copy it into a `.wg/`.

use std::path::Path;

use crate::common::TestEnv;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn old_store() -> TestEnv {
    let env = TestEnv::bare();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-main/wg-dir");
    copy_dir(&fixture, &env.wg_dir());
    env
}

#[test]
fn tasks_and_conversations_of_an_earlier_store_read_unchanged() {
    let env = old_store();
    let tasks = env.tasks();
    let ids: Vec<&str> = tasks.keys().map(String::as_str).collect();
    assert_eq!(ids, ["after", "broken", "hello", "manual"]);
    assert_eq!(tasks["broken"]["status"], "failed");
    assert_eq!(tasks["broken"]["failure_reason"], "gave up");
    assert_eq!(tasks["hello"]["status"], "waiting");
    assert_eq!(tasks["hello"]["assigned"], "manual");

    let show = env.wg(&["show", "broken", "--json"]).ok().json();
    assert_eq!(show["last_error"]["kind"], "unreachable", "{show}");
    assert_eq!(show["tokens"]["turns"][0]["role"], "error", "{show}");

    let t = env.wg(&["transcript", "hello"]).ok().stdout;
    assert_eq!(t.matches("fake reply").count(), 2, "{t}");
    assert!(t.contains("and again"), "{t}");
}

#[test]
fn retry_by_error_kind_finds_the_kind_an_earlier_wg_stored() {
    let env = old_store();
    let r = env
        .wg(&["retry", "--failed", "--error-kind", "rate-limited"])
        .ok();
    assert!(r.stdout.contains("no failed task matches"), "{}", r.stdout);
    let r = env
        .wg(&["retry", "--failed", "--error-kind", "unreachable"])
        .ok();
    assert!(r.stdout.contains("broken"), "{}", r.stdout);
    assert_eq!(env.tasks()["broken"]["status"], "open");
    let bad = env.wg(&["retry", "--failed", "--error-kind", "nonsense"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("unreachable"), "{}", bad.stderr);
}
