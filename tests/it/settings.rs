//! Settings: one plan of what an agent runs with (the doctor checks what agents use), a
//! type and a range for every setting, refused the same way by `wg config set`, at load and
//! by `wg doctor`.

use crate::common::TestEnv;

/// `[executors.codex] endpoint` points codex elsewhere than `endpoint.url`: the handler
/// honours it, so the doctor must check that one.
#[test]
fn doctor_checks_the_endpoint_an_executor_override_gives_codex() {
    let env = TestEnv::new();
    env.set_config(&[
        ("executor", "codex"),
        ("endpoint.url", "http://127.0.0.1:9/v1"),
        ("executors.codex.endpoint", "http://127.0.0.1:7/v1"),
    ]);
    env.wg(&["add", "C"]).ok();
    let run = env.wg(&["doctor", "--json"]).code(1);
    let text = run.stdout.clone();
    assert!(text.contains("127.0.0.1:7/"), "{run}");
    assert!(!text.contains("127.0.0.1:9/"), "{run}");
}
