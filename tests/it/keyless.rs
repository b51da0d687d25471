//! Keyless agents: a pasted key is refused where a variable name is expected, and the agent's
//! processes never hold the real key (the local credential proxy holds it).

use crate::common::TestEnv;

const PASTED: &str = "sk-proj-Zx81PastedKeyAbcdefghijklmnop0123";

#[test]
fn config_set_refuses_a_pasted_key_and_changes_nothing() {
    let env = TestEnv::new();
    let before = env.snapshot();
    for key in ["endpoint.api_key_env", "executors.claude.api_key_env"] {
        let r = env.wg(&["config", "set", key, PASTED]).code(2);
        assert!(r.stderr.contains("looks like an API key"), "{r}");
        assert!(
            !r.stderr.contains(PASTED) && !r.stdout.contains(PASTED),
            "{r}"
        );
    }
    assert_eq!(env.snapshot(), before, "nothing under .wg/ may change");
    // A name is still accepted.
    env.wg(&["config", "set", "endpoint.api_key_env", "MY_KEY"])
        .ok();
}

#[test]
fn a_config_holding_a_pasted_key_refuses_to_run_and_says_how_to_fix_it() {
    let env = TestEnv::new();
    let path = env.path(".wg/config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let bad = text.replace(
        "api_key_env = \"WG_API_KEY\"",
        &format!("api_key_env = \"{PASTED}\""),
    );
    assert_ne!(bad, text);
    std::fs::write(&path, &bad).unwrap();
    for args in [&["list"][..], &["doctor"], &["handler", "x"]] {
        let r = env.wg(args).code(3);
        assert!(r.stderr.contains("endpoint.api_key_env"), "{r}");
        assert!(
            r.stderr.contains("wg config set endpoint.api_key_env"),
            "{r}"
        );
        assert!(
            !r.stderr.contains(PASTED) && !r.stdout.contains(PASTED),
            "{r}"
        );
    }
    // `wg config set` still works on that file, so the hint can be followed.
    env.wg(&["config", "set", "endpoint.api_key_env", "WG_API_KEY"])
        .ok();
    env.wg(&["list"]).ok();
}

#[test]
fn init_refuses_a_pasted_key_without_quoting_it() {
    let env = TestEnv::bare();
    let r = env.wg(&["init", "--api-key-env", PASTED]).code(2);
    assert!(r.stderr.contains("looks like an API key"), "{r}");
    assert!(!r.stderr.contains(PASTED), "{r}");
    assert!(!env.wg_dir().exists());
}
