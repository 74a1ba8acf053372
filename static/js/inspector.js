/* The page inspector's step 4: this page view's analytics events, kept current while the
 * panel is open (a poll every second, stopped when the panel closes or the tab is hidden).
 * Builds DOM nodes with textContent only; no inline script or style, so a strict CSP holds.
 */
(function () {
  "use strict";
  var POLL_MS = 1000;
  var WORDS = {
    waiting: "not reported yet (the beacon reports the banner once it counts as viewed)",
    queued: "queued in the outbox",
    retrying: "pending retry",
    delivered: "delivered to Klevu",
    dead: "dead-lettered"
  };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function eventLine(event) {
    var li = el("li");
    li.setAttribute("data-testid", "inspector-event");
    li.setAttribute("data-event", event.event);
    li.setAttribute("data-state", event.state);
    li.setAttribute("data-banner", event.banner);
    li.appendChild(el("code", "", event.event));
    li.appendChild(document.createTextNode(" " + (event.item ? event.item + " in " : "") +
      "“" + event.title + "” "));
    var state = el("span", "inspector-state is-" + event.state, WORDS[event.state] || event.state);
    li.appendChild(state);
    var detail = event.state === "retrying" ? "attempt " + event.attempts + ": " + event.error :
      event.state === "dead" ? event.reason : "";
    if (detail) li.appendChild(el("span", "inspector-note", " " + detail));
    return li;
  }

  function render(target, data) {
    var fresh = document.createDocumentFragment();
    data.page_views.forEach(function (view) {
      fresh.appendChild(el("p", "inspector-page", view.current ? "This page view" :
        "Earlier: " + view.page_type.toLowerCase() + " page " + view.path));
      var list = el("ul", "inspector-events");
      list.setAttribute("data-testid", view.current ? "inspector-events" : "inspector-earlier-events");
      if (!view.events.length) list.appendChild(el("li", "", "No banner with products: no events."));
      view.events.forEach(function (event) { list.appendChild(eventLine(event)); });
      fresh.appendChild(list);
    });
    target.replaceChildren(fresh);
  }

  function init() {
    var panel = document.querySelector("details.inspector");
    if (!panel) return;
    var target = panel.querySelector("[data-inspector-events]");
    var url = panel.getAttribute("data-events-url");
    var timer = null;

    function poll() {
      timer = -1;   /* a poll in flight: no second chain */
      fetch(url, {credentials: "same-origin", cache: "no-store"})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data) render(target, data); })
        .catch(function () {})
        .then(schedule);
    }
    function schedule() {
      timer = panel.open && !document.hidden ? setTimeout(poll, POLL_MS) : null;
    }
    function wake() { if (timer === null && panel.open && !document.hidden) poll(); }

    panel.addEventListener("toggle", wake);
    document.addEventListener("visibilitychange", wake);
    wake();

    panel.addEventListener("click", function (event) {
      var button = event.target.closest("[data-copy]");
      if (!button || !navigator.clipboard) return;
      var text = button.parentNode.querySelector("pre").textContent;
      navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; },
        function () { button.textContent = "Copy failed"; });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
