// While a form marked data-busy is sent, its button says what is happening and cannot be pressed twice; a page
// shown again by the browser's Back button gets its buttons back.
function markBusy(form) {
  const button = form.querySelector("button[type=submit]");
  if (button && !button.disabled) {
    button.dataset.label = button.textContent;
    button.textContent = form.dataset.busy;
    button.disabled = true;
  }
  form.setAttribute("aria-busy", "true");
}
document.querySelectorAll("form[data-busy]").forEach((form) => form.addEventListener("submit", () => markBusy(form)));
window.addEventListener("pageshow", () => document.querySelectorAll("form[data-busy]").forEach((form) => {
  const button = form.querySelector("button[type=submit]");
  if (button && button.dataset.label) { button.textContent = button.dataset.label; button.disabled = false; }
  form.removeAttribute("aria-busy");
}));

// Drag and drop onto the upload area submits the dropped image; the plain file input works without this.
(function () {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("poster-input");
  const form = document.getElementById("upload-form");
  if (!zone || !input || !form) return;
  ["dragenter", "dragover"].forEach((name) =>
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((name) =>
    zone.addEventListener(name, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      markBusy(form);
      form.submit();
    }
  });
  input.addEventListener("change", () => { if (input.files.length) { markBusy(form); form.submit(); } });
})();
