//! `wg web`: the board in a browser, served by `wg` itself. It reads the same snapshot as
//! `wg top` ([`crate::top::model`]), keeps it current with the same file watching
//! ([`watch`]), pushes "something changed" to open pages as server-sent events, and performs
//! actions by running the same `wg` commands a person types ([`action`]). Pages are HTML built
//! on the server ([`page`], [`graph`]); the stylesheet and the one small script are compiled
//! in. Access needs the token printed at start ([`auth`]).

pub mod action;
pub mod auth;
pub mod graph;
pub mod page;
mod server;
pub mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, RwLock};

use crate::store::{Layout, Store};
use crate::top::model::{self, Snapshot};

/// One project on the board.
pub struct Project {
    pub name: String,
    pub layout: Layout,
    pub store: Store,
    snap: RwLock<Arc<Snapshot>>,
}

impl Project {
    pub fn open(layout: Layout, store: Store) -> Result<Project, model::LoadError> {
        let snap = model::load(&layout, &store)?;
        let name = layout
            .project_root()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| layout.project_root().display().to_string());
        Ok(Project {
            name,
            layout,
            store,
            snap: RwLock::new(Arc::new(snap)),
        })
    }

    /// The latest snapshot (re-read by the watcher, never by a request).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snap.read().expect("snapshot lock").clone()
    }

    /// Reads the project again; a failed read keeps the last snapshot (a store being
    /// rewritten is read again on its next change).
    pub fn reload(&self) {
        if let Ok(s) = model::load(&self.layout, &self.store) {
            *self.snap.write().expect("snapshot lock") = Arc::new(s);
        }
    }
}

/// Everything the server shares between requests.
pub struct State {
    pub projects: Vec<Project>,
    sessions: Mutex<auth::Sessions>,
    /// Bumped after every re-read; each open page's event stream follows it.
    version: tokio::sync::watch::Sender<u64>,
    /// Tasks open in a page, with how many pages: their folders are watched too.
    viewed: Mutex<BTreeMap<(usize, String), usize>>,
    wake: Mutex<mpsc::Sender<watch::Wake>>,
    /// The `wg` binary that performs actions.
    exe: PathBuf,
}

pub struct Options {
    pub projects: Vec<Project>,
    pub bind: SocketAddr,
    /// The access token; a random one when `None`.
    pub token: Option<String>,
}

/// A server that is listening.
pub struct Running {
    pub addr: SocketAddr,
    pub token: String,
    thread: std::thread::JoinHandle<()>,
    watcher: std::thread::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    wake: mpsc::Sender<watch::Wake>,
}

impl Running {
    /// Serves until the process ends.
    pub fn wait(self) {
        let _ = self.thread.join();
    }

    /// Stops serving (open event streams end) and the watcher.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.wake.send(watch::Wake::Stop);
        let _ = self.thread.join();
        let _ = self.watcher.join();
    }
}

/// Binds, then serves on threads of its own (a small runtime for HTTP, one thread for file
/// watching), so the command line and the coordinator can both start it.
pub fn start(opts: Options) -> anyhow::Result<Running> {
    let listener = std::net::TcpListener::bind(opts.bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.bind))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let token = opts.token.unwrap_or_else(|| auth::random_hex(16));
    let (wake_tx, wake_rx) = mpsc::channel();
    let state = Arc::new(State {
        projects: opts.projects,
        sessions: Mutex::new(auth::Sessions::new(token.clone())),
        version: tokio::sync::watch::Sender::new(0),
        viewed: Mutex::new(BTreeMap::new()),
        wake: Mutex::new(wake_tx.clone()),
        exe: std::env::current_exe()?,
    });
    let watch_state = state.clone();
    let watch_tx = wake_tx.clone();
    let watcher = std::thread::Builder::new()
        .name("wg-web-watch".into())
        .spawn(move || watch::run(watch_state, watch_tx, wake_rx))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("wg-web")
        .enable_all()
        .build()?;
    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("wg-web".into())
        .spawn(move || {
            runtime.block_on(server::accept_loop(listener, state, stop_rx));
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        })?;
    Ok(Running {
        addr,
        token,
        thread,
        watcher,
        stop,
        wake: wake_tx,
    })
}

/// Whether binding `addr` exposes the board beyond this machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Where the coordinator's board is: `.wg/service/web.json`, readable by its owner only
/// (it holds the access token), removed when the coordinator stops.
pub fn coordinator_file(layout: &Layout) -> PathBuf {
    layout.service_dir().join("web.json")
}

/// The board `wg service start` serves while its coordinator runs (`[web] enabled`), started
/// once the coordinator holds its lock: its address and token go to [`coordinator_file`];
/// stderr gets the address only. Dropping the guard stops it and removes the file.
pub fn start_for_coordinator(
    layout: &Layout,
    config: &crate::config::Config,
) -> anyhow::Result<CoordinatorBoard> {
    let bind = config.web.addr().map_err(anyhow::Error::msg)?;
    let project = Project::open(layout.clone(), Store::new(layout.clone()))?;
    let running = start(Options {
        projects: vec![project],
        bind,
        token: None,
    })?;
    let body = serde_json::json!({
        "url": format!("http://{}/", running.addr),
        "token": running.token,
    });
    let path = coordinator_file(layout);
    let mut bytes = serde_json::to_vec_pretty(&body)?;
    bytes.push(b'\n');
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&bytes)?;
    }
    crate::output::stderr(&format!(
        "wg web: http://{}/ (access token in {})\n",
        running.addr,
        path.display()
    ));
    Ok(CoordinatorBoard {
        running: Some(running),
        file: path,
    })
}

/// The coordinator's board: stopped, and its file removed, when dropped.
pub struct CoordinatorBoard {
    running: Option<Running>,
    file: PathBuf,
}

impl Drop for CoordinatorBoard {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
        let _ = std::fs::remove_file(&self.file);
    }
}
