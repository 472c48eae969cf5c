// pgflow ui: live updates over server-sent events, action confirmations, filter forms.
// No inline scripts anywhere (the Content-Security-Policy forbids them); no dependencies.
(function () {
  "use strict";

  function show(id, visible) {
    var element = document.getElementById(id);
    if (element) { element.hidden = !visible; }
  }

  // Keep the <details> a reader opened (tracebacks, outputs) open across updates.
  function swap(container, html) {
    var open = {};
    container.querySelectorAll("details[data-key]").forEach(function (d) {
      open[d.dataset.key] = d.open;
    });
    container.innerHTML = html;
    container.querySelectorAll("details[data-key]").forEach(function (d) {
      if (Object.prototype.hasOwnProperty.call(open, d.dataset.key)) { d.open = open[d.dataset.key]; }
    });
  }

  function actionsFor(status) {
    document.querySelectorAll("form[data-when]").forEach(function (form) {
      var wanted = form.dataset.when === "live"
        ? status === "started"
        : status === "failed" || status === "cancelled";
      form.hidden = !wanted;
    });
  }

  function follow(container) {
    var source = new EventSource(container.dataset.events);
    source.addEventListener("open", function () { show("link-banner", false); });
    source.addEventListener("error", function () { show("link-banner", true); });
    source.addEventListener("db", function (event) {
      show("db-banner", JSON.parse(event.data) === "down");
    });
    source.addEventListener("runs", function (event) {
      swap(container, JSON.parse(event.data).html);
    });
    source.addEventListener("run", function (event) {
      var data = JSON.parse(event.data);
      swap(container, data.html);
      document.body.dataset.runStatus = data.status;
      actionsFor(data.status);
    });
    source.addEventListener("gone", function () {
      show("gone-banner", true);
      actionsFor("gone");
      source.close();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-events]").forEach(follow);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
      });
    });
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    var reload = document.body.dataset.reload;
    if (reload) { window.setTimeout(function () { window.location.reload(); }, Number(reload) * 1000); }
    var summary = document.getElementById("summary");
    if (summary) { document.body.dataset.runStatus = summary.dataset.status; }
  });
})();
