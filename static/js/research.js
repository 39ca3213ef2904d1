// Research notes: each note's chart of stored candles (the candles are in a JSON script beside it; the
// figure's caption is the chart's text alternative).
(function () {
  "use strict";
  function cssVar(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }
  function draw(el) {
    var LC = window.LightweightCharts;
    var source = document.getElementById(el.dataset.candlesId);
    if (!LC || !source || el.dataset.drawn) return;
    el.dataset.drawn = "1";
    var precision = parseInt(el.dataset.precision, 10) || 2;
    var chart = LC.createChart(el, {
      autoSize: true,
      // The logo injects a <style> element, which the CSP forbids; the attribution is in the caption.
      layout: { background: { color: "transparent" }, textColor: cssVar("--text", "#222"), attributionLogo: false },
      grid: { vertLines: { color: cssVar("--border", "#ddd") }, horzLines: { color: cssVar("--border", "#ddd") } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    var up = cssVar("--up", "#16a34a"), down = cssVar("--down", "#dc2626");
    var series = chart.addSeries(LC.CandlestickSeries, {
      upColor: up, downColor: down, borderUpColor: up, borderDownColor: down, wickUpColor: up, wickDownColor: down,
      priceFormat: { type: "price", precision: precision, minMove: Math.pow(10, -precision) },
    });
    series.setData(JSON.parse(source.textContent).map(function (r) {
      return { time: r.time, open: +r.open, high: +r.high, low: +r.low, close: +r.close };
    }));
    chart.timeScale().fitContent();
  }
  function drawAll() { document.querySelectorAll(".research-chart").forEach(draw); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
