// Three small hooks for htmx dialogs and errors; no inline script anywhere (CSP).
(function () {
  "use strict";
  // Show a <dialog data-onload-showmodal> as soon as htmx has inserted it.
  document.addEventListener("htmx:afterSettle", function (event) {
    event.detail.elt.querySelectorAll("dialog[data-onload-showmodal]").forEach(function (dialog) {
      if (!dialog.open) { dialog.showModal(); }
      dialog.addEventListener("close", function () { dialog.remove(); }, { once: true });
    });
  });
  // A server answer with HX-Trigger "dialog:close" closes the open dialog.
  document.body.addEventListener("dialog:close", function () {
    document.querySelectorAll("dialog[open]").forEach(function (dialog) { dialog.close(); });
  });
  // Closing buttons inside dialogs.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-close-dialog]");
    if (button) { button.closest("dialog").close(); }
  });
  // Header menus are <details> and work without this; it only lets one stay open, closes
  // them on a click elsewhere, and on Escape puts the focus back on the menu's button.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.open = false; }
    });
  });
  document.addEventListener("keydown", function (event) {
    var menu = event.key === "Escape" && event.target.closest && event.target.closest("details.menu[open]");
    if (menu) { menu.open = false; menu.querySelector("summary").focus(); }
  });
  // 4xx/5xx answers to htmx requests are not swapped; tell the user instead of doing nothing.
  document.body.addEventListener("htmx:responseError", function (event) {
    var toast = document.getElementById("toast");
    var doc = new DOMParser().parseFromString(event.detail.xhr.responseText || "", "text/html");
    var message = doc.querySelector("#error p");
    toast.textContent = message ? message.textContent : event.detail.xhr.status + " " + event.detail.xhr.statusText;
    toast.hidden = false;
    setTimeout(function () { toast.hidden = true; }, 6000);
  });
})();
