//! A prompt the model's context window cannot hold (`ErrorKind::ContextOverflow`, recognised
//! in crate::outcome): the smaller history budget the turn is retried with, and the budget
//! later turns keep. Pure.

use crate::conversation::OutboxRecord;

/// Outbox fields of a turn that was retried after an overflow: the budget it used, and the
/// configured budget it was cut from. Later turns keep the smaller budget while the
/// configured one is unchanged.
pub const BUDGET_FIELD: &str = "history_budget_chars";
pub const FROM_FIELD: &str = "overflow_from_budget_chars";

/// The budget to retry an overflowing turn with: half of what was replayed. `None` when no
/// history was replayed, so a smaller budget cannot help.
pub fn retry_budget(history_chars: usize, budget: usize) -> Option<usize> {
    let replayed = history_chars.min(budget);
    (replayed > 0).then_some(replayed / 2)
}

/// The budget for the next turn: the configured one, unless the newest overflow retry cut it
/// down from that same configured budget.
pub fn effective_budget(configured: usize, outbox: &[OutboxRecord]) -> usize {
    let field = |r: &OutboxRecord, k: &str| r.extra.get(k).and_then(|v| v.as_u64());
    outbox
        .iter()
        .rev()
        .find_map(|r| Some((field(r, FROM_FIELD)?, field(r, BUDGET_FIELD)?)))
        .filter(|&(from, _)| from == configured as u64)
        .map_or(configured, |(_, to)| to as usize)
}

/// The line wg puts before the reply of a retried turn, so the person reading it knows.
pub fn reply_note(from: usize, to: usize) -> String {
    format!(
        "[wg: the prompt overflowed the model's context window; this turn was retried with the \
         history cut to {to} characters (from a budget of {from}). Later turns keep the smaller \
         budget; set endpoint.model_context_window or codex.history_budget_chars to fit the \
         model.]"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_halves_what_was_replayed() {
        assert_eq!(retry_budget(30_000, 200_000), Some(15_000));
        assert_eq!(retry_budget(300_000, 200_000), Some(100_000));
        assert_eq!(retry_budget(0, 200_000), None);
    }

    #[test]
    fn a_cut_budget_lasts_while_the_configured_one_is_unchanged() {
        let rec = |from: Option<u64>, to: Option<u64>| {
            let mut r = OutboxRecord::new(1, crate::conversation::Role::Assistant, "");
            if let (Some(f), Some(t)) = (from, to) {
                r.extra.insert(FROM_FIELD.into(), f.into());
                r.extra.insert(BUDGET_FIELD.into(), t.into());
            }
            r
        };
        assert_eq!(effective_budget(1000, &[]), 1000);
        let out = vec![rec(Some(1000), Some(400)), rec(None, None)];
        assert_eq!(effective_budget(1000, &out), 400);
        assert_eq!(effective_budget(2000, &out), 2000, "config changed: lifted");
        let out = vec![rec(Some(1000), Some(400)), rec(Some(1000), Some(150))];
        assert_eq!(effective_budget(1000, &out), 150);
    }
}
