//! Bad input: each gets a clear error, the right exit code, and changes nothing on disk.

use crate::common::project::ids;
use crate::common::TestEnv;

/// Every command that reads the task graph.
const READERS: &[&[&str]] = &[
    &["list"],
    &["list", "--json"],
    &["show", "a"],
    &["show", "a", "--json"],
    &["ready", "--json"],
    &["status"],
    &["viz"],
];

/// Every command that writes the task graph (or a task's log under its lock).
const WRITERS: &[&[&str]] = &[
    &["add", "New"],
    &["add", "New", "--after", "a"],
    &["done", "a"],
    &["fail", "a", "--reason", "r"],
    &["abandon", "a"],
    &["edit", "a", "--title", "T"],
    &["rm", "c"],
    &["archive"],
    &["log", "a", "note"],
];

fn three_tasks() -> TestEnv {
    let env = TestEnv::new();
    for t in ["A", "B", "C"] {
        env.wg(&["add", t]).ok();
    }
    env
}

fn graph_path(env: &TestEnv) -> std::path::PathBuf {
    env.path(".wg/graph.jsonl")
}

/// Replaces line `n` (1-based) of graph.jsonl.
fn replace_line(env: &TestEnv, n: usize, with: impl FnOnce(&str) -> String) {
    let text = std::fs::read_to_string(graph_path(env)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[n - 1] = with(&lines[n - 1]);
    std::fs::write(graph_path(env), lines.join("\n") + "\n").unwrap();
}

fn assert_every_command_stops(env: &TestEnv, line: usize, reason: &str) {
    let before = env.snapshot();
    let mut extra = vec![];
    let import_file = env.tmp.path().join("import.jsonl");
    std::fs::write(&import_file, "{\"title\": \"I\"}\n").unwrap();
    let import = ["import", import_file.to_str().unwrap()];
    extra.push(&import[..]);
    for args in READERS.iter().chain(WRITERS).chain(extra.iter()) {
        let r = env.wg(args).code(7);
        assert!(
            r.stderr.contains(&format!("graph.jsonl:{line}:")),
            "{args:?} should name the file and line:\n{r}"
        );
        assert!(r.stderr.contains(reason), "{args:?} reason:\n{r}");
        assert!(r.stderr.contains("nothing was changed"), "{args:?}:\n{r}");
        assert_eq!(env.snapshot(), before, "{args:?} changed the store");
    }
}

#[test]
fn corrupt_line_in_the_middle_stops_every_command() {
    let env = three_tasks();
    replace_line(&env, 2, |_| r#"{"id": "b", "title": oops"#.to_string());
    assert_every_command_stops(&env, 2, "expected value");
}

/// Regression: a hand edit that keeps the file's size must still be noticed by writers, whose
/// derived index would otherwise vouch for the old bytes (the header's seal catches it).
#[test]
fn same_size_hand_edit_is_caught_by_writers() {
    let env = three_tasks();
    // `rm` compacts, so afterwards the index covers (vouches for) every line of the file.
    env.wg(&["add", "D"]).ok();
    env.wg(&["rm", "d"]).ok();
    let idx = std::fs::read_to_string(env.path(".wg/graph.idx")).unwrap();
    let len = std::fs::metadata(graph_path(&env)).unwrap().len();
    assert!(idx.contains(&format!("covered={len:020}")), "{idx}");
    let len = std::fs::metadata(graph_path(&env)).unwrap().len();
    // The last `}` becomes `]`: same length, no longer JSON.
    replace_line(&env, 2, |l| format!("{}]", &l[..l.len() - 1]));
    assert_eq!(std::fs::metadata(graph_path(&env)).unwrap().len(), len);
    assert_every_command_stops(&env, 2, "line 1");
}

#[test]
fn valid_json_that_is_not_a_task_is_corrupt() {
    let env = three_tasks();
    replace_line(&env, 2, |l| {
        l.replace("\"status\":\"open\"", "\"status\":\"dozing\"")
    });
    assert_every_command_stops(&env, 2, "unknown variant");
    // A wrongly typed field that `ready` and `status` do not otherwise read is still caught
    // by them (they parse a borrowed view that checks every known field's type).
    let env = three_tasks();
    replace_line(&env, 2, |l| {
        l.replace("\"status\"", "\"tags\":\"x\",\"status\"")
    });
    assert_every_command_stops(&env, 2, "invalid type");
}

#[test]
fn a_path_as_id_in_the_file_is_corrupt() {
    let env = three_tasks();
    replace_line(&env, 2, |l| l.replace("\"id\":\"b\"", "\"id\":\"../b\""));
    assert_every_command_stops(&env, 2, "../b");
    let env = three_tasks();
    replace_line(&env, 3, |l| {
        l.replace("\"id\":\"c\"", "\"id\":\"c\",\"after\":[\"x/y\"]")
    });
    assert_every_command_stops(&env, 3, "x/y");
}

#[test]
fn corrupt_archive_stops_writers_and_show() {
    let env = three_tasks();
    env.wg(&["done", "b"]).ok();
    env.wg(&["archive"]).ok();
    std::fs::write(env.path(".wg/archive.jsonl"), "{broken\n").unwrap();
    let before = env.snapshot();
    for args in [&["show", "b"][..], &["add", "X"], &["done", "a"]] {
        let r = env.wg(args).code(7);
        assert!(r.stderr.contains("archive.jsonl:1:"), "{args:?}:\n{r}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn torn_tail_is_ignored_by_readers_and_repaired_by_the_next_writer() {
    let env = three_tasks();
    let mut text = std::fs::read(graph_path(&env)).unwrap();
    let good_len = text.len();
    text.extend_from_slice(br#"{"id":"torn","title":"half a rec"#);
    std::fs::write(graph_path(&env), &text).unwrap();
    let before = env.snapshot();
    for args in READERS {
        env.wg(args).ok();
    }
    assert_eq!(ids(&env), vec!["a", "b", "c"]);
    assert_eq!(env.snapshot(), before, "readers never repair");

    let r = env.wg(&["add", "D"]).ok();
    assert!(r.stderr.contains("unfinished last line"), "{r}");
    assert!(r.stderr.contains("graph.jsonl"), "{r}");
    assert_eq!(ids(&env), vec!["a", "b", "c", "d"]);
    let after = std::fs::read(graph_path(&env)).unwrap();
    assert_eq!(&after[..good_len], &text[..good_len]);
    assert!(!String::from_utf8_lossy(&after).contains("torn"));
    let r = env.wg(&["add", "E"]).ok();
    assert!(r.stderr.is_empty(), "repaired once: {r}");
}

#[test]
fn ids_with_paths_are_refused_everywhere() {
    let env = three_tasks();
    let before = env.snapshot();
    for bad in ["../a", "a/b", "/etc", "..", "A"] {
        for args in [
            vec!["show", bad],
            vec!["done", bad],
            vec!["fail", bad, "--reason", "x"],
            vec!["retry", bad],
            vec!["abandon", bad],
            vec!["log", bad, "x"],
            vec!["rm", bad],
            vec!["edit", bad, "--title", "x"],
            vec!["edit", "a", "--add-after", bad],
            vec!["add", "X", "--id", bad],
            vec!["add", "X", "--after", bad],
        ] {
            let r = env.wg(&args).code(2);
            assert!(r.stderr.contains("task id"), "{args:?}:\n{r}");
        }
    }
    assert_eq!(env.snapshot(), before);
    assert!(!env.tmp.path().join("work/a").exists());
}

#[test]
fn invalid_or_unreadable_config_exits_3_with_the_path() {
    let env = three_tasks();
    let config = env.path(".wg/config.toml");
    for (text, says) in [
        ("executor = [", "config.toml"),
        ("durability = \"maybe\"", "durability"),
        ("[coordinator]\nmax_agents = \"many\"", "max_agents"),
        ("[endpoint]\nurl = \"gpu-box\"", "http"),
    ] {
        std::fs::write(&config, text).unwrap();
        let before = env.snapshot();
        for args in [&["list"][..], &["add", "X"], &["done", "a"]] {
            let r = env.wg(args).code(3);
            assert!(r.stderr.contains(says), "{text}: {args:?}:\n{r}");
            assert!(r.stderr.contains("config.toml"), "{text}:\n{r}");
        }
        assert_eq!(env.snapshot(), before);
    }
    // Unreadable (tests run as root, so a directory stands in for a file without permission).
    std::fs::remove_file(&config).unwrap();
    std::fs::create_dir(&config).unwrap();
    let before = env.snapshot();
    let r = env.wg(&["add", "X"]).code(3);
    assert!(
        r.stderr.contains("cannot read") && r.stderr.contains("config.toml"),
        "{r}"
    );
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_newer_store_format_is_refused() {
    let env = three_tasks();
    std::fs::write(env.path(".wg/format"), "wg-store 2\n").unwrap();
    let before = env.snapshot();
    for args in [&["list"][..], &["add", "X"]] {
        let r = env.wg(args).code(3);
        assert!(r.stderr.contains("newer"), "{r}");
    }
    assert_eq!(env.snapshot(), before);
}
