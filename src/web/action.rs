//! What a person can do from the page, typed, and the `wg` command line that does it: the
//! board runs the same commands a person would type (as `wg top` does), so their checks,
//! refusals and messages are the same.

use std::collections::HashMap;

/// One action from a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `wg msg`: a message, or the answer to a `needs-input` question.
    Msg {
        id: String,
        text: String,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Cancel {
        id: String,
    },
    Retry {
        id: String,
    },
    /// A person's verdict on an evaluation: accept (`wg evaluate ID --accept`) or send the
    /// work back (`--reject`).
    Accept {
        id: String,
    },
    Reject {
        id: String,
    },
    Add {
        title: String,
        after: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no such action `{0}`")]
    Unknown(String),
    #[error("the form has no `{0}`")]
    Missing(&'static str),
}

impl Action {
    /// The action named in the path (`/act/NAME`) with its form fields.
    pub fn parse(name: &str, form: &HashMap<String, String>) -> Result<Action, ActionError> {
        let field = |k: &'static str| {
            form.get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or(ActionError::Missing(k))
        };
        Ok(match name {
            "msg" => Action::Msg {
                id: field("id")?,
                // The message as typed (only an empty one is refused).
                text: form
                    .get("text")
                    .filter(|t| !t.trim().is_empty())
                    .cloned()
                    .ok_or(ActionError::Missing("text"))?,
            },
            "pause" => Action::Pause { id: field("id")? },
            "resume" => Action::Resume { id: field("id")? },
            "cancel" => Action::Cancel { id: field("id")? },
            "retry" => Action::Retry { id: field("id")? },
            "accept" => Action::Accept { id: field("id")? },
            "reject" => Action::Reject { id: field("id")? },
            "add" => Action::Add {
                title: field("title")?,
                after: form
                    .get("after")
                    .map(|a| {
                        a.split([',', ' '])
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            other => return Err(ActionError::Unknown(other.to_string())),
        })
    }

    /// The `wg` arguments that perform it. Values follow `--` or a flag, so a title that
    /// starts with `-` is a title, not an option.
    pub fn args(&self) -> Vec<String> {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Action::Msg { id, text } => v(&["msg", id, "--", text]),
            Action::Pause { id } => v(&["pause", id]),
            Action::Resume { id } => v(&["resume", id]),
            Action::Cancel { id } => v(&["cancel", id]),
            Action::Retry { id } => v(&["retry", id]),
            Action::Accept { id } => v(&["evaluate", id, "--accept"]),
            Action::Reject { id } => v(&["evaluate", id, "--reject"]),
            Action::Add { title, after } => {
                let mut a = v(&["add"]);
                for d in after {
                    a.push("--after".into());
                    a.push(d.clone());
                }
                a.push("--".into());
                a.push(title.clone());
                a
            }
        }
    }
}

/// `application/x-www-form-urlencoded` fields (the last of a repeated name wins).
pub fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ASCII hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("checked hex digits"));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_become_typed_actions() {
        let f = parse_form("csrf=abc&id=lexer&text=hello+world%21%0Aline+2&x=%zz%4");
        assert_eq!(f["text"], "hello world!\nline 2");
        assert_eq!(f["x"], "%zz%4");
        assert_eq!(
            Action::parse("msg", &f).unwrap().args(),
            ["msg", "lexer", "--", "hello world!\nline 2"]
        );
        assert_eq!(
            Action::parse("pause", &f).unwrap(),
            Action::Pause { id: "lexer".into() }
        );
        assert_eq!(
            Action::parse("rm", &f),
            Err(ActionError::Unknown("rm".into()))
        );
        assert_eq!(
            Action::parse("msg", &parse_form("id=a&text=+")),
            Err(ActionError::Missing("text"))
        );
    }

    #[test]
    fn an_added_task_keeps_a_dash_title_as_a_title() {
        let f = parse_form("title=-rf+everything&after=a%2C+b");
        assert_eq!(
            Action::parse("add", &f).unwrap().args(),
            [
                "add",
                "--after",
                "a",
                "--after",
                "b",
                "--",
                "-rf everything"
            ]
        );
    }
}
