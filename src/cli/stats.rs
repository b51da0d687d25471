use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;

use crate::cli::Ctx;
use crate::conversation::read_outbox;
use crate::error::CliResult;
use crate::evaluate;
use crate::model::TaskStatus;
use crate::pricing::Tokens;

/// Per executor and model: tasks done and failed, mean evaluation score, tokens, turns, time,
/// the share of input tokens served from the provider's prompt cache, and the cost at the
/// prices in `[pricing."MODEL"]`.
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
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
    /// cached / input tokens; `None` without input.
    pub cached_share: Option<f64>,
    /// USD at the model's `[pricing]` entry; `None` when it has none.
    pub cost_usd: Option<f64>,
    pub turns: usize,
    pub turn_time_ms: u64,
}

pub fn cmd_stats(ctx: &Ctx, _args: &StatsArgs) -> CliResult {
    let graph = ctx.store.load()?;
    let mut tasks: BTreeMap<String, crate::model::Task> = ctx.store.load_archive()?;
    tasks.extend(graph.tasks);
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut score_sums: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut tokens: BTreeMap<(String, String), Tokens> = BTreeMap::new();
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
            let price = ctx.config.price_for(&row.model);
            let sum = tokens.entry(key.clone()).or_default();
            for r in read_outbox(&ctx.layout, &t.id).unwrap_or_default() {
                row.turns += 1;
                row.turn_time_ms += r.duration_ms;
                sum.add(&r.usage.unwrap_or_default(), price.as_ref());
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
            let t = tokens.remove(&key).unwrap_or_default();
            row.input_tokens = t.input_tokens;
            row.cached_input_tokens = t.cached_input_tokens;
            row.output_tokens = t.output_tokens;
            row.reasoning_output_tokens = t.reasoning_output_tokens;
            row.cached_share = t.cached_share;
            row.cost_usd = t.cost_usd;
            if row.evaluated > 0 {
                row.mean_score =
                    Some((score_sums[&key] / row.evaluated as f64 * 1000.0).round() / 1000.0);
            }
            row
        })
        .collect();
    ctx.out.either(&rows, || {
        let mut s = format!(
            "{:<10} {:<24} {:>5} {:>5} {:>6} {:>6} {:>10} {:>6} {:>9} {:>6} {:>9}\n",
            "executor",
            "model",
            "tasks",
            "done",
            "failed",
            "score",
            "tokens",
            "turns",
            "time",
            "cached",
            "cost"
        );
        for r in &rows {
            s.push_str(&format!(
                "{:<10} {:<24} {:>5} {:>5} {:>6} {:>6} {:>10} {:>6} {:>8.1}s {:>6} {:>9}\n",
                r.executor,
                r.model,
                r.tasks,
                r.done,
                r.failed,
                r.mean_score.map_or("-".to_string(), |m| format!("{m:.2}")),
                r.input_tokens + r.output_tokens,
                r.turns,
                r.turn_time_ms as f64 / 1000.0,
                r.cached_share
                    .map_or("-".to_string(), |c| format!("{:.0}%", c * 100.0)),
                r.cost_usd.map_or("-".to_string(), crate::pricing::usd)
            ));
        }
        s
    })?;
    Ok(())
}
