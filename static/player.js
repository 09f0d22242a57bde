// Diffusion Theater player. htmx (hx-ws) opens the socket, sends the request and appends every frame the
// server renders into #frames; this file buffers them and chooses which one is visible, and when.
// The server never paces frames: playback speed is decided here, from the buffer.
// Only the shown frame lives in the page: each frame htmx appends is taken out at once and kept as its HTML
// and its message's data (a 192-token, 256-step run would otherwise hold 150,000 elements), and showing a
// frame parses its HTML into the one live frame. `window.theaterPlayer` lets other scripts (the token
// inspector) and tests read the buffer; a "theater:show" event on document says which frame is shown.
(() => {
  "use strict";
  const BASE_FPS = Number(document.getElementById("player")?.dataset.baseFps) || 8; // app/web/playback.py
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const $ = (id) => document.getElementById(id);

  if (window.htmx) {
    // One run per socket: the server closes with 1000 when done, 1013 when busy. Never reconnect on
    // our own (that would resend nothing and sit idle), and keep streaming when the tab is hidden.
    htmx.config.ws = Object.assign(htmx.config.ws || {}, { reconnect: false, pauseOnBackground: false });
  }

  const state = {
    frames: [],        // buffered frames, in step order: {step, status, html, data (the message, no content)}
    container: null,   // the #frames element they belong to (replaced on every new run)
    live: null,        // the one frame element in the page: the shown one
    index: -1,         // visible frame
    playing: false,
    finished: false,
    timer: null,
    speed: 1,
  };

  // Frames htmx appended since the last look (every .frame child but the live one and the placeholder) leave
  // the page for the buffer; `data` is the message that brought the newest one (a frame per message).
  function syncBuffer(data) {
    const container = $("frames");
    if (container !== state.container) {
      state.container = container;
      state.frames = [];
      state.live = null;
      state.index = -1;
      state.finished = false;
    }
    if (!container) return;
    const arrived = [];
    for (const el of container.children) {
      if (el !== state.live && el.classList.contains("frame") && !el.classList.contains("placeholder")) arrived.push(el);
    }
    arrived.forEach((el, k) => {
      const last = k === arrived.length - 1;
      const message = last && data && data.type === "frame" ? Object.assign({}, data, { content: undefined }) : null;
      if (message) share(message, state.frames.length ? state.frames[state.frames.length - 1].data : null);
      state.frames.push({
        step: parseInt(el.dataset.step, 10) || 0,
        status: el.dataset.status || "",
        html: el.outerHTML,
        data: message,
      });
      el.remove();
    });
    const scrub = $("scrub");
    if (scrub) scrub.max = String(Math.max(0, state.frames.length - 1));
  }

  // A decided or fixed token never changes (its alternatives are those it was decided with): one object for it
  // in every frame, instead of a copy per frame (a 192-token, 256-step run holds a third of the memory).
  const settledKey = (t) => (t && (t.state === "committed" || t.state === "fixed")
    ? t.state + "\u0000" + t.text + "\u0000" + t.committed_at + "\u0000" + t.remask_count + "\u0000" + t.confidence : null);

  function shareTokens(tokens, before) {
    if (!Array.isArray(tokens) || !Array.isArray(before)) return;
    for (let i = 0; i < tokens.length && i < before.length; i++) {
      const key = settledKey(tokens[i]);
      if (key !== null && key === settledKey(before[i])) tokens[i] = before[i];
    }
  }

  function share(message, previous) {
    if (!previous) return;
    shareTokens(message.tokens, previous.tokens);
    if (Array.isArray(message.lanes) && Array.isArray(previous.lanes)) {
      message.lanes.forEach((lane, k) => previous.lanes[k] && shareTokens(lane.tokens, previous.lanes[k].tokens));
    }
  }

  function render(frame) {
    const template = document.createElement("template");
    template.innerHTML = frame.html;
    const el = template.content.firstElementChild;
    el.hidden = false;
    return el;
  }

  function show(i) {
    syncBuffer();
    const n = state.frames.length;
    if (!n) return;
    i = Math.max(0, Math.min(n - 1, i));
    const placeholder = state.container && state.container.querySelector(".placeholder");
    if (placeholder) placeholder.hidden = true;
    if (i !== state.index || !state.live) {
      const el = render(state.frames[i]);
      if (state.live && state.live.parentNode) state.live.replaceWith(el);
      else state.container.append(el);
      state.live = el;
    }
    state.index = i;
    const scrub = $("scrub");
    if (scrub) scrub.value = String(i);
    markMaps(state.frames[i].step);
    if (state.finished && i === n - 1) revealResult();
    announce();
    document.dispatchEvent(new CustomEvent("theater:show", { detail: { index: i, element: state.live } }));
  }

  // The decision maps of a finished run follow the player: a line under the pass now shown.
  function markMaps(step) {
    for (const svg of document.querySelectorAll("#result .decision-map svg")) {
      const line = svg.querySelector(".now");
      if (!line) continue;
      const passes = parseInt(svg.dataset.passes, 10) || 0;
      const y = parseFloat(svg.dataset.top) + Math.min(step, passes) * parseFloat(svg.dataset.row);
      line.setAttribute("y1", String(y));
      line.setAttribute("y2", String(y));
    }
  }

  function announce() {
    const status = $("status");
    const frame = state.frames[state.index];
    if (!status || !frame) return;
    let text = frame.status;
    if (!state.finished && state.index === state.frames.length - 1 && state.playing) text += " (computing)";
    status.textContent = text;
  }

  // The run's compute time as the done message states it: steps x the mean ms a step, or the slowest lane's
  // wall time (races): the figures the result sentence gives.
  function computedMs(data) {
    if (typeof data.ms_per_step === "number" && typeof data.steps === "number") return data.ms_per_step * data.steps;
    if (Array.isArray(data.lanes)) {
      const walls = data.lanes.map((lane) => lane.wall_ms).filter((ms) => typeof ms === "number");
      if (walls.length) return Math.max(...walls);
    }
    return null;
  }

  // The result (the done notice, the run's summary, its exports) waits for the playback to reach the last frame:
  // a sentence about the end of a run must not sit beside its step 5. #run[data-pending] hides it (theater.css).
  function holdResult(done) {
    const run = $("run");
    if (run && state.index < state.frames.length - 1) {
      run.dataset.pending = "1";
      // said over the held notice's own box (theater.css), so nothing below it moves
      const notice = $("notice");
      const ms = computedMs(done);
      const seconds = ms !== null ? (ms / 1000).toFixed(1) + " s" : "";
      if (notice) notice.dataset.computed = (seconds ? "Computed in " + seconds + "; " : "Computed; ") +
        "the result shows when the playback reaches the last step.";
    } else speakResult();
  }

  function speakResult() {
    const notice = $("notice");
    if (notice && notice.classList.contains("done")) speak(notice.textContent);
  }

  function revealResult() {
    const run = $("run");
    if (!run || run.dataset.pending !== "1") return;
    delete run.dataset.pending;
    speakResult();
    postHeight();
  }

  // The live region speaks when the viewer acts (pause, step, scrub, first/last) and when the run ends, never at
  // every frame: a screen reader would otherwise queue one sentence per step of a 64-step run.
  function speak(text) {
    const live = $("announce");
    if (!live) return;
    const frame = state.frames[state.index];
    live.textContent = text !== undefined ? text : (frame && frame.status) || "";
  }

  // The GIF link renders frames at the speed the viewer plays them.
  function syncExportSpeed() {
    const link = $("export-gif");
    if (!link) return;
    const url = new URL(link.getAttribute("href"), location.href);
    url.searchParams.set("speed", String(state.speed));
    link.setAttribute("href", url.pathname + url.search);
  }

  function setPlayLabel() {
    const button = $("play");
    if (button) button.textContent = state.playing ? "Pause" : "Play";
    document.body.classList.toggle("playing", state.playing);
  }

  function tick() {
    syncBuffer();
    const n = state.frames.length;
    if (state.index < n - 1) {
      show(state.index + 1);
    } else if (state.finished) {
      const loop = $("loop");
      if (loop && loop.checked && n > 1) show(0);
      else { pause(); speak(); }
    }
    // else: at the newest frame of a run still computing: wait for the next one
  }

  function restartTimer() {
    if (state.timer) clearInterval(state.timer);
    state.timer = state.playing ? setInterval(tick, 1000 / (BASE_FPS * state.speed)) : null;
  }

  function play() {
    syncBuffer();
    if (state.finished && state.index >= state.frames.length - 1) show(0);
    state.playing = true;
    setPlayLabel();
    restartTimer();
  }

  function pause() {
    state.playing = false;
    setPlayLabel();
    restartTimer();
    announce();
  }

  function runStarted() {
    const run = $("run");
    return !!run && run.dataset.active === "1";
  }

  function generate() {
    const form = $("controls");
    if (form) form.requestSubmit();
  }

  function togglePlay() {
    syncBuffer();
    if (!runStarted() && !state.frames.length) generate();
    else if (state.playing) { pause(); speak(); }
    else play();
  }

  function step(delta) {
    pause();
    syncBuffer();
    show((state.index < 0 ? 0 : state.index) + delta);
    speak();
  }

  function toggleFullscreen() {
    const stage = $("theater") || document.documentElement;
    if (document.fullscreenElement) document.exitFullscreen();
    else if (stage.requestFullscreen) stage.requestFullscreen().catch(() => {});
  }

  // ---- URL state: every control change is written to the address bar, so the link reproduces the run
  function formQuery() {
    const form = $("controls");
    if (!form) return "";
    const params = new URLSearchParams(new FormData(form));
    return params.toString();
  }

  function syncUrl() {
    const theater = $("theater");
    if (!theater) return;
    const query = formQuery();
    const current = new URLSearchParams(location.search);
    const extra = current.get("autoplay") === "1" ? "&autoplay=1" : "";
    history.replaceState(null, "", theater.dataset.page + "?" + query + extra);
    const embed = $("embed-link");
    if (embed) embed.href = "/embed/" + theater.dataset.kind + "?" + query + "&autoplay=1";
  }

  // ---- htmx websocket events
  document.addEventListener("htmx:ws:before:message:outgoing", (event) => {
    // hx-ws sends {...values, headers}; the protocol takes exactly the request fields (typed by hx-vals).
    const message = event.detail.message;
    message.data = JSON.stringify(message.values);
  });

  document.addEventListener("htmx:ws:after:message:incoming", (event) => {
    let data;
    try {
      data = JSON.parse(event.detail.message.data);
    } catch (e) {
      return;
    }
    syncBuffer(data);
    if (data.type === "frame") {
      const notice = $("notice");
      if (notice && notice.dataset.waiting === "1") {  // "Connecting..." or a queue position: the run has begun
        notice.textContent = "Computing: frames arrive as the model makes them.";
        notice.className = "notice";
        delete notice.dataset.waiting;
      }
      if (state.index < 0) show(0);
      else if (!state.playing) announce();
      if (reducedMotion.matches && !state.playing) show(state.frames.length - 1);
    } else if (data.type === "done" || data.type === "error") {
      state.finished = true;
      if (data.type === "done") holdResult(data);  // errors show at once (and speak through their role="alert")
      const frame = state.frames[state.index];
      if (frame) markMaps(frame.step);
      if (reducedMotion.matches && !state.playing) show(state.frames.length - 1);  // show() reveals the result
      announce();
      syncExportSpeed();
    }
  });

  // What a close code means to the viewer (docs/protocol.md), for a close that came without the server's own
  // error message (uvicorn closes open sockets with 1012 when the server stops, before the app can speak).
  // A message the server did send is more precise and stays: it arrives as an error notice, before or just
  // after this handler runs, and replaces whatever is in #notice.
  const CLOSE_NOTICES = {
    1006: "The connection to the server was lost: reload the page to try again.",
    1011: "The server failed while generating this run: try again.",
    1012: "The server is restarting: try again in a moment.",
    1013: "The server is busy: try again in a moment.",
  };

  document.addEventListener("htmx:ws:close", (event) => {
    const detail = event.detail || {};
    state.finished = true;
    const notice = $("notice");
    if (detail.code && detail.code !== 1000 && notice && !notice.classList.contains("error")) {
      notice.textContent = CLOSE_NOTICES[detail.code] || "Connection closed (code " + detail.code + ").";
      notice.className = "notice error";
      notice.setAttribute("role", "alert");
    }
    announce();
  });

  // ---- controls
  // Generate brings the stage (the player and the run's canvas) into view when the run starts low in the
  // viewport or the player is above its top: the run must play where the viewer looks. Smooth unless motion is reduced.
  function bringStageIntoView() {
    const stage = $("stage");
    const frames = $("frames");
    if (!stage || !frames) return;
    const top = stage.getBoundingClientRect().top;
    const canvasTop = frames.getBoundingClientRect().top;
    // in view: the player below the top edge and the run starting in the upper part of the viewport, so the
    // canvas (under the counters) shows most of itself
    if (top >= 0 && canvasTop <= window.innerHeight * 0.4) return;
    const margin = 8;
    window.scrollTo({ top: Math.max(0, window.scrollY + top - margin), behavior: reducedMotion.matches ? "auto" : "smooth" });
  }

  document.addEventListener("submit", (event) => {
    if (event.target && event.target.id === "controls") {
      bringStageIntoView();
      syncUrl();
      state.playing = !reducedMotion.matches;
      setPlayLabel();
      restartTimer();
    }
  });

  document.addEventListener("input", (event) => {
    if (event.target && event.target.id === "scrub") {
      pause();
      show(parseInt(event.target.value, 10) || 0);
      speak();
    } else if (event.target && event.target.closest && event.target.closest("#controls")) {
      syncUrl();
    }
  });

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (!target) return;
    if (target.id === "speed") {
      state.speed = parseFloat(target.value) || 1;
      restartTimer();
      syncExportSpeed();
    } else if (target.closest && target.closest("#controls")) {
      syncUrl();
    }
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-act]");
    if (!button) return;
    const act = button.dataset.act;
    if (act === "play") togglePlay();
    else if (act === "prev") step(-1);
    else if (act === "next") step(1);
    else if (act === "rewind") { pause(); show(0); speak(); }
    else if (act === "end") { pause(); syncBuffer(); show(state.frames.length - 1); speak(); }
    else if (act === "fullscreen") toggleFullscreen();
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const tag = target && target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return;
    if (tag === "INPUT" && target.type !== "checkbox" && target.type !== "range") return;
    // Space on a focused checkbox (Loop) ticks it, as everywhere else on the web; the browser does that.
    if (tag === "INPUT" && target.type === "checkbox" && (event.key === " " || event.key === "Spacebar")) return;
    if ((tag === "BUTTON" || tag === "SUMMARY" || tag === "A") && (event.key === " " || event.key === "Enter")) return;
    const key = event.key;
    if (key === " " || key === "Spacebar") { event.preventDefault(); togglePlay(); }
    else if (key === "ArrowRight" && tag !== "INPUT") { event.preventDefault(); step(1); }
    else if (key === "ArrowLeft" && tag !== "INPUT") { event.preventDefault(); step(-1); }
    else if (key === "Home" && tag !== "INPUT") { event.preventDefault(); pause(); show(0); speak(); }
    else if (key === "End" && tag !== "INPUT") {
      event.preventDefault(); pause(); syncBuffer(); show(state.frames.length - 1); speak();
    }
    else if (key === "f" || key === "F") { event.preventDefault(); toggleFullscreen(); }
    else if (/^[0-9]$/.test(key)) {
      const digit = $("digit");
      if (digit) { event.preventDefault(); digit.value = key; syncUrl(); generate(); }
    }
  });

  // ---- embed: tell the parent page our height so it can size the iframe
  function postHeight() {
    if (window.parent === window) return;
    const height = Math.ceil(document.body.getBoundingClientRect().height);
    if (height === postHeight.last) return;
    postHeight.last = height;
    window.parent.postMessage({ type: "theater:height", height }, "*");
  }

  // A host page running embed.js sizes this frame to its content: type then follows the width only
  // (html.sized-by-host in theater.css), since a height-fitted size would change with every resize.
  window.addEventListener("message", (event) => {
    if (event.source === window.parent && window.parent !== window && event.data && event.data.type === "theater:sized") {
      document.documentElement.classList.add("sized-by-host");
    }
  });

  // Read-only access to the buffer, for the token inspector and for tests.
  window.theaterPlayer = {
    get frames() { return state.frames; },
    get index() { return state.index; },
    get finished() { return state.finished; },
    show(i) { pause(); show(i); speak(); },
  };

  function init() {
    syncBuffer();
    const theater = $("theater");
    if (theater && theater.dataset.autoplay === "1" && !reducedMotion.matches) {
      state.playing = true;
      setPlayLabel();
      restartTimer();
    }
    if (document.body.classList.contains("embed")) {
      postHeight();
      if (window.ResizeObserver) new ResizeObserver(postHeight).observe(document.body);
      window.addEventListener("load", postHeight);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
