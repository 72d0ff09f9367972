// Small progressive enhancements; no inline scripts (CSP forbids them).
(function () {
  "use strict";
  // Copy buttons: <button data-copy-target="#id">
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var target = document.querySelector(button.getAttribute("data-copy-target"));
    if (!target) return;
    var text = target.value !== undefined ? target.value : target.textContent;
    var done = function () {
      button.setAttribute("data-copied", "true");
      var status = document.querySelector(button.getAttribute("data-copy-status") || "#copy-status");
      if (status) status.textContent = button.getAttribute("data-copied-text") || "Copied";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(target, text); done(); });
    } else { fallbackCopy(target, text); done(); }
  });
  // Plain http (no Clipboard API): select the text, in a temporary textarea for non-form targets.
  function fallbackCopy(target, text) {
    var temporary = null;
    var focused = document.activeElement;
    if (!target.select) {
      temporary = document.createElement("textarea");
      temporary.className = "visually-hidden";
      temporary.value = text;
      document.body.appendChild(temporary);
      target = temporary;
    }
    target.select();
    try { document.execCommand("copy"); } catch (e) { /* ignore */ }
    if (temporary) { temporary.remove(); if (focused && focused.focus) focused.focus(); }
  }
  // Dialogs: <button data-open-dialog="#id">, <button data-close-dialog>
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.querySelector(opener.getAttribute("data-open-dialog"));
      if (dialog && dialog.showModal) { dialog._opener = opener; dialog.showModal(); }
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var d = closer.closest("dialog");
      if (d) d.close();
    }
  });
  document.addEventListener("close", function (event) {
    var d = event.target;
    if (d.tagName === "DIALOG" && d._opener && document.body.contains(d._opener)) d._opener.focus();
  }, true);
  // Messages flashed on page load describe the page before the change that htmx just swapped in:
  // remove them, so that only the swapped-in message is shown (and announced).
  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll("main > .flashes").forEach(function (f) { f.remove(); });
  });
  // Open a dialog that htmx just swapped in (data-auto-open).
  document.addEventListener("htmx:afterSettle", function (event) {
    var d = event.target.querySelector && event.target.querySelector("dialog[data-auto-open]");
    if (d && !d.open && d.showModal) d.showModal();
  });
  // Remember the browser time zone for server-side rendering of times.
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && document.cookie.indexOf("pforte_tz=") === -1) {
      document.cookie = "pforte_tz=" + encodeURIComponent(tz) + "; path=/; SameSite=Lax; max-age=31536000";
    }
  } catch (e) { /* ignore */ }
})();
