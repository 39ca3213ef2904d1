// Portfolio pages: the equity-curve chart (lightweight-charts 5.2.1), its live point, small form helpers.
// No inline scripts anywhere (CSP): data comes from a json_script block and data-* attributes.
(function () {
  "use strict";

  var chart = null;
  var valueSeries = null;
  var investedSeries = null;

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function toPoints(rows, key) {
    return rows.map(function (row) { return { time: row.time, value: Number(row[key]) }; });
  }

  function buildChart() {
    var container = document.getElementById("equity-chart");
    var dataNode = document.getElementById("equity-data");
    if (!container || !dataNode || !window.LightweightCharts) return;
    var rows = JSON.parse(dataNode.textContent);
    var lc = window.LightweightCharts;
    chart = lc.createChart(container, {
      autoSize: true,
      // The built-in logo injects a <style> element, which our CSP refuses; the page credits TradingView instead.
      layout: {
        background: { color: "transparent" },
        textColor: cssVar("--muted", "#5b6472"),
        attributionLogo: false,
      },
      grid: { vertLines: { visible: false }, horzLines: { color: cssVar("--border", "#d9dde3") } },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false },
      handleScroll: false,
      handleScale: false,
    });
    valueSeries = chart.addSeries(lc.AreaSeries, {
      lineColor: cssVar("--accent", "#2457d6"),
      topColor: "rgba(36, 87, 214, 0.25)",
      bottomColor: "rgba(36, 87, 214, 0.02)",
      lineWidth: 2,
      priceLineVisible: false,
    });
    investedSeries = chart.addSeries(lc.LineSeries, {
      color: cssVar("--muted", "#5b6472"),
      lineWidth: 1,
      lineStyle: 2,
      priceLineVisible: false,
      lastValueVisible: false,
    });
    valueSeries.setData(toPoints(rows, "value"));
    investedSeries.setData(toPoints(rows, "invested"));
    chart.timeScale().fitContent();
  }

  function applyLivePoint(node) {
    if (!valueSeries || !node || !node.dataset.time) return;
    valueSeries.update({ time: node.dataset.time, value: Number(node.dataset.value) });
    investedSeries.update({ time: node.dataset.time, value: Number(node.dataset.invested) });
  }

  // A new total arrived over the WebSocket: flash it and move the chart's last point.
  var previousTotals = {};
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.id) return;
    if (target.hasAttribute("data-live-point")) applyLivePoint(target);
    var total = target.querySelector && target.querySelector("[data-total]");
    if (total) {
      var text = total.textContent;
      var before = previousTotals[total.id];
      if (before !== undefined && before !== text) {
        var up = Number(text.replace(/,/g, "")) >= Number(before.replace(/,/g, ""));
        total.classList.remove("flash-up", "flash-down");
        void total.offsetWidth; // restart the animation
        total.classList.add(up ? "flash-up" : "flash-down");
      }
      previousTotals[total.id] = text;
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll(".js-hidden"), function (node) { node.hidden = true; });
    Array.prototype.forEach.call(document.querySelectorAll("[data-total]"), function (node) {
      previousTotals[node.id] = node.textContent;
    });
    buildChart();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
