"use strict";
// plotly.min.js is inlined gzip-compressed and base64-encoded (#plotly-gz); unpack it
// with the browser's DecompressionStream and run it, so the page needs no network.
async function loadPlotly() {
  const bin = atob(document.getElementById("plotly-gz").textContent.trim());
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const script = document.createElement("script");
  script.textContent = await new Response(stream).text();
  document.head.appendChild(script);
  if (!window.Plotly) throw new Error("plotly did not start");
}
