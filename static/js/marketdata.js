// Market pages: stale badges, sparklines and the live candlestick chart. Prices arrive as HTMX
// out-of-band swaps over /ws/market/ (rendered once by the feed); this file only reacts to them.
(function () {
  "use strict";

  // A price that has not moved for longer than its threshold is marked stale even if the feed is down
  // and nobody can tell us so.
  function checkStale() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-stale-watch]").forEach(function (badge) {
      var updated = parseFloat(badge.dataset.updatedTs);
      var after = parseFloat(badge.dataset.staleAfter);
      if (!isNaN(updated) && !isNaN(after)) badge.hidden = now - updated <= after;
    });
  }
  setInterval(checkStale, 1000);

  var SPARK_POINTS = 60;
  function drawSparkline(svg, closes) {
    var line = svg.querySelector("polyline");
    if (!line || closes.length < 2) return;
    var box = svg.viewBox.baseVal;
    var low = Math.min.apply(null, closes), high = Math.max.apply(null, closes);
    var span = high - low || 1, step = box.width / (closes.length - 1);
    line.setAttribute("points", closes.map(function (c, i) {
      return (i * step).toFixed(1) + "," + (box.height - (c - low) / span * box.height).toFixed(1);
    }).join(" "));
  }
  function updateSparkline(priceEl) {
    var slug = priceEl.id.replace(/^q-/, "").replace(/-price$/, "");
    var svg = document.querySelector('svg[data-sparkline="' + slug + '"]');
    if (!svg || !priceEl.dataset.t) return;
    var closes = (svg.dataset.closes || "").split(",").filter(Boolean).map(parseFloat);
    var price = parseFloat(priceEl.dataset.price);
    if (svg.dataset.lastT === priceEl.dataset.t && closes.length) {
      closes[closes.length - 1] = price;
    } else {
      closes.push(price);
    }
    svg.dataset.lastT = priceEl.dataset.t;
    closes = closes.slice(-SPARK_POINTS);
    svg.dataset.closes = closes.join(",");
    drawSparkline(svg, closes);
  }

  // The candlestick chart on /markets/<slug>.
  var chartEl = document.getElementById("market-chart");
  var live = null;
  function cssVar(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }
  function startChart() {
    if (!chartEl || !window.LightweightCharts) return;
    var LC = window.LightweightCharts;
    var precision = parseInt(chartEl.dataset.precision, 10) || 2;
    var frame = parseInt(chartEl.dataset.timeframeSeconds, 10) || 60;
    var rows = JSON.parse(document.getElementById("market-candles").textContent);
    var chart = LC.createChart(chartEl, {
      autoSize: true,
      // The logo injects a <style> element, which the CSP forbids; the attribution is in the caption.
      layout: { background: { color: "transparent" }, textColor: cssVar("--text", "#222"), attributionLogo: false },
      grid: { vertLines: { color: cssVar("--border", "#ddd") }, horzLines: { color: cssVar("--border", "#ddd") } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    var up = cssVar("--up", "#16a34a"), down = cssVar("--down", "#dc2626");
    var candles = chart.addSeries(LC.CandlestickSeries, {
      upColor: up, downColor: down, borderUpColor: up, borderDownColor: down, wickUpColor: up, wickDownColor: down,
      priceFormat: { type: "price", precision: precision, minMove: Math.pow(10, -precision) },
    });
    // Volume has an overlay scale of its own in the bottom fifth; the candles' scale ends above it, so the
    // bars never cover the candles.
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
    var volumes = chart.addSeries(LC.HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false, priceLineVisible: false,
    });
    volumes.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    var bars = rows.map(function (r) {
      return { time: r.time, open: +r.open, high: +r.high, low: +r.low, close: +r.close, volume: +r.volume };
    });
    candles.setData(bars);
    volumes.setData(bars.map(function (b) { return { time: b.time, value: b.volume }; }));
    live = { chart: chart, candles: candles, volumes: volumes, frame: frame, bar: bars[bars.length - 1] || null,
             minute: null, baseVolume: 0 };
  }
  // One minute candle from the feed, merged into the chart's timeframe.
  function updateChart(el) {
    if (!live || !el.dataset.t) return;
    var m = { t: +el.dataset.t, o: +el.dataset.o, h: +el.dataset.h, l: +el.dataset.l, c: +el.dataset.c, v: +el.dataset.v };
    var bucket = Math.floor(m.t / live.frame) * live.frame;
    var bar = live.bar;
    if (!bar || bucket > bar.time) {
      bar = { time: bucket, open: m.o, high: m.h, low: m.l, close: m.c, volume: 0 };
      live.baseVolume = 0;
    } else if (bucket < bar.time) {
      return;
    } else {
      if (live.minute === null) live.baseVolume = live.frame === 60 ? 0 : Math.max(0, bar.volume - m.v);
      else if (live.minute !== m.t) live.baseVolume = bar.volume;
      bar = { time: bar.time, open: bar.open, high: Math.max(bar.high, m.h), low: Math.min(bar.low, m.l), close: m.c,
              volume: bar.volume };
    }
    live.minute = m.t;
    bar.volume = live.baseVolume + m.v;
    live.bar = bar;
    live.candles.update(bar);
    live.volumes.update({ time: bar.time, value: bar.volume });
  }

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var el = event.target;
    if (!el || !el.classList) return;
    if (el.classList.contains("q-price")) updateSparkline(el);
    if (el.classList.contains("ticker")) updateChart(el);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startChart);
  } else {
    startChart();
  }
  checkStale();
})();
