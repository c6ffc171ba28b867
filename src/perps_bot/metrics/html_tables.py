"""Static HTML tables of the report: readable without scripts, byte-stable."""

from collections.abc import Mapping, Sequence
from html import escape

from perps_bot.domain import iso_utc
from perps_bot.metrics.breakdowns import Group, MonthReturn
from perps_bot.metrics.formatting import duration_text, money, percent
from perps_bot.metrics.positions import OpenPosition

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TITLES = {"symbol": "By symbol", "side": "By side", "exit_reason": "By exit reason"}


def cell(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{escape(text)}</td>"


def denials_table(denials: Mapping[str, int]) -> str:
    if not denials:
        return "<p>No risk denials.</p>"
    rows = "".join(
        f"<tr>{cell(code)}{cell(str(n), 'n')}</tr>" for code, n in sorted(denials.items())
    )
    return f"<table><tr><th>reason code</th><th>count</th></tr>{rows}</table>"


def breakdown_tables(groups: Mapping[str, Sequence[Group]]) -> str:
    if not any(groups.values()):
        return "<p>No closed trades.</p>"
    out = ['<div class="cols">']
    for by, rows in groups.items():
        body = "".join(
            "<tr>"
            + cell(g.key)
            + cell(str(g.trades), "n")
            + cell(percent(g.win_rate), "n")
            + cell(
                money(g.net_pnl), "n pass" if g.net_pnl > 0 else "n fail" if g.net_pnl < 0 else "n"
            )
            + cell(duration_text(g.avg_duration_s), "n")
            + "</tr>"
            for g in rows
        )
        out.append(
            f'<div><b>{_TITLES[by]}</b><table class="breakdown" data-by="{by}"><tr>'
            f"<th>{escape(by)}</th><th>trades</th><th>win rate</th><th>net PnL</th>"
            f"<th>avg duration</th></tr>{body}</table></div>"
        )
    out.append("</div>")
    return "".join(out)


def _heat(value: float | None) -> str:
    """Cell background: green for gains, red for losses, full colour at 10% a month."""
    if value is None:
        return ""
    strength = min(abs(value) / 10.0, 1.0)
    rgb = "22,163,74" if value >= 0 else "220,38,38"
    return f' style="background:rgba({rgb},{0.08 + 0.5 * strength:.2f})"'


def monthly_table(months: Sequence[MonthReturn]) -> str:
    """Years by months (UTC) of the account's return in percent, plus the year's."""
    if not months:
        return "<p>No equity rows.</p>"
    years: dict[str, dict[int, MonthReturn]] = {}
    for m in months:
        years.setdefault(m.month[:4], {})[int(m.month[5:7])] = m
    head = "".join(f"<th>{name}</th>" for name in _MONTHS)
    rows = []
    for year, by_month in years.items():
        cells = []
        for i in range(1, 13):
            entry = by_month.get(i)
            value = None if entry is None else entry.return_pct
            text = "" if value is None else f"{value:+.2f}%"
            cells.append(f"<td{_heat(value)}>{text}</td>")
        first = min(by_month.values(), key=lambda m: m.month).start_equity
        last = max(by_month.values(), key=lambda m: m.month).end_equity
        total = (last / first - 1.0) * 100.0 if first > 0 else None
        year_text = "n/a" if total is None else f"{total:+.2f}%"
        rows.append(
            f"<tr><th>{year}</th>{''.join(cells)}<td{_heat(total)}><b>{year_text}</b></td></tr>"
        )
    return f'<table class="month"><tr><th>year</th>{head}<th>year</th></tr>{"".join(rows)}</table>'


def open_positions_table(positions: Sequence[OpenPosition]) -> str:
    if not positions:
        return "<p>None: every position was flat at the end of the run.</p>"
    rows = "".join(
        "<tr>"
        + cell(p.symbol)
        + cell(p.side)
        + cell(f"{p.size:.8g}", "n")
        + cell(f"{p.entry_price:.8g}", "n")
        + cell("" if p.open_ts is None else _iso(p.open_ts))
        + cell("n/a" if p.last_price is None else f"{p.last_price:.8g}", "n")
        + cell(money(p.unrealized_pnl), "n")
        + "</tr>"
        for p in positions
    )
    return (
        '<table class="open-positions"><tr><th>symbol</th><th>side</th><th>size</th>'
        "<th>entry</th><th>opened (UTC)</th><th>last price</th><th>unrealized PnL</th></tr>"
        f"{rows}</table>"
    )


def _iso(ts: int) -> str:
    return iso_utc(ts)[:19].replace("T", " ")
