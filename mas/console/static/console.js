// Live pages: an element with data-live is refetched every 1.5 s and replaced while the
// page is visible (any run may be resumed, forked or answered from another process), but
// not while someone is filling in one of its forms.
(function () {
  const live = document.querySelector("[data-live]");
  if (!live) return;
  async function refresh() {
    // the threads table's body is replaced whole, so it is looked up each time
    const target = live.tagName === "TABLE" ? live.querySelector("#live") : live;
    if (document.hidden) return;
    if (target.contains(document.activeElement) && document.activeElement.form) return;
    const response = await fetch(live.dataset.live, { headers: { "Accept": "text/html" } });
    if (!response.ok) return;
    const html = await response.text();
    if (target.id === "live") target.outerHTML = html;
    else target.innerHTML = html;
  }
  setInterval(() => { refresh().catch(() => {}); }, 1500);
})();
