//! A test project of a given kind (codex, claude) and what tests read back from it.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::stub::KEY;
use super::{real_claude, real_codex, TestEnv};

/// A codex project pointed at `url`, with the real codex and tight test timeouts.
pub fn codex_env(url: &str) -> Option<TestEnv> {
    Some(codex_env_with(url, &real_codex()?))
}

/// A codex project pointed at `url` whose `codex.binary` is `codex`, which need not exist.
pub fn codex_env_with(url: &str, codex: &std::path::Path) -> TestEnv {
    codex_project(TestEnv::bare_outside_tmp(), url, codex)
}

/// Makes `env` (made by `TestEnv::bare_outside_tmp`, perhaps with a disk mounted on its
/// root) a codex project pointed at `url`, as `codex_env_with` does.
pub fn codex_project(mut env: TestEnv, url: &str, codex: &std::path::Path) -> TestEnv {
    env.wg(&["init", "-x", "codex", "-m", "qwen3-coder", "-e", url])
        .ok();
    env.wg(&["config", "set", "codex.binary", codex.to_str().unwrap()])
        .ok();
    env.set_config(&[
        ("handler.request_max_retries", "0"),
        ("handler.stream_max_retries", "0"),
        // Long enough for codex to start on a loaded 2-core machine; the tests of the idle
        // timeout itself set their own.
        ("handler.idle_timeout", "8s"),
        ("handler.stream_idle_timeout", "1s"),
        ("handler.first_output_timeout", "10s"),
        ("coordinator.grace_period", "1s"),
    ]);
    env.set_env("WG_API_KEY", KEY);
    env
}

pub fn read(env: &TestEnv, id: &str, file: &str) -> String {
    std::fs::read_to_string(env.wg_dir().join("tasks").join(id).join(file)).unwrap_or_default()
}

pub fn outbox(env: &TestEnv, id: &str) -> Vec<Value> {
    read(env, id, "outbox.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn status(env: &TestEnv, id: &str) -> String {
    env.wg(&["show", id, "--json"]).ok().json()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every file under `.wg/` (codex's home included) and the given texts hold no trace of KEY.
/// Symlinks are not followed: codex's helper aliases in its home point at its own 300 MB binary.
pub fn assert_no_key(env: &TestEnv, texts: &[&str]) {
    fn walk(dir: &std::path::Path) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                walk(&p);
            } else if meta.is_file() {
                let bytes = std::fs::read(&p).unwrap_or_default();
                // std's substring search is optimised even in test builds; windows() is not.
                let hit = String::from_utf8_lossy(&bytes).contains(KEY);
                assert!(!hit, "the API key leaked into {}", p.display());
            }
        }
    }
    walk(&env.wg_dir());
    for t in texts {
        assert!(!t.contains(KEY), "the API key leaked into output:\n{t}");
    }
}

/// A claude project pointed at `url` (no `/v1`), with the real CLI and tight bounds.
pub fn claude_env(url: &str) -> Option<TestEnv> {
    Some(claude_env_with(url, &real_claude()?))
}

/// A claude project pointed at `url` whose `claude.binary` is `claude`, which need not exist.
pub fn claude_env_with(url: &str, claude: &std::path::Path) -> TestEnv {
    let mut env = TestEnv::bare_outside_tmp();
    env.wg(&["init", "-x", "claude", "-m", "qwen3-coder", "-e", url])
        .ok();
    env.set_config(&[
        ("claude.binary", claude.to_str().unwrap()),
        ("claude.max_retries", "0"),
        ("handler.idle_timeout", "30s"),
        ("handler.first_output_timeout", "20s"),
        ("coordinator.grace_period", "1s"),
    ]);
    env.set_env("WG_API_KEY", KEY);
    env
}

/// Every line of every JSON Lines file under `.wg/tasks/` parses, and ends with a newline.
pub fn assert_all_lines_whole(env: &TestEnv) {
    for (path, bytes) in env.snapshot() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".jsonl") {
            continue;
        }
        if !bytes.is_empty() {
            assert_eq!(bytes.last(), Some(&b'\n'), "{} ends torn", path.display());
        }
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            serde_json::from_slice::<Value>(line).unwrap_or_else(|e| {
                panic!(
                    "{}:{}: {e}: {}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(line)
                )
            });
        }
    }
}

pub fn log_events(env: &TestEnv, id: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(env.path(&format!(".wg/tasks/{id}/log.jsonl"))).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Ids of the live tasks, from `wg list --json`.
pub fn ids(env: &TestEnv) -> Vec<String> {
    env.wg(&["list", "--json"])
        .ok()
        .json()
        .as_array()
        .expect("list --json is an array")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect()
}

pub fn task(env: &TestEnv, id: &str) -> Value {
    env.wg(&["show", id, "--json"]).ok().json()
}

/// Runs `wg handler ID`, checks it failed within `bound` with an error reply whose text holds
/// `reply_says`, and an ERROR line of `kind` in handler.log. Any agent CLI: codex or claude.
pub fn expect_failure(env: &TestEnv, id: &str, bound: Duration, kind: &str, reply_says: &str) {
    let start = Instant::now();
    let run = env.wg(&["handler", id]).code(1);
    let took = start.elapsed();
    assert!(took < bound, "took {took:?}, bound {bound:?}\n{run}");
    let out = outbox(env, id);
    let last = out.last().expect("an outbox record");
    assert_eq!(last["role"], "error", "{last}");
    assert_eq!(last["error_kind"], kind, "{last}");
    let text = last["text"].as_str().unwrap();
    assert!(
        text.contains(reply_says),
        "reply `{text}` lacks `{reply_says}`"
    );
    let log = read(env, id, "handler.log");
    assert!(
        log.lines()
            .any(|l| l.contains(" ERROR task=") && l.contains(&format!("kind={kind}"))),
        "{log}"
    );
    assert!(log.contains("turn.end status=error"), "{log}");
    assert!(run.stderr.contains("ended in an error"), "{run}");
    assert_eq!(status(env, id), "waiting");
    assert_no_key(env, &[&run.stdout, &run.stderr]);
}
