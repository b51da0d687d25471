use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use crate::cli::Ctx;
use crate::coordinator::{self, AlreadyRunning, Options};
use crate::error::{internal, user_error, CliError, CliResult, Kind};

/// Start the coordinator for this project (one per project).
///
/// Without --foreground it runs in the background and this command returns once it is up;
/// its log is .wg/service/coordinator.log.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Stay attached: decisions are printed on stderr; Ctrl-C stops gracefully.
    #[arg(long)]
    pub foreground: bool,
    /// Agents running at once, at least 1 (default: coordinator.max_agents).
    #[arg(long, value_name = "N", value_parser = parse_max_agents)]
    pub max_agents: Option<usize>,
    /// Run until no task can make progress, then exit with a status that says how it ended:
    /// 0 all done, 8 some failed or abandoned, 9 stuck, 10 paused longer than --max-pause
    /// (docs/exit-codes.md). Waits in the foreground even without --foreground.
    #[arg(long)]
    pub until_done: bool,
    /// With --until-done: give up when an endpoint stays paused this long (e.g. `10m`).
    /// Default: wait for it.
    #[arg(long, value_name = "DURATION", requires = "until_done", value_parser = parse_max_pause)]
    pub max_pause: Option<Duration>,
    /// Set by the background start for the detached process (its stderr is the log already).
    #[arg(long, hide = true)]
    pub daemon: bool,
}

/// At least one agent: with none nothing could ever run, and the coordinator would wait
/// forever (the same rule as `coordinator.max_agents` in the config).
pub(crate) fn parse_max_agents(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (the number of agents running at once)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}: a whole number of agents, at least 1")),
    }
}

fn parse_max_pause(s: &str) -> Result<Duration, String> {
    crate::time::parse_duration(s).map_err(|e| e.to_string())
}

/// The unfinished tasks of a stuck run by status, those waiting for a person first:
/// `1 needs-input, 2 paused, 3 open`.
fn left_over(counts: &std::collections::BTreeMap<String, usize>) -> String {
    use crate::model::TaskStatus::*;
    let parts: Vec<String> = [NeedsInput, Paused, Waiting, InProgress, Open]
        .iter()
        .filter_map(|s| {
            let n = counts.get(s.as_str()).copied().unwrap_or(0);
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    parts.join(", ")
}

/// The exit status of an `--until-done` run: how it ended.
fn until_done_result(summary: &coordinator::Summary) -> CliResult {
    use coordinator::scheduler::Ending;
    let Some(ending) = summary.ending else {
        return Ok(());
    };
    let n = |s: &str| summary.counts.get(s).copied().unwrap_or(0);
    let paused: Vec<String> = summary
        .paused
        .iter()
        .map(|p| format!("{} ({}): {}", p.endpoint, p.kind, p.reason))
        .collect();
    match ending {
        Ending::AllDone => Ok(()),
        Ending::SomeFailed => Err(CliError::new(
            Kind::TasksFailed,
            anyhow::anyhow!(
                "{} task(s) failed and {} abandoned",
                n("failed"),
                n("abandoned")
            ),
        )
        .hinted(
            "`wg list --status failed` shows them with their reasons; `wg retry --failed` \
             reopens them all (`--since 2h`, `--error-kind KIND` to narrow), e.g. after an outage",
        )),
        Ending::Paused => Err(CliError::new(
            Kind::Paused,
            anyhow::anyhow!("paused longer than --max-pause: {}", paused.join("; ")),
        )
        .hinted(
            "fix the endpoint, then run again (tasks kept their retries); \
             `wg retry --failed` reopens any that failed meanwhile",
        )),
        Ending::Stuck => Err(CliError::new(
            Kind::Stuck,
            anyhow::anyhow!(
                "no task can make progress: {}{}",
                left_over(&summary.counts),
                summary
                    .held
                    .iter()
                    .map(|h| format!("; {h}"))
                    .collect::<String>()
            ),
        )
        .hinted(
            "`wg list` shows what they wait for: an answer (`wg msg ID`), a resume (`wg resume ID`), \
             a message, a dependency",
        )),
        Ending::Stopped => Err(user_error("stopped before every task was done")),
    }
}

/// How long a background start waits for the coordinator to come up.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The pid of the coordinator holding the lock, waiting up to `deadline` for one that is still
/// starting to write it. `None` when it never did (or let go).
fn winner_pid(ctx: &Ctx, deadline: Instant) -> Option<u32> {
    loop {
        match coordinator::running(&ctx.layout).ok()? {
            Some(Some(pid)) => return Some(pid),
            Some(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

fn already_running(pid: Option<u32>) -> CliError {
    CliError::new(Kind::User, AlreadyRunning { pid })
        .hinted("`wg service status` shows it; `wg service stop` ends it")
}

/// Says so when the key variable of an endpoint the agents use is not set: their tasks would
/// pause (`key-missing`) until the service is restarted with it.
fn check_key(ctx: &Ctx) {
    let cfg = &ctx.config;
    let ep = cfg.endpoint_for(&cfg.executor);
    let (Some(url), true) = (
        ep.url.as_deref(),
        ["codex", "claude"].contains(&cfg.executor.as_str()),
    ) else {
        return;
    };
    if std::env::var(&ep.key_env).map_or(true, |v| v.is_empty()) {
        crate::output::stderr(&format!(
            "warning: ${} is not set: agents cannot authenticate to {url}, so its tasks will \
             pause (key-missing) instead of running. Export it and restart the service.\n",
            ep.key_env
        ));
    }
}

/// `[web] enabled`: the board, served for as long as the coordinator runs.
fn web_board(layout: &crate::store::Layout) -> Option<coordinator::Beside> {
    let layout = layout.clone();
    Some(Box::new(move |config: &crate::config::Config| {
        let board: Box<dyn std::any::Any> = match config.web.enabled {
            true => Box::new(crate::web::start_for_coordinator(&layout, config)?),
            false => Box::new(()),
        };
        Ok(board)
    }))
}

pub fn cmd_start(ctx: &Ctx, args: &StartArgs) -> CliResult {
    let wg_exe = std::env::current_exe().map_err(internal)?;
    if !args.daemon {
        check_key(ctx);
    }
    // --until-done waits for the end to report it, so it runs here even without
    // --foreground (decisions then go only to the log).
    if args.foreground || args.until_done {
        let opts = Options {
            layout: ctx.layout.clone(),
            max_agents: args.max_agents,
            until_done: args.until_done,
            max_pause: args.max_pause,
            echo: args.foreground && !args.daemon,
            signals: true,
            wg_exe,
            progress: None,
            beside: web_board(&ctx.layout),
        };
        return match coordinator::run(opts) {
            Ok(summary) => {
                ctx.out.either(&summary.counts, || {
                    let counts: Vec<String> = summary
                        .counts
                        .iter()
                        .map(|(k, v)| format!("{v} {k}"))
                        .collect();
                    format!("coordinator stopped; tasks: {}", counts.join(", "))
                })?;
                until_done_result(&summary)
            }
            Err(e) => match e.downcast::<AlreadyRunning>() {
                Ok(a) => Err(already_running(a.pid)),
                Err(e) => Err(CliError::new(Kind::Internal, e)),
            },
        };
    }
    if let Some(pid) = coordinator::running(&ctx.layout)? {
        // A coordinator that is still starting writes its pid in a moment: name it.
        let pid = pid.or_else(|| winner_pid(ctx, Instant::now() + START_TIMEOUT));
        return Err(already_running(pid));
    }
    std::fs::create_dir_all(ctx.layout.service_dir())?;
    let log_path = ctx.layout.coordinator_log();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut cmd = Command::new(&wg_exe);
    cmd.arg("--dir")
        .arg(ctx.layout.dir())
        .args(["service", "start", "--foreground", "--daemon"]);
    if let Some(n) = args.max_agents {
        cmd.args(["--max-agents", &n.to_string()]);
    }
    if args.until_done {
        cmd.arg("--until-done");
    }
    cmd.current_dir(ctx.layout.project_root())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    // SAFETY: setsid is async-signal-safe; it detaches the coordinator from our terminal and
    // process group so closing the terminal or Ctrl-C here does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            // Lost a race with another start: name the winner once it wrote its pid.
            if coordinator::running(&ctx.layout)?.is_some() {
                return Err(already_running(winner_pid(ctx, deadline)));
            }
            let tail = crate::executor::process::tail(&log_path, 0, 600);
            return Err(
                user_error(format!("the coordinator exited at start ({status})"))
                    .hinted(format!("last lines of {}:\n{tail}", log_path.display())),
            );
        }
        if coordinator::running(&ctx.layout)?.flatten() == Some(pid) {
            break;
        }
        if Instant::now() > deadline {
            return Err(user_error(format!(
                "the coordinator (pid {pid}) did not come up within {START_TIMEOUT:?}"
            ))
            .hinted(format!("see {}", log_path.display())));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ctx.out
        .either(&serde_json::json!({"running": true, "pid": pid}), || {
            format!(
                "coordinator started (pid {pid}); log: {}",
                log_path.display()
            )
        })?;
    Ok(())
}
