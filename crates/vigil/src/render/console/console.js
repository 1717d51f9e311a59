// vigil's console: live updates. The pages work without this script; with it, news from
// the engine (server-sent events from /console/events) makes the page fetch itself again
// and swap its <main>, at most once a second, unless a form on it is being filled in.
(function () {
  "use strict";
  var status = document.getElementById("live");
  if (!window.EventSource || !status) { return; }
  var pending = false;
  var last = 0;
  function busy() {
    var active = document.activeElement;
    return active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName) && active.value !== "";
  }
  function refresh() {
    pending = false;
    if (busy()) { pending = true; setTimeout(refresh, 2000); return; }
    last = Date.now();
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (!text) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main) { main.replaceWith(fresh); }
      })
      .catch(function () {});
  }
  function schedule() {
    if (pending) { return; }
    pending = true;
    setTimeout(refresh, Math.max(0, 1000 - (Date.now() - last)));
  }
  var source = new EventSource("/console/events");
  source.addEventListener("open", function () { status.textContent = "live updates: on"; });
  source.addEventListener("error", function () { status.textContent = "live updates: reconnecting"; });
  source.addEventListener("entry", schedule);
})();
