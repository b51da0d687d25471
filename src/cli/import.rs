use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::cli::Ctx;
use crate::error::{usage_error, user_error, CliResult};
use crate::model::graph::topological_order;
use crate::model::{slugify, validate_id, Task, TaskStatus};
use crate::time::now_rfc3339;

/// Add many tasks from JSON Lines in one locked write. Each line needs only `title`; any other
/// task field (`id`, `after`, `description`, `priority`…) is optional.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A JSONL file, or `-` for standard input.
    pub file: PathBuf,
}

#[derive(Deserialize)]
struct ImportRecord {
    title: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<TaskStatus>,
    #[serde(default)]
    created: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

pub fn cmd_import(ctx: &Ctx, args: &ImportArgs) -> CliResult {
    let mut text = String::new();
    if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(&args.file)
            .map_err(|e| usage_error(format!("cannot read {}: {e}", args.file.display())))?;
    }
    let now = now_rfc3339();
    let mut w = ctx.store.writer()?;
    let mut batch: BTreeMap<String, Task> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = || format!("{}:{}", args.file.display(), n + 1);
        let rec: ImportRecord = serde_json::from_str(line)
            .map_err(|e| user_error(format!("{}: {e}", where_())).hinted("nothing was imported"))?;
        let id = match rec.id {
            Some(id) => {
                validate_id(&id).map_err(|e| {
                    user_error(format!("{}: {e}", where_())).hinted("nothing was imported")
                })?;
                if w.exists(&id) || batch.contains_key(&id) {
                    return Err(
                        user_error(format!("{}: task `{id}` already exists", where_()))
                            .hinted("nothing was imported"),
                    );
                }
                id
            }
            None => {
                let base = slugify(&rec.title);
                let mut candidate = base.clone();
                let mut k = 2;
                while w.exists(&candidate) || batch.contains_key(&candidate) {
                    candidate = format!("{base}-{k}");
                    k += 1;
                }
                candidate
            }
        };
        // Everything else goes through the Task deserializer, so field types are checked.
        let mut value = serde_json::Value::Object(rec.rest);
        value["id"] = id.clone().into();
        crate::cli::check_title(&rec.title).map_err(|e| {
            user_error(format!("{}: {}", where_(), e.error)).hinted("nothing was imported")
        })?;
        value["title"] = rec.title.into();
        value["status"] = serde_json::to_value(rec.status.unwrap_or(TaskStatus::Open))
            .expect("status serializes");
        value["created"] = rec.created.unwrap_or_else(|| now.clone()).into();
        value["updated"] = now.clone().into();
        let task: Task = serde_json::from_value(value)
            .map_err(|e| user_error(format!("{}: {e}", where_())).hinted("nothing was imported"))?;
        order.push(id.clone());
        batch.insert(id, task);
    }
    // Dependencies: on existing tasks or on tasks in the same batch; no cycles.
    let mut seen_deps = HashSet::new();
    for t in batch.values() {
        for dep in &t.after {
            validate_id(dep).map_err(|e| {
                user_error(format!("task `{}`: {e}", t.id)).hinted("nothing was imported")
            })?;
            if !batch.contains_key(dep) && !w.exists(dep) && seen_deps.insert(dep.clone()) {
                return Err(user_error(format!(
                    "task `{}` cannot depend on `{dep}`: no such task",
                    t.id
                ))
                .hinted("nothing was imported"));
            }
        }
    }
    let sorted = topological_order(&batch);
    let placed: HashSet<&str> = sorted.iter().map(|t| t.id.as_str()).collect();
    debug_assert_eq!(placed.len(), batch.len());
    if let Some(t) = first_in_cycle(&batch) {
        return Err(
            user_error(format!("the imported tasks form a cycle through `{t}`"))
                .hinted("nothing was imported"),
        );
    }
    let tasks: Vec<Task> = order.iter().map(|id| batch[id].clone()).collect();
    w.put(&tasks)?;
    w.commit()?;
    let value = serde_json::json!({"imported": tasks.len()});
    ctx.out
        .either(&value, || format!("imported {} tasks", tasks.len()))?;
    Ok(())
}

/// A task on a dependency cycle within the batch, if any (edges to existing tasks cannot
/// close a cycle: nothing existing depends on a new task).
fn first_in_cycle(batch: &BTreeMap<String, Task>) -> Option<String> {
    let mut indegree: BTreeMap<&str, usize> = batch.keys().map(|k| (k.as_str(), 0)).collect();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in batch.values() {
        for d in t.after.iter().filter(|d| batch.contains_key(*d)) {
            *indegree.get_mut(t.id.as_str()).expect("indexed") += 1;
            dependents.entry(d.as_str()).or_default().push(&t.id);
        }
    }
    let mut stack: Vec<&str> = indegree
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut done = 0;
    while let Some(id) = stack.pop() {
        done += 1;
        for c in dependents.get(id).cloned().unwrap_or_default() {
            let n = indegree.get_mut(c).expect("indexed");
            *n -= 1;
            if *n == 0 {
                stack.push(c);
            }
        }
    }
    (done < batch.len()).then(|| {
        indegree
            .into_iter()
            .find(|(_, n)| *n > 0)
            .map(|(k, _)| k.to_string())
            .expect("a cycle leaves a node with indegree")
    })
}
