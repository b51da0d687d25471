//! The pages, as HTML strings built from `wg top`'s snapshot. Pure: every piece of text from
//! the project (titles, reasons, agent output, endpoint messages) passes through [`esc`],
//! since all of it may be hostile; the tests below feed it markup.

use std::fmt::Write;

use crate::model::TaskStatus;
use crate::top::model::{Coordinator, Snapshot, Speaker, TaskRow, TranscriptLine};
use crate::top::render::{
    agent_stats, fmt_count, fmt_elapsed, fmt_tokens, last_event_text, queue_line,
};

/// Cards drawn per column; the rest are one click away (`?all=COLUMN`). Keeps a board of
/// 10,000 tasks a page of a few hundred cards.
pub const COLUMN_LIMIT: usize = 100;

/// Text as HTML: safe inside elements and inside double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn status_class(s: TaskStatus) -> &'static str {
    s.as_str()
}

pub fn task_href(project: usize, id: &str) -> String {
    format!("/t/{project}/{}", esc(id))
}

/// The board's columns, in display order: what needs a person first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Attention,
    Running,
    Waiting,
    Open,
    Done,
    Abandoned,
}

impl Column {
    pub const ALL: [Column; 6] = [
        Column::Attention,
        Column::Running,
        Column::Waiting,
        Column::Open,
        Column::Done,
        Column::Abandoned,
    ];

    pub fn of(s: TaskStatus) -> Column {
        match s {
            TaskStatus::Failed | TaskStatus::NeedsInput => Column::Attention,
            TaskStatus::InProgress => Column::Running,
            TaskStatus::Waiting => Column::Waiting,
            TaskStatus::Open | TaskStatus::Paused => Column::Open,
            TaskStatus::Done => Column::Done,
            TaskStatus::Abandoned => Column::Abandoned,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Column::Attention => "attention",
            Column::Running => "in-progress",
            Column::Waiting => "waiting",
            Column::Open => "open",
            Column::Done => "done",
            Column::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.key() == s)
    }

    fn title(self) -> &'static str {
        match self {
            Column::Attention => "failed · needs-input",
            Column::Running => "in-progress",
            Column::Waiting => "waiting",
            Column::Open => "open · paused",
            Column::Done => "done",
            Column::Abandoned => "abandoned",
        }
    }
}

/// One project on the board: its name and its snapshot.
pub struct ProjectView<'a> {
    pub name: &'a str,
    pub snap: &'a Snapshot,
}

/// A whole page: the shell every page shares. `csrf` goes into a meta tag for the script.
pub fn document(title: &str, csrf: Option<&str>, body: &str) -> String {
    let meta = csrf
        .map(|c| format!("<meta name=\"csrf\" content=\"{}\">", esc(c)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">{meta}\
<title>{}</title><link rel=\"stylesheet\" href=\"/app.css\"></head>\
<body>{body}<script src=\"/app.js\"></script></body></html>",
        esc(title)
    )
}

pub fn login(failed: bool) -> String {
    let note = if failed {
        "<p class=\"error\" id=\"login-error\">That is not the access token.</p>"
    } else {
        ""
    };
    document(
        "wg · log in",
        None,
        &format!(
            "<main class=\"login\"><h1>wg</h1>{note}<form method=\"post\" action=\"/login\">\
<label for=\"token\">Access token (printed by <code>wg web</code> when it started)</label>\
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
<button type=\"submit\">Log in</button></form></main>"
        ),
    )
}

fn nav(csrf: &str) -> String {
    format!(
        "<header class=\"top\"><a class=\"brand\" href=\"/\">wg</a><nav><a href=\"/\">board</a> \
<a href=\"/graph\">graph</a></nav><form method=\"post\" action=\"/logout\" class=\"inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><button class=\"link\">log out</button></form>\
<span id=\"live\" class=\"live\" title=\"live updates\">●</span></header>",
        esc(csrf)
    )
}

/// The totals and the coordinator of each project, and its paused endpoints.
fn summary(out: &mut String, projects: &[ProjectView]) {
    for (i, p) in projects.iter().enumerate() {
        let s = p.snap;
        let coord = match &s.coordinator {
            Coordinator::Running { pid: Some(pid) } => format!("coordinator pid {pid}"),
            Coordinator::Running { pid: None } => "coordinator running".into(),
            Coordinator::NotRunning => "no coordinator (wg service start)".into(),
        };
        let counts: Vec<String> = s
            .totals
            .by_status
            .iter()
            .map(|(st, n)| format!("{n} {st}"))
            .collect();
        let _ = write!(
            out,
            "<section class=\"summary\" data-project=\"{i}\"><h2>{}</h2><p>{} · {} tasks · {} agent(s) · {} · {} ready</p><p class=\"counts\">{}</p>",
            esc(p.name),
            esc(&coord),
            s.tasks.len(),
            s.totals.agents,
            esc(&fmt_tokens(&s.totals.tokens)),
            s.totals.ready,
            esc(&counts.join(", "))
        );
        for e in &s.paused {
            let when = e
                .until
                .and_then(|u| u.duration_since(s.taken_at).ok())
                .map(|d| format!(" · next probe in {}", fmt_elapsed(d)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<p class=\"paused-endpoint\">paused endpoint <b>{}</b>: {}{}</p>",
                esc(&e.endpoint),
                esc(&e.reason),
                esc(&when)
            );
        }
        if let Some(why) = &s.held {
            let _ = write!(
                out,
                "<p class=\"paused-endpoint\">dispatch held: {}</p>",
                esc(why)
            );
        }
        if !s.queue.is_empty() {
            let _ = write!(out, "<p class=\"queue\">{}</p>", esc(&queue_line(&s.queue)));
        }
        out.push_str("</section>");
    }
}

fn card(out: &mut String, r: &TaskRow, snap: &Snapshot, project: usize, label: Option<&str>) {
    let _ = write!(
        out,
        "<li class=\"card {st}\" data-id=\"{id}\" data-status=\"{st}\"><a href=\"{href}\"><span class=\"badge\">{st}</span> <b class=\"id\">{id}</b>",
        st = status_class(r.status),
        id = esc(&r.id),
        href = task_href(project, &r.id),
    );
    if let Some(l) = label {
        let _ = write!(out, " <span class=\"project\">{}</span>", esc(l));
    }
    let _ = write!(out, "<span class=\"title\">{}</span>", esc(&r.title));
    if r.ready {
        out.push_str("<span class=\"tag\">ready</span>");
    }
    if r.awaiting_evaluation {
        out.push_str("<span class=\"tag\">awaiting evaluation</span>");
    }
    if let Some(reason) = &r.reason {
        let _ = write!(out, "<span class=\"reason\">{}</span>", esc(reason));
    }
    if let Some(a) = &r.agent {
        let _ = write!(
            out,
            "<span class=\"agent\">{}</span>",
            esc(&agent_stats(a, snap))
        );
        if let Some(e) = &a.last {
            let _ = write!(
                out,
                "<span class=\"last\">{}</span>",
                esc(&last_event_text(e))
            );
        }
    }
    out.push_str("</a></li>");
}

/// The board itself (what the live updates replace): summary and columns. `all` shows every
/// card of one column.
pub fn board(projects: &[ProjectView], all: Option<Column>) -> String {
    let mut out = String::new();
    summary(&mut out, projects);
    out.push_str("<div class=\"columns\">");
    for col in Column::ALL {
        let total: usize = projects
            .iter()
            .map(|p| {
                p.snap
                    .tasks
                    .iter()
                    .filter(|r| Column::of(r.status) == col)
                    .count()
            })
            .sum();
        let _ = write!(
            out,
            "<section class=\"column\" id=\"col-{}\"><h3>{} <span class=\"n\">{total}</span></h3><ul>",
            col.key(),
            col.title()
        );
        let limit = if all == Some(col) {
            usize::MAX
        } else {
            COLUMN_LIMIT
        };
        let mut shown = 0;
        for (i, p) in projects.iter().enumerate() {
            let label = (projects.len() > 1).then_some(p.name);
            for r in p.snap.tasks.iter().filter(|r| Column::of(r.status) == col) {
                if shown == limit {
                    break;
                }
                card(&mut out, r, p.snap, i, label);
                shown += 1;
            }
        }
        out.push_str("</ul>");
        if shown < total {
            let _ = write!(
                out,
                "<a class=\"more\" href=\"/?all={}#col-{}\">{} more: show all</a>",
                col.key(),
                col.key(),
                total - shown
            );
        }
        out.push_str("</section>");
    }
    out.push_str("</div>");
    out
}

fn add_form(csrf: &str, projects: &[ProjectView]) -> String {
    let select = if projects.len() > 1 {
        let opts: String = projects
            .iter()
            .enumerate()
            .map(|(i, p)| format!("<option value=\"{i}\">{}</option>", esc(p.name)))
            .collect();
        format!("<select name=\"project\" aria-label=\"project\">{opts}</select>")
    } else {
        "<input type=\"hidden\" name=\"project\" value=\"0\">".into()
    };
    format!(
        "<details class=\"add\"><summary>add a task</summary><form method=\"post\" action=\"/act/add\" data-action>\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">{select}\
<input name=\"title\" placeholder=\"title\" required aria-label=\"title\">\
<input name=\"after\" placeholder=\"after (ids, comma-separated)\" aria-label=\"after\">\
<button type=\"submit\">add</button></form></details>",
        esc(csrf)
    )
}

pub fn board_page(projects: &[ProjectView], all: Option<Column>, csrf: &str) -> String {
    document(
        "wg · board",
        Some(csrf),
        &format!(
            "{}<main>{}<p id=\"notice\" class=\"notice\" role=\"status\"></p><div id=\"board\" data-fragment=\"/board{}\">{}</div></main>",
            nav(csrf),
            add_form(csrf, projects),
            all.map(|c| format!("?all={}", c.key())).unwrap_or_default(),
            board(projects, all)
        ),
    )
}

/// The dependency graphs of every project (drawn by [`super::graph`]).
pub fn graph_fragment(projects: &[ProjectView]) -> String {
    let mut out = String::new();
    for (i, p) in projects.iter().enumerate() {
        let path = super::graph::critical_path(&p.snap.tasks);
        let _ = write!(
            out,
            "<section class=\"graph-wrap\"><h2>{}</h2><p>critical path ({} tasks): {}</p><div class=\"scroll\">{}</div></section>",
            esc(p.name),
            path.len(),
            esc(&path.join(" → ")),
            super::graph::svg(&p.snap.tasks, i)
        );
    }
    out
}

pub fn graph_page(projects: &[ProjectView], csrf: &str) -> String {
    document(
        "wg · graph",
        Some(csrf),
        &format!(
            "{}<main><div id=\"board\" data-fragment=\"/graph/fragment\">{}</div></main>",
            nav(csrf),
            graph_fragment(projects)
        ),
    )
}

/// What the task page shows besides the snapshot's row: read from the store for this page.
pub struct TaskDetail {
    pub description: String,
    pub question: Option<String>,
    pub evaluation: Option<String>,
}

/// The live part of a task page: its row (status, agent) and its transcript.
pub fn task_fragment(r: &TaskRow, snap: &Snapshot, lines: &[TranscriptLine]) -> String {
    let mut out = format!(
        "<p class=\"status\"><span class=\"badge {st}\" id=\"task-status\">{st}</span></p>",
        st = status_class(r.status)
    );
    if let Some(reason) = &r.reason {
        let _ = write!(out, "<p class=\"reason\">{}</p>", esc(reason));
    }
    if let Some(a) = &r.agent {
        let elapsed = a
            .started
            .and_then(|t| snap.taken_at.duration_since(t).ok())
            .map(fmt_elapsed)
            .unwrap_or_default();
        let _ = write!(
            out,
            "<dl class=\"agent-stats\"><dt>agent</dt><dd>{}</dd><dt>turn</dt><dd>{}</dd><dt>time</dt><dd>{}</dd><dt>tokens</dt><dd>{}</dd><dt>cached</dt><dd>{}</dd><dt>cost</dt><dd>{}</dd></dl>",
            esc(&format!("{} ({})", a.agent_id, a.executor)),
            a.turn,
            esc(&elapsed),
            fmt_count(a.tokens.total()),
            a.tokens
                .cached_share()
                .map(|s| format!("{:.0}%", s * 100.0))
                .unwrap_or_else(|| "–".into()),
            a.tokens
                .cost_usd
                .map(|c| format!("${c:.2}"))
                .unwrap_or_else(|| "–".into()),
        );
    }
    out.push_str("<ol class=\"transcript\" id=\"transcript\">");
    for l in lines {
        let cls = match l.speaker {
            Speaker::To => "to",
            Speaker::Agent => "agent",
            Speaker::Error => "error",
            Speaker::Activity => "activity",
        };
        let _ = write!(
            out,
            "<li class=\"{cls}\"><span class=\"who\">{}</span><pre>{}</pre></li>",
            esc(&l.who),
            esc(&l.text)
        );
    }
    out.push_str("</ol>");
    out
}

fn button(action: &str, label: &str, csrf: &str, project: usize, id: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/act/{action}\" data-action class=\"inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"project\" value=\"{project}\">\
<input type=\"hidden\" name=\"id\" value=\"{}\"><button type=\"submit\" id=\"do-{action}\">{label}</button></form>",
        esc(csrf),
        esc(id)
    )
}

pub struct TaskPage<'a> {
    pub project: usize,
    pub project_name: &'a str,
    pub row: &'a TaskRow,
    pub snap: &'a Snapshot,
    pub detail: &'a TaskDetail,
    pub lines: &'a [TranscriptLine],
    pub csrf: &'a str,
}

pub fn task_page(p: &TaskPage) -> String {
    let r = p.row;
    let (csrf, project, id) = (p.csrf, p.project, r.id.as_str());
    let mut body = format!(
        "{}<main class=\"task\"><p class=\"crumbs\"><a href=\"/\">{}</a></p><h1><span class=\"id\">{}</span> <span class=\"title\" id=\"task-title\">{}</span></h1>",
        nav(csrf),
        esc(p.project_name),
        esc(id),
        esc(&r.title)
    );
    if let Some(q) = &p.detail.question {
        let _ = write!(body, "<p class=\"question\">asks: {}</p>", esc(q));
    }
    if !p.detail.description.is_empty() {
        let _ = write!(
            body,
            "<pre class=\"description\">{}</pre>",
            esc(&p.detail.description)
        );
    }
    if let Some(e) = &p.detail.evaluation {
        let _ = write!(body, "<p class=\"evaluation\">evaluation: {}</p>", esc(e));
    }
    body.push_str("<div class=\"actions\">");
    for (action, label) in [
        ("pause", "pause"),
        ("resume", "resume"),
        ("cancel", "cancel"),
        ("retry", "retry"),
    ] {
        body.push_str(&button(action, label, csrf, project, id));
    }
    if r.awaiting_evaluation {
        body.push_str(&button("accept", "accept evaluation", csrf, project, id));
        body.push_str(&button("reject", "reject evaluation", csrf, project, id));
    }
    body.push_str("</div><p id=\"notice\" class=\"notice\" role=\"status\"></p>");
    let _ = write!(
        body,
        "<div id=\"board\" data-fragment=\"/t/{project}/{}/fragment\" data-watch=\"{project}/{}\">{}</div>",
        esc(id),
        esc(id),
        task_fragment(r, p.snap, p.lines)
    );
    let verb = if r.status == TaskStatus::NeedsInput {
        "answer"
    } else {
        "send"
    };
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/act/msg\" data-action class=\"message\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"project\" value=\"{project}\">\
<input type=\"hidden\" name=\"id\" value=\"{}\"><textarea name=\"text\" id=\"message\" rows=\"3\" required aria-label=\"message\" placeholder=\"message to {}\"></textarea>\
<button type=\"submit\" id=\"do-msg\">{verb}</button></form></main>",
        esc(csrf),
        esc(id),
        esc(id)
    );
    document(&format!("wg · {id}"), Some(csrf), &body)
}

/// The answer to an action sent by a plain form (no script): what happened, and a way back.
pub fn action_result(ok: bool, message: &str, back: &str) -> String {
    document(
        "wg · action",
        None,
        &format!(
            "<main><p class=\"{}\">{}</p><p><a href=\"{}\">back</a></p></main>",
            if ok { "ok" } else { "error" },
            esc(message),
            esc(back)
        ),
    )
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
