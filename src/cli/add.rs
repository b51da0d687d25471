use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::{usage_error, user_error, CliResult};
use crate::model::{slugify, Task};
use crate::store::Writer;
use crate::time::now_rfc3339;

/// Add a task; prints its id. It is ready as soon as every `--after` task is done.
#[derive(Debug, Args)]
pub struct AddArgs {
    pub title: String,
    /// Id to use (lowercase letters, digits, `-`). Default: derived from the title.
    #[arg(long)]
    pub id: Option<String>,
    /// Description: what to do, constraints, how to know it is done.
    #[arg(short, long = "description")]
    pub description: Option<String>,
    /// A task this one waits for (repeatable).
    #[arg(long, value_name = "ID")]
    pub after: Vec<String>,
    /// Executor for this task (overrides the project's).
    #[arg(short = 'x', long)]
    pub executor: Option<String>,
    /// Model for this task (overrides the project's).
    #[arg(short, long)]
    pub model: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Higher runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// Automatic retries after a failure (default: the project's).
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Hard time limit for one agent run, e.g. 30m.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// One argv element of the command for the `shell` executor (repeat, in order).
    #[arg(long = "command", value_name = "ARG", allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Where the agent works: `worktree` (its own git worktree on branch wg/<id>) or
    /// `shared` (the project root). Default: `workspace.mode` of the config.
    #[arg(long, value_name = "MODE", value_parser = ["worktree", "shared"])]
    pub workspace: Option<String>,
    /// A path (relative to the project root) this shared task holds while it runs; no task
    /// whose lock path overlaps runs at the same time (repeatable).
    #[arg(long = "lock", value_name = "PATH")]
    pub lock: Vec<String>,
    /// A command (run with `sh -c` in the task's workspace) that wg runs itself after the
    /// agent's `wg done`; the task counts as done only when it exits 0 (repeatable, in
    /// order). Replaces `[checks] commands` for this task. See docs/landing.md.
    #[arg(long = "check", value_name = "CMD")]
    pub check: Vec<String>,
    /// What the task's worktree starts from (branch, tag or commit). Default:
    /// `workspace.base`, else the project's HEAD.
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Where the agent runs: `local` (a child of the coordinator) or `slurm` (a batch job).
    /// Default: the executor's `launcher`, else `coordinator.launcher`.
    #[arg(long, value_name = "LAUNCHER", value_parser = ["local", "slurm"])]
    pub launcher: Option<String>,
    /// One extra `sbatch` argument for this task's jobs, e.g. `--slurm-arg=--gres=gpu:1`
    /// (repeatable; one argv element each, no shell).
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub slurm_args: Vec<String>,
}

/// Executors wg knows, plus `[executors.NAME]` entries of the config.
pub fn check_executor(ctx: &Ctx, name: &str) -> CliResult<()> {
    let builtin = ["codex", "claude", "shell", "mock"];
    if builtin.contains(&name) || ctx.config.executors.contains_key(name) {
        return Ok(());
    }
    Err(usage_error(format!("unknown executor `{name}`"))
        .hinted("built in: codex, claude, shell, mock; add others under [executors.NAME] in .wg/config.toml"))
}

/// Checks that every dependency exists (live or archived).
pub fn check_deps(w: &Writer<'_>, task_id: &str, after: &[String]) -> CliResult<()> {
    for dep in after {
        check_id(dep)?;
        if dep == task_id {
            return Err(user_error(format!(
                "task `{task_id}` cannot depend on itself"
            )));
        }
        if !w.exists(dep) {
            return Err(user_error(format!(
                "task `{task_id}` cannot depend on `{dep}`: no such task"
            ))
            .hinted("add the dependency first, or check the id with `wg list`"));
        }
    }
    Ok(())
}

pub fn cmd_add(ctx: &Ctx, args: &AddArgs) -> CliResult {
    crate::cli::check_title(&args.title)?;
    if let Some(id) = &args.id {
        check_id(id)?;
    }
    if let Some(x) = &args.executor {
        check_executor(ctx, x)?;
    }
    let timeout = args
        .timeout
        .as_deref()
        .map(crate::time::Dur::parse)
        .transpose()
        .map_err(usage_error)?;
    let mut locks = Vec::new();
    for l in &args.lock {
        let l = crate::workspace::validate_lock(l).map_err(usage_error)?;
        if !locks.contains(&l) {
            locks.push(l);
        }
    }
    if args.check.iter().any(|c| c.trim().is_empty()) {
        return Err(usage_error("--check needs a command, not an empty string"));
    }
    let mut w = ctx.store.writer()?;
    let id = match &args.id {
        Some(id) => {
            if w.exists(id) {
                return Err(user_error(format!("task `{id}` already exists"))
                    .hinted("choose another --id, or leave it out to derive one from the title"));
            }
            id.clone()
        }
        None => unique_id(&w, &slugify(&args.title)),
    };
    let mut after = Vec::new();
    for dep in &args.after {
        if !after.contains(dep) {
            after.push(dep.clone());
        }
    }
    check_deps(&w, &id, &after)?;
    let now = now_rfc3339();
    let mut task = Task::new(id.clone(), args.title.clone(), &now);
    task.description = args.description.clone().unwrap_or_default();
    task.after = after;
    task.executor = args.executor.clone();
    task.model = args.model.clone();
    task.tags = args.tags.clone();
    task.priority = args.priority;
    task.max_retries = args.max_retries;
    task.timeout = timeout;
    task.command = args.command.clone();
    task.workspace = args.workspace.clone();
    use crate::workspace::field;
    if !locks.is_empty() {
        task.extra.insert(field::LOCK_PATHS.into(), locks.into());
    }
    if !args.check.is_empty() {
        task.extra.insert(
            crate::landing::CHECKS_FIELD.into(),
            args.check.clone().into(),
        );
    }
    if let Some(b) = &args.base {
        task.extra.insert(field::BASE.into(), b.clone().into());
    }
    if let Some(l) = &args.launcher {
        task.extra
            .insert(crate::slurm::field::LAUNCHER.into(), l.clone().into());
    }
    if !args.slurm_args.is_empty() {
        task.extra.insert(
            crate::slurm::field::SLURM_ARGS.into(),
            args.slurm_args.clone().into(),
        );
    }
    w.put(std::slice::from_ref(&task))?;
    w.commit()?;
    ctx.out.either(&task, || id.clone())?;
    Ok(())
}

/// `base`, or `base-2`, `base-3`… whichever is free.
pub fn unique_id(w: &Writer<'_>, base: &str) -> String {
    if !w.exists(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !w.exists(candidate))
        .expect("an unbounded range always finds a free id")
}
