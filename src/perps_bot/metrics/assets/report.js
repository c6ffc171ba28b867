// The interactive parts of the HTML report: Plotly charts and the trade table.
// Everything comes from the JSON block #report-data (loadPlotly: plotly_loader.js).
// Times are UTC milliseconds throughout.
(function () {
  const $ = (id) => document.getElementById(id);
  const DATA = JSON.parse($("report-data").textContent);
  const CONFIG = { displaylogo: false, responsive: true };
  const GREEN = "#16a34a", RED = "#dc2626", BLUE = "#1d4ed8";

  const utc = (ms) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");
  const fixed = (d) => (v) => v === null ? "" :
    v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  // table cells and plotly hover text are markup: free text (an exit reason) goes in escaped
  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => ESC[ch]);
  const sig = (v) => v === null ? "" : String(Number(v.toPrecision(8)));
  // a line through one point draws nothing: a series sampled once is drawn as its point
  const lines = (xs) => (xs.length === 1 ? "lines+markers" : "lines");
  function duration(ms) {
    let s = Math.round(ms / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    return m ? `${m}m ${s}s` : `${s}s`;
  }

  function markers(t, symbol) {
    const si = t.symbols.indexOf(symbol), c = t.cols;
    const make = (name, shape, color) => ({ type: "scatter", mode: "markers", name, x: [], y: [],
      text: [], hovertemplate: "%{text}<extra></extra>",
      marker: { symbol: shape, color, size: 9, line: { width: 1, color: "#111827" } } });
    const long = make("long entry", "triangle-up", GREEN);
    const short = make("short entry", "triangle-down", RED);
    const exit = make("exit", "x-thin-open", "#111827");
    exit.marker.line = { width: 2, color: "#111827" };
    for (let i = 0; i < c.id.length; i++) {
      if (c.sym[i] !== si) continue;
      const side = t.sides[c.side[i]];
      const entry = side === "long" ? long : short;
      entry.x.push(c.open[i]); entry.y.push(c.entry[i]);
      entry.text.push(`#${c.id[i]} ${side} entry ${sig(c.entry[i])}`);
      exit.x.push(c.close[i]); exit.y.push(c.exit[i]);
      exit.text.push(`#${c.id[i]} exit ${sig(c.exit[i])}: net ${fixed(2)(c.net[i])}` +
        ` (${esc(t.reasons[c.reason[i]])})`);  // plotly reads tags and entities in it
    }
    return [long, short, exit];
  }

  function priceChart(el, s, t) {
    const traces = s.kind === "candles"
      ? [{ type: "candlestick", name: s.symbol, x: s.ts, open: s.open, high: s.high,
           low: s.low, close: s.close, increasing: { line: { color: GREEN } },
           decreasing: { line: { color: RED } } }]
      : [{ type: "scatter", mode: lines(s.ts), name: "price", x: s.ts, y: s.close,
           line: { color: "#111827", width: 1.2 } }];
    for (const ind of s.series) {
      traces.push({ type: "scatter", mode: lines(s.ts), name: ind.name, x: s.ts, y: ind.values,
        line: { width: 1.2 } });
    }
    traces.push(...markers(t, s.symbol));
    return Plotly.newPlot(el, traces, {
      title: { text: s.title, x: 0, font: { size: 14 } },
      margin: { l: 60, r: 20, t: 40, b: 40 }, hovermode: "closest",
      xaxis: { type: "date", rangeslider: { visible: false } },
      yaxis: { title: { text: "price" } }, legend: { orientation: "h", y: -0.12 },
    }, CONFIG);
  }

  function equityChart(el, e, bench) {
    const traces = [
      { type: "scatter", mode: "lines", x: e.ts, y: e.low, line: { width: 0 },
        hoverinfo: "skip", showlegend: false },
      { type: "scatter", mode: "lines", x: e.ts, y: e.high, fill: "tonexty", line: { width: 0 },
        fillcolor: "rgba(147,197,253,0.5)", name: "range in bucket", hoverinfo: "skip" },
      { type: "scatter", mode: lines(e.ts), x: e.ts, y: e.close, name: "equity",
        line: { color: BLUE, width: 1.5 } },
      { type: "scatter", mode: "lines", x: e.ts, y: e.drawdown_pct, name: "drawdown %",
        yaxis: "y2", fill: "tozeroy", line: { color: "#b91c1c", width: 1, shape: "hv" },
        fillcolor: "rgba(252,165,165,0.6)" },
    ];
    if (bench.ts.length) {
      traces.push({ type: "scatter", mode: "lines", x: bench.ts, y: bench.equity,
        name: bench.label, visible: "legendonly",  // on click: it can dwarf the equity scale
        line: { color: "#6b7280", width: 1, dash: "dot" } });
    }
    return Plotly.newPlot(el, traces, {
      margin: { l: 70, r: 20, t: 20, b: 40 }, hovermode: "x unified",
      xaxis: { type: "date", anchor: "y2" },
      yaxis: { domain: [0.34, 1], title: { text: "equity" } },
      yaxis2: { domain: [0, 0.26], title: { text: "drawdown %" } },
      legend: { orientation: "h", y: 1.08 },
    }, CONFIG);
  }

  function tradeTable(root, t) {
    const c = t.cols, n = c.id.length;
    const cols = [
      ["id", "#", String], ["sym", "symbol", (v) => t.symbols[v]],
      ["side", "side", (v) => t.sides[v]], ["open", "open (UTC)", utc],
      ["close", "close (UTC)", utc], ["dur", "duration", duration], ["size", "size", sig],
      ["entry", "entry", sig], ["exit", "exit", sig], ["net", "net PnL", fixed(4)],
      ["ret", "return %", fixed(3)], ["gross", "gross", fixed(4)], ["fees", "fees", fixed(4)],
      ["funding", "funding", fixed(4)], ["reason", "exit reason", (v) => t.reasons[v]],
      ["r", "R", fixed(2)], ["mae", "MAE", fixed(4)], ["mfe", "MFE", fixed(4)],
    ];
    c.dur = c.close.map((v, i) => v - c.open[i]);
    const text = { sym: t.symbols, side: t.sides, reason: t.reasons };
    const key = (k, i) => (text[k] ? text[k][c[k][i]] : c[k][i]);
    let order = [...Array(n).keys()], sortBy = "id", dir = 1, page = 0, size = 50;
    root.innerHTML = '<div class="pager"></div><div class="scroll"><table class="trades">' +
      "<thead><tr></tr></thead><tbody></tbody></table></div>";
    const head = root.querySelector("thead tr"), body = root.querySelector("tbody");
    const pager = root.querySelector(".pager");
    for (const [k, label] of cols) {
      const th = document.createElement("th");
      th.textContent = label; th.dataset.key = k;
      th.addEventListener("click", () => sort(k));
      head.appendChild(th);
    }
    function sort(k) {
      dir = sortBy === k ? -dir : 1; sortBy = k; page = 0;
      order.sort((a, b) => {
        const x = key(k, a), y = key(k, b);
        if (x === y) return c.id[a] - c.id[b];
        if (x === null) return 1;
        if (y === null) return -1;
        return (x < y ? -1 : 1) * dir;
      });
      render();
    }
    function button(label, target, enabled) {
      const b = document.createElement("button");
      b.textContent = label; b.disabled = !enabled;
      b.addEventListener("click", () => { page = target; render(); });
      return b;
    }
    function render() {
      const pages = Math.max(1, Math.ceil(n / size));
      for (const th of head.children) {
        th.setAttribute("aria-sort", th.dataset.key === sortBy
          ? (dir > 0 ? "ascending" : "descending") : "none");
      }
      const rows = [];
      for (const i of order.slice(page * size, page * size + size)) {
        const cells = cols.map(([k, , fmt]) => {
          const v = c[k][i], cls = k === "net" ? (v > 0 ? "n pass" : v < 0 ? "n fail" : "n")
            : (typeof v === "number" && !text[k] && k !== "open" && k !== "close" ? "n" : "");
          return `<td class="${cls}">${v === null ? "" : esc(fmt(v))}</td>`;
        });
        rows.push(`<tr>${cells.join("")}</tr>`);
      }
      body.innerHTML = rows.join("");
      pager.replaceChildren(button("« first", 0, page > 0),
        button("‹ prev", page - 1, page > 0));
      const info = document.createElement("span");
      info.className = "page-info";
      info.textContent = `page ${page + 1} of ${pages} (${n} trades)`;
      const select = document.createElement("select");
      for (const s of [25, 50, 100, 500]) select.add(new Option(`${s} per page`, s, false, s === size));
      select.addEventListener("change", () => { size = Number(select.value); page = 0; render(); });
      pager.append(info, button("next ›", page + 1, page < pages - 1),
        button("last »", pages - 1, page < pages - 1), select);
    }
    render();
  }

  async function main() {
    for (const p of DATA.portfolios) {
      const root = $(`trades-${p.id}`);
      if (root && p.trades.cols.id.length) tradeTable(root, p.trades);
    }
    await loadPlotly();
    const drawn = [];  // ready once every chart is drawn (Plotly finishes some later)
    if (DATA.equity.ts.length) {
      drawn.push(equityChart($("equity-chart"), DATA.equity, DATA.benchmark));
    }
    for (const p of DATA.portfolios) {
      p.prices.forEach((s, i) => drawn.push(priceChart($(`price-${p.id}-${i}`), s, p.trades)));
    }
    await Promise.all(drawn);
    document.body.dataset.ready = "1";
  }
  main().catch((err) => {
    $("load-error").textContent = `charts could not be drawn: ${err}`;
    console.error(err);
  });
})();
