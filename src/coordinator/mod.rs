//! The coordinator: watches `.wg/`, starts an agent for every ready task, supervises it, and
//! decides what its exit means. See docs/coordinator.md.
//!
//! One tokio task (this module's loop) owns the map of running agents; every agent has a
//! supervisor task that reports its end over an mpsc channel. File-system events (inotify via
//! the `notify` crate) and a slow fallback poll wake the loop; idle, it sleeps. The decisions
//! themselves are pure functions in `scheduler.rs`.

pub mod agents_file;
mod announce;
mod dispatch;
pub mod endpoints;
mod exit;
pub mod hold;
mod landing;
mod live;
pub mod notify;
pub mod recovery;
pub mod reload;
pub mod scheduler;
pub mod slurm_jobs;
pub mod supervisor;
mod workspaces;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::config::Config;
use crate::error::CliError;
use crate::model::TaskStatus;
use crate::store::lock::FileLock;
use crate::store::{Layout, Store};
use crate::time::now_rfc3339;
use agents_file::AgentRecord;
use scheduler::StopReason;
use supervisor::{Control, Ended};

/// The actor recorded in task logs for the coordinator's own changes.
pub const ACTOR: &str = "coordinator";
/// Every agent id starts with this, so recovery can tell coordinator agents from hand-run ones.
pub const AGENT_PREFIX: &str = "agent-";

/// How to run a coordinator.
pub struct Options {
    pub layout: Layout,
    /// Overrides `coordinator.max_agents`.
    pub max_agents: Option<usize>,
    /// Exit once no task can make progress.
    pub until_done: bool,
    /// With `until_done`: also exit when an endpoint has been paused this long (and no agent
    /// runs). `None`: wait for it.
    pub max_pause: Option<Duration>,
    /// Also print each decision line on stderr.
    pub echo: bool,
    /// Handle SIGTERM/SIGINT (graceful) and SIGQUIT (force). Off for in-process callers.
    pub signals: bool,
    /// The wg binary agents call back (`wg mock-agent`, `wg handler`); first on their PATH.
    pub wg_exe: PathBuf,
    /// Status changes, for live progress (`wg demo`).
    pub progress: Option<std::sync::mpsc::Sender<Progress>>,
    /// Started once the lock is held, with the config the run starts on; what it returns is
    /// kept (and dropped) for the run: `wg service start` serves the web board this way.
    pub beside: Option<Beside>,
}

/// See [`Options::beside`].
pub type Beside = Box<dyn FnOnce(&Config) -> anyhow::Result<Box<dyn std::any::Any>> + Send>;

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
    pub ending: Option<scheduler::Ending>,
    /// The endpoints still paused at the end.
    pub paused: Vec<endpoints::PausedEndpoint>,
    /// What the graph's shape holds at the end: dependency cycles and dependencies on tasks
    /// that are gone, one sentence each.
    pub held: Vec<String>,
}

/// One sentence per thing the graph's shape holds: each cycle, each dependency on a task that
/// is neither live nor archived.
fn held_by_shape(graph: &crate::store::Graph, archived: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = graph
        .cycles
        .iter()
        .map(|c| format!("dependency cycle: {}", c.join(", ")))
        .collect();
    for t in graph.tasks.values().filter(|t| !t.status.is_terminal()) {
        for d in graph.missing_deps(t, &archived) {
            out.push(format!("{} waits for {d}, which is gone", t.id));
        }
    }
    out
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
pub fn run(mut opts: Options) -> anyhow::Result<Summary> {
    let layout = opts.layout.clone();
    std::fs::create_dir_all(layout.service_dir())
        .with_context(|| format!("cannot create {}", layout.service_dir().display()))?;
    // `running()` probes by holding the lock for an instant: a start that meets a probe waits
    // it out instead of giving way to a coordinator that does not exist.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(250);
    let lock = loop {
        if let Some(lock) = FileLock::try_acquire(&layout.coordinator_lock())? {
            break lock;
        }
        if std::time::Instant::now() >= deadline {
            return Err(AlreadyRunning {
                pid: read_pid(&layout),
            }
            .into());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let config = Config::load(&layout.config())?;
    // What runs beside the coordinator (the web board) starts once the lock is held.
    let _beside = match opts.beside.take() {
        Some(start) => Some(start(&config)?),
        None => None,
    };
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
            crate::output::stderr(&line);
        }
    }
}

enum Event {
    /// Something under `.wg/` changed (or the poll fired).
    Wake,
    Ended(Ended),
    Probe {
        endpoint: String,
        result: Result<(), crate::http::ProbeFailure>,
    },
    /// `wg service resume`: probe paused endpoints now.
    Resume,
    Stop {
        force: bool,
    },
    /// An evaluation (`[evaluate] auto`) finished; `outcome` is for the log.
    Evaluated {
        task: String,
        outcome: Result<String, String>,
    },
    /// Checks or a landing finished (`landing.rs`).
    Landing(landing::Finished),
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
    /// Longest wait between probes of a paused endpoint.
    pause_cap: Duration,
    agents: BTreeMap<String, Running>,
    tx: UnboundedSender<Event>,
    rx: UnboundedReceiver<Event>,
    log: DecisionLog,
    notifier: Option<notify::Notifier>,
    /// The graph as last read, kept up to date from the file's appends.
    live: live::LiveGraph,
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
    /// Checks and the merge queue running now.
    lander: landing::Lander,
    /// `(name, value)` of the API key, read once; only ever put into agents' environments.
    api_key: Option<(String, String)>,
    id_prefix: String,
    seq: u64,
    started_agents: u64,
    /// The Slurm job monitor, started with the first job.
    slurm_jobs: Option<UnboundedSender<slurm_jobs::JobWatch>>,
    /// What `config.toml` held when last read, and what the running settings are.
    config_seen: reload::Seen,
    config_state: reload::ConfigState,
    /// Dispatch held because the disk refused a write (see `hold.rs`).
    hold: Option<hold::Hold>,
    /// Agents' ends not yet recorded because the disk refused the write.
    deferred_ends: std::collections::VecDeque<Ended>,
}

fn cli_err(e: CliError) -> anyhow::Error {
    e.error
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
            poll: c.poll_interval.get(),
            grace: c.grace_period.get(),
            retry_base: c.retry_backoff.get(),
            pause_cap: c.endpoint_backoff_max.get(),
            layout,
            store,
            lock,
            agents: BTreeMap::new(),
            tx,
            rx,
            log,
            notifier,
            live: Default::default(),
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
            slurm_jobs: None,
            evaluating: Default::default(),
            lander: Default::default(),
            config_seen: Default::default(),
            config_state: reload::ConfigState {
                loaded_at: now_rfc3339(),
                ..Default::default()
            },
            config,
            opts,
            hold: None,
            deferred_ends: Default::default(),
        })
    }

    async fn main(mut self) -> anyhow::Result<Summary> {
        let _watcher = self.watch();
        if self.opts.signals {
            self.handle_signals()?;
        }
        // Before recovery, which may start agents: they get the settings as the file has them
        // (and never a copy an earlier coordinator left, should the file be invalid now).
        let _ = std::fs::remove_file(self.layout.running_config());
        self.check_config();
        if let Err(e) = hold::prepare(&self.layout) {
            self.log
                .line(&format!("cannot prepare the hold state file: {e}"));
        }
        self.recover()?;
        // No pause survives a restart: a stale state file would show one.
        self.write_endpoints();
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
        let mut paused_too_long = false;
        loop {
            let (next_wake, can_progress) = self.tick_or_hold();
            // A graceful stop lets a landing or checks under way finish (their result is
            // applied); a forced one leaves them to the next coordinator's recovery.
            if self.stopping.is_some()
                && self.agents.is_empty()
                && (self.stopping == Some(true) || self.lander.idle())
            {
                break;
            }
            if self.opts.until_done
                && self.stopping.is_none()
                && self.agents.is_empty()
                && self.evaluating.is_empty()
                && self.lander.idle()
                && !can_progress
            {
                self.log.line("until-done: no task can make progress");
                break;
            }
            if self.opts.until_done
                && self.stopping.is_none()
                && self.agents.is_empty()
                && self.evaluating.is_empty()
                && self.lander.idle()
                && self.paused_too_long()
            {
                self.log
                    .line("until-done: an endpoint is paused longer than --max-pause");
                paused_too_long = true;
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
                // No debounce: a pass costs what changed, and every event already queued is
                // taken before it (a wait here would be added to every dispatch).
                self.handle(ev);
                while let Ok(ev) = self.rx.try_recv() {
                    self.handle(ev);
                }
            }
        }
        agents_file::write(&self.layout.agents_file(), &[])?;
        let graph = self.store.load()?;
        let archive = if graph
            .tasks
            .values()
            .any(|t| t.after.iter().any(|d| !graph.tasks.contains_key(d)))
        {
            self.store.load_archive()?
        } else {
            Default::default()
        };
        let held = held_by_shape(&graph, |id| archive.contains_key(id));
        for h in &held {
            self.log.line(&format!("held: {h}"));
        }
        let mut counts = BTreeMap::new();
        for t in graph.tasks.values() {
            *counts.entry(t.status.to_string()).or_insert(0) += 1;
        }
        if let Some(n) = self.notifier.take() {
            // Blocking is fine here: dispatch is over.
            n.finish(Duration::from_secs(10));
        }
        self.log.line(&format!("stopped; {counts:?}"));
        let ending = self
            .opts
            .until_done
            .then(|| scheduler::ending(&counts, paused_too_long, self.stopping.is_some()));
        let paused = self.paused_endpoints();
        // Nothing is paused, and no config state is current, once the coordinator is gone.
        let _ = std::fs::remove_file(endpoints::state_file(&self.layout));
        let _ = std::fs::remove_file(reload::state_file(&self.layout));
        let _ = std::fs::remove_file(hold::state_file(&self.layout));
        Ok(Summary {
            counts,
            started_agents: self.started_agents,
            ending,
            paused,
            held,
        })
    }

    /// inotify on `.wg/` (graph.jsonl, config.toml) and `.wg/tasks/` (inboxes). Errors leave
    /// the poll.
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
                    .is_some_and(|n| n == "graph.jsonl" || n == "inbox.jsonl" || n == "config.toml")
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
        // SIGUSR1 is `wg service resume`: probe paused endpoints now.
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let resume_tx = self.tx.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                if resume_tx.send(Event::Resume).is_err() {
                    break;
                }
            }
        });
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
                if let Err(err) = self.on_ended(e.clone()) {
                    match hold::disk_fault(&err) {
                        // Recorded once the disk takes writes again.
                        Some(why) => {
                            self.deferred_ends.push_back(e);
                            self.hold_dispatch(why);
                        }
                        None => {
                            self.log.line(&format!("fatal: {err:#}; stopping"));
                            self.begin_stop(false);
                        }
                    }
                }
            }
            Event::Probe { endpoint, result } => self.on_probe(endpoint, result),
            Event::Resume => self.probe_paused_now(),
            Event::Stop { force } => self.begin_stop(force),
            Event::Landing(f) => {
                if let Err(err) = self.on_landing(f) {
                    self.log.line(&format!("fatal: {err:#}; stopping"));
                    self.begin_stop(false);
                }
            }
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

    /// One pass, unless dispatch is held and its next try is not due yet. A write the disk
    /// refuses holds dispatch (never stops the coordinator); any other failed state write is
    /// fatal: stop gracefully rather than guess.
    fn tick_or_hold(&mut self) -> (Option<Instant>, bool) {
        if !self.hold_due() {
            return (self.hold_wake(), true);
        }
        let result = self.retry_deferred_ends().and_then(|()| self.tick());
        match result {
            Ok(t) => {
                self.lift_hold();
                t
            }
            Err(e) => match hold::disk_fault(&e) {
                Some(why) => {
                    self.hold_dispatch(why);
                    (self.hold_wake(), true)
                }
                None => {
                    self.log.line(&format!("fatal: {e:#}; stopping"));
                    self.begin_stop(false);
                    (None, false)
                }
            },
        }
    }

    fn tick(&mut self) -> anyhow::Result<(Option<Instant>, bool)> {
        // Before anything is decided: this tick's dispatch runs on the settings just saved.
        let config_wake = self.check_config();
        let (wake, can_progress) = self.tick_graph()?;
        Ok((
            [wake, config_wake].into_iter().flatten().min(),
            can_progress,
        ))
    }

    fn tick_graph(&mut self) -> anyhow::Result<(Option<Instant>, bool)> {
        // The graph is taken out of `self` for the pass, so that the pass can both read it
        // and change the coordinator.
        let mut live = std::mem::take(&mut self.live);
        let result = self.pass(&mut live);
        self.live = live;
        result
    }

    /// Reads what changed in the graph and announces it. Every read goes through here: a
    /// change read is never read again, so it must be announced when it is read.
    fn refresh(&mut self, live: &mut live::LiveGraph) -> anyhow::Result<()> {
        let changes = live.refresh(&self.store)?;
        self.announce_changes(live, changes);
        Ok(())
    }

    fn pass(&mut self, live: &mut live::LiveGraph) -> anyhow::Result<(Option<Instant>, bool)> {
        self.refresh(live)?;

        // Agents whose task was removed, abandoned, paused or closed by a person are stopped
        // (the whole group). Who closed it is read from the task's log only for closed tasks.
        for (id, r) in self.agents.iter_mut().filter(|(_, r)| !r.stopping) {
            let status = live.graph.tasks.get(id).map(|t| t.status);
            let last_actor = status.filter(|s| s.is_terminal()).and_then(|_| {
                crate::store::tasklog::read(&self.layout.task_file(id, "log.jsonl"))
                    .ok()
                    .and_then(|log| log.into_iter().rev().find(|r| r.event == "status"))
                    .map(|r| r.actor)
            });
            // The coordinator's own decisions (exit codes, evaluations) are never a person's.
            let last_actor = last_actor.filter(|a| a != ACTOR && a != "evaluator");
            let last_actor = last_actor.as_deref().or(Some(r.record.agent_id.as_str()));
            if let Some(why) = scheduler::stop_for(status, last_actor, &r.record.agent_id) {
                r.stopping = true;
                let _ = r.control.send(Control::Stop(StopReason::Abandoned));
                self.log.line(&format!(
                    "stop agent={} task={id}: {why}",
                    r.record.agent_id
                ));
            }
        }

        // Worktrees of tasks that ended (also those that ended while no coordinator ran)
        // are settled before anything new starts, so a task waiting on one can go now.
        if self.cleanup_workspaces(live)? {
            self.refresh(live)?;
        }
        // Checks and the merge queue: also while stopping, a landing under way finishes.
        let landing_busy = self.advance_landing(&live.graph)?;

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

        let next_retry = self.reopen_due_retries(live)?;
        let (wake, can_progress) = self.dispatch(live, next_retry)?;
        Ok((wake, can_progress || landing_busy))
    }
}
