// Cached HTML carries no CSRF token, so every htmx request sends the
// csrftoken cookie's value in the X-CSRFToken header instead.
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
})();
