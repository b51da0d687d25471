//! What the proxy learns from each answer it passes on: how the Responses stream ended, the
//! server's own token counts (prompt, cached prefix, output) and the output cap the request
//! carried. The agent may fail a turn without reporting any usage (codex does on an
//! incomplete answer), and a server may end an answer at its cap while still saying
//! `completed` (llama.cpp's server does); the handler reads both here. Pure.

use serde_json::Value;

/// How one answer ended, as its last Responses event said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `response.completed`.
    Completed,
    /// `response.incomplete`, with `incomplete_details.reason` (`max_output_tokens`, …).
    Incomplete(String),
    /// `response.failed`.
    Failed,
}

/// One request the proxy passed on and the end of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub end: End,
    pub input_tokens: u64,
    /// The prompt tokens the server took from its prefix cache.
    pub cached_tokens: u64,
    pub output_tokens: u64,
    /// `max_output_tokens` of the request, when it had one.
    pub max_output_tokens: Option<u64>,
}

impl Exchange {
    /// The answer stopped at an output limit rather than where the model ended it: the server
    /// said so (`incomplete`, reason `max_output_tokens`), or it said `completed` with exactly
    /// as many output tokens as the request allowed.
    pub fn cut_off(&self) -> bool {
        match &self.end {
            End::Incomplete(reason) => reason == "max_output_tokens",
            End::Completed => self
                .max_output_tokens
                .is_some_and(|cap| cap > 0 && self.output_tokens >= cap),
            End::Failed => false,
        }
    }

    /// Whether the prompt and the answer together filled a context window of `window`
    /// tokens: a cut there is the context running out during generation, not the output cap.
    pub fn filled(&self, window: u64) -> bool {
        window > 0 && self.input_tokens + self.output_tokens + 1 >= window
    }
}

/// The exchange a terminal Responses event describes (`response.completed`,
/// `response.incomplete`, `response.failed`); `None` for every other event.
pub fn from_event(event: &Value, max_output_tokens: Option<u64>) -> Option<Exchange> {
    let end = match event["type"].as_str()? {
        "response.completed" => End::Completed,
        "response.incomplete" => End::Incomplete(
            event["response"]["incomplete_details"]["reason"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ),
        "response.failed" => End::Failed,
        _ => return None,
    };
    let usage = &event["response"]["usage"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    Some(Exchange {
        end,
        input_tokens: n(&usage["input_tokens"]),
        cached_tokens: n(&usage["input_tokens_details"]["cached_tokens"]),
        output_tokens: n(&usage["output_tokens"]),
        max_output_tokens,
    })
}

/// The output cap a Responses request body asks for.
pub fn request_cap(request: &Value) -> Option<u64> {
    request["max_output_tokens"].as_u64()
}

/// Puts `cap` into a Responses request that has no `max_output_tokens` of its own; returns the
/// cap the request now carries.
pub fn apply_cap(request: &mut Value, cap: Option<u64>) -> Option<u64> {
    if let (Some(c), Some(obj)) = (cap, request.as_object_mut()) {
        obj.entry("max_output_tokens").or_insert(c.into());
    }
    request_cap(request)
}

/// Reads a Responses event stream as it passes, in chunks cut anywhere, and keeps the last
/// terminal event. Only `data:` lines naming a terminal event are parsed.
#[derive(Debug, Default)]
pub struct SseScan {
    line: Vec<u8>,
    cap: Option<u64>,
    last: Option<Exchange>,
}

impl SseScan {
    pub fn new(cap: Option<u64>) -> SseScan {
        SseScan {
            cap,
            ..SseScan::default()
        }
    }

    /// Reads a chunk; returns the answer's end when this chunk completed its terminal event,
    /// so it is known before the agent, which may hang up at once, even gets the chunk.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Exchange> {
        let mut ended = None;
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                ended = self.line_done(&line).or(ended);
            } else {
                self.line.push(b);
            }
        }
        ended
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Exchange> {
        let data = line.strip_prefix(b"data:")?;
        // Most lines are deltas: look for a terminal type before parsing.
        let terminal = [
            &b"response.completed"[..],
            b"response.incomplete",
            b"response.failed",
        ]
        .iter()
        .any(|t| data.windows(t.len()).any(|w| w == *t));
        if !terminal {
            return None;
        }
        let v = serde_json::from_slice::<Value>(data).ok()?;
        let x = from_event(&v, self.cap)?;
        self.last = Some(x.clone());
        Some(x)
    }

    /// The answer's end, once the stream is over (a last line without its newline counts).
    pub fn finish(mut self) -> Option<Exchange> {
        let line = std::mem::take(&mut self.line);
        self.line_done(&line);
        self.last
    }

    /// A terminal event only a [`finish`](Self::finish) would find: one whose line had no
    /// newline yet when the stream ended. `None` once [`feed`](Self::feed) has returned it.
    pub fn unreported(self) -> Option<Exchange> {
        let reported = self.last.is_some();
        self.finish().filter(|_| !reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// llama.cpp's server (0c1e570) ends every Responses stream with `completed`, even when it
    /// stopped at its `-n` cap; its usage carries the cached prefix.
    const LLAMA_END: &str = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":5105,\"output_tokens\":256,\"total_tokens\":5361,\"input_tokens_details\":{\"cached_tokens\":5040}}},\"timings\":{\"cache_n\":5040}}\n\n";

    #[test]
    fn the_stream_end_is_read_across_chunk_cuts() {
        let stream = format!(
            "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}}\n\n{LLAMA_END}"
        );
        for cut in [1, 7, 50, stream.len()] {
            let mut s = SseScan::new(Some(256));
            let fed: Vec<Exchange> = stream
                .as_bytes()
                .chunks(cut)
                .filter_map(|p| s.feed(p))
                .collect();
            assert_eq!(fed.len(), 1, "reported once, as soon as it is read");
            assert_eq!(s.unreported(), None);
            let x = fed[0].clone();
            assert_eq!(x.end, End::Completed);
            assert_eq!(
                (x.input_tokens, x.cached_tokens, x.output_tokens),
                (5105, 5040, 256)
            );
            assert!(x.cut_off(), "completed at exactly the cap is a cut-off");
        }
        let mut s = SseScan::new(None);
        let x = s.feed(LLAMA_END.as_bytes()).unwrap();
        assert!(!x.cut_off(), "no cap known: not judged");
        assert_eq!(SseScan::new(None).finish(), None);
        // A last line without its newline is found when the stream ends.
        let mut s = SseScan::new(None);
        assert_eq!(s.feed(LLAMA_END.trim_end().as_bytes()), None);
        assert!(s.unreported().is_some());
    }

    #[test]
    fn incomplete_answers_and_filled_windows() {
        let ev = json!({"type": "response.incomplete", "response": {
            "incomplete_details": {"reason": "max_output_tokens"},
            "usage": {"input_tokens": 4000, "output_tokens": 95}}});
        let x = from_event(&ev, None).unwrap();
        assert!(x.cut_off());
        assert!(x.filled(4096), "4000 + 95 + 1 reaches a 4096-token window");
        assert!(!x.filled(8192));
        let filtered = json!({"type": "response.incomplete", "response": {
            "incomplete_details": {"reason": "content_filter"}}});
        assert!(!from_event(&filtered, None).unwrap().cut_off());
        let under =
            json!({"type": "response.completed", "response": {"usage": {"output_tokens": 12}}});
        assert!(!from_event(&under, Some(256)).unwrap().cut_off());
        assert_eq!(
            from_event(&json!({"type": "response.output_text.delta"}), None),
            None
        );
    }

    #[test]
    fn a_configured_cap_fills_in_but_never_overrides() {
        let mut r = json!({"model": "m"});
        assert_eq!(apply_cap(&mut r, Some(64)), Some(64));
        assert_eq!(r["max_output_tokens"], 64);
        let mut r = json!({"model": "m", "max_output_tokens": 10});
        assert_eq!(apply_cap(&mut r, Some(64)), Some(10));
        let mut r = json!({"model": "m"});
        assert_eq!(apply_cap(&mut r, None), None);
    }
}
