//! One plotting panel: x axis, a left y axis, an optional right y axis, and
//! the series drawn against them; a chart is one or more panels stacked
//! over a shared x axis ([`render`]), so figures of different sizes (a
//! server's user space beside the kernel's memory) each get an axis that
//! shows them. Charts describe what to draw as [`Series`] and [`Axis`]
//! values; this module owns how.
//!
//! Series on the right axis (context such as connections) are drawn first,
//! so the left-axis metrics stay on top where they cross.

use crate::canvas::{padded, Area, Stroke, Style, AXIS_DESC_PX, FONT, SHADE_ALPHA, TICK_PX};
use crate::legend::{LegendEntry, Mark};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::{DashedPathElement, DottedPathElement};
use plotters::prelude::*;
use std::ops::Range;

/// One series: its legend entry (which also says how it is drawn), the
/// axis it belongs to, and its points split into runs where data exists.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) entry: LegendEntry,
    pub(crate) right_axis: bool,
    pub(crate) segments: Vec<Vec<(f64, f64)>>,
}

impl Series {
    /// `None` points break the line (an interval with no data, such as no
    /// message and so no latency), rather than drawing it down to zero.
    pub(crate) fn new(
        entry: LegendEntry,
        right_axis: bool,
        points: impl IntoIterator<Item = Option<(f64, f64)>>,
    ) -> Self {
        let mut segments = vec![vec![]];
        for point in points {
            match point {
                Some(p) if p.0.is_finite() && p.1.is_finite() => {
                    segments.last_mut().unwrap().push(p)
                }
                _ if !segments.last().unwrap().is_empty() => segments.push(vec![]),
                _ => {}
            }
        }
        segments.retain(|s| !s.is_empty());
        Self {
            entry,
            right_axis,
            segments,
        }
    }

    /// Rescales every y (units chosen once the data is known).
    pub(crate) fn map_y(&mut self, f: impl Fn(f64) -> f64) {
        for p in self.segments.iter_mut().flatten() {
            p.1 = f(p.1);
        }
    }

    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.segments.iter().flatten()
    }
}

/// An axis: its name (with units) and how its ticks read.
pub(crate) struct Axis<'a> {
    pub(crate) desc: &'a str,
    pub(crate) fmt: fn(f64) -> String,
}

/// What one panel shows.
pub(crate) struct Panel<'a> {
    pub(crate) x_range: Range<f64>,
    pub(crate) x: Axis<'a>,
    pub(crate) left: Axis<'a>,
    /// A log scale on the left axis (when some value is positive), so a
    /// series ten times lower than another still shows its shape.
    pub(crate) left_log: bool,
    /// A right axis: its room is kept whenever given (so stacked panels line
    /// up), its ticks drawn only when some series is on it.
    pub(crate) right: Option<Axis<'a>>,
    pub(crate) series: &'a [Series],
}

/// The y range of the series on one side.
fn y_range<'s>(series: impl Iterator<Item = &'s Series>) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(_, y) in series.flat_map(Series::points) {
        lo = lo.min(y);
        hi = hi.max(y);
    }
    if lo > hi {
        return 0.0..1.0;
    }
    padded(lo, hi)
}

/// Lowers the bottom of one range so that zero sits at the same height on
/// both axes (a dip below zero on one side must not float the other
/// side's zero off the bottom).
fn align_zero(a: Range<f64>, b: Range<f64>) -> (Range<f64>, Range<f64>) {
    let below = |r: &Range<f64>| (-r.start / (r.end - r.start)).clamp(0.0, 0.95);
    let f = below(&a).max(below(&b));
    let lower = |r: Range<f64>| {
        if r.end <= 0.0 {
            return r;
        }
        let start = (-f * r.end / (1.0 - f)).min(r.start.min(0.0));
        start..r.end
    };
    (lower(a), lower(b))
}

/// The positive range of the left series for a log axis, with some room,
/// or `None` when nothing is positive.
fn log_range(series: &[Series]) -> Option<Range<f64>> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(_, y) in series
        .iter()
        .filter(|s| !s.right_axis)
        .flat_map(Series::points)
    {
        if y > 0.0 {
            lo = lo.min(y);
            hi = hi.max(y);
        }
    }
    (lo <= hi).then(|| lo / 1.5..hi * 1.5)
}

/// Writes a chart of `panels` stacked top to bottom to `chart.out`: they
/// share the x axis (give only the bottom one an x description), and one
/// legend lists every series once (a context series such as connections,
/// drawn in several panels, appears once).
pub(crate) fn render(
    chart: &crate::ChartArgs,
    title: &str,
    panels: &[Panel],
) -> anyhow::Result<()> {
    let mut legend: Vec<LegendEntry> = Vec::new();
    for entry in panels
        .iter()
        .flat_map(|p| p.series.iter().map(|s| &s.entry))
    {
        if !legend.contains(entry) {
            legend.push(entry.clone());
        }
    }
    crate::canvas::render(&chart.out, chart.size, title, &legend, |area, style| {
        let n = panels.len().max(1) as u32;
        // The bottom panel also holds the x axis's ticks and description.
        let each = area.dim_in_pixel().1.saturating_sub(style.px(22) as u32) / n;
        let mut rest = area.clone();
        for (i, panel) in panels.iter().enumerate() {
            if i + 1 == panels.len() {
                draw(&rest, style, panel)?;
            } else {
                let (top, below) = rest.split_vertically(each);
                draw(&top, style, panel)?;
                rest = below;
            }
        }
        Ok(())
    })
}

/// The left and right y ranges of a linear panel: each side's data with
/// room, zero at the same height on both when the right axis is used.
pub(crate) fn linear_ranges(panel: &Panel) -> (Range<f64>, Range<f64>) {
    let right_used = panel.series.iter().any(|s| s.right_axis);
    let left_y = y_range(panel.series.iter().filter(|s| !s.right_axis));
    let right_y = y_range(panel.series.iter().filter(|s| s.right_axis));
    if right_used {
        align_zero(left_y, right_y)
    } else {
        (left_y, right_y)
    }
}

/// The share of its axis's height that series `s` of a linear panel
/// spans, from its lowest point to its highest: what a reader sees of it
/// (a line squashed along the bottom spans almost nothing). For tests that
/// pin what a chart shows.
#[cfg(test)]
pub(crate) fn visible_share(panel: &Panel, s: &Series) -> f64 {
    let (left, right) = linear_ranges(panel);
    let axis = if s.right_axis { right } else { left };
    let (lo, hi) = s
        .points()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if lo > hi {
        return 0.0;
    }
    (hi - lo) / (axis.end - axis.start)
}

/// Draws `panel` filling `area`.
pub(crate) fn draw(area: &Area, st: &Style, panel: &Panel) -> anyhow::Result<()> {
    if panel.left_log {
        if let Some(range) = log_range(panel.series) {
            let right_y = y_range(panel.series.iter().filter(|s| s.right_axis));
            return draw_on(area, st, panel, range.log_scale(), right_y);
        }
    }
    let (left_y, right_y) = linear_ranges(panel);
    draw_on(area, st, panel, left_y, right_y)
}

fn draw_on<Y>(
    area: &Area,
    st: &Style,
    panel: &Panel,
    left_y: Y,
    right_y: Range<f64>,
) -> anyhow::Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let right = panel.right.as_ref();
    let right_used = panel.series.iter().any(|s| s.right_axis);
    let (x_fmt, left_fmt) = (panel.x.fmt, panel.left.fmt);
    let mut chart = ChartBuilder::on(area)
        .margin_left(st.px(12))
        .margin_right(st.px(if right.is_some() { 12 } else { 28 }))
        .margin_top(st.px(8))
        .margin_bottom(st.px(8))
        .x_label_area_size(st.px(if panel.x.desc.is_empty() { 30 } else { 52 }))
        .y_label_area_size(st.px(78))
        .right_y_label_area_size(if right.is_some() { st.px(86) } else { 0 })
        .build_cartesian_2d(panel.x_range.clone(), left_y)?
        .set_secondary_coord(panel.x_range.clone(), right_y);
    chart
        .configure_mesh()
        .x_desc(panel.x.desc)
        .y_desc(panel.left.desc)
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&|v| x_fmt(*v))
        .y_label_formatter(&|v| left_fmt(*v))
        .label_style((FONT, st.font(TICK_PX)))
        .axis_desc_style((FONT, st.font(AXIS_DESC_PX)))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()?;
    if let Some(axis) = right.filter(|_| right_used) {
        let right_fmt = axis.fmt;
        chart
            .configure_secondary_axes()
            .y_desc(axis.desc)
            .y_labels(8)
            .y_label_formatter(&|v| right_fmt(*v))
            .label_style((FONT, st.font(TICK_PX)))
            .axis_desc_style((FONT, st.font(AXIS_DESC_PX)))
            .draw()?;
        for s in panel.series.iter().filter(|s| s.right_axis) {
            series(chart.secondary_plotting_area(), st, s)?;
        }
    }
    for s in panel.series.iter().filter(|s| !s.right_axis) {
        series(chart.plotting_area(), st, s)?;
    }
    Ok(())
}

fn series<CT: CoordTranslate<From = (f64, f64)>>(
    plot: &DrawingArea<BitMapBackend, CT>,
    st: &Style,
    s: &Series,
) -> anyhow::Result<()> {
    let colour = s.entry.colour;
    let line = |width: i32| colour.stroke_width(st.upx(width));
    for segment in &s.segments {
        let points = segment.iter().copied();
        match s.entry.mark {
            Mark::Line(Stroke::Solid) => plot.draw(&PathElement::new(segment.clone(), line(2)))?,
            Mark::Line(Stroke::Sampled) => {
                plot.draw(&PathElement::new(segment.clone(), line(2)))?;
                // Past a few hundred the dots merge into the line anyway.
                if s.segments.iter().map(Vec::len).sum::<usize>() <= 300 {
                    let radius = st.px(2);
                    for p in points {
                        plot.draw(&Circle::new(p, radius, colour.filled()))?;
                    }
                }
            }
            Mark::Line(Stroke::Thin) => plot.draw(&PathElement::new(segment.clone(), line(1)))?,
            Mark::Line(Stroke::Shade) => {
                let (first, last) = (segment[0], segment[segment.len() - 1]);
                let mut area = segment.clone();
                area.extend([(last.0, 0.0), (first.0, 0.0)]);
                plot.draw(&Polygon::new(area, colour.mix(SHADE_ALPHA).filled()))?;
                plot.draw(&PathElement::new(segment.clone(), line(1)))?
            }
            Mark::Line(Stroke::Dashed) => {
                plot.draw(&DashedPathElement::new(points, st.px(9), st.px(6), line(2)))?
            }
            Mark::Line(Stroke::Dotted) => {
                let radius = st.px(1);
                plot.draw(&DottedPathElement::new(points, 0, st.px(5), move |c| {
                    Circle::new(c, radius, colour.filled())
                }))?
            }
            Mark::Point(marker) => {
                for p in points {
                    marker.draw(plot, p, colour, st)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::colour;

    #[test]
    fn zero_sits_at_the_same_height_on_both_axes() {
        let (a, b) = align_zero(-10.0..90.0, 0.0..10_000.0);
        assert_eq!(a, -10.0..90.0);
        assert!((b.start - -10_000.0 / 9.0).abs() < 1e-6, "{b:?}");
        let (a, b) = align_zero(0.0..50.0, 0.0..10.0);
        assert_eq!((a, b), (0.0..50.0, 0.0..10.0));
    }

    #[test]
    fn missing_points_split_the_line() {
        let entry = LegendEntry::line("p50", colour(0), Stroke::Solid);
        let s = Series::new(
            entry,
            false,
            [
                None,
                Some((0.0, 1.0)),
                Some((1.0, 2.0)),
                None,
                None,
                Some((4.0, f64::NAN)),
                Some((5.0, 3.0)),
            ],
        );
        assert_eq!(
            s.segments,
            vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(5.0, 3.0)]]
        );
    }
}
