//! The one place that builds HTTP clients (ureq): explicit timeouts, statuses as values.

use std::time::Duration;

/// An agent whose every request ends within `timeout`, and which returns 4xx/5xx responses
/// as values so callers can quote the server's own status and message.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// An agent for long streamed answers (the chat bridge): no total limit, because a model may
/// stream for many minutes, but connecting and every single read are bounded so a server that
/// goes silent cannot hold a thread forever. `Agent::shutdown` ends it sooner.
pub fn streaming_agent(connect: Duration, per_read: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(connect))
        .timeout_per_read(Some(per_read))
        .http_status_as_error(false)
        .build()
        .into()
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no answer from {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// POSTs a JSON body; `bearer` adds `Authorization: Bearer`. Returns status and body text.
pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<(u16, String), HttpError> {
    let mut req = agent.post(url).header("content-type", "application/json");
    if let Some(key) = bearer {
        req = req.header("authorization", &format!("Bearer {key}"));
    }
    let bytes = serde_json::to_vec(body).expect("a JSON value always serializes");
    let result = req.send(&bytes[..]);
    read_response(url, result, timeout)
}

/// GETs a URL; `bearer` adds `Authorization: Bearer`. Returns status and body text.
pub fn get(
    agent: &ureq::Agent,
    url: &str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), HttpError> {
    let mut req = agent.get(url);
    if let Some(key) = bearer {
        req = req.header("authorization", &format!("Bearer {key}"));
    }
    read_response(url, req.call(), timeout)
}

fn read_response(
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    timeout: Duration,
) -> Result<(u16, String), HttpError> {
    let map_err = |e: ureq::Error| match e {
        ureq::Error::Timeout(_) => HttpError::Timeout {
            url: url.to_string(),
            timeout,
        },
        other => HttpError::Unreachable {
            url: url.to_string(),
            reason: other.to_string(),
        },
    };
    let mut resp = result.map_err(map_err)?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().map_err(map_err)?;
    Ok((status, text))
}
