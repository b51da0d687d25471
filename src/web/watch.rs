//! Keeps each project's snapshot current and tells the pages when it changed: inotify (the
//! notify crate) on the same folders `wg top` watches (the store, the service folder, the
//! task folders of running agents) plus the folders of tasks a page is open on, with the same
//! filter (reads, agent output and locks do not wake it). A burst of changes is one re-read
//! after [`MIN_RELOAD`]; nothing changes, nothing runs but a re-read every [`IDLE_RELOAD`]
//! (a coordinator that dies leaves no file event).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;

use super::State;
use crate::top::live::wakes;

const MIN_RELOAD: Duration = Duration::from_millis(150);
const IDLE_RELOAD: Duration = Duration::from_secs(30);

/// Why the watcher thread wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A file of project `n` changed.
    Files(usize),
    /// A page opened or closed a task: the watched folders change.
    Views,
    /// The server is stopping.
    Stop,
}

/// The folders to watch for every project (non-recursive: a handful per project however many
/// tasks it has).
fn wanted(state: &State) -> BTreeSet<(usize, PathBuf)> {
    let mut set = BTreeSet::new();
    let viewed = state.viewed.lock().expect("viewed lock").clone();
    for (i, p) in state.projects.iter().enumerate() {
        let l = &p.layout;
        for d in [l.dir().to_path_buf(), l.service_dir(), l.tasks_dir()] {
            set.insert((i, d));
        }
        for row in &p.snapshot().tasks {
            if row.agent.is_some() {
                set.insert((i, l.task_dir(&row.id)));
            }
        }
        for (vp, id) in viewed.keys() {
            if *vp == i {
                set.insert((i, l.task_dir(id)));
            }
        }
    }
    set
}

/// Runs until [`Wake::Stop`]: re-reads what changed, bumps the version the pages follow.
pub fn run(state: Arc<State>, tx: Sender<Wake>, rx: Receiver<Wake>) {
    let dirs: Vec<PathBuf> = state
        .projects
        .iter()
        .map(|p| p.layout.dir().to_path_buf())
        .collect();
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if !wakes(&ev) {
            return;
        }
        for (i, d) in dirs.iter().enumerate() {
            if ev.paths.is_empty() || ev.paths.iter().any(|p| p.starts_with(d)) {
                let _ = tx.send(Wake::Files(i));
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            crate::output::stderr(&format!(
                "wg web: cannot watch files ({e}); pages update every 30 s\n"
            ));
            return idle_only(state, rx);
        }
    };
    let mut watched: BTreeSet<(usize, PathBuf)> = BTreeSet::new();
    loop {
        rewatch(&state, &mut watcher, &mut watched);
        let mut changed = BTreeSet::new();
        match rx.recv_timeout(IDLE_RELOAD) {
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Wake::Files(i)) => {
                changed.insert(i);
            }
            Ok(Wake::Views) => continue,
            Err(RecvTimeoutError::Timeout) => changed.extend(0..state.projects.len()),
        }
        std::thread::sleep(MIN_RELOAD);
        for w in rx.try_iter() {
            match w {
                Wake::Stop => return,
                Wake::Files(i) => {
                    changed.insert(i);
                }
                Wake::Views => {}
            }
        }
        for i in changed {
            state.projects[i].reload();
        }
        state.version.send_modify(|v| *v += 1);
    }
}

fn rewatch(
    state: &State,
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut BTreeSet<(usize, PathBuf)>,
) {
    let want = wanted(state);
    for gone in watched.difference(&want) {
        let _ = watcher.unwatch(&gone.1);
    }
    for new in want.difference(watched) {
        // A task folder not created yet is watched once it exists (its task's next change).
        let _ = watcher.watch(&new.1, notify::RecursiveMode::NonRecursive);
    }
    *watched = want;
}

/// Without inotify: a re-read every [`IDLE_RELOAD`].
fn idle_only(state: Arc<State>, rx: Receiver<Wake>) {
    loop {
        match rx.recv_timeout(IDLE_RELOAD) {
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            _ => {}
        }
        for p in &state.projects {
            p.reload();
        }
        state.version.send_modify(|v| *v += 1);
    }
}
