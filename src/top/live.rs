//! The live `wg top`: a terminal loop fed by key presses and file events. It reads the project
//! again only when a file it shows changed (inotify through the notify crate, at most every
//! [`MIN_RELOAD`]), and otherwise only redraws: once a second while agents run (their clocks
//! move), never while idle beyond a slow safety reload.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use notify::Watcher;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::model::{self, Snapshot};
use super::render::{self, Theme, View};
use crate::model::TaskStatus;
use crate::store::{Layout, Store};

/// Fastest re-read of the project while files keep changing.
const MIN_RELOAD: Duration = Duration::from_millis(150);
/// How often the clocks of running agents are redrawn.
const TICK: Duration = Duration::from_secs(1);
/// A reload even without file events: a coordinator that died leaves none.
const IDLE_RELOAD: Duration = Duration::from_secs(30);

enum Input {
    Key(KeyEvent),
    Resize,
    Files,
}

/// What a key press asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Nothing,
    Redraw,
    Quit,
    /// Re-read the selected task's transcript (it was just opened).
    OpenTranscript,
    Send {
        id: String,
        text: String,
    },
    Retry {
        id: String,
    },
    /// Stop the task's agent and keep the task (`wg pause`).
    Pause {
        id: String,
    },
    /// Make a paused task ready again (`wg resume`).
    Resume {
        id: String,
    },
    /// Probe the paused endpoints now (`wg service resume`).
    ProbeEndpoints,
}

/// An action on a task, as the `wg` command line that performs it: the TUI runs the same
/// commands a person would, so their checks and messages are the same.
pub fn action_args(o: &Outcome) -> Option<Vec<String>> {
    match o {
        Outcome::Send { id, text } => Some(vec!["msg".into(), id.clone(), text.clone()]),
        Outcome::Retry { id } => Some(vec!["retry".into(), id.clone()]),
        Outcome::Pause { id } => Some(vec!["pause".into(), id.clone()]),
        Outcome::Resume { id } => Some(vec!["resume".into(), id.clone()]),
        Outcome::ProbeEndpoints => Some(vec!["service".into(), "resume".into()]),
        _ => None,
    }
}

/// Applies a key press to the view. Pure: actions are returned, not performed.
pub fn on_key(view: &mut View, snap: &Snapshot, key: KeyEvent) -> Outcome {
    if key.kind == KeyEventKind::Release {
        return Outcome::Nothing;
    }
    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
    if let Some(input) = &mut view.input {
        return match key.code {
            _ if ctrl_c => {
                view.input = None;
                Outcome::Redraw
            }
            KeyCode::Esc => {
                view.input = None;
                Outcome::Redraw
            }
            KeyCode::Enter => {
                let text = std::mem::take(input);
                view.input = None;
                match snap.tasks.get(view.selected) {
                    Some(row) if !text.trim().is_empty() => Outcome::Send {
                        id: row.id.clone(),
                        text,
                    },
                    _ => Outcome::Redraw,
                }
            }
            KeyCode::Backspace => {
                input.pop();
                Outcome::Redraw
            }
            KeyCode::Char(c) => {
                input.push(c);
                Outcome::Redraw
            }
            _ => Outcome::Nothing,
        };
    }
    let last = snap.tasks.len().saturating_sub(1);
    let selected_id = snap.tasks.get(view.selected).map(|r| r.id.clone());
    match key.code {
        _ if ctrl_c => Outcome::Quit,
        KeyCode::Char('q') => Outcome::Quit,
        KeyCode::Esc if view.transcript.is_some() => {
            view.transcript = None;
            Outcome::Redraw
        }
        KeyCode::Esc => Outcome::Quit,
        KeyCode::Up | KeyCode::Char('k') => {
            view.selected = view.selected.saturating_sub(1);
            moved(view)
        }
        KeyCode::Down | KeyCode::Char('j') => {
            view.selected = (view.selected + 1).min(last);
            moved(view)
        }
        KeyCode::PageUp => {
            view.selected = view.selected.saturating_sub(10);
            moved(view)
        }
        KeyCode::PageDown => {
            view.selected = (view.selected + 10).min(last);
            moved(view)
        }
        KeyCode::Home | KeyCode::Char('g') => {
            view.selected = 0;
            moved(view)
        }
        KeyCode::End | KeyCode::Char('G') => {
            view.selected = last;
            moved(view)
        }
        KeyCode::Enter | KeyCode::Char('t') if selected_id.is_some() => {
            if view.transcript.is_some() {
                view.transcript = None;
                Outcome::Redraw
            } else {
                Outcome::OpenTranscript
            }
        }
        KeyCode::Char('m') if selected_id.is_some() => {
            view.input = Some(String::new());
            view.notice = None;
            Outcome::Redraw
        }
        // One key both ways, like a player's pause: the footer names what it will do. A task
        // that cannot be paused (done, failed) gets `wg pause`'s own refusal in the footer.
        KeyCode::Char('p') => match snap.tasks.get(view.selected) {
            Some(row) if row.status == TaskStatus::Paused => Outcome::Resume { id: row.id.clone() },
            Some(row) => Outcome::Pause { id: row.id.clone() },
            None => Outcome::Nothing,
        },
        KeyCode::Char('P') if !snap.paused.is_empty() => Outcome::ProbeEndpoints,
        KeyCode::Char('r') => match selected_id {
            Some(id) => Outcome::Retry { id },
            None => Outcome::Nothing,
        },
        _ => Outcome::Nothing,
    }
}

fn moved(view: &mut View) -> Outcome {
    if view.transcript.is_some() {
        Outcome::OpenTranscript
    } else {
        Outcome::Redraw
    }
}

/// Files whose changes `wg top` does not show: agent output, locks, temporary files.
fn ignored(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    matches!(
        name,
        "agent.log" | "handler.log" | "turn.lock" | "graph.lock" | "graph.idx" | "coordinator.log"
    ) || name.starts_with(".tmp-")
}

/// Whether a file event calls for a re-read. Opening or reading a file raises inotify events
/// too: without this filter every read (the coordinator's poll of `graph.jsonl`, and wg top's
/// own reload) woke the view again, so it re-read the project several times a second forever.
pub(crate) fn wakes(ev: &notify::Event) -> bool {
    !matches!(ev.kind, notify::EventKind::Access(_))
        && (ev.paths.is_empty() || ev.paths.iter().any(|p| !ignored(p)))
}

/// The folders to watch: the store, the service folder, the task folders of running agents
/// and of the selected task. Non-recursive: a project with 10,000 tasks costs a handful of
/// watches, not 10,000.
fn wanted_watches(layout: &Layout, snap: &Snapshot, view: &View) -> BTreeSet<PathBuf> {
    let mut set: BTreeSet<PathBuf> = [
        layout.dir().to_path_buf(),
        layout.service_dir(),
        layout.tasks_dir(),
    ]
    .into_iter()
    .collect();
    for row in &snap.tasks {
        if row.agent.is_some() {
            set.insert(layout.task_dir(&row.id));
        }
    }
    if let Some(row) = snap.tasks.get(view.selected) {
        set.insert(layout.task_dir(&row.id));
    }
    set
}

struct Live<'a> {
    layout: &'a Layout,
    store: &'a Store,
    exe: PathBuf,
    theme: Theme,
    snap: Snapshot,
    view: View,
    watcher: notify::RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
}

impl Live<'_> {
    fn reload(&mut self) {
        let selected_id = self
            .snap
            .tasks
            .get(self.view.selected)
            .map(|r| r.id.clone());
        match model::load(self.layout, self.store) {
            Ok(s) => {
                self.snap = s;
                if self
                    .view
                    .notice
                    .as_deref()
                    .is_some_and(|n| n.starts_with("cannot read"))
                {
                    self.view.notice = None;
                }
            }
            Err(e) => self.view.notice = Some(format!("cannot read the project: {e}")),
        }
        // Keep the same task selected while rows move between statuses.
        if let Some(id) = selected_id {
            if let Some(i) = self.snap.tasks.iter().position(|r| r.id == id) {
                self.view.selected = i;
            }
        }
        self.view.selected = self
            .view
            .selected
            .min(self.snap.tasks.len().saturating_sub(1));
        if self.view.transcript.is_some() {
            self.load_transcript();
        }
        self.rewatch();
    }

    fn load_transcript(&mut self) {
        self.view.transcript = self
            .snap
            .tasks
            .get(self.view.selected)
            .map(|r| model::transcript(self.layout, &r.id));
    }

    fn rewatch(&mut self) {
        let want = wanted_watches(self.layout, &self.snap, &self.view);
        for gone in self.watched.difference(&want) {
            let _ = self.watcher.unwatch(gone);
        }
        let mut now = BTreeSet::new();
        for p in &want {
            if self.watched.contains(p)
                || self
                    .watcher
                    .watch(p, notify::RecursiveMode::NonRecursive)
                    .is_ok()
            {
                now.insert(p.clone());
            }
        }
        self.watched = now;
    }

    /// Runs `wg ARGS` for an action and puts its answer in the footer.
    fn perform(&mut self, args: Vec<String>) {
        let out = std::process::Command::new(&self.exe)
            .arg("--dir")
            .arg(self.layout.dir())
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output();
        self.view.notice = Some(match out {
            Ok(o) => {
                let text = if o.status.success() {
                    &o.stdout
                } else {
                    &o.stderr
                };
                let text = String::from_utf8_lossy(text);
                let first = text.lines().next().unwrap_or("").trim().to_string();
                if o.status.success() && first.is_empty() {
                    format!("wg {}: ok", args[0])
                } else {
                    first
                }
            }
            Err(e) => format!("cannot run wg {}: {e}", args[0]),
        });
    }
}

/// Runs the live view until the person quits.
pub fn run(layout: &Layout, store: &Store, theme: Theme) -> anyhow::Result<()> {
    let snap = model::load(layout, store)?;
    let (tx, rx) = mpsc::channel::<Input>();
    let ftx = tx.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|ev| wakes(&ev)) {
            let _ = ftx.send(Input::Files);
        }
    })?;
    let mut live = Live {
        layout,
        store,
        exe: std::env::current_exe()?,
        theme,
        snap,
        view: View::default(),
        watcher,
        watched: BTreeSet::new(),
    };
    live.rewatch();
    let mut terminal = ratatui::try_init()?;
    // Key presses come from a thread of their own, so one channel carries everything.
    std::thread::spawn(move || loop {
        let input = match event::read() {
            Ok(Event::Key(k)) => Input::Key(k),
            Ok(Event::Resize(..)) => Input::Resize,
            Ok(_) => continue,
            Err(_) => break,
        };
        if tx.send(input).is_err() {
            break;
        }
    });
    let result = event_loop(&mut live, &mut terminal, &rx);
    ratatui::restore();
    result
}

fn event_loop(
    live: &mut Live<'_>,
    terminal: &mut ratatui::DefaultTerminal,
    rx: &mpsc::Receiver<Input>,
) -> anyhow::Result<()> {
    let mut last_load = Instant::now();
    let mut dirty = false;
    let mut redraw = true;
    loop {
        if dirty && last_load.elapsed() >= MIN_RELOAD {
            live.reload();
            last_load = Instant::now();
            dirty = false;
            redraw = true;
        }
        if redraw {
            let mut rows_fit = 0;
            terminal.draw(|f| rows_fit = render::draw(f, &live.snap, &live.view, live.theme))?;
            let offset = render::scroll_offset(live.view.selected, live.view.offset, rows_fit);
            if offset != live.view.offset {
                live.view.offset = offset;
                continue;
            }
            redraw = false;
        }
        let agents = live.snap.totals.agents > 0;
        let timeout = if dirty {
            MIN_RELOAD.saturating_sub(last_load.elapsed())
        } else if agents {
            TICK
        } else {
            IDLE_RELOAD
        };
        match rx.recv_timeout(timeout) {
            Ok(Input::Files) => dirty = true,
            Ok(Input::Resize) => redraw = true,
            Ok(Input::Key(k)) => {
                let outcome = on_key(&mut live.view, &live.snap, k);
                match &outcome {
                    Outcome::Quit => return Ok(()),
                    Outcome::Nothing => {}
                    Outcome::Redraw => redraw = true,
                    Outcome::OpenTranscript => {
                        live.load_transcript();
                        live.rewatch();
                        redraw = true;
                    }
                    Outcome::Send { .. }
                    | Outcome::Retry { .. }
                    | Outcome::Pause { .. }
                    | Outcome::Resume { .. }
                    | Outcome::ProbeEndpoints => {
                        if let Some(args) = action_args(&outcome) {
                            live.perform(args);
                        }
                        dirty = true;
                        redraw = true;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if dirty => {}
            Err(mpsc::RecvTimeoutError::Timeout) if agents => {
                // Only the clocks moved: no re-read (but now and then one, as when idle).
                live.snap.taken_at = SystemTime::now();
                redraw = true;
                dirty = last_load.elapsed() >= IDLE_RELOAD;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => dirty = true,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// Colour unless `NO_COLOR` is set to something (no-color.org).
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::model::{Coordinator, TaskRow, Totals};

    fn snap(ids: &[&str]) -> Snapshot {
        Snapshot {
            taken_at: SystemTime::UNIX_EPOCH,
            project: String::new(),
            coordinator: Coordinator::NotRunning,
            tasks: ids
                .iter()
                .map(|id| TaskRow {
                    id: id.to_string(),
                    title: id.to_string(),
                    status: TaskStatus::Failed,
                    ready: false,
                    reason: None,
                    updated: String::new(),
                    agent: None,
                    after: Vec::new(),
                    awaiting_evaluation: false,
                })
                .collect(),
            paused: Vec::new(),
            held: None,
            queue: Vec::new(),
            totals: Totals::default(),
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn typing_a_message_sends_it_to_the_selected_task() {
        let s = snap(&["a", "b"]);
        let mut v = View::default();
        assert_eq!(on_key(&mut v, &s, key(KeyCode::Down)), Outcome::Redraw);
        assert_eq!(on_key(&mut v, &s, key(KeyCode::Char('m'))), Outcome::Redraw);
        for c in "hi q".chars() {
            on_key(&mut v, &s, key(KeyCode::Char(c)));
        }
        on_key(&mut v, &s, key(KeyCode::Backspace));
        let sent = on_key(&mut v, &s, key(KeyCode::Enter));
        assert_eq!(
            sent,
            Outcome::Send {
                id: "b".into(),
                text: "hi ".into()
            }
        );
        assert_eq!(v.input, None);
        assert_eq!(
            action_args(&sent).unwrap(),
            ["msg", "b", "hi "].map(String::from)
        );
    }

    #[test]
    fn esc_cancels_a_message_and_empty_ones_are_not_sent() {
        let s = snap(&["a"]);
        let mut v = View::default();
        on_key(&mut v, &s, key(KeyCode::Char('m')));
        on_key(&mut v, &s, key(KeyCode::Char('x')));
        assert_eq!(on_key(&mut v, &s, key(KeyCode::Esc)), Outcome::Redraw);
        assert_eq!(v.input, None);
        on_key(&mut v, &s, key(KeyCode::Char('m')));
        assert_eq!(on_key(&mut v, &s, key(KeyCode::Enter)), Outcome::Redraw);
    }

    #[test]
    fn keys_select_open_retry_and_quit() {
        let s = snap(&["a", "b", "c"]);
        let mut v = View::default();
        on_key(&mut v, &s, key(KeyCode::End));
        assert_eq!(v.selected, 2);
        on_key(&mut v, &s, key(KeyCode::Down));
        assert_eq!(v.selected, 2, "stays on the last row");
        assert_eq!(
            on_key(&mut v, &s, key(KeyCode::Char('r'))),
            Outcome::Retry { id: "c".into() }
        );
        assert_eq!(
            on_key(&mut v, &s, key(KeyCode::Enter)),
            Outcome::OpenTranscript
        );
        v.transcript = Some(Vec::new());
        assert_eq!(
            on_key(&mut v, &s, key(KeyCode::Up)),
            Outcome::OpenTranscript
        );
        assert_eq!(on_key(&mut v, &s, key(KeyCode::Esc)), Outcome::Redraw);
        assert_eq!(v.transcript, None);
        assert_eq!(on_key(&mut v, &s, key(KeyCode::Char('q'))), Outcome::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(on_key(&mut v, &s, ctrl_c), Outcome::Quit);
        // Nothing to act on in an empty project.
        let empty = snap(&[]);
        assert_eq!(
            on_key(&mut v, &empty, key(KeyCode::Char('m'))),
            Outcome::Nothing
        );
        assert_eq!(
            on_key(&mut v, &empty, key(KeyCode::Char('r'))),
            Outcome::Nothing
        );
    }

    #[test]
    fn p_pauses_the_selected_task_and_resumes_a_paused_one() {
        let mut s = snap(&["a", "b"]);
        s.tasks[1].status = TaskStatus::Paused;
        let mut v = View::default();
        let pause = on_key(&mut v, &s, key(KeyCode::Char('p')));
        assert_eq!(pause, Outcome::Pause { id: "a".into() });
        assert_eq!(
            action_args(&pause).unwrap(),
            ["pause", "a"].map(String::from)
        );
        on_key(&mut v, &s, key(KeyCode::Down));
        let resume = on_key(&mut v, &s, key(KeyCode::Char('p')));
        assert_eq!(resume, Outcome::Resume { id: "b".into() });
        assert_eq!(
            action_args(&resume).unwrap(),
            ["resume", "b"].map(String::from)
        );
        assert_eq!(
            on_key(&mut v, &snap(&[]), key(KeyCode::Char('p'))),
            Outcome::Nothing
        );
        // Probing endpoints is `P`, and only when some are paused.
        assert_eq!(
            on_key(&mut v, &s, key(KeyCode::Char('P'))),
            Outcome::Nothing
        );
        s.paused.push(crate::top::model::PausedEndpoint {
            endpoint: "http://gpu:8000/v1".into(),
            reason: "429".into(),
            until: None,
        });
        let probe = on_key(&mut v, &s, key(KeyCode::Char('P')));
        assert_eq!(probe, Outcome::ProbeEndpoints);
        assert_eq!(
            action_args(&probe).unwrap(),
            ["service", "resume"].map(String::from)
        );
    }

    #[test]
    fn reads_do_not_wake_the_view_changes_do() {
        use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind};
        use notify::{Event, EventKind};
        let at = |kind: EventKind, path: &str| Event::new(kind).add_path(PathBuf::from(path));
        let graph = "/p/.wg/graph.jsonl";
        for read in [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
        ] {
            assert!(!wakes(&at(EventKind::Access(read), graph)), "{read:?}");
        }
        let append = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(wakes(&at(append, "/p/.wg/tasks/a/events.jsonl")));
        assert!(wakes(&at(EventKind::Create(CreateKind::File), graph)));
        assert!(!wakes(&at(append, "/p/.wg/tasks/a/agent.log")));
    }

    #[test]
    fn agent_output_and_locks_do_not_wake_the_view() {
        assert!(ignored(Path::new("/p/.wg/tasks/a/agent.log")));
        assert!(ignored(Path::new("/p/.wg/.tmp-123")));
        assert!(!ignored(Path::new("/p/.wg/tasks/a/events.jsonl")));
        assert!(!ignored(Path::new("/p/.wg/graph.jsonl")));
    }
}
