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
