//! How the shootout prints a table: plain text or markdown, with the machine and the date.

use std::fmt::Write as _;

/// One measured row.
pub(crate) struct Row {
    /// Which `workload` call measured it: rows are compared with the baseline of their own.
    pub(crate) group: usize,
    pub(crate) workload: String,
    pub(crate) threads: usize,
    /// Thread ops per item of the Mops/s and allocation columns (`Table::per_item`).
    pub(crate) ops_per_item: u64,
    /// Threads the workload ran besides the measuring ones (`Table::background`): counted for
    /// the `(over)` mark only.
    pub(crate) background: usize,
    pub(crate) candidate: String,
    pub(crate) baseline: bool,
    /// Median and quartiles of wall nanoseconds per op per thread.
    pub(crate) median_ns: f64,
    pub(crate) q1_ns: f64,
    pub(crate) q3_ns: f64,
    pub(crate) allocs_per_op: f64,
    pub(crate) bytes_per_op: f64,
}

pub(crate) fn render(
    module: &str,
    title: &str,
    rows: &[Row],
    cores: usize,
    markdown: bool,
) -> String {
    let head = [
        "workload",
        "threads",
        "candidate",
        "ns/op",
        "spread",
        "Mops/s",
        "ratio",
        "allocs/op",
        "bytes/op",
    ];
    let mut cells: Vec<[String; 9]> = Vec::new();
    for r in rows {
        let base = rows
            .iter()
            .find(|b| b.baseline && b.group == r.group)
            .map(|b| b.median_ns);
        let threads = if r.threads + r.background > cores {
            format!("{} (over)", r.threads)
        } else {
            r.threads.to_string()
        };
        cells.push([
            r.workload.clone(),
            threads,
            if r.baseline {
                format!("{} [std]", r.candidate)
            } else {
                r.candidate.clone()
            },
            fmt_ns(r.median_ns),
            fmt_spread((r.q3_ns - r.q1_ns) / r.median_ns),
            format!(
                "{:.1}",
                r.threads as f64 * 1e3 / r.median_ns / r.ops_per_item as f64
            ),
            base.map_or("-".into(), |b| format!("{:.2}x", r.median_ns / b)),
            fmt_count(r.allocs_per_op),
            fmt_count(r.bytes_per_op),
        ]);
    }
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "### {module}: {title}\n");
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}", " --- |".repeat(head.len()));
        for row in &cells {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out.push('\n');
        return out;
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap()
        })
        .collect();
    let line = |out: &mut String, row: &[String]| {
        for (i, cell) in row.iter().enumerate() {
            // Text columns left-aligned, numbers right-aligned.
            if i < 3 {
                let _ = write!(out, "{cell:<w$}  ", w = widths[i]);
            } else {
                let _ = write!(out, "{cell:>w$}  ", w = widths[i]);
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    let _ = writeln!(out, "== {module}: {title}");
    line(&mut out, &head.map(String::from));
    for row in &cells {
        line(&mut out, row);
    }
    out.push('\n');
    out
}

/// A time in nanoseconds as the tables print it (no unit below a microsecond).
pub(crate) fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2}ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2}µs", ns / 1e3)
    } else {
        format!("{ns:.1}")
    }
}

/// The interquartile range as a share of the median, in percent: one decimal below 10%.
fn fmt_spread(iqr_share: f64) -> String {
    let pct = 100.0 * iqr_share;
    if pct < 10.0 {
        format!("{pct:.1}%")
    } else {
        format!("{pct:.0}%")
    }
}

fn fmt_count(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Today's UTC date as YYYY-MM-DD, from the system clock (civil-from-days, H. Hinnant).
pub(crate) fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
