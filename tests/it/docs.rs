//! Repository files that must stay true: docs/cli.md is generated from clap, docs/exit-codes.md
//! mirrors src/exit.rs, and .wg.example/ parses with the real config and store code.

use std::path::Path;

use clap::CommandFactory;

use crate::common::TestEnv;

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `wg --help` and every subcommand's `--help`, as markdown.
fn render_cli_md() -> String {
    let mut out = String::from(
        "# wg command line\n\n\
         Generated from the clap definitions by `tests/it/docs.rs`; do not edit by hand. \
         Regenerate with `WG_UPDATE_DOCS=1 cargo test --test it docs::`.\n\n\
         Exit codes: [exit-codes.md](exit-codes.md). Storage: [storage.md](storage.md).\n",
    );
    fn walk(cmd: &mut clap::Command, path: &str, out: &mut String) {
        let name = if path.is_empty() {
            cmd.get_name().to_string()
        } else {
            format!("{path} {}", cmd.get_name())
        };
        let help = cmd.render_long_help().to_string();
        out.push_str(&format!(
            "\n## `{name}`\n\n```text\n{}\n```\n",
            help.trim_end()
        ));
        let mut subs: Vec<clap::Command> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .cloned()
            .collect();
        for sub in &mut subs {
            walk(sub, &name, out);
        }
    }
    let mut cmd = wg::cli::Cli::command().term_width(100);
    cmd.build();
    walk(&mut cmd, "", &mut out);
    out
}

fn check_generated(rel: &str, want: &str) {
    let path = repo(rel);
    if std::env::var("WG_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{rel} is stale; regenerate it with `WG_UPDATE_DOCS=1 cargo test --test it docs::`"
    );
}

#[test]
fn cli_md_is_generated_from_clap() {
    check_generated("docs/cli.md", &render_cli_md());
}

#[test]
fn exit_codes_md_mirrors_exit_rs() {
    let doc = std::fs::read_to_string(repo("docs/exit-codes.md")).unwrap();
    for (name, code) in [
        ("OK", wg::exit::OK),
        ("FAILURE", wg::exit::FAILURE),
        ("USAGE", wg::exit::USAGE),
        ("CONFIG", wg::exit::CONFIG),
        ("NOT_FOUND", wg::exit::NOT_FOUND),
        ("LOCKED", wg::exit::LOCKED),
        ("UNAVAILABLE", wg::exit::UNAVAILABLE),
        ("CORRUPT", wg::exit::CORRUPT),
        ("TASKS_FAILED", wg::exit::TASKS_FAILED),
        ("STUCK", wg::exit::STUCK),
        ("PAUSED", wg::exit::PAUSED),
        ("IO", wg::exit::IO),
        ("INTERNAL", wg::exit::INTERNAL),
    ] {
        let row = format!("| {code} | `{name}` |");
        assert!(
            doc.contains(&row),
            "docs/exit-codes.md lacks the row {row:?}"
        );
    }
    let src = std::fs::read_to_string(repo("src/exit.rs")).unwrap();
    let consts = src.matches("pub const ").count();
    let rows = doc
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" | `"))
        .count();
    assert_eq!(
        consts, rows,
        "src/exit.rs and docs/exit-codes.md differ in length"
    );
}

#[test]
fn example_config_parses_and_names_every_setting() {
    let text = std::fs::read_to_string(repo(".wg.example/config.toml")).unwrap();
    let config = wg::config::Config::parse(&text).unwrap();
    assert_eq!(config.coordinator.max_agents, 4);
    // Every key a new project's config sets (or shows commented out) is in the example.
    let env = TestEnv::bare();
    env.wg(&["init", "-m", "m", "-e", "https://h/v1"]).ok();
    let fresh = std::fs::read_to_string(env.path(".wg/config.toml")).unwrap();
    for line in fresh.lines() {
        let line = line.trim_start_matches("# ").trim();
        if let Some((key, _)) = line.split_once(" = ") {
            if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                assert!(
                    text.contains(&format!("{key} = ")),
                    ".wg.example/config.toml lacks `{key}`"
                );
            }
        }
    }
}

#[test]
fn example_graph_loads_and_is_a_valid_project() {
    let env = TestEnv::new();
    std::fs::copy(repo(".wg.example/graph.jsonl"), env.path(".wg/graph.jsonl")).unwrap();
    std::fs::copy(repo(".wg.example/config.toml"), env.path(".wg/config.toml")).unwrap();
    let list = env.wg(&["list", "--json"]).ok().json();
    assert!(list.as_array().unwrap().len() >= 4);
    env.wg(&["ready", "--json"]).ok();
    env.wg(&["viz"]).ok();
    // A writer accepts it too (full parse and index build), and an edit keeps its fields.
    env.wg(&["add", "One more", "--after", "write-parser"]).ok();
}
