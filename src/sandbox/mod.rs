//! The box around an agent: bubblewrap (`bwrap`) with the system read-only, the task's
//! workspace writable, a private `/tmp` and `HOME`, `.wg/` read-only, its own PID namespace
//! (ending the box ends every process in it) and no network but its own loopback. The
//! credential proxy is reached through a relay (`relay.rs`), and `wg` commands through the
//! broker (`broker.rs`). See docs/sandbox.md.
//!
//! This file is pure: the settings and the `bwrap` command line. `probe` is the one check that
//! runs something.

pub mod broker;
pub mod init;
pub mod relay;

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::model::Task;

/// Whether an agent runs boxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bwrap,
    /// `sandbox = "none"`: the agent runs with the user's full rights (an explicit opt-out).
    None,
}

/// The network the box has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Loopback only (the proxy is relayed in).
    Loopback,
    /// `network = "open"`: the host's network (still keyless).
    Open,
}

/// How one task's agent is boxed: its own `sandbox`/`network` fields win over its executor's
/// `[executors.NAME]` keys; the default is boxed with loopback only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub mode: Mode,
    pub network: Network,
}

impl Setting {
    pub fn for_task(task: &Task, executor: &str, config: &Config) -> Result<Setting, String> {
        let table = config.executors.get(executor);
        let pick = |key: &str| -> Option<(String, String)> {
            if let Some(v) = task.extra.get(key).and_then(|v| v.as_str()) {
                return Some((v.to_string(), format!("task `{}` field {key}", task.id)));
            }
            table
                .and_then(|t| match key {
                    "sandbox" => t.sandbox.clone(),
                    _ => t.network.clone(),
                })
                .map(|v| (v, format!("executors.{executor}.{key}")))
        };
        let mode = match pick("sandbox") {
            None => Mode::Bwrap,
            Some((v, _)) if v == "bwrap" => Mode::Bwrap,
            Some((v, _)) if v == "none" => Mode::None,
            Some((v, at)) => return Err(format!("{at} = {v:?}: use \"bwrap\" or \"none\"")),
        };
        let network = match pick("network") {
            None => Network::Loopback,
            Some((v, _)) if v == "loopback" => Network::Loopback,
            Some((v, _)) if v == "open" => Network::Open,
            Some((v, at)) => return Err(format!("{at} = {v:?}: use \"loopback\" or \"open\"")),
        };
        Ok(Setting { mode, network })
    }

    /// How `wg show`, `wg top` and `wg doctor` say it.
    pub fn label(&self) -> &'static str {
        match (self.mode, self.network) {
            (Mode::None, _) => "none (unboxed)",
            (Mode::Bwrap, Network::Loopback) => "bwrap",
            (Mode::Bwrap, Network::Open) => "bwrap, network open",
        }
    }
}

/// The executors whose agents run boxed today: those `wg handler` runs. The coordinator's own
/// executors (shell, mock, a custom command) do not yet.
pub const BOXED_EXECUTORS: [&str; 2] = ["codex", "claude"];

/// How task `task`'s agent runs, as `wg show`, `wg top` and `wg doctor` say it.
pub fn describe(task: &Task, config: &Config) -> String {
    let executor = task.executor.as_deref().unwrap_or(&config.executor);
    if !BOXED_EXECUTORS.contains(&executor) {
        return format!("none (the {executor} executor runs unboxed)");
    }
    match Setting::for_task(task, executor, config) {
        Ok(s) => s.label().to_string(),
        Err(e) => format!("invalid: {e}"),
    }
}

/// What one box shows its agent.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The task's workspace (its worktree, or the shared project root): writable.
    pub workdir: PathBuf,
    /// `.wg/`: readable, never writable.
    pub wg_dir: PathBuf,
    /// The agent CLI's own state (CODEX_HOME, claude's config dir): writable.
    pub writable: Vec<PathBuf>,
    /// Directories holding the programs run (wg, the agent CLI), shown read-only even when
    /// they lie under the hidden HOME.
    pub programs: Vec<PathBuf>,
    /// The user's files shown read-only in the private HOME (git's configuration: without
    /// it an agent cannot commit).
    pub home_files: Vec<PathBuf>,
    /// This turn's relay and broker sockets (read-only: connecting needs no write).
    pub runtime: PathBuf,
    /// The HOME replaced by an empty private one.
    pub home: Option<PathBuf>,
    pub network: Network,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The files of `home` an agent sees (read-only) in its private HOME, those that exist.
pub fn home_files(home: &Path) -> Vec<PathBuf> {
    [".gitconfig", ".config/git"]
        .iter()
        .map(|f| home.join(f))
        .filter(|p| p.exists())
        .collect()
}

/// The `bwrap` arguments before the command. Later mounts go over earlier ones, so the order
/// is: the system, the private places, the programs, the workspace and `.wg/` (read-only),
/// then the agent's own state and the sockets.
pub fn bwrap_args(p: &Plan) -> Vec<String> {
    let mut a: Vec<String> = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        .map(String::from)
        .to_vec();
    a.extend(["--tmpfs".into(), "/tmp".into()]);
    if let Some(h) = &p.home {
        if h != Path::new("/") {
            a.extend(["--tmpfs".into(), s(h)]);
        }
    }
    let mut bind = |how: &str, path: &Path| a.extend([how.into(), s(path), s(path)]);
    for d in p.programs.iter().chain(&p.home_files) {
        bind("--ro-bind", d);
    }
    // The outer of the two first: a worktree under `.wg/worktrees/` stays writable inside
    // the read-only `.wg/`, and a shared root's `.wg/` read-only inside the writable root.
    if p.workdir.starts_with(&p.wg_dir) {
        bind("--ro-bind", &p.wg_dir);
        bind("--bind", &p.workdir);
    } else {
        bind("--bind", &p.workdir);
        bind("--ro-bind", &p.wg_dir);
    }
    for d in &p.writable {
        bind("--bind", d);
    }
    bind("--ro-bind", &p.runtime);
    a.extend(
        [
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
            "--new-session",
        ]
        .map(String::from),
    );
    if p.network == Network::Loopback {
        a.push("--unshare-net".into());
    }
    a.extend(["--chdir".into(), s(&p.workdir)]);
    a
}

/// `bwrap` on PATH, checked to build a box here (user namespaces allowed, mounts work).
/// The error says what to do.
pub fn probe(path_env: &str) -> Result<PathBuf, String> {
    let bwrap = std::env::split_paths(path_env)
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "bubblewrap (`bwrap`) is not installed; install it (Debian: `apt-get install bubblewrap`, \
             or scripts/install-tools.sh), or opt out with sandbox = \"none\""
                .to_string()
        })?;
    let out = std::process::Command::new(&bwrap)
        .args(["--ro-bind", "/", "/", "--unshare-pid", "--unshare-net"])
        .args(["--die-with-parent", "true"])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bwrap.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot build a sandbox here: {}; allow unprivileged user namespaces \
             (sysctl kernel.unprivileged_userns_clone=1, or user.max_user_namespaces > 0), \
             or opt out with sandbox = \"none\"",
            bwrap.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(bwrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            workdir: "/p".into(),
            wg_dir: "/p/.wg".into(),
            writable: vec!["/p/.wg/codex-home".into()],
            programs: vec!["/home/u/bin".into()],
            home_files: vec![],
            runtime: "/tmp/wg-turn-1".into(),
            home: Some("/home/u".into()),
            network: Network::Loopback,
        }
    }

    fn pos(a: &[String], w: &[&str]) -> usize {
        a.windows(w.len())
            .position(|x| x == w)
            .unwrap_or_else(|| panic!("{w:?} not in {a:?}"))
    }

    #[test]
    fn wg_dir_is_read_only_over_the_workspace_and_state_writable_over_it() {
        let a = bwrap_args(&plan());
        let work = pos(&a, &["--bind", "/p", "/p"]);
        let wg = pos(&a, &["--ro-bind", "/p/.wg", "/p/.wg"]);
        let state = pos(&a, &["--bind", "/p/.wg/codex-home", "/p/.wg/codex-home"]);
        let home = pos(&a, &["--tmpfs", "/home/u"]);
        let prog = pos(&a, &["--ro-bind", "/home/u/bin", "/home/u/bin"]);
        assert!(home < prog && prog < work && work < wg && wg < state);
        assert!(a.contains(&"--unshare-pid".to_string()));
        assert!(a.contains(&"--die-with-parent".to_string()));
        assert!(a.contains(&"--unshare-net".to_string()));
        let mut worktree = plan();
        worktree.workdir = "/p/.wg/worktrees/a".into();
        let a = bwrap_args(&worktree);
        let wg = pos(&a, &["--ro-bind", "/p/.wg", "/p/.wg"]);
        assert!(wg < pos(&a, &["--bind", "/p/.wg/worktrees/a", "/p/.wg/worktrees/a"]));
        let mut open = plan();
        open.network = Network::Open;
        assert!(!bwrap_args(&open).contains(&"--unshare-net".to_string()));
    }

    #[test]
    fn settings_come_from_the_task_then_the_executor() {
        let config = Config::parse(
            "[executors.shell]\nsandbox = \"none\"\n[executors.codex]\nnetwork = \"open\"\n",
        )
        .unwrap();
        let mut t = Task::new("t".into(), "T".into(), "now");
        let get = |t: &Task, x: &str| Setting::for_task(t, x, &config).unwrap();
        assert_eq!(get(&t, "shell").mode, Mode::None);
        assert_eq!(get(&t, "codex").network, Network::Open);
        assert_eq!(get(&t, "claude").label(), "bwrap");
        t.extra.insert("sandbox".into(), "none".into());
        assert_eq!(get(&t, "claude").mode, Mode::None);
        t.extra.insert("sandbox".into(), "maybe".into());
        assert!(Setting::for_task(&t, "claude", &config).is_err());
    }
}
