//! `index.html`: one self-contained page with the verdict, the findings, warnings and notes,
//! every chart as inline SVG, the scenario tables and, where the runs have them, the
//! protocol stacks' tables.
//!
//! Architecture invariant: the page loads nothing. CSS is inline, SVGs are inlined (their
//! namespace attribute dropped, which HTML does not need), there is no script, and the
//! only links are relative ones to the chart files beside it, so it opens from disk on a
//! machine with no network.

use std::fmt::Write as _;

use crate::charts::{ChartKind, RenderedChart};
use crate::findings::{findings, notes, warnings};
use crate::group::Dataset;
use crate::stacks;
use crate::summary::run_line;
use crate::table::{self, Table};
use crate::verdict::verdict;

/// The page's style sheet.
const CSS: &str = "\
body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:0 auto;max-width:1600px;padding:0 24px 48px;color:#222;background:#fff;line-height:1.45}
h1{font-size:1.6em;margin:24px 0 4px}h2{font-size:1.3em;margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:1.05em;margin:20px 0 6px}p.run{color:#555;font-size:.9em;margin:2px 0}
nav{font-size:.9em;margin:12px 0}nav a{margin-right:14px}
ul.warnings li{color:#8a4b00}
figure{margin:12px 0 28px}figure svg{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.85em;margin:8px 0 24px}
th,td{border:1px solid #ddd;padding:3px 8px;white-space:nowrap}th{background:#f4f4f4;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
details summary{cursor:pointer;margin:8px 0}
.comparison{overflow-x:auto}
";

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Prepares a plotters SVG document for inlining: no XML declaration, no namespace URL,
/// and an accessible name.
pub fn inline_svg(svg: &str, title: &str) -> String {
    let body = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    let body = body.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    body.replacen(
        "<svg",
        &format!("<svg role=\"img\" aria-label=\"{}\"", escape(title)),
        1,
    )
}

/// Renders the page. `comparison_html` is an already-rendered compare section, if any.
pub fn render(
    title: &str,
    datasets: &[Dataset],
    charts: &[RenderedChart],
    comparison_html: Option<&str>,
) -> String {
    let mut h = String::new();
    // Writing to a String cannot fail, so the results of write! are ignored below.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{t}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         <h1>{t}</h1>\n",
        t = escape(title)
    );
    for d in datasets {
        let _ = writeln!(
            h,
            "<p class=\"run\"><strong>{}</strong>: {}</p>",
            escape(&d.label),
            escape(&run_line(d))
        );
    }
    let v = verdict(datasets);
    let _ = write!(h, "<nav>");
    if !v.sentences.is_empty() {
        let _ = write!(h, "<a href=\"#verdict\">Verdict</a>");
    }
    let _ = write!(
        h,
        "<a href=\"#findings\">Findings</a><a href=\"#warnings\">Warnings</a>"
    );
    for kind in ChartKind::ALL
        .iter()
        .filter(|k| charts.iter().any(|c| c.kind == **k))
    {
        let _ = write!(
            h,
            "<a href=\"#{}\">{}</a>",
            anchor(*kind),
            escape(kind.heading())
        );
    }
    if comparison_html.is_some() {
        let _ = write!(h, "<a href=\"#comparison\">Comparison</a>");
    }
    let _ = write!(h, "<a href=\"#scenarios\">Scenarios</a>");
    if datasets.iter().any(|d| stacks::table(d).is_some()) {
        let _ = write!(h, "<a href=\"#protocol-stacks\">Protocol stacks</a>");
    }
    let _ = writeln!(h, "</nav>");

    if !v.sentences.is_empty() {
        let _ = writeln!(h, "<h2 id=\"verdict\">Verdict</h2>\n<ul>");
        for s in &v.sentences {
            let _ = writeln!(h, "<li>{}</li>", escape(s));
        }
        let _ = writeln!(h, "</ul>");
    }
    let _ = writeln!(h, "<h2 id=\"findings\">Findings</h2>");
    for d in datasets {
        if datasets.len() > 1 {
            let _ = writeln!(h, "<h3>{}</h3>", escape(&d.label));
        }
        let f = findings(d);
        let _ = writeln!(h, "<ul>");
        for s in &f.overall {
            let _ = writeln!(h, "<li>{}</li>", escape(s));
        }
        let _ = writeln!(h, "</ul>");
        for (load, sentences) in &f.per_load {
            let _ = writeln!(h, "<p><strong>At {}:</strong></p>\n<ul>", escape(load));
            for s in sentences {
                let _ = writeln!(h, "<li>{}</li>", escape(s));
            }
            let _ = writeln!(h, "</ul>");
        }
    }

    let _ = writeln!(h, "<h2 id=\"warnings\">Warnings</h2>");
    for d in datasets {
        if datasets.len() > 1 {
            let _ = writeln!(h, "<h3>{}</h3>", escape(&d.label));
        }
        let w = warnings(d);
        if w.is_empty() {
            let _ = writeln!(h, "<p>None: no scenario carried a warning.</p>");
        } else {
            let _ = writeln!(h, "<ul class=\"warnings\">");
            for s in &w {
                let _ = writeln!(h, "<li>{}</li>", escape(s));
            }
            let _ = writeln!(h, "</ul>");
        }
        // Notes read as plain text, not in the warnings' colour: they are not problems.
        let n = notes(d);
        if !n.is_empty() {
            let _ = writeln!(
                h,
                "<p>Notes (informational, not problems):</p>\n<ul class=\"notes\">"
            );
            for s in &n {
                let _ = writeln!(h, "<li>{}</li>", escape(s));
            }
            let _ = writeln!(h, "</ul>");
        }
    }

    for kind in ChartKind::ALL {
        let of_kind: Vec<&RenderedChart> = charts.iter().filter(|c| c.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<h2 id=\"{}\">{}</h2>\n<p>{}</p>",
            anchor(kind),
            escape(kind.heading()),
            escape(kind.explanation())
        );
        for c in of_kind {
            let _ = writeln!(
                h,
                "<figure id=\"{stem}\">\n{svg}\n<figcaption>{title} — <a href=\"{stem}.svg\">SVG</a> · \
                 <a href=\"{stem}.png\">PNG</a></figcaption>\n</figure>",
                stem = escape(&c.stem),
                svg = inline_svg(&c.svg, &c.title),
                title = escape(&c.title)
            );
        }
    }

    if let Some(c) = comparison_html {
        let _ = writeln!(
            h,
            "<h2 id=\"comparison\">Comparison</h2>\n<div class=\"comparison\">{c}</div>"
        );
    }

    let _ = writeln!(
        h,
        "<h2 id=\"scenarios\">Scenarios</h2>\n<p>Medians over repeats.</p>"
    );
    for d in datasets {
        if datasets.len() > 1 {
            let _ = writeln!(h, "<h3>{}</h3>", escape(&d.label));
        }
        write_table(&mut h, &table::table(d));
    }
    let stack_tables: Vec<(&Dataset, Table)> = datasets
        .iter()
        .filter_map(|d| stacks::table(d).map(|t| (d, t)))
        .collect();
    if !stack_tables.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"protocol-stacks\">Protocol stacks</h2>\n<p>{}</p>",
            escape(stacks::TABLE_NOTE)
        );
    }
    for (d, t) in &stack_tables {
        if datasets.len() > 1 {
            let _ = writeln!(h, "<h3>{}</h3>", escape(&d.label));
        }
        write_table(&mut h, t);
    }
    write_capacity_tables(&mut h, datasets);
    let _ = writeln!(h, "</body>\n</html>");
    h
}

/// The "Capacity" section: per dataset with a capacity, its SLO and the table.
fn write_capacity_tables(h: &mut String, datasets: &[Dataset]) {
    let with: Vec<(&Dataset, feedbench_results::Capacity, Table)> = datasets
        .iter()
        .filter_map(|d| Some((d, crate::capacity::of(d)?, crate::capacity::table(d)?)))
        .collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"capacity-table\">Capacity</h2>\n<p>{}</p>",
        escape(crate::capacity::TABLE_NOTE)
    );
    for (d, c, t) in &with {
        if datasets.len() > 1 {
            let _ = writeln!(h, "<h3>{}</h3>", escape(&d.label));
        }
        let _ = writeln!(h, "<p>{}</p>", escape(&crate::capacity::describe(c)));
        write_table(h, t);
    }
}

/// Writes a table, numbers right-aligned.
fn write_table(h: &mut String, t: &Table) {
    let _ = write!(h, "<table>\n<tr>");
    for heading in &t.headings {
        let _ = write!(h, "<th>{}</th>", escape(heading));
    }
    let _ = writeln!(h, "</tr>");
    for row in &t.rows {
        let _ = write!(h, "<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if t.is_numeric(i) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(h, "<td{class}>{}</td>", escape(c));
        }
        let _ = writeln!(h, "</tr>");
    }
    let _ = writeln!(h, "</table>");
}

/// The in-page anchor of a chart section.
fn anchor(kind: ChartKind) -> &'static str {
    match kind {
        ChartKind::LatencySpectrum => "latency-spectrum",
        ChartKind::LatencyVsClients => "latency-vs-clients",
        ChartKind::BytesPerEvent => "bytes-per-event",
        ChartKind::Bandwidth => "bandwidth",
        ChartKind::ServerCost => "server-cost",
        ChartKind::Polling => "polling",
        ChartKind::LatencyVsRtt => "latency-vs-rtt",
        ChartKind::ProtocolLayers => "protocol-layers",
        ChartKind::Capacity => "capacity",
        ChartKind::VsRate => "vs-rate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn inline_svg_drops_the_namespace_url() {
        let svg = "<svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\" xmlns=\"http://www.w3.org/2000/svg\">\n</svg>";
        let inlined = inline_svg(svg, "a <chart>");
        assert!(!inlined.contains("http"));
        assert!(inlined.starts_with("<svg role=\"img\" aria-label=\"a &lt;chart&gt;\" width"));
    }
}
