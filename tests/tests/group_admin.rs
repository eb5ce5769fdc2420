//! `sluice group describe|list|reset-offsets|delete` against a real broker:
//! committed offsets, log ends and lag; resets to earliest, latest, a time
//! and an offset, refused while the group has members; deletion.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod group_common;

use group_common::*;

#[test]
fn offsets_are_reset_only_without_members_and_groups_deleted() {
    let (_broker, addr) = setup();
    produce(&addr, 10);
    let consume_all = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "consume",
            TOPIC,
            "--group",
            "g",
            "--format",
            "%p %o",
            "--timeout-ms",
            "1500",
        ];
        args.extend_from_slice(extra);
        ok(&addr, &args).lines().map(str::to_owned).collect()
    };
    assert_eq!(consume_all(&["--from-beginning"]).len(), 60);
    let d = describe(&addr, "g");
    assert_eq!(d["state"], "Empty");
    for p in d["partitions"].as_array().unwrap() {
        assert_eq!(
            (
                p["committed_offset"].as_u64(),
                p["log_end_offset"].as_u64(),
                p["lag"].as_u64()
            ),
            (Some(10), Some(10), Some(0))
        );
    }
    let text = ok(&addr, &["group", "describe", "g"]);
    assert!(text.contains("state: Empty"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with(TOPIC)).count(),
        6,
        "{text}"
    );
    assert!(
        ok(&addr, &["group", "list"])
            .lines()
            .any(|l| l.starts_with("g "))
    );

    let reset = |to: &[&str]| {
        let mut args = vec!["group", "reset-offsets", "g", "--topic", TOPIC];
        args.extend_from_slice(to);
        ok(&addr, &args)
    };
    let plan = reset(&["--to-offset", "4", "--dry-run"]);
    assert!(plan.contains("dry run"), "{plan}");
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![10; 6]
    );
    reset(&["--to-earliest"]);
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![0; 6]
    );
    reset(&["--to-latest"]);
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![10; 6]
    );
    reset(&["--to-time", "0"]);
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![0; 6]
    );
    reset(&["--to-offset", "4"]);
    assert_eq!(
        committed(&describe(&addr, "g"))
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![4; 6]
    );
    // A consumer of the group continues from the reset offsets.
    let again = consume_all(&[]);
    assert_eq!(again.len(), 36, "{again:?}");

    // With a member: both refused, with a clear message.
    let m = Member::start(&addr, "g", &[]);
    wait_balanced(&addr, "g", 1);
    let out = sluice(
        &addr,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            TOPIC,
            "--to-earliest",
        ],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("has 1 member"), "{err}");
    let out = sluice(&addr, &["group", "delete", "g"], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("it has members"), "{err}");
    m.stop();

    assert_eq!(
        ok(&addr, &["group", "delete", "g"]).trim(),
        "deleted group g"
    );
    assert!(
        !ok(&addr, &["group", "list"])
            .lines()
            .any(|l| l.starts_with("g "))
    );
    // Gone, commits and all: deleting it again says it is unknown;
    // describing it says it has nothing (a group about to form is
    // described the same, and scripts wait for it).
    assert!(committed(&describe(&addr, "g")).is_empty());
    let out = sluice(&addr, &["group", "describe", "g"], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("group \"g\" has no members and no committed offsets"),
        "{err}"
    );
    let out = sluice(&addr, &["group", "delete", "g"], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown group \"g\""), "{err}");
}
