// The nodes page's world map (jsvectormap, served from our own origin). The CSP allows no
// inline script: the markers come as JSON in the data-markers attribute of #node-list, the
// part htmx refreshes every 10 s, and are redrawn from it, so a marker's colour and place
// follow its node's. Names and tooltips are set as text, never as HTML.
(function () {
  "use strict";

  function color(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }
  function fill(status) {
    if (status === "online") return color("--ok", "#1c7c3c");
    if (status === "offline") return color("--err", "#b3261e");
    if (status === "draining") return color("--warn", "#8a5a00");
    return color("--muted", "#5b6270");
  }
  function read() {
    var el = document.getElementById("node-list");
    if (!el) return [];
    try { return JSON.parse(el.getAttribute("data-markers") || "[]"); } catch (e) { return []; }
  }
  function markersOf(nodes) {
    return nodes.map(function (n) {
      return {
        name: n.name, coords: n.coords, status: n.status, place: n.place,
        load: n.load, peers: n.peers, style: { initial: { fill: fill(n.status) } },
      };
    });
  }
  function describe(n) {
    return n.name + " (" + n.status + ")" + (n.place ? ", " + n.place : "") +
      ": " + n.peers + " peers, load " + n.load + " %";
  }

  var map = null, shown = [];
  function draw() {
    var box = document.querySelector("[data-node-map]");
    if (!box || typeof window.jsVectorMap !== "function") return;
    shown = markersOf(read());
    var empty = document.querySelector("[data-node-map-empty]");
    if (empty) empty.hidden = shown.length > 0;
    if (map === null) {
      map = new window.jsVectorMap({
        selector: "#node-map",
        map: "world",
        zoomOnScroll: false,
        markers: shown,
        regionStyle: { initial: { fill: color("--line", "#d9dde4") }, hover: { fillOpacity: 1, cursor: "default" } },
        markerStyle: { initial: { r: 6, stroke: color("--card", "#ffffff"), strokeWidth: 2, strokeOpacity: 1 } },
        markerLabelStyle: { initial: { fill: color("--fg", "#16181d"), fontSize: 12, fontFamily: "inherit" } },
        labels: { markers: { render: function (marker) { return marker.name; } } },
        onMarkerTooltipShow: function (event, tooltip, index) {
          var n = shown[Number(index)];
          if (n) tooltip.text(describe(n));
        },
      });
      return;
    }
    map.removeMarkers();
    map.addMarkers(shown);
  }

  // Colours come from the theme's CSS variables: a theme switch draws the map anew.
  function redraw() {
    if (map === null) return;
    map.destroy();
    map = null;
    var box = document.querySelector("[data-node-map]");
    if (box) box.replaceChildren();
    draw();
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw();
    window.addEventListener("resize", function () { if (map) map.updateSize(); });
    new MutationObserver(redraw).observe(document.documentElement, {
      attributes: true, attributeFilter: ["data-theme"],
    });
    if (window.matchMedia) {
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
    }
  });
  document.addEventListener("htmx:afterSettle", draw);
})();
