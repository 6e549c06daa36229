"""The report as one offline page: the markdown's tables sortable by column, figures inlined as
data URLs; nothing is loaded from the network."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

def _inline(text: str) -> str:
    """Escaped text with the report's inline markdown: `code` and **bold**."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


SORT_SCRIPT = """
document.querySelectorAll("table").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var ascending = th.dataset.order !== "asc";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = ascending ? "asc" : "desc";
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var text = row.cells[column].textContent.trim(), number = parseFloat(text);
        return text === "-" ? -Infinity : (isNaN(number) ? text.toLowerCase() : number);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x > y ? 1 : x < y ? -1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.8em 0 1.6em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #eef1f5; cursor: pointer; position: sticky; top: 0; }
th[data-order="asc"]::after { content: " \\25B2"; } th[data-order="desc"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
code { background: #f3f3f3; padding: 0 3px; }
"""


def html_page(markdown_text: str, figures_dir: Path) -> str:
    """``metrics/report.html``: the markdown report as one offline page, tables sortable by
    column, figures inlined as data URLs; nothing is loaded from the network."""
    body: list[str] = []
    lines = markdown_text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            header, rows = block[0], [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            body.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in header) + "</tr></thead><tbody>")
            for row in rows:
                cells = "".join(f'<td class="num">{_inline(c)}</td>' if re.fullmatch(r"[-+]?[\d.]+%?|-", c) else f"<td>{_inline(c)}</td>" for c in row)
                body.append(f"<tr>{cells}</tr>")
            body.append("</tbody></table>")
            continue
        figure = re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line)
        heading = re.match(r"(#+) (.*)", line)
        if figure:
            data = base64.b64encode((figures_dir / Path(figure.group(2)).name).read_bytes()).decode()
            body.append(f'<p><img alt="{html.escape(figure.group(1))}" src="data:image/png;base64,{data}"></p>')
        elif heading:
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>robust: results</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + f"\n<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n")
