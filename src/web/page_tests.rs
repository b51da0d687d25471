//! The pages' pure parts: columns, limits, and hostile text shown as text.

use super::*;
use crate::top::model::{Totals, TranscriptLine};

fn row(id: &str, title: &str, status: TaskStatus) -> TaskRow {
    TaskRow {
        id: id.into(),
        title: title.into(),
        status,
        ready: false,
        reason: None,
        updated: String::new(),
        agent: None,
        after: Vec::new(),
        awaiting_evaluation: false,
    }
}

fn snap(tasks: Vec<TaskRow>) -> Snapshot {
    Snapshot {
        taken_at: std::time::SystemTime::UNIX_EPOCH,
        project: "/p".into(),
        coordinator: Coordinator::NotRunning,
        tasks,
        paused: Vec::new(),
        held: None,
        queue: Vec::new(),
        totals: Totals::default(),
    }
}

#[test]
fn escaping_covers_elements_and_attributes() {
    assert_eq!(
        esc("<script>alert('x')</script> & \"q\""),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
    );
}

#[test]
fn cards_land_in_their_status_column_failures_first() {
    let s = snap(vec![
        row("a", "A", TaskStatus::Done),
        row("b", "B", TaskStatus::Failed),
        row("c", "C", TaskStatus::NeedsInput),
        row("d", "D", TaskStatus::Paused),
    ]);
    let html = board(
        &[ProjectView {
            name: "p",
            snap: &s,
        }],
        None,
    );
    let col = |key: &str| html.find(&format!("id=\"col-{key}\"")).unwrap();
    assert!(col("attention") < col("in-progress") && col("open") < col("done"));
    let card = |id: &str| html.find(&format!("data-id=\"{id}\"")).unwrap();
    assert!(col("attention") < card("b") && card("c") < col("in-progress"));
    assert!(col("open") < card("d") && card("d") < col("done"));
    assert!(card("a") > col("done"));
}

#[test]
fn hostile_titles_reasons_and_transcripts_are_text() {
    let mut r = row("x", "<script>alert(1)</script>", TaskStatus::Failed);
    r.reason = Some("<img src=x onerror=alert(2)>".into());
    let s = snap(vec![r.clone()]);
    let html = board(
        &[ProjectView {
            name: "<i>proj</i>",
            snap: &s,
        }],
        None,
    );
    assert!(!html.contains("<script>") && !html.contains("<img") && !html.contains("<i>"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    let lines = vec![TranscriptLine {
        speaker: Speaker::Agent,
        who: "agent".into(),
        text: "</pre><script>alert(3)</script>".into(),
    }];
    let frag = task_fragment(&r, &s, &lines);
    assert!(
        !frag.contains("<script>") && frag.contains("&lt;/pre&gt;"),
        "{frag}"
    );
}

#[test]
fn a_long_column_shows_a_limited_number_of_cards_and_offers_the_rest() {
    let s = snap(
        (0..COLUMN_LIMIT + 5)
            .map(|i| row(&format!("t{i}"), "T", TaskStatus::Done))
            .collect(),
    );
    let views = [ProjectView {
        name: "p",
        snap: &s,
    }];
    let html = board(&views, None);
    assert_eq!(html.matches("<li class=\"card").count(), COLUMN_LIMIT);
    assert!(html.contains("5 more: show all"), "{html}");
    let all = board(&views, Some(Column::Done));
    assert_eq!(all.matches("<li class=\"card").count(), COLUMN_LIMIT + 5);
}

#[test]
fn several_projects_share_the_columns_and_are_labelled() {
    let a = snap(vec![row("x", "X", TaskStatus::Open)]);
    let b = snap(vec![row("y", "Y", TaskStatus::Open)]);
    let html = board(
        &[
            ProjectView {
                name: "alpha",
                snap: &a,
            },
            ProjectView {
                name: "beta",
                snap: &b,
            },
        ],
        None,
    );
    assert!(html.contains("href=\"/t/0/x\"") && html.contains("href=\"/t/1/y\""));
    assert!(html.contains("<span class=\"project\">beta</span>"));
}

#[test]
fn the_merge_queue_is_on_the_board_when_it_has_entries() {
    use crate::workspace::queue::{Entry, EntryState};
    let mut s = snap(vec![row("a", "A", TaskStatus::Done)]);
    let html = board(
        &[ProjectView {
            name: "p",
            snap: &s,
        }],
        None,
    );
    assert!(!html.contains("class=\"queue\""), "no queue, no line");
    s.queue = vec![Entry {
        task: "fix-<a>".into(),
        entered: "t".into(),
        state: EntryState::Checking,
        base_ref: "refs/heads/main".into(),
        old_tip: None,
        merged: None,
        check: Some("cargo test".into()),
    }];
    let html = board(
        &[ProjectView {
            name: "p",
            snap: &s,
        }],
        None,
    );
    assert!(
        html.contains("<p class=\"queue\">queue: 1. fix-&lt;a&gt; checking (cargo test)</p>"),
        "{html}"
    );
}
