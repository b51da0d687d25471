//! Webhooks (`[notify] url`, `token_env`) and endpoint probes: the coordinator's only HTTP.
//!
//! Webhooks are posted from their own thread through a bounded queue, so a slow or dead
//! receiver never delays dispatch: when the queue is full an event is dropped and logged.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use serde::Serialize;

/// Events waiting for the webhook thread before new ones are dropped.
const QUEUE: usize = 1024;
/// Attempts per event (the first try plus retries).
const ATTEMPTS: u32 = 4;
/// Per-request limit.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The JSON body of one webhook POST.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    pub task: String,
    /// `running`, `waiting`, `done`, `failed`, `abandoned` (and `open` when requeued).
    pub status: String,
    /// The task status before, as stored (`open`, `in-progress`...).
    pub from: Option<String>,
    pub agent: Option<String>,
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set on the event that reports a worktree cleanup (see docs/workspaces.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<serde_json::Value>,
    /// Set on `endpoint-paused` and `endpoint-resumed` events (whose `task` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// The webhook name of a stored status: `in-progress` is announced as `running`.
pub fn webhook_status(s: crate::model::TaskStatus) -> &'static str {
    match s {
        crate::model::TaskStatus::InProgress => "running",
        other => other.as_str(),
    }
}

type LogFn = Box<dyn Fn(String) + Send>;

pub struct Notifier {
    tx: SyncSender<Event>,
    thread: std::thread::JoinHandle<()>,
}

fn http_agent() -> ureq::Agent {
    crate::http::agent(TIMEOUT)
}

impl Notifier {
    /// Starts the webhook thread. `token` is the value of the env var named by
    /// `notify.token_env`, read once by the coordinator; it only ever goes into the header.
    pub fn start(
        url: String,
        token: Option<String>,
        retry_delay: Duration,
        log: LogFn,
    ) -> Notifier {
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("wg-webhooks".into())
            .spawn(move || deliver(rx, &url, token.as_deref(), retry_delay, &log))
            .expect("spawning a thread only fails when the system is out of resources");
        Notifier { tx, thread }
    }

    /// Lets queued events go out, for at most `limit`, when the coordinator exits.
    pub fn finish(self, limit: Duration) {
        drop(self.tx);
        let deadline = std::time::Instant::now() + limit;
        while !self.thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Queues an event; never blocks.
    pub fn send(&self, event: Event) -> Result<(), String> {
        match self.tx.try_send(event) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(e)) => Err(format!(
                "webhook queue full; dropped {} {}",
                e.task, e.status
            )),
            Err(TrySendError::Disconnected(_)) => Err("webhook thread is gone".into()),
        }
    }
}

fn deliver(
    rx: Receiver<Event>,
    url: &str,
    token: Option<&str>,
    retry_delay: Duration,
    log: &LogFn,
) {
    let agent = http_agent();
    for event in rx {
        let body = serde_json::to_string(&event).expect("an event always serializes");
        for attempt in 0..ATTEMPTS {
            let mut req = agent.post(url).content_type("application/json");
            if let Some(t) = token {
                req = req.header("X-WG-Token", t);
            }
            let verdict = match req.send(body.as_str()) {
                Ok(resp) if resp.status().is_success() => None,
                // Other client errors will not get better by repeating the request.
                Ok(resp) if resp.status().is_client_error() && resp.status().as_u16() != 429 => {
                    log(format!(
                        "webhook: {} {} refused with HTTP {}; not retried",
                        event.task,
                        event.status,
                        resp.status().as_u16()
                    ));
                    break;
                }
                Ok(resp) => Some(format!("HTTP {}", resp.status().as_u16())),
                Err(e) => Some(e.to_string()),
            };
            let Some(why) = verdict else { break };
            if attempt + 1 == ATTEMPTS {
                log(format!(
                    "webhook: gave up on {} {} after {ATTEMPTS} attempts: {why}",
                    event.task, event.status
                ));
            } else {
                std::thread::sleep(retry_delay * 2u32.pow(attempt));
            }
        }
    }
}

/// Per-probe limit of a paused endpoint's probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
