//! `report.html`'s interactive charts: values on hover, a drag zooms every time chart to a time
//! range, a double click zooms out. Drawn in the browser by **uPlot 1.6.32** (MIT licence,
//! © Leon Sorokin; npm `uplot`, its `dist/uPlot.iife.min.js` and `dist/uPlot.min.css` vendored
//! unmodified in `assets/` with its `LICENSE`), embedded in the page with the data as JSON, so
//! the page stays one file that works offline and makes no network request.
//!
//! The series are `charts.rs`'s own (`charts::specs`: whole seconds only, the same windows),
//! plus the harness's CPU and, when the profile named metrics sources, one chart per broker
//! metric (a line per broker) on the same time axis. The static SVGs stay in the page inside
//! `<noscript>`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Report;
use super::backbone::stress_windows;
use super::charts::{self, Series, Span, Spec};
use super::schema::{SourceKind, TargetMetric};

/// The vendored uPlot release (`assets/uplot.min.js`).
pub const UPLOT_VERSION: &str = "1.6.32";
const UPLOT_JS: &str = include_str!("assets/uplot.min.js");
const UPLOT_CSS: &str = include_str!("assets/uplot.min.css");
const UPLOT_LICENSE: &str = include_str!("assets/uplot.LICENSE");
/// The page's own script: reads the JSON, draws every chart.
const SCRIPT: &str = include_str!("assets/report.js");

/// Where in the page a chart goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Charts,
    Harness,
    Backbone,
}

/// One interactive chart, as the page's script reads it.
#[derive(Clone, Debug, Serialize)]
pub struct Plot {
    /// `throughput`, `latency`, `spectrum`, `lag`, `harness`, `backbone-<metric>`: the static
    /// chart's file stem where there is one.
    pub id: String,
    #[serde(skip)]
    pub heading: String,
    #[serde(skip)]
    pub place: Place,
    title: String,
    x_label: &'static str,
    y_label: String,
    /// Appended to values in the legend.
    unit: &'static str,
    log: bool,
    spectrum: bool,
    /// Sparse series (the brokers' samples): lines join across missing seconds.
    span_gaps: bool,
    x: Vec<f64>,
    series: Vec<Line>,
}

#[derive(Clone, Debug, Serialize)]
struct Line {
    label: String,
    /// One per x; `null` where there is no value (and where a log chart has 0).
    values: Vec<Option<f64>>,
}

/// A shaded stress window.
#[derive(Clone, Debug, Serialize)]
struct Band {
    label: String,
    from: f64,
    to: f64,
    fault: bool,
}

#[derive(Serialize)]
struct Page<'a> {
    charts: &'a [Plot],
    bands: Vec<Band>,
    load_end: f64,
}

const TIME_AXIS: &str = "seconds since the load started";

/// Every chart of the run that has something to draw.
pub fn plots(r: &Report) -> Vec<Plot> {
    let span = Span::of(r);
    let Some(last) = r.timeline.iter().filter(|p| span.whole(p.t)).map(|p| p.t).max() else {
        return Vec::new();
    };
    let x: Vec<f64> = (0..=last).map(f64::from).collect();
    let mut out = Vec::new();
    for (name, spec) in charts::specs(r) {
        match spec {
            Spec::Time { title, y, series, log, .. } => out.push(Plot {
                id: name.to_string(),
                heading: heading(name).to_string(),
                place: Place::Charts,
                title,
                x_label: TIME_AXIS,
                y_label: y.to_string(),
                unit: if log { "ms" } else { "" },
                log,
                spectrum: false,
                span_gaps: false,
                x: x.clone(),
                series: on_seconds(last, &series, log),
            }),
            Spec::Spectrum { title, spectra } => {
                let series: Vec<Series> = spectra
                    .iter()
                    .map(|(label, points)| {
                        let pts = points
                            .iter()
                            .filter(|p| p.value_us > 0)
                            .map(|p| (charts::spectrum_x(p.percentile), p.value_us as f64 / 1e3))
                            .collect();
                        (label.clone(), pts)
                    })
                    .collect();
                let (x, series) = on_union(&series);
                out.push(Plot {
                    id: name.to_string(),
                    heading: heading(name).to_string(),
                    place: Place::Charts,
                    title,
                    x_label: "percentile",
                    y_label: "latency (ms)".into(),
                    unit: "ms",
                    log: true,
                    spectrum: true,
                    span_gaps: true,
                    x,
                    series,
                });
            }
        }
    }
    out.push(harness(r, span, last, &x));
    out.extend(backbone(r, last, &x));
    out.retain(|p| p.series.iter().any(|l| l.values.iter().any(Option::is_some)));
    out
}

fn heading(name: &str) -> &'static str {
    match name {
        "throughput" => "Throughput",
        "latency" => "Latency over time",
        "spectrum" => "Latency spectrum",
        "lag" => "Consumer lag",
        _ => "Chart",
    }
}

/// Series of `(second, value)` on the axis `0..=last`.
fn on_seconds(last: u32, series: &[Series], log: bool) -> Vec<Line> {
    series
        .iter()
        .map(|(label, points)| {
            let by: BTreeMap<i64, f64> = points.iter().map(|(t, v)| (t.floor() as i64, *v)).collect();
            let values = (0..=last)
                .map(|t| by.get(&i64::from(t)).copied().filter(|v| v.is_finite() && (!log || *v > 0.0)))
                .collect();
            Line { label: label.clone(), values }
        })
        .filter(|l| l.values.iter().any(Option::is_some))
        .collect()
}

/// Series with x values of their own, on the union of their x values.
fn on_union(series: &[Series]) -> (Vec<f64>, Vec<Line>) {
    let key = |x: f64| (x * 1e9).round() as i64;
    let mut xs: BTreeMap<i64, f64> = BTreeMap::new();
    for (_, points) in series {
        for (x, _) in points {
            xs.insert(key(*x), *x);
        }
    }
    let lines = series
        .iter()
        .map(|(label, points)| {
            let by: BTreeMap<i64, f64> = points.iter().map(|(x, v)| (key(*x), *v)).collect();
            Line { label: label.clone(), values: xs.keys().map(|k| by.get(k).copied().filter(|v| *v > 0.0)).collect() }
        })
        .collect();
    (xs.into_values().collect(), lines)
}

/// fleetstorm's own CPU, and the host's, per second.
fn harness(r: &Report, span: Span, last: u32, x: &[f64]) -> Plot {
    let whole = || r.timeline.iter().filter(move |p| span.whole(p.t));
    let of = |f: fn(&super::schema::HarnessPoint) -> Option<f32>| -> Vec<(f64, f64)> {
        whole().filter_map(|p| p.harness.as_ref().and_then(f).map(|v| (f64::from(p.t), f64::from(v)))).collect()
    };
    let series: Vec<Series> = vec![
        ("fleetstorm (% of one core)".into(), of(|h| Some(h.cpu_pct))),
        ("of it librdkafka's threads".into(), of(|h| h.librdkafka_cpu_pct)),
        ("host (% of all cores)".into(), of(|h| Some(h.host_cpu_pct))),
    ];
    Plot {
        id: "harness".into(),
        heading: "Harness CPU".into(),
        place: Place::Harness,
        title: format!("{} on {}: the harness's own CPU", r.scenario.name, r.target.profile),
        x_label: TIME_AXIS,
        y_label: "cpu %".into(),
        unit: "%",
        log: false,
        spectrum: false,
        span_gaps: false,
        x: x.to_vec(),
        series: on_seconds(last, &series, false),
    }
}

/// One chart per broker metric sampled, a line per broker (or the cluster's one line).
fn backbone(r: &Report, last: u32, x: &[f64]) -> Vec<Plot> {
    let Some(b) = &r.backbone else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for metric in TargetMetric::ALL {
        let of: Vec<_> = b.series.iter().filter(|s| s.metric == metric).collect();
        if of.is_empty() {
            continue;
        }
        let both =
            of.iter().any(|s| s.kind == SourceKind::Admin) && of.iter().any(|s| s.kind == SourceKind::Prometheus);
        let series: Vec<Series> = of
            .iter()
            .map(|s| {
                let mut label = s.broker.map_or_else(|| "cluster".to_string(), |id| format!("broker {id}"));
                if both {
                    label.push_str(if s.kind == SourceKind::Admin { " (metadata)" } else { " (metrics)" });
                }
                let points =
                    s.points.iter().filter(|[t, _]| *t >= 0.0 && *t < f64::from(last) + 1.0).map(|[t, v]| (*t, *v));
                (label, points.collect())
            })
            .collect();
        let unit = metric.unit();
        out.push(Plot {
            id: format!("backbone-{}", metric.name()),
            heading: format!("Backbone: {}", metric.name()),
            place: Place::Backbone,
            title: format!(
                "{} on {}: {}{}",
                r.scenario.name,
                r.target.profile,
                metric.name(),
                if unit.is_empty() { String::new() } else { format!(" ({unit})") }
            ),
            x_label: TIME_AXIS,
            y_label: if unit.is_empty() { metric.name().to_string() } else { unit.to_string() },
            unit,
            log: false,
            spectrum: false,
            span_gaps: true,
            x: x.to_vec(),
            series: on_seconds(last, &series, false),
        });
    }
    out
}

/// The stress windows to shade: faults red (an unended fault to the end of the recording),
/// waves, replays, slowdowns and restarts blue.
fn bands(r: &Report) -> Vec<Band> {
    let end = Span::of(r).end;
    stress_windows(r)
        .into_iter()
        .map(|(label, from, to)| {
            let fault = r.faults.iter().find(|f| label == format!("fault {}", f.name) && f.started_s == Some(from));
            let to = match fault {
                Some(f) if f.ended_s.is_none() => end,
                _ => to,
            };
            Band { label, from, to, fault: fault.is_some() }
        })
        .collect()
}

/// JSON safe inside a `<script>` element: no `<`, `>` or `&` (escaped inside strings, the only
/// place JSON has them).
fn script_json(v: &impl Serialize) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "{\"charts\":[],\"bands\":[],\"load_end\":0}".to_string())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// What goes into `<head>`: uPlot's stylesheet and the error catcher, before anything can fail.
/// A script error shows in the page (`#fs-errors`) rather than leaving empty charts unexplained.
pub fn head() -> String {
    format!(
        "<style>{UPLOT_CSS}</style><script>window.fsErrors=[];function fsError(m){{window.fsErrors.push(String(m));\
         var b=document.getElementById('fs-errors');if(b){{b.hidden=false;b.textContent='The interactive charts \
         failed: '+window.fsErrors.join('; ');}}}}window.addEventListener('error',function(e){{fsError(e.message||e);}});\
         window.addEventListener('unhandledrejection',function(e){{fsError(e.reason);}});</script>"
    )
}

/// What ends `<body>`: the data, uPlot (its licence above it), the page's script.
pub fn scripts(r: &Report, plots: &[Plot]) -> String {
    let page = Page { charts: plots, bands: bands(r), load_end: r.load_s };
    format!(
        "<script id=fs-data type=\"application/json\">{}</script>\n<script>/* uPlot {UPLOT_VERSION}, \
         https://github.com/leeoniya/uPlot, embedded unmodified.\n{}*/\n{UPLOT_JS}</script>\n<script>{SCRIPT}</script>",
        script_json(&page),
        UPLOT_LICENSE.replace("*/", "* /")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use crate::report::schema::{Backbone, BackboneSeries, TimelinePoint};

    /// The fixture with 12 seconds of timeline, 10.5 s of load and 1 s of drain: seconds 0-9
    /// are whole for sending, 0-10 for the rest; 11 is partial.
    fn report() -> Report {
        let mut r = fixture::report("embedded");
        r.load_s = 10.5;
        r.audit.drain_s = 1.0;
        r.timeline = (0..12)
            .map(|t| {
                let mut p = TimelinePoint { t, produced: 100, acked: 100, ..TimelinePoint::default() };
                p.produce.p99_us = if t == 3 { 0 } else { 5_000 };
                p
            })
            .collect();
        r
    }

    #[test]
    fn the_vendored_library_is_the_recorded_release_and_cannot_end_its_script_element() {
        assert!(UPLOT_JS.starts_with(&format!("/*! https://github.com/leeoniya/uPlot (v{UPLOT_VERSION}) */")));
        assert!(UPLOT_LICENSE.starts_with("The MIT License"));
        for text in [UPLOT_JS, SCRIPT] {
            assert!(!text.to_lowercase().contains("</script"));
        }
        assert!(!UPLOT_CSS.to_lowercase().contains("</style"));
    }

    #[test]
    fn data_cannot_end_its_script_element() {
        let mut r = report();
        r.scenario.name = "</script><script>alert(1)</script> & <!--".into();
        let s = scripts(&r, &plots(&r));
        let data = &s[..s.find("</script>").unwrap_or(0)];
        assert!(!data.contains("alert(1)</script") && !data.contains("<!--") && !data.contains('&'), "{data}");
        assert!(data.contains("\\u003c/script\\u003e"), "{data}");
    }

    #[test]
    fn a_partial_last_second_is_not_drawn_and_log_charts_skip_zeros() {
        let r = report();
        let plots = plots(&r);
        let throughput = plots.iter().find(|p| p.id == "throughput").cloned();
        let Some(throughput) = throughput else { panic!("no throughput chart") };
        assert_eq!(throughput.x.last(), Some(&10.0), "second 11 is partial");
        let produced = &throughput.series[0].values;
        assert_eq!(produced[9], Some(100.0));
        assert_eq!(produced[10], None, "the second the load stopped in is not drawn as a drop");
        assert_eq!(throughput.series[1].values[10], Some(100.0), "acknowledgements went on in the drain");
        let latency = plots.iter().find(|p| p.id == "latency").cloned();
        let Some(latency) = latency else { panic!("no latency chart") };
        let p99 = latency.series.iter().find(|l| l.label == "ack p99").map(|l| l.values.clone()).unwrap_or_default();
        assert_eq!((p99[2], p99[3]), (Some(5.0), None), "no 0 on a log axis: a gap");
    }

    #[test]
    fn broker_series_get_a_chart_each_with_a_line_per_broker() {
        let mut r = report();
        let s = |metric, broker, kind| BackboneSeries {
            metric,
            broker,
            kind,
            points: (0..8).map(|t| [f64::from(t) + 0.4, f64::from(t)]).collect(),
        };
        r.backbone = Some(Backbone {
            series: vec![
                s(TargetMetric::BytesIn, Some(1), SourceKind::Prometheus),
                s(TargetMetric::BytesIn, Some(2), SourceKind::Prometheus),
                s(TargetMetric::UnderReplicatedPartitions, None, SourceKind::Admin),
                s(TargetMetric::UnderReplicatedPartitions, Some(1), SourceKind::Prometheus),
            ],
            ..Backbone::default()
        });
        let plots = plots(&r);
        let ids: Vec<&str> = plots.iter().filter(|p| p.place == Place::Backbone).map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["backbone-bytes_in", "backbone-under_replicated_partitions"]);
        let labels = |id: &str| -> Vec<String> {
            plots.iter().filter(|p| p.id == id).flat_map(|p| p.series.iter().map(|l| l.label.clone())).collect()
        };
        assert_eq!(labels("backbone-bytes_in"), ["broker 1", "broker 2"]);
        assert_eq!(labels("backbone-under_replicated_partitions"), ["cluster (metadata)", "broker 1 (metrics)"]);
        let time = plots.iter().find(|p| p.id == "throughput").map(|p| p.x.clone()).unwrap_or_default();
        assert!(plots.iter().filter(|p| !p.spectrum).all(|p| p.x == time), "one time axis");
    }

    #[test]
    fn faults_are_red_bands_and_an_unended_fault_runs_to_the_end() {
        let r = fixture::report("embedded");
        let b = bands(&r);
        assert!(b.iter().any(|b| b.fault) && b.iter().any(|b| !b.fault), "{b:?}");
        assert!(b.iter().all(|b| b.to >= b.from), "{b:?}");
    }
}
