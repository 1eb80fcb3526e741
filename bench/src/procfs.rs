//! CPU time and peak memory of a process on this machine, from /proc
//! (Linux only): `utime + stime` from `/proc/<pid>/stat` and `VmHWM` from
//! `/proc/<pid>/status`.

use crate::error::{Context, bail};

/// Clock ticks per second of the times in /proc/<pid>/stat. This is the
/// kernel's USER_HZ, fixed at 100 on every architecture Skein targets
/// (reading `sysconf(_SC_CLK_TCK)` would need `unsafe` libc calls).
const USER_HZ: f64 = 100.0;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    /// User plus system CPU time since the process started.
    pub cpu_seconds: f64,
    /// Peak resident set size since the process started.
    pub peak_rss_bytes: u64,
}

/// Reads `pid`'s counters; fails clearly when the process does not exist.
pub fn sample(pid: u32) -> crate::Result<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (is process {pid} running on this machine?)"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok(ProcessSample { cpu_seconds: cpu_seconds(&stat)?, peak_rss_bytes: peak_rss_bytes(&status)? })
}

/// CPU seconds used by this process (the load generator itself).
pub fn own_cpu_seconds() -> crate::Result<f64> {
    cpu_seconds(&std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?)
}

/// `utime` and `stime` are fields 14 and 15; the command name (field 2) is
/// in parentheses and may itself hold spaces or parentheses, so fields are
/// counted from the last `)`.
fn cpu_seconds(stat: &str) -> crate::Result<f64> {
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("no ')' in /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so field n is at index n - 3.
    let tick = |n: usize| -> crate::Result<u64> {
        fields.get(n - 3).context("/proc stat is too short")?.parse::<u64>().context("bad /proc stat number")
    };
    Ok((tick(14)? + tick(15)?) as f64 / USER_HZ)
}

fn peak_rss_bytes(status: &str) -> crate::Result<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM in /proc status")?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = parts.next().context("empty VmHWM")?.parse().context("bad VmHWM")?;
    match parts.next() {
        Some("kB") => Ok(value * 1024),
        other => bail!("unexpected VmHWM unit {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_names() {
        let stat = "4242 (my (weird) name) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_seconds(stat).expect("parses"), 3.25);
        assert!(cpu_seconds("4242 (x) S 1").is_err());
    }

    #[test]
    fn parses_peak_rss() {
        let status = "Name:\tskein\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(peak_rss_bytes(status).expect("parses"), 51200 * 1024);
        assert!(peak_rss_bytes("Name:\tskein\n").is_err());
    }

    #[test]
    fn samples_this_process_and_refuses_missing_ones() {
        let me = sample(std::process::id()).expect("own process");
        assert!(me.peak_rss_bytes > 0);
        assert!(own_cpu_seconds().expect("self") >= 0.0);
        let err = sample(u32::MAX).expect_err("no such pid");
        assert!(err.to_string().contains("running on this machine"), "{err}");
    }
}
