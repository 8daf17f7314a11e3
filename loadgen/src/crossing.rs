//! Where p99 delivery latency crosses a suite's limit as the number of clients grows.
//!
//! A suite with `p99_limit = "100ms"` steps clients for each transport (the `connections`
//! suite: 1k to 19k). Scenarios that differ only in their client count form a *series*
//! (e.g. `ws-r1-s64`); each step records the median over complete repeats of p99 delivery
//! latency, server CPU and peak RSS, and the series reports the first step whose p99 is
//! over the limit. Incomplete scenarios are left out of the steps, never counted as under.
//! A short-poll client waits up to one poll interval for an event by design (p99 ≈ 0.99
//! of the interval at any load), so a short-poll series is judged against the limit plus
//! its interval: what it measures is the delay the server and load add on top.
//!
//! The answer's types ([`P99Limit`], [`Series`], [`Step`]) belong to the results file; this
//! module only computes them.

use crate::results::{P99Limit, ScenarioResult, Series, Status, Step, Transport};

/// The series name of a scenario: its name with the `-cN` part removed.
pub fn group_of(s: &ScenarioResult) -> String {
    let part = format!("-c{}", s.params.clients);
    s.name.replacen(&part, "", 1)
}

/// The limit a scenario is judged against: `limit_us`, plus the poll interval for
/// short-poll.
pub fn limit_for(limit_us: u64, s: &ScenarioResult) -> u64 {
    limit_us + s.params.poll_interval_ms.unwrap_or(0) * 1000
}

/// Builds the series of `scenarios` against `limit_us`.
pub fn evaluate(limit_us: u64, scenarios: &[ScenarioResult]) -> P99Limit {
    let mut groups: Vec<(String, Transport, u64, Vec<&ScenarioResult>)> = Vec::new();
    for s in scenarios {
        let group = group_of(s);
        match groups.iter_mut().find(|(g, ..)| *g == group) {
            Some((.., members)) => members.push(s),
            None => groups.push((group, s.transport, limit_for(limit_us, s), vec![s])),
        }
    }
    let series = groups
        .into_iter()
        .map(|(group, transport, limit_us, members)| {
            let steps = steps(&members);
            let crossed_at_clients = steps
                .iter()
                .find(|s| s.p99_us > limit_us)
                .map(|s| s.clients);
            let highest_within_clients = steps
                .iter()
                .take_while(|s| s.p99_us <= limit_us)
                .last()
                .map(|s| s.clients);
            Series {
                group,
                transport,
                limit_us,
                steps,
                crossed_at_clients,
                highest_within_clients,
            }
        })
        .collect();
    P99Limit { limit_us, series }
}

fn steps(members: &[&ScenarioResult]) -> Vec<Step> {
    let mut clients: Vec<u64> = members.iter().map(|s| s.params.clients).collect();
    clients.sort_unstable();
    clients.dedup();
    clients
        .into_iter()
        .filter_map(|n| {
            let runs: Vec<&ScenarioResult> = members
                .iter()
                .copied()
                .filter(|s| s.params.clients == n && s.status == Status::Complete)
                .collect();
            if runs.is_empty() {
                return None;
            }
            let server: Vec<_> = runs.iter().filter_map(|s| s.server.as_ref()).collect();
            Some(Step {
                clients: n,
                repeats: runs.len() as u64,
                p99_us: median_u64(runs.iter().map(|s| s.latency_us.p99).collect()),
                server_cpu_s: (!server.is_empty())
                    .then(|| median_f64(server.iter().map(|f| f.cpu_s).collect())),
                server_rss_peak_bytes: (!server.is_empty())
                    .then(|| median_u64(server.iter().map(|f| f.rss_peak_bytes).collect())),
            })
        })
        .collect()
}

/// Median (the lower middle for an even count) of a non-empty list.
fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[(v.len() - 1) / 2]
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// One line per series for the summary (with the series' own limit), e.g.
/// `p99 over 100 ms: ws-r1-s64 from 15000 clients (p99 123.4 ms; within up to 10000)`.
pub fn describe(limit: &P99Limit) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut out = String::new();
    for s in &limit.series {
        let line = match (s.crossed_at_clients, s.steps.last()) {
            (_, None) => format!("{}: no complete step", s.group),
            (Some(n), _) => {
                let p99 = s
                    .steps
                    .iter()
                    .find(|x| x.clients == n)
                    .map_or(0, |x| x.p99_us);
                let within = s
                    .highest_within_clients
                    .map_or("no step within".to_string(), |w| {
                        format!("within up to {w}")
                    });
                format!(
                    "{}: crosses at {n} clients (p99 {:.1} ms; {within})",
                    s.group,
                    ms(p99)
                )
            }
            (None, Some(last)) => format!(
                "{}: within at every step up to {} clients (p99 {:.1} ms there)",
                s.group,
                last.clients,
                ms(last.p99_us)
            ),
        };
        out.push_str(&format!("p99 limit {:.0} ms: {line}\n", ms(s.limit_us)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(clients: u64, p99_us: u64, status: Status) -> ScenarioResult {
        let text = include_str!("../../results/tests/data/scenario-v1.json");
        let mut s: ScenarioResult = serde_json::from_str(text).unwrap();
        s.name = format!("ws-c{clients}-r1-s64");
        s.params.clients = clients;
        s.latency_us.p99 = p99_us;
        s.status = status;
        s
    }

    #[test]
    fn finds_the_first_step_over_the_limit() {
        let runs = vec![
            result(1000, 2_000, Status::Complete),
            result(5000, 40_000, Status::Complete),
            result(10000, 150_000, Status::Complete),
            result(15000, 90_000, Status::Failed),
            result(19000, 400_000, Status::Complete),
            // A second repeat of 5000: the median of (40 ms, 120 ms) is the lower, 40 ms.
            result(5000, 120_000, Status::Complete),
        ];
        let limit = evaluate(100_000, &runs);
        assert_eq!(limit.series.len(), 1);
        let s = &limit.series[0];
        assert_eq!(s.group, "ws-r1-s64");
        let clients: Vec<u64> = s.steps.iter().map(|x| x.clients).collect();
        assert_eq!(
            clients,
            [1000, 5000, 10000, 19000],
            "the failed 15k step is left out"
        );
        assert_eq!((s.steps[1].repeats, s.steps[1].p99_us), (2, 40_000));
        assert_eq!(s.crossed_at_clients, Some(10000));
        assert_eq!(s.highest_within_clients, Some(5000));
        let text = describe(&limit);
        assert!(
            text.contains("p99 limit 100 ms: ws-r1-s64: crosses at 10000 clients (p99 150.0 ms; within up to 5000)"),
            "{text}"
        );
        let under = evaluate(1_000_000, &runs);
        assert_eq!(under.series[0].crossed_at_clients, None);
        assert!(describe(&under).contains("within at every step up to 19000"));
        // Short-poll every second: judged against 100 ms + 1 s.
        let mut polled = result(1000, 990_000, Status::Complete);
        polled.name = "short-poll-c1000-r1-s64-i1000".into();
        polled.transport = Transport::ShortPoll;
        polled.params.poll_interval_ms = Some(1000);
        let s = &evaluate(100_000, &[polled]).series[0];
        assert_eq!(
            (s.group.as_str(), s.limit_us),
            ("short-poll-r1-s64-i1000", 1_100_000)
        );
        assert_eq!(s.crossed_at_clients, None);
    }
}
