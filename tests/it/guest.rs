//! The agent is a guest: no agent binary is ever given the key, not even for a version or
//! health check.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::project::{codex_env, task};
use crate::common::service::Coordinator;
use crate::common::stub::{responses_stub, v1, Finisher, KEY};
use crate::common::TestEnv;

/// What the caller's shell might export besides `WG_API_KEY`.
const SHELL_KEY: &str = "sk-from-the-users-shell-4242";

/// Replaces `codex.binary` by a wrapper that appends its arguments and its whole environment
/// to `env.log`, then runs the real codex. Returns the log's path.
fn env_logging_codex(env: &TestEnv) -> std::path::PathBuf {
    let real = env.wg(&["config", "get", "codex.binary"]).ok().stdout;
    // In the workspace: the only place the boxed turn can write.
    let log = env.root.join("env.log");
    let wrapper = env.bin.join("codex-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"=== $*\" >> '{log}'\nenv >> '{log}'\nexec '{real}' \"$@\"\n",
            log = log.display(),
            real = real.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.wg(&["config", "set", "codex.binary", wrapper.to_str().unwrap()])
        .ok();
    log
}

#[tokio::test(flavor = "multi_thread")]
async fn version_and_health_checks_never_see_the_key() {
    let server = responses_stub(Finisher).await;
    let Some(mut env) = codex_env(&v1(&server)) else {
        return;
    };
    env.set_env("OPENAI_API_KEY", SHELL_KEY);
    env.set_env("ANTHROPIC_API_KEY", SHELL_KEY);
    let log = env_logging_codex(&env);
    env.wg(&["add", "First", "--id", "first"]).ok();
    // The coordinator's health check, then the handler's version probe on the project's
    // first turn, then the turn itself: all three through the wrapper.
    let run = Coordinator::start(&env, &["--until-done"]).wait(Duration::from_secs(90));
    assert_eq!(task(&env, "first")["status"], "done", "{run}");
    let seen = std::fs::read_to_string(&log).unwrap();
    let versions = seen.matches("=== --version").count();
    assert!(
        versions >= 2,
        "health check and version probe: {versions}\n{seen}"
    );
    assert!(seen.contains("=== exec"), "the turn itself ran: {seen}");
    for secret in [KEY, SHELL_KEY] {
        assert!(
            !seen.contains(secret),
            "a codex process got the key:\n{seen}"
        );
    }
    for name in ["WG_API_KEY=", "OPENAI_API_KEY=", "ANTHROPIC_API_KEY="] {
        assert!(
            !seen.lines().any(|l| l.starts_with(name)),
            "{name} reached codex:\n{seen}"
        );
    }
    // `wg doctor`'s version check too.
    std::fs::remove_file(&log).unwrap();
    let _ = env.wg(&["doctor"]);
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains("=== --version"), "{seen}");
    assert!(!seen.contains(KEY) && !seen.contains(SHELL_KEY), "{seen}");
}
