use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use clap::Args;
use serde::Serialize;

use crate::cli::Ctx;
use crate::coordinator::endpoints::{self, PausedEndpoint};
use crate::coordinator::reload::{self, ConfigState};
use crate::coordinator::{self, agents_file};
use crate::error::CliResult;
use crate::model::TaskStatus;
use crate::time::parse_rfc3339;

/// Show the coordinator, its running agents, and task counts by status.
///
/// Exits with 6 when no coordinator is running (after printing the status).
#[derive(Debug, Args)]
pub struct StatusArgs {}

#[derive(Serialize)]
struct AgentView {
    task: String,
    agent_id: String,
    pid: i32,
    /// The Slurm job running the agent (`launcher = "slurm"`); then `pid` is 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    slurm_job: Option<u64>,
    executor: String,
    elapsed_secs: f64,
    turn: u32,
    started_at: String,
}

#[derive(Serialize)]
struct StatusView {
    running: bool,
    pid: Option<u32>,
    agents: Vec<AgentView>,
    /// Endpoints whose dispatch is paused: since when, why, the next probe.
    paused_endpoints: Vec<PausedEndpoint>,
    /// Dispatch held because the disk refuses writes: why, since when, the next try.
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<coordinator::hold::HoldView>,
    counts: BTreeMap<String, usize>,
    /// Tasks whose agent asked a person (`wg ask`): id → question.
    needs_input: BTreeMap<String, String>,
    /// The configuration the running coordinator runs on: its last reload, an invalid edit
    /// it refused, settings that wait for a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<ConfigState>,
}

pub fn cmd_status(ctx: &Ctx, _args: &StatusArgs) -> CliResult {
    let state = coordinator::running(&ctx.layout)?;
    let running = state.is_some();
    let agents = if running {
        agents_file::read(&ctx.layout.agents_file())
            .map_err(|e| crate::error::CliError::new(crate::error::Kind::User, e))?
    } else {
        Vec::new()
    };
    let graph = ctx.store.load()?;
    let mut counts: BTreeMap<String, usize> =
        TaskStatus::ALL.iter().map(|s| (s.to_string(), 0)).collect();
    for t in graph.tasks.values() {
        *counts.entry(t.status.to_string()).or_insert(0) += 1;
    }
    let needs_input = graph
        .tasks
        .values()
        .filter(|t| t.status == TaskStatus::NeedsInput)
        .map(|t| {
            let q = t
                .extra
                .get(crate::cli::ask::QUESTION)
                .and_then(|q| q.as_str());
            (t.id.clone(), q.unwrap_or("").to_string())
        })
        .collect();
    let now = SystemTime::now();
    let view = StatusView {
        needs_input,
        running,
        pid: state.flatten(),
        agents: agents
            .into_iter()
            .map(|a| AgentView {
                elapsed_secs: parse_rfc3339(&a.started_at)
                    .and_then(|s| now.duration_since(s).ok())
                    .unwrap_or_default()
                    .as_secs_f64(),
                task: a.task,
                agent_id: a.agent_id,
                pid: a.pid,
                slurm_job: a.slurm_job,
                executor: a.executor,
                turn: a.turn,
                started_at: a.started_at,
            })
            .collect(),
        held: running
            .then(|| coordinator::hold::read(&ctx.layout))
            .flatten(),
        paused_endpoints: if running {
            endpoints::read_paused(&ctx.layout)
        } else {
            Vec::new()
        },
        counts,
        config: if running {
            reload::read_state(&ctx.layout)
        } else {
            None
        },
    };
    ctx.out.either(&view, || {
        let mut s = match (view.running, view.pid) {
            (true, Some(pid)) => format!("coordinator: running (pid {pid})\n"),
            (true, None) => "coordinator: starting\n".to_string(),
            (false, _) => "coordinator: not running\n".to_string(),
        };
        if !view.agents.is_empty() {
            s.push_str(&format!("agents ({}):\n", view.agents.len()));
            for a in &view.agents {
                let elapsed = Duration::from_secs(a.elapsed_secs as u64);
                let runs = match a.slurm_job {
                    Some(job) => format!("job {job:<7}"),
                    None => format!("pid {:<7}", a.pid),
                };
                s.push_str(&format!(
                    "  {:<24} {:<22} {runs} {:<7} {:>8}  turn {}\n",
                    a.task,
                    a.agent_id,
                    a.executor,
                    humantime::format_duration(elapsed).to_string(),
                    a.turn
                ));
            }
        }
        if !view.needs_input.is_empty() {
            s.push_str(&format!(
                "needs input ({}; answer with `wg msg ID ANSWER`):\n",
                view.needs_input.len()
            ));
            for (id, q) in &view.needs_input {
                s.push_str(&format!("  {id:<24} {q}\n"));
            }
        }
        if let Some(c) = &view.config {
            // Same clock, same format: the strings compare as the times do.
            let older = view
                .agents
                .iter()
                .filter(|a| a.started_at < c.loaded_at)
                .count();
            s.push_str(&config_lines(c, older));
        }
        if let Some(h) = &view.held {
            s.push_str(&format!(
                "dispatch HELD since {}: {}\n  no new agents; the write is tried again at {} (after {} failed), and dispatch resumes by itself once it goes through\n",
                h.since, h.reason, h.next_try, h.attempts
            ));
        }
        for p in &view.paused_endpoints {
            s.push_str(&format!(
                "endpoint {} PAUSED since {} ({}): {}\n  next probe {} (after {} failed); {}\n",
                p.endpoint, p.since, p.kind, p.reason, p.next_probe, p.probes, p.advice
            ));
        }
        let failed = view.counts.get("failed").copied().unwrap_or(0);
        if failed > 0 && (!view.paused_endpoints.is_empty() || view.held.is_some()) {
            s.push_str(&format!(
                "{failed} failed task(s): `wg retry --failed` reopens them all (`--since 2h`, `--error-kind KIND` to narrow)\n"
            ));
        }
        let counts: Vec<String> = view
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        s.push_str(&format!(
            "tasks: {}",
            if counts.is_empty() {
                "none".to_string()
            } else {
                counts.join(", ")
            }
        ));
        s
    })?;
    if !running {
        return Err(super::stop::not_running());
    }
    Ok(())
}

/// What `wg service status` says about the running configuration: only what a person may need
/// to act on, and the last reload. `older`: running agents started before that reload.
fn config_lines(c: &ConfigState, older: usize) -> String {
    let mut s = String::new();
    if let Some(r) = &c.rejected {
        s.push_str(&format!(
            "config: INVALID edit seen {}; still running on the settings loaded {}:\n  {}\n",
            r.at,
            c.loaded_at,
            r.reason.replace('\n', "\n  ")
        ));
    } else if !c.applied.is_empty() {
        let list: Vec<String> = c
            .applied
            .iter()
            .map(|a| format!("{} = {}", a.key, a.value))
            .collect();
        s.push_str(&format!(
            "config: reloaded {}: {}\n",
            c.loaded_at,
            list.join(", ")
        ));
        if older > 0 {
            s.push_str(&format!(
                "  {older} agent(s) started before it keep the settings they started with until \
                 their turn ends\n"
            ));
        }
    }
    if let Some(h) = &c.held {
        s.push_str(&format!(
            "config: edit HELD since {}: it drops {} setting(s) the running file has ({}); the \
             settings loaded {} still run. Restore the file, or `wg config confirm` to apply it\n",
            h.at,
            h.dropped.len(),
            short_list(&h.dropped),
            c.loaded_at
        ));
    }
    for n in &c.needs_restart {
        s.push_str(&format!(
            "config: {} needs a restart to change ({})\n",
            n.key, n.reason
        ));
    }
    s
}

/// Up to eight names, then how many more.
fn short_list(keys: &[String]) -> String {
    let mut s = keys.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    if keys.len() > 8 {
        s.push_str(&format!(" and {} more", keys.len() - 8));
    }
    s
}
