//! The broker's log filter: what `--log`, `RUST_LOG` or `SLUICE_LOG` give,
//! with openraft's noisy reports kept off unless the filter names openraft.
//!
//! openraft logs at `info` a dozen lines per partition group as it forms or
//! elects, none naming the topic or partition, and at `error` every failed
//! call of each partition's replication stream and Raft core while a peer is
//! down, and every call that meets a core being shut down: thousands of
//! lines for a node with a few hundred partitions. The broker logs those
//! events itself, per partition and per peer (docs/operations.md, "Logs").
//! A filter such as `warn` asks for less, not for openraft's errors, so
//! those reports stay off; `warn,openraft=info` shows them.

/// openraft's targets whose reports the broker logs in its own words.
pub const OPENRAFT_QUIET: &str = "openraft::replication=off,openraft::engine::handler::replication_handler=off,openraft::core::raft_core=off,openraft::raft=off,openraft::engine::engine_impl=off";

/// The filter of a broker given none.
pub fn default_filter() -> String {
    format!("info,openraft=warn,{OPENRAFT_QUIET}")
}

/// `user`'s filter text with [`OPENRAFT_QUIET`] added, and openraft held
/// to `warn` when `user` asks for more than that, unless `user` names
/// openraft (then it is taken as it is). Errors are the filter's own.
pub fn with_openraft_quiet(user: &str) -> Result<String, String> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;
    let parsed = EnvFilter::try_new(user).map_err(|e| e.to_string())?;
    if user.contains("openraft") {
        return Ok(user.to_owned());
    }
    let mut text = user.trim().trim_end_matches(',').to_owned();
    if !text.is_empty() {
        text.push(',');
    }
    if parsed
        .max_level_hint()
        .is_none_or(|l| l > LevelFilter::WARN)
    {
        text.push_str("openraft=warn,");
    }
    text.push_str(OPENRAFT_QUIET);
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn openraft_stays_quiet_unless_named() {
        assert_eq!(
            with_openraft_quiet("warn").unwrap(),
            format!("warn,{OPENRAFT_QUIET}")
        );
        assert_eq!(
            with_openraft_quiet("error").unwrap(),
            format!("error,{OPENRAFT_QUIET}")
        );
        assert_eq!(
            with_openraft_quiet("info").unwrap(),
            format!("info,openraft=warn,{OPENRAFT_QUIET}")
        );
        assert_eq!(
            with_openraft_quiet("warn,sluice_broker::log=debug").unwrap(),
            format!("warn,sluice_broker::log=debug,openraft=warn,{OPENRAFT_QUIET}")
        );
        assert_eq!(
            with_openraft_quiet("info,openraft=info").unwrap(),
            "info,openraft=info"
        );
        assert_eq!(with_openraft_quiet("info").unwrap(), default_filter());
        assert!(with_openraft_quiet("info,x=nonsense").is_err());
    }
}
