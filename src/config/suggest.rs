//! "Did you mean" for unknown keys in `config.toml`. Pure.

/// Adds "did you mean" to serde's unknown-field error. The known names come from the error
/// itself, which serde builds from the typed structs (`deny_unknown_fields`): a field added to
/// a struct is known at once, with no list to keep.
pub fn with_suggestion(err: &str) -> String {
    let Some(rest) = err.split("unknown field `").nth(1) else {
        return err.to_string();
    };
    let Some((unknown, rest)) = rest.split_once('`') else {
        return err.to_string();
    };
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let best = known
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min();
    match best {
        Some((_, k)) => format!("{err}\nhint: did you mean `{k}`?"),
        None => err.to_string(),
    }
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}
