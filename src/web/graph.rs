//! The dependency graph as a picture: the unfinished tasks in layers (a task one layer right
//! of the deepest task it runs after), arrows from each dependency, and the critical path (the
//! longest chain of unfinished tasks: what bounds the time to the end) drawn bold. Drawn on
//! the server as SVG from the same snapshot as the board; pure.

use std::collections::HashMap;

use super::page::{esc, status_class, task_href};
use crate::model::TaskStatus;
use crate::top::model::TaskRow;

/// Most tasks drawn: beyond this a picture is no longer readable; the critical path is
/// always drawn, the rest in display order.
pub const MAX_NODES: usize = 300;
const BOX_W: usize = 170;
const BOX_H: usize = 26;
const GAP_X: usize = 50;
const GAP_Y: usize = 10;

fn unfinished(s: TaskStatus) -> bool {
    !matches!(s, TaskStatus::Done | TaskStatus::Abandoned)
}

/// Depth of every unfinished task (0: no unfinished dependency) and the dependency that gives
/// it, computed in dependency order; tasks on a cycle (the store refuses them) get none.
fn depths(rows: &[TaskRow]) -> HashMap<&str, (usize, Option<&str>)> {
    let live: HashMap<&str, &TaskRow> = rows
        .iter()
        .filter(|r| unfinished(r.status))
        .map(|r| (r.id.as_str(), r))
        .collect();
    let mut pending: HashMap<&str, usize> = HashMap::new();
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, r) in &live {
        let deps: Vec<&str> = r
            .after
            .iter()
            .map(String::as_str)
            .filter(|d| live.contains_key(d))
            .collect();
        pending.insert(id, deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(id);
        }
    }
    let mut out: HashMap<&str, (usize, Option<&str>)> = HashMap::new();
    let mut queue: Vec<&str> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| *id)
        .collect();
    queue.sort_unstable();
    for id in &queue {
        out.insert(id, (0, None));
    }
    while let Some(id) = queue.pop() {
        let depth = out[id].0;
        for &next in dependents.get(id).map(Vec::as_slice).unwrap_or(&[]) {
            let e = out.entry(next).or_insert((0, None));
            if e.1.is_none() || depth + 1 > e.0 {
                *e = (depth + 1, Some(id));
            }
            let n = pending.get_mut(next).expect("every live task is counted");
            *n -= 1;
            if *n == 0 {
                queue.push(next);
            }
        }
    }
    out
}

/// The longest chain of unfinished tasks, first to last (ties: the smallest id).
pub fn critical_path(rows: &[TaskRow]) -> Vec<String> {
    let d = depths(rows);
    let Some((mut at, _)) = d
        .iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.0.cmp(a.0)))
        .map(|(id, v)| (*id, v.0))
    else {
        return Vec::new();
    };
    let mut path = vec![at.to_string()];
    while let Some(prev) = d.get(at).and_then(|v| v.1) {
        path.push(prev.to_string());
        at = prev;
    }
    path.reverse();
    path
}

/// The picture, as an inline `<svg>` element (styled by the page's CSS, so it follows the
/// light or dark theme); `project` is the index used in task links.
pub fn svg(rows: &[TaskRow], project: usize) -> String {
    let d = depths(rows);
    let critical = critical_path(rows);
    let on_path: std::collections::HashSet<&str> = critical.iter().map(String::as_str).collect();
    // What is drawn: the critical path, then other unfinished tasks in display order.
    let mut drawn: Vec<&TaskRow> = rows
        .iter()
        .filter(|r| on_path.contains(r.id.as_str()))
        .collect();
    drawn.extend(
        rows.iter()
            .filter(|r| {
                unfinished(r.status)
                    && !on_path.contains(r.id.as_str())
                    && d.contains_key(r.id.as_str())
            })
            .take(MAX_NODES.saturating_sub(drawn.len())),
    );
    let omitted = d.len().saturating_sub(drawn.len());
    let mut per_layer: HashMap<usize, usize> = HashMap::new();
    let mut pos: HashMap<&str, (usize, usize)> = HashMap::new();
    for r in &drawn {
        let layer = d[r.id.as_str()].0;
        let slot = per_layer.entry(layer).or_default();
        pos.insert(
            &r.id,
            (layer * (BOX_W + GAP_X) + 4, *slot * (BOX_H + GAP_Y) + 4),
        );
        *slot += 1;
    }
    let width = per_layer
        .keys()
        .max()
        .map_or(0, |l| (l + 1) * (BOX_W + GAP_X))
        + 8;
    let height = per_layer.values().max().map_or(0, |n| n * (BOX_H + GAP_Y)) + 8;
    let mut out = format!(
        "<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"dependency graph\">"
    );
    out.push_str("<defs><marker id=\"arr\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" class=\"arrow\"/></marker></defs>");
    for r in &drawn {
        let (x2, y2) = pos[r.id.as_str()];
        for dep in &r.after {
            let Some(&(x1, y1)) = pos.get(dep.as_str()) else {
                continue;
            };
            let crit = on_path.contains(dep.as_str())
                && on_path.contains(r.id.as_str())
                && d[r.id.as_str()].1 == Some(dep.as_str());
            out.push_str(&format!(
                "<line class=\"edge{}\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" marker-end=\"url(#arr)\"/>",
                if crit { " critical" } else { "" },
                x1 + BOX_W,
                y1 + BOX_H / 2,
                x2,
                y2 + BOX_H / 2
            ));
        }
    }
    for r in &drawn {
        let (x, y) = pos[r.id.as_str()];
        let crit = on_path.contains(r.id.as_str());
        let label: String = r.id.chars().take(22).collect();
        out.push_str(&format!(
            "<a href=\"{}\"><g class=\"node {}{}\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\"/><text x=\"{}\" y=\"{}\">{}</text></g></a>",
            task_href(project, &r.id),
            status_class(r.status),
            if crit { " critical" } else { "" },
            esc(&format!("{} ({}): {}", r.id, r.status, r.title)),
            x + 6,
            y + 17,
            esc(&label),
        ));
    }
    out.push_str("</svg>");
    if omitted > 0 {
        out.push_str(&format!(
            "<p class=\"note\">{omitted} more unfinished tasks are not drawn (the picture shows {} of them).</p>",
            drawn.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: TaskStatus, after: &[&str]) -> TaskRow {
        TaskRow {
            id: id.into(),
            title: format!("<b>{id}</b>"),
            status,
            ready: false,
            reason: None,
            updated: String::new(),
            agent: None,
            after: after.iter().map(|s| s.to_string()).collect(),
            awaiting_evaluation: false,
        }
    }

    #[test]
    fn the_critical_path_is_the_longest_unfinished_chain() {
        use TaskStatus::*;
        let rows = vec![
            row("a", Done, &[]),
            row("b", Open, &["a"]),
            row("c", Open, &["b"]),
            row("d", InProgress, &[]),
            row("e", Open, &["d", "c"]),
            row("f", Open, &["d"]),
        ];
        // a is done: the chain b → c → e is longest (d → e is shorter).
        assert_eq!(critical_path(&rows), ["b", "c", "e"]);
        assert!(critical_path(&[row("x", Done, &[])]).is_empty());
    }

    #[test]
    fn the_picture_marks_the_path_and_escapes_titles() {
        use TaskStatus::*;
        let rows = vec![
            row("b", Open, &[]),
            row("c", Open, &["b"]),
            row("z", Failed, &[]),
        ];
        let svg = svg(&rows, 0);
        assert_eq!(
            svg.matches("<line class=\"edge critical\"").count(),
            1,
            "{svg}"
        );
        assert_eq!(svg.matches("node open critical").count(), 2, "{svg}");
        assert!(svg.contains("node failed\""), "{svg}");
        assert!(
            svg.contains("&lt;b&gt;c&lt;/b&gt;") && !svg.contains("<b>"),
            "{svg}"
        );
    }

    #[test]
    fn a_huge_graph_is_cut_to_a_readable_picture() {
        let rows: Vec<TaskRow> = (0..2 * MAX_NODES)
            .map(|i| row(&format!("t{i}"), TaskStatus::Open, &[]))
            .collect();
        let svg = svg(&rows, 0);
        assert_eq!(svg.matches("<rect").count(), MAX_NODES);
        assert!(
            svg.contains(&format!("{MAX_NODES} more unfinished tasks")),
            "cut says so"
        );
    }
}
