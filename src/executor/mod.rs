//! Executors: one table of what can run a task. A row says how to build the agent's argv,
//! whether the agent is conversational (one turn per run, driven by the inbox), how its exit
//! is judged, and how to check that it can run at all.
//!
//! Built in: `mock` (the hidden `wg mock-agent`), `shell` (the task's `command` argv),
//! `codex` and `claude` (`wg handler ID`, one turn per run). `[executors.NAME]` in config adds
//! custom rows: `command = ["my-agent", "--task", "{task_id}"]`, optional `conversational`,
//! `exit_code_decides`, `pass_env`.

pub mod mock;
pub mod plan;
pub mod process;

use std::path::Path;

use crate::config::Config;
use crate::model::Task;

/// How an agent's command line is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `wg mock-agent`.
    Mock,
    /// The task's own `command` field.
    TaskCommand,
    /// `wg handler ID`: the per-turn handler drives codex or claude.
    Handler,
    /// An argv template from config; `{task_id}` is replaced in each element (no shell).
    Template(Vec<String>),
}

/// One row of the executor table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executor {
    pub name: String,
    pub command: Command,
    /// Runs one turn per process, answering the inbox; ending a turn without `wg done`/`wg
    /// fail` leaves the task `waiting` instead of failing it.
    pub conversational: bool,
    /// The exit code decides the task (0 = done, else failed), as for `shell`.
    pub exit_code_decides: bool,
    /// Talks to the configured endpoint, so endpoint trouble pauses it.
    pub uses_endpoint: bool,
    /// A program whose `--version` must succeed before the first agent starts.
    pub health_binary: Option<String>,
    /// Extra environment variable names copied from the coordinator's environment.
    pub pass_env: Vec<String>,
}

/// The names built into wg.
pub const BUILTIN: [&str; 4] = ["codex", "claude", "shell", "mock"];

impl Executor {
    /// Looks `name` up: a `[executors.NAME]` entry with a `command` wins over a built-in row,
    /// other keys of such an entry (`pass_env`, the mock settings) adjust the built-in one.
    pub fn resolve(name: &str, config: &Config) -> Result<Executor, String> {
        let x = config.executors.get(name).cloned().unwrap_or_default();
        let pass_env = x.pass_env.clone();
        if let Some(argv) = x.command {
            if argv.is_empty() {
                return Err(format!("executors.{name}.command is empty"));
            }
            return Ok(Executor {
                name: name.to_string(),
                health_binary: None,
                command: Command::Template(argv),
                conversational: x.conversational.unwrap_or(false),
                exit_code_decides: x.exit_code_decides.unwrap_or(false),
                uses_endpoint: x.uses_endpoint.unwrap_or(false),
                pass_env,
            });
        }
        let (command, conversational, exit_code_decides, uses_endpoint, health) = match name {
            "mock" => (Command::Mock, false, false, false, None),
            "shell" => (Command::TaskCommand, false, true, false, None),
            "codex" => (
                Command::Handler,
                true,
                false,
                true,
                Some(config.codex.binary.clone()),
            ),
            "claude" => (
                Command::Handler,
                true,
                false,
                true,
                Some(config.claude.binary.clone()),
            ),
            other => {
                return Err(format!(
                    "unknown executor `{other}` (built in: {}; add others under [executors.NAME])",
                    BUILTIN.join(", ")
                ))
            }
        };
        Ok(Executor {
            name: name.to_string(),
            command,
            conversational: x.conversational.unwrap_or(conversational),
            exit_code_decides,
            uses_endpoint,
            health_binary: health,
            pass_env,
        })
    }

    /// The agent's argv. `wg` is the path of the running wg binary. Task text never reaches
    /// a shell: every element is passed to exec as is.
    pub fn argv(&self, task: &Task, wg: &Path) -> Result<Vec<String>, String> {
        let wg = wg.display().to_string();
        match &self.command {
            Command::Mock => Ok(vec![wg, "mock-agent".into()]),
            Command::Handler => Ok(vec![wg, "handler".into(), task.id.clone()]),
            Command::TaskCommand => {
                if task.command.is_empty() {
                    Err(format!(
                        "task `{}` has no command for the shell executor (wg add --command ARG ...)",
                        task.id
                    ))
                } else {
                    Ok(task.command.clone())
                }
            }
            Command::Template(t) => {
                Ok(t.iter().map(|a| a.replace("{task_id}", &task.id)).collect())
            }
        }
    }

    /// Checks once that the executor can run here (e.g. `codex --version`).
    pub fn health_check(&self) -> Result<(), String> {
        let Some(bin) = &self.health_binary else {
            return Ok(());
        };
        match process::version_command(Path::new(bin))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
        {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("`{bin} --version` failed ({s})")),
            Err(e) => Err(format!("cannot run `{bin}`: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        let mut t = Task::new("t-1".into(), "T".into(), "now");
        t.command = vec!["echo".into(), "$(rm -rf /)".into()];
        t
    }

    #[test]
    fn builtins_and_custom_rows() {
        let config = Config::parse(
            "[executors.mine]\ncommand = [\"agent\", \"--task={task_id}\"]\nconversational = true\n",
        )
        .unwrap();
        let wg = Path::new("/bin/wg");
        let mock = Executor::resolve("mock", &config).unwrap();
        assert_eq!(mock.argv(&task(), wg).unwrap(), ["/bin/wg", "mock-agent"]);
        assert!(!mock.conversational);
        let shell = Executor::resolve("shell", &config).unwrap();
        // The task's argv is passed through untouched: no shell sees `$(...)`.
        assert_eq!(shell.argv(&task(), wg).unwrap()[1], "$(rm -rf /)");
        assert!(shell.exit_code_decides);
        let codex = Executor::resolve("codex", &config).unwrap();
        assert_eq!(
            codex.argv(&task(), wg).unwrap(),
            ["/bin/wg", "handler", "t-1"]
        );
        assert!(codex.conversational && codex.uses_endpoint);
        let mine = Executor::resolve("mine", &config).unwrap();
        assert_eq!(mine.argv(&task(), wg).unwrap(), ["agent", "--task=t-1"]);
        assert!(mine.conversational);
        assert!(Executor::resolve("nope", &config).is_err());
    }
}
