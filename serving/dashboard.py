"""The treasury and credit dashboard (``GET /dashboard``): one page, its vendored chart library, and the data.

The page and the chart library (Chart.js, vendored in ``serving/static`` with its licence) hold no company
data, so they are served without the token: a browser cannot put a bearer header on a page it navigates
to. The page asks for the token in a small form, keeps it in ``sessionStorage`` (gone when the tab closes)
and sends it as ``Authorization: Bearer`` on its one data request, ``GET /dashboard/data``, which needs the
token like every other endpoint (``serving.auth.PUBLIC_PATHS`` lists the data-free pages). The API docs
page (``/dashboard/api``) works the same way over ``/docs.json``. Nothing is loaded from another host.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.asof import as_of as view_as_of
from features.contract import Inv

STATIC = Path(__file__).with_name("static")
CHART_JS = "chart.umd.min.js"
KPI_NAMES = ("dso", "dpo", "dio", "ccc", "overdue_share")
AGING = ("aging_current", "aging_1-30", "aging_31-60", "aging_61-90", "aging_90+")


def _rows(frame: pd.DataFrame) -> list[dict]:
    from serving.schemas import records

    return records(frame, list(frame.columns))


def dashboard_data(state, versions_of=None, bridge_of=None, kpi_points: int = 6, top: int = 10) -> dict:
    """Everything the page shows, at the service's as-of: the forecast with its components, the latest saved
    forecast against actual, the bridge between the two latest saved ones, aging and KPIs over time, the top
    of the worklist and the customers most likely to pay late."""
    from features.working_capital import kpis, kpis_over_time
    from training.cash.forecast import forecast
    from training.collections import worklist
    from training.customers import customer_risk

    s = state
    fc = forecast(s.company, s.at, models=s.models.forecast, policy=s.policy)
    figures = kpis(s.company, s.at, policy=s.policy).set_index("name")["value"]
    dates = [s.at - pd.Timedelta(weeks=4 * k) for k in range(kpi_points - 1, -1, -1)]
    first = view_as_of(s.company, s.at)[Inv.TABLE][Inv.ISSUE].min()
    over_time = kpis_over_time(s.company, [d for d in dates if d > first + pd.Timedelta(days=90)], s.policy)
    over_time = over_time[[k for k in KPI_NAMES if k in over_time.columns]].reset_index()
    work = worklist(s.company, s.at, top, s.policy, models=(s.models.late, s.models.timing))
    risk = customer_risk(s.company, s.at, models=s.models.customers, policy=s.policy)
    risk = risk.sort_values("p_late_next", ascending=False, kind="stable").head(top)
    out = {"company": s.company_key, "as_of": f"{s.at:%Y-%m-%d}", "cash_floor": s.policy.cash_floor,
           "forecast": _rows(fc), "aging": [{"bucket": a.removeprefix("aging_"), "amount": float(figures.get(a, 0))}
                                            for a in AGING],
           "kpis": _rows(over_time), "worklist": _rows(work), "customers_at_risk": _rows(risk),
           "variance": [], "variance_version": None, "bridge": [], "bridge_versions": None}
    saved = versions_of(s.company_key) if versions_of else pd.DataFrame(columns=["version", "as_of"])
    passed = saved[pd.to_datetime(saved["as_of"]) + pd.Timedelta(days=7) <= s.at]
    if len(passed) and bridge_of is not None:
        first_v = passed["version"].iloc[0 if len(passed) > 1 else -1]
        out["variance"], out["variance_version"] = bridge_of("variance", first_v, None), first_v
        if len(saved) > 1:
            later = saved["version"].iloc[-1]
            if later != first_v:
                out["bridge"], out["bridge_versions"] = bridge_of("bridge", first_v, later), [first_v, later]
    return out


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>likvid: treasury and credit</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#222}
header{background:#1f3a5f;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#cde}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:14px;padding:14px}
section{background:#fff;border-radius:6px;padding:12px;box-shadow:0 1px 3px #0002}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%;font-size:12px}
td,th{padding:3px 6px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}
#token-form{display:none;gap:6px}#status{font-size:12px}.note{color:#a40;font-size:12px}
</style></head><body>
<header><strong>likvid</strong><span id="company"></span><span id="asof"></span>
<form id="token-form"><input id="token" type="password" placeholder="API token" autocomplete="off">
<button type="submit">Use token</button></form><span id="status"></span><a href="/dashboard/api">API docs</a></header>
<main>
<section id="fan"><h2>13-week cash forecast (balance p10 / p50 / p90) and components</h2>
<canvas id="fan-chart" height="150"></canvas><p class="note" id="opening-note"></p>
<canvas id="components-chart" height="110"></canvas></section>
<section id="variance"><h2>Forecast against actual (receipts)</h2><p id="variance-version"></p>
<canvas id="variance-chart" height="150"></canvas></section>
<section id="bridge"><h2>Bridge: what moved the balance</h2><p id="bridge-versions"></p>
<canvas id="bridge-chart" height="150"></canvas></section>
<section id="aging"><h2>Aging of open receivables</h2><canvas id="aging-chart" height="150"></canvas></section>
<section id="kpis"><h2>KPIs over time</h2><canvas id="kpi-chart" height="150"></canvas></section>
<section id="worklist"><h2>Worklist: act first</h2><table id="worklist-table"></table></section>
<section id="risk"><h2>Customers at risk</h2><table id="risk-table"></table></section>
</main>
<script src="/dashboard/chart.umd.min.js"></script>
<script>
const KEY = "likvid-token";
const fmt = v => v == null ? "" : (typeof v === "number" ? v.toLocaleString("en", {maximumFractionDigits: 2}) : v);
const status = t => { document.getElementById("status").textContent = t; };
function table(id, rows, cols) {
  const t = document.getElementById(id);
  t.innerHTML = "<tr>" + cols.map(c => "<th>" + c + "</th>").join("") + "</tr>" + rows.map(r =>
    "<tr>" + cols.map(c => "<td>" + fmt(r[c]) + "</td>").join("") + "</tr>").join("");
}
function line(id, labels, sets, type) {
  return new Chart(document.getElementById(id), {type: type || "line", data: {labels, datasets: sets},
    options: {animation: false, responsive: true, plugins: {legend: {position: "bottom"}}}});
}
function draw(d) {
  document.getElementById("company").textContent = "company " + d.company;
  document.getElementById("asof").textContent = "as of " + d.as_of;
  const f = d.forecast, weeks = f.map(r => r.week_end);
  line("fan-chart", weeks, [
    {label: "p90", data: f.map(r => r.balance_p90), borderColor: "#9bc", fill: false},
    {label: "p50", data: f.map(r => r.balance_p50), borderColor: "#1f3a5f"},
    {label: "p10", data: f.map(r => r.balance_p10), borderColor: "#c66", fill: "-2", backgroundColor: "#9bc3"},
    {label: "cash floor", data: f.map(() => d.cash_floor), borderColor: "#a00", borderDash: [4, 4]}]);
  document.getElementById("opening-note").textContent = f.length ? f[0].opening_note : "";
  line("components-chart", weeks, ["ar_open", "ar_future", "ap_open", "ap_future", "other"].map((c, i) => ({
    label: c, data: f.map(r => c.startsWith("ap") ? -r[c] : r[c]),
    backgroundColor: ["#2a7", "#7c9", "#c54", "#e98", "#888"][i]})), "bar");
  document.getElementById("variance-version").textContent = d.variance_version ?
    "saved forecast " + d.variance_version.slice(0, 8) : "no saved forecast has a passed week yet";
  const v = d.variance;
  line("variance-chart", v.map(r => r.week_end), [
    {label: "p10", data: v.map(r => r.inflow_p10), borderColor: "#9bc"},
    {label: "p50", data: v.map(r => r.inflow_p50), borderColor: "#1f3a5f"},
    {label: "p90", data: v.map(r => r.inflow_p90), borderColor: "#9bc"},
    {label: "actual", data: v.map(r => r.inflow_actual), borderColor: "#000", showLine: false, pointRadius: 5}]);
  const b = d.bridge, last = b.length ? b[b.length - 1].week_end : null, lb = b.filter(r => r.week_end === last);
  document.getElementById("bridge-versions").textContent = d.bridge_versions ?
    d.bridge_versions.map(x => x.slice(0, 8)).join(" \\u2192 ") + ", week ending " + last : "needs two saved forecasts";
  let run = 0;
  line("bridge-chart", lb.map(r => r.cause), [{label: "change in p50 balance", data: lb.map(r => {
    const bar = [run, run + r.amount]; run += r.amount; return bar; }),
    backgroundColor: lb.map(r => r.amount >= 0 ? "#2a7" : "#c54")}], "bar");
  line("aging-chart", d.aging.map(r => r.bucket), [{label: "open AR", data: d.aging.map(r => r.amount),
    backgroundColor: "#1f3a5f"}], "bar");
  const k = d.kpis;
  line("kpi-chart", k.map(r => r.as_of), ["dso", "dpo", "dio", "ccc"].filter(c => k.length && c in k[0]).map(c => (
    {label: c.toUpperCase(), data: k.map(r => r[c])})));
  table("worklist-table", d.worklist, ["rank", "invoice_id", "customer_id", "amount_open", "days_overdue", "action"]);
  table("risk-table", d.customers_at_risk, ["customer_id", "credit_grade", "p_late_next", "open_amount",
    "overdue_amount"]);
  document.body.dataset.loaded = "yes";
  status("");
}
async function load() {
  const token = sessionStorage.getItem(KEY);
  status("loading\\u2026");
  const r = await fetch("/dashboard/data", {headers: token ? {Authorization: "Bearer " + token} : {}});
  if (r.status === 401) {
    document.getElementById("token-form").style.display = "flex";
    status(token ? "that token was refused" : "this service needs its API token");
    return;
  }
  if (!r.ok) { status("the service answered " + r.status); return; }
  document.getElementById("token-form").style.display = "none";
  draw(await r.json());
}
document.getElementById("token-form").addEventListener("submit", e => {
  e.preventDefault();
  sessionStorage.setItem(KEY, document.getElementById("token").value);
  load();
});
load();
</script></body></html>
"""

API_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>likvid API</title><link rel="icon" href="data:,">
<style>body{font-family:system-ui,sans-serif;margin:20px;max-width:1000px}code{background:#eee;padding:1px 4px}
.ep{border-top:1px solid #ddd;padding:8px 0}</style></head><body>
<h1>likvid API</h1><p><a href="/dashboard">dashboard</a></p>
<form id="token-form" style="display:none"><input id="token" type="password" placeholder="API token">
<button>Use token</button></form><p id="status"></p><div id="api"></div>
<script>
const KEY = "likvid-token";
const esc = s => String(s == null ? "" : s).replace(/[&<>]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;"}[c]));
async function load() {
  const token = sessionStorage.getItem(KEY);
  const r = await fetch("/docs.json", {headers: token ? {Authorization: "Bearer " + token} : {}});
  if (r.status === 401) { document.getElementById("token-form").style.display = "block";
    document.getElementById("status").textContent = "this service needs its API token"; return; }
  const spec = await r.json();
  document.getElementById("token-form").style.display = "none";
  document.getElementById("status").textContent = spec.info.title + " " + spec.info.version;
  const html = [];
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    html.push("<div class='ep'><code>" + method.toUpperCase() + " " + esc(path) + "</code> " + esc(op.summary) +
      "<p>" + esc(op.description) + "</p></div>");
  }
  document.getElementById("api").innerHTML = html.join("");
}
document.getElementById("token-form").addEventListener("submit", e => { e.preventDefault();
  sessionStorage.setItem(KEY, document.getElementById("token").value); load(); });
load();
</script></body></html>
"""
