//! `wg config get|set|list`: dotted keys over a toml_edit document, so comments and key order
//! in the user's file survive every change.

use toml_edit::{DocumentMut, Item, Table, Value};

/// Reads a dotted key. `None` when absent.
pub fn get<'d>(doc: &'d DocumentMut, key: &str) -> Option<&'d Item> {
    let mut item = doc.as_item();
    for part in key.split('.') {
        item = item.get(part)?;
    }
    Some(item)
}

/// Parses a command-line value: integer, float or boolean when it reads as one, else a string.
pub fn parse_value(raw: &str) -> Value {
    if let Ok(i) = raw.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = raw.parse::<f64>() {
        if f.is_finite() {
            return Value::from(f);
        }
    }
    match raw {
        "true" => Value::from(true),
        "false" => Value::from(false),
        _ => Value::from(raw),
    }
}

/// Sets a dotted key, creating tables on the way. Refuses to replace a table with a value
/// or to descend through a value.
pub fn set(doc: &mut DocumentMut, key: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}` is not a valid dotted key"));
    }
    let (last, path) = parts.split_last().expect("split yields at least one part");
    let mut table: &mut Table = doc.as_table_mut();
    for (i, part) in path.iter().enumerate() {
        let entry = table.entry(part).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        table = match entry {
            Item::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{}` is a value, not a table",
                    parts[..=i].join(".")
                ))
            }
        };
    }
    if let Some(Item::Table(_)) = table.get(last) {
        return Err(format!("`{key}` is a table; set one of its keys instead"));
    }
    // Keep the decoration (comments) of an existing value.
    match table.get_mut(last) {
        Some(Item::Value(old)) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        _ => {
            table.insert(last, Item::Value(value));
        }
    }
    Ok(())
}

/// Every leaf as `dotted.key = value`, in file order.
pub fn list(doc: &DocumentMut) -> Vec<(String, String)> {
    fn walk(prefix: &str, table: &Table, out: &mut Vec<(String, String)>) {
        for (k, item) in table.iter() {
            let key = if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            };
            match item {
                Item::Table(t) => walk(&key, t, out),
                Item::Value(v) => out.push((key, v.to_string().trim().to_string())),
                Item::ArrayOfTables(a) => {
                    for (i, t) in a.iter().enumerate() {
                        walk(&format!("{key}.{i}"), t, out)
                    }
                }
                Item::None => {}
            }
        }
    }
    let mut out = Vec::new();
    walk("", doc.as_table(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_comments_and_types_numbers() {
        let mut doc: DocumentMut =
            "# top\nexecutor = \"codex\" # why\n\n[coordinator]\n# agents\nmax_agents = 4\n"
                .parse()
                .unwrap();
        set(&mut doc, "coordinator.max_agents", parse_value("8")).unwrap();
        set(&mut doc, "executors.mock.turn_ms", parse_value("300")).unwrap();
        set(&mut doc, "executor", parse_value("mock")).unwrap();
        let text = doc.to_string();
        assert!(
            text.contains("# top") && text.contains("# agents") && text.contains("# why"),
            "{text}"
        );
        assert!(text.contains("max_agents = 8"), "{text}");
        assert!(text.contains("turn_ms = 300"), "{text}");
        assert_eq!(
            get(&doc, "executors.mock.turn_ms").unwrap().as_integer(),
            Some(300)
        );
        assert!(set(&mut doc, "executor.x", parse_value("1")).is_err());
        assert!(set(&mut doc, "coordinator", parse_value("1")).is_err());
    }

    #[test]
    fn values_parse_to_the_narrowest_type() {
        assert_eq!(parse_value("3").as_integer(), Some(3));
        assert_eq!(parse_value("1.5").as_float(), Some(1.5));
        assert_eq!(parse_value("true").as_bool(), Some(true));
        assert_eq!(parse_value("qwen3-coder").as_str(), Some("qwen3-coder"));
    }
}
