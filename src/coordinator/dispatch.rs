//! Dispatch: reopening failed tasks whose backoff has passed, choosing what to start (within
//! `max_agents` and endpoint pauses), claiming it under the store lock and starting its agent
//! under a supervisor.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context as _};
use tokio::sync::mpsc::unbounded_channel;

use super::agents_file::{self, AgentRecord};
use super::live::LiveGraph;
use super::recovery;
use super::scheduler::{self, Candidate, Limits};
use super::supervisor::{self, Watch};
use super::{slurm_jobs, Coordinator, Event, Running, ACTOR, AGENT_PREFIX};
use crate::conversation;
use crate::executor::process::{agent_env, build_env, spawn, AgentSpec};
use crate::executor::Executor;
use crate::lifecycle::{transition, Change};
use crate::model::{Task, TaskStatus};
use crate::process::pid_start_time;
use crate::time::{now_rfc3339, parse_rfc3339};
use crate::workspace::{self, field, ops, Mode};

impl Coordinator {
    /// Reopens failed tasks whose retry backoff has passed (reading the graph again when any
    /// was), and returns when the next one falls due.
    pub(super) fn reopen_due_retries(
        &mut self,
        live: &mut LiveGraph,
    ) -> anyhow::Result<Option<SystemTime>> {
        // Retries whose backoff has passed.
        let now_sys = SystemTime::now();
        let mut next_retry: Option<SystemTime> = None;
        let mut due = Vec::new();
        for t in live
            .failed()
            .filter(|t| crate::lifecycle::retryable_failure(t))
        {
            let max = t.max_retries.unwrap_or(self.config.coordinator.max_retries);
            let failed_at = parse_rfc3339(&t.updated).unwrap_or(now_sys);
            if let Some(at) = scheduler::retry_at(failed_at, t.retries, max, self.retry_base) {
                if at <= now_sys {
                    due.push((t.id.clone(), t.retries + 1, max));
                } else {
                    next_retry = Some(next_retry.map_or(at, |n| n.min(at)));
                }
            }
        }
        if !due.is_empty() {
            let store = self.store.clone();
            let mut w = store.writer()?;
            let mut reopened = Vec::new();
            for (id, n, max) in due {
                let reason = format!("retry {n}/{max}");
                let change = Change {
                    to: TaskStatus::Open,
                    reason: Some(&reason),
                    actor: ACTOR,
                };
                match transition(&mut w, &id, change, |t| t.retries = n) {
                    Ok(_) => {
                        self.log.line(&format!("retry task={id} ({reason})"));
                        reopened.push((id, reason));
                    }
                    Err(e) => self
                        .log
                        .line(&format!("retry task={id} skipped: {}", e.error)),
                }
            }
            w.commit()?;
            for (id, reason) in reopened {
                self.announce(
                    &id,
                    Some(TaskStatus::Failed),
                    TaskStatus::Open,
                    Some(&reason),
                );
            }
            self.refresh(live)?;
        }
        Ok(next_retry)
    }

    /// Picks what to start among conversations waiting on an answer and ready tasks (within
    /// `max_agents` and the endpoints' pauses) and starts it. Returns when to wake at the
    /// latest, and whether anything can move.
    ///
    /// Ready tasks are looked at in dispatch order, a few more than there are free slots;
    /// only when those cannot fill the slots (held by a workspace, an endpoint pause) are
    /// more taken, twice as many each time. A pass does not cost the number of ready tasks.
    pub(super) fn dispatch(
        &mut self,
        live: &LiveGraph,
        next_retry: Option<SystemTime>,
    ) -> anyhow::Result<(Option<Instant>, bool)> {
        // Candidates: conversations waiting on an answer first, then ready tasks.
        let mut conversations: Vec<Task> = Vec::new();
        for t in live.conversations() {
            if self.agents.contains_key(&t.id) {
                continue;
            }
            // `wg msg` may have moved a waiting task to in-progress itself: its agent is gone
            // and the message still calls for a turn.
            let woken =
                t.status == TaskStatus::InProgress && recovery::woken_by_message(&self.layout, t);
            if t.status == TaskStatus::Waiting || woken {
                let conversational = self
                    .executor_for(t)
                    .map(|x| x.conversational)
                    .unwrap_or(false);
                let pending = conversation::unanswered(&self.layout, &t.id)
                    .map(|m| !m.is_empty())
                    .unwrap_or(false);
                if conversational && pending {
                    conversations.push(t.clone());
                }
            }
        }
        let free = self.max_agents.saturating_sub(self.agents.len());
        let mut look_at = (2 * free).max(32);
        let mut unstartable = std::collections::HashSet::new();
        loop {
            let mut tasks = conversations.clone();
            let mut exhausted = true;
            for t in live.ready().filter(|t| !unstartable.contains(&t.id)) {
                if tasks.len() >= conversations.len() + look_at {
                    exhausted = false;
                    break;
                }
                tasks.push(t.clone());
            }
            let tasks = self.gate_workspaces(live, tasks)?;
            let can_progress = !tasks.is_empty() || next_retry.is_some();
            let mut candidates = Vec::with_capacity(tasks.len());
            let mut keep = Vec::with_capacity(tasks.len());
            for t in tasks {
                match self.executor_for(&t) {
                    Ok(x) => {
                        candidates.push(Candidate {
                            id: t.id.clone(),
                            endpoint: Some(self.endpoint_key(&x)),
                        });
                        keep.push((t, x));
                    }
                    Err(e) => {
                        self.fail_unstartable(&t.id, &e)?;
                        unstartable.insert(t.id);
                    }
                }
            }
            let now = Instant::now();
            let endpoints = &self.endpoints;
            let pick = scheduler::pick(&candidates, free, |e| {
                endpoints
                    .get(e)
                    .map(|s| s.gate(now))
                    .unwrap_or(scheduler::Gate::Open)
            });
            if pick.start.len() < free && !exhausted {
                look_at *= 2;
                continue;
            }
            for e in pick.probe {
                self.start_probe(e);
            }
            let chosen: Vec<(Task, Executor)> =
                pick.start.iter().map(|i| keep[*i].clone()).collect();
            if !chosen.is_empty() {
                self.claim_and_start(chosen)?;
            }
            let next_retry_instant = next_retry.map(|t| {
                now + t.duration_since(SystemTime::now()).unwrap_or_default()
                    + Duration::from_millis(1)
            });
            let wake = [next_retry_instant, pick.wake_at]
                .into_iter()
                .flatten()
                .min();
            return Ok((wake, can_progress));
        }
    }

    pub(super) fn executor_for(&mut self, t: &Task) -> Result<Executor, String> {
        let name = t
            .executor
            .clone()
            .unwrap_or_else(|| self.config.executor.clone());
        let x = Executor::resolve(&name, &self.config)?;
        let health = self
            .health
            .entry(name.clone())
            .or_insert_with(|| x.health_check())
            .clone();
        health.map_err(|e| format!("executor `{name}` is not available: {e}"))?;
        Ok(x)
    }

    /// Which endpoint a task's agent depends on; non-network executors get their own key so
    /// an agent reporting `endpoint_error` pauses only its kind.
    pub(super) fn endpoint_key(&self, x: &Executor) -> String {
        if x.uses_endpoint {
            self.config
                .endpoint_for(&x.name)
                .url
                .unwrap_or_else(|| "default-endpoint".into())
        } else {
            format!("executor:{}", x.name)
        }
    }

    pub(super) fn fail_unstartable(&mut self, id: &str, reason: &str) -> anyhow::Result<()> {
        let store = self.store.clone();
        let mut w = store.writer()?;
        let from = w.status_of(id).map(|(s, _)| s);
        let change = Change {
            to: TaskStatus::Failed,
            reason: Some(reason),
            actor: ACTOR,
        };
        let done = transition(&mut w, id, change, |_| {});
        w.commit()?;
        if done.is_ok() {
            self.log.line(&format!("fail task={id}: {reason}"));
            self.announce(id, from, TaskStatus::Failed, Some(reason));
        }
        Ok(())
    }

    pub(super) fn next_agent_id(&mut self) -> String {
        self.seq += 1;
        format!("{AGENT_PREFIX}{}-{}", self.id_prefix, self.seq)
    }

    /// Claims the chosen tasks under one store lock (so none starts twice), then starts them.
    pub(super) fn claim_and_start(&mut self, chosen: Vec<(Task, Executor)>) -> anyhow::Result<()> {
        let store = self.store.clone();
        let mut w = store.writer()?;
        let mut claimed = Vec::new();
        let mut disk = None;
        let (mut waits, mut unstartable) = (Vec::new(), Vec::new());
        let root = self.root();
        for (t, x) in chosen {
            // Re-checked under the lock: someone may have taken or closed it since the load.
            let Some((status, _)) = w.status_of(&t.id) else {
                continue;
            };
            if status != t.status {
                continue;
            }
            // A task a message woke to in-progress after its agent's turn ended goes back to
            // waiting first, and is then claimed like any waiting conversation.
            let status = if status == TaskStatus::InProgress {
                let change = Change {
                    to: TaskStatus::Waiting,
                    reason: Some("a message arrived after its agent's turn ended"),
                    actor: ACTOR,
                };
                if let Err(e) = transition(&mut w, &t.id, change, |_| {}) {
                    self.log
                        .line(&format!("claim task={} refused: {}", t.id, e.error));
                    continue;
                }
                TaskStatus::Waiting
            } else {
                status
            };
            // The worktree is made under the graph lock: two coordinators cannot both pass
            // the collision check, and a claimed task always has its worktree recorded.
            let prepared = if workspace::mode(&t, &self.config.workspace) == Mode::Worktree {
                let live = |id: &str| w.status_of(id).is_some_and(|(s, _)| workspace::is_live(s));
                match ops::prepare(&root, &self.config.workspace, &t, live) {
                    Ok(p) => Some(p),
                    Err(ops::PrepareError::Wait(r)) => {
                        waits.push((t.id.clone(), r));
                        continue;
                    }
                    Err(ops::PrepareError::Failed(r)) => {
                        unstartable
                            .push((t.id.clone(), format!("cannot prepare its worktree: {r}")));
                        continue;
                    }
                }
            } else {
                None
            };
            let agent = self.next_agent_id();
            let change = Change {
                to: TaskStatus::InProgress,
                reason: None,
                actor: ACTOR,
            };
            let a = agent.clone();
            let p = prepared.clone();
            match transition(&mut w, &t.id, change, |t| {
                t.assigned = Some(a);
                t.extra.remove(field::WAITING_FOR);
                if let Some(p) = &p {
                    p.apply(t);
                }
            }) {
                Ok(task) => {
                    if let Some(p) = &prepared {
                        self.log.line(&format!(
                            "worktree task={} path={} branch={} base={} ({})",
                            task.id,
                            p.dir.display(),
                            p.branch,
                            p.base_commit,
                            if p.created { "created" } else { "reused" }
                        ));
                    }
                    claimed.push((task, x, agent, status))
                }
                // The disk refused the claim: what is claimed starts, then dispatch holds.
                Err(e) if super::hold::disk_fault(&e.error).is_some() => {
                    disk = Some(e.error);
                    break;
                }
                Err(e) => self
                    .log
                    .line(&format!("claim task={} refused: {}", t.id, e.error)),
            }
        }
        w.commit()?;
        self.record_waits(waits)?;
        for (id, reason) in unstartable {
            self.fail_unstartable(&id, &reason)?;
        }
        for (task, x, agent, from) in claimed {
            self.last_agent.insert(task.id.clone(), agent.clone());
            self.announce(&task.id, Some(from), TaskStatus::InProgress, None);
            if let Err(e) = self.start_agent(&task, &x, &agent) {
                if super::hold::disk_fault(&e).is_some() {
                    // Not the task's fault: it keeps its claim (a running agent, or one the
                    // next coordinator finds as an orphan) and dispatch holds.
                    disk.get_or_insert(e);
                    continue;
                }
                let reason = format!("cannot start agent: {e:#}");
                self.fail_unstartable(&task.id, &reason)?;
            }
        }
        disk.map_or(Ok(()), Err)
    }

    pub(super) fn limits(&self, task: &Task) -> Limits {
        let l = crate::executor::plan::run_limits(&self.config, Some(task));
        Limits {
            hard: l.hard,
            idle: l.idle,
            first_output: l.first_output,
        }
    }

    pub(super) fn start_agent(
        &mut self,
        task: &Task,
        x: &Executor,
        agent: &str,
    ) -> anyhow::Result<()> {
        let argv = x.argv(task, &self.opts.wg_exe).map_err(|e| anyhow!(e))?;
        let log_path = self.layout.task_file(&task.id, "agent.log");
        let log_offset = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        // `[executors.NAME]` may give this executor its own endpoint, model and key variable.
        let plan = crate::executor::plan::plan(
            &self.config,
            &x.name,
            Some(task),
            &self.layout.project_root(),
            Default::default(),
        )
        .map_err(|e| anyhow!(e))?;
        let mut extra = agent_env(
            self.layout.dir(),
            &task.id,
            agent,
            &x.name,
            plan.model.as_deref(),
            plan.endpoint.as_deref(),
        );
        // The agent's own `wg` reads the settings this coordinator runs on, not a file a
        // person may be halfway through editing.
        let running_config = self.layout.running_config();
        if running_config.is_file() {
            extra.push((
                crate::env::WG_CONFIG.into(),
                running_config.display().to_string(),
            ));
        }
        // Only an executor that talks to the endpoint gets the key (for codex and claude that
        // is `wg handler`, whose credential proxy keeps it from the agent itself).
        match &self.api_key {
            _ if !x.uses_endpoint => {}
            Some((k, v)) if *k == plan.key_env => extra.push((k.clone(), v.clone())),
            _ => {
                if let Ok(v) = std::env::var(&plan.key_env) {
                    if !v.is_empty() {
                        extra.push((plan.key_env.clone(), v));
                    }
                }
            }
        }
        let wg_dir = self
            .opts
            .wg_exe
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let env = build_env(&wg_dir, &x.pass_env, extra, |k| std::env::var(k).ok());
        let spec = AgentSpec {
            argv,
            cwd: plan.workdir,
            log_path: log_path.clone(),
            env,
        };
        if x.conversational {
            self.ask_to_continue(task)?;
        }
        let launcher = crate::slurm::launcher_for(
            task,
            self.config.executors.get(&x.name).and_then(|e| e.launcher),
            self.config.coordinator.launcher,
        )
        .map_err(|e| anyhow!(e))?;
        let (child, slurm_job) = match launcher {
            crate::slurm::Launcher::Local => {
                let child =
                    spawn(&spec).with_context(|| format!("cannot run {:?}", spec.argv[0]))?;
                (Some(child), None)
            }
            crate::slurm::Launcher::Slurm => {
                let job = slurm_jobs::submit(
                    &crate::slurm::client::Client,
                    &self.config.slurm.site(),
                    &spec,
                    &task.id,
                    agent,
                    self.limits(task).hard,
                    crate::slurm::task_args(task),
                )?;
                (None, Some(job))
            }
        };
        let pid = child
            .as_ref()
            .and_then(|c| c.id())
            .map(|p| p as i32)
            .unwrap_or(0);
        let inbox_seq = conversation::read_inbox(&self.layout, &task.id)
            .ok()
            .and_then(|m| m.last().map(|m| m.seq))
            .unwrap_or(0);
        let turn = if x.conversational {
            conversation::read_outbox(&self.layout, &task.id)
                .map(|o| o.len() as u32 + 1)
                .unwrap_or(1)
        } else {
            task.retries + 1
        };
        let record = AgentRecord {
            task: task.id.clone(),
            agent_id: agent.to_string(),
            pid,
            pgid: pid,
            start_time: if pid > 0 {
                pid_start_time(pid).unwrap_or(0)
            } else {
                0
            },
            started_at: now_rfc3339(),
            executor: x.name.clone(),
            turn,
            conversational: x.conversational,
            exit_code_decides: x.exit_code_decides,
            log_offset,
            inbox_seq,
            slurm_job,
        };
        self.started_agents += 1;
        let runs = match slurm_job {
            Some(job) => format!("slurm_job={job}"),
            None => format!("pid={pid}"),
        };
        self.log.line(&format!(
            "start task={} agent={agent} {runs} executor={} turn={turn}",
            task.id, x.name
        ));
        let started = if slurm_job.is_some() {
            None
        } else {
            Some(Instant::now())
        };
        self.supervise(child, record, started, self.limits(task))
    }

    /// A conversational task started again (a retry, or after endpoint trouble) has a
    /// conversation with nothing left to answer, so its handler would have no turn to run:
    /// tell the agent why it is back and ask it to continue.
    pub(super) fn ask_to_continue(&self, task: &Task) -> anyhow::Result<()> {
        let inbox = conversation::read_inbox(&self.layout, &task.id).unwrap_or_default();
        let pending = conversation::unanswered(&self.layout, &task.id).unwrap_or_default();
        if inbox.is_empty() || !pending.is_empty() {
            return Ok(());
        }
        let why = task
            .failure_reason
            .as_deref()
            .unwrap_or("it was interrupted before it reported a result");
        let text = format!(
            "This task was started again (attempt {}). The previous attempt ended: {why}. \
             Continue the work; finish with `wg done $WG_TASK_ID`, or `wg fail $WG_TASK_ID --reason \"...\"` if it cannot be done.",
            task.retries + 1
        );
        conversation::append_message(&self.layout, task, String::new, ACTOR, "retry", &text)?;
        self.log.line(&format!(
            "continue task={}: asked the agent to resume",
            task.id
        ));
        Ok(())
    }

    /// Records the agent in agents.json, then hands it to its supervisor task.
    /// `started` is when the run began; `None` for a new Slurm job, whose run time counts
    /// from when Slurm starts it.
    pub(super) fn supervise(
        &mut self,
        child: Option<tokio::process::Child>,
        record: AgentRecord,
        started: Option<Instant>,
        limits: Limits,
    ) -> anyhow::Result<()> {
        let (ctl_tx, ctl_rx) = unbounded_channel();
        let task = record.task.clone();
        self.agents.insert(
            task.clone(),
            Running {
                record: record.clone(),
                control: ctl_tx,
                stopping: false,
            },
        );
        // Before anything waits on the child: a crash from here on leaves a findable agent.
        // A disk that refuses the write holds dispatch, but this agent is watched all the same.
        let written = self.write_agents();
        if written
            .as_ref()
            .is_err_and(|e| super::hold::disk_fault(e).is_none())
        {
            return written;
        }
        if record.slurm_job.is_some() {
            return self.watch_job(record, started, limits, ctl_rx).and(written);
        }
        let started = started.unwrap_or_else(Instant::now);
        let watch = Watch {
            log_path: self.layout.task_file(&task, "agent.log"),
            record,
            limits,
            grace: self.grace,
            started,
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let ended = supervisor::supervise(child, watch, ctl_rx).await;
            let _ = tx.send(Event::Ended(ended));
        });
        written
    }

    pub(super) fn write_agents(&self) -> anyhow::Result<()> {
        let records: Vec<AgentRecord> = self.agents.values().map(|r| r.record.clone()).collect();
        agents_file::write(&self.layout.agents_file(), &records)
            .with_context(|| format!("cannot write {}", self.layout.agents_file().display()))
    }
}
