//! The evaluator's verdict: parsing the model's reply, checking it, weighting it. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The dimensions every verdict scores, in the order they are shown.
pub const DIMENSIONS: [&str; 7] = [
    "correctness",
    "completeness",
    "constraint_fidelity",
    "intent_fidelity",
    "style",
    "downstream_usability",
    "efficiency",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub scores: BTreeMap<String, f64>,
    #[serde(default)]
    pub reasons: BTreeMap<String, String>,
    #[serde(default)]
    pub notes: String,
}

/// Finds the JSON object in a reply: the whole text, a fenced block, or the outermost braces.
fn json_candidates(reply: &str) -> Vec<&str> {
    let mut out = vec![reply.trim()];
    let mut rest = reply;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        out.push(after[body_start..body_start + end].trim());
        rest = &after[body_start + end + 3..];
    }
    if let (Some(a), Some(b)) = (reply.find('{'), reply.rfind('}')) {
        if a < b {
            out.push(&reply[a..=b]);
        }
    }
    out
}

/// Parses and checks a verdict. The error says what was wrong, so the model can be asked
/// again with that sentence.
pub fn parse(reply: &str) -> Result<Verdict, String> {
    let value = json_candidates(reply)
        .into_iter()
        .find_map(|c| {
            serde_json::from_str::<serde_json::Value>(c)
                .ok()
                .filter(|v| v.is_object())
        })
        .ok_or_else(|| "the reply holds no JSON object".to_string())?;
    let scores = value
        .get("scores")
        .and_then(|s| s.as_object())
        .ok_or_else(|| "the JSON has no `scores` object".to_string())?;
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for dim in DIMENSIONS {
        match scores.get(dim).and_then(|v| v.as_f64()) {
            Some(x) if (0.0..=1.0).contains(&x) => {
                out.insert(dim.to_string(), x);
            }
            Some(x) => return Err(format!("score `{dim}` is {x}, outside 0 to 1")),
            None => missing.push(dim),
        }
    }
    if !missing.is_empty() {
        return Err(format!("missing scores: {}", missing.join(", ")));
    }
    let reasons = value
        .get("reasons")
        .and_then(|r| r.as_object())
        .map(|r| {
            r.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let notes = value
        .get("notes")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_string();
    Ok(Verdict {
        scores: out,
        reasons,
        notes,
    })
}

/// Weighted mean of the scores; weights are normalised, unknown dimensions ignored.
pub fn weighted_total(scores: &BTreeMap<String, f64>, weights: &BTreeMap<String, f64>) -> f64 {
    let (mut sum, mut wsum) = (0.0, 0.0);
    for (dim, w) in weights {
        if let Some(s) = scores.get(dim) {
            sum += s * w;
            wsum += w;
        }
    }
    if wsum > 0.0 {
        (sum / wsum * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// What the gate does with a finished task after its evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum GateDecision {
    Accept,
    /// Send back to open; `n` is this rejection's number (1-based).
    Reject {
        n: u32,
    },
    /// The last allowed rejection: fail the task.
    Fail {
        n: u32,
    },
}

pub fn gate(total: f64, pass: f64, rejections_so_far: u32, max_rejections: u32) -> GateDecision {
    if total >= pass {
        return GateDecision::Accept;
    }
    let n = rejections_so_far + 1;
    if n >= max_rejections {
        GateDecision::Fail { n }
    } else {
        GateDecision::Reject { n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(score: f64) -> String {
        let scores: Vec<String> = DIMENSIONS
            .iter()
            .map(|d| format!("\"{d}\": {score}"))
            .collect();
        format!(
            "{{\"scores\": {{{}}}, \"notes\": \"n\"}}",
            scores.join(", ")
        )
    }

    #[test]
    fn plain_fenced_and_embedded_json_parse() {
        assert_eq!(parse(&full(0.5)).unwrap().scores.len(), 7);
        let fenced = format!("Here you go:\n```json\n{}\n```\nThanks", full(0.9));
        assert_eq!(parse(&fenced).unwrap().scores["style"], 0.9);
        let embedded = format!("Verdict: {} end", full(1.0));
        assert_eq!(parse(&embedded).unwrap().notes, "n");
    }

    #[test]
    fn missing_or_bad_scores_are_named() {
        assert!(parse("not json").unwrap_err().contains("no JSON"));
        let e = parse(r#"{"scores": {"correctness": 1}}"#).unwrap_err();
        assert!(
            e.contains("completeness") && e.contains("efficiency"),
            "{e}"
        );
        assert!(parse(&full(1.5)).unwrap_err().contains("outside"));
        assert!(parse(r#"{"notes": "x"}"#).unwrap_err().contains("scores"));
    }

    #[test]
    fn weights_and_gate() {
        let v = parse(&full(0.5)).unwrap();
        assert_eq!(
            weighted_total(&v.scores, &crate::config::default_weights()),
            0.5
        );
        let mut s = v.scores.clone();
        s.insert("correctness".into(), 1.0);
        let w: BTreeMap<String, f64> =
            [("correctness".to_string(), 3.0), ("style".to_string(), 1.0)].into();
        assert_eq!(weighted_total(&s, &w), 0.875);
        assert_eq!(gate(0.8, 0.7, 0, 3), GateDecision::Accept);
        assert_eq!(gate(0.5, 0.7, 0, 3), GateDecision::Reject { n: 1 });
        assert_eq!(gate(0.5, 0.7, 1, 3), GateDecision::Reject { n: 2 });
        assert_eq!(gate(0.5, 0.7, 2, 3), GateDecision::Fail { n: 3 });
    }
}
