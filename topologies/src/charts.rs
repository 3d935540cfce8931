//! SVG charts of a report (plotters): throughput, small-packet rate, latency
//! (bars at the median, whiskers from the smallest to the largest round), and
//! the fault run's timeline (each lab's median-outage round). One colour per
//! lab, in run order.

use crate::compare::{LabResult, LabSeries};
use crate::report::Report;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// One bar: its label under the axis, its median and range, the lab it
/// belongs to.
struct Bar {
    label: String,
    value: f64,
    lo: f64,
    hi: f64,
    switch: usize,
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

/// The legend box, upper right, over whatever is there.
fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// A bar chart, one bar per entry, coloured by switch, with a legend.
fn bar_chart(path: &Path, title: &str, y_desc: &str, bars: &[Bar], switches: &[&str]) -> Result<()> {
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let top = bars
        .iter()
        .map(|b| b.hi.max(b.value))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(1e-9)
        // Room above the tallest bar for the legend.
        * 1.4;
    let n = bars.len() as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..n).into_segmented(), 0f64..top)
        .map_err(err)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_desc)
        .x_labels(bars.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(err)?;
    for (s, name) in switches.iter().enumerate() {
        let c = colour(s);
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .filter(|(_, b)| b.switch == s)
                    .map(|(i, b)| {
                        let v = if b.value.is_finite() { b.value } else { 0.0 };
                        let mut r = Rectangle::new(
                            [
                                (SegmentValue::Exact(i as i32), 0.0),
                                (SegmentValue::Exact(i as i32 + 1), v),
                            ],
                            c.filled(),
                        );
                        r.set_margin(0, 0, 8, 8);
                        r
                    }),
            )
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    // Whiskers: the range over the rounds (nothing to draw for one round).
    chart
        .draw_series(
            bars.iter()
                .enumerate()
                .filter(|(_, b)| b.lo.is_finite() && b.hi.is_finite() && b.hi > b.lo)
                .map(|(i, b)| {
                    PathElement::new(
                        vec![
                            (SegmentValue::CenterOf(i as i32), b.lo),
                            (SegmentValue::CenterOf(i as i32), b.hi),
                        ],
                        BLACK.stroke_width(2),
                    )
                }),
        )
        .map_err(err)?;
    legend(&mut chart)?;
    root.present().map_err(err)
}

/// A measure to draw: its label and how to read it from a result.
type Part<'a> = (&'a str, fn(&LabResult) -> f64);

/// Bars of `value` for each lab and each `(label, field)` pair.
fn bars(rs: &[LabSeries], parts: &[Part<'_>]) -> Vec<Bar> {
    parts
        .iter()
        .flat_map(|(label, f)| {
            rs.iter().enumerate().map(move |(s, r)| {
                let st = r.stat(f);
                Bar {
                    label: (*label).to_string(),
                    value: st.median,
                    lo: st.min,
                    hi: st.max,
                    switch: s,
                }
            })
        })
        .collect()
}

/// The round of `s` whose outage is the median one (its timeline is drawn).
fn median_round(s: &LabSeries) -> Option<&LabResult> {
    let mut runs: Vec<&LabResult> = s.runs.iter().collect();
    runs.sort_by(|a, b| a.fault.outage_ms.total_cmp(&b.fault.outage_ms));
    runs.get(runs.len().saturating_sub(1) / 2).copied()
}

/// The fault run: each switch's ping RTTs around the kill; lost pings as
/// crosses along the top; the kill at 0 and each restart marked.
fn outage_chart(path: &Path, series: &[LabSeries]) -> Result<()> {
    let rs: Vec<&LabResult> = series.iter().filter_map(median_round).collect();
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let samples = rs.iter().flat_map(|r| r.fault.timeline.iter());
    let (mut lo, mut hi, mut top) = (0f64, 1f64, 0.1f64);
    for s in samples {
        lo = lo.min(s.t_ms);
        hi = hi.max(s.t_ms);
        if let Some(v) = s.rtt_ms {
            top = top.max(v);
        }
    }
    let top = top * 1.25;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "fault run: kill -9 at 0 ms, restarted at once",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("ms since the kill")
        .y_desc("ping RTT, ms (x: lost)")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (0.0, top)],
            BLACK.stroke_width(2),
        )))
        .map_err(err)?;
    for (i, r) in rs.iter().enumerate() {
        let c = colour(i);
        let ok: Vec<(f64, f64)> = r
            .fault
            .timeline
            .iter()
            .filter_map(|s| s.rtt_ms.map(|v| (s.t_ms, v)))
            .collect();
        chart
            .draw_series(ok.iter().map(|&p| Circle::new(p, 2, c.filled())))
            .map_err(err)?
            .label(format!("{}: {}", r.label, r.fault.killed))
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, c.filled()));
        let lost_y = top * (0.97 - 0.04 * i as f64);
        chart
            .draw_series(
                r.fault
                    .timeline
                    .iter()
                    .filter(|s| s.rtt_ms.is_none())
                    .map(|s| Cross::new((s.t_ms, lost_y), 3, c.stroke_width(1))),
            )
            .map_err(err)?;
        let at = r.fault.restart_at_ms;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(at, 0.0), (at, top)],
                c.stroke_width(1),
            )))
            .map_err(err)?;
    }
    legend(&mut chart)?;
    root.present().map_err(err)
}

/// Draw throughput.svg, pps.svg, latency.svg and outage.svg into `dir`.
pub fn draw_all(rep: &Report, dir: &Path) -> Result<()> {
    let rs = &rep.results;
    let names: Vec<&str> = rs.iter().map(|r| r.label.as_str()).collect();
    bar_chart(
        &dir.join("throughput.svg"),
        &format!("TCP throughput (iperf3, {} s)", rep.iperf_secs),
        "Gbit/s",
        &bars(
            rs,
            &[
                ("across nodes (tunnel)", |r| r.tcp.gbps),
                ("same node", |r| r.tcp_local.gbps),
            ],
        ),
        &names,
    )?;
    bar_chart(
        &dir.join("pps.svg"),
        "64-byte UDP, received",
        "kpps",
        &bars(
            rs,
            &[
                ("across nodes (tunnel)", |r| r.pps.received_pps / 1e3),
                ("same node", |r| r.pps_local.received_pps / 1e3),
            ],
        ),
        &names,
    )?;
    bar_chart(
        &dir.join("latency.svg"),
        &format!("ping RTT across nodes ({} pings)", rep.pings),
        "ms",
        &bars(
            rs,
            &[
                ("min", |r| r.rtt_min_ms),
                ("avg", |r| r.rtt_avg_ms),
                ("p99", |r| r.rtt_p99_ms),
            ],
        ),
        &names,
    )?;
    outage_chart(&dir.join("outage.svg"), rs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{FaultResult, Sample};

    #[test]
    fn charts_are_svg_files_with_the_switch_names() {
        let r = |label: &str, lost: bool| LabResult {
            label: label.into(),
            tcp: crate::probe::IperfResult {
                gbps: if lost { 1.0 } else { 2.0 },
                retransmits: 0,
            },
            rtt_avg_ms: 0.1,
            fault: FaultResult {
                killed: "x".into(),
                timeline: vec![
                    Sample {
                        t_ms: -10.0,
                        rtt_ms: Some(0.1),
                    },
                    Sample {
                        t_ms: 10.0,
                        rtt_ms: if lost { None } else { Some(0.2) },
                    },
                ],
                restart_at_ms: 5.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let rep = Report {
            command: String::new(),
            unix_time: 0,
            kernel: String::new(),
            cpus: 2,
            iperf_secs: 1,
            pps_secs: 1.0,
            pings: 1,
            conn_secs: 1.0,
            repeat: 2,
            blast_threads: 2,
            results: vec![
                LabSeries {
                    label: "rvs (Geneve, AF_XDP)".into(),
                    runs: vec![r("rvs (Geneve, AF_XDP)", true), r("rvs (Geneve, AF_XDP)", false)],
                    ..Default::default()
                },
                LabSeries {
                    label: "Linux bridge (VXLAN)".into(),
                    runs: vec![r("Linux bridge (VXLAN)", false)],
                    ..Default::default()
                },
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        draw_all(&rep, dir.path()).unwrap();
        for f in ["throughput", "pps", "latency", "outage"] {
            let svg = std::fs::read_to_string(dir.path().join(format!("{f}.svg"))).unwrap();
            assert!(svg.starts_with("<svg"), "{f}");
            assert!(svg.contains("Linux bridge (VXLAN)"), "{f} has a legend");
        }
        // The AF_XDP lab's two rounds differ in TCP (1 and 2 Gbit/s): a
        // whisker; same-node TCP (0 in both) and one round draw none.
        let svg = std::fs::read_to_string(dir.path().join("throughput.svg")).unwrap();
        let whiskers = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke-width=\"2\""))
            .count();
        assert_eq!(whiskers, 1, "{svg}");
    }
}
