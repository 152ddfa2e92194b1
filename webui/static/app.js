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
  // Repeating rows (mobiles, devices, menu keys): fields are named `list[i].field`. Rows are
  // numbered 0..n-1 in page order before a row is added and before the form is sent, so a
  // removed or moved row never leaves two rows with one index (one would overwrite the other).
  var INDEXED = /^([A-Za-z_][A-Za-z0-9_]*)\[\d+\]/;
  function renumber(group) {
    var rows = Array.prototype.filter.call(group.children, function (el) {
      return el.hasAttribute("data-row");
    });
    rows.forEach(function (row, index) {
      row.querySelectorAll("[name], [id], label[for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (!value) { return; }
          var prefix = attr !== "name" && value.slice(0, 2) === "f-" ? "f-" : "";
          var rest = value.slice(prefix.length);
          if (INDEXED.test(rest)) {
            el.setAttribute(attr, prefix + rest.replace(INDEXED, "$1[" + index + "]"));
          }
        });
      });
    });
    return rows.length;
  }
  document.addEventListener("submit", function (event) {
    var groups = [];
    event.target.querySelectorAll("[data-row]").forEach(function (row) {
      if (groups.indexOf(row.parentElement) < 0) { groups.push(row.parentElement); }
    });
    groups.forEach(renumber);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-add-row]") : null;
    if (!button) { return; }
    event.preventDefault();
    var group = document.getElementById(button.getAttribute("data-add-row"));
    var template = group && group.querySelector("template");
    if (!template) { return; }
    var index = renumber(template.parentElement);
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
