"use strict";
// Live view of the watched ports, fed by the /api/events SSE stream (one `snapshot` event per
// period). Everything is served by the webui-doctor binary itself: no external scripts or fonts.
const STATES = ["established", "syn-sent", "syn-recv", "fin-wait-1", "fin-wait-2", "time-wait",
                "closed", "close-wait", "last-ack", "listening", "closing"];
const LABEL = { "established": "ESTAB", "syn-sent": "SYN-SENT", "syn-recv": "SYN-RECV",
  "fin-wait-1": "FIN-WAIT-1", "fin-wait-2": "FIN-WAIT-2", "time-wait": "TIME-WAIT", "closed": "UNCONN",
  "close-wait": "CLOSE-WAIT", "last-ack": "LAST-ACK", "listening": "LISTEN", "closing": "CLOSING" };
const HISTORY = 300;
const history = [];
let latest = null;
const $ = (id) => document.getElementById(id);

for (const s of STATES) {
  const o = document.createElement("option");
  o.value = s; o.textContent = LABEL[s];
  $("filter-state").appendChild(o);
}

function human(ms) {
  if (ms < 1000) return ms + "ms";
  if (ms < 10000) return (Math.floor(ms / 100) / 10).toFixed(1) + "s";
  if (ms < 60000) return Math.floor(ms / 1000) + "s";
  const pad = (n) => String(n).padStart(2, "0");
  if (ms < 3600000) return Math.floor(ms / 60000) + "m" + pad(Math.floor(ms % 60000 / 1000)) + "s";
  if (ms < 86400000) return Math.floor(ms / 3600000) + "h" + pad(Math.floor(ms % 3600000 / 60000)) + "m";
  return Math.floor(ms / 86400000) + "d" + pad(Math.floor(ms % 86400000 / 3600000)) + "h";
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

// The socket table shows either the stream's rows (the most urgent of the watched sockets, as
// `[state, recv_q, send_q, local, peer, timer, expires_ms, probes, last_recv_ms, last_send_ms]`)
// or, once a state is chosen or the user pages on, one page of /api/snapshot in the same order,
// fetched again after every snapshot event while it is shown.
const PAGE = 500;
const view = { offset: 0, state: "" };
let paged = null;
let fetching = false;
// Formatters made once, at load: the first toLocale*String call sets up the locale data (tens of
// milliseconds), which would otherwise land in the first event's update.
const numbers = new Intl.NumberFormat("en-US");
const times = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });
const fmt = (n) => numbers.format(n);
const clock = (t) => times.format(new Date(t));
fmt(0); clock(0);
// The chart's drawing context, made once at load for the same reason.
const chartContext = $("chart").getContext("2d");
const live = () => view.offset === 0 && !view.state;
const toRow = (s) => [s.state, s.recv_q, s.send_q, s.local, s.peer, s.timer && s.timer.kind,
  s.timer && s.timer.expires_ms, s.timer && s.timer.probes, s.idle && s.idle.last_recv_ms,
  s.idle && s.idle.last_send_ms];

// The /api/snapshot query for the page shown now.
function pageQuery() {
  const q = new URLSearchParams();
  for (const p of latest.filters.ports) q.append("port", p);
  if (view.state) q.append("state", view.state);
  q.set("limit", PAGE);
  q.set("offset", view.offset);
  return q.toString();
}

// One request at a time; when the view changed meanwhile, the view shown now is fetched next.
function fetchPage() {
  if (fetching || !latest || live()) return;
  fetching = true;
  const wanted = pageQuery();
  fetch("/api/snapshot?" + wanted, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : r.text().then((t) => { throw new Error(r.status + " " + t.trim()); })))
    .then((doc) => { paged = { query: wanted, doc }; renderTable(); })
    .catch((e) => { $("shown").textContent = "could not load the page: " + e.message; })
    .finally(() => {
      fetching = false;
      if (!live() && wanted !== pageQuery()) fetchPage();
    });
}

// The socket list is virtual: it is as tall as all its rows, but only the rows on screen (and a
// few around them) exist, positioned by index; scrolling repaints them. Building 500 rows of 9
// cells took 40-80 ms in headless Chromium, and a table re-laid out all of them whenever one
// cell changed (100-130 ms); this way an event costs the ~40 rows in view.
const ROW_HEIGHT = 28; // px: .grid .row's height in the style sheet
const OVERSCAN = 10;
let listRows = [];

function paintRows() {
  const body = $("sockets");
  body.dataset.rows = String(listRows.length);
  if (listRows.length === 0) {
    const empty = document.createElement("div");
    empty.className = "empty";
    empty.textContent = latest ? "no sockets match" : "waiting for the first snapshot…";
    body.replaceChildren(empty);
    body.style.height = "";
    return;
  }
  if (body.querySelector(":scope > .empty")) body.replaceChildren();
  body.style.height = listRows.length * ROW_HEIGHT + "px";
  const top = body.getBoundingClientRect().top;
  const first = Math.max(0, Math.floor(-top / ROW_HEIGHT) - OVERSCAN);
  const end = Math.min(listRows.length, Math.ceil((window.innerHeight - top) / ROW_HEIGHT) + OVERSCAN);
  const want = Math.max(0, end - first);
  while (body.children.length > want) body.lastChild.remove();
  while (body.children.length < want) {
    const row = document.createElement("div");
    row.className = "row";
    row.setAttribute("role", "row");
    for (let i = 0; i < 9; i++) row.appendChild(document.createElement("span"));
    for (const i of [1, 2, 6]) row.children[i].className = "num";
    body.appendChild(row);
  }
  for (let k = 0; k < want; k++) {
    const i = first + k;
    const r = listRows[i];
    const row = body.children[k];
    const noKeep = r[0] === "established" && r[5] !== "keepalive";
    if (row.dataset.index !== String(i)) {
      row.dataset.index = String(i);
      row.style.top = i * ROW_HEIGHT + "px";
    }
    if (row.dataset.state !== r[0]) row.dataset.state = r[0];
    const texts = [LABEL[r[0]] || r[0], String(r[1]), String(r[2]), r[3], r[4],
      r[5] ? r[5] + " " + human(r[6]) : (noKeep ? "none" : "–"), r[5] ? String(r[7]) : "",
      r[8] === null ? "–" : human(r[8]), r[9] === null ? "–" : human(r[9])];
    for (let c = 0; c < 9; c++) {
      const span = row.children[c];
      if (span.textContent !== texts[c]) span.textContent = texts[c];
    }
    const timerClass = noKeep ? "nokeep" : "";
    if (row.children[5].className !== timerClass) row.children[5].className = timerClass;
  }
}

function renderTable() {
  if (!latest) return;
  let rows, total, from;
  if (live()) {
    rows = latest.rows; total = latest.page.total; from = 0;
  } else if (paged && paged.query === pageQuery()) {
    rows = paged.doc.sockets.map(toRow); total = paged.doc.page.total; from = paged.doc.page.offset;
  } else {
    $("shown").textContent = "loading…";
    return;
  }
  const text = $("filter-text").value.trim();
  const matching = text ? rows.filter((r) => r[3].includes(text) || r[4].includes(text)) : rows;
  listRows = matching;
  paintRows();
  const range = from === 0 ? fmt(rows.length) : fmt(from + 1) + "–" + fmt(from + rows.length);
  $("shown").textContent = (text ? fmt(matching.length) + " matching of " : "") + range + " of " + fmt(total) +
    " shown" + (view.state ? " (" + (LABEL[view.state] || view.state) + ")" : "");
  $("page-prev").disabled = from === 0;
  $("page-next").disabled = from + rows.length >= total;
  $("page-next").dataset.next = String(from + rows.length);
}

function select(offset, state) {
  view.offset = Math.max(0, offset);
  view.state = state;
  fetchPage();
  renderTable();
}

// The diagnosis of the watched ports: one entry per finding, its evidence behind a click. Rebuilt
// only when a finding changed, so an opened entry stays open.
let shownFindings = "";
function renderFindings(findings) {
  const key = JSON.stringify(findings);
  if (key === shownFindings) return;
  shownFindings = key;
  const box = $("findings");
  const open = new Set([...box.querySelectorAll("details[open]")].map((d) => d.dataset.code));
  box.replaceChildren();
  if (findings.length === 0) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "no findings on the watched ports";
    box.appendChild(p);
    return;
  }
  for (const f of findings) {
    const d = document.createElement("details");
    d.className = "finding " + f.severity;
    d.dataset.code = f.code;
    d.open = open.has(f.code);
    const head = document.createElement("summary");
    const sev = document.createElement("b");
    sev.textContent = f.severity;
    const code = document.createElement("code");
    code.textContent = f.code;
    head.append(sev, " ", code, " ", f.message);
    d.appendChild(head);
    if (f.cure) {
      const cure = document.createElement("p");
      cure.className = "cure";
      const cmd = document.createElement("code");
      cmd.textContent = f.cure;
      cure.append("cure: ", cmd);
      d.appendChild(cure);
    }
    const evidence = document.createElement("pre");
    evidence.className = "evidence";
    evidence.textContent = JSON.stringify(f.evidence, null, 2);
    d.appendChild(evidence);
    box.appendChild(d);
  }
}

function drawChart() {
  const c = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const w = c.clientWidth || 1200, h = c.clientHeight || 220;
  c.width = w * ratio; c.height = h * ratio;
  const g = chartContext;
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const left = 40, right = 44, top = 10, bottom = 22;
  const pw = w - left - right, ph = h - top - bottom;
  // Whole-number ticks on the left axis: round the top up to a multiple of 4.
  const maxCw = Math.max(4, Math.ceil(Math.max(0, ...history.map((p) => p.closeWait)) / 4) * 4);
  g.strokeStyle = "#2a3441"; g.fillStyle = "#8b98a8"; g.font = "11px system-ui"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(left + pw, y); g.stroke();
    g.textAlign = "right"; g.fillText(String(Math.round((maxCw * i) / 4)), left - 6, y + 4);
    g.textAlign = "left"; g.fillText((25 * i) + "%", left + pw + 6, y + 4);
  }
  const x = (i) => left + (history.length <= 1 ? pw : (pw * i) / (history.length - 1));
  const line = (color, value) => {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    let started = false;
    history.forEach((p, i) => {
      const v = value(p);
      if (v === null) { started = false; return; }
      const y = top + ph - ph * v;
      if (!started) { g.moveTo(x(i), y); started = true; } else { g.lineTo(x(i), y); }
    });
    g.stroke();
    if (history.length < 60) {
      g.fillStyle = color;
      history.forEach((p, i) => {
        const v = value(p);
        if (v !== null) { g.beginPath(); g.arc(x(i), top + ph - ph * v, 3, 0, 2 * Math.PI); g.fill(); }
      });
    }
  };
  line("#f85149", (p) => p.closeWait / maxCw);
  line("#3fb950", (p) => (p.established ? p.armed / p.established : null));
  if (history.length) {
    g.fillStyle = "#8b98a8"; g.textAlign = "left";
    g.fillText(clock(history[0].t), left, h - 6);
    g.textAlign = "right";
    g.fillText(clock(history[history.length - 1].t), left + pw, h - 6);
  }
}

// What ended on the watched ports (the server's subscription to the kernel's notices): totals
// per cause, then the most recent ends.
function renderEnded(ended) {
  const totals = $("ended-totals");
  const body = $("ended");
  if (!ended) { totals.textContent = "not available"; return; }
  if (ended.error) { totals.textContent = "no feed: " + ended.error; return; }
  const sums = {};
  for (const causes of Object.values(ended.totals)) {
    for (const [cause, n] of Object.entries(causes)) sums[cause] = (sums[cause] || 0) + n;
  }
  totals.textContent = Object.entries(sums).map(([c, n]) => c + " " + n).join(" · ");
  body.replaceChildren();
  if (ended.recent.length === 0) {
    const row = body.insertRow();
    const td = cell(row, "none yet", "empty");
    td.colSpan = 6;
    return;
  }
  for (const e of ended.recent) {
    const row = body.insertRow();
    row.dataset.cause = e.cause;
    cell(row, clock(e.time));
    cell(row, e.local);
    cell(row, e.peer);
    cell(row, e.cause, e.cause === "closed" ? "" : "bad");
    cell(row, e.probes === null ? "-" : String(e.probes));
    cell(row, e.retransmits === null ? "-" : e.retransmits + "/" + e.total_retrans);
  }
}

function onSnapshot(doc) {
  latest = doc;
  const sum = doc.summary;
  $("count-total").textContent = fmt(sum.total);
  $("count-established").textContent = fmt(sum.by_state["established"]);
  $("count-close-wait").textContent = fmt(sum.by_state["close-wait"]);
  $("count-time-wait").textContent = fmt(sum.by_state["time-wait"]);
  $("count-listening").textContent = fmt(sum.by_state["listening"]);
  $("keepalive-armed").textContent = fmt(sum.keepalive.armed);
  $("keepalive-established").textContent = fmt(sum.keepalive.established);
  $("card-close-wait").className = "card " + (sum.by_state["close-wait"] > 0 ? "bad" : "good");
  $("card-keepalive").className = "card " + (sum.keepalive.armed < sum.keepalive.established ? "bad" : "good");
  $("source").textContent = doc.source;
  $("ports").textContent = doc.filters.ports.join(", ") || "all";
  $("taken").textContent = "taken " + clock(doc.taken_at);
  history.push({ t: Date.parse(doc.taken_at), closeWait: sum.by_state["close-wait"],
                 established: sum.keepalive.established, armed: sum.keepalive.armed });
  if (history.length > HISTORY) history.shift();
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
  const phase = (name, f) => { const t = performance.now(); f(); stats.phases[name] = performance.now() - t; };
  phase("findings", () => renderFindings(doc.findings));
  phase("table", () => { if (live()) renderTable(); else fetchPage(); });
  phase("ended", () => renderEnded(doc.ended));
  phase("chart", drawChart);
}

// How long the page takes to apply each event (parse, update, style and layout), and how big the
// events are: shown in the header, kept for tests as `window.dashboardStats`.
const stats = { events: 0, maxChars: 0, ms: [], phases: {} };
window.dashboardStats = stats;
function applyEvent(data) {
  const t0 = performance.now();
  const doc = JSON.parse(data);
  const t1 = performance.now();
  onSnapshot(doc);
  const t2 = performance.now();
  void document.body.offsetHeight; // forces style and layout, so they are in the time
  const ms = performance.now() - t0;
  stats.phases.parse = t1 - t0;
  stats.phases.layout = performance.now() - t2;
  stats.events += 1;
  stats.maxChars = Math.max(stats.maxChars, data.length);
  stats.ms.push(ms);
  if (stats.ms.length > 100) stats.ms.shift();
  if (stats.events === 1) stats.first = Object.assign({}, stats.phases);
  $("apply").textContent = "event " + (data.length / 1024).toFixed(1) + " KiB, applied in " + ms.toFixed(1) + " ms";
}

function connect() {
  const es = new EventSource("/api/events");
  es.onopen = () => { $("status").textContent = "live"; $("status").className = "live"; };
  es.onerror = () => { $("status").textContent = "reconnecting…"; $("status").className = "down"; };
  es.addEventListener("snapshot", (e) => applyEvent(e.data));
}

$("filter-state").addEventListener("change", () => select(0, $("filter-state").value));
$("page-prev").addEventListener("click", () => select(view.offset - PAGE, view.state));
$("page-next").addEventListener("click", () => select(Number($("page-next").dataset.next || 0), view.state));
$("filter-text").addEventListener("input", renderTable);
window.addEventListener("resize", () => { drawChart(); paintRows(); });
window.addEventListener("scroll", paintRows, { passive: true });
connect();
