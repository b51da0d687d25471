//! The Responses→Chat Completions bridge (issue 7). Current codex speaks only the Responses
//! API; when an endpoint is configured with `wire_api = "chat"`, the handler starts this bridge
//! on 127.0.0.1 and points codex at it. See docs/bridge.md.

pub mod translate;
