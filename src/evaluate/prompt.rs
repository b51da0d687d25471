//! The evaluator's prompt: the evidence in order of relevance, each part cut to its share of
//! the budget, with every cut stated. Pure.

use super::evidence::Evidence;
use super::verdict::DIMENSIONS;

pub const SYSTEM: &str = "You evaluate work an AI coding agent did on one task. Judge only from the evidence given. \
Answer with one JSON object and nothing else, of this shape: \
{\"scores\": {\"correctness\": 0.0-1.0, \"completeness\": ..., \"constraint_fidelity\": ..., \"intent_fidelity\": ..., \
\"style\": ..., \"downstream_usability\": ..., \"efficiency\": ...}, \"reasons\": {\"<dimension>\": \"one line\"}, \
\"notes\": \"what the agent should do better, addressed to the agent\"}. Every score is a number from 0 to 1.";

/// Keeps at most `cap` characters of `text`: the end when `keep_tail` (logs: the latest lines
/// matter most), else the start. Returns the kept text and a note when something was cut.
fn cut(name: &str, text: &str, cap: usize, keep_tail: bool) -> (String, Option<String>) {
    let total = text.chars().count();
    if total <= cap {
        return (text.to_string(), None);
    }
    let kept: String = if keep_tail {
        text.chars().skip(total - cap).collect()
    } else {
        text.chars().take(cap).collect()
    };
    let which = if keep_tail { "last" } else { "first" };
    (
        kept,
        Some(format!(
            "{name}: kept the {which} {cap} of {total} characters"
        )),
    )
}

pub struct Prompt {
    pub system: String,
    pub user: String,
    pub trimmed: Vec<String>,
}

/// Builds the prompt within `budget` characters (roughly; headings are extra).
pub fn build(e: &Evidence, findings: &[String], budget: usize) -> Prompt {
    let transcript: String = e
        .transcript
        .iter()
        .map(|(who, text)| format!("--- {who}\n{text}\n"))
        .collect();
    let commands: String = e
        .commands
        .iter()
        .map(|(c, code)| {
            format!(
                "$ {c}  -> exit {}\n",
                code.map_or("?".to_string(), |c| c.to_string())
            )
        })
        .collect();
    let progress = e.progress.join("\n");
    let checks: String = e
        .checks
        .iter()
        .map(|c| {
            format!(
                "$ {}  -> {}\n{}\n",
                c.command,
                if c.passed { "passed" } else { "FAILED" },
                c.output.trim_end()
            )
        })
        .collect();
    let diff = match &e.diff {
        Some(d) if d.trim().is_empty() => "(no changes)".to_string(),
        Some(d) => d.clone(),
        None => "(the workspace is not a git repository; no diff)".to_string(),
    };
    // Shares of the budget, most relevant first.
    let parts: [(&str, &str, f64, bool); 7] = [
        ("Task brief", &e.brief, 0.15, false),
        ("Checks wg ran itself after `wg done`", &checks, 0.05, true),
        ("Conversation", &transcript, 0.2, true),
        ("Changes in the workspace (diff)", &diff, 0.25, false),
        ("Commands the agent ran", &commands, 0.1, true),
        ("handler.log", &e.handler_log, 0.15, true),
        ("Progress log", &progress, 0.1, true),
    ];
    let mut trimmed = Vec::new();
    let mut body = String::new();
    for (name, text, share, tail) in parts {
        let (kept, note) = cut(name, text, (budget as f64 * share) as usize, tail);
        trimmed.extend(note);
        body.push_str(&format!(
            "\n## {name}\n{}\n",
            if kept.trim().is_empty() {
                "(none)"
            } else {
                &kept
            }
        ));
    }
    let mut user = format!(
        "# Task {}: {}\n\n{}\n",
        e.task_id,
        e.title,
        e.description.trim()
    );
    user.push_str("\n## Findings from automatic checks\n");
    if findings.is_empty() {
        user.push_str("(none)\n");
    }
    for f in findings {
        user.push_str(&format!("- {f}\n"));
    }
    if !trimmed.is_empty() {
        user.push_str("\n## Inputs trimmed to fit the budget\n");
        for t in &trimmed {
            user.push_str(&format!("- {t}\n"));
        }
    }
    user.push_str(&body);
    user.push_str(&format!(
        "\nScore each of: {}. Reply with the JSON object only.\n",
        DIMENSIONS.join(", ")
    ));
    Prompt {
        system: SYSTEM.to_string(),
        user,
        trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_is_present_and_cuts_are_stated() {
        let e = Evidence {
            task_id: "t".into(),
            title: "Fix".into(),
            brief: "the brief".into(),
            handler_log: format!("{}LAST LINE", "x".repeat(10_000)),
            diff: Some("+added line".into()),
            commands: vec![("cargo test".into(), Some(0))],
            transcript: vec![("reply 1 (assistant)".into(), "done it".into())],
            ..Evidence::default()
        };
        let p = build(&e, &["no command".into()], 4000);
        for needle in [
            "the brief",
            "LAST LINE",
            "+added line",
            "cargo test  -> exit 0",
            "done it",
            "- no command",
        ] {
            assert!(p.user.contains(needle), "missing {needle}");
        }
        assert_eq!(p.trimmed.len(), 1);
        assert!(
            p.user
                .contains("handler.log: kept the last 600 of 10009 characters"),
            "{}",
            p.user
        );
    }
}
