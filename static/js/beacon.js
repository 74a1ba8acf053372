/* Klevu banner analytics beacon: impressions and clicks, sent to the shop's own server.
 *
 * The page carries a signed token per banner; the beacon only says "this banner was shown"
 * and "this item was selected". The server builds the Klevu events from what it rendered, so
 * nothing here can forge products or prices.
 *
 * When an impression counts is the shop's KLEVU_VIEW_RULE, on this script's data-view-rule:
 *   rendered (default)  as JSv2 does: every banner in the page, as soon as the page's
 *                       markup has loaded (DOMContentLoaded), scrolled to or not;
 *   visible             at least half of the banner in view for one second.
 * Either way once per banner per page view (the server also deduplicates).
 *
 * Clicks count as in JSv2: only on a .kuRECSItemClick element, the product id taken from its
 * data-id, else (none or empty) from the closest .kuRECSItem's or .kcResultItem's; other links
 * in a banner are plain
 * links. In a static-content banner, a link to its content counts, and both the view and the
 * click name the images the visitor's screen shows (a banner often holds a desktop and a phone
 * image and lets the stylesheet pick): Klevu reports which one was seen. A chosen product is put at
 * the front of the klevu_recent_clicks cookie (Klevu's "recently viewed",
 * storefront/klevu/analytics/recently_viewed.py has the format). Clicks go with navigator.sendBeacon
 * (string body: it survives the navigation and never delays it). Without JavaScript, banner
 * links already go through the server's click route; with it, the links the server routed
 * point straight at the target again (http and https targets only).
 */
(function () {
  "use strict";
  var ENDPOINT = "/klevu/events", CLICK_ROUTE = "/klevu/click";
  var SEEN_RATIO = 0.5, SEEN_MS = 1000;
  var RECENT_COOKIE = "klevu_recent_clicks", RECENT_MAX = 20, RECENT_DAYS = 365;
  var ID_RE = /^[^\x00-\x1f\x7f-\x9f]{1,64}$/, PART_RE = /^[A-Za-z0-9_-]{2,344}$/;
  var script = document.currentScript;
  var VIEW_RULE = (script && script.getAttribute("data-view-rule")) || "rendered";
  /* Like JSv2, "recently viewed" is kept only with the visitor's consent (the shop decides). */
  var REMEMBER = script && script.getAttribute("data-remember-clicks") === "yes";

  function send(body) {
    var text = JSON.stringify(body);
    if (navigator.sendBeacon && navigator.sendBeacon(ENDPOINT, text)) return;
    if (window.fetch) fetch(ENDPOINT, {method: "POST", body: text, keepalive: true, credentials: "same-origin"});
  }

  function reportWhenVisible(banner, report) {
    if (!("IntersectionObserver" in window)) { report(); return; }
    var timer = null;
    var observer = new IntersectionObserver(function (entries) {
      var entry = entries[entries.length - 1];
      var visible = entry.intersectionRatio >= SEEN_RATIO ||
        entry.intersectionRect.height >= window.innerHeight * SEEN_RATIO;
      if (visible && timer === null) {
        timer = setTimeout(function () { observer.disconnect(); report(); }, SEEN_MS);
      } else if (!visible && timer !== null) {
        clearTimeout(timer); timer = null;
      }
    }, {threshold: [0, 0.25, SEEN_RATIO, 0.75, 1]});
    observer.observe(banner);
  }

  /* The images under root that take up room on this screen (not display:none at its width). */
  function shownImages(root) {
    var shown = [], images = root.querySelectorAll("img[src]");
    for (var i = 0; i < images.length && shown.length < 20; i++) {
      if (images[i].getClientRects().length) shown.push(images[i].getAttribute("src"));
    }
    return shown;
  }

  function watchImpression(banner, token) {
    var isStatic = banner.hasAttribute("data-klevu-static");
    var report = function () {
      send(isStatic ? {type: "view", token: token, shown: shownImages(banner)} : {type: "view", token: token});
    };
    if (VIEW_RULE === "visible") reportWhenVisible(banner, report);
    else report();
  }

  /* The id as the cookie holds it: the unpadded base64url of its UTF-8 (recently_viewed.py). */
  function encodeId(id) {
    var bytes = new TextEncoder().encode(id), text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function rememberClick(id) {
    if (!REMEMBER || !ID_RE.test(id)) return;
    var match = document.cookie.match(new RegExp("(?:^|;\\s*)" + RECENT_COOKIE + "=([^;]*)"));
    var ids = match && match[1] ? match[1].split(".") : [];
    if (!ids.every(function (i) { return PART_RE.test(i); })) ids = [];
    var encoded = encodeId(id);
    ids = [encoded].concat(ids.filter(function (i) { return i !== encoded; })).slice(0, RECENT_MAX);
    document.cookie = RECENT_COOKIE + "=" + ids.join(".") + "; path=/; max-age=" +
      RECENT_DAYS * 86400 + "; samesite=lax" + (location.protocol === "https:" ? "; secure" : "");
  }

  /* JSv2: the clicked .kuRECSItemClick's data-id, or, when it has none (or an empty one), its
     closest .kuRECSItem's or .kcResultItem's. */
  function productId(target, banner) {
    var clickable = target.closest(".kuRECSItemClick");
    if (!clickable || !banner.contains(clickable)) return null;
    var id = clickable.getAttribute("data-id");
    if (!id) {
      var holder = clickable.closest(".kuRECSItem,.kcResultItem");
      id = holder && banner.contains(holder) ? holder.getAttribute("data-id") : null;
    }
    return id || null;
  }

  function staticLink(target, banner) {
    var link = target.closest("a[data-klevu-item]");
    return link && banner.contains(link) ? link : null;
  }

  function watchClicks(banner, token) {
    var isStatic = banner.hasAttribute("data-klevu-static");
    function onSelect(event) {
      if (event.type === "auxclick" && event.button !== 1) return;
      if (isStatic) {
        var link = staticLink(event.target, banner);
        if (link) send({type: "select", token: token, item: link.getAttribute("data-klevu-item"), shown: shownImages(link)});
        return;
      }
      var id = productId(event.target, banner);
      if (!id) return;
      rememberClick(id);
      send({type: "select", token: token, item: id});
    }
    banner.addEventListener("click", onSelect);      /* mouse, touch and Enter on a link */
    banner.addEventListener("auxclick", onSelect);   /* middle click: opened in a new tab */
  }

  /* Only a link the server routed through its click route gets its target back, and only an
   * http(s) one: the server writes data-klevu-href (the sanitizer drops a template's own). */
  function restoreLink(link) {
    try {
      var routed = new URL(link.getAttribute("href"), location.href);
      var target = new URL(link.getAttribute("data-klevu-href"), location.href);
    } catch (e) { return; }
    if (routed.origin !== location.origin || routed.pathname !== CLICK_ROUTE) return;
    if (target.protocol !== "http:" && target.protocol !== "https:") return;
    link.setAttribute("href", target.href);
  }

  function init() {
    var banners = document.querySelectorAll("[data-klevu-token]");
    for (var i = 0; i < banners.length; i++) {
      var banner = banners[i], token = banner.getAttribute("data-klevu-token");
      var links = banner.querySelectorAll("a[data-klevu-href]");
      for (var j = 0; j < links.length; j++) restoreLink(links[j]);
      watchImpression(banner, token);
      watchClicks(banner, token);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
