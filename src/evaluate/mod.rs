//! `wg evaluate`: score finished work from what the handler recorded, with a direct call to
//! an OpenAI-compatible endpoint, and the gate that sends weak work back.
//!
//! evidence.rs gathers (I/O), prompt.rs and verdict.rs are pure, this file calls the model
//! and records the result.

pub mod evidence;
pub mod prompt;
pub mod verdict;

use crate::config::WireApi;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
pub use crate::config::EvaluateConfig;
use crate::conversation;
use crate::error::{not_found, user_error, CliResult};
use crate::http;
use crate::lifecycle::{transition, Change};
use crate::model::Task;
use crate::model::TaskStatus;
use crate::store::layout::Layout;
use crate::store::tasklog::{self, LogRecord};
use crate::store::Store;
use crate::time::now_rfc3339;
use verdict::{gate, GateDecision};

/// Where and how to ask, resolved from `[evaluate]` and the project's endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub model: String,
    pub wire_api: String,
    pub key_env: String,
    pub timeout: Duration,
}

pub fn target(config: &Config) -> Result<Target, String> {
    let ev = &config.evaluate;
    let url = ev
        .endpoint
        .clone()
        .or_else(|| config.endpoint.url.clone())
        .ok_or("no endpoint to evaluate with: set `endpoint.url` or `evaluate.endpoint`")?;
    let model = ev
        .model
        .clone()
        .or_else(|| config.model.clone())
        .ok_or("no model to evaluate with: set `model` or `evaluate.model`")?;
    let wire_api = ev
        .wire_api
        .or(config.endpoint.wire_api)
        .unwrap_or(WireApi::Responses)
        .to_string();
    let key_env = ev
        .api_key_env
        .clone()
        .unwrap_or_else(|| config.api_key_env().to_string());
    let timeout = ev.timeout.get();
    Ok(Target {
        url: url.trim_end_matches('/').to_string(),
        model,
        wire_api,
        key_env,
        timeout,
    })
}

/// What one model call returned.
struct Answer {
    text: String,
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("the evaluator endpoint {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the evaluator endpoint {url} sent an answer wg cannot read: {reason}")]
    Shape { url: String, reason: String },
}

/// One request: Chat Completions or Responses, non-streaming.
fn ask(t: &Target, key: Option<&str>, messages: &[(String, String)]) -> Result<Answer, EvalError> {
    let agent = http::agent(t.timeout);
    let (url, body) = if t.wire_api == "chat" {
        let msgs: Vec<_> = messages
            .iter()
            .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
            .collect();
        (
            format!("{}/chat/completions", t.url),
            serde_json::json!({"model": t.model, "messages": msgs, "temperature": 0, "stream": false}),
        )
    } else {
        let input: Vec<_> = messages
            .iter()
            .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
            .collect();
        (
            format!("{}/responses", t.url),
            serde_json::json!({"model": t.model, "input": input, "temperature": 0, "stream": false, "store": false}),
        )
    };
    let (status, text) = http::post_json(&agent, &url, key, &body, t.timeout)?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| text.chars().take(300).collect());
        return Err(EvalError::Status {
            url,
            status,
            message,
        });
    }
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| EvalError::Shape {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let shape = |reason: &str| EvalError::Shape {
        url: url.clone(),
        reason: reason.to_string(),
    };
    if t.wire_api == "chat" {
        let text = v
            .pointer("/choices/0/message/content")
            .and_then(|c| c.as_str())
            .ok_or_else(|| shape("no choices[0].message.content"))?;
        Ok(Answer {
            text: text.to_string(),
            input_tokens: v
                .pointer("/usage/prompt_tokens")
                .and_then(|x| x.as_u64())
                .unwrap_or(0),
            output_tokens: v
                .pointer("/usage/completion_tokens")
                .and_then(|x| x.as_u64())
                .unwrap_or(0),
        })
    } else {
        let text: String = v
            .get("output")
            .and_then(|o| o.as_array())
            .ok_or_else(|| shape("no output array"))?
            .iter()
            .filter(|item| item.get("type").and_then(|t| t.as_str()) == Some("message"))
            .flat_map(|item| {
                item.get("content")
                    .and_then(|c| c.as_array())
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|c| c.get("text").and_then(|t| t.as_str()).map(str::to_string))
            .collect();
        Ok(Answer {
            text,
            input_tokens: v
                .pointer("/usage/input_tokens")
                .and_then(|x| x.as_u64())
                .unwrap_or(0),
            output_tokens: v
                .pointer("/usage/output_tokens")
                .and_then(|x| x.as_u64())
                .unwrap_or(0),
        })
    }
}

/// `.wg/tasks/<id>/evaluation.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    pub version: u32,
    pub task: String,
    /// `ok`, or `error` when the model never gave a usable verdict.
    pub status: String,
    pub ts: String,
    pub model: String,
    pub endpoint: String,
    pub wire_api: String,
    #[serde(default)]
    pub scores: BTreeMap<String, f64>,
    #[serde(default)]
    pub reasons: BTreeMap<String, String>,
    #[serde(default)]
    pub notes: String,
    pub weights: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    pub pass: f64,
    pub findings: Vec<String>,
    pub trimmed: Vec<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Gathers the evidence, asks the model (once more if the verdict is unusable), and returns
/// the evaluation. Transport errors return `Err` and leave no file behind.
pub fn evaluate(
    layout: &Layout,
    config: &Config,
    task: &Task,
    workdir: &Path,
) -> Result<Evaluation, EvalError> {
    let t = target(config).map_err(|reason| EvalError::Shape {
        url: String::new(),
        reason,
    })?;
    let key = std::env::var(&t.key_env).ok().filter(|k| !k.is_empty());
    let ev = evidence::gather(layout, task, workdir);
    let findings = evidence::findings(&ev);
    let p = prompt::build(&ev, &findings, config.evaluate.budget_chars);
    let mut messages = vec![
        ("system".to_string(), p.system),
        ("user".to_string(), p.user),
    ];
    let mut result = Evaluation {
        version: 1,
        task: task.id.clone(),
        status: "error".into(),
        ts: now_rfc3339(),
        model: t.model.clone(),
        endpoint: t.url.clone(),
        wire_api: t.wire_api.clone(),
        scores: BTreeMap::new(),
        reasons: BTreeMap::new(),
        notes: String::new(),
        weights: config.evaluate.weights.clone(),
        total: None,
        pass: config.evaluate.pass,
        findings,
        trimmed: p.trimmed,
        input_tokens: 0,
        output_tokens: 0,
        attempts: 0,
        error: None,
    };
    for _ in 0..2 {
        let answer = ask(&t, key.as_deref(), &messages)?;
        result.attempts += 1;
        result.input_tokens += answer.input_tokens;
        result.output_tokens += answer.output_tokens;
        match verdict::parse(&answer.text) {
            Ok(v) => {
                result.total = Some(verdict::weighted_total(&v.scores, &result.weights));
                result.scores = v.scores;
                result.reasons = v.reasons;
                result.notes = v.notes;
                result.status = "ok".into();
                result.error = None;
                return Ok(result);
            }
            Err(why) => {
                result.error = Some(format!("unusable verdict: {why}"));
                messages.push(("assistant".into(), answer.text));
                messages.push((
                    "user".into(),
                    format!("That reply cannot be used ({why}). Reply again with only the JSON object, every score present."),
                ));
            }
        }
    }
    Ok(result)
}

/// Writes evaluation.json atomically.
pub fn save(layout: &Layout, e: &Evaluation) -> std::io::Result<()> {
    let path = layout.task_file(&e.task, "evaluation.json");
    crate::store::nofollow::create_dir_all(&layout.task_dir(&e.task))?;
    let mut bytes = serde_json::to_vec_pretty(e).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    crate::store::atomic::write_atomic(&path, &bytes, true)
}

pub fn load(layout: &Layout, id: &str) -> Option<Evaluation> {
    let bytes = crate::store::nofollow::read(&layout.task_file(id, "evaluation.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// How many times the evaluator has sent this task back.
pub fn rejections(task: &Task) -> u32 {
    task.extra
        .get("rejections")
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as u32
}

/// Writes evaluation.json and the `evaluation` line of the task's log.jsonl.
pub fn record(layout: &Layout, actor: &str, e: &Evaluation) -> std::io::Result<()> {
    save(layout, e)?;
    let mut rec = LogRecord::note(&now_rfc3339(), actor, "");
    rec.event = "evaluation".into();
    rec.text = None;
    rec.extra.insert("status".into(), e.status.clone().into());
    if let Some(total) = e.total {
        rec.extra.insert("total".into(), total.into());
    }
    tasklog::append(layout, &e.task, &rec, false)
}

pub use crate::lifecycle::AWAITING;

/// Whether `t` is done but not yet accepted by the evaluation gate.
pub fn awaiting(t: &Task) -> bool {
    t.awaiting_evaluation()
}

/// Marks a task an agent (not a person: `user`) just made done as waiting for the automatic
/// evaluation, when `evaluate.auto` is on.
pub fn hold_for_evaluation(t: &mut Task, config: &Config, actor: &str) {
    if config.evaluate.auto && actor != "user" {
        t.extra.insert(AWAITING.into(), true.into());
    }
}

/// The dependencies of `t` that are done but still wait for their evaluation: `t` waits too.
pub fn held_by<'a>(t: &Task, get: impl Fn(&str) -> Option<&'a Task>) -> Vec<String> {
    t.held_by_gate(get)
}

/// The gate: below the pass mark a done task goes back to open with the notes as a new
/// inbox message; the `max_rejections`-th rejection fails it.
pub fn apply_gate(
    store: &Store,
    config: &Config,
    id: &str,
    e: &Evaluation,
) -> CliResult<GateDecision> {
    let cfg = &config.evaluate;
    let mut w = store.writer()?;
    let task = w.get(id)?.ok_or_else(|| not_found(id))?;
    // Whatever the score, work whose checks fail does not pass.
    let checks_failed = crate::landing::checks::last_failed(&store.layout, id);
    let decision = gate(
        if checks_failed {
            0.0
        } else {
            e.total.unwrap_or(0.0)
        },
        cfg.pass,
        rejections(&task),
        cfg.max_rejections,
    );
    let (n, last) = match decision {
        GateDecision::Accept => {
            // Accepted: its dependents may start now, or once it landed (the merge queue).
            let mut t = task.clone();
            let landing_next = crate::landing::accepted(&mut t, config);
            if landing_next || task.extra.contains_key(AWAITING) {
                if !landing_next {
                    t.extra.remove(AWAITING);
                }
                w.put(std::slice::from_ref(&t))?;
                w.commit()?;
            }
            return Ok(decision);
        }
        GateDecision::Reject { n } => (n, false),
        GateDecision::Fail { n } => (n, true),
    };
    let reason = if checks_failed {
        format!(
            "rejected by evaluator ({n}/{}): its checks fail",
            cfg.max_rejections
        )
    } else {
        format!(
            "rejected by evaluator ({n}/{}): score {:.2} below {:.2}",
            cfg.max_rejections,
            e.total.unwrap_or(0.0),
            cfg.pass
        )
    };
    let reopened = transition(
        &mut w,
        id,
        Change {
            to: TaskStatus::Open,
            reason: Some(&reason),
            actor: "evaluator",
        },
        |t| {
            t.extra.insert("rejections".into(), n.into());
        },
    )?;
    if last {
        transition(
            &mut w,
            id,
            Change {
                to: TaskStatus::Failed,
                reason: Some(&reason),
                actor: "evaluator",
            },
            |_| {},
        )?;
    }
    w.commit()?;
    let text = format!(
        "Rejected ({n}/{}): {}",
        cfg.max_rejections,
        if e.notes.is_empty() {
            &reason
        } else {
            &e.notes
        }
    );
    let brief_task = reopened.clone();
    conversation::append_message(
        &store.layout,
        &reopened,
        || conversation::build_brief(&brief_task, &[]),
        "evaluator",
        "rejection",
        &text,
    )
    .map_err(|e| user_error(e.to_string()))?;
    Ok(decision)
}

/// A person's verdict on done work, instead of (or over) the evaluator's: accepting lets its
/// dependents start; rejecting sends it back to open with the evaluation's notes (if any) as
/// its next message.
pub fn person_verdict(store: &Store, id: &str, accept: bool, actor: &str) -> CliResult<Task> {
    let mut w = store.writer()?;
    let task = w.get(id)?.ok_or_else(|| not_found(id))?;
    if task.status != TaskStatus::Done {
        return Err(user_error(format!(
            "task `{id}` is {}; only done work is accepted or rejected",
            task.status
        )));
    }
    if accept {
        let mut t = task.clone();
        t.extra.remove(AWAITING);
        w.put(std::slice::from_ref(&t))?;
        w.commit()?;
        let rec = LogRecord::note(&now_rfc3339(), actor, "evaluation accepted");
        let _ = tasklog::append(&store.layout, id, &rec, false);
        return Ok(t);
    }
    let reason = format!("rejected by {actor}");
    let reopened = transition(
        &mut w,
        id,
        Change {
            to: TaskStatus::Open,
            reason: Some(&reason),
            actor,
        },
        |t| {
            t.extra.remove(AWAITING);
        },
    )?;
    w.commit()?;
    let notes = load(&store.layout, id)
        .map(|e| e.notes)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "no notes".into());
    let text = format!("Rejected by {actor}: {notes}");
    let brief_task = reopened.clone();
    conversation::append_message(
        &store.layout,
        &reopened,
        || conversation::build_brief(&brief_task, &[]),
        actor,
        "rejection",
        &text,
    )
    .map_err(|e| user_error(e.to_string()))?;
    Ok(reopened)
}
