"""The HTML page's inline CSS and JavaScript (constants; :mod:`~mtlbench.leaderboard.render_html`).

The script is a progressive enhancement: sortable columns and a method filter. Without it
the page shows the same tables in their default order. Badge colours meet WCAG AA (text
contrast >= 4.5:1 on the badge background; ``tests/leaderboard/test_page.py`` checks it).
"""

from __future__ import annotations

__all__ = ["BADGE_COLORS", "CSS", "SCRIPT"]

#: verdict badge class -> (text colour, background colour)
BADGE_COLORS = {
    "b-pass": ("#0b5d27", "#e3f3e8"),
    "b-fail": ("#9b1c1c", "#fde9e7"),
    "b-inconclusive": ("#464e5c", "#eceef2"),
    "b-insufficient": ("#7a3f00", "#fff0d4"),
    "b-ref": ("#154a86", "#e4eefb"),
}

_BADGES = "\n".join(
    f".{cls} {{ color:{fg}; background:{bg}; border-color:{fg}33; }}"
    for cls, (fg, bg) in BADGE_COLORS.items()
)

CSS = (
    """
:root { --fg:#1d2330; --muted:#545d70; --line:#e3e6ec; --bg:#ffffff; --soft:#f6f7f9; --accent:#1d5fa8; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust:100%; }
body { margin:0; font:14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--fg); background:var(--bg); overflow-wrap:anywhere; }
header { background:#18202e; color:#fff; padding:20px 0 16px; }
header h1 { margin:0; font-size:24px; font-weight:650; }
header p { margin:4px 0 0; color:#d3d9e4; max-width:900px; }
.wrap { max-width:1320px; margin:0 auto; padding:0 24px; }
main { padding:4px 0 48px; }
h2 { font-size:20px; margin:28px 0 6px; padding-top:8px; border-top:1px solid var(--line); }
section:first-child > h2 { border-top:none; margin-top:12px; }
h3 { font-size:15px; margin:18px 0 8px; color:var(--muted); font-weight:600; }
p.lead, p.note { color:var(--muted); margin:4px 0 10px; max-width:980px; }
a { color:var(--accent); }
nav { margin:10px 0 0; font-size:13px; display:flex; flex-wrap:wrap; gap:4px 14px; }
nav a { color:#a9cbff; text-decoration:none; } nav a:hover { text-decoration:underline; }
.params { display:grid; grid-template-columns:max-content minmax(0, 1fr); gap:2px 18px; font-size:13px;
          background:var(--soft); border:1px solid var(--line); border-radius:8px; padding:12px 16px; margin:8px 0; }
.params dt { color:var(--muted); } .params dd { margin:0; }
.first { display:grid; grid-template-columns:minmax(0, 1fr); gap:16px; align-items:start; }
@media (min-width: 1180px) { .first { grid-template-columns:minmax(0, 3fr) minmax(0, 2fr); } }
.scroll { overflow-x:auto; max-width:100%; border:1px solid var(--line); border-radius:8px; }
table { border-collapse:collapse; width:100%; font-size:13px; font-variant-numeric:tabular-nums; }
caption { caption-side:top; text-align:left; padding:8px 10px; color:var(--muted); font-size:12.5px;
          background:var(--soft); border-bottom:1px solid var(--line); white-space:normal; }
th, td { padding:5px 9px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap;
         vertical-align:top; }
thead th { background:var(--soft); font-weight:600; color:#2c3445; vertical-align:bottom; }
tbody th { font-weight:normal; text-align:left; background:#fff; position:sticky; left:0; z-index:1; }
td.l, th.l { text-align:left; } td.c, th.c { text-align:center; }
td.wrap { white-space:normal; min-width:220px; text-align:left; }
th.across, td.across { border-left:2px solid var(--line); }
tbody tr:last-child td, tbody tr:last-child th { border-bottom:none; }
tr.ref td, tr.ref th { background:#f2f6fb; }
code, .mono { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12px; }
.m a { font-weight:600; text-decoration:none; } .m a:hover { text-decoration:underline; }
.m .name { font-weight:600; }
.ver { color:var(--muted); }
.who { display:block; color:var(--muted); font-size:12px; }
.tag { display:inline-block; margin-left:6px; padding:0 6px; border-radius:4px; font-size:11px;
       font-weight:600; color:#154a86; background:#e4eefb; }
.badge { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; font-weight:650;
         border:1px solid transparent; }
"""
    + _BADGES
    + """
td.v { text-align:left; }
.detail { display:block; font-size:12px; color:var(--fg); }
.detail .ci { color:var(--muted); }
.lvl { font-size:12px; color:var(--muted); }
.plots { display:grid; grid-template-columns:repeat(auto-fit, minmax(min(100%, 480px), 1fr)); gap:14px; margin:14px 0; }
.plots figure.wide { grid-column:1 / -1; }
figure { margin:0; border:1px solid var(--line); border-radius:8px; padding:8px; background:#fff; min-width:0; }
figure img { width:100%; height:auto; display:block; }
figure.wide .pan { overflow-x:auto; } figure.wide img { min-width:720px; }
figcaption { color:var(--muted); font-size:12px; margin-top:4px; }
details { margin:10px 0; } summary { cursor:pointer; color:var(--accent); font-weight:600; font-size:13px; }
ul.notes { margin:6px 0; padding-left:20px; color:var(--muted); font-size:13px; }
.tools { margin:6px 0 10px; font-size:13px; }
.tools input { font:inherit; padding:3px 8px; border:1px solid #9aa3b2; border-radius:6px; max-width:100%; }
button.sort { all:unset; cursor:pointer; } button.sort:focus-visible { outline:2px solid var(--accent); }
th[aria-sort=ascending] button.sort::after { content:" ▲"; } th[aria-sort=descending] button.sort::after { content:" ▼"; }
footer { color:var(--muted); font-size:12px; border-top:1px solid var(--line); padding:18px 0 30px; }
@media (max-width: 600px) { .wrap { padding:0 12px; } header h1 { font-size:21px; }
  .params { grid-template-columns:minmax(0, 1fr); } .params dd { margin-bottom:6px; }
  header { padding:14px 0 12px; } header p { font-size:13px; } h2 { font-size:18px; }
  th, td { padding:5px 6px; }
  tbody th.m { white-space:normal; min-width:112px; max-width:136px; }
  .tag { margin-left:0; } .detail { white-space:normal; min-width:120px; } }
"""
)

SCRIPT = """
(function () {
  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v === null) return cell.textContent.trim().toLowerCase();
    var f = parseFloat(v);
    return isNaN(f) ? null : f;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, i) {
      var b = document.createElement("button");
      b.type = "button"; b.className = "sort";
      while (th.firstChild) b.appendChild(th.firstChild);
      th.appendChild(b);
      b.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, c) {
          var x = key(a.cells[i]), y = key(c.cells[i]);
          if (x === null || y === null) return (x === null) - (y === null);  /* missing last */
          var r = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var input = document.getElementById("filter");
  if (input) {
    input.closest(".tools").hidden = false;
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      document.querySelectorAll("table.filterable tbody tr").forEach(function (r) {
        r.hidden = q !== "" && r.cells[0].textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  }
})();
"""
