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

/// The server's own words in an error body: `error.message`, `message` or `detail` of a JSON
/// body, else the body itself, on one line (whole: a reason is never cut inside a word).
pub fn server_message(body: &str) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = v.as_ref().and_then(|v| {
        let e = v.get("error");
        e.and_then(|e| e.get("message"))
            .or(e.filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .and_then(|m| m.as_str().map(str::to_string))
    });
    let text = from_json.unwrap_or_else(|| body.to_string());
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why an endpoint did not pass its probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    pub kind: crate::outcome::ErrorKind,
    /// What the server said (or why it could not be asked), whole.
    pub message: String,
}

/// The context window a `/models` answer gives for `model`: llama.cpp's server under
/// `meta.n_ctx` (the slot's window), vLLM's as `max_model_len`. A server that lists one model
/// answers for it whatever its id (llama.cpp names it by its file). Pure.
pub fn window_in_models(body: &serde_json::Value, model: &str) -> Option<u64> {
    let list = body.get("data")?.as_array()?;
    let entry = list
        .iter()
        .find(|m| m.get("id").and_then(|i| i.as_str()) == Some(model))
        .or_else(|| (list.len() == 1).then(|| &list[0]))?;
    entry["meta"]["n_ctx"]
        .as_u64()
        .or_else(|| entry["max_model_len"].as_u64())
}

/// `GET {url}/models` and the context window it gives for `model`, if any.
pub fn model_window(url: &str, key: Option<&str>, model: &str, timeout: Duration) -> Option<u64> {
    let models = format!("{}/models", url.trim_end_matches('/'));
    let (status, body) = get(&agent(timeout), &models, key, timeout).ok()?;
    if !(200..300).contains(&status) {
        return None;
    }
    window_in_models(&serde_json::from_str(&body).ok()?, model)
}

/// `GET {url}/models` with the key agents use, a path gateways and servers check keys on.
/// `Ok` with the listed model ids when it answers 2xx; a 401/403, a 429 or a 5xx (or no
/// answer) is a failure of its kind; other 4xx (a server without `/models`) count as up with
/// no list, since the server is there and the probe cannot tell more.
pub fn probe_models(
    url: &str,
    key: Option<&str>,
    timeout: Duration,
) -> Result<Vec<String>, ProbeFailure> {
    use crate::outcome::ErrorKind;
    let models = format!("{}/models", url.trim_end_matches('/'));
    let (status, body) = get(&agent(timeout), &models, key, timeout).map_err(|e| ProbeFailure {
        kind: ErrorKind::Unreachable,
        message: e.to_string(),
    })?;
    if (200..300).contains(&status) {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        return Ok(v
            .get("data")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default());
    }
    let message = format!("GET {models} answered {status}: {}", server_message(&body));
    match status {
        401 | 403 | 429 | 500..=599 => Err(ProbeFailure {
            kind: ErrorKind::from_status(status, &body).unwrap_or(ErrorKind::ServerError),
            message,
        }),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn windows_from_llama_cpp_and_vllm_model_lists() {
        // llama.cpp's server (0c1e570): the model is named by its file, the window in meta.
        let llama = json!({"object": "list", "data": [{"id": "/m/SmolLM2.gguf", "object": "model",
            "meta": {"n_ctx": 4096, "n_ctx_train": 8192}}]});
        assert_eq!(window_in_models(&llama, "smollm2"), Some(4096));
        let vllm = json!({"data": [{"id": "a", "max_model_len": 32768},
            {"id": "qwen3-coder", "max_model_len": 262144}]});
        assert_eq!(window_in_models(&vllm, "qwen3-coder"), Some(262144));
        assert_eq!(window_in_models(&vllm, "other"), None);
        assert_eq!(window_in_models(&json!({"data": []}), "m"), None);
    }
}
