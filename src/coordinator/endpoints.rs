//! Endpoint pauses: an endpoint-wide failure pauses dispatch to that endpoint; only a probe
//! that passes (authenticated, with the key agents use) lifts it. The state is written to
//! `.wg/service/endpoints.json` for `wg service status`, and each pause and its end is a
//! webhook event.

use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::scheduler::Pause;
use super::{notify, Coordinator, Event};
use crate::http::{ProbeApi, ProbeFailure};
use crate::outcome::ErrorKind;
use crate::time::{format_rfc3339, now_rfc3339};

/// What a probe of one endpoint asks, and with which key.
struct ProbeTarget {
    api: ProbeApi,
    url: String,
    model: Option<String>,
    key_env: String,
}

/// One paused endpoint, as `wg service status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PausedEndpoint {
    pub endpoint: String,
    pub kind: ErrorKind,
    /// The server's own message (or why it could not be asked), whole.
    pub reason: String,
    pub advice: String,
    pub since: String,
    pub next_probe: String,
    /// Probes that failed so far in this pause.
    pub probes: u32,
}

/// The file the coordinator keeps current while it runs.
pub fn state_file(layout: &crate::store::Layout) -> std::path::PathBuf {
    layout.service_dir().join("endpoints.json")
}

/// The paused endpoints a running coordinator last wrote (none when it never paused).
pub fn read_paused(layout: &crate::store::Layout) -> Vec<PausedEndpoint> {
    std::fs::read_to_string(state_file(layout))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn view(endpoint: &str, p: &Pause, now: Instant) -> PausedEndpoint {
    PausedEndpoint {
        endpoint: endpoint.to_string(),
        kind: p.kind,
        reason: p.message.clone(),
        advice: p.kind.advice().to_string(),
        since: format_rfc3339(p.since),
        next_probe: format_rfc3339(SystemTime::now() + p.until.saturating_duration_since(now)),
        probes: p.probes,
    }
}

impl Coordinator {
    /// The delays of a pause: the first wait and the cap.
    fn pause_delays(&self) -> (std::time::Duration, std::time::Duration) {
        (self.retry_base, self.pause_cap)
    }

    /// An agent's turn failed endpoint-wide: pause dispatch to `key` (unless it already is).
    pub(super) fn pause_endpoint(&mut self, key: &str, kind: ErrorKind, message: &str) {
        let delays = self.pause_delays();
        let state = self.endpoints.entry(key.to_string()).or_default();
        let new = state.pause(
            Instant::now(),
            SystemTime::now(),
            kind,
            message.to_string(),
            delays,
        );
        if new {
            self.log.line(&format!(
                "endpoint {key} paused ({kind}): {message}; {}",
                kind.advice()
            ));
            self.announce_endpoint(key, "endpoint-paused", Some(format!("{kind}: {message}")));
            self.write_endpoints();
        }
    }

    /// A probe came back.
    pub(super) fn on_probe(&mut self, endpoint: String, result: Result<(), ProbeFailure>) {
        let delays = self.pause_delays();
        let state = self.endpoints.entry(endpoint.clone()).or_default();
        match result {
            Ok(()) => {
                if let Some(p) = state.probe_succeeded() {
                    let paused = SystemTime::now()
                        .duration_since(p.since)
                        .unwrap_or_default();
                    self.log.line(&format!(
                        "endpoint {endpoint} passed its probe; dispatch resumes (paused {})",
                        humantime::format_duration(std::time::Duration::from_secs(
                            paused.as_secs()
                        ))
                    ));
                    self.announce_endpoint(&endpoint, "endpoint-resumed", None);
                }
            }
            Err(f) => {
                let wait = state.probe_failed(
                    Instant::now(),
                    SystemTime::now(),
                    f.kind,
                    f.message.clone(),
                    delays,
                );
                self.log.line(&format!(
                    "endpoint {endpoint} probe failed ({}): {}; next probe in {}",
                    f.kind,
                    f.message,
                    humantime::format_duration(wait)
                ));
            }
        }
        self.write_endpoints();
    }

    /// `wg service resume` (SIGUSR1): every paused endpoint is probed now.
    pub(super) fn probe_paused_now(&mut self) {
        let now = Instant::now();
        let mut n = 0;
        for state in self.endpoints.values_mut() {
            if state.pause.is_some() {
                state.probe_now(now);
                n += 1;
            }
        }
        self.log
            .line(&format!("resume asked: {n} paused endpoint(s) probed now"));
    }

    /// Starts a probe of `endpoint` off the event loop. The key is the one agents of that
    /// endpoint use; a key that is not set fails the probe without a request.
    pub(super) fn start_probe(&mut self, endpoint: String) {
        let state = self.endpoints.entry(endpoint.clone()).or_default();
        state.probing = true;
        let tx = self.tx.clone();
        self.log.line(&format!("endpoint {endpoint}: probing"));
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            // Nothing to ask: the pause itself was the backoff.
            let _ = tx.send(Event::Probe {
                endpoint,
                result: Ok(()),
            });
            return;
        }
        let target = self.probe_target(&endpoint);
        let key_env = target.key_env.clone();
        let key = std::env::var(&key_env).ok().filter(|k| !k.is_empty());
        let Some(key) = key else {
            let _ = tx.send(Event::Probe {
                endpoint,
                result: Err(ProbeFailure {
                    kind: ErrorKind::KeyMissing,
                    message: format!(
                        "the key variable ${key_env} is not set where the coordinator runs"
                    ),
                }),
            });
            return;
        };
        let timeout = self.probe_timeout();
        tokio::task::spawn_blocking(move || {
            // The model itself is asked: a gateway answers `GET /models` while the backend
            // behind it is down. Without a configured model there is nothing to ask for, and
            // the listing is the best the probe can do.
            let result = match &target.model {
                Some(model) => {
                    crate::http::probe_model(target.api, &target.url, model, Some(&key), timeout)
                }
                None => crate::http::probe_models(&endpoint, Some(&key), timeout).map(|_| ()),
            };
            let _ = tx.send(Event::Probe { endpoint, result });
        });
    }

    /// How long a probe waits for the model's first bytes: the turns' own first-byte
    /// deadline, so a model that is only slow passes and a silent one holds the pause.
    fn probe_timeout(&self) -> std::time::Duration {
        self.config.handler.first_byte_timeout.get()
    }

    /// What to ask `endpoint`: the API, model and key variable of the first executor that
    /// uses it (codex's wire API, Anthropic's for claude), else the defaults.
    fn probe_target(&self, endpoint: &str) -> ProbeTarget {
        let chat = self.config.endpoint.wire_api == Some(crate::config::WireApi::Chat);
        let found = ["codex", "claude"]
            .into_iter()
            .chain(self.config.executors.keys().map(String::as_str))
            .map(|x| (x, self.config.endpoint_for(x)))
            .find(|(_, ep)| ep.url.as_deref() == Some(endpoint));
        let (api, url) = match found {
            Some(("claude", _)) => {
                let u = endpoint.trim_end_matches('/');
                (
                    ProbeApi::Anthropic,
                    u.strip_suffix("/v1").unwrap_or(u).to_string(),
                )
            }
            _ if chat => (ProbeApi::Chat, endpoint.to_string()),
            _ => (ProbeApi::Responses, endpoint.to_string()),
        };
        let ep = found.map(|(_, ep)| ep);
        ProbeTarget {
            api,
            url,
            model: ep.as_ref().and_then(|e| e.model.clone()),
            key_env: ep
                .map(|e| e.key_env)
                .unwrap_or_else(|| self.config.api_key_env().to_string()),
        }
    }

    /// Whether an endpoint has been paused longer than `--max-pause`.
    pub(super) fn paused_too_long(&self) -> bool {
        let Some(max) = self.opts.max_pause else {
            return false;
        };
        let now = SystemTime::now();
        self.endpoints.values().any(|s| {
            s.pause
                .as_ref()
                .is_some_and(|p| now.duration_since(p.since).unwrap_or_default() >= max)
        })
    }

    /// The paused endpoints, as shown by `wg service status`.
    pub(super) fn paused_endpoints(&self) -> Vec<PausedEndpoint> {
        let now = Instant::now();
        let mut v: Vec<PausedEndpoint> = self
            .endpoints
            .iter()
            .filter_map(|(k, s)| s.pause.as_ref().map(|p| view(k, p, now)))
            .collect();
        v.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        v
    }

    pub(super) fn write_endpoints(&self) {
        let json = serde_json::to_vec_pretty(&self.paused_endpoints())
            .expect("endpoint views always serialize");
        if let Err(e) = crate::store::atomic::write_atomic(&state_file(&self.layout), &json, false)
        {
            self.log
                .line(&format!("cannot write the endpoint state: {e}"));
        }
    }

    fn announce_endpoint(&self, endpoint: &str, status: &str, reason: Option<String>) {
        if let Some(n) = &self.notifier {
            let event = notify::Event {
                task: String::new(),
                status: status.to_string(),
                from: None,
                agent: None,
                time: now_rfc3339(),
                reason,
                workspace: None,
                endpoint: Some(endpoint.to_string()),
            };
            if let Err(e) = n.send(event) {
                self.log.line(&format!("webhook: {e}"));
            }
        }
    }
}
