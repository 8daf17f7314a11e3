//! `summary.md`: the verdict, run details, findings, warnings and notes, the per-scenario
//! table and, where the runs have them, the protocol stacks' table, in Markdown.

use std::fmt::Write as _;

use crate::charts::RenderedChart;
use crate::findings::{findings, notes, warnings};
use crate::group::Dataset;
use crate::stacks;
use crate::table::{self, Table};
use crate::verdict::verdict;

/// Writes a table in Markdown, numbers right-aligned, with a blank line after it.
fn write_table(md: &mut String, t: &Table) {
    let _ = writeln!(md, "| {} |", t.headings.join(" | "));
    let align: Vec<&str> = (0..t.headings.len())
        .map(|i| if t.is_numeric(i) { "---:" } else { "---" })
        .collect();
    let _ = writeln!(md, "| {} |", align.join(" | "));
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(md);
}

/// Escapes the characters that would break a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// One line describing where and how a dataset was measured.
pub fn run_line(d: &Dataset) -> String {
    let r = &d.results;
    let sha = r
        .tool
        .git_sha
        .as_deref()
        .map(|s| &s[..s.len().min(12)])
        .unwrap_or("unknown");
    format!(
        "suite `{}`, {} → {}, status {}; feedbench {} ({sha}); {} ({} cores, {}), kernel {}; target {}{}",
        r.suite,
        r.started_at,
        r.finished_at,
        r.status.as_str(),
        r.tool.version,
        r.host.cpu_model,
        r.host.cores,
        crate::format::bytes(r.host.memory_bytes as f64),
        r.host.kernel,
        r.target,
        if r.embedded_server { " (embedded server)" } else { "" }
    )
}

/// Renders the whole summary.
pub fn render(
    title: &str,
    datasets: &[Dataset],
    charts: &[RenderedChart],
    comparison: Option<&str>,
) -> String {
    let mut md = String::new();
    // Writing to a String cannot fail, so the results of writeln! are ignored below.
    let _ = writeln!(md, "# {title}\n");
    let v = verdict(datasets);
    if !v.sentences.is_empty() {
        let _ = writeln!(md, "## Verdict\n");
        for s in &v.sentences {
            let _ = writeln!(md, "- {s}");
        }
        let _ = writeln!(md);
    }
    for d in datasets {
        let heading = if datasets.len() > 1 {
            format!(" — {}", d.label)
        } else {
            String::new()
        };
        let _ = writeln!(md, "## Findings{heading}\n");
        let _ = writeln!(md, "Run: {}.\n", run_line(d));
        let f = findings(d);
        for s in &f.overall {
            let _ = writeln!(md, "- {s}");
        }
        let _ = writeln!(md);
        for (load, sentences) in &f.per_load {
            let _ = writeln!(md, "**At {load}:**\n");
            for s in sentences {
                let _ = writeln!(md, "- {s}");
            }
            let _ = writeln!(md);
        }
        let w = warnings(d);
        let _ = writeln!(md, "## Warnings{heading}\n");
        if w.is_empty() {
            let _ = writeln!(md, "None: no scenario carried a warning.\n");
        } else {
            for s in &w {
                let _ = writeln!(md, "- {s}");
            }
            let _ = writeln!(md);
        }
        let n = notes(d);
        if !n.is_empty() {
            let _ = writeln!(md, "Notes (informational, not problems):\n");
            for s in &n {
                let _ = writeln!(md, "- {s}");
            }
            let _ = writeln!(md);
        }
    }
    if let Some(comparison) = comparison {
        let _ = writeln!(md, "## Comparison\n\n{comparison}");
    }
    for d in datasets {
        let heading = if datasets.len() > 1 {
            format!(" — {}", d.label)
        } else {
            String::new()
        };
        let _ = writeln!(md, "## Scenarios{heading}\n");
        let _ = writeln!(md, "Medians over repeats.\n");
        write_table(&mut md, &table::table(d));
    }
    for d in datasets {
        let Some(t) = stacks::table(d) else { continue };
        let heading = if datasets.len() > 1 {
            format!(" — {}", d.label)
        } else {
            String::new()
        };
        let _ = writeln!(md, "## Protocol stacks{heading}\n");
        let _ = writeln!(md, "{}\n", stacks::TABLE_NOTE);
        write_table(&mut md, &t);
    }
    for d in datasets {
        let (Some(c), Some(t)) = (crate::capacity::of(d), crate::capacity::table(d)) else {
            continue;
        };
        let heading = if datasets.len() > 1 {
            format!(" — {}", d.label)
        } else {
            String::new()
        };
        let _ = writeln!(md, "## Capacity{heading}\n");
        let _ = writeln!(
            md,
            "{}\n\n{}\n",
            crate::capacity::describe(&c),
            crate::capacity::TABLE_NOTE
        );
        write_table(&mut md, &t);
    }
    let _ = writeln!(md, "## Charts\n");
    for c in charts {
        let _ = writeln!(
            md,
            "- [{}]({}.svg) ([PNG]({}.png))",
            c.title, c.stem, c.stem
        );
    }
    md
}
