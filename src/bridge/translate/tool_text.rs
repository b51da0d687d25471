//! `<tool_call>` blocks written as text by models whose server does not parse them: split
//! out of the stream and turned into calls.

use std::collections::HashMap;

use serde_json::{Map, Value};

pub(super) const OPEN_TAG: &str = "<tool_call>";
pub(super) const CLOSE_TAG: &str = "</tool_call>";

/// Splits streamed text into plain text and `<tool_call>…</tool_call>` blocks, holding back a
/// tail that might be the start of a tag split across chunks.
#[derive(Debug, Default)]
pub(super) struct TagSplitter {
    pending: String,
    in_call: bool,
}

#[derive(Debug, PartialEq)]
pub(super) enum Piece {
    Text(String),
    Call(String),
}

impl TagSplitter {
    pub(super) fn feed(&mut self, delta: &str) -> Vec<Piece> {
        self.pending.push_str(delta);
        let mut out = Vec::new();
        loop {
            if self.in_call {
                match self.pending.find(CLOSE_TAG) {
                    Some(end) => {
                        out.push(Piece::Call(self.pending[..end].to_string()));
                        self.pending.drain(..end + CLOSE_TAG.len());
                        self.in_call = false;
                    }
                    None => return out,
                }
            } else {
                match self.pending.find(OPEN_TAG) {
                    Some(start) => {
                        if start > 0 {
                            out.push(Piece::Text(self.pending[..start].to_string()));
                        }
                        self.pending.drain(..start + OPEN_TAG.len());
                        self.in_call = true;
                    }
                    None => {
                        let keep = partial_tag_suffix(&self.pending);
                        let cut = self.pending.len() - keep;
                        if cut > 0 {
                            out.push(Piece::Text(self.pending[..cut].to_string()));
                            self.pending.drain(..cut);
                        }
                        return out;
                    }
                }
            }
        }
    }

    /// The end of the text: an unclosed block is still offered as a call (models often stop
    /// right after the JSON), anything else is text.
    pub(super) fn finish(&mut self) -> Vec<Piece> {
        let rest = std::mem::take(&mut self.pending);
        if rest.is_empty() {
            return Vec::new();
        }
        if self.in_call {
            self.in_call = false;
            vec![Piece::Call(rest)]
        } else {
            vec![Piece::Text(rest)]
        }
    }
}

/// Length of the longest suffix of `s` that is a proper prefix of `<tool_call>`.
fn partial_tag_suffix(s: &str) -> usize {
    (1..OPEN_TAG.len())
        .rev()
        .find(|&n| {
            s.len() >= n
                && s.is_char_boundary(s.len() - n)
                && OPEN_TAG.starts_with(&s[s.len() - n..])
        })
        .unwrap_or(0)
}

/// Parses the inside of a `<tool_call>` block: Hermes-style JSON
/// (`{"name": …, "arguments": {…}}`) or Qwen3-Coder's XML
/// (`<function=NAME><parameter=K>V</parameter></function>`). Returns name and arguments JSON.
pub fn parse_tool_call_text(
    inner: &str,
    schemas: &HashMap<String, Value>,
) -> Option<(String, String)> {
    let inner = inner.trim();
    if let Ok(v) = serde_json::from_str::<Value>(inner) {
        let name = v.get("name").and_then(Value::as_str)?.to_string();
        let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
            Some(Value::String(s)) => s.clone(),
            Some(a) => a.to_string(),
            None => "{}".into(),
        };
        return Some((name, arguments));
    }
    let rest = inner.strip_prefix("<function=")?;
    let (name, mut body) = rest.split_once('>')?;
    let name = name.trim().to_string();
    let schema = schemas.get(&name);
    let mut args = Map::new();
    while let Some(start) = body.find("<parameter=") {
        let after = &body[start + "<parameter=".len()..];
        let (key, value_and_rest) = after.split_once('>')?;
        let end = value_and_rest.find("</parameter>")?;
        let raw = value_and_rest[..end]
            .strip_prefix('\n')
            .unwrap_or(&value_and_rest[..end]);
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        let key = key.trim();
        let declared = schema
            .and_then(|s| s.pointer(&format!("/properties/{key}/type")))
            .and_then(Value::as_str);
        let value = match declared {
            Some("string") | None => Value::String(raw.to_string()),
            Some(_) => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())),
        };
        args.insert(key.to_string(), value);
        body = &value_and_rest[end + "</parameter>".len()..];
    }
    Some((name, Value::Object(args).to_string()))
}
