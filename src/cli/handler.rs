//! `wg handler ID`: the codex or claude agent of one task. Answers every unanswered inbox
//! message, one agent turn each, then exits (0 when every turn got an assistant reply, 1 when one ended in
//! an error reply). What the coordinator runs; works by hand too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::conversation::{self, OutboxRecord};
use crate::env;
use crate::error::{internal, not_found, user_error, CliError, CliResult, Kind};
use crate::handler::claude::{self, ClaudeParams};
use crate::handler::command::{self, CodexParams, Endpoint};
use crate::handler::events::{classify, Dialect};
use crate::handler::files::{self, EventsLog, HandlerLog};
use crate::handler::log::Level;
use crate::handler::prompt::{self, PromptInput};
use crate::handler::run::{self, Spawn, Timeouts};
use crate::handler::{error_reply, Budget, Failure, ReplyContext, Used};
use crate::lifecycle::{transition, Change};
use crate::model::{Task, TaskStatus};
use crate::store::lock::FileLock;
use crate::time::{now_rfc3339, parse_duration};

/// Run agent turns (codex or claude) for a task until every message to it is answered.
///
/// Claims an `open` task (as agent `manual` when run by hand), writes the brief when the inbox
/// is empty, and leaves the task `waiting` after a turn that did not finish it.
#[derive(Debug, Args)]
pub struct HandlerArgs {
    pub id: String,
    /// Run one turn only.
    #[arg(long)]
    pub once: bool,
    /// Model for this run (default: the task's, then the config's).
    #[arg(long, env = env::WG_MODEL, hide_env_values = true)]
    pub model: Option<String>,
    /// Endpoint base URL for this run, including /v1 (default: `[endpoint] url`).
    #[arg(long, env = env::WG_ENDPOINT, hide_env_values = true)]
    pub endpoint: Option<String>,
}

/// codex's own log database in the shared CODEX_HOME is dropped past this size.
const CODEX_HOME_LOG_CAP: u64 = 64 * 1024 * 1024;

/// Everything a turn needs, resolved once.
struct Resolved {
    dialect: Dialect,
    model: Option<String>,
    endpoint: Option<String>,
    key_env: String,
    key: Option<String>,
    binary: String,
    sandbox: String,
    workdir: PathBuf,
    /// Writable roots besides the workdir (a worktree task's `.wg/` and git common dir).
    add_dirs: Vec<PathBuf>,
    codex_home: Option<PathBuf>,
    /// claude's per-task CLAUDE_CONFIG_DIR.
    claude_dir: PathBuf,
    timeouts: Timeouts,
    stream_idle_ms: u64,
    budget: Budget,
    agent: String,
    path_env: String,
    wg_dir: PathBuf,
    /// The local Responses→Chat bridge, for endpoints with `wire_api = "chat"`.
    bridge: Option<crate::bridge::BridgeHandle>,
}

/// The env var that carries the bridge's per-run token to codex (in place of the real key,
/// which codex never sees when the bridge is in front).
const BRIDGE_TOKEN_ENV: &str = "WG_BRIDGE_TOKEN";

fn dur(key: &str, v: &str) -> CliResult<Duration> {
    parse_duration(v).map_err(|e| crate::error::config_error(format!("handler.{key}: {e}")))
}

fn nonempty(s: Option<&String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty()).cloned()
}

/// Whether `p` lies in the system temp dir, where codex refuses to set up its helpers.
fn under_temp(p: &Path) -> bool {
    let tmp = std::env::temp_dir();
    let tmp = tmp.canonicalize().unwrap_or(tmp);
    p.starts_with(&tmp) || p.starts_with("/tmp") || p.starts_with("/var/tmp")
}

/// The project-local CODEX_HOME: `.wg/codex-home`, shared by the project's agents (codex is
/// safe with parallel turns on one home once it is set up). codex refuses to install its
/// helper binaries under the temp dir, so a project there gets one under `$HOME/.cache/wg`.
fn codex_home(wg_dir: &Path) -> PathBuf {
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

fn resolve(ctx: &Ctx, args: &HandlerArgs, task: &Task, dialect: Dialect) -> CliResult<Resolved> {
    let cfg = &ctx.config;
    // `[executors.NAME]` may point this executor at its own endpoint, model and key.
    let ep = cfg.endpoint_for(dialect.name());
    let h = &cfg.handler;
    let wg_dir = std::path::absolute(ctx.layout.dir()).map_err(internal)?;
    let root = wg_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| wg_dir.clone());
    let endpoint = nonempty(args.endpoint.as_ref()).or_else(|| ep.url.clone());
    if let Some(u) = &endpoint {
        crate::config::validate_endpoint_url(u).map_err(crate::error::config_error)?;
    }
    let key_env = ep.key_env.clone();
    // The key is read here and only handed to codex's environment under its own name.
    let key = std::env::var(&key_env).ok().filter(|k| !k.is_empty());
    let worktree = crate::workspace::recorded_worktree(task).filter(|d| d.is_dir());
    let workdir = match (&worktree, &task.workspace) {
        (Some(d), _) => d.clone(),
        (None, Some(w)) if w == "shared" || w == "worktree" => root.clone(),
        (None, Some(w)) if Path::new(w).is_absolute() => PathBuf::from(w),
        (None, Some(w)) => root.join(w),
        (None, None) => root.clone(),
    };
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
    let path_env = match own_dir {
        Some(d) if !old_path.is_empty() => format!("{}:{old_path}", d.display()),
        Some(d) => d.display().to_string(),
        None => old_path,
    };
    let agent = if ctx.actor == "user" {
        "manual".to_string()
    } else {
        ctx.actor.clone()
    };
    Ok(Resolved {
        dialect,
        model: nonempty(args.model.as_ref())
            .or_else(|| task.model.clone())
            .or_else(|| ep.model.clone()),
        codex_home: endpoint
            .as_ref()
            .filter(|_| dialect == Dialect::Codex)
            .map(|_| codex_home(&wg_dir)),
        claude_dir: wg_dir.join("tasks").join(&task.id).join("claude"),
        endpoint,
        key_env,
        key,
        binary: match dialect {
            Dialect::Codex => cfg.codex.binary.clone(),
            Dialect::Claude => cfg.claude.binary.clone(),
        },
        sandbox: cfg.codex.sandbox.clone(),
        workdir,
        add_dirs,
        timeouts: Timeouts {
            first_output: dur("first_output_timeout", &h.first_output_timeout)?,
            idle: dur("idle_timeout", &h.idle_timeout)?,
            hard: dur("turn_timeout", &h.turn_timeout)?,
            grace: parse_duration(&cfg.coordinator.grace_period).unwrap_or(Duration::from_secs(5)),
        },
        stream_idle_ms: dur("stream_idle_timeout", &h.stream_idle_timeout)?.as_millis() as u64,
        budget: Budget {
            max_turns: h.max_turns,
            max_tokens: h.max_tokens,
            max_wall: h
                .max_wall
                .as_deref()
                .map(|w| dur("max_wall", w))
                .transpose()?,
        },
        agent,
        path_env,
        wg_dir,
        bridge: None,
    })
}

/// Starts the bridge when the endpoint only speaks Chat Completions (current codex speaks
/// only the Responses API). It holds the real key; codex gets a random token for it.
fn start_bridge(
    ctx: &Ctx,
    r: &Resolved,
    log: &mut HandlerLog,
) -> CliResult<Option<crate::bridge::BridgeHandle>> {
    // Only codex needs it: claude speaks the Anthropic Messages API to its own endpoint.
    let chat =
        r.dialect == Dialect::Codex && ctx.config.endpoint.wire_api.as_deref() == Some("chat");
    let (true, Some(url)) = (chat, r.endpoint.as_deref()) else {
        return Ok(None);
    };
    let handle = crate::bridge::start(crate::bridge::BridgeConfig::new(url, r.key.clone()))
        .map_err(|e| user_error(format!("cannot start the Responses-to-Chat bridge: {e}")))?;
    log.write(
        Level::Info,
        0,
        "bridge.start",
        &[
            ("listen", handle.base_url().to_string()),
            ("upstream", url.to_string()),
        ],
    );
    Ok(Some(handle))
}

/// The codex binary: a path as given (relative to the project root), or a PATH lookup.
pub(crate) fn find_binary(binary: &str, path_env: &str, root: &Path) -> Result<PathBuf, String> {
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

fn not_finished(task: &Task) -> CliResult<()> {
    if task.status.is_terminal() {
        return Err(user_error(format!(
            "task `{}` is {}; there is nothing to answer",
            task.id, task.status
        ))
        .hinted(format!(
            "`wg msg {} TEXT --reopen` opens it again with a new message",
            task.id
        )));
    }
    Ok(())
}

/// open → in-progress (claimed), waiting → in-progress when a message waits for an answer.
fn claim(ctx: &Ctx, id: &str, agent: &str, has_work: bool) -> CliResult<Task> {
    let mut w = ctx.store.writer()?;
    let task = w.get(id)?.ok_or_else(|| not_found(id))?;
    not_finished(&task)?;
    let task = match task.status {
        TaskStatus::Open => {
            let t = transition(
                &mut w,
                id,
                Change {
                    to: TaskStatus::InProgress,
                    reason: Some("wg handler started"),
                    actor: agent,
                },
                |t| t.assigned = Some(agent.to_string()),
            )?;
            w.commit()?;
            t
        }
        TaskStatus::Waiting if has_work => {
            let t = transition(
                &mut w,
                id,
                Change {
                    to: TaskStatus::InProgress,
                    reason: None,
                    actor: agent,
                },
                |_| {},
            )?;
            w.commit()?;
            t
        }
        _ => task,
    };
    Ok(task)
}

/// in-progress → `to` after a turn; leaves a task the agent closed alone.
fn settle(
    ctx: &Ctx,
    id: &str,
    agent: &str,
    to: TaskStatus,
    reason: Option<&str>,
) -> CliResult<TaskStatus> {
    let mut w = ctx.store.writer()?;
    let task = w.get(id)?.ok_or_else(|| not_found(id))?;
    // A question to a person (needs-input) or a pause stays until a person acts.
    let held = matches!(task.status, TaskStatus::NeedsInput | TaskStatus::Paused);
    if task.status.is_terminal() || held || task.status == to || !task.status.can_become(to) {
        return Ok(task.status);
    }
    transition(
        &mut w,
        id,
        Change {
            to,
            reason,
            actor: agent,
        },
        |_| {},
    )?;
    w.commit()?;
    Ok(to)
}

struct Outcome {
    any_error: Option<String>,
}

pub fn cmd_handler(ctx: &Ctx, args: &HandlerArgs) -> CliResult {
    check_id(&args.id)?;
    let id = args.id.as_str();
    let graph = ctx.store.load()?;
    let task = graph.tasks.get(id).cloned().ok_or_else(|| not_found(id))?;
    let dialect = match task.executor.as_deref() {
        Some("claude") => Dialect::Claude,
        None if ctx.config.executor == "claude" => Dialect::Claude,
        Some("codex") | None => Dialect::Codex,
        Some(x) => {
            return Err(user_error(format!(
                "task `{id}` runs with executor `{x}`; `wg handler` runs codex and claude tasks"
            ))
            .hinted("the coordinator (`wg service start`) runs other executors"))
        }
    };
    not_finished(&task)?;
    let r = resolve(ctx, args, &task, dialect)?;
    if dialect == Dialect::Claude && r.model.is_none() {
        // Without --model the CLI picks a Claude model id the endpoint may not serve.
        return Err(crate::error::config_error(
            "the claude executor needs a model, and none is set",
        )
        .hinted(format!(
            "`wg config set model NAME`, `wg edit {id} --model NAME` or [executors.claude] model"
        )));
    }
    let task_dir = ctx.layout.task_dir(id);
    std::fs::create_dir_all(&task_dir)?;
    let brief = conversation::brief_for(&ctx.layout, &task, |d| graph.tasks.get(d).cloned());
    conversation::ensure_brief(&ctx.layout, &task, &brief).map_err(internal)?;

    let secrets: Vec<String> = r.key.iter().cloned().collect();
    let max = ctx.config.handler.log_max_bytes;
    let mut log = HandlerLog::new(task_dir.join("handler.log"), id, max, secrets.clone());
    let mut events_log = EventsLog::new(task_dir.join("events.jsonl"), max, secrets);
    let mut r = r;
    r.bridge = start_bridge(ctx, &r, &mut log)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(internal)?;

    let mut outcome = Outcome { any_error: None };
    loop {
        // One turn at a time per task, whoever runs it. A second handler leaves: the holder
        // checks the inbox again after it lets go, so no message is left unanswered.
        let lock_path = task_dir.join("turn.lock");
        let Some(lock) =
            FileLock::try_acquire(&lock_path).map_err(|e| CliError::new(Kind::Locked, e))?
        else {
            eprintln!(
                "another `wg handler` is running turns for task `{id}`; it will answer the inbox"
            );
            return Ok(());
        };
        let ran = turns(
            ctx,
            args,
            &r,
            id,
            &mut log,
            &mut events_log,
            &rt,
            &mut outcome,
        )?;
        drop(lock);
        let again = !args.once
            && ran
            && outcome.any_error.is_none()
            && !conversation::unanswered(&ctx.layout, id)
                .map_err(internal)?
                .is_empty();
        if !again {
            break;
        }
    }
    match outcome.any_error {
        Some(text) => Err(
            user_error(format!("a turn of task `{id}` ended in an error: {text}")).hinted(format!(
                "details: {}",
                crate::cli::display_path(&task_dir.join("handler.log"))
            )),
        ),
        None => Ok(()),
    }
}

/// Runs turns while messages wait; returns whether the task can still take turns.
#[allow(clippy::too_many_arguments)]
fn turns(
    ctx: &Ctx,
    args: &HandlerArgs,
    r: &Resolved,
    id: &str,
    log: &mut HandlerLog,
    events_log: &mut EventsLog,
    rt: &tokio::runtime::Runtime,
    outcome: &mut Outcome,
) -> CliResult<bool> {
    loop {
        let inbox = conversation::read_inbox(&ctx.layout, id).map_err(internal)?;
        let outbox = conversation::read_outbox(&ctx.layout, id).map_err(internal)?;
        let answered = outbox.iter().map(|o| o.in_reply_to).max().unwrap_or(0);
        let pending = inbox.iter().any(|m| m.seq > answered);
        let task = claim(ctx, id, &r.agent, pending)?;
        if !pending {
            return Ok(true);
        }
        let turn = outbox.len() as u64 + 1;
        let last_seq = inbox.last().map_or(0, |m| m.seq);
        let reply_ctx = ReplyContext {
            agent: r.dialect.name(),
            task_id: id,
            endpoint: r.endpoint.as_deref(),
            key_env: &r.key_env,
        };

        if let Some(what) = r.budget.exceeded(&Used::of(&outbox), true) {
            let f = Failure::Budget { what: what.clone() };
            record_error(ctx, log, id, turn, last_seq, &f, &reply_ctx, None, 0, None)?;
            settle(
                ctx,
                id,
                &r.agent,
                TaskStatus::Failed,
                Some(&format!("over budget: {what}")),
            )?;
            outcome.any_error = Some(error_reply(&f, &reply_ctx));
            return Ok(false);
        }

        let p = prompt::build(&PromptInput {
            task_id: id,
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: ctx.config.codex.history_budget_chars,
        });
        let (first, last) = p.answers.unwrap_or((last_seq, last_seq));
        log.write(
            Level::Info,
            turn,
            "turn.start",
            &[
                (
                    "messages",
                    if first == last {
                        first.to_string()
                    } else {
                        format!("{first}-{last}")
                    },
                ),
                ("prompt_chars", p.text.chars().count().to_string()),
                ("dropped_turns", p.dropped_turns.to_string()),
                ("model", r.model.clone().unwrap_or_else(|| "default".into())),
                (
                    "endpoint",
                    r.endpoint
                        .clone()
                        .unwrap_or_else(|| format!("{}-default", r.dialect.name())),
                ),
            ],
        );

        let root = r
            .wg_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| r.wg_dir.clone());
        // A missing key or binary ends the turn before anything is spawned.
        let binary = if r.endpoint.is_some() && r.key.is_none() {
            Err(Failure::KeyMissing {
                var: r.key_env.clone(),
            })
        } else {
            find_binary(&r.binary, &r.path_env, &root).map_err(|detail| Failure::NotInstalled {
                agent: r.dialect.name(),
                binary: r.binary.clone(),
                detail,
            })
        };
        let binary = match binary {
            Ok(b) => b,
            Err(f) => {
                record_error(ctx, log, id, turn, last, &f, &reply_ctx, None, 0, None)?;
                end_unspawned(log, turn, &f);
                settle(ctx, id, &r.agent, TaskStatus::Waiting, None)?;
                outcome.any_error = Some(error_reply(&f, &reply_ctx));
                return Ok(false);
            }
        };
        let version = files::codex_version(
            &binary,
            &ctx.layout
                .service_dir()
                .join(format!("{}-version", r.dialect.name())),
        );

        let params = CodexParams {
            binary: binary.display().to_string(),
            workdir: r.workdir.clone(),
            add_dirs: r.add_dirs.clone(),
            model: r.model.clone(),
            endpoint: r.endpoint.as_ref().map(|url| Endpoint {
                url: r
                    .bridge
                    .as_ref()
                    .map_or(url.clone(), |b| b.base_url().to_string()),
                key_env: if r.bridge.is_some() {
                    BRIDGE_TOKEN_ENV.to_string()
                } else {
                    r.key_env.clone()
                },
                model_context_window: ctx.config.endpoint.model_context_window,
            }),
            sandbox: r.sandbox.clone(),
            request_max_retries: ctx.config.handler.request_max_retries,
            stream_max_retries: ctx.config.handler.stream_max_retries,
            stream_idle_timeout_ms: r.stream_idle_ms,
        };
        let mut argv = command::codex_args(&params);
        let mut envs = vec![
            (env::WG_DIR.to_string(), r.wg_dir.display().to_string()),
            (env::WG_TASK_ID.to_string(), id.to_string()),
            (env::WG_AGENT_ID.to_string(), r.agent.clone()),
            ("PATH".to_string(), r.path_env.clone()),
        ];
        if std::env::var_os(env::WG_EXECUTOR).is_none() {
            envs.push((env::WG_EXECUTOR.to_string(), r.dialect.name().into()));
        }
        let mut env_remove = Vec::new();
        if r.dialect == Dialect::Claude {
            let (a, e, remove) = claude_turn(ctx, r)?;
            argv = a;
            envs.extend(e);
            env_remove = remove;
        }
        if let Some(b) = &r.bridge {
            envs.push((BRIDGE_TOKEN_ENV.to_string(), b.token().to_string()));
            env_remove.push(r.key_env.clone());
        }
        if let Some(home) = &r.codex_home {
            // codex fails with "Error finding codex home" unless it exists.
            std::fs::create_dir_all(home)?;
            let freed = files::prune_codex_home(home, CODEX_HOME_LOG_CAP);
            if freed > 0 {
                log.write(
                    Level::Info,
                    turn,
                    "codex_home.pruned",
                    &[("bytes", freed.to_string())],
                );
            }
            envs.push(("CODEX_HOME".to_string(), home.display().to_string()));
        }
        let mut shown = vec![binary.display().to_string()];
        shown.extend(argv.iter().cloned());
        log.write(
            Level::Info,
            turn,
            "spawn",
            &[
                ("argv", command::shell_join(&shown)),
                ("cwd", r.workdir.display().to_string()),
                match r.dialect {
                    Dialect::Codex => (
                        "codex_home",
                        r.codex_home
                            .as_ref()
                            .map_or("user".into(), |h| h.display().to_string()),
                    ),
                    Dialect::Claude => ("claude_config_dir", r.claude_dir.display().to_string()),
                },
                (
                    if r.dialect == Dialect::Codex {
                        "codex_version"
                    } else {
                        "claude_version"
                    },
                    version.clone().unwrap_or_else(|| "unknown".into()),
                ),
            ],
        );
        let spawn = Spawn {
            program: binary.clone(),
            args: argv,
            env: envs,
            cwd: r.workdir.clone(),
            prompt: p.text,
            timeouts: r.timeouts,
            dialect: r.dialect,
            env_remove,
        };
        let rep = rt.block_on(run::run_codex(spawn, turn, log, events_log));
        if let Some(b) = &r.bridge {
            for w in b.take_warnings() {
                log.write(Level::Warn, turn, "bridge.warning", &[("message", w)]);
            }
            if let Some(e) = b.take_last_error() {
                // codex replaces a 500's body with a generic text: keep the server's own words.
                log.write(
                    Level::Error,
                    turn,
                    "bridge.upstream_error",
                    &[
                        ("status", e.status.map_or("none".into(), |s| s.to_string())),
                        ("message", e.message.clone()),
                    ],
                );
            }
        }
        let usage = rep.events.usage.clone();
        let ok = rep.spawn_error.is_none()
            && rep.timeout.is_none()
            && rep.events.succeeded(rep.exit_code);
        let duration_ms = rep.duration.as_millis() as u64;
        let tokens = [
            ("input_tokens", usage.input_tokens.to_string()),
            ("cached_input_tokens", usage.cached_input_tokens.to_string()),
            ("output_tokens", usage.output_tokens.to_string()),
            (
                "reasoning_tokens",
                usage.reasoning_output_tokens.to_string(),
            ),
        ];
        let exit = rep.exit_code.map_or("none".to_string(), |c| c.to_string());
        if ok {
            let text = rep.events.reply.clone().unwrap_or_default();
            let text = log.redact(&text);
            if rep.events.reply.is_none() {
                log.write(
                    Level::Warn,
                    turn,
                    "no_reply",
                    &[(
                        "reason",
                        "codex completed the turn without an agent_message".into(),
                    )],
                );
            }
            let mut extra = serde_json::Map::new();
            extra.insert("turn".into(), turn.into());
            if r.dialect == Dialect::Claude {
                extra.insert("executor".into(), "claude".into());
                if let Some(v) = &version {
                    extra.insert("claude_version".into(), v.clone().into());
                }
                let price = r
                    .model
                    .as_ref()
                    .and_then(|m| ctx.config.claude.prices.get(m));
                if let Some(c) = claude::cost_usd(price, &usage) {
                    extra.insert("cost_usd".into(), c.into());
                }
            }
            let rec = OutboxRecord {
                seq: 0,
                ts: now_rfc3339(),
                in_reply_to: last,
                role: "assistant".into(),
                text,
                usage: Some(usage.clone()),
                duration_ms,
                codex_version: version.clone().filter(|_| r.dialect == Dialect::Codex),
                extra,
            };
            let rec = conversation::append_outbox(&ctx.layout, id, rec).map_err(internal)?;
            let mut kv = vec![
                ("status", "ok".to_string()),
                ("exit_code", exit),
                ("duration_ms", duration_ms.to_string()),
            ];
            kv.extend(tokens.iter().cloned());
            kv.push(("commands", rep.events.commands.len().to_string()));
            kv.push(("reply_chars", rec.text.chars().count().to_string()));
            log.write(Level::Info, turn, "turn.end", &kv);
            ctx.out.either(&rec, || rec.text.clone())?;
        } else {
            let f = if let Some(e) = &rep.spawn_error {
                Failure::NotInstalled {
                    agent: r.dialect.name(),
                    binary: binary.display().to_string(),
                    detail: e.to_string(),
                }
            } else if let Some((which, after)) = rep.timeout {
                Failure::Timeout { which, after }
            } else {
                let detail = rep
                    .events
                    .failed
                    .clone()
                    .or_else(|| {
                        rep.stderr_tail
                            .iter()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .cloned()
                    })
                    .unwrap_or_else(|| {
                        format!(
                            "{} exited with code {exit} without finishing the turn",
                            r.dialect.name()
                        )
                    });
                let detail = log.redact(&detail);
                let kind = match r.dialect {
                    Dialect::Codex => classify(&detail),
                    Dialect::Claude => claude::classify_claude(rep.events.error_status, &detail),
                };
                Failure::Codex { kind, detail }
            };
            record_error(
                ctx,
                log,
                id,
                turn,
                last,
                &f,
                &reply_ctx,
                Some(&usage),
                duration_ms,
                rep.exit_code,
            )?;
            let mut kv = vec![
                ("status", "error".to_string()),
                ("exit_code", exit),
                ("duration_ms", duration_ms.to_string()),
            ];
            kv.extend(tokens.iter().cloned());
            kv.push(("error_kind", f.kind().to_string()));
            log.write(Level::Info, turn, "turn.end", &kv);
            outcome.any_error = Some(error_reply(&f, &reply_ctx));
        }

        // The turn is over. A task the agent did not close waits for the next message.
        let after = settle(ctx, id, &r.agent, TaskStatus::Waiting, None)?;
        if after != task.status {
            log.write(
                Level::Info,
                turn,
                "status",
                &[("from", task.status.to_string()), ("to", after.to_string())],
            );
        }
        if matches!(after, TaskStatus::NeedsInput | TaskStatus::Paused) {
            return Ok(false);
        }
        if after.is_terminal() {
            log.write(
                Level::Info,
                turn,
                "task.closed",
                &[("status", after.to_string())],
            );
            return Ok(false);
        }
        let outbox = conversation::read_outbox(&ctx.layout, id).map_err(internal)?;
        if let Some(what) = r.budget.exceeded(&Used::of(&outbox), false) {
            log.write(Level::Error, turn, "budget", &[("exceeded", what.clone())]);
            settle(
                ctx,
                id,
                &r.agent,
                TaskStatus::Failed,
                Some(&format!("over budget: {what}")),
            )?;
            outcome.any_error = Some(error_reply(&Failure::Budget { what }, &reply_ctx));
            return Ok(false);
        }
        if outcome.any_error.is_some() || args.once {
            return Ok(false);
        }
    }
}

/// The claude part of a turn: argv, environment (the key under the variable the CLI reads)
/// and the variables to drop from the inherited environment. Prepares the per-task config
/// dir and the env file that keeps the key from the agent's commands.
#[allow(clippy::type_complexity)]
fn claude_turn(
    ctx: &Ctx,
    r: &Resolved,
) -> CliResult<(Vec<String>, Vec<(String, String)>, Vec<String>)> {
    let c = &ctx.config.claude;
    std::fs::create_dir_all(&r.claude_dir)?;
    let env_file = r.claude_dir.join("env.sh");
    crate::store::atomic::write_atomic(
        &env_file,
        claude::env_file_script(&r.key_env).as_bytes(),
        false,
    )
    .map_err(internal)?;
    let ms = |key: &str, v: &str| -> CliResult<u64> {
        parse_duration(v)
            .map(|d| d.as_millis() as u64)
            .map_err(|e| crate::error::config_error(format!("claude.{key}: {e}")))
    };
    // SAFETY: geteuid has no preconditions and touches no memory.
    let is_root = unsafe { libc::geteuid() } == 0;
    let p = ClaudeParams {
        model: r.model.clone().unwrap_or_default(),
        endpoint: r.endpoint.clone(),
        permissions: c.permissions.clone(),
        allowed_tools: c.allowed_tools.clone(),
        auth: c.auth.clone(),
        config_dir: r.claude_dir.display().to_string(),
        env_file: env_file.display().to_string(),
        max_retries: c.max_retries,
        api_timeout_ms: ms("api_timeout", &c.api_timeout)?,
        stream_idle_ms: ms("stream_idle_timeout", &c.stream_idle_timeout)?,
        is_root,
    };
    let mut envs = claude::claude_env(&p);
    let key_var = claude::key_var(&c.auth);
    // Both key variables may be inherited; the CLI sends every one it finds, so only the one
    // wg sets survives, and the configured variable itself is not passed on under its name.
    let mut remove: Vec<String> = claude::KEY_VARS.iter().map(|s| s.to_string()).collect();
    if !remove.contains(&r.key_env) {
        remove.push(r.key_env.clone());
    }
    if let Some(k) = &r.key {
        envs.push((key_var.to_string(), k.clone()));
    }
    Ok((claude::claude_args(&p), envs, remove))
}

/// `turn.end` of a turn that failed before codex started.
fn end_unspawned(log: &mut HandlerLog, turn: u64, f: &Failure) {
    log.write(
        Level::Info,
        turn,
        "turn.end",
        &[
            ("status", "error".into()),
            ("exit_code", "none".into()),
            ("duration_ms", "0".into()),
            ("error_kind", f.kind().into()),
        ],
    );
}

/// Writes the `error` reply and its ERROR line.
#[allow(clippy::too_many_arguments)]
fn record_error(
    ctx: &Ctx,
    log: &mut HandlerLog,
    id: &str,
    turn: u64,
    in_reply_to: u64,
    f: &Failure,
    reply_ctx: &ReplyContext<'_>,
    usage: Option<&crate::conversation::Usage>,
    duration_ms: u64,
    exit_code: Option<i32>,
) -> CliResult<()> {
    let text = log.redact(&error_reply(f, reply_ctx));
    log.write(
        Level::Error,
        turn,
        "error",
        &[("kind", f.kind().to_string()), ("message", text.clone())],
    );
    let mut extra = serde_json::Map::new();
    extra.insert("turn".into(), turn.into());
    extra.insert("error_kind".into(), f.kind().into());
    if let Some(c) = exit_code {
        extra.insert("exit_code".into(), c.into());
    }
    let rec = OutboxRecord {
        seq: 0,
        ts: now_rfc3339(),
        in_reply_to,
        role: "error".into(),
        text,
        usage: usage.cloned(),
        duration_ms,
        codex_version: None,
        extra,
    };
    let rec = conversation::append_outbox(&ctx.layout, id, rec).map_err(internal)?;
    if ctx.out.json {
        ctx.out.json(&rec)?;
    }
    Ok(())
}
