// Copy buttons of the Chatwork setup page: <button data-copy="#element-id">. No inline script (CSP).
(function () {
  "use strict";
  if (window.chatworkCopyReady) { return; }
  window.chatworkCopyReady = true;
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent.trim();
    // The button keeps its name (the ✓ is drawn by CSS and hidden from screen readers); the
    // confirmation is said in the page's live region, in the page's language.
    var done = function () {
      button.setAttribute("data-copied", "true");
      setTimeout(function () { button.removeAttribute("data-copied"); }, 1500);
      var toast = document.getElementById("toast");
      if (window.portalAnnounce && toast) { window.portalAnnounce(toast.getAttribute("data-copied")); }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the value stays selectable */ }
      area.remove();
    }
  });
})();
