//! A report directory from fixture results: files, page contents, findings and warnings.

mod util;

use std::path::Path;

use feedbench_report::{write_report, ReportError, ReportInput};
use util::{fixtures, out_dir, write_json};

fn input(path: &Path, label: &str) -> ReportInput {
    ReportInput {
        path: path.to_path_buf(),
        label: Some(label.to_string()),
    }
}

/// Every `<svg …>…</svg>` inlined in a page.
fn inline_svgs(page: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("closed svg") + start + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

#[test]
fn one_results_file_gives_a_complete_self_contained_report() {
    let dir = out_dir("report-single");
    let results = write_json(&dir, "results.json", &fixtures::baseline());
    let report_dir = dir.join("report");
    let out = write_report(&[input(&results, "baseline")], &report_dir).expect("report");

    assert_eq!(out.index_html, report_dir.join("index.html"));
    assert!(out.summary_md.is_file());
    for c in &out.charts {
        assert!(c.svg_path.is_file() && c.png_path.is_file(), "{}", c.stem);
    }

    let page = std::fs::read_to_string(&out.index_html).expect("index.html");
    for forbidden in [
        "src=\"http",
        "href=\"http",
        "url(",
        "@import",
        "<script",
        "<link rel=\"stylesheet",
    ] {
        assert!(
            !page.contains(forbidden),
            "index.html must load nothing: found {forbidden}"
        );
    }
    let svgs = inline_svgs(&page);
    assert_eq!(svgs.len(), out.charts.len(), "every chart is inlined");
    for (i, svg) in svgs.iter().enumerate() {
        util::assert_well_formed_svg(svg, &format!("inline svg {i}"));
    }
    // Findings computed from the data, in sentences.
    assert!(
        page.contains("At 100 clients and 10 events/s, ws used"),
        "bytes finding"
    );
    assert!(page.contains("fewer bytes per event than short-poll (100 ms)"));
    assert!(page.contains("no event was missed, duplicated or reordered"));
    assert!(page.contains("short-poll (100 ms) sent up to 10 requests per delivered event"));
    // The warning the fixture carries.
    assert!(page.contains("load-generator bound"));

    let md = std::fs::read_to_string(&out.summary_md).expect("summary.md");
    assert!(md.starts_with("# feedbench report: baseline\n"));
    assert!(md.contains("## Findings"));
    assert!(md.contains("## Warnings"));
    assert!(md.contains("short-poll-c100-r10-s64-i100 repeat 1: load generator used 88%"));
    assert!(md.contains("| transport | clients | rate |"));
    assert!(md.contains("| short-poll (1 s) | 100 | 10 events/s | 64 B | 3 |"));
    assert!(md.contains("(latency-spectrum-c100-r10-s64.svg)"));
}

#[test]
fn two_results_files_give_side_by_side_charts_and_a_comparison() {
    let dir = out_dir("report-pair");
    let base = write_json(&dir, "base.json", &fixtures::baseline());
    let cand = write_json(&dir, "cand.json", &fixtures::candidate());
    let out = write_report(
        &[input(&base, "baseline"), input(&cand, "candidate")],
        &dir.join("report"),
    )
    .expect("report");
    let page = std::fs::read_to_string(&out.index_html).expect("index.html");
    assert!(page.contains("<title>feedbench report: candidate vs baseline</title>"));
    assert!(page.contains("id=\"comparison\""));
    let md = std::fs::read_to_string(&out.summary_md).expect("summary.md");
    assert!(md.contains("## Findings — baseline") && md.contains("## Findings — candidate"));
    assert!(md.contains("## Comparison"));
}

#[test]
fn default_labels_come_from_run_directories_and_stay_distinct() {
    let dir = out_dir("report-labels");
    let a = dir.join("quick-20250101T000000Z");
    std::fs::create_dir_all(&a).expect("mkdir");
    let path = write_json(&a, "results.json", &fixtures::baseline());
    let inputs = [
        ReportInput {
            path: path.clone(),
            label: None,
        },
        ReportInput { path, label: None },
    ];
    let datasets = feedbench_report::report::load_datasets(&inputs).expect("load");
    assert_eq!(datasets[0].label, "quick-20250101T000000Z");
    assert_eq!(datasets[1].label, "quick-20250101T000000Z (2)");
}

#[test]
fn unreadable_inputs_are_clear_errors() {
    let dir = out_dir("report-errors");
    let missing = dir.join("missing.json");
    let err = write_report(&[input(&missing, "x")], &dir).expect_err("missing file");
    assert!(matches!(err, ReportError::Read { .. }), "{err}");

    let mut future = fixtures::baseline();
    future["schema_version"] = serde_json::Value::from(2);
    let path = write_json(&dir, "future.json", &future);
    let err = write_report(&[input(&path, "x")], &dir).expect_err("schema 2");
    assert!(err.to_string().contains("schema_version 2"), "{err}");

    let path = dir.join("garbage.json");
    std::fs::write(&path, "{\"schema_version\": 1}").expect("write");
    let err = write_report(&[input(&path, "x")], &dir).expect_err("not results");
    assert!(
        err.to_string().contains("is not a valid results file"),
        "{err}"
    );
}
