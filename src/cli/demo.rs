//! `wg demo`: a throwaway project with a small fan-out/fan-in graph, run to completion by a
//! foreground coordinator, with live progress and a summary.

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Args;

use crate::cli::Cli;
use crate::coordinator::{self, Options, Progress};
use crate::error::{internal, user_error, CliResult};
use crate::model::{Task, TaskStatus};
use crate::store::{Layout, Store};
use crate::time::now_rfc3339;

/// Watch wg run a dozen tasks (fan-out, then fan-in) in a throwaway project.
///
/// With the default mock executor it needs no key and no network. `-x codex -m MODEL -e URL`
/// runs the same graph with real agents.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Executor for the demo's tasks.
    #[arg(short = 'x', long, default_value = "mock")]
    pub executor: String,
    /// Model (real executors).
    #[arg(short, long)]
    pub model: Option<String>,
    /// OpenAI-compatible endpoint (real executors).
    #[arg(short, long)]
    pub endpoint: Option<String>,
    /// Agents at once, at least 1.
    #[arg(long, default_value_t = 4, value_parser = crate::cli::service::start::parse_max_agents)]
    pub max_agents: usize,
    /// Length of a mock agent's turn, in milliseconds.
    #[arg(long, default_value_t = 400)]
    pub turn_ms: u64,
    /// Keep the project folder afterwards (its path is printed).
    #[arg(long)]
    pub keep: bool,
}

/// The demo graph: id, title, dependencies.
const GRAPH: [(&str, &str, &[&str]); 12] = [
    ("plan", "Plan the calculator", &[]),
    ("lexer", "Write the lexer", &["plan"]),
    ("parser", "Write the parser", &["plan"]),
    ("ast", "Define the syntax tree", &["plan"]),
    ("eval", "Write the evaluator", &["plan"]),
    ("errors", "Design error messages", &["plan"]),
    ("repl", "Write the REPL", &["plan"]),
    ("docs", "Write the user guide", &["plan"]),
    ("bench", "Add a benchmark", &["plan"]),
    (
        "integrate",
        "Wire everything together",
        &[
            "lexer", "parser", "ast", "eval", "errors", "repl", "docs", "bench",
        ],
    ),
    ("test", "Run the test suite", &["integrate"]),
    ("release", "Tag a release", &["test"]),
];

pub fn cmd_demo(cli: &Cli, args: &DemoArgs) -> CliResult {
    let wg_exe = std::env::current_exe().map_err(internal)?;
    let tmp = tempfile::Builder::new().prefix("wg-demo-").tempdir()?;
    let root = tmp.path().to_path_buf();
    let mut init = Command::new(&wg_exe);
    init.arg("--dir")
        .arg(&root)
        .args(["init", "-x", &args.executor]);
    if let Some(m) = &args.model {
        init.args(["-m", m]);
    }
    if let Some(e) = &args.endpoint {
        init.args(["-e", e]);
    }
    let out = init.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(user_error(format!(
            "cannot create the demo project: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let layout = Layout::new(root.join(".wg"));
    if args.executor == "mock" {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(layout.config())?;
        writeln!(f, "\n[executors.mock]\nturn_ms = {}", args.turn_ms)?;
    }
    let store = Store::new(layout.clone());
    let mut w = store.writer()?;
    let now = now_rfc3339();
    let tasks: Vec<Task> = GRAPH
        .iter()
        .enumerate()
        .map(|(i, (id, title, after))| {
            let mut t = Task::new(id.to_string(), title.to_string(), &now);
            t.after = after.iter().map(|s| s.to_string()).collect();
            t.description = format!(
                "Demo task {}: {title}. Keep it small, then run `wg done`.",
                i + 1
            );
            // Uneven turns make the fan-out visible.
            let ms = args.turn_ms * (2 + (i as u64 * 7) % 5) / 3;
            t.extra
                .insert("mock".into(), serde_json::json!({ "turn_ms": ms }));
            t
        })
        .collect();
    w.put(&tasks)?;
    w.commit()?;

    let tty = std::io::stdout().is_terminal() && !cli.json;
    println!(
        "wg demo: {} tasks, executor {}, up to {} agents at once (project {})",
        tasks.len(),
        args.executor,
        args.max_agents,
        root.display()
    );
    let (tx, rx) = std::sync::mpsc::channel::<Progress>();
    let total = tasks.len();
    let started = Instant::now();
    let printer = std::thread::spawn(move || print_progress(rx, total, tty, started));
    let opts = Options {
        layout: layout.clone(),
        max_agents: Some(args.max_agents),
        until_done: true,
        max_pause: None,
        echo: false,
        signals: true,
        wg_exe,
        progress: Some(tx),
        beside: None,
    };
    let result = coordinator::run(opts);
    let _ = printer.join();
    let summary = result.map_err(|e| user_error(format!("{e:#}")))?;
    let elapsed = started.elapsed();
    let counts: Vec<String> = summary
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    println!(
        "\nsummary: {} in {:.1}s with {} agent runs",
        counts.join(", "),
        elapsed.as_secs_f64(),
        summary.started_agents
    );
    println!(
        "each task's record: .wg/tasks/<id>/log.jsonl; agent output: .wg/tasks/<id>/agent.log"
    );
    if args.keep {
        let kept = tmp.keep();
        println!("project kept at {}", kept.display());
    }
    Ok(())
}

fn print_progress(
    rx: std::sync::mpsc::Receiver<Progress>,
    total: usize,
    tty: bool,
    started: Instant,
) {
    let mut done = 0;
    let mut running = 0usize;
    for p in rx {
        match p.status {
            TaskStatus::InProgress => running += 1,
            TaskStatus::Done => {
                done += 1;
                running = running.saturating_sub(1);
            }
            TaskStatus::Failed | TaskStatus::Abandoned | TaskStatus::Open | TaskStatus::Paused => {
                running = running.saturating_sub(1)
            }
            TaskStatus::Waiting | TaskStatus::NeedsInput => {}
        }
        let t = started.elapsed().as_secs_f64();
        let what = match p.status {
            TaskStatus::InProgress => "started",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Waiting => "waiting",
            TaskStatus::Open => "requeued",
            TaskStatus::Abandoned => "abandoned",
            TaskStatus::NeedsInput => "needs input",
            TaskStatus::Paused => "paused",
        };
        let reason = p.reason.map(|r| format!(" ({r})")).unwrap_or_default();
        let agent = p.agent.map(|a| format!(" [{a}]")).unwrap_or_default();
        if tty {
            // Rewrite the status line below the event lines.
            print!(
                "\r\x1b[2K{t:6.2}s  {what:<9} {}{agent}{reason}\n\x1b[2K  {done}/{total} done, {running} running",
                p.task
            );
        } else {
            println!("{t:6.2}s  {what:<9} {}{agent}{reason}", p.task);
        }
        let _ = std::io::stdout().flush();
    }
    if tty {
        println!();
    }
}
