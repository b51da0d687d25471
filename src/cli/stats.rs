use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;

use crate::cli::Ctx;
use crate::conversation::read_outbox;
use crate::error::CliResult;
use crate::evaluate;
use crate::model::TaskStatus;

/// Per executor and model: tasks done and failed, mean evaluation score, tokens, turns, time.
#[derive(Debug, Args)]
pub struct StatsArgs {}

#[derive(Debug, Default, Serialize)]
pub struct Row {
    pub executor: String,
    pub model: String,
    pub tasks: usize,
    pub done: usize,
    pub failed: usize,
    pub evaluated: usize,
    pub mean_score: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub turns: usize,
    pub turn_time_ms: u64,
}

pub fn cmd_stats(ctx: &Ctx, _args: &StatsArgs) -> CliResult {
    let graph = ctx.store.load()?;
    let mut tasks: BTreeMap<String, crate::model::Task> = ctx.store.load_archive()?;
    tasks.extend(graph.tasks);
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut score_sums: BTreeMap<(String, String), f64> = BTreeMap::new();
    for t in tasks.values() {
        let executor = t
            .executor
            .clone()
            .unwrap_or_else(|| ctx.config.executor.clone());
        let model = t
            .model
            .clone()
            .or_else(|| ctx.config.model.clone())
            .unwrap_or_else(|| "-".into());
        let key = (executor.clone(), model.clone());
        let row = rows.entry(key.clone()).or_insert_with(|| Row {
            executor,
            model,
            ..Row::default()
        });
        row.tasks += 1;
        match t.status {
            TaskStatus::Done => row.done += 1,
            TaskStatus::Failed => row.failed += 1,
            _ => {}
        }
        if ctx.layout.task_dir(&t.id).is_dir() {
            for r in read_outbox(&ctx.layout, &t.id).unwrap_or_default() {
                row.turns += 1;
                row.turn_time_ms += r.duration_ms;
                if let Some(u) = r.usage {
                    row.input_tokens += u.input_tokens;
                    row.output_tokens += u.output_tokens;
                }
            }
            if let Some(total) = evaluate::load(&ctx.layout, &t.id).and_then(|e| e.total) {
                row.evaluated += 1;
                *score_sums.entry(key).or_default() += total;
            }
        }
    }
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(key, mut row)| {
            if row.evaluated > 0 {
                row.mean_score =
                    Some((score_sums[&key] / row.evaluated as f64 * 1000.0).round() / 1000.0);
            }
            row
        })
        .collect();
    ctx.out.either(&rows, || {
        let mut s = format!(
            "{:<10} {:<24} {:>5} {:>5} {:>6} {:>6} {:>10} {:>6} {:>9}\n",
            "executor", "model", "tasks", "done", "failed", "score", "tokens", "turns", "time"
        );
        for r in &rows {
            s.push_str(&format!(
                "{:<10} {:<24} {:>5} {:>5} {:>6} {:>6} {:>10} {:>6} {:>8.1}s\n",
                r.executor,
                r.model,
                r.tasks,
                r.done,
                r.failed,
                r.mean_score.map_or("-".to_string(), |m| format!("{m:.2}")),
                r.input_tokens + r.output_tokens,
                r.turns,
                r.turn_time_ms as f64 / 1000.0
            ));
        }
        s
    })?;
    Ok(())
}
