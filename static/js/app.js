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
  document.documentElement.classList.add("js");
})();
