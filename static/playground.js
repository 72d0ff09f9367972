// The playground: streams /v1/chat/completions with the browser-stored key (fetch + ReadableStream,
// server-sent events parsed here). Shows time to first token, token counts and API errors.
(function () {
  "use strict";

  // Parse one SSE event block into its data (joined data: lines), or null for comments/empty events.
  function eventData(block) {
    var lines = block.split(/\r?\n/);
    var data = [];
    lines.forEach(function (line) {
      if (line.indexOf("data:") === 0) data.push(line.slice(line.charAt(5) === " " ? 6 : 5));
    });
    return data.length ? data.join("\n") : null;
  }

  // POST a streaming chat request; calls onDelta(text), onUsage(usage); resolves at [DONE] or end of body.
  // Rejects with {status, code, type, message} for API errors (before or during the stream).
  function streamChat(key, body, signal, onDelta, onUsage) {
    return fetch(window.PforteKey.api + "/chat/completions", {
      method: "POST", headers: window.PforteKey.authHeaders(key), body: JSON.stringify(body), signal: signal
    }).then(function (response) {
      if (!response.ok) return window.PforteKey.readError(response).then(function (error) { throw error; });
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var finished = false;

      function handle(block) {
        var data = eventData(block);
        if (data === null) return;
        if (data.trim() === "[DONE]") { finished = true; return; }
        var chunk;
        try { chunk = JSON.parse(data); } catch (e) { return; }
        if (chunk.error) {
          throw { status: null, code: chunk.error.code || null, type: chunk.error.type || null,
                  message: chunk.error.message || "An error occurred during streaming." };
        }
        (chunk.choices || []).forEach(function (choice) {
          var delta = choice.delta || {};
          if (typeof delta.content === "string" && delta.content) onDelta(delta.content);
        });
        if (chunk.usage) onUsage(chunk.usage);
      }

      function pump() {
        return reader.read().then(function (result) {
          if (result.done) {
            buffer += decoder.decode();
            if (buffer.trim()) handle(buffer);
            return;
          }
          buffer += decoder.decode(result.value, { stream: true });
          var blocks = buffer.split(/\r?\n\r?\n/);
          buffer = blocks.pop();
          blocks.forEach(handle);
          if (finished) { reader.cancel(); return; }
          return pump();
        });
      }
      return pump();
    });
  }

  function ms(value) { return Math.round(value) + " ms"; }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-playground]");
    if (!root || !window.PforteKey) return;
    var text = function (name) { return root.getAttribute("data-text-" + name) || ""; };
    var form = document.getElementById("playground-form");
    var model = document.getElementById("pg-model");
    var system = document.getElementById("pg-system");
    var temperature = document.getElementById("pg-temperature");
    var message = document.getElementById("pg-message");
    var send = document.getElementById("pg-send");
    var stop = document.getElementById("pg-stop");
    var reset = document.getElementById("pg-reset");
    var conversation = document.getElementById("pg-conversation");
    var errorBox = document.getElementById("pg-error");
    var status = document.getElementById("pg-status");
    var modelsStatus = document.querySelector("[data-key-models-status]");
    var prefixWarning = document.querySelector("[data-prefix-warning]");
    var history = [];
    var controller = null;

    window.PforteKey.onChange(function (key) {
      if (key) window.PforteKey.loadModels(model, modelsStatus);
      else if (modelsStatus) modelsStatus.textContent = "";
      if (prefixWarning) {
        var expected = prefixWarning.getAttribute("data-expected-prefix");
        prefixWarning.hidden = !key || key.indexOf(expected) === 0;
      }
    });

    function setStat(id, value) { document.getElementById(id).textContent = value; }
    function showError(error) {
      errorBox.textContent = "";
      if (!error) { errorBox.hidden = true; return; }
      var head = [];
      if (error.status) head.push("HTTP " + error.status);
      if (error.code) head.push(error.code);
      if (head.length) {
        var code = document.createElement("code");
        code.textContent = head.join(" \u00b7 ");
        errorBox.appendChild(code);
        errorBox.appendChild(document.createTextNode(": "));
      }
      errorBox.appendChild(document.createTextNode(error.message || ""));
      errorBox.hidden = false;
    }
    function addMessage(role, content) {
      var item = document.createElement("li");
      item.className = role === "user" ? "from-user" : "from-assistant";
      var speaker = document.createElement("span");
      speaker.className = "speaker";
      speaker.textContent = role === "user" ? text("you") : text("assistant");
      var body = document.createElement("div");
      body.className = "text";
      var node = document.createTextNode(content);
      body.appendChild(node);
      item.appendChild(speaker);
      item.appendChild(body);
      conversation.appendChild(item);
      return { item: item, body: body, node: node };
    }
    function busy(on) {
      send.disabled = on;
      stop.disabled = !on;
      root.setAttribute("aria-busy", on ? "true" : "false");
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var key = window.PforteKey.get();
      if (!key) { showError({ message: text("no-key") }); document.getElementById("api-key-input").focus(); return; }
      var content = message.value.trim();
      if (!content) { showError({ message: text("no-message") }); message.focus(); return; }
      showError(null);
      var messages = [];
      if (system.value.trim()) messages.push({ role: "system", content: system.value.trim() });
      history.push({ role: "user", content: content });
      messages = messages.concat(history);
      var mine = addMessage("user", content);
      message.value = "";
      var reply = addMessage("assistant", "");
      reply.item.setAttribute("data-streaming", "true");
      var body = { model: model.value, messages: messages, stream: true, stream_options: { include_usage: true } };
      var temp = parseFloat(temperature.value);
      if (!isNaN(temp)) body.temperature = Math.min(2, Math.max(0, temp));
      ["pg-ttft", "pg-total", "pg-tokens-in", "pg-tokens-out"].forEach(function (id) { setStat(id, "\u2013"); });
      status.textContent = text("waiting");
      controller = new AbortController();
      busy(true);
      var started = performance.now();
      var first = null;
      var answer = "";
      streamChat(key, body, controller.signal, function (piece) {
        if (first === null) { first = performance.now(); setStat("pg-ttft", ms(first - started)); status.textContent = ""; }
        answer += piece;
        reply.node.appendData(piece);
      }, function (usage) {
        setStat("pg-tokens-in", String(usage.prompt_tokens));
        setStat("pg-tokens-out", String(usage.completion_tokens));
      }).then(function () {
        status.textContent = text("done");
      }).catch(function (error) {
        if (error && error.name === "AbortError") { status.textContent = text("stopped"); return; }
        status.textContent = "";
        showError(error && error.message !== undefined && !(error instanceof Error) ? error
                  : { message: text("network") });
        if (!answer) {  // nothing came back: take the question back into the box, lose nothing
          history.pop();
          conversation.removeChild(reply.item);
          conversation.removeChild(mine.item);
          if (!message.value) message.value = content;
        }
      }).then(function () {
        setStat("pg-total", ms(performance.now() - started));
        if (answer) history.push({ role: "assistant", content: answer });
        reply.item.removeAttribute("data-streaming");
        controller = null;
        busy(false);
      });
    });
    message.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
    });
    stop.addEventListener("click", function () { if (controller) controller.abort(); });
    reset.addEventListener("click", function () {
      if (controller) controller.abort();
      history = [];
      conversation.textContent = "";
      showError(null);
      status.textContent = "";
      message.focus();
    });
    root.setAttribute("data-ready", "true");
  });
})();
