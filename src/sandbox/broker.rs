//! The broker: how a boxed agent's `wg` commands reach its handler. `.wg/` is read-only in
//! the box, so `wg done` there cannot write; instead (`WG_BROKER` set) it sends its command
//! line and the turn's token over a Unix socket made for that turn, and the handler runs it
//! as that agent: identity comes from the channel (the handler's own task and agent id),
//! never from the agent's environment. A wrong or old token is refused, and so is any
//! command that is not an agent's, or that names another task's status.
//!
//! Protocol: one JSON line each way. `{"token","args","cwd"}` in; `{"code","stdout","stderr"}`
//! out.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The socket's path inside the box.
pub const SOCKET_ENV: &str = "WG_BROKER";
/// The turn's token.
pub const TOKEN_ENV: &str = "WG_BROKER_TOKEN";

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub token: String,
    pub args: Vec<String>,
    pub cwd: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The commands an agent may run, and whether their first argument must be its own task.
const AGENT_COMMANDS: [(&str, bool); 14] = [
    ("done", true),
    ("fail", true),
    ("log", true),
    ("ask", true),
    ("msg", false),
    ("add", false),
    ("show", false),
    ("list", false),
    ("status", false),
    ("ready", false),
    ("transcript", false),
    ("viz", false),
    ("stats", false),
    ("tail", false),
];

/// Whether `args` (a `wg` command line without the program) may run for the agent of
/// `task`; the reason when not. Pure.
pub fn admit(args: &[String], task: &str) -> Result<(), String> {
    if args.iter().any(|a| a == "--dir" || a.starts_with("--dir=")) {
        return Err("--dir: an agent acts on its own project only".into());
    }
    let mut words = args.iter().filter(|a| !a.starts_with('-'));
    let Some(cmd) = words.next() else {
        return Err("no command".into());
    };
    let Some((_, own)) = AGENT_COMMANDS.iter().find(|(c, _)| c == cmd) else {
        return Err(format!(
            "`wg {cmd}` is not an agent's command (an agent may run: {})",
            AGENT_COMMANDS.map(|(c, _)| c).join(", ")
        ));
    };
    if *own {
        match words.next() {
            Some(id) if id == task => {}
            Some(id) => {
                return Err(format!(
                    "`wg {cmd} {id}`: this agent works on task `{task}` and reports on it only"
                ))
            }
            None => {}
        }
    }
    Ok(())
}

/// What the broker runs commands as.
#[derive(Debug, Clone)]
pub struct Identity {
    pub task: String,
    /// The environment a command runs in: the agent's, as the handler built it (its
    /// `WG_AGENT_ID`, `WG_TASK_ID`, `WG_DIR`), never what the agent sends.
    pub env: Vec<(String, String)>,
    /// Where a command runs when the agent's directory is not inside it.
    pub workdir: PathBuf,
}

/// The handler's end: listens for this turn until dropped (which also retires the token).
pub struct Broker {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

fn answer(id: &Identity, token: &str, line: &str) -> Reply {
    let refuse = |m: String| Reply {
        code: i32::from(crate::exit::USAGE),
        stdout: String::new(),
        stderr: format!("error: {m}\n"),
    };
    let req: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return refuse(format!("the broker could not read the request: {e}")),
    };
    if req.token != token {
        return refuse("the broker refused a stale or unknown turn token".into());
    }
    if let Err(why) = admit(&req.args, &id.task) {
        return refuse(why);
    }
    let cwd = Path::new(&req.cwd);
    let cwd = if cwd.starts_with(&id.workdir) && cwd.is_dir() {
        cwd.to_path_buf()
    } else {
        id.workdir.clone()
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return refuse(format!("cannot find wg: {e}")),
    };
    match std::process::Command::new(exe)
        .args(&req.args)
        .env_clear()
        .envs(id.env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(o) => Reply {
            code: o.status.code().unwrap_or(i32::from(crate::exit::FAILURE)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => refuse(format!("cannot run wg: {e}")),
    }
}

/// The longest request read: a command line, not a file.
const MAX_REQUEST: u64 = 1 << 20;

fn serve(conn: UnixStream, id: &Identity, token: &str) -> io::Result<()> {
    let mut line = String::new();
    BufReader::new(io::Read::take(&conn, MAX_REQUEST)).read_line(&mut line)?;
    let reply = answer(id, token, &line);
    let mut out = serde_json::to_vec(&reply).map_err(io::Error::other)?;
    out.push(b'\n');
    (&conn).write_all(&out)
}

impl Broker {
    /// Listens on `path` for requests carrying `token`.
    pub fn start(path: &Path, token: String, id: Identity) -> io::Result<Broker> {
        let l = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let id = Arc::new(id);
        let token = Arc::new(token);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (id, token) = (id.clone(), token.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &id, &token);
                });
            }
        });
        Ok(Broker {
            path: path.to_path_buf(),
            stop,
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The agent's end: sends this process's command line to the broker at `socket` and relays
/// the answer. Returns the exit code.
pub fn client(socket: &Path, args: Vec<String>) -> i32 {
    let req = Request {
        token: std::env::var(TOKEN_ENV).unwrap_or_default(),
        args,
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    };
    let talk = || -> io::Result<Reply> {
        let conn = UnixStream::connect(socket)?;
        let mut line = serde_json::to_vec(&req).map_err(io::Error::other)?;
        line.push(b'\n');
        (&conn).write_all(&line)?;
        let mut back = String::new();
        BufReader::new(&conn).read_line(&mut back)?;
        serde_json::from_str(&back).map_err(io::Error::other)
    };
    match talk() {
        Ok(r) => {
            let _ = io::stdout().write_all(r.stdout.as_bytes());
            crate::output::stderr(&r.stderr);
            r.code
        }
        Err(e) => {
            crate::output::stderr(&format!(
                "error: cannot reach wg's broker at {}: {e}\n",
                socket.display()
            ));
            i32::from(crate::exit::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_agent_reports_on_its_own_task_only() {
        assert!(admit(&v(&["done", "a"]), "a").is_ok());
        assert!(admit(&v(&["log", "a", "note"]), "a").is_ok());
        assert!(admit(&v(&["done", "b"]), "a").is_err());
        assert!(admit(&v(&["fail", "b", "--reason", "x"]), "a").is_err());
        assert!(admit(&v(&["msg", "b", "hi"]), "a").is_ok());
        assert!(admit(&v(&["--json", "show", "b"]), "a").is_ok());
    }

    #[test]
    fn a_persons_commands_and_other_projects_are_refused() {
        for cmd in [
            &["edit", "a"][..],
            &["retry", "a"],
            &["evaluate", "a"],
            &["service", "stop"],
            &["config", "set", "x", "y"],
            &["handler", "a"],
            &["done", "a", "--dir", "/elsewhere"],
            &[],
        ] {
            assert!(admit(&v(cmd), "a").is_err(), "{cmd:?}");
        }
    }

    #[test]
    fn a_wrong_token_is_refused_before_anything_runs() {
        let id = Identity {
            task: "a".into(),
            env: vec![],
            workdir: "/".into(),
        };
        let line = serde_json::json!({"token": "old", "args": ["done", "a"], "cwd": "/"});
        let r = answer(&id, "new", &line.to_string());
        assert_eq!(r.code, i32::from(crate::exit::USAGE));
        assert!(r.stderr.contains("stale"), "{}", r.stderr);
    }
}
