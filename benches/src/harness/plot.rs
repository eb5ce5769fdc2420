//! `--plot DIR`: the run's pictures as SVG — latency percentile curves for
//! W4 and W7, throughput per 100 ms for W1 and W3.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hdrhistogram::Histogram;

use super::bench::PlotData;
use super::meter::{SAMPLE_INTERVAL, series_mb_per_sec};
use super::svg::{Chart, Series, render};

/// Highest "nines" drawn on a percentile plot (5 = 99.999%).
const MAX_NINES: f64 = 5.0;

/// The percentile curve of a histogram of nanoseconds: x is the number of
/// nines (`log10(1 / (1 - q))`), y is microseconds.
fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let count = h.len().max(1) as f64;
    // Beyond 1 - 1/count the histogram has no more resolution.
    let last = count.log10().min(MAX_NINES);
    let mut out: Vec<(f64, f64)> = (0..=200)
        .map(|i| f64::from(i) * MAX_NINES / 200.0)
        .take_while(|&x| x <= last)
        .map(|x| {
            let q = 1.0 - 10f64.powf(-x);
            (x, h.value_at_quantile(q) as f64 / 1e3)
        })
        .collect();
    out.push((last, h.max() as f64 / 1e3));
    out
}

fn nines_ticks() -> Vec<(f64, String)> {
    ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
        .map(|(i, l)| (i as f64, (*l).to_owned()))
        .collect()
}

/// The chart for one picture.
pub fn chart(plot: &PlotData) -> (String, Chart) {
    match plot {
        PlotData::Throughput {
            name,
            title,
            series,
        } => {
            let dt = SAMPLE_INTERVAL.as_secs_f64();
            let series = series
                .iter()
                .map(|(label, bytes)| Series {
                    label: label.clone(),
                    points: series_mb_per_sec(bytes)
                        .into_iter()
                        .enumerate()
                        .map(|(i, mb)| ((i + 1) as f64 * dt, mb))
                        .collect(),
                })
                .collect();
            (
                name.clone(),
                Chart {
                    title: title.clone(),
                    x_label: "seconds since the phase started".into(),
                    y_label: "MB/s of record values (10^6 B/s)".into(),
                    series,
                    ..Chart::default()
                },
            )
        }
        PlotData::Latency {
            name,
            title,
            series,
        } => {
            let series = series
                .iter()
                .map(|(label, h)| Series {
                    label: label.clone(),
                    points: percentile_curve(h),
                })
                .collect();
            (
                name.clone(),
                Chart {
                    title: title.clone(),
                    x_label: "percentile".into(),
                    y_label: "send-to-receipt latency (µs, log scale)".into(),
                    series,
                    x_ticks: Some(nines_ticks()),
                    log_y: true,
                },
            )
        }
    }
}

/// Writes every picture into `dir` as `<name>.svg`; returns the paths.
pub fn write_all(dir: &Path, plots: &[PlotData]) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for plot in plots {
        let (name, chart) = chart(plot);
        let path = dir.join(format!("{name}.svg"));
        std::fs::write(&path, render(&chart))
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
