//! The HTTP side: hyper 1.x (already the credential proxy's server), one function per route.
//! Every page and every action checks the session first; every action its CSRF value too.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::action::{parse_form, Action};
use super::auth::{self, may_act, Who};
use super::page::{self, Column, ProjectView, TaskDetail, TaskPage};
use super::{watch::Wake, State};

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest form accepted: a long message, not an upload.
const MAX_FORM: usize = 256 * 1024;
/// An event stream sends a comment this often, so proxies and browsers keep it open.
const KEEPALIVE: Duration = Duration::from_secs(25);

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

pub async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::output::stderr(&format!("wg web cannot listen: {e}\n"));
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(secure(route(req, state).await)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        }
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed_unsync()
}

fn respond(status: StatusCode, ctype: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ctype).expect("a content type"),
    );
    r
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    respond(status, "text/html; charset=utf-8", body)
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain", "");
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(to).expect("a path"));
    r
}

/// Headers on every answer: no script but our own file, no framing, no sniffing, no referrer to
/// other sites (`same-origin`, not `no-referrer`: with that, a browser sends `Origin: null` on our
/// own forms and [`same_origin`] could not tell them from another site's).
fn secure(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    parse_form(req.uri().query().unwrap_or(""))
}

/// A cross-site POST names another origin; ours (or none, from non-browser clients) passes.
fn same_origin(req: &Request<Incoming>) -> bool {
    let Some(origin) = header_str(req, header::ORIGIN) else {
        return true;
    };
    let host = header_str(req, header::HOST).unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

async fn read_form(req: Request<Incoming>) -> Option<HashMap<String, String>> {
    let body = Limited::new(req.into_body(), MAX_FORM)
        .collect()
        .await
        .ok()?;
    Some(parse_form(&String::from_utf8_lossy(&body.to_bytes())))
}

async fn route(req: Request<Incoming>, state: Arc<State>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/app.css") => return asset("text/css; charset=utf-8", CSS),
        (&Method::GET, "/app.js") => return asset("text/javascript; charset=utf-8", JS),
        (&Method::GET, "/login") => return html(StatusCode::OK, page::login(false)),
        (&Method::POST, "/login") => return login(req, &state).await,
        _ => {}
    }
    let who = state.sessions.lock().expect("sessions").who(
        header_str(&req, header::COOKIE),
        header_str(&req, header::AUTHORIZATION),
    );
    if who == Who::Nobody {
        return if method == Method::GET && !path.starts_with("/api/") && path != "/events" {
            redirect("/login")
        } else {
            respond(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "log in first (or send Authorization: Bearer TOKEN)\n",
            )
        };
    }
    let csrf = match &who {
        Who::Session { csrf } => csrf.clone(),
        _ => String::new(),
    };
    if method == Method::POST {
        return post(req, &state, &who, &path).await;
    }
    if method != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET or POST\n",
        );
    }
    let q = query(&req);
    let all = q.get("all").and_then(|c| Column::parse(c));
    let snaps: Vec<_> = state.projects.iter().map(|p| p.snapshot()).collect();
    let views: Vec<ProjectView> = state
        .projects
        .iter()
        .zip(&snaps)
        .map(|(p, s)| ProjectView {
            name: &p.name,
            snap: s,
        })
        .collect();
    match path.as_str() {
        "/" => html(StatusCode::OK, page::board_page(&views, all, &csrf)),
        "/board" => html(StatusCode::OK, page::board(&views, all)),
        "/graph" => html(StatusCode::OK, page::graph_page(&views, &csrf)),
        "/graph/fragment" => html(StatusCode::OK, page::graph_fragment(&views)),
        "/events" => events(&state, q.get("watch").map(String::as_str)),
        "/api/snapshot" => {
            let v: Vec<serde_json::Value> = state
                .projects
                .iter()
                .zip(&snaps)
                .map(|(p, s)| serde_json::json!({"project": p.name, "snapshot": crate::top::model::json(s)}))
                .collect();
            respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&v).expect("JSON"),
            )
        }
        p if p.starts_with("/t/") => task(&state, &snaps, p, &csrf),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

fn asset(ctype: &str, body: &'static str) -> Response<Body> {
    let mut r = respond(StatusCode::OK, ctype, body);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    r
}

async fn login(req: Request<Incoming>, state: &State) -> Response<Body> {
    if !same_origin(&req) {
        return respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            "cross-site request refused\n",
        );
    }
    let form = read_form(req).await.unwrap_or_default();
    let given = form.get("token").map(String::as_str).unwrap_or("");
    let session = state.sessions.lock().expect("sessions").login(given);
    match session {
        Some(id) => {
            let mut r = redirect("/");
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&auth::set_cookie(&id, false)).expect("a cookie"),
            );
            r
        }
        None => html(StatusCode::UNAUTHORIZED, page::login(true)),
    }
}

async fn post(req: Request<Incoming>, state: &State, who: &Who, path: &str) -> Response<Body> {
    if !same_origin(&req) {
        return respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            "cross-site request refused\n",
        );
    }
    let from_script =
        header_str(&req, header::HeaderName::from_static("x-requested-with")) == Some("wg");
    let header_csrf =
        header_str(&req, header::HeaderName::from_static("x-csrf-token")).map(str::to_string);
    let cookie = header_str(&req, header::COOKIE).map(str::to_string);
    let Some(form) = read_form(req).await else {
        return respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain",
            "form too large\n",
        );
    };
    let given = form.get(auth::CSRF_FIELD).cloned().or(header_csrf);
    if !may_act(who, given.as_deref()) {
        return respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            "missing or wrong CSRF value: reload the page\n",
        );
    }
    if path == "/logout" {
        state
            .sessions
            .lock()
            .expect("sessions")
            .logout(cookie.as_deref());
        return redirect("/login");
    }
    let Some(name) = path.strip_prefix("/act/") else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    };
    let action = match Action::parse(name, &form) {
        Ok(a) => a,
        Err(e) => return respond(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n")),
    };
    let project = form
        .get("project")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0);
    let Some(p) = state.projects.get(project) else {
        return respond(StatusCode::BAD_REQUEST, "text/plain", "no such project\n");
    };
    let (ok, message) = perform(state, p, &action).await;
    let back = match &action {
        Action::Add { .. } => "/".to_string(),
        Action::Msg { id, .. }
        | Action::Pause { id }
        | Action::Resume { id }
        | Action::Cancel { id }
        | Action::Retry { id }
        | Action::Accept { id }
        | Action::Reject { id } => format!("/t/{project}/{id}"),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    if from_script {
        let body = serde_json::json!({"ok": ok, "message": message});
        respond(status, "application/json", body.to_string())
    } else {
        html(status, page::action_result(ok, &message, &back))
    }
}

/// Runs the action's `wg` command on the project; its output (or refusal) is the message.
async fn perform(state: &State, p: &super::Project, action: &Action) -> (bool, String) {
    let out = tokio::process::Command::new(&state.exe)
        .arg("--dir")
        .arg(p.layout.dir())
        .args(action.args())
        // A person acts, whatever environment the server was started in.
        .env_remove(crate::env::WG_AGENT_ID)
        .env_remove(crate::env::WG_TASK_ID)
        .env_remove(crate::env::WG_DIR)
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    match out {
        Ok(o) => {
            let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
            let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
            // A refusal's reason is on stderr; a success (or a bare failure) speaks on stdout.
            let msg = if o.status.success() || stderr.is_empty() {
                stdout
            } else {
                stderr
            };
            (o.status.success(), msg)
        }
        Err(e) => (false, format!("cannot run wg: {e}")),
    }
}

fn task(
    state: &State,
    snaps: &[Arc<crate::top::model::Snapshot>],
    path: &str,
    csrf: &str,
) -> Response<Body> {
    let rest = &path["/t/".len()..];
    let (rest, fragment) = match rest.strip_suffix("/fragment") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let found = rest.split_once('/').and_then(|(p, id)| {
        let p: usize = p.parse().ok()?;
        crate::model::validate_id(id).ok()?;
        let snap = snaps.get(p)?;
        let row = snap.tasks.iter().find(|r| r.id == id)?;
        Some((p, snap, row))
    });
    let Some((p, snap, row)) = found else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "no such task\n");
    };
    let project = &state.projects[p];
    let lines = crate::top::model::transcript(&project.layout, &row.id);
    if fragment {
        return html(StatusCode::OK, page::task_fragment(row, snap, &lines));
    }
    let task = project
        .store
        .load()
        .ok()
        .and_then(|g| g.tasks.get(&row.id).cloned());
    let detail = TaskDetail {
        description: task
            .as_ref()
            .map(|t| t.description.clone())
            .unwrap_or_default(),
        question: task.as_ref().and_then(|t| {
            t.extra
                .get(crate::model::task::QUESTION)
                .and_then(|q| q.as_str())
                .map(str::to_string)
        }),
        evaluation: crate::evaluate::load(&project.layout, &row.id).map(|e| {
            let total = e
                .total
                .map(|t| format!(" · total {t:.2}"))
                .unwrap_or_default();
            let notes = if e.notes.is_empty() {
                String::new()
            } else {
                format!(" · {}", e.notes)
            };
            format!("{}{total}{notes}", e.status)
        }),
    };
    html(
        StatusCode::OK,
        page::task_page(&TaskPage {
            project: p,
            project_name: &project.name,
            row,
            snap,
            detail: &detail,
            lines: &lines,
            csrf,
        }),
    )
}

/// Takes a task off the watched list when its page's event stream ends.
struct ViewGuard {
    key: Option<(usize, String)>,
    state: Arc<State>,
}

impl Drop for ViewGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut v = self.state.viewed.lock().expect("viewed");
            if let Some(n) = v.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    v.remove(&key);
                }
            }
            drop(v);
            let _ = self.state.wake.lock().expect("wake").send(Wake::Views);
        }
    }
}

/// The event stream of one page: `change` after every re-read, a comment every
/// [`KEEPALIVE`]; nothing else. `watch=P/ID` adds that task's folder to the watched ones
/// while the stream is open (its transcript grows there).
fn events(state: &Arc<State>, watch: Option<&str>) -> Response<Body> {
    let key = watch.and_then(|w| {
        let (p, id) = w.split_once('/')?;
        let p: usize = p.parse().ok()?;
        (p < state.projects.len() && crate::model::validate_id(id).is_ok())
            .then(|| (p, id.to_string()))
    });
    if let Some(k) = &key {
        *state
            .viewed
            .lock()
            .expect("viewed")
            .entry(k.clone())
            .or_default() += 1;
        let _ = state.wake.lock().expect("wake").send(Wake::Views);
    }
    let guard = ViewGuard {
        key,
        state: state.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let mut version = state.version.subscribe();
    tokio::spawn(async move {
        let _guard = guard;
        if tx
            .send(Bytes::from_static(b"retry: 2000\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let msg = tokio::select! {
                changed = version.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let v = *version.borrow_and_update();
                    Bytes::from(format!("event: change\ndata: {v}\n\n"))
                }
                _ = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keepalive\n\n"),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(EventBody { rx }.boxed_unsync());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

struct EventBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
