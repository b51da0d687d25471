//! `.wg/config.toml`, typed. Every field has a default so a short file is a valid one.
//! `edit.rs` changes the file through toml_edit so comments and order survive.

pub mod budget;
mod check;
mod checks;
pub mod edit;
mod evaluate;
pub mod guard;
pub mod key_name;
pub mod live;
mod suggest;
pub mod types;
pub mod web;

pub use checks::{ChecksConfig, LandBy};
pub use evaluate::{default_weights, EvaluateConfig};

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use suggest::with_suggestion;
pub use types::{ClaudeAuth, Dur, Durability, MergeMode, OnDone, Sandbox, WireApi, WorkspaceMode};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default executor for tasks that do not name one.
    pub executor: String,
    /// Default model.
    pub model: Option<String>,
    /// `os` (an append is done once the OS has it) or `fsync` (also survives power loss).
    pub durability: Durability,
    pub endpoint: EndpointConfig,
    pub coordinator: CoordinatorConfig,
    pub codex: CodexConfig,
    pub claude: ClaudeConfig,
    pub handler: HandlerConfig,
    pub executors: BTreeMap<String, ExecutorConfig>,
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
    pub poll_interval: Dur,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            partition: None,
            account: None,
            qos: None,
            extra_args: Vec::new(),
            poll_interval: Dur::of("1s"),
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
    pub mode: WorkspaceMode,
    /// Where a task's worktree goes, relative to the project root or absolute; `{id}` is the
    /// task id. Without `{id}` every task gets the same path, so worktree tasks take turns.
    pub dir: String,
    /// What `wg done` does with uncommitted changes in a worktree: `commit` or `refuse`.
    pub on_done: OnDone,
    /// After done: `none` (keep the branch for review), `ff` (fast-forward the base branch)
    /// or `queue` (the merge queue of docs/landing.md).
    pub merge: MergeMode,
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
            mode: WorkspaceMode::Shared,
            dir: ".wg/worktrees/{id}".into(),
            on_done: OnDone::Commit,
            merge: MergeMode::None,
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
    pub wire_api: Option<WireApi>,
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
    pub poll_interval: Dur,
    /// Time between SIGTERM and SIGKILL when an agent is stopped.
    pub grace_period: Dur,
    /// Hard limit on one agent run (per task `timeout` overrides).
    pub hard_timeout: Option<Dur>,
    /// No output for this long ends the agent.
    pub idle_timeout: Option<Dur>,
    /// No first output for this long ends the agent.
    pub first_output_timeout: Option<Dur>,
    /// First retry delay; doubles per retry.
    pub retry_backoff: Dur,
    /// Longest wait between two probes of a paused endpoint (the wait starts at
    /// `retry_backoff` and doubles per failed probe).
    pub endpoint_backoff_max: Dur,
    pub max_nudges: u32,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            launcher: crate::slurm::Launcher::Local,
            max_agents: 4,
            max_retries: 2,
            poll_interval: Dur::of("5s"),
            grace_period: Dur::of("5s"),
            hard_timeout: None,
            idle_timeout: None,
            first_output_timeout: None,
            retry_backoff: Dur::of("2s"),
            endpoint_backoff_max: Dur::of("60s"),
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
    pub sandbox: Sandbox,
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
            sandbox: Sandbox::WorkspaceWrite,
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
    pub auth: ClaudeAuth,
    /// Retries the CLI makes per request (its default of 10 takes about 3 minutes to give
    /// up, even on a 401).
    pub max_retries: u32,
    /// Per-request timeout of the CLI (API_TIMEOUT_MS; its default is 10 minutes).
    pub api_timeout: Dur,
    /// The CLI's wait for the next byte of a started stream before it retries without
    /// streaming (CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS; clamped by the CLI to at least 10s).
    pub stream_idle_timeout: Dur,
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
            auth: ClaudeAuth::ApiKey,
            max_retries: 1,
            api_timeout: Dur::of("5m"),
            stream_idle_timeout: Dur::of("2m"),
            prices: BTreeMap::new(),
        }
    }
}

/// `[executors.NAME]`: a custom executor (with `command`), or adjustments of a built-in one.
/// See docs/coordinator.md, "Executors".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// The agent's argv; `{task_id}` is replaced in each element (no shell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversational: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code_decides: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses_endpoint: Option<bool>,
    /// Environment variable names copied from the coordinator's environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pass_env: Vec<String>,
    /// Overrides of `endpoint.url`, `model` and `endpoint.api_key_env` for this executor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launcher: Option<crate::slurm::Launcher>,
    /// `bwrap` (the default) or `none`: the box around this executor's agents
    /// (docs/sandbox.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// `loopback` (the default) or `open`: the network inside the box.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `mock` only: how long a run takes, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_ms: Option<u64>,
    /// `mock` only: what a run does (`done`, `fail`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_times: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_error_times: Option<u64>,
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
    pub first_output_timeout: Dur,
    /// No output at all from codex for this long ends the turn. A server that accepts the
    /// connection and never answers is caught here (codex itself waits forever).
    pub idle_timeout: Dur,
    /// Hard limit on one turn.
    pub turn_timeout: Dur,
    /// codex's own wait for the next SSE chunk once the stream has started.
    pub stream_idle_timeout: Dur,
    /// Longest wait for the first byte of the endpoint's answer to a model request (the
    /// proxy measures it). A server that takes requests and sends nothing is an endpoint
    /// fault (`no-first-byte`): dispatch to it pauses and no retry is spent. A model that is
    /// only slow to start answers within it.
    pub first_byte_timeout: Dur,
    /// Retries codex makes per request and per stream (0 = fail fast, the handler reports).
    pub request_max_retries: u32,
    pub stream_max_retries: u32,
    /// Per-task budgets, counted over the whole conversation (across retries).
    pub max_turns: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_wall: Option<Dur>,
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
            first_output_timeout: Dur::of("60s"),
            idle_timeout: Dur::of("15m"),
            turn_timeout: Dur::of("2h"),
            stream_idle_timeout: Dur::of("5m"),
            first_byte_timeout: Dur::of("2m"),
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
            durability: Durability::Os,
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
        let config = Config::read_toml(text).map_err(invalid)?;
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
        let config = Config::read_toml(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The typed config in `text`. A value of the wrong type or out of its words is named by
    /// its setting (`codex.sandbox: unknown variant ...`); an unknown key gets a "did you mean".
    fn read_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| {
            let named = e
                .span()
                .and_then(|span| types::setting_at(text, span.start))
                .map(|key| format!("{key}: {}", e.message().trim()));
            named.unwrap_or_else(|| with_suggestion(e.to_string().trim()))
        })
    }

    /// The endpoint settings of executor `name`, its `[executors.NAME]` overrides applied.
    pub fn endpoint_for(&self, name: &str) -> ExecutorEndpoint {
        let x = self.executors.get(name);
        let s = |v: Option<&String>| v.filter(|v| !v.trim().is_empty()).cloned();
        ExecutorEndpoint {
            url: s(x.and_then(|x| x.endpoint.as_ref())).or_else(|| self.endpoint.url.clone()),
            model: s(x.and_then(|x| x.model.as_ref())).or_else(|| self.model.clone()),
            key_env: s(x.and_then(|x| x.api_key_env.as_ref()))
                .unwrap_or_else(|| self.api_key_env().to_string()),
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
        self.durability == Durability::Fsync
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
        assert_eq!(c.workspace.mode, WorkspaceMode::Worktree);
        assert_eq!(c.workspace.on_done, OnDone::Commit);
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
        // Executors are typed too: a typo there is refused like anywhere else.
        let e = Config::parse("[executors.mine]\ncomand = [\"x\"]").unwrap_err();
        assert!(e.contains("did you mean `command`?"), "{e}");
        Config::parse("[claude.prices.m]\ninput_per_mtok = 1.0").unwrap();
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
