// The mask editor on /image/inpaint: paint (or erase) the pixels to fill on a 28x28 grid over the digit, with a
// pointer or touch, or pick a preset. The mask lives in the form's `mask` field in its wire form (models/image/
// masks.py: 784 bits row by row, 1 = fill, packed most significant bit first, unpadded base64url), and the address
// bar follows it, so a reload or a link keeps the painting. The server validates it again when Fill is sent.
(function () {
  "use strict";

  const canvas = document.getElementById("mask-canvas");
  const field = document.getElementById("mask-field");
  const status = document.getElementById("mask-status");
  const fill = document.getElementById("fill");
  const clear = document.getElementById("mask-clear");
  const size = document.getElementById("brush-size");
  if (!canvas || !field || !status || !fill) return;

  const SIDE = parseInt(canvas.dataset.side, 10) || 28;
  const PIXELS = SIDE * SIDE;
  const context = canvas.getContext("2d");
  let mask = decode(field.value) || new Uint8Array(PIXELS);

  function decode(text) {
    try {
      const bytes = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=");
      const bits = new Uint8Array(PIXELS);
      for (let i = 0; i < PIXELS; i++) bits[i] = (bytes.charCodeAt(i >> 3) >> (7 - (i & 7))) & 1;
      return bits;
    } catch (error) {
      return null;
    }
  }

  function encode(bits) {
    const bytes = new Uint8Array(Math.ceil(PIXELS / 8));
    for (let i = 0; i < PIXELS; i++) if (bits[i]) bytes[i >> 3] |= 1 << (7 - (i & 7));
    let binary = "";
    bytes.forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function draw() {
    const cell = canvas.width / SIDE;
    context.clearRect(0, 0, canvas.width, canvas.height);
    const hatch = document.createElement("canvas");
    hatch.width = hatch.height = 8;
    const h = hatch.getContext("2d");
    h.fillStyle = "rgba(230, 60, 60, 0.55)";
    h.fillRect(0, 0, 8, 8);
    h.strokeStyle = "rgba(255, 255, 255, 0.7)";
    h.lineWidth = 2;
    h.beginPath(); h.moveTo(0, 8); h.lineTo(8, 0); h.stroke();
    context.fillStyle = context.createPattern(hatch, "repeat");
    for (let i = 0; i < PIXELS; i++) {
      if (mask[i]) context.fillRect((i % SIDE) * cell, Math.floor(i / SIDE) * cell, cell, cell);
    }
  }

  function changed() {
    const value = encode(mask);
    document.querySelectorAll("input.mask-value").forEach(function (input) { input.value = value; });
    const count = mask.reduce(function (a, b) { return a + b; }, 0);
    status.textContent = count + " of " + PIXELS + " pixels to fill." + (count ? "" : " Paint at least one to Fill.");
    fill.disabled = count === 0;
    const url = new URL(window.location.href);
    url.searchParams.set("mask", value);
    window.history.replaceState(null, "", url);
    draw();
  }

  function paintAt(col, row, value) {
    const radius = (parseInt(size && size.value, 10) || 1) >> 1;
    for (let r = row - radius; r <= row + radius; r++) {
      for (let c = col - radius; c <= col + radius; c++) {
        if (r >= 0 && r < SIDE && c >= 0 && c < SIDE) mask[r * SIDE + c] = value;
      }
    }
  }

  function cellOf(event) {
    const rect = canvas.getBoundingClientRect();
    return [
      Math.floor(((event.clientX - rect.left) / rect.width) * SIDE),
      Math.floor(((event.clientY - rect.top) / rect.height) * SIDE),
    ];
  }

  let last = null;
  function stroke(event) {
    const erase = document.querySelector("input[name=brush-mode]:checked");
    const value = erase && erase.value === "erase" ? 0 : 1;
    const here = cellOf(event);
    const from = last || here;
    const steps = Math.max(Math.abs(here[0] - from[0]), Math.abs(here[1] - from[1]), 1);
    for (let s = 0; s <= steps; s++) {  // fill the cells between two pointer events: fast strokes leave no gaps
      paintAt(Math.round(from[0] + ((here[0] - from[0]) * s) / steps), Math.round(from[1] + ((here[1] - from[1]) * s) / steps), value);
    }
    last = here;
    changed();
  }

  canvas.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    last = null;
    stroke(event);
  });
  canvas.addEventListener("pointermove", function (event) {
    if (canvas.hasPointerCapture(event.pointerId)) stroke(event);
  });
  ["pointerup", "pointercancel"].forEach(function (type) {
    canvas.addEventListener(type, function () { last = null; });
  });

  document.querySelectorAll("a.preset").forEach(function (link) {
    link.addEventListener("click", function (event) {
      const preset = decode(link.dataset.mask);
      if (!preset) return;  // the link still works
      event.preventDefault();
      mask = preset;
      changed();
    });
  });
  if (clear) clear.addEventListener("click", function () { mask = new Uint8Array(PIXELS); changed(); });

  draw();
})();
