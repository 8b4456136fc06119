// Live pages: an element with data-live is refetched every 1.5 s and replaced, while the
// page is visible and (on a run's page) the run is still going or waiting.
(function () {
  const live = document.querySelector("[data-live]");
  if (!live) return;
  const target = live.tagName === "TABLE" ? live.querySelector("#live") : live;
  async function refresh() {
    if (document.hidden) return;
    const status = target.querySelector("[data-status]");
    if (status && ["done", "failed", "over_budget"].includes(status.dataset.status)) return;
    if (target.contains(document.activeElement) && document.activeElement.form) return;
    const response = await fetch(live.dataset.live, { headers: { "Accept": "text/html" } });
    if (!response.ok) return;
    const html = await response.text();
    if (target.id === "live") target.outerHTML = html;
    else target.innerHTML = html;
  }
  setInterval(() => { refresh().catch(() => {}); }, 1500);
})();
