//! wg never follows a link it did not make: links planted by hand in `.wg/tasks/ID/` (each
//! file, and a whole task directory) are refused by every command and by the handler, the
//! error names the link, and its target is unchanged.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::common::project::codex_env;
use crate::common::stub::{responses_stub, sse_response, v1};
use crate::common::TestEnv;

/// A file outside the project that a planted link points at, with known contents.
fn target(env: &TestEnv, name: &str) -> PathBuf {
    let p = env.home.join(name);
    std::fs::write(&p, "the user's own file\n").unwrap();
    p
}

fn plant(env: &TestEnv, id: &str, file: &str, to: &Path) -> PathBuf {
    let dir = env.wg_dir().join("tasks").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(file);
    let _ = std::fs::remove_file(&link);
    symlink(to, &link).unwrap();
    link
}

fn unchanged(p: &Path) {
    assert_eq!(
        std::fs::read_to_string(p).unwrap(),
        "the user's own file\n",
        "{} was written through a link",
        p.display()
    );
}

#[test]
fn commands_refuse_planted_links_and_name_them() {
    let env = TestEnv::new();
    env.wg(&["add", "A", "--id", "a"]).ok();
    env.wg(&["add", "B", "--id", "b"]).ok();
    // Files are created on first use; make them exist so a planted link replaces one.
    env.wg(&["log", "a", "first"]).ok();

    let bashrc = target(&env, ".bashrc");
    let link = plant(&env, "a", "log.jsonl", &bashrc);
    let run = env.wg(&["log", "a", "through the link"]);
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("log.jsonl") && run.stderr.contains("symbolic link"),
        "{run}"
    );
    unchanged(&bashrc);
    // Reading through it is refused too: `wg show` does not print the target.
    let show = env.wg(&["show", "a"]);
    assert!(!show.stdout.contains("the user's own file"), "{show}");
    std::fs::remove_file(&link).unwrap();

    let inbox = target(&env, "inbox-target");
    plant(&env, "a", "inbox.jsonl", &inbox);
    let run = env.wg(&["msg", "a", "hello"]);
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains("inbox.jsonl"), "{run}");
    unchanged(&inbox);

    // A whole task directory replaced by a link to a directory outside the project.
    let outside = env.home.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::remove_dir_all(env.wg_dir().join("tasks/b")).ok();
    symlink(&outside, env.wg_dir().join("tasks/b")).unwrap();
    for args in [&["log", "b", "x"][..], &["msg", "b", "x"][..]] {
        let run = env.wg(args);
        assert_ne!(run.code, 0, "{args:?}: {run}");
        assert!(run.stderr.contains("tasks/b"), "{args:?}: {run}");
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

    // `wg doctor` names each one.
    let doctor = env.wg(&["doctor", "--json"]).json();
    let links = doctor
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "links")
        .expect("a links check");
    assert_eq!(links["ok"], false, "{doctor}");
    let detail = links["detail"].as_str().unwrap();
    assert!(detail.contains("tasks/a/inbox.jsonl"), "{detail}");
    assert!(detail.contains("tasks/b"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_handler_refuses_each_planted_file_before_its_turn() {
    let server = responses_stub(sse_response(&[crate::common::stub::message("hi")])).await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    env.wg(&["add", "A", "--id", "a"]).ok();
    for file in [
        "handler.log",
        "events.jsonl",
        "outbox.jsonl",
        "inbox.jsonl",
        "log.jsonl",
    ] {
        let t = target(&env, file);
        let link = plant(&env, "a", file, &t);
        let run = env.wg(&["handler", "a", "--once"]);
        assert_ne!(run.code, 0, "{file}: {run}");
        assert!(run.stderr.contains(file), "{file}: {run}");
        unchanged(&t);
        std::fs::remove_file(&link).unwrap();
        if file != "log.jsonl" {
            // The task's log says why the run stopped.
            let log = std::fs::read_to_string(env.wg_dir().join("tasks/a/log.jsonl")).unwrap();
            assert!(log.contains(file) && log.contains("refusing"), "{log}");
        }
    }
    // Nothing was asked of the model: every run stopped before its turn.
    assert!(server.received_requests().await.unwrap().is_empty());
    // With the links gone, the turn runs.
    env.wg(&["handler", "a", "--once"]).ok();
}
