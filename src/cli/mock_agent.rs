//! `wg mock-agent` (hidden): the mock executor's agent. See `executor::mock` for its settings.

use std::time::Duration;

use clap::Args;

use crate::cli::Ctx;
use crate::error::{not_found, usage_error, user_error, CliResult};
use crate::executor::mock::{Behavior, Marker, Settings};
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;
use crate::store::tasklog::{self, LogRecord};
use crate::time::now_rfc3339;

/// Run the mock agent for $WG_TASK_ID (started by the coordinator; not for people).
#[derive(Debug, Args)]
pub struct MockAgentArgs {
    /// The task (default: $WG_TASK_ID).
    pub id: Option<String>,
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

pub fn cmd_mock_agent(ctx: &Ctx, args: &MockAgentArgs, env_task: Option<String>) -> CliResult {
    let id = args
        .id
        .clone()
        .or(env_task)
        .ok_or_else(|| usage_error("no task: pass an id or set WG_TASK_ID"))?;
    super::check_id(&id)?;
    let graph = ctx.store.load()?;
    let task = graph.tasks.get(&id).ok_or_else(|| not_found(&id))?;
    let settings = Settings::resolve(&ctx.config, task).map_err(usage_error)?;
    let agent = ctx.actor.as_str();

    // One marker per run: the count of earlier markers is this run's number minus one.
    let runs_dir = ctx.layout.task_dir(&id).join("mock-runs");
    std::fs::create_dir_all(&runs_dir)?;
    let run = std::fs::read_dir(&runs_dir)?.count() as u64 + 1;
    let marker = Marker {
        task: &id,
        agent,
        pid: std::process::id(),
        run,
        started: now_rfc3339(),
        slurm_job: std::env::var("SLURM_JOB_ID").ok(),
    };
    let name = format!("{}-{}.json", agent, std::process::id());
    crate::store::atomic::write_atomic(
        &runs_dir.join(name),
        &serde_json::to_vec(&marker).expect("a marker always serializes"),
        false,
    )?;

    let behavior = settings.behavior_for_run(run);
    if behavior != Behavior::SilentHang {
        let job = marker
            .slurm_job
            .as_deref()
            .map(|j| format!(", Slurm job {j}"))
            .unwrap_or_default();
        println!("mock agent {agent}: working on {id} (run {run}{job})");
    }
    match behavior {
        Behavior::IgnoreTerm => {
            // SAFETY: setting a signal disposition to SIG_IGN has no memory effects.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            sleep_forever()
        }
        Behavior::Grandchild => {
            // Same process group as this agent: stopping the group must reach it.
            let _child = std::process::Command::new("sh")
                .args(["-c", "sleep 60 & sleep 60"])
                .spawn()?;
            sleep_forever()
        }
        Behavior::Hang | Behavior::SilentHang => sleep_forever(),
        _ => {}
    }
    std::thread::sleep(settings.turn);
    match behavior {
        Behavior::ExitSilently => Err(user_error(
            "mock agent: exiting without reporting, as configured",
        )),
        Behavior::EndpointError => {
            println!("endpoint_error: connection refused");
            Err(user_error(
                "mock agent: endpoint unreachable, as configured",
            ))
        }
        Behavior::Fail => {
            let mut w = ctx.store.writer()?;
            let reason = format!("mock failure (run {run})");
            let change = Change {
                to: TaskStatus::Failed,
                reason: Some(&reason),
                actor: agent,
            };
            transition(&mut w, &id, change, |_| {})?;
            w.commit()?;
            println!("mock agent {agent}: failed {id}");
            Ok(())
        }
        _ => {
            let note = LogRecord::note(
                &now_rfc3339(),
                agent,
                &format!("mock work done (run {run})"),
            );
            tasklog::append(&ctx.layout, &id, &note, ctx.store.fsync)?;
            let mut w = ctx.store.writer()?;
            let change = Change {
                to: TaskStatus::Done,
                reason: None,
                actor: agent,
            };
            transition(&mut w, &id, change, |t| {
                t.failure_reason = None;
                crate::evaluate::hold_for_evaluation(t, &ctx.config, agent);
            })?;
            w.commit()?;
            println!("mock agent {agent}: done {id}");
            Ok(())
        }
    }
}
