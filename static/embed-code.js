// "Copy embed code": an iframe for the current settings (the page keeps #embed-link in step with the form) and
// the host script that sizes it. Shown in a text box too, for browsers that refuse the clipboard (plain http).
(() => {
  "use strict";
  function snippet() {
    const link = document.getElementById("embed-link");
    const src = new URL(link ? link.getAttribute("href") : location.href, location.href).href;
    const title = document.title.replace(/"/g, "&quot;");
    return `<iframe src="${src.replace(/"/g, "&quot;")}" title="${title}" width="960" height="540" data-theater ` +
      `style="border:0;width:100%;max-width:960px" allow="fullscreen"></iframe>\n` +
      `<script src="${location.origin}/static/embed.js"></script>`;
  }
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("#copy-embed");
    if (!button) return;
    const box = document.getElementById("embed-code");
    const text = snippet();
    if (box) { box.value = text; box.hidden = false; box.select(); }
    const done = (message) => { const status = document.getElementById("embed-copied"); if (status) status.textContent = message; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => done("Copied."), () => done("Select the code and copy it."));
    } else {
      done("Select the code and copy it.");
    }
  });
})();
