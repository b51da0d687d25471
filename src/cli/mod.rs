//! The command line: global flags, the command enum, and the one dispatch `match`.

mod abandon;
mod add;
mod archive;
pub(crate) mod ask;
mod cancel;
mod chat;
mod completions;
mod config;
mod demo;
mod doctor;
mod done;
mod edit;
mod evaluate;
mod fail;
pub mod fence;
mod handler;
mod import;
mod init;
mod list;
mod log;
mod man;
mod mock_agent;
mod msg;
pub(crate) mod pause;
mod queue;
mod ready;
mod resume;
mod retry;
mod rm;
mod service;
mod show;
mod stats;
mod status;
mod tail;
mod top;
mod transcript;
mod viz;
mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{key_name, Config, ConfigError};
use crate::env;
use crate::error::{config_error, CliError, CliResult, Kind};
use crate::output::Printer;
use crate::store::{self, Layout, Store};

/// wg: a file-based task coordinator for AI coding agents.
///
/// Tasks live in `.wg/` as plain files. Build a graph with `wg add`, run agents on it with
/// `wg service start`, talk to a task with `wg msg`.
#[derive(Debug, Parser)]
#[command(name = "wg", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Project to use (the folder holding `.wg/`, or `.wg/` itself). Default: search from the
    /// current directory upwards. Only `wg web` takes several.
    #[arg(long, global = true, env = env::WG_DIR, hide_env_values = true, value_name = "PATH", action = clap::ArgAction::Append)]
    pub dir: Vec<PathBuf>,

    /// Machine-readable JSON output (read commands).
    #[arg(long, global = true)]
    pub json: bool,

    /// More diagnostics on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::InitArgs),
    Add(add::AddArgs),
    Import(import::ImportArgs),
    #[command(alias = "ls")]
    List(list::ListArgs),
    Show(show::ShowArgs),
    Ready(ready::ReadyArgs),
    Queue(queue::QueueArgs),
    Status(status::StatusArgs),
    Edit(edit::EditArgs),
    Done(done::DoneArgs),
    Fail(fail::FailArgs),
    Retry(retry::RetryArgs),
    Abandon(abandon::AbandonArgs),
    Pause(pause::PauseArgs),
    Resume(resume::ResumeArgs),
    Cancel(cancel::CancelArgs),
    Log(log::LogArgs),
    Rm(rm::RmArgs),
    Archive(archive::ArchiveArgs),
    #[command(subcommand)]
    Config(config::ConfigCommand),
    Viz(viz::VizArgs),
    Evaluate(evaluate::EvaluateArgs),
    Stats(stats::StatsArgs),
    #[command(subcommand)]
    Service(service::ServiceCommand),
    Demo(demo::DemoArgs),
    #[command(hide = true)]
    MockAgent(mock_agent::MockAgentArgs),
    Handler(handler::HandlerArgs),
    Msg(msg::MsgArgs),
    Ask(ask::AskArgs),
    Chat(chat::ChatArgs),
    Transcript(transcript::TranscriptArgs),
    Tail(tail::TailArgs),
    Top(top::TopArgs),
    Web(web::WebArgs),
    Doctor(doctor::DoctorArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
}

/// Everything a command needs, resolved once: the project, its config, the store, output.
pub struct Ctx {
    pub layout: Layout,
    pub config: Config,
    pub store: Store,
    pub out: Printer,
    /// Who is acting: the agent id inside an agent, else `user`.
    pub actor: String,
}

impl Ctx {
    /// `lenient`: an invalid config file is read as the defaults (for `wg config`, which must
    /// work on the file it has to fix, and `wg service status|stop`, which must work while a
    /// running coordinator refuses an invalid edit and says why).
    fn open(cli: &Cli, lenient: bool) -> CliResult<Ctx> {
        if cli.dir.len() > 1 {
            return Err(crate::error::usage_error(
                "only `wg web` takes more than one --dir",
            ));
        }
        Ctx::open_at(cli.dir.first().map(PathBuf::as_path), cli.json, lenient)
    }

    /// The project at `dir` (or found from the current directory).
    pub fn open_at(dir: Option<&Path>, json: bool, lenient: bool) -> CliResult<Ctx> {
        let cwd = std::env::current_dir()?;
        let dir = store::discover(dir, &cwd).ok_or_else(|| {
            config_error(format!(
                "no wg project in {} or any parent directory",
                cwd.display()
            ))
            .hinted("run `wg init` to create one here, or pass --dir PATH")
        })?;
        if !dir.is_dir() {
            return Err(config_error(format!("no wg project at {}", dir.display()))
                .hinted("run `wg init` there first, or check --dir / WG_DIR"));
        }
        let layout = Layout::new(dir);
        // An agent reads the config its coordinator runs on (see `env::WG_CONFIG`).
        let config_path = std::env::var_os(env::WG_CONFIG)
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_file())
            .unwrap_or_else(|| layout.config());
        let config = match Config::load(&config_path) {
            Ok(c) => c,
            Err(ConfigError::PastedKey { .. } | ConfigError::Invalid { .. }) if lenient => {
                Config::default()
            }
            Err(e) => {
                let hint = match &e {
                    ConfigError::PastedKey { setting, .. } => key_name::fix_hint(setting),
                    _ => "fix the file by hand (`.wg.example/config.toml` shows every setting), \
                          then try again"
                        .to_string(),
                };
                return Err(CliError::new(Kind::Config, e).hinted(hint));
            }
        };
        let mut store = Store::new(layout.clone());
        store.fsync = config.fsync();
        if let Some(secs) = std::env::var(env::WG_LOCK_TIMEOUT)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
        {
            store.lock_timeout = Duration::from_secs_f64(secs);
        }
        store.check_format()?;
        Ok(Ctx {
            layout,
            config,
            store,
            out: Printer::new(json),
            actor: actor_from_env(),
        })
    }
}

fn actor_from_env() -> String {
    std::env::var(env::WG_AGENT_ID)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "user".to_string())
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> CliResult {
    match &cli.command {
        Command::Init(args) => init::cmd_init(&cli, args),
        Command::Demo(args) => demo::cmd_demo(&cli, args),
        Command::Completions(args) => completions::cmd_completions(args),
        Command::Man(args) => man::cmd_man(&cli, args),
        Command::Web(args) => web::cmd_web(&cli, args),
        command => {
            let lenient = matches!(
                command,
                Command::Config(_)
                    | Command::Service(
                        service::ServiceCommand::Status(_) | service::ServiceCommand::Stop(_)
                    )
            );
            let ctx = Ctx::open(&cli, lenient)?;
            match command {
                Command::Init(_) => unreachable!("handled above"),
                Command::Demo(_) | Command::Completions(_) | Command::Man(_) | Command::Web(_) => {
                    unreachable!("handled above")
                }
                Command::Add(a) => add::cmd_add(&ctx, a),
                Command::Import(a) => import::cmd_import(&ctx, a),
                Command::List(a) => list::cmd_list(&ctx, a),
                Command::Show(a) => show::cmd_show(&ctx, a),
                Command::Ready(a) => ready::cmd_ready(&ctx, a),
                Command::Queue(a) => queue::cmd_queue(&ctx, a),
                Command::Status(a) => status::cmd_status(&ctx, a),
                Command::Edit(a) => edit::cmd_edit(&ctx, a),
                Command::Done(a) => done::cmd_done(&ctx, a),
                Command::Fail(a) => fail::cmd_fail(&ctx, a),
                Command::Retry(a) => retry::cmd_retry(&ctx, a),
                Command::Abandon(a) => abandon::cmd_abandon(&ctx, a),
                Command::Pause(a) => pause::cmd_pause(&ctx, a),
                Command::Resume(a) => resume::cmd_resume(&ctx, a),
                Command::Cancel(a) => cancel::cmd_cancel(&ctx, a),
                Command::Log(a) => log::cmd_log(&ctx, a),
                Command::Rm(a) => rm::cmd_rm(&ctx, a),
                Command::Archive(a) => archive::cmd_archive(&ctx, a),
                Command::Config(a) => config::cmd_config(&ctx, a),
                Command::Viz(a) => viz::cmd_viz(&ctx, a),
                Command::Evaluate(a) => evaluate::cmd_evaluate(&ctx, a),
                Command::Stats(a) => stats::cmd_stats(&ctx, a),
                Command::Service(a) => service::cmd_service(&ctx, a),
                Command::MockAgent(a) => {
                    mock_agent::cmd_mock_agent(&ctx, a, std::env::var(env::WG_TASK_ID).ok())
                }
                Command::Handler(a) => handler::cmd_handler(&ctx, a),
                Command::Msg(a) => msg::cmd_msg(&ctx, a),
                Command::Ask(a) => ask::cmd_ask(&ctx, a),
                Command::Chat(a) => chat::cmd_chat(&ctx, a),
                Command::Transcript(a) => transcript::cmd_transcript(&ctx, a),
                Command::Tail(a) => tail::cmd_tail(&ctx, a),
                Command::Top(a) => top::cmd_top(&ctx, a),
                Command::Doctor(a) => doctor::cmd_doctor(&ctx, a),
            }
        }
    }
}

/// Checks a task title: one line of text. A newline or other control character would break
/// `wg list` and every other one-line-per-task output.
pub fn check_title(title: &str) -> CliResult<()> {
    if title.trim().is_empty() {
        return Err(crate::error::usage_error("the title is empty"));
    }
    if let Some((i, c)) = title.char_indices().find(|(_, c)| c.is_control()) {
        return Err(crate::error::usage_error(format!(
            "the title contains the control character {:?} at byte {i}; a title is one line of text",
            c
        ))
        .hinted("put longer text in the description (`--description`)"));
    }
    Ok(())
}

/// Checks a task id given on the command line (keeps `../` and `/` out of paths).
pub fn check_id(id: &str) -> CliResult<()> {
    crate::model::validate_id(id).map_err(|e| {
        CliError::new(Kind::Usage, e).hinted("ids are lowercase letters, digits and `-`")
    })
}

/// A path shown to the user, relative to the current directory when it is under it.
pub fn display_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}
