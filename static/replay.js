// Diffusion Theater replay: play a trace (docs/trace-format.md) opened from disk in the same player as a live run.
// Each message's HTML is swapped in order with htmx exactly as hx-ws swaps a live message (same target, swap
// style and ` swapEmpty:false`), then the same `htmx:ws:after:message:incoming` event tells static/player.js,
// which buffers, plays and scrubs the frames. Nothing is fetched and nothing is computed on the server.
(() => {
  "use strict";
  const FORMAT = "diffusion-theater-trace";
  const VERSIONS = [1];
  // The demos a trace may come from, kind -> title: the server's registry (app/demos/registry.py).
  const KINDS = JSON.parse(document.getElementById("theater").dataset.demos || "{}");
  const $ = (id) => document.getElementById(id);
  let loading = 0; // the newest load; an older one still swapping stops when a new file is opened

  class TraceError extends Error {}

  function validate(text, fileName) {
    let trace;
    try {
      trace = JSON.parse(text);
    } catch (e) {
      throw new TraceError(`${fileName} is not a trace: it is not JSON (${e.message}).`);
    }
    if (!trace || typeof trace !== "object" || trace.format !== FORMAT) {
      throw new TraceError(`${fileName} is not a Diffusion Theater trace: it has no "format": "${FORMAT}".`);
    }
    if (!VERSIONS.includes(trace.version)) {
      throw new TraceError(`${fileName} is a trace of version ${JSON.stringify(trace.version)}; this page plays version ${VERSIONS.join(", ")}.`);
    }
    if (!Object.hasOwn(KINDS, trace.kind)) {
      throw new TraceError(`${fileName} is a trace of an unknown demo ${JSON.stringify(trace.kind)}.`);
    }
    const messages = trace.messages;
    if (!Array.isArray(messages) || !messages.some((m) => m && m.type === "frame")) {
      throw new TraceError(`${fileName} has no frames to play.`);
    }
    messages.forEach((m, i) => {
      if (!m || typeof m !== "object" || typeof m.type !== "string" || typeof m.content !== "string") {
        throw new TraceError(`${fileName} is damaged: message ${i + 1} has no HTML content.`);
      }
    });
    return trace;
  }

  // A fresh run block, as a live page has before its first message: the player starts over with it.
  function resetRun(text, kind) {
    const run = $("run");
    const notice = document.createElement("p");
    notice.id = "notice";
    notice.className = "notice" + (kind ? " " + kind : "");
    if (kind === "error") notice.setAttribute("role", "alert");
    notice.textContent = text;
    const frames = document.createElement("div");
    frames.id = "frames";
    frames.className = "frames";
    const result = document.createElement("section");
    result.id = "result";
    result.className = "result";
    result.setAttribute("aria-label", "How the run went");
    run.replaceChildren(notice, frames, result);
    return run;
  }

  function fail(message) {
    $("trace-info").hidden = true;
    resetRun(message, "error");
    const status = $("status");
    if (status) status.textContent = "No trace loaded.";
  }

  function showInfo(trace) {
    $("trace-kind").textContent = KINDS[trace.kind];
    $("trace-request").textContent = JSON.stringify(trace.request || {});
    const models = $("trace-models");
    models.replaceChildren();
    for (const model of Array.isArray(trace.models) ? trace.models : []) {
      const item = document.createElement("li");
      const name = document.createElement("b");
      name.textContent = String(model && model.name);
      item.append(name, " ");
      const sha = document.createElement("code");
      sha.className = "sha";
      sha.textContent = model && model.sha256 ? "sha256 " + model.sha256 : "no checkpoint (untrained or a stand-in)";
      item.append(sha);
      models.append(item);
    }
    $("trace-created").textContent = String(trace.created || "unknown");
    const live = $("trace-live");
    live.href = "/" + trace.kind + (typeof trace.query === "string" && trace.query ? "?" + trace.query : "");
    $("trace-info").hidden = false;
    const theater = $("theater");
    theater.className = "theater replay " + trace.kind;
    theater.dataset.kind = trace.kind;
  }

  async function play(trace, load) {
    const run = resetRun("Replaying the trace\u2026", "");
    for (const message of trace.messages) {
      if (load !== loading) return; // another file was opened meanwhile
      let swap = message.swap || "beforeend";
      if (!/(?:^|\s)swapEmpty(?::(?:true|false))?(?=\s|$)/.test(swap)) swap += " swapEmpty:false";
      await htmx.swap({
        sourceElement: run,
        target: message.target || "#frames",
        swap,
        text: message.content,
        transition: false,
      });
      run.dispatchEvent(new CustomEvent("htmx:ws:after:message:incoming", {
        bubbles: true,
        detail: { connection: null, message: { data: JSON.stringify(message) } },
      }));
    }
    const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    const button = $("play");
    if (!reduce && button && button.textContent.trim() === "Play") button.click(); // play it from the start
  }

  function open(file) {
    if (!file) return;
    const load = ++loading;
    const reader = new FileReader();
    reader.onerror = () => { if (load === loading) fail(`Could not read ${file.name}.`); };
    reader.onload = () => {
      if (load !== loading) return;
      let trace;
      try {
        trace = validate(String(reader.result), file.name);
      } catch (error) {
        if (error instanceof TraceError) { fail(error.message); return; }
        throw error;
      }
      showInfo(trace);
      play(trace, load).catch((error) => { if (load === loading) fail(`Could not replay ${file.name}: ${error.message}`); });
    };
    reader.readAsText(file);
  }

  function init() {
    const input = $("trace-file");
    const drop = $("drop");
    if (!input || !drop) return;
    const status = $("status");
    if (status) status.textContent = "Ready: open a trace.";
    input.addEventListener("change", () => open(input.files && input.files[0]));
    for (const name of ["dragenter", "dragover"]) {
      drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
    }
    for (const name of ["dragleave", "dragend"]) drop.addEventListener(name, () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      const files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) open(files[0]);
    });
  }

  // Loaded with `defer` from the page body, before base.html's htmx and player.js: wait for both.
  function ready() {
    if (window.htmx) init();
    else setTimeout(ready, 10);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
