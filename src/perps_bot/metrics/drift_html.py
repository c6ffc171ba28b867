"""The drift report as one self-contained page: the summary, the fill model, the live and
paper equity curves overlaid (Plotly, inlined like the run report's), and every pair."""

from html import escape
from typing import Any

from perps_bot.domain import iso_utc
from perps_bot.metrics.drift import Drift, OrderFacts
from perps_bot.metrics.html import asset, page_script, plotly_gzip_base64
from perps_bot.metrics.html_data import script_json
from perps_bot.metrics.html_tables import cell


def shown(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _side(o: OrderFacts | None) -> str:
    if o is None:
        return '<td colspan="5" class="def">no order</td>'
    return "".join(
        cell(x)
        for x in (
            o.client_id,
            f"{o.filled:g}/{o.size:g}",
            shown(o.avg_price),
            shown(o.slippage_bps),
            shown(o.fee),
        )
    )


def render_drift_html(drift: Drift) -> str:
    summary = "".join(f"<tr>{cell(k)}{cell(shown(v))}</tr>" for k, v in drift.summary.items())
    model = "".join(f"<tr>{cell(k)}{cell(shown(v))}</tr>" for k, v in drift.fill_model.items())
    pairs = "".join(
        f"<tr>{cell(iso_utc((p.live or p.paper).created))}"  # type: ignore[union-attr]
        f"{cell(' '.join((p.live or p.paper).key))}"  # type: ignore[union-attr]
        f"{_side(p.live)}{_side(p.paper)}{cell(shown(p.slippage_drift_bps))}</tr>"
        for p in drift.pairs
    )
    data = {
        "live": {"ts": drift.live_curve[0], "equity": drift.live_curve[1]},
        "paper": {"ts": drift.paper_curve[0], "equity": drift.paper_curve[1]},
    }
    title = f"perps-bot drift: live {escape(drift.live_run)} against its replay"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f"<title>{title}</title><style>{asset('report.css')}</style></head><body>\n",
            f"<h1>{title}</h1>\n<p>replay {escape(drift.replay_run)}</p>",
            f"<h2>Summary</h2><table>{summary}</table>",
            f"<h2>Paper fill model</h2><table>{model}</table>",
            '<h2>Equity, live and paper</h2><div class="chart" id="drift-chart"></div>\n',
            '<h2>Orders, paired</h2><div class="scroll"><table><tr><th>created</th>'
            "<th>order</th><th>live id</th><th>filled</th><th>price</th><th>slip bps</th>"
            "<th>fee</th><th>paper id</th><th>filled</th><th>price</th><th>slip bps</th>"
            "<th>fee</th>"
            f"<th>drift bps</th></tr>{pairs}</table></div>\n",
            '<script type="application/json" id="drift-data">',
            script_json(data),
            '</script>\n<script type="application/octet-stream" id="plotly-gz">',
            plotly_gzip_base64(),
            "</script>\n",
            page_script("drift.js"),
            "\n</body></html>\n",
        ]
    )
