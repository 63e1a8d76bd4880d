// Traffic charts (uPlot) and the overview's live rates. Loaded from our own origin only on
// pages with a chart; the CSP allows no inline script, so everything is wired from data-*
// attributes: <section data-traffic-chart data-src="/ui/traffic/peers/7.json">.
(function () {
  "use strict";

  var UNITS = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
  function rate(bytesPerSecond) {
    var v = (Number(bytesPerSecond) || 0) * 8, i = 0;
    while (v >= 1000 && i < UNITS.length - 1) { v /= 1000; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + UNITS[i];
  }
  var BYTES = ["B", "kB", "MB", "GB", "TB", "PB"];
  function bytes(n) {
    var v = Number(n) || 0, i = 0;
    while (v >= 1000 && i < BYTES.length - 1) { v /= 1000; i++; }
    return i === 0 ? v.toFixed(0) + " B" : v.toFixed(1) + " " + BYTES[i];
  }
  function color(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function Chart(section) {
    this.section = section;
    this.box = section.querySelector("[data-chart-box]");
    this.total = section.querySelector("[data-chart-total]");
    this.status = section.querySelector("[data-chart-status]");
    this.range = section.dataset.range || "24h";
    this.plot = null;
    this.data = null;
    var self = this;
    section.querySelectorAll("[data-range]").forEach(function (button) {
      button.addEventListener("click", function () { self.load(button.dataset.range); });
    });
  }

  Chart.prototype.load = function (range) {
    var self = this;
    this.range = range;
    this.section.querySelectorAll("[data-range]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.range === range ? "true" : "false");
    });
    this.status.textContent = "Loading…";
    fetch(this.section.dataset.src + "?range=" + encodeURIComponent(range), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    }).then(function (body) {
      self.data = body;
      self.status.textContent = "";
      self.draw();
    }).catch(function (err) {
      self.status.textContent = "Could not load the traffic history (" + err.message + ").";
    });
  };

  Chart.prototype.draw = function () {
    var body = this.data;
    if (!body || typeof uPlot === "undefined") return;
    // Average rate in each bucket, bits per second: download (sent to the peer) and upload.
    var down = body.tx.map(function (b) { return b / body.step; });
    var up = body.rx.map(function (b) { return b / body.step; });
    this.total.textContent = "Download " + bytes(body.tx_bytes) + ", upload " + bytes(body.rx_bytes) +
      " in this range (" + (body.step >= 3600 ? body.step / 3600 + " h" : body.step / 60 + " min") + " buckets).";
    var width = Math.max(this.box.clientWidth, 280);
    var axis = color("--muted", "#888"), grid = color("--line", "rgba(128,128,128,0.25)");
    var opts = {
      width: width,
      height: 220,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      series: [
        {},
        { label: "Download", stroke: color("--accent", "#2f6fde"), width: 1.5, value: function (u, v) { return v == null ? "–" : rate(v); } },
        { label: "Upload", stroke: color("--ok", "#2a9d55"), width: 1.5, value: function (u, v) { return v == null ? "–" : rate(v); } }
      ],
      axes: [
        { stroke: axis, grid: { stroke: grid } },
        { stroke: axis, grid: { stroke: grid }, size: 96, values: function (u, vals) { return vals.map(rate); } }
      ]
    };
    if (this.plot) this.plot.destroy();
    this.box.textContent = "";
    this.plot = new uPlot(opts, [body.t, down, up], this.box);
  };

  var charts = [];
  function resize() {
    charts.forEach(function (c) { if (c.plot) c.plot.setSize({ width: Math.max(c.box.clientWidth, 280), height: 220 }); });
  }

  // ---- live rates on the overview: app.js hands each WebSocket message's totals over
  document.addEventListener("ww:totals", function (event) {
    var totals = event.detail || {};
    var box = document.querySelector("[data-live-rates]");
    if (!box || !totals.rates) return;
    var down = box.querySelector('[data-rate="tx"]'), up = box.querySelector('[data-rate="rx"]');
    if (down) down.textContent = rate(totals.rates.tx);
    if (up) up.textContent = rate(totals.rates.rx);
    Object.keys(totals.rates.interfaces || {}).forEach(function (name) {
      var cell = document.querySelector('[data-interface="' + CSS.escape(name) + '"] [data-field="rate"]');
      var r = totals.rates.interfaces[name];
      if (cell) cell.textContent = "↓ " + rate(r.tx) + " ↑ " + rate(r.rx);
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-traffic-chart]").forEach(function (section) {
      var chart = new Chart(section);
      charts.push(chart);
      chart.load(chart.range);
    });
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(resize, 150);
    });
    document.querySelectorAll("[data-theme-toggle]").forEach(function (b) {
      b.addEventListener("click", function () { charts.forEach(function (c) { c.draw(); }); });
    });
  });
})();
