//! The goals of `WORKLOADS.md`, judged against the results of one run.
//! Goals that compare workloads (W5 against W1, W6 against W2, …) use the
//! figures of the same run and the same fetch path; when the other workload
//! did not run, the verdict is "n/a".

use super::baseline;
use super::report::{Goal, WorkloadResult};

fn find<'a>(results: &'a [WorkloadResult], id: &str, variant: &str) -> Option<&'a WorkloadResult> {
    results
        .iter()
        .find(|r| r.workload == id && r.variant.starts_with(variant))
}

/// The fetch path a read result was measured on.
fn path_of(r: &WorkloadResult) -> &str {
    if r.variant.starts_with("copy") {
        "copy"
    } else {
        "sendfile"
    }
}

/// Apache Iggy 0.8.0's W1-like produce with one request in flight,
/// measured side by side on the reference machine (MB/s of values).
pub const IGGY_IN_FLIGHT_1_MB_S: f64 = 853.0;

/// The latency above which W4 counts a stall, in the goals' words.
const STALL_GOAL: &str = "no stall > 10 ms";

fn detail(r: &WorkloadResult, name: &str) -> Option<f64> {
    r.details.get(name)?.as_f64()
}

/// The goals on `r`'s ratio to its `--baseline` limit, if it has one.
fn baseline_goal(r: &WorkloadResult, results: &[WorkloadResult]) -> Option<Goal> {
    let (share, name) = match r.workload.as_str() {
        "W1" => (0.6, "raw socket → pwrite"),
        "W2" if path_of(r) == "sendfile" => (0.7, "raw loopback sendfile"),
        "W5" => (0.8, "the disk's O_DSYNC write rate"),
        _ => return None,
    };
    let goal = format!("≥ {:.0}% of {name} (--baseline)", share * 100.0);
    let limits = baseline::limits_for(&r.workload, &r.variant);
    if limits.is_empty() {
        return None;
    }
    let measured_base = results
        .iter()
        .any(|b| b.workload == baseline::ID && limits.contains(&b.variant.as_str()));
    Some(match detail(r, "of_baseline") {
        Some(ratio) => Goal {
            goal,
            measured: format!(
                "{:.0} MB/s of batches = {:.0}% of {:.0} MB/s ({})",
                baseline::batch_mb_per_sec(r),
                ratio * 100.0,
                detail(r, "baseline_mb_per_sec").unwrap_or(0.0),
                r.details
                    .get("baseline")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
            ),
            met: Some(ratio >= share),
        },
        None => Goal {
            goal,
            measured: if measured_base {
                "no ratio".to_owned()
            } else {
                "no --baseline in this run".to_owned()
            },
            met: None,
        },
    })
}

fn judge(r: &WorkloadResult, results: &[WorkloadResult]) -> Vec<Goal> {
    let mb = r.mb_per_sec;
    let goal = |goal: &str, measured: String, met: Option<bool>| Goal {
        goal: goal.to_owned(),
        measured,
        met,
    };
    let mut goals = Vec::new();
    match (r.workload.as_str(), r.variant.as_str()) {
        ("W1", "idempotent produce") => {
            let plain = find(results, "W1", "plain (paired)");
            goals.push(goal(
                "idempotence costs < 5% of the paired plain passes' throughput",
                plain.map_or(format!("{mb:.0} MB/s (no paired plain passes)"), |w1| {
                    format!("{mb:.0} MB/s = {:.1}% of plain", 100.0 * mb / w1.mb_per_sec)
                }),
                plain.map(|w1| mb >= 0.95 * w1.mb_per_sec),
            ));
        }
        ("W1", "plain (paired)") => {}
        ("W1", _) => {
            goals.push(goal(
                "≥ 2,000 MB/s",
                format!("{mb:.0} MB/s"),
                Some(mb >= 2000.0),
            ));
            let in_flight = r.parameters.get("in_flight").and_then(|v| v.as_u64());
            let target = 1.5 * IGGY_IN_FLIGHT_1_MB_S;
            goals.push(goal(
                "--in-flight 1: ≥ 1.5× Apache Iggy's 853 MB/s = 1,280 MB/s",
                match in_flight {
                    Some(1) => format!("{mb:.0} MB/s = {:.2}× Iggy", mb / IGGY_IN_FLIGHT_1_MB_S),
                    n => format!(
                        "{mb:.0} MB/s at in-flight {} (run --in-flight 1)",
                        n.unwrap_or(0)
                    ),
                },
                (in_flight == Some(1)).then_some(mb >= target),
            ));
        }
        ("W2", v) if v.starts_with("sendfile") => {
            let cpu = r.broker_cpu_s_per_gib;
            let copy = find(results, "W2", "copy");
            goals.push(goal(
                "≥ 4,000 MB/s",
                format!("{mb:.0} MB/s"),
                Some(mb >= 4000.0),
            ));
            goals.push(goal(
                "broker ≤ 0.15 CPU-s per GiB served",
                format!("{cpu:.3} CPU-s/GiB"),
                Some(cpu <= 0.15),
            ));
            goals.push(goal(
                "broker CPU-s/GiB ≤ half of the copy path's",
                copy.map_or("no copy run (--compare-fetch-path)".to_owned(), |c| {
                    format!(
                        "{cpu:.3} vs copy {:.3} (ratio {:.2})",
                        c.broker_cpu_s_per_gib,
                        cpu / c.broker_cpu_s_per_gib
                    )
                }),
                copy.map(|c| cpu <= c.broker_cpu_s_per_gib / 2.0),
            ));
        }
        ("W3", "produce") => goals.push(goal(
            "≥ 5,000,000 records/s produce",
            format!("{:.0} records/s", r.records_per_sec),
            Some(r.records_per_sec >= 5e6),
        )),
        ("W3", "consume") => goals.push(goal(
            "≥ 10,000,000 records/s consume",
            format!("{:.0} records/s", r.records_per_sec),
            Some(r.records_per_sec >= 10e6),
        )),
        ("W4", variant) => {
            let Some(l) = r.latency.as_ref() else {
                return goals;
            };
            let alone = variant == "tail";
            let why = if alone { "" } else { " (ran after writes)" };
            let judged = |met: bool| alone.then_some(met);
            // With --baseline: a bare exchange's latency from its scheduled
            // send time in the same run, beside the figure.
            let floor = |p: &str| {
                detail(r, &format!("round_trip_floor_{p}_us"))
                    .map(|f| format!("; floor {f:.0} µs = 1 bare round trip (--baseline)"))
                    .unwrap_or_default()
            };
            goals.push(goal(
                "alone: p50 ≤ 80 µs",
                format!("p50 {:.0} µs{why}{}", l.p50_us, floor("p50")),
                judged(l.p50_us <= 80.0),
            ));
            goals.push(goal(
                "alone: p99 ≤ 250 µs",
                format!("p99 {:.0} µs{why}{}", l.p99_us, floor("p99")),
                judged(l.p99_us <= 250.0),
            ));
            // With --baseline: the longest the machine stopped running a
            // thread that never blocked.
            let gap = detail(r, "cpu_longest_gap_us")
                .map(|g| format!("; a CPU lost up to {g:.0} µs at a time (--baseline)"))
                .unwrap_or_default();
            goals.push(goal(
                "alone: p99.9 ≤ 1,000 µs",
                format!("p99.9 {:.0} µs{why}{}{gap}", l.p999_us, floor("p999")),
                judged(l.p999_us <= 1000.0),
            ));
            if let Some(us) = detail(r, "broker_cpu_us_per_record") {
                // With --baseline: the floor of two bare request/response
                // exchanges on this machine, beside the figure.
                let floor = detail(r, "round_trip_floor_cpu_us")
                    .map(|f| format!("; floor {f:.1} µs = 2 bare round trips (--baseline)"))
                    .unwrap_or_default();
                goals.push(goal(
                    "alone: broker CPU ≤ 15 µs per record",
                    format!("{us:.1} µs per record{why}{floor}"),
                    judged(us <= 15.0),
                ));
            }
            let stalls = detail(r, "stalls_over_10ms").unwrap_or(0.0);
            let over = detail(r, "records_over_10ms").unwrap_or(0.0);
            let after = (!alone).then_some(());
            goals.push(goal(
                "after W1/W3 (--workload all): p99.9 ≤ 2,000 µs",
                format!(
                    "p99.9 {:.0} µs, max {:.0} µs{}",
                    l.p999_us,
                    l.max_us,
                    if alone { " (ran alone)" } else { "" }
                ),
                after.map(|()| l.p999_us <= 2000.0),
            ));
            goals.push(goal(
                &format!("after W1/W3 (--workload all): {STALL_GOAL}"),
                format!(
                    "{stalls:.0} stalls, {over:.0} records > 10 ms{}",
                    if alone { " (ran alone)" } else { "" }
                ),
                after.map(|()| stalls == 0.0),
            ));
        }
        ("W5", _) => {
            let w1 = find(results, "W1", "produce");
            goals.push(goal(
                "≥ 50% of W1's throughput, every acknowledged record fsynced",
                w1.map_or(format!("{mb:.0} MB/s (no W1 in this run)"), |w1| {
                    format!("{mb:.0} MB/s = {:.0}% of W1", 100.0 * mb / w1.mb_per_sec)
                }),
                w1.map(|w1| mb >= 0.5 * w1.mb_per_sec),
            ));
        }
        ("W6", _) => {
            let w2 = find(results, "W2", path_of(r));
            goals.push(goal(
                "aggregate ≥ 1.5× W2",
                w2.map_or(format!("{mb:.0} MB/s (no W2 in this run)"), |w2| {
                    format!("{mb:.0} MB/s = {:.2}× W2", mb / w2.mb_per_sec)
                }),
                w2.map(|w2| mb >= 1.5 * w2.mb_per_sec),
            ));
        }
        ("W7", _) => {
            let Some(l) = r.latency.as_ref() else {
                return goals;
            };
            for (name, with, base) in [
                ("p50", l.p50_us, detail(r, "baseline_p50_us")),
                ("p99", l.p99_us, detail(r, "baseline_p99_us")),
            ] {
                let Some(base) = base else { continue };
                goals.push(goal(
                    &format!("{name} with the cold reader ≤ 1.5× {name} without"),
                    format!("{with:.0} µs vs {base:.0} µs = {:.2}×", with / base),
                    Some(with <= 1.5 * base),
                ));
            }
        }
        ("W8", phase) => {
            let (other, name) = if phase == "produce" {
                (find(results, "W1", "produce"), "W1")
            } else {
                (find(results, "W2", ""), "W2")
            };
            goals.push(goal(
                "aggregate within 20% of W1 (produce) / W2 (consume)",
                other.map_or(format!("{mb:.0} MB/s (no {name} in this run)"), |o| {
                    format!("{mb:.0} MB/s = {:.0}% of {name}", 100.0 * mb / o.mb_per_sec)
                }),
                other.map(|o| mb >= 0.8 * o.mb_per_sec),
            ));
        }
        _ => {}
    }
    goals.extend(baseline_goal(r, results));
    goals
}

/// Records each throughput row's ratio to its `--baseline` limit, then
/// attaches their goals and verdicts to every result that has some.
pub fn judge_all(results: &mut [WorkloadResult]) {
    baseline::attach_ratios(results);
    let verdicts: Vec<Vec<Goal>> = results.iter().map(|r| judge(r, results)).collect();
    for (r, g) in results.iter_mut().zip(verdicts) {
        r.goals = g;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly on purpose
mod tests {
    use serde_json::json;

    use super::*;
    use crate::harness::broker_proc::CpuTimes;
    use crate::harness::report::{Latency, Moved, params};

    fn row(id: &str, variant: &str, batch_bytes: u64, seconds: f64) -> WorkloadResult {
        let moved = Moved {
            records: batch_bytes / 1024,
            value_bytes: batch_bytes,
            batch_bytes,
        };
        WorkloadResult::new(
            id,
            variant,
            params(&[("in_flight", json!(1))]),
            moved,
            seconds,
            CpuTimes::default(),
        )
    }

    fn verdict(r: &WorkloadResult, starts: &str) -> Option<bool> {
        r.goals
            .iter()
            .find(|g| g.goal.starts_with(starts))
            .unwrap_or_else(|| panic!("no goal {starts:?} on {} {}", r.workload, r.variant))
            .met
    }

    #[test]
    fn throughput_rows_are_judged_against_their_baselines() {
        let mut results = vec![
            row(baseline::ID, baseline::RECV_PWRITE, 2_000_000_000, 1.0),
            row(baseline::ID, baseline::SENDFILE, 4_000_000_000, 1.0),
            row(baseline::ID, baseline::DSYNC, 500_000_000, 1.0),
            row("W1", "produce", 1_300_000_000, 1.0),
            row("W2", "sendfile", 2_000_000_000, 1.0),
            row("W5", "fsync produce", 300_000_000, 1.0),
        ];
        judge_all(&mut results);
        let of = |i: usize| results[i].details["of_baseline"].as_f64().unwrap();
        assert!((of(3) - 0.65).abs() < 1e-9);
        assert!((of(4) - 0.5).abs() < 1e-9);
        assert!((of(5) - 0.6).abs() < 1e-9);
        assert_eq!(verdict(&results[3], "≥ 60% of raw"), Some(true));
        assert_eq!(verdict(&results[4], "≥ 70% of raw"), Some(false));
        assert_eq!(verdict(&results[5], "≥ 80% of the disk"), Some(false));
        // 1,300 MB/s at one request in flight beats 1.5 × 853.
        assert_eq!(verdict(&results[3], "--in-flight 1"), Some(true));
    }

    #[test]
    fn paired_w1_rows_are_judged_against_the_raw_passes_run_with_them() {
        let mut results = vec![
            row(baseline::ID, baseline::RECV_PWRITE, 4_000_000_000, 1.0),
            row(
                baseline::ID,
                baseline::RECV_PWRITE_PAIRED,
                1_000_000_000,
                1.0,
            ),
            row("W1", "produce", 2_000_000_000, 1.0),
            row("W1", "plain (paired)", 900_000_000, 1.0),
            row("W1", "idempotent produce", 500_000_000, 1.0),
        ];
        judge_all(&mut results);
        let base = |i: usize| results[i].details["baseline"].as_str().unwrap().to_owned();
        let of = |i: usize| results[i].details["of_baseline"].as_f64().unwrap();
        // The first pass: against the best standalone pass.
        assert_eq!(base(2), baseline::RECV_PWRITE);
        assert!((of(2) - 0.5).abs() < 1e-9);
        assert_eq!(verdict(&results[2], "≥ 60% of raw"), Some(false));
        // The paired passes: against the raw passes between them.
        assert_eq!(base(3), baseline::RECV_PWRITE_PAIRED);
        assert!((of(3) - 0.9).abs() < 1e-9);
        assert_eq!(verdict(&results[3], "≥ 60% of raw"), Some(true));
        assert_eq!(base(4), baseline::RECV_PWRITE_PAIRED);
        assert_eq!(verdict(&results[4], "≥ 60% of raw"), Some(false));
        // Without paired raw passes they fall back to the standalone one.
        let mut results = vec![
            row(baseline::ID, baseline::RECV_PWRITE, 1_000_000_000, 1.0),
            row("W1", "plain (paired)", 900_000_000, 1.0),
        ];
        judge_all(&mut results);
        assert_eq!(
            results[1].details["baseline"].as_str(),
            Some(baseline::RECV_PWRITE)
        );
    }

    #[test]
    fn without_baselines_the_ratio_goals_cannot_tell() {
        let mut deeper = row("W1", "produce", 2_000_000_000, 1.0);
        deeper.parameters.insert("in_flight".into(), json!(4));
        let mut results = vec![row("W1", "produce", 1_000_000_000, 1.0), deeper];
        judge_all(&mut results);
        assert_eq!(verdict(&results[0], "≥ 60% of raw"), None);
        // The Iggy figure is at one request in flight: deeper runs cannot tell.
        assert_eq!(verdict(&results[1], "--in-flight 1"), None);
    }

    #[test]
    fn w4_goals_depend_on_whether_writes_ran_before() {
        let latency = Latency {
            count: 1000,
            p50_us: 70.0,
            p90_us: 100.0,
            p99_us: 200.0,
            p999_us: 1500.0,
            max_us: 30_000.0,
        };
        let mut alone = row("W4", "tail", 1 << 20, 1.0);
        alone.latency = Some(latency.clone());
        alone.detail("broker_cpu_us_per_record", 10.0);
        alone.detail("stalls_over_10ms", 1);
        let mut after = alone.clone();
        after.variant = "tail after W1/W3".into();
        let mut results = vec![alone, after];
        judge_all(&mut results);
        let (alone, after) = (&results[0], &results[1]);
        assert_eq!(verdict(alone, "alone: p50"), Some(true));
        assert_eq!(verdict(alone, "alone: p99.9"), Some(false));
        assert_eq!(verdict(alone, "alone: broker CPU"), Some(true));
        assert_eq!(verdict(alone, "after W1/W3 (--workload all): p99.9"), None);
        assert_eq!(verdict(after, "alone: p50"), None);
        assert_eq!(
            verdict(after, "after W1/W3 (--workload all): p99.9"),
            Some(true)
        );
        assert_eq!(
            verdict(after, "after W1/W3 (--workload all): no stall"),
            Some(false)
        );
    }

    #[test]
    fn w4_cpu_is_shown_beside_the_round_trip_floor() {
        let mut base = row(baseline::ID, baseline::ROUND_TRIP, 1 << 20, 1.0);
        base.detail("server_cpu_us_per_exchange", 9.5);
        let mut w4 = row("W4", "tail", 1 << 20, 1.0);
        w4.latency = Some(Latency::default());
        w4.detail("broker_cpu_us_per_record", 40.0);
        let mut without = vec![w4.clone()];
        let mut results = vec![base, w4];
        judge_all(&mut results);
        judge_all(&mut without);
        let cpu = |r: &WorkloadResult| {
            r.goals
                .iter()
                .find(|g| g.goal.starts_with("alone: broker CPU"))
                .map(|g| (g.measured.clone(), g.met))
                .unwrap()
        };
        assert_eq!(
            cpu(&results[1]),
            (
                "40.0 µs per record; floor 19.0 µs = 2 bare round trips (--baseline)".into(),
                Some(false)
            )
        );
        assert_eq!(cpu(&without[0]), ("40.0 µs per record".into(), Some(false)));
    }

    #[test]
    fn w4_percentiles_are_shown_beside_the_round_trip_from_its_schedule() {
        let mut base = row(baseline::ID, baseline::ROUND_TRIP, 1 << 20, 1.0);
        base.detail("from_schedule_p50_us", 30.0);
        base.detail("from_schedule_p99_us", 90.0);
        base.detail("from_schedule_p999_us", 2_500.0);
        let mut gaps = row(baseline::ID, baseline::CPU_GAPS, 1 << 20, 1.0);
        gaps.detail("longest_gap_us", 4_000.0);
        let mut w4 = row("W4", "tail", 1 << 20, 1.0);
        w4.latency = Some(Latency {
            p50_us: 100.0,
            p99_us: 300.0,
            p999_us: 3_000.0,
            ..Latency::default()
        });
        let mut results = vec![base, gaps, w4];
        judge_all(&mut results);
        let line = |name: &str| {
            results[2]
                .goals
                .iter()
                .find(|g| g.goal.starts_with(name))
                .map(|g| (g.measured.clone(), g.met))
                .unwrap()
        };
        assert_eq!(
            line("alone: p50"),
            (
                "p50 100 µs; floor 30 µs = 1 bare round trip (--baseline)".into(),
                Some(false)
            )
        );
        assert_eq!(
            line("alone: p99.9"),
            (
                "p99.9 3000 µs; floor 2500 µs = 1 bare round trip (--baseline); \
                 a CPU lost up to 4000 µs at a time (--baseline)"
                    .into(),
                Some(false)
            )
        );
    }

    #[test]
    fn w7_judges_p50_and_p99_at_one_and_a_half_times() {
        let mut r = row("W7", "tail+cold", 1 << 20, 1.0);
        r.latency = Some(Latency {
            p50_us: 140.0,
            p99_us: 400.0,
            ..Latency::default()
        });
        r.detail("baseline_p50_us", 100.0);
        r.detail("baseline_p99_us", 250.0);
        let mut results = vec![r];
        judge_all(&mut results);
        assert_eq!(verdict(&results[0], "p50 with"), Some(true));
        assert_eq!(verdict(&results[0], "p99 with"), Some(false));
    }
}
