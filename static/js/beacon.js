/* Klevu banner analytics beacon: impressions and clicks, sent to the shop's own server.
 *
 * The page carries a signed token per banner; the beacon only says "this banner was seen"
 * (at least half of it in view for one second, once per page view) and "this item was
 * selected". The server builds the Klevu events from what it rendered, so nothing here can
 * forge products or prices. Clicks go with navigator.sendBeacon (string body: it survives the
 * navigation and never delays it). Without JavaScript, banner links already go through the
 * server's click route; with it, links are pointed straight at the product again.
 */
(function () {
  "use strict";
  var ENDPOINT = "/klevu/events";
  var SEEN_RATIO = 0.5, SEEN_MS = 1000;

  function send(body) {
    var text = JSON.stringify(body);
    if (navigator.sendBeacon && navigator.sendBeacon(ENDPOINT, text)) return;
    if (window.fetch) fetch(ENDPOINT, {method: "POST", body: text, keepalive: true, credentials: "same-origin"});
  }

  function watchImpression(banner, token) {
    if (!("IntersectionObserver" in window)) { send({type: "view", token: token}); return; }
    var timer = null;
    var observer = new IntersectionObserver(function (entries) {
      var entry = entries[entries.length - 1];
      var visible = entry.intersectionRatio >= SEEN_RATIO ||
        entry.intersectionRect.height >= window.innerHeight * SEEN_RATIO;
      if (visible && timer === null) {
        timer = setTimeout(function () {
          observer.disconnect();
          send({type: "view", token: token});
        }, SEEN_MS);
      } else if (!visible && timer !== null) {
        clearTimeout(timer); timer = null;
      }
    }, {threshold: [0, 0.25, SEEN_RATIO, 0.75, 1]});
    observer.observe(banner);
  }

  function itemId(target, banner) {
    var link = target.closest("a");
    if (!link || !banner.contains(link)) return null;
    var holder = link.hasAttribute("data-id") ? link : link.closest(".kuRECSItem,[data-id]");
    return holder && banner.contains(holder) ? holder.getAttribute("data-id") : null;
  }

  function watchClicks(banner, token) {
    function onSelect(event) {
      if (event.type === "auxclick" && event.button !== 1) return;
      var id = itemId(event.target, banner);
      if (id) send({type: "select", token: token, item: id});
    }
    banner.addEventListener("click", onSelect);      /* mouse, touch and Enter on a link */
    banner.addEventListener("auxclick", onSelect);   /* middle click: opened in a new tab */
  }

  function init() {
    var banners = document.querySelectorAll("[data-klevu-token]");
    for (var i = 0; i < banners.length; i++) {
      var banner = banners[i], token = banner.getAttribute("data-klevu-token");
      var links = banner.querySelectorAll("a[data-klevu-href]");
      for (var j = 0; j < links.length; j++) links[j].setAttribute("href", links[j].getAttribute("data-klevu-href"));
      watchImpression(banner, token);
      watchClicks(banner, token);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
