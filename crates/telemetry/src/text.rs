//! The Prometheus text format (version 0.0.4) for what is read at scrape time rather than
//! counted: gauges from the switch's state and histograms from [`Histogram`]s. Label values
//! here are ids and fixed words, escaped all the same.

use std::fmt::Write as _;
use std::time::Duration;

use crate::latency::Histogram;

/// Bucket bounds of the time histograms, in seconds: 50 µs to 10 s.
pub const BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `# HELP` and `# TYPE` of a family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample; `labels` as (name, value) pairs.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A gauge family with one unlabelled sample.
pub fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "gauge", help);
    sample(out, name, &[], value);
}

/// A histogram family in seconds from `h`, over [`BUCKETS`].
pub fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    family(out, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    for le in BUCKETS {
        let n = h.count_le(Duration::from_secs_f64(le));
        sample(out, &bucket, &[("le", &le.to_string())], n as f64);
    }
    sample(out, &bucket, &[("le", "+Inf")], h.count() as f64);
    sample(out, &format!("{name}_sum"), &[], h.sum().as_secs_f64());
    sample(out, &format!("{name}_count"), &[], h.count() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_ends_with_inf_sum_and_count() {
        let mut h = Histogram::default();
        for us in [40, 90, 2_000, 3_000_000] {
            h.record(Duration::from_micros(us));
        }
        let mut out = String::new();
        histogram(&mut out, "x_seconds", "Test.", &h);
        assert!(out.starts_with("# HELP x_seconds Test.\n# TYPE x_seconds histogram\n"));
        assert!(
            out.contains("x_seconds_bucket{le=\"0.00005\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_bucket{le=\"0.0001\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.0025\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"2.5\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"10\"} 4\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_seconds_count 4\n"), "{out}");
        assert!(out.contains("x_seconds_sum 3.00213\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\"y\\z\nw")], 1.0);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\nw\"} 1\n");
    }
}
