//! Headless Chromium opens `index.html` from disk: no console errors, no network, and a
//! screenshot that shows the charts.
//!
//! Needs Debian's `chromium` (installed by the CI setup in `.ci/`). Without it the test
//! fails, on purpose: a skipped browser check would read as a passing one.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use feedbench_report::charts::style::transport_color;
use feedbench_report::{write_report, ReportInput, Transport};
use util::{fixtures, out_dir, write_json, Png};

/// Screenshot size: wide enough for the side-by-side charts at full size.
const WINDOW: (u32, u32) = (1800, 3200);

fn find_chromium() -> PathBuf {
    let candidates = ["chromium", "chromium-browser", "google-chrome"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in candidates {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium not found on PATH: this test needs Debian's chromium to open the report. \
         Run the CI setup script (.ci/run installs it) or `apt-get install -y chromium fonts-dejavu-core`"
    );
}

/// Runs headless Chromium on a file URL and returns its stderr log.
fn screenshot(chromium: &Path, page: &Path, png: &Path, profile: &Path) -> String {
    let url = format!("file://{}", page.display());
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "chromium failed ({}):\n{log}",
        output.status
    );
    log
}

#[test]
fn chromium_opens_the_report_from_disk_and_shows_the_charts() {
    let chromium = find_chromium();
    let dir = out_dir("browser");
    let base = write_json(&dir, "base.json", &fixtures::baseline());
    let cand = write_json(&dir, "cand.json", &fixtures::candidate());
    let inputs = [
        ReportInput {
            path: base,
            label: Some("baseline".to_string()),
        },
        ReportInput {
            path: cand,
            label: Some("candidate".to_string()),
        },
    ];
    let report = write_report(&inputs, &dir.join("report")).expect("report");
    let page = report.index_html.canonicalize().expect("absolute path");
    let shot = dir.join("screenshot.png");
    let profile = dir.join("profile");
    let log = screenshot(&chromium, &page, &shot, &profile);

    // Console messages reach stderr as `CONSOLE(line)] "…"`; a page that loads nothing and
    // runs no script has none. Resource failures would show as net errors.
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE") || l.contains("ERR_") || l.contains("Failed to load resource")
        })
        .collect();
    assert!(
        problems.is_empty(),
        "console errors:\n{}",
        problems.join("\n")
    );

    let png = Png::read(&shot);
    assert_eq!((png.width, png.height), WINDOW, "screenshot size");
    assert!(
        png.ink_share() > 0.05,
        "screenshot is blank: ink {:.3}",
        png.ink_share()
    );
    // The first screen holds the findings and the first spectrum charts: each transport's
    // line colour must be there, drawn by the browser from the inline SVG.
    for t in Transport::ALL {
        let c = transport_color(t);
        let n = png.count_near([c.0, c.1, c.2], 12);
        assert!(
            n > 200,
            "{t} chart lines not visible in the screenshot ({n} pixels)"
        );
    }
}
