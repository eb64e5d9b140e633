//! The plain-text report: titled blocks of aligned `label  value` lines.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

#[derive(Default)]
pub struct Report {
    out: String,
}

const LABEL_WIDTH: usize = 40;

impl Report {
    pub fn section(&mut self, title: &str) -> &mut Self {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        let _ = writeln!(self.out, "{title}");
        let _ = writeln!(
            self.out,
            "{}",
            "-".repeat(title.chars().count().max(LABEL_WIDTH + 20))
        );
        self
    }

    pub fn line(&mut self, label: &str, value: impl std::fmt::Display) -> &mut Self {
        let _ = writeln!(self.out, "  {label:<LABEL_WIDTH$} {value}");
        self
    }

    /// p50, p95, p99 and max of a latency histogram in microseconds.
    pub fn latencies(&mut self, prefix: &str, h: &Histogram<u64>) -> &mut Self {
        if h.is_empty() {
            return self.line(&format!("{prefix} latency"), "no samples");
        }
        let text = format!(
            "p50 {}  p95 {}  p99 {}  max {}",
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.95)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
        );
        self.line(&format!("{prefix} latency"), text)
    }

    pub fn text(&self) -> &str {
        &self.out
    }
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `count` per `d`, one decimal.
pub fn rate(count: u64, d: Duration) -> String {
    format!("{:.1}/s", count as f64 / d.as_secs_f64().max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_aligned_under_a_title() {
        let mut r = Report::default();
        r.section("storm").line("holds", 12).line("conflicts", 3);
        let t = r.text();
        assert!(t.starts_with("storm\n---"));
        assert!(t.contains(&format!("  {:<LABEL_WIDTH$} 12\n", "holds")));
    }

    #[test]
    fn rates_and_times_read_plainly() {
        assert_eq!(rate(10, Duration::from_secs(4)), "2.5/s");
        assert_eq!(ms(1534), "1.53 ms");
        assert_eq!(secs(Duration::from_millis(1500)), "1.50 s");
    }
}
