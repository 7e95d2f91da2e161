// The web page at GET / and the two files it loads (web_assets.hpp). Everything the page
// shows that a user or a peer wrote (URLs, codes, member names) goes into the page through
// textContent, never as markup, and the page's Content-Security-Policy allows scripts from
// this origin only: a stored URL such as https://x/"><script>alert(1)</script> stays text.
#include "examples/link_shortener/web_assets.hpp"

namespace deltacrdt::shortener {

std::string_view page_html() {
  return R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link shortener</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<header><h1>Link shortener</h1><p>Node <span id="node">…</span></p></header>
<main>
<section aria-labelledby="shorten-title">
<h2 id="shorten-title">Shorten a link</h2>
<form id="shorten-form">
<label for="url">Long URL</label>
<input id="url" name="url" type="url" required placeholder="https://example.com/a/long/path" autocomplete="off">
<button id="shorten" type="submit">Shorten</button>
</form>
<p id="error" role="alert" hidden></p>
<div id="result" hidden>
<p>Short link: <a id="short-url" href="#"></a>
<button id="copy" type="button">Copy</button> <span id="copied" role="status"></span></p>
</div>
</section>
<section aria-labelledby="links-title">
<h2 id="links-title">Recent links</h2>
<table id="links">
<thead><tr><th scope="col">Short link</th><th scope="col">Target</th><th scope="col">Redirects</th></tr></thead>
<tbody></tbody>
</table>
<p id="no-links" hidden>No links yet.</p>
<nav aria-label="pages of links">
<button id="newer" type="button" disabled>Newer</button>
<button id="older" type="button" disabled>Older</button>
</nav>
</section>
<section aria-labelledby="cluster-title">
<h2 id="cluster-title">Cluster</h2>
<p id="agreement" role="status"></p>
<table id="members">
<thead><tr><th scope="col">Member</th><th scope="col">Status</th><th scope="col">Links held</th><th scope="col">Same writes as this node</th></tr></thead>
<tbody></tbody>
</table>
</section>
</main>
</body>
</html>
)html";
}

std::string_view app_js() {
  return R"js("use strict";
// The link shortener's page: JSON routes only (docs/link-shortener.md), every value shown
// through textContent. Refreshes the list and the cluster panel every two seconds.
(function () {
  const $ = (id) => document.getElementById(id);
  const cursors = [""];  // the cursor of each page shown so far; the last is the current
  let next = null;

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  async function shorten(event) {
    event.preventDefault();
    $("error").hidden = true;
    const response = await fetch("/api/links", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({url: $("url").value}),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("error").textContent = body.error || ("error " + response.status);
      $("error").hidden = false;
      return;
    }
    const link = $("short-url");
    link.textContent = body.short_url;
    link.href = "/" + encodeURIComponent(body.code);
    $("copied").textContent = "";
    $("result").hidden = false;
    $("copy").focus();
    cursors.length = 1;
    await refreshLinks();
  }

  async function copy() {
    const text = $("short-url").textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      // No clipboard API (an insecure origin): select the text for the user to copy.
      const range = document.createRange();
      range.selectNodeContents($("short-url"));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
    }
    $("copied").textContent = "Copied";
  }

  async function refreshLinks() {
    const cursor = cursors[cursors.length - 1];
    const response = await fetch("/api/links?limit=10" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    if (!response.ok) return;
    const body = await response.json();
    const tbody = $("links").tBodies[0];
    tbody.replaceChildren();
    for (const l of body.links) {
      const row = document.createElement("tr");
      row.dataset.code = l.code;
      const a = document.createElement("a");
      a.href = "/" + encodeURIComponent(l.code);
      a.textContent = l.short_url;
      cell(row, "").appendChild(a);
      cell(row, l.url).className = "target";
      cell(row, String(l.redirects)).className = "redirects";
      tbody.appendChild(row);
    }
    $("no-links").hidden = body.links.length !== 0;
    next = body.next;
    $("older").disabled = !next;
    $("newer").disabled = cursors.length <= 1;
  }

  async function refreshCluster() {
    const response = await fetch("/api/cluster");
    if (!response.ok) return;
    const body = await response.json();
    $("node").textContent = body.node;
    $("agreement").textContent = body.agree
        ? "Every member up holds the same links and counts."
        : "Members up differ: writes are still replicating, or a member is behind.";
    const tbody = $("members").tBodies[0];
    tbody.replaceChildren();
    for (const m of body.members) {
      const row = document.createElement("tr");
      row.dataset.member = m.name;
      row.dataset.status = m.status;
      cell(row, m.name + (m.self ? " (this node)" : ""));
      cell(row, m.status).className = "status " + m.status;
      cell(row, m.links === null ? "?" : String(m.links)).className = "links";
      cell(row, m.in_sync === null ? "?" : m.in_sync ? "yes" : "no").className = "in-sync";
      tbody.appendChild(row);
    }
  }

  async function refresh() {
    try {
      await Promise.all([refreshLinks(), refreshCluster()]);
    } catch (e) {
      // The node is unreachable now; the next round tries again.
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("shorten-form").addEventListener("submit", shorten);
    $("copy").addEventListener("click", copy);
    $("older").addEventListener("click", () => { if (next) { cursors.push(next); refreshLinks(); } });
    $("newer").addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); refreshLinks(); } });
    refresh();
    setInterval(refresh, 2000);
  });
})();
)js";
}

std::string_view app_css() {
  return R"css(body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1d1d1f; }
h1 { margin-bottom: 0.2rem; }
section { margin: 2rem 0; }
label { display: block; font-weight: 600; margin-bottom: 0.3rem; }
input[type=url] { width: 70%; padding: 0.4rem; font-size: 1rem; }
button { padding: 0.4rem 0.9rem; font-size: 1rem; }
button:focus, input:focus, a:focus { outline: 3px solid #4c72b0; outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #ddd; }
td.target { word-break: break-all; }
#error { color: #a40000; }
.status.up { color: #0a6b2d; font-weight: 600; }
.status.down { color: #a40000; font-weight: 600; }
.status.removed { color: #777; }
)css";
}

}  // namespace deltacrdt::shortener
