// The token inspector: click, tap or focus a token chip (a text run, or either lane of a race) to see the step
// it was decided and how sure the model was, its top alternatives then and at the step the player shows, and
// every time the model sent it back to blank. All from the frames the run already streamed (player.js keeps
// them, with each message's token data): no request to the server. It follows the player; while it is open,
// the arrow keys move between chips and Esc closes it.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const DECIDED = new Set(["new", "committed"]);
  const BLANK = new Set(["blank", "remasked"]);
  const selected = { lane: -1, position: -1, open: false };
  let panel = null;

  const player = () => window.theaterPlayer;
  const liveFrame = () => document.querySelector("#frames .frame:not(.placeholder):not([hidden])");
  const percent = (p) => (p >= 0.995 ? "100%" : p < 0.005 && p > 0 ? "<1%" : Math.round(p * 100) + "%");
  // A piece as a person reads it, as its chip draws it (app/render/text.py shown_text): the end-of-story token
  // by name, a line break as a return arrow, a bare space as ␣.
  const shown = (text) => {
    const raw = String(text || "");
    if (raw === "<|endoftext|>") return "end of story";
    if (raw.includes("\n") && !raw.trim()) return "\u21b5";
    const t = raw.replace(/\n/g, "\u21b5").trim();
    return t || (text ? "\u2423" : "");
  };

  // ---- the chips of the live frame: lane k's canvas, position i
  function canvases(frame) {
    if (!frame) return [];
    const lanes = frame.querySelectorAll(".lane .canvas");
    return lanes.length ? Array.from(lanes) : Array.from(frame.querySelectorAll(".canvas"));
  }
  const chipsOf = (canvas) => (canvas ? canvas.querySelectorAll(".tok") : []);

  function locate(chip) {
    const frame = chip.closest(".frame");
    const list = canvases(frame);
    const canvas = chip.closest(".canvas");
    return { lane: list.indexOf(canvas), position: Array.prototype.indexOf.call(chipsOf(canvas), chip) };
  }

  // One chip per canvas takes Tab (the inspected one, else the first): the canvas is one stop, not 192.
  function rove(frame) {
    canvases(frame).forEach((canvas, lane) => {
      const chips = chipsOf(canvas);
      if (!chips.length) return;
      const pick = lane === selected.lane && selected.position >= 0 ? Math.min(selected.position, chips.length - 1) : 0;
      chips.forEach((chip, i) => {
        chip.setAttribute("tabindex", i === pick ? "0" : "-1");
        chip.setAttribute("role", "button");
        if (panel) chip.setAttribute("aria-controls", "inspector");  // only once the panel exists
      });
      if (lane === selected.lane && selected.open) chips[pick].classList.add("inspected");
    });
  }

  // ---- the data: the position's token in every buffered frame
  function tokenAt(frame, lane, position) {
    const data = frame && frame.data;
    if (!data) return null;
    const tokens = Array.isArray(data.lanes) ? data.lanes[lane] && data.lanes[lane].tokens : data.tokens;
    return (tokens && tokens[position]) || null;
  }

  function history(frames, lane, position) {
    const events = [];
    let open = null;
    frames.forEach((frame) => {
      const token = tokenAt(frame, lane, position);
      if (!token) return;
      if (token.state === "remasked") {
        open = { sentBack: frame.step, was: token.was, after: null, redecided: null };
        events.push(open);
      } else if (open && token.state === "new") {
        open.after = token.text;
        open.redecided = frame.step;
        open = null;
      }
    });
    return events;
  }

  // The decision a token at frame `index` has or will have: the shown frame's if decided, else the next one.
  function decision(frames, index, lane, position) {
    for (let i = index; i < frames.length; i++) {
      const token = tokenAt(frames[i], lane, position);
      if (token && DECIDED.has(token.state)) return { token, frame: frames[i] };
      if (token && token.state === "fixed") return null;
    }
    return null;
  }

  // ---- the panel (built here, filled with textContent only: token text is model output)
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function alternatives(list, use) {
    const ol = el("ol");
    for (const [text, p] of list || []) {
      const li = el("li");
      li.append(el("span", "w", shown(text)), " " + percent(p));
      const bar = el("span", "bar");
      bar.style.width = Math.max(1, Math.round(p * 100)) / 10 + "em";  // CSSOM, allowed by the page's CSP
      bar.setAttribute("aria-hidden", "true");
      li.append(bar);
      if (use && String(text).trim()) {
        const button = el("button", "small-button use", "Use");
        button.type = "button";
        button.setAttribute("aria-label", "Use \u201c" + shown(text) + "\u201d as the new word (the rework form below)");
        button.addEventListener("click", () => use(text));
        li.append(" ", button);
      }
      ol.append(li);
    }
    return ol;
  }

  // ---- the rework form (app/render/rework.py, under a finished run): the word whose canvas positions hold this
  // token, as Python listed them; "Use" puts an alternative in its place (the word's other pieces kept) and moves
  // focus to the new-word box. The form itself does the rest (plain GET).
  function reworkUse(lane, position) {
    const select = $("rework-at");
    const input = $("rework-word");
    if (!select || !input || lane !== 0) return null;
    const option = Array.from(select.options).find((o) =>
      o.dataset.first !== undefined && +o.dataset.first <= position && position < +o.dataset.last);
    if (!option) return null;
    return (text) => {
      const frames = player().frames;
      const last = frames[frames.length - 1];
      const pieces = [];
      for (let i = +option.dataset.first; i < +option.dataset.last; i++) {
        const token = tokenAt(last, lane, i);
        pieces.push(i === position ? text : (token && token.text) || "");
      }
      select.value = option.value;
      input.value = pieces.join("").trim();
      input.focus();
      input.select();
    };
  }

  // Right under the frames (inside the run block, which a new run replaces: then it is put back).
  function ensurePanel() {
    const frames = $("frames");
    if (panel) {
      if (frames && panel.previousElementSibling !== frames) frames.after(panel);
      return panel;
    }
    panel = el("aside", "inspector");
    panel.id = "inspector";
    panel.setAttribute("aria-labelledby", "inspector-title");
    panel.hidden = true;
    const close = el("button", "close small-button", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "Close the token inspector (Esc)");
    close.addEventListener("click", () => closePanel(true));
    panel.append(close, el("h2", "", ""), el("div", "body"));
    panel.querySelector("h2").id = "inspector-title";
    if (frames) frames.after(panel);
    else document.body.append(panel);
    return panel;
  }

  function fill() {
    const p = player();
    if (!p || !panel || !selected.open) return;
    const frames = p.frames;
    const index = p.index;
    const frame = frames[index];
    const { lane, position } = selected;
    const token = tokenAt(frame, lane, position);
    const title = panel.querySelector("h2");
    const body = panel.querySelector(".body");
    body.replaceChildren();
    const laneName = frame && frame.data && Array.isArray(frame.data.lanes) && frame.data.lanes[lane]
      ? " (" + (frame.data.lanes[lane].name === "ar" ? "autoregressive lane" : "diffusion lane") + ")" : "";
    if (!token) {
      title.textContent = "Token " + (position + 1) + laneName;
      body.append(el("p", "", "No data for this frame."));
      return;
    }
    const step = frame.step;
    if (token.state === "fixed") {
      title.textContent = "Token " + (position + 1) + laneName + ": \u201c" + shown(token.text) + "\u201d";
      body.append(el("p", "", "Fixed text (the prompt or the text around a gap): the model reads it and never changes it."));
      return;
    }
    const decided = decision(frames, index, lane, position);
    const name = DECIDED.has(token.state) ? shown(token.text) : "blank";
    title.textContent = "Token " + (position + 1) + laneName + ": " + (name === "blank" ? "blank" : "\u201c" + name + "\u201d") + " at step " + step;
    const cols = el("div", "cols");
    const then = el("section");
    if (decided) {
      const c = decided.token;
      then.append(el("h3", "", "Decided at step " + c.committed_at));
      then.append(el("p", "", "\u201c" + shown(c.text) + "\u201d with confidence " + percent(c.confidence) +
        (decided.frame === frame ? "" : " (later than the step shown)")));
      if (c.alternatives && c.alternatives.length) {
        then.append(el("p", "small", "Top guesses when it was decided:"), alternatives(c.alternatives, reworkUse(lane, position)));
      }
    } else {
      then.append(el("h3", "", "Not decided yet"), el("p", "", p.finished ? "The run ended before it was decided." : "Frames are still coming."));
    }
    const now = el("section");
    now.append(el("h3", "", "At step " + step + " (shown)"));
    if (BLANK.has(token.state)) {
      now.append(el("p", "", token.was ? "Blank again: it was \u201c" + shown(token.was) + "\u201d until the model sent it back."
        : "Still blank. The model's top guesses:"));
      if (token.was && token.alternatives.length) now.append(el("p", "small", "Its top guesses now:"));
      now.append(alternatives(token.alternatives));
    } else {
      now.append(el("p", "", "Decided (at step " + token.committed_at + "): from then on the model reads it as given and makes no new guesses here."));
    }
    cols.append(then, now);
    body.append(cols);
    const events = history(frames, lane, position);
    const changes = el("section");
    changes.append(el("h3", "", events.length ? "Sent back to blank " + events.length + (events.length === 1 ? " time" : " times") : "Never sent back to blank"));
    if (events.length) {
      const ul = el("ul");
      for (const e of events) {
        let line = "step " + e.sentBack + ": \u201c" + shown(e.was) + "\u201d sent back";
        line += e.redecided !== null ? "; decided again at step " + e.redecided + " as \u201c" + shown(e.after) + "\u201d" +
          (e.after === e.was ? " (the same token)" : "") : "; not decided again yet";
        ul.append(el("li", "", line));
      }
      changes.append(ul);
    }
    body.append(changes, el("p", "small", "\u2190 \u2192 other tokens \u00b7 Esc closes"));
  }

  function mark() {
    const frame = liveFrame();
    if (!frame) return;
    for (const chip of frame.querySelectorAll(".tok.inspected")) chip.classList.remove("inspected");
    rove(frame);
  }

  function chipAt(lane, position) {
    const chips = chipsOf(canvases(liveFrame())[lane]);
    return chips.length ? chips[Math.max(0, Math.min(chips.length - 1, position))] : null;
  }

  function select(chip) {
    const where = locate(chip);
    if (where.lane < 0 || where.position < 0) return;
    selected.lane = where.lane;
    selected.position = where.position;
    selected.open = true;
    ensurePanel().hidden = false;
    mark();
    fill();
    reveal(chip);
  }

  // The panel opens under the canvas: when it would start near or below the bottom of the viewport, scroll it up
  // as far as it needs, never so far that the chosen chip leaves the top. Smooth unless motion is reduced.
  function reveal(chip) {
    if (!panel) return;
    const box = panel.getBoundingClientRect();
    const overflow = box.bottom - window.innerHeight + 8;
    if (overflow <= 0) return;
    const room = chip.getBoundingClientRect().top - 8;
    const by = Math.min(overflow, room);
    if (by <= 0) return;
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    window.scrollBy({ top: by, behavior: smooth ? "smooth" : "auto" });
  }

  function closePanel(refocus) {
    selected.open = false;
    if (panel) panel.hidden = true;
    mark();
    if (refocus) {
      const chip = chipAt(selected.lane, selected.position);
      if (chip) chip.focus({ preventScroll: true });
    }
  }

  // ---- events
  document.addEventListener("theater:show", () => {
    if (panel && selected.open) ensurePanel();
    const focused = document.activeElement;
    const hadFocus = !focused || focused === document.body;  // the old live frame (with the focused chip) is gone
    mark();
    if (!selected.open) return;
    fill();
    if (hadFocus && lastFocusWasChip) {
      const chip = chipAt(selected.lane, selected.position);
      if (chip) chip.focus({ preventScroll: true });
    }
  });

  let lastFocusWasChip = false;
  document.addEventListener("focusin", (event) => {
    const chip = event.target.closest && event.target.closest(".canvas .tok");
    lastFocusWasChip = !!chip;
    if (chip && chip.closest("#frames")) select(chip);
  });

  document.addEventListener("click", (event) => {
    const chip = event.target.closest && event.target.closest("#frames .canvas .tok");
    if (!chip) return;
    if (!chip.hasAttribute("tabindex")) chip.setAttribute("tabindex", "-1");
    chip.focus({ preventScroll: true });
    select(chip);
  });

  // Capture: runs before the player's keys, and only for a focused chip or the open panel.
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const onChip = target.closest && target.closest("#frames .canvas .tok");
    const inPanel = panel && panel.contains(target);
    if (!onChip && !inPanel) return;
    if (event.key === "Escape" && selected.open) {
      event.preventDefault();
      event.stopPropagation();
      closePanel(true);
    } else if (onChip && selected.open && (event.key === "ArrowRight" || event.key === "ArrowLeft")) {
      event.preventDefault();
      event.stopPropagation();
      const next = chipAt(selected.lane, selected.position + (event.key === "ArrowRight" ? 1 : -1));
      if (next) { next.focus(); select(next); }
    } else if (onChip && !selected.open && event.key === "Enter") {
      event.preventDefault();
      select(onChip);
    }
  }, true);
})();
