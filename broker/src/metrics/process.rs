//! Facts about the broker process, read from `/proc/self` at scrape time.

/// Process figures; `None` where `/proc` could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size in bytes.
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// Soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Threads.
    pub threads: Option<u64>,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: Option<f64>,
}

/// Reads the figures of this process.
pub fn read() -> ProcessStats {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    let max_fds = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft);
    let cpu_seconds = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .ok()
        .map(|u| {
            let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            tv(u.user_time()) + tv(u.system_time())
        });
    ProcessStats {
        resident_bytes: field("VmRSS:").map(|kib| kib * 1024),
        virtual_bytes: field("VmSize:").map(|kib| kib * 1024),
        open_fds,
        max_fds,
        threads: field("Threads:"),
        cpu_seconds,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_memory_fds_and_threads() {
        let p = super::read();
        assert!(p.resident_bytes.unwrap_or(0) > 0, "{p:?}");
        assert!(p.open_fds.unwrap_or(0) >= 3, "{p:?}");
        assert!(p.threads.unwrap_or(0) >= 1, "{p:?}");
        assert!(p.cpu_seconds.is_some(), "{p:?}");
    }
}
