// report.html's interactive charts, drawn with uPlot (embedded above this script) from the JSON
// in <script id="fs-data">, which report/interactive.rs writes from report.json. Values show on
// hover (the legend under each chart), a drag over a time chart zooms every time chart to that
// range, a double click zooms out. Stress windows are shaded (faults red, other windows blue),
// the end of the load is a grey line. Log axes draw decade lines only.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("fs-data").textContent);
  var PALETTE = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
  var FONT = "14px system-ui, -apple-system, 'DejaVu Sans', sans-serif";
  var LABEL_FONT = "bold 14px system-ui, -apple-system, 'DejaVu Sans', sans-serif";
  var plots = [];
  var syncing = false;

  // 12k, 1.5M, 0.25, 40: short numbers.
  function short(v) {
    if (v == null) return "-";
    var a = Math.abs(v);
    if (a >= 1e9) return +(v / 1e9).toFixed(2) + "G";
    if (a >= 1e6) return +(v / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return +(v / 1e3).toFixed(1) + "k";
    if (a >= 100 || a === 0) return v.toFixed(0);
    if (a >= 1) return +v.toFixed(2) + "";
    return +v.toPrecision(2) + "";
  }

  // The spectrum's x position back to its percentile: 1 -> 90%, 2 -> 99%, 3 -> 99.9%.
  function percentile(x) {
    var p = 100 * (1 - Math.pow(10, -x));
    return p < 99 ? p.toFixed(0) + "%" : +p.toFixed(5) + "%";
  }

  // Log axes: a line per decade, no minor lines (they pile up into a band that reads like a
  // marked window). Under two decades of range, 2x and 5x lines too.
  function decades(u, axisIdx, min, max) {
    var out = [];
    for (var e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      var d = Math.pow(10, e);
      if (d >= min && d <= max) out.push(d);
    }
    if (out.length < 3) {
      out = [];
      for (var f = Math.floor(Math.log10(min)); f <= Math.ceil(Math.log10(max)); f++) {
        [1, 2, 5].forEach(function (m) {
          var v = m * Math.pow(10, f);
          if (v >= min && v <= max) out.push(v);
        });
      }
    }
    return out;
  }

  function shade(u) {
    var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, top, u.bbox.width, height);
    ctx.clip();
    data.bands.forEach(function (b) {
      var x0 = u.valToPos(b.from, "x", true), x1 = u.valToPos(b.to, "x", true);
      ctx.fillStyle = b.fault ? "rgba(220, 40, 40, 0.14)" : "rgba(40, 80, 220, 0.11)";
      ctx.fillRect(x0, top, Math.max(x1 - x0, 2 * devicePixelRatio), height);
    });
    ctx.restore();
  }

  function loadEnd(u) {
    var x = u.valToPos(data.load_end, "x", true);
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
    var ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#5a5a5a";
    ctx.lineWidth = devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillStyle = "#5a5a5a";
    ctx.font = 12 * devicePixelRatio + "px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.fillText("end of load", x - 4 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio);
    ctx.restore();
  }

  // A zoom on one time chart zooms them all.
  function syncZoom(u, key) {
    if (key !== "x" || syncing || !u.fsTime) return;
    syncing = true;
    plots.forEach(function (p) {
      if (p !== u && p.fsTime) p.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
    });
    syncing = false;
  }

  function width(el) {
    return Math.max(320, Math.min(el.clientWidth || 1100, 1180));
  }

  data.charts.forEach(function (c) {
    var el = document.getElementById("plot-" + c.id);
    if (!el) return;
    var series = [{
      label: c.spectrum ? "percentile" : "second",
      value: function (u, v) { return v == null ? "-" : c.spectrum ? percentile(v) : v.toFixed(0) + " s"; },
    }];
    c.series.forEach(function (s, i) {
      var line = {
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 2,
        spanGaps: c.span_gaps,
        value: function (u, v) { return v == null ? "-" : short(v) + (c.unit ? " " + c.unit : ""); },
      };
      // Sparse samples (the brokers' series): each sample a dot.
      if (c.span_gaps) line.points = { show: true, size: 5 };
      series.push(line);
    });
    var y = c.log
      ? { distr: 3, log: 10 }
      : { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } };
    var opts = {
      title: c.title,
      width: width(el),
      height: 360,
      series: series,
      scales: { x: { time: false }, y: y },
      cursor: { sync: { key: c.spectrum ? "fs-spectrum" : "fs-time" }, drag: { x: true, y: false } },
      legend: { live: true },
      axes: [
        {
          label: c.x_label, font: FONT, labelFont: LABEL_FONT, size: 44, labelSize: 24,
          splits: c.spectrum ? function (u, i, min, max) {
            var out = [];
            for (var k = Math.ceil(min); k <= max; k++) out.push(k);
            return out;
          } : undefined,
          values: function (u, vals) {
            return vals.map(function (v) { return c.spectrum ? percentile(v) : short(v); });
          },
          grid: { stroke: "#e2e2e2", width: 1 },
        },
        {
          label: c.y_label, font: FONT, labelFont: LABEL_FONT, size: 70, labelSize: 24,
          splits: c.log ? decades : undefined,
          values: function (u, vals) { return vals.map(short); },
          grid: { stroke: "#e2e2e2", width: 1 },
        },
      ],
      hooks: {
        drawClear: c.spectrum ? [] : [shade],
        draw: c.spectrum ? [] : [loadEnd],
        setScale: [syncZoom],
      },
    };
    var u = new uPlot(opts, [c.x].concat(c.series.map(function (s) { return s.values; })), el);
    u.fsTime = !c.spectrum;
    plots.push(u);
  });

  window.addEventListener("resize", function () {
    plots.forEach(function (u) { u.setSize({ width: width(u.root.parentNode), height: 360 }); });
  });
  // What a test reads back: how many charts were drawn.
  document.documentElement.setAttribute("data-charts", String(plots.length));
})();
