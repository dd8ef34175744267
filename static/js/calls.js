// The calls dashboard's behaviour: the infinite-scroll row window, keyboard
// shortcuts, and keeping checkboxes in step with the server-side selection.
// Everything here is an enhancement: without it the table pages with links.
(function () {
  "use strict";

  function table() {
    return document.getElementById("calls-table");
  }

  // --- Filter errors are 400s: swap them in, the page explains what is wrong.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 400 && event.detail.target && event.detail.target.closest("#calls-page")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // --- Infinite scroll with a bounded DOM window ---------------------------------
  // Each loaded page is a <tbody class="chunk">. When more than data-window
  // chunks are in the table, the one farthest from where the person is
  // scrolling is replaced by a sentinel of the same height that loads it
  // again when it is scrolled back into view.
  var pending = null; // {end: "next"|"prev", height: px} of the sentinel being loaded

  function windowSize() {
    var t = table();
    return t ? parseInt(t.getAttribute("data-window") || "5", 10) : 5;
  }

  function makeSentinel(end, url, height) {
    var tbody = document.createElement("tbody");
    tbody.className = "sentinel sentinel-" + end + " spacer";
    tbody.setAttribute("data-end", end);
    tbody.setAttribute("hx-get", url);
    tbody.setAttribute("hx-trigger", "revealed");
    tbody.setAttribute("hx-swap", "outerHTML");
    tbody.setAttribute("hx-target", "this");
    tbody.setAttribute("hx-push-url", "false");
    var row = document.createElement("tr");
    var cell = document.createElement("td");
    cell.colSpan = 10;
    cell.className = "muted";
    cell.textContent = end === "next" ? "Loading more calls…" : "Loading earlier calls…";
    // Keep the dropped rows' height so nothing on screen moves (CSSOM, allowed by the CSP).
    cell.style.height = Math.max(height, 40) + "px";
    row.appendChild(cell);
    tbody.appendChild(row);
    return tbody;
  }

  function sentinelHeight(sentinel) {
    return sentinel ? sentinel.getBoundingClientRect().height : 0;
  }

  function dropFarthest(loadedEnd) {
    var t = table();
    var chunks = t.querySelectorAll("tbody.chunk");
    var limit = windowSize();
    while (chunks.length > limit) {
      if (loadedEnd === "next") {
        var first = chunks[0];
        var after = chunks[1];
        var oldTop = t.querySelector("tbody.sentinel-prev");
        var height = first.getBoundingClientRect().height + sentinelHeight(oldTop);
        if (oldTop) oldTop.remove();
        var top = makeSentinel("prev", after.getAttribute("data-prev-url"), height);
        first.replaceWith(top);
        htmx.process(top);
      } else {
        var last = chunks[chunks.length - 1];
        var before = chunks[chunks.length - 2];
        var oldBottom = t.querySelector("tbody.sentinel-next");
        var h = last.getBoundingClientRect().height + sentinelHeight(oldBottom);
        if (oldBottom) oldBottom.remove();
        var bottom = makeSentinel("next", before.getAttribute("data-next-url"), h);
        last.replaceWith(bottom);
        htmx.process(bottom);
      }
      chunks = t.querySelectorAll("tbody.chunk");
    }
  }

  function rememberPosition() {
    // The URL names the topmost page still in the window, so reload and a
    // shared link open here; replaceState keeps back/forward for real moves.
    var t = table();
    var top = t && t.querySelector("tbody.chunk");
    var url = top && top.getAttribute("data-url");
    if (url && url !== window.location.pathname + window.location.search) {
      window.history.replaceState({ htmx: true }, "", url);
    }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.classList && elt.classList.contains("sentinel")) {
      pending = { end: elt.getAttribute("data-end"), height: sentinelHeight(elt) };
    }
  });

  // afterSwap, not afterSettle: the window must never hold an extra page, not even for the settle delay.
  document.addEventListener("htmx:afterSwap", function () {
    if (!pending || !table()) return;
    var loaded = pending;
    pending = null;
    // A spacer may stand for several dropped pages: what the new chunk does
    // not fill stays as the height of the next sentinel on that side.
    var t = table();
    var chunks = t.querySelectorAll("tbody.chunk");
    var newChunk = loaded.end === "next" ? chunks[chunks.length - 1] : chunks[0];
    var rest = loaded.height - (newChunk ? newChunk.getBoundingClientRect().height : 0);
    var again = t.querySelector("tbody.sentinel-" + loaded.end);
    if (again && rest > 40) {
      again.querySelector("td").style.height = rest + "px";
    }
    dropFarthest(loaded.end);
    rememberPosition();
  });

  // --- Selection ----------------------------------------------------------------------
  // The server tells us (HX-Trigger) when a whole page, every match, or nothing was selected.
  document.addEventListener("calls-selection", function (event) {
    var detail = event.detail || {};
    var wanted = detail.check ? detail.check.map(String) : null;
    document.querySelectorAll("#calls-table tr.call-row").forEach(function (row) {
      var box = row.querySelector("input[type=checkbox]");
      if (!box) return;
      if (detail.all) box.checked = true;
      else if (detail.none) box.checked = false;
      else if (wanted && wanted.indexOf(row.getAttribute("data-id")) !== -1) box.checked = true;
      row.classList.toggle("is-selected", box.checked);
    });
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches && box.matches("#calls-table tr.call-row input[type=checkbox]")) {
      box.closest("tr").classList.toggle("is-selected", box.checked);
    }
  });

  // A click anywhere on a row (but a control) opens the call.
  document.addEventListener("click", function (event) {
    var row = event.target.closest ? event.target.closest("#calls-table tr.call-row") : null;
    if (!row || event.target.closest("a, input, button, label, select")) return;
    window.location.href = row.getAttribute("data-href");
  });

  // --- Keyboard: j/k move, x selects, Enter opens, / searches ------------------------------
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#calls-table tr.call-row"));
  }

  function current() {
    return document.querySelector("#calls-table tr.call-row.is-current");
  }

  function moveTo(row) {
    var old = current();
    if (old) old.classList.remove("is-current");
    if (!row) return;
    row.classList.add("is-current");
    row.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (!table() || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target.closest && target.closest("input, textarea, select, [contenteditable]");
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    var all = rows();
    var here = current();
    var index = here ? all.indexOf(here) : -1;
    switch (event.key) {
      case "j":
        moveTo(all[Math.min(index + 1, all.length - 1)]);
        break;
      case "k":
        moveTo(all[Math.max(index - 1, 0)]);
        break;
      case "x":
        if (here) here.querySelector("input[type=checkbox]").click();
        break;
      case "Enter":
        if (here && !(target.closest && target.closest("a, button"))) {
          window.location.href = here.getAttribute("data-href");
        } else {
          return;
        }
        break;
      case "/":
        var search = document.getElementById("id_q");
        if (search) {
          search.focus();
          search.select();
        }
        break;
      default:
        return;
    }
    event.preventDefault();
  });
})();
