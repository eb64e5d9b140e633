//! Peak resident memory (`VmHWM`) of the product's processes, by the pid files that
//! `scripts/up.sh` writes.

use std::path::Path;

/// `VmHWM` of the process whose pid is in `<run_dir>/<name>.pid`, for example
/// `"47.1 MiB (48212 kB)"`; `None` when the file, the process or the line is absent.
pub fn peak_memory(run_dir: &Path, name: &str) -> Option<String> {
    let pid = std::fs::read_to_string(run_dir.join(format!("{name}.pid"))).ok()?;
    let pid: u32 = pid.trim().parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm(&status)
}

fn vm_hwm(status: &str) -> Option<String> {
    let raw = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim();
    match raw
        .strip_suffix(" kB")
        .and_then(|n| n.trim().parse::<u64>().ok())
    {
        Some(kb) => Some(format!("{:.1} MiB ({kb} kB)", kb as f64 / 1024.0)),
        None => Some(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_high_water_mark_line() {
        let status = "Name:\tx\nVmPeak:\t 1000 kB\nVmHWM:\t   48212 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(vm_hwm(status).as_deref(), Some("47.1 MiB (48212 kB)"));
        assert_eq!(vm_hwm("Name: x\n"), None);
    }

    #[test]
    fn a_missing_pid_file_is_unknown() {
        assert_eq!(
            peak_memory(Path::new("/nonexistent-run-dir"), "gateway"),
            None
        );
    }

    #[test]
    fn this_process_has_a_peak() {
        let dir = std::env::temp_dir().join(format!("bench-procmem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("me.pid"), std::process::id().to_string()).unwrap();
        assert!(peak_memory(&dir, "me").unwrap().ends_with(" kB)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
