//! What a new user meets first: `wg init`'s guidance and settings, errors as JSON when JSON was
//! asked for, and no colour codes where no terminal reads them.

use serde_json::Value;

use crate::common::TestEnv;

#[test]
fn init_prints_the_next_three_commands_and_writes_day_one_settings() {
    let env = TestEnv::bare();
    let run = env.wg(&["init", "-x", "codex"]).ok();
    let next: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| *l != "next:")
        .skip(1)
        .collect();
    assert_eq!(next.len(), 3, "{run}");
    assert!(next[0].trim_start().starts_with("wg doctor"), "{run}");
    assert!(next[1].trim_start().starts_with("wg add"), "{run}");
    assert!(
        next[2].trim_start().starts_with("wg service start"),
        "{run}"
    );

    let config = std::fs::read_to_string(env.wg_dir().join("config.toml")).unwrap();
    for commented in [
        "# model_context_window = 262144",
        "# [workspace]",
        "# [notify]",
        "# mode = \"worktree\"",
        "# url = \"https://hooks.example.com/wg\"",
        "# token_env = \"WG_NOTIFY_TOKEN\"",
    ] {
        assert!(
            config.lines().any(|l| l == commented),
            "no `{commented}` in config.toml:\n{config}"
        );
    }
    // Prices: an example to fill in, never a price that pretends to be current.
    assert!(
        config.lines().any(|l| l == "# [pricing.\"MODEL\"]"),
        "{config}"
    );
    let parsed: toml::Table = config.parse().unwrap();
    assert!(!parsed.contains_key("pricing"), "{config}");
    assert!(
        !config.lines().any(|l| l.contains("_per_mtok = ")
            && l.split(" = ")
                .nth(1)
                .is_some_and(|v| v.trim().parse::<f64>().is_ok())),
        "a number for a price in config.toml:\n{config}"
    );
    // The runaway budgets are on from the first day, not left commented.
    for budget in [
        "max_turns = 50",
        "max_tokens = 2000000",
        "max_wall = \"4h\"",
        "max_repeated_commands = 8",
        "max_commands_per_turn = 400",
    ] {
        assert!(
            config.lines().any(|l| l == budget),
            "no `{budget}` in config.toml:\n{config}"
        );
    }
    // Each one works once uncommented.
    let uncommented = config
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(kv)
                if kv == "[workspace]"
                    || kv == "[notify]"
                    || ["model_context_window", "mode", "url", "token_env"]
                        .iter()
                        .any(|k| kv.starts_with(&format!("{k} = "))) =>
            {
                kv.to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(env.wg_dir().join("config.toml"), uncommented).unwrap();
    let get = env.wg(&["config", "get", "workspace.mode"]).ok();
    assert_eq!(get.stdout.trim(), "worktree");
    let get = env.wg(&["config", "get", "notify.token_env"]).ok();
    assert_eq!(get.stdout.trim(), "WG_NOTIFY_TOKEN");

    let json = env.wg(&["init", "--json", "--dir", "other"]).ok().json();
    assert_eq!(json["next"].as_array().unwrap().len(), 3);
}

fn json_error(stderr: &str) -> Value {
    serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}):\n{stderr}"))
}

#[test]
fn errors_are_json_when_json_was_asked_for() {
    let env = TestEnv::new();
    let run = env.wg(&["show", "nope", "--json"]).code(4);
    assert_eq!(run.stdout, "", "stdout stays for data");
    let err = json_error(&run.stderr);
    assert_eq!(err["error"]["kind"], "not-found");
    assert_eq!(err["error"]["exit_code"], 4);
    assert_eq!(err["error"]["message"], "no task `nope`");
    assert!(err["error"]["hints"][0]
        .as_str()
        .unwrap()
        .contains("wg list"));

    // Even a command line clap rejects.
    let run = env.wg(&["--json", "shw"]).code(2);
    let err = json_error(&run.stderr);
    assert_eq!(err["error"]["kind"], "usage");
    assert_eq!(err["error"]["message"], "unrecognized subcommand 'shw'");

    // Without --json: the usual text.
    let run = env.wg(&["show", "nope"]).code(4);
    assert!(run.stderr.starts_with("error: no task `nope`"), "{run}");
    // --help is not an error, --json or not.
    let run = env.wg(&["--json", "--help"]).ok();
    assert!(run.stdout.contains("Usage"), "{run}");
}

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let mut env = TestEnv::new();
    env.wg(&["add", "One"]).ok();
    env.set_env("WG_LOG", "wg=debug");
    let run = env.wg(&["ready"]).ok();
    assert!(
        run.stderr.contains("DEBUG"),
        "diagnostics were printed:\n{run}"
    );
    assert!(!run.stderr.contains('\u{1b}'), "escape codes in:\n{run:?}");
    let run = env.wg(&["nosuch"]).code(2);
    assert!(!run.stderr.contains('\u{1b}'), "escape codes in:\n{run:?}");
}
