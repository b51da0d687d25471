use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::cli::handler::find_binary;
use crate::cli::Ctx;
use crate::error::{user_error, CliResult};

/// Check that agents can run: codex found (and its version), the endpoint reachable, the model
/// listed there, the API key's env var set; and worktrees left behind by tasks that no
/// longer run. One line each.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Remove the stale worktrees found (their changes are committed on their branch first;
    /// branches are kept).
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
    let cfg = &ctx.config;
    let mut checks = Vec::new();
    let root = ctx.layout.project_root();
    let path = std::env::var("PATH").unwrap_or_default();
    checks.push(match find_binary(&cfg.codex.binary, &path, &root) {
        Ok(bin) => {
            let version = std::process::Command::new(&bin)
                .arg("--version")
                .stdin(std::process::Stdio::null())
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
    let key_env = cfg.api_key_env();
    let key = std::env::var(key_env).ok().filter(|k| !k.is_empty());
    match &cfg.endpoint.url {
        None => checks.push(Check {
            name: "endpoint",
            ok: true,
            detail: "none configured; codex uses its own login and provider".into(),
        }),
        Some(url) => {
            let (reach, listed) = probe(url, key.as_deref(), cfg.model.as_deref());
            checks.push(reach);
            checks.push(listed);
            checks.push(match &key {
                Some(_) => Check { name: "api key", ok: true, detail: format!("${key_env} is set") },
                None => Check { name: "api key", ok: false, detail: format!("${key_env} is not set; export it where the coordinator and `wg handler` run") },
            });
        }
    }
    checks.extend(worktree_checks(ctx, args.fix)?);
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
        if ctx.config.workspace.mode != "worktree" {
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

/// `GET {url}/models` with the key: is the endpoint there, and does it list the model?
fn probe(url: &str, key: Option<&str>, model: Option<&str>) -> (Check, Check) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let models_url = format!("{}/models", url.trim_end_matches('/'));
    let mut req = agent.get(&models_url);
    if let Some(k) = key {
        req = req.header("Authorization", &format!("Bearer {k}"));
    }
    let unknown = |why: &str| Check {
        name: "model",
        ok: false,
        detail: format!("not checked: {why}"),
    };
    match req.call() {
        Err(e) => (
            Check {
                name: "endpoint",
                ok: false,
                detail: format!("{models_url} unreachable: {e}; is the model server running?"),
            },
            unknown("endpoint unreachable"),
        ),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            if status != 200 {
                return (
                    Check {
                        name: "endpoint",
                        ok: false,
                        detail: format!(
                            "GET {models_url} answered {status}{}",
                            if status == 401 || status == 403 {
                                " (check the API key)"
                            } else {
                                ""
                            }
                        ),
                    },
                    unknown("no model list"),
                );
            }
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("data").and_then(|d| d.as_array()).cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_string))
                .collect();
            let reach = Check {
                name: "endpoint",
                ok: true,
                detail: format!("{url} reachable (GET /models: {} models)", ids.len()),
            };
            let listed = match model {
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
                Some(m) => Check {
                    name: "model",
                    ok: false,
                    detail: format!("{m} is not listed (the endpoint has: {})", ids.join(", ")),
                },
            };
            (reach, listed)
        }
    }
}
