//! `.wg/config.toml`, typed. Every field has a default so a short file is a valid one.
//! `edit.rs` changes the file through toml_edit so comments and order survive.

pub mod budget;
mod checks;
pub mod edit;
mod evaluate;
pub mod key_name;
pub mod live;
mod suggest;
pub mod web;

pub use checks::{ChecksConfig, LandBy};
pub use evaluate::{default_weights, EvaluateConfig};

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use suggest::with_suggestion;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default executor for tasks that do not name one.
    pub executor: String,
    /// Default model.
    pub model: Option<String>,
    /// `os` (an append is done once the OS has it) or `fsync` (also survives power loss).
    pub durability: String,
    pub endpoint: EndpointConfig,
    pub coordinator: CoordinatorConfig,
    pub codex: CodexConfig,
    pub claude: ClaudeConfig,
    pub handler: HandlerConfig,
    pub executors: BTreeMap<String, toml::Table>,
    pub notify: NotifyConfig,
    pub evaluate: EvaluateConfig,
    pub workspace: WorkspaceConfig,
    /// `[checks]`: commands wg runs itself after an agent's `wg done` (docs/landing.md).
    pub checks: ChecksConfig,
    /// `[pricing."MODEL"]`: USD per million tokens, for costs in `wg show` and `wg stats`.
    pub pricing: BTreeMap<String, crate::pricing::Price>,
    pub slurm: SlurmConfig,
    /// `[web]`: the board in a browser (`wg web`, or served by the coordinator).
    pub web: web::WebConfig,
}

/// `[slurm]`: what every agent job submitted with `launcher = "slurm"` gets. See docs/slurm.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SlurmConfig {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Extra `sbatch` arguments, one argv element each (never a shell string).
    pub extra_args: Vec<String>,
    /// How often the one `squeue` call for all jobs runs.
    pub poll_interval: String,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            partition: None,
            account: None,
            qos: None,
            extra_args: Vec::new(),
            poll_interval: "1s".into(),
        }
    }
}

impl SlurmConfig {
    pub fn site(&self) -> crate::slurm::sbatch::Site {
        crate::slurm::sbatch::Site {
            partition: self.partition.clone(),
            account: self.account.clone(),
            qos: self.qos.clone(),
            extra_args: self.extra_args.clone(),
        }
    }
}

/// `[workspace]`: where agents work. See docs/workspaces.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// `shared` (every agent in the project root) or `worktree` (a git worktree per task).
    pub mode: String,
    /// Where a task's worktree goes, relative to the project root or absolute; `{id}` is the
    /// task id. Without `{id}` every task gets the same path, so worktree tasks take turns.
    pub dir: String,
    /// What `wg done` does with uncommitted changes in a worktree: `commit` or `refuse`.
    pub on_done: String,
    /// After done: `none` (keep the branch for review), `ff` (fast-forward the base branch)
    /// or `queue` (the merge queue of docs/landing.md).
    pub merge: String,
    /// How the merge queue lands a branch: `merge` or `rebase`.
    pub land_by: LandBy,
    /// Rounds a task gets in the merge queue (conflicts, checks failing on the merged
    /// result): the round that fails last makes the task `needs-input`.
    pub land_rounds: u32,
    /// Queued tasks landed together: merged one after the other and checked once (1: one
    /// at a time). A failing batch lands its tasks one by one.
    pub land_batch: u32,
    /// Leave worktrees on disk after the task ends (the branch is always kept).
    pub keep_worktrees: bool,
    /// What new worktrees start from; the project's HEAD when unset. A task's `--base` wins.
    pub base: Option<String>,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            mode: "shared".into(),
            dir: ".wg/worktrees/{id}".into(),
            on_done: "commit".into(),
            merge: "none".into(),
            land_by: LandBy::Merge,
            land_rounds: 3,
            land_batch: 1,
            keep_worktrees: false,
            base: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URL of an OpenAI-compatible API, including `/v1`.
    pub url: Option<String>,
    /// Name of the environment variable holding the API key (never the key itself).
    pub api_key_env: Option<String>,
    /// `responses` (default) or `chat`.
    pub wire_api: Option<String>,
    /// Passed to codex for models it does not know.
    pub model_context_window: Option<u64>,
    /// The most tokens one answer may have. The proxy puts it into every request without a
    /// cap of its own, so an answer that stops there is told from a finished one (some
    /// servers, llama.cpp's among them, still say `completed`). Set it to the server's own
    /// cap (llama-server `-n`) or lower.
    pub max_output_tokens: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Where agents run: `local` (child processes) or `slurm` (batch jobs). Overridden by
    /// `[executors.NAME] launcher` and a task's own launcher.
    pub launcher: crate::slurm::Launcher,
    /// Agents (or Slurm jobs, pending ones included) at once.
    pub max_agents: usize,
    pub max_retries: u32,
    /// Fallback poll for file systems without change events.
    pub poll_interval: String,
    /// Time between SIGTERM and SIGKILL when an agent is stopped.
    pub grace_period: String,
    /// Hard limit on one agent run (per task `timeout` overrides).
    pub hard_timeout: Option<String>,
    /// No output for this long ends the agent.
    pub idle_timeout: Option<String>,
    /// No first output for this long ends the agent.
    pub first_output_timeout: Option<String>,
    /// First retry delay; doubles per retry.
    pub retry_backoff: String,
    /// Longest wait between two probes of a paused endpoint (the wait starts at
    /// `retry_backoff` and doubles per failed probe).
    pub endpoint_backoff_max: String,
    pub max_nudges: u32,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            launcher: crate::slurm::Launcher::Local,
            max_agents: 4,
            max_retries: 2,
            poll_interval: "5s".into(),
            grace_period: "5s".into(),
            hard_timeout: None,
            idle_timeout: None,
            first_output_timeout: None,
            retry_backoff: "2s".into(),
            endpoint_backoff_max: "60s".into(),
            max_nudges: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodexConfig {
    /// The codex binary; `codex` on PATH by default.
    pub binary: String,
    /// `read-only`, `workspace-write` or `danger-full-access`.
    pub sandbox: String,
    /// Upper bound on the replayed conversation in the prompt. Unset: derived from
    /// `endpoint.model_context_window` when that is set, else 200,000.
    pub history_budget_chars: Option<usize>,
    /// Replay a digest of what the agent did in each earlier turn (commands, exit codes,
    /// changed files).
    pub replay_actions: bool,
    /// Upper bound on one earlier turn's digest.
    pub replay_actions_chars: usize,
}

impl Default for CodexConfig {
    fn default() -> Self {
        CodexConfig {
            binary: "codex".into(),
            sandbox: "workspace-write".into(),
            history_budget_chars: None,
            replay_actions: true,
            replay_actions_chars: 1_200,
        }
    }
}

/// `[claude]`: how the `claude` executor runs Claude Code (`claude -p`) each turn. The defaults
/// fit Claude Code 2.1.330, as docs/claude.md describes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaudeConfig {
    /// The Claude Code binary; `claude` on PATH by default.
    pub binary: String,
    /// `bypass` (default: the agent may run any command and edit files without asking; as
    /// root wg also sets IS_SANDBOX=1, without which the CLI refuses), `allowed-tools` (only
    /// the tools in `allowed_tools` run without asking), or any `--permission-mode` value of
    /// the CLI (`acceptEdits`, `auto`, `dontAsk`, `plan`, `default`).
    pub permissions: String,
    /// Tools allowed without asking when `permissions = "allowed-tools"`.
    pub allowed_tools: Vec<String>,
    /// How the key is sent: `api-key` (ANTHROPIC_API_KEY, the `x-api-key` header) or
    /// `bearer` (ANTHROPIC_AUTH_TOKEN, `Authorization: Bearer`).
    pub auth: String,
    /// Retries the CLI makes per request (its default of 10 takes about 3 minutes to give
    /// up, even on a 401).
    pub max_retries: u32,
    /// Per-request timeout of the CLI (API_TIMEOUT_MS; its default is 10 minutes).
    pub api_timeout: String,
    /// The CLI's wait for the next byte of a started stream before it retries without
    /// streaming (CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS; clamped by the CLI to at least 10s).
    pub stream_idle_timeout: String,
    /// Price per million tokens by model, for the outbox's `cost_usd`. The CLI's own cost
    /// figure is invented for models it does not know, so wg only records a configured one.
    pub prices: BTreeMap<String, ModelPrice>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelPrice {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Default for ClaudeConfig {
    fn default() -> Self {
        ClaudeConfig {
            binary: "claude".into(),
            permissions: "bypass".into(),
            allowed_tools: ["Bash", "Edit", "Write", "Read", "Glob", "Grep"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            auth: "api-key".into(),
            max_retries: 1,
            api_timeout: "5m".into(),
            stream_idle_timeout: "2m".into(),
            prices: BTreeMap::new(),
        }
    }
}

/// The endpoint, default model and key variable an executor uses: `[executors.NAME]` may
/// override `endpoint`, `model` and `api_key_env`, so one graph can mix codex and claude tasks
/// that talk to different servers.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorEndpoint {
    pub url: Option<String>,
    pub model: Option<String>,
    pub key_env: String,
}

/// Default `handler.max_message_chars`: a quarter of codex's input limit (1,048,576
/// characters), leaving the rest to the brief and the replayed conversation
/// (`codex.history_budget_chars`, 200,000 by default).
pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 256 * 1024;

/// `[handler]`: limits of the codex per-turn handler (`wg handler`). Durations are humantime
/// strings; an unset budget means no limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandlerConfig {
    /// No stdout line from codex for this long after it starts ends the turn.
    pub first_output_timeout: String,
    /// No output at all from codex for this long ends the turn. A server that accepts the
    /// connection and never answers is caught here (codex itself waits forever).
    pub idle_timeout: String,
    /// Hard limit on one turn.
    pub turn_timeout: String,
    /// codex's own wait for the next SSE chunk once the stream has started.
    pub stream_idle_timeout: String,
    /// Longest wait for the first byte of the endpoint's answer to a model request (the
    /// proxy measures it). A server that takes requests and sends nothing is an endpoint
    /// fault (`no-first-byte`): dispatch to it pauses and no retry is spent. A model that is
    /// only slow to start answers within it.
    pub first_byte_timeout: String,
    /// Retries codex makes per request and per stream (0 = fail fast, the handler reports).
    pub request_max_retries: u32,
    pub stream_max_retries: u32,
    /// Per-task budgets, counted over the whole conversation (across retries).
    pub max_turns: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_wall: Option<String>,
    /// A turn that runs the same command this many times in a row ends (error kind `loop`).
    pub max_repeated_commands: u32,
    /// A turn that runs more commands than this ends (error kind `loop`). 0 = no limit.
    pub max_commands_per_turn: u32,
    /// `events.jsonl` and `handler.log` are rotated to `.1` past this size.
    pub log_max_bytes: u64,
    /// `wg msg` refuses longer messages: the whole prompt (brief, replayed conversation and
    /// the message) must stay under the agent CLI's input limit (codex: 1 MiB characters).
    pub max_message_chars: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            first_output_timeout: "60s".into(),
            idle_timeout: "15m".into(),
            turn_timeout: "2h".into(),
            stream_idle_timeout: "5m".into(),
            first_byte_timeout: "2m".into(),
            request_max_retries: 1,
            stream_max_retries: 1,
            max_turns: None,
            max_tokens: None,
            max_wall: None,
            max_repeated_commands: 8,
            max_commands_per_turn: 400,
            log_max_bytes: 8 * 1024 * 1024,
            max_message_chars: DEFAULT_MAX_MESSAGE_CHARS,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    pub url: Option<String>,
    pub token_env: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            executor: "codex".into(),
            model: None,
            durability: "os".into(),
            endpoint: EndpointConfig::default(),
            coordinator: CoordinatorConfig::default(),
            codex: CodexConfig::default(),
            claude: ClaudeConfig::default(),
            handler: HandlerConfig::default(),
            executors: BTreeMap::new(),
            notify: NotifyConfig::default(),
            evaluate: Default::default(),
            workspace: WorkspaceConfig::default(),
            checks: ChecksConfig::default(),
            pricing: BTreeMap::new(),
            slurm: SlurmConfig::default(),
            web: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
    /// A setting that names the key's variable holds the key itself.
    #[error("{path}: {setting}: {problem}")]
    PastedKey {
        path: String,
        setting: String,
        problem: key_name::BadKeyName,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_text(path, &text)
    }

    /// The config in `text`, checked as [`Config::load`] checks the file at `path`.
    pub fn from_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |reason| ConfigError::Invalid {
            path: path.display().to_string(),
            reason,
        };
        let config: Config =
            toml::from_str(text).map_err(|e| invalid(with_suggestion(e.to_string().trim())))?;
        // Checked first and typed, so the caller can say how to get the key out of the file.
        if let Some((setting, problem)) = config
            .key_name_settings()
            .into_iter()
            .find_map(|(s, v)| key_name::check(v).err().map(|e| (s, e)))
            .filter(|(_, e)| e.is_pasted())
        {
            return Err(ConfigError::PastedKey {
                path: path.display().to_string(),
                setting,
                problem,
            });
        }
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config =
            toml::from_str(text).map_err(|e| with_suggestion(e.to_string().trim()))?;
        config.validate()?;
        Ok(config)
    }

    /// Every setting that holds the name of an environment variable, with its value.
    fn key_name_settings(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        if let Some(v) = &self.endpoint.api_key_env {
            out.push(("endpoint.api_key_env".to_string(), v.as_str()));
        }
        if let Some(v) = &self.evaluate.api_key_env {
            out.push(("evaluate.api_key_env".to_string(), v.as_str()));
        }
        if let Some(v) = &self.notify.token_env {
            out.push(("notify.token_env".to_string(), v.as_str()));
        }
        for (name, table) in &self.executors {
            if let Some(v) = table.get("api_key_env").and_then(|v| v.as_str()) {
                out.push((format!("executors.{name}.api_key_env"), v));
            }
            let pass = table.get("pass_env").and_then(|v| v.as_array());
            for v in pass.into_iter().flatten().filter_map(|v| v.as_str()) {
                out.push((format!("executors.{name}.pass_env"), v));
            }
        }
        out
    }

    fn validate(&self) -> Result<(), String> {
        for (setting, value) in self.key_name_settings() {
            key_name::check(value).map_err(|e| format!("{setting}: {e}"))?;
        }
        self.web.check()?;
        if !matches!(self.durability.as_str(), "os" | "fsync") {
            return Err(format!(
                "durability = \"{}\": expected \"os\" or \"fsync\"",
                self.durability
            ));
        }
        if let Some(url) = &self.endpoint.url {
            validate_endpoint_url(url)?;
        }
        if let Some(w) = self
            .endpoint
            .wire_api
            .as_deref()
            .filter(|w| !matches!(*w, "responses" | "chat"))
        {
            return Err(format!(
                "endpoint.wire_api = \"{w}\": expected \"responses\" or \"chat\""
            ));
        }
        let w = &self.workspace;
        for (key, value, allowed) in [
            ("workspace.mode", &w.mode, &["shared", "worktree"]),
            ("workspace.on_done", &w.on_done, &["commit", "refuse"]),
        ] {
            if !allowed.contains(&value.as_str()) {
                return Err(format!(
                    "{key} = \"{value}\": expected \"{}\" or \"{}\"",
                    allowed[0], allowed[1]
                ));
            }
        }
        if !matches!(w.merge.as_str(), "none" | "ff" | "queue") {
            return Err(format!(
                "workspace.merge = \"{}\": expected \"none\", \"ff\" or \"queue\"",
                w.merge
            ));
        }
        if w.land_rounds == 0 {
            return Err("workspace.land_rounds = 0: must be at least 1".into());
        }
        if w.land_batch == 0 {
            return Err("workspace.land_batch = 0: must be at least 1".into());
        }
        self.checks.validate()?;
        if w.dir.trim().is_empty() {
            return Err("workspace.dir is empty".into());
        }
        for (key, value) in [
            (
                "coordinator.poll_interval",
                Some(&self.coordinator.poll_interval),
            ),
            (
                "coordinator.grace_period",
                Some(&self.coordinator.grace_period),
            ),
            (
                "coordinator.retry_backoff",
                Some(&self.coordinator.retry_backoff),
            ),
            (
                "coordinator.endpoint_backoff_max",
                Some(&self.coordinator.endpoint_backoff_max),
            ),
            (
                "coordinator.hard_timeout",
                self.coordinator.hard_timeout.as_ref(),
            ),
            (
                "coordinator.idle_timeout",
                self.coordinator.idle_timeout.as_ref(),
            ),
            (
                "coordinator.first_output_timeout",
                self.coordinator.first_output_timeout.as_ref(),
            ),
            (
                "handler.first_output_timeout",
                Some(&self.handler.first_output_timeout),
            ),
            ("handler.idle_timeout", Some(&self.handler.idle_timeout)),
            ("handler.turn_timeout", Some(&self.handler.turn_timeout)),
            (
                "handler.stream_idle_timeout",
                Some(&self.handler.stream_idle_timeout),
            ),
            (
                "handler.first_byte_timeout",
                Some(&self.handler.first_byte_timeout),
            ),
            ("handler.max_wall", self.handler.max_wall.as_ref()),
            ("claude.api_timeout", Some(&self.claude.api_timeout)),
            (
                "claude.stream_idle_timeout",
                Some(&self.claude.stream_idle_timeout),
            ),
        ] {
            if let Some(v) = value {
                let d = crate::time::parse_duration(v).map_err(|e| format!("{key}: {e}"))?;
                // A zero poll spins the idle coordinator; a zero timeout kills every run at
                // once and spends every retry.
                if d.is_zero() && key != "coordinator.grace_period" {
                    return Err(format!("{key} = \"{v}\": must be more than zero"));
                }
            }
        }
        for (key, value, min) in [
            (
                "coordinator.max_agents",
                self.coordinator.max_agents as u64,
                1,
            ),
            (
                "codex.history_budget_chars",
                self.codex.history_budget_chars.unwrap_or(1) as u64,
                1,
            ),
            ("handler.log_max_bytes", self.handler.log_max_bytes, 1024),
            (
                "handler.max_message_chars",
                self.handler.max_message_chars as u64,
                1,
            ),
        ] {
            if value < min {
                return Err(format!("{key} = {value}: must be at least {min}"));
            }
        }
        if !matches!(self.claude.auth.as_str(), "api-key" | "bearer") {
            return Err(format!(
                "claude.auth = \"{}\": expected \"api-key\" or \"bearer\"",
                self.claude.auth
            ));
        }
        for (model, price) in &self.pricing {
            price
                .validate()
                .map_err(|e| format!("pricing.\"{model}\".{e}"))?;
        }
        for (name, table) in &self.executors {
            if let Some(url) = table.get("endpoint") {
                let url = url
                    .as_str()
                    .ok_or_else(|| format!("executors.{name}.endpoint must be a string"))?;
                validate_endpoint_url(url).map_err(|e| format!("executors.{name}: {e}"))?;
            }
            if let Some(l) = table.get("launcher") {
                let l = l
                    .as_str()
                    .ok_or_else(|| format!("executors.{name}.launcher must be a string"))?;
                crate::slurm::Launcher::parse(l)
                    .map_err(|e| format!("executors.{name}.launcher: {e}"))?;
            }
        }
        crate::time::parse_duration(&self.slurm.poll_interval)
            .map_err(|e| format!("slurm.poll_interval: {e}"))?;
        Ok(())
    }

    /// The endpoint settings of executor `name`, its `[executors.NAME]` overrides applied.
    pub fn endpoint_for(&self, name: &str) -> ExecutorEndpoint {
        let s = |key: &str| {
            self.executor_setting(name, key)
                .and_then(|v| v.as_str())
                .filter(|v| !v.trim().is_empty())
                .map(str::to_string)
        };
        ExecutorEndpoint {
            url: s("endpoint").or_else(|| self.endpoint.url.clone()),
            model: s("model").or_else(|| self.model.clone()),
            key_env: s("api_key_env").unwrap_or_else(|| self.api_key_env().to_string()),
        }
    }

    /// The price of `model`: `[pricing."MODEL"]`, else the older `[claude.prices.MODEL]`.
    pub fn price_for(&self, model: &str) -> Option<crate::pricing::Price> {
        self.pricing.get(model).cloned().or_else(|| {
            self.claude
                .prices
                .get(model)
                .map(|p| crate::pricing::Price {
                    input_per_mtok: p.input_per_mtok,
                    cached_input_per_mtok: None,
                    output_per_mtok: p.output_per_mtok,
                })
        })
    }

    /// The history budget of the prompt: `codex.history_budget_chars`, else derived from
    /// `endpoint.model_context_window`.
    pub fn history_budget_chars(&self) -> usize {
        budget::default_budget(
            self.codex.history_budget_chars,
            self.endpoint.model_context_window,
        )
    }

    /// The bound of each earlier turn's action digest; `None` when digests are off.
    pub fn replay_actions_chars(&self) -> Option<usize> {
        self.codex
            .replay_actions
            .then_some(self.codex.replay_actions_chars)
    }

    /// The name of the env var holding the API key.
    pub fn api_key_env(&self) -> &str {
        self.endpoint
            .api_key_env
            .as_deref()
            .unwrap_or(crate::env::DEFAULT_API_KEY_ENV)
    }

    pub fn fsync(&self) -> bool {
        self.durability == "fsync"
    }

    /// A setting of `[executors.NAME]`, if present.
    pub fn executor_setting(&self, executor: &str, key: &str) -> Option<&toml::Value> {
        self.executors.get(executor).and_then(|t| t.get(key))
    }
}

/// An endpoint must be an absolute http(s) URL; codex appends `/responses` to it.
pub fn validate_endpoint_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("endpoint `{url}` must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) || url.contains(char::is_whitespace) {
        return Err(format!("endpoint `{url}` has no valid host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.executor, "codex");
        assert_eq!(c.coordinator.max_agents, 4);
        assert_eq!(c.coordinator.max_retries, 2);
        assert_eq!(c.api_key_env(), "WG_API_KEY");
    }

    #[test]
    fn executors_may_override_the_endpoint() {
        let c = Config::parse(
            "model = \"m\"\n[endpoint]\nurl = \"http://a/v1\"\n[executors.claude]\nendpoint = \"http://b\"\napi_key_env = \"CK\"\n",
        )
        .unwrap();
        let codex = c.endpoint_for("codex");
        assert_eq!(codex.url.as_deref(), Some("http://a/v1"));
        assert_eq!(codex.key_env, "WG_API_KEY");
        let claude = c.endpoint_for("claude");
        assert_eq!(claude.url.as_deref(), Some("http://b"));
        assert_eq!(
            (claude.model.as_deref(), claude.key_env.as_str()),
            (Some("m"), "CK")
        );
        assert!(Config::parse("[executors.claude]\nendpoint = \"ftp://x\"").is_err());
        assert!(Config::parse("[claude]\nauth = \"basic\"").is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::parse("durability = \"maybe\"").unwrap_err();
        assert!(e.contains("durability"), "{e}");
        let e = Config::parse("[endpoint]\nurl = \"ftp://x\"").unwrap_err();
        assert!(e.contains("http"), "{e}");
        let e = Config::parse("[coordinator]\nidle_timeout = \"soon\"").unwrap_err();
        assert!(e.contains("idle_timeout"), "{e}");
        assert!(Config::parse("executor = [").is_err());
        let e = Config::parse("[workspace]\nmode = \"tree\"").unwrap_err();
        assert!(e.contains("workspace.mode"), "{e}");
        let c = Config::parse("[workspace]\nmode = \"worktree\"\nmerge = \"ff\"").unwrap();
        assert_eq!(c.workspace.mode, "worktree");
        assert_eq!(c.workspace.on_done, "commit");
    }

    #[test]
    fn unknown_keys_are_refused_with_the_nearest_known_one() {
        let e = Config::parse("[coordinator]\nmax_agent = 3").unwrap_err();
        assert!(e.contains("unknown field `max_agent`"), "{e}");
        assert!(e.contains("did you mean `max_agents`?"), "{e}");
        let e = Config::parse("executer = \"codex\"").unwrap_err();
        assert!(e.contains("did you mean `executor`?"), "{e}");
        let e = Config::parse("[handler]\nzzzzzzzz = 1").unwrap_err();
        assert!(
            e.contains("unknown field") && !e.contains("did you mean"),
            "{e}"
        );
        // Open tables stay open.
        Config::parse("[executors.mine]\nanything = 1\n[claude.prices.m]\ninput_per_mtok = 1.0")
            .unwrap();
    }

    #[test]
    fn zero_durations_and_counts_are_refused() {
        for (text, key) in [
            (
                "[coordinator]\npoll_interval = \"0s\"",
                "coordinator.poll_interval",
            ),
            (
                "[coordinator]\nhard_timeout = \"0s\"",
                "coordinator.hard_timeout",
            ),
            ("[handler]\nturn_timeout = \"0ms\"", "handler.turn_timeout"),
            ("[coordinator]\nmax_agents = 0", "coordinator.max_agents"),
            (
                "[handler]\nmax_message_chars = 0",
                "handler.max_message_chars",
            ),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = Config::parse("[coordinator]\nmax_agents = -1").unwrap_err();
        assert!(
            e.contains("max_agents") || e.contains("invalid value"),
            "{e}"
        );
        Config::parse("[coordinator]\ngrace_period = \"0s\"").unwrap();
    }

    #[test]
    fn pricing_tables_are_read_and_checked() {
        let c = Config::parse(
            "[pricing.\"org/model-a\"]\ninput_per_mtok = 1.5\ncached_input_per_mtok = 0.15\noutput_per_mtok = 6\n[claude.prices.old]\ninput_per_mtok = 3.0\noutput_per_mtok = 15.0\n",
        )
        .unwrap();
        let p = c.price_for("org/model-a").unwrap();
        assert_eq!(
            (p.input_per_mtok, p.cached_input_per_mtok),
            (1.5, Some(0.15))
        );
        assert_eq!(c.price_for("old").unwrap().output_per_mtok, 15.0);
        assert_eq!(c.price_for("other"), None);
        let e = Config::parse("[pricing.m]\ninput_per_mtok = -1.0").unwrap_err();
        assert!(e.contains("pricing.\"m\".input_per_mtok"), "{e}");
        let e = Config::parse("[pricing.m]\ninput = 1.0").unwrap_err();
        assert!(e.contains("input"), "{e}");
    }

    #[test]
    fn history_budget_comes_from_the_context_window_unless_set() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.history_budget_chars(), 200_000);
        assert_eq!(c.replay_actions_chars(), Some(1_200));
        let c = Config::parse("[endpoint]\nmodel_context_window = 32768\n").unwrap();
        assert_eq!(c.history_budget_chars(), 31_152);
        let c = Config::parse(
            "[endpoint]\nmodel_context_window = 32768\n[codex]\nhistory_budget_chars = 9000\nreplay_actions = false\n",
        )
        .unwrap();
        assert_eq!(c.history_budget_chars(), 9000);
        assert_eq!(c.replay_actions_chars(), None);
    }

    #[test]
    fn endpoint_urls() {
        assert!(validate_endpoint_url("https://gpu-box:30000/v1").is_ok());
        assert!(validate_endpoint_url("http://127.0.0.1:8000/v1?x=1").is_ok());
        for bad in ["gpu-box:30000", "http://", "https:// x/v1", ""] {
            assert!(validate_endpoint_url(bad).is_err(), "{bad}");
        }
    }
}
