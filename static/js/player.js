// The call detail's player (calls/templates/calls/partials/player.html).
// Transcript turns are buttons that seek the recording (Enter and Space too,
// as for any button); the turn being spoken carries aria-current="true"; a
// topic or action item link seeks to its turn; ?t=<seconds> or #t-<seconds>
// on the page's URL starts there; a recording URL that has expired during a
// long listen is renewed from the uncached link endpoint. No inline code or
// style: positions go into SVG attributes, never style.
(function () {
  "use strict";

  var RENEW_AFTER_MS = 30000; // at most one renewal per 30 s, so a missing file cannot loop

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function requestedStart(root) {
    var match = /^#t-(\d+(?:\.\d+)?)$/.exec(window.location.hash);
    if (match) return parseFloat(match[1]);
    if (root.hasAttribute("data-start")) return parseFloat(root.getAttribute("data-start"));
    return null;
  }

  function init(root) {
    var audio = root.querySelector("audio");
    if (!audio) return;
    var turns = Array.prototype.slice.call(root.querySelectorAll("button.turn"));
    var spans = turns.map(function (button) {
      return { button: button, start: parseFloat(button.dataset.start), end: parseFloat(button.dataset.end) };
    });
    var playheads = root.querySelectorAll(".timeline-playhead");
    var status = root.querySelector(".player-status");
    var linkUrl = root.getAttribute("data-link-url");
    var current = null;
    var wantPlaying = false;
    var lastRenewal = 0;

    function turnAt(seconds) {
      for (var i = spans.length - 1; i >= 0; i--) {
        if (spans[i].start <= seconds) return seconds < spans[i].end ? spans[i].button : null;
      }
      return null;
    }

    function mark(seconds) {
      var turn = turnAt(seconds);
      if (turn !== current) {
        if (current) current.removeAttribute("aria-current");
        if (turn) turn.setAttribute("aria-current", "true");
        current = turn;
      }
      for (var i = 0; i < playheads.length; i++) {
        playheads[i].setAttribute("x", String(Math.round(seconds * 1000)));
      }
    }

    function announce(text) {
      if (status) status.textContent = text;
    }

    function seek(seconds, play) {
      var apply = function () {
        audio.currentTime = seconds;
        mark(seconds);
        if (play) {
          var started = audio.play();
          if (started && started.catch) started.catch(function () { /* the person presses play */ });
        }
      };
      if (audio.readyState >= 1) {
        apply();
      } else {
        audio.addEventListener("loadedmetadata", apply, { once: true });
        if (audio.networkState === audio.NETWORK_EMPTY || audio.preload === "none") audio.load();
      }
    }

    function playTurn(button) {
      var seconds = parseFloat(button.dataset.start);
      seek(seconds, true);
      var speaker = button.querySelector(".utterance-speaker");
      announce("Playing from " + clock(seconds) + (speaker ? ", " + speaker.textContent : ""));
    }

    root.addEventListener("click", function (event) {
      var button = event.target.closest("button.turn");
      if (button && root.contains(button)) playTurn(button);
    });

    // Topics and action items link to their turn (#turn-N): seek there and move focus to it.
    document.addEventListener("click", function (event) {
      var link = event.target.closest("a.turn-link");
      if (!link) return;
      var item = document.getElementById(link.getAttribute("data-turn"));
      var button = item && item.querySelector("button.turn");
      if (!button) return;
      event.preventDefault();
      button.focus();
      playTurn(button);
    });

    audio.addEventListener("timeupdate", function () { mark(audio.currentTime); });
    audio.addEventListener("seeked", function () { mark(audio.currentTime); });
    audio.addEventListener("play", function () { wantPlaying = true; });
    audio.addEventListener("pause", function () { wantPlaying = false; });

    // The signed URL lasts minutes; a listen (or a page left open) can outlast it.
    audio.addEventListener("error", function () {
      var now = Date.now();
      if (!linkUrl || now - lastRenewal < RENEW_AFTER_MS) {
        announce("The recording could not be loaded: reload the page.");
        return;
      }
      lastRenewal = now;
      var at = audio.currentTime || 0, resume = wantPlaying;
      fetch(linkUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data || !data.url) throw new Error("no link");
          audio.src = data.url;
          seek(at, resume);
        })
        .catch(function () { announce("The recording could not be loaded: reload the page."); });
    });

    window.addEventListener("hashchange", function () {
      var match = /^#t-(\d+(?:\.\d+)?)$/.exec(window.location.hash);
      if (match) seek(parseFloat(match[1]), false);
    });

    var start = requestedStart(root);
    if (start !== null && isFinite(start)) {
      seek(start, false);
      var turn = turnAt(start);
      if (turn) turn.scrollIntoView({ block: "center" });
      announce("Ready to play from " + clock(start));
    }
  }

  function boot() {
    var roots = document.querySelectorAll("[data-player]");
    for (var i = 0; i < roots.length; i++) init(roots[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
