//! Line charts as hand-written SVG: axes, ticks, labels, one polyline per
//! series and a legend. Small on purpose — enough for the benchmark
//! pictures without a plotting dependency.

use std::fmt::Write as _;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 64.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points in data coordinates.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label beside the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Fixed x ticks (value, label); chosen automatically when `None`.
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// A logarithmic y axis (values must be positive).
    pub log_y: bool,
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// About five round tick values covering `lo..=hi`.
fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

/// A short label for a tick value.
fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Renders `chart` as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let pts = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if !x.is_finite() || !y.is_finite() || (chart.log_y && y <= 0.0) {
            continue;
        }
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 1.0, 10.0);
    }
    if let Some(t) = &chart.x_ticks {
        for (v, _) in t {
            (x0, x1) = (x0.min(*v), x1.max(*v));
        }
    }
    if chart.x_ticks.is_none() && x0 > 0.0 {
        x0 = 0.0;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let (ylo, yhi, y_ticks): (f64, f64, Vec<(f64, String)>) = if chart.log_y {
        let lo = y0.log10().floor();
        let hi = y1.log10().ceil().max(lo + 1.0);
        let ticks = (lo as i32..=hi as i32)
            .map(|e| (f64::from(e), fmt_value(10f64.powi(e))))
            .collect();
        (lo, hi, ticks)
    } else {
        let hi = if y1 > 0.0 { y1 * 1.05 } else { 1.0 };
        let lo = y0.min(0.0);
        let ticks = linear_ticks(lo, hi)
            .into_iter()
            .map(|v| (v, fmt_value(v)))
            .collect();
        (lo, hi, ticks)
    };
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| {
        let v = if chart.log_y {
            y.max(f64::MIN_POSITIVE).log10()
        } else {
            y
        };
        TOP + ph - (v - ylo) / (yhi - ylo) * ph
    };
    let syv = |v: f64| TOP + ph - (v - ylo) / (yhi - ylo) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        esc(&chart.title)
    );
    // Grid and y ticks.
    for (v, label) in &y_ticks {
        let y = syv(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            esc(label)
        );
    }
    let x_ticks = chart.x_ticks.clone().unwrap_or_else(|| {
        linear_ticks(x0, x1)
            .into_iter()
            .map(|v| (v, fmt_value(v)))
            .collect()
    });
    for (v, label) in &x_ticks {
        let x = sx(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 18.0,
            esc(label)
        );
    }
    // Axes and their labels.
    let _ = writeln!(
        s,
        r#"<path d="M{LEFT},{TOP} V{:.1} H{:.1}" fill="none" stroke="black"/>"#,
        TOP + ph,
        LEFT + pw
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        HEIGHT - 18.0,
        esc(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + ph / 2.0,
        esc(&chart.y_label)
    );
    // Lines and legend.
    let mut legend_x = LEFT;
    for (i, series) in chart.series.iter().enumerate() {
        let color = COLORS.get(i % COLORS.len()).copied().unwrap_or("black");
        let mut points = String::new();
        for &(x, y) in &series.points {
            if x.is_finite() && y.is_finite() && (!chart.log_y || y > 0.0) {
                let _ = write!(points, "{:.1},{:.1} ", sx(x), sy(y));
            }
        }
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{}"/>"#,
            points.trim_end()
        );
        // Legend: one row between the title and the plot.
        let lx = legend_x;
        legend_x += 52.0 + 7.0 * series.label.chars().count() as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="48" x2="{:.1}" y2="48" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="52">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            esc(&series.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(linear_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(fmt_value(25_000.0), "25k");
        assert_eq!(fmt_value(0.5), "0.5");
    }

    #[test]
    fn renders_every_series() {
        let chart = Chart {
            title: "a < b".into(),
            series: vec![
                Series {
                    label: "one".into(),
                    points: vec![(0.0, 1.0), (1.0, 2.0)],
                },
                Series {
                    label: "two".into(),
                    points: vec![(0.0, 3.0), (1.0, 0.5)],
                },
            ],
            log_y: true,
            ..Chart::default()
        };
        let svg = render(&chart);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
