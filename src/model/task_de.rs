//! `Deserialize` for [`Task`], by hand: known fields go straight into their typed slots and
//! unknown ones into `extra`, in one pass. serde's derive with `#[serde(flatten)]` buffers
//! every field of every record first, which dominated `wg ready`, `wg list` and `wg show`.
//! The checks are the derive's: required fields, duplicate fields, every id validated.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::task::{validate_id, Task, TaskStatus};

enum Field {
    Id,
    Title,
    Description,
    Status,
    After,
    Executor,
    Model,
    Tags,
    Priority,
    Retries,
    MaxRetries,
    Timeout,
    Workspace,
    Command,
    Created,
    Updated,
    Assigned,
    FailureReason,
    Artifacts,
    Other(String),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "id" => Field::Id,
                    "title" => Field::Title,
                    "description" => Field::Description,
                    "status" => Field::Status,
                    "after" => Field::After,
                    "executor" => Field::Executor,
                    "model" => Field::Model,
                    "tags" => Field::Tags,
                    "priority" => Field::Priority,
                    "retries" => Field::Retries,
                    "max_retries" => Field::MaxRetries,
                    "timeout" => Field::Timeout,
                    "workspace" => Field::Workspace,
                    "command" => Field::Command,
                    "created" => Field::Created,
                    "updated" => Field::Updated,
                    "assigned" => Field::Assigned,
                    "failure_reason" => Field::FailureReason,
                    "artifacts" => Field::Artifacts,
                    other => Field::Other(other.to_string()),
                })
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

/// Sets a slot once; a second value for the same field is an error, as with the derive.
fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

fn checked_id<E: de::Error>(id: String) -> Result<String, E> {
    validate_id(&id).map_err(E::custom)?;
    Ok(id)
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Task, D::Error> {
        d.deserialize_map(TaskVisitor)
    }
}

struct TaskVisitor;

impl<'de> Visitor<'de> for TaskVisitor {
    type Value = Task;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task record (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Task, A::Error> {
        let (mut id, mut title, mut description, mut status) = (None, None, None, None);
        let (mut after, mut executor, mut model, mut tags) = (None, None, None, None);
        let (mut priority, mut retries, mut max_retries, mut timeout) = (None, None, None, None);
        let (mut workspace, mut command, mut created, mut updated) = (None, None, None, None);
        let (mut assigned, mut failure_reason, mut artifacts) = (None, None, None);
        let mut extra = BTreeMap::new();
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Id => once(&mut id, "id", checked_id(map.next_value()?)?)?,
                Field::Title => once(&mut title, "title", map.next_value::<String>()?)?,
                Field::Description => {
                    once(&mut description, "description", map.next_value::<String>()?)?
                }
                Field::Status => once(&mut status, "status", map.next_value::<TaskStatus>()?)?,
                Field::After => {
                    let ids: Vec<String> = map.next_value()?;
                    let ids = ids
                        .into_iter()
                        .map(checked_id)
                        .collect::<Result<Vec<_>, _>>()?;
                    once(&mut after, "after", ids)?
                }
                Field::Executor => once(
                    &mut executor,
                    "executor",
                    map.next_value::<Option<String>>()?,
                )?,
                Field::Model => once(&mut model, "model", map.next_value::<Option<String>>()?)?,
                Field::Tags => once(&mut tags, "tags", map.next_value::<Vec<String>>()?)?,
                Field::Priority => once(&mut priority, "priority", map.next_value::<i64>()?)?,
                Field::Retries => once(&mut retries, "retries", map.next_value::<u32>()?)?,
                Field::MaxRetries => once(
                    &mut max_retries,
                    "max_retries",
                    map.next_value::<Option<u32>>()?,
                )?,
                Field::Timeout => once(
                    &mut timeout,
                    "timeout",
                    map.next_value::<Option<crate::time::Dur>>()?,
                )?,
                Field::Workspace => once(
                    &mut workspace,
                    "workspace",
                    map.next_value::<Option<String>>()?,
                )?,
                Field::Command => once(&mut command, "command", map.next_value::<Vec<String>>()?)?,
                Field::Created => once(&mut created, "created", map.next_value::<String>()?)?,
                Field::Updated => once(&mut updated, "updated", map.next_value::<String>()?)?,
                Field::Assigned => once(
                    &mut assigned,
                    "assigned",
                    map.next_value::<Option<String>>()?,
                )?,
                Field::FailureReason => once(
                    &mut failure_reason,
                    "failure_reason",
                    map.next_value::<Option<String>>()?,
                )?,
                Field::Artifacts => once(
                    &mut artifacts,
                    "artifacts",
                    map.next_value::<Vec<String>>()?,
                )?,
                Field::Other(name) => {
                    let value: serde_json::Value = map.next_value()?;
                    if extra.insert(name.clone(), value).is_some() {
                        return Err(de::Error::custom(format!("duplicate field `{name}`")));
                    }
                }
            }
        }
        Ok(Task {
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            title: title.ok_or_else(|| de::Error::missing_field("title"))?,
            description: description.unwrap_or_default(),
            status: status.ok_or_else(|| de::Error::missing_field("status"))?,
            after: after.unwrap_or_default(),
            executor: executor.flatten(),
            model: model.flatten(),
            tags: tags.unwrap_or_default(),
            priority: priority.unwrap_or_default(),
            retries: retries.unwrap_or_default(),
            max_retries: max_retries.flatten(),
            timeout: timeout.flatten(),
            workspace: workspace.flatten(),
            command: command.unwrap_or_default(),
            created: created.ok_or_else(|| de::Error::missing_field("created"))?,
            updated: updated.ok_or_else(|| de::Error::missing_field("updated"))?,
            assigned: assigned.flatten(),
            failure_reason: failure_reason.flatten(),
            artifacts: artifacts.unwrap_or_default(),
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#""title":"T","status":"open","created":"c","updated":"u""#;

    #[test]
    fn same_checks_as_the_derive() {
        let ok: Task = serde_json::from_str(&format!(
            r#"{{"id":"a",{BASE},"after":["b"],"x":{{"y":1}},"model":null}}"#
        ))
        .unwrap();
        assert_eq!(ok.after, vec!["b"]);
        assert_eq!(ok.extra["x"]["y"], 1);
        assert_eq!(ok.model, None);
        for (bad, why) in [
            (format!(r#"{{"id":"../a",{BASE}}}"#), "may only hold"),
            (
                format!(r#"{{"id":"a",{BASE},"after":["x/y"]}}"#),
                "may only hold",
            ),
            (format!(r#"{{{BASE}}}"#), "missing field `id`"),
            (
                r#"{"id":"a","status":"open","created":"c","updated":"u"}"#.to_string(),
                "missing field `title`",
            ),
            (
                format!(r#"{{"id":"a",{BASE},"status":"done"}}"#),
                "duplicate field `status`",
            ),
            (
                format!(r#"{{"id":"a",{BASE},"priority":"high"}}"#),
                "invalid type",
            ),
            (
                format!(r#"{{"id":"a",{BASE},"status2":1,"status2":2}}"#),
                "duplicate field `status2`",
            ),
            (r#"["a"]"#.to_string(), "task record"),
        ] {
            let e = serde_json::from_str::<Task>(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_record_survives_a_round_trip_unchanged() {
        let line = format!(
            r#"{{"id":"a",{BASE},"tags":["x"],"priority":-2,"retries":1,"zeta":[1,2],"alpha":"b"}}"#
        );
        let t: Task = serde_json::from_str(&line).unwrap();
        let again: Task = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(t, again);
    }
}
