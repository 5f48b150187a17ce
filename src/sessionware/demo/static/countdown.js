// The 429 page's "try again in ..." counts down to zero, then says it is time.
// Loaded from this site only (the page's CSP allows script-src 'self', nothing inline).
"use strict";
(function () {
  var el = document.querySelector("[data-countdown]");
  if (!el) return;
  var left = parseInt(el.getAttribute("data-countdown"), 10);
  if (!(left > 0)) return;
  var end = Date.now() + left * 1000;
  function plural(n, unit) { return n + " " + unit + (n === 1 ? "" : "s"); }
  function show() {
    var s = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    if (s === 0) {
      el.textContent = "a moment: now";
      el.closest("[data-testid=retry-after]").textContent = "You can try again now.";
      return;
    }
    var m = Math.floor(s / 60), r = s % 60;
    el.textContent = m ? plural(m, "minute") + (r ? " " + plural(r, "second") : "") : plural(r, "second");
    setTimeout(show, 1000 - ((end - Date.now()) % 1000 || 0) + 5);
  }
  show();
})();
