//! Layout tests on ratatui's test backend: what a person sees in an 80×24 terminal.

use std::time::{Duration, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;

use super::*;
use crate::top::model::{
    sort_rows, AgentRow, LastEvent, PausedEndpoint, Speaker, TaskRow, Tokens, Totals,
    TranscriptLine,
};

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn row(id: &str, status: TaskStatus) -> TaskRow {
    TaskRow {
        id: id.into(),
        title: format!("Title of {id}"),
        status,
        ready: false,
        reason: None,
        updated: "2026-01-01T00:00:00.000Z".into(),
        agent: None,
        after: Vec::new(),
        awaiting_evaluation: false,
    }
}

fn running(id: &str, turn: u32, cmd: &str) -> TaskRow {
    let mut r = row(id, TaskStatus::InProgress);
    r.agent = Some(AgentRow {
        agent_id: format!("agent-{id}"),
        executor: "codex".into(),
        turn,
        started: Some(t0() - Duration::from_secs(80)),
        tokens: Tokens {
            input: 12_000,
            cached: 9_000,
            output: 300,
            cost_usd: None,
        },
        last: Some(LastEvent {
            kind: EventKind::Command,
            text: cmd.into(),
            turn,
            running: true,
        }),
    });
    r
}

fn snapshot(mut tasks: Vec<TaskRow>) -> Snapshot {
    sort_rows(&mut tasks);
    let mut totals = Totals::default();
    for t in &tasks {
        *totals.by_status.entry(t.status).or_default() += 1;
        if let Some(a) = &t.agent {
            totals.agents += 1;
            totals.tokens.add(&a.tokens);
        }
        totals.ready += t.ready as usize;
    }
    Snapshot {
        taken_at: t0(),
        project: "/p".into(),
        coordinator: Coordinator::Running { pid: Some(42) },
        tasks,
        paused: Vec::new(),
        held: None,
        queue: Vec::new(),
        totals,
    }
}

fn every_state() -> Snapshot {
    let mut failed = row("parser", TaskStatus::Failed);
    failed.reason = Some("exit code 1: boom".into());
    let mut ready = row("docs", TaskStatus::Open);
    ready.ready = true;
    snapshot(vec![
        row("shipped", TaskStatus::Done),
        ready,
        row("blocked", TaskStatus::Open),
        running("lexer", 3, "cargo test"),
        row("chatty", TaskStatus::Waiting),
        failed,
        row("dropped", TaskStatus::Abandoned),
    ])
}

fn screen(snap: &Snapshot, view: &View, theme: Theme, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| {
        draw(f, snap, view, theme);
    })
    .unwrap();
    term.backend().buffer().clone()
}

fn rows_of(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

fn find(rows: &[String], needle: &str) -> usize {
    rows.iter()
        .position(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not on screen:\n{}", rows.join("\n")))
}

#[test]
fn an_80x24_screen_shows_totals_failed_first_and_the_running_agent() {
    let snap = every_state();
    let rows = rows_of(&screen(
        &snap,
        &View::default(),
        Theme { color: true },
        80,
        24,
    ));
    assert_eq!(rows.len(), 24);
    assert!(
        rows[0].starts_with("wg top · coordinator pid 42 · 7 tasks · 1 agent ·"),
        "{rows:?}"
    );
    assert!(rows[0].contains("12.3k tok 75% cached"), "{}", rows[0]);
    assert_eq!(
        rows[1],
        "1 failed, 1 in-progress, 1 waiting, 2 open (1 ready), 1 done, 1 abandoned"
    );
    let order: Vec<usize> = [
        "parser", "lexer", "chatty", "docs", "blocked", "shipped", "dropped",
    ]
    .iter()
    .map(|id| find(&rows, id))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "order {order:?}:\n{}",
        rows.join("\n")
    );
    let lexer = find(&rows, "lexer");
    assert!(
        rows[lexer].ends_with("turn 3 · 1m20s · 12.3k tok 75% cached"),
        "{}",
        rows[lexer]
    );
    assert_eq!(rows[lexer + 1].trim(), "$ cargo test (running)");
    assert!(rows[find(&rows, "parser")].contains("exit code 1: boom"));
    assert!(rows[find(&rows, "docs")].ends_with("· ready"));
    // The selected row is marked in text too (visible without colour and over tmux).
    assert!(
        rows[find(&rows, "parser")].starts_with("> failed"),
        "{rows:?}"
    );
    assert_eq!(
        rows[23],
        "q quit · ↑↓ select · enter transcript · m message · r retry · p pause"
    );
    assert!(rows.iter().all(|r| r.chars().count() <= 80));
}

#[test]
fn no_color_draws_no_colour_at_all() {
    let snap = every_state();
    let colored = screen(&snap, &View::default(), Theme { color: true }, 80, 24);
    let plain = screen(&snap, &View::default(), Theme { color: false }, 80, 24);
    let fgs = |b: &Buffer| -> Vec<Color> { b.content.iter().map(|c| c.fg).collect() };
    assert!(
        fgs(&colored).contains(&Color::Red),
        "failed tasks are red with colour"
    );
    assert!(
        fgs(&plain)
            .iter()
            .chain(plain.content.iter().map(|c| &c.bg))
            .all(|c| *c == Color::Reset),
        "NO_COLOR: every cell keeps the terminal's colours"
    );
    assert_eq!(rows_of(&colored), rows_of(&plain), "same text either way");
}

#[test]
fn the_transcript_pane_and_message_line_share_the_screen() {
    let snap = every_state();
    let lexer = snap.tasks.iter().position(|r| r.id == "lexer").unwrap();
    let mut transcript: Vec<TranscriptLine> = (1..=30)
        .map(|i| TranscriptLine {
            speaker: Speaker::To,
            who: "user".into(),
            text: format!("message number {i}"),
        })
        .collect();
    transcript.push(TranscriptLine {
        speaker: Speaker::Activity,
        who: "$".into(),
        text: "cargo test".into(),
    });
    let view = View {
        selected: lexer,
        transcript: Some(transcript),
        input: Some("use the existing lexer".into()),
        ..View::default()
    };
    let rows = rows_of(&screen(&snap, &view, Theme { color: false }, 80, 24));
    let pane = find(&rows, "transcript: lexer");
    assert!(pane > find(&rows, "> in-progress lexer"), "{rows:?}");
    // The tail: the newest lines, the oldest scrolled away.
    assert!(rows.iter().any(|r| r == "$: cargo test"), "{rows:?}");
    assert!(rows.iter().any(|r| r == "user: message number 30"));
    assert!(!rows.iter().any(|r| r == "user: message number 1"));
    assert_eq!(rows[22], "message to lexer: use the existing lexer");
    assert_eq!(rows[23], "enter send · esc cancel");
}

#[test]
fn a_long_list_scrolls_to_keep_the_selection_visible() {
    let tasks: Vec<TaskRow> = (0..60)
        .map(|i| row(&format!("t{i:02}"), TaskStatus::Open))
        .collect();
    let snap = snapshot(tasks);
    let rows_fit = {
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let mut n = 0;
        term.draw(|f| n = draw(f, &snap, &View::default(), Theme { color: false }))
            .unwrap();
        n
    };
    assert_eq!(
        rows_fit,
        24 - 2 - 1 - 1,
        "header 2, column titles 1, footer 1"
    );
    let selected = 45;
    let offset = scroll_offset(selected, 0, rows_fit);
    let view = View {
        selected,
        offset,
        ..View::default()
    };
    let rows = rows_of(&screen(&snap, &view, Theme { color: false }, 80, 24));
    let id = &snap.tasks[selected].id;
    assert!(rows[find(&rows, id)].starts_with("> open"), "{rows:?}");
    assert_eq!(
        scroll_offset(3, 10, 20),
        3,
        "moving up above the top scrolls up"
    );
    assert_eq!(
        scroll_offset(12, 10, 20),
        10,
        "inside the window: no scroll"
    );
}

#[test]
fn a_paused_task_is_listed_with_open_ones_and_p_offers_to_resume_it() {
    let mut stopped = row("stopped", TaskStatus::Paused);
    stopped.updated = "2026-02-01T00:00:00.000Z".into();
    let mut asking = row("asking", TaskStatus::NeedsInput);
    asking.reason = Some("waiting for an answer".into());
    let snap = snapshot(vec![
        row("shipped", TaskStatus::Done),
        row("later", TaskStatus::Open),
        stopped,
        asking,
    ]);
    let sel = snap.tasks.iter().position(|r| r.id == "stopped").unwrap();
    let view = View {
        selected: sel,
        ..View::default()
    };
    let rows = rows_of(&screen(&snap, &view, Theme { color: false }, 80, 24));
    let order: Vec<usize> = ["asking", "stopped", "later", "shipped"]
        .iter()
        .map(|id| find(&rows, id))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", rows.join("\n"));
    assert!(rows[order[0]].contains("needs-input"), "{}", rows[order[0]]);
    assert!(rows[order[1]].starts_with("> paused"), "{}", rows[order[1]]);
    assert!(rows[23].ends_with("r retry · p resume"), "{}", rows[23]);
    // The answer to an action sits above the keys, which stay whole.
    let view = View {
        notice: Some("later paused; `wg resume later` continues it".into()),
        ..View::default()
    };
    let rows = rows_of(&screen(&snap, &view, Theme { color: false }, 80, 24));
    assert_eq!(rows[22], "later paused; `wg resume later` continues it");
    assert!(rows[23].ends_with("r retry · p pause"), "{}", rows[23]);
}

#[test]
fn paused_endpoints_show_with_reason_and_time_left() {
    let mut snap = every_state();
    snap.paused.push(PausedEndpoint {
        endpoint: "https://gpu-box:30000/v1".into(),
        reason: "429 rate limited".into(),
        until: Some(t0() + Duration::from_secs(95)),
    });
    let rows = rows_of(&screen(
        &snap,
        &View::default(),
        Theme { color: false },
        80,
        24,
    ));
    assert_eq!(
        rows[2],
        "paused: https://gpu-box:30000/v1 (429 rate limited), next probe in 1m35s"
    );
    assert_eq!(
        rows[23],
        "q quit · ↑↓ · enter transcript · m message · r retry · p pause · P probe now"
    );
}

#[test]
fn once_text_lists_every_task_with_its_state_in_plain_text() {
    let text = once_text(&every_state());
    for (status, id) in [
        ("failed", "parser"),
        ("in-progress", "lexer"),
        ("waiting", "chatty"),
        ("open", "docs"),
        ("open", "blocked"),
        ("done", "shipped"),
        ("abandoned", "dropped"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().take(2).eq([status, id])),
            "no `{status} {id}` line:\n{text}"
        );
    }
    assert!(!text.contains('\u{1b}'), "no escape codes");
    assert!(!text.contains("> "), "no selection in a frame for scripts");
}

#[test]
fn counts_and_durations_are_short() {
    assert_eq!(fmt_count(999), "999");
    assert_eq!(fmt_count(12_345), "12.3k");
    assert_eq!(fmt_count(2_500_000), "2.5M");
    assert_eq!(fmt_elapsed(Duration::from_secs(42)), "42s");
    assert_eq!(fmt_elapsed(Duration::from_secs(185)), "3m05s");
    assert_eq!(fmt_elapsed(Duration::from_secs(7620)), "2h07m");
}

#[test]
fn the_merge_queue_shows_in_order_with_the_check_running() {
    use crate::workspace::queue::{Entry, EntryState};
    let mut snap = every_state();
    let entry = |task: &str, state, check: Option<&str>| Entry {
        task: task.into(),
        entered: "t".into(),
        state,
        base_ref: "refs/heads/main".into(),
        old_tip: None,
        merged: None,
        check: check.map(str::to_string),
    };
    snap.queue = vec![
        entry("fix-a", EntryState::Checking, Some("cargo test")),
        entry("fix-b", EntryState::Queued, None),
    ];
    let rows = rows_of(&screen(
        &snap,
        &View::default(),
        Theme { color: false },
        80,
        24,
    ));
    assert_eq!(
        rows[2],
        "queue: 1. fix-a checking (cargo test) · 2. fix-b queued"
    );
}
