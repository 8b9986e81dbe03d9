// The asset chart: hourly mean with a min/max band and |z| > 3 hours marked (uPlot).
import uPlot from "../vendor/uplot/uPlot.esm.js";

const HOUR = 3600;

// z_score_24h as DESIGN defines it: (L(H) - mean) / std of the hourly means in
// [H-24h, H) (by time, not rows; std is the sample std, needs >= 2 values; null if 0).
export function zScores(hours, values) {
  const n = hours.length;
  const z = new Array(n).fill(null);
  const avg = new Array(n).fill(null);
  let lo = 0, sum = 0, sq = 0, k = 0;
  for (let i = 0; i < n; i++) {
    while (lo < i && hours[lo] < hours[i] - 24 * HOUR) {
      sum -= values[lo]; sq -= values[lo] * values[lo]; k--; lo++;
    }
    if (k >= 1) avg[i] = sum / k;
    if (k >= 2) {
      const mean = sum / k;
      const variance = Math.max(0, (sq - k * mean * mean) / (k - 1));
      const std = Math.sqrt(variance);
      if (std > 1e-12 * Math.max(1, Math.abs(mean))) z[i] = (values[i] - mean) / std;
    }
    sum += values[i]; sq += values[i] * values[i]; k++;
  }
  return { z, avg };
}

// lag_168h by time: the hourly mean of the same hour a week earlier (null if no data).
export function lagSeries(hours, values, lagHours = 168) {
  const byHour = new Map();
  hours.forEach((t, i) => byHour.set(t, values[i]));
  return hours.map((t) => byHour.get(t - lagHours * HOUR) ?? null);
}

export function anomalyMarks(series, threshold = 3) {
  const { z, avg } = zScores(series.hour, series.mean);
  const marks = series.mean.map((v, i) => (z[i] !== null && Math.abs(z[i]) > threshold ? v : null));
  return { marks, avg, count: marks.filter((v) => v !== null).length };
}

// Logged forecasts aligned to the chart's hours: per target hour, the prediction of the
// latest origin (the freshest forecast the model made for that hour); null elsewhere.
export function alignForecasts(hours, predictions) {
  const best = new Map();
  for (const p of predictions) {
    const t = Date.parse(p.timestamp) / 1000, o = Date.parse(p.origin) / 1000;
    const cur = best.get(t);
    if (!cur || o > cur.o) best.set(t, { o, v: p.prediction });
  }
  return hours.map((t) => best.get(t)?.v ?? null);
}

export function drawChart(el, series, { onPainted } = {}) {
  const { marks, avg } = anomalyMarks(series);
  const width = () => Math.max(300, el.clientWidth || 300);
  const height = () => (window.innerWidth < 600 ? 260 : 360);
  let painted = false;
  const opts = {
    width: width(), height: height(),
    title: undefined,
    scales: { x: { time: true } },
    cursor: { drag: { x: true, y: false }, focus: { prox: 16 } },
    series: [
      {},
      { label: "min", stroke: "rgba(31,95,139,.35)", width: 1 },
      { label: "max", stroke: "rgba(31,95,139,.35)", width: 1 },
      { label: "hourly mean", stroke: "#1f5f8b", width: 1.25 },
      { label: "24 h avg", stroke: "#8a5cf6", width: 1, show: false },
      { label: "lag 168 h", stroke: "#c07a00", width: 1, show: false },
      { label: "|z| > 3", stroke: "#b3261e", fill: "#b3261e", width: 0,
        paths: () => null, points: { show: true, size: 7, stroke: "#b3261e", fill: "#b3261e" } },
    ],
    bands: [{ series: [2, 1], fill: "rgba(31,95,139,.15)" }],
    axes: [{}, { label: "load", size: 60 }],
    hooks: {
      draw: [() => {
        if (!painted) { painted = true; onPainted?.(); }
      }],
    },
  };
  const lag = lagSeries(series.hour, series.mean);
  const data = [series.hour, series.min, series.max, series.mean, avg, lag, marks];
  const plot = new uPlot(opts, data, el);
  // Forecasts arrive after the first paint (a second request): added as one more series.
  plot.addForecast = (forecast) => {
    plot.addSeries({ label: forecast.label, stroke: "#2e7d32", width: 1.25, dash: [6, 3] });
    plot.setData([...data, forecast.values], false);
    plot.redraw();
  };
  const onResize = () => plot.setSize({ width: width(), height: height() });
  window.addEventListener("resize", onResize);
  return plot;
}
