//! Everything a turn needs, resolved once per `wg handler` run from the config, the task and
//! the run's overrides: model, endpoint and key, binary, workdir and writable roots, PATH,
//! timeouts and budgets. The one place a turn gets its base URL and key.

use std::path::{Path, PathBuf};

use super::error::SessionError;
use super::events::Dialect;
use super::files::HandlerLog;
use super::log::Level;
use super::run::Timeouts;
use super::Budget;
use crate::config::Config;
use crate::model::Task;
use crate::store::Layout;

/// codex's own log database in the shared CODEX_HOME is dropped past this size.
pub const CODEX_HOME_LOG_CAP: u64 = 64 * 1024 * 1024;

/// Everything a turn needs, resolved once.
pub struct Resolved {
    pub dialect: Dialect,
    pub model: Option<String>,
    pub endpoint: Option<String>,
    pub key_env: String,
    pub key: Option<String>,
    pub binary: String,
    pub sandbox: crate::config::Sandbox,
    pub workdir: PathBuf,
    /// Writable roots besides the workdir (a worktree task's `.wg/` and git common dir).
    pub add_dirs: Vec<PathBuf>,
    pub codex_home: Option<PathBuf>,
    /// claude's per-task CLAUDE_CONFIG_DIR.
    pub claude_dir: PathBuf,
    pub timeouts: Timeouts,
    pub stream_idle_ms: u64,
    pub budget: Budget,
    pub agent: String,
    pub path_env: String,
    pub wg_dir: PathBuf,
    /// wg's own directory, first on the agent's PATH.
    pub bin_dir: PathBuf,
    /// Variables the executor's `pass_env` copies into the agent's environment.
    pub pass_env: Vec<String>,
    /// The local credential proxy (and Chat bridge): the only holder of the key in a turn.
    pub bridge: Option<crate::bridge::BridgeHandle>,
}

/// Whether `p` lies in the system temp dir, where codex refuses to set up its helpers.
pub fn under_temp(p: &Path) -> bool {
    let tmp = std::env::temp_dir();
    let tmp = tmp.canonicalize().unwrap_or(tmp);
    p.starts_with(&tmp) || p.starts_with("/tmp") || p.starts_with("/var/tmp")
}

/// The project-local CODEX_HOME: `.wg/codex-home`, shared by the project's agents (codex is
/// safe with parallel turns on one home once it is set up). codex refuses to install its
/// helper binaries under the temp dir, so a project there gets one under `$HOME/.cache/wg`.
pub fn codex_home(wg_dir: &Path) -> PathBuf {
    let local = wg_dir.join("codex-home");
    if !under_temp(wg_dir) {
        return local;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match home {
        Some(h) if !under_temp(&h) => {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            wg_dir.hash(&mut hasher);
            h.join(".cache/wg")
                .join(format!("codex-home-{:016x}", hasher.finish()))
        }
        _ => local,
    }
}

/// What a run brings to resolution besides the task: where the project is, its settings,
/// who holds the task, and the run's overrides of model and endpoint.
pub struct Scope<'a> {
    pub layout: &'a Layout,
    pub config: &'a Config,
    pub agent: &'a str,
    pub model: Option<&'a String>,
    pub endpoint: Option<&'a String>,
}

pub fn resolve(s: &Scope<'_>, task: &Task, dialect: Dialect) -> Result<Resolved, SessionError> {
    let cfg = s.config;
    let h = &cfg.handler;
    let wg_dir = std::path::absolute(s.layout.dir())?;
    let root = wg_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| wg_dir.clone());
    // The same plan dispatch and `wg doctor` use: `[executors.NAME]` may point this executor
    // at its own endpoint, model and key.
    let overrides = crate::executor::plan::Overrides {
        model: s.model.map(String::as_str),
        endpoint: s.endpoint.map(String::as_str),
    };
    let plan = crate::executor::plan::plan(cfg, dialect.name(), Some(task), &root, overrides)
        .map_err(SessionError::config)?;
    let (endpoint, key_env, worktree) = (plan.endpoint, plan.key_env, plan.worktree);
    // The key is read here and only handed to codex's environment under its own name.
    let key = std::env::var(&key_env).ok().filter(|k| !k.is_empty());
    let workdir = plan.workdir;
    // From a worktree the agent still runs `wg` against the project's `.wg/` and commits on
    // its branch, which writes objects and refs under the git common dir and the index, HEAD
    // and logs under the worktree's own git dir: all outside the workdir. The last needs its
    // own root: codex makes the `.git` target of the workdir read-only even inside another
    // writable root (measured with codex 0.169.0, tests/it/workspace.rs).
    let add_dirs = match &worktree {
        Some(d) => {
            let mut dirs = vec![wg_dir.clone()];
            dirs.extend(crate::workspace::git::common_dir(d).ok());
            dirs.extend(crate::workspace::git::git_dir(d).ok());
            dirs
        }
        None => Vec::new(),
    };
    let own_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let old_path = std::env::var("PATH").unwrap_or_default();
    let path_env = match &own_dir {
        Some(d) if !old_path.is_empty() => format!("{}:{old_path}", d.display()),
        Some(d) => d.display().to_string(),
        None => old_path,
    };
    let pass_env = crate::executor::Executor::resolve(dialect.name(), cfg)
        .map(|x| x.pass_env)
        .unwrap_or_default();
    let agent = s.agent.to_string();
    Ok(Resolved {
        dialect,
        model: plan.model,
        codex_home: endpoint
            .as_ref()
            .filter(|_| dialect == Dialect::Codex)
            .map(|_| codex_home(&wg_dir)),
        claude_dir: wg_dir.join("tasks").join(&task.id).join("claude"),
        endpoint,
        key_env,
        key,
        binary: plan.binary.unwrap_or_default(),
        sandbox: plan.sandbox,
        workdir,
        add_dirs,
        timeouts: Timeouts {
            first_output: plan.turn.first_output,
            idle: plan.turn.idle,
            hard: plan.turn.hard,
            grace: plan.turn.grace,
        },
        stream_idle_ms: plan.turn.stream_idle.as_millis() as u64,
        budget: Budget {
            max_turns: h.max_turns,
            max_tokens: h.max_tokens,
            max_wall: h.max_wall.as_ref().map(|w| w.get()),
        },
        agent,
        path_env,
        wg_dir,
        bin_dir: own_dir.unwrap_or_default(),
        pass_env,
        bridge: None,
    })
}

/// Starts the credential proxy for every endpoint (and the Chat bridge for `wire_api =
/// "chat"`). It holds the real key; the agent gets a token that works for one turn.
pub fn start_bridge(
    config: &Config,
    r: &Resolved,
    log: &mut HandlerLog,
) -> Result<Option<crate::bridge::BridgeHandle>, SessionError> {
    let chat = config.endpoint.wire_api == Some(crate::config::WireApi::Chat);
    let Some(plan) = super::proxy::plan(
        r.dialect,
        r.endpoint.as_deref(),
        r.key.is_some(),
        chat,
        config.claude.auth.as_str(),
    ) else {
        return Ok(None);
    };
    let mut bridge_config =
        crate::bridge::BridgeConfig::for_wire(plan.wire, &plan.upstream, r.key.clone())
            .with_auth(plan.auth)
            .with_max_output_tokens(config.endpoint.max_output_tokens);
    bridge_config.first_byte_timeout = config.handler.first_byte_timeout.get();
    let handle = crate::bridge::start(bridge_config).map_err(|e| SessionError::Refused {
        message: format!("cannot start the local credential proxy: {e}"),
        hint: None,
    })?;
    log.write(
        Level::Info,
        0,
        "proxy.start",
        &[
            ("wire", format!("{:?}", plan.wire).to_ascii_lowercase()),
            ("listen", handle.base_url().to_string()),
            ("upstream", plan.upstream.clone()),
        ],
    );
    Ok(Some(handle))
}

/// codex's home when it lies under the temp dir: codex then refuses to create its sandbox
/// helpers ("Refusing to create helper binaries under temporary dir", codex 0.169.0) and every
/// command fails with `bwrap: execvp codex-linux-sandbox`, while the turn itself runs on.
/// [`codex_home`] avoids this unless HOME is under the temp dir as well.
pub fn unsandboxable_home(r: &Resolved) -> Option<&Path> {
    r.codex_home
        .as_deref()
        .filter(|h| r.dialect == Dialect::Codex && under_temp(h))
}

/// The codex binary: a path as given (relative to the project root), or a PATH lookup.
pub fn find_binary(binary: &str, path_env: &str, root: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if binary.contains('/') {
        let p = if Path::new(binary).is_absolute() {
            PathBuf::from(binary)
        } else {
            root.join(binary)
        };
        return if runnable(&p) {
            Ok(p)
        } else {
            Err(format!(
                "{} does not exist or is not executable",
                p.display()
            ))
        };
    }
    std::env::split_paths(path_env)
        .map(|d| d.join(binary))
        .find(|p| runnable(p))
        .ok_or_else(|| "not found on PATH".to_string())
}
