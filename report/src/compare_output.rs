//! The gate's outputs: a Markdown table for a pull-request comment, github-action-benchmark
//! `customSmallerIsBetter` JSON, and Bencher Metric Format (BMF) JSON.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::compare::{Comparison, Row, Verdict};
use crate::format;
use crate::group::Spread;

/// A value cell: the median, with the range and count when there are several repeats.
fn value_cell(spread: Option<Spread>, show: fn(f64) -> String) -> String {
    match spread {
        None => "–".to_string(),
        Some(s) if s.n == 1 => show(s.median),
        Some(s) if s.min == s.max => format!("{} (n={})", show(s.median), s.n),
        Some(s) => format!(
            "{} ({}–{}, n={})",
            show(s.median),
            show(s.min),
            show(s.max),
            s.n
        ),
    }
}

/// The verdict cell, emphasised when it needs attention.
fn verdict_cell(v: Verdict) -> String {
    match v {
        Verdict::Regression => "**regression**".to_string(),
        Verdict::Inconclusive => "*inconclusive*".to_string(),
        other => other.as_str().to_string(),
    }
}

fn md_row(r: &Row) -> String {
    format!(
        "| `{}` | {} | {} | {} | {} | {} ({}) |",
        r.scenario,
        r.metric,
        value_cell(r.baseline, r.show),
        value_cell(r.candidate, r.show),
        r.change
            .map(format::change)
            .unwrap_or_else(|| "–".to_string()),
        verdict_cell(r.verdict),
        r.reason.replace('|', "\\|")
    )
}

const MD_HEAD: &str =
    "| scenario | metric | baseline | candidate | change | verdict |\n|---|---|---:|---:|---:|---|";

/// The one-line outcome: `1 regression · 2 inconclusive · 30 ok`.
pub fn headline(c: &Comparison) -> String {
    let parts: Vec<String> = [
        Verdict::Regression,
        Verdict::Inconclusive,
        Verdict::Improved,
        Verdict::Ok,
        Verdict::OnlyBaseline,
        Verdict::OnlyCandidate,
    ]
    .iter()
    .filter_map(|v| {
        let n = c.count(*v);
        (n > 0).then(|| match v {
            Verdict::Regression if n > 1 => format!("{n} regressions"),
            _ => format!("{n} {}", v.as_str()),
        })
    })
    .collect();
    parts.join(" · ")
}

/// Markdown for a pull-request comment: outcome, the rows that need attention, and every
/// row folded away below.
pub fn markdown(c: &Comparison) -> String {
    let mut md = String::new();
    let outcome = if c.failed() { "❌ fail" } else { "✅ pass" };
    // Writing to a String cannot fail, so the results of writeln! are ignored below.
    let _ = writeln!(md, "### feedbench compare: {outcome} — {}\n", headline(c));
    let o = &c.options;
    let _ = writeln!(
        md,
        "Baseline `{}`, candidate `{}`. Exact metrics (bytes, requests, missed events) fail beyond ±{}; \
         counts (server socket calls and allocations per event) beyond the repeats' spread plus {}; \
         noisy ones (latency, server CPU, context switches and memory) beyond the repeats' noise plus {} for medians and {} \
         for p99; counts and noisy ones need {} repeats a side{}.\n",
        c.baseline_label,
        c.candidate_label,
        format::percent(o.exact_tolerance),
        format::percent(o.count_tolerance),
        format::percent(o.min_effect_median),
        format::percent(o.min_effect_p99),
        o.min_repeats,
        if o.strict { "; `--strict`: inconclusive fails" } else { "" }
    );
    let notable: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| {
            matches!(
                r.verdict,
                Verdict::Regression | Verdict::Inconclusive | Verdict::Improved
            )
        })
        .collect();
    if notable.is_empty() {
        let _ = writeln!(md, "Every compared figure is within tolerance.\n");
    } else {
        let mut notable = notable;
        notable.sort_by_key(|r| r.verdict);
        let _ = writeln!(md, "{MD_HEAD}");
        for r in notable {
            let _ = writeln!(md, "{}", md_row(r));
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "<details><summary>All {} rows</summary>\n\n{MD_HEAD}",
        c.rows.len()
    );
    for r in &c.rows {
        let _ = writeln!(md, "{}", md_row(r));
    }
    let _ = writeln!(md, "\n</details>");
    md
}

/// github-action-benchmark's `customSmallerIsBetter` input: the candidate's medians.
pub fn github_action_benchmark(c: &Comparison) -> Value {
    let entries: Vec<Value> = c
        .rows
        .iter()
        .filter_map(|r| {
            let cand = r.candidate?;
            let mut e = json!({
                "name": format!("{} / {}", r.scenario, r.metric),
                "unit": r.unit,
                "value": cand.median,
                "extra": format!(
                    "baseline {}; change {}; verdict {} ({}); n={}",
                    value_cell(r.baseline, r.show),
                    r.change.map(format::change).unwrap_or_else(|| "–".to_string()),
                    r.verdict,
                    r.reason,
                    cand.n
                ),
            });
            if cand.n > 1 {
                e["range"] = json!(format!("± {}", format::sig3((cand.max - cand.min) / 2.0)));
            }
            Some(e)
        })
        .collect();
    Value::Array(entries)
}

/// Bencher Metric Format: `{benchmark: {measure: {value, lower_value, upper_value}}}`.
pub fn bencher_bmf(c: &Comparison) -> Value {
    let mut benchmarks = Map::new();
    for r in &c.rows {
        let Some(cand) = r.candidate else { continue };
        if r.metric_id.is_empty() {
            continue;
        }
        let measures = benchmarks
            .entry(r.scenario.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = measures {
            m.insert(
                r.metric_id.to_string(),
                json!({"value": cand.median, "lower_value": cand.min, "upper_value": cand.max}),
            );
        }
    }
    Value::Object(benchmarks)
}

/// A compact HTML rendering of the notable rows, for the report page.
pub fn html(c: &Comparison) -> String {
    use crate::html::escape;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<p><strong>{}</strong> — candidate {} vs baseline {}.</p>",
        escape(&headline(c)),
        escape(&c.candidate_label),
        escape(&c.baseline_label)
    );
    let notable: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| {
            matches!(
                r.verdict,
                Verdict::Regression | Verdict::Inconclusive | Verdict::Improved
            )
        })
        .collect();
    if !notable.is_empty() {
        html_table(&mut h, notable);
    }
    let _ = writeln!(h, "<details><summary>All {} rows</summary>", c.rows.len());
    html_table(&mut h, c.rows.iter().collect());
    let _ = writeln!(h, "</details>");
    h
}

/// Appends a compare table, rows sorted by verdict (regressions first).
fn html_table(h: &mut String, mut rows: Vec<&Row>) {
    use crate::html::escape;
    rows.sort_by_key(|r| r.verdict);
    let _ = writeln!(
        h,
        "<table>\n<tr><th>scenario</th><th>metric</th><th>baseline</th><th>candidate</th><th>change</th><th>verdict</th></tr>"
    );
    for r in rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{} ({})</td></tr>",
            escape(&r.scenario),
            escape(&r.metric),
            escape(&value_cell(r.baseline, r.show)),
            escape(&value_cell(r.candidate, r.show)),
            escape(&r.change.map(format::change).unwrap_or_else(|| "–".to_string())),
            escape(r.verdict.as_str()),
            escape(&r.reason)
        );
    }
    let _ = writeln!(h, "</table>");
}
