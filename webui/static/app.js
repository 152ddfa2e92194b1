// Small behaviours shared by every page; no inline scripts (the CSP forbids them).
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  // htmx requests carry the CSRF token in a header, like forms carry it in a field.
  document.addEventListener("htmx:configRequest", function (event) {
    if (meta) { event.detail.headers["X-CSRFToken"] = meta.content; }
  });
  // Forms with data-confirm ask before they post (deleting, hanging up, restoring).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);
  // Buttons that copy a value (SIP passwords shown once).
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!target || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(target.getAttribute("data-copy"));
    target.classList.add("copied");
  });
  // Rows added to a repeating group (mobiles, devices, menu keys): clone the template row.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-add-row]") : null;
    if (!button) { return; }
    event.preventDefault();
    var group = document.getElementById(button.getAttribute("data-add-row"));
    var template = group && group.querySelector("template");
    if (!template) { return; }
    var index = group.querySelectorAll("[data-row]").length;
    var html = template.innerHTML.replace(/__i__/g, String(index));
    template.insertAdjacentHTML("beforebegin", html);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-remove-row]") : null;
    if (!button) { return; }
    event.preventDefault();
    var row = button.closest("[data-row]");
    if (row) { row.remove(); }
  });
})();
