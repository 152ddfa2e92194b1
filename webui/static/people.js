// People pages: move a repeating row (a department's members) up or down; order is ringing order.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var up = event.target.closest ? event.target.closest("[data-move-up]") : null;
    var down = event.target.closest ? event.target.closest("[data-move-down]") : null;
    var button = up || down;
    if (!button) { return; }
    event.preventDefault();
    var row = button.closest("[data-row]");
    if (!row) { return; }
    if (up) {
      var before = row.previousElementSibling;
      if (before && before.hasAttribute("data-row")) { row.parentNode.insertBefore(row, before); }
    } else {
      var after = row.nextElementSibling;
      if (after && after.hasAttribute("data-row")) { row.parentNode.insertBefore(after, row); }
    }
  });
})();
// Before a row is added (app.js numbers the new row by counting rows), number the rows of
// that group 0..n-1 again: after a removed row, the count would repeat an index in use and
// the new phone's fields would overwrite another phone's. Capture phase: runs first.
(function () {
  "use strict";
  var INDEXED = /^([A-Za-z_][A-Za-z0-9_]*)\[\d+\]/;
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-add-row]") : null;
    if (!button) { return; }
    var group = document.getElementById(button.getAttribute("data-add-row"));
    if (!group) { return; }
    group.querySelectorAll("[data-row]").forEach(function (row, index) {
      row.querySelectorAll("[name], [id], label[for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (!value) { return; }
          var prefix = attr === "name" ? "" : value.slice(0, 2) === "f-" ? "f-" : "";
          var rest = value.slice(prefix.length);
          if (INDEXED.test(rest)) {
            el.setAttribute(attr, prefix + rest.replace(INDEXED, "$1[" + index + "]"));
          }
        });
      });
    });
  }, true);
})();
