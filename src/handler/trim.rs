//! Which earlier turns the prompt replays: a cut point that moves in large steps, so that a
//! server's prefix cache (vLLM, SGLang) can reuse everything before the newest turn. Pure.
//!
//! Dropping the oldest turn each time the history passes its budget changes the start of the
//! replayed history on every turn, and with it everything after the brief: measured with the
//! real codex, only about half of each prompt was then a prefix of the previous one. Here the
//! history grows until it passes the budget; then the oldest turns are dropped until what is
//! left fits `KEEP_PERCENT` of the budget, and the cut stays there until the history passes
//! the budget again. Between two cuts every prompt extends the previous one.

/// What is left of the budget right after a cut. Lower means fewer cuts (one every
/// `100 - KEEP_PERCENT` percent of the budget of new history) but less history on average.
pub const KEEP_PERCENT: usize = 50;

/// The index of the first earlier turn to replay, given each earlier turn's rendered length.
///
/// Deterministic in `lens` and `budget` alone (no state is kept between turns): the cut is
/// found by replaying the growth of the history one turn at a time, so the cut for `n + 1`
/// turns equals the cut for `n` unless turn `n + 1` pushed the history over the budget. The
/// newest turn is always kept, even when it alone is over the budget.
pub fn stable_cut(lens: &[usize], budget: usize) -> usize {
    let keep = budget / 100 * KEEP_PERCENT + budget % 100 * KEEP_PERCENT / 100;
    let mut cut = 0;
    let mut sum = 0usize;
    for (k, &len) in lens.iter().enumerate() {
        sum += len;
        if sum > budget {
            while cut < k && sum > keep {
                sum -= lens[cut];
                cut += 1;
            }
        }
    }
    cut
}

/// The index of the first earlier turn the old layout replayed: the newest turns that fit,
/// one dropped per turn once the budget is reached. Kept for the benchmark's comparison.
pub fn sliding_cut(lens: &[usize], budget: usize) -> usize {
    let mut used = 0usize;
    let mut cut = lens.len();
    for (i, &len) in lens.iter().enumerate().rev() {
        if cut < lens.len() && used + len > budget {
            break;
        }
        used += len;
        cut = i;
    }
    cut
}

/// The share of `cur` that is a prefix of `prev` (0.0 to 1.0): what a prefix cache can reuse
/// from the previous prompt. Counted in bytes; an empty `cur` counts as fully shared.
pub fn prefix_share(prev: &str, cur: &str) -> f64 {
    if cur.is_empty() {
        return 1.0;
    }
    let common = prev
        .as_bytes()
        .iter()
        .zip(cur.as_bytes())
        .take_while(|(a, b)| a == b)
        .count();
    common as f64 / cur.len() as f64
}

/// The median of `xs` (the lower middle for an even count); `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_moves_only_when_the_budget_is_passed_and_then_by_half() {
        let lens = vec![100; 30];
        let cuts: Vec<usize> = (1..=30).map(|n| stable_cut(&lens[..n], 1000)).collect();
        // 10 turns fit; the 11th passes the budget: down to 500 (turns 6..=10 kept).
        assert_eq!(&cuts[..10], &[0; 10]);
        assert_eq!(cuts[10], 6);
        // Then it stays until the history passes 1000 again.
        assert!(cuts[10..16].iter().all(|&c| c == 6), "{cuts:?}");
        assert!(cuts[16] > 6);
        let moves = cuts.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(moves <= 5, "{moves} cuts in 30 turns: {cuts:?}");
        // The old layout moved on every turn past the budget.
        let old: Vec<usize> = (1..=30).map(|n| sliding_cut(&lens[..n], 1000)).collect();
        assert_eq!(old.windows(2).filter(|w| w[0] != w[1]).count(), 20);
    }

    #[test]
    fn the_newest_turn_stays_even_when_alone_over_the_budget() {
        assert_eq!(stable_cut(&[10, 5000], 1000), 1);
        assert_eq!(stable_cut(&[5000], 1000), 0);
        assert_eq!(stable_cut(&[5000, 10], 1000), 1);
        assert_eq!(stable_cut(&[], 1000), 0);
        assert_eq!(stable_cut(&[1, 2, 3], 0), 2);
    }

    #[test]
    fn prefix_share_and_median() {
        assert_eq!(prefix_share("abcd", "abxy"), 0.5);
        assert_eq!(prefix_share("", "ab"), 0.0);
        assert_eq!(prefix_share("ab", "ab"), 1.0);
        assert_eq!(median(&[0.3, 0.1, 0.2]), Some(0.2));
        assert_eq!(median(&[]), None);
    }
}
