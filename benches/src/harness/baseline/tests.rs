use super::*;

#[test]
fn limits_move_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let s = sendfile_limit(dir.path(), 3 << 20 | 17, 1 << 20).unwrap();
    assert_eq!(s.bytes, 3 << 20 | 17);
    assert!(s.seconds > 0.0);
    let w = recv_pwrite_limit(dir.path(), 3 << 20 | 17, 1 << 20).unwrap();
    assert_eq!(w.bytes, 3 << 20 | 17);
    let d = dsync_limit(dir.path(), 2 << 20, 1 << 20).unwrap();
    assert_eq!(d.bytes, 2 << 20);
    // Every file is gone afterwards.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_paired_pass_keeps_its_file_until_the_caller_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = new_pwrite_file(dir.path()).unwrap();
    let w = recv_pwrite_into(&file, 2 << 20 | 5, 1 << 20).unwrap();
    assert_eq!(w.bytes, 2 << 20 | 5);
    assert_eq!(file.as_file().metadata().unwrap().len(), 2 << 20 | 5);
    let again = recv_pwrite_into(&new_pwrite_file(dir.path()).unwrap(), 1 << 20, 1 << 20);
    assert_eq!(again.unwrap().bytes, 1 << 20);
    // The second file went with its handle; the first stays.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let sum = w.plus(&Limit {
        bytes: 1,
        seconds: 1.0,
        cpu: CpuTimes {
            user: 0.5,
            sys: 0.25,
        },
    });
    assert_eq!(sum.bytes, (2 << 20 | 5) + 1);
    assert!((sum.seconds - w.seconds - 1.0).abs() < 1e-9);
    assert!((sum.cpu.total() - w.cpu.total() - 0.75).abs() < 1e-9);
    drop(file);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn round_trips_are_paced_and_counted() {
    let rt = round_trip_limit(1_000, 2_000, Duration::from_millis(250)).unwrap();
    assert_eq!(rt.exchanges, 500);
    assert_eq!(rt.size, 1_000);
    assert_eq!(rt.latency.count, 500);
    // Paced at 2,000 a second: 500 take about a quarter of a second.
    assert!(rt.seconds >= 0.24, "{} s", rt.seconds);
    assert!(rt.latency.p50_us > 0.0 && rt.latency.p50_us <= rt.latency.max_us);
    assert!(rt.server_cpu_us_per_exchange() >= 0.0);
    // From the schedule, each exchange counts at least its own round
    // trip, so no percentile is below the one taken from the write.
    let (s, l) = (&rt.from_schedule, &rt.latency);
    assert_eq!(s.count, 500);
    assert!(s.p50_us >= l.p50_us && s.p99_us >= l.p99_us && s.max_us >= l.max_us);
}

#[test]
fn every_allowed_cpu_is_watched_for_the_time_asked() {
    let all = cpu_gaps(Duration::from_millis(100)).unwrap();
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let count = (0..nix::sched::CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap())
        .count();
    assert_eq!(all.len(), count);
    for g in &all {
        assert!(g.seconds >= 0.1, "{g:?}");
        assert!(g.gap_seconds <= g.seconds, "{g:?}");
        assert!(
            g.gaps == 0 || g.longest_us >= CPU_GAP_MIN.as_micros() as f64,
            "{g:?}"
        );
    }
    let row = cpu_gaps_row(&all);
    assert_eq!(row.variant, CPU_GAPS);
    assert!(row.details.contains_key("longest_gap_us"));
}
