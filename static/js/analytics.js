// Analytics page enhancements; the page works without them.
(function () {
  "use strict";
  // htmx leaves 4xx responses unswapped by default; the analytics body carries
  // the form errors a person needs to see, so swap a 400 into it too.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 400 && target && target.id === "analytics") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Picking a preset range clears a custom one, which would otherwise win.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.id === "id_days" && el.value !== "custom" && el.form) {
      el.form.querySelector("#id_from").value = "";
      el.form.querySelector("#id_to").value = "";
    }
  }, true);
})();
// Leave empty filters out of the request, so the pushed URL stays short and shareable.
document.addEventListener("htmx:configRequest", function (event) {
  "use strict";
  var elt = event.detail.elt;
  if (!elt.closest || !elt.closest("#analytics")) {
    return;
  }
  var params = event.detail.parameters;
  var empty = [];
  params.forEach(function (value, key) {
    if (value === "") {
      empty.push(key);
    }
  });
  empty.forEach(function (key) {
    params.delete(key);
  });
});
