//! A test that needs a real CLI says when it did not test: with the CLIs missing it fails and
//! names the install command; skipped on purpose it passes and the run counts the skips.
//!
//! Runs this very test binary again, limited to one codex test and one Claude Code test, with
//! `WG_TEST_CODEX` and `WG_TEST_CLAUDE` naming files that do not exist (a set variable is taken
//! at its word: the same as a machine without the CLIs).

use std::process::{Command, Stdio};

use crate::common::{to_run, Run, SKIP_VAR};

/// Needs the real codex, and the real Claude Code.
const NEEDS_CLIS: [&str; 2] = [
    "handler_failures::http_401_is_an_error_reply_about_the_key",
    "handler_claude::claude_401_and_500_end_fast_with_an_error_reply",
];

fn run_without_clis(extra: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.args(NEEDS_CLIS)
        .args(["--exact", "--test-threads=1"])
        .env("WG_TEST_CODEX", "/nonexistent/wg-test/codex")
        .env("WG_TEST_CLAUDE", "/nonexistent/wg-test/claude")
        .env_remove("CI")
        .env_remove(SKIP_VAR)
        .stdin(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let run = to_run(cmd.output().expect("run the test binary"));
    // The filters matched: both tests ran (a typo in a name would make this vacuous).
    assert!(
        run.stdout.contains("running 2 tests"),
        "the filters no longer name two tests:\n{run}"
    );
    run
}

#[test]
fn missing_clis_fail_the_tests_and_name_the_install_command() {
    let run = run_without_clis(&[]);
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains("test result: FAILED. 0 passed; 2 failed"),
        "{run}"
    );
    for (name, script) in [
        ("codex", "scripts/install-codex.sh"),
        ("Claude Code", "scripts/install-claude.sh"),
    ] {
        assert!(
            run.stdout.contains(&format!(
                "this test needs the real {name} CLI, which is not installed"
            )),
            "{run}"
        );
        assert!(run.stdout.contains(script), "{run}");
    }
    assert!(run.stdout.contains("./scripts/test.sh"), "{run}");
    assert!(run.stdout.contains(&format!("{SKIP_VAR}=1")), "{run}");
}

#[test]
fn skipping_on_purpose_passes_and_counts_the_skipped_tests() {
    let run = run_without_clis(&[(SKIP_VAR, "1")]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("SKIPPED 2 test(s) that did not run"),
        "{run}"
    );
    assert!(
        run.stderr.contains("the real codex CLI is not installed")
            && run
                .stderr
                .contains("the real Claude Code CLI is not installed"),
        "{run}"
    );
}

#[test]
fn under_ci_a_skip_request_is_not_honoured() {
    let run = run_without_clis(&[(SKIP_VAR, "1"), ("CI", "true")]);
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stdout.contains("not honoured under CI=true"), "{run}");
    assert!(!run.stderr.contains("SKIPPED"), "{run}");
}
