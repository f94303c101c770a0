//! Charts, drawn from `report.json` alone, as PNG and SVG (plotters; the font is embedded, so no
//! system fonts are needed).
//!
//! - `throughput`: produced, acknowledged, and consumed per group, per second;
//! - `latency`: per-second p50 / p99 / p99.9 of acknowledgements (from intended send time) and
//!   p99 end-to-end per group, log scale;
//! - `spectrum`: the latency percentile spectrum (HdrHistogram style: the x axis stretches the
//!   tail, 90%, 99%, 99.9%...), log scale;
//! - `lag`: consumer lag per group.
//!
//! Fault windows are shaded red, reconnect-wave windows blue, on the time charts; a grey line
//! marks the end of the load. Only whole seconds are drawn (see [`Span`]): the second in which
//! the load stopped, and the one in which the run stopped recording, hold a fraction of a
//! second's records, and drawn as a rate they look like an outage. Log axes draw decade lines
//! only (the minor lines of a log axis pile up into a grey band that reads like a window).
//!
//! The same series feed `report.html`'s interactive charts ([`timeline_specs`], drawn by
//! `interactive.rs`), with the harness's CPU and the backbone's series beside them.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::Report;
use super::schema::SpectrumPoint;

const W: u32 = 1100;
const H: u32 = 480;

/// A chart written to disk: its file stem, title, and SVG text (for inlining into HTML).
#[derive(Clone, Debug)]
pub struct Chart {
    pub name: &'static str,
    pub title: String,
    pub svg: String,
}

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded DejaVu Sans; failure leaves text out of PNGs, never fails the report.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(crate) type Series = (String, Vec<(f64, f64)>);

/// How much of a second may be missing for it to count as whole: the load's last send lands a
/// few milliseconds before its end.
const SLACK_S: f64 = 0.05;

/// Which seconds of the timeline are whole. The timeline has one point per second from the
/// load's start to the end of the drain; the second in which the load stopped holds a fraction
/// of a second of sending, and the last point a fraction of a second of recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// When the load stopped sending (`load_s`).
    pub load: f64,
    /// When the recording stopped: after the load and the drain, and not before the last
    /// timeline point's start.
    pub end: f64,
}

impl Span {
    pub fn of(r: &Report) -> Span {
        let last = r.timeline.last().map_or(0.0, |p| f64::from(p.t));
        Span { load: r.load_s, end: (r.load_s + r.audit.drain_s).max(last) }
    }

    /// Second `t` lies wholly inside the load: sending rates are drawn there only.
    pub fn in_load(self, t: u32) -> bool {
        f64::from(t) + 1.0 <= self.load + SLACK_S
    }

    /// Second `t` was recorded whole: every other series is drawn there only.
    pub fn whole(self, t: u32) -> bool {
        f64::from(t) + 1.0 <= self.end + SLACK_S
    }
}

/// Time windows to shade: (from, to, is_fault).
fn windows(r: &Report) -> Vec<(f64, f64, bool)> {
    let end = r.timeline.last().map_or(0.0, |p| f64::from(p.t) + 1.0);
    let mut v: Vec<(f64, f64, bool)> =
        r.faults.iter().filter_map(|f| f.started_s.map(|s| (s, f.ended_s.unwrap_or(end), true))).collect();
    v.extend(
        r.waves
            .iter()
            .map(|w| (w.start_s, w.flush_end_s.unwrap_or(w.reconnect_until_s).max(w.reconnect_until_s), false)),
    );
    v
}

/// Why a chart was not written. The message carries its cause (see `report::error`).
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw the {chart} chart: {cause}")]
    Draw { chart: &'static str, cause: DrawError },
    #[error("cannot write {}: {cause}", path.display())]
    Write { path: PathBuf, cause: std::io::Error },
}

/// What plotters reported. Its errors are generic over the backend (SVG, bitmap), so they are
/// kept as their description.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DrawError(String);

fn err<E: std::fmt::Debug>(e: E) -> DrawError {
    DrawError(format!("{e:?}"))
}

fn time_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    series: &[Series],
    shade: &[(f64, f64, bool)],
    log_y: bool,
    load_end: Option<f64>,
) -> Result<(), DrawError> {
    root.fill(&WHITE).map_err(err)?;
    let x_max = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.0)).fold(1.0, f64::max) + 1.0;
    // The end of the load, where it falls inside the chart.
    let load_end = load_end.filter(|x| *x > 0.0 && *x < x_max);
    let y_max = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).fold(0.0, f64::max).max(1.0) * 1.1;
    let y_min = series
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .min(y_max / 10.0)
        .max(1e-3);
    let mut builder = ChartBuilder::on(&root);
    builder.caption(title, ("sans-serif", 22)).margin(12).x_label_area_size(52).y_label_area_size(84);
    if log_y {
        let mut chart = builder.build_cartesian_2d(0f64..x_max, (y_min * 0.8..y_max).log_scale()).map_err(err)?;
        // Decade lines only: the minor lines of a log axis pile up into a grey band.
        mesh(&mut chart.configure_mesh(), y_label).y_labels(decades(y_min * 0.8, y_max)).draw().map_err(err)?;
        for (a, b, fault) in shade {
            let c = if *fault { RED.mix(0.15) } else { BLUE.mix(0.12) };
            chart
                .draw_series(std::iter::once(Rectangle::new([(*a, y_min * 0.8), (*b, y_max)], c.filled())))
                .map_err(err)?;
        }
        if let Some(x) = load_end {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, y_min * 0.8), (x, y_max)],
                    LOAD_END.stroke_width(1),
                )))
                .map_err(err)?
                .label("end of load")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], LOAD_END.stroke_width(2)));
        }
        for (i, (name, points)) in series.iter().enumerate() {
            // Seconds without samples break the line rather than being bridged over.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for p in points {
                if p.1 > 0.0 {
                    if let Some(run) = runs.last_mut() {
                        run.push(*p);
                    }
                } else if runs.last().is_some_and(|r| !r.is_empty()) {
                    runs.push(Vec::new());
                }
            }
            for (j, run) in runs.into_iter().filter(|r| !r.is_empty()).enumerate() {
                let series = chart.draw_series(LineSeries::new(run, color(i).stroke_width(2))).map_err(err)?;
                if j == 0 {
                    series
                        .label(name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color(i).stroke_width(3)));
                }
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    } else {
        let mut chart = builder.build_cartesian_2d(0f64..x_max, 0f64..y_max).map_err(err)?;
        mesh(&mut chart.configure_mesh(), y_label).draw().map_err(err)?;
        for (a, b, fault) in shade {
            let c = if *fault { RED.mix(0.15) } else { BLUE.mix(0.12) };
            chart.draw_series(std::iter::once(Rectangle::new([(*a, 0.0), (*b, y_max)], c.filled()))).map_err(err)?;
        }
        if let Some(x) = load_end {
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, y_max)], LOAD_END.stroke_width(1))))
                .map_err(err)?
                .label("end of load")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], LOAD_END.stroke_width(2)));
        }
        for (i, (name, points)) in series.iter().enumerate() {
            chart
                .draw_series(LineSeries::new(points.clone(), color(i).stroke_width(2)))
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color(i).stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// The grey of the end-of-load line.
const LOAD_END: RGBColor = RGBColor(90, 90, 90);

/// Tick labels and axis names a reader can read (14 and 15 px on a 1100 px chart), and no minor
/// grid lines: the bold lines alone, light grey.
fn mesh<'a, 'b, 'c, DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    m: &'c mut MeshStyle<'a, 'b, X, Y, DB>,
    y_label: &str,
) -> &'c mut MeshStyle<'a, 'b, X, Y, DB> {
    m.x_desc("seconds since the load started")
        .y_desc(y_label)
        .x_label_formatter(&secs_label)
        .y_label_formatter(&short_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .bold_line_style(RGBColor(200, 200, 200).stroke_width(1))
        .light_line_style(TRANSPARENT)
}

fn secs_label(x: &f64) -> String {
    format!("{x:.0}")
}

fn short_label(y: &f64) -> String {
    short(*y)
}

/// How many labels a log axis from `lo` to `hi` asks for: about one per decade.
fn decades(lo: f64, hi: f64) -> usize {
    ((hi.max(lo * 10.0).log10() - lo.max(1e-9).log10()).ceil() as usize + 1).clamp(2, 12)
}

/// x position of percentile `p` on the spectrum axis: -log10(1 - p).
pub(crate) fn spectrum_x(p: f64) -> f64 {
    -(1.0 - (p / 100.0).min(0.999_999_9)).log10()
}

fn spectrum_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    spectra: &[(String, Vec<SpectrumPoint>)],
) -> Result<(), DrawError> {
    root.fill(&WHITE).map_err(err)?;
    let x_max = spectra.iter().flat_map(|(_, v)| v.iter().map(|p| spectrum_x(p.percentile))).fold(2.0, f64::max).ceil();
    let y_max = spectra.iter().flat_map(|(_, v)| v.iter().map(|p| p.value_us as f64 / 1e3)).fold(1.0, f64::max) * 1.2;
    let y_min = spectra
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.value_us as f64 / 1e3))
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .min(y_max / 10.0)
        .max(1e-3);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(52)
        .y_label_area_size(84)
        .build_cartesian_2d(0f64..x_max, (y_min * 0.8..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-*x));
            if p < 99.0 { format!("{p:.0}%") } else { format!("{}%", trim(p)) }
        })
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .y_label_formatter(&|y| short(*y))
        .y_labels(decades(y_min * 0.8, y_max))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .bold_line_style(RGBColor(200, 200, 200).stroke_width(1))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(err)?;
    for (i, (name, points)) in spectra.iter().enumerate() {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.value_us > 0)
            .map(|p| (spectrum_x(p.percentile), p.value_us as f64 / 1e3))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color(i).stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color(i).stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// `12k`, `1.5M`, `0.25`, `40`: short axis labels.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        trim(v)
    }
}

fn trim(p: f64) -> String {
    let s = format!("{p:.5}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// What a chart shows, independent of the backend it is drawn on.
pub(crate) enum Spec {
    Time {
        title: String,
        y: &'static str,
        series: Vec<Series>,
        shade: Vec<(f64, f64, bool)>,
        log: bool,
        /// Where the load ended, marked by a line (charts of one run).
        load_end: Option<f64>,
    },
    Spectrum {
        title: String,
        spectra: Vec<(String, Vec<SpectrumPoint>)>,
    },
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, spec: &Spec) -> Result<(), DrawError> {
    match spec {
        Spec::Time { title, y, series, shade, log, load_end } => {
            time_chart(root, title, y, series, shade, *log, *load_end)
        }
        Spec::Spectrum { title, spectra } => spectrum_chart(root, title, spectra),
    }
}

/// The run's time charts, static and interactive alike: whole seconds only (see [`Span`]).
pub(crate) fn specs(r: &Report) -> Vec<(&'static str, Spec)> {
    let t = |p: &super::schema::TimelinePoint| f64::from(p.t);
    let span = Span::of(r);
    let load = || r.timeline.iter().filter(move |p| span.in_load(p.t));
    let whole = || r.timeline.iter().filter(move |p| span.whole(p.t));
    let shade = windows(r);
    let mut throughput: Vec<Series> = vec![
        ("produced".into(), load().map(|p| (t(p), p.produced as f64)).collect()),
        ("acknowledged".into(), whole().map(|p| (t(p), p.acked as f64)).collect()),
    ];
    for g in r.consumers.keys() {
        throughput.push((
            format!("consumed: {g}"),
            whole().map(|p| (t(p), p.consumers.get(g).map_or(0.0, |x| x.consumed as f64))).collect(),
        ));
    }
    let ms = |us: u64| us as f64 / 1e3;
    let mut latency: Vec<Series> = vec![
        ("ack p50".into(), whole().map(|p| (t(p), ms(p.produce.p50_us))).collect()),
        ("ack p99".into(), whole().map(|p| (t(p), ms(p.produce.p99_us))).collect()),
        ("ack p99.9".into(), whole().map(|p| (t(p), ms(p.produce.p999_us))).collect()),
    ];
    for g in r.consumers.keys() {
        latency.push((
            format!("end-to-end p99: {g}"),
            whole().map(|p| (t(p), p.consumers.get(g).map_or(0.0, |x| ms(x.e2e.p99_us)))).collect(),
        ));
    }
    let lag: Vec<Series> = r
        .consumers
        .keys()
        .map(|g| (g.clone(), whole().map(|p| (t(p), p.consumers.get(g).map_or(0.0, |x| x.lag as f64))).collect()))
        .collect();
    let load_end = Some(span.load);
    let spectra: Vec<(String, Vec<SpectrumPoint>)> = r
        .spectra
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            (
                k.replace("produce.latency_from_", "ack from ")
                    .replace("consumers.", "")
                    .replace(".e2e_latency", " end-to-end"),
                v.clone(),
            )
        })
        .collect();
    let name = &r.scenario.name;
    let target = &r.target.profile;
    vec![
        (
            "throughput",
            Spec::Time {
                title: format!("{name} on {target}: records per second"),
                y: "records / s",
                series: throughput,
                shade: shade.clone(),
                log: false,
                load_end,
            },
        ),
        (
            "latency",
            Spec::Time {
                title: format!("{name} on {target}: latency per second (from intended send time)"),
                y: "latency (ms)",
                series: latency,
                shade: shade.clone(),
                log: true,
                load_end,
            },
        ),
        ("spectrum", Spec::Spectrum { title: format!("{name} on {target}: latency percentile spectrum"), spectra }),
        (
            "lag",
            Spec::Time {
                title: format!("{name} on {target}: consumer lag"),
                y: "records behind",
                series: lag,
                shade,
                log: false,
                load_end,
            },
        ),
    ]
}

fn title_of(spec: &Spec) -> String {
    match spec {
        Spec::Time { title, .. } | Spec::Spectrum { title, .. } => title.clone(),
    }
}

/// Render one spec as PNG (to `dir/<name>.png`) and SVG (to `dir/<name>.svg`, returned too).
fn render(dir: &Path, name: &'static str, spec: &Spec) -> Result<Chart, ChartError> {
    fonts();
    let drawn = |cause| ChartError::Draw { chart: name, cause };
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area(), spec).map_err(drawn)?;
    let path = dir.join(format!("{name}.svg"));
    std::fs::write(&path, &svg).map_err(|cause| ChartError::Write { path, cause })?;
    let png = dir.join(format!("{name}.png"));
    draw(BitMapBackend::new(&png, (W, H)).into_drawing_area(), spec).map_err(drawn)?;
    Ok(Chart { name, title: title_of(spec), svg })
}

/// Write every chart of a report into `dir`.
pub fn write_all(r: &Report, dir: &Path) -> Result<Vec<Chart>, ChartError> {
    specs(r).into_iter().map(|(name, spec)| render(dir, name, &spec)).collect()
}

/// Overlay charts for several runs of the same scenario (bake-offs and baselines).
pub fn write_comparison(runs: &[(String, &Report)], dir: &Path) -> Result<Vec<Chart>, ChartError> {
    let t = |p: &super::schema::TimelinePoint| f64::from(p.t);
    let whole = |r: &Report| {
        let span = Span::of(r);
        r.timeline.iter().filter(move |p| span.whole(p.t)).cloned().collect::<Vec<_>>()
    };
    let acked: Vec<Series> = runs
        .iter()
        .map(|(label, r)| (label.clone(), whole(r).iter().map(|p| (t(p), p.acked as f64)).collect()))
        .collect();
    let p99: Vec<Series> = runs
        .iter()
        .map(|(label, r)| (label.clone(), whole(r).iter().map(|p| (t(p), p.produce.p99_us as f64 / 1e3)).collect()))
        .collect();
    let spectra: Vec<(String, Vec<SpectrumPoint>)> = runs
        .iter()
        .filter_map(|(label, r)| r.spectra.get("produce.latency_from_intended").map(|s| (label.clone(), s.clone())))
        .collect();
    let name = runs.first().map_or("", |(_, r)| r.scenario.name.as_str()).to_string();
    let specs = vec![
        (
            "compare-throughput",
            Spec::Time {
                title: format!("{name}: acknowledged per second"),
                y: "records / s",
                series: acked,
                shade: vec![],
                log: false,
                load_end: None,
            },
        ),
        (
            "compare-latency",
            Spec::Time {
                title: format!("{name}: ack p99 per second (from intended)"),
                y: "latency (ms)",
                series: p99,
                shade: vec![],
                log: true,
                load_end: None,
            },
        ),
        (
            "compare-spectrum",
            Spec::Spectrum { title: format!("{name}: ack latency spectrum (from intended)"), spectra },
        ),
    ];
    specs.into_iter().map(|(n, s)| render(dir, n, &s)).collect()
}
