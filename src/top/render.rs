//! `wg top`'s screen, drawn from a [`Snapshot`] and the view state alone: no files, no clock
//! (the snapshot carries its time), so layouts are tested with ratatui's test backend and
//! `--once` prints the same lines as plain text.

use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::model::{
    AgentRow, Coordinator, EventKind, LastEvent, Snapshot, Speaker, TaskRow, Tokens, TranscriptLine,
};
use crate::model::TaskStatus;

/// Width of the status column.
const STATUS_W: usize = 12;
/// Width of the id column.
const ID_W: usize = 24;

/// Colours on or off (`NO_COLOR`, or plain text for `--once`). Bold and reverse video stay:
/// they carry no colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    fn status(self, s: TaskStatus) -> Style {
        self.fg(match s {
            TaskStatus::Failed => Color::Red,
            TaskStatus::InProgress => Color::Green,
            TaskStatus::Waiting => Color::Yellow,
            TaskStatus::NeedsInput => Color::Magenta,
            TaskStatus::Open => Color::Cyan,
            TaskStatus::Paused => Color::Gray,
            TaskStatus::Done => Color::DarkGray,
            TaskStatus::Abandoned => Color::DarkGray,
        })
    }
}

/// What the person is doing in the live view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// Index into `snapshot.tasks`.
    pub selected: usize,
    /// First task row shown.
    pub offset: usize,
    /// The selected task's transcript, when open.
    pub transcript: Option<Vec<TranscriptLine>>,
    /// A message being typed to the selected task.
    pub input: Option<String>,
    /// The outcome of the last action, or a read error.
    pub notice: Option<String>,
}

/// `12`, `4.3k`, `12.3M`.
pub fn fmt_count(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// `42s`, `3m05s`, `2h07m`.
pub fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn fmt_tokens(t: &Tokens) -> String {
    let mut s = format!("{} tok", fmt_count(t.total()));
    if let Some(share) = t.cached_share() {
        s.push_str(&format!(" {:.0}% cached", share * 100.0));
    }
    if let Some(c) = t.cost_usd {
        s.push_str(&format!(" ${c:.2}"));
    }
    s
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        let cut: String = s.chars().take(w.saturating_sub(2)).collect();
        format!("{cut}… ")
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

/// The two summary lines: coordinator and agents; tasks by status.
pub fn header(snap: &Snapshot, theme: Theme) -> Vec<Line<'static>> {
    let coord = match &snap.coordinator {
        Coordinator::Running { pid: Some(p) } => {
            Span::styled(format!("coordinator pid {p}"), theme.fg(Color::Green))
        }
        Coordinator::Running { pid: None } => {
            Span::styled("coordinator starting".to_string(), theme.fg(Color::Green))
        }
        Coordinator::NotRunning => Span::styled(
            "coordinator not running (`wg service start`)".to_string(),
            theme.fg(Color::Yellow),
        ),
    };
    let t = &snap.totals;
    let mut first = vec![
        Span::styled(
            "wg top".to_string(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(" · "),
        coord,
        Span::raw(format!(" · {} tasks", t.by_status.values().sum::<usize>())),
        Span::raw(format!(
            " · {} agent{}",
            t.agents,
            if t.agents == 1 { "" } else { "s" }
        )),
    ];
    if t.agents > 0 {
        first.push(Span::raw(format!(" · {}", fmt_tokens(&t.tokens))));
    }
    let mut second: Vec<Span<'static>> = Vec::new();
    let mut statuses: Vec<TaskStatus> = t.by_status.keys().copied().collect();
    statuses.sort_by_key(|s| super::model::status_rank(*s));
    for s in statuses.into_iter().filter(|s| t.by_status[s] > 0) {
        if !second.is_empty() {
            second.push(Span::raw(", "));
        }
        second.push(Span::styled(
            format!("{} {s}", t.by_status[&s]),
            theme.status(s),
        ));
        if s == TaskStatus::Open {
            second.push(Span::raw(format!(" ({} ready)", t.ready)));
        }
    }
    let mut lines = vec![Line::from(first), Line::from(second)];
    if let Some(h) = &snap.held {
        lines.push(Line::from(Span::styled(
            format!("dispatch HELD: {h}; resumes by itself once the disk takes writes"),
            theme.fg(Color::Red),
        )));
    }
    for p in &snap.paused {
        let mut s = format!("paused: {} ({})", p.endpoint, p.reason);
        if let Some(left) = p.until.and_then(|u| u.duration_since(snap.taken_at).ok()) {
            s.push_str(&format!(", next probe in {}", fmt_elapsed(left)));
        }
        lines.push(Line::from(Span::styled(s, theme.fg(Color::Yellow))));
    }
    if !snap.queue.is_empty() {
        lines.push(Line::from(queue_line(&snap.queue)));
    }
    lines
}

/// `queue: 1. a checking (sh test.sh) · 2. b queued`: the merge queue in one line.
pub fn queue_line(q: &[crate::workspace::queue::Entry]) -> String {
    let items: Vec<String> = q
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let check = e
                .check
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            format!("{}. {} {}{check}", i + 1, e.task, e.state.as_str())
        })
        .collect();
    format!("queue: {}", items.join(" · "))
}

pub fn agent_stats(a: &AgentRow, snap: &Snapshot) -> String {
    let mut s = format!("turn {}", a.turn);
    if let Some(el) = a.started.and_then(|t| snap.taken_at.duration_since(t).ok()) {
        s.push_str(&format!(" · {}", fmt_elapsed(el)));
    }
    s.push_str(&format!(" · {}", fmt_tokens(&a.tokens)));
    s
}

pub fn last_event_text(e: &LastEvent) -> String {
    match e.kind {
        EventKind::Command if e.running => format!("$ {} (running)", e.text),
        EventKind::Command => format!("$ {}", e.text),
        EventKind::Reply => format!("said: {}", e.text),
        EventKind::Error => format!("error: {}", e.text),
        EventKind::Other => e.text.clone(),
    }
}

/// One task's lines: status, id, then what is going on (the agent's turn, time and tokens;
/// why it failed; or its title). A running agent gets a second line with its last event, so
/// a long command never pushes the numbers off an 80-column screen.
pub fn task_lines(
    row: &TaskRow,
    snap: &Snapshot,
    theme: Theme,
    selected: bool,
) -> Vec<Line<'static>> {
    let detail = match (&row.agent, &row.reason) {
        (Some(a), _) => agent_stats(a, snap),
        (None, Some(r)) => format!("{} · {}", row.title, r.lines().next().unwrap_or("")),
        (None, None) if row.ready => format!("{} · ready", row.title),
        (None, None) => row.title.clone(),
    };
    let mark = if selected { "> " } else { "  " };
    let first = Line::from(vec![
        Span::raw(mark.to_string()),
        Span::styled(pad(row.status.as_str(), STATUS_W), theme.status(row.status)),
        Span::raw(pad(&row.id, ID_W)),
        Span::raw(detail),
    ]);
    let mut lines = vec![if selected {
        first.style(Style::default().add_modifier(Modifier::REVERSED))
    } else {
        first
    }];
    if let Some(e) = row.agent.as_ref().and_then(|a| a.last.as_ref()) {
        let style = match e.kind {
            EventKind::Error => theme.fg(Color::Red),
            _ => theme.fg(Color::DarkGray),
        };
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(2 + STATUS_W)),
            Span::styled(last_event_text(e), style),
        ]));
    }
    lines
}

fn column_header() -> Line<'static> {
    Line::from(Span::styled(
        format!("  {}{}ACTIVITY", pad("STATUS", STATUS_W), pad("TASK", ID_W)),
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

/// The first row to show so that `selected` is visible in `height` rows.
pub fn scroll_offset(selected: usize, offset: usize, height: usize) -> usize {
    if height == 0 {
        return selected;
    }
    if selected < offset {
        selected
    } else if selected >= offset + height {
        selected + 1 - height
    } else {
        offset
    }
}

fn transcript_lines(lines: &[TranscriptLine], theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for l in lines {
        let style = match l.speaker {
            Speaker::To => theme.fg(Color::Cyan),
            Speaker::Agent => theme.fg(Color::Green),
            Speaker::Error => theme.fg(Color::Red),
            Speaker::Activity => theme.fg(Color::DarkGray),
        };
        for (i, text) in l.text.lines().enumerate() {
            let who = if i == 0 {
                format!("{}: ", l.who)
            } else {
                " ".repeat(l.who.chars().count() + 2)
            };
            out.push(Line::from(vec![
                Span::styled(who, style.add_modifier(Modifier::BOLD)),
                Span::raw(text.to_string()),
            ]));
        }
    }
    out
}

/// The keys that do something now; `p` names what it will do to the selected task. With
/// endpoints paused, `↑↓` loses its label so that everything fits in 80 columns.
fn footer(view: &View, snap: &Snapshot) -> String {
    if view.input.is_some() {
        return "enter send · esc cancel".into();
    }
    let mut keys = String::from("q quit");
    if let Some(row) = snap.tasks.get(view.selected) {
        keys.push_str(if snap.paused.is_empty() {
            " · ↑↓ select"
        } else {
            " · ↑↓"
        });
        keys.push_str(" · enter transcript · m message · r retry");
        keys.push_str(if row.status == TaskStatus::Paused {
            " · p resume"
        } else {
            " · p pause"
        });
    }
    if !snap.paused.is_empty() {
        keys.push_str(" · P probe now");
    }
    keys
}

/// Draws the whole screen. Returns the number of tasks shown, for scrolling.
pub fn draw(frame: &mut Frame, snap: &Snapshot, view: &View, theme: Theme) -> usize {
    let area = frame.area();
    let head = header(snap, theme);
    let selected = snap.tasks.get(view.selected);
    let mut constraints = vec![Constraint::Length(head.len() as u16), Constraint::Min(2)];
    if view.transcript.is_some() {
        constraints.push(Constraint::Percentage(50));
    }
    if view.input.is_some() {
        constraints.push(Constraint::Length(1));
    }
    // The outcome of an action gets a line of its own, so the keys stay readable beside it.
    if view.notice.is_some() {
        constraints.push(Constraint::Length(1));
    }
    constraints.push(Constraint::Length(1));
    let chunks = Layout::vertical(constraints).split(area);
    frame.render_widget(Paragraph::new(head), chunks[0]);

    let list_area = chunks[1];
    let room = list_area.height as usize;
    let mut lines = vec![column_header()];
    if snap.tasks.is_empty() {
        lines.push(Line::from("  no tasks yet: `wg add TITLE`"));
    }
    let mut rows_fit = 0;
    for (i, row) in snap.tasks.iter().enumerate().skip(view.offset) {
        let more = task_lines(row, snap, theme, i == view.selected);
        if lines.len() + more.len() > room {
            break;
        }
        lines.extend(more);
        rows_fit += 1;
    }
    frame.render_widget(Paragraph::new(lines), list_area);

    let mut next = 2;
    if let Some(t) = &view.transcript {
        let pane = chunks[next];
        next += 1;
        let title = format!(
            " transcript: {} ",
            selected.map(|r| r.id.as_str()).unwrap_or("")
        );
        let inner_h = pane.height.saturating_sub(2) as usize;
        let all = transcript_lines(t, theme);
        let tail = all[all.len().saturating_sub(inner_h)..].to_vec();
        let body = if tail.is_empty() {
            vec![Line::from("no conversation yet")]
        } else {
            tail
        };
        frame.render_widget(
            Paragraph::new(body).block(Block::default().borders(Borders::TOP).title(title)),
            Rect { ..pane },
        );
    }
    if let Some(text) = &view.input {
        let to = selected.map(|r| r.id.as_str()).unwrap_or("");
        let prompt = format!("message to {to}: ");
        let x = chunks[next].x + (prompt.chars().count() + text.chars().count()) as u16;
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(prompt, Style::default().add_modifier(Modifier::BOLD)),
                Span::raw(text.clone()),
            ])),
            chunks[next],
        );
        frame.set_cursor_position((x.min(area.right().saturating_sub(1)), chunks[next].y));
        next += 1;
    }
    if let Some(n) = &view.notice {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(n.clone(), theme.fg(Color::Yellow)))),
            chunks[next],
        );
        next += 1;
    }
    let foot = Line::from(Span::styled(footer(view, snap), theme.fg(Color::DarkGray)));
    frame.render_widget(Paragraph::new(foot), chunks[next]);
    rows_fit
}

fn plain(line: &Line) -> String {
    line.spans
        .iter()
        .map(|s| s.content.as_ref())
        .collect::<String>()
}

/// `wg top --once`: the header and every task, as plain text (no colour, no truncation).
pub fn once_text(snap: &Snapshot) -> String {
    let theme = Theme { color: false };
    let mut out = String::new();
    for l in header(snap, theme) {
        out.push_str(plain(&l).trim_end());
        out.push('\n');
    }
    out.push_str(plain(&column_header()).trim_end());
    out.push('\n');
    for row in &snap.tasks {
        for l in task_lines(row, snap, theme, false) {
            out.push_str(plain(&l).trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
