// Destination pickers (_destination.html): show and enable only the target of the chosen kind,
// so the form posts one NAME.target. Delegated, so rows added later work too.
(function () {
  "use strict";
  function sync(select) {
    var box = select.closest("[data-destination]");
    if (!box) { return; }
    var kind = select.value;
    box.querySelectorAll("[data-dest-for]").forEach(function (control) {
      var on = control.getAttribute("data-dest-for") === kind;
      control.hidden = !on;
      control.disabled = !on;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-dest-kind]")) { sync(event.target); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-dest-kind]").forEach(sync);
  });
})();
