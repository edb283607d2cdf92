// The job page's progress bar: asks the page's small JSON endpoint every second until the job has ended, then
// reloads the page once so the per-row results are shown. Every sentence comes translated from the server.
(function () {
  "use strict";
  var box = document.getElementById("job-progress");
  if (!box || box.getAttribute("data-ended") === "true") {
    return;
  }
  var url = box.getAttribute("data-progress-url");
  var bar = document.getElementById("job-bar");
  var failures = 0;

  function show(data) {
    bar.style.width = data.percent + "%";
    bar.setAttribute("aria-valuenow", data.percent);
    bar.textContent = data.percent + " %";
    document.getElementById("job-status").textContent = data.status_label;
    document.getElementById("job-stage").textContent = data.stage_text;
    document.getElementById("job-text").textContent = data.text;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status);
        }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        show(data);
        if (data.ended) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        failures += 1;
        window.setTimeout(poll, Math.min(1000 * Math.pow(2, failures), 30000));
      });
  }
  window.setTimeout(poll, 1000);
})();
