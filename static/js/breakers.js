// The admin's circuit breakers page: refresh the results table every 5 s
// (state is read live from Redis on each request), without a full reload.
(function () {
  "use strict";
  const table = () => document.getElementById("result_list");
  async function refresh() {
    if (!table() || document.hidden) return;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.getElementById("result_list");
      if (fresh) table().replaceWith(fresh);
    } catch (error) {
      // A failed refresh keeps the last table; the next tick tries again.
    }
  }
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-breakers-refresh]")) {
      event.preventDefault();
      refresh();
    }
  });
  window.setInterval(refresh, 5000);
})();
