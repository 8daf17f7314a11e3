//! A report directory from fixture results: files, page contents, findings, warnings and
//! notes.

mod util;

use std::path::Path;

use feedbench_report::{write_report, ReportError, ReportInput};
use feedbench_results::{validate, LoadError};
use serde_json::{json, Value};
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
    assert!(
        matches!(err, ReportError::Load(LoadError::Read { .. })),
        "{err}"
    );

    let mut future = fixtures::baseline();
    future["schema_version"] = serde_json::Value::from(3);
    let path = write_json(&dir, "future.json", &future);
    let err = write_report(&[input(&path, "x")], &dir).expect_err("schema 3");
    assert!(
        err.to_string()
            .ends_with("has schema_version 3; this feedbench reads schemas 1 to 2"),
        "{err}"
    );

    let path = dir.join("garbage.json");
    std::fs::write(&path, "{\"schema_version\": 1}").expect("write");
    let err = write_report(&[input(&path, "x")], &dir).expect_err("not results");
    assert!(
        err.to_string().contains("is not a valid results file"),
        "{err}"
    );
}

/// The `index.html` table row that starts with these cells, up to its `</tr>`.
fn html_row<'a>(page: &'a str, first_cells: &[&str]) -> &'a str {
    let mut start = String::from("<tr>");
    for (i, c) in first_cells.iter().enumerate() {
        let class = if i == 0 { "" } else { " class=\"num\"" };
        start.push_str(&format!("<td{class}>{c}</td>"));
    }
    let at = page
        .find(&start)
        .unwrap_or_else(|| panic!("no row {start}"));
    let end = page[at..].find("</tr>").expect("closed row") + at;
    &page[at..end]
}

/// The `summary.md` table row that starts with these cells.
fn md_row<'a>(md: &'a str, first_cells: &[&str]) -> &'a str {
    let start = format!("| {} |", first_cells.join(" | "));
    md.lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no row {start}"))
}

#[test]
fn memory_per_connection_shows_in_the_table_and_findings() {
    // Known figures at 100 clients and 10 events/s, three repeats each: the median is the
    // first. At 1 event/s they are lower, so the finding takes the 10 events/s ones.
    let at_100_r10: [(&str, Option<u64>, [f64; 3]); 5] = [
        ("ws", None, [3_276.8, 3_000.0, 3_500.0]),        // 3.2 KiB
        ("sse", None, [2_969.6, 3_100.0, 2_900.0]),       // 2.9 KiB
        ("long-poll", None, [7_577.6, 7_000.0, 8_000.0]), // 7.4 KiB
        ("short-poll", Some(1_000), [12_288.0, 0.0, 20_000.0]), // 12 KiB
        ("short-poll", Some(100), [12_800.0, 12_000.0, 13_000.0]), // 12.5 KiB
    ];
    let mut results = fixtures::baseline();
    for s in fixtures::scenarios_mut(&mut results) {
        let clients = s["params"]["clients"].as_u64().expect("clients");
        let fast = s["params"]["rate_hz"].as_f64() == Some(10.0);
        let repeat = s["repeat"].as_u64().expect("repeat") as usize;
        let known = at_100_r10.iter().find(|(t, interval, _)| {
            s["transport"] == *t && s["params"]["poll_interval_ms"].as_u64() == *interval
        });
        let bytes = match (clients, known) {
            (100, Some((_, _, figures))) if fast => figures[repeat],
            (100, Some((_, _, figures))) => figures[repeat] / 2.0,
            // The OS took memory back: the sign shows in the table.
            (10, _) if !fast && s["transport"] == "ws" => -1_024.0,
            _ => 1_000.0,
        };
        s["server"]["rss_per_connection_bytes"] = json!(bytes);
    }
    assert!(validate(&results).is_empty());
    let dir = out_dir("report-memory-per-connection");
    let path = write_json(&dir, "results.json", &results);
    let out = write_report(&[input(&path, "memory")], &dir.join("report")).expect("report");

    let finding = "Server memory per open connection at 100 clients: sse 2.9 KiB, ws 3.2 KiB, \
                   long-poll 7.4 KiB, short-poll (1 s) 12 KiB, short-poll (100 ms) 12.5 KiB \
                   (RSS growth from before the clients connected to the start of the measure \
                   window, per connected client; medians over repeats, the highest over the \
                   rates and payloads run).";
    let md = std::fs::read_to_string(&out.summary_md).expect("summary.md");
    assert!(md.contains(&format!("- {finding}\n")), "{md}");
    assert!(
        !md.contains("A negative figure"),
        "no negative figure at 100 clients"
    );
    assert!(md.contains("| server peak RSS | server memory/connection |"));
    for (cells, want) in [
        (["ws", "100", "10 events/s"], "3.2 KiB"),
        (["sse", "100", "10 events/s"], "2.9 KiB"),
        (["long-poll", "100", "10 events/s"], "7.4 KiB"),
        (["short-poll (1 s)", "100", "10 events/s"], "12 KiB"),
        (["short-poll (100 ms)", "100", "10 events/s"], "12.5 KiB"),
        (["ws", "100", "1 event/s"], "1.6 KiB"),
        (["ws", "10", "1 event/s"], "-1 KiB"),
        (["sse", "10", "1 event/s"], "1,000 B"),
    ] {
        let row = md_row(&md, &cells);
        assert!(row.ends_with(&format!(" | {want} |")), "{row}");
    }

    let page = std::fs::read_to_string(&out.index_html).expect("index.html");
    assert!(page.contains(&format!("<li>{finding}</li>")));
    assert!(page.contains("<th>server peak RSS</th><th>server memory/connection</th></tr>"));
    let row = html_row(&page, &["ws", "100", "10 events/s"]);
    assert!(row.ends_with("<td class=\"num\">3.2 KiB</td>"), "{row}");
    let row = html_row(&page, &["ws", "10", "1 event/s"]);
    assert!(row.ends_with("<td class=\"num\">-1 KiB</td>"), "{row}");
}

#[test]
fn results_without_memory_per_connection_still_load() {
    // A file from before the load generator sampled RSS ahead of the connect phase.
    let mut old = fixtures::baseline();
    for s in fixtures::scenarios_mut(&mut old) {
        let server = s["server"].as_object_mut().expect("server object");
        assert!(server.remove("rss_before_connect_bytes").is_some());
        assert!(server.remove("rss_per_connection_bytes").is_some());
    }
    let errors = validate(&old);
    assert!(errors.is_empty(), "{errors:?}");
    let parsed = util::parse(&old);
    let server = parsed.scenarios[0].server.as_ref().expect("server figures");
    assert_eq!(
        (
            server.rss_before_connect_bytes,
            server.rss_per_connection_bytes
        ),
        (0, None)
    );

    let dir = out_dir("report-old-results");
    let path = write_json(&dir, "results.json", &old);
    let out = write_report(&[input(&path, "old")], &dir.join("report")).expect("report");
    let md = std::fs::read_to_string(&out.summary_md).expect("summary.md");
    assert!(!md.contains("Server memory per open connection"), "{md}");
    // Every scenario row ends with an unknown memory per connection; peak RSS is still there.
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ws |")).collect();
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert!(row.ends_with(" MiB | – |"), "{row}");
    }
    let page = std::fs::read_to_string(&out.index_html).expect("index.html");
    let row = html_row(&page, &["sse", "100", "10 events/s"]);
    assert!(row.ends_with("<td class=\"num\">–</td>"), "{row}");

    // A scenario whose server figures are null altogether reads the same way.
    let mut none = old.clone();
    for s in fixtures::scenarios_mut(&mut none) {
        s["server"] = Value::Null;
    }
    assert!(validate(&none).is_empty());
    let path = write_json(&dir, "none.json", &none);
    let out = write_report(&[input(&path, "none")], &dir.join("report-none")).expect("report");
    let md = std::fs::read_to_string(&out.summary_md).expect("summary.md");
    assert!(md_row(&md, &["ws", "100", "10 events/s"]).ends_with(" | – | – |"));
}

#[test]
fn schema_2_notes_paths_and_unreceived_events_show_in_the_report() {
    let mut results = fixtures::baseline();
    results["schema_version"] = json!(2);
    for s in fixtures::scenarios_mut(&mut results) {
        let polling = s["transport"] == "short-poll" || s["transport"] == "long-poll";
        let sent = s["requests"]["sent"].as_u64().expect("sent");
        // What the load generator writes and schema 2 requires beyond schema 1.
        s["status_message"] = Value::Null;
        s["measured_s"] = s["params"]["duration_s"].clone();
        s["notes"] = json!([]);
        s["events"]["window_source"] = json!("feed");
        s["events"]["unreceived"] = json!(0);
        // Polls on the direct path save one in ten for hyper; push transports report none.
        s["server"]["requests_by_path"] = if polling {
            json!({"direct": sent - sent / 10, "hyper": sent / 10})
        } else {
            Value::Null
        };
    }
    let ws = fixtures::scenarios_mut(&mut results)
        .find(|s| s["name"] == "ws-c100-r10-s64" && s["repeat"] == 0)
        .expect("a ws scenario");
    ws["notes"] = json!(["the server reports no byte counters: bytes not cross-checked"]);
    ws["events"]["unreceived"] = json!(2);
    ws["events"]["missed"] = json!(200);
    let expected = ws["events"]["expected"].as_u64().expect("expected");
    ws["events"]["delivered"] = json!(expected - 200);
    let errors = validate(&results);
    assert!(errors.is_empty(), "{errors:?}");

    let dir = out_dir("report-schema-2");
    let path = write_json(&dir, "results.json", &results);
    let out = write_report(&[input(&path, "v2")], &dir.join("report")).expect("report");
    let md = std::fs::read_to_string(&out.summary_md).expect("summary.md");
    let note =
        "ws-c100-r10-s64 repeat 0: the server reports no byte counters: bytes not cross-checked";
    let unreceived = "ws-c100-r10-s64 repeat 0: 2 events in the window reached no client \
                      (each counted missed for every client).";
    // The note comes after the warnings, under its own lead-in, never as a warning.
    let warnings_at = md.find("## Warnings").expect("warnings");
    let notes_at = md
        .find("Notes (informational, not problems):\n\n")
        .expect("notes");
    assert!(warnings_at < notes_at);
    assert!(md[warnings_at..notes_at].contains(&format!("- {unreceived}\n")));
    assert!(!md[warnings_at..notes_at].contains(note));
    assert!(md[notes_at..].contains(&format!("- {note}\n")), "{md}");
    // Sums over 3 repeats × 2 clients × 2 rates; 90% of each poll count is direct.
    let paths = "Requests the server answered on its direct fast path, the rest through hyper: ";
    let line = md
        .lines()
        .find(|l| l.starts_with(&format!("- {paths}")))
        .expect("request path finding");
    for variant in [
        "short-poll (1 s) 90",
        "short-poll (100 ms) 90",
        "long-poll 90",
    ] {
        assert!(line.contains(variant), "{line}");
    }
    assert!(!line.contains("ws") && !line.contains("sse"), "{line}");

    let page = std::fs::read_to_string(&out.index_html).expect("index.html");
    assert!(page.contains(&format!("<ul class=\"notes\">\n<li>{note}</li>")));
    let warnings = &page[page.find("<ul class=\"warnings\">").expect("warnings")..];
    let warnings = &warnings[..warnings.find("</ul>").expect("end")];
    assert!(!warnings.contains(note) && warnings.contains("reached no client"));
    assert!(page.contains(paths));

    // The same scenarios as schema 1 (no notes, no paths) show none of it.
    let plain = write_json(&dir, "plain.json", &fixtures::baseline());
    let out = write_report(&[input(&plain, "v1")], &dir.join("report-v1")).expect("report");
    let md = std::fs::read_to_string(&out.summary_md).expect("summary.md");
    assert!(!md.contains("Notes (") && !md.contains(paths), "{md}");
}

/// The baseline fixture as a schema-2 file from a load generator that compared clocks with
/// the server at `target`: every group's median p50 is 2 ms (repeats 1.9, 2 and 2.1 ms), and
/// the repeats' clock uncertainties are `uncertainty_us` (the largest) and two smaller ones.
fn clock_results(target: &str, uncertainty_us: [u64; 3]) -> Value {
    let mut results = fixtures::baseline();
    fixtures::to_schema_2(&mut results);
    results["target"] = json!(target);
    for s in fixtures::scenarios_mut(&mut results) {
        let repeat = s["repeat"].as_u64().expect("repeat") as usize;
        s["latency_us"]["p50"] = json!([1_900, 2_000, 2_100][repeat]);
        s["clock"] = fixtures::clock(uncertainty_us[repeat] * 1_000);
    }
    let errors = validate(&results);
    assert!(errors.is_empty(), "{errors:?}");
    results
}

/// The report's summary.md and index.html for one results document.
fn render(dir: &Path, name: &str, results: &Value) -> (String, String) {
    let path = write_json(dir, &format!("{name}.json"), results);
    let out = write_report(&[input(&path, "clock")], &dir.join(name)).expect("report");
    let md = std::fs::read_to_string(&out.summary_md).expect("summary.md");
    let page = std::fs::read_to_string(&out.index_html).expect("index.html");
    (md, page)
}

/// The Markdown list items between `## Warnings` and the next heading.
fn md_warnings(md: &str) -> &str {
    let at = md.find("## Warnings").expect("warnings");
    let end = md[at..].find("\n## Scenarios").expect("next section") + at;
    &md[at..end]
}

#[test]
fn clock_uncertainty_shows_next_to_latency_across_hosts_and_warns_above_a_tenth_of_p50() {
    let dir = out_dir("report-clock");
    let groups = 20; // 5 variants × 2 client counts × 2 rates
    let lead = "delivery latency is only known to ± ";

    // 30 µs of 2 ms (1.5%): shown in the table and the latency findings, no warning.
    let (md, page) = render(
        &dir,
        "small",
        &clock_results("http://10.0.0.5:8080", [30, 20, 25]),
    );
    assert!(
        md.contains("| p50 latency | p99 latency | clock ± | bytes/event |"),
        "{md}"
    );
    let row = md_row(&md, &["ws", "100", "10 events/s", "64 B", "3", "2 ms"]);
    let cells: Vec<&str> = row.split(" | ").collect();
    assert_eq!(cells[7], "30 µs", "{row}");
    assert!(page.contains("<th>p99 latency</th><th>clock ±</th><th>bytes/event</th>"));
    let row = html_row(&page, &["ws", "100", "10 events/s", "64 B", "3", "2 ms"]);
    assert!(
        row.contains("<td class=\"num\">30 µs</td><td class=\"num\">"),
        "{row}"
    );
    let latency = md
        .lines()
        .filter(|l| l.contains(" delivered fastest (p50 2 ms, p99 "))
        .collect::<Vec<_>>();
    assert_eq!(latency.len(), 4, "one latency finding per load point");
    for line in latency {
        assert_eq!(line.matches(", clock ± 30 µs)").count(), 2, "{line}");
    }
    assert!(!md.contains(lead) && !page.contains(lead), "{md}");

    // 500 µs of 2 ms (25%): shown, and one warning per group, whose repeats' own copies (as
    // a load generator writes them, also through a shard merge) it replaces.
    let mut big = clock_results("http://feed.example.com:8080", [500, 300, 450]);
    for s in fixtures::scenarios_mut(&mut big) {
        if s["name"] == "ws-c100-r10-s64" && s["repeat"] != 2 {
            let p50 = s["latency_us"]["p50"].as_f64().expect("p50");
            let own = feedbench_results::clock_uncertainty_warning(500.0, p50).expect("26%");
            let own = if s["repeat"] == 1 {
                format!("shard 1: {own}")
            } else {
                own
            };
            s["warnings"] = json!([own]);
        }
    }
    let (md, page) = render(&dir, "big", &big);
    let row = md_row(&md, &["ws", "100", "10 events/s", "64 B", "3", "2 ms"]);
    assert_eq!(row.split(" | ").nth(7), Some("500 µs"), "{row}");
    assert!(md.contains(", clock ± 500 µs)"));
    let warning = "ws-c100-r10-s64 (3 repeats): delivery latency is only known to ± 500 µs \
                   (25% of its p50 of 2 ms), because the load generator's and the server's \
                   clocks could only be compared that well (half the fastest GET /time round \
                   trip).";
    let warnings = md_warnings(&md);
    assert!(warnings.contains(&format!("- {warning}\n")), "{warnings}");
    assert_eq!(warnings.matches(lead).count(), groups, "{warnings}");
    assert!(
        !warnings.contains("repeat 0: delivery latency"),
        "{warnings}"
    );
    let escaped = warning.replace('\'', "&#39;");
    assert!(page.contains(&format!("<li>{escaped}</li>")), "{page}");

    // On one host there is one clock: neither column, clause nor warning, whatever the
    // estimate says; the summary is the one without any estimate.
    let loopback = clock_results("http://localhost:40000", [500, 300, 450]);
    let (md, page) = render(&dir, "loopback", &loopback);
    assert!(!md.contains("clock ±") && !page.contains("clock ±"), "{md}");
    assert!(!md.contains(lead) && !page.contains(lead));
    let mut no_clock = loopback.clone();
    for s in fixtures::scenarios_mut(&mut no_clock) {
        s.as_object_mut().expect("scenario").remove("clock");
    }
    let (md_no_clock, _) = render(&dir, "no-clock", &no_clock);
    assert_eq!(md, md_no_clock);

    // A schema-1 file has no estimate: nothing to show or warn about, even across hosts.
    let mut v1 = fixtures::baseline();
    v1["target"] = json!("http://10.0.0.5:8080");
    let (md, page) = render(&dir, "schema-1", &v1);
    assert!(!md.contains("clock ±") && !page.contains("clock ±"), "{md}");
    assert!(!md.contains(lead) && !page.contains(lead));
}
