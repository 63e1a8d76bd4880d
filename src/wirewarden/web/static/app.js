// WireWarden dashboard behaviour. Loaded from our own origin; the CSP allows no inline script.
(function () {
  "use strict";

  // ---- theme: follows the system unless the user picked one with the toggle
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem("ww-theme"); } catch (e) { /* storage off */ }
  if (saved === "dark" || saved === "light") root.dataset.theme = saved;

  function currentTheme() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function bindThemeToggle() {
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", currentTheme() === "dark" ? "true" : "false");
      button.addEventListener("click", function () {
        var next = currentTheme() === "dark" ? "light" : "dark";
        root.dataset.theme = next;
        button.setAttribute("aria-pressed", next === "dark" ? "true" : "false");
        try { localStorage.setItem("ww-theme", next); } catch (e) { /* storage off */ }
      });
    });
  }

  // ---- formatting, the same as the server's filters
  var UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];
  function bytes(n) {
    var amount = Number(n) || 0, i = 0;
    while (amount >= 1000 && i < UNITS.length - 1) { amount /= 1000; i++; }
    return i === 0 ? amount.toFixed(0) + " B" : amount.toFixed(1) + " " + UNITS[i];
  }
  function ago(epoch) {
    if (!epoch) return "never";
    var s = Math.floor(Date.now() / 1000 - epoch);
    if (s < 5) return "just now";
    if (s >= 86400) return Math.floor(s / 86400) + " d ago";
    if (s >= 3600) return Math.floor(s / 3600) + " h ago";
    if (s >= 60) return Math.floor(s / 60) + " min ago";
    return s + " s ago";
  }
  function tickTimes() {
    document.querySelectorAll("time[data-epoch]").forEach(function (el) {
      el.textContent = ago(Number(el.dataset.epoch));
    });
  }

  // ---- live status over the WebSocket (the session cookie authenticates it)
  var socket = null, retry = 1000, closing = false;

  function watchedIds() {
    var ids = [];
    document.querySelectorAll("[data-live-peers] [data-peer-id]").forEach(function (el) {
      ids.push(Number(el.dataset.peerId));
    });
    return ids;
  }
  function wantsLive() {
    return document.querySelector("[data-live-peers], [data-live-overview]") !== null;
  }
  function subscribe() {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ watch: watchedIds(), overview: !!document.querySelector("[data-live-overview]") }));
    }
  }
  function flash(el) {
    el.classList.remove("updated");
    void el.offsetWidth; // restart the animation
    el.classList.add("updated");
  }
  function setText(el, text) {
    if (el && el.textContent !== text) { el.textContent = text; flash(el); }
  }
  function applyPeer(id, s) {
    document.querySelectorAll('[data-peer-id="' + id + '"]').forEach(function (row) {
      var badge = row.querySelector('[data-field="online"]');
      if (badge) {
        badge.classList.toggle("on", s.online);
        badge.classList.toggle("idle", !s.online);
        setText(badge, s.online ? "online" : "offline");
      }
      var dot = row.querySelector("[data-mesh-dot]");
      if (dot) { dot.classList.toggle("on", s.online); dot.classList.toggle("idle", !s.online); }
      var hs = row.querySelector('[data-field="handshake"]');
      if (hs) {
        hs.dataset.epoch = String(s.handshake || 0);
        hs.setAttribute("datetime", s.handshake ? new Date(s.handshake * 1000).toISOString() : "");
        setText(hs, ago(s.handshake));
      }
      var rx = row.querySelector('[data-field="rx"]');
      if (rx) { rx.dataset.bytes = String(s.rx); setText(rx, bytes(s.rx)); }
      var tx = row.querySelector('[data-field="tx"]');
      if (tx) { tx.dataset.bytes = String(s.tx); setText(tx, bytes(s.tx)); }
      var ep = row.querySelector('[data-field="endpoint"]');
      if (ep) setText(ep, s.endpoint || "—");
    });
  }
  function applyTotals(totals) {
    var box = document.querySelector("[data-live-overview]");
    if (!box || !totals) return;
    ["peers", "online"].forEach(function (k) {
      setText(box.querySelector('[data-total="' + k + '"]'), String(totals[k]));
    });
    ["rx", "tx"].forEach(function (k) {
      setText(box.querySelector('[data-total="' + k + '"]'), bytes(totals[k]));
    });
    Object.keys(totals.interfaces || {}).forEach(function (name) {
      var cell = document.querySelector('[data-interface="' + CSS.escape(name) + '"] [data-field="online-count"]');
      setText(cell, String(totals.interfaces[name].online));
    });
  }
  function connect() {
    if (!wantsLive() || !("WebSocket" in window)) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/status");
    socket.addEventListener("open", function () { retry = 1000; subscribe(); });
    socket.addEventListener("message", function (event) {
      var msg = JSON.parse(event.data);
      Object.keys(msg.peers || {}).forEach(function (id) { applyPeer(id, msg.peers[id]); });
      applyTotals(msg.totals);
      if (msg.totals) document.dispatchEvent(new CustomEvent("ww:totals", { detail: msg.totals }));
      document.body.dataset.live = "on";
    });
    socket.addEventListener("close", function (event) {
      document.body.dataset.live = "off";
      socket = null;
      // 4401: the session ended (signed out or revoked): go to the sign-in page, don't retry.
      if (event.code === 4401) { location.assign("/login"); return; }
      if (!closing) { setTimeout(connect, retry); retry = Math.min(retry * 2, 30000); }
    });
  }

  // ---- copy buttons (recovery codes): shown only where the clipboard API is there
  function bindCopyButtons() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var status = button.parentNode.querySelector("[data-copy-status]");
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.getAttribute("data-copy")).then(
          function () { if (status) status.textContent = "Copied."; },
          function () { if (status) status.textContent = "Copying failed; use the download."; }
        );
      });
    });
  }

  // ---- phones: each table row becomes a card; a cell is labelled by its column's header
  // (the CSS shows data-label before the value). Tables that label their cells keep theirs.
  function labelCells(scope) {
    (scope || document).querySelectorAll(".table-wrap table").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, i) {
          if (!cell.hasAttribute("data-label") && heads[i]) cell.setAttribute("data-label", heads[i]);
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    labelCells();
    bindThemeToggle();
    bindCopyButtons();
    setInterval(tickTimes, 5000);
    document.querySelectorAll("[data-select-on-focus]").forEach(function (el) {
      el.addEventListener("focus", function () { el.select(); });
    });
    connect();
  });
  // A new table page (search, sort, paging) changes which peers are on screen.
  document.addEventListener("htmx:afterSettle", subscribe);
  document.addEventListener("htmx:afterSettle", function (event) { labelCells(event.target); });
  window.addEventListener("pagehide", function () { closing = true; if (socket) socket.close(); });
})();
