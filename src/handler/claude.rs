//! The `claude` executor's part of a turn: the `claude -p` command line and environment, and
//! its stream-json events folded into the same [`TurnEvents`] the codex turns fill. Pure: the
//! facts it encodes were measured on Claude Code 2.1.330 (docs/claude.md).

use serde_json::Value;

use super::agent::{AgentCli, Invocation};
use super::error::SessionError;
use super::events::{Dialect, TurnEvents};
use super::files::HandlerLog;
use super::proxy::anthropic_base_url;
use super::resolve::Resolved;
use crate::config::Config;
use crate::conversation::Usage;
use crate::outcome::{self, ErrorKind};

/// The env vars the CLI reads the key from: `x-api-key` and `Authorization: Bearer`.
pub const KEY_VARS: [&str; 2] = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"];

/// Everything the claude command depends on (the key itself is added by the caller).
#[derive(Debug, Clone)]
pub struct ClaudeParams {
    pub model: String,
    /// The endpoint as configured; a trailing `/v1` is dropped (the CLI appends
    /// `/v1/messages`).
    pub endpoint: Option<String>,
    /// `bypass`, `allowed-tools` or a `--permission-mode` value.
    pub permissions: String,
    pub allowed_tools: Vec<String>,
    /// `api-key` or `bearer`.
    pub auth: String,
    pub config_dir: String,
    /// The script the CLI sources before every Bash command (it unsets the key).
    pub env_file: String,
    pub max_retries: u32,
    pub api_timeout_ms: u64,
    pub stream_idle_ms: u64,
    /// Running as uid 0: bypass mode then needs IS_SANDBOX=1 or the CLI refuses to start.
    pub is_root: bool,
}

/// The argv after the binary. The prompt comes on stdin, which is then closed.
pub fn claude_args(p: &ClaudeParams) -> Vec<String> {
    let mut a: Vec<String> = [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        // Every turn replays the conversation, so no transcript is ever resumed.
        "--no-session-persistence",
        // Always explicit: without it (or with an alias) the CLI picks a Claude model id.
        "--model",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(p.model.clone());
    match p.permissions.as_str() {
        "bypass" => a.push("--dangerously-skip-permissions".into()),
        "allowed-tools" => {
            a.push("--allowedTools".into());
            a.push(p.allowed_tools.join(","));
        }
        mode => {
            a.push("--permission-mode".into());
            a.push(mode.to_string());
        }
    }
    a
}

/// The env var the key goes in, for `auth`.
pub fn key_var(auth: &str) -> &'static str {
    if auth == "bearer" {
        KEY_VARS[1]
    } else {
        KEY_VARS[0]
    }
}

/// The environment of the CLI, without the key.
pub fn claude_env(p: &ClaudeParams) -> Vec<(String, String)> {
    let mut e: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| e.push((k.to_string(), v));
    if let Some(url) = &p.endpoint {
        set("ANTHROPIC_BASE_URL", anthropic_base_url(url));
    }
    // State (.claude.json, backups, shell snapshots) stays in the task's own dir, and a
    // person's ~/.claude settings and login stay out of the run.
    set("CLAUDE_CONFIG_DIR", p.config_dir.clone());
    // Offline and fail-fast: without it the CLI calls home (telemetry, feature flags, MCP
    // registry), which behind a black-holed network costs seconds per turn.
    set("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into());
    set("DISABLE_AUTOUPDATER", "1".into());
    // The CLI's default is 10 retries (about 3 minutes, even for a 401).
    set("CLAUDE_CODE_MAX_RETRIES", p.max_retries.to_string());
    set("API_TIMEOUT_MS", p.api_timeout_ms.to_string());
    // The stall watchdog; CLAUDE_STREAM_IDLE_TIMEOUT_MS cannot go below 300 s, this one can.
    set(
        "CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS",
        p.stream_idle_ms.max(10_000).to_string(),
    );
    // The Bash tool inherits the CLI's environment, key included (measured); this script,
    // sourced before every command, removes it.
    set("CLAUDE_ENV_FILE", p.env_file.clone());
    if p.is_root && p.permissions == "bypass" {
        set("IS_SANDBOX", "1".into());
    }
    e
}

/// The contents of the env file: unsets every variable that may hold the key.
pub fn env_file_script(key_env: &str) -> String {
    let mut names: Vec<&str> = KEY_VARS.to_vec();
    if !names.contains(&key_env) && is_name(key_env) {
        names.push(key_env);
    }
    format!(
        "# Written by wg: commands the agent runs must not see the API key.\nunset {}\n",
        names.join(" ")
    )
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// What kind of failure a claude turn ended in: the HTTP status when the CLI reports one,
/// else its message (measured texts: reference §6).
pub fn classify_claude(status: Option<u64>, message: &str) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    if let Some(k) = status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| ErrorKind::from_status(s, message))
    {
        return k;
    }
    if m.contains("not logged in") {
        ErrorKind::KeyMissing
    } else if m.contains("connection refused")
        || m.contains("econnrefused")
        || m.contains("unable to connect")
        || m.contains("enotfound")
    {
        ErrorKind::Unreachable
    } else if m.contains("timed out") || m.contains("stream") && m.contains("idle") {
        ErrorKind::StreamBroken
    } else if m.contains("cannot be used with root") {
        ErrorKind::BadConfig
    } else {
        outcome::classify_text(message)
    }
}

/// claude behind [`AgentCli`]: the key under the variable the CLI reads, a per-task config
/// dir, and an env file that keeps the key from the agent's commands.
pub struct Claude;

impl AgentCli for Claude {
    fn dialect(&self) -> Dialect {
        Dialect::Claude
    }

    fn invocation(
        &self,
        r: &Resolved,
        config: &Config,
        _log: &mut HandlerLog,
        _turn: u64,
    ) -> Result<Invocation, SessionError> {
        let c = &config.claude;
        crate::store::nofollow::create_dir_all(&r.claude_dir)?;
        let env_file = r.claude_dir.join("env.sh");
        crate::store::atomic::write_atomic(
            &env_file,
            env_file_script(&r.key_env).as_bytes(),
            false,
        )
        .map_err(|e| SessionError::Io(std::io::Error::other(e.to_string())))?;
        // SAFETY: geteuid has no preconditions and touches no memory.
        let is_root = unsafe { libc::geteuid() } == 0;
        let p = ClaudeParams {
            model: r.model.clone().unwrap_or_default(),
            // The credential proxy, which forwards to the endpoint with the real key.
            endpoint: match &r.bridge {
                Some(b) => Some(b.base_url().to_string()),
                None => r.endpoint.clone(),
            },
            permissions: c.permissions.clone(),
            allowed_tools: c.allowed_tools.clone(),
            auth: c.auth.to_string(),
            config_dir: r.claude_dir.display().to_string(),
            env_file: env_file.display().to_string(),
            max_retries: c.max_retries,
            api_timeout_ms: c.api_timeout.get().as_millis() as u64,
            stream_idle_ms: c.stream_idle_timeout.get().as_millis() as u64,
            is_root,
        };
        let mut env = claude_env(&p);
        // The turn's token under the variable the CLI reads the key from. The environment is
        // rebuilt from the allowlist, so no other key variable reaches the CLI.
        if let Some(b) = &r.bridge {
            env.push((key_var(c.auth.as_str()).to_string(), b.token()));
        }
        Ok(Invocation {
            args: claude_args(&p),
            env,
            home: ("claude_config_dir", r.claude_dir.display().to_string()),
        })
    }

    fn classify(&self, events: &TurnEvents, detail: &str) -> ErrorKind {
        classify_claude(events.error_status, detail)
    }

    /// The cost is added by the session for every agent ([pricing]).
    fn reply_extra(
        &self,
        _r: &Resolved,
        _config: &Config,
        version: Option<&str>,
        _usage: &Usage,
        extra: &mut serde_json::Map<String, Value>,
    ) {
        extra.insert("executor".into(), "claude".into());
        if let Some(v) = version {
            extra.insert("claude_version".into(), v.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_events::claude::tool_exit_code;
    use crate::handler::events::{parse_line, Dialect, Line};

    fn run(sample: &str) -> TurnEvents {
        let mut t = TurnEvents::new(Dialect::Claude);
        for line in sample.lines() {
            if let Line::Event(v) = parse_line(line) {
                t.feed(&v);
            }
        }
        t
    }

    const OK: &str = include_str!("../../tests/fixtures/claude-events/events-ok.jsonl");
    const TOOL: &str = include_str!("../../tests/fixtures/claude-events/events-tool.jsonl");
    const E401: &str =
        include_str!("../../tests/fixtures/claude-events/events-err-401-retries1.jsonl");
    const E500: &str =
        include_str!("../../tests/fixtures/claude-events/events-err-500-retries1.jsonl");
    const E429: &str =
        include_str!("../../tests/fixtures/claude-events/events-err-429-retries1.jsonl");
    const REFUSED: &str =
        include_str!("../../tests/fixtures/claude-events/events-err-refused.jsonl");
    const NOAUTH: &str = include_str!("../../tests/fixtures/claude-events/events-auth-none.jsonl");
    const STALL: &str =
        include_str!("../../tests/fixtures/claude-events/events-err-stall-byteidle10s.jsonl");

    fn params() -> ClaudeParams {
        ClaudeParams {
            model: "qwen3-coder".into(),
            endpoint: Some("http://127.0.0.1:9/v1/".into()),
            permissions: "bypass".into(),
            allowed_tools: vec!["Bash".into(), "Edit".into()],
            auth: "api-key".into(),
            config_dir: "/p/.wg/tasks/t/claude".into(),
            env_file: "/p/.wg/tasks/t/claude/env.sh".into(),
            max_retries: 1,
            api_timeout_ms: 300_000,
            stream_idle_ms: 1_000,
            is_root: true,
        }
    }

    fn get<'a>(e: &'a [(String, String)], k: &str) -> Option<&'a str> {
        e.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn command_is_print_mode_with_explicit_model_and_bypass() {
        let p = params();
        let a = claude_args(&p);
        assert_eq!(
            a,
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--no-session-persistence",
                "--model",
                "qwen3-coder",
                "--dangerously-skip-permissions"
            ]
        );
        let e = claude_env(&p);
        assert_eq!(get(&e, "ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:9"));
        assert_eq!(get(&e, "IS_SANDBOX"), Some("1"));
        assert_eq!(
            get(&e, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"),
            Some("1")
        );
        assert_eq!(get(&e, "CLAUDE_CODE_MAX_RETRIES"), Some("1"));
        // Clamped to the CLI's own floor.
        assert_eq!(get(&e, "CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS"), Some("10000"));
        assert!(e.iter().all(|(k, _)| !KEY_VARS.contains(&k.as_str())));

        let mut p = params();
        p.permissions = "allowed-tools".into();
        p.is_root = true;
        let a = claude_args(&p);
        assert!(a.ends_with(&["--allowedTools".into(), "Bash,Edit".into()]));
        assert_eq!(get(&claude_env(&p), "IS_SANDBOX"), None);
        p.permissions = "acceptEdits".into();
        assert!(claude_args(&p).ends_with(&["--permission-mode".into(), "acceptEdits".into()]));
        assert_eq!(
            anthropic_base_url("http://h/gw/anthropic"),
            "http://h/gw/anthropic"
        );
        assert_eq!(key_var("bearer"), "ANTHROPIC_AUTH_TOKEN");
        assert_eq!(
            env_file_script("MY_KEY").lines().last(),
            Some("unset ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN MY_KEY")
        );
        assert!(!env_file_script("x; rm -rf /").contains("rm"));
    }

    #[test]
    fn ok_and_tool_turns() {
        let t = run(OK);
        assert!(t.succeeded(Some(0)) && !t.succeeded(Some(1)));
        assert_eq!(t.reply.as_deref(), Some("Hello from the stub."));
        assert_eq!((t.usage.input_tokens, t.usage.output_tokens), (2533, 12));
        assert!(t.thread_id.is_some());
        let t = run(TOOL);
        assert!(t.succeeded(Some(0)));
        assert_eq!(t.commands.len(), 1);
        assert_eq!(t.commands[0].command, "echo done > marker.txt");
        assert_eq!(t.commands[0].status, "completed");
        assert_eq!(t.commands[0].exit_code, Some(0));
    }

    #[test]
    fn bash_results_carry_exit_codes_and_other_tools_none() {
        let sigterm = include_str!(
            "../../tests/fixtures/claude-events/events-tool-sigterm-during-bash.jsonl"
        );
        let t = run(sigterm);
        assert_eq!(t.commands.last().and_then(|c| c.exit_code), Some(137));
        assert_eq!(tool_exit_code("Exit code 2\nboom", true, true), Some(2));
        assert_eq!(tool_exit_code("fine", false, true), Some(0));
        assert_eq!(tool_exit_code("no such file", true, false), None);
        assert_eq!(tool_exit_code("weird", true, true), None);
    }

    #[test]
    fn failures_are_judged_by_is_error_and_classified_by_status() {
        for (sample, kind) in [
            (E401, ErrorKind::Unauthorized),
            (E500, ErrorKind::ServerError),
            (E429, ErrorKind::RateLimited),
            (REFUSED, ErrorKind::Unreachable),
            (NOAUTH, ErrorKind::KeyMissing),
        ] {
            let t = run(sample);
            assert!(!t.succeeded(Some(0)), "{sample}");
            let msg = t.failed.as_deref().unwrap();
            assert_eq!(classify_claude(t.error_status, msg), kind, "{msg}");
        }
        assert!(!run(E401).warnings.is_empty(), "api_retry is a warning");
        // A stall the CLI recovered from by retrying without streaming is a success.
        assert!(run(STALL).succeeded(Some(0)));
    }

    #[test]
    fn unknown_and_odd_events_are_tolerated() {
        let mut t = TurnEvents::new(Dialect::Claude);
        for l in [
            r#"{"type":"something_new","x":1}"#,
            r#"{"type":"assistant"}"#,
            r#"{"type":"user","message":{"content":"text"}}"#,
            r#"{"type":"result","subtype":"success","is_error":false}"#,
        ] {
            let Line::Event(v) = parse_line(l) else {
                panic!()
            };
            t.feed(&v);
        }
        assert!(t.succeeded(Some(0)) && t.reply.is_none() && t.events == 4);
    }
}
