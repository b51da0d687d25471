//! Graph algorithms over task dependencies: readiness, cycle detection, ordering.
//! Pure functions over a lookup closure, so the store can serve them from the full graph
//! or from its on-disk index.

use std::collections::{BTreeMap, HashSet};

use super::task::{Task, TaskStatus};

/// If making `task` depend on `dep` would close a cycle, returns the cycle spelled out,
/// starting and ending at `task` (e.g. `a -> b -> c -> a`).
///
/// `after_of(id)` returns the ids `id` depends on, or `None` when the id is unknown.
pub fn cycle_through<F>(task: &str, dep: &str, mut after_of: F) -> Option<Vec<String>>
where
    F: FnMut(&str) -> Option<Vec<String>>,
{
    if task == dep {
        return Some(vec![task.to_string(), task.to_string()]);
    }
    // Depth-first search from `dep` along `after` edges, looking for `task`.
    let mut seen = HashSet::new();
    let mut stack: Vec<(String, Vec<String>)> = vec![(dep.to_string(), vec![dep.to_string()])];
    while let Some((node, path)) = stack.pop() {
        if !seen.insert(node.clone()) {
            continue;
        }
        for next in after_of(&node).unwrap_or_default() {
            if next == task {
                let mut cycle = vec![task.to_string()];
                cycle.extend(path.iter().cloned());
                cycle.push(task.to_string());
                return Some(cycle);
            }
            if !seen.contains(&next) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next, p));
            }
        }
    }
    None
}

/// The dependency cycles among `tasks` (a git merge can join two branches' edges into one):
/// each is the sorted ids of one strongly connected component with more than one task, or a
/// task that waits for itself. Sorted, so the same graph always gives the same answer.
/// Tarjan's algorithm, iterative: a chain of 100,000 tasks must not overflow the stack.
pub fn cycles(tasks: &BTreeMap<String, Task>) -> Vec<Vec<String>> {
    let ids: Vec<&str> = tasks.keys().map(String::as_str).collect();
    let pos: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let adj: Vec<Vec<usize>> = tasks
        .values()
        .map(|t| {
            t.after
                .iter()
                .filter_map(|d| pos.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    const NEW: usize = usize::MAX;
    let n = ids.len();
    let (mut index, mut low, mut on_stack) = (vec![NEW; n], vec![0; n], vec![false; n]);
    let (mut stack, mut next, mut out) = (Vec::new(), 0, Vec::new());
    for root in 0..n {
        if index[root] != NEW {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = work.last_mut() {
            let v = top.0;
            if let Some(&w) = adj[v].get(top.1) {
                top.1 += 1;
                if index[w] == NEW {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] != index[v] {
                continue;
            }
            let mut component = Vec::new();
            loop {
                let w = stack.pop().expect("v is on the stack");
                on_stack[w] = false;
                component.push(ids[w].to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 || adj[v].contains(&v) {
                component.sort();
                out.push(component);
            }
        }
    }
    out.sort();
    out
}

/// A task is ready when it is open and every dependency is done.
/// `status_of` answers for ids outside `tasks` (archived ones); unknown ids are not done.
pub fn is_ready<F>(task: &Task, tasks: &BTreeMap<String, Task>, status_of: &F) -> bool
where
    F: Fn(&str) -> Option<TaskStatus>,
{
    task.status == TaskStatus::Open
        && task.after.iter().all(|dep| {
            let status = tasks.get(dep).map(|t| t.status).or_else(|| status_of(dep));
            status == Some(TaskStatus::Done)
        })
}

/// Ready tasks in dispatch order: higher priority first, then older first, then id.
pub fn ready_in_order<'a, F>(tasks: &'a BTreeMap<String, Task>, status_of: &F) -> Vec<&'a Task>
where
    F: Fn(&str) -> Option<TaskStatus>,
{
    let mut ready: Vec<&Task> = tasks
        .values()
        .filter(|t| is_ready(t, tasks, status_of))
        .collect();
    ready.sort_by(|a, b| dispatch_order(a, b));
    ready
}

/// The order ready tasks are dispatched in: higher priority first, then older, then id.
pub fn dispatch_order(a: &Task, b: &Task) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| a.created.cmp(&b.created))
        .then_with(|| a.id.cmp(&b.id))
}

/// Tasks in an order where every task comes after its dependencies (Kahn's algorithm,
/// ties broken by id so the output is stable). Dependencies outside the map are ignored.
pub fn topological_order(tasks: &BTreeMap<String, Task>) -> Vec<&Task> {
    let mut indegree: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for task in tasks.values() {
        let deps = task
            .after
            .iter()
            .filter(|d| tasks.contains_key(d.as_str()))
            .count();
        indegree.insert(task.id.as_str(), deps);
        for dep in task.after.iter().filter(|d| tasks.contains_key(d.as_str())) {
            dependents
                .entry(dep.as_str())
                .or_default()
                .push(task.id.as_str());
        }
    }
    let mut queue: std::collections::BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut order = Vec::with_capacity(tasks.len());
    while let Some(id) = queue.pop_first() {
        order.push(&tasks[id]);
        for child in dependents.get(id).map(Vec::as_slice).unwrap_or_default() {
            let n = indegree.get_mut(child).expect("every dependent is indexed");
            *n -= 1;
            if *n == 0 {
                queue.insert(child);
            }
        }
    }
    // A cycle cannot be written through wg, but a hand-edited file may hold one; list the rest.
    if order.len() < tasks.len() {
        let placed: HashSet<&str> = order.iter().map(|t| t.id.as_str()).collect();
        order.extend(tasks.values().filter(|t| !placed.contains(t.id.as_str())));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Task> {
        edges
            .iter()
            .map(|(id, after)| {
                let mut t = Task::new(id.to_string(), id.to_string(), "t");
                t.after = after.iter().map(|s| s.to_string()).collect();
                (id.to_string(), t)
            })
            .collect()
    }

    #[test]
    fn cycle_is_spelled_out() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"])]);
        let after = |id: &str| g.get(id).map(|t| t.after.clone());
        // a after c would close a -> c -> b -> a
        assert_eq!(
            cycle_through("a", "c", after).unwrap(),
            vec!["a", "c", "b", "a"]
        );
        assert!(cycle_through("c", "a", |id: &str| g.get(id).map(|t| t.after.clone())).is_none());
        assert_eq!(
            cycle_through("a", "a", |_: &str| None).unwrap(),
            vec!["a", "a"]
        );
    }

    #[test]
    fn ready_needs_done_dependencies_and_orders_by_priority_then_age() {
        let mut g = graph(&[("a", &[]), ("b", &["a"]), ("c", &[]), ("d", &["gone"])]);
        g.get_mut("c").unwrap().priority = 5;
        let none = |_: &str| None;
        let ids: Vec<_> = ready_in_order(&g, &none)
            .iter()
            .map(|t| t.id.clone())
            .collect();
        assert_eq!(ids, vec!["c", "a"]);
        g.get_mut("a").unwrap().status = TaskStatus::Done;
        let archived = |id: &str| (id == "gone").then_some(TaskStatus::Done);
        let ids: Vec<_> = ready_in_order(&g, &archived)
            .iter()
            .map(|t| t.id.clone())
            .collect();
        assert_eq!(ids, vec!["c", "b", "d"]);
    }

    #[test]
    fn cycles_name_their_tasks_and_nothing_else() {
        let g = graph(&[
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("d", &["a"]),
            ("e", &["e"]),
            ("f", &["gone"]),
        ]);
        assert_eq!(cycles(&g), vec![vec!["a", "b", "c"], vec!["e"]]);
        assert!(cycles(&graph(&[("a", &[]), ("b", &["a"])])).is_empty());
        // A long chain is walked without recursion.
        let chain: Vec<(String, Vec<String>)> = (0..200_000)
            .map(|i| (format!("t{i}"), vec![format!("t{}", i + 1)]))
            .collect();
        let g: BTreeMap<String, Task> = chain
            .into_iter()
            .map(|(id, after)| {
                let mut t = Task::new(id.clone(), id.clone(), "t");
                t.after = after;
                (id, t)
            })
            .collect();
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn topological_order_respects_edges() {
        let g = graph(&[("z", &[]), ("y", &["z"]), ("a", &["y", "z"])]);
        let ids: Vec<_> = topological_order(&g)
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(ids, vec!["z", "y", "a"]);
    }
}
