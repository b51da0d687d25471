//! Starting and stopping agent processes: the only place that spawns them.
//!
//! An agent gets its own process group (so a stop reaches everything it started), a rebuilt
//! environment (nothing of the coordinator's leaks in except an allowlist), stdin from
//! /dev/null, and stdout+stderr appended straight to the task's `agent.log` through file
//! handles: no pipe to the coordinator, so an agent outlives a coordinator crash.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::env;

/// Variables copied from the coordinator's environment when set. Everything else is dropped.
pub const ENV_ALLOWLIST: [&str; 11] = [
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "TZ",
    "CODEX_HOME",
];

/// Everything needed to start one agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub log_path: PathBuf,
    /// Fully resolved environment; the child starts from an empty one.
    pub env: Vec<(String, String)>,
}

/// The agent's environment: allowlist, PATH with `wg_dir` first, then `extra` (WG_* and the
/// API key). `lookup` reads the coordinator's environment (injectable for tests).
pub fn build_env(
    wg_bin_dir: &Path,
    pass_env: &[String],
    extra: Vec<(String, String)>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ENV_ALLOWLIST
        .iter()
        .copied()
        .chain(pass_env.iter().map(String::as_str))
    {
        if let Some(v) = lookup(name) {
            out.push((name.to_string(), v));
        }
    }
    let path = match lookup("PATH") {
        Some(p) if !p.is_empty() => format!("{}:{p}", wg_bin_dir.display()),
        _ => format!("{}:/usr/local/bin:/usr/bin:/bin", wg_bin_dir.display()),
    };
    out.push(("PATH".into(), path));
    out.extend(extra);
    out
}

/// Starts the agent. The caller records it in agents.json before awaiting it.
pub fn spawn(spec: &AgentSpec) -> std::io::Result<tokio::process::Child> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    // Never through a link planted under `.wg/`.
    let log = crate::store::append::open(&spec.log_path)?;
    let log2 = log.try_clone()?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .process_group(0)
        // Only a backstop: it kills the leader, not the group; `process::terminate` does the
        // real work.
        .kill_on_drop(false);
    cmd.spawn()
}

/// About the last `max` bytes of a file as text (for failure reasons), from a line start, else
/// from a word start (so at most `2 * max` bytes).
pub fn tail(path: &Path, since: u64, max: usize) -> String {
    let Ok(bytes) = crate::store::nofollow::read(path) else {
        return String::new();
    };
    let from = (since as usize).min(bytes.len());
    let part = &bytes[from..];
    let mut start = part.len().saturating_sub(max);
    // Whole lines only: a reason cut inside a word says less than one line fewer.
    if start > 0 && part[start - 1] != b'\n' {
        let rest = &part[start..];
        if let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            start += nl + 1;
        } else if let Some(sp) = rest.iter().position(|b| b.is_ascii_whitespace()) {
            // One long line: at least no half word.
            start += sp + 1;
        } else if let Some(sp) = part[start.saturating_sub(max)..start]
            .iter()
            .rposition(|b| b.is_ascii_whitespace())
        {
            // The bound fell inside the last word: take that word whole (a token longer
            // than the bound itself stays cut).
            start = start.saturating_sub(max) + sp + 1;
        }
    }
    String::from_utf8_lossy(&part[start..]).trim().to_string()
}

/// `binary --version`, started from the environment a turn starts from (the allowlist, never
/// the key, which the caller's shell may hold as `WG_API_KEY` or `OPENAI_API_KEY`), with stdin
/// from /dev/null. For every version and health check of an agent binary.
pub fn version_command(binary: &Path) -> std::process::Command {
    let wg_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut cmd = std::process::Command::new(binary);
    cmd.arg("--version")
        .env_clear()
        .envs(build_env(&wg_dir, &[], Vec::new(), |k| {
            std::env::var(k).ok()
        }))
        .stdin(Stdio::null());
    cmd
}

/// The env var names wg sets for every agent.
pub fn agent_env(
    dir: &Path,
    task: &str,
    agent: &str,
    executor: &str,
    model: Option<&str>,
    endpoint: Option<&str>,
) -> Vec<(String, String)> {
    vec![
        (env::WG_DIR.into(), dir.display().to_string()),
        (env::WG_TASK_ID.into(), task.into()),
        (env::WG_AGENT_ID.into(), agent.into()),
        (env::WG_EXECUTOR.into(), executor.into()),
        (env::WG_MODEL.into(), model.unwrap_or_default().into()),
        (env::WG_ENDPOINT.into(), endpoint.unwrap_or_default().into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_whole_lines_and_never_start_inside_a_word() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        let first = "starting the completion request\n";
        let last = "error: the chat endpoint answered 401: key rejected";
        std::fs::write(&log, format!("{first}{last}\n")).unwrap();
        // The bound reaches into the first line: that line is left out, not cut.
        assert_eq!(tail(&log, 0, last.len() + 10), last);
        // Only what was written since the offset.
        assert_eq!(tail(&log, first.len() as u64, 1000), last);
        // One long line: the tail starts at a word.
        std::fs::write(&log, last).unwrap();
        for max in 5..last.len() {
            let t = tail(&log, 0, max);
            assert!(last.ends_with(&t), "{max}: {t:?}");
            let before = last.len() - t.len() - 1;
            assert_eq!(
                last.as_bytes()[before],
                b' ',
                "{max}: cut inside a word: {t:?}"
            );
        }
    }

    #[test]
    fn env_is_rebuilt_from_an_allowlist() {
        let lookup = |k: &str| match k {
            "HOME" => Some("/h".to_string()),
            "PATH" => Some("/usr/bin".to_string()),
            "SECRET_TOKEN" => Some("s3cret".to_string()),
            "MY_VAR" => Some("x".to_string()),
            _ => None,
        };
        let env = build_env(
            Path::new("/opt/wg"),
            &["MY_VAR".to_string()],
            vec![("WG_TASK_ID".into(), "t".into())],
            lookup,
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/opt/wg:/usr/bin"));
        assert_eq!(get("HOME"), Some("/h"));
        assert_eq!(get("MY_VAR"), Some("x"));
        assert_eq!(get("WG_TASK_ID"), Some("t"));
        assert_eq!(get("SECRET_TOKEN"), None);
    }
}
