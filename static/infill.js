// The infill editor on /text: a toolbar under the prompt that writes gaps into the textarea. The textarea stays
// the one source of the template (`___` is a gap of Tokens blanks, `___{8}` a gap of 8; docs/protocol.md), so
// every change here is an edit of its text followed by an `input` event: player.js then writes the address bar,
// and a link reproduces the template. The gap syntax is read as models/text/decoding.py `parse_gaps` reads it.
(function () {
  "use strict";

  const MARK = "___";
  const form = document.getElementById("controls");
  const box = document.getElementById("infill");
  const prompt = form && form.querySelector("textarea[name=prompt]");
  const lengthInput = form && form.querySelector("input[name=length]");
  const list = document.getElementById("infill-gaps");
  const status = document.getElementById("infill-status");
  if (!form || !box || !prompt || !list || !status) return;

  const maxSize = parseInt(box.dataset.max, 10) || 192;
  const defaultSize = Math.min(parseInt(box.dataset.defaultSize, 10) || 8, maxSize);
  let touched = false;  // the caret means nothing until the textarea has had focus: insert at the end then

  // ---- the template's gaps, left to right, as parse_gaps finds them
  // {start, end: the mark's span (its size included), size: a number, null (bare: Tokens) or NaN (malformed)}
  function gaps(text) {
    const found = [];
    let at = text.indexOf(MARK);
    while (at >= 0) {
      let end = at + MARK.length;
      let size = null;
      if (text.charAt(end) === "{") {
        const close = text.indexOf("}", end);
        if (close < 0) {  // unclosed: the span is the mark, its "{" and the digits after it, if any
          size = NaN;
          end = end + 1 + (/^[0-9]*/.exec(text.slice(end + 1))[0].length);
        } else {
          const written = text.slice(end + 1, close);
          size = /^[0-9]+$/.test(written) ? parseInt(written, 10) : NaN;
          if (size < 1 || written.replace(/^0+/, "").length > 9) size = NaN;
          end = close + 1;
        }
      }
      found.push({ start: at, end: end, size: size });
      at = text.indexOf(MARK, end);
    }
    return found;
  }

  function tokens() {
    const value = lengthInput ? parseInt(lengthInput.value, 10) : NaN;
    return isNaN(value) ? "Tokens" : String(value);
  }

  function say(message) {
    // Cleared first so that the same message twice is announced twice.
    status.textContent = "";
    window.setTimeout(() => { status.textContent = message; }, 30);
  }

  // ---- editing the textarea: one place, so every change ends with the same `input` event
  function edit(start, end, replacement, caret) {
    const value = prompt.value;
    const limit = parseInt(prompt.getAttribute("maxlength"), 10);
    const next = value.slice(0, start) + replacement + value.slice(end);
    if (limit && next.length > limit && next.length > value.length) {
      say("The prompt would be longer than " + limit + " characters: shorten it first.");
      return false;
    }
    prompt.value = next;
    const at = caret === undefined ? start + replacement.length : caret;
    prompt.setSelectionRange(at, at);
    prompt.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }

  // A gap glued to a word would tokenise the word differently: keep a space on each side that has text.
  function spaced(value, start, end, gap) {
    const before = start > 0 && !/\s/.test(value.charAt(start - 1)) ? " " : "";
    const after = end < value.length && !/\s/.test(value.charAt(end)) ? " " : "";
    return before + gap + after;
  }

  function insertGap() {
    const value = prompt.value;
    const at = touched ? prompt.selectionEnd : value.length;
    const gap = MARK + "{" + defaultSize + "}";
    const text = spaced(value, at, at, gap);
    if (edit(at, at, text)) say("Inserted a gap of " + defaultSize + " blanks.");
  }

  async function selectionToGap() {
    const value = prompt.value;
    let start = prompt.selectionStart;
    let end = prompt.selectionEnd;
    if (!touched || start === end || !value.slice(start, end).trim()) {
      say("Select some words in the prompt first, then press Selection \u2192 gap.");
      return;
    }
    while (start < end && /\s/.test(value.charAt(start))) start++;  // the spaces around stay fixed text
    while (end > start && /\s/.test(value.charAt(end - 1))) end--;
    const words = value.slice(start, end);
    if (gaps(value).some((g) => g.start < end && g.end > start)) {
      say("The selection holds a gap already: select words only.");
      return;
    }
    let count;
    try {
      const response = await fetch("/text/tokens?" + new URLSearchParams({ text: words }), {
        headers: { Accept: "application/json" },
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || "status " + response.status);
      count = data.tokens;
    } catch (error) {
      say("Could not count the selected words: " + error.message);
      return;
    }
    if (prompt.value !== value) {
      say("The prompt changed while its words were counted: select them again.");
      return;
    }
    const size = Math.max(1, Math.min(count, maxSize));
    const note = count > maxSize ? " (the limit; the words were " + count + " tokens)" : "";
    if (edit(start, end, MARK + "{" + size + "}")) {
      say("Replaced \u201c" + words + "\u201d with a gap of " + size + " blanks" + note + ".");
    }
  }

  // ---- the gap list: rebuilt when the number of gaps changes, updated in place otherwise (so a size input
  // keeps its focus while it rewrites the textarea)
  function resize(index, size) {
    const gap = gaps(prompt.value)[index];
    if (!gap || isNaN(size) || size < 1 || size > maxSize) return;
    if (gap.size === size) return;
    edit(gap.start, gap.end, MARK + "{" + size + "}", prompt.selectionEnd);
  }

  function item(index) {
    const li = document.createElement("li");
    li.className = "infill-gap";
    const label = document.createElement("label");
    const name = document.createElement("span");
    name.textContent = "Gap " + (index + 1) + ":";
    const input = document.createElement("input");
    input.type = "number";
    input.min = "1";
    input.max = String(maxSize);
    input.step = "1";
    input.addEventListener("input", () => resize(index, Number(input.value)));
    const unit = document.createElement("span");
    unit.className = "infill-unit";
    label.append(name, input, unit);
    const problem = document.createElement("span");
    problem.className = "infill-problem";
    li.append(label, problem);
    return li;
  }

  function refresh() {
    const found = gaps(prompt.value);
    if (!found.length) {
      list.replaceChildren();
      const li = document.createElement("li");
      li.className = "infill-none";
      li.textContent = "No gaps: the model writes " + tokens() + " tokens after the prompt.";
      list.append(li);
      return;
    }
    if (list.querySelectorAll("li.infill-gap").length !== found.length) {
      list.replaceChildren(...found.map((_, index) => item(index)));
    }
    list.querySelectorAll("li.infill-gap").forEach((li, index) => {
      const gap = found[index];
      const input = li.querySelector("input");
      const unit = li.querySelector(".infill-unit");
      const problem = li.querySelector(".infill-problem");
      const bare = gap.size === null;
      const malformed = typeof gap.size === "number" && isNaN(gap.size);
      const shown = bare ? tokens() : malformed ? "" : String(gap.size);
      if (document.activeElement !== input) input.value = shown === "Tokens" ? "" : shown;
      input.setAttribute("aria-invalid", malformed ? "true" : "false");
      unit.textContent = bare ? "blanks (length)" : "blanks";
      problem.textContent = malformed
        ? "written " + prompt.value.slice(gap.start, Math.min(gap.end, gap.start + 16)) + ": give it a size from 1 to " + maxSize
        : "";
    });
  }

  prompt.addEventListener("focus", () => { touched = true; });
  prompt.addEventListener("select", () => { touched = true; });
  prompt.addEventListener("input", refresh);
  if (lengthInput) lengthInput.addEventListener("input", refresh);
  document.getElementById("infill-insert").addEventListener("click", insertGap);
  document.getElementById("infill-selection").addEventListener("click", selectionToGap);
  refresh();
})();
