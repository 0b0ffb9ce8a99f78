// The job page while its job waits or runs: polls GET /api/jobs/<id> (the same job the API answers), moves the
// progress bar, and reloads the page once the job is done or failed, when the server shows its result.
(function () {
  const box = document.getElementById("job");
  if (!box) return;
  const url = box.dataset.statusUrl;
  const bar = document.getElementById("job-progress");
  const line = document.getElementById("job-status");
  let delay = 200;
  function show(job) {
    const percent = Math.round(job.progress * 100);
    bar.value = percent;
    bar.textContent = percent + "%";
    const ahead = job.ahead ? " (" + job.ahead + (job.ahead === 1 ? " job" : " jobs") + " ahead of it)" : "";
    line.textContent = job.status === "queued" ? "Waiting for a worker…" + ahead : "Working… " + percent + "%";
  }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" })
      .then((response) => (response.status === 404 ? { status: "gone" } : response.json()))
      .then((job) => {
        if (job.status === "done" || job.status === "failed" || job.status === "gone") {
          window.location.reload();
          return;
        }
        show(job);
        delay = Math.min(delay * 1.25, 1500);
        window.setTimeout(poll, delay);
      })
      .catch(() => window.setTimeout(poll, 2000));
  }
  window.setTimeout(poll, delay);
})();
