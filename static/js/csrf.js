// Cached HTML carries no CSRF token (resilience/cache/decorators.py blanks
// every csrfmiddlewaretoken input before a page is stored). So every htmx
// request sends the csrftoken cookie's value in the X-CSRFToken header, and
// a plain form post fills its blank csrfmiddlewaretoken input from the cookie.
(function () {
  "use strict";
  function readCookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : null;
  }
  document.addEventListener("htmx:configRequest", function (event) {
    var token = readCookie("csrftoken");
    if (token) {
      event.detail.headers["X-CSRFToken"] = token;
    }
  });
  // Capture phase: runs before any other submit handler and before the browser serialises the form.
  document.addEventListener(
    "submit",
    function (event) {
      var token = readCookie("csrftoken");
      if (!token || !event.target.querySelectorAll) {
        return;
      }
      var inputs = event.target.querySelectorAll('input[name="csrfmiddlewaretoken"]');
      for (var i = 0; i < inputs.length; i++) {
        if (!inputs[i].value) {
          inputs[i].value = token;
        }
      }
    },
    true
  );
})();
