//! What an agent runs with: model, endpoint, key variable, binary, working directory,
//! timeouts and sandbox, worked out in one place from the settings, the task and a run's own
//! overrides. The coordinator's dispatch, the handler and `wg doctor` all read this plan, so
//! what the doctor checks is what the agents use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, Sandbox, WireApi};
use crate::model::Task;

/// A run's own choices, ahead of the task's and the config's (`wg handler --model/--endpoint`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides<'a> {
    pub model: Option<&'a str>,
    pub endpoint: Option<&'a str>,
}

/// The coordinator's limits on one agent run (`[coordinator]`; a task's `timeout` wins).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLimits {
    pub hard: Option<Duration>,
    pub idle: Option<Duration>,
    pub first_output: Option<Duration>,
}

/// The handler's limits on one turn (`[handler]`), and the stop's grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnLimits {
    pub first_output: Duration,
    pub idle: Duration,
    pub hard: Duration,
    pub grace: Duration,
    pub stream_idle: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentPlan {
    /// The executor's name (`codex`, `claude`, `mock`, or `[executors.NAME]`).
    pub executor: String,
    pub model: Option<String>,
    /// The endpoint the agent talks to: the run's, else `[executors.NAME] endpoint`, else
    /// `endpoint.url`. `None`: the agent CLI's own login.
    pub endpoint: Option<String>,
    /// The variable holding the key (never the key).
    pub key_env: String,
    pub wire_api: WireApi,
    /// The agent CLI (codex's or claude's binary setting); `None` for other executors.
    pub binary: Option<String>,
    /// Where the agent works: the task's worktree, its own workspace path, or the root.
    pub workdir: PathBuf,
    /// The task's worktree, when it has one.
    pub worktree: Option<PathBuf>,
    pub sandbox: Sandbox,
    pub run: RunLimits,
    pub turn: TurnLimits,
}

/// The plan for executor `executor` running `task` (`None`: the project-wide plan, as
/// `wg doctor` checks it) in the project at `root`. A worktree the task records but that is
/// gone is an error: running the agent in the project root instead would put its changes on
/// the wrong branch.
pub fn plan(
    config: &Config,
    executor: &str,
    task: Option<&Task>,
    root: &Path,
    o: Overrides<'_>,
) -> Result<AgentPlan, String> {
    let ep = config.endpoint_for(executor);
    let nonempty = |s: Option<&str>| s.filter(|s| !s.trim().is_empty()).map(str::to_string);
    let endpoint = nonempty(o.endpoint).or(ep.url);
    if let Some(u) = &endpoint {
        crate::config::validate_endpoint_url(u)?;
    }
    let model = nonempty(o.model)
        .or_else(|| task.and_then(|t| t.model.clone()))
        .or(ep.model);
    let worktree = task.and_then(crate::workspace::recorded_worktree);
    if let (Some(t), Some(d)) = (task, &worktree) {
        if !d.is_dir() {
            return Err(format!(
                "task `{}`: its worktree {} is gone; `wg retry {}` makes a new one",
                t.id,
                d.display(),
                t.id
            ));
        }
    }
    let workdir = match (&worktree, task.and_then(|t| t.workspace.as_deref())) {
        (Some(d), _) => d.clone(),
        (None, Some(w)) if w != "shared" && w != "worktree" => root.join(w),
        _ => root.to_path_buf(),
    };
    let (c, h) = (&config.coordinator, &config.handler);
    Ok(AgentPlan {
        executor: executor.to_string(),
        model,
        endpoint,
        key_env: ep.key_env,
        wire_api: config.endpoint.wire_api.unwrap_or(WireApi::Responses),
        binary: match executor {
            "codex" => Some(config.codex.binary.clone()),
            "claude" => Some(config.claude.binary.clone()),
            _ => None,
        },
        workdir,
        worktree,
        sandbox: config.codex.sandbox,
        run: run_limits(config, task),
        turn: TurnLimits {
            first_output: h.first_output_timeout.get(),
            idle: h.idle_timeout.get(),
            hard: h.turn_timeout.get(),
            grace: c.grace_period.get(),
            stream_idle: h.stream_idle_timeout.get(),
        },
    })
}

/// The coordinator's limits on a run of `task`: the task's `timeout`, else the configured one.
pub fn run_limits(config: &Config, task: Option<&Task>) -> RunLimits {
    let c = &config.coordinator;
    let d = |v: Option<&crate::time::Dur>| v.map(|d| d.get());
    RunLimits {
        hard: d(task.and_then(|t| t.timeout.as_ref())).or(d(c.hard_timeout.as_ref())),
        idle: d(c.idle_timeout.as_ref()),
        first_output: d(c.first_output_timeout.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    #[test]
    fn an_executor_override_wins_over_the_project_endpoint_and_a_run_over_both() {
        let c = config(
            "model = \"m\"\n[endpoint]\nurl = \"http://a/v1\"\napi_key_env = \"A_KEY\"\n[executors.codex]\nendpoint = \"http://b/v1\"\napi_key_env = \"B_KEY\"\n",
        );
        let root = Path::new("/p");
        let p = plan(&c, "codex", None, root, Overrides::default()).unwrap();
        assert_eq!(p.endpoint.as_deref(), Some("http://b/v1"));
        assert_eq!(
            (p.key_env.as_str(), p.model.as_deref()),
            ("B_KEY", Some("m"))
        );
        assert_eq!(p.binary.as_deref(), Some("codex"));
        let claude = plan(&c, "claude", None, root, Overrides::default()).unwrap();
        assert_eq!(claude.endpoint.as_deref(), Some("http://a/v1"));
        let o = Overrides {
            model: Some("x"),
            endpoint: Some("http://c/v1"),
        };
        let p = plan(&c, "codex", None, root, o).unwrap();
        assert_eq!(
            (p.endpoint.as_deref(), p.model.as_deref()),
            (Some("http://c/v1"), Some("x"))
        );
        let bad = Overrides {
            endpoint: Some("c:1"),
            ..o
        };
        assert!(plan(&c, "codex", None, root, bad).is_err());
    }

    #[test]
    fn the_task_gives_model_timeout_and_workdir() {
        let c = config("[coordinator]\nhard_timeout = \"1h\"\nidle_timeout = \"5m\"\n");
        let mut t = Task::new("t".into(), "T".into(), "now");
        let root = Path::new("/p");
        let p = plan(&c, "mock", Some(&t), root, Overrides::default()).unwrap();
        assert_eq!(p.run.hard, Some(Duration::from_secs(3600)));
        assert_eq!(p.run.idle, Some(Duration::from_secs(300)));
        assert_eq!((p.workdir.as_path(), p.binary), (root, None));
        t.timeout = Some(crate::time::Dur::parse("90s").unwrap());
        t.model = Some("tm".into());
        t.workspace = Some("sub".into());
        let p = plan(&c, "mock", Some(&t), root, Overrides::default()).unwrap();
        assert_eq!(p.run.hard, Some(Duration::from_secs(90)));
        assert_eq!(p.model.as_deref(), Some("tm"));
        assert_eq!(p.workdir, Path::new("/p/sub"));
    }
}
