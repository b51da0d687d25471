// wg web: live updates and actions without reloading. The server sends "change" events
// (server-sent events) when the project's files change; the page then fetches its live part
// again. Every piece of HTML comes from the server, which escapes all text.
"use strict";
(function () {
  var board = document.getElementById("board");
  var live = document.getElementById("live");
  var notice = document.getElementById("notice");
  var busy = false, again = false;
  window.wgUpdates = 0;

  function scrollTranscript() {
    var t = document.getElementById("transcript");
    if (t) t.scrollTop = t.scrollHeight;
  }

  function refresh() {
    if (!board) return;
    if (busy) { again = true; return; }
    busy = true;
    fetch(board.dataset.fragment, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        board.innerHTML = html;
        window.wgUpdates += 1;
        scrollTranscript();
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (board && window.EventSource) {
    var url = "/events" + (board.dataset.watch ? "?watch=" + encodeURIComponent(board.dataset.watch) : "");
    var es = new EventSource(url);
    es.addEventListener("change", refresh);
    es.onopen = function () { if (live) live.classList.add("on"); };
    es.onerror = function () { if (live) live.classList.remove("on"); };
  }
  scrollTranscript();

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute("data-action")) return;
    ev.preventDefault();
    var body = new URLSearchParams(new FormData(form));
    if (notice) { notice.textContent = "…"; notice.className = "notice"; }
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "x-requested-with": "wg", "content-type": "application/x-www-form-urlencoded" },
      body: body
    })
      .then(function (r) {
        return r.headers.get("content-type") === "application/json"
          ? r.json()
          : r.text().then(function (t) { return { ok: false, message: t }; });
      })
      .then(function (res) {
        if (notice) {
          notice.textContent = res.message || (res.ok ? "done" : "refused");
          notice.className = "notice " + (res.ok ? "ok" : "error");
        }
        if (res.ok) {
          var text = form.querySelector("textarea, input[name=title], input[name=after]");
          if (text) form.reset();
          refresh();
        }
      })
      .catch(function (e) {
        if (notice) { notice.textContent = "cannot reach wg web: " + e; notice.className = "notice error"; }
      });
  });
})();
