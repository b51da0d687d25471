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

/// One row of the table under "Rules checked by a test" in docs/architecture.md.
struct LayoutRule {
    name: String,
    needle: String,
    allowed: Vec<String>,
}

fn layout_rules() -> Vec<LayoutRule> {
    let text = std::fs::read_to_string(repo("docs/architecture.md")).unwrap();
    let section = text
        .split("## Rules checked by a test")
        .nth(1)
        .expect("docs/architecture.md has a \"Rules checked by a test\" section");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| rule"))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 3, "a rule row has three cells: {row}");
            LayoutRule {
                name: cells[0].to_string(),
                needle: ticked(cells[1])
                    .pop()
                    .expect("the searched text is in backticks"),
                allowed: ticked(cells[2]),
            }
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of a source file that are code outside its unit tests: comments and everything
/// from `#[cfg(test)]` on (the test module closes each file) are left out.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

#[test]
fn architecture_rules_hold_in_the_code() {
    let rules = layout_rules();
    assert!(
        rules.len() >= 3,
        "the rule table was not read: {}",
        rules.len()
    );
    let root = repo("");
    let mut files = Vec::new();
    rust_files(&repo("src"), &mut files);
    let mut broken = Vec::new();
    for rule in &rules {
        let mut used_in = std::collections::BTreeSet::new();
        for file in &files {
            let rel = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(file).unwrap();
            for (n, line) in code_lines(&text).filter(|(_, l)| l.contains(&rule.needle)) {
                match rule.allowed.iter().find(|a| rel.starts_with(a.as_str())) {
                    Some(allowed) => {
                        used_in.insert(allowed.clone());
                    }
                    None => broken.push(format!(
                        "{rel}:{}: `{}` outside \"{}\": {}",
                        n + 1,
                        rule.needle,
                        rule.name,
                        line.trim()
                    )),
                }
            }
        }
        for allowed in rule.allowed.iter().filter(|a| !used_in.contains(*a)) {
            broken.push(format!(
                "\"{}\" allows {allowed}, which no longer uses `{}`: the table is stale",
                rule.name, rule.needle
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "docs/architecture.md's rules do not hold:\n{}",
        broken.join("\n")
    );
}
