use clap::Args;

use crate::cli::{check_id, Ctx};
use crate::error::{not_found, CliResult};
use crate::store::tasklog::{self, LogRecord};
use crate::time::now_rfc3339;

/// Add a progress note to a task's log (`.wg/tasks/<id>/log.jsonl`), or show the log.
#[derive(Debug, Args)]
pub struct LogArgs {
    pub id: String,
    /// The note. Without it, the log is printed.
    pub text: Option<String>,
}

pub fn cmd_log(ctx: &Ctx, args: &LogArgs) -> CliResult {
    check_id(&args.id)?;
    // An index lookup under the writer lock: no full parse of a large graph for one note.
    let w = ctx.store.writer()?;
    if !w.exists(&args.id) {
        return Err(not_found(&args.id));
    }
    match &args.text {
        Some(text) => {
            crate::cli::fence::check(ctx, &w, &args.id, "wg log")?;
            drop(w);
            let rec = LogRecord::note(&now_rfc3339(), &ctx.actor, text);
            tasklog::append(&ctx.layout, &args.id, &rec, ctx.store.fsync)?;
            ctx.out.either(&rec, String::new)?;
        }
        None => {
            drop(w);
            let records = tasklog::read(&ctx.layout.task_log(&args.id))
                .map_err(crate::store::StoreError::from)?;
            ctx.out.either(&records, || {
                records
                    .iter()
                    .map(|r| r.human())
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(())
}
