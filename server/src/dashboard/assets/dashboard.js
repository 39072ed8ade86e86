// comet-server's live page: a stats stream from the admin listener, and a
// subscription of one id on the subscriber listener. No build step: this
// file is served as it is. The admin token stays in this page's memory.
"use strict";

const cfg = JSON.parse(document.getElementById("c1m-config").textContent);
// The listener this page came from is its own origin; the other is named
// by the server (an empty host: the listener is on every address).
const base = (who) => cfg.served_by === who ? location.origin
  : `http://${cfg[who + "_host"] || location.hostname}:${cfg[who + "_port"]}`;
const ADMIN = base("admin"), SUB = base("subscriber");
const HISTORY = 300; // seconds of chart
const $ = (id) => document.getElementById(id);
let token = null;
const auth = () => token ? { Authorization: "Bearer " + token } : {};

const series = { conns: [], perConn: [], inRate: [], outRate: [], p99: [] };
const push = (name, v) => { const s = series[name]; s.push(v); if (s.length > HISTORY) s.shift(); };
let previous = null;
let latencies = []; // ms, of this page's messages since the last tick

const count = (n) => n == null ? "-" : Math.round(n).toLocaleString("en-US");
const bytes = (n) => n == null ? "-" : n >= 1 << 30 ? (n / (1 << 30)).toFixed(2) + " GiB"
  : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : Math.round(n) + " B";
const ms = (n) => n == null ? "-" : n.toFixed(n < 10 ? 2 : 1) + " ms";

function setState(text, live) { const s = $("state"); s.textContent = text; s.classList.toggle("live", !!live); }

// Gets a ticket (the bearer token, when the admin has one), then reads the
// stream with it: an EventSource cannot send the header itself.
async function connectStats() {
  let answer;
  try {
    answer = await fetch(ADMIN + "/dashboard/ticket", { method: "POST", headers: auth() });
  } catch (e) { setState("admin unreachable, retrying"); return setTimeout(connectStats, 2000); }
  if (answer.status === 401) {
    $("token-form").hidden = false;
    return setState(token ? "wrong admin token" : "the admin needs its token");
  }
  if (!answer.ok) { setState("ticket refused: " + answer.status); return setTimeout(connectStats, 2000); }
  $("token-form").hidden = true;
  const { ticket } = await answer.json();
  const stream = new EventSource(ADMIN + "/stats/stream?ticket=" + ticket);
  stream.addEventListener("stats", (e) => onStats(JSON.parse(e.data)));
  // A ticket is good once: reconnect with a new one.
  stream.onerror = () => { stream.close(); setState("stats stream lost, reconnecting"); setTimeout(connectStats, 1000); };
}

function onStats(s) {
  const now = performance.now();
  const dt = previous ? (now - previous.at) / 1000 : 0;
  const rate = (field) => previous && dt > 0 ? Math.max(0, s[field] - previous.s[field]) / dt : null;
  const perConn = s.connections > 0 ? s.rss_bytes / s.connections : null;
  const inRate = rate("messages_in"), outRate = rate("messages_out");
  $("connections").textContent = count(s.connections);
  $("logged_in").textContent = count(s.logged_in);
  $("in_rate").textContent = count(inRate);
  $("out_rate").textContent = count(outRate);
  $("dropped").textContent = count(s.dropped);
  $("slow").textContent = count(s.slow_consumer_closes);
  $("rss").textContent = bytes(s.rss_bytes + (s.group ? s.group.front_rss_bytes : 0));
  $("per_conn").textContent = bytes(perConn);
  $("broker").textContent = !s.broker ? "none" : s.broker.connected
    ? `up, ${count(s.broker.received)} in` : "down: " + (s.broker.last_error || "?");
  setState(`live, ${new Date().toLocaleTimeString()}`, true);
  push("conns", s.connections); push("perConn", perConn);
  push("inRate", inRate); push("outRate", outRate); push("p99", quantile(latencies, 0.99));
  latencies = [];
  workers(s.workers || [], previous ? previous.s.workers || [] : [], dt);
  previous = { s, at: now };
  drawAll();
}

function workers(list, before, dt) {
  $("workers").hidden = list.length === 0;
  const rows = list.map((w) => {
    const old = before.find((b) => b.index === w.index);
    const out = old && dt > 0 ? Math.max(0, w.messages_out - old.messages_out) / dt : null;
    return `<tr><td>${w.index}</td><td>${w.pid}</td><td>${w.up ? "yes" : "NO"}</td><td>${w.restarts}</td>`
      + `<td>${count(w.connections)}</td><td>${count(w.logged_in)}</td><td>${count(out)}</td><td>${bytes(w.rss_bytes)}</td></tr>`;
  });
  $("workers").querySelector("tbody").innerHTML = rows.join("");
}

function quantile(values, q) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

// A grid step of 1, 2 or 5 times a power of ten (at least `least`).
function niceStep(raw, least) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return Math.max(step, least);
}

// One chart: up to two series over the last HISTORY seconds, each on the
// left (axis 0) or right (axis 1) scale; a scale from 0 in four labelled
// steps, time along x.
function chart(canvas, lines) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.font = "11px system-ui, sans-serif";
  const twoScales = lines.some((l) => l.axis === 1);
  const left = 64, right = twoScales ? 64 : 8, top = 8, bottom = 18;
  const css = getComputedStyle(document.documentElement);
  const colors = [css.getPropertyValue("--c1"), css.getPropertyValue("--c2")];
  const x = (i, n) => left + (w - left - right) * (HISTORY - n + i) / (HISTORY - 1);
  g.fillStyle = "#667085";
  g.fillText(`-${HISTORY / 60} min`, left, h - 4);
  g.fillText("now", w - right - 20, h - 4);
  const steps = [0, 1].map((axis) => {
    const on = lines.filter((l) => l.axis === axis);
    const values = on.flatMap((l) => l.values).filter((v) => v != null);
    return on.length && niceStep(Math.max(0, ...values) / 4, on[0].least);
  });
  const y = (v, axis) => top + (h - top - bottom) * (1 - v / (steps[axis] * 4));
  g.strokeStyle = "#d8dde6"; g.lineWidth = 1;
  for (let t = 0; t <= 4; t++) {
    g.beginPath(); g.moveTo(left, y(steps[0] * t, 0)); g.lineTo(w - right, y(steps[0] * t, 0)); g.stroke();
    lines.filter((l) => l.format).forEach(({ axis, format }) => {
      g.fillStyle = twoScales ? colors[axis] : "#667085";
      g.fillText(format(steps[axis] * t), axis === 0 ? 4 : w - right + 4, y(steps[axis] * t, axis) + 4);
    });
  }
  lines.forEach(({ values, axis }, k) => {
    g.strokeStyle = g.fillStyle = colors[k]; g.lineWidth = 1.5; g.beginPath();
    values.forEach((v, i) => {
      if (v == null) return;
      const joined = i > 0 && values[i - 1] != null;
      joined ? g.lineTo(x(i, values.length), y(v, axis)) : g.moveTo(x(i, values.length), y(v, axis));
      // A point without neighbours is a dot, so a single message shows.
      if (!joined && values[i + 1] == null) g.fillRect(x(i, values.length) - 2, y(v, axis) - 2, 4, 4);
    });
    g.stroke();
  });
}

function drawAll() {
  const axis = (n) => n.toLocaleString("en-US", { maximumFractionDigits: 2 });
  chart($("chart-conns"), [{ values: series.conns, axis: 0, format: axis, least: 1 },
    { values: series.perConn, axis: 1, format: bytes, least: 1 }]);
  // In and out share one scale (out is in times the fan-out).
  chart($("chart-rate"), [{ values: series.inRate, axis: 0, format: (v) => axis(v) + "/s", least: 1 },
    { values: series.outRate, axis: 0 }]);
  chart($("chart-p99"), [{ values: series.p99, axis: 0, format: (v) => axis(v) + " ms", least: 0.01 }]);
}

// The envelope (docs/ENVELOPE.md): `[c1m id generator seq sent_us len|...]`;
// only sent_us is read here, for the latency.
const ENVELOPE = /\[c1m (\d+) (\d+) (\d+) (\d+) (\d+)\|/;
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

let subscription = null;
function subscribe(id) {
  if (subscription) subscription.close();
  $("messages").innerHTML = "";
  $("sub-state").textContent = `connecting to ${SUB}/sse/${id}`;
  subscription = new EventSource(`${SUB}/sse/${id}`);
  subscription.onopen = () => { $("sub-state").textContent = `subscribed to ${id}`; };
  subscription.onerror = () => { $("sub-state").textContent = `reconnecting to ${id}`; };
  subscription.onmessage = (e) => arrived(e.lastEventId, e.data);
  subscription.addEventListener("lost", (e) => arrived("-", "lost: " + e.data));
}

function arrived(seq, text) {
  const found = ENVELOPE.exec(text);
  const latency = found ? (nowUs() - Number(found[4])) / 1000 : null;
  if (latency != null) latencies.push(latency);
  const row = document.createElement("tr");
  if (latency != null) row.dataset.latencyMs = latency.toFixed(3);
  for (const cell of [new Date().toLocaleTimeString(), seq, ms(latency), text]) {
    const td = document.createElement("td"); td.textContent = cell; row.append(td);
  }
  const list = $("messages");
  list.prepend(row);
  while (list.children.length > 50) list.lastChild.remove();
}

let sent = 0;
async function send(id, text) {
  // Wrapped in an envelope so the latency shows when it arrives.
  sent += 1;
  const length = new TextEncoder().encode(text).length;
  const body = `[c1m ${id} 0 ${sent} ${Math.round(nowUs())} ${length}|${text}]`;
  try {
    const answer = await fetch(`${ADMIN}/send/${id}`, { method: "POST", headers: auth(), body });
    $("send-state").textContent = `${answer.status}: ${(await answer.text()).trim()}`;
  } catch (e) { $("send-state").textContent = "send failed: " + e.message; }
}

$("token-form").onsubmit = (e) => { e.preventDefault(); token = $("token").value || null; connectStats(); };
$("sub-form").onsubmit = (e) => { e.preventDefault(); subscribe($("sub-id").value); };
$("send-form").onsubmit = (e) => { e.preventDefault(); send($("sub-id").value, $("send-text").value); };
window.onresize = drawAll;
connectStats();
