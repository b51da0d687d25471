//! Runs one codex turn: spawn in its own process group, prompt on stdin (then closed), stdout
//! and stderr read concurrently, every event into `events.jsonl`, the handler's own
//! first-output / idle / hard timeouts ending the whole group.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::events::{self, Dialect, Line, Notice, TurnEvents};
use super::files::{EventsLog, HandlerLog};
use super::log::Level;
use crate::process::{terminate, StopHow};

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub first_output: Duration,
    pub idle: Duration,
    pub hard: Duration,
    /// SIGTERM → SIGKILL.
    pub grace: Duration,
}

/// One codex process to run.
pub struct Spawn {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The agent's whole environment.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub prompt: String,
    pub timeouts: Timeouts,
    /// Which parser reads stdout, and how the process is stopped.
    pub dialect: Dialect,
    /// Runaway limits: (same command in a row, commands per turn); 0 is off.
    pub runaway: (u32, u32),
}

/// How the process ended.
#[derive(Debug)]
pub struct Report {
    pub events: TurnEvents,
    pub exit_code: Option<i32>,
    /// `first-output`, `idle` or `hard` when the handler ended it.
    pub timeout: Option<(&'static str, Duration)>,
    /// Set when the handler ended a looping turn.
    pub runaway: Option<super::runaway::Runaway>,
    pub spawn_error: Option<std::io::Error>,
    pub stderr_tail: Vec<String>,
    pub duration: Duration,
    pub pid: Option<u32>,
}

enum Out {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    StdoutEof,
    StderrEof,
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    tx: mpsc::UnboundedSender<Out>,
    wrap: fn(Vec<u8>) -> Out,
    eof: Out,
) {
    tokio::spawn(async move {
        let mut r = BufReader::with_capacity(64 * 1024, r);
        loop {
            let mut buf = Vec::new();
            match r.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(wrap(buf)).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(eof);
    });
}

const STDERR_TAIL: usize = 20;

/// Runs codex for turn `turn`. Never fails: every outcome is in the report.
pub async fn run_codex(
    spec: Spawn,
    turn: u64,
    log: &mut HandlerLog,
    events_log: &mut EventsLog,
) -> Report {
    let start = Instant::now();
    let mut report = Report {
        events: TurnEvents::new(spec.dialect),
        exit_code: None,
        timeout: None,
        runaway: None,
        spawn_error: None,
        stderr_tail: Vec::new(),
        duration: Duration::ZERO,
        pid: None,
    };
    let mut cmd = tokio::process::Command::new(&spec.program);
    // `env` is the whole environment: nothing of the handler's own (which may hold the key)
    // is inherited.
    cmd.env_clear();
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout stops codex and every command it started.
        .process_group(0)
        // Backstop only: kills the leader if the handler unwinds; the group is ended below.
        .kill_on_drop(true);
    // And it dies with the handler: a killed handler must not leave its turn running.
    crate::process::die_with_parent(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            report.spawn_error = Some(e);
            report.duration = start.elapsed();
            return report;
        }
    };
    let pid = child.id();
    report.pid = pid;
    let pgid = pid.map(|p| p as i32).unwrap_or(0);
    log.write(
        Level::Debug,
        turn,
        "spawned",
        &[("pid", pid.unwrap_or(0).to_string())],
    );

    // The prompt goes in from its own task: a large prompt must not block reading output.
    if let Some(mut stdin) = child.stdin.take() {
        let prompt = spec.prompt.into_bytes();
        tokio::spawn(async move {
            let _ = stdin.write_all(&prompt).await;
            let _ = stdin.shutdown().await;
            drop(stdin);
        });
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    if let Some(out) = child.stdout.take() {
        pump(out, tx.clone(), Out::Stdout, Out::StdoutEof);
    }
    if let Some(err) = child.stderr.take() {
        pump(err, tx.clone(), Out::Stderr, Out::StderrEof);
    }
    drop(tx);

    let t = spec.timeouts;
    let mut watch = super::runaway::Watch::new(spec.runaway.0, spec.runaway.1);
    let hard_deadline = start + t.hard;
    let mut last_output = Instant::now();
    let mut first_stdout: Option<Instant> = None;
    let mut open_streams = 2;
    let mut exited_at: Option<Instant> = None;
    // After codex exits, stragglers holding its pipes get this long before they are cut off.
    let drain = Duration::from_millis(500);

    loop {
        let deadline = if let Some(e) = exited_at {
            e + drain
        } else {
            let mut d = hard_deadline.min(last_output + t.idle);
            if first_stdout.is_none() {
                d = d.min(start + t.first_output);
            }
            d
        };
        if exited_at.is_some() && open_streams == 0 {
            break;
        }
        tokio::select! {
            msg = rx.recv(), if open_streams > 0 => {
                match msg {
                    Some(Out::Stdout(bytes)) => {
                        last_output = Instant::now();
                        if first_stdout.is_none() {
                            first_stdout = Some(last_output);
                            log.write(Level::Debug, turn, "first_output", &[("after_ms", start.elapsed().as_millis().to_string())]);
                        }
                        let ran = report.events.commands.len();
                        handle_stdout(&bytes, turn, &mut report.events, log, events_log);
                        let stop = report.events.commands[ran..]
                            .iter()
                            .find_map(|c| watch.observe(&c.command));
                        if let (Some(why), None) = (stop, &report.runaway) {
                            // Written at once, not at turn end: a person tailing the log sees it.
                            log.write(Level::Warn, turn, "runaway", &[("kind", "loop".to_string()), ("reason", log.redact(&why.describe()))]);
                            report.runaway = Some(why);
                            let how = if spec.dialect == Dialect::Claude {
                                StopHow::LeaderFirst(t.grace)
                            } else {
                                StopHow::Graceful(t.grace)
                            };
                            let killed = terminate(pgid, Some(&mut child), how).await;
                            log.write(Level::Warn, turn, "killed", &[("pgid", pgid.to_string()), ("sigkill", killed.to_string())]);
                        }
                    }
                    Some(Out::Stderr(bytes)) => {
                        last_output = Instant::now();
                        let line = String::from_utf8_lossy(&bytes).trim_end().to_string();
                        // codex always prints this when stdin is a pipe; it says nothing.
                        if !line.is_empty() && !line.starts_with("Reading additional input from stdin") {
                            log.write(Level::Debug, turn, &format!("{}.stderr", spec.dialect.name()), &[("line", log.redact(&line))]);
                            report.stderr_tail.push(line);
                            if report.stderr_tail.len() > STDERR_TAIL {
                                report.stderr_tail.remove(0);
                            }
                        }
                    }
                    Some(Out::StdoutEof) | Some(Out::StderrEof) => open_streams -= 1,
                    None => open_streams = 0,
                }
            }
            status = child.wait(), if exited_at.is_none() => {
                exited_at = Some(Instant::now());
                report.exit_code = status.ok().and_then(|s| {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().or_else(|| s.signal().map(|sig| 128 + sig))
                });
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                if exited_at.is_some() {
                    break;
                }
                let now = Instant::now();
                let which = if now >= hard_deadline {
                    ("hard", t.hard)
                } else if first_stdout.is_none() && now >= start + t.first_output {
                    ("first-output", t.first_output)
                } else {
                    ("idle", t.idle)
                };
                report.timeout = Some(which);
                log.write(Level::Warn, turn, "timeout", &[("which", which.0.to_string()), ("after_ms", which.1.as_millis().to_string()), ("pid", pgid.to_string())]);
                let how = if spec.dialect == Dialect::Claude {
                    StopHow::LeaderFirst(t.grace)
                } else {
                    StopHow::Graceful(t.grace)
                };
                let killed = terminate(pgid, Some(&mut child), how).await;
                log.write(Level::Warn, turn, "killed", &[("pgid", pgid.to_string()), ("sigkill", killed.to_string())]);
                let status = child.wait().await;
                report.exit_code = status.ok().and_then(|s| {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().or_else(|| s.signal().map(|sig| 128 + sig))
                });
                exited_at = Some(Instant::now());
            }
        }
    }
    // The turn is over: nothing codex started may outlive it.
    if pgid > 1 && crate::process::group_alive(pgid) {
        terminate(pgid, None, StopHow::Graceful(t.grace)).await;
        log.write(
            Level::Debug,
            turn,
            "reaped_group",
            &[("pgid", pgid.to_string())],
        );
    }
    report.duration = start.elapsed();
    report
}

fn handle_stdout(
    bytes: &[u8],
    turn: u64,
    ev: &mut TurnEvents,
    log: &mut HandlerLog,
    events_log: &mut EventsLog,
) {
    let text = String::from_utf8_lossy(bytes);
    let line = text.trim_end();
    if line.is_empty() {
        return;
    }
    match events::parse_line(line) {
        Line::NotJson => {
            let cut: String = line.chars().take(500).collect();
            log.write(
                Level::Warn,
                turn,
                &format!("{}.nonjson", ev.dialect.name()),
                &[("line", log.redact(&cut))],
            );
        }
        Line::Event(v) => {
            if events_log.write(turn, line).is_err() {
                log.write(Level::Warn, turn, "events.write_failed", &[]);
            }
            for notice in ev.feed(&v) {
                log_notice(log, turn, ev.dialect, notice);
            }
        }
    }
}

/// The `handler.log` line of one thing the agent did.
fn log_notice(log: &mut HandlerLog, turn: u64, dialect: Dialect, notice: Notice) {
    match notice {
        Notice::Warning(m) => log.write(
            Level::Warn,
            turn,
            &format!("{}.warning", dialect.name()),
            &[("message", log.redact(&m))],
        ),
        Notice::Command(c) => log.write(
            Level::Info,
            turn,
            "command",
            &[
                (
                    "exit_code",
                    c.exit_code.map_or("none".into(), |c| c.to_string()),
                ),
                ("status", c.status),
                ("cmd", log.redact(&c.command)),
            ],
        ),
        Notice::FileChange { path, kind } => log.write(
            Level::Info,
            turn,
            "file_change",
            &[("kind", kind), ("path", path)],
        ),
        Notice::Message(m) => log.write(
            Level::Info,
            turn,
            "agent_message",
            &[("chars", m.chars().count().to_string())],
        ),
        Notice::Failed(m) => log.write(
            Level::Warn,
            turn,
            &format!("{}.turn_failed", dialect.name()),
            &[("message", log.redact(&m))],
        ),
    }
}
