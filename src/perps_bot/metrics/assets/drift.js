// `perps-bot drift --format html`: the live and the paper equity curves, overlaid.
(async function () {
  const data = JSON.parse(document.getElementById("drift-data").textContent);
  await loadPlotly();
  // UTC wall times as text: Plotly draws a Date in the browser's own time zone, and
  // every other time of the page is UTC
  const utc = (ms) => new Date(ms).toISOString().slice(0, 23).replace("T", " ");
  const line = (c, name) => ({ type: "scatter", mode: "lines", name: name,
    x: c.ts.map(utc), y: c.equity });
  Plotly.newPlot("drift-chart", [line(data.live, "live"), line(data.paper, "paper (replay)")], {
    margin: { l: 70, r: 20, t: 20, b: 40 }, hovermode: "x unified",
    yaxis: { title: { text: "equity" } }, legend: { orientation: "h", y: 1.1 },
  }, { displaylogo: false, responsive: true });
  document.body.dataset.ready = "1";
})().catch((err) => { console.error(err); });
