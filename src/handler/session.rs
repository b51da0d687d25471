//! The turn loop of `wg handler ID`: claims the task, answers every unanswered inbox message
//! with one agent turn each (codex or claude, see [`super::agent`]), records each reply or
//! error in the outbox, and settles the task. Used by the CLI, which parses and prints.

use std::path::Path;

use super::agent::AgentCli;
use super::boxing;
use super::command;
use super::error::SessionError;
use super::events::Dialect;
use super::files::{self, EventsLog, HandlerLog};
use super::log::Level;
use super::prompt::{self, PromptInput};
use super::proxy;
use super::resolve::{find_binary, resolve, start_bridge, Resolved, Scope};
use super::run::{self, Spawn};
use super::{answers, digest, overflow};
use super::{error_reply, Failure, ReplyContext, Used};
use crate::config::Config;
use crate::conversation::{self, OutboxRecord, Role};
use crate::env;
use crate::lifecycle::{transition, Change};
use crate::model::{Task, TaskStatus};
use crate::outcome::ErrorKind;
use crate::sandbox::Setting;
use crate::store::lock::FileLock;
use crate::store::{Layout, Store};

/// One run of turns, and who runs them.
pub struct Session<'a> {
    pub layout: &'a Layout,
    pub store: &'a Store,
    pub config: &'a Config,
    /// The agent id that holds the task (`manual` when a person runs it).
    pub agent: String,
    /// Run one turn only.
    pub once: bool,
    /// Overrides of the task's and the config's model and endpoint URL.
    pub model: Option<String>,
    pub endpoint: Option<String>,
    /// Called with every record the run appends to the outbox (replies and errors).
    pub on_record: &'a dyn Fn(&OutboxRecord),
}

fn not_finished(task: &Task) -> Result<(), SessionError> {
    if task.status.is_terminal() {
        return Err(SessionError::Refused {
            message: format!(
                "task `{}` is {}; there is nothing to answer",
                task.id, task.status
            ),
            hint: Some(format!(
                "`wg msg {} TEXT --reopen` opens it again with a new message",
                task.id
            )),
        });
    }
    Ok(())
}

/// open → in-progress (claimed), waiting → in-progress when a message waits for an answer.
fn claim(s: &Session<'_>, id: &str, agent: &str, has_work: bool) -> Result<Task, SessionError> {
    let mut w = s.store.writer()?;
    let task = w
        .get(id)?
        .ok_or_else(|| SessionError::NotFound(id.to_string()))?;
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
    s: &Session<'_>,
    id: &str,
    agent: &str,
    to: TaskStatus,
    reason: Option<&str>,
) -> Result<TaskStatus, SessionError> {
    let mut w = s.store.writer()?;
    let task = w
        .get(id)?
        .ok_or_else(|| SessionError::NotFound(id.to_string()))?;
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

/// How a run of turns ended.
#[derive(Debug, Default)]
pub struct SessionEnd {
    /// Another handler holds the task's turn lock; it answers the inbox.
    pub busy: bool,
    /// The turn that ended in an `error` reply, if one did (the run stops there).
    pub error: Option<TurnError>,
}

#[derive(Debug)]
pub struct TurnError {
    pub kind: ErrorKind,
    /// The error reply: what failed and what to do.
    pub reply: String,
}

/// Stops before the first turn when the task's directory holds a link or a special file
/// (planted to make wg write elsewhere): the run fails naming it, and the task's log says so
/// (unless the log is what was planted; it is never written through).
fn refuse_planted(s: &Session<'_>, id: &str) -> Result<(), SessionError> {
    let Some(r) = crate::store::nofollow::scan_dir(&s.layout.task_dir(id))
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let note = crate::store::tasklog::LogRecord::note(
        &crate::time::now_rfc3339(),
        &s.agent,
        &r.to_string(),
    );
    let _ = crate::store::tasklog::append(s.layout, id, &note, false);
    Err(SessionError::Io(r.into()))
}

/// Runs agent turns for a task until every message to it is answered (or one turn fails).
pub fn run(s: &Session<'_>, id: &str) -> Result<SessionEnd, SessionError> {
    let graph = s.store.load()?;
    let task = graph
        .tasks
        .get(id)
        .cloned()
        .ok_or_else(|| SessionError::NotFound(id.to_string()))?;
    let dialect = match task.executor.as_deref() {
        Some("claude") => Dialect::Claude,
        None if s.config.executor == "claude" => Dialect::Claude,
        Some("codex") | None => Dialect::Codex,
        Some(x) => {
            return Err(SessionError::Refused {
                message: format!(
                    "task `{id}` runs with executor `{x}`; `wg handler` runs codex and claude tasks"
                ),
                hint: Some("the coordinator (`wg service start`) runs other executors".into()),
            })
        }
    };
    not_finished(&task)?;
    let scope = Scope {
        layout: s.layout,
        config: s.config,
        agent: &s.agent,
        model: s.model.as_ref(),
        endpoint: s.endpoint.as_ref(),
    };
    let mut r = resolve(&scope, &task, dialect)?;
    if dialect == Dialect::Claude && r.model.is_none() {
        // Without --model the CLI picks a Claude model id the endpoint may not serve.
        return Err(SessionError::Config {
            message: "the claude executor needs a model, and none is set".into(),
            hint: Some(format!(
                "`wg config set model NAME`, `wg edit {id} --model NAME` or [executors.claude] model"
            )),
        });
    }
    let task_dir = s.layout.task_dir(id);
    refuse_planted(s, id)?;
    crate::store::nofollow::create_dir_all(&task_dir)?;
    let brief = conversation::brief_for(s.layout, &task, |d| graph.tasks.get(d).cloned());
    conversation::ensure_brief(s.layout, &task, &brief)?;

    let secrets: Vec<String> = r.key.iter().cloned().collect();
    let max = s.config.handler.log_max_bytes;
    let mut log = HandlerLog::new(task_dir.join("handler.log"), id, max, secrets.clone());
    let mut events_log = EventsLog::new(task_dir.join("events.jsonl"), max, secrets);
    r.bridge = start_bridge(s.config, &r, &mut log)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let mut outcome = SessionEnd::default();
    loop {
        // One turn at a time per task, whoever runs it. A second handler leaves: the holder
        // checks the inbox again after it lets go, so no message is left unanswered.
        let lock_path = task_dir.join("turn.lock");
        let Some(lock) = FileLock::try_acquire(&lock_path).map_err(SessionError::Locked)? else {
            outcome.busy = true;
            return Ok(outcome);
        };
        let ran = turns(s, &r, id, &mut log, &mut events_log, &rt, &mut outcome)?;
        drop(lock);
        let again = !s.once
            && ran
            && outcome.error.is_none()
            && !conversation::unanswered(s.layout, id)?.is_empty();
        if !again {
            return Ok(outcome);
        }
    }
}

/// Runs turns while messages wait; returns whether the task can still take turns.
#[allow(clippy::too_many_arguments)]
fn turns(
    s: &Session<'_>,
    r: &Resolved,
    id: &str,
    log: &mut HandlerLog,
    events_log: &mut EventsLog,
    rt: &tokio::runtime::Runtime,
    outcome: &mut SessionEnd,
) -> Result<bool, SessionError> {
    // Set while a turn is retried after a context overflow.
    let mut retry: Option<OverflowRetry> = None;
    loop {
        let inbox = conversation::read_inbox(s.layout, id)?;
        let outbox = conversation::read_outbox(s.layout, id)?;
        // A turn the endpoint never took (an outage) answered nothing.
        let answered = outbox
            .iter()
            .filter(|o| !conversation::is_outage(o))
            .map(|o| o.in_reply_to)
            .max()
            .unwrap_or(0);
        let pending = inbox.iter().any(|m| m.seq > answered);
        let task = claim(s, id, &r.agent, pending)?;
        if !pending {
            return Ok(true);
        }
        let turn = outbox.len() as u64 + 1;
        let executor = std::env::var(env::WG_EXECUTOR).unwrap_or_else(|_| r.dialect.name().into());
        let setting =
            Setting::for_task(&task, &executor, s.config).map_err(SessionError::config)?;
        let last_seq = inbox.last().map_or(0, |m| m.seq);
        let reply_ctx = ReplyContext {
            agent: r.dialect.name(),
            task_id: id,
            endpoint: r.endpoint.as_deref(),
            key_env: &r.key_env,
        };

        if let Some(what) = r.budget.exceeded(&Used::of(&outbox), true) {
            let f = Failure::Budget { what: what.clone() };
            record_error(
                s, log, id, turn, last_seq, &f, &reply_ctx, None, 0, None, None, None,
            )?;
            settle(
                s,
                id,
                &r.agent,
                TaskStatus::Failed,
                Some(&format!("over budget: {what}")),
            )?;
            outcome.error = Some(TurnError {
                kind: f.kind(),
                reply: error_reply(&f, &reply_ctx),
            });
            return Ok(false);
        }

        let configured = s.config.history_budget_chars();
        let budget = retry
            .as_ref()
            .map_or_else(|| overflow::effective_budget(configured, &outbox), |t| t.to);
        let p = prompt::build(&PromptInput {
            task_id: id,
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: budget,
            actions_chars: s.config.replay_actions_chars(),
        });
        // Events already logged under this turn's number are an attempt that was stopped
        // before it wrote its record: say what it did, or the agent starts over blind.
        let earlier = files::turn_events(&s.layout.task_dir(id).join("events.jsonl"), turn);
        let stopped = digest::interrupted(r.dialect, &earlier);
        let p = prompt::with_interrupted(p, stopped.as_ref(), s.config.replay_actions_chars());
        let history_chars = p.history_chars;
        let prompt_bytes = p.text.len();
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
                ("history_budget", budget.to_string()),
                ("history_chars", history_chars.to_string()),
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
        } else if let Some(home) = super::resolve::unsandboxable_home(r) {
            Err(Failure::Sandbox {
                codex_home: home.display().to_string(),
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
                record_error(
                    s, log, id, turn, last, &f, &reply_ctx, None, 0, None, None, None,
                )?;
                end_unspawned(log, turn, &f);
                settle(s, id, &r.agent, TaskStatus::Waiting, None)?;
                outcome.error = Some(TurnError {
                    kind: f.kind(),
                    reply: error_reply(&f, &reply_ctx),
                });
                return Ok(false);
            }
        };
        let version = files::codex_version(
            &binary,
            &s.layout
                .service_dir()
                .join(format!("{}-version", r.dialect.name())),
        );

        // A token for this turn only; it dies when the turn ends (`end_turn` below).
        if let Some(b) = &r.bridge {
            b.new_turn().map_err(|e| SessionError::Refused {
                message: format!("cannot start a turn on the credential proxy: {e}"),
                hint: None,
            })?;
        }
        let agent = agent_of(r.dialect);
        let inv = agent.invocation(r, s.config, log, turn)?;
        let mut envs = vec![
            (env::WG_DIR.to_string(), r.wg_dir.display().to_string()),
            (env::WG_TASK_ID.to_string(), id.to_string()),
            (env::WG_AGENT_ID.to_string(), r.agent.clone()),
            ("PATH".to_string(), r.path_env.clone()),
        ];
        envs.push((
            env::WG_EXECUTOR.to_string(),
            std::env::var(env::WG_EXECUTOR).unwrap_or_else(|_| r.dialect.name().into()),
        ));
        // wg's own settings the coordinator gave this handler go on to the agent's `wg`
        // (the agent's environment is rebuilt, nothing is inherited).
        for name in [
            env::WG_MODEL,
            env::WG_ENDPOINT,
            env::WG_CONFIG,
            env::WG_LOG,
            env::WG_LOCK_TIMEOUT,
        ] {
            if let Ok(v) = std::env::var(name) {
                envs.push((name.to_string(), v));
            }
        }
        envs.extend(inv.env);
        let argv = inv.args;
        let mut shown = vec![binary.display().to_string()];
        shown.extend(argv.iter().cloned());
        log.write(
            Level::Info,
            turn,
            "spawn",
            &[
                ("argv", command::shell_join(&shown)),
                ("cwd", r.workdir.display().to_string()),
                (inv.home.0, inv.home.1.clone()),
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
        let mut agent_env =
            proxy::agent_env(&r.bin_dir, &r.pass_env, envs, |k| std::env::var(k).ok());
        let boxed = boxing::wrap(setting, r, id, (&binary, argv.clone()), &mut agent_env)
            .map_err(|e| SessionError::Config {
                message: format!("task `{id}` runs in a sandbox ({}), which cannot start: {e}", setting.label()),
                hint: Some("fix the sandbox (`wg doctor` says how), or opt out with sandbox = \"none\" under [executors.NAME] or on the task".into()),
            })?;
        log.write(
            Level::Info,
            turn,
            "sandbox",
            &[("sandbox", setting.label().to_string())],
        );
        let (program, args) = match &boxed {
            Some(b) => (b.program.clone(), b.args.clone()),
            None => (binary.clone(), argv),
        };
        let spawn = Spawn {
            program,
            args,
            env: agent_env,
            cwd: r.workdir.clone(),
            prompt: p.text,
            timeouts: r.timeouts,
            dialect: r.dialect,
            runaway: (
                s.config.handler.max_repeated_commands,
                s.config.handler.max_commands_per_turn,
            ),
        };
        let rep = rt.block_on(run::run_codex(spawn, turn, log, events_log));
        // The turn is over: its broker and relay close, and its token with them.
        drop(boxed);
        // The proxy's upstream answer, typed: it outranks the agent's retelling of it.
        let mut upstream: Option<(u16, String)> = None;
        // The agent saw only its connection to the proxy close; this says why.
        let mut unreachable: Option<String> = None;
        // The endpoint took a request and sent nothing in time (measured by the proxy).
        let mut silent: Option<String> = None;
        // How each answer ended and the server's token counts, as the proxy saw them.
        let mut exchanges = Vec::new();
        if let Some(b) = &r.bridge {
            b.end_turn();
            // Each stamped with the time it happened, not the turn's end (docs/bridge.md).
            for w in b.take_stamped_warnings() {
                log.write_at(
                    &w.ts,
                    Level::Warn,
                    turn,
                    "proxy.warning",
                    &[("message", w.message)],
                );
            }
            exchanges = b.take_exchanges();
            for x in &exchanges {
                log.write(Level::Info, turn, "proxy.answer", &answers::log_fields(x));
            }
            if let Some(e) = b.take_first_error() {
                // codex replaces a 500's body with a generic text: keep the server's own words.
                log.write(
                    Level::Error,
                    turn,
                    "proxy.upstream_error",
                    &[
                        ("status", e.status.map_or("none".into(), |s| s.to_string())),
                        ("message", e.message.clone()),
                    ],
                );
                upstream = e.status.map(|s| (s, e.message.clone()));
                silent = Some(&e)
                    .filter(|e| e.no_first_byte)
                    .map(|e| e.message.clone());
                unreachable = Some(e).filter(|e| e.unreachable).map(|e| e.message);
            }
        }
        let actions = digest::of_events(
            r.dialect,
            &files::turn_events(&s.layout.task_dir(id).join("events.jsonl"), turn),
        );
        // A failed turn's tokens come from the server's own counts: codex reports none.
        let mut usage = answers::recorded_usage(&rep.events.usage, &exchanges);
        if let Some(t) = &retry {
            add_usage(&mut usage, &t.spent);
        }
        let cut = answers::judge(&exchanges, s.config.endpoint.model_context_window);
        let ok = rep.spawn_error.is_none()
            && rep.timeout.is_none()
            && rep.runaway.is_none()
            && cut.is_none()
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
            let mut text = log.redact(&text);
            // In responses mode nothing converts a `<tool_call>` the server left as text: the
            // turn "succeeds" with prose and the task waits. Say why where people look.
            let translated = r
                .bridge
                .as_ref()
                .is_some_and(|b| b.wire() == crate::bridge::Wire::Chat);
            if !translated
                && r.dialect == Dialect::Codex
                && crate::bridge::probe::has_tool_call_text(&text)
            {
                log.write(
                    Level::Warn,
                    turn,
                    "tool_call_text",
                    &[(
                        "advice",
                        crate::bridge::probe::TOOL_CALL_TEXT_ADVICE.to_string(),
                    )],
                );
            }
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
            agent.reply_extra(r, s.config, version.as_deref(), &usage, &mut extra);
            let cost_usd = r
                .model
                .as_ref()
                .and_then(|m| s.config.price_for(m))
                .map(|p| p.cost(&usage));
            if !actions.is_empty() {
                extra.insert("actions".into(), serde_json::json!(actions));
            }
            if let Some(t) = retry.take() {
                text = format!("{}\n\n{text}", overflow::reply_note(t.was, t.to));
                extra.insert(overflow::FROM_FIELD.into(), t.configured.into());
                extra.insert(overflow::BUDGET_FIELD.into(), t.to.into());
            }
            let rec = OutboxRecord {
                usage: Some(usage.clone()),
                duration_ms,
                codex_version: version.clone().filter(|_| r.dialect == Dialect::Codex),
                turn: Some(turn),
                cost_usd,
                extra,
                ..OutboxRecord::new(last, Role::Assistant, text)
            };
            let rec = conversation::append_outbox(s.layout, id, rec)?;
            let mut kv = vec![
                ("status", "ok".to_string()),
                ("exit_code", exit),
                ("duration_ms", duration_ms.to_string()),
            ];
            kv.extend(tokens.iter().cloned());
            kv.push(("commands", rep.events.commands.len().to_string()));
            kv.push(("reply_chars", rec.text.chars().count().to_string()));
            log.write(Level::Info, turn, "turn.end", &kv);
            (s.on_record)(&rec);
        } else {
            let f = if let Some(e) = &rep.spawn_error {
                Failure::NotInstalled {
                    agent: r.dialect.name(),
                    binary: binary.display().to_string(),
                    detail: e.to_string(),
                }
            } else if let Some(why) = &rep.runaway {
                Failure::Agent {
                    kind: crate::outcome::ErrorKind::Loop,
                    detail: why.describe(),
                }
            } else if let Some((which, after)) = rep.timeout {
                Failure::Timeout { which, after }
            } else if let Some(c) = &cut {
                // A cut answer fails the turn on either wire, whatever the agent made of it.
                Failure::Agent {
                    kind: c.kind,
                    detail: c.detail.clone(),
                }
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
                let (kind, detail) = match (&upstream, unreachable) {
                    (None, _) if silent.is_some() => {
                        (ErrorKind::NoFirstByte, silent.take().unwrap_or_default())
                    }
                    (Some((status, message)), _) => (
                        ErrorKind::from_status(*status, message)
                            .unwrap_or_else(|| agent.classify(&rep.events, &detail)),
                        format!("the endpoint answered {status}: {message}"),
                    ),
                    (None, Some(why)) => (ErrorKind::Unreachable, why),
                    (None, None) => (agent.classify(&rep.events, &detail), detail),
                };
                Failure::Agent {
                    kind,
                    detail: log.redact(&detail),
                }
            };
            // codex's own part alone too big for the window: no budget can help, so no retry.
            let f = match (&f, overflow::fixed_part_exceeds(&f.detail(), prompt_bytes)) {
                (Failure::Agent { kind, detail }, Some((fixed, window)))
                    if *kind == ErrorKind::ContextOverflow =>
                {
                    Failure::PromptTooLarge {
                        server: detail.clone(),
                        fixed,
                        window,
                    }
                }
                _ => f,
            };
            let tried = retry.take();
            if let Some(to) = overflow::retry_budget(history_chars, budget).filter(|_| {
                matches!(
                    f,
                    Failure::Agent {
                        kind: ErrorKind::ContextOverflow,
                        ..
                    }
                ) && tried.is_none()
            }) {
                // One more try of the same turn with half the replayed history.
                log.write(
                    Level::Warn,
                    turn,
                    "context_overflow.retry",
                    &[
                        ("history_budget", budget.to_string()),
                        ("history_chars", history_chars.to_string()),
                        ("retry_budget", to.to_string()),
                    ],
                );
                retry = Some(OverflowRetry {
                    configured,
                    was: budget,
                    to,
                    spent: usage.clone(),
                });
                continue;
            }
            record_error(
                s,
                log,
                id,
                turn,
                last,
                &f,
                &reply_ctx,
                Some(&usage),
                duration_ms,
                rep.exit_code,
                Some(&actions),
                tried.as_ref(),
            )?;
            let mut kv = vec![
                ("status", "error".to_string()),
                ("exit_code", exit),
                ("duration_ms", duration_ms.to_string()),
            ];
            kv.extend(tokens.iter().cloned());
            kv.push(("error_kind", f.kind().to_string()));
            log.write(Level::Info, turn, "turn.end", &kv);
            outcome.error = Some(TurnError {
                kind: f.kind(),
                reply: error_reply(&f, &reply_ctx),
            });
        }

        // The turn is over. A task the agent did not close waits for the next message.
        let after = settle(s, id, &r.agent, TaskStatus::Waiting, None)?;
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
        let outbox = conversation::read_outbox(s.layout, id)?;
        if let Some(what) = r.budget.exceeded(&Used::of(&outbox), false) {
            log.write(Level::Error, turn, "budget", &[("exceeded", what.clone())]);
            settle(
                s,
                id,
                &r.agent,
                TaskStatus::Failed,
                Some(&format!("over budget: {what}")),
            )?;
            let f = Failure::Budget { what };
            outcome.error = Some(TurnError {
                kind: f.kind(),
                reply: error_reply(&f, &reply_ctx),
            });
            return Ok(false);
        }
        if outcome.error.is_some() || s.once {
            return Ok(false);
        }
    }
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
            ("error_kind", f.kind().to_string()),
        ],
    );
}

/// A turn being retried after a context overflow: its budgets, for the outbox record.
struct OverflowRetry {
    /// The configured history budget.
    configured: usize,
    /// The budget of the attempt that overflowed.
    was: usize,
    /// The budget of the retry.
    to: usize,
    /// The tokens the attempt that overflowed spent: the turn's record counts them too.
    spent: crate::conversation::Usage,
}

fn add_usage(to: &mut crate::conversation::Usage, more: &crate::conversation::Usage) {
    to.input_tokens += more.input_tokens;
    to.cached_input_tokens += more.cached_input_tokens;
    to.output_tokens += more.output_tokens;
    to.reasoning_output_tokens += more.reasoning_output_tokens;
}

/// Writes the `error` reply and its ERROR line.
#[allow(clippy::too_many_arguments)]
fn record_error(
    s: &Session<'_>,
    log: &mut HandlerLog,
    id: &str,
    turn: u64,
    in_reply_to: u64,
    f: &Failure,
    reply_ctx: &ReplyContext<'_>,
    usage: Option<&crate::conversation::Usage>,
    duration_ms: u64,
    exit_code: Option<i32>,
    actions: Option<&digest::Actions>,
    retried: Option<&OverflowRetry>,
) -> Result<(), SessionError> {
    let text = log.redact(&error_reply(f, reply_ctx));
    log.write(
        Level::Error,
        turn,
        "error",
        &[("kind", f.kind().to_string()), ("message", text.clone())],
    );
    let mut extra = serde_json::Map::new();
    if let Some(a) = actions.filter(|a| !a.is_empty()) {
        extra.insert("actions".into(), serde_json::json!(a));
    }
    // A failed overflow retry keeps its smaller budget for the next turn, as a successful one
    // does (overflow::effective_budget).
    if let Some(t) = retried {
        extra.insert(overflow::FROM_FIELD.into(), t.configured.into());
        extra.insert(overflow::BUDGET_FIELD.into(), t.to.into());
    }
    let rec = OutboxRecord {
        usage: usage.cloned(),
        duration_ms,
        turn: Some(turn),
        error: Some(conversation::TurnError {
            kind: f.kind(),
            // The server's (or agent's) own words, whole: the coordinator shows them as the reason.
            message: log.redact(&f.detail()),
            exit_code,
        }),
        extra,
        ..OutboxRecord::new(in_reply_to, Role::Error, text)
    };
    let rec = conversation::append_outbox(s.layout, id, rec)?;
    (s.on_record)(&rec);
    Ok(())
}

/// The agent CLI of a dialect.
fn agent_of(d: Dialect) -> &'static dyn AgentCli {
    match d {
        Dialect::Codex => &super::codex::Codex,
        Dialect::Claude => &super::claude::Claude,
    }
}
