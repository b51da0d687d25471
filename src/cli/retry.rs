use std::time::{Duration, SystemTime};

use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::conversation;
use crate::error::{user_error, CliResult};
use crate::lifecycle::{transition, Change};
use crate::model::{Task, TaskStatus};
use crate::outcome::ErrorKind;
use crate::time::{parse_duration, parse_rfc3339};

/// Open a failed or done task again, or every failed task at once (`--failed`). Transcripts
/// and logs are kept.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "failed"])))]
pub struct RetryArgs {
    pub id: Option<String>,
    /// Retry every failed task (narrowed by --since and --error-kind).
    #[arg(long)]
    pub failed: bool,
    /// With --failed: only tasks that failed within this long, e.g. `2h`.
    #[arg(long, requires = "failed", value_name = "DURATION")]
    pub since: Option<String>,
    /// With --failed: only tasks whose last turn ended in this error kind (docs/handler-log.md),
    /// e.g. `unreachable`, `rate-limited`, `loop`.
    #[arg(long, requires = "failed", value_name = "KIND")]
    pub error_kind: Option<ErrorKind>,
}

/// Which failed tasks `--failed` retries. Pure: `kind_of` gives a task's last error kind.
pub fn select<'a>(
    tasks: impl Iterator<Item = &'a Task>,
    now: SystemTime,
    since: Option<Duration>,
    kind: Option<ErrorKind>,
    kind_of: impl Fn(&Task) -> Option<ErrorKind>,
) -> Vec<&'a Task> {
    let mut out: Vec<&Task> = tasks
        .filter(|t| t.status == TaskStatus::Failed)
        .filter(|t| {
            since.is_none_or(|s| {
                parse_rfc3339(&t.updated)
                    .is_some_and(|at| now.duration_since(at).unwrap_or_default() <= s)
            })
        })
        .filter(|t| kind.is_none_or(|k| kind_of(t) == Some(k)))
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn reopen(ctx: &Ctx, w: &mut crate::store::Writer<'_>, id: &str) -> CliResult<Task> {
    let change = Change {
        to: TaskStatus::Open,
        reason: Some("retry requested"),
        actor: &ctx.actor,
    };
    transition(w, id, change, |t| t.failure_reason = None)
}

pub fn cmd_retry(ctx: &Ctx, args: &RetryArgs) -> CliResult {
    if let Some(id) = &args.id {
        check_id(id)?;
        let mut w = ctx.store.writer()?;
        let task = reopen(ctx, &mut w, id)?;
        w.commit()?;
        ctx.out
            .either(&task, || format!("{} is open again", task.id))?;
        return Ok(());
    }
    let since = args
        .since
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| user_error(format!("--since: {e}")).hinted("a duration such as 30m or 2h"))?;
    let graph = ctx.store.load()?;
    let chosen: Vec<String> = select(
        graph.tasks.values(),
        SystemTime::now(),
        since,
        args.error_kind,
        |t| conversation::last_error(&ctx.layout, &t.id).map(|e| e.kind),
    )
    .into_iter()
    .map(|t| t.id.clone())
    .collect();
    let mut w = ctx.store.writer()?;
    let mut opened = Vec::new();
    for id in &chosen {
        opened.push(reopen(ctx, &mut w, id)?);
    }
    w.commit()?;
    ctx.out.either(&opened, || {
        if opened.is_empty() {
            "no failed task matches".to_string()
        } else {
            let ids: Vec<&str> = opened.iter().map(|t| t.id.as_str()).collect();
            format!("{} open again: {}", ids.len(), ids.join(", "))
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339;

    #[test]
    fn failed_tasks_are_chosen_by_age_and_error_kind() {
        let now = SystemTime::now();
        let at = |ago: u64| format_rfc3339(now - Duration::from_secs(ago));
        let mut tasks = Vec::new();
        for (id, status, ago) in [
            ("old", TaskStatus::Failed, 7200),
            ("new", TaskStatus::Failed, 60),
            ("net", TaskStatus::Failed, 30),
            ("fine", TaskStatus::Done, 10),
        ] {
            let mut t = Task::new(id.into(), id.into(), &at(ago));
            t.status = status;
            tasks.push(t);
        }
        let kind = |t: &Task| (t.id == "net").then_some(ErrorKind::Unreachable);
        let ids = |v: Vec<&Task>| v.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(select(tasks.iter(), now, None, None, kind)),
            ["net", "new", "old"]
        );
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(
            ids(select(tasks.iter(), now, hour, None, kind)),
            ["net", "new"]
        );
        assert_eq!(
            ids(select(
                tasks.iter(),
                now,
                hour,
                Some(ErrorKind::Unreachable),
                kind
            )),
            ["net"]
        );
        assert!(select(tasks.iter(), now, None, Some(ErrorKind::Loop), kind).is_empty());
    }
}
