use std::path::PathBuf;

use clap::Args;

use crate::cli::{display_path, Cli};
use crate::config::validate_endpoint_url;
use crate::error::{config_error, usage_error, user_error, CliResult};
use crate::output::Printer;
use crate::store::{self, Layout};

/// Create a wg project (`.wg/`) in the current directory (or `--dir`).
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Default executor: codex, claude, shell, mock, or one from `[executors.NAME]`.
    #[arg(short = 'x', long, default_value = "codex")]
    pub executor: String,
    /// Default model, e.g. qwen3-coder.
    #[arg(short, long)]
    pub model: Option<String>,
    /// OpenAI-compatible endpoint, including /v1 (e.g. https://gpu-box:30000/v1).
    #[arg(short, long)]
    pub endpoint: Option<String>,
    /// Name of the environment variable holding the API key (the key itself is never stored).
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,
    /// The endpoint's API: `responses`, or `chat` for servers that only offer
    /// /v1/chat/completions (wg then runs a local bridge for codex).
    #[arg(long, value_parser = ["responses", "chat"], default_value = "responses")]
    pub wire_api: String,
}

fn quoted(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_string()
}

/// The commented config a new project starts with.
pub fn render_config(args: &InitArgs) -> String {
    let model = match &args.model {
        Some(m) => format!("model = {}", quoted(m)),
        None => "# model = \"qwen3-coder\"".to_string(),
    };
    let url = match &args.endpoint {
        Some(u) => format!("url = {}", quoted(u)),
        None => "# url = \"https://gpu-box:30000/v1\"".to_string(),
    };
    let key_env = args
        .api_key_env
        .as_deref()
        .unwrap_or(crate::env::DEFAULT_API_KEY_ENV);
    format!(
        r#"# wg project settings. Edit by hand or with `wg config set KEY VALUE` (comments are kept).
# Every setting is listed in .wg.example/config.toml of the wg repository.

# Executor for tasks that do not name one: codex, claude, shell, mock, or [executors.NAME].
executor = {executor}
# Model passed to the executor (a task's --model overrides it).
{model}
# "os": a write is done once the OS has it (survives a killed process).
# "fsync": also fsync every write (survives power loss; slower).
durability = "os"

[endpoint]
# OpenAI-compatible API base URL, including /v1. Leave unset to use the agent CLI's own login.
{url}
# Name of the environment variable that holds the API key. wg never writes the key anywhere.
api_key_env = {key_env}
# "responses" (vLLM, OpenAI) or "chat" (servers that only offer /v1/chat/completions).
wire_api = {wire_api}
# Context window of the model, for models codex does not know (qwen3-coder, most local
# models): without it codex assumes a small window and compacts the conversation early.
# model_context_window = 262144
# The most tokens one answer may have: the server's own cap (llama-server -n) or lower. An
# answer stopped there is reported as output-limit instead of passing as finished.
# max_output_tokens = 4096

[coordinator]
# Agents running at once.
max_agents = 4
# Automatic retries of a failed task (a task's --max-retries overrides it).
max_retries = 2
# First retry delay; doubles with each retry.
retry_backoff = "2s"
# Longest wait between probes of a paused endpoint.
endpoint_backoff_max = "60s"
# Fallback poll when file-system events are not available.
poll_interval = "5s"
# Time between SIGTERM and SIGKILL when an agent is stopped.
grace_period = "5s"
# Reminders sent to a conversational agent that ended its turn without wg done/fail.
max_nudges = 1
# hard_timeout = "2h"
# idle_timeout = "20m"
# first_output_timeout = "5m"

[codex]
# The codex binary (PATH lookup unless a path is given).
binary = "codex"
# read-only, workspace-write or danger-full-access
sandbox = "workspace-write"
# Upper bound on the conversation replayed into each turn's prompt (default: from
# endpoint.model_context_window when set, else 200000). See docs/replay.md.
# history_budget_chars = 200000
# A digest of what the agent ran and changed in each earlier turn, and its bound per turn.
replay_actions = true
replay_actions_chars = 1200

[handler]
# The per-turn handler's own limits (codex alone would wait forever on a silent server).
first_output_timeout = "60s"
idle_timeout = "15m"
turn_timeout = "2h"
# codex's wait for the next chunk of a started stream, and its retries per request/stream.
stream_idle_timeout = "5m"
request_max_retries = 1
stream_max_retries = 1
# Per-task budgets over the whole conversation; a task over one fails naming it.
max_turns = 50
max_tokens = 2000000
max_wall = "4h"
# A turn that repeats one command this many times in a row, or runs more commands than
# this, ends with error kind `loop` (0 = off).
max_repeated_commands = 8
max_commands_per_turn = 400

# Where agents work: "shared" (the project root, all agents together; the default) or
# "worktree" (a git worktree and branch wg/<id> per task, merged or kept for review when done).
# [workspace]
# mode = "worktree"

# POST every task status change as JSON to a URL (a chat webhook, a dashboard); the token is
# read at run time from the environment variable named here and sent as X-WG-Token.
# [notify]
# url = "https://hooks.example.com/wg"
# token_env = "WG_NOTIFY_TOKEN"

[evaluate]
# Score every task that ends done; below `pass` it goes back with the evaluator's notes,
# and the `max_rejections`-th rejection fails it. Endpoint and model default to the above.
auto = false
pass = 0.7
max_rejections = 3
# model = "qwen3-coder"
# endpoint = "https://gpu-box:30000/v1"

# USD per million tokens by model, for the costs in `wg show` and `wg stats`. wg ships no
# prices: copy your provider's current ones.
# [pricing."MODEL"]
# input_per_mtok = <USD per million input tokens>
# cached_input_per_mtok = <USD per million cached input tokens; the input price when unset>
# output_per_mtok = <USD per million output tokens>
"#,
        executor = quoted(&args.executor),
        key_env = quoted(key_env),
        wire_api = quoted(&args.wire_api),
    )
}

const GITIGNORE: &str =
    "# Runtime files of wg; the task graph and conversations are worth committing.\n\
graph.lock\ngraph.idx\n.tmp-*\nservice/\ncodex-home/\ntasks/*/agent.log\ntasks/*/turn.lock\nworktrees/\n";

/// The three commands a new project runs next, with why, for `wg init` to print.
pub fn next_steps(args: &InitArgs) -> String {
    let check = match args.executor.as_str() {
        "codex" | "claude" => "the agent CLI, endpoint, model and key, one line each",
        _ => "what this project needs to run, one line each",
    };
    [
        ("wg doctor", check),
        (
            "wg add \"First task\" -d \"...\"",
            "what to do and how to know it is done",
        ),
        (
            "wg service start && wg top",
            "run agents on ready tasks and watch them",
        ),
    ]
    .iter()
    .map(|(cmd, why)| format!("  {cmd:<30} # {why}"))
    .collect::<Vec<_>>()
    .join("\n")
}

/// Git merges of the append-only logs: both branches' lines are kept (the union driver), and
/// wg reads the result, the last line for an id winning. See docs/storage.md.
pub const GITATTRIBUTES: &str =
    "# wg's logs are append-only, one record per line; the last record for a task id wins.\n\
# A union merge keeps both branches' lines, and every wg command reads the result.\n\
graph.jsonl merge=union\narchive.jsonl merge=union\ntasks/*/log.jsonl merge=union\n";

pub fn cmd_init(cli: &Cli, args: &InitArgs) -> CliResult {
    let root = match cli.dir.last() {
        Some(d) if d.file_name().is_some_and(|n| n == ".wg") => d
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    if let Some(url) = &args.endpoint {
        validate_endpoint_url(url)
            .map_err(|e| usage_error(e).hinted("example: -e https://gpu-box:30000/v1"))?;
    }
    if let Some(name) = &args.api_key_env {
        crate::config::key_name::check(name).map_err(|e| {
            usage_error(format!("--api-key-env: {e}"))
                .hinted("give the variable's NAME (e.g. WG_API_KEY), never the key itself")
        })?;
    }
    let dir = root.join(".wg");
    if dir.exists() {
        return Err(user_error(format!("{} already exists", display_path(&dir)))
            .hinted("this is already a wg project; `wg config set` changes its settings"));
    }
    std::fs::create_dir_all(&root)
        .map_err(|e| config_error(format!("cannot create {}: {e}", root.display())))?;
    // Build in a temporary folder and rename it into place, so an interrupted init leaves
    // either nothing or a complete project.
    let tmp = tempfile::Builder::new()
        .prefix(".wg-init-")
        .tempdir_in(&root)?;
    let layout = Layout::new(tmp.path());
    std::fs::create_dir_all(layout.tasks_dir())?;
    std::fs::create_dir_all(layout.service_dir())?;
    store::atomic::write_atomic(&layout.config(), render_config(args).as_bytes(), true)?;
    store::atomic::write_atomic(&layout.dir().join(".gitignore"), GITIGNORE.as_bytes(), true)?;
    store::atomic::write_atomic(
        &layout.dir().join(".gitattributes"),
        GITATTRIBUTES.as_bytes(),
        true,
    )?;
    store::atomic::write_atomic(&layout.graph(), b"", true)?;
    store::write_format(&layout)?;
    let tmp_path = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp_path, &dir) {
        let _ = std::fs::remove_dir_all(&tmp_path);
        return Err(user_error(format!("cannot create {}: {e}", dir.display())));
    }
    let out = Printer::new(cli.json);
    out.either(
        &serde_json::json!({
            "dir": dir,
            "executor": args.executor,
            "model": args.model,
            "endpoint": args.endpoint,
            "next": ["wg doctor", "wg add TITLE -d DESCRIPTION", "wg service start"],
        }),
        || {
            let mut s = format!(
                "created {} (executor {})",
                display_path(&dir),
                args.executor
            );
            if args.endpoint.is_some() {
                s.push_str(&format!(
                    "\nthe API key is read from ${} at run time",
                    args.api_key_env
                        .as_deref()
                        .unwrap_or(crate::env::DEFAULT_API_KEY_ENV)
                ));
            }
            s.push_str(&format!(
                "\nsettings: {} (commented; workspace, notify, budgets)\n\nnext:\n{}",
                display_path(&dir.join("config.toml")),
                next_steps(args)
            ));
            s
        },
    )?;
    Ok(())
}
