//! The legend band under the title: one entry per series (a sample of its
//! line or marker, then its label), laid out left to right in centred rows
//! wrapped at the page width, from the font's measured text widths.

use crate::canvas::{Area, Stroke, Style, FONT, LEGEND_PX};
use plotters::prelude::*;

/// How a series is marked: a line stroke, or a point marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Line(Stroke),
    Point(Marker),
}

/// The point shapes of scatter series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Triangle,
    Cross,
}

impl Marker {
    /// Draws one marker centred on `at` (in `area`'s coordinates).
    pub(crate) fn draw<DB: DrawingBackend, CT: CoordTranslate>(
        self,
        area: &DrawingArea<DB, CT>,
        at: CT::From,
        colour: RGBColor,
        style: &Style,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        match self {
            Marker::Circle => area.draw(&Circle::new(at, style.px(3), colour.filled())),
            Marker::Triangle => area.draw(&TriangleMarker::new(at, style.px(4), colour.filled())),
            Marker::Cross => area.draw(&Cross::new(
                at,
                style.px(3),
                colour.stroke_width(style.upx(2)),
            )),
        }
    }
}

/// One legend line: what it looks like, and what it says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LegendEntry {
    pub(crate) label: String,
    pub(crate) colour: RGBColor,
    pub(crate) mark: Mark,
}

impl LegendEntry {
    pub(crate) fn line(label: impl Into<String>, colour: RGBColor, stroke: Stroke) -> Self {
        Self {
            label: label.into(),
            colour,
            mark: Mark::Line(stroke),
        }
    }

    pub(crate) fn point(label: impl Into<String>, colour: RGBColor, marker: Marker) -> Self {
        Self {
            label: label.into(),
            colour,
            mark: Mark::Point(marker),
        }
    }
}

const SAMPLE_W: i32 = 34;
const SAMPLE_GAP: i32 = 8;
const ENTRY_GAP: i32 = 28;
const ROW_H: i32 = 24;
const SIDE_MARGIN: i32 = 24;

/// Entries grouped into rows that fit the width, with each entry's width.
fn rows(
    area: &Area,
    st: &Style,
    entries: &[LegendEntry],
) -> anyhow::Result<Vec<Vec<(usize, i32)>>> {
    let style = (FONT, st.font(LEGEND_PX)).into_text_style(area);
    let max_w = area.dim_in_pixel().0 as i32 - 2 * st.px(SIDE_MARGIN);
    let mut rows: Vec<Vec<(usize, i32)>> = vec![];
    let mut used = 0;
    for (i, entry) in entries.iter().enumerate() {
        let (text_w, _) = area.estimate_text_size(&entry.label, &style)?;
        let w = st.px(SAMPLE_W) + st.px(SAMPLE_GAP) + text_w as i32;
        let needed = if used == 0 {
            w
        } else {
            used + st.px(ENTRY_GAP) + w
        };
        match rows.last_mut() {
            Some(row) if needed <= max_w => {
                row.push((i, w));
                used = needed;
            }
            _ => {
                rows.push(vec![(i, w)]);
                used = w;
            }
        }
    }
    Ok(rows)
}

/// Pixel height of the band `entries` need across `area`'s width.
pub(crate) fn height(area: &Area, st: &Style, entries: &[LegendEntry]) -> anyhow::Result<u32> {
    let n = rows(area, st, entries)?.len() as i32;
    Ok(if n == 0 {
        0
    } else {
        (n * st.px(ROW_H) + st.px(8)) as u32
    })
}

/// Draws the entries into `band` (sized by [`height`]).
pub(crate) fn draw(band: &Area, st: &Style, entries: &[LegendEntry]) -> anyhow::Result<()> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let width = band.dim_in_pixel().0 as i32;
    let text_style = (FONT, st.font(LEGEND_PX))
        .into_text_style(band)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let (sample_w, gap, row_h) = (st.px(SAMPLE_W), st.px(ENTRY_GAP), st.px(ROW_H));
    for (r, row) in rows(band, st, entries)?.iter().enumerate() {
        let total: i32 = row.iter().map(|(_, w)| w).sum::<i32>() + gap * (row.len() as i32 - 1);
        let mut x = (width - total) / 2;
        let y = r as i32 * row_h + row_h / 2 + st.px(2);
        for &(i, w) in row {
            let entry = &entries[i];
            sample(band, st, entry, x, y)?;
            band.draw_text(
                &entry.label,
                &text_style,
                (x + sample_w + st.px(SAMPLE_GAP), y),
            )?;
            x += w + gap;
        }
    }
    Ok(())
}

/// The little picture of a series in front of its label, `SAMPLE_W` wide
/// from `x`, centred on `y`.
fn sample(band: &Area, st: &Style, entry: &LegendEntry, x: i32, y: i32) -> anyhow::Result<()> {
    let colour = entry.colour;
    let w = st.px(SAMPLE_W);
    let line = |from: i32, to: i32, y: i32, width: i32| {
        band.draw(&PathElement::new(
            vec![(x + from, y), (x + to, y)],
            colour.stroke_width(st.upx(width)),
        ))
    };
    match entry.mark {
        Mark::Line(Stroke::Solid) => line(0, w, y, 2)?,
        Mark::Line(Stroke::Sampled) => {
            line(0, w, y, 2)?;
            for dx in [w / 4, 3 * w / 4] {
                band.draw(&Circle::new((x + dx, y), st.px(3), colour.filled()))?;
            }
        }
        Mark::Line(Stroke::Thin) => line(0, w, y, 1)?,
        Mark::Line(Stroke::Shade) => {
            let half = st.px(6);
            band.draw(&Rectangle::new(
                [(x, y - half), (x + w, y + half)],
                colour.mix(crate::canvas::SHADE_ALPHA).filled(),
            ))?;
            line(0, w, y - half, 1)?
        }
        Mark::Line(Stroke::Dashed) => {
            let (dash, period) = (st.px(9), st.px(15));
            for start in (0..w).step_by(period as usize) {
                line(start, (start + dash).min(w), y, 2)?;
            }
        }
        Mark::Line(Stroke::Dotted) => {
            for dx in (0..=w).step_by(st.px(6) as usize) {
                band.draw(&Circle::new((x + dx, y), st.px(1), colour.filled()))?;
            }
        }
        Mark::Point(marker) => {
            for dx in [w / 4, 3 * w / 4] {
                marker.draw(band, (x + dx, y), colour, st)?;
            }
        }
    }
    Ok(())
}
