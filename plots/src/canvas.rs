//! The look every chart shares: the embedded font, the palette, line styles,
//! the page (title, legend band, plotting panels), axes and their ticks.
//!
//! Text is drawn only with DejaVu Sans compiled into the binary and
//! registered with plotters' `ab_glyph` backend; plotters is built without
//! its `ttf` feature, so there is no code path that asks fontconfig or the
//! system for a font, and the binary draws the same on a bare container.
//! The font adds ~740 KB to the binary.
//!
//! The legend is not drawn inside the plot (where it hides data) but in a
//! band between title and chart, laid out in rows from measured text widths,
//! so entries never overlap each other or the series.

use crate::legend::{self, LegendEntry};
use anyhow::{anyhow, Context};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// The only font plots draws with (DejaVu Sans; licence in
/// `assets/DejaVuSans-LICENSE.txt`).
static FONT_TTF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// The family name text styles ask for; it resolves to [`FONT_TTF`] alone.
pub(crate) const FONT: &str = "sans-serif";

/// Text sizes at the default 1024x640; [`Style`] scales them with the image.
pub(crate) const TITLE_PX: f64 = 26.0;
pub(crate) const AXIS_DESC_PX: f64 = 18.0;
pub(crate) const TICK_PX: f64 = 15.0;
pub(crate) const LEGEND_PX: f64 = 16.0;

/// Sizes of text, lines, markers and margins for one image: those of the
/// default 1024x640 scaled with the image (0.7x to 3x), so a small chart
/// keeps room for its data and a large one stays legible.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) scale: f64,
}

impl Style {
    pub(crate) fn for_size(size: Size) -> Self {
        let scale = (size.width as f64 / 1024.0).min(size.height as f64 / 640.0);
        Self {
            scale: scale.clamp(0.7, 3.0),
        }
    }

    /// A font size.
    pub(crate) fn font(&self, base_px: f64) -> f64 {
        base_px * self.scale
    }

    /// A length in pixels (margins, marker radii, line widths), at least 1.
    pub(crate) fn px(&self, base: i32) -> i32 {
        ((base as f64 * self.scale).round() as i32).max(1)
    }

    /// A line width: rounded up, so a small chart's lines stay as thick
    /// as each other relative to the thin ones.
    pub(crate) fn upx(&self, base: i32) -> u32 {
        ((base as f64 * self.scale).ceil() as u32).max(1)
    }
}

/// Colour-blind-safe colours (Okabe-Ito, darkened where pale on white).
pub(crate) const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermilion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(200, 140, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(60, 60, 60),    // near black
];

pub(crate) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Opacity of [`Stroke::Shade`]'s area: light enough to read lines over it.
pub(crate) const SHADE_ALPHA: f64 = 0.13;

/// How a line is drawn; the same metric keeps the same stroke across
/// inputs, so with several CSVs colour says which input, stroke says what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stroke {
    Solid,
    /// A solid line with a dot at each sample (while they are few enough
    /// to tell apart): a gauge read at instants, whose line between two
    /// dots is a guess, not a measurement.
    Sampled,
    Dashed,
    Dotted,
    /// A 1-pixel line over a lightly shaded area down to zero: context
    /// (such as connections) behind the metrics, visible even where a
    /// metric's line runs on top of it.
    Shade,
    /// A 1-pixel line: context when several inputs' shades would muddle.
    Thin,
}

/// A chart's pixel size, `1024x640` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let form = || format!("{s:?}: expected WIDTHxHEIGHT in pixels, such as 1024x640");
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(form)?;
        let width: u32 = w.trim().parse().map_err(|_| form())?;
        let height: u32 = h.trim().parse().map_err(|_| form())?;
        if !(320..=8000).contains(&width) || !(240..=8000).contains(&height) {
            return Err(format!(
                "{s:?}: a chart needs 320x240 to 8000x8000 pixels to stay readable"
            ));
        }
        Ok(Self { width, height })
    }
}

pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn ensure_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_TTF).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the embedded font does not load (plots/assets/DejaVuSans.ttf)"
        ))
    }
}

/// Refuses an output name plots would not write as PNG, before any work.
pub(crate) fn check_png_path(path: &Path) -> anyhow::Result<()> {
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        anyhow::bail!("{}: the output must be a .png file", path.display());
    }
    Ok(())
}

/// Draws one PNG: a white page with the title and legend band, then
/// `draw` fills the area left below them. Drawn in memory; the file is
/// written only when everything has been drawn.
pub(crate) fn render(
    path: &Path,
    size: Size,
    title: &str,
    legend: &[LegendEntry],
    draw: impl FnOnce(&Area, &Style) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    ensure_font()?;
    check_png_path(path)?;
    let (width, height) = (size.width, size.height);
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let style = Style::for_size(size);
        // The title in a band of its own, centred in it: plotters' `titled`
        // pads a fixed 5 px, which clips the tops of large glyphs.
        let title_px = style.font(TITLE_PX);
        let (title_band, body) = root.split_vertically((title_px * 1.5).ceil() as u32);
        let (band_w, band_h) = title_band.dim_in_pixel();
        title_band.draw_text(
            title,
            &(FONT, title_px)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center)),
            (band_w as i32 / 2, band_h as i32 / 2 + style.px(2)),
        )?;
        let band_height = legend::height(&body, &style, legend)?;
        let (band, chart) = body.split_vertically(band_height);
        legend::draw(&band, &style, legend)?;
        draw(&chart, &style)?;
        root.present()?;
    }
    write_png(path, width, height, &pixels).with_context(|| format!("writing {}", path.display()))
}

/// Encodes RGB pixels as PNG. Best compression with adaptive filters: a
/// chart is mostly flat colour, and this keeps a 1024x640 one near 100 KB
/// for ~50 ms more than the default level.
fn write_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> anyhow::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(())
}

/// A range with room above the data (and below, if it goes negative), never
/// empty, so a flat series still gets an axis.
pub(crate) fn padded(min: f64, max: f64) -> Range<f64> {
    let lo = min.min(0.0);
    let hi = max.max(lo);
    let span = hi - lo;
    if span <= f64::EPSILON {
        return lo..lo + 1.0;
    }
    let bottom = if lo < 0.0 { lo - span * 0.05 } else { lo };
    bottom..hi + span * 0.08
}

/// The x range of a time axis: from zero to the last sample.
pub(crate) fn time_range(last: f64) -> Range<f64> {
    if last > 0.0 {
        0.0..last
    } else {
        0.0..1.0
    }
}
