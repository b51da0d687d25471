use clap::{Args, ValueEnum};

use crate::cli::Ctx;
use crate::error::CliResult;
use crate::model::graph::topological_order;
use crate::model::Task;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Ascii,
    Dot,
    Mermaid,
}

/// Draw the task graph with statuses.
#[derive(Debug, Args)]
pub struct VizArgs {
    #[arg(long, value_enum, default_value = "ascii")]
    pub format: Format,
}

fn mark(t: &Task) -> &'static str {
    use crate::model::TaskStatus::*;
    match t.status {
        Open => "[ ]",
        InProgress => "[~]",
        Waiting => "[.]",
        NeedsInput => "[?]",
        Paused => "[=]",
        Done => "[x]",
        Failed => "[!]",
        Abandoned => "[-]",
    }
}

fn color(t: &Task) -> &'static str {
    use crate::model::TaskStatus::*;
    match t.status {
        Open => "white",
        InProgress => "lightblue",
        Waiting => "khaki",
        NeedsInput => "orange",
        Paused => "lightgray",
        Done => "palegreen",
        Failed => "salmon",
        Abandoned => "gray",
    }
}

pub fn render(tasks: &std::collections::BTreeMap<String, Task>, format: Format) -> String {
    let order = topological_order(tasks);
    let mut s = String::new();
    match format {
        Format::Ascii => {
            // Each task on its own line, indented by its depth (longest path from a root).
            let mut depth: std::collections::HashMap<&str, usize> = Default::default();
            for t in &order {
                let d = t
                    .after
                    .iter()
                    .filter_map(|a| depth.get(a.as_str()))
                    .map(|d| d + 1)
                    .max()
                    .unwrap_or(0);
                depth.insert(&t.id, d);
                let after = if t.after.is_empty() {
                    String::new()
                } else {
                    format!("  <- {}", t.after.join(", "))
                };
                s.push_str(&format!(
                    "{}{} {} ({}){after}\n",
                    "  ".repeat(d),
                    mark(t),
                    t.id,
                    t.status
                ));
            }
        }
        Format::Dot => {
            s.push_str("digraph wg {\n  rankdir=LR;\n  node [shape=box, style=filled];\n");
            for t in &order {
                s.push_str(&format!(
                    "  \"{}\" [label=\"{}\\n{}\", fillcolor={}];\n",
                    t.id,
                    t.id,
                    t.status,
                    color(t)
                ));
            }
            for t in &order {
                for a in &t.after {
                    s.push_str(&format!("  \"{a}\" -> \"{}\";\n", t.id));
                }
            }
            s.push_str("}\n");
        }
        Format::Mermaid => {
            s.push_str("graph LR\n");
            for t in &order {
                s.push_str(&format!(
                    "  {}[\"{} ({})\"]\n",
                    t.id.replace('-', "_"),
                    t.id,
                    t.status
                ));
            }
            for t in &order {
                for a in &t.after {
                    s.push_str(&format!(
                        "  {} --> {}\n",
                        a.replace('-', "_"),
                        t.id.replace('-', "_")
                    ));
                }
            }
        }
    }
    s
}

pub fn cmd_viz(ctx: &Ctx, args: &VizArgs) -> CliResult {
    let graph = ctx.store.load()?;
    let text = render(&graph.tasks, args.format);
    ctx.out.either(
        &serde_json::json!({"format": format!("{:?}", args.format).to_lowercase(), "text": text}),
        || text.clone(),
    )?;
    Ok(())
}
