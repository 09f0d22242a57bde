// Diffusion Theater, for the page that embeds it: sizes each theater iframe (marked `data-theater`) to the height
// the demo inside reports. The demo posts {type: "theater:height", height} to its parent and nothing else.
(() => {
  "use strict";
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (!data || data.type !== "theater:height" || typeof data.height !== "number" || !(data.height > 0)) return;
    for (const frame of document.querySelectorAll("iframe[data-theater]")) {
      let origin = "";
      try { origin = new URL(frame.src, location.href).origin; } catch (e) { continue; }
      if (frame.contentWindow === event.source && origin === event.origin) {
        frame.style.height = Math.ceil(Math.min(data.height, 20000)) + "px";
      }
    }
  });
})();
