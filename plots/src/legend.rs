//! The legend band under the title: one entry per series (a sample of its
//! line or marker, then its label), laid out left to right in centred rows
//! wrapped at the page width, from the font's measured text widths.

use crate::canvas::{Area, Stroke, FONT, LEGEND_PX};
use plotters::prelude::*;

/// How a series is marked: a line stroke, or a point marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Line(Stroke),
    Point(Marker),
}

/// The point shapes of scatter series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Cross,
}

impl Marker {
    /// Draws one marker centred on `at` (in `area`'s coordinates).
    pub fn draw<DB: DrawingBackend, CT: CoordTranslate>(
        self,
        area: &DrawingArea<DB, CT>,
        at: CT::From,
        colour: RGBColor,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        match self {
            Marker::Circle => area.draw(&Circle::new(at, 3, colour.filled())),
            Marker::Triangle => area.draw(&TriangleMarker::new(at, 4, colour.filled())),
            Marker::Cross => area.draw(&Cross::new(at, 3, colour.stroke_width(2))),
        }
    }
}

/// One legend line: what it looks like, and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub colour: RGBColor,
    pub mark: Mark,
}

impl LegendEntry {
    pub fn line(label: impl Into<String>, colour: RGBColor, stroke: Stroke) -> Self {
        Self {
            label: label.into(),
            colour,
            mark: Mark::Line(stroke),
        }
    }

    pub fn point(label: impl Into<String>, colour: RGBColor, marker: Marker) -> Self {
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
fn rows(area: &Area, entries: &[LegendEntry]) -> anyhow::Result<Vec<Vec<(usize, i32)>>> {
    let style = (FONT, LEGEND_PX).into_text_style(area);
    let max_w = area.dim_in_pixel().0 as i32 - 2 * SIDE_MARGIN;
    let mut rows: Vec<Vec<(usize, i32)>> = vec![];
    let mut used = 0;
    for (i, entry) in entries.iter().enumerate() {
        let (text_w, _) = area.estimate_text_size(&entry.label, &style)?;
        let w = SAMPLE_W + SAMPLE_GAP + text_w as i32;
        let needed = if used == 0 { w } else { used + ENTRY_GAP + w };
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
pub fn height(area: &Area, entries: &[LegendEntry]) -> anyhow::Result<u32> {
    let n = rows(area, entries)?.len() as i32;
    Ok(if n == 0 { 0 } else { (n * ROW_H + 8) as u32 })
}

/// Draws the entries into `band` (sized by [`height`]).
pub fn draw(band: &Area, entries: &[LegendEntry]) -> anyhow::Result<()> {
    let width = band.dim_in_pixel().0 as i32;
    let text_style =
        (FONT, LEGEND_PX)
            .into_text_style(band)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            ));
    for (r, row) in rows(band, entries)?.iter().enumerate() {
        let total: i32 =
            row.iter().map(|(_, w)| w).sum::<i32>() + ENTRY_GAP * (row.len() as i32 - 1);
        let mut x = (width - total) / 2;
        let y = r as i32 * ROW_H + ROW_H / 2 + 2;
        for &(i, w) in row {
            let entry = &entries[i];
            sample(band, entry, x, y)?;
            band.draw_text(&entry.label, &text_style, (x + SAMPLE_W + SAMPLE_GAP, y))?;
            x += w + ENTRY_GAP;
        }
    }
    Ok(())
}

/// The little picture of a series in front of its label.
fn sample(band: &Area, entry: &LegendEntry, x: i32, y: i32) -> anyhow::Result<()> {
    let colour = entry.colour;
    match entry.mark {
        Mark::Line(stroke @ (Stroke::Solid | Stroke::Thin)) => band.draw(&PathElement::new(
            vec![(x, y), (x + SAMPLE_W, y)],
            colour.stroke_width(if stroke == Stroke::Thin { 1 } else { 2 }),
        ))?,
        Mark::Line(Stroke::Shade) => {
            band.draw(&Rectangle::new(
                [(x, y - 6), (x + SAMPLE_W, y + 7)],
                colour.mix(crate::canvas::SHADE_ALPHA).filled(),
            ))?;
            band.draw(&PathElement::new(
                vec![(x, y - 6), (x + SAMPLE_W, y - 6)],
                colour.stroke_width(1),
            ))?
        }
        Mark::Line(Stroke::Dashed) => {
            for start in (0..SAMPLE_W).step_by(15) {
                let end = (start + 9).min(SAMPLE_W);
                band.draw(&PathElement::new(
                    vec![(x + start, y), (x + end, y)],
                    colour.stroke_width(2),
                ))?;
            }
        }
        Mark::Line(Stroke::Dotted) => {
            for dx in (0..=SAMPLE_W).step_by(6) {
                band.draw(&Circle::new((x + dx, y), 1, colour.filled()))?;
            }
        }
        Mark::Point(marker) => {
            for dx in [SAMPLE_W / 4, 3 * SAMPLE_W / 4] {
                marker.draw(band, (x + dx, y), colour)?;
            }
        }
    }
    Ok(())
}
