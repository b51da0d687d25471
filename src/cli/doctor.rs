use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::cli::Ctx;
use crate::error::{user_error, CliResult};
use crate::handler::resolve::find_binary;
use crate::outcome::ErrorKind;

/// The limit of each network check; they run at once, so it bounds them all.
const BOUND: Duration = Duration::from_secs(15);

/// Check that agents can run: codex found (and its version), the endpoint reachable, the model
/// listed there, the API key's env var set, the server's context window large enough for
/// codex's own prompt, codex's home outside the temp dir; worktrees left behind by tasks that
/// no longer run; the task store (superseded records, e.g. after a git merge) and, in a git repository,
/// the union merge of `.wg/.gitattributes`; links and special files under `.wg/`, which wg
/// refuses to open; whether agents can be boxed here. One line each.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Repair what can be: remove the stale worktrees found (their changes are committed on
    /// their branch first; branches are kept), compact `graph.jsonl`, write `.wg/.gitattributes`.
    #[arg(long)]
    pub fix: bool,
}

#[derive(Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

pub fn cmd_doctor(ctx: &Ctx, args: &DoctorArgs) -> CliResult {
    let mut checks = Vec::new();
    let root = ctx.layout.project_root();
    let path = std::env::var("PATH").unwrap_or_default();
    // Only the agents the project runs are checked: a mock- or shell-only project has no
    // codex to find, and a claude-only one's endpoint speaks the Messages API.
    let uses_codex = uses_executor(ctx, "codex");
    if uses_codex {
        codex_checks(ctx, &path, &root, &mut checks);
    }
    if uses_executor(ctx, "claude") {
        checks.extend(claude_checks(ctx, &path, &root));
    }
    checks.extend(worktree_checks(ctx, args.fix)?);
    checks.extend(store_checks(ctx, args.fix)?);
    checks.extend(graph_checks(ctx)?);
    checks.push(planted_check(ctx));
    checks.push(box_check(ctx, &path));
    if uses_slurm(ctx) {
        checks.extend(slurm_checks(ctx));
    }
    ctx.out.either(&checks, || {
        checks
            .iter()
            .map(|c| {
                format!(
                    "{} {:<9} {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.name,
                    c.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        return Err(user_error(format!("{failed} check(s) failed")));
    }
    Ok(())
}

/// Whether any agent may run under Slurm: the project's launcher, an executor's, or a task's.
/// Links and special files under `.wg/`, which wg refuses to open: each one by name.
fn planted_check(ctx: &Ctx) -> Check {
    let found = crate::store::nofollow::scan_project(ctx.layout.dir());
    Check {
        name: "links",
        ok: found.is_empty(),
        detail: if found.is_empty() {
            "no link or special file under .wg/".into()
        } else {
            found
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        },
    }
}

/// Whether agents can be boxed here, and every opt-out and unboxed executor by name.
fn box_check(ctx: &Ctx, path: &str) -> Check {
    use crate::sandbox::{Mode, Network, Setting, BOXED_EXECUTORS};
    let graph = ctx.store.load().ok();
    let tasks: Vec<&crate::model::Task> = graph.iter().flat_map(|g| g.tasks.values()).collect();
    let mut open: Vec<String> = Vec::new();
    let mut boxed = false;
    for t in &tasks {
        let x = t.executor.as_deref().unwrap_or(&ctx.config.executor);
        if !BOXED_EXECUTORS.contains(&x) {
            open.push(format!("{x} runs unboxed"));
            continue;
        }
        match Setting::for_task(t, x, &ctx.config) {
            Ok(s) if s.mode == Mode::None => open.push(format!("task {} sandbox = none", t.id)),
            Ok(s) => {
                boxed = true;
                if s.network == Network::Open {
                    open.push(format!("task {} network = open", t.id));
                }
            }
            Err(e) => open.push(e),
        }
    }
    open.sort();
    open.dedup();
    let boxed =
        boxed || (tasks.is_empty() && BOXED_EXECUTORS.contains(&ctx.config.executor.as_str()));
    let opt_outs = if open.is_empty() {
        String::new()
    } else {
        format!("; {}", open.join("; "))
    };
    match crate::sandbox::probe(path) {
        Ok(_) => Check {
            name: "sandbox",
            ok: true,
            // Not its path: the line reads the same on every machine.
            detail: format!("bwrap builds boxes for the agent CLIs here{opt_outs}"),
        },
        Err(e) => Check {
            name: "sandbox",
            // Only a problem when some agent is to run boxed: it will refuse to start.
            ok: !boxed,
            detail: format!("{e}{opt_outs}"),
        },
    }
}

fn uses_slurm(ctx: &Ctx) -> bool {
    use crate::slurm::{field, Launcher};
    ctx.config.coordinator.launcher == Launcher::Slurm
        || ctx
            .config
            .executors
            .values()
            .any(|t| t.launcher == Some(crate::slurm::Launcher::Slurm))
        || ctx.store.load().is_ok_and(|g| {
            g.tasks
                .values()
                .any(|t| t.extra.get(field::LAUNCHER).and_then(|v| v.as_str()) == Some("slurm"))
        })
}

/// `squeue` answers, and a probe job on the cluster can read and write `.wg/`.
fn slurm_checks(ctx: &Ctx) -> Vec<Check> {
    let client = crate::slurm::client::Client;
    let mut checks = vec![match client.ping() {
        Ok(n) => Check {
            name: "slurm",
            ok: true,
            detail: format!("squeue answers ({n} job(s) of yours listed)"),
        },
        Err(e) => {
            return vec![Check {
                name: "slurm",
                ok: false,
                detail: e.to_string(),
            }]
        }
    }];
    let dir = std::path::absolute(ctx.layout.dir()).unwrap_or_else(|_| ctx.layout.dir().into());
    let site = ctx.config.slurm.site();
    checks.push(match client.probe(&site, &dir, Duration::from_secs(120)) {
        Ok(node) => Check {
            name: "slurm-fs",
            ok: true,
            detail: format!("a job on {node} read and wrote {}", dir.display()),
        },
        Err(e) => Check {
            name: "slurm-fs",
            ok: false,
            detail: e,
        },
    });
    checks
}

/// codex found and answering `--version`, the `[endpoint]` answering and listing the model,
/// the key set.
fn codex_checks(ctx: &Ctx, path: &str, root: &std::path::Path, checks: &mut Vec<Check>) {
    let cfg = &ctx.config;
    checks.push(match find_binary(&cfg.codex.binary, path, root) {
        Ok(bin) => {
            let version = crate::executor::process::version_command(&bin)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            match version {
                Some(v) => Check {
                    name: "codex",
                    ok: true,
                    detail: format!("{} ({v})", bin.display()),
                },
                None => Check {
                    name: "codex",
                    ok: false,
                    detail: format!("{} does not answer `--version`", bin.display()),
                },
            }
        }
        Err(e) => Check {
            name: "codex",
            ok: false,
            detail: format!(
                "`{}` {e}; install the Codex CLI or `wg config set codex.binary PATH`",
                cfg.codex.binary
            ),
        },
    });
    // What the codex agents run with: `[executors.codex]` may name its own endpoint and key.
    let plan = match crate::executor::plan::plan(cfg, "codex", None, root, Default::default()) {
        Ok(p) => p,
        Err(e) => {
            checks.push(Check {
                name: "endpoint",
                ok: false,
                detail: e,
            });
            return;
        }
    };
    let key_env = plan.key_env.as_str();
    let key = std::env::var(key_env).ok().filter(|k| !k.is_empty());
    match &plan.endpoint {
        None => checks.push(Check {
            name: "endpoint",
            ok: true,
            detail: "none configured; codex uses its own login and provider".into(),
        }),
        Some(url) => checks.extend(sandbox_check(ctx.layout.dir()).into_iter().chain(
            endpoint_checks(
                url,
                key_env,
                key.as_deref(),
                plan.model.as_deref(),
                cfg.endpoint.wire_api.map(|w| w.as_str()),
            ),
        )),
    }
}

/// Every network check of the endpoint, run at once: each request is bounded by
/// [`BOUND`], so the whole set is too (a hanging backend costs one bound, not one per check).
fn endpoint_checks(
    url: &str,
    key_env: &str,
    key: Option<&str>,
    model: Option<&str>,
    wire_api: Option<&str>,
) -> Vec<Check> {
    use crate::bridge::probe::{tool_call_check, ToolCallCheck, TOOL_CALL_TEXT_ADVICE};
    let chat = wire_api == Some("chat");
    let (models, wire, tools, window) = std::thread::scope(|s| {
        let models = s.spawn(|| crate::http::probe_models(url, key, BOUND));
        let wire = model.map(|m| s.spawn(move || wire_check(url, key, m, wire_api)));
        let tools = model.map(|m| s.spawn(move || tool_call_check(url, key, m, chat, BOUND)));
        let window = model.map(|m| s.spawn(move || crate::http::model_window(url, key, m, BOUND)));
        (
            models.join().expect("the probe thread does not panic"),
            wire.map(|h| h.join().expect("the wire check does not panic")),
            tools.map(|h| h.join().expect("the tool check does not panic")),
            window.and_then(|h| h.join().expect("the window probe does not panic")),
        )
    });
    let mut checks = Vec::new();
    let key_rejected = matches!(&models, Err(f) if matches!(f.kind, ErrorKind::Unauthorized | ErrorKind::Forbidden));
    match &models {
        Ok(ids) => {
            checks.push(Check {
                name: "endpoint",
                ok: true,
                detail: format!("{url} reachable (GET /models: {} models)", ids.len()),
            });
            checks.push(match model {
                None => Check {
                    name: "model",
                    ok: false,
                    detail: "no model configured; `wg config set model NAME`".into(),
                },
                Some(m) if ids.iter().any(|i| i == m) => Check {
                    name: "model",
                    ok: true,
                    detail: format!("{m} is listed"),
                },
                Some(m) if ids.is_empty() => Check {
                    name: "model",
                    ok: true,
                    detail: format!("{m}: the endpoint lists no models; not checked"),
                },
                Some(m) => Check {
                    name: "model",
                    ok: false,
                    detail: format!("{m} is not listed (the endpoint has: {})", ids.join(", ")),
                },
            });
        }
        Err(f) => {
            checks.push(Check {
                name: "endpoint",
                ok: key_rejected,
                detail: if key_rejected {
                    format!("{url} answers (the key is checked below)")
                } else {
                    format!("{}; {}", f.message, f.kind.advice())
                },
            });
            checks.push(Check {
                name: "model",
                ok: false,
                detail: "not checked: no model list".into(),
            });
        }
    }
    checks.push(match (key, &models) {
        (None, _) => Check {
            name: "api key",
            ok: false,
            detail: format!(
                "${key_env} is not set; export it where the coordinator and `wg handler` run"
            ),
        },
        (Some(_), Err(f)) if key_rejected => Check {
            name: "api key",
            ok: false,
            detail: format!(
                "${key_env} is set but the endpoint rejects it: {}",
                f.message
            ),
        },
        (Some(_), Ok(_)) => Check {
            name: "api key",
            ok: true,
            detail: format!("${key_env} is set and accepted (GET /models)"),
        },
        (Some(_), Err(_)) => Check {
            name: "api key",
            ok: true,
            detail: format!("${key_env} is set (not verified: the endpoint did not answer)"),
        },
    });
    if let Some(w) = wire {
        checks.push(w);
    }
    if let Some(w) = window {
        checks.push(window_check(w));
    }
    if let Some(t) = tools {
        checks.push(match t {
            ToolCallCheck::Structured => Check {
                name: "tool calls",
                ok: true,
                detail: "a tool call came back structured".into(),
            },
            ToolCallCheck::AsText => Check {
                name: "tool calls",
                ok: false,
                detail: TOOL_CALL_TEXT_ADVICE.into(),
            },
            ToolCallCheck::NoCall => Check {
                name: "tool calls",
                ok: true,
                detail: "the model answered without calling the offered tool; not conclusive"
                    .into(),
            },
            ToolCallCheck::Failed(why) => Check {
                name: "tool calls",
                ok: false,
                detail: format!("not checked: {why}"),
            },
        });
    }
    checks
}

/// Whether the project runs `name` tasks: the default executor, a `[executors.NAME]` table or
/// a task naming it.
fn uses_executor(ctx: &Ctx, name: &str) -> bool {
    ctx.config.executor == name
        || ctx.config.executors.contains_key(name)
        || ctx.store.load().is_ok_and(|g| {
            g.tasks
                .values()
                .any(|t| t.executor.as_deref() == Some(name))
        })
}

/// Claude Code found and answering `--version`, its endpoint answering, its key set.
fn claude_checks(ctx: &Ctx, path: &str, root: &std::path::Path) -> Vec<Check> {
    let cfg = &ctx.config;
    let mut checks = Vec::new();
    checks.push(match find_binary(&cfg.claude.binary, path, root) {
        Ok(bin) => match crate::executor::process::version_command(&bin)
            .output()
            .ok()
            .filter(|o| o.status.success())
        {
            Some(o) => Check {
                name: "claude",
                ok: true,
                detail: format!(
                    "{} ({})",
                    bin.display(),
                    String::from_utf8_lossy(&o.stdout).trim()
                ),
            },
            None => Check {
                name: "claude",
                ok: false,
                detail: format!("{} does not answer `--version`", bin.display()),
            },
        },
        Err(e) => Check {
            name: "claude",
            ok: false,
            detail: format!(
                "`{}` {e}; install Claude Code or `wg config set claude.binary PATH`",
                cfg.claude.binary
            ),
        },
    });
    let plan = match crate::executor::plan::plan(cfg, "claude", None, root, Default::default()) {
        Ok(p) => p,
        Err(e) => {
            checks.push(Check {
                name: "claude endpoint",
                ok: false,
                detail: e,
            });
            return checks;
        }
    };
    let key = std::env::var(&plan.key_env).ok().filter(|k| !k.is_empty());
    let Some(url) = plan.endpoint else {
        checks.push(Check {
            name: "claude endpoint",
            ok: true,
            detail: "none configured; Claude Code uses its own login".into(),
        });
        return checks;
    };
    checks.push(probe_anthropic(
        &url,
        key.as_deref(),
        cfg.claude.auth.as_str(),
    ));
    checks.push(match &key {
        Some(_) => Check {
            name: "claude key",
            ok: true,
            detail: format!("${} is set", plan.key_env),
        },
        None => Check {
            name: "claude key",
            ok: false,
            detail: format!(
                "${} is not set; export it where the coordinator and `wg handler` run",
                plan.key_env
            ),
        },
    });
    checks
}

/// `GET {base}/v1/models` of an Anthropic-style endpoint, with the key as the CLI sends it.
/// Servers that only offer `/v1/messages` answer 404, which still shows they are there; a
/// 401 or 403 means the key is wrong.
fn probe_anthropic(url: &str, key: Option<&str>, auth: &str) -> Check {
    let agent = crate::http::agent(Duration::from_secs(5));
    let base = crate::handler::proxy::anthropic_base_url(url);
    let models = format!("{base}/v1/models");
    let mut req = agent.get(&models).header("anthropic-version", "2023-06-01");
    if let Some(k) = key {
        req = if auth == "bearer" {
            req.header("Authorization", &format!("Bearer {k}"))
        } else {
            req.header("x-api-key", k)
        };
    }
    match req.call() {
        Err(e) => Check {
            name: "claude endpoint",
            ok: false,
            detail: format!("{models} unreachable: {e}; is the model server running?"),
        },
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let bad = matches!(status, 401 | 403 | 429) || status >= 500;
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            Check {
                name: "claude endpoint",
                ok: !bad,
                detail: if bad {
                    format!(
                        "GET {models} answered {status}: {}{}",
                        crate::http::server_message(&body),
                        if status == 401 || status == 403 {
                            " (check the API key)"
                        } else {
                            ""
                        }
                    )
                } else {
                    format!("GET {models} answered {status}")
                },
            }
        }
    }
}

/// The tokens a turn needs beyond codex's own prompt: the task's text and an answer.
const TURN_ROOM_TOKENS: u64 = 1_024;

/// The server's context window against codex's own part of every prompt: a window that cannot
/// hold it overflows on every turn, whatever the history budget.
fn window_check(window: u64) -> Check {
    use crate::handler::overflow::CODEX_FIXED_PROMPT_TOKENS as FIXED;
    let need = FIXED + TURN_ROOM_TOKENS;
    Check {
        name: "window",
        ok: window >= need,
        detail: if window >= need {
            format!(
                "the server's window of {window} tokens holds codex's own prompt (about {FIXED} tokens) and leaves {} for the task",
                window - FIXED
            )
        } else {
            format!(
                "the server's window of {window} tokens is too small for codex's own prompt (about {FIXED} tokens, before any of the task's text) and room to work: every turn would overflow; start the server with at least {need} (llama-server -c 8192)"
            )
        },
    }
}

/// codex refuses to create its sandbox helpers in a home under the temp dir, and then every
/// command it runs fails; wg moves the home under $HOME/.cache/wg unless HOME is there too.
fn sandbox_check(wg_dir: &std::path::Path) -> Option<Check> {
    use crate::handler::resolve::{codex_home, under_temp};
    let wg_dir = std::path::absolute(wg_dir).unwrap_or_else(|_| wg_dir.to_path_buf());
    let home = codex_home(&wg_dir);
    if !under_temp(&home) {
        return None;
    }
    Some(Check {
        name: "sandbox",
        ok: false,
        detail: format!(
            "codex's home would be {}, under the temp dir, where codex refuses to create its sandbox helpers: every command would fail. Move the project out of the temp dir, or set HOME to a directory outside it",
            home.display()
        ),
    })
}

/// Which API the endpoint answers (a one-token request to each), against `endpoint.wire_api`.
fn wire_check(url: &str, key: Option<&str>, model: &str, configured: Option<&str>) -> Check {
    // Its two requests run one after the other: half the bound each keeps it in the bound.
    let w = crate::bridge::probe(url, key, model, BOUND / 2);
    let configured = configured.unwrap_or("responses");
    let answers = match (w.responses, w.chat) {
        (true, true) => "answers /v1/responses and /v1/chat/completions".to_string(),
        (true, false) => "answers /v1/responses only".to_string(),
        (false, true) => format!(
            "answers /v1/chat/completions only (/v1/responses: {})",
            w.responses_detail
        ),
        (false, false) => format!(
            "answers neither /v1/responses ({}) nor /v1/chat/completions ({})",
            w.responses_detail, w.chat_detail
        ),
    };
    let fits = (configured == "responses" && w.responses) || (configured == "chat" && w.chat);
    let detail = match (fits, w.recommended()) {
        (true, _) => format!("{answers}; wire_api = \"{configured}\" fits"),
        (false, Some(rec)) => format!("{answers}; run `wg config set endpoint.wire_api {rec}`"),
        (false, None) => format!("{answers}; check the URL and the model"),
    };
    Check {
        name: "wire api",
        ok: fits,
        detail,
    }
}

/// Worktrees of wg tasks that no longer run (crash, `keep_worktrees`, a failed cleanup).
fn worktree_checks(ctx: &Ctx, fix: bool) -> CliResult<Vec<Check>> {
    use crate::workspace::{git, ops};
    let root = ctx.layout.project_root();
    let root = std::path::absolute(&root).unwrap_or(root);
    if !git::is_repo(&root) {
        return Ok(Vec::new());
    }
    let graph = ctx.store.load()?;
    let stale = match ops::stale_worktrees(&root, |id| graph.tasks.get(id).map(|t| t.status)) {
        Ok(s) => s,
        Err(e) => {
            return Ok(vec![Check {
                name: "worktrees",
                ok: false,
                detail: e.to_string(),
            }])
        }
    };
    if stale.is_empty() {
        // Shared projects hear about worktrees only when something is wrong.
        if ctx.config.workspace.mode != crate::config::WorkspaceMode::Worktree {
            return Ok(Vec::new());
        }
        return Ok(vec![Check {
            name: "worktrees",
            ok: true,
            detail: "no stale worktree".into(),
        }]);
    }
    let mut checks = Vec::new();
    for s in &stale {
        let what = format!(
            "task {} ({}) at {}",
            s.task,
            s.status.as_deref().unwrap_or("gone"),
            s.path
        );
        checks.push(if fix {
            match ops::prune(&root, s) {
                Ok(m) => Check {
                    name: "worktrees",
                    ok: true,
                    detail: format!("{what}: {m}"),
                },
                Err(e) => Check {
                    name: "worktrees",
                    ok: false,
                    detail: format!("{what}: {e}"),
                },
            }
        } else if ctx.config.workspace.keep_worktrees {
            Check {
                name: "worktrees",
                ok: true,
                detail: format!("{what}: kept (keep_worktrees)"),
            }
        } else {
            Check {
                name: "worktrees",
                ok: false,
                detail: format!(
                    "stale worktree of {what}; `wg doctor --fix` removes it (branch {} kept)",
                    s.branch
                ),
            }
        });
    }
    Ok(checks)
}

/// Tasks that can never run because of the graph's shape, which a git merge can give it:
/// dependency cycles, and dependencies on tasks that are gone (removed on another branch).
fn graph_checks(ctx: &Ctx) -> CliResult<Vec<Check>> {
    let graph = ctx.store.load()?;
    let mut checks = Vec::new();
    for c in &graph.cycles {
        checks.push(Check {
            name: "graph",
            ok: false,
            detail: format!(
                "dependency cycle: {} wait for each other and never run; `wg edit ID --remove-after DEP` breaks it",
                c.join(", ")
            ),
        });
    }
    let dangling = graph
        .tasks
        .values()
        .any(|t| t.after.iter().any(|d| !graph.tasks.contains_key(d)));
    let archive = if dangling {
        ctx.store.load_archive()?
    } else {
        Default::default()
    };
    for t in graph.tasks.values().filter(|t| !t.status.is_terminal()) {
        for d in graph.missing_deps(t, |id| archive.contains_key(id)) {
            checks.push(Check {
                name: "graph",
                ok: false,
                detail: format!(
                    "task {} waits for {d}, which is not in the graph (removed, maybe on another branch): it is held; `wg edit {} --remove-after {d}` frees it",
                    t.id, t.id
                ),
            });
        }
    }
    Ok(checks)
}

/// The store: superseded records in `graph.jsonl` (compacted with `--fix`), and in a git
/// repository a missing union merge in `.wg/.gitattributes` (written with `--fix`). Silent when
/// all is well.
fn store_checks(ctx: &Ctx, fix: bool) -> CliResult<Vec<Check>> {
    let mut checks = Vec::new();
    let (lines, live, removed) = ctx.store.line_stats()?;
    let superseded = lines.saturating_sub(live + removed);
    // Like worktrees, the store is named only when there is something to say.
    if superseded > 0 && fix {
        let mut w = ctx.store.writer()?;
        w.compact()?;
        checks.push(Check {
            name: "store",
            ok: true,
            detail: format!("{live} tasks; compacted away {superseded} superseded records"),
        });
    } else if superseded > 0 {
        checks.push(Check {
            name: "store",
            ok: true,
            detail: format!(
                "{live} tasks, {superseded} superseded records (`wg doctor --fix` compacts)"
            ),
        });
    }
    let root = ctx.layout.project_root();
    if crate::workspace::git::is_repo(&std::path::absolute(&root).unwrap_or(root)) {
        let path = ctx.layout.dir().join(".gitattributes");
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        let unioned = have
            .lines()
            .any(|l| l.split_whitespace().eq(["graph.jsonl", "merge=union"]));
        if unioned {
            return Ok(checks);
        }
        if fix {
            let mut text = have;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(super::init::GITATTRIBUTES);
            crate::store::atomic::write_atomic(&path, text.as_bytes(), true)?;
            checks.push(Check {
                name: "git",
                ok: true,
                detail: "wrote .wg/.gitattributes: graph.jsonl merges with the union driver".into(),
            });
        } else {
            checks.push(Check {
                name: "git",
                ok: false,
                detail: "no union merge for .wg/graph.jsonl: a merge of two branches that both \
                         changed tasks conflicts; `wg doctor --fix` writes .wg/.gitattributes"
                    .into(),
            });
        }
    }
    Ok(checks)
}
