//! The traffic chart's arithmetic: the time both its lines cover, each
//! line's scale, and where each point goes in the SVG's box. The box is
//! stretched to the page's width; its labels are HTML beside it, so that
//! they keep their size on a phone.

use super::wire::{Point, Series};

/// The SVG's box, in its own units (`viewBox="0 0 300 100"`).
pub const WIDTH: f64 = 300.0;
pub const HEIGHT: f64 = 100.0;

/// A step longer than this many `every_ms` is a gap (a node that did not
/// answer, a restart): the line breaks there instead of bridging it.
const GAP_STEPS: u64 = 2;

/// The time the chart covers: from its first point to its last (at least
/// one step, so that a single point sits at the right edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: u64,
    pub to_ms: u64,
    every_ms: u64,
}

impl Window {
    /// The window of `series`; `None` without points.
    pub fn of(series: &Series) -> Option<Self> {
        let to_ms = series.points.iter().map(|p| p.t_ms).max()?;
        let first = series.points.iter().map(|p| p.t_ms).min()?;
        let from_ms = first.min(to_ms.saturating_sub(series.every_ms));
        Some(Self { from_ms, to_ms, every_ms: series.every_ms })
    }

    pub fn span_ms(&self) -> u64 {
        self.to_ms - self.from_ms
    }

    fn x(&self, t_ms: u64) -> f64 {
        let span = self.span_ms().max(1) as f64;
        (t_ms.saturating_sub(self.from_ms)) as f64 / span * WIDTH
    }
}

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// SVG path data, `M x y L x y …`, with a new `M` after each gap.
    pub path: String,
    /// The top of the scale (its bottom is 0).
    pub top: f64,
    /// The newest value.
    pub latest: Option<f64>,
}

/// The line of `value` over `series`, in `window`.
pub fn plot(series: &Series, window: &Window, value: impl Fn(&Point) -> f64) -> Plot {
    let mut points: Vec<(u64, f64)> = series.points.iter().map(|p| (p.t_ms, value(p).max(0.0))).collect();
    points.sort_by_key(|(t, _)| *t);
    let top = nice_top(points.iter().map(|(_, v)| *v).fold(0.0, f64::max));
    let gap_ms = series.every_ms.saturating_mul(GAP_STEPS);
    let mut path = String::new();
    let mut previous: Option<u64> = None;
    for &(t_ms, v) in &points {
        let joined = previous.is_some_and(|before| series.every_ms == 0 || t_ms - before <= gap_ms);
        let y = HEIGHT - v / top * HEIGHT;
        let command = if joined { 'L' } else { 'M' };
        let separator = if path.is_empty() { "" } else { " " };
        path.push_str(&format!("{separator}{command}{:.1} {y:.1}", window.x(t_ms)));
        previous = Some(t_ms);
    }
    Plot { path, top, latest: points.last().map(|(_, v)| *v) }
}

/// The top of a scale that holds `max`: the next of 1, 2, 5 × 10ⁿ at or
/// above it (1 for nothing, so that a flat zero lies on the bottom).
pub fn nice_top(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|step| step * magnitude).find(|top| *top >= max).unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn series(points: &[(u64, u64, f64)]) -> Series {
        let points = points
            .iter()
            .map(|&(t, connections, deliveries_per_s)| Point { t_ms: T0 + t, connections, deliveries_per_s })
            .collect();
        Series { every_ms: 2_000, points }
    }

    #[test]
    fn scales_end_on_one_two_or_five() {
        let tops: Vec<f64> = [0.0, 0.3, 1.0, 1.2, 3.0, 7.0, 10.0, 11.0, 240.0].into_iter().map(nice_top).collect();
        assert_eq!(tops, [1.0, 0.5, 1.0, 2.0, 5.0, 10.0, 10.0, 20.0, 500.0]);
        assert_eq!(nice_top(f64::NAN), 1.0);
    }

    #[test]
    fn points_span_the_width_and_the_scale_the_height() {
        let series = series(&[(0, 0, 0.0), (2_000, 5, 2.5), (4_000, 10, 5.0)]);
        let window = Window::of(&series).unwrap();
        assert_eq!((window.from_ms, window.to_ms, window.span_ms()), (T0, T0 + 4_000, 4_000));
        let connections = plot(&series, &window, |p| p.connections as f64);
        assert_eq!(connections.top, 10.0);
        assert_eq!(connections.path, "M0.0 100.0 L150.0 50.0 L300.0 0.0");
        assert_eq!(connections.latest, Some(10.0));
        let deliveries = plot(&series, &window, |p| p.deliveries_per_s);
        assert_eq!(deliveries.top, 5.0);
        assert_eq!(deliveries.path, connections.path, "the same shape on its own scale");
    }

    #[test]
    fn a_gap_breaks_the_line() {
        let series = series(&[(0, 1, 0.0), (2_000, 1, 0.0), (10_000, 1, 0.0), (12_000, 1, 0.0)]);
        let window = Window::of(&series).unwrap();
        let line = plot(&series, &window, |p| p.connections as f64);
        assert_eq!(line.path, "M0.0 0.0 L50.0 0.0 M250.0 0.0 L300.0 0.0");
    }

    #[test]
    fn points_out_of_order_are_drawn_in_time_order() {
        let series = series(&[(2_000, 2, 0.0), (0, 1, 0.0)]);
        let window = Window::of(&series).unwrap();
        let line = plot(&series, &window, |p| p.connections as f64);
        assert_eq!(line.path, "M0.0 50.0 L300.0 0.0");
        assert_eq!(line.latest, Some(2.0));
    }

    #[test]
    fn a_single_point_sits_at_the_right_edge() {
        let series = series(&[(0, 0, 0.0)]);
        let window = Window::of(&series).unwrap();
        assert_eq!(window.span_ms(), 2_000);
        let line = plot(&series, &window, |p| p.deliveries_per_s);
        assert_eq!((line.path.as_str(), line.top), ("M300.0 100.0", 1.0));
    }

    #[test]
    fn no_points_no_window() {
        assert_eq!(Window::of(&Series::default()), None);
    }
}
