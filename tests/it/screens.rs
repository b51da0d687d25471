//! The screens a person reads, pinned as reviewed snapshots (`tests/it/snapshots/`): `wg show`,
//! `wg list`, `wg status`, `wg service status`, `wg top --once` and `wg doctor`. Times and the
//! project's path change from run to run and are redacted. After an intended change, rerun with
//! `INSTA_UPDATE=always` and review the diff of the `.snap` files.

use crate::common::TestEnv;

/// A small project in every state a person meets first: done, failed, ready, blocked.
fn project() -> TestEnv {
    let env = TestEnv::new();
    env.wg(&[
        "add",
        "Design the API",
        "--id",
        "design",
        "-d",
        "Write docs/api.md",
    ])
    .ok();
    env.wg(&[
        "add",
        "Write the parser",
        "--id",
        "parser",
        "--after",
        "design",
    ])
    .ok();
    env.wg(&["add", "Ship", "--id", "ship", "--after", "parser"])
        .ok();
    env.wg(&["add", "Docs", "--id", "docs"]).ok();
    env.wg(&["done", "design"]).ok();
    env.wg(&["fail", "docs", "--reason", "no writer"]).ok();
    env
}

/// stdout and stderr of `wg ARGS` with its exit code, as a person sees them.
fn screen(env: &TestEnv, args: &[&str]) -> String {
    let run = env.wg(args);
    format!(
        "$ wg {}  (exit {})\n{}{}",
        args.join(" "),
        run.code,
        run.stdout,
        run.stderr
    )
}

fn settings(env: &TestEnv) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[time]");
    s.add_filter(&regex_escape(&env.root.display().to_string()), "[project]");
    s.set_prepend_module_to_snapshot(false);
    s
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

#[test]
fn the_screens_a_person_reads() {
    let env = project();
    settings(&env).bind(|| {
        insta::assert_snapshot!("show", screen(&env, &["show", "parser"]));
        insta::assert_snapshot!("show_failed", screen(&env, &["show", "docs"]));
        insta::assert_snapshot!("list", screen(&env, &["list"]));
        insta::assert_snapshot!("status", screen(&env, &["status"]));
        insta::assert_snapshot!("service_status", screen(&env, &["service", "status"]));
        insta::assert_snapshot!("top_once", screen(&env, &["top", "--once"]));
        insta::assert_snapshot!("doctor", screen(&env, &["doctor"]));
    });
}
