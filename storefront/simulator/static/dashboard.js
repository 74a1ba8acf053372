/* The simulator dashboard: the live view of what Klevu received, and the demo console.
 *
 * Live view: the page fetches itself every 2 s and swaps in the fresh #live section (a failed
 * fetch just waits for the next tick). Console: each button or form posts a fault plan to
 * /_sim/faults (or /_sim/reset) with a same-origin fetch, then refreshes the view at once.
 * No inline script or style: the page works under a strict Content-Security-Policy.
 */
(function () {
  "use strict";
  var REFRESH_MS = 2000;

  function refresh() {
    return fetch(location.href, {cache: "no-store", credentials: "same-origin"})
      .then(function (response) { return response.text(); })
      .then(function (html) {
        // An inert <template>, not DOMParser: the fresh page's tags carry another request's
        // CSP nonce, and Chromium reports it from a parsed document.
        var holder = document.createElement("template");
        holder.innerHTML = html;
        var fresh = holder.content.getElementById("live");
        if (fresh) document.getElementById("live").replaceWith(fresh);
      })
      .catch(function () {});
  }

  function post(url, body, done) {
    var status = document.querySelector("[data-console-status]");
    return fetch(url, {method: "POST", credentials: "same-origin",
                       headers: {"Content-Type": "application/json"},
                       body: JSON.stringify(body || {})})
      .then(function (response) {
        return response.json().then(function (answer) {
          if (!response.ok) throw new Error(answer.error || ("HTTP " + response.status));
          status.textContent = done;
        });
      })
      .catch(function (error) { status.textContent = "Not applied: " + error.message; })
      .then(refresh);
  }

  function plan(form) {
    function whole(name) { return parseInt(form.elements[name].value, 10) || 0; }
    return {latency_ms: whole("latency_ms"), fail_every: whole("fail_every"),
            status: whole("status") || 503, down: form.elements.down.checked};
  }

  function init() {
    var console_ = document.querySelector("[data-testid=demo-console]");
    setInterval(refresh, REFRESH_MS);
    if (!console_) return;
    var faultsUrl = console_.getAttribute("data-faults-url");
    var forms = console_.querySelectorAll("form[data-service]");

    function setForm(service, values) {
      var form = console_.querySelector('form[data-service="' + service + '"]');
      form.elements.latency_ms.value = values.latency_ms;
      form.elements.fail_every.value = values.fail_every;
      form.elements.status.value = values.status;
      form.elements.down.checked = values.down;
    }
    var calm = {latency_ms: 0, fail_every: 0, status: 503, down: false};

    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var body = {};
        body[form.getAttribute("data-service")] = plan(form);
        post(faultsUrl, body, "Applied to " + form.getAttribute("data-service") + ".");
      });
    });

    console_.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || button.type === "submit") return;
      var body = {}, service;
      if ((service = button.getAttribute("data-down"))) {
        body[service] = {down: true, status: 503};
        setForm(service, {latency_ms: 0, fail_every: 0, status: 503, down: true});
        post(faultsUrl, body, service + " is down: every call answers HTTP 503.");
      } else if ((service = button.getAttribute("data-clear"))) {
        body[service] = null;
        setForm(service, calm);
        post(faultsUrl, body, service + " answers normally again.");
      } else if (button.hasAttribute("data-restore")) {
        Array.prototype.forEach.call(forms, function (form) {
          body[form.getAttribute("data-service")] = null;
          setForm(form.getAttribute("data-service"), calm);
        });
        post(faultsUrl, body, "Every service answers normally again.");
      } else if (button.hasAttribute("data-reset")) {
        Array.prototype.forEach.call(forms, function (form) {
          setForm(form.getAttribute("data-service"), calm);
        });
        // A reset ends the scenario pack too: its link is no longer the active one.
        Array.prototype.forEach.call(console_.querySelectorAll(".scenarios .is-active"),
                                     function (link) { link.classList.remove("is-active"); });
        post(console_.getAttribute("data-reset-url"), {}, "Reset: no faults, nothing received.");
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
