//! Every environment variable wg reads or sets. Commands never read the environment directly:
//! `cli::Ctx` resolves these once.

/// The project to use (`.wg/` or the folder holding it); wins over the folder search.
pub const WG_DIR: &str = "WG_DIR";
/// Set for agents: the task they work on.
pub const WG_TASK_ID: &str = "WG_TASK_ID";
/// Set for agents: their agent id; also the actor recorded in `log.jsonl`.
pub const WG_AGENT_ID: &str = "WG_AGENT_ID";
/// Set for agents: the executor running them.
pub const WG_EXECUTOR: &str = "WG_EXECUTOR";
/// Model override (agents get the resolved model).
pub const WG_MODEL: &str = "WG_MODEL";
/// Endpoint override (agents get the resolved endpoint URL).
pub const WG_ENDPOINT: &str = "WG_ENDPOINT";
/// The config file to read instead of `.wg/config.toml`. The coordinator sets it for agents
/// to the last valid config it loaded, so an invalid edit never breaks a running agent.
pub const WG_CONFIG: &str = "WG_CONFIG";
/// Log filter for wg's own diagnostics, e.g. `wg=debug` (default `warn`).
pub const WG_LOG: &str = "WG_LOG";
/// Seconds a writer waits for `graph.lock` before giving up with exit code 5 (default 30).
pub const WG_LOCK_TIMEOUT: &str = "WG_LOCK_TIMEOUT";
/// Default name of the env var that holds the endpoint's API key.
pub const DEFAULT_API_KEY_ENV: &str = "WG_API_KEY";
