//! The coordinator: watches `.wg/`, starts an agent for every ready task, supervises it, and
//! decides what its exit means. See docs/coordinator.md.
//!
//! One tokio task (this module's loop) owns the map of running agents; every agent has a
//! supervisor task that reports its end over an mpsc channel. File-system events (inotify via
//! the `notify` crate) and a slow fallback poll wake the loop; idle, it sleeps. The decisions
//! themselves are pure functions in `scheduler.rs`.

pub mod notify;
pub mod recovery;
pub mod scheduler;
pub mod supervisor;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context as _};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::config::Config;
use crate::conversation;
use crate::error::CliError;
use crate::executor::process::{agent_env, build_env, spawn, tail, AgentSpec};
use crate::executor::Executor;
use crate::lifecycle::{transition, Change};
use crate::model::{Task, TaskStatus};
use crate::process::pid_start_time;
use crate::store::lock::FileLock;
use crate::store::tasklog::{self, LogRecord};
use crate::store::{Graph, Layout, Store};
use crate::time::{now_rfc3339, parse_duration, parse_rfc3339};
use crate::workspace::{self, field, ops, Mode};
use recovery::AgentRecord;
use scheduler::{Candidate, Decision, ExitFacts, Limits, StopReason};
use supervisor::{Control, Ended, Watch};

/// The actor recorded in task logs for the coordinator's own changes.
pub const ACTOR: &str = "coordinator";
/// Every agent id starts with this, so recovery can tell coordinator agents from hand-run ones.
pub const AGENT_PREFIX: &str = "agent-";
/// File-system events closer together than this are handled as one wake-up.
const DEBOUNCE: Duration = Duration::from_millis(2);

/// How to run a coordinator.
pub struct Options {
    pub layout: Layout,
    /// Overrides `coordinator.max_agents`.
    pub max_agents: Option<usize>,
    /// Exit once no task can make progress.
    pub until_done: bool,
    /// Also print each decision line on stderr.
    pub echo: bool,
    /// Handle SIGTERM/SIGINT (graceful) and SIGQUIT (force). Off for in-process callers.
    pub signals: bool,
    /// The wg binary agents call back (`wg mock-agent`, `wg handler`); first on their PATH.
    pub wg_exe: PathBuf,
    /// Status changes, for live progress (`wg demo`).
    pub progress: Option<std::sync::mpsc::Sender<Progress>>,
}

/// A status change seen or made by the coordinator.
#[derive(Debug, Clone)]
pub struct Progress {
    pub task: String,
    pub status: TaskStatus,
    pub agent: Option<String>,
    pub reason: Option<String>,
}

/// A coordinator holds `coordinator.lock` already.
#[derive(Debug, thiserror::Error)]
#[error("a coordinator is already running for this project{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
pub struct AlreadyRunning {
    pub pid: Option<u32>,
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub counts: BTreeMap<String, usize>,
    pub started_agents: u64,
}

/// The pid written in `coordinator.lock`, if any.
pub fn read_pid(layout: &Layout) -> Option<u32> {
    std::fs::read_to_string(layout.coordinator_lock())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether a coordinator holds the lock now, and its pid.
pub fn running(layout: &Layout) -> std::io::Result<Option<Option<u32>>> {
    if !layout.service_dir().is_dir() {
        return Ok(None);
    }
    match FileLock::try_acquire(&layout.coordinator_lock()) {
        Ok(Some(_free)) => Ok(None),
        Ok(None) => Ok(Some(read_pid(layout))),
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// Runs a coordinator until it is stopped (or, with `until_done`, until nothing can move).
/// Refuses with [`AlreadyRunning`] when another one holds the lock.
pub fn run(opts: Options) -> anyhow::Result<Summary> {
    let layout = opts.layout.clone();
    std::fs::create_dir_all(layout.service_dir())
        .with_context(|| format!("cannot create {}", layout.service_dir().display()))?;
    let lock = FileLock::try_acquire(&layout.coordinator_lock())?.ok_or(AlreadyRunning {
        pid: read_pid(&layout),
    })?;
    let config = Config::load(&layout.config())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let coordinator = Coordinator::new(opts, config, lock)?;
        coordinator.main().await
    })
}

/// The coordinator's log: one line per decision, appended to `coordinator.log`.
#[derive(Clone)]
struct DecisionLog {
    file: Arc<File>,
    echo: bool,
}

impl DecisionLog {
    fn open(path: &Path, echo: bool) -> anyhow::Result<DecisionLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(DecisionLog {
            file: Arc::new(file),
            echo,
        })
    }

    fn line(&self, text: &str) {
        let line = format!("{} {text}\n", now_rfc3339());
        // One write per line on an O_APPEND file: lines from threads never interleave.
        let _ = (&*self.file).write_all(line.as_bytes());
        if self.echo {
            eprint!("{line}");
        }
    }
}

enum Event {
    /// Something under `.wg/` changed (or the poll fired).
    Wake,
    Ended(Ended),
    Probe {
        endpoint: String,
        result: Result<(), String>,
    },
    Stop {
        force: bool,
    },
    /// An evaluation (`[evaluate] auto`) finished; `outcome` is for the log.
    Evaluated {
        task: String,
        outcome: Result<String, String>,
    },
}

struct Running {
    record: AgentRecord,
    control: UnboundedSender<Control>,
    /// A stop was already requested.
    stopping: bool,
}

struct Coordinator {
    opts: Options,
    layout: Layout,
    store: Store,
    config: Config,
    lock: FileLock,
    max_agents: usize,
    poll: Duration,
    grace: Duration,
    retry_base: Duration,
    agents: BTreeMap<String, Running>,
    tx: UnboundedSender<Event>,
    rx: UnboundedReceiver<Event>,
    log: DecisionLog,
    notifier: Option<notify::Notifier>,
    /// Last status seen per task, to announce changes made by agents and people.
    last_status: HashMap<String, TaskStatus>,
    /// Last agent per task, for announcements after the agent is gone.
    last_agent: HashMap<String, String>,
    endpoints: HashMap<String, scheduler::Endpoint>,
    health: HashMap<String, Result<(), String>>,
    /// `Some(force)` once a stop was asked for.
    stopping: Option<bool>,
    stop_deadline: Option<Instant>,
    /// Tasks whose evaluation is running (`[evaluate] auto`).
    evaluating: std::collections::HashSet<String>,
    /// `(name, value)` of the API key, read once; only ever put into agents' environments.
    api_key: Option<(String, String)>,
    id_prefix: String,
    seq: u64,
    started_agents: u64,
}

fn cli_err(e: CliError) -> anyhow::Error {
    e.error
}

fn duration_setting(v: &str, key: &str) -> anyhow::Result<Duration> {
    parse_duration(v).map_err(|e| anyhow!("coordinator.{key}: {e}"))
}

impl Coordinator {
    fn new(opts: Options, config: Config, lock: FileLock) -> anyhow::Result<Coordinator> {
        let layout = opts.layout.clone();
        let mut store = Store::new(layout.clone());
        store.fsync = config.fsync();
        let c = &config.coordinator;
        let log = DecisionLog::open(&layout.coordinator_log(), opts.echo)?;
        let (tx, rx) = unbounded_channel();
        let notifier = config.notify.url.clone().map(|url| {
            let token = config
                .notify
                .token_env
                .as_deref()
                .and_then(|n| std::env::var(n).ok());
            let log = log.clone();
            notify::Notifier::start(
                url,
                token,
                Duration::from_millis(200),
                Box::new(move |l| log.line(&l)),
            )
        });
        let key_env = config.api_key_env().to_string();
        let api_key = std::env::var(&key_env)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (key_env, v));
        let started_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Ok(Coordinator {
            max_agents: opts.max_agents.unwrap_or(c.max_agents).max(1),
            poll: duration_setting(&c.poll_interval, "poll_interval")?,
            grace: duration_setting(&c.grace_period, "grace_period")?,
            retry_base: duration_setting(&c.retry_backoff, "retry_backoff")?,
            layout,
            store,
            lock,
            agents: BTreeMap::new(),
            tx,
            rx,
            log,
            notifier,
            last_status: HashMap::new(),
            last_agent: HashMap::new(),
            endpoints: HashMap::new(),
            health: HashMap::new(),
            stopping: None,
            stop_deadline: None,
            api_key,
            id_prefix: format!("{started_ms:x}"),
            seq: 0,
            started_agents: 0,
            evaluating: Default::default(),
            config,
            opts,
        })
    }

    async fn main(mut self) -> anyhow::Result<Summary> {
        let _watcher = self.watch();
        if self.opts.signals {
            self.handle_signals()?;
        }
        self.recover()?;
        // The pid in the lock file says "up": `wg service start` waits for it.
        let f = self.lock.file();
        f.set_len(0)?;
        (&*f).write_all(format!("{}\n", std::process::id()).as_bytes())?;
        self.log.line(&format!(
            "started pid={} max_agents={} poll={:?}",
            std::process::id(),
            self.max_agents,
            self.poll
        ));
        loop {
            let tick = self.tick();
            let (next_wake, can_progress) = match tick {
                Ok(t) => t,
                Err(e) => {
                    // A failed state write is fatal: stop gracefully rather than guess.
                    self.log.line(&format!("fatal: {e:#}; stopping"));
                    self.begin_stop(false);
                    (None, false)
                }
            };
            if self.stopping.is_some() && self.agents.is_empty() {
                break;
            }
            if self.opts.until_done
                && self.stopping.is_none()
                && self.agents.is_empty()
                && self.evaluating.is_empty()
                && !can_progress
            {
                self.log.line("until-done: no task can make progress");
                break;
            }
            let mut deadline = Instant::now() + self.poll;
            for t in [next_wake, self.stop_deadline].into_iter().flatten() {
                deadline = deadline.min(t);
            }
            let first = tokio::select! {
                ev = self.rx.recv() => ev,
                _ = tokio::time::sleep_until(deadline.into()) => None,
            };
            if let Some(ev) = first {
                if matches!(ev, Event::Wake) {
                    tokio::time::sleep(DEBOUNCE).await;
                }
                self.handle(ev);
                while let Ok(ev) = self.rx.try_recv() {
                    self.handle(ev);
                }
            }
        }
        recovery::write(&self.layout.agents_file(), &[])?;
        let graph = self.store.load()?;
        let mut counts = BTreeMap::new();
        for t in graph.tasks.values() {
            *counts.entry(t.status.to_string()).or_insert(0) += 1;
        }
        if let Some(n) = self.notifier.take() {
            // Blocking is fine here: dispatch is over.
            n.finish(Duration::from_secs(10));
        }
        self.log.line(&format!("stopped; {counts:?}"));
        Ok(Summary {
            counts,
            started_agents: self.started_agents,
        })
    }

    /// inotify on `.wg/` (graph.jsonl) and `.wg/tasks/` (inboxes). Errors leave the poll.
    fn watch(&self) -> Option<::notify::RecommendedWatcher> {
        use ::notify::{EventKind, RecursiveMode, Watcher};
        let tx = self.tx.clone();
        let handler = move |res: ::notify::Result<::notify::Event>| {
            let Ok(ev) = res else { return };
            // Reads (ours included) raise access events; only changes matter.
            if matches!(ev.kind, EventKind::Access(_)) {
                return;
            }
            let relevant = ev.paths.iter().any(|p| {
                p.file_name()
                    .is_some_and(|n| n == "graph.jsonl" || n == "inbox.jsonl")
            });
            if relevant {
                let _ = tx.send(Event::Wake);
            }
        };
        let mut watcher = match ::notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                self.log
                    .line(&format!("no file-system events ({e}); polling only"));
                return None;
            }
        };
        let _ = std::fs::create_dir_all(self.layout.tasks_dir());
        for (path, mode) in [
            (self.layout.dir().to_path_buf(), RecursiveMode::NonRecursive),
            (self.layout.tasks_dir(), RecursiveMode::Recursive),
        ] {
            if let Err(e) = watcher.watch(&path, mode) {
                self.log.line(&format!(
                    "cannot watch {} ({e}); polling covers it",
                    path.display()
                ));
            }
        }
        Some(watcher)
    }

    fn handle_signals(&self) -> anyhow::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut quit = signal(SignalKind::quit())?;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let force = tokio::select! {
                    _ = term.recv() => false,
                    _ = int.recv() => false,
                    _ = quit.recv() => true,
                };
                seen += 1;
                // A second TERM/INT means "now".
                if tx
                    .send(Event::Stop {
                        force: force || seen > 1,
                    })
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(())
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Wake => {}
            Event::Ended(e) => {
                if let Err(err) = self.on_ended(e) {
                    self.log.line(&format!("fatal: {err:#}; stopping"));
                    self.begin_stop(false);
                }
            }
            Event::Probe { endpoint, result } => {
                let state = self.endpoints.entry(endpoint.clone()).or_default();
                match result {
                    Ok(()) => {
                        state.recovered();
                        self.log.line(&format!(
                            "endpoint {endpoint} answers again; dispatch resumes"
                        ));
                    }
                    Err(e) => {
                        state.failed(Instant::now(), self.retry_base);
                        self.log.line(&format!(
                            "endpoint {endpoint} probe failed ({e}); paused {} more",
                            humantime::format_duration(scheduler::backoff(
                                self.retry_base,
                                state.failures.saturating_sub(1)
                            ))
                        ));
                    }
                }
            }
            Event::Stop { force } => self.begin_stop(force),
            Event::Evaluated { task, outcome } => {
                self.evaluating.remove(&task);
                match outcome {
                    Ok(o) => self.log.line(&format!("evaluated task={task}: {o}")),
                    Err(e) => self
                        .log
                        .line(&format!("evaluation of task={task} failed: {e}")),
                }
            }
        }
    }

    fn begin_stop(&mut self, force: bool) {
        if force {
            self.log.line("stop (force): killing every agent now");
            self.stopping = Some(true);
            for r in self.agents.values_mut() {
                let _ = r.control.send(Control::Kill);
                r.stopping = true;
            }
            return;
        }
        if self.stopping.is_none() {
            self.stopping = Some(false);
            self.stop_deadline = Some(Instant::now() + self.grace);
            self.log.line(&format!(
                "stop: no new agents; {} running get {} to finish",
                self.agents.len(),
                humantime::format_duration(self.grace)
            ));
        }
    }

    /// Announces a status change: webhook, progress line, and the "last seen" table.
    fn announce(
        &mut self,
        task: &str,
        from: Option<TaskStatus>,
        to: TaskStatus,
        reason: Option<&str>,
    ) {
        self.last_status.insert(task.to_string(), to);
        let agent = self
            .agents
            .get(task)
            .map(|r| r.record.agent_id.clone())
            .or_else(|| self.last_agent.get(task).cloned());
        if let Some(n) = &self.notifier {
            let event = notify::Event {
                task: task.to_string(),
                status: notify::webhook_status(to).to_string(),
                from: from.map(|s| s.to_string()),
                agent: agent.clone(),
                time: now_rfc3339(),
                reason: reason.map(str::to_string),
                workspace: None,
            };
            if let Err(e) = n.send(event) {
                self.log.line(&format!("webhook: {e}"));
            }
        }
        if let Some(p) = &self.opts.progress {
            let _ = p.send(Progress {
                task: task.to_string(),
                status: to,
                agent,
                reason: reason.map(str::to_string),
            });
        }
    }

    /// Changes seen in a fresh load that the coordinator did not make itself.
    fn announce_changes(&mut self, graph: &Graph) {
        let first = self.last_status.is_empty();
        let changed: Vec<(String, Option<TaskStatus>, TaskStatus, Option<String>)> = graph
            .tasks
            .values()
            .filter_map(|t| {
                let prev = self.last_status.get(&t.id).copied();
                (prev != Some(t.status)).then(|| {
                    (
                        t.id.clone(),
                        prev,
                        t.status,
                        t.failure_reason
                            .clone()
                            .filter(|_| t.status == TaskStatus::Failed),
                    )
                })
            })
            .collect();
        for (id, prev, status, reason) in changed {
            if first || prev.is_none() {
                // Tasks as found at start, and new tasks, are not transitions.
                self.last_status.insert(id, status);
            } else {
                self.announce(&id, prev, status, reason.as_deref());
            }
        }
        self.last_status
            .retain(|id, _| graph.tasks.contains_key(id));
    }

    /// One pass: reload, stop agents of abandoned tasks, reopen failed tasks whose backoff
    /// ended, start agents. Returns when to wake at the latest, and whether anything can move.
    fn tick(&mut self) -> anyhow::Result<(Option<Instant>, bool)> {
        let mut graph = self.store.load()?;
        self.announce_changes(&graph);

        // Abandoned (or removed) tasks lose their agent: the whole group is stopped.
        for (id, r) in self.agents.iter_mut() {
            let gone = match graph.tasks.get(id) {
                None => true,
                Some(t) => t.status == TaskStatus::Abandoned,
            };
            if gone && !r.stopping {
                r.stopping = true;
                let _ = r.control.send(Control::Stop(StopReason::Abandoned));
                self.log.line(&format!(
                    "stop agent={} task={id}: task abandoned or removed",
                    r.record.agent_id
                ));
            }
        }

        // Worktrees of tasks that ended (also those that ended while no coordinator ran)
        // are settled before anything new starts, so a task waiting on one can go now.
        if self.cleanup_workspaces(&graph)? {
            graph = self.store.load()?;
        }

        if let Some(force) = self.stopping {
            if !force && self.stop_deadline.is_some_and(|d| Instant::now() >= d) {
                for (id, r) in self.agents.iter_mut().filter(|(_, r)| !r.stopping) {
                    r.stopping = true;
                    let _ = r.control.send(Control::Stop(StopReason::Shutdown));
                    self.log.line(&format!(
                        "stop agent={} task={id}: grace period over",
                        r.record.agent_id
                    ));
                }
            }
            return Ok((None, false));
        }

        // Retries whose backoff has passed.
        let now_sys = SystemTime::now();
        let mut next_retry: Option<SystemTime> = None;
        let mut due = Vec::new();
        for t in graph
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::Failed && crate::lifecycle::retryable_failure(t))
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
            graph = self.store.load()?;
        }

        // Candidates: conversations waiting on an answer first, then ready tasks.
        let mut tasks: Vec<Task> = Vec::new();
        for t in graph.tasks.values() {
            if t.status == TaskStatus::Waiting && !self.agents.contains_key(&t.id) {
                let conversational = self
                    .executor_for(t)
                    .map(|x| x.conversational)
                    .unwrap_or(false);
                let pending = conversation::unanswered(&self.layout, &t.id)
                    .map(|m| !m.is_empty())
                    .unwrap_or(false);
                if conversational && pending {
                    tasks.push(t.clone());
                }
            }
        }
        let new_turns = tasks.len();
        tasks.extend(self.store.ready(&graph)?.into_iter().cloned());
        let tasks = self.gate_workspaces(&graph, tasks)?;
        let can_progress = !tasks.is_empty() || next_retry.is_some();

        let mut candidates = Vec::with_capacity(tasks.len());
        let mut bad = Vec::new();
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
                Err(e) => bad.push((t.id.clone(), e)),
            }
        }
        for (id, reason) in bad {
            self.fail_unstartable(&id, &reason)?;
        }
        let free = self.max_agents.saturating_sub(self.agents.len());
        let now = Instant::now();
        let endpoints = &self.endpoints;
        let pick = scheduler::pick(&candidates, free, |e| {
            endpoints
                .get(e)
                .map(|s| s.gate(now))
                .unwrap_or(scheduler::Gate::Open)
        });
        for e in pick.probe {
            self.start_probe(e);
        }
        let chosen: Vec<(Task, Executor)> = pick.start.iter().map(|i| keep[*i].clone()).collect();
        if !chosen.is_empty() {
            self.claim_and_start(chosen)?;
        }
        let _ = new_turns;
        let next_retry_instant = next_retry.map(|t| {
            now + t.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(1)
        });
        let wake = [next_retry_instant, pick.wake_at]
            .into_iter()
            .flatten()
            .min();
        Ok((wake, can_progress))
    }

    /// The project root, absolute (git and agents get absolute paths).
    fn root(&self) -> PathBuf {
        let root = self.layout.project_root();
        std::path::absolute(&root).unwrap_or(root)
    }

    /// Keeps back the candidates whose workspace is not free: a lock path overlapping one
    /// held by a live task (or by a candidate ahead of it), or a worktree branch or path in
    /// use. Their reason is recorded on the task; the rest are returned in order.
    fn gate_workspaces(&mut self, graph: &Graph, tasks: Vec<Task>) -> anyhow::Result<Vec<Task>> {
        let live = |id: &str| {
            graph
                .tasks
                .get(id)
                .is_some_and(|t| workspace::is_live(t.status))
        };
        let root = self.root();
        let cfg = &self.config.workspace;
        // One `git worktree list` per pass, and only when a worktree task is a candidate.
        let mut existing: Option<Vec<workspace::Worktree>> = None;
        let mut reasons: Vec<Option<String>> = Vec::with_capacity(tasks.len());
        for t in &tasks {
            let mut reason = None;
            if workspace::mode(t, cfg) == Mode::Worktree {
                if existing.is_none() {
                    // A git error here is reported when the claim tries to create it.
                    existing = Some(workspace::git::list_worktrees(&root).unwrap_or_default());
                }
                let dir = workspace::worktree_dir(cfg, &root, &t.id);
                let plan = workspace::plan_worktree(
                    existing.as_deref().unwrap_or_default(),
                    &workspace::branch_name(&t.id),
                    &dir,
                    dir.exists(),
                    live,
                );
                if let workspace::Plan::Wait(r) = plan {
                    reason = Some(r);
                }
            }
            reasons.push(reason);
        }
        // Lock paths among the rest, in dispatch order.
        let held: Vec<(String, Vec<String>)> = graph
            .tasks
            .values()
            .filter(|t| workspace::is_live(t.status))
            .map(|t| (t.id.clone(), workspace::lock_paths(t)))
            .filter(|(_, l)| !l.is_empty())
            .collect();
        let open: Vec<usize> = (0..tasks.len()).filter(|i| reasons[*i].is_none()).collect();
        let wanted: Vec<(String, Vec<String>)> = open
            .iter()
            .map(|i| (tasks[*i].id.clone(), workspace::lock_paths(&tasks[*i])))
            .collect();
        for (i, r) in open.into_iter().zip(workspace::lock_gate(&wanted, held)) {
            reasons[i] = r;
        }
        let mut keep = Vec::with_capacity(tasks.len());
        let mut waits = Vec::new();
        for (t, r) in tasks.into_iter().zip(reasons) {
            match r {
                Some(r) => waits.push((t.id.clone(), r)),
                None => keep.push(t),
            }
        }
        self.record_waits(waits)?;
        Ok(keep)
    }

    /// Records why ready tasks wait (`waiting_for`, shown by `wg show`, and a line in their
    /// log.jsonl), only when the reason changed: the write wakes the loop again.
    fn record_waits(&mut self, waits: Vec<(String, String)>) -> anyhow::Result<()> {
        if waits.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let mut w = store.writer()?;
        let mut changed = Vec::new();
        for (id, reason) in waits {
            let Some(mut t) = w.get(&id)? else { continue };
            if workspace::extra_str(&t, field::WAITING_FOR) == Some(reason.as_str()) {
                continue;
            }
            t.extra
                .insert(field::WAITING_FOR.into(), reason.clone().into());
            w.put(std::slice::from_ref(&t))?;
            changed.push((id, reason));
        }
        w.commit()?;
        for (id, reason) in changed {
            self.log.line(&format!("wait task={id}: {reason}"));
            let mut rec = LogRecord::note(&now_rfc3339(), ACTOR, &reason);
            rec.event = "waiting".into();
            let _ = tasklog::append(&self.layout, &id, &rec, false);
        }
        Ok(())
    }

    /// Cleans up the worktrees of tasks that ended and have no agent (or evaluation) left.
    /// Returns whether any task record changed.
    fn cleanup_workspaces(&mut self, graph: &Graph) -> anyhow::Result<bool> {
        let due: Vec<Task> = graph
            .tasks
            .values()
            .filter(|t| t.status.is_terminal() && workspace::recorded_worktree(t).is_some())
            .filter(|t| !self.agents.contains_key(&t.id) && !self.evaluating.contains(&t.id))
            .cloned()
            .collect();
        if due.is_empty() {
            return Ok(false);
        }
        let root = self.root();
        for t in due {
            let cfg = &self.config.workspace;
            let report = ops::cleanup(&root, cfg, &t, cfg.keep_worktrees);
            let value = serde_json::to_value(&report)?;
            let store = self.store.clone();
            let mut w = store.writer()?;
            if let Some(mut cur) = w.get(&t.id)? {
                // Attempted once: a failure is left to `wg doctor`, not retried every tick.
                cur.extra.remove(field::WORKTREE);
                cur.extra.insert(field::CLEANUP.into(), value.clone());
                w.put(std::slice::from_ref(&cur))?;
            }
            w.commit()?;
            self.log.line(&format!(
                "cleanup task={} ok={}: {}",
                t.id, report.ok, report.message
            ));
            let mut rec = LogRecord::note(&now_rfc3339(), ACTOR, &report.message);
            rec.event = "workspace.cleanup".into();
            if let serde_json::Value::Object(m) = &value {
                rec.extra = m.clone();
                rec.extra.remove("message");
            }
            let _ = tasklog::append(&self.layout, &t.id, &rec, false);
            if let Some(n) = &self.notifier {
                let event = notify::Event {
                    task: t.id.clone(),
                    status: notify::webhook_status(t.status).to_string(),
                    from: Some(t.status.to_string()),
                    agent: self.last_agent.get(&t.id).cloned(),
                    time: now_rfc3339(),
                    reason: None,
                    workspace: Some(value),
                };
                if let Err(e) = n.send(event) {
                    self.log.line(&format!("webhook: {e}"));
                }
            }
        }
        Ok(true)
    }

    fn executor_for(&mut self, t: &Task) -> Result<Executor, String> {
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
    fn endpoint_key(&self, x: &Executor) -> String {
        if x.uses_endpoint {
            self.config
                .endpoint_for(&x.name)
                .url
                .unwrap_or_else(|| "default-endpoint".into())
        } else {
            format!("executor:{}", x.name)
        }
    }

    fn start_probe(&mut self, endpoint: String) {
        let state = self.endpoints.entry(endpoint.clone()).or_default();
        state.probing = true;
        let tx = self.tx.clone();
        self.log.line(&format!("endpoint {endpoint}: probing"));
        if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            tokio::task::spawn_blocking(move || {
                let result = notify::probe(&endpoint);
                let _ = tx.send(Event::Probe { endpoint, result });
            });
        } else {
            // Nothing to ask: the pause itself was the backoff.
            let _ = tx.send(Event::Probe {
                endpoint,
                result: Ok(()),
            });
        }
    }

    fn fail_unstartable(&mut self, id: &str, reason: &str) -> anyhow::Result<()> {
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

    fn next_agent_id(&mut self) -> String {
        self.seq += 1;
        format!("{AGENT_PREFIX}{}-{}", self.id_prefix, self.seq)
    }

    /// Claims the chosen tasks under one store lock (so none starts twice), then starts them.
    fn claim_and_start(&mut self, chosen: Vec<(Task, Executor)>) -> anyhow::Result<()> {
        let store = self.store.clone();
        let mut w = store.writer()?;
        let mut claimed = Vec::new();
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
                let reason = format!("cannot start agent: {e:#}");
                self.fail_unstartable(&task.id, &reason)?;
            }
        }
        Ok(())
    }

    fn limits(&self, task: &Task) -> Limits {
        let c = &self.config.coordinator;
        let p = |v: Option<&String>| v.and_then(|s| parse_duration(s).ok());
        Limits {
            hard: p(task.timeout.as_ref()).or_else(|| p(c.hard_timeout.as_ref())),
            idle: p(c.idle_timeout.as_ref()),
            first_output: p(c.first_output_timeout.as_ref()),
        }
    }

    fn start_agent(&mut self, task: &Task, x: &Executor, agent: &str) -> anyhow::Result<()> {
        let argv = x.argv(task, &self.opts.wg_exe).map_err(|e| anyhow!(e))?;
        let log_path = self.layout.task_file(&task.id, "agent.log");
        let log_offset = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        // `[executors.NAME]` may give this executor its own endpoint, model and key variable.
        let ep = self.config.endpoint_for(&x.name);
        let model = task.model.clone().or_else(|| ep.model.clone());
        let mut extra = agent_env(
            self.layout.dir(),
            &task.id,
            agent,
            &x.name,
            model.as_deref(),
            ep.url.as_deref(),
        );
        // Only an executor that talks to the endpoint gets the key (for codex and claude that
        // is `wg handler`, whose credential proxy keeps it from the agent itself).
        match &self.api_key {
            _ if !x.uses_endpoint => {}
            Some((k, v)) if *k == ep.key_env => extra.push((k.clone(), v.clone())),
            _ => {
                if let Ok(v) = std::env::var(&ep.key_env) {
                    if !v.is_empty() {
                        extra.push((ep.key_env.clone(), v));
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
        let root = self.layout.project_root();
        let cwd = match (workspace::recorded_worktree(task), &task.workspace) {
            (Some(dir), _) => dir,
            (None, Some(ws)) if ws != "shared" && ws != "worktree" => root.join(ws),
            _ => root,
        };
        let spec = AgentSpec {
            argv,
            cwd,
            log_path: log_path.clone(),
            env,
        };
        if x.conversational {
            self.ask_to_continue(task)?;
        }
        let child = spawn(&spec).with_context(|| format!("cannot run {:?}", spec.argv[0]))?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
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
            start_time: pid_start_time(pid).unwrap_or(0),
            started_at: now_rfc3339(),
            executor: x.name.clone(),
            turn,
            conversational: x.conversational,
            exit_code_decides: x.exit_code_decides,
            log_offset,
            inbox_seq,
        };
        self.started_agents += 1;
        self.log.line(&format!(
            "start task={} agent={agent} pid={pid} executor={} turn={turn}",
            task.id, x.name
        ));
        self.supervise(Some(child), record, Instant::now(), self.limits(task))
    }

    /// A conversational task started again (a retry, or after endpoint trouble) has a
    /// conversation with nothing left to answer, so its handler would have no turn to run:
    /// tell the agent why it is back and ask it to continue.
    fn ask_to_continue(&self, task: &Task) -> anyhow::Result<()> {
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
    fn supervise(
        &mut self,
        child: Option<tokio::process::Child>,
        record: AgentRecord,
        started: Instant,
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
        self.write_agents()?;
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
        Ok(())
    }

    fn write_agents(&self) -> anyhow::Result<()> {
        let records: Vec<AgentRecord> = self.agents.values().map(|r| r.record.clone()).collect();
        recovery::write(&self.layout.agents_file(), &records)
            .with_context(|| format!("cannot write {}", self.layout.agents_file().display()))
    }

    /// An agent ended: judge the exit and apply the decision.
    fn on_ended(&mut self, e: Ended) -> anyhow::Result<()> {
        let Some(r) = self.agents.get(&e.task) else {
            return Ok(());
        };
        if r.record.agent_id != e.agent_id {
            return Ok(());
        }
        let r = self.agents.remove(&e.task).expect("checked above");
        self.write_agents()?;
        let rec = r.record;
        let id = rec.task.clone();
        let x = Executor::resolve(&rec.executor, &self.config).ok();
        let log_path = self.layout.task_file(&id, "agent.log");
        let output_tail = tail(&log_path, rec.log_offset, 400);
        let store = self.store.clone();
        let mut w = store.writer()?;
        let Some(task) = w.get(&id)? else {
            self.log.line(&format!(
                "ended agent={} task={id}: task is gone",
                rec.agent_id
            ));
            return Ok(());
        };
        let still_ours = task.assigned.as_deref() == Some(rec.agent_id.as_str());
        let uses_endpoint = x.as_ref().is_some_and(|x| x.uses_endpoint);
        let mut endpoint_error = output_tail.contains("endpoint_error");
        let (mut unanswered, mut nudges_sent) = (false, 0);
        let mut error_reply = None;
        if rec.conversational {
            // Only messages that arrived during the turn call for another one: a turn that
            // left its own messages unanswered made no progress, and repeating it would loop.
            unanswered = conversation::unanswered(&self.layout, &id)
                .map(|m| m.iter().any(|m| m.seq > rec.inbox_seq))
                .unwrap_or(false);
            let inbox = conversation::read_inbox(&self.layout, &id).unwrap_or_default();
            nudges_sent = inbox.iter().rev().take_while(|m| m.kind == "nudge").count() as u32;
            // The handler exits 1 when a turn of this run ended in an error reply; its
            // `error_kind` says whether the endpoint is to blame (pause, no retry spent) or
            // the task cannot go on as it is (fail, with the reply's advice as the reason).
            if e.exit_code.is_some_and(|c| c != 0) {
                let last_error = conversation::read_outbox(&self.layout, &id)
                    .ok()
                    .and_then(|o| o.last().cloned())
                    .filter(|r| r.role == "error");
                if let Some(r) = last_error {
                    let kind = r
                        .extra
                        .get("error_kind")
                        .and_then(|k| k.as_str())
                        .unwrap_or("");
                    if uses_endpoint
                        && (scheduler::is_endpoint_error_kind(kind)
                            || scheduler::is_endpoint_error(&r.text))
                    {
                        endpoint_error = true;
                    } else {
                        error_reply = Some(r.text.clone());
                    }
                }
            }
        }
        if uses_endpoint {
            endpoint_error |= scheduler::is_endpoint_error(&output_tail);
        }
        let facts = ExitFacts {
            status: task.status,
            still_ours,
            conversational: rec.conversational,
            exit_code_decides: rec.exit_code_decides,
            exit_code: e.exit_code,
            signal: e.signal,
            stopped: e.stopped,
            endpoint_error,
            unanswered,
            nudges_sent,
            max_nudges: self.config.coordinator.max_nudges,
            output_tail,
            error_reply,
        };
        let decision = scheduler::decide_exit(&facts);
        let code = e
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "?".into());
        self.log.line(&format!(
            "ended agent={} task={id} exit={code}{}{} status={} -> {decision:?}",
            rec.agent_id,
            e.stopped
                .map(|s| format!(" stopped={s:?}"))
                .unwrap_or_default(),
            if e.killed { " (SIGKILL)" } else { "" },
            task.status,
        ));
        let from = task.status;
        let change_to = |w: &mut crate::store::Writer<'_>,
                         to: TaskStatus,
                         reason: Option<&str>,
                         retry: bool|
         -> anyhow::Result<()> {
            let change = Change {
                to,
                reason,
                actor: ACTOR,
            };
            transition(w, &id, change, |t| {
                if retry {
                    t.retries += 1;
                }
                if to == TaskStatus::Done {
                    t.failure_reason = None;
                }
            })
            .map_err(cli_err)?;
            Ok(())
        };
        if !matches!(decision, Decision::EndpointTrouble(_)) && e.stopped.is_none() {
            if let Some(x) = &x {
                if let Some(state) = self.endpoints.get_mut(&self.endpoint_key(x)) {
                    state.succeeded();
                }
            }
        }
        let mut announce: Option<(TaskStatus, Option<String>)> = None;
        match &decision {
            Decision::Nothing => {}
            Decision::Done => {
                change_to(&mut w, TaskStatus::Done, Some("exit code 0"), false)?;
                announce = Some((TaskStatus::Done, None));
            }
            Decision::Fail(reason) => {
                change_to(&mut w, TaskStatus::Failed, Some(reason), false)?;
                announce = Some((TaskStatus::Failed, Some(reason.clone())));
            }
            Decision::Requeue {
                count_retry,
                reason,
            } => {
                change_to(&mut w, TaskStatus::Open, Some(reason), *count_retry)?;
                announce = Some((TaskStatus::Open, Some(reason.clone())));
            }
            Decision::EndpointTrouble(reason) => {
                change_to(&mut w, TaskStatus::Open, Some(reason), false)?;
                announce = Some((TaskStatus::Open, Some(reason.clone())));
                if let Some(x) = &x {
                    let key = self.endpoint_key(x);
                    let state = self.endpoints.entry(key.clone()).or_default();
                    state.failed(Instant::now(), self.retry_base);
                    self.log.line(&format!(
                        "endpoint {key} paused after endpoint trouble ({} in a row)",
                        state.failures
                    ));
                }
            }
            Decision::NextTurn | Decision::Nudge => {
                if task.status == TaskStatus::InProgress {
                    change_to(&mut w, TaskStatus::Waiting, Some("turn ended"), false)?;
                    announce = Some((TaskStatus::Waiting, None));
                }
            }
        }
        w.commit()?;
        if decision == Decision::Nudge {
            let text =
                "You ended your turn without reporting the outcome. If the task is finished, \
                        run `wg done $WG_TASK_ID`; if it cannot be finished, run \
                        `wg fail $WG_TASK_ID --reason \"...\"`; otherwise continue the work.";
            let lookup_store = self.store.clone();
            let brief = || {
                let g = lookup_store.load().unwrap_or_default();
                conversation::brief_for(&self.layout, &task, |d| g.tasks.get(d).cloned())
            };
            conversation::append_message(&self.layout, &task, brief, ACTOR, "nudge", text)?;
            self.log.line(&format!(
                "nudge task={id} ({} of {})",
                nudges_sent + 1,
                self.config.coordinator.max_nudges
            ));
        }
        if let Some((to, reason)) = announce {
            self.announce(&id, Some(from), to, reason.as_deref());
        }
        let done_now = decision == Decision::Done || task.status == TaskStatus::Done;
        if done_now && self.config.evaluate.auto && self.stopping.is_none() {
            self.start_evaluation(id);
        }
        Ok(())
    }

    /// The evaluation gate: scores the finished task off the event loop (it waits on the
    /// evaluator endpoint), then sends weak work back to open or fails it.
    fn start_evaluation(&mut self, id: String) {
        if !self.evaluating.insert(id.clone()) {
            return;
        }
        self.log.line(&format!("evaluating task={id}"));
        let (store, config, tx) = (self.store.clone(), self.config.clone(), self.tx.clone());
        tokio::task::spawn_blocking(move || {
            let outcome = (|| -> Result<String, String> {
                let layout = store.layout.clone();
                let graph = store.load().map_err(|e| e.to_string())?;
                let task = graph.tasks.get(&id).ok_or("the task is gone")?;
                // A worktree task's changes are in its worktree (cleanup waits for this).
                let root = workspace::recorded_worktree(task)
                    .filter(|d| d.is_dir())
                    .unwrap_or_else(|| layout.project_root());
                let result = crate::evaluate::evaluate(&layout, &config, task, &root)
                    .map_err(|e| e.to_string())?;
                crate::evaluate::record(&layout, ACTOR, &result).map_err(|e| e.to_string())?;
                if result.status != "ok" {
                    return Err(format!(
                        "no usable verdict: {}",
                        result.error.unwrap_or_default()
                    ));
                }
                let decision = crate::evaluate::apply_gate(&store, &config, &id, &result)
                    .map_err(|e| format!("{e}"))?;
                Ok(format!(
                    "total={:.2} -> {decision:?}",
                    result.total.unwrap_or(0.0)
                ))
            })();
            let _ = tx.send(Event::Evaluated { task: id, outcome });
        });
    }

    /// After a crash: adopt live agents from agents.json, requeue the tasks of dead ones.
    fn recover(&mut self) -> anyhow::Result<()> {
        let path = self.layout.agents_file();
        let records = recovery::read(&path)?;
        let graph = self.store.load()?;
        for rec in records {
            if recovery::still_alive(&rec) {
                let task = graph.tasks.get(&rec.task).cloned();
                let limits = task.as_ref().map(|t| self.limits(t)).unwrap_or_default();
                let age = parse_rfc3339(&rec.started_at)
                    .and_then(|s| SystemTime::now().duration_since(s).ok())
                    .unwrap_or_default();
                let started = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                self.log.line(&format!(
                    "adopt agent={} task={} pid={}: still running",
                    rec.agent_id, rec.task, rec.pid
                ));
                self.last_agent
                    .insert(rec.task.clone(), rec.agent_id.clone());
                self.supervise(None, rec, started, limits)?;
            } else {
                self.log.line(&format!(
                    "agent={} task={} pid={} is gone",
                    rec.agent_id, rec.task, rec.pid
                ));
            }
        }
        self.write_agents()?;
        // Tasks held by a coordinator agent that is not running: requeue as a retry.
        let orphans: Vec<Task> = graph
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::InProgress)
            .filter(|t| {
                t.assigned
                    .as_deref()
                    .is_some_and(|a| a.starts_with(AGENT_PREFIX))
            })
            .filter(|t| !self.agents.contains_key(&t.id))
            .cloned()
            .collect();
        for t in orphans {
            let agent = t.assigned.clone().unwrap_or_default();
            // A claim whose agents.json entry a crash prevented: find the process itself.
            if let Some(pid) = recovery::find_agent_process(&agent) {
                let x = self.executor_for(&t).ok();
                let rec = AgentRecord {
                    task: t.id.clone(),
                    agent_id: agent.clone(),
                    pid,
                    pgid: pid,
                    start_time: pid_start_time(pid).unwrap_or(0),
                    started_at: now_rfc3339(),
                    executor: x.as_ref().map(|x| x.name.clone()).unwrap_or_default(),
                    turn: 1,
                    conversational: x.as_ref().is_some_and(|x| x.conversational),
                    exit_code_decides: x.as_ref().is_some_and(|x| x.exit_code_decides),
                    log_offset: 0,
                    inbox_seq: 0,
                };
                self.log.line(&format!(
                    "adopt agent={agent} task={} pid={pid}: found by its environment",
                    t.id
                ));
                let limits = self.limits(&t);
                self.supervise(None, rec, Instant::now(), limits)?;
                continue;
            }
            let max = t.max_retries.unwrap_or(self.config.coordinator.max_retries);
            let store = self.store.clone();
            let mut w = store.writer()?;
            let (to, reason, retry) = if t.retries < max {
                (
                    TaskStatus::Open,
                    format!(
                        "agent {agent} died while no coordinator watched it; requeued (retry {}/{max})",
                        t.retries + 1
                    ),
                    true,
                )
            } else {
                (
                    TaskStatus::Failed,
                    format!("agent {agent} died while no coordinator watched it; no retries left"),
                    false,
                )
            };
            let change = Change {
                to,
                reason: Some(&reason),
                actor: ACTOR,
            };
            transition(&mut w, &t.id, change, |t| {
                if retry {
                    t.retries += 1;
                }
            })
            .map_err(cli_err)?;
            w.commit()?;
            self.log.line(&format!("recover task={}: {reason}", t.id));
        }
        Ok(())
    }
}
