// The browser-stored API key ("Use the API" and the playground). The key lives in localStorage only;
// it leaves the browser solely as the Authorization header of requests to this gateway's /v1 API.
(function () {
  "use strict";
  var STORAGE = "pforte.apiKey";
  var API = "/v1";
  var listeners = [];

  function get() {
    try { return window.localStorage.getItem(STORAGE) || ""; } catch (e) { return ""; }
  }
  function notify() {
    var key = get();
    listeners.forEach(function (fn) { fn(key); });
  }
  function set(key) { window.localStorage.setItem(STORAGE, key); notify(); }
  function clear() { window.localStorage.removeItem(STORAGE); notify(); }
  function onChange(fn) { listeners.push(fn); fn(get()); }
  // Show what the admin pages show of a key: the prefix and the first random characters.
  function mask(key) {
    if (!key) return "";
    var shown = key.length > 12 ? Math.max(4, key.length - 30) : 4;
    return key.slice(0, shown) + "\u2026";
  }
  // Another tab stored or cleared the key.
  window.addEventListener("storage", function (event) { if (event.key === STORAGE) notify(); });

  // An API error as {status, code, type, message}, from a failed fetch response.
  function readError(response) {
    return response.text().then(function (text) {
      var error = { status: response.status, code: null, type: null, message: text || response.statusText };
      try {
        var body = JSON.parse(text);
        var e = body && body.error;
        if (e && typeof e === "object") {
          error.code = e.code || null; error.type = e.type || null; error.message = e.message || error.message;
        }
      } catch (ignored) { /* not JSON: keep the text */ }
      return error;
    });
  }
  function describeError(error) {
    var parts = [];
    if (error.status) parts.push("HTTP " + error.status);
    if (error.code) parts.push(error.code);
    return (parts.length ? parts.join(" \u00b7 ") + ": " : "") + error.message;
  }
  function authHeaders(key) {
    return { "Authorization": "Bearer " + key, "Content-Type": "application/json" };
  }

  // The ids of the built-in demo models (the select's data-demo-models), which the lists mark "demo".
  function demoModels(select) {
    try { return JSON.parse(select.getAttribute("data-demo-models") || "[]"); } catch (e) { return []; }
  }

  // Fill a <select> with the models the stored key may use (GET /v1/models). Resolves to the list.
  function loadModels(select, status) {
    var key = get();
    if (!key || !select) return Promise.resolve(null);
    return fetch(API + "/models", { headers: authHeaders(key), cache: "no-store" }).then(function (response) {
      if (!response.ok) return readError(response).then(function (error) { throw error; });
      return response.json();
    }).then(function (body) {
      var ids = (body.data || []).map(function (m) { return m.id; });
      var demo = demoModels(select);
      var previous = select.value;
      select.textContent = "";
      ids.forEach(function (id) {
        var option = document.createElement("option");
        option.value = id;
        option.textContent = demo.indexOf(id) === -1 ? id : id + " (" + select.getAttribute("data-text-demo") + ")";
        select.appendChild(option);
      });
      if (!ids.length) {
        var none = document.createElement("option");
        none.value = select.getAttribute("data-placeholder") || ""; none.textContent = none.value;
        select.appendChild(none);
      }
      if (ids.indexOf(previous) !== -1) select.value = previous;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      if (status) status.textContent = (status.getAttribute("data-text-models") || "Models for this key: {n}")
        .replace("{n}", String(ids.length));
      return ids;
    }).catch(function (error) {
      if (status) {
        status.textContent = (status.getAttribute("data-text-refused") || "The gateway refused the stored key:") +
          " " + describeError(error.status ? error : { message: String(error) });
      }
      return null;
    });
  }

  window.PforteKey = {
    get: get, set: set, clear: clear, mask: mask, onChange: onChange, api: API,
    readError: readError, describeError: describeError, authHeaders: authHeaders, loadModels: loadModels
  };

  // --- the key panel -------------------------------------------------------------------------------
  function wireKeyStore(panel) {
    var status = panel.querySelector("[data-key-status]");
    var form = panel.querySelector("[data-key-form]");
    var input = panel.querySelector("[data-key-input]");
    var clearButton = panel.querySelector("[data-key-clear]");
    var errorBox = panel.querySelector("[data-key-error]");

    function showError(text) {
      errorBox.textContent = text || "";
      errorBox.hidden = !text;
      if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var key = input.value.trim();
      if (!key) { showError(errorBox.getAttribute("data-text-empty")); input.focus(); return; }
      if (/\s/.test(key)) { showError(errorBox.getAttribute("data-text-spaces")); input.focus(); return; }
      showError("");
      set(key);
      input.value = "";
    });
    clearButton.addEventListener("click", function () {
      clear();
      showError("");
      input.focus();
    });
    onChange(function (key) {
      status.textContent = "";
      if (key) {
        status.appendChild(document.createTextNode(status.getAttribute("data-text-stored") + " "));
        var code = document.createElement("code");
        code.setAttribute("data-key-masked", "");
        code.textContent = mask(key);
        status.appendChild(code);
      } else {
        status.textContent = status.getAttribute("data-text-none");
      }
      clearButton.disabled = !key;
    });
  }

  // --- the examples ----------------------------------------------------------------------------------
  function wireExamples(page) {
    var select = document.querySelector("[data-model-select]");
    var reveal = document.querySelector("[data-reveal-key]");
    var modelsStatus = document.querySelector("[data-key-models-status]");
    var examples = document.querySelectorAll("[data-example]");

    function render() {
      var key = get();
      var model = select ? select.value : "";
      var shownKey = key ? (reveal && reveal.checked ? key : mask(key)) : "YOUR_API_KEY";
      examples.forEach(function (code) {
        code.querySelectorAll('[data-fill="key"]').forEach(function (span) { span.textContent = shownKey; });
        code.querySelectorAll('[data-fill="model"]').forEach(function (span) { span.textContent = model; });
        // The hidden copy source holds the same text with the whole key.
        var copy = document.querySelector('[data-example-copy="' + code.id + '"]');
        if (!copy) return;
        var text = "";
        code.childNodes.forEach(function (node) {
          var fill = node.nodeType === 1 ? node.getAttribute("data-fill") : null;
          text += fill === "key" ? (key || "YOUR_API_KEY") : node.textContent;
        });
        copy.textContent = text;
      });
    }
    if (select) select.addEventListener("change", render);
    if (reveal) reveal.addEventListener("change", render);
    onChange(function (key) {
      render();
      if (key) loadModels(select, modelsStatus);
      else if (modelsStatus) modelsStatus.textContent = "";
    });
    page.setAttribute("data-ready", "true");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-key-store]").forEach(wireKeyStore);
    var page = document.querySelector("[data-api-page]");
    if (page) wireExamples(page);
  });
})();
