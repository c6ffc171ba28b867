// The perps-bot dashboard (SPEC 12): loads a session once over the API, then follows
// it over the session's websocket (no polling). ?session=ID picks the session;
// ?token=T is passed on to the API when the server wants one.
"use strict";

const query = new URLSearchParams(location.search);
const TOKEN = query.get("token");
const TRADES_SHOWN = 50;
const state = { id: null, controls: false, session: null, view: null, trades: [], fills: 0,
                ws: null };

const $ = (id) => document.getElementById(id);
const num = (v, digits = 2) =>
  v === null || v === undefined || Number.isNaN(v) ? "—"
    : Number(v).toLocaleString("en-US", { minimumFractionDigits: digits,
                                          maximumFractionDigits: digits });
const price = (v) => v === null || v === undefined ? "—"
  : Number(v).toLocaleString("en-US", { maximumSignificantDigits: 8 });
const pct = (v) => v === null || v === undefined ? "—" : (100 * v).toFixed(2) + " %";
const signed = (v) => `<span class="${v > 0 ? "pos" : v < 0 ? "neg" : ""}">${num(v)}</span>`;
const esc = (s) => String(s ?? "").replace(/[&<>"]/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
// a session's API path: its id is a run id on a --http-port bot, which carries the
// profile's name (free text: '#', '?', '/' ...)
const sessionPath = (id = state.id) => "/api/sessions/" + encodeURIComponent(id);

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (TOKEN) headers.Authorization = "Bearer " + TOKEN;
  const resp = await fetch(path, { ...options, headers });
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

// -- rendering ---------------------------------------------------------------------
function renderSession(s) {
  state.session = s;
  const controls = !!s.controls && s.status === "running";
  if (controls !== state.controls) {  // the buttons come or go with the session's state
    state.controls = controls;
    if (state.view) renderPortfolio(state.view);
  }
  const status = $("session-status");
  status.textContent = s.status + (s.detail ? ` (${s.detail})` : "");
  status.className = "badge st-" + s.status;
  const risk = $("risk-state");
  risk.textContent = s.risk_state || "—";
  risk.className = "badge state-" + (s.risk_state || "");
  const from = s.now || s.started;  // running: now → its end; ended: its start → its end
  $("clock").textContent = from ? `${from.slice(0, 19)} → ${(s.ends || "").slice(0, 19)}` : "";
}

function renderPortfolio(view) {
  state.view = view;
  const acc = view.account || {};
  $("account").innerHTML = [["account equity", num(acc.equity)], ["PnL", signed(acc.pnl)],
    ["cash", num(acc.cash)], ["unrealized", signed(acc.unrealized_pnl)]]
    .map(([label, value]) =>
      `<div class="card"><div class="label">${label}</div><div class="value">${value}</div></div>`)
    .join("");
  $("portfolios").tBodies[0].innerHTML = view.portfolios.map(portfolioRow).join("");
  $("positions").tBodies[0].innerHTML = view.portfolios.flatMap((p) =>
    (p.positions || []).map((x) => `<tr><td>${esc(p.id)}</td><td>${esc(x.symbol)}</td>
      <td>${price(x.size)}</td><td>${price(x.entry_price)}</td><td>${price(x.mark_price)}</td>
      <td>${signed(x.unrealized_pnl)}</td><td>${price(x.liquidation_price)}</td>
      <td>${x.leverage ? num(x.leverage, 1) + "×" : "—"}</td><td>${num(x.margin)}</td></tr>`))
    .join("")
    || `<tr><td colspan="9" class="muted">no open positions</td></tr>`;
  $("prices").tBodies[0].innerHTML = Object.entries(view.prices || {})
    .map(([sym, last]) => `<tr><td>${esc(sym)}</td><td>${price(last)}</td></tr>`).join("");
}

// A session that is not running shows its portfolios as stored: equity, PnL and
// positions, without the live figures (cash, risk, paused): those cells show "—".
function portfolioRow(p) {
  const r = p.risk || {};
  const buttons = !state.controls ? "" : ["pause", "resume", "flatten"]
    .filter((a) => a !== (p.paused ? "pause" : "resume"))
    .map((a) => `<button data-action="${a}" data-pid="${esc(p.id)}">${a}</button>`).join("");
  return `<tr><td>${esc(p.id)}</td><td>${esc(p.strategy)}</td>
    <td>${p.paused === undefined ? "—" : p.paused ? "paused" : "trading"}</td>
    <td>${num(p.equity)}</td><td>${signed(p.pnl)}</td>
    <td>${num(p.cash)}</td><td>${signed(p.unrealized_pnl)}</td>
    <td>${r.state ? `<span class="badge state-${esc(r.state)}">${esc(r.state)}</span>` : "—"}</td>
    <td>${pct(r.drawdown_headroom)}</td><td>${pct(r.daily_loss_headroom)}</td>
    <td>${buttons}</td></tr>`;
}

function renderTrades() {
  $("trades").tBodies[0].innerHTML = state.trades.slice(-TRADES_SHOWN).reverse().map((t) =>
    `<tr><td>${esc(t.close_time.slice(0, 19))}</td><td>${esc(t.portfolio)}</td>
     <td>${esc(t.symbol)}</td><td>${esc(t.side)}</td><td>${price(t.size)}</td>
     <td>${price(t.entry_price)}</td><td>${price(t.exit_price)}</td>
     <td>${signed(t.net_pnl)}</td><td>${esc(t.exit_reason)}</td></tr>`).join("")
    || `<tr><td colspan="9" class="muted">no closed trades yet</td></tr>`;
}

// -- the equity chart (plotly.js, shipped with the package) ------------------------
const chartTraces = [];
const layout = { margin: { l: 60, r: 20, t: 10, b: 40 }, paper_bgcolor: "#1a2029",
  plot_bgcolor: "#1a2029", font: { color: "#e6e9ee" }, xaxis: { type: "date", gridcolor: "#2a3340" },
  yaxis: { gridcolor: "#2a3340" }, legend: { orientation: "h" } };

// The account and portfolios of different capital share one axis: "PnL since the
// start" draws each curve less its first equity, so their moves compare.
const chartStart = [];  // each curve's first equity (null until it has one)
const chartMode = () => $("chart-mode").value;
const chartBase = (index) => chartMode() === "pnl" ? chartStart[index] ?? 0 : 0;

// A chart time: UTC wall time as text. Plotly draws a Date in the browser's own time
// zone, and every other time on the page (trades, fills, the API) is UTC.
const utcTime = (ms) => new Date(ms).toISOString().slice(0, 23).replace("T", " ");
// A line through one point draws nothing: a curve of one point (a session on the wall
// clock has one equity row a minute) is drawn with its point until it has two.
const lineMode = (points) => (points === 1 ? "lines+markers" : "lines");

function drawChart(curves) {
  chartTraces.length = 0;
  chartStart.length = 0;
  const data = curves.map(([name, curve], index) => {
    chartTraces.push(name);
    chartStart.push(curve.equity.length ? curve.equity[0] : null);
    const base = chartBase(index);
    return { type: "scatter", mode: lineMode(curve.ts.length), name, x: curve.ts.map(utcTime),
      y: curve.equity.map((v) => v - base) };
  });
  Plotly.newPlot("equity-chart", data, layout, { displayModeBar: false, responsive: true });
}

$("chart-mode").onchange = () => {  // the curves are in the other mode: one redraw
  const chart = $("equity-chart");
  if (!chart.data) return;
  const sign = chartMode() === "pnl" ? 1 : -1;
  const ys = chart.data.map((trace, index) =>
    trace.y.map((v) => v - sign * (chartStart[index] ?? 0)));
  Plotly.restyle(chart, { y: ys }, ys.map((_, index) => index));
};

// A curve followed for days would grow without bound: past CHART_POINTS points it
// keeps every other point (its first and last always), so its whole history stays on
// the chart at a bounded cost; newer points arrive at full detail until the next
// halving. ?chart_points=N sets the bound.
const CHART_POINTS = Math.max(50, Number(query.get("chart_points")) || 5000);
const HISTORY_POINTS = 1000;  // each curve's history as the page opens
let chartReceived = 0;  // points the stream brought (data-received: what tests wait on)

function extendChart(points) {
  // points: trace name -> { x: [UTC time], y: [equity] }; one redraw for all of them
  const indices = [], xs = [], ys = [];
  for (const [name, p] of points) {
    const index = chartTraces.indexOf(name);
    if (index < 0) continue;
    if (chartStart[index] === null) chartStart[index] = p.y[0];
    const base = chartBase(index);
    indices.push(index); xs.push(p.x); ys.push(p.y.map((v) => v - base));
    chartReceived += p.x.length;
  }
  if (!indices.length) return;
  const chart = $("equity-chart");
  Plotly.extendTraces(chart, { x: xs, y: ys }, indices);
  for (const index of indices) {
    let { x, y, mode } = chart.data[index];
    if (mode !== lineMode(x.length)) Plotly.restyle(chart, { mode: lineMode(x.length) }, [index]);
    if (x.length <= CHART_POINTS) continue;
    while (x.length > CHART_POINTS) [x, y] = [halved(x), halved(y)];
    Plotly.restyle(chart, { x: [x], y: [y] }, [index]);
  }
  chart.dataset.received = chartReceived;
}

// Every other value, the first and the last always: the curve keeps its whole span and
// its even spacing in time.
function halved(values) {
  const kept = values.filter((_, i) => i % 2 === 0);
  if ((values.length - 1) % 2 !== 0) kept.push(values[values.length - 1]);
  return kept;
}

// -- the stream --------------------------------------------------------------------
// A --dev-fast session sends thousands of messages a second. Each is only queued when
// it arrives; a batch is handled at most every BATCH_MS, with one chart redraw and one
// re-render per table, so the page stays current (and its close event is not stuck
// behind a backlog of redraws).
const BATCH_MS = 50;
const inbox = [];
// A closed stream (the server restarted, the network dropped) is opened again, 1 s
// then up to RETRY_MS apart: a server started again goes on with its sessions, and the
// new hello rebuilds the page (session, portfolios, last trades, curves). The server
// closes it cleanly (1000) once the session has ended, after its last status: the
// page then shows it ended and stays as it is (nothing more is coming).
const SESSION_ENDED = 1000;
const RETRY_MS = 10_000;
let retries = 0;

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // the hello carries the last trades and the curves read as the stream starts, so
  // the page misses no trade or point between loading and following
  let url = `${scheme}//${location.host}${sessionPath()}/stream` +
    `?trades=${TRADES_SHOWN}&points=${HISTORY_POINTS}`;
  if (TOKEN) url += "&token=" + encodeURIComponent(TOKEN);
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => { retries = 0; setConnected(true); };
  ws.onclose = (event) => {
    const over = event.code === SESSION_ENDED;
    try { handleInbox(); } finally { over ? setEnded() : setConnected(false); }
    if (!over) setTimeout(connect, Math.min(RETRY_MS, 1000 * 2 ** retries++));
  };
  ws.onmessage = (event) => {
    inbox.push(JSON.parse(event.data));
    if (inbox.length === 1) setTimeout(handleInbox, BATCH_MS);
  };
}

// The session ended and its stream with it: not a lost connection (no banner).
function setEnded() {
  const badge = $("connection");
  badge.textContent = "session ended";
  badge.className = "badge conn-ended";
  $("disconnected-banner").hidden = true;
  document.body.dataset.connected = "ended";
}

function setConnected(on) {
  const badge = $("connection");
  badge.textContent = on ? "connected" : "disconnected";
  badge.className = "badge conn-" + (on ? "connected" : "disconnected");
  $("disconnected-banner").hidden = on;
  document.body.dataset.connected = on ? "1" : "0";
}

function handleInbox() {
  const batch = inbox.splice(0);
  if (!batch.length) return;
  const points = new Map();
  let session = null, portfolio = null, lastFill = null, newTrades = false, refetch = false;
  let stored = false;  // a hello of a session not running: its portfolios as stored
  let curves = null;
  for (const msg of batch) {
    const data = msg.data;
    switch (msg.type) {
      case "hello":  // its fills so far: a count that missed none (a resync, a new session)
        session = data.session;
        if (data.fills !== undefined) { state.fills = data.fills; $("fill-count").textContent = state.fills; }
        if (data.portfolio) portfolio = data.portfolio;
        else stored = true;
        if (data.trades) { state.trades = data.trades; newTrades = true; }
        if (data.equity) { curves = data.equity; points.clear(); }
        break;
      case "status": session = data; break;
      case "portfolio": portfolio = data; break;
      case "fill":
      case "liquidation":
        state.fills += 1;
        lastFill = `${msg.portfolio} ${data.symbol} ${data.side} ${price(data.size)} @ ` +
          price(data.price);
        break;
      case "trade":
        state.trades.push({ ...data, portfolio: msg.portfolio,
          close_time: new Date(data.close_ts).toISOString() });
        newTrades = true;
        break;
      case "equity": {
        let p = points.get(msg.portfolio);
        if (!p) points.set(msg.portfolio, (p = { x: [], y: [] }));
        p.x.push(utcTime(data.ts));
        p.y.push(data.equity);
        break;
      }
      case "state_change":
      case "control": refetch = true; break;
      default: break;
    }
  }
  if (session) renderSession(session);
  if (portfolio) renderPortfolio(portfolio);
  if (lastFill !== null) {
    $("fill-count").textContent = state.fills;
    $("last-fill").textContent = lastFill;
  }
  if (newTrades) {
    state.trades = state.trades.slice(-TRADES_SHOWN);
    renderTrades();
  }
  if (curves) drawChart(curves);
  extendChart(points);
  if (refetch) api(sessionPath()).then(renderSession).catch(() => {});
  if (stored && !portfolio) {
    api(`${sessionPath()}/portfolio`).then((view) => { if (view.portfolios) renderPortfolio(view); })
      .catch(() => {});
  }
}

// -- controls ----------------------------------------------------------------------
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  try {
    const path = `${sessionPath()}/portfolios/${encodeURIComponent(button.dataset.pid)}/` +
      button.dataset.action;
    const done = await api(path, { method: "POST" });
    $("message").textContent = `${done.portfolio}: ${done.action}` +
      (done.action === "flatten" ? ` (${done.closing} positions closing; paused until resumed)` : "");
  } catch (err) {
    $("message").textContent = err.message;
  }
});

// -- start -------------------------------------------------------------------------
async function load(id) {
  state.id = id;
  const session = await api(sessionPath(id));
  renderSession(session);
  const view = await api(`${sessionPath(id)}/portfolio`);
  if (view.portfolios) renderPortfolio(view);
  connect();  // its hello brings the trades and the curves (see handleInbox)
}

async function start() {
  try {
    const { sessions } = await api("/api/sessions");
    const select = $("session-select");
    select.innerHTML = sessions.map((s) =>
      `<option value="${esc(s.session_id)}">${esc(s.session_id)} · ${esc(s.status)}</option>`)
      .join("");
    const wanted = query.get("session");
    const running = sessions.filter((s) => s.status === "running");
    const pick = wanted || (running.length ? running[running.length - 1]
      : sessions[sessions.length - 1] || {}).session_id;
    select.onchange = () => { location.search = "?session=" + encodeURIComponent(select.value) +
      (TOKEN ? "&token=" + encodeURIComponent(TOKEN) : ""); };
    if (!pick) {
      $("message").textContent = "no sessions yet: start one with POST /api/sessions";
    } else {
      select.value = pick;
      await load(pick);
    }
  } catch (err) {
    $("message").textContent = "cannot load: " + err.message;
    setConnected(false);
  }
  document.body.dataset.ready = "1";
}

start();
