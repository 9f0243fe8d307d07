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

function renderTable() {
  if (!latest) return;
  const want = $("filter-state").value;
  const text = $("filter-text").value.trim();
  const body = $("sockets");
  const rows = latest.sockets.filter((s) =>
    (!want || s.state === want) && (!text || s.local.includes(text) || s.peer.includes(text)));
  body.replaceChildren();
  for (const s of rows) {
    const tr = document.createElement("tr");
    tr.className = s.state;
    cell(tr, LABEL[s.state] || s.state);
    cell(tr, s.recv_q, "num");
    cell(tr, s.send_q, "num");
    cell(tr, s.local);
    cell(tr, s.peer);
    const noKeep = s.state === "established" && !(s.timer && s.timer.kind === "keepalive");
    cell(tr, s.timer ? s.timer.kind + " " + human(s.timer.expires_ms) : (noKeep ? "none" : "–"), noKeep ? "nokeep" : "");
    cell(tr, s.timer ? s.timer.probes : "", "num");
    cell(tr, s.idle ? human(s.idle.last_recv_ms) : "–");
    cell(tr, s.idle ? human(s.idle.last_send_ms) : "–");
    body.appendChild(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    cell(tr, "no sockets match", "empty");
    tr.firstChild.colSpan = 9;
    body.appendChild(tr);
  }
  $("shown").textContent = rows.length + " of " + latest.sockets.length + " shown";
}

function drawChart() {
  const c = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const w = c.clientWidth || 1200, h = c.clientHeight || 220;
  c.width = w * ratio; c.height = h * ratio;
  const g = c.getContext("2d");
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
    g.fillText(new Date(history[0].t).toLocaleTimeString(), left, h - 6);
    g.textAlign = "right";
    g.fillText(new Date(history[history.length - 1].t).toLocaleTimeString(), left + pw, h - 6);
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
    cell(row, new Date(e.time).toLocaleTimeString());
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
  $("count-total").textContent = sum.total;
  $("count-established").textContent = sum.by_state["established"];
  $("count-close-wait").textContent = sum.by_state["close-wait"];
  $("count-time-wait").textContent = sum.by_state["time-wait"];
  $("count-listening").textContent = sum.by_state["listening"];
  $("keepalive-armed").textContent = sum.keepalive.armed;
  $("keepalive-established").textContent = sum.keepalive.established;
  $("card-close-wait").className = "card " + (sum.by_state["close-wait"] > 0 ? "bad" : "good");
  $("card-keepalive").className = "card " + (sum.keepalive.armed < sum.keepalive.established ? "bad" : "good");
  $("source").textContent = doc.source;
  $("ports").textContent = doc.filters.ports.join(", ") || "all";
  $("taken").textContent = "taken " + new Date(doc.taken_at).toLocaleTimeString();
  history.push({ t: Date.parse(doc.taken_at), closeWait: sum.by_state["close-wait"],
                 established: sum.keepalive.established, armed: sum.keepalive.armed });
  if (history.length > HISTORY) history.shift();
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
  renderTable();
  renderEnded(doc.ended);
  drawChart();
}

function connect() {
  const es = new EventSource("/api/events");
  es.onopen = () => { $("status").textContent = "live"; $("status").className = "live"; };
  es.onerror = () => { $("status").textContent = "reconnecting…"; $("status").className = "down"; };
  es.addEventListener("snapshot", (e) => onSnapshot(JSON.parse(e.data)));
}

$("filter-state").addEventListener("change", renderTable);
$("filter-text").addEventListener("input", renderTable);
window.addEventListener("resize", drawChart);
connect();
