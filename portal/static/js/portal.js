// Small hooks for htmx dialogs, menus and errors; no inline script anywhere (CSP).
(function () {
  "use strict";
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), " +
    "select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";

  function focusables(container) {
    return Array.prototype.filter.call(container.querySelectorAll(FOCUSABLE), function (element) {
      return element.getClientRects().length > 0;
    });
  }

  // Where the focus goes back to when a dialog closes: the button that opened it, or, when an
  // answer replaced that button (the member row after "Select this account"), the first control
  // of the element that now carries the same id, else that element itself.
  function returnFocus(opener, anchorId) {
    if (opener && opener.isConnected) { opener.focus(); return; }
    var anchor = anchorId && document.getElementById(anchorId);
    if (!anchor) { return; }
    var target = focusables(anchor)[0];
    if (!target) {
      anchor.setAttribute("tabindex", "-1");
      target = anchor;
    }
    target.focus();
  }

  // Show a <dialog data-onload-showmodal> as soon as htmx has inserted it. The modal dialog
  // takes the focus (its first control); closing it (Escape, a close button, the server's
  // "dialog:close") removes it and returns the focus to where it came from.
  document.addEventListener("htmx:afterSettle", function (event) {
    event.detail.elt.querySelectorAll("dialog[data-onload-showmodal]").forEach(function (dialog) {
      if (dialog.open) { return; }
      var opener = document.activeElement !== document.body ? document.activeElement : null;
      var anchor = opener && opener.closest("[id]");
      var anchorId = anchor ? anchor.id : null;
      dialog.showModal();
      if (!dialog.contains(document.activeElement)) {
        (focusables(dialog)[0] || dialog).focus();
      }
      dialog.addEventListener("close", function () {
        dialog.remove();
        // After this task: an answer that closed the dialog swaps the new row in first.
        setTimeout(function () { returnFocus(opener, anchorId); }, 0);
      }, { once: true });
    });
  });
  // Keep Tab and Shift+Tab inside an open modal dialog, and let Escape close it even from a
  // search field (which would otherwise only clear itself).
  document.addEventListener("keydown", function (event) {
    var dialog = event.target.closest && event.target.closest("dialog[open]");
    if (!dialog) { return; }
    if (event.key === "Escape") {
      event.preventDefault();
      dialog.close();
      return;
    }
    if (event.key !== "Tab") { return; }
    var items = focusables(dialog);
    if (!items.length) { event.preventDefault(); return; }
    var first = items[0];
    var last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || document.activeElement === dialog)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });
  // A dialog whose list an answer replaced (a search, a refused choice) keeps the focus inside.
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.detail.target && event.detail.target.closest && event.detail.target.closest("dialog[open]");
    if (dialog && !dialog.contains(document.activeElement)) {
      (focusables(dialog)[0] || dialog).focus();
    }
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
  // Say something in the page's polite live region (#toast) for a few seconds.
  var toastTimer = null;
  window.portalAnnounce = function (message) {
    var toast = document.getElementById("toast");
    if (!toast) { return; }
    toast.textContent = message;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.textContent = ""; }, 6000);
  };
  // 4xx/5xx answers to htmx requests are not swapped; tell the user instead of doing nothing.
  document.body.addEventListener("htmx:responseError", function (event) {
    var doc = new DOMParser().parseFromString(event.detail.xhr.responseText || "", "text/html");
    var message = doc.querySelector("#error p");
    window.portalAnnounce(message ? message.textContent : event.detail.xhr.status + " " + event.detail.xhr.statusText);
  });
})();
