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
      form.submit();
    }
  });
  input.addEventListener("change", () => { if (input.files.length) form.submit(); });
})();
