//! `wg handler` on a Chat-Completions-only endpoint (`wire_api = "chat"`): the real codex
//! talks to wg's local bridge, which talks to a wiremock Chat Completions stub.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::project::{assert_no_key, codex_env, outbox, read, status};
use crate::common::stub::{chat_text, v1, ChatTool, KEY};
use crate::common::TestEnv;

fn chat_env(server: &MockServer) -> Option<TestEnv> {
    let env = codex_env(&v1(server))?;
    env.wg(&["config", "set", "endpoint.wire_api", "chat"]).ok();
    Some(env)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_only_endpoint_answers_through_the_bridge() {
    let server = MockServer::start().await;
    // The binary first: a skipped test must not leave an unmet mock expectation.
    let Some(env) = chat_env(&server) else { return };
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_text("hello through the bridge"))
        .expect(1)
        .mount(&server)
        .await;
    env.wg(&["add", "Greet", "--id", "greet"]).ok();
    let run = env.wg(&["handler", "greet"]).ok();
    let replies = outbox(&env, "greet");
    assert_eq!(replies[0]["role"], "assistant", "{run}");
    assert_eq!(replies[0]["text"], "hello through the bridge");
    let reqs = server.received_requests().await.unwrap();
    let auth = reqs[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        auth,
        format!("Bearer {KEY}"),
        "the bridge sends the real key upstream"
    );
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["model"], "qwen3-coder");
    assert!(read(&env, "greet", "handler.log").contains("proxy.start wire=chat"));
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_tool_call_runs_wg_done_through_the_bridge() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ChatTool(
            "echo \"key=${WG_API_KEY:-unset} token=${WG_PROXY_TOKEN:-unset}\"; wg done \"$WG_TASK_ID\"".into(),
        ))
        .mount(&server)
        .await;
    let Some(env) = chat_env(&server) else { return };
    env.wg(&["add", "Finish", "--id", "finish"]).ok();
    let run = env.wg(&["handler", "finish"]).ok();
    assert_eq!(status(&env, "finish"), "done", "{run}");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    let follow: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    let tool = follow["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("the follow-up carries the tool output")
        .to_string();
    // Neither the real key nor the bridge token reaches the agent's commands.
    assert!(tool.contains("key=unset token=unset"), "{tool}");
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_keep_the_servers_own_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"message": "model exploded on GPU 3"}})),
        )
        .mount(&server)
        .await;
    let Some(env) = chat_env(&server) else { return };
    env.wg(&["add", "Boom", "--id", "boom"]).ok();
    let started = Instant::now();
    let run = env.wg(&["handler", "boom"]).code(1);
    assert!(started.elapsed() < Duration::from_secs(20));
    let log = read(&env, "boom", "handler.log");
    assert!(log.contains("proxy.upstream_error status=500"), "{log}");
    assert!(log.contains("model exploded on GPU 3"), "{log}");
    let reply = &outbox(&env, "boom")[0];
    assert_eq!(reply["role"], "error");
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("model exploded on GPU 3"),
        "{reply}"
    );
    assert_no_key(&env, &[&run.stdout, &run.stderr]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_chat_server_ends_by_the_handlers_timeouts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(chat_text("too late").set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let Some(env) = chat_env(&server) else { return };
    env.wg(&["add", "Stall", "--id", "stall"]).ok();
    let started = Instant::now();
    let _ = env.wg(&["handler", "stall"]).code(1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outbox(&env, "stall")[0]["role"], "error");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_tells_which_api_the_endpoint_answers_and_what_to_set() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "qwen3-coder"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(404).set_body_string("Not Found"))
        .mount(&server)
        .await;
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    let out = env.wg(&["doctor"]).code(1);
    assert!(
        out.stdout.contains("answers /v1/chat/completions only")
            && out.stdout.contains("wg config set endpoint.wire_api chat"),
        "{out}"
    );
    env.wg(&["config", "set", "endpoint.wire_api", "chat"]).ok();
    let out = env.wg(&["doctor"]).ok();
    assert!(out.stdout.contains("wire_api = \"chat\" fits"), "{out}");
    assert!(!out.stdout.contains(KEY) && !out.stderr.contains(KEY));
}

#[test]
fn init_takes_the_wire_api_and_config_refuses_unknown_ones() {
    let env = TestEnv::bare();
    env.wg(&["init", "-e", "http://127.0.0.1:1/v1", "--wire-api", "chat"])
        .ok();
    assert_eq!(
        env.wg(&["config", "get", "endpoint.wire_api"])
            .ok()
            .stdout
            .trim(),
        "chat"
    );
    let out = env
        .wg(&["config", "set", "endpoint.wire_api", "grpc"])
        .code(2);
    assert!(
        out.stderr
            .contains("endpoint.wire_api: unknown variant `grpc`, expected `responses` or `chat`"),
        "{out}"
    );
}
