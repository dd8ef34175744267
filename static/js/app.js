// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Selects with data-autosubmit submit their form on change (the button is the no-JS path).
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]")) {
      el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
    }
  });
  // Buttons with data-confirm ask before their form is submitted.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  // On a phone a wide table scrolls sideways (app.css): it becomes a tab stop,
  // so a keyboard can scroll it too (WCAG 2.1.1). Only while it overflows.
  function keyboardScrollableTables() {
    var tables = document.querySelectorAll(".table");
    for (var i = 0; i < tables.length; i++) {
      var table = tables[i];
      var overflows = table.scrollWidth > table.clientWidth + 1;
      if (overflows && !table.hasAttribute("tabindex")) {
        table.setAttribute("tabindex", "0");
        table.setAttribute("data-scroll-stop", "");
      } else if (!overflows && table.hasAttribute("data-scroll-stop")) {
        table.removeAttribute("tabindex");
        table.removeAttribute("data-scroll-stop");
      }
    }
  }
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(keyboardScrollableTables, 150);
  });
  document.addEventListener("htmx:afterSettle", keyboardScrollableTables);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", keyboardScrollableTables);
  else keyboardScrollableTables();
  document.documentElement.classList.add("js");
})();
