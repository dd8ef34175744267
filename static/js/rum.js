// Real-user timings (module script, loaded by base.html): the web-vitals
// package (from npm, collected as a static file) measures LCP, INP, CLS, FCP
// and TTFB; this batches them and sends them with navigator.sendBeacon when
// the page is hidden or left. The server checks origin, size and schema
// (resilience/monitoring/rum.py); the route is the URL pattern the server
// rendered into the page, never the address with its ids.
const config = document.querySelector('meta[name="calliq-rum"]');

if (config && config.dataset.route && "sendBeacon" in navigator) {
  const { onCLS, onFCP, onINP, onLCP, onTTFB } = await import(config.dataset.webVitals);
  const pending = new Map();

  const flush = () => {
    if (pending.size === 0) return;
    const body = JSON.stringify({ route: config.dataset.route, metrics: [...pending.values()] });
    pending.clear();
    // A string body goes as text/plain: no CORS preflight, and no CSRF header
    // is possible here, which is why the endpoint checks the origin instead.
    navigator.sendBeacon(config.dataset.endpoint, body);
  };
  const keep = (metric) => {
    // The server refuses a whole beacon with an out-of-range value (its
    // schema allows 0 to 120 s); one stalled measure must not lose the rest.
    if (!(metric.value >= 0 && metric.value <= 120000)) return;
    pending.set(metric.name, { name: metric.name, value: Math.round(metric.value * 1000) / 1000 });
  };

  onTTFB(keep);
  onFCP(keep);
  onLCP(keep);
  onCLS(keep);
  onINP(keep);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flush();
  });
  window.addEventListener("pagehide", flush);
}
