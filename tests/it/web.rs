//! `wg web`: the security rules over plain HTTP, and the board in a real headless Chromium
//! against a running coordinator (columns, a live transcript, a message, pause and resume,
//! a hostile title), which also takes the screenshots kept in docs/web/.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::service::Coordinator;
use crate::common::wait::poll_until as wait_until;
use crate::common::webdriver::Browser;
use crate::common::TestEnv;

/// A running `wg web` on a free port; killed when dropped.
struct Web {
    child: Child,
    url: String,
    token: String,
}

impl Web {
    fn start(env: &TestEnv) -> Web {
        let mut child = env
            .command(&["web", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wg web");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().expect("wg web printed a line").unwrap();
        let first = next();
        let url = first
            .strip_prefix("wg web: ")
            .unwrap_or_else(|| panic!("first line: {first}"))
            .to_string();
        let second = next();
        let token = second
            .strip_prefix("access token: ")
            .unwrap_or_else(|| panic!("second line: {second}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Web { child, url, token }
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// POSTs a form; status, `Set-Cookie` and body.
fn post(url: &str, form: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let mut req = http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(form).unwrap();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (resp.status().as_u16(), cookie, body)
}

fn status(env: &TestEnv, id: &str) -> String {
    env.wg(&["show", id, "--json"]).ok().json()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn actions_need_the_token_and_the_csrf_value() {
    let env = TestEnv::new();
    env.wg(&["add", "Target"]).ok();
    let web = Web::start(&env);
    let pause = format!("{}act/pause", web.url);

    // Nobody: pages send to the login page, actions and the API are refused.
    let resp = http().get(&web.url).call().unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login");
    assert_eq!(post(&pause, "id=target", &[]).0, 401);
    let api = http()
        .get(format!("{}api/snapshot", web.url))
        .call()
        .unwrap();
    assert_eq!(api.status(), 401);
    assert_eq!(
        post(&format!("{}login", web.url), "token=guess", &[]).0,
        401
    );

    // The token opens a session: an HttpOnly, SameSite cookie.
    let (code, cookie, _) = post(
        &format!("{}login", web.url),
        &format!("token={}", web.token),
        &[],
    );
    assert_eq!(code, 303);
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = http()
        .get(&web.url)
        .header("cookie", &session)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page carries its CSRF value");

    // With the session but without (or with a wrong) CSRF value, or from another site: refused.
    let c = [("cookie", session.as_str())];
    assert_eq!(post(&pause, "id=target", &c).0, 403);
    assert_eq!(post(&pause, "id=target&csrf=0000", &c).0, 403);
    let form = format!("id=target&csrf={csrf}");
    let cross = [
        ("cookie", session.as_str()),
        ("origin", "http://evil.example"),
    ];
    assert_eq!(post(&pause, &form, &cross).0, 403);
    assert_eq!(status(&env, "target"), "open", "nothing refused acted");

    // With both, the action is `wg pause`'s own.
    let (code, _, body) = post(&pause, &form, &c);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("target paused"), "{body}");
    assert_eq!(status(&env, "target"), "paused");
    // A refusal is wg's own words: resume twice.
    let resume = format!("{}act/resume", web.url);
    let bearer = format!("Bearer {}", web.token);
    let script = [
        ("authorization", bearer.as_str()),
        ("x-requested-with", "wg"),
    ];
    assert_eq!(post(&resume, "id=target", &script).0, 200);
    let (code, _, body) = post(&resume, "id=target", &script);
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("\"ok\":false") && body.contains("target"),
        "{body}"
    );

    // Anything but loopback needs the explicit flag.
    let run = env.wg(&["web", "--host", "0.0.0.0", "--port", "0"]).code(2);
    assert!(run.stderr.contains("--allow-remote"), "{run}");
}

/// Where screenshots go: docs/web/ with `WG_UPDATE_DOCS=1` (as docs/cli.md is regenerated),
/// else the test's own folder, so a test run leaves the repository as it was.
fn shot_dir(env: &TestEnv) -> PathBuf {
    if std::env::var("WG_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/web")
    } else {
        env.tmp.path().join("screenshots")
    }
}

/// Screenshots of the page as it is now: light, dark, and narrow (a phone).
fn shots(b: &Browser, dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let save = |suffix: &str| {
        let png = b.screenshot();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(dir.join(format!("{name}-{suffix}.png")), png).unwrap();
    };
    b.color_scheme("light");
    save("light");
    b.color_scheme("dark");
    save("dark");
    b.resize(390, 844);
    b.color_scheme("light");
    save("narrow");
    b.resize(1280, 900);
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

#[test]
fn the_board_in_chromium_is_live_and_acts_like_the_command_line() {
    let env = TestEnv::new();
    let config = env.wg_dir().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[executors.sleeper]\ncommand = [\"sleep\", \"600\"]\nconversational = true\n");
    std::fs::write(&config, text).unwrap();
    let records = [
        r#"{"id":"parse-input","title":"Parse input","status":"failed","failure_reason":"exit code 2: no input","max_retries":0}"#,
        r#"{"id":"ask-colour","title":"Ask colour","status":"needs-input","question":"red or blue?"}"#,
        r#"{"id":"on-hold","title":"On hold","status":"paused"}"#,
        r#"{"id":"ship-it","title":"Ship it","status":"done"}"#,
        r#"{"id":"old-idea","title":"Old idea","status":"abandoned"}"#,
        r#"{"id":"xss","title":"<script>alert(1)</script>","status":"paused"}"#,
        r#"{"id":"docs","title":"Write the docs","status":"paused","after":["live-task"]}"#,
    ];
    env.wg(&["add", "Live task", "-x", "sleeper"]).ok();
    env.wg_stdin(&["import", "-"], &(records.join("\n") + "\n"))
        .ok();
    let _coordinator = Coordinator::start(&env, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || status(&env, "live-task")
            == "in-progress"),
        "the agent did not start"
    );
    let web = Web::start(&env);
    let b = Browser::start(1280, 900);

    // Log in through the form.
    b.goto(&format!("{}login", web.url));
    let field = b.must_find("#token");
    b.type_into(&field, &web.token);
    b.click(&b.must_find("button[type=submit]"));
    assert!(
        wait_until(Duration::from_secs(10), || b.find("#board").is_some()),
        "no board after login: {}",
        b.url()
    );

    // Each task in its column.
    for (id, column) in [
        ("parse-input", "attention"),
        ("ask-colour", "attention"),
        ("live-task", "in-progress"),
        ("on-hold", "open"),
        ("ship-it", "done"),
        ("old-idea", "abandoned"),
    ] {
        let found = b.find(&format!("#col-{column} li[data-id=\"{id}\"]"));
        assert!(
            found.is_some(),
            "{id} is not in column {column} ({}):\n{}",
            status(&env, id),
            b.text_of("#board").unwrap_or_default()
        );
    }
    // The hostile title is text: shown as written, no script ran.
    let title = b.text_of("li[data-id=\"xss\"] .title").unwrap_or_default();
    assert_eq!(title, "<script>alert(1)</script>");
    assert_eq!(b.alert(), None, "no alert opened");
    assert_eq!(b.exec("return document.scripts.length"), 1);
    shots(&b, &shot_dir(&env), "board");

    // The graph: docs runs after live-task, the longest unfinished chain, marked.
    b.goto(&format!("{}graph", web.url));
    b.must_find("svg.graph");
    assert_eq!(
        b.exec("return document.querySelectorAll('svg.graph .node.critical').length"),
        2
    );
    assert_eq!(
        b.exec("return document.querySelectorAll('svg.graph .edge.critical').length"),
        1
    );
    let dir = shot_dir(&env);
    std::fs::write(dir.join("graph-light.png"), b.screenshot()).unwrap();

    // The task page: its transcript grows without a reload.
    b.goto(&format!("{}t/0/live-task", web.url));
    b.must_find("#transcript");
    b.exec("window.wgMarker = 42; return 0");
    let events = env.wg_dir().join("tasks/live-task/events.jsonl");
    append(
        &events,
        r#"{"turn":2,"ts":"2026-11-30T00:00:00.000Z","event":{"type":"turn.started"}}"#,
    );
    append(
        &events,
        r#"{"turn":2,"ts":"2026-11-30T00:00:00.100Z","event":{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"cargo clippy --all-targets","status":"in_progress"}}}"#,
    );
    let live = wait_until(Duration::from_secs(15), || {
        b.text_of("#transcript")
            .is_some_and(|t| t.contains("cargo clippy --all-targets"))
    });
    assert!(live, "the transcript did not show the new command");
    assert_eq!(
        b.exec("return window.wgMarker"),
        42,
        "the page was not reloaded"
    );

    // A message typed on the page reaches the task's inbox.
    b.type_into(&b.must_find("#message"), "please also run the tests");
    b.click(&b.must_find("#do-msg"));
    let inbox = env.wg_dir().join("tasks/live-task/inbox.jsonl");
    let arrived = wait_until(Duration::from_secs(15), || {
        std::fs::read_to_string(&inbox).is_ok_and(|s| {
            s.lines().any(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["text"] == "please also run the tests" && v["sender"] == "user"
            })
        })
    });
    assert!(arrived, "the message did not reach the inbox");
    assert!(
        wait_until(Duration::from_secs(15), || b
            .text_of("#transcript")
            .is_some_and(|t| t.contains("please also run the tests"))),
        "the message is not in the transcript"
    );
    shots(&b, &shot_dir(&env), "task");

    // Pause and resume from the page; the status on the page follows.
    let page_status = || b.text_of("#task-status").unwrap_or_default();
    b.click(&b.must_find("#do-pause"));
    assert!(
        wait_until(Duration::from_secs(20), || status(&env, "live-task")
            == "paused"
            && page_status() == "paused"),
        "not paused: {} / page {}",
        status(&env, "live-task"),
        page_status()
    );
    b.click(&b.must_find("#do-resume"));
    assert!(
        wait_until(Duration::from_secs(30), || status(&env, "live-task")
            != "paused"
            && page_status() != "paused"),
        "not resumed"
    );
}

#[test]
fn the_coordinator_serves_the_board_when_web_is_enabled() {
    let env = TestEnv::new();
    env.set_config(&[("web.enabled", "true"), ("web.port", "0")]);
    env.wg(&["add", "Served"]).ok();
    let info = env.wg_dir().join("service/web.json");
    let _coordinator = Coordinator::start(&env, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || info.is_file()),
        "no service/web.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info).unwrap()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&info).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only its owner reads the token");
    }
    let url = v["url"].as_str().unwrap();
    let bearer = format!("Bearer {}", v["token"].as_str().unwrap());
    let snap = http()
        .get(format!("{url}api/snapshot"))
        .header("authorization", &bearer)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(snap.contains("\"served\""), "{snap}");
    // The board starts as soon as the coordinator holds its lock, a moment before it can be
    // stopped.
    assert!(
        wait_until(Duration::from_secs(20), || env
            .wg(&["service", "stop"])
            .code
            == 0),
        "the coordinator did not stop"
    );
    assert!(
        wait_until(Duration::from_secs(20), || !info.exists()),
        "web.json outlived the coordinator"
    );
}

#[test]
fn accept_and_reject_from_the_board_are_a_persons_verdict() {
    let env = TestEnv::new();
    let records = [
        r#"{"id":"built","title":"Build","status":"done","awaiting_evaluation":true}"#,
        r#"{"id":"after-built","title":"After build","after":["built"]}"#,
        r#"{"id":"sloppy","title":"Sloppy work","status":"done","awaiting_evaluation":true}"#,
    ];
    env.wg_stdin(&["import", "-"], &(records.join("\n") + "\n"))
        .ok();
    let ready = || env.wg(&["ready"]).ok().stdout;
    assert!(!ready().contains("after-built"), "held by the gate");
    let web = Web::start(&env);
    let bearer = format!("Bearer {}", web.token);
    let script = [
        ("authorization", bearer.as_str()),
        ("x-requested-with", "wg"),
    ];
    // The accept button is on a task awaiting its evaluation.
    let page = http()
        .get(format!("{}t/0/built", web.url))
        .header("authorization", &bearer)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(page.contains("id=\"do-accept\""), "{page}");

    let (code, _, body) = post(&format!("{}act/accept", web.url), "id=built", &script);
    assert_eq!(code, 200, "{body}");
    assert!(
        ready().contains("after-built"),
        "accepted: its dependent is ready"
    );

    let (code, _, body) = post(&format!("{}act/reject", web.url), "id=sloppy", &script);
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(&env, "sloppy"), "open");
    let inbox = std::fs::read_to_string(env.wg_dir().join("tasks/sloppy/inbox.jsonl")).unwrap();
    assert!(inbox.contains("Rejected by user"), "{inbox}");
    // Work that is not done has no verdict to give.
    let (code, _, body) = post(&format!("{}act/accept", web.url), "id=after-built", &script);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("only done work"), "{body}");
}

#[test]
fn several_projects_share_one_board_and_no_page_shows_the_key() {
    let mut a = TestEnv::new();
    let b = TestEnv::new();
    a.wg(&["add", "Alpha work"]).ok();
    b.wg(&["add", "Beta work"]).ok();
    let key = "sk-test-never-on-a-page-0123456789";
    a.set_env("WG_API_KEY", key);
    let b_dir = b.wg_dir();
    let mut child = a
        .command(&[
            "web",
            "--port",
            "0",
            "--dir",
            ".",
            "--dir",
            b_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap().replace("wg web: ", "");
    let token = lines.next().unwrap().unwrap().replace("access token: ", "");
    let web = Web { child, url, token };
    let bearer = format!("Bearer {}", web.token);
    let get = |path: &str| {
        http()
            .get(format!("{}{path}", web.url))
            .header("authorization", &bearer)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let board = get("");
    assert!(
        board.contains("href=\"/t/0/alpha-work\"") && board.contains("href=\"/t/1/beta-work\""),
        "{board}"
    );
    let task = get("t/1/beta-work");
    assert!(task.contains("Beta work"), "{task}");
    for page in [board, task, get("graph"), get("api/snapshot")] {
        assert!(!page.contains(key), "the key is on a page");
    }
    // Other commands take one project.
    let run = a
        .wg(&["list", "--dir", ".", "--dir", b_dir.to_str().unwrap()])
        .code(2);
    assert!(run.stderr.contains("only `wg web`"), "{run}");
}
