//! Analytics: per-event metrics over periods, rebuilt from the `EVENTS` stream.

pub mod metric;

pub use metric::{Analytics, Metric, MetricValue, Period};
