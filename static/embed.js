// Diffusion Theater, for the page that embeds it: sizes each theater iframe (marked `data-theater`) to the height
// the demo inside reports, growing only. The demo posts {type: "theater:height", height} to its parent and nothing else.
(() => {
  "use strict";
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (!data || data.type !== "theater:height" || typeof data.height !== "number" || !(data.height > 0)) return;
    for (const frame of document.querySelectorAll("iframe[data-theater]")) {
      let origin = "";
      try { origin = new URL(frame.src, location.href).origin; } catch (e) { continue; }
      if (frame.contentWindow === event.source && origin === event.origin) {
        // Grow only: a run's height changes at every step (blanks become words), and a frame that followed it
        // down and up would move the host page under the reader's eyes at 8 frames a second.
        const height = Math.ceil(Math.min(data.height, 20000));
        const now = parseFloat(frame.style.height) || 0;
        if (height > now) frame.style.height = height + "px";
        if (!frame.dataset.theaterSized) {
          // Tell the demo its height follows its content: it stops fitting its type to the frame's height,
          // which would otherwise change with every resize (and resize the frame again).
          frame.dataset.theaterSized = "1";
          frame.contentWindow.postMessage({ type: "theater:sized" }, event.origin);
        }
      }
    }
  });
})();
