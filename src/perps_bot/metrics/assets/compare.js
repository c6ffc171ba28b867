// `perps-bot runs compare --format html`: the runs' returns since their start, overlaid.
(async function () {
  const data = JSON.parse(document.getElementById("compare-data").textContent);
  await loadPlotly();
  Plotly.newPlot("compare-chart", data.curves.map((c) => ({ type: "scatter", mode: "lines",
    name: c.name, x: c.days, y: c.return_pct })), {
    margin: { l: 60, r: 20, t: 20, b: 40 }, hovermode: "x unified",
    xaxis: { title: { text: "days since the run's start" } },
    yaxis: { title: { text: "return %" } }, legend: { orientation: "h", y: 1.1 },
  }, { displaylogo: false, responsive: true });
  document.body.dataset.ready = "1";
})().catch((err) => { console.error(err); });
