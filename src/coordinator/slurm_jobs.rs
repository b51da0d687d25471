//! Agents as Slurm jobs (`launcher = "slurm"`): submission, and one monitor task that
//! supervises every job with a single `squeue` call per tick, however many jobs run.
//!
//! The monitor does for jobs what `supervisor.rs` does for local children: it enforces the
//! hard, idle and first-output limits (from agent.log on the shared file system), cancels jobs
//! on request (`scancel`), and reports each end with the exit status Slurm recorded. A job
//! Slurm no longer lists twice in a row has ended without a record (purged while no
//! coordinator watched it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::UnboundedReceiver;

use super::agents_file::AgentRecord;
use super::scheduler::{timed_out, Decision, Limits, StopReason};
use super::supervisor::{Control, Ended};
use crate::executor::process::AgentSpec;
use crate::model::Task;
use crate::slurm::client::{Client, SlurmError};
use crate::slurm::sbatch::{exportable_name, Site, Submit};
use crate::slurm::squeue::JobStatus;
use crate::slurm::state::{job_end, JobEnd};

/// Submits one agent as a job. The agent's variables are listed by name in `--export`;
/// their values reach the job through sbatch's environment only.
pub fn submit(
    client: &Client,
    site: &Site,
    spec: &AgentSpec,
    task: &str,
    agent_id: &str,
    hard_limit: Option<Duration>,
    task_args: Vec<String>,
) -> Result<u64, SlurmError> {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some(parent) = spec.log_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let env: Vec<(String, String)> = spec
        .env
        .iter()
        .filter(|(k, _)| exportable_name(k))
        .cloned()
        .collect();
    let s = Submit {
        task: task.to_string(),
        agent_id: agent_id.to_string(),
        argv: spec.argv.clone(),
        chdir: abs(&spec.cwd),
        output: abs(&spec.log_path),
        time_limit: hard_limit,
        env_names: env.iter().map(|(k, _)| k.clone()).collect(),
        task_args,
    };
    client.submit(site, &s, &env)
}

/// One job handed to the monitor.
pub struct JobWatch {
    pub record: AgentRecord,
    pub log_path: PathBuf,
    pub limits: Limits,
    /// When the run started, for an adopted job (its record's `started_at`); a new job's run
    /// time counts from when Slurm first reports it running.
    pub started: Option<Instant>,
    pub control: UnboundedReceiver<Control>,
}

struct Job {
    w: JobWatch,
    job_id: u64,
    /// Running since (our clock); `None` while pending.
    running_since: Option<Instant>,
    stopped: Option<StopReason>,
    /// Consecutive squeue answers that did not list the job.
    missing: u32,
}

/// The monitor's outputs: ended jobs and lines for coordinator.log.
pub struct Sinks {
    pub ended: Box<dyn Fn(Ended) + Send>,
    pub log: Box<dyn Fn(String) + Send>,
}

/// Runs the monitor until `jobs` closes. `poll` is `slurm.poll_interval`.
pub async fn monitor(
    client: Client,
    poll: Duration,
    mut jobs: UnboundedReceiver<JobWatch>,
    sinks: Sinks,
) {
    let mut watched: BTreeMap<u64, Job> = BTreeMap::new();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    loop {
        tokio::select! {
            w = jobs.recv(), if open => match w {
                Some(w) => {
                    let Some(job_id) = w.record.slurm_job else { continue };
                    let running_since = w.started;
                    watched.insert(job_id, Job { w, job_id, running_since, stopped: None, missing: 0 });
                    continue;
                }
                None => open = false,
            },
            _ = tick.tick() => {}
        }
        if !open && watched.is_empty() {
            break;
        }
        if watched.is_empty() {
            continue;
        }
        // Stop requests since the last tick: scancel (Slurm sends SIGTERM, then SIGKILL).
        let mut cancel = Vec::new();
        for job in watched.values_mut() {
            while let Ok(c) = job.w.control.try_recv() {
                let reason = match c {
                    Control::Stop(r) => r,
                    Control::Kill => StopReason::Shutdown,
                };
                if job.stopped.is_none() {
                    job.stopped = Some(reason);
                    cancel.push(job.job_id);
                }
            }
        }
        let ids: Vec<u64> = watched.keys().copied().collect();
        let c = client.clone();
        let answer = tokio::task::spawn_blocking(move || {
            // A job that already ended refuses the cancel; the query below tells its end.
            let failures: Vec<String> = cancel
                .into_iter()
                .filter_map(|id| c.cancel(id).err())
                .map(|e| e.to_string())
                .collect();
            (failures, c.query(&ids))
        })
        .await;
        let statuses: Vec<JobStatus> = match answer {
            Ok((failures, query)) => {
                for f in failures {
                    (sinks.log)(format!("slurm: {f}"));
                }
                match query {
                    Ok(s) => s,
                    Err(e) => {
                        // Slurm did not answer: nothing is concluded, the next tick asks again.
                        (sinks.log)(format!("slurm: {e}"));
                        continue;
                    }
                }
            }
            Err(e) => {
                (sinks.log)(format!("slurm: query task failed: {e}"));
                continue;
            }
        };
        let by_id: BTreeMap<u64, &JobStatus> = statuses.iter().map(|s| (s.id, s)).collect();
        let now = Instant::now();
        let mut ended = Vec::new();
        let mut to_cancel = Vec::new();
        for job in watched.values_mut() {
            match by_id.get(&job.job_id) {
                Some(s) if s.state.ended() => {
                    ended.push((job.job_id, Some(s.state.clone()), s.wait_status))
                }
                Some(s) => {
                    job.missing = 0;
                    if s.state.started() && job.running_since.is_none() {
                        job.running_since = Some(now);
                    }
                    if job.stopped.is_some() {
                        continue;
                    }
                    if let Some(since) = job.running_since {
                        let out = since_output(&job.w.log_path, job.w.record.log_offset);
                        if let Some((kind, limit)) =
                            timed_out(&job.w.limits, now.duration_since(since), out)
                        {
                            job.stopped = Some(StopReason::Timeout(kind, limit));
                            to_cancel.push(job.job_id);
                        }
                    }
                }
                None => {
                    job.missing += 1;
                    if job.missing >= 2 {
                        ended.push((job.job_id, None, None));
                    }
                }
            }
        }
        if !to_cancel.is_empty() {
            let c = client.clone();
            let failures = tokio::task::spawn_blocking(move || {
                to_cancel
                    .into_iter()
                    .filter_map(|id| c.cancel(id).err())
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for f in failures {
                (sinks.log)(format!("slurm: {f}"));
            }
        }
        for (id, state, ws) in ended {
            let Some(job) = watched.remove(&id) else {
                continue;
            };
            let end = job_end(id, state.as_ref(), ws);
            (sinks.ended)(Ended {
                task: job.w.record.task.clone(),
                agent_id: job.w.record.agent_id.clone(),
                exit_code: end.exit_code,
                signal: end.signal,
                stopped: job.stopped,
                killed: false,
                slurm: Some(end),
            });
        }
    }
}

/// Time since the job's last output this run, or `None` when it has written nothing.
fn since_output(log: &Path, offset: u64) -> Option<Duration> {
    let meta = std::fs::metadata(log).ok()?;
    if meta.len() <= offset {
        return None;
    }
    let mtime = meta.modified().ok()?;
    Some(SystemTime::now().duration_since(mtime).unwrap_or_default())
}

/// A job that recovery found by name (its id never reached agents.json): the one submitted
/// for `agent_id`, if Slurm still lists it.
pub fn find_job(client: &Client, task: &str, agent_id: &str) -> Result<Option<u64>, SlurmError> {
    let jobs = client.by_name(&crate::slurm::sbatch::job_name(task))?;
    Ok(jobs
        .into_iter()
        .find(|j| j.comment == agent_id)
        .map(|j| j.id))
}

impl super::Coordinator {
    /// Hands a Slurm agent to the job monitor (started with the first job).
    pub(super) fn watch_job(
        &mut self,
        record: AgentRecord,
        started: Option<Instant>,
        limits: Limits,
        control: UnboundedReceiver<Control>,
    ) -> anyhow::Result<()> {
        let watch = JobWatch {
            log_path: self.layout.task_file(&record.task, "agent.log"),
            record,
            limits,
            started,
            control,
        };
        let monitor = match &self.slurm_jobs {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let poll = self.config.slurm.poll_interval.get();
                let events = self.tx.clone();
                let log = self.log.clone();
                let sinks = Sinks {
                    ended: Box::new(move |e| {
                        let _ = events.send(super::Event::Ended(e));
                    }),
                    log: Box::new(move |l| log.line(&l)),
                };
                tokio::spawn(monitor(Client, poll, rx, sinks));
                self.slurm_jobs = Some(tx.clone());
                tx
            }
        };
        monitor
            .send(watch)
            .map_err(|_| anyhow::anyhow!("the Slurm job monitor stopped"))
    }

    /// The Slurm job of an orphaned claim, when the task runs under Slurm and Slurm still
    /// lists a job submitted for that agent.
    pub(super) fn find_orphan_job(&mut self, t: &Task, agent: &str) -> Option<u64> {
        let x = self.executor_for(t).ok()?;
        let launcher = crate::slurm::launcher_for(
            t,
            self.config.executors.get(&x.name).and_then(|e| e.launcher),
            self.config.coordinator.launcher,
        )
        .ok()?;
        if launcher != crate::slurm::Launcher::Slurm {
            return None;
        }
        match find_job(&Client, &t.id, agent) {
            Ok(job) => job,
            Err(e) => {
                self.log
                    .line(&format!("recover task={}: cannot ask Slurm: {e}", t.id));
                None
            }
        }
    }

    /// Watches a job found by [`Self::find_orphan_job`] as if agents.json had recorded it.
    pub(super) fn adopt_orphan_job(
        &mut self,
        t: &Task,
        agent: &str,
        job: u64,
    ) -> anyhow::Result<()> {
        let x = self.executor_for(t).ok();
        let rec = AgentRecord {
            task: t.id.clone(),
            agent_id: agent.to_string(),
            pid: 0,
            pgid: 0,
            start_time: 0,
            started_at: crate::time::now_rfc3339(),
            executor: x.as_ref().map(|x| x.name.clone()).unwrap_or_default(),
            turn: 1,
            conversational: x.as_ref().is_some_and(|x| x.conversational),
            exit_code_decides: x.as_ref().is_some_and(|x| x.exit_code_decides),
            log_offset: 0,
            inbox_seq: 0,
            slurm_job: Some(job),
        };
        self.log.line(&format!(
            "adopt agent={agent} task={} slurm_job={job}: found by its job name",
            t.id
        ));
        let limits = self.limits(t);
        self.supervise(None, rec, Some(Instant::now()), limits)
    }
}

/// The local decision, with the Slurm state named. A conversational turn cut short by Slurm
/// (cancelled, preempted, out of memory ...) is a failure, not a turn that ended.
pub fn name_state(decision: Decision, end: &JobEnd) -> Decision {
    let Some(note) = &end.note else {
        return decision;
    };
    let named = |r: String| format!("{note}: {r}");
    match decision {
        Decision::Fail(r) => Decision::Fail(named(r)),
        Decision::Requeue {
            count_retry,
            reason,
        } => Decision::Requeue {
            count_retry,
            reason: named(reason),
        },
        Decision::EndpointTrouble {
            kind,
            message,
            reason,
        } => Decision::EndpointTrouble {
            kind,
            message,
            reason: named(reason),
        },
        Decision::NextTurn | Decision::Nudge if end.exit_code.is_none() => {
            Decision::Fail(format!("{note}: the agent's turn was cut short"))
        }
        d => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::state::JobState;

    #[test]
    fn the_local_decision_gets_the_state_in_its_reason() {
        let cancelled = job_end(4, Some(&JobState::Cancelled), Some(15));
        assert_eq!(
            name_state(
                Decision::Fail("agent exited without reporting (signal 15)".into()),
                &cancelled
            ),
            Decision::Fail(
                "Slurm job 4 CANCELLED: agent exited without reporting (signal 15)".into()
            )
        );
        // A conversational turn cut short fails instead of counting as a finished turn.
        assert!(matches!(
            name_state(Decision::Nudge, &cancelled),
            Decision::Fail(r) if r.starts_with("Slurm job 4 CANCELLED")
        ));
        // What the agent decided itself stands.
        assert_eq!(name_state(Decision::Nothing, &cancelled), Decision::Nothing);
        let ok = job_end(5, Some(&JobState::Completed), Some(0));
        assert_eq!(name_state(Decision::Nudge, &ok), Decision::Nudge);
        assert_eq!(name_state(Decision::Done, &ok), Decision::Done);
    }
}
