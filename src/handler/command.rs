//! The `codex exec` command line and environment of one turn. Pure: the facts it encodes were
//! measured on codex 0.169.0; docs/handler-log.md shows the resulting command line.

use crate::config::Sandbox;
use std::path::PathBuf;

/// The provider wg points codex at.
pub const PROVIDER_ID: &str = "wg";

/// An OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL including `/v1`; codex POSTs to `{url}/responses`.
    pub url: String,
    /// Name of the env var holding the key (`env_key`); the key itself never enters argv.
    pub key_env: String,
    pub model_context_window: Option<u64>,
}

/// Everything the codex command depends on.
#[derive(Debug, Clone)]
pub struct CodexParams {
    pub binary: String,
    pub workdir: PathBuf,
    /// Extra writable roots (`--add-dir`), honoured by the `workspace-write` sandbox.
    pub add_dirs: Vec<PathBuf>,
    pub model: Option<String>,
    pub endpoint: Option<Endpoint>,
    pub sandbox: crate::config::Sandbox,
    pub request_max_retries: u32,
    pub stream_max_retries: u32,
    pub stream_idle_timeout_ms: u64,
}

/// A TOML basic string: quoted, with `\`, `"` and control characters escaped. codex parses
/// every `-c` value as TOML and silently takes an unparsable one as a raw string, while a
/// value that parses as a number or bool is a type error; quoting always is the safe path.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn set(argv: &mut Vec<String>, key: &str, value: impl Into<String>) {
    argv.push("-c".into());
    argv.push(format!("{key}={}", value.into()));
}

/// The argv after the binary: `exec ... -` (the prompt comes on stdin).
pub fn codex_args(p: &CodexParams) -> Vec<String> {
    let mut a: Vec<String> = [
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--color",
        "never",
        // Every turn replays the conversation, so a rollout file is never resumed: no
        // session files pile up in CODEX_HOME, and the turn starts about 20 ms faster.
        "--ephemeral",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("-C".into());
    a.push(p.workdir.display().to_string());
    if let Some(m) = &p.model {
        // `-m` is a plain string to codex, not TOML.
        a.push("-m".into());
        a.push(m.clone());
    }
    match p.sandbox {
        Sandbox::Bypass => a.push("--dangerously-bypass-approvals-and-sandbox".into()),
        s => {
            a.push("--sandbox".into());
            a.push(s.to_string());
            if s == Sandbox::WorkspaceWrite {
                for d in &p.add_dirs {
                    a.push("--add-dir".into());
                    a.push(d.display().to_string());
                }
            }
        }
    }
    // Commands the agent runs must see the parent's PATH (with `wg`) and WG_*: a login shell
    // would reset PATH from /etc/profile.
    set(&mut a, "allow_login_shell", "false");
    if let Some(e) = &p.endpoint {
        let pre = format!("model_providers.{PROVIDER_ID}");
        set(&mut a, "model_provider", toml_str(PROVIDER_ID));
        set(&mut a, &format!("{pre}.name"), toml_str(PROVIDER_ID));
        set(&mut a, &format!("{pre}.base_url"), toml_str(&e.url));
        set(&mut a, &format!("{pre}.env_key"), toml_str(&e.key_env));
        set(&mut a, &format!("{pre}.wire_api"), toml_str("responses"));
        set(
            &mut a,
            &format!("{pre}.request_max_retries"),
            p.request_max_retries.to_string(),
        );
        set(
            &mut a,
            &format!("{pre}.stream_max_retries"),
            p.stream_max_retries.to_string(),
        );
        set(
            &mut a,
            &format!("{pre}.stream_idle_timeout_ms"),
            p.stream_idle_timeout_ms.to_string(),
        );
        // The key reaches codex (it sends it as the bearer token) but not the commands the
        // agent runs, which inherit codex's environment by default.
        set(
            &mut a,
            "shell_environment_policy.exclude",
            format!("[{}]", toml_str(&e.key_env)),
        );
        // Offline and fail-fast: no analytics or plugin traffic (either can stall a turn for
        // seconds), no shell snapshot, and no endless reconnect on connection refused.
        set(&mut a, "analytics.enabled", "false");
        set(&mut a, "check_for_update_on_startup", "false");
        // Lean request: third-party Responses servers may reject the web_search and
        // namespace tools, and reasoning summaries are OpenAI-only.
        set(&mut a, "web_search", toml_str("disabled"));
        set(&mut a, "model_reasoning_summary", toml_str("none"));
        for feature in [
            "plugins",
            "shell_snapshot",
            "unbounded_connection_retries",
            "multi_agent",
            "goals",
            "view_image",
        ] {
            a.push("--disable".into());
            a.push(feature.into());
        }
        if let Some(w) = e.model_context_window {
            set(&mut a, "model_context_window", w.to_string());
        }
    }
    a.push("-".into());
    a
}

/// Replaces every occurrence of each secret in `s` (secrets shorter than 4 characters are
/// left alone: they would shred ordinary text).
pub fn redact(s: &str, secrets: &[&str]) -> String {
    let mut out = s.to_string();
    for secret in secrets {
        if secret.len() >= 4 && out.contains(secret) {
            out = out.replace(secret, "[REDACTED]");
        }
    }
    out
}

/// An argv as one shell-quoted line, for logs.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> CodexParams {
        CodexParams {
            binary: "codex".into(),
            workdir: "/p".into(),
            add_dirs: Vec::new(),
            model: Some("qwen3-coder".into()),
            endpoint: Some(Endpoint {
                url: "http://127.0.0.1:8000/v1".into(),
                key_env: "WG_API_KEY".into(),
                model_context_window: None,
            }),
            sandbox: Sandbox::WorkspaceWrite,
            request_max_retries: 0,
            stream_max_retries: 0,
            stream_idle_timeout_ms: 3000,
        }
    }

    fn has_pair(a: &[String], flag: &str, value: &str) -> bool {
        a.windows(2).any(|w| w[0] == flag && w[1] == value)
    }

    #[test]
    fn endpoint_command_has_provider_offline_and_fail_fast_settings() {
        let a = codex_args(&params());
        assert_eq!(
            &a[..5],
            [
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--color",
                "never"
            ]
        );
        assert!(has_pair(&a, "-C", "/p") && has_pair(&a, "-m", "qwen3-coder"));
        assert!(has_pair(&a, "--sandbox", "workspace-write"));
        for c in [
            r#"model_provider="wg""#,
            r#"model_providers.wg.name="wg""#,
            r#"model_providers.wg.base_url="http://127.0.0.1:8000/v1""#,
            r#"model_providers.wg.env_key="WG_API_KEY""#,
            r#"model_providers.wg.wire_api="responses""#,
            "model_providers.wg.request_max_retries=0",
            "model_providers.wg.stream_max_retries=0",
            "model_providers.wg.stream_idle_timeout_ms=3000",
            "analytics.enabled=false",
            "allow_login_shell=false",
            r#"shell_environment_policy.exclude=["WG_API_KEY"]"#,
        ] {
            assert!(has_pair(&a, "-c", c), "missing -c {c} in {a:?}");
        }
        for f in ["plugins", "shell_snapshot", "unbounded_connection_retries"] {
            assert!(has_pair(&a, "--disable", f), "{f}");
        }
        assert_eq!(a.last().map(String::as_str), Some("-"));
        assert!(!a.iter().any(|x| x.contains("model_context_window")));
    }

    #[test]
    fn strings_are_toml_quoted_and_escaped() {
        let mut p = params();
        p.model = Some(r#"qwen "quoted" \ model"#.into());
        p.endpoint.as_mut().unwrap().url = "https://h:1/v1?api-version=2024-01&x=\"y\"".into();
        p.endpoint.as_mut().unwrap().model_context_window = Some(131072);
        let a = codex_args(&p);
        // -m is not TOML: passed as is.
        assert!(has_pair(&a, "-m", r#"qwen "quoted" \ model"#));
        let url = a
            .iter()
            .find(|x| x.starts_with("model_providers.wg.base_url="))
            .unwrap();
        let value = url.split_once('=').unwrap().1;
        let parsed: toml::Value = toml::from_str(&format!("v = {value}")).unwrap();
        assert_eq!(
            parsed["v"].as_str(),
            Some("https://h:1/v1?api-version=2024-01&x=\"y\"")
        );
        assert!(has_pair(&a, "-c", "model_context_window=131072"));
        let weird = toml_str("a\u{1}b\nc");
        let parsed: toml::Value = toml::from_str(&format!("v = {weird}")).unwrap();
        assert_eq!(parsed["v"].as_str(), Some("a\u{1}b\nc"));
    }

    #[test]
    fn no_endpoint_means_the_users_own_setup() {
        let mut p = params();
        p.endpoint = None;
        p.model = None;
        let a = codex_args(&p);
        assert!(!a.iter().any(|x| x.contains("model_provider")));
        assert!(!a.iter().any(|x| x == "-m"));
        assert!(has_pair(&a, "-c", "allow_login_shell=false"));
    }

    #[test]
    fn redaction_and_quoting() {
        assert_eq!(
            redact("Bearer sk-secret-1 x", &["sk-secret-1"]),
            "Bearer [REDACTED] x"
        );
        assert_eq!(
            shell_join(&["a b".into(), "-c".into(), "x=\"y\"".into(), "it's".into()]),
            r#"'a b' -c 'x="y"' 'it'\''s'"#
        );
    }

    #[test]
    fn extra_writable_roots_only_with_workspace_write() {
        let mut p = params();
        p.add_dirs = vec!["/p/.wg".into(), "/p/.git".into()];
        let a = codex_args(&p);
        assert!(has_pair(&a, "--add-dir", "/p/.wg") && has_pair(&a, "--add-dir", "/p/.git"));
        p.sandbox = Sandbox::ReadOnly;
        assert!(!codex_args(&p).contains(&"--add-dir".to_string()));
    }
}
