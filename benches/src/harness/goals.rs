//! The goals of `WORKLOADS.md`, judged against the results of one run.
//! Goals that compare workloads (W5 against W1, W6 against W2, …) use the
//! figures of the same run and the same fetch path; when the other workload
//! did not run, the verdict is "n/a".

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

fn all(checks: &[Option<bool>]) -> Option<bool> {
    if checks.contains(&Some(false)) {
        Some(false)
    } else if checks.iter().all(Option::is_some) {
        Some(true)
    } else {
        None
    }
}

fn judge(r: &WorkloadResult, results: &[WorkloadResult]) -> Option<Goal> {
    let mb = r.mb_per_sec;
    let goal = |goal: &str, measured: String, met: Option<bool>| {
        Some(Goal {
            goal: goal.to_owned(),
            measured,
            met,
        })
    };
    match (r.workload.as_str(), r.variant.as_str()) {
        ("W1", _) => goal(
            "≥ 2,000 MB/s (≥ 1.5× Apache Iggy: not measured here)",
            format!("{mb:.0} MB/s"),
            Some(mb >= 2000.0),
        ),
        ("W2", v) if v.starts_with("sendfile") => {
            let cpu = r.broker_cpu_s_per_gib;
            let copy = find(results, "W2", "copy");
            let half = copy.map(|c| cpu <= c.broker_cpu_s_per_gib / 2.0);
            let vs = copy.map_or(String::new(), |c| {
                format!(
                    ", copy {:.3} (ratio {:.2})",
                    c.broker_cpu_s_per_gib,
                    cpu / c.broker_cpu_s_per_gib
                )
            });
            goal(
                "≥ 4,000 MB/s; ≤ 0.15 CPU-s/GiB; ≤ half of copy's CPU-s/GiB",
                format!("{mb:.0} MB/s; {cpu:.3} CPU-s/GiB{vs}"),
                all(&[Some(mb >= 4000.0), Some(cpu <= 0.15), half]),
            )
        }
        ("W3", "produce") => goal(
            "≥ 5,000,000 records/s produce",
            format!("{:.0} records/s", r.records_per_sec),
            Some(r.records_per_sec >= 5e6),
        ),
        ("W3", "consume") => goal(
            "≥ 10,000,000 records/s consume",
            format!("{:.0} records/s", r.records_per_sec),
            Some(r.records_per_sec >= 10e6),
        ),
        ("W4", _) => {
            let l = r.latency.as_ref()?;
            goal(
                "p50 ≤ 80 µs, p99 ≤ 250 µs, p99.9 ≤ 1,000 µs",
                format!(
                    "p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs",
                    l.p50_us, l.p99_us, l.p999_us
                ),
                Some(l.p50_us <= 80.0 && l.p99_us <= 250.0 && l.p999_us <= 1000.0),
            )
        }
        ("W5", _) => {
            let w1 = find(results, "W1", "produce");
            goal(
                "≥ 50% of W1's throughput, every acknowledged record fsynced",
                w1.map_or(format!("{mb:.0} MB/s (no W1 in this run)"), |w1| {
                    format!("{mb:.0} MB/s = {:.0}% of W1", 100.0 * mb / w1.mb_per_sec)
                }),
                w1.map(|w1| mb >= 0.5 * w1.mb_per_sec),
            )
        }
        ("W6", _) => {
            let w2 = find(results, "W2", path_of(r));
            goal(
                "aggregate ≥ 1.5× W2",
                w2.map_or(format!("{mb:.0} MB/s (no W2 in this run)"), |w2| {
                    format!("{mb:.0} MB/s = {:.2}× W2", mb / w2.mb_per_sec)
                }),
                w2.map(|w2| mb >= 1.5 * w2.mb_per_sec),
            )
        }
        ("W7", _) => {
            let with = r.latency.as_ref()?.p99_us;
            let base = r.details.get("baseline_p99_us")?.as_f64()?;
            goal(
                "p99 with the cold reader ≤ 2× p99 without",
                format!("{with:.0} µs vs {base:.0} µs = {:.2}×", with / base),
                Some(with <= 2.0 * base),
            )
        }
        ("W8", phase) => {
            let (other, name) = if phase == "produce" {
                (find(results, "W1", "produce"), "W1")
            } else {
                (find(results, "W2", ""), "W2")
            };
            goal(
                "aggregate within 20% of W1 (produce) / W2 (consume)",
                other.map_or(format!("{mb:.0} MB/s (no {name} in this run)"), |o| {
                    format!("{mb:.0} MB/s = {:.0}% of {name}", 100.0 * mb / o.mb_per_sec)
                }),
                other.map(|o| mb >= 0.8 * o.mb_per_sec),
            )
        }
        _ => None,
    }
}

/// Attaches its goal and verdict to every result that has one.
pub fn judge_all(results: &mut [WorkloadResult]) {
    let verdicts: Vec<Option<Goal>> = results.iter().map(|r| judge(r, results)).collect();
    for (r, g) in results.iter_mut().zip(verdicts) {
        r.goal = g;
    }
}
