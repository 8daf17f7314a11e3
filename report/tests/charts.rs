//! Every chart renders from a fixture results file: both files exist, the SVG is
//! well-formed, the PNG has the figure's size and is not blank.

mod util;

use feedbench_report::charts::{self, ChartKind};
use feedbench_report::Dataset;
use util::{fixtures, out_dir, Png};

fn dataset(label: &str, value: &serde_json::Value) -> Dataset {
    Dataset::new(label, util::parse(value))
}

/// Renders every planned chart and checks each file.
fn render_and_check(datasets: &[Dataset], test: &str) -> Vec<charts::RenderedChart> {
    let dir = out_dir(test);
    let planned = charts::plan(datasets).expect("plan charts");
    let rendered: Vec<_> = planned
        .iter()
        .map(|c| charts::render(c, &dir).unwrap_or_else(|e| panic!("{}: {e}", c.stem)))
        .collect();
    for c in &rendered {
        assert!(c.svg_path.is_file(), "{} missing", c.svg_path.display());
        assert!(c.png_path.is_file(), "{} missing", c.png_path.display());
        let on_disk = std::fs::read_to_string(&c.svg_path).expect("read svg");
        assert_eq!(
            on_disk, c.svg,
            "{}: written SVG differs from the inlined one",
            c.stem
        );
        util::assert_well_formed_svg(&on_disk, &c.stem);
        assert!(
            on_disk.contains(&format!("width=\"{}\"", c.size.0)),
            "{}: SVG width",
            c.stem
        );
        let png = Png::read(&c.png_path);
        assert_eq!((png.width, png.height), c.size, "{}: PNG size", c.stem);
        let ink = png.ink_share();
        assert!(
            ink > 0.02 && ink < 0.6,
            "{}: PNG ink share {ink:.3} looks blank or flooded",
            c.stem
        );
    }
    rendered
}

#[test]
fn every_chart_kind_renders_from_one_results_file() {
    let base = dataset("baseline", &fixtures::baseline());
    let rendered = render_and_check(std::slice::from_ref(&base), "charts-single");
    for kind in ChartKind::ALL {
        // Latency vs round trip is drawn only for runs over an emulated link (tests/net.rs),
        // bytes by protocol layer only for runs over several stacks (tests/stacks.rs).
        // Capacity only for a capacity (tests/capacity.rs).
        let expected = kind != ChartKind::LatencyVsRtt
            && kind != ChartKind::ProtocolLayers
            && kind != ChartKind::Capacity;
        assert_eq!(
            rendered.iter().any(|c| c.kind == kind),
            expected,
            "{kind:?}"
        );
    }
    // Matrix: 2 clients × 2 rates × 1 payload → 4 spectra and 4 byte charts, 2 rate slices
    // for the clients charts, 2 client slices for polling and for the charts over the rate.
    let count = |k: ChartKind| rendered.iter().filter(|c| c.kind == k).count();
    assert_eq!(count(ChartKind::LatencySpectrum), 4);
    assert_eq!(count(ChartKind::BytesPerEvent), 4);
    assert_eq!(count(ChartKind::LatencyVsClients), 2);
    assert_eq!(count(ChartKind::Bandwidth), 2);
    assert_eq!(count(ChartKind::ServerCost), 2);
    assert_eq!(count(ChartKind::Polling), 2);
    assert_eq!(count(ChartKind::VsRate), 2);
}

#[test]
fn charts_use_the_user_spellings_units_and_parameters() {
    let base = dataset("baseline", &fixtures::baseline());
    let rendered = render_and_check(std::slice::from_ref(&base), "charts-labels");
    let spectrum = rendered
        .iter()
        .find(|c| c.stem == "latency-spectrum-c100-r10-s64")
        .expect("spectrum at 100 clients, 10 events/s");
    for legend in [
        "short-poll (1 s)",
        "short-poll (100 ms)",
        "long-poll",
        "ws",
        "sse",
    ] {
        assert!(
            spectrum.svg.contains(&format!(">\n{legend}\n</text>")),
            "legend {legend} missing"
        );
    }
    assert!(
        spectrum.svg.contains("99.99%"),
        "percentile axis reaches 99.99%"
    );
    assert!(
        spectrum
            .title
            .contains("100 clients, 10 events/s, 64 B payload"),
        "{}",
        spectrum.title
    );
    let bandwidth = rendered
        .iter()
        .find(|c| c.kind == ChartKind::Bandwidth)
        .expect("bandwidth");
    assert!(
        bandwidth.svg.contains("bit/s"),
        "bandwidth axis carries its unit"
    );
    let bytes = rendered
        .iter()
        .find(|c| c.kind == ChartKind::BytesPerEvent)
        .expect("bytes");
    assert!(bytes.svg.contains("bytes per delivered event (B)"));
    assert!(bytes.svg.contains("setup bytes per connection (B)"));
}

#[test]
fn two_results_files_render_side_by_side() {
    let base = dataset("baseline", &fixtures::baseline());
    let cand = dataset("candidate", &fixtures::candidate());
    let single = charts::plan(std::slice::from_ref(&base)).expect("plan");
    let both = [base, cand];
    let rendered = render_and_check(&both, "charts-pair");
    let wide = rendered
        .iter()
        .find(|c| c.kind == ChartKind::LatencySpectrum)
        .expect("spectrum");
    let narrow = single
        .iter()
        .find(|c| c.stem == wide.stem)
        .expect("same chart, one file");
    let legend = charts::style::LEGEND_W;
    assert_eq!(
        wide.size.0 - legend,
        2 * (narrow.figure.size().0 - legend),
        "two panels side by side"
    );
    assert!(wide.svg.contains("baseline: ") && wide.svg.contains("candidate: "));
    let server = rendered
        .iter()
        .find(|c| c.kind == ChartKind::ServerCost)
        .expect("server");
    assert_eq!(
        server.size.1,
        2 * narrow.figure.size().1 - 44,
        "one row per file"
    );
}

#[test]
fn the_quick_baselines_charts_draw_curves_not_lone_points() {
    use feedbench_report::charts::panel::Panel;
    use std::collections::BTreeSet;
    let path = util::crate_dir().join("../bench-results/baseline-quick/results.json");
    let results = feedbench_report::Results::load(&path).expect("the committed baseline");
    // Every (clients, rate) point of the run, from its scenarios.
    let points: BTreeSet<(u64, u64)> = results
        .scenarios
        .iter()
        .map(|s| (s.params.clients, (s.params.rate_hz * 1e3) as u64))
        .collect();
    let clients_at = |rate: u64| points.iter().filter(|p| p.1 == rate).count();
    let rates_at = |clients: u64| points.iter().filter(|p| p.0 == clients).count();
    let planned = charts::plan(&[Dataset::new("baseline-quick", results)]).expect("plan");
    let mut lines = 0;
    for c in &planned {
        for (_, p) in c.figure.rows.iter().flatten() {
            let Panel::Lines(l) = p else { continue };
            assert!(!l.series.is_empty(), "{}: a panel without lines", c.stem);
            for s in &l.series {
                lines += 1;
                assert!(
                    s.points.len() >= 2,
                    "{}: {} has {} point(s)",
                    c.stem,
                    s.label,
                    s.points.len()
                );
            }
        }
    }
    // Each chart over clients is drawn for the one rate with several client counts, with a
    // point per client count; each chart over the rate for the one client count with
    // several rates. The others would be lone dots, and are left out.
    let stems = |k: ChartKind| -> Vec<&str> {
        planned
            .iter()
            .filter(|c| c.kind == k)
            .map(|c| c.stem.as_str())
            .collect()
    };
    assert_eq!(clients_at(20_000), 3);
    assert_eq!(rates_at(50), 3);
    assert_eq!(
        stems(ChartKind::LatencyVsClients),
        ["latency-vs-clients-r20-s64"]
    );
    assert_eq!(stems(ChartKind::Bandwidth), ["bandwidth-r20-s64"]);
    assert_eq!(stems(ChartKind::ServerCost), ["server-cost-r20-s64"]);
    assert_eq!(stems(ChartKind::VsRate), ["vs-rate-c50-s64"]);
    assert_eq!(stems(ChartKind::Polling), ["polling-c50-s64"]);
    for c in planned
        .iter()
        .filter(|c| c.kind != ChartKind::LatencySpectrum)
    {
        for (_, p) in c.figure.rows.iter().flatten() {
            let Panel::Lines(l) = p else { continue };
            let want = if c.stem.contains("-r20-") {
                clients_at(20_000)
            } else {
                rates_at(50)
            };
            assert!(
                l.series.iter().all(|s| s.points.len() == want),
                "{}",
                c.stem
            );
        }
    }
    assert!(lines > 0);
}
