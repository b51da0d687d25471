//! Every task command driven through the real binary in a temp project, including `--json`.

use serde_json::Value;

use crate::common::project::ids;
use crate::common::TestEnv;

fn add(env: &TestEnv, args: &[&str]) -> String {
    let mut full = vec!["add"];
    full.extend_from_slice(args);
    env.wg(&full).ok().stdout.trim().to_string()
}

fn status(env: &TestEnv, id: &str) -> String {
    env.wg(&["show", id, "--json"]).ok().json()["status"]
        .as_str()
        .expect("status")
        .to_string()
}

#[test]
fn init_writes_a_commented_config_and_gitignore() {
    let env = TestEnv::bare();
    env.wg(&[
        "init",
        "-m",
        "qwen3-coder",
        "-e",
        "https://gpu-box:30000/v1",
        "--api-key-env",
        "MY_KEY",
    ])
    .ok();
    let config = std::fs::read_to_string(env.path(".wg/config.toml")).unwrap();
    assert!(config.contains("executor = \"codex\""), "{config}");
    assert!(config.contains("model = \"qwen3-coder\""), "{config}");
    assert!(
        config.contains("url = \"https://gpu-box:30000/v1\""),
        "{config}"
    );
    assert!(config.contains("api_key_env = \"MY_KEY\""), "{config}");
    assert!(config.contains("max_agents = 4"), "{config}");
    assert!(config.contains("max_retries = 2"), "{config}");
    assert!(config.lines().filter(|l| l.starts_with('#')).count() > 5);
    let ignore = std::fs::read_to_string(env.path(".wg/.gitignore")).unwrap();
    for f in ["graph.lock", "graph.idx", "service/"] {
        assert!(ignore.lines().any(|l| l == f), "{f} missing:\n{ignore}");
    }
    assert!(env.path(".wg/graph.jsonl").is_file());
    assert_eq!(
        std::fs::read_to_string(env.path(".wg/format")).unwrap(),
        "wg-store 1\n"
    );
    let got = env.wg(&["config", "get", "executor"]).ok();
    assert_eq!(got.stdout.trim(), "codex");
}

#[test]
fn init_refuses_to_overwrite_and_bad_endpoints() {
    let env = TestEnv::new();
    let before = env.snapshot();
    let again = env.wg(&["init"]).code(1);
    assert!(again.stderr.contains("already exists"), "{again}");
    assert_eq!(env.snapshot(), before);

    let fresh = TestEnv::bare();
    for bad in ["gpu-box:30000/v1", "ftp://x/v1", "http://"] {
        let r = fresh.wg(&["init", "-e", bad]).code(2);
        assert!(r.stderr.contains("endpoint"), "{r}");
    }
    // A key given where its variable's name belongs is refused, and never written.
    let r = fresh
        .wg(&["init", "--api-key-env", "sk-abc123secret"])
        .code(2);
    assert!(r.stderr.contains("NAME"), "{r}");
    assert!(!fresh.wg_dir().exists(), "a refused init leaves nothing");
}

#[test]
fn dir_flag_wg_dir_and_parent_discovery() {
    let env = TestEnv::new();
    add(&env, &["At root"]);
    // Parent discovery from a subdirectory.
    let sub = env.path("a/b/c");
    std::fs::create_dir_all(&sub).unwrap();
    let out = env
        .command(&["list", "--json"])
        .current_dir(&sub)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("at-root"));

    // --dir and WG_DIR win over the folder search.
    let other = TestEnv::bare();
    other
        .wg(&["init", "-x", "mock", "--dir", other.root.to_str().unwrap()])
        .ok();
    let r = env
        .wg(&["add", "Elsewhere", "--dir", other.root.to_str().unwrap()])
        .ok();
    assert_eq!(r.stdout.trim(), "elsewhere");
    assert_eq!(ids(&other), vec!["elsewhere"]);
    assert_eq!(ids(&env), vec!["at-root"]);
    let out = env
        .command(&["list", "--json"])
        .env("WG_DIR", other.wg_dir())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("elsewhere"));
    // --dir beats WG_DIR.
    let out = env
        .command(&["list", "--json", "--dir", env.root.to_str().unwrap()])
        .env("WG_DIR", other.wg_dir())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("at-root"));

    // No project anywhere: a config error with a hint.
    let none = TestEnv::bare();
    let r = none.wg(&["list"]).code(3);
    assert!(r.stderr.contains("wg init"), "{r}");
}

#[test]
fn add_derives_unique_ids_and_keeps_every_field() {
    let env = TestEnv::new();
    assert_eq!(add(&env, &["Fix the Parser!"]), "fix-the-parser");
    assert_eq!(add(&env, &["Fix the parser"]), "fix-the-parser-2");
    let r = env
        .wg(&[
            "add",
            "Full",
            "--id",
            "full",
            "-d",
            "all of it",
            "--after",
            "fix-the-parser",
            "-x",
            "shell",
            "-m",
            "m1",
            "--tag",
            "a",
            "--tag",
            "b",
            "--priority",
            "-3",
            "--max-retries",
            "5",
            "--timeout",
            "30m",
            "--command",
            "echo",
            "--command",
            "-n",
        ])
        .ok();
    assert_eq!(r.stdout.trim(), "full");
    let t = env.wg(&["show", "full", "--json"]).ok().json();
    assert_eq!(t["id"], "full");
    assert_eq!(t["title"], "Full");
    assert_eq!(t["description"], "all of it");
    assert_eq!(t["status"], "open");
    assert_eq!(t["after"], serde_json::json!(["fix-the-parser"]));
    assert_eq!(t["executor"], "shell");
    assert_eq!(t["model"], "m1");
    assert_eq!(t["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(t["priority"], -3);
    assert_eq!(t["max_retries"], 5);
    assert_eq!(t["timeout"], "30m");
    assert_eq!(t["command"], serde_json::json!(["echo", "-n"]));
    assert_eq!(t["ready"], false);

    // A duplicate --id, a bad id, an unknown executor, a bad timeout.
    let before = env.snapshot();
    env.wg(&["add", "X", "--id", "full"]).code(1);
    env.wg(&["add", "X", "--id", "Bad_Id"]).code(2);
    env.wg(&["add", "X", "-x", "nope"]).code(2);
    env.wg(&["add", "X", "--timeout", "soon"]).code(2);
    env.wg(&["add", "  "]).code(2);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn show_without_after_has_an_empty_array() {
    let env = TestEnv::new();
    add(&env, &["Lonely"]);
    let t = env.wg(&["show", "lonely", "--json"]).ok().json();
    // Scripts read `after` without checking whether it is there.
    assert_eq!(t["after"], serde_json::json!([]), "{t}");
    assert_eq!(t["ready"], true);
    let human = env.wg(&["show", "lonely"]).ok();
    assert!(human.stdout.starts_with("lonely: Lonely"), "{human}");
}

#[test]
fn list_ready_status_and_filters() {
    let env = TestEnv::new();
    add(&env, &["A", "--tag", "x"]);
    add(&env, &["B", "--after", "a", "--priority", "5"]);
    add(&env, &["C", "--priority", "9"]);
    let list = env.wg(&["list", "--json"]).ok().json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for t in list {
        for k in ["id", "title", "status", "created", "updated"] {
            assert!(t.get(k).is_some(), "{k} missing in {t}");
        }
    }
    let tagged = env.wg(&["list", "--tag", "x", "--json"]).ok().json();
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    env.wg(&["list", "--status", "bogus"]).code(2);
    let open = env.wg(&["ls", "--status", "open", "--json"]).ok().json();
    assert_eq!(open.as_array().unwrap().len(), 3);

    // Ready in dispatch order: priority first.
    let ready = env.wg(&["ready", "--json"]).ok().json();
    let order: Vec<&str> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec!["c", "a"]);
    env.wg(&["done", "a"]).ok();
    let ready = env.wg(&["ready", "--json"]).ok().json();
    assert_eq!(ready[0]["id"], "c");
    assert_eq!(ready[1]["id"], "b");

    let st = env.wg(&["status", "--json"]).ok().json();
    assert_eq!(st["total"], 3);
    assert_eq!(st["ready"], 2);
    assert_eq!(st["counts"]["open"], 2);
    assert_eq!(st["counts"]["done"], 1);
    let human = env.wg(&["status"]).ok();
    assert!(human.stdout.starts_with("3 tasks, 2 ready"), "{human}");
    let human = env.wg(&["ready"]).ok();
    assert!(human.stdout.contains("c  C"), "{human}");
}

/// An outbox record as the handler writes it (docs/conversation.md).
fn write_outbox(env: &TestEnv, id: &str, records: &[serde_json::Value]) {
    let dir = env.wg_dir().join("tasks").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join("outbox.jsonl"), text).unwrap();
}

fn turn(seq: u64, role: &str, text: &str, kind: Option<&str>) -> serde_json::Value {
    let mut r = serde_json::json!({"seq": seq, "ts": "2026-11-30T00:00:00.000Z",
        "in_reply_to": seq, "role": role, "text": text, "turn": seq});
    if let Some(k) = kind {
        r["error_kind"] = k.into();
        r["error_message"] = format!("{text} (server's words)").into();
    }
    r
}

#[test]
fn list_json_has_each_unfinished_tasks_last_error() {
    let env = TestEnv::new();
    for title in ["Flaky", "Fine", "Broke", "Shipped", "Fresh"] {
        add(&env, &[title]);
    }
    write_outbox(
        &env,
        "flaky",
        &[
            turn(1, "assistant", "hello", None),
            turn(2, "error", "429 slow down", Some("rate-limited")),
        ],
    );
    write_outbox(
        &env,
        "fine",
        &[
            turn(1, "error", "connection refused", Some("unreachable")),
            turn(2, "assistant", "recovered", None),
        ],
    );
    write_outbox(
        &env,
        "broke",
        &[turn(1, "error", "too long", Some("context-overflow"))],
    );
    write_outbox(
        &env,
        "shipped",
        &[turn(1, "error", "late", Some("stream-broken"))],
    );
    env.wg(&["fail", "broke", "--reason", "context too long"])
        .ok();
    env.wg(&["done", "shipped"]).ok();

    let list = env.wg(&["list", "--json"]).ok().json();
    let by_id = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
            .clone()
    };
    let flaky = by_id("flaky");
    assert_eq!(
        flaky["last_error"],
        serde_json::json!({"kind": "rate-limited", "message": "429 slow down (server's words)"}),
        "{flaky}"
    );
    assert_eq!(
        flaky["status"], "open",
        "the record's own fields stay: {flaky}"
    );
    // The same value as `wg show --json`.
    let shown = env.wg(&["show", "flaky", "--json"]).ok().json();
    assert_eq!(shown["last_error"], flaky["last_error"]);
    assert_eq!(by_id("broke")["last_error"]["kind"], "context-overflow");
    // A later good turn clears it; a task without a conversation has none; a done task's
    // conversation is over and not read.
    for id in ["fine", "fresh", "shipped"] {
        assert!(by_id(id).get("last_error").is_none(), "{}", by_id(id));
    }
    let plain = env.wg(&["list"]).ok().stdout;
    let line = |id: &str| {
        plain
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("{id} not in:\n{plain}"))
    };
    assert!(
        line("flaky").ends_with("[last error: rate-limited: 429 slow down (server's words)]"),
        "{plain}"
    );
    assert!(
        line("broke").contains("[last error: context-overflow: "),
        "{plain}"
    );
    assert!(!line("shipped").contains("last error"), "{plain}");
}

#[test]
fn lifecycle_commands_and_their_log() {
    let env = TestEnv::new();
    add(&env, &["A"]);
    add(&env, &["B"]);
    env.wg(&["fail", "a", "--reason", "broke"]).ok();
    let t = env.wg(&["show", "a", "--json"]).ok().json();
    assert_eq!(t["status"], "failed");
    assert_eq!(t["failure_reason"], "broke");
    env.wg(&["retry", "a"]).ok();
    assert_eq!(status(&env, "a"), "open");
    env.wg(&["log", "a", "halfway there"]).ok();
    env.wg(&["done", "a"]).ok();
    assert_eq!(status(&env, "a"), "done");
    env.wg(&["fail", "a"]).code(2); // --reason is required
    env.wg(&["abandon", "b"]).ok();

    // Done on abandoned is refused and names the task; abandoned is final.
    let before = env.snapshot();
    let r = env.wg(&["done", "b"]).code(1);
    assert!(
        r.stderr.contains("`b`") && r.stderr.contains("abandoned"),
        "{r}"
    );
    env.wg(&["retry", "b"]).code(1);
    assert_eq!(env.snapshot(), before);

    let log = env.wg(&["log", "a", "--json"]).ok().json();
    let log = log.as_array().unwrap();
    let events: Vec<(String, String)> = log
        .iter()
        .map(|r| {
            let what = match r["event"].as_str().unwrap() {
                "status" => format!("{}->{}", r["from"], r["to"]).replace('"', ""),
                "note" => r["text"].as_str().unwrap().to_string(),
                e => e.to_string(),
            };
            (r["event"].as_str().unwrap().to_string(), what)
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("status".into(), "open->failed".into()),
            ("status".into(), "failed->open".into()),
            ("note".into(), "halfway there".into()),
            ("status".into(), "open->done".into()),
        ]
    );
    for r in log {
        assert_eq!(r["actor"], "user");
        let ts = r["ts"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    }
    assert_eq!(log[0]["reason"], "broke");
    // The file itself is one JSON object per line.
    let raw = std::fs::read_to_string(env.path(".wg/tasks/a/log.jsonl")).unwrap();
    assert_eq!(raw.lines().count(), 4);

    // Unknown tasks: exit 4 from every command that names one.
    for args in [
        vec!["show", "nope"],
        vec!["done", "nope"],
        vec!["fail", "nope", "--reason", "x"],
        vec!["retry", "nope"],
        vec!["abandon", "nope"],
        vec!["log", "nope", "x"],
        vec!["edit", "nope", "--title", "x"],
        vec!["rm", "nope"],
    ] {
        let r = env.wg(&args).code(4);
        assert!(r.stderr.contains("`nope`"), "{args:?}: {r}");
    }
}

#[test]
fn edit_changes_fields_and_refuses_cycles_and_missing_deps() {
    let env = TestEnv::new();
    add(&env, &["A"]);
    add(&env, &["B", "--after", "a"]);
    add(&env, &["C", "--after", "b"]);
    env.wg(&[
        "edit",
        "a",
        "--title",
        "A2",
        "-d",
        "desc",
        "--priority",
        "7",
        "-x",
        "shell",
        "-m",
        "m2",
    ])
    .ok();
    let t = env.wg(&["show", "a", "--json"]).ok().json();
    assert_eq!(
        (
            &t["title"],
            &t["description"],
            &t["priority"],
            &t["executor"],
            &t["model"]
        ),
        (
            &Value::from("A2"),
            &Value::from("desc"),
            &Value::from(7),
            &Value::from("shell"),
            &Value::from("m2")
        )
    );

    let before = env.snapshot();
    let r = env.wg(&["edit", "a", "--add-after", "c"]).code(1);
    assert!(r.stderr.contains("cycle"), "{r}");
    for id in ["a", "b", "c"] {
        assert!(r.stderr.contains(id), "cycle should name {id}: {r}");
    }
    let r = env.wg(&["edit", "a", "--add-after", "ghost"]).code(1);
    assert!(
        r.stderr.contains("`a`") && r.stderr.contains("`ghost`"),
        "{r}"
    );
    let r = env.wg(&["add", "D", "--after", "ghost"]).code(1);
    assert!(
        r.stderr.contains("`d`") && r.stderr.contains("`ghost`"),
        "{r}"
    );
    env.wg(&["edit", "a", "--add-after", "a"]).code(1);
    env.wg(&["edit", "a", "--add-after", "../x"]).code(2);
    assert_eq!(env.snapshot(), before);

    env.wg(&["edit", "c", "--remove-after", "b", "--add-after", "a"])
        .ok();
    let t = env.wg(&["show", "c", "--json"]).ok().json();
    assert_eq!(t["after"], serde_json::json!(["a"]));
}

#[test]
fn rm_refuses_with_dependents_and_force_drops_edges() {
    let env = TestEnv::new();
    add(&env, &["A"]);
    add(&env, &["B", "--after", "a"]);
    add(&env, &["C", "--after", "a"]);
    let before = env.snapshot();
    let r = env.wg(&["rm", "a"]).code(1);
    assert!(r.stderr.contains("b, c"), "{r}");
    assert_eq!(env.snapshot(), before);
    let r = env.wg(&["rm", "a", "--force", "--json"]).ok().json();
    assert_eq!(r["removed"], "a");
    assert_eq!(r["edges_dropped"], serde_json::json!(["b", "c"]));
    assert_eq!(ids(&env), vec!["b", "c"]);
    let t = env.wg(&["show", "b", "--json"]).ok().json();
    assert_eq!(t["after"], serde_json::json!([]));
    env.wg(&["rm", "c"]).ok();
    assert_eq!(ids(&env), vec!["b"]);
}

#[test]
fn archive_moves_finished_tasks_that_still_satisfy_dependencies() {
    let env = TestEnv::new();
    add(&env, &["A"]);
    add(&env, &["B", "--after", "a"]);
    add(&env, &["Gone"]);
    env.wg(&["done", "a"]).ok();
    env.wg(&["abandon", "gone"]).ok();
    let r = env.wg(&["archive", "--json"]).ok().json();
    assert_eq!(r["archived"], serde_json::json!(["a", "gone"]));
    assert_eq!(r["live"], 1);
    assert_eq!(ids(&env), vec!["b"]);
    let archive = std::fs::read_to_string(env.path(".wg/archive.jsonl")).unwrap();
    assert_eq!(archive.lines().count(), 2);

    // Archived `a` still satisfies `b`, `show` finds it, new tasks may depend on it.
    let ready = env.wg(&["ready", "--json"]).ok().json();
    assert_eq!(ready[0]["id"], "b");
    let t = env.wg(&["show", "a", "--json"]).ok().json();
    assert_eq!(
        (&t["status"], &t["archived"]),
        (&"done".into(), &true.into())
    );
    add(&env, &["D", "--after", "a"]);
    let all = env.wg(&["list", "--archived", "--json"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 4);
    // Its id stays taken, and it can no longer change.
    env.wg(&["add", "X", "--id", "a"]).code(1);
    assert_eq!(add(&env, &["A"]), "a-2");
    let r = env.wg(&["retry", "a"]).code(1);
    assert!(r.stderr.contains("archived"), "{r}");
    let r = env.wg(&["status", "--json"]).ok().json();
    assert_eq!(r["total"], 3);
}

#[test]
fn import_titles_only_ids_deps_and_all_or_nothing() {
    let env = TestEnv::new();
    add(&env, &["Existing"]);
    let input = r#"{"title": "Only a title"}
{"title": "Second", "id": "second", "after": ["existing"]}

{"title": "Third", "after": ["second", "only-a-title"], "priority": 3, "tags": ["t"], "custom": {"k": 1}}
"#;
    let r = env.wg_stdin(&["import", "-", "--json"], input).ok().json();
    assert_eq!(r["imported"], 3);
    assert_eq!(
        ids(&env),
        vec!["existing", "only-a-title", "second", "third"]
    );
    let t = env.wg(&["show", "third", "--json"]).ok().json();
    assert_eq!(t["after"], serde_json::json!(["second", "only-a-title"]));
    assert_eq!(t["priority"], 3);
    assert_eq!(t["custom"], serde_json::json!({"k": 1}));
    // One locked write: a single append of three lines.
    let graph = std::fs::read_to_string(env.path(".wg/graph.jsonl")).unwrap();
    assert_eq!(graph.lines().count(), 4);

    // From a file, too.
    std::fs::write(env.path("more.jsonl"), "{\"title\": \"From file\"}\n").unwrap();
    env.wg(&["import", "more.jsonl"]).ok();
    assert!(ids(&env).contains(&"from-file".to_string()));

    let before = env.snapshot();
    let cycle = r#"{"title": "X", "id": "x", "after": ["y"]}
{"title": "Y", "id": "y", "after": ["x"]}
{"title": "Fine"}
"#;
    let r = env.wg_stdin(&["import", "-"], cycle).code(1);
    assert!(r.stderr.contains("cycle"), "{r}");
    let unknown = "{\"title\": \"Z\", \"after\": [\"ghost\"]}\n{\"title\": \"Fine\"}\n";
    let r = env.wg_stdin(&["import", "-"], unknown).code(1);
    assert!(r.stderr.contains("`ghost`"), "{r}");
    for bad in [
        "{\"title\": \"Fine\"}\n{\"id\": \"no-title\"}\n",
        "{\"title\": \"Fine\"}\nnot json\n",
        "{\"title\": \"P\", \"id\": \"../etc\"}\n",
        "{\"title\": \"Dup\", \"id\": \"existing\"}\n",
        "{\"title\": \"D\", \"id\": \"d\"}\n{\"title\": \"D\", \"id\": \"d\"}\n",
        "{\"title\": \"S\", \"status\": \"sleeping\"}\n",
    ] {
        let r = env.wg_stdin(&["import", "-"], bad).code(1);
        assert!(r.stderr.contains("nothing was imported"), "{bad}: {r}");
    }
    env.wg(&["import", "missing.jsonl"]).code(2);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn config_get_set_list_keep_comments_and_types() {
    let env = TestEnv::new();
    let path = env.path(".wg/config.toml");
    let before = std::fs::read_to_string(&path).unwrap();
    env.set_config(&[
        ("executors.mock.turn_ms", "300"),
        ("coordinator.max_agents", "8"),
        ("model", "qwen3-coder"),
        ("executors.mock.conversational", "false"),
    ]);
    let after = std::fs::read_to_string(&path).unwrap();
    // Every comment survives, in order.
    let comments = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let (old, new) = (comments(&before), comments(&after));
    assert!(
        old.iter()
            .all(|c| new.contains(c) || c.starts_with("# model")),
        "{after}"
    );
    assert!(after.contains("turn_ms = 300\n"), "{after}");
    assert!(after.contains("max_agents = 8"), "{after}");
    let parsed: toml::Table = toml::from_str(&after).unwrap();
    assert_eq!(
        parsed["executors"]["mock"]["turn_ms"],
        toml::Value::Integer(300)
    );
    assert_eq!(
        parsed["executors"]["mock"]["conversational"],
        toml::Value::Boolean(false)
    );

    let v = env
        .wg(&["config", "get", "executors.mock.turn_ms", "--json"])
        .ok()
        .json();
    assert_eq!(v, Value::from(300));
    assert_eq!(
        env.wg(&["config", "get", "model"]).ok().stdout.trim(),
        "qwen3-coder"
    );
    let all = env.wg(&["config", "list", "--json"]).ok().json();
    assert_eq!(all["coordinator.max_agents"], 8);
    assert_eq!(all["executor"], "mock");
    env.wg(&["config", "get", "no.such.key"]).code(4);

    // Values that would make the config invalid, and secrets, are refused; nothing changes.
    let before = env.snapshot();
    env.wg(&["config", "set", "durability", "maybe"]).code(2);
    env.wg(&["config", "set", "endpoint.api_key", "sk-123"])
        .code(2);
    env.wg(&["config", "set", "coordinator", "1"]).code(2);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn viz_in_three_formats() {
    let env = TestEnv::new();
    add(&env, &["Base"]);
    add(&env, &["Top", "--after", "base"]);
    env.wg(&["done", "base"]).ok();
    let ascii = env.wg(&["viz"]).ok().stdout;
    assert_eq!(ascii, "[x] base (done)\n  [ ] top (open)  <- base\n");
    let dot = env.wg(&["viz", "--format", "dot"]).ok().stdout;
    assert!(dot.starts_with("digraph wg {"), "{dot}");
    assert!(dot.contains("\"base\" -> \"top\";"), "{dot}");
    assert!(dot.contains("fillcolor=palegreen"), "{dot}");
    let mermaid = env.wg(&["viz", "--format", "mermaid"]).ok().stdout;
    assert!(mermaid.starts_with("graph LR\n"), "{mermaid}");
    assert!(mermaid.contains("base --> top"), "{mermaid}");
    assert!(mermaid.contains("top[\"top (open)\"]"), "{mermaid}");
    let j = env.wg(&["viz", "--format", "dot", "--json"]).ok().json();
    assert_eq!(j["format"], "dot");
    env.wg(&["viz", "--format", "svg"]).code(2);
}

#[test]
fn exit_codes_are_distinct() {
    let env = TestEnv::new();
    add(&env, &["A"]);
    env.wg(&["frobnicate"]).code(2);
    env.wg(&["add"]).code(2);
    env.wg(&["show", "missing"]).code(4);
    env.wg(&["show", "../etc"]).code(2);
    env.wg(&["show", "a/b"]).code(2);
    env.wg(&["done", "a"]).ok();
    env.wg(&["done", "a"]).code(1);
}

#[test]
fn store_locked_exits_5_and_names_the_lock() {
    let mut env = TestEnv::new();
    add(&env, &["A"]);
    env.set_env("WG_LOCK_TIMEOUT", "0.3");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env.path(".wg/graph.lock"))
        .unwrap();
    fs2::FileExt::lock_exclusive(&lock).unwrap();
    let before = env.snapshot();
    for args in [
        vec!["add", "B"],
        vec!["done", "a"],
        vec!["edit", "a", "--title", "x"],
        vec!["rm", "a"],
    ] {
        let r = env.wg(&args).code(5);
        assert!(r.stderr.contains("graph.lock"), "{args:?}: {r}");
    }
    // Readers take no lock.
    assert_eq!(ids(&env), vec!["a"]);
    assert_eq!(env.snapshot(), before);
    fs2::FileExt::unlock(&lock).unwrap();
    add(&env, &["B"]);
}

#[test]
fn doctor_checks_only_the_agents_the_project_runs() {
    // A mock-only project on a PATH without codex or claude: nothing to find, all well.
    let env = TestEnv::new();
    env.wg(&["add", "T"]).ok();
    let run = env.wg(&["doctor", "--json"]).ok();
    let names: Vec<String> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !names.iter().any(|n| n == "codex" || n == "claude"),
        "{run}"
    );
    // One task that runs codex brings the codex check back, and it fails naming the fix.
    env.wg(&["config", "set", "codex.binary", "/nonexistent/codex"])
        .ok();
    env.wg(&["add", "C", "--executor", "codex"]).ok();
    let run = env.wg(&["doctor", "--json"]).code(1);
    assert!(run.stdout.contains("install the Codex CLI"), "{run}");
}
