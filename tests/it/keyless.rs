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

/// The real agents, run as a user other than root (root reads every process's environ), with
/// a command that dumps its own environment and every `/proc/*/environ` and `/proc/*/cmdline`
/// it can read. The key must be nowhere in that dump, while the endpoint stub still gets it.
mod real_agents {
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::Stdio;

    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer};

    use crate::common::project::{claude_env, codex_env};
    use crate::common::stub::{messages, v1};
    use crate::common::{to_run, TestEnv};

    const USER: &str = "wgkeyless";

    /// A key no other process on the machine holds: a hit can only be a leak of this run's.
    fn unique_key() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("sk-keyless-{:x}-{nanos:x}", std::process::id())
    }

    /// The user the agent runs as: `wgkeyless`, created when the tests run as root; the
    /// current user otherwise (already not root).
    fn agent_user() -> Option<(u32, u32)> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        static CREATED: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = CREATED.lock().unwrap();
        let id = |flag: &str| {
            std::process::Command::new("id")
                .args([flag, USER])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<u32>()
                        .ok()
                })
        };
        if id("-u").is_none() {
            let out = std::process::Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/bin/sh", USER])
                .output()
                .expect("useradd runs (the test runs as root and needs a second user)");
            assert!(
                out.status.success() || id("-u").is_some(),
                "useradd {USER}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some((id("-u").unwrap(), id("-g").unwrap()))
    }

    fn chown_all(dir: &Path, uid: u32, gid: u32) {
        let st = std::process::Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Written into the project: the agent's command. Reads what it can, writes `seen.txt`,
    /// then closes the task.
    const DUMP: &str = r#"#!/bin/sh
{
  echo "== own env"
  env
  for d in /proc/[0-9]*; do
    for f in environ cmdline; do
      if c=$(tr '\0' '\n' < "$d/$f"); then
        echo "== $d/$f"
        echo "$c"
      fi
    done
  done
} > seen.txt 2>/dev/null
wg done "$WG_TASK_ID"
"#;

    /// Runs `wg handler ID` as the agent user with the key (and variants of it under the usual
    /// key variables) in its environment; returns the dump, the handler's pid and its output.
    fn run_handler(env: &TestEnv, id: &str, key: &str) -> (String, u32, crate::common::Run) {
        std::fs::write(env.path("dump.sh"), DUMP).unwrap();
        let mut cmd = env.command(&["handler", id]);
        // Also the variables a person's shell often exports: `wg handler` run by hand gives
        // the agent only the allowlisted environment, so none of them may reach it either.
        cmd.env("WG_API_KEY", key)
            .env("OPENAI_API_KEY", format!("{key}-openai"))
            .env("ANTHROPIC_API_KEY", format!("{key}-anthropic"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = agent_user() {
            chown_all(env.tmp.path(), uid, gid);
            // std drops root's supplementary groups when it changes the uid.
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        let run = to_run(child.wait_with_output().unwrap());
        // Lossy: other processes' environ and cmdline may hold any bytes, and one of them
        // must not turn the whole dump into nothing.
        let seen = std::fs::read(env.path("seen.txt"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        (seen, pid, run)
    }

    /// Everything that tells why the agent's command did not dump: the handler's output, the
    /// task's `handler.log` and events (the command's own output is there), the start of the dump.
    fn diagnose(env: &TestEnv, seen: &str, run: &crate::common::Run) -> String {
        let task = env.wg_dir().join("tasks").join("dump");
        let file = |name: &str| std::fs::read_to_string(task.join(name)).unwrap_or_default();
        let head: String = seen.chars().take(2000).collect();
        format!(
            "{run}\n--- handler.log\n{}\n--- events.jsonl\n{}\n--- seen.txt ({} bytes)\n{head}",
            file("handler.log"),
            file("events.jsonl"),
            seen.len()
        )
    }

    /// What every variant must show. `host_pids`: the command sees the machine's processes
    /// (codex's workspace-write sandbox gives it a PID namespace of its own: measured, three
    /// processes, none of wg's).
    fn assert_keyless(
        env: &TestEnv,
        key: &str,
        seen: &str,
        handler_pid: u32,
        run: &crate::common::Run,
        host_pids: bool,
    ) {
        let why = || diagnose(env, seen, run);
        assert_eq!(run.code, 0, "{}", why());
        // The dump is real: the command's own environment, and other processes' files.
        assert!(seen.contains("WG_TASK_ID="), "no dump:\n{}", why());
        let environs = seen.matches("/environ\n").count();
        let cmdlines = seen.matches("/cmdline\n").count();
        let min = if host_pids { 10 } else { 2 };
        assert!(
            environs >= 2 && cmdlines >= min,
            "{environs} environ, {cmdlines} cmdline read"
        );
        assert!(
            !seen.contains(key),
            "the agent's command found the key:\n{seen}"
        );
        // The handler holds the key but is non-dumpable: its environ is not readable.
        assert!(
            !seen.contains(&format!("== /proc/{handler_pid}/environ\n")),
            "the handler's environ was readable"
        );
        if host_pids {
            assert!(seen.contains(&format!("== /proc/{handler_pid}/cmdline\n")));
        }
        for (p, bytes) in env.snapshot() {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(key),
                "the key is in {}",
                p.display()
            );
        }
        assert!(!run.stdout.contains(key) && !run.stderr.contains(key));
    }

    /// `wire`: `responses` (the credential proxy passes requests through) or `chat` (wg's
    /// Chat Completions bridge).
    async fn codex_case(sandbox: &str, wire: &str) {
        let server = MockServer::start().await;
        let dump = "sh dump.sh".to_string();
        let stub = Mock::given(method("POST"));
        match wire {
            "chat" => stub
                .and(path("/v1/chat/completions"))
                .respond_with(crate::common::stub::ChatTool(dump)),
            _ => stub
                .and(path("/v1/responses"))
                .respond_with(crate::common::stub::ResponsesTool(dump)),
        }
        .mount(&server)
        .await;
        let Some(mut env) = codex_env(&v1(&server)) else {
            return;
        };
        env.wg(&["config", "set", "endpoint.wire_api", wire]).ok();
        env.extra_env.retain(|(k, _)| k != "WG_API_KEY");
        env.wg(&["config", "set", "codex.sandbox", sandbox]).ok();
        env.wg(&["config", "set", "handler.idle_timeout", "60s"])
            .ok();
        env.wg(&["add", "Dump"]).ok();
        let key = unique_key();
        let (seen, pid, run) = tokio::task::block_in_place(|| run_handler(&env, "dump", &key));
        let host_pids = sandbox == "danger-full-access";
        assert_keyless(&env, &key, &seen, pid, &run, host_pids);
        if host_pids {
            // codex itself was readable and held only the turn's token.
            assert!(
                seen.contains("WG_PROXY_TOKEN="),
                "codex's environ was not read:\n{seen}"
            );
        }
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(reqs.len(), 2, "{run}");
        for r in reqs {
            assert_eq!(
                r.headers.get("authorization").unwrap().to_str().unwrap(),
                format!("Bearer {key}"),
                "the endpoint gets the real key"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn codex_workspace_write_agents_find_no_key() {
        codex_case("workspace-write", "responses").await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn codex_danger_full_access_agents_find_no_key() {
        codex_case("danger-full-access", "responses").await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn codex_through_the_chat_bridge_agents_find_no_key() {
        codex_case("danger-full-access", "chat").await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn claude_agents_find_no_key() {
        let server = MockServer::start().await;
        messages()
            .respond_with(crate::common::stub::ClaudeTool("sh dump.sh".into()))
            .mount(&server)
            .await;
        let Some(mut env) = claude_env(&server.uri()) else {
            return;
        };
        env.extra_env.retain(|(k, _)| k != "WG_API_KEY");
        env.wg(&["add", "Dump"]).ok();
        let key = unique_key();
        let (seen, pid, run) = tokio::task::block_in_place(|| run_handler(&env, "dump", &key));
        assert_keyless(&env, &key, &seen, pid, &run, true);
        // The CLI itself was readable and held only the token.
        assert!(
            seen.contains("ANTHROPIC_BASE_URL=http://127.0.0.1:"),
            "{seen}"
        );
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(reqs.len(), 2, "{run}");
        for r in reqs {
            assert_eq!(r.headers.get("x-api-key").unwrap().to_str().unwrap(), key);
        }
    }
}
