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
    var done = function () {
      button.setAttribute("data-copied", "true");
      var label = button.textContent;
      button.textContent = "✓";
      setTimeout(function () { button.textContent = label; }, 1500);
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
