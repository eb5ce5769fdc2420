//! Consumer groups end to end: `sluice consume --group` processes sharing a
//! six-partition topic against a real broker — disjoint shares, a SIGKILLed
//! member's partitions taken over from its last commit, a clean leave, a
//! zombie (SIGSTOPped past its session) fenced, a static member restarted
//! without a rebalance, the coordinator restarted mid-rebalance. The group
//! commands are tested in `group_admin.rs`, the library alone in
//! `group_consumer.rs`.
//!
//! Records are identified by (partition, offset), printed as `%p %o`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod group_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use group_common::*;
use nix::sys::signal::Signal;

#[test]
fn three_members_share_the_partitions_and_take_over_from_a_killed_one() {
    let (_broker, addr) = setup();
    let opts = [
        "--session-timeout-ms",
        "3000",
        "--commit-interval-ms",
        "200",
    ];
    let mut members: Vec<Member> = (0..3).map(|_| Member::start(&addr, "g", &opts)).collect();
    let d = wait_balanced(&addr, "g", 3);
    let owner_of = owners(&d);

    produce(&addr, 50);
    let refs: Vec<&Member> = members.iter().collect();
    wait_until("all records read", 60, || seen(&refs) == all_records(50));
    // Disjoint: each partition read by exactly one member, no record twice.
    let mut readers: BTreeMap<u32, BTreeSet<usize>> = BTreeMap::new();
    let mut total = 0;
    for (i, m) in members.iter().enumerate() {
        for (p, _) in m.records() {
            readers.entry(p).or_default().insert(i);
            total += 1;
        }
    }
    assert_eq!(total, 50 * PARTITIONS as usize, "a record was read twice");
    assert!(readers.values().all(|r| r.len() == 1), "{readers:?}");
    wait_all_committed(&addr, "g", 50);

    // The victim reads more, then dies before (some of) its next commits.
    let victim = members.remove(0);
    let victim_member = owner_of[&victim.records()[0].0].clone();
    let victim_parts: BTreeSet<u32> = owner_of
        .iter()
        .filter(|(_, m)| **m == victim_member)
        .map(|(p, _)| *p)
        .collect();
    produce(&addr, 50);
    wait_until("the victim reads new records", 60, || {
        victim.records().iter().any(|&(_, o)| o >= 50)
    });
    let before_kill = committed(&describe(&addr, "g"));
    let victim_printed = victim.records();
    drop(victim); // SIGKILL
    // Records the victim cannot have seen: the survivors must read them,
    // on its partitions from its last commit on.
    produce(&addr, 50);
    let refs: Vec<&Member> = members.iter().collect();
    wait_until("the survivors read everything", 60, || {
        let mut all = seen(&refs);
        all.extend(victim_printed.iter().copied());
        all == all_records(150)
    });
    wait_balanced(&addr, "g", 2);

    // No record skipped (checked above); duplicates only of the victim's
    // records after its last commit.
    let mut printed: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    for r in members
        .iter()
        .flat_map(|m| m.records())
        .chain(victim_printed.iter().copied())
    {
        *printed.entry(r).or_default() += 1;
    }
    let duplicates: Vec<(u32, u64)> = printed
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(r, _)| *r)
        .collect();
    for (p, o) in &duplicates {
        assert!(
            victim_parts.contains(p),
            "duplicate {p}/{o} outside the victim's partitions"
        );
        assert!(
            o >= &before_kill[p],
            "duplicate {p}/{o} below the commit {}",
            before_kill[p]
        );
        assert!(
            victim_printed.contains(&(*p, *o)),
            "duplicate {p}/{o} the victim never read"
        );
    }
    eprintln!(
        "duplicates after SIGKILL: {} of {} records",
        duplicates.len(),
        150 * PARTITIONS
    );
}

#[test]
fn a_clean_leave_hands_over_at_once_without_duplicates() {
    let (_broker, addr) = setup();
    // A session timeout far beyond the wait below: only LeaveGroup can
    // move the partitions in time.
    let opts = [
        "--session-timeout-ms",
        "120000",
        "--commit-interval-ms",
        "200",
    ];
    let a = Member::start(&addr, "g", &opts);
    let b = Member::start(&addr, "g", &opts);
    wait_balanced(&addr, "g", 2);
    produce(&addr, 20);
    wait_until("all records read", 60, || {
        seen(&[&a, &b]) == all_records(20)
    });
    let left_at = Instant::now();
    let b_records = b.stop();
    wait_balanced(&addr, "g", 1);
    eprintln!("takeover after a clean leave: {:?}", left_at.elapsed());
    produce(&addr, 20);
    wait_until("all records read", 60, || {
        let mut s = seen(&[&a]);
        s.extend(b_records.iter().copied());
        s == all_records(40)
    });
    let mut count: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    for r in a.records().into_iter().chain(b_records) {
        *count.entry(r).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "read twice after a clean leave: {twice:?}"
    );
}

#[test]
fn a_zombie_back_from_a_pause_returns_nothing_stale_and_rejoins() {
    let (_broker, addr) = setup();
    let opts = [
        "--session-timeout-ms",
        "1500",
        "--commit-interval-ms",
        "200",
    ];
    let zombie = Member::start(&addr, "g", &opts);
    let other = Member::start(&addr, "g", &opts);
    wait_balanced(&addr, "g", 2);
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        seen(&[&zombie, &other]) == all_records(10)
    });
    wait_all_committed(&addr, "g", 10);

    zombie.signal(Signal::SIGSTOP);
    // Its session expires; the other member takes everything over.
    wait_balanced(&addr, "g", 1);
    produce(&addr, 10);
    wait_until("the other member reads the new records", 60, || {
        let mut s = seen(&[&other]);
        s.extend(zombie.records());
        s == all_records(20)
    });
    wait_all_committed(&addr, "g", 20);
    let zombie_before = zombie.records().len();

    zombie.signal(Signal::SIGCONT);
    wait_until("the zombie notices and rejoins", 30, || {
        zombie.stderr_has("group: lost")
    });
    wait_balanced(&addr, "g", 2);
    // Everything it could have read was already committed by the other
    // member: whatever it printed since it woke up is a stale read.
    let stale: Vec<_> = zombie.records()[zombie_before..].to_vec();
    assert!(
        stale.is_empty(),
        "the zombie returned records it no longer owned: {stale:?}"
    );
    // Its stale positions never overwrote the newer commits.
    let c = committed(&describe(&addr, "g"));
    assert!((0..PARTITIONS).all(|p| c.get(&p) == Some(&20)), "{c:?}");
}

#[test]
fn a_static_member_restarts_without_a_rebalance() {
    let (_broker, addr) = setup();
    let opts = |id: &'static str| ["--group-instance-id", id, "--session-timeout-ms", "30000"];
    let a = Member::start(&addr, "g", &opts("a"));
    let b = Member::start(&addr, "g", &opts("b"));
    let before = wait_balanced(&addr, "g", 2);
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        seen(&[&a, &b]) == all_records(10)
    });
    let a_parts: BTreeSet<u32> = a.records().iter().map(|r| r.0).collect();
    let a_records = a.stop();
    let a = Member::start(&addr, "g", &opts("a"));
    wait_until("the restarted member is assigned", 30, || {
        a.stderr_has("group: assigned")
    });
    let after = wait_balanced(&addr, "g", 2);
    assert_eq!(
        after["generation"], before["generation"],
        "a rebalance happened"
    );
    let b_events: Vec<String> = b
        .stderr()
        .into_iter()
        .filter(|l| l.contains("assigned") || l.contains("revoked"))
        .collect();
    assert_eq!(
        b_events.len(),
        1,
        "the other member saw a rebalance: {b_events:?}"
    );
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        let mut s = seen(&[&a, &b]);
        s.extend(a_records.iter().copied());
        s == all_records(20)
    });
    let again: BTreeSet<u32> = a.records().iter().map(|r| r.0).collect();
    assert_eq!(again, a_parts, "the static member got other partitions");
    assert!(
        a.records().iter().all(|&(_, o)| o >= 10),
        "it re-read committed records"
    );
}

#[test]
fn the_group_recovers_when_the_coordinator_restarts_mid_rebalance() {
    let (mut broker, addr) = setup();
    let opts = [
        "--session-timeout-ms",
        "5000",
        "--commit-interval-ms",
        "200",
    ];
    let a = Member::start(&addr, "g", &opts);
    let b = Member::start(&addr, "g", &opts);
    wait_balanced(&addr, "g", 2);
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        seen(&[&a, &b]) == all_records(10)
    });
    wait_all_committed(&addr, "g", 10);
    // A stopped member keeps the rebalance a newcomer starts from ending.
    b.signal(Signal::SIGSTOP);
    let c = Member::start(&addr, "g", &opts);
    wait_until("a rebalance under way", 30, || {
        describe(&addr, "g")["state"] == "PreparingRebalance"
    });
    broker.kill();
    broker.restart();
    b.signal(Signal::SIGCONT);
    wait_balanced(&addr, "g", 3);
    produce(&addr, 10);
    wait_until("all records read", 60, || {
        seen(&[&a, &b, &c]) == all_records(20)
    });
    let mut count: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    for r in [&a, &b, &c].iter().flat_map(|m| m.records()) {
        *count.entry(r).or_default() += 1;
    }
    // Everything before the restart was committed: nothing is read twice.
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{twice:?}");
}

/// The rebalance callbacks a member saw (`--verbose` lines) since `from`.
fn rebalances(m: &Member, from: usize) -> Vec<String> {
    m.stderr()[from..]
        .iter()
        .filter(|l| l.starts_with("group: revoked") || l.starts_with("group: assigned"))
        .cloned()
        .collect()
}

/// Partitions a member holds by its own callbacks (`assigned` adds,
/// `revoked` removes).
fn held(m: &Member) -> usize {
    let mut set = BTreeSet::new();
    for l in rebalances(m, 0) {
        let mut words = l.split_whitespace().skip(1);
        let kind = words.next().unwrap_or_default();
        for tp in words {
            let tp = tp.split('@').next().unwrap_or_default().to_owned();
            if kind == "assigned" {
                set.insert(tp);
            } else {
                set.remove(&tp);
            }
        }
    }
    set.len()
}

/// Waits until every member's callbacks have caught up with a balanced
/// group (the coordinator's view can be ahead of a member's output).
fn wait_callbacks(members: &[&Member]) {
    let share = PARTITIONS as usize / members.len();
    wait_until("members' callbacks", 60, || {
        members.iter().all(|m| held(m) == share)
    });
}

/// With cooperative-sticky (the default) a member joining a stable group
/// takes one partition from each of the two others, which revoke just that
/// one and keep consuming the rest; with the eager `range` assignor every
/// member revokes everything first.
#[test]
fn a_joining_member_moves_only_what_it_takes_unless_the_assignor_is_eager() {
    let (_broker, addr) = setup();
    for (group, assignor) in [("coop", "cooperative-sticky"), ("eager", "range")] {
        let opts = ["--assignor", assignor];
        let a = Member::start(&addr, group, &opts);
        let b = Member::start(&addr, group, &opts);
        wait_balanced(&addr, group, 2);
        wait_callbacks(&[&a, &b]);
        let from = [a.stderr().len(), b.stderr().len()];
        let c = Member::start(&addr, group, &opts);
        wait_balanced(&addr, group, 3);
        wait_callbacks(&[&a, &b, &c]);
        for (m, from) in [(&a, from[0]), (&b, from[1])] {
            let events = rebalances(m, from);
            let words = |l: &String| l.split_whitespace().count() - 2;
            if assignor == "range" {
                assert!(
                    events.len() == 2 && words(&events[0]) == 3,
                    "{assignor}: {events:?}"
                );
                assert!(events[0].starts_with("group: revoked"), "{events:?}");
            } else {
                assert_eq!(events.len(), 1, "{assignor}: {events:?}");
                assert!(events[0].starts_with("group: revoked"), "{events:?}");
                assert_eq!(words(&events[0]), 1, "{events:?}");
            }
        }
        drop(c);
    }
}
